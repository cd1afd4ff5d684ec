/* Writes the plugins cache (docs/gst_plugins_cache.json) of the plugin
 * files named on the command line, in the format GStreamer keeps in its
 * subprojects' docs/ and feeds to hotdoc: one object per plugin with its
 * elements, their pad templates, properties and signals, and the enum,
 * flags and object types they expose as plugin API ("other-types").
 *
 * Debian does not ship GStreamer's own scanner, so this is ours. The output
 * has the layout Python's json.dump (indent=4, sort_keys=True) gives
 * GStreamer's files, so it is stable and diffs cleanly. Two value quirks of
 * GStreamer's scanner are not reproduced: it doubles every '%' in strings
 * and prints guint ranges with %d (G_MAXUINT shows as "-1"); here strings
 * and numbers are written as they are.
 *
 * Usage: plugins-cache-scan OUTPUT PLUGIN-FILE...   (OUTPUT "-" = stdout)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gst/gst.h>
#include <glib/gstdio.h>

#include <stdlib.h>
#include <string.h>

/* ---- a small JSON tree, written the way json.dump writes it ---- */

typedef enum {
  NODE_OBJECT,
  NODE_ARRAY,
  NODE_STRING,
  NODE_BOOL,
} NodeKind;

typedef struct {
  NodeKind kind;
  gchar* string;
  gboolean boolean;
  GTree* members; /* key -> Node, in sort_keys order */
  GPtrArray* items;
} Node;

static void node_free(gpointer data);

static gint compare_keys(gconstpointer a, gconstpointer b, gpointer user_data) {
  (void)user_data;
  /* Byte order of UTF-8 is code point order, which is what sort_keys uses. */
  return strcmp(a, b);
}

static Node* node_object(void) {
  Node* n = g_new0(Node, 1);
  n->kind = NODE_OBJECT;
  n->members = g_tree_new_full(compare_keys, NULL, g_free, node_free);
  return n;
}

static Node* node_array(void) {
  Node* n = g_new0(Node, 1);
  n->kind = NODE_ARRAY;
  n->items = g_ptr_array_new_with_free_func(node_free);
  return n;
}

static Node* node_take_string(gchar* s) {
  Node* n = g_new0(Node, 1);
  n->kind = NODE_STRING;
  /* NULL is written as GStreamer's scanner writes it. */
  n->string = s ? s : g_strdup("NULL");
  return n;
}

static Node* node_string(const gchar* s) {
  return node_take_string(g_strdup(s));
}

static Node* node_bool(gboolean b) {
  Node* n = g_new0(Node, 1);
  n->kind = NODE_BOOL;
  n->boolean = b;
  return n;
}

static void node_free(gpointer data) {
  Node* n = data;

  if (!n)
    return;
  g_free(n->string);
  if (n->members)
    g_tree_unref(n->members);
  if (n->items)
    g_ptr_array_unref(n->items);
  g_free(n);
}

/* Sets obj[key] = value, replacing any previous value. Returns value. */
static Node* obj_set(Node* obj, const gchar* key, Node* value) {
  g_tree_replace(obj->members, g_strdup(key), value);
  return value;
}

static void obj_set_string(Node* obj, const gchar* key, const gchar* s) {
  obj_set(obj, key, node_string(s));
}

static void obj_take_string(Node* obj, const gchar* key, gchar* s) {
  obj_set(obj, key, node_take_string(s));
}

static void obj_set_bool(Node* obj, const gchar* key, gboolean b) {
  obj_set(obj, key, node_bool(b));
}

static Node* obj_get(Node* obj, const gchar* key) {
  return g_tree_lookup(obj->members, key);
}

static Node* arr_add(Node* arr, Node* item) {
  g_ptr_array_add(arr->items, item);
  return item;
}

/* As json.dumps (ensure_ascii=False): UTF-8 passes through, control
 * characters are escaped. */
