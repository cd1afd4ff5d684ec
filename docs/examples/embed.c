/* Embedding adaptivequeue in a C application.
 *
 * Builds a live audio graph element by element,
 *
 *   audiotestsrc is-live=true ! adaptivequeue ! fakesink sync=true
 *
 * sets adaptivequeue properties given on the command line, watches the bus
 * for errors, warnings, EOS and the element's "adaptivequeue-adaptation"
 * message, and reads its "stats" structure once a second. At the end it
 * sends EOS and waits for it to reach the sink, as an application that
 * shuts down cleanly does.
 *
 *   GST_PLUGIN_PATH=build/gst build/docs/examples/adaptivequeue-embed \
 *       --duration 10 --set max-buffers=24
 *
 * Exits 0 when the run ended with EOS, no error was posted, and every stats
 * read after the first decision had a capacity within
 * min-buffers..max-buffers; with --require-adaptation, at least one
 * adaptation message must also have arrived.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gst/gst.h>
#include <glib-unix.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  GMainLoop* loop;
  GstElement* pipeline;
  GstElement* queue;
  gint64 start_us;
  guint good_reads; /* stats reads with a capacity in bounds */
  guint bad_reads;
  guint adaptations; /* adaptation messages seen */
  gboolean eos;
  gboolean error;
  gboolean stopping;
} App;

static double elapsed(const App* app) {
  return (g_get_monotonic_time() - app->start_us) / 1e6;
}

static void print_adaptation(App* app, const GstStructure* s) {
  guint old_cap = 0, new_cap = 0;
  gdouble cpu = 0, mem = 0, factor = 0;
  gint64 latency = -1;

  gst_structure_get(s, "old-capacity", G_TYPE_UINT, &old_cap, "new-capacity", G_TYPE_UINT, &new_cap,
                    "cpu-percent", G_TYPE_DOUBLE, &cpu, "mem-percent", G_TYPE_DOUBLE, &mem,
                    "latency-average", G_TYPE_INT64, &latency, "combined-factor", G_TYPE_DOUBLE,
                    &factor, NULL);
  app->adaptations++;
  /* latency-average is -1 until a latency sample exists */
  g_print(
      "%6.2f s  adaptation  capacity %u -> %u  (cpu %.1f %%, mem %.1f %%, "
      "latency %.2f ms, factor %+.2f)\n",
      elapsed(app), old_cap, new_cap, cpu, mem, latency < 0 ? 0.0 : latency / 1e6, factor);
}

static gboolean on_bus_message(GstBus* bus, GstMessage* msg, gpointer user_data) {
  App* app = user_data;
  GError* err = NULL;
  gchar* debug = NULL;

  (void)bus;
  switch (GST_MESSAGE_TYPE(msg)) {
    case GST_MESSAGE_ELEMENT:
      if (GST_MESSAGE_SRC(msg) == GST_OBJECT(app->queue) &&
          gst_message_has_name(msg, "adaptivequeue-adaptation"))
        print_adaptation(app, gst_message_get_structure(msg));
      break;
    case GST_MESSAGE_WARNING:
      /* e.g. an invalid configuration or an unreadable proc-root: the
       * element keeps running, so report and carry on */
      gst_message_parse_warning(msg, &err, &debug);
      g_printerr("warning from %s: %s\n", GST_OBJECT_NAME(msg->src), err->message);
      break;
    case GST_MESSAGE_ERROR:
      gst_message_parse_error(msg, &err, &debug);
      g_printerr("error from %s: %s\n%s\n", GST_OBJECT_NAME(msg->src), err->message,
                 debug ? debug : "");
      app->error = TRUE;
      g_main_loop_quit(app->loop);
      break;
    case GST_MESSAGE_EOS:
      g_print("%6.2f s  EOS reached the sink\n", elapsed(app));
      app->eos = TRUE;
      g_main_loop_quit(app->loop);
      break;
    default:
      break;
  }
  g_clear_error(&err);
  g_free(debug);
  return G_SOURCE_CONTINUE;
}

