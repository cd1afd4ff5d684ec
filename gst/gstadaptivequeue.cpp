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
 * `max-size-bytes` and `max-size-time` are optional hard ceilings and are off
 * (0) by default, so the adaptive count is the limit that applies.
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
 * gst-launch-1.0 -m audiotestsrc is-live=true ! adaptivequeue min-buffers=2 max-buffers=8 adaptation-interval=200000000 ! fakesink sync=true
 * ]|
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstadaptivequeue-private.h"

#include <algorithm>

GST_DEBUG_CATEGORY (adaptive_queue_debug);
#define GST_CAT_DEFAULT adaptive_queue_debug

using namespace aq::element;

guint aq::element::signals[LAST_SIGNAL];

/* Ranges of the time-valued adaptation properties. */
constexpr guint64 MIN_ADAPTATION_INTERVAL = 10 * GST_MSECOND;
constexpr guint64 MAX_ADAPTATION_INTERVAL = 60 * GST_SECOND;
constexpr guint64 MAX_LATENCY_SETTING = 3600 * GST_SECOND;

enum Property
{
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
  PROP_LATENCY_SOURCE,
  PROP_STATS,
};

#define gst_adaptive_queue_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstAdaptiveQueue, gst_adaptive_queue, GST_TYPE_ELEMENT,
    GST_DEBUG_CATEGORY_INIT (adaptive_queue_debug, "adaptivequeue", 0,
        "adaptive queue"));
GST_ELEMENT_REGISTER_DEFINE (adaptivequeue, "adaptivequeue", GST_RANK_NONE,
    GST_TYPE_ADAPTIVE_QUEUE);

GType
gst_adaptive_queue_leaky_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_ADAPTIVE_QUEUE_NO_LEAK, "Not Leaky", "no"},
    {GST_ADAPTIVE_QUEUE_LEAK_UPSTREAM, "Leaky on upstream (new buffers)",
        "upstream"},
    {GST_ADAPTIVE_QUEUE_LEAK_DOWNSTREAM, "Leaky on downstream (old buffers)",
        "downstream"},
    {0, nullptr, nullptr},
  };
  if (g_once_init_enter (&type))
    g_once_init_leave (&type,
        g_enum_register_static ("GstAdaptiveQueueLeaky", values));
  return type;
}

GType
gst_adaptive_queue_load_scope_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_ADAPTIVE_QUEUE_SCOPE_SYSTEM,
        "Whole system: /proc/stat and MemAvailable", "system"},
    {GST_ADAPTIVE_QUEUE_SCOPE_PROCESS,
        "This process: /proc/self/stat and RSS", "process"},
    {0, nullptr, nullptr},
  };
  if (g_once_init_enter (&type))
    g_once_init_leave (&type,
        g_enum_register_static ("GstAdaptiveQueueLoadScope", values));
  return type;
}

GType
gst_adaptive_queue_latency_source_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_ADAPTIVE_QUEUE_LATENCY_AUTO,
        "Clock latency when available, else queued latency", "auto"},
    {GST_ADAPTIVE_QUEUE_LATENCY_QUEUED,
        "Time level of the queue (sink minus src running time)", "queued"},
    {GST_ADAPTIVE_QUEUE_LATENCY_CLOCK,
        "Clock running time minus buffer running time at output", "clock"},
    {0, nullptr, nullptr},
  };
  if (g_once_init_enter (&type))
    g_once_init_leave (&type,
        g_enum_register_static ("GstAdaptiveQueueLatencySource", values));
  return type;
}

/* ---- properties ---- */

/* Moves the capacity, clamped to the bounds while adapting. */
static void
set_max_size_buffers (GstAdaptiveQueue * self, guint requested)
{
  GST_OBJECT_LOCK (self);
  const bool adaptive = self->settings->adaptive;
  const aq::PolicyConfig bounds = self->settings->last_valid;
  GST_OBJECT_UNLOCK (self);
  guint capacity = adaptive ? std::clamp (requested, bounds.min_buffers,
      bounds.max_buffers) : requested;
  qlock (self);
  self->q->max.buffers = capacity;
  reserve_for_capacity (*self->q);
  wake_all_qlocked (self);
  qunlock (self);
}