static void write_string(GString* out, const gchar* s) {
  gchar* valid = g_utf8_make_valid(s, -1);
  const guchar* p;

  g_string_append_c(out, '"');
  for (p = (const guchar*)valid; *p; p++) {
    switch (*p) {
      case '"':
        g_string_append(out, "\\\"");
        break;
      case '\\':
        g_string_append(out, "\\\\");
        break;
      case '\n':
        g_string_append(out, "\\n");
        break;
      case '\r':
        g_string_append(out, "\\r");
        break;
      case '\t':
        g_string_append(out, "\\t");
        break;
      case '\b':
        g_string_append(out, "\\b");
        break;
      case '\f':
        g_string_append(out, "\\f");
        break;
      default:
        if (*p < 0x20)
          g_string_append_printf(out, "\\u%04x", *p);
        else
          g_string_append_c(out, (gchar)*p);
    }
  }
  g_string_append_c(out, '"');
  g_free(valid);
}

static void write_node(GString* out, const Node* n, guint depth);

static void indent(GString* out, guint depth) {
  guint i;

  for (i = 0; i < depth * 4; i++)
    g_string_append_c(out, ' ');
}

typedef struct {
  GString* out;
  guint depth;
  gboolean first;
} WriteMember;

static gboolean write_member(gpointer key, gpointer value, gpointer user_data) {
  WriteMember* w = user_data;

  g_string_append(w->out, w->first ? "\n" : ",\n");
  w->first = FALSE;
  indent(w->out, w->depth);
  write_string(w->out, key);
  g_string_append(w->out, ": ");
  write_node(w->out, value, w->depth);
  return FALSE;
}

static void write_node(GString* out, const Node* n, guint depth) {
  guint i;

  switch (n->kind) {
    case NODE_STRING:
      write_string(out, n->string);
      break;
    case NODE_BOOL:
      g_string_append(out, n->boolean ? "true" : "false");
      break;
    case NODE_OBJECT: {
      WriteMember w = {out, depth + 1, TRUE};

      if (g_tree_nnodes(n->members) == 0) {
        g_string_append(out, "{}");
        break;
      }
      g_string_append_c(out, '{');
      g_tree_foreach(n->members, write_member, &w);
      g_string_append_c(out, '\n');
      indent(out, depth);
      g_string_append_c(out, '}');
      break;
    }
    case NODE_ARRAY:
      if (n->items->len == 0) {
        g_string_append(out, "[]");
        break;
      }
      g_string_append_c(out, '[');
      for (i = 0; i < n->items->len; i++) {
        g_string_append(out, i ? ",\n" : "\n");
        indent(out, depth + 1);
        write_node(out, g_ptr_array_index(n->items, i), depth + 1);
      }
      g_string_append_c(out, '\n');
      indent(out, depth);
      g_string_append_c(out, ']');
      break;
  }
}

/* ---- introspection ---- */

/* The plugin's "other-types": enums, flags and objects marked as plugin
 * API that its elements use. */
typedef struct {
  Node* other_types;
} Scan;

static void describe_object(Scan* scan, Node* node, GObject* instance, GType type);

static Node* enum_values(GType type) {
  GEnumClass* klass = g_type_class_ref(type);
  Node* values = node_array();
  guint i;

  for (i = 0; i < klass->n_values; i++) {
    Node* v = arr_add(values, node_object());

    obj_set_string(v, "desc", klass->values[i].value_name);
    obj_set_string(v, "name", klass->values[i].value_nick);
    obj_take_string(v, "value", g_strdup_printf("%d", klass->values[i].value));
  }
  g_type_class_unref(klass);
  return values;
}

