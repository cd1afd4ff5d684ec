/* adaptivequeue: a drop-in queue whose capacity follows load and latency.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * SECTION:element-adaptivequeue
 * @title: adaptivequeue
 *
 * A drop-in replacement for `queue`: the same properties, signals, pads and
 * data flow, with one difference. Its buffer limit, `max-size-buffers`, is
 * resized on every tick (`adaptation-interval`, 500 ms by default) by an
 * adaptive sizing algorithm whose inputs are the system load (CPU and memory
 * from /proc) and the latency measured from buffer timestamps. Low load and
 * low latency grow the capacity towards `max-buffers`; high load or high
 * latency shrink it towards `min-buffers`.
 *
 * Every value a `queue` user sets means what it means on `queue`, at once:
 * `max-size-buffers` 0 is no buffer limit, and a size outside
 * `min-buffers`..`max-buffers` moves the nearer bound to it.
 * `max-size-bytes` and `max-size-time` keep `queue`'s defaults (10 MiB, 1 s)
 * and are hard ceilings over the adaptive count.
 *
 * Threading: like `queue`, the element starts a streaming thread on its
 * source pad. The load is read by one sampler thread per process, shared by
 * every instance; ticks run on the system clock's callback thread. Streaming
 * threads never touch /proc.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 audiotestsrc is-live=true ! opusenc ! adaptivequeue ! opusdec ! autoaudiosink
 * ]|
 * |[
 * gst-launch-1.0 -m audiotestsrc is-live=true ! adaptivequeue min-buffers=2 max-buffers=8
 * adaptation-interval=200000000 ! fakesink sync=true
 * ]|
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstadaptivequeue-handoff.h"

#include <algorithm>
#include <string>
#include <type_traits>

GST_DEBUG_CATEGORY(adaptive_queue_debug);
#define GST_CAT_DEFAULT adaptive_queue_debug

using namespace aq::element;

guint aq::element::signals[LAST_SIGNAL];

/* The element's load scopes are the core's, in the same order. */
static_assert(static_cast<int>(aq::LoadScope::System) == GST_ADAPTIVE_QUEUE_SCOPE_SYSTEM &&
              static_cast<int>(aq::LoadScope::Process) == GST_ADAPTIVE_QUEUE_SCOPE_PROCESS &&
              static_cast<int>(aq::LoadScope::Cgroup) == GST_ADAPTIVE_QUEUE_SCOPE_CGROUP &&
              static_cast<int>(aq::LoadScope::Pressure) == GST_ADAPTIVE_QUEUE_SCOPE_PRESSURE &&
              static_cast<int>(aq::LoadScope::Auto) == GST_ADAPTIVE_QUEUE_SCOPE_AUTO);

/* Ranges of the time-valued adaptation properties. */
constexpr guint64 MIN_ADAPTATION_INTERVAL = 10 * GST_MSECOND;
constexpr guint64 MAX_ADAPTATION_INTERVAL = 60 * GST_SECOND;
constexpr guint64 MAX_LATENCY_SETTING = 3600 * GST_SECOND;

#define gst_adaptive_queue_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE(GstAdaptiveQueue, gst_adaptive_queue, GST_TYPE_ELEMENT,
                        GST_DEBUG_CATEGORY_INIT(adaptive_queue_debug, "adaptivequeue", 0,
                                                "adaptive queue"));
GST_ELEMENT_REGISTER_DEFINE(adaptivequeue, "adaptivequeue", GST_RANK_NONE, GST_TYPE_ADAPTIVE_QUEUE);

GType gst_adaptive_queue_leaky_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {GST_ADAPTIVE_QUEUE_NO_LEAK, "Not Leaky", "no"},
      {GST_ADAPTIVE_QUEUE_LEAK_UPSTREAM, "Leaky on upstream (new buffers)", "upstream"},
      {GST_ADAPTIVE_QUEUE_LEAK_DOWNSTREAM, "Leaky on downstream (old buffers)", "downstream"},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter(&type))
    g_once_init_leave(&type, g_enum_register_static("GstAdaptiveQueueLeaky", values));
  return type;
}

GType gst_adaptive_queue_load_scope_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {GST_ADAPTIVE_QUEUE_SCOPE_SYSTEM,
       "The CPUs this process may run on (/proc/stat), and MemAvailable", "system"},
      {GST_ADAPTIVE_QUEUE_SCOPE_PROCESS,
       "This process (/proc/self/stat, RSS), as a share of its CPUs and of "
       "MemTotal",
       "process"},
      {GST_ADAPTIVE_QUEUE_SCOPE_CGROUP,
       "This process's cgroup, v1 or v2, against its CPU quota and memory "
       "limit",
       "cgroup"},
      {GST_ADAPTIVE_QUEUE_SCOPE_PRESSURE,
       "Pressure stall information (PSI some avg10), the cgroup's own when "
       "it has it",
       "pressure"},
      {GST_ADAPTIVE_QUEUE_SCOPE_AUTO,
       "cgroup when the process's cgroup has a CPU quota or memory limit, "
       "else system",
       "auto"},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter(&type))
    g_once_init_leave(&type, g_enum_register_static("GstAdaptiveQueueLoadScope", values));
  return type;
}