/* Stores an adaptation setting; the configuration it completes becomes the
 * one ticks use if it validates. Object lock held. */
static void
policy_changed_olocked (GstAdaptiveQueue * self)
{
  Settings & s = *self->settings;
  if (aq::validate (s.policy).empty ())
    s.last_valid = s.policy;
}

static void
set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  auto *self = GST_ADAPTIVE_QUEUE (object);
  QueueState & q = *self->q;
  Settings & s = *self->settings;

  switch (prop_id) {
    case PROP_MAX_SIZE_BUFFERS:
      set_max_size_buffers (self, g_value_get_uint (value));
      return;
    case PROP_MAX_SIZE_BYTES:
    case PROP_MAX_SIZE_TIME:
    case PROP_MIN_THRESHOLD_BUFFERS:
    case PROP_MIN_THRESHOLD_BYTES:
    case PROP_MIN_THRESHOLD_TIME:
    case PROP_LEAKY:
    case PROP_SILENT:
    case PROP_FLUSH_ON_EOS:
    case PROP_LATENCY_SOURCE:
      qlock (self);
      switch (prop_id) {
        case PROP_MAX_SIZE_BYTES:
          q.max.bytes = g_value_get_uint (value);
          break;
        case PROP_MAX_SIZE_TIME:
          q.max.time = g_value_get_uint64 (value);
          break;
        case PROP_MIN_THRESHOLD_BUFFERS:
          q.min_threshold.buffers = q.orig_min_threshold.buffers =
              g_value_get_uint (value);
          break;
        case PROP_MIN_THRESHOLD_BYTES:
          q.min_threshold.bytes = q.orig_min_threshold.bytes =
              g_value_get_uint (value);
          break;
        case PROP_MIN_THRESHOLD_TIME:
          q.min_threshold.time = q.orig_min_threshold.time =
              g_value_get_uint64 (value);
          break;
        case PROP_LEAKY:
          q.leaky = static_cast < GstAdaptiveQueueLeaky > (g_value_get_enum (value));
          break;
        case PROP_SILENT:
          q.silent = g_value_get_boolean (value);
          break;
        case PROP_FLUSH_ON_EOS:
          q.flush_on_eos = g_value_get_boolean (value);
          break;
        case PROP_LATENCY_SOURCE:
        {
          auto source = static_cast < GstAdaptiveQueueLatencySource >
              (g_value_get_enum (value));
          /* Readings from different sources don't average together. */
          if (source != q.latency_source)
            q.latency.reset ();
          q.latency_source = source;
          break;
        }
      }
      /* Limits changed: let both sides re-check. */
      wake_all_qlocked (self);
      qunlock (self);
      return;
    default:
      break;
  }

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_ADAPTIVE:
      s.adaptive = g_value_get_boolean (value);
      break;
    case PROP_MIN_BUFFERS:
      s.policy.min_buffers = g_value_get_uint (value);
      break;
    case PROP_MAX_BUFFERS:
      s.policy.max_buffers = g_value_get_uint (value);
      break;
    case PROP_CPU_LOW_THRESHOLD:
      s.policy.cpu_low = g_value_get_double (value);
      break;
    case PROP_CPU_HIGH_THRESHOLD:
      s.policy.cpu_high = g_value_get_double (value);
      break;
    case PROP_MEM_LOW_THRESHOLD:
      s.policy.mem_low = g_value_get_double (value);
      break;
    case PROP_MEM_HIGH_THRESHOLD:
      s.policy.mem_high = g_value_get_double (value);
      break;
    case PROP_TARGET_LATENCY:
      s.policy.target_latency_ns = static_cast < int64_t > (g_value_get_uint64 (value));
      break;
    case PROP_MAX_LATENCY:
      s.policy.max_latency_ns = static_cast < int64_t > (g_value_get_uint64 (value));
      break;
    case PROP_CPU_WEIGHT:
      s.policy.cpu_weight = g_value_get_double (value);
      break;
    case PROP_MEM_WEIGHT:
      s.policy.mem_weight = g_value_get_double (value);
      break;
    case PROP_LATENCY_WEIGHT:
      s.policy.latency_weight = g_value_get_double (value);
      break;
    case PROP_SMOOTHING:
      s.policy.smoothing = g_value_get_double (value);
      break;
    case PROP_ADAPTATION_INTERVAL:
      s.interval = g_value_get_uint64 (value);
      break;
    case PROP_LOAD_SCOPE:
      s.scope = g_value_get_enum (value) == GST_ADAPTIVE_QUEUE_SCOPE_PROCESS ?
          aq::LoadScope::Process : aq::LoadScope::System;
      break;
    case PROP_PROC_ROOT:
    {
      const gchar *root = g_value_get_string (value);
      s.proc_root = root && *root ? root : DEFAULT_PROC_ROOT;
      break;
    }
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  policy_changed_olocked (self);
  GST_OBJECT_UNLOCK (self);
}