static Node* flags_values(GType type) {
  GFlagsClass* klass = g_type_class_ref(type);
  Node* values = node_array();
  guint i;

  for (i = 0; i < klass->n_values; i++) {
    Node* v = arr_add(values, node_object());

    obj_set_string(v, "desc", klass->values[i].value_name);
    obj_set_string(v, "name", klass->values[i].value_nick);
    obj_take_string(v, "value", g_strdup_printf("0x%08x", klass->values[i].value));
  }
  g_type_class_unref(klass);
  return values;
}

/* Adds @type to other-types if it is plugin API and not there yet.
 * @instance, if any, is an object of a type derived from @type, used for
 * property defaults (a base class may be abstract). */
static void add_other_type(Scan* scan, GType type, GObject* instance) {
  GstPluginAPIFlags api_flags = 0;
  const gchar* name = g_type_name(type);
  Node* node;

  if (!name || obj_get(scan->other_types, name) || !gst_type_is_plugin_api(type, &api_flags))
    return;

  node = obj_set(scan->other_types, name, node_object());
  if (G_TYPE_IS_ENUM(type)) {
    obj_set_string(node, "kind", "enum");
    if (api_flags & GST_PLUGIN_API_FLAG_IGNORE_ENUM_MEMBERS)
      obj_set_bool(node, "ignore-enum-members", TRUE);
    else
      obj_set(node, "values", enum_values(type));
  } else if (G_TYPE_IS_FLAGS(type)) {
    obj_set_string(node, "kind", "flags");
    obj_set(node, "values", flags_values(type));
  } else if (G_TYPE_IS_INTERFACE(type) || g_type_is_a(type, G_TYPE_OBJECT)) {
    GObject* own = NULL;

    obj_set_string(node, "kind", G_TYPE_IS_INTERFACE(type) ? "interface" : "object");
    if (!instance && G_TYPE_IS_INSTANTIATABLE(type) && !G_TYPE_IS_ABSTRACT(type)) {
      own = g_object_new(type, NULL);
      if (G_IS_INITIALLY_UNOWNED(own))
        g_object_ref_sink(own);
      instance = own;
    }
    describe_object(scan, node, instance, type);
    if (own)
      g_object_unref(own);
  }
}

static const gchar* mutable_name(GParamFlags flags) {
  if (flags & GST_PARAM_MUTABLE_PLAYING)
    return "playing";
  if (flags & GST_PARAM_MUTABLE_PAUSED)
    return "paused";
  if (flags & GST_PARAM_MUTABLE_READY)
    return "ready";
  return "null";
}

static gchar* format_double(gdouble v) {
  gchar buf[G_ASCII_DTOSTR_BUF_SIZE];

  /* %g in the C locale, as GStreamer's scanner runs. */
  return g_strdup(g_ascii_formatd(buf, sizeof buf, "%g", v));
}

static void set_range(Node* p, gchar* min, gchar* max) {
  obj_take_string(p, "min", min);
  obj_take_string(p, "max", max);
}

/* "default", and "min"/"max" for numbers, written as strings as
 * GStreamer's scanner writes them. */
