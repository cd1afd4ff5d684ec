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

#include "gstadaptivequeue-private.h"

#include <algorithm>

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

enum Property {
  PROP_0,
  PROP_CURRENT_LEVEL_BUFFERS,
  PROP_CURRENT_LEVEL_BYTES,
  PROP_CURRENT_LEVEL_TIME,
  PROP_MAX_SIZE_BUFFERS,
  PROP_MAX_SIZE_BYTES,
  PROP_MAX_SIZE_TIME,
  PROP_MIN_THRESHOLD_BUFFERS,
  PROP_MIN_THRESHOLD_BYTES,
  PROP_MIN_THRESHOLD_TIME,
  PROP_LEAKY,
  PROP_SILENT,
  PROP_FLUSH_ON_EOS,
  PROP_ADAPTIVE,
  PROP_MIN_BUFFERS,
  PROP_MAX_BUFFERS,
  PROP_CPU_LOW_THRESHOLD,
  PROP_CPU_HIGH_THRESHOLD,
  PROP_MEM_LOW_THRESHOLD,
  PROP_MEM_HIGH_THRESHOLD,
  PROP_TARGET_LATENCY,
  PROP_MAX_LATENCY,
  PROP_CPU_WEIGHT,
  PROP_MEM_WEIGHT,
  PROP_LATENCY_WEIGHT,
  PROP_SMOOTHING,
  PROP_ADAPTATION_INTERVAL,
  PROP_LOAD_SCOPE,
  PROP_PROC_ROOT,
  PROP_CGROUP_ROOT,
  PROP_CURRENT_LOAD_SCOPE,
  PROP_LATENCY_SOURCE,
  PROP_DEMAND_HEADROOM,
  PROP_DEMAND_WINDOW,
  PROP_TRIM_PERIOD,
  PROP_STATS,
};

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
static aq::PolicyConfig effective_policy(const Settings& s) {
  aq::PolicyConfig config = s.policy;
  if (s.explicit_max_size_buffers && *s.explicit_max_size_buffers > 0) {
    const guint size = *s.explicit_max_size_buffers;
    config.min_buffers = std::min(config.min_buffers, size);
    config.max_buffers = std::max(config.max_buffers, size);
  }
  return config;
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
  const aq::PolicyConfig before = effective_policy(s);
  change(s);
  const aq::PolicyConfig after = effective_policy(s);
  const std::string problem = aq::describe(aq::validate(after));
  if (problem != s.config_problem) {
    s.config_problem = problem;
    s.config_problem_posted = false;
  }
  GST_OBJECT_UNLOCK(self);

  qlock(self);
  if (problem.empty())
    self->q->policy = after;
  then(*self->q, problem.empty());
  reserve_for_capacity(*self->q);
  qunlock(self);
  tunlock(self);
  post_config_problem(self);
  return {before, after};
}

/* Sets max-size-buffers, min-buffers or max-buffers. An explicit
 * max-size-buffers is the capacity at once, as on queue, and moves the
 * nearer bound to it when it lies outside them; a new bound brings the
 * capacity within it. Every value that moves is logged and notified. */