GType gst_adaptive_queue_latency_source_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {GST_ADAPTIVE_QUEUE_LATENCY_AUTO,
       "Clock latency beyond upstream's minimum latency when a clock runs, "
       "else queued latency",
       "auto"},
      {GST_ADAPTIVE_QUEUE_LATENCY_QUEUED, "Time level of the queue (sink minus src running time)",
       "queued"},
      {GST_ADAPTIVE_QUEUE_LATENCY_CLOCK,
       "Clock running time minus buffer running time at output, upstream's "
       "latency included",
       "clock"},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter(&type))
    g_once_init_leave(&type, g_enum_register_static("GstAdaptiveQueueLatencySource", values));
  return type;
}

/* ---- properties ---- */

/* The policy ticks run on: the bounds as set, moved to an explicit
 * max-size-buffers that lies outside them. 0 sets no size, so no bound. */
static aq::PolicyConfig effective_policy_olocked(const Settings& s) {
  aq::PolicyConfig config = s.policy;
  if (s.explicit_max_size_buffers && *s.explicit_max_size_buffers > 0) {
    const guint size = *s.explicit_max_size_buffers;
    config.min_buffers = std::min(config.min_buffers, size);
    config.max_buffers = std::max(config.max_buffers, size);
  }
  return config;
}

/* An explicit max-size-buffers bounds an overrun's growth, as it bounds
 * queue; without one, queue's default count does. */
static guint growth_limit_olocked(const Settings& s) {
  if (s.explicit_max_size_buffers && *s.explicit_max_size_buffers > 0)
    return *s.explicit_max_size_buffers;
  return aq::defaults::kGrowthLimitBuffers;
}

/* Posts the configuration problem if it has not reached a bus yet: a
 * property set before the element is in a pipeline has nobody to tell. */
void aq::element::post_config_problem(GstAdaptiveQueue* self) {
  GST_OBJECT_LOCK(self);
  Settings& s = *self->settings;
  std::string problem;
  if (!s.config_problem.empty() && !s.config_problem_posted) {
    GstBus* bus = GST_ELEMENT_BUS(self);
    s.config_problem_posted = bus != nullptr;
    problem = s.config_problem;
  }
  GST_OBJECT_UNLOCK(self);
  if (problem.empty())
    return;
  GST_WARNING_OBJECT(self, "invalid adaptive configuration: %s", problem.c_str());
  GST_ELEMENT_WARNING(self, LIBRARY, SETTINGS,
                      ("Invalid adaptive configuration, keeping the last valid one"),
                      ("%s", problem.c_str()));
}

/* Changes adaptation settings with `change` (object lock held) and
 * validates the configuration they make, once: a valid one becomes the one
 * the queue adapts on, an invalid one a problem to post. `then` runs with
 * the queue lock held and the configuration in place. The tick lock
 * serialises setters with each other and with ticks, so a tick never
 * decides on values being changed. Returns the configuration before and
 * after, as set with an explicit size applied. */
template <class Change, class Then>
static std::pair<aq::PolicyConfig, aq::PolicyConfig> change_config(GstAdaptiveQueue* self,
                                                                   Change change, Then then) {
  tlock(self);
  GST_OBJECT_LOCK(self);
  Settings& s = *self->settings;
  const aq::PolicyConfig before = effective_policy_olocked(s);
  change(s);
  const aq::PolicyConfig after = effective_policy_olocked(s);
  const std::string problem = aq::describe(aq::validate(after));
  const guint growth_limit = growth_limit_olocked(s);
  if (problem != s.config_problem) {
    s.config_problem = problem;
    s.config_problem_posted = false;
  }
  GST_OBJECT_UNLOCK(self);

  qlock(self);
  if (problem.empty())
    self->q->policy = after;
  self->q->growth_limit = growth_limit;
  then(*self->q, problem.empty());
  reserve_for_capacity_qlocked(*self->q);
  qunlock(self);
  tunlock(self);
  post_config_problem(self);
  return {before, after};
}

/* Which of max-size-buffers, min-buffers and max-buffers a value is for. */
enum class Sized { Size, MinBound, MaxBound };

/* Sets max-size-buffers, min-buffers or max-buffers. An explicit
 * max-size-buffers is the capacity at once, as on queue, and moves the
 * nearer bound to it when it lies outside them; a new bound brings the
 * capacity within it. Every value that moves is logged and notified. */
static void set_size_or_bound(GstAdaptiveQueue* self, Sized which, guint value) {
  guint old_size = 0, size = 0;
  const auto [before, after] = change_config(
      self,
      [&](Settings& s) {
        if (which == Sized::Size)
          s.explicit_max_size_buffers = value;
        else if (which == Sized::MinBound)
          s.policy.min_buffers = value;
        else
          s.policy.max_buffers = value;
      },
      [&](QueueState& q, bool valid) {
        old_size = size = q.max.buffers;
        if (which == Sized::Size)
          size = value;
        else if (size > 0 && valid)
          size = std::clamp(size, q.policy.min_buffers, q.policy.max_buffers);
        set_capacity_qlocked(self, size, CapacityCause::Property);
      });

  if (which != Sized::Size && size != old_size) {
    GST_INFO_OBJECT(self,
                    "max-size-buffers %u -> %u to stay within "
                    "min-buffers..max-buffers %u..%u",
                    old_size, size, after.min_buffers, after.max_buffers);
    g_object_notify(G_OBJECT(self), "max-size-buffers");
  }
  if (which != Sized::MinBound && after.min_buffers != before.min_buffers) {
    GST_INFO_OBJECT(self, "min-buffers %u -> %u to follow max-size-buffers", before.min_buffers,
                    after.min_buffers);
    g_object_notify(G_OBJECT(self), "min-buffers");
  }
  if (which != Sized::MaxBound && after.max_buffers != before.max_buffers) {
    GST_INFO_OBJECT(self, "max-buffers %u -> %u to follow max-size-buffers", before.max_buffers,
                    after.max_buffers);
    g_object_notify(G_OBJECT(self), "max-buffers");
  }
}