static void describe_value(Node* p, GParamSpec* spec, const GValue* value) {
  const GType vtype = G_VALUE_TYPE(value);

  switch (G_TYPE_FUNDAMENTAL(vtype)) {
    case G_TYPE_STRING:
      obj_set_string(p, "default", g_value_get_string(value));
      return;
    case G_TYPE_BOOLEAN:
      obj_set_string(p, "default", g_value_get_boolean(value) ? "true" : "false");
      return;
    case G_TYPE_INT: {
      GParamSpecInt* s = G_PARAM_SPEC_INT(spec);
      obj_take_string(p, "default", g_strdup_printf("%d", g_value_get_int(value)));
      set_range(p, g_strdup_printf("%d", s->minimum), g_strdup_printf("%d", s->maximum));
      return;
    }
    case G_TYPE_UINT: {
      GParamSpecUInt* s = G_PARAM_SPEC_UINT(spec);
      obj_take_string(p, "default", g_strdup_printf("%u", g_value_get_uint(value)));
      set_range(p, g_strdup_printf("%u", s->minimum), g_strdup_printf("%u", s->maximum));
      return;
    }
    case G_TYPE_LONG: {
      GParamSpecLong* s = G_PARAM_SPEC_LONG(spec);
      obj_take_string(p, "default", g_strdup_printf("%ld", g_value_get_long(value)));
      set_range(p, g_strdup_printf("%ld", s->minimum), g_strdup_printf("%ld", s->maximum));
      return;
    }
    case G_TYPE_ULONG: {
      GParamSpecULong* s = G_PARAM_SPEC_ULONG(spec);
      obj_take_string(p, "default", g_strdup_printf("%lu", g_value_get_ulong(value)));
      set_range(p, g_strdup_printf("%lu", s->minimum), g_strdup_printf("%lu", s->maximum));
      return;
    }
    case G_TYPE_INT64: {
      GParamSpecInt64* s = G_PARAM_SPEC_INT64(spec);
      obj_take_string(p, "default", g_strdup_printf("%" G_GINT64_FORMAT, g_value_get_int64(value)));
      set_range(p, g_strdup_printf("%" G_GINT64_FORMAT, s->minimum),
                g_strdup_printf("%" G_GINT64_FORMAT, s->maximum));
      return;
    }
    case G_TYPE_UINT64: {
      GParamSpecUInt64* s = G_PARAM_SPEC_UINT64(spec);
      obj_take_string(p, "default",
                      g_strdup_printf("%" G_GUINT64_FORMAT, g_value_get_uint64(value)));
      set_range(p, g_strdup_printf("%" G_GUINT64_FORMAT, s->minimum),
                g_strdup_printf("%" G_GUINT64_FORMAT, s->maximum));
      return;
    }
    case G_TYPE_FLOAT: {
      GParamSpecFloat* s = G_PARAM_SPEC_FLOAT(spec);
      obj_take_string(p, "default", format_double(g_value_get_float(value)));
      set_range(p, format_double(s->minimum), format_double(s->maximum));
      return;
    }
    case G_TYPE_DOUBLE: {
      GParamSpecDouble* s = G_PARAM_SPEC_DOUBLE(spec);
      obj_take_string(p, "default", format_double(g_value_get_double(value)));
      set_range(p, format_double(s->minimum), format_double(s->maximum));
      return;
    }
    case G_TYPE_ENUM: {
      GEnumClass* klass = g_type_class_ref(vtype);
      const gint v = g_value_get_enum(value);
      GEnumValue* ev = g_enum_get_value(klass, v);

      obj_take_string(p, "default", g_strdup_printf("%s (%d)", ev ? ev->value_nick : "", v));
      g_type_class_unref(klass);
      return;
    }
    case G_TYPE_FLAGS: {
      GFlagsClass* klass = g_type_class_ref(vtype);
      guint left = g_value_get_flags(value);
      GString* s = g_string_new(NULL);
      guint i;

      /* An exact value first, then its bits from the highest down, as
       * GStreamer's scanner names them. */
      for (i = 0; i < klass->n_values; i++) {
        if (klass->values[i].value == left) {
          g_string_assign(s, klass->values[i].value_nick);
          left = 0;
          break;
        }
      }
      for (i = klass->n_values; left != 0 && i > 0; i--) {
        const guint bits = klass->values[i - 1].value;

        if (bits != 0 && (left & bits) == bits) {
          if (s->len)
            g_string_append_c(s, '+');
          g_string_append(s, klass->values[i - 1].value_nick);
          left &= ~bits;
        }
      }
      if (s->len == 0)
        g_string_assign(s, "(none)");
      obj_take_string(p, "default", g_string_free(s, FALSE));
      g_type_class_unref(klass);
      return;
    }
    default:
      break;
  }

  if (vtype == GST_TYPE_CAPS) {
    const GstCaps* caps = gst_value_get_caps(value);
    if (caps)
      obj_take_string(p, "default", gst_caps_to_string(caps));
  } else if (vtype == GST_TYPE_STRUCTURE) {
    const GstStructure* s = gst_value_get_structure(value);
    if (s)
      obj_take_string(p, "default", gst_structure_to_string(s));
  } else if (GST_IS_PARAM_SPEC_FRACTION(spec)) {
    GstParamSpecFraction* f = GST_PARAM_SPEC_FRACTION(spec);
    obj_take_string(p, "default",
                    g_strdup_printf("%d/%d", gst_value_get_fraction_numerator(value),
                                    gst_value_get_fraction_denominator(value)));
    set_range(p, g_strdup_printf("%d/%d", f->min_num, f->min_den),
              g_strdup_printf("%d/%d", f->max_num, f->max_den));
  }
}