static gboolean read_stats(gpointer user_data) {
  App* app = user_data;
  GstStructure* s = NULL;
  guint min_buffers = 0, max_buffers = 0, capacity = 0, level = 0;
  guint64 adaptations = 0, ticks = 0, skipped = 0, drops = 0;
  gint64 latency = -1;
  gdouble cpu = 0, mem = 0;
  gboolean adaptive = TRUE;

  /* The structure is a copy: the caller owns it. */
  g_object_get(app->queue, "stats", &s, "min-buffers", &min_buffers, "max-buffers", &max_buffers,
               "adaptive", &adaptive, NULL);
  if (!s || !gst_structure_get(s, "capacity", G_TYPE_UINT, &capacity, "current-level-buffers",
                               G_TYPE_UINT, &level, "latency-average", G_TYPE_INT64, &latency,
                               "cpu-percent", G_TYPE_DOUBLE, &cpu, "mem-percent", G_TYPE_DOUBLE,
                               &mem, "adaptations", G_TYPE_UINT64, &adaptations, "ticks",
                               G_TYPE_UINT64, &ticks, "skipped-ticks", G_TYPE_UINT64, &skipped,
                               "drops", G_TYPE_UINT64, &drops, NULL)) {
    g_printerr("stats: missing fields\n");
    app->bad_reads++;
    if (s)
      gst_structure_free(s);
    return G_SOURCE_CONTINUE;
  }
  gst_structure_free(s);

  g_print(
      "%6.2f s  stats       capacity %u, level %u, latency %.2f ms, "
      "cpu %.1f %%, mem %.1f %%, adaptations %" G_GUINT64_FORMAT ", ticks %" G_GUINT64_FORMAT
      " (%" G_GUINT64_FORMAT " skipped), drops %" G_GUINT64_FORMAT "\n",
      elapsed(app), capacity, level, latency < 0 ? 0.0 : latency / 1e6, cpu, mem, adaptations,
      ticks, skipped, drops);

  /* Until a tick has decided (the first needs two load readings), the
   * capacity is whatever was set; after it, adaptation keeps it in bounds. */
  if (ticks > skipped) {
    if (!adaptive || (capacity >= min_buffers && capacity <= max_buffers)) {
      app->good_reads++;
    } else {
      g_printerr("capacity %u is outside min-buffers..max-buffers (%u..%u)\n", capacity,
                 min_buffers, max_buffers);
      app->bad_reads++;
    }
  }
  return G_SOURCE_CONTINUE;
}

static gboolean eos_timeout(gpointer user_data) {
  App* app = user_data;

  g_printerr("EOS did not reach the sink within 5 s\n");
  app->error = TRUE;
  g_main_loop_quit(app->loop);
  return G_SOURCE_REMOVE;
}

/* Ends the run the way an application should: EOS from the source, then
 * wait for it on the bus. */
static gboolean stop(gpointer user_data) {
  App* app = user_data;

  if (!app->stopping) {
    app->stopping = TRUE;
    gst_element_send_event(app->pipeline, gst_event_new_eos());
    g_timeout_add_seconds(5, eos_timeout, app);
  }
  return G_SOURCE_REMOVE;
}

static gboolean on_sigint(gpointer user_data) {
  stop(user_data);
  return G_SOURCE_CONTINUE;
}

/* Sets each PROPERTY=VALUE on the queue, parsed as gst-launch parses
 * them: numbers, booleans, enum nicks. */
static gboolean apply_settings(GstElement* queue, GPtrArray* settings) {
  guint i;

  for (i = 0; i < settings->len; i++) {
    const gchar* setting = g_ptr_array_index(settings, i);
    gchar** kv = g_strsplit(setting, "=", 2);
    gboolean ok = kv[0] && kv[1] && g_object_class_find_property(G_OBJECT_GET_CLASS(queue), kv[0]);

    if (ok)
      gst_util_set_object_arg(G_OBJECT(queue), kv[0], kv[1]);
    else
      g_printerr(
          "--set %s: expected PROPERTY=VALUE with an adaptivequeue "
          "property\n",
          setting);
    g_strfreev(kv);
    if (!ok)
      return FALSE;
  }
  return TRUE;
}