/* ---- the property table ---- */

/* A field's value in and out of a GValue of the property's type. Times in
 * ns are int64_t in the core and guint64 properties. */
template <class T>
static void to_value(GValue* value, const T& field) {
  if constexpr (std::is_same_v<T, bool>)
    g_value_set_boolean(value, field);
  else if constexpr (std::is_same_v<T, double>)
    g_value_set_double(value, field);
  else if constexpr (std::is_same_v<T, guint>)
    g_value_set_uint(value, field);
  else if constexpr (std::is_same_v<T, std::string>)
    g_value_set_string(value, field.c_str());
  else if constexpr (std::is_enum_v<T>)
    g_value_set_enum(value, static_cast<gint>(field));
  else
    g_value_set_uint64(value, static_cast<guint64>(field));
}

template <class T>
static void from_value(const GValue* value, T& field) {
  if constexpr (std::is_same_v<T, bool>)
    field = g_value_get_boolean(value);
  else if constexpr (std::is_same_v<T, double>)
    field = g_value_get_double(value);
  else if constexpr (std::is_same_v<T, guint>)
    field = g_value_get_uint(value);
  else if constexpr (std::is_same_v<T, std::string>)
    field = g_value_get_string(value) ? g_value_get_string(value) : "";
  else if constexpr (std::is_enum_v<T>)
    field = static_cast<T>(g_value_get_enum(value));
  else
    field = static_cast<T>(g_value_get_uint64(value));
}

using Getter = void (*)(GstAdaptiveQueue* self, GValue* value);
using Setter = void (*)(GstAdaptiveQueue* self, const GValue* value, GParamSpec* pspec);

/* How a property reaches its field; called with the row's lock held. */
struct Access {
  Getter get = nullptr;
  Setter set = nullptr;
};

/* A field of QueueState, or a member of one: qfield<&QueueState::max,
 * &Level::bytes>() is q.max.bytes. */
template <auto... Path>
static constexpr Access qfield() {
  return {[](GstAdaptiveQueue* self, GValue* v) { to_value(v, (*self->q.*....*Path)); },
          [](GstAdaptiveQueue* self, const GValue* v, GParamSpec*) {
            from_value(v, (*self->q.*....*Path));
          }};
}

/* A field of Settings, or a member of one. */
template <auto... Path>
static constexpr Access sfield() {
  return {[](GstAdaptiveQueue* self, GValue* v) { to_value(v, (*self->settings.*....*Path)); },
          [](GstAdaptiveQueue* self, const GValue* v, GParamSpec*) {
            from_value(v, (*self->settings.*....*Path));
          }};
}

/* A min threshold: reads the one in force, as queue does: EOS lifts it to
 * 0 and a flush restores the value set. */
template <auto Part>
static constexpr Access threshold() {
  return {[](GstAdaptiveQueue* self, GValue* v) { to_value(v, self->q->min_threshold.*Part); },
          [](GstAdaptiveQueue* self, const GValue* v, GParamSpec*) {
            QueueState& q = *self->q;
            from_value(v, q.orig_min_threshold.*Part);
            q.min_threshold.*Part = q.orig_min_threshold.*Part;
          }};
}

/* A level, read-only. */
template <auto Part>
static constexpr Access level() {
  return {[](GstAdaptiveQueue* self, GValue* v) { to_value(v, level_of(*self->q).*Part); }};
}

/* max-size-buffers or a bound: read where it is kept, set through the
 * capacity's one path; takes its own locks. */
template <Sized Which>
static constexpr Access sized() {
  return {[](GstAdaptiveQueue* self, GValue* v) {
            if constexpr (Which == Sized::Size) {
              qlock(self);
              to_value(v, self->q->max.buffers);
              qunlock(self);
            } else {
              GST_OBJECT_LOCK(self);
              const aq::PolicyConfig p = effective_policy_olocked(*self->settings);
              GST_OBJECT_UNLOCK(self);
              to_value(v, Which == Sized::MinBound ? p.min_buffers : p.max_buffers);
            }
          },
          [](GstAdaptiveQueue* self, const GValue* v, GParamSpec*) {
            set_size_or_bound(self, Which, g_value_get_uint(v));
          }};
}

/* proc-root or cgroup-root: empty or NULL reads the default. */
template <std::string Settings::*Root>
static constexpr Access root() {
  return {sfield<Root>().get, [](GstAdaptiveQueue* self, const GValue* v, GParamSpec* pspec) {
            const gchar* root = g_value_get_string(v);
            self->settings->*Root =
                root && *root ? root : G_PARAM_SPEC_STRING(pspec)->default_value;
          }};
}