/* The properties @type itself installs, not those it inherits. */
static void describe_properties(Scan* scan, Node* node, GObject* instance, GType type) {
  GObjectClass* klass;
  GParamSpec** specs;
  guint i, n_specs;
  Node* props = NULL;

  if (G_TYPE_IS_INTERFACE(type)) {
    gpointer iface = g_type_default_interface_ref(type);
    specs = g_object_interface_list_properties(iface, &n_specs);
    g_type_default_interface_unref(iface);
  } else {
    klass = instance ? G_OBJECT_GET_CLASS(instance) : g_type_class_ref(type);
    specs = g_object_class_list_properties(klass, &n_specs);
    if (!instance)
      g_type_class_unref(klass);
  }

  for (i = 0; i < n_specs; i++) {
    GParamSpec* spec = specs[i];
    GValue value = G_VALUE_INIT;
    Node* p;

    if (spec->owner_type != type)
      continue;
    if (!props)
      props = obj_set(node, "properties", node_object());
    p = obj_set(props, spec->name, node_object());

    obj_set_string(p, "blurb", g_param_spec_get_blurb(spec));
    obj_set_bool(p, "conditionally-available",
                 (spec->flags & GST_PARAM_CONDITIONALLY_AVAILABLE) != 0);
    obj_set_bool(p, "construct", (spec->flags & G_PARAM_CONSTRUCT) != 0);
    obj_set_bool(p, "construct-only", (spec->flags & G_PARAM_CONSTRUCT_ONLY) != 0);
    obj_set_bool(p, "controllable", (spec->flags & GST_PARAM_CONTROLLABLE) != 0);
    obj_set_string(p, "mutable", mutable_name(spec->flags));
    obj_set_bool(p, "readable", (spec->flags & G_PARAM_READABLE) != 0);
    obj_set_string(p, "type", g_type_name(spec->value_type));
    obj_set_bool(p, "writable", (spec->flags & G_PARAM_WRITABLE) != 0);

    add_other_type(scan, spec->value_type, NULL);

    /* A fresh object's value, unless the element asks for the spec's
     * default (GST_PARAM_DOC_SHOW_DEFAULT) or it cannot be read. */
    g_value_init(&value, spec->value_type);
    if (instance && (spec->flags & G_PARAM_READABLE) && !(spec->flags & GST_PARAM_DOC_SHOW_DEFAULT))
      g_object_get_property(instance, spec->name, &value);
    else
      g_param_value_set_default(spec, &value);
    describe_value(p, spec, &value);
    g_value_unset(&value);
  }
  g_free(specs);
}