static void
get_property (GObject * object, guint prop_id, GValue * value, GParamSpec * pspec)
{
  auto *self = GST_ADAPTIVE_QUEUE (object);
  const QueueState & q = *self->q;
  const Settings & s = *self->settings;

  if (prop_id == PROP_STATS) {
    g_value_take_boxed (value, build_stats (self));
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
      qlock (self);
      switch (prop_id) {
        case PROP_CURRENT_LEVEL_BUFFERS:
          g_value_set_uint (value, level_of (q).buffers);
          break;
        case PROP_CURRENT_LEVEL_BYTES:
          g_value_set_uint (value, level_of (q).bytes);
          break;
        case PROP_CURRENT_LEVEL_TIME:
          g_value_set_uint64 (value, level_of (q).time);
          break;
        case PROP_MAX_SIZE_BUFFERS:
          g_value_set_uint (value, q.max.buffers);
          break;
        case PROP_MAX_SIZE_BYTES:
          g_value_set_uint (value, q.max.bytes);
          break;
        case PROP_MAX_SIZE_TIME:
          g_value_set_uint64 (value, q.max.time);
          break;
        case PROP_MIN_THRESHOLD_BUFFERS:
          g_value_set_uint (value, q.orig_min_threshold.buffers);
          break;
        case PROP_MIN_THRESHOLD_BYTES:
          g_value_set_uint (value, q.orig_min_threshold.bytes);
          break;
        case PROP_MIN_THRESHOLD_TIME:
          g_value_set_uint64 (value, q.orig_min_threshold.time);
          break;
        case PROP_LEAKY:
          g_value_set_enum (value, q.leaky);
          break;
        case PROP_SILENT:
          g_value_set_boolean (value, q.silent);
          break;
        case PROP_FLUSH_ON_EOS:
          g_value_set_boolean (value, q.flush_on_eos);
          break;
        case PROP_LATENCY_SOURCE:
          g_value_set_enum (value, q.latency_source);
          break;
      }
      qunlock (self);
      return;
    default:
      break;
  }

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_ADAPTIVE:
      g_value_set_boolean (value, s.adaptive);
      break;
    case PROP_MIN_BUFFERS:
      g_value_set_uint (value, s.policy.min_buffers);
      break;
    case PROP_MAX_BUFFERS:
      g_value_set_uint (value, s.policy.max_buffers);
      break;
    case PROP_CPU_LOW_THRESHOLD:
      g_value_set_double (value, s.policy.cpu_low);
      break;
    case PROP_CPU_HIGH_THRESHOLD:
      g_value_set_double (value, s.policy.cpu_high);
      break;
    case PROP_MEM_LOW_THRESHOLD:
      g_value_set_double (value, s.policy.mem_low);
      break;
    case PROP_MEM_HIGH_THRESHOLD:
      g_value_set_double (value, s.policy.mem_high);
      break;
    case PROP_TARGET_LATENCY:
      g_value_set_uint64 (value, static_cast < guint64 > (s.policy.target_latency_ns));
      break;
    case PROP_MAX_LATENCY:
      g_value_set_uint64 (value, static_cast < guint64 > (s.policy.max_latency_ns));
      break;
    case PROP_CPU_WEIGHT:
      g_value_set_double (value, s.policy.cpu_weight);
      break;
    case PROP_MEM_WEIGHT:
      g_value_set_double (value, s.policy.mem_weight);
      break;
    case PROP_LATENCY_WEIGHT:
      g_value_set_double (value, s.policy.latency_weight);
      break;
    case PROP_SMOOTHING:
      g_value_set_double (value, s.policy.smoothing);
      break;
    case PROP_ADAPTATION_INTERVAL:
      g_value_set_uint64 (value, s.interval);
      break;
    case PROP_LOAD_SCOPE:
      g_value_set_enum (value, s.scope == aq::LoadScope::Process ?
          GST_ADAPTIVE_QUEUE_SCOPE_PROCESS : GST_ADAPTIVE_QUEUE_SCOPE_SYSTEM);
      break;
    case PROP_PROC_ROOT:
      g_value_set_string (value, s.proc_root.c_str ());
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* ---- element ---- */

static gboolean
set_clock (GstElement * element, GstClock * clock)
{
  auto *self = GST_ADAPTIVE_QUEUE (element);
  qlock (self);
  gst_object_replace ((GstObject **) & self->q->clock, (GstObject *) clock);
  qunlock (self);
  return GST_ELEMENT_CLASS (parent_class)->set_clock (element, clock);
}

static GstStateChangeReturn
change_state (GstElement * element, GstStateChange transition)
{
  auto *self = GST_ADAPTIVE_QUEUE (element);

  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED) {
    qlock (self);
    self->q->latency.reset ();
    qunlock (self);
    start_ticks (self);
  }

  if (transition == GST_STATE_CHANGE_PLAYING_TO_PAUSED) {
    qlock (self);
    self->q->playing_base_time = GST_CLOCK_TIME_NONE;
    qunlock (self);
  }

  GstStateChangeReturn ret =
      GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);

  /* The parent bin sets the base time before this transition. */
  if (transition == GST_STATE_CHANGE_PAUSED_TO_PLAYING &&
      ret != GST_STATE_CHANGE_FAILURE) {
    const GstClockTime base_time = gst_element_get_base_time (element);
    qlock (self);
    self->q->playing_base_time = base_time;
    qunlock (self);
  }

  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY ||
      (transition == GST_STATE_CHANGE_READY_TO_PAUSED
          && ret == GST_STATE_CHANGE_FAILURE))
    stop_ticks (self);
  return ret;
}