/* A queue limit changed: with leaky=downstream the oldest items go at
 * once, as on queue; either way both sides re-check. Queue lock held. */
static void limits_changed_qlocked(GstAdaptiveQueue* self, const GValue*, GParamSpec*) {
  if (self->q->leaky == GST_ADAPTIVE_QUEUE_LEAK_DOWNSTREAM)
    leak_downstream_qlocked(self);
  wake_all_qlocked(self);
}

static void set_latency_source_qlocked(GstAdaptiveQueue* self, const GValue* v, GParamSpec*) {
  QueueState& q = *self->q;
  auto source = static_cast<GstAdaptiveQueueLatencySource>(g_value_get_enum(v));
  /* Readings from different sources don't average together. */
  if (source != q.latency_source)
    q.latency.reset();
  q.latency_source = source;
}

/* Levels are notified as they change from now on, not as they stand. */
static void notify_levels_changed_qlocked(GstAdaptiveQueue* self, const GValue*, GParamSpec*) {
  self->q->notified_level = level_of(*self->q);
}

static void adaptive_changed_qlocked(GstAdaptiveQueue* self, const GValue*, GParamSpec*) {
  reserve_for_capacity_qlocked(*self->q);
}

static void interval_changed(GstAdaptiveQueue* self, const GValue*, GParamSpec*) {
  reschedule_tick(self);
}

static void root_changed(GstAdaptiveQueue* self, const GValue* v, GParamSpec* pspec) {
  const gchar* root = g_value_get_string(v);
  /* GObject notifies the property itself: say what it now holds. */
  if (!root || !*root)
    GST_INFO_OBJECT(self, "empty %s: reading %s", pspec->name,
                    G_PARAM_SPEC_STRING(pspec)->default_value);
}

/* Which lock guards a property's field, and so how it is read and set:
 * Queue:  QueueState, under the queue lock; both sides re-check after a set.
 * Object: Settings, under the object lock.
 * Config: the adaptation configuration in Settings, read under the object
 *         lock and set through change_config(), which validates it.
 * Own:    the accessors take the locks they need. */
enum class Lock { Queue, Object, Config, Own };

/* A param spec's type, range and default. */
struct Spec {
  GType type;
  guint64 min = 0, max = 0, def = 0; /* uint, uint64, boolean, enum */
  double dmin = 0, dmax = 0, ddef = 0;
  const char* sdef = nullptr;
  GType (*gtype)() = nullptr; /* enum or boxed */
};

static constexpr Spec uint_spec(guint min, guint max, guint def) {
  return {G_TYPE_UINT, min, max, def};
}
static constexpr Spec uint64_spec(guint64 min, guint64 max, guint64 def) {
  return {G_TYPE_UINT64, min, max, def};
}
static constexpr Spec double_spec(double min, double max, double def) {
  return {G_TYPE_DOUBLE, 0, 0, 0, min, max, def};
}
static constexpr Spec bool_spec(bool def) {
  return {G_TYPE_BOOLEAN, 0, 0, def};
}
static constexpr Spec enum_spec(GType (*gtype)(), gint def) {
  return {G_TYPE_ENUM, 0, 0, static_cast<guint64>(def), 0, 0, 0, nullptr, gtype};
}
static constexpr Spec string_spec(const char* def) {
  return {G_TYPE_STRING, 0, 0, 0, 0, 0, 0, def};
}
static constexpr Spec boxed_spec(GType (*gtype)()) {
  return {G_TYPE_BOXED, 0, 0, 0, 0, 0, 0, nullptr, gtype};
}

constexpr GParamFlags RW_PLAYING = static_cast<GParamFlags>(
    G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING);
constexpr GParamFlags RO = static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

/* One property: everything about it but its use. */
struct Property {
  const char* name;
  const char* nick;
  const char* blurb;
  Spec spec;
  GParamFlags flags;
  Lock lock;
  Access access;
  /* After a set: with the queue lock held for a Queue field, else unlocked. */
  Setter changed = nullptr;
};

static void get_current_load_scope(GstAdaptiveQueue* self, GValue* value) {
  g_value_set_enum(value, static_cast<int>(current_load_scope(self)));
}

static void get_stats(GstAdaptiveQueue* self, GValue* value) {
  g_value_take_boxed(value, build_stats(self));
}

/* Every property, in the order of their ids (from 1). Blurbs state the
 * unit, range and default. */