static void describe_signals(Scan* scan, Node* node, GType type) {
  guint n_ids, i, j;
  guint* ids = g_signal_list_ids(type, &n_ids);
  Node* signals = NULL;

  for (i = 0; i < n_ids; i++) {
    GSignalQuery q;
    Node *sig, *args;
    GType ret;

    g_signal_query(ids[i], &q);
    if (!signals)
      signals = obj_set(node, "signals", node_object());
    sig = obj_set(signals, q.signal_name, node_object());

    args = obj_set(sig, "args", node_array());
    for (j = 0; j < q.n_params; j++) {
      const GType ptype = q.param_types[j] & ~G_SIGNAL_TYPE_STATIC_SCOPE;
      Node* arg = arr_add(args, node_object());

      obj_take_string(arg, "name", g_strdup_printf("arg%u", j));
      obj_set_string(arg, "type", g_type_name(ptype));
      add_other_type(scan, ptype, NULL);
    }
    ret = q.return_type & ~G_SIGNAL_TYPE_STATIC_SCOPE;
    obj_set_string(sig, "return-type", g_type_name(ret));
    add_other_type(scan, ret, NULL);

    if (q.signal_flags & G_SIGNAL_RUN_FIRST)
      obj_set_string(sig, "when", "first");
    else if (q.signal_flags & G_SIGNAL_RUN_LAST)
      obj_set_string(sig, "when", "last");
    else if (q.signal_flags & G_SIGNAL_RUN_CLEANUP)
      obj_set_string(sig, "when", "cleanup");
    if (q.signal_flags & G_SIGNAL_NO_RECURSE)
      obj_set_bool(sig, "no-recurse", TRUE);
    if (q.signal_flags & G_SIGNAL_DETAILED)
      obj_set_bool(sig, "detailed", TRUE);
    if (q.signal_flags & G_SIGNAL_ACTION)
      obj_set_bool(sig, "action", TRUE);
    if (q.signal_flags & G_SIGNAL_NO_HOOKS)
      obj_set_bool(sig, "no-hooks", TRUE);
  }
  g_free(ids);
}

/* hierarchy, interfaces, properties and signals of @type */
static void describe_object(Scan* scan, Node* node, GObject* instance, GType type) {
  Node* hierarchy = obj_set(node, "hierarchy", node_array());
  GType t, *ifaces;
  guint n_ifaces, i;

  for (t = type; t; t = g_type_parent(t)) {
    arr_add(hierarchy, node_string(g_type_name(t)));
    if (t != type)
      add_other_type(scan, t, instance);
  }

  ifaces = g_type_interfaces(type, &n_ifaces);
  if (n_ifaces) {
    Node* list = obj_set(node, "interfaces", node_array());

    for (i = 0; i < n_ifaces; i++) {
      arr_add(list, node_string(g_type_name(ifaces[i])));
      add_other_type(scan, ifaces[i], instance);
    }
  }
  g_free(ifaces);

  describe_properties(scan, node, instance, type);
  describe_signals(scan, node, type);
}

static gboolean append_caps_field(GQuark field, const GValue* value, gpointer user_data) {
  GString* out = user_data;
  const gchar* name = g_quark_to_string(field);
  gchar* str = gst_value_serialize(value);

  /* GStreamer's docs show formats without their type annotation. */
  if (!strcmp(name, "format")) {
    gchar** parts = g_strsplit(str, "(string)", -1);
    g_free(str);
    str = g_strjoinv("", parts);
    g_strfreev(parts);
  }
  g_string_append_printf(out, "%15s: %s\n", name, str);
  g_free(str);
  return TRUE;
}

static gchar* caps_text(const GstCaps* caps) {
  GString* out;
  guint i;

  if (gst_caps_is_any(caps))
    return g_strdup("ANY");
  if (gst_caps_is_empty(caps))
    return g_strdup("EMPTY");

  out = g_string_new(NULL);
  for (i = 0; i < gst_caps_get_size(caps); i++) {
    GstStructure* s = gst_caps_get_structure(caps, i);
    GstCapsFeatures* f = gst_caps_get_features(caps, i);

    if (f && (gst_caps_features_is_any(f) ||
              !gst_caps_features_is_equal(f, GST_CAPS_FEATURES_MEMORY_SYSTEM_MEMORY))) {
      gchar* fs = gst_caps_features_to_string(f);
      g_string_append_printf(out, "%s%s(%s):\n", i ? "\n" : "", gst_structure_get_name(s), fs);
      g_free(fs);
    } else {
      g_string_append_printf(out, "%s:\n", gst_structure_get_name(s));
    }
    gst_structure_foreach(s, append_caps_field, out);
  }
  return g_string_free(out, FALSE);
}