int main(int argc, char** argv) {
  App app = {0};
  GstElement *src, *sink;
  GstBus* bus;
  guint bus_watch;
  GPtrArray* settings = g_ptr_array_new();
  double duration = 10;
  gboolean require_adaptation = FALSE;
  int i, rc = 0;

  gst_init(&argc, &argv);

  for (i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--duration") && i + 1 < argc) {
      duration = g_ascii_strtod(argv[++i], NULL);
    } else if (!strcmp(argv[i], "--set") && i + 1 < argc) {
      g_ptr_array_add(settings, argv[++i]);
    } else if (!strcmp(argv[i], "--require-adaptation")) {
      require_adaptation = TRUE;
    } else {
      duration = -1;
      break;
    }
  }
  if (duration <= 0) {
    g_printerr(
        "usage: %s [--duration SECONDS] [--set PROPERTY=VALUE]... "
        "[--require-adaptation]\n",
        argv[0]);
    g_ptr_array_unref(settings);
    return 2;
  }

  /* gst_element_factory_make returns NULL when no plugin provides the
   * element: the commonest setup mistake, so say what to do. (Exiting at
   * once, the process need not free what it made.) */
  app.queue = gst_element_factory_make("adaptivequeue", "queue");
  if (!app.queue) {
    g_printerr(
        "no adaptivequeue element: point GST_PLUGIN_PATH at the "
        "build's gst/ directory, or install the plugin\n");
    return 1;
  }
  src = gst_element_factory_make("audiotestsrc", NULL);
  sink = gst_element_factory_make("fakesink", NULL);
  if (!src || !sink) {
    g_printerr(
        "audiotestsrc and fakesink are needed "
        "(gstreamer1.0-plugins-base)\n");
    return 1;
  }
  /* The bin owns the elements: one unref of the pipeline frees them all. */
  app.pipeline = gst_pipeline_new("embed");
  gst_bin_add_many(GST_BIN(app.pipeline), src, app.queue, sink, NULL);

  /* A live source with 10 ms buffers, and a sink that plays in real time. */
  g_object_set(src, "is-live", TRUE, "samplesperbuffer", 441, NULL);
  g_object_set(sink, "sync", TRUE, NULL);
  /* Ticks every 250 ms instead of 500, so a short run shows a few. */
  g_object_set(app.queue, "adaptation-interval", 250 * GST_MSECOND, NULL);
  if (!apply_settings(app.queue, settings)) {
    rc = 2;
    goto out;
  }
  if (!gst_element_link_many(src, app.queue, sink, NULL)) {
    g_printerr("could not link audiotestsrc ! adaptivequeue ! fakesink\n");
    rc = 1;
    goto out;
  }

  app.loop = g_main_loop_new(NULL, FALSE);
  bus = gst_element_get_bus(app.pipeline);
  bus_watch = gst_bus_add_watch(bus, on_bus_message, &app);
  gst_object_unref(bus);

  if (gst_element_set_state(app.pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    g_printerr("the pipeline refused to start\n");
    rc = 1;
  } else {
    app.start_us = g_get_monotonic_time();
    g_timeout_add(1000, read_stats, &app);
    g_timeout_add((guint)(duration * 1000), stop, &app);
    g_unix_signal_add(SIGINT, on_sigint, &app);
    g_main_loop_run(app.loop);
    read_stats(&app);
  }
  gst_element_set_state(app.pipeline, GST_STATE_NULL);
  g_source_remove(bus_watch);
  g_main_loop_unref(app.loop);

  g_print(
      "summary: %u adaptation messages, %u stats reads in bounds, "
      "%u out of bounds\n",
      app.adaptations, app.good_reads, app.bad_reads);
  if (rc == 0) {
    if (app.error || !app.eos) {
      rc = 1;
    } else if (app.bad_reads > 0) {
      rc = 1;
    } else if (app.good_reads == 0) {
      g_printerr(
          "no stats read after a decision: the run was too short, or "
          "no load sample could be read (see the warnings above)\n");
      rc = 1;
    } else if (require_adaptation && app.adaptations == 0) {
      g_printerr("no adaptation message arrived\n");
      rc = 1;
    }
  }

out:
  gst_object_unref(app.pipeline);
  g_ptr_array_unref(settings);
  gst_deinit();
  return rc;
}