static const Property PROPERTIES[] = {
    /* queue's properties, same names, types, ranges and meaning */
    {"current-level-buffers", "Current level (buffers)",
     "Number of buffers in the queue (buffers, read-only)", uint_spec(0, G_MAXUINT, 0), RO,
     Lock::Queue, level<&Level::buffers>()},
    {"current-level-bytes", "Current level (bytes)",
     "Amount of data in the queue (bytes, read-only)", uint_spec(0, G_MAXUINT, 0), RO, Lock::Queue,
     level<&Level::bytes>()},
    {"current-level-time", "Current level (ns)",
     "Amount of data in the queue, from sink and src running times (ns, read-only)",
     uint64_spec(0, G_MAXUINT64, 0), RO, Lock::Queue, level<&Level::time>()},
    {"max-size-buffers", "Max. size (buffers)",
     "Max. number of buffers in the queue, 0 = no limit, as on queue; adaptation resizes it every "
     "tick within min-buffers..max-buffers, and past max-buffers for a live upstream that "
     "overruns. A value set outside them moves the nearer bound to it, and bounds that growth "
     "(buffers, 0 - 4294967295, default 16)",
     uint_spec(0, G_MAXUINT, DEFAULT_MAX_SIZE_BUFFERS), RW_PLAYING, Lock::Own,
     sized<Sized::Size>()},
    {"max-size-bytes", "Max. size (bytes)",
     "Max. amount of data in the queue, a hard ceiling over the adaptive count, 0 = no limit "
     "(bytes, 0 - 4294967295, default 10485760)",
     uint_spec(0, G_MAXUINT, DEFAULT_MAX_SIZE_BYTES), RW_PLAYING, Lock::Queue,
     qfield<&QueueState::max, &Level::bytes>(), limits_changed_qlocked},
    {"max-size-time", "Max. size (ns)",
     "Max. amount of data in the queue in time, a hard ceiling over the adaptive count, 0 = no "
     "limit (ns, 0 - 18446744073709551615, default 1000000000 = 1 s)",
     uint64_spec(0, G_MAXUINT64, DEFAULT_MAX_SIZE_TIME), RW_PLAYING, Lock::Queue,
     qfield<&QueueState::max, &Level::time>(), limits_changed_qlocked},
    {"min-threshold-buffers", "Min. threshold (buffers)",
     "Min. number of buffers in the queue to allow reading, 0 = off (buffers, 0 - 4294967295, "
     "default 0)",
     uint_spec(0, G_MAXUINT, DEFAULT_MIN_THRESHOLD_BUFFERS), RW_PLAYING, Lock::Queue,
     threshold<&Level::buffers>()},
    {"min-threshold-bytes", "Min. threshold (bytes)",
     "Min. amount of data in the queue to allow reading, 0 = off (bytes, 0 - 4294967295, default "
     "0)",
     uint_spec(0, G_MAXUINT, DEFAULT_MIN_THRESHOLD_BYTES), RW_PLAYING, Lock::Queue,
     threshold<&Level::bytes>()},
    {"min-threshold-time", "Min. threshold (ns)",
     "Min. amount of data in the queue to allow reading, 0 = off (ns, 0 - 18446744073709551615, "
     "default 0)",
     uint64_spec(0, G_MAXUINT64, DEFAULT_MIN_THRESHOLD_TIME), RW_PLAYING, Lock::Queue,
     threshold<&Level::time>()},
    {"leaky", "Leaky",
     "Where the queue drops buffers when full, and when adaptation shrinks it below its level "
     "(default no)",
     enum_spec(gst_adaptive_queue_leaky_get_type, DEFAULT_LEAKY), RW_PLAYING, Lock::Queue,
     qfield<&QueueState::leaky>()},
    {"silent", "Silent", "Don't emit queue signals (default false)", bool_spec(DEFAULT_SILENT),
     RW_PLAYING, Lock::Queue, qfield<&QueueState::silent>()},
    {"flush-on-eos", "Flush on EOS",
     "Discard all data in the queue when an EOS event is received (default false)",
     bool_spec(DEFAULT_FLUSH_ON_EOS), RW_PLAYING, Lock::Queue, qfield<&QueueState::flush_on_eos>()},
    {"notify-levels", "Notify levels",
     "Emit notify::current-level-buffers, -bytes and -time from the streaming threads as the "
     "levels change, as queue >= 1.26 does; while true every buffer takes the queue lock "
     "(default false)",
     bool_spec(DEFAULT_NOTIFY_LEVELS), RW_PLAYING, Lock::Queue,
     qfield<&QueueState::notify_levels>(), notify_levels_changed_qlocked},
    /* adaptation */
    {"adaptive", "Adaptive",
     "Resize max-size-buffers every tick from load and latency; when false the queue behaves like "
     "a plain queue (default true)",
     bool_spec(DEFAULT_ADAPTIVE), RW_PLAYING, Lock::Queue, qfield<&QueueState::adaptive>(),
     adaptive_changed_qlocked},
    {"min-buffers", "Min. capacity (buffers)",
     "Smallest capacity adaptation may choose; follows a smaller max-size-buffers set explicitly "
     "(buffers, 1 - 4294967295, default 4)",
     uint_spec(1, G_MAXUINT, aq::defaults::kMinBuffers), RW_PLAYING, Lock::Own,
     sized<Sized::MinBound>()},
    {"max-buffers", "Max. capacity (buffers)",
     "Ceiling of JetKVM's step; follows a larger max-size-buffers set explicitly. With a live "
     "upstream a push that finds the queue full grows it past this, up to max-size-buffers when "
     "set, else 200, and max-size-time and max-size-bytes (buffers, 1 - 4294967295, default 32)",
     uint_spec(1, G_MAXUINT, aq::defaults::kMaxBuffers), RW_PLAYING, Lock::Own,
     sized<Sized::MaxBound>()},
    {"cpu-low-threshold", "CPU low threshold",
     "CPU load below which the CPU factor is +1 (grow) (%, 0 - 100, default 20)",
     double_spec(0.0, 100.0, aq::defaults::kCpuLow), RW_PLAYING, Lock::Config,
     sfield<&Settings::policy, &aq::PolicyConfig::cpu_low>()},
    {"cpu-high-threshold", "CPU high threshold",
     "CPU load above which the CPU factor is -1 (shrink) (%, 0 - 100, default 60)",
     double_spec(0.0, 100.0, aq::defaults::kCpuHigh), RW_PLAYING, Lock::Config,
     sfield<&Settings::policy, &aq::PolicyConfig::cpu_high>()},
    {"mem-low-threshold", "Memory low threshold",
     "Memory use below which the memory factor is +1 (grow) (%, 0 - 100, default 35)",
     double_spec(0.0, 100.0, aq::defaults::kMemLow), RW_PLAYING, Lock::Config,
     sfield<&Settings::policy, &aq::PolicyConfig::mem_low>()},
    {"mem-high-threshold", "Memory high threshold",
     "Memory use above which the memory factor is -1 (shrink) (%, 0 - 100, default 75)",
     double_spec(0.0, 100.0, aq::defaults::kMemHigh), RW_PLAYING, Lock::Config,
     sfield<&Settings::policy, &aq::PolicyConfig::mem_high>()},
    {"target-latency", "Target latency",
     "Latency average below which the latency factor is +1 (grow) (ns, 0 - 3600000000000, default "
     "20000000 = 20 ms)",
     uint64_spec(0, MAX_LATENCY_SETTING, aq::defaults::kTargetLatencyNs), RW_PLAYING, Lock::Config,
     sfield<&Settings::policy, &aq::PolicyConfig::target_latency_ns>()},
    {"max-latency", "Max. latency",
     "Latency average above which the latency factor is -1 (shrink) (ns, 0 - 3600000000000, "
     "default 50000000 = 50 ms)",
     uint64_spec(0, MAX_LATENCY_SETTING, aq::defaults::kMaxLatencyNs), RW_PLAYING, Lock::Config,
     sfield<&Settings::policy, &aq::PolicyConfig::max_latency_ns>()},
    {"cpu-weight", "CPU weight",
     "Weight of the CPU factor in the combined factor (0 - 1, default 0.5)",
     double_spec(0.0, 1.0, aq::defaults::kCpuWeight), RW_PLAYING, Lock::Config,
     sfield<&Settings::policy, &aq::PolicyConfig::cpu_weight>()},
    {"mem-weight", "Memory weight",
     "Weight of the memory factor in the combined factor (0 - 1, default 0.3)",
     double_spec(0.0, 1.0, aq::defaults::kMemWeight), RW_PLAYING, Lock::Config,
     sfield<&Settings::policy, &aq::PolicyConfig::mem_weight>()},
    {"latency-weight", "Latency weight",
     "Weight of the latency factor in the combined factor (0 - 1, default 0.2)",
     double_spec(0.0, 1.0, aq::defaults::kLatencyWeight), RW_PLAYING, Lock::Config,
     sfield<&Settings::policy, &aq::PolicyConfig::latency_weight>()},
    {"smoothing", "Smoothing",
     "Fraction of the step towards the target taken per tick; 0 freezes the capacity (0 - 1, "
     "default 0.3)",
     double_spec(0.0, 1.0, aq::defaults::kSmoothing), RW_PLAYING, Lock::Config,
     sfield<&Settings::policy, &aq::PolicyConfig::smoothing>()},
    {"adaptation-interval", "Adaptation interval",
     "Time between ticks, and between reads of /proc; a CPU figure spans the readings that hold "
     "100 USER_HZ ticks, so even 10 ms reads a steady load to about 1 % (ns, 10000000 - "
     "60000000000, default 500000000 = 500 ms)",
     uint64_spec(MIN_ADAPTATION_INTERVAL, MAX_ADAPTATION_INTERVAL, DEFAULT_ADAPTATION_INTERVAL),
     RW_PLAYING, Lock::Object, sfield<&Settings::interval>(), interval_changed},
    {"load-scope", "Load scope",
     "Whose load feeds adaptation; auto picks cgroup in a cgroup with a limit, else system; "
     "current-load-scope tells which (default auto)",
     enum_spec(gst_adaptive_queue_load_scope_get_type, DEFAULT_LOAD_SCOPE), RW_PLAYING,
     Lock::Object, sfield<&Settings::scope>()},
    {"proc-root", "procfs root",
     "Directory the load is read from, e.g. a host /proc mounted elsewhere (path, default "
     "\"/proc\")",
     string_spec(DEFAULT_PROC_ROOT), RW_PLAYING, Lock::Object, root<&Settings::proc_root>(),
     root_changed},
    {"cgroup-root", "cgroup root",
     "Where the cgroup filesystem is mounted, for the cgroup and pressure scopes (path, default "
     "\"/sys/fs/cgroup\")",
     string_spec(DEFAULT_CGROUP_ROOT), RW_PLAYING, Lock::Object, root<&Settings::cgroup_root>(),
     root_changed},
    {"current-load-scope",
     "Current load scope",
     "The load scope read: load-scope, or the one auto picked, from the last reading or, before "
     "one, from the files now (read-only)",
     enum_spec(gst_adaptive_queue_load_scope_get_type, GST_ADAPTIVE_QUEUE_SCOPE_SYSTEM),
     static_cast<GParamFlags>(RO | GST_PARAM_DOC_SHOW_DEFAULT),
     Lock::Own,
     {get_current_load_scope}},
    {"latency-source",
     "Latency source",
     "Which latency reading feeds adaptation: auto is the lateness at output beyond the latency "
     "upstream declares (default auto)",
     enum_spec(gst_adaptive_queue_latency_source_get_type, DEFAULT_LATENCY_SOURCE),
     RW_PLAYING,
     Lock::Queue,
     {qfield<&QueueState::latency_source>().get, set_latency_source_qlocked}},
    {"demand-headroom", "Demand headroom",
     "With a live upstream, the capacity never falls below this times the highest level of the "
     "last demand-window, and a push that finds the queue full grows it at once to this times "
     "(capacity + 1). 0 = off (JetKVM's rule alone); values between 0 and 1 are invalid (0 or 1 - "
     "4, default 1.25)",
     double_spec(0.0, aq::limits::kMaxDemandHeadroom, aq::defaults::kDemandHeadroom), RW_PLAYING,
     Lock::Config, sfield<&Settings::policy, &aq::PolicyConfig::demand_headroom>()},
    {"demand-window", "Demand window",
     "How far back the highest level counts as demand (ns, 100000000 - 600000000000, default "
     "10000000000 = 10 s)",
     uint64_spec(aq::limits::kMinDemandWindowNs, aq::limits::kMaxDemandWindowNs,
                 aq::defaults::kDemandWindowNs),
     RW_PLAYING, Lock::Config, sfield<&Settings::policy, &aq::PolicyConfig::demand_window_ns>()},
    {"trim-period", "Trim period",
     "With leaky=downstream and a live upstream, after this long with the level always above "
     "the recent need (a 95th percentile of each tick's rise, at least 1) and no overrun, drop "
     "the oldest buffers down to it once: latency a consumer at a fixed pace never drains. 0 = "
     "off; 1 - 99999999 are invalid (ns, 0 or 100000000 - 600000000000, default 20000000000 = "
     "20 s)",
     uint64_spec(0, aq::limits::kMaxTrimPeriodNs, aq::defaults::kTrimPeriodNs), RW_PLAYING,
     Lock::Config, sfield<&Settings::policy, &aq::PolicyConfig::trim_period_ns>()},
    {"stats",
     "Statistics",
     "Capacity, demand floor, levels, latency average and the last interval's maximum (ns), load "
     "(%), factors and counters, as an adaptivequeue-stats structure (read-only)",
     boxed_spec(gst_structure_get_type),
     RO,
     Lock::Own,
     {get_stats}},
};