static void set_size_or_bound(GstAdaptiveQueue* self, guint prop_id, guint value) {
  guint old_size = 0, size = 0;
  const auto [before, after] = change_config(
      self,
      [&](Settings& s) {
        if (prop_id == PROP_MAX_SIZE_BUFFERS)
          s.explicit_max_size_buffers = value;
        else if (prop_id == PROP_MIN_BUFFERS)
          s.policy.min_buffers = value;
        else
          s.policy.max_buffers = value;
      },
      [&](QueueState& q, bool valid) {
        old_size = size = q.max.buffers;
        if (prop_id == PROP_MAX_SIZE_BUFFERS)
          size = value;
        else if (size > 0 && valid)
          size = std::clamp(size, q.policy.min_buffers, q.policy.max_buffers);
        q.max.buffers = size;
        if (size > 0 && size < old_size && q.leaky == GST_ADAPTIVE_QUEUE_LEAK_DOWNSTREAM)
          leak_downstream_qlocked(self);
        wake_all_qlocked(self);
      });

  if (prop_id != PROP_MAX_SIZE_BUFFERS && size != old_size) {
    GST_INFO_OBJECT(self,
                    "max-size-buffers %u -> %u to stay within "
                    "min-buffers..max-buffers %u..%u",
                    old_size, size, after.min_buffers, after.max_buffers);
    g_object_notify(G_OBJECT(self), "max-size-buffers");
  }
  if (prop_id != PROP_MIN_BUFFERS && after.min_buffers != before.min_buffers) {
    GST_INFO_OBJECT(self, "min-buffers %u -> %u to follow max-size-buffers", before.min_buffers,
                    after.min_buffers);
    g_object_notify(G_OBJECT(self), "min-buffers");
  }
  if (prop_id != PROP_MAX_BUFFERS && after.max_buffers != before.max_buffers) {
    GST_INFO_OBJECT(self, "max-buffers %u -> %u to follow max-size-buffers", before.max_buffers,
                    after.max_buffers);
    g_object_notify(G_OBJECT(self), "max-buffers");
  }
}

/* Sets one field of the adaptation configuration. */
static void set_policy_field(GstAdaptiveQueue* self, guint prop_id, const GValue* value) {
  change_config(
      self,
      [&](Settings& s) {
        aq::PolicyConfig& p = s.policy;
        switch (prop_id) {
          case PROP_CPU_LOW_THRESHOLD:
            p.cpu_low = g_value_get_double(value);
            break;
          case PROP_CPU_HIGH_THRESHOLD:
            p.cpu_high = g_value_get_double(value);
            break;
          case PROP_MEM_LOW_THRESHOLD:
            p.mem_low = g_value_get_double(value);
            break;
          case PROP_MEM_HIGH_THRESHOLD:
            p.mem_high = g_value_get_double(value);
            break;
          case PROP_TARGET_LATENCY:
            p.target_latency_ns = static_cast<int64_t>(g_value_get_uint64(value));
            break;
          case PROP_MAX_LATENCY:
            p.max_latency_ns = static_cast<int64_t>(g_value_get_uint64(value));
            break;
          case PROP_CPU_WEIGHT:
            p.cpu_weight = g_value_get_double(value);
            break;
          case PROP_MEM_WEIGHT:
            p.mem_weight = g_value_get_double(value);
            break;
          case PROP_LATENCY_WEIGHT:
            p.latency_weight = g_value_get_double(value);
            break;
          case PROP_SMOOTHING:
            p.smoothing = g_value_get_double(value);
            break;
          case PROP_DEMAND_HEADROOM:
            p.demand_headroom = g_value_get_double(value);
            break;
          case PROP_DEMAND_WINDOW:
            p.demand_window_ns = static_cast<int64_t>(g_value_get_uint64(value));
            break;
          case PROP_TRIM_PERIOD:
            p.trim_period_ns = static_cast<int64_t>(g_value_get_uint64(value));
            break;
        }
      },
      [](QueueState&, bool) {});
}

/* A limit of the queue changed: with leaky=downstream the oldest items go
 * at once, as on queue; either way both sides re-check. Queue lock held. */
static void limits_changed_qlocked(GstAdaptiveQueue* self) {
  if (self->q->leaky == GST_ADAPTIVE_QUEUE_LEAK_DOWNSTREAM)
    leak_downstream_qlocked(self);
  wake_all_qlocked(self);
}