static void
gst_adaptive_queue_init (GstAdaptiveQueue * self)
{
  g_mutex_init (&self->qlock);
  g_cond_init (&self->item_add);
  g_cond_init (&self->item_del);
  g_cond_init (&self->query_handled);
  g_mutex_init (&self->tick_lock);
  self->settings = new Settings ();
  self->q = new QueueState ();
  self->tick = new TickState ();
  self->q->max.buffers = DEFAULT_MAX_SIZE_BUFFERS;
  self->q->max.bytes = DEFAULT_MAX_SIZE_BYTES;
  self->q->max.time = DEFAULT_MAX_SIZE_TIME;
  self->q->orig_min_threshold = self->q->min_threshold =
      Level {DEFAULT_MIN_THRESHOLD_BUFFERS, DEFAULT_MIN_THRESHOLD_BYTES,
      DEFAULT_MIN_THRESHOLD_TIME};
  reserve_for_capacity (*self->q);
  gst_segment_init (&self->q->sink_segment, GST_FORMAT_TIME);
  gst_segment_init (&self->q->src_segment, GST_FORMAT_TIME);
  add_pads (self);
}

static void
finalize (GObject * object)
{
  auto *self = GST_ADAPTIVE_QUEUE (object);
  stop_ticks (self);
  drop_all_items (*self->q);
  gst_object_replace ((GstObject **) & self->q->clock, nullptr);
  delete self->tick;
  delete self->q;
  delete self->settings;
  g_mutex_clear (&self->qlock);
  g_cond_clear (&self->item_add);
  g_cond_clear (&self->item_del);
  g_cond_clear (&self->query_handled);
  g_mutex_clear (&self->tick_lock);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static constexpr GParamFlags RW_PLAYING = static_cast < GParamFlags >
    (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING);
static constexpr GParamFlags RO = static_cast < GParamFlags >
    (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

static void
gst_adaptive_queue_class_init (GstAdaptiveQueueClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);

  gobject_class->set_property = set_property;
  gobject_class->get_property = get_property;
  gobject_class->finalize = finalize;

  signals[SIGNAL_UNDERRUN] = g_signal_new ("underrun", G_TYPE_FROM_CLASS (klass),
      G_SIGNAL_RUN_FIRST, 0, nullptr, nullptr, nullptr, G_TYPE_NONE, 0);
  signals[SIGNAL_RUNNING] = g_signal_new ("running", G_TYPE_FROM_CLASS (klass),
      G_SIGNAL_RUN_FIRST, 0, nullptr, nullptr, nullptr, G_TYPE_NONE, 0);
  signals[SIGNAL_OVERRUN] = g_signal_new ("overrun", G_TYPE_FROM_CLASS (klass),
      G_SIGNAL_RUN_FIRST, 0, nullptr, nullptr, nullptr, G_TYPE_NONE, 0);
  signals[SIGNAL_PUSHING] = g_signal_new ("pushing", G_TYPE_FROM_CLASS (klass),
      G_SIGNAL_RUN_FIRST, 0, nullptr, nullptr, nullptr, G_TYPE_NONE, 0);

  /* queue's properties, same names, types, ranges and meaning */
  g_object_class_install_property (gobject_class, PROP_CURRENT_LEVEL_BUFFERS,
      g_param_spec_uint ("current-level-buffers", "Current level (buffers)",
          "Number of buffers in the queue (buffers, read-only)",
          0, G_MAXUINT, 0, RO));
  g_object_class_install_property (gobject_class, PROP_CURRENT_LEVEL_BYTES,
      g_param_spec_uint ("current-level-bytes", "Current level (bytes)",
          "Amount of data in the queue (bytes, read-only)",
          0, G_MAXUINT, 0, RO));
  g_object_class_install_property (gobject_class, PROP_CURRENT_LEVEL_TIME,
      g_param_spec_uint64 ("current-level-time", "Current level (ns)",
          "Amount of data in the queue, from sink and src running times "
          "(ns, read-only)", 0, G_MAXUINT64, 0, RO));
  g_object_class_install_property (gobject_class, PROP_MAX_SIZE_BUFFERS,
      g_param_spec_uint ("max-size-buffers", "Max. size (buffers)",
          "Current capacity in buffers; adaptation resizes it every tick. "
          "Setting it moves the capacity, clamped to min-buffers..max-buffers "
          "while adaptive; with adaptive=false it is a fixed limit and 0 means "
          "no limit (buffers, 0 - 4294967295, default 16)",
          0, G_MAXUINT, DEFAULT_MAX_SIZE_BUFFERS, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_MAX_SIZE_BYTES,
      g_param_spec_uint ("max-size-bytes", "Max. size (bytes)",
          "Hard ceiling on the amount of queued data, 0 = off "
          "(bytes, 0 - 4294967295, default 0)",
          0, G_MAXUINT, DEFAULT_MAX_SIZE_BYTES, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_MAX_SIZE_TIME,
      g_param_spec_uint64 ("max-size-time", "Max. size (ns)",
          "Hard ceiling on the amount of queued data in time, 0 = off "
          "(ns, 0 - 18446744073709551615, default 0)",
          0, G_MAXUINT64, DEFAULT_MAX_SIZE_TIME, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_MIN_THRESHOLD_BUFFERS,
      g_param_spec_uint ("min-threshold-buffers", "Min. threshold (buffers)",
          "Min. number of buffers in the queue to allow reading, 0 = off "
          "(buffers, 0 - 4294967295, default 0)",
          0, G_MAXUINT, DEFAULT_MIN_THRESHOLD_BUFFERS, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_MIN_THRESHOLD_BYTES,
      g_param_spec_uint ("min-threshold-bytes", "Min. threshold (bytes)",
          "Min. amount of data in the queue to allow reading, 0 = off "
          "(bytes, 0 - 4294967295, default 0)",
          0, G_MAXUINT, DEFAULT_MIN_THRESHOLD_BYTES, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_MIN_THRESHOLD_TIME,
      g_param_spec_uint64 ("min-threshold-time", "Min. threshold (ns)",
          "Min. amount of data in the queue to allow reading, 0 = off "
          "(ns, 0 - 18446744073709551615, default 0)",
          0, G_MAXUINT64, DEFAULT_MIN_THRESHOLD_TIME, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_LEAKY,
      g_param_spec_enum ("leaky", "Leaky",
          "Where the queue drops buffers when full, and when adaptation "
          "shrinks it below its level (default no)",
          gst_adaptive_queue_leaky_get_type (), DEFAULT_LEAKY, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_SILENT,
      g_param_spec_boolean ("silent", "Silent",
          "Don't emit queue signals (default false)",
          DEFAULT_SILENT, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_FLUSH_ON_EOS,
      g_param_spec_boolean ("flush-on-eos", "Flush on EOS",
          "Discard all data in the queue when an EOS event is received "
          "(default false)", DEFAULT_FLUSH_ON_EOS, RW_PLAYING));

  /* adaptation */
  g_object_class_install_property (gobject_class, PROP_ADAPTIVE,
      g_param_spec_boolean ("adaptive", "Adaptive",
          "Resize max-size-buffers every tick from load and latency; when "
          "false the queue behaves like a plain queue (default true)",
          DEFAULT_ADAPTIVE, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_MIN_BUFFERS,
      g_param_spec_uint ("min-buffers", "Min. capacity (buffers)",
          "Smallest capacity adaptation may choose (buffers, 1 - 65535, "
          "default 4)", 1, MAX_BOUND_BUFFERS, DEFAULT_MIN_BUFFERS, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_MAX_BUFFERS,
      g_param_spec_uint ("max-buffers", "Max. capacity (buffers)",
          "Largest capacity adaptation may choose (buffers, 1 - 65535, "
          "default 32)", 1, MAX_BOUND_BUFFERS, DEFAULT_MAX_BUFFERS, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_CPU_LOW_THRESHOLD,
      g_param_spec_double ("cpu-low-threshold", "CPU low threshold",
          "CPU load below which the CPU factor is +1 (grow) "
          "(%, 0 - 100, default 20)", 0.0, 100.0, DEFAULT_CPU_LOW_THRESHOLD, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_CPU_HIGH_THRESHOLD,
      g_param_spec_double ("cpu-high-threshold", "CPU high threshold",
          "CPU load above which the CPU factor is -1 (shrink) "
          "(%, 0 - 100, default 60)", 0.0, 100.0, DEFAULT_CPU_HIGH_THRESHOLD, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_MEM_LOW_THRESHOLD,
      g_param_spec_double ("mem-low-threshold", "Memory low threshold",
          "Memory use below which the memory factor is +1 (grow) "
          "(%, 0 - 100, default 35)", 0.0, 100.0, DEFAULT_MEM_LOW_THRESHOLD, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_MEM_HIGH_THRESHOLD,
      g_param_spec_double ("mem-high-threshold", "Memory high threshold",
          "Memory use above which the memory factor is -1 (shrink) "
          "(%, 0 - 100, default 75)", 0.0, 100.0, DEFAULT_MEM_HIGH_THRESHOLD, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_TARGET_LATENCY,
      g_param_spec_uint64 ("target-latency", "Target latency",
          "Latency average below which the latency factor is +1 (grow) "
          "(ns, 0 - 3600000000000, default 20000000 = 20 ms)",
          0, MAX_LATENCY_SETTING, DEFAULT_TARGET_LATENCY, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_MAX_LATENCY,
      g_param_spec_uint64 ("max-latency", "Max. latency",
          "Latency average above which the latency factor is -1 (shrink) "
          "(ns, 0 - 3600000000000, default 50000000 = 50 ms)",
          0, MAX_LATENCY_SETTING, DEFAULT_MAX_LATENCY, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_CPU_WEIGHT,
      g_param_spec_double ("cpu-weight", "CPU weight",
          "Weight of the CPU factor in the combined factor "
          "(0 - 1, default 0.5)", 0.0, 1.0, DEFAULT_CPU_WEIGHT, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_MEM_WEIGHT,
      g_param_spec_double ("mem-weight", "Memory weight",
          "Weight of the memory factor in the combined factor "
          "(0 - 1, default 0.3)", 0.0, 1.0, DEFAULT_MEM_WEIGHT, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_LATENCY_WEIGHT,
      g_param_spec_double ("latency-weight", "Latency weight",
          "Weight of the latency factor in the combined factor "
          "(0 - 1, default 0.2)", 0.0, 1.0, DEFAULT_LATENCY_WEIGHT, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_SMOOTHING,
      g_param_spec_double ("smoothing", "Smoothing",
          "Fraction of the step towards the target taken per tick; 0 freezes "
          "the capacity (0 - 1, default 0.3)", 0.0, 1.0, DEFAULT_SMOOTHING,
          RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_ADAPTATION_INTERVAL,
      g_param_spec_uint64 ("adaptation-interval", "Adaptation interval",
          "Time between ticks, and between reads of /proc "
          "(ns, 10000000 - 60000000000, default 500000000 = 500 ms)",
          MIN_ADAPTATION_INTERVAL, MAX_ADAPTATION_INTERVAL, DEFAULT_ADAPTATION_INTERVAL, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_LOAD_SCOPE,
      g_param_spec_enum ("load-scope", "Load scope",
          "Whose load feeds adaptation: the whole system or this process "
          "(default system)", gst_adaptive_queue_load_scope_get_type (),
          DEFAULT_LOAD_SCOPE, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_PROC_ROOT,
      g_param_spec_string ("proc-root", "procfs root",
          "Directory the load is read from, e.g. a host /proc mounted "
          "elsewhere (path, default \"/proc\")", DEFAULT_PROC_ROOT, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_LATENCY_SOURCE,
      g_param_spec_enum ("latency-source", "Latency source",
          "Which latency reading feeds adaptation (default auto)",
          gst_adaptive_queue_latency_source_get_type (), DEFAULT_LATENCY_SOURCE,
          RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_STATS,
      g_param_spec_boxed ("stats", "Statistics",
          "Capacity, levels, latency average (ns), load (%), factors and "
          "counters, as an adaptivequeue-stats structure (read-only)",
          GST_TYPE_STRUCTURE, RO));

  add_pad_templates (element_class);
  gst_element_class_set_static_metadata (element_class, "Adaptive queue",
      "Generic", "Simple data queue whose capacity adapts to system load "
      "and latency", "gst-adaptivequeue developers");

  element_class->change_state = change_state;
  element_class->set_clock = set_clock;

  gst_type_mark_as_plugin_api (gst_adaptive_queue_leaky_get_type (),
      static_cast < GstPluginAPIFlags > (0));
  gst_type_mark_as_plugin_api (gst_adaptive_queue_load_scope_get_type (),
      static_cast < GstPluginAPIFlags > (0));
  gst_type_mark_as_plugin_api (gst_adaptive_queue_latency_source_get_type (),
      static_cast < GstPluginAPIFlags > (0));
}