static GParamSpec* make_param_spec(const Property& p) {
  const Spec& s = p.spec;
  switch (s.type) {
    case G_TYPE_UINT:
      return g_param_spec_uint(p.name, p.nick, p.blurb, static_cast<guint>(s.min),
                               static_cast<guint>(s.max), static_cast<guint>(s.def), p.flags);
    case G_TYPE_UINT64:
      return g_param_spec_uint64(p.name, p.nick, p.blurb, s.min, s.max, s.def, p.flags);
    case G_TYPE_DOUBLE:
      return g_param_spec_double(p.name, p.nick, p.blurb, s.dmin, s.dmax, s.ddef, p.flags);
    case G_TYPE_BOOLEAN:
      return g_param_spec_boolean(p.name, p.nick, p.blurb, s.def != 0, p.flags);
    case G_TYPE_ENUM:
      return g_param_spec_enum(p.name, p.nick, p.blurb, s.gtype(), static_cast<gint>(s.def),
                               p.flags);
    case G_TYPE_STRING:
      return g_param_spec_string(p.name, p.nick, p.blurb, s.sdef, p.flags);
    default:
      return g_param_spec_boxed(p.name, p.nick, p.blurb, s.gtype(), p.flags);
  }
}

/* The row of a property id, or nullptr. */
static const Property* property_of(guint prop_id) {
  return prop_id >= 1 && prop_id <= G_N_ELEMENTS(PROPERTIES) ? &PROPERTIES[prop_id - 1] : nullptr;
}