static void describe_pad_templates(Scan* scan, Node* node, GstElement* element,
                                   GstElementFactory* factory) {
  const GList* l;
  Node* templates = NULL;

  for (l = gst_element_factory_get_static_pad_templates(factory); l; l = l->next) {
    GstStaticPadTemplate* st = l->data;
    GstPadTemplate* tmpl =
        gst_element_class_get_pad_template(GST_ELEMENT_GET_CLASS(element), st->name_template);
    GstCaps* caps;
    Node* t;
    GType pad_type;

    if (!templates)
      templates = obj_set(node, "pad-templates", node_object());
    t = obj_set(templates, st->name_template, node_object());

    caps = tmpl ? gst_pad_template_get_documentation_caps(tmpl)
                : gst_static_caps_get(&st->static_caps);
    obj_take_string(t, "caps", caps_text(caps));
    gst_caps_unref(caps);
    obj_set_string(t, "direction",
                   st->direction == GST_PAD_SRC    ? "src"
                   : st->direction == GST_PAD_SINK ? "sink"
                                                   : "unknown");
    obj_set_string(t, "presence",
                   st->presence == GST_PAD_ALWAYS      ? "always"
                   : st->presence == GST_PAD_SOMETIMES ? "sometimes"
                   : st->presence == GST_PAD_REQUEST   ? "request"
                                                       : "unknown");

    pad_type = tmpl ? GST_PAD_TEMPLATE_GTYPE(tmpl) : G_TYPE_NONE;
    if (pad_type != G_TYPE_NONE && pad_type != GST_TYPE_PAD) {
      obj_set_string(t, "type", g_type_name(pad_type));
      add_other_type(scan, pad_type, NULL);
    }
  }
}

/* "none", "primary", or the nearest named rank plus or minus an offset */
static gchar* rank_name(gint rank) {
  static const gint ranks[] = {GST_RANK_NONE, GST_RANK_MARGINAL, GST_RANK_SECONDARY,
                               GST_RANK_PRIMARY};
  static const gchar* names[] = {"none", "marginal", "secondary", "primary"};
  guint i, best = 0;

  for (i = 0; i < G_N_ELEMENTS(ranks); i++) {
    if (rank == ranks[i])
      return g_strdup(names[i]);
    if (abs(rank - ranks[i]) < abs(rank - ranks[best]))
      best = i;
  }
  return g_strdup_printf("%s %c %d", names[best], rank > ranks[best] ? '+' : '-',
                         abs(rank - ranks[best]));
}

static gboolean describe_element(Scan* scan, Node* elements, GstElementFactory* factory) {
  GstElement* element = gst_element_factory_create(factory, NULL);
  Node* node;
  gchar **keys, **k;

  if (!element) {
    g_printerr("could not create element %s\n", GST_OBJECT_NAME(factory));
    return FALSE;
  }
  gst_object_ref_sink(element);

  node = obj_set(elements, GST_OBJECT_NAME(factory), node_object());
  obj_take_string(node, "rank",
                  rank_name(gst_plugin_feature_get_rank(GST_PLUGIN_FEATURE(factory))));
  keys = gst_element_factory_get_metadata_keys(factory);
  for (k = keys; k && *k; k++)
    obj_set_string(node, *k, gst_element_factory_get_metadata(factory, *k));
  g_strfreev(keys);

  describe_object(scan, node, G_OBJECT(element), G_OBJECT_TYPE(element));
  describe_pad_templates(scan, node, element, factory);

  gst_object_unref(element);
  return TRUE;
}