static void set_property(GObject* object, guint prop_id, const GValue* value, GParamSpec* pspec) {
  auto* self = GST_ADAPTIVE_QUEUE(object);
  QueueState& q = *self->q;
  Settings& s = *self->settings;

  switch (prop_id) {
    case PROP_MAX_SIZE_BUFFERS:
    case PROP_MIN_BUFFERS:
    case PROP_MAX_BUFFERS:
      set_size_or_bound(self, prop_id, g_value_get_uint(value));
      break;
    case PROP_CPU_LOW_THRESHOLD:
    case PROP_CPU_HIGH_THRESHOLD:
    case PROP_MEM_LOW_THRESHOLD:
    case PROP_MEM_HIGH_THRESHOLD:
    case PROP_TARGET_LATENCY:
    case PROP_MAX_LATENCY:
    case PROP_CPU_WEIGHT:
    case PROP_MEM_WEIGHT:
    case PROP_LATENCY_WEIGHT:
    case PROP_SMOOTHING:
    case PROP_DEMAND_HEADROOM:
    case PROP_DEMAND_WINDOW:
    case PROP_TRIM_PERIOD:
      set_policy_field(self, prop_id, value);
      break;
    case PROP_MAX_SIZE_BYTES:
    case PROP_MAX_SIZE_TIME:
    case PROP_MIN_THRESHOLD_BUFFERS:
    case PROP_MIN_THRESHOLD_BYTES:
    case PROP_MIN_THRESHOLD_TIME:
    case PROP_LEAKY:
    case PROP_SILENT:
    case PROP_FLUSH_ON_EOS:
    case PROP_LATENCY_SOURCE:
    case PROP_ADAPTIVE:
      qlock(self);
      switch (prop_id) {
        case PROP_MAX_SIZE_BYTES:
          q.max.bytes = g_value_get_uint(value);
          limits_changed_qlocked(self);
          break;
        case PROP_MAX_SIZE_TIME:
          q.max.time = g_value_get_uint64(value);
          limits_changed_qlocked(self);
          break;
        case PROP_MIN_THRESHOLD_BUFFERS:
          q.min_threshold.buffers = q.orig_min_threshold.buffers = g_value_get_uint(value);
          break;
        case PROP_MIN_THRESHOLD_BYTES:
          q.min_threshold.bytes = q.orig_min_threshold.bytes = g_value_get_uint(value);
          break;
        case PROP_MIN_THRESHOLD_TIME:
          q.min_threshold.time = q.orig_min_threshold.time = g_value_get_uint64(value);
          break;
        case PROP_LEAKY:
          q.leaky = static_cast<GstAdaptiveQueueLeaky>(g_value_get_enum(value));
          break;
        case PROP_SILENT:
          q.silent = g_value_get_boolean(value);
          break;
        case PROP_FLUSH_ON_EOS:
          q.flush_on_eos = g_value_get_boolean(value);
          break;
        case PROP_LATENCY_SOURCE: {
          auto source = static_cast<GstAdaptiveQueueLatencySource>(g_value_get_enum(value));
          /* Readings from different sources don't average together. */
          if (source != q.latency_source)
            q.latency.reset();
          q.latency_source = source;
          break;
        }
        case PROP_ADAPTIVE:
          q.adaptive = g_value_get_boolean(value);
          reserve_for_capacity(q);
          break;
      }
      /* Thresholds changed: let both sides re-check. */
      wake_all_qlocked(self);
      qunlock(self);
      break;
    case PROP_ADAPTATION_INTERVAL:
      GST_OBJECT_LOCK(self);
      s.interval = g_value_get_uint64(value);
      GST_OBJECT_UNLOCK(self);
      reschedule_tick(self);
      break;
    case PROP_LOAD_SCOPE:
      GST_OBJECT_LOCK(self);
      s.scope = static_cast<aq::LoadScope>(g_value_get_enum(value));
      GST_OBJECT_UNLOCK(self);
      break;
    case PROP_PROC_ROOT:
    case PROP_CGROUP_ROOT: {
      const bool proc = prop_id == PROP_PROC_ROOT;
      const char* fallback = proc ? DEFAULT_PROC_ROOT : DEFAULT_CGROUP_ROOT;
      const gchar* root = g_value_get_string(value);
      const bool unset = !root || !*root;
      GST_OBJECT_LOCK(self);
      (proc ? s.proc_root : s.cgroup_root) = unset ? fallback : root;
      GST_OBJECT_UNLOCK(self);
      /* GObject notifies the property itself: say what it now holds. */
      if (unset)
        GST_INFO_OBJECT(self, "empty %s: reading %s", pspec->name, fallback);
      break;
    }
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
}

static void get_property(GObject* object, guint prop_id, GValue* value, GParamSpec* pspec) {
  auto* self = GST_ADAPTIVE_QUEUE(object);
  const QueueState& q = *self->q;
  const Settings& s = *self->settings;

  if (prop_id == PROP_STATS) {
    g_value_take_boxed(value, build_stats(self));
    return;
  }
  if (prop_id == PROP_CURRENT_LOAD_SCOPE) {
    g_value_set_enum(value, static_cast<int>(current_load_scope(self)));
    return;
  }

  switch (prop_id) {
    case PROP_CURRENT_LEVEL_BUFFERS:
    case PROP_CURRENT_LEVEL_BYTES:
    case PROP_CURRENT_LEVEL_TIME:
    case PROP_MAX_SIZE_BUFFERS:
    case PROP_MAX_SIZE_BYTES:
    case PROP_MAX_SIZE_TIME:
    case PROP_MIN_THRESHOLD_BUFFERS:
    case PROP_MIN_THRESHOLD_BYTES:
    case PROP_MIN_THRESHOLD_TIME:
    case PROP_LEAKY:
    case PROP_SILENT:
    case PROP_FLUSH_ON_EOS:
    case PROP_LATENCY_SOURCE:
    case PROP_ADAPTIVE:
      qlock(self);
      switch (prop_id) {
        case PROP_CURRENT_LEVEL_BUFFERS:
          g_value_set_uint(value, level_of(q).buffers);
          break;
        case PROP_CURRENT_LEVEL_BYTES:
          g_value_set_uint(value, level_of(q).bytes);
          break;
        case PROP_CURRENT_LEVEL_TIME:
          g_value_set_uint64(value, level_of(q).time);
          break;
        case PROP_MAX_SIZE_BUFFERS:
          g_value_set_uint(value, q.max.buffers);
          break;
        case PROP_MAX_SIZE_BYTES:
          g_value_set_uint(value, q.max.bytes);
          break;
        case PROP_MAX_SIZE_TIME:
          g_value_set_uint64(value, q.max.time);
          break;
        case PROP_MIN_THRESHOLD_BUFFERS:
          g_value_set_uint(value, q.min_threshold.buffers);
          break;
        case PROP_MIN_THRESHOLD_BYTES:
          g_value_set_uint(value, q.min_threshold.bytes);
          break;
        case PROP_MIN_THRESHOLD_TIME:
          g_value_set_uint64(value, q.min_threshold.time);
          break;
        case PROP_LEAKY:
          g_value_set_enum(value, q.leaky);
          break;
        case PROP_SILENT:
          g_value_set_boolean(value, q.silent);
          break;
        case PROP_FLUSH_ON_EOS:
          g_value_set_boolean(value, q.flush_on_eos);
          break;
        case PROP_LATENCY_SOURCE:
          g_value_set_enum(value, q.latency_source);
          break;
        case PROP_ADAPTIVE:
          g_value_set_boolean(value, q.adaptive);
          break;
      }
      qunlock(self);
      return;
    default:
      break;
  }

  GST_OBJECT_LOCK(self);
  switch (prop_id) {
    case PROP_MIN_BUFFERS:
      g_value_set_uint(value, effective_policy(s).min_buffers);
      break;
    case PROP_MAX_BUFFERS:
      g_value_set_uint(value, effective_policy(s).max_buffers);
      break;
    case PROP_CPU_LOW_THRESHOLD:
      g_value_set_double(value, s.policy.cpu_low);
      break;
    case PROP_CPU_HIGH_THRESHOLD:
      g_value_set_double(value, s.policy.cpu_high);
      break;
    case PROP_MEM_LOW_THRESHOLD:
      g_value_set_double(value, s.policy.mem_low);
      break;
    case PROP_MEM_HIGH_THRESHOLD:
      g_value_set_double(value, s.policy.mem_high);
      break;
    case PROP_TARGET_LATENCY:
      g_value_set_uint64(value, static_cast<guint64>(s.policy.target_latency_ns));
      break;
    case PROP_MAX_LATENCY:
      g_value_set_uint64(value, static_cast<guint64>(s.policy.max_latency_ns));
      break;
    case PROP_CPU_WEIGHT:
      g_value_set_double(value, s.policy.cpu_weight);
      break;
    case PROP_MEM_WEIGHT:
      g_value_set_double(value, s.policy.mem_weight);
      break;
    case PROP_LATENCY_WEIGHT:
      g_value_set_double(value, s.policy.latency_weight);
      break;
    case PROP_SMOOTHING:
      g_value_set_double(value, s.policy.smoothing);
      break;
    case PROP_DEMAND_HEADROOM:
      g_value_set_double(value, s.policy.demand_headroom);
      break;
    case PROP_DEMAND_WINDOW:
      g_value_set_uint64(value, static_cast<guint64>(s.policy.demand_window_ns));
      break;
    case PROP_TRIM_PERIOD:
      g_value_set_uint64(value, static_cast<guint64>(s.policy.trim_period_ns));
      break;
    case PROP_ADAPTATION_INTERVAL:
      g_value_set_uint64(value, s.interval);
      break;
    case PROP_LOAD_SCOPE:
      g_value_set_enum(value, static_cast<int>(s.scope));
      break;
    case PROP_PROC_ROOT:
      g_value_set_string(value, s.proc_root.c_str());
      break;
    case PROP_CGROUP_ROOT:
      g_value_set_string(value, s.cgroup_root.c_str());
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK(self);
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
  self->q->max.buffers = DEFAULT_MAX_SIZE_BUFFERS;
  self->q->max.bytes = DEFAULT_MAX_SIZE_BYTES;
  self->q->max.time = DEFAULT_MAX_SIZE_TIME;
  self->q->orig_min_threshold = self->q->min_threshold =
      Level{DEFAULT_MIN_THRESHOLD_BUFFERS, DEFAULT_MIN_THRESHOLD_BYTES, DEFAULT_MIN_THRESHOLD_TIME};
  reserve_for_capacity(*self->q);
  gst_segment_init(&self->q->sink_segment, GST_FORMAT_TIME);
  gst_segment_init(&self->q->src_segment, GST_FORMAT_TIME);
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

static constexpr GParamFlags RW_PLAYING = static_cast<GParamFlags>(
    G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING);
static constexpr GParamFlags RO =
    static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

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

  /* queue's properties, same names, types, ranges and meaning */
  g_object_class_install_property(
      gobject_class, PROP_CURRENT_LEVEL_BUFFERS,
      g_param_spec_uint("current-level-buffers", "Current level (buffers)",
                        "Number of buffers in the queue (buffers, read-only)", 0, G_MAXUINT, 0,
                        RO));
  g_object_class_install_property(
      gobject_class, PROP_CURRENT_LEVEL_BYTES,
      g_param_spec_uint("current-level-bytes", "Current level (bytes)",
                        "Amount of data in the queue (bytes, read-only)", 0, G_MAXUINT, 0, RO));
  g_object_class_install_property(
      gobject_class, PROP_CURRENT_LEVEL_TIME,
      g_param_spec_uint64("current-level-time", "Current level (ns)",
                          "Amount of data in the queue, from sink and src running times "
                          "(ns, read-only)",
                          0, G_MAXUINT64, 0, RO));
  g_object_class_install_property(
      gobject_class, PROP_MAX_SIZE_BUFFERS,
      g_param_spec_uint("max-size-buffers", "Max. size (buffers)",
                        "Max. number of buffers in the queue, 0 = no limit, as on queue; "
                        "adaptation resizes it every tick within min-buffers..max-buffers. "
                        "A value set outside them moves the nearer bound to it "
                        "(buffers, 0 - 4294967295, default 16)",
                        0, G_MAXUINT, DEFAULT_MAX_SIZE_BUFFERS, RW_PLAYING));
  g_object_class_install_property(
      gobject_class, PROP_MAX_SIZE_BYTES,
      g_param_spec_uint("max-size-bytes", "Max. size (bytes)",
                        "Max. amount of data in the queue, a hard ceiling over the adaptive "
                        "count, 0 = no limit (bytes, 0 - 4294967295, default 10485760)",
                        0, G_MAXUINT, DEFAULT_MAX_SIZE_BYTES, RW_PLAYING));
  g_object_class_install_property(
      gobject_class, PROP_MAX_SIZE_TIME,
      g_param_spec_uint64("max-size-time", "Max. size (ns)",
                          "Max. amount of data in the queue in time, a hard ceiling over the "
                          "adaptive count, 0 = no limit "
                          "(ns, 0 - 18446744073709551615, default 1000000000 = 1 s)",
                          0, G_MAXUINT64, DEFAULT_MAX_SIZE_TIME, RW_PLAYING));
  g_object_class_install_property(
      gobject_class, PROP_MIN_THRESHOLD_BUFFERS,
      g_param_spec_uint("min-threshold-buffers", "Min. threshold (buffers)",
                        "Min. number of buffers in the queue to allow reading, 0 = off "
                        "(buffers, 0 - 4294967295, default 0)",
                        0, G_MAXUINT, DEFAULT_MIN_THRESHOLD_BUFFERS, RW_PLAYING));
  g_object_class_install_property(
      gobject_class, PROP_MIN_THRESHOLD_BYTES,
      g_param_spec_uint("min-threshold-bytes", "Min. threshold (bytes)",
                        "Min. amount of data in the queue to allow reading, 0 = off "
                        "(bytes, 0 - 4294967295, default 0)",
                        0, G_MAXUINT, DEFAULT_MIN_THRESHOLD_BYTES, RW_PLAYING));
  g_object_class_install_property(
      gobject_class, PROP_MIN_THRESHOLD_TIME,
      g_param_spec_uint64("min-threshold-time", "Min. threshold (ns)",
                          "Min. amount of data in the queue to allow reading, 0 = off "
                          "(ns, 0 - 18446744073709551615, default 0)",
                          0, G_MAXUINT64, DEFAULT_MIN_THRESHOLD_TIME, RW_PLAYING));
  g_object_class_install_property(
      gobject_class, PROP_LEAKY,
      g_param_spec_enum("leaky", "Leaky",
                        "Where the queue drops buffers when full, and when adaptation "
                        "shrinks it below its level (default no)",
                        gst_adaptive_queue_leaky_get_type(), DEFAULT_LEAKY, RW_PLAYING));
  g_object_class_install_property(
      gobject_class, PROP_SILENT,
      g_param_spec_boolean("silent", "Silent", "Don't emit queue signals (default false)",
                           DEFAULT_SILENT, RW_PLAYING));
  g_object_class_install_property(
      gobject_class, PROP_FLUSH_ON_EOS,
      g_param_spec_boolean("flush-on-eos", "Flush on EOS",
                           "Discard all data in the queue when an EOS event is received "
                           "(default false)",
                           DEFAULT_FLUSH_ON_EOS, RW_PLAYING));

  /* adaptation */
  g_object_class_install_property(
      gobject_class, PROP_ADAPTIVE,
      g_param_spec_boolean("adaptive", "Adaptive",
                           "Resize max-size-buffers every tick from load and latency; when "
                           "false the queue behaves like a plain queue (default true)",
                           DEFAULT_ADAPTIVE, RW_PLAYING));
  g_object_class_install_property(
      gobject_class, PROP_MIN_BUFFERS,
      g_param_spec_uint("min-buffers", "Min. capacity (buffers)",
                        "Smallest capacity adaptation may choose; follows a smaller "
                        "max-size-buffers set explicitly (buffers, 1 - 4294967295, "
                        "default 4)",
                        1, G_MAXUINT, DEFAULT_MIN_BUFFERS, RW_PLAYING));
  g_object_class_install_property(
      gobject_class, PROP_MAX_BUFFERS,
      g_param_spec_uint("max-buffers", "Max. capacity (buffers)",
                        "Largest capacity adaptation may choose; follows a larger "
                        "max-size-buffers set explicitly (buffers, 1 - 4294967295, "
                        "default 32)",
                        1, G_MAXUINT, DEFAULT_MAX_BUFFERS, RW_PLAYING));
  g_object_class_install_property(
      gobject_class, PROP_CPU_LOW_THRESHOLD,
      g_param_spec_double("cpu-low-threshold", "CPU low threshold",
                          "CPU load below which the CPU factor is +1 (grow) "
                          "(%, 0 - 100, default 20)",
                          0.0, 100.0, DEFAULT_CPU_LOW_THRESHOLD, RW_PLAYING));
  g_object_class_install_property(
      gobject_class, PROP_CPU_HIGH_THRESHOLD,
      g_param_spec_double("cpu-high-threshold", "CPU high threshold",
                          "CPU load above which the CPU factor is -1 (shrink) "
                          "(%, 0 - 100, default 60)",
                          0.0, 100.0, DEFAULT_CPU_HIGH_THRESHOLD, RW_PLAYING));
  g_object_class_install_property(
      gobject_class, PROP_MEM_LOW_THRESHOLD,
      g_param_spec_double("mem-low-threshold", "Memory low threshold",
                          "Memory use below which the memory factor is +1 (grow) "
                          "(%, 0 - 100, default 35)",
                          0.0, 100.0, DEFAULT_MEM_LOW_THRESHOLD, RW_PLAYING));
  g_object_class_install_property(
      gobject_class, PROP_MEM_HIGH_THRESHOLD,
      g_param_spec_double("mem-high-threshold", "Memory high threshold",
                          "Memory use above which the memory factor is -1 (shrink) "
                          "(%, 0 - 100, default 75)",
                          0.0, 100.0, DEFAULT_MEM_HIGH_THRESHOLD, RW_PLAYING));
  g_object_class_install_property(
      gobject_class, PROP_TARGET_LATENCY,
      g_param_spec_uint64("target-latency", "Target latency",
                          "Latency average below which the latency factor is +1 (grow) "
                          "(ns, 0 - 3600000000000, default 20000000 = 20 ms)",
                          0, MAX_LATENCY_SETTING, DEFAULT_TARGET_LATENCY, RW_PLAYING));
  g_object_class_install_property(
      gobject_class, PROP_MAX_LATENCY,
      g_param_spec_uint64("max-latency", "Max. latency",
                          "Latency average above which the latency factor is -1 (shrink) "
                          "(ns, 0 - 3600000000000, default 50000000 = 50 ms)",
                          0, MAX_LATENCY_SETTING, DEFAULT_MAX_LATENCY, RW_PLAYING));
  g_object_class_install_property(
      gobject_class, PROP_CPU_WEIGHT,
      g_param_spec_double("cpu-weight", "CPU weight",
                          "Weight of the CPU factor in the combined factor "
                          "(0 - 1, default 0.5)",
                          0.0, 1.0, DEFAULT_CPU_WEIGHT, RW_PLAYING));
  g_object_class_install_property(
      gobject_class, PROP_MEM_WEIGHT,
      g_param_spec_double("mem-weight", "Memory weight",
                          "Weight of the memory factor in the combined factor "
                          "(0 - 1, default 0.3)",
                          0.0, 1.0, DEFAULT_MEM_WEIGHT, RW_PLAYING));
  g_object_class_install_property(
      gobject_class, PROP_LATENCY_WEIGHT,
      g_param_spec_double("latency-weight", "Latency weight",
                          "Weight of the latency factor in the combined factor "
                          "(0 - 1, default 0.2)",
                          0.0, 1.0, DEFAULT_LATENCY_WEIGHT, RW_PLAYING));
  g_object_class_install_property(
      gobject_class, PROP_SMOOTHING,
      g_param_spec_double("smoothing", "Smoothing",
                          "Fraction of the step towards the target taken per tick; 0 freezes "
                          "the capacity (0 - 1, default 0.3)",
                          0.0, 1.0, DEFAULT_SMOOTHING, RW_PLAYING));
  g_object_class_install_property(
      gobject_class, PROP_ADAPTATION_INTERVAL,
      g_param_spec_uint64("adaptation-interval", "Adaptation interval",
                          "Time between ticks, and between reads of /proc; a CPU figure "
                          "spans the readings that hold 100 USER_HZ ticks, so even 10 ms "
                          "reads a steady load to about 1 % "
                          "(ns, 10000000 - 60000000000, default 500000000 = 500 ms)",
                          MIN_ADAPTATION_INTERVAL, MAX_ADAPTATION_INTERVAL,
                          DEFAULT_ADAPTATION_INTERVAL, RW_PLAYING));
  g_object_class_install_property(
      gobject_class, PROP_LOAD_SCOPE,
      g_param_spec_enum("load-scope", "Load scope",
                        "Whose load feeds adaptation; auto picks cgroup in a cgroup with a "
                        "limit, else system; current-load-scope tells which (default auto)",
                        gst_adaptive_queue_load_scope_get_type(), DEFAULT_LOAD_SCOPE, RW_PLAYING));
  g_object_class_install_property(
      gobject_class, PROP_CURRENT_LOAD_SCOPE,
      g_param_spec_enum("current-load-scope", "Current load scope",
                        "The load scope read: load-scope, or the one auto picked, from the "
                        "last reading or, before one, from the files now (read-only)",
                        gst_adaptive_queue_load_scope_get_type(), GST_ADAPTIVE_QUEUE_SCOPE_SYSTEM,
                        static_cast<GParamFlags>(RO | GST_PARAM_DOC_SHOW_DEFAULT)));
  g_object_class_install_property(
      gobject_class, PROP_CGROUP_ROOT,
      g_param_spec_string("cgroup-root", "cgroup root",
                          "Where the cgroup filesystem is mounted, for the cgroup and "
                          "pressure scopes (path, default \"/sys/fs/cgroup\")",
                          DEFAULT_CGROUP_ROOT, RW_PLAYING));
  g_object_class_install_property(
      gobject_class, PROP_PROC_ROOT,
      g_param_spec_string("proc-root", "procfs root",
                          "Directory the load is read from, e.g. a host /proc mounted "
                          "elsewhere (path, default \"/proc\")",
                          DEFAULT_PROC_ROOT, RW_PLAYING));
  g_object_class_install_property(
      gobject_class, PROP_LATENCY_SOURCE,
      g_param_spec_enum("latency-source", "Latency source",
                        "Which latency reading feeds adaptation: auto is the lateness at "
                        "output beyond the latency upstream declares (default auto)",
                        gst_adaptive_queue_latency_source_get_type(), DEFAULT_LATENCY_SOURCE,
                        RW_PLAYING));
  g_object_class_install_property(
      gobject_class, PROP_DEMAND_HEADROOM,
      g_param_spec_double("demand-headroom", "Demand headroom",
                          "With a live upstream, the capacity never falls below this times the "
                          "highest level of the last demand-window, and a push that finds the "
                          "queue full grows it at once to this times (capacity + 1). 0 = off "
                          "(JetKVM's rule alone); values between 0 and 1 are invalid "
                          "(0 or 1 - 4, default 1.25)",
                          0.0, aq::limits::kMaxDemandHeadroom, DEFAULT_DEMAND_HEADROOM,
                          RW_PLAYING));
  g_object_class_install_property(
      gobject_class, PROP_DEMAND_WINDOW,
      g_param_spec_uint64("demand-window", "Demand window",
                          "How far back the highest level counts as demand "
                          "(ns, 100000000 - 600000000000, default 10000000000 = 10 s)",
                          aq::limits::kMinDemandWindowNs, aq::limits::kMaxDemandWindowNs,
                          DEFAULT_DEMAND_WINDOW, RW_PLAYING));
  g_object_class_install_property(
      gobject_class, PROP_TRIM_PERIOD,
      g_param_spec_uint64("trim-period", "Trim period",
                          "With leaky=downstream, after this long with the level never below "
                          "T >= 2 and no overrun, drop the T - 1 oldest buffers once: latency a "
                          "real-time sink never drains. 0 = off; 1 - 99999999 are invalid "
                          "(ns, 0 or 100000000 - 600000000000, default 0)",
                          0, aq::limits::kMaxTrimPeriodNs, DEFAULT_TRIM_PERIOD, RW_PLAYING));
  g_object_class_install_property(
      gobject_class, PROP_STATS,
      g_param_spec_boxed("stats", "Statistics",
                         "Capacity, demand floor, levels, latency average and the last "
                         "interval's maximum (ns), load (%), factors and counters, as an "
                         "adaptivequeue-stats structure (read-only)",
                         GST_TYPE_STRUCTURE, RO));

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