static void set_property(GObject* object, guint prop_id, const GValue* value, GParamSpec* pspec) {
  auto* self = GST_ADAPTIVE_QUEUE(object);
  const Property* p = property_of(prop_id);
  if (!p || !p->access.set) {
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
    return;
  }
  switch (p->lock) {
    case Lock::Queue:
      qlock(self);
      p->access.set(self, value, pspec);
      if (p->changed)
        p->changed(self, value, pspec);
      /* Limits or thresholds changed: let both sides re-check. */
      wake_all_qlocked(self);
      qunlock(self);
      return;
    case Lock::Object:
      GST_OBJECT_LOCK(self);
      p->access.set(self, value, pspec);
      GST_OBJECT_UNLOCK(self);
      break;
    case Lock::Config:
      change_config(
          self, [&](Settings&) { p->access.set(self, value, pspec); }, [](QueueState&, bool) {});
      break;
    case Lock::Own:
      p->access.set(self, value, pspec);
      break;
  }
  if (p->changed)
    p->changed(self, value, pspec);
}

static void get_property(GObject* object, guint prop_id, GValue* value, GParamSpec* pspec) {
  auto* self = GST_ADAPTIVE_QUEUE(object);
  const Property* p = property_of(prop_id);
  if (!p) {
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
    return;
  }
  switch (p->lock) {
    case Lock::Queue:
      qlock(self);
      p->access.get(self, value);
      qunlock(self);
      break;
    case Lock::Object:
    case Lock::Config:
      GST_OBJECT_LOCK(self);
      p->access.get(self, value);
      GST_OBJECT_UNLOCK(self);
      break;
    case Lock::Own:
      p->access.get(self, value);
      break;
  }
}