static gboolean describe_plugin(Node* root, const gchar* path) {
  GError* error = NULL;
  GstPlugin* plugin = gst_plugin_load_file(path, &error);
  Scan scan;
  Node *node, *elements, *tracers;
  gchar *base, *dot, *filename;
  GList *features, *l;
  gboolean ok = TRUE;

  if (!plugin) {
    g_printerr("%s could not be loaded as a GStreamer plugin: %s\n", path,
               error ? error->message : "no reason given");
    g_clear_error(&error);
    return FALSE;
  }

  node = obj_set(root, gst_plugin_get_name(plugin), node_object());
  obj_set_string(node, "description", gst_plugin_get_description(plugin));
  /* The library's base name without "lib" and extension, so the file is
   * the same whatever the build directory. */
  base = g_path_get_basename(path);
  if ((dot = strchr(base, '.')))
    *dot = '\0';
  filename = g_str_has_prefix(base, "lib") ? base + 3 : base;
  obj_set_string(node, "filename", filename);
  g_free(base);
  obj_set_string(node, "license", gst_plugin_get_license(plugin));
  obj_set_string(node, "package", gst_plugin_get_package(plugin));
  obj_set_string(node, "source", gst_plugin_get_source(plugin));
  obj_set_string(node, "url", gst_plugin_get_origin(plugin));

  elements = obj_set(node, "elements", node_object());
  tracers = obj_set(node, "tracers", node_object());
  scan.other_types = obj_set(node, "other-types", node_object());

  features =
      gst_registry_get_feature_list_by_plugin(gst_registry_get(), gst_plugin_get_name(plugin));
  for (l = features; l; l = l->next) {
    if (GST_IS_ELEMENT_FACTORY(l->data))
      ok &= describe_element(&scan, elements, l->data);
    else if (GST_IS_TRACER_FACTORY(l->data))
      obj_set(tracers, GST_OBJECT_NAME(l->data), node_object());
  }
  gst_plugin_feature_list_free(features);
  gst_object_unref(plugin);
  return ok;
}

int main(int argc, char** argv) {
  gchar *tmpdir, *registry;
  Node* root;
  GString* out;
  GError* error = NULL;
  int i, rc = 0;

  if (argc < 3) {
    g_printerr("usage: %s OUTPUT PLUGIN-FILE...\n", argv[0]);
    return 2;
  }

  /* A private, empty registry: only the named files are loaded, whatever
   * GST_PLUGIN_PATH or the user's registry cache hold. */
  tmpdir = g_dir_make_tmp("plugins-cache-XXXXXX", &error);
  if (!tmpdir) {
    g_printerr("%s\n", error->message);
    g_clear_error(&error);
    return 1;
  }
  registry = g_build_filename(tmpdir, "registry.bin", NULL);
  g_setenv("GST_REGISTRY", registry, TRUE);
  g_setenv("GST_PLUGIN_SYSTEM_PATH_1_0", "", TRUE);
  g_setenv("GST_PLUGIN_PATH_1_0", "", TRUE);
  g_setenv("GST_PLUGIN_PATH", "", TRUE);
  gst_init(NULL, NULL);

  root = node_object();
  for (i = 2; i < argc; i++) {
    if (!describe_plugin(root, argv[i]))
      rc = 1;
  }

  out = g_string_new(NULL);
  write_node(out, root, 0);
  g_string_append_c(out, '\n');
  if (rc == 0) {
    if (!strcmp(argv[1], "-")) {
      fputs(out->str, stdout);
    } else if (!g_file_set_contents(argv[1], out->str, out->len, &error)) {
      g_printerr("%s\n", error->message);
      g_clear_error(&error);
      rc = 1;
    }
  }

  g_string_free(out, TRUE);
  node_free(root);
  gst_deinit();
  g_unlink(registry);
  g_rmdir(tmpdir);
  g_free(registry);
  g_free(tmpdir);
  return rc;
}