/* ---- element ---- */

static gboolean set_clock(GstElement* element, GstClock* clock) {
  auto* self = GST_ADAPTIVE_QUEUE(element);
  qlock(self);
  gst_object_replace((GstObject**)&self->q->clock, (GstObject*)clock);
  qunlock(self);
  return GST_ELEMENT_CLASS(parent_class)->set_clock(element, clock);
}

static GstStateChangeReturn change_state(GstElement* element, GstStateChange transition) {
  auto* self = GST_ADAPTIVE_QUEUE(element);

  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED) {
    qlock(self);
    self->q->latency.reset();
    self->q->trace.start(0);
    qunlock(self);
    start_ticks(self);
  }

  if (transition == GST_STATE_CHANGE_PLAYING_TO_PAUSED) {
    qlock(self);
    self->q->playing_base_time = GST_CLOCK_TIME_NONE;
    qunlock(self);
  }

  GstStateChangeReturn ret = GST_ELEMENT_CLASS(parent_class)->change_state(element, transition);

  /* The parent bin sets the base time before this transition. */
  if (transition == GST_STATE_CHANGE_PAUSED_TO_PLAYING && ret != GST_STATE_CHANGE_FAILURE) {
    const GstClockTime base_time = gst_element_get_base_time(element);
    qlock(self);
    self->q->playing_base_time = base_time;
    qunlock(self);
  }

  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY ||
      (transition == GST_STATE_CHANGE_READY_TO_PAUSED && ret == GST_STATE_CHANGE_FAILURE))
    stop_ticks(self);
  return ret;
}

static void gst_adaptive_queue_init(GstAdaptiveQueue* self) {
  g_mutex_init(&self->qlock);
  g_cond_init(&self->item_add);
  g_cond_init(&self->item_del);
  g_cond_init(&self->query_handled);
  g_mutex_init(&self->tick_lock);
  self->settings = new Settings();
  self->q = new QueueState();
  self->tick = new TickState();
  self->q->orig_min_threshold = self->q->min_threshold =
      Level{DEFAULT_MIN_THRESHOLD_BUFFERS, DEFAULT_MIN_THRESHOLD_BYTES, DEFAULT_MIN_THRESHOLD_TIME};
  reserve_for_capacity_qlocked(*self->q);
  gst_segment_init(&self->q->sink_segment, GST_FORMAT_TIME);
  gst_segment_init(&self->q->src_segment, GST_FORMAT_TIME);
  reset_running_times(*self->q);
  add_pads(self);
}

static void finalize(GObject* object) {
  auto* self = GST_ADAPTIVE_QUEUE(object);
  stop_ticks(self);
  drop_all_items(*self->q);
  gst_object_replace((GstObject**)&self->q->clock, nullptr);
  delete self->tick;
  delete self->q;
  delete self->settings;
  g_mutex_clear(&self->qlock);
  g_cond_clear(&self->item_add);
  g_cond_clear(&self->item_del);
  g_cond_clear(&self->query_handled);
  g_mutex_clear(&self->tick_lock);
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_adaptive_queue_class_init(GstAdaptiveQueueClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);

  gobject_class->set_property = set_property;
  gobject_class->get_property = get_property;
  gobject_class->finalize = finalize;

  signals[SIGNAL_UNDERRUN] = g_signal_new("underrun", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_FIRST,
                                          0, nullptr, nullptr, nullptr, G_TYPE_NONE, 0);
  signals[SIGNAL_RUNNING] = g_signal_new("running", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_FIRST, 0,
                                         nullptr, nullptr, nullptr, G_TYPE_NONE, 0);
  signals[SIGNAL_OVERRUN] = g_signal_new("overrun", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_FIRST, 0,
                                         nullptr, nullptr, nullptr, G_TYPE_NONE, 0);
  signals[SIGNAL_PUSHING] = g_signal_new("pushing", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_FIRST, 0,
                                         nullptr, nullptr, nullptr, G_TYPE_NONE, 0);

  for (guint i = 0; i < G_N_ELEMENTS(PROPERTIES); i++)
    g_object_class_install_property(gobject_class, i + 1, make_param_spec(PROPERTIES[i]));

  add_pad_templates(element_class);
  gst_element_class_set_static_metadata(element_class, "Adaptive queue", "Generic",
                                        "Data queue, as queue, whose buffer capacity adapts each "
                                        "tick to CPU and memory load and to latency, never below "
                                        "recent demand from a live source",
                                        "gst-adaptivequeue developers");

  element_class->change_state = change_state;
  element_class->set_clock = set_clock;

  gst_type_mark_as_plugin_api(gst_adaptive_queue_leaky_get_type(),
                              static_cast<GstPluginAPIFlags>(0));
  gst_type_mark_as_plugin_api(gst_adaptive_queue_load_scope_get_type(),
                              static_cast<GstPluginAPIFlags>(0));
  gst_type_mark_as_plugin_api(gst_adaptive_queue_latency_source_get_type(),
                              static_cast<GstPluginAPIFlags>(0));
}