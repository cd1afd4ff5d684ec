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

#include "gstadaptivequeue.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "latency_tracker.h"
#include "load_sampler.h"
#include "ring.h"
#include "sizing_policy.h"
#include "spin_backoff.h"

GST_DEBUG_CATEGORY_STATIC (adaptive_queue_debug);
#define GST_CAT_DEFAULT adaptive_queue_debug

namespace {

namespace d = aq::defaults;

/* Defaults of the queue-compatible properties. */
constexpr guint DEFAULT_MAX_SIZE_BUFFERS = d::kInitialBuffers;
constexpr guint DEFAULT_MAX_SIZE_BYTES = 0;
constexpr guint64 DEFAULT_MAX_SIZE_TIME = 0;
constexpr guint DEFAULT_MIN_THRESHOLD_BUFFERS = 0;
constexpr guint DEFAULT_MIN_THRESHOLD_BYTES = 0;
constexpr guint64 DEFAULT_MIN_THRESHOLD_TIME = 0;
constexpr GstAdaptiveQueueLeaky DEFAULT_LEAKY = GST_ADAPTIVE_QUEUE_NO_LEAK;
constexpr gboolean DEFAULT_SILENT = FALSE;
constexpr gboolean DEFAULT_FLUSH_ON_EOS = FALSE;
/* Defaults of the adaptation properties (the rest live in aq::defaults). */
constexpr gboolean DEFAULT_ADAPTIVE = TRUE;
constexpr GstAdaptiveQueueLoadScope DEFAULT_LOAD_SCOPE = GST_ADAPTIVE_QUEUE_SCOPE_SYSTEM;
constexpr const char *DEFAULT_PROC_ROOT = "/proc";
constexpr GstAdaptiveQueueLatencySource DEFAULT_LATENCY_SOURCE =
    GST_ADAPTIVE_QUEUE_LATENCY_AUTO;

constexpr guint MAX_BOUND_BUFFERS = 65535;
constexpr guint64 MIN_INTERVAL = 10 * GST_MSECOND;
constexpr guint64 MAX_INTERVAL = 60 * GST_SECOND;
constexpr guint64 MAX_LATENCY_SETTING = 3600 * GST_SECOND;
/* Ring slots kept beyond the buffer capacity for serialized events. */
constexpr size_t EVENT_HEADROOM = 16;
/* Load problems already posted are forgotten after this many good ticks in
 * a row, so a /proc that flaps does not post a warning per tick. */
constexpr guint LOAD_RECOVERY_TICKS = 10;
/* Distinct load problems posted per incident: parse errors quote the bad
 * text, so changing garbage would otherwise give a new reason every tick. */
constexpr size_t MAX_LOAD_WARNINGS = 8;

constexpr const char *ADAPTATION_MESSAGE = "adaptivequeue-adaptation";
constexpr const char *STATS_STRUCTURE = "adaptivequeue-stats";

/* One queued buffer, buffer list, event or query. Sizes are kept so the
 * dequeue side need not recompute them. */
struct Item
{
  GstMiniObject *object = nullptr;
  guint buffers = 0;
  guint bytes = 0;
};

struct Level
{
  guint buffers = 0;
  guint bytes = 0;
  guint64 time = 0;
};

/* Property values that only the tick reads, guarded by the object lock. */
struct Settings
{
  bool adaptive = DEFAULT_ADAPTIVE;
  aq::PolicyConfig policy;
  /* The configuration ticks run on: the newest one that validated. */
  aq::PolicyConfig last_valid;
  guint64 interval = d::kIntervalNs;
  aq::LoadScope scope = aq::LoadScope::System;
  std::string proc_root = DEFAULT_PROC_ROOT;
};

/* The streaming state, guarded by the queue lock. */
struct QueueState
{
  aq::Ring<Item> items;
  Level cur;
  Level max;          /* max.buffers is the adaptive capacity */
  Level min_threshold;
  Level orig_min_threshold;
  GstAdaptiveQueueLeaky leaky = DEFAULT_LEAKY;
  bool silent = DEFAULT_SILENT;
  bool flush_on_eos = DEFAULT_FLUSH_ON_EOS;
  GstAdaptiveQueueLatencySource latency_source = DEFAULT_LATENCY_SOURCE;

  GstFlowReturn srcresult = GST_FLOW_FLUSHING;
  bool eos = false;
  /* Downstream returned EOS: refuse buffers until a new segment. */
  bool unexpected = false;
  bool head_needs_discont = false;
  bool tail_needs_discont = false;

  GstSegment sink_segment;
  GstSegment src_segment;
  bool src_segment_is_time = true;
  bool newseg_applied_to_src = false;
  gint64 sinktime = GST_CLOCK_STIME_NONE;
  gint64 srctime = GST_CLOCK_STIME_NONE;
  bool sink_tainted = true;
  bool src_tainted = true;

  bool waiting_add = false;
  bool waiting_del = false;
  /* Bumped on every add and removal, so spinning waiters see progress
   * without taking the lock. */
  std::atomic < guint64 > adds {0};
  std::atomic < guint64 > dels {0};
  /* Whether the task (add) and upstream (del) spin before sleeping. */
  aq::SpinBackoff add_spin;
  aq::SpinBackoff del_spin;
  guint queued_queries = 0;
  GstQuery *last_handled_query = nullptr;
  /* The query the task is passing downstream with the lock released: its
   * caller must not get it back before the task is done with it. */
  GstQuery *query_in_flight = nullptr;
  bool last_query = false;

  GstClock *clock = nullptr;
  GstClockTime buffer_duration = GST_CLOCK_TIME_NONE;
  aq::LatencyTracker latency;

  guint max_level_buffers = 0;
  guint64 drops = 0;
  guint64 overruns = 0;
  guint64 underruns = 0;
  guint64 pushed = 0;
  /* Bumped by every flush, so a push that was in flight across one (a
   * FLUSH_STOP without FLUSH_START) can tell its result is stale. */
  guint64 flushes = 0;
};

/* The adaptation state, guarded by the tick lock. */
struct TickState
{
  GstClockID id = nullptr;
  bool running = false;
  std::unique_ptr<aq::SharedSampler::Subscription> subscription;
  std::string subscribed_root;
  aq::LoadScope subscribed_scope = aq::LoadScope::System;
  aq::SizingPolicy policy{DEFAULT_MAX_SIZE_BUFFERS};
  aq::Decision last_decision;
  std::optional<aq::LoadSample> last_sample;
  guint64 ticks = 0;
  guint64 skipped_ticks = 0;
  /* Each warning is posted once until the condition clears. */
  std::string warned_config;
  std::set<std::string> warned_loads;
  guint good_load_ticks = 0;
};

}  // namespace

struct _GstAdaptiveQueue
{
  GstElement parent;

  GstPad *sinkpad;
  GstPad *srcpad;

  GMutex qlock;
  GCond item_add;
  GCond item_del;
  GCond query_handled;
  GMutex tick_lock;

  /* C++ members, constructed in init and destroyed in finalize. */
  Settings *settings;
  QueueState *q;
  TickState *tick;
};

enum
{
  SIGNAL_UNDERRUN,
  SIGNAL_RUNNING,
  SIGNAL_OVERRUN,
  SIGNAL_PUSHING,
  LAST_SIGNAL
};

enum
{
  PROP_0,
  PROP_CUR_LEVEL_BUFFERS,
  PROP_CUR_LEVEL_BYTES,
  PROP_CUR_LEVEL_TIME,
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
  PROP_CPU_LOW,
  PROP_CPU_HIGH,
  PROP_MEM_LOW,
  PROP_MEM_HIGH,
  PROP_TARGET_LATENCY,
  PROP_MAX_LATENCY,
  PROP_CPU_WEIGHT,
  PROP_MEM_WEIGHT,
  PROP_LATENCY_WEIGHT,
  PROP_SMOOTHING,
  PROP_INTERVAL,
  PROP_LOAD_SCOPE,
  PROP_PROC_ROOT,
  PROP_LATENCY_SOURCE,
  PROP_STATS,
};

static guint signals[LAST_SIGNAL];

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

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

/* ---- the wait/notify protocol: signal only when someone waits ---- */

#define QLOCK(self) qlock (self)
#define QUNLOCK(self) g_mutex_unlock (&(self)->qlock)

/* Before sleeping on a condition, a waiter spins briefly with the lock
 * released: on a multi-core machine the other side usually makes progress
 * within microseconds, which saves a futex sleep and wake per buffer. On
 * one core spinning would only delay the other side, so it is off; on a
 * loaded machine aq::SpinBackoff stops it while spins keep timing out. */
constexpr gint64 SPIN_MICROSECONDS = 10;
constexpr int LOCK_SPINS = 100;
constexpr int PUSHES_PER_ITERATION = 64;

static bool
spin_enabled ()
{
  static const bool enabled = g_get_num_processors () > 1;
  return enabled;
}

static inline void
cpu_relax ()
{
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause ();
#elif defined(__aarch64__) || defined(__arm__)
  asm volatile ("yield");
#endif
}

/* The queue lock is held for very short sections, so a contended lock is
 * usually free again within a few spins: try those before sleeping. */
static inline void
qlock (GstAdaptiveQueue * self)
{
  if (spin_enabled ()) {
    for (int i = 0; i < LOCK_SPINS; i++) {
      if (g_mutex_trylock (&self->qlock))
        return;
      cpu_relax ();
    }
  }
  g_mutex_lock (&self->qlock);
}

/* Spins, unlocked, until `counter` moves away from `seen`. Queue lock held
 * on entry and exit; true if the counter moved. */
static bool
spin_unlocked (GstAdaptiveQueue * self, const std::atomic < guint64 > &counter,
    guint64 seen)
{
  bool moved = false;
  QUNLOCK (self);
  const gint64 deadline = g_get_monotonic_time () + SPIN_MICROSECONDS;
  for (int i = 1; !moved; i++) {
    cpu_relax ();
    moved = counter.load (std::memory_order_relaxed) != seen;
    /* A pause costs from one cycle to over a hundred depending on the
     * CPU, so the spin is bounded in time, checked now and then. */
    if (i % 64 == 0 && g_get_monotonic_time () >= deadline)
      break;
  }
  QLOCK (self);
  return moved || counter.load (std::memory_order_relaxed) != seen;
}

/* Spins, when the backoff allows, until `counter` moves; true if it did. */
static bool
spin_briefly (GstAdaptiveQueue * self, aq::SpinBackoff & backoff,
    const std::atomic < guint64 > &counter)
{
  if (!spin_enabled () || !backoff.should_spin ())
    return false;
  const bool moved = spin_unlocked (self, counter,
      counter.load (std::memory_order_relaxed));
  backoff.record (moved);
  return moved;
}

/* Waits for an item to be added; false when the pad is flushing. */
static bool
wait_add (GstAdaptiveQueue * self)
{
  QueueState & q = *self->q;
  if (spin_briefly (self, q.add_spin, q.adds))
    return q.srcresult == GST_FLOW_OK;
  if (q.srcresult != GST_FLOW_OK)
    return false;
  q.waiting_add = true;
  g_cond_wait (&self->item_add, &self->qlock);
  q.waiting_add = false;
  return q.srcresult == GST_FLOW_OK;
}

/* Waits for an item to be removed or the limits to change; false when the
 * pad is flushing. */
static bool
wait_del (GstAdaptiveQueue * self)
{
  QueueState & q = *self->q;
  if (spin_briefly (self, q.del_spin, q.dels))
    return q.srcresult == GST_FLOW_OK;
  if (q.srcresult != GST_FLOW_OK)
    return false;
  q.waiting_del = true;
  g_cond_wait (&self->item_del, &self->qlock);
  q.waiting_del = false;
  return q.srcresult == GST_FLOW_OK;
}

/* Records an addition; returns the condition to signal, or nullptr when
 * nobody waits. The streaming path signals it after releasing the lock, so
 * the woken thread does not wake into a held lock, and the futex call is
 * not made under it. A waiter registered itself under the lock before it
 * slept, so the late signal still reaches it. */
static GCond *
note_add (GstAdaptiveQueue * self)
{
  QueueState & q = *self->q;
  q.adds.fetch_add (1, std::memory_order_relaxed);
  return q.waiting_add ? &self->item_add : nullptr;
}

static GCond *
note_del (GstAdaptiveQueue * self)
{
  QueueState & q = *self->q;
  q.dels.fetch_add (1, std::memory_order_relaxed);
  return q.waiting_del ? &self->item_del : nullptr;
}

static inline void
wake (GCond * waiter)
{
  if (waiter)
    g_cond_signal (waiter);
}

static void
signal_add (GstAdaptiveQueue * self)
{
  wake (note_add (self));
}

static void
signal_del (GstAdaptiveQueue * self)
{
  wake (note_del (self));
}

/* Wakes every waiter: used when flushing or when limits change. */
static void
wake_all (GstAdaptiveQueue * self)
{
  QueueState & q = *self->q;
  q.adds.fetch_add (1, std::memory_order_relaxed);
  q.dels.fetch_add (1, std::memory_order_relaxed);
  g_cond_signal (&self->item_add);
  g_cond_signal (&self->item_del);
  g_cond_broadcast (&self->query_handled);
}

/* Emits a signal with the queue lock released; false if flushing after. */
static bool
emit_unlocked (GstAdaptiveQueue * self, guint signal_id)
{
  QUNLOCK (self);
  g_signal_emit (self, signals[signal_id], 0);
  QLOCK (self);
  return self->q->srcresult == GST_FLOW_OK;
}

/* ---- levels ---- */

static bool
is_filled (const QueueState & q)
{
  return (q.max.buffers > 0 && q.cur.buffers >= q.max.buffers) ||
      (q.max.bytes > 0 && q.cur.bytes >= q.max.bytes) ||
      (q.max.time > 0 && q.cur.time >= q.max.time);
}

static bool
is_empty (const QueueState & q)
{
  if (q.items.empty ())
    return true;
  /* Min thresholds hold back buffers only; an event or query at the head,
   * or a query waiting behind buffers, must get through. */
  GstMiniObject *head = q.items.front ().object;
  if (!GST_IS_BUFFER (head) && !GST_IS_BUFFER_LIST (head))
    return false;
  if (q.queued_queries > 0)
    return false;
  const bool below_threshold =
      (q.min_threshold.buffers > 0 && q.cur.buffers < q.min_threshold.buffers)
      || (q.min_threshold.bytes > 0 && q.cur.bytes < q.min_threshold.bytes)
      || (q.min_threshold.time > 0 && q.cur.time < q.min_threshold.time);
  /* A max limit can be hit before the min thresholds are. */
  return below_threshold && !is_filled (q);
}

static gint64
segment_running_time (const GstSegment * segment, GstClockTime position)
{
  if (!GST_CLOCK_TIME_IS_VALID (position))
    return GST_CLOCK_STIME_NONE;
  /* Reverse playback needs a stop (GStreamer asserts it); a non-TIME segment
   * tracked as an open TIME segment has none. */
  if (segment->rate < 0.0 && !GST_CLOCK_TIME_IS_VALID (segment->stop))
    return GST_CLOCK_STIME_NONE;
  guint64 rt = 0;
  int sign = gst_segment_to_running_time_full (segment, GST_FORMAT_TIME,
      position, &rt);
  /* Saturate to +-(2^63 - 1): a wider value would wrap, and -2^63 is
   * GST_CLOCK_STIME_NONE. */
  const gint64 magnitude = rt > G_MAXINT64 ? G_MAXINT64 : static_cast < gint64 > (rt);
  if (sign > 0)
    return magnitude;
  if (sign < 0)
    return -magnitude;
  return GST_CLOCK_STIME_NONE;
}

static void
update_time_level (QueueState & q)
{
  if (q.sink_tainted) {
    q.sinktime = segment_running_time (&q.sink_segment, q.sink_segment.position);
    q.sink_tainted = false;
  }
  if (q.src_tainted) {
    q.srctime = segment_running_time (&q.src_segment, q.src_segment.position);
    q.src_tainted = false;
  }
  if (GST_CLOCK_STIME_IS_VALID (q.sinktime) && GST_CLOCK_STIME_IS_VALID (q.srctime)
      && q.sinktime >= q.srctime)
    /* Unsigned: the difference may exceed G_MAXINT64 but never G_MAXUINT64. */
    q.cur.time = static_cast < guint64 > (q.sinktime) - static_cast < guint64 > (q.srctime);
  else
    q.cur.time = 0;
}

static void
set_position (QueueState & q, bool sink, GstClockTime position)
{
  GstSegment & segment = sink ? q.sink_segment : q.src_segment;
  segment.position = position;
  (sink ? q.sink_tainted : q.src_tainted) = true;
  update_time_level (q);
}

/* Advances a segment position past a buffer; a buffer without timestamp
 * continues from the previous position. */
static void
apply_buffer (QueueState & q, GstBuffer * buffer, bool sink)
{
  GstSegment & segment = sink ? q.sink_segment : q.src_segment;
  GstClockTime ts = GST_BUFFER_DTS_OR_PTS (buffer);
  if (!GST_CLOCK_TIME_IS_VALID (ts))
    ts = segment.position;
  if (GST_BUFFER_DURATION_IS_VALID (buffer) && GST_CLOCK_TIME_IS_VALID (ts))
    ts += GST_BUFFER_DURATION (buffer);
  set_position (q, sink, ts);
}

static void
apply_buffer_list (QueueState & q, GstBufferList * list, bool sink)
{
  GstSegment & segment = sink ? q.sink_segment : q.src_segment;
  GstClockTime ts = segment.position;
  guint n = gst_buffer_list_length (list);
  for (guint i = 0; i < n; i++) {
    GstBuffer *b = gst_buffer_list_get (list, i);
    GstClockTime bts = GST_BUFFER_DTS_OR_PTS (b);
    if (GST_CLOCK_TIME_IS_VALID (bts))
      ts = bts;
    if (GST_BUFFER_DURATION_IS_VALID (b) && GST_CLOCK_TIME_IS_VALID (ts))
      ts += GST_BUFFER_DURATION (b);
  }
  set_position (q, sink, ts);
}

static void
apply_segment (QueueState & q, GstEvent * event, bool sink)
{
  GstSegment & segment = sink ? q.sink_segment : q.src_segment;
  gst_event_copy_segment (event, &segment);
  const bool is_time = segment.format == GST_FORMAT_TIME;
  if (!is_time) {
    /* Levels are tracked in time: treat other formats as an open time
     * segment from 0, as queue does. */
    segment.format = GST_FORMAT_TIME;
    segment.start = 0;
    segment.stop = GST_CLOCK_TIME_NONE;
    segment.time = 0;
  }
  if (!sink)
    q.src_segment_is_time = is_time;
  (sink ? q.sink_tainted : q.src_tainted) = true;
  update_time_level (q);
}

static void
apply_gap (QueueState & q, GstEvent * event, bool sink)
{
  GstClockTime ts, duration;
  gst_event_parse_gap (event, &ts, &duration);
  if (!GST_CLOCK_TIME_IS_VALID (ts))
    return;
  if (GST_CLOCK_TIME_IS_VALID (duration))
    ts += duration;
  set_position (q, sink, ts);
}

/* ---- enqueue / dequeue ---- */

static void flush_locked (GstAdaptiveQueue * self, bool full);

/* Sets DISCONT on a buffer, or on the first buffer of a list. */
static void
mark_discont (GstMiniObject ** obj)
{
  if (GST_IS_BUFFER (*obj)) {
    GstBuffer *buffer = gst_buffer_make_writable (GST_BUFFER_CAST (*obj));
    GST_BUFFER_FLAG_SET (buffer, GST_BUFFER_FLAG_DISCONT);
    *obj = GST_MINI_OBJECT_CAST (buffer);
  } else {
    GstBufferList *list = gst_buffer_list_make_writable (GST_BUFFER_LIST_CAST (*obj));
    if (gst_buffer_list_length (list) > 0)
      GST_BUFFER_FLAG_SET (gst_buffer_list_get_writable (list, 0),
          GST_BUFFER_FLAG_DISCONT);
    *obj = GST_MINI_OBJECT_CAST (list);
  }
}

/* The buffer a list's timing comes from; null for an empty list. */
static GstBuffer *
first_buffer (GstMiniObject * obj)
{
  if (GST_IS_BUFFER (obj))
    return GST_BUFFER_CAST (obj);
  GstBufferList *list = GST_BUFFER_LIST_CAST (obj);
  return gst_buffer_list_length (list) > 0 ? gst_buffer_list_get (list, 0) : nullptr;
}


static void
push_item (QueueState & q, const Item & item)
{
  /* Buffers never get here while full, so the ring only grows for events
   * and queries, or when no buffer limit is set. */
  if (q.items.full ())
    q.items.set_capacity (q.items.capacity () * 2 + EVENT_HEADROOM);
  Item copy = item;
  q.items.push (std::move (copy));
}

/* Sizes the ring for the capacity so buffer pushes never allocate. A fixed
 * limit above the adaptive range (up to G_MAXUINT, as queue allows) is not
 * reserved up front: that would allocate gigabytes for an "unlimited" queue.
 * Beyond the reserve the ring grows as buffers actually arrive. */
static void
reserve_for_capacity (QueueState & q)
{
  size_t want = static_cast < size_t > (std::min (q.max.buffers,
          MAX_BOUND_BUFFERS)) + EVENT_HEADROOM;
  if (q.max.buffers > 0 && q.items.capacity () < want)
    q.items.set_capacity (want);
}

/* Queues data; returns the waiter to wake once the lock is released. */
static GCond *
enqueue_data (GstAdaptiveQueue * self, GstMiniObject * obj, guint buffers,
    guint bytes)
{
  QueueState & q = *self->q;
  push_item (q, Item {obj, buffers, bytes});
  q.cur.buffers += buffers;
  q.cur.bytes += bytes;
  q.max_level_buffers = std::max (q.max_level_buffers, q.cur.buffers);
  GstBuffer *first = first_buffer (obj);
  if (first && GST_BUFFER_DURATION_IS_VALID (first))
    q.buffer_duration = GST_BUFFER_DURATION (first);
  if (GST_IS_BUFFER (obj))
    apply_buffer (q, GST_BUFFER_CAST (obj), true);
  else
    apply_buffer_list (q, GST_BUFFER_LIST_CAST (obj), true);
  return note_add (self);
}

static void
enqueue_event (GstAdaptiveQueue * self, GstEvent * event)
{
  QueueState & q = *self->q;
  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_EOS:
      q.eos = true;
      if (q.flush_on_eos) {
        flush_locked (self, false);
      } else {
        /* Drain everything: the thresholds no longer hold data back. */
        q.min_threshold = Level {};
      }
      break;
    case GST_EVENT_SEGMENT:
      apply_segment (q, event, true);
      if (q.items.empty ()) {
        apply_segment (q, event, false);
        q.newseg_applied_to_src = true;
      }
      q.unexpected = false;
      break;
    case GST_EVENT_STREAM_START:
      q.unexpected = false;
      break;
    case GST_EVENT_GAP:
      apply_gap (q, event, true);
      break;
    default:
      break;
  }
  push_item (q, Item {GST_MINI_OBJECT_CAST (event), 0, 0});
  signal_add (self);
}

/* Answers a queued query that will never reach downstream. */
static void
abandon_query (QueueState & q, GstQuery * query, GCond * handled)
{
  q.queued_queries--;
  q.last_handled_query = query;
  q.last_query = false;
  g_cond_broadcast (handled);
}

/* Takes the head item and updates the levels. Returns false when empty.
 * With `waiter`, the caller wakes it after releasing the lock. */
static bool
dequeue (GstAdaptiveQueue * self, Item & item, GCond ** waiter = nullptr)
{
  QueueState & q = *self->q;
  if (!q.items.pop (item))
    return false;
  GstMiniObject *obj = item.object;
  if (GST_IS_BUFFER (obj)) {
    q.cur.buffers -= item.buffers;
    q.cur.bytes -= item.bytes;
    apply_buffer (q, GST_BUFFER_CAST (obj), false);
  } else if (GST_IS_BUFFER_LIST (obj)) {
    q.cur.buffers -= item.buffers;
    q.cur.bytes -= item.bytes;
    apply_buffer_list (q, GST_BUFFER_LIST_CAST (obj), false);
  } else if (GST_IS_EVENT (obj)) {
    GstEvent *event = GST_EVENT_CAST (obj);
    if (GST_EVENT_TYPE (event) == GST_EVENT_SEGMENT) {
      if (!q.newseg_applied_to_src)
        apply_segment (q, event, false);
      else
        q.newseg_applied_to_src = false;
    } else if (GST_EVENT_TYPE (event) == GST_EVENT_GAP) {
      apply_gap (q, event, false);
    }
  }
  if (waiter)
    *waiter = note_del (self);
  else
    signal_del (self);
  return true;
}

/* Drops items from the head until the buffer limits are met again. Sticky
 * events are stored on the src pad so they are not lost. A buffer waiting to
 * enter needs room for itself; a shrinking capacity only needs the level
 * brought down to it (`to_capacity`), so no more is dropped than necessary. */
static void
leak_downstream (GstAdaptiveQueue * self, bool to_capacity = false)
{
  QueueState & q = *self->q;
  Item item;
  while ((to_capacity ? q.cur.buffers > q.max.buffers : is_filled (q)) &&
      dequeue (self, item)) {
    GstMiniObject *obj = item.object;
    GST_LOG_OBJECT (self, "queue is full, leaking %" GST_PTR_FORMAT, (gpointer) obj);
    if (GST_IS_QUERY (obj)) {
      abandon_query (q, GST_QUERY_CAST (obj), &self->query_handled);
      continue;
    }
    if (GST_IS_EVENT (obj) && GST_EVENT_IS_STICKY (obj))
      gst_pad_store_sticky_event (self->srcpad, GST_EVENT_CAST (obj));
    q.drops += item.buffers;
    gst_mini_object_unref (obj);
    q.head_needs_discont = true;
  }
}

static void
flush_locked (GstAdaptiveQueue * self, bool full)
{
  QueueState & q = *self->q;
  Item item;
  q.flushes++;
  while (q.items.pop (item)) {
    GstMiniObject *obj = item.object;
    if (GST_IS_QUERY (obj)) {
      abandon_query (q, GST_QUERY_CAST (obj), &self->query_handled);
      continue;
    }
    /* Keep sticky events (not segment or EOS) across a flush. */
    if (!full && GST_IS_EVENT (obj) && GST_EVENT_IS_STICKY (obj) &&
        GST_EVENT_TYPE (obj) != GST_EVENT_SEGMENT &&
        GST_EVENT_TYPE (obj) != GST_EVENT_EOS)
      gst_pad_store_sticky_event (self->srcpad, GST_EVENT_CAST (obj));
    gst_mini_object_unref (obj);
  }
  q.queued_queries = 0;
  q.last_query = false;
  g_cond_broadcast (&self->query_handled);
  q.cur = Level {};
  q.min_threshold = q.orig_min_threshold;
  gst_segment_init (&q.sink_segment, GST_FORMAT_TIME);
  gst_segment_init (&q.src_segment, GST_FORMAT_TIME);
  q.src_segment_is_time = true;
  q.newseg_applied_to_src = false;
  q.head_needs_discont = q.tail_needs_discont = false;
  q.sinktime = q.srctime = GST_CLOCK_STIME_NONE;
  q.sink_tainted = q.src_tainted = true;
  signal_del (self);
}

/* ---- latency measurement (queue lock held) ---- */

/* How late the buffer is at output: clock running time now minus buffer
 * running time. Needs a clock, PLAYING, a TIME segment and a timestamp. */
static std::optional<gint64>
clock_latency (GstAdaptiveQueue * self, GstBuffer * buffer)
{
  QueueState & q = *self->q;
  if (!q.clock || !q.src_segment_is_time)
    return std::nullopt;
  GstClockTime ts = GST_BUFFER_PTS_IS_VALID (buffer) ? GST_BUFFER_PTS (buffer)
      : GST_BUFFER_DTS (buffer);
  gint64 buffer_rt = segment_running_time (&q.src_segment, ts);
  if (!GST_CLOCK_STIME_IS_VALID (buffer_rt))
    return std::nullopt;
  GST_OBJECT_LOCK (self);
  const bool playing = GST_STATE (self) == GST_STATE_PLAYING;
  const GstClockTime base_time = GST_ELEMENT_CAST (self)->base_time;
  GST_OBJECT_UNLOCK (self);
  if (!playing || !GST_CLOCK_TIME_IS_VALID (base_time))
    return std::nullopt;
  GstClockTime now = gst_clock_get_time (q.clock);
  if (!GST_CLOCK_TIME_IS_VALID (now) || now < base_time)
    return std::nullopt;
  const gint64 running = static_cast < gint64 > (now - base_time);
  /* Saturate rather than overflow for a running time far before 0. */
  if (buffer_rt < 0 && running > G_MAXINT64 + buffer_rt)
    return G_MAXINT64;
  /* An early buffer is not late at all. */
  return std::max < gint64 > (0, running - buffer_rt);
}

/* Time the queue itself adds: the time level behind this buffer. Only
 * meaningful for timestamped buffers in a TIME segment. */
static std::optional<gint64>
queued_latency (const QueueState & q, GstBuffer * buffer)
{
  if (!q.src_segment_is_time || !GST_CLOCK_TIME_IS_VALID (GST_BUFFER_DTS_OR_PTS (buffer)))
    return std::nullopt;
  return static_cast < gint64 > (q.cur.time);
}

static void
sample_latency (GstAdaptiveQueue * self, GstBuffer * buffer)
{
  QueueState & q = *self->q;
  std::optional<gint64> sample;
  switch (q.latency_source) {
    case GST_ADAPTIVE_QUEUE_LATENCY_CLOCK:
      sample = clock_latency (self, buffer);
      break;
    case GST_ADAPTIVE_QUEUE_LATENCY_QUEUED:
      sample = queued_latency (q, buffer);
      break;
    case GST_ADAPTIVE_QUEUE_LATENCY_AUTO:
      sample = clock_latency (self, buffer);
      if (!sample)
        sample = queued_latency (q, buffer);
      break;
  }
  if (sample)
    q.latency.add (*sample);
}

/* ---- the src pad task ---- */


/* Releases the queue lock, then wakes `waiter` if set, once. */
static inline void
unlock_and_wake (GstAdaptiveQueue * self, GCond *& waiter)
{
  QUNLOCK (self);
  wake (waiter);
  waiter = nullptr;
}

/* Pushes the head item downstream. Called and returns with the lock held;
 * returns the flow result, or the flushing result when the lock check fails. */
static GstFlowReturn
push_one (GstAdaptiveQueue * self)
{
  QueueState & q = *self->q;
  Item item;
  GstFlowReturn result = GST_FLOW_OK;
  GCond *waiter = nullptr;

  if (!dequeue (self, item, &waiter))
    return GST_FLOW_OK;

next:
  GstMiniObject *obj = item.object;
  if (GST_IS_BUFFER (obj) || GST_IS_BUFFER_LIST (obj)) {
    const bool is_list = GST_IS_BUFFER_LIST (obj);
    if (q.head_needs_discont) {
      mark_discont (&obj);
      q.head_needs_discont = false;
    }
    if (GstBuffer * first = first_buffer (obj))
      sample_latency (self, first);
    q.pushed += item.buffers;
    const guint64 flushes = q.flushes;
    unlock_and_wake (self, waiter);
    result = is_list ? gst_pad_push_list (self->srcpad, GST_BUFFER_LIST_CAST (obj))
        : gst_pad_push (self->srcpad, GST_BUFFER_CAST (obj));
    QLOCK (self);
    if (q.srcresult != GST_FLOW_OK)
      return q.srcresult;
    if (q.flushes != flushes)
      return GST_FLOW_OK;
    if (result == GST_FLOW_EOS) {
      GST_DEBUG_OBJECT (self, "downstream returned EOS, dropping until a new segment");
      /* Drop data until an item downstream can take again: EOS, SEGMENT
       * or STREAM_START. */
      while (dequeue (self, item)) {
        obj = item.object;
        if (GST_IS_EVENT (obj)) {
          GstEventType type = GST_EVENT_TYPE (obj);
          if (type == GST_EVENT_EOS || type == GST_EVENT_SEGMENT ||
              type == GST_EVENT_STREAM_START) {
            /* The EOS was the dropped buffer's, not this event's. */
            result = GST_FLOW_OK;
            goto next;
          }
          gst_mini_object_unref (obj);
        } else if (GST_IS_QUERY (obj)) {
          abandon_query (q, GST_QUERY_CAST (obj), &self->query_handled);
        } else {
          q.drops += item.buffers;
          gst_mini_object_unref (obj);
        }
      }
      /* Refuse buffers at the sink pad until a new segment arrives, but keep
       * the task running so that EOS and SEGMENT still pass. */
      q.unexpected = true;
      result = GST_FLOW_OK;
    }
  } else if (GST_IS_EVENT (obj)) {
    GstEvent *event = GST_EVENT_CAST (obj);
    const GstEventType type = GST_EVENT_TYPE (event);
    const guint64 flushes = q.flushes;
    unlock_and_wake (self, waiter);
    gst_pad_push_event (self->srcpad, event);
    QLOCK (self);
    if (q.srcresult != GST_FLOW_OK)
      return q.srcresult;
    /* Flushed meanwhile: an EOS of the old stream must not end the new one. */
    if (q.flushes != flushes)
      return GST_FLOW_OK;
    /* Pause after EOS only when nothing follows it: a new stream
     * (STREAM_START or SEGMENT after EOS) may already be queued behind. */
    if (type == GST_EVENT_EOS && q.items.empty ())
      result = GST_FLOW_EOS;
  } else if (GST_IS_QUERY (obj)) {
    GstQuery *query = GST_QUERY_CAST (obj);
    q.query_in_flight = query;
    unlock_and_wake (self, waiter);
    const bool answered = gst_pad_peer_query (self->srcpad, query);
    QLOCK (self);
    q.query_in_flight = nullptr;
    q.queued_queries--;
    q.last_query = answered;
    q.last_handled_query = query;
    g_cond_broadcast (&self->query_handled);
    if (q.srcresult != GST_FLOW_OK)
      return q.srcresult;
  }
  wake (waiter);  /* no branch above released the lock */
  return result;
}

static void
loop (GstPad * pad)
{
  auto *self = GST_ADAPTIVE_QUEUE (GST_PAD_PARENT (pad));
  QueueState & q = *self->q;
  GstFlowReturn ret;

  QLOCK (self);
  if (q.srcresult != GST_FLOW_OK)
    goto out_flushing;

  while (is_empty (q)) {
    q.underruns++;
    if (!q.silent && !emit_unlocked (self, SIGNAL_UNDERRUN))
      goto out_flushing;
    /* A handler may have changed the thresholds. */
    while (is_empty (q)) {
      if (!wait_add (self))
        goto out_flushing;
    }
    if (!q.silent && (!emit_unlocked (self, SIGNAL_RUNNING) ||
            !emit_unlocked (self, SIGNAL_PUSHING)))
      goto out_flushing;
  }

  /* Keep pushing while data is ready: one lock round and one task
   * iteration fewer per item. Bounded so the task still cycles. */
  for (int n = 1;; n++) {
    ret = push_one (self);
    if (q.srcresult != GST_FLOW_OK)
      goto out_flushing;
    q.srcresult = ret;
    if (ret != GST_FLOW_OK)
      goto out_flushing;
    if (n == PUSHES_PER_ITERATION || is_empty (q))
      break;
  }
  QUNLOCK (self);
  return;

out_flushing:
  {
    const bool eos = q.eos;
    const GstFlowReturn result = q.srcresult;
    GST_DEBUG_OBJECT (self, "pausing task, reason %s", gst_flow_get_name (result));
    gst_pad_pause_task (self->srcpad);
    wake_all (self);
    QUNLOCK (self);
    /* Upstream has finished, so nobody else will report the error. */
    if (eos && (result == GST_FLOW_NOT_LINKED || result < GST_FLOW_EOS)) {
      GST_ELEMENT_FLOW_ERROR (self, result);
      gst_pad_push_event (self->srcpad, gst_event_new_eos ());
    }
  }
}

/* ---- sink pad ---- */

static GstFlowReturn
chain_data (GstAdaptiveQueue * self, GstMiniObject * obj, guint buffers,
    guint bytes)
{
  QueueState & q = *self->q;
  GstFlowReturn ret;
  GCond *waiter;

  QLOCK (self);
  if (q.srcresult != GST_FLOW_OK)
    goto out_flushing;
  if (q.eos || q.unexpected) {
    ret = GST_FLOW_EOS;
    goto out_unref;
  }

  while (is_filled (q)) {
    q.overruns++;
    if (!q.silent && !emit_unlocked (self, SIGNAL_OVERRUN))
      goto out_flushing;
    /* A handler may have changed the limits. */
    if (!is_filled (q))
      break;
    if (q.leaky == GST_ADAPTIVE_QUEUE_LEAK_UPSTREAM) {
      GST_LOG_OBJECT (self, "queue is full, leaking incoming %" GST_PTR_FORMAT,
          (gpointer) obj);
      q.tail_needs_discont = true;
      q.drops += buffers;
      ret = GST_FLOW_OK;
      goto out_unref;
    }
    if (q.leaky == GST_ADAPTIVE_QUEUE_LEAK_DOWNSTREAM) {
      leak_downstream (self);
      continue;
    }
    do {
      if (!wait_del (self))
        goto out_flushing;
    } while (is_filled (q));
    if (!q.silent && !emit_unlocked (self, SIGNAL_RUNNING))
      goto out_flushing;
  }

  if (q.tail_needs_discont) {
    mark_discont (&obj);
    q.tail_needs_discont = false;
  }
  waiter = enqueue_data (self, obj, buffers, bytes);
  QUNLOCK (self);
  wake (waiter);
  return GST_FLOW_OK;

out_flushing:
  ret = q.srcresult;
  GST_LOG_OBJECT (self, "refusing data, task paused: %s", gst_flow_get_name (ret));
out_unref:
  QUNLOCK (self);
  gst_mini_object_unref (obj);
  return ret;
}

static GstFlowReturn
sink_chain (GstPad *, GstObject * parent, GstBuffer * buffer)
{
  return chain_data (GST_ADAPTIVE_QUEUE (parent), GST_MINI_OBJECT_CAST (buffer),
      1, static_cast < guint > (gst_buffer_get_size (buffer)));
}

static GstFlowReturn
sink_chain_list (GstPad *, GstObject * parent, GstBufferList * list)
{
  return chain_data (GST_ADAPTIVE_QUEUE (parent), GST_MINI_OBJECT_CAST (list),
      gst_buffer_list_length (list),
      static_cast < guint > (gst_buffer_list_calculate_size (list)));
}

static gboolean
sink_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  auto *self = GST_ADAPTIVE_QUEUE (parent);
  QueueState & q = *self->q;

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_FLUSH_START:
    {
      gboolean res = gst_pad_push_event (self->srcpad, event);
      QLOCK (self);
      q.srcresult = GST_FLOW_FLUSHING;
      q.last_query = false;
      wake_all (self);
      QUNLOCK (self);
      /* Downstream is flushing too, so the task returns promptly. */
      gst_pad_pause_task (self->srcpad);
      return res;
    }
    case GST_EVENT_FLUSH_STOP:
    {
      gboolean res = gst_pad_push_event (self->srcpad, event);
      QLOCK (self);
      flush_locked (self, false);
      q.srcresult = GST_FLOW_OK;
      q.eos = false;
      q.unexpected = false;
      if (gst_pad_is_active (self->srcpad))
        gst_pad_start_task (self->srcpad, (GstTaskFunction) loop, self->srcpad,
            nullptr);
      QUNLOCK (self);
      return res;
    }
    default:
      break;
  }

  if (!GST_EVENT_IS_SERIALIZED (event))
    return gst_pad_push_event (self->srcpad, event);

  QLOCK (self);
  /* STREAM_START and SEGMENT end an EOS: a new stream may follow. */
  const bool new_stream = GST_EVENT_TYPE (event) == GST_EVENT_STREAM_START ||
      GST_EVENT_TYPE (event) == GST_EVENT_SEGMENT;
  if (new_stream && q.srcresult == GST_FLOW_EOS)
    q.srcresult = GST_FLOW_OK;
  if (q.srcresult != GST_FLOW_OK) {
    const GstFlowReturn result = q.srcresult;
    /* Sticky events are kept for when data flows again; EOS that no data
     * follows reports the error now. */
    if (!GST_EVENT_IS_STICKY (event) || GST_EVENT_TYPE (event) == GST_EVENT_EOS) {
      QUNLOCK (self);
      if (GST_EVENT_TYPE (event) == GST_EVENT_EOS &&
          (result == GST_FLOW_NOT_LINKED || result < GST_FLOW_EOS))
        GST_ELEMENT_FLOW_ERROR (self, result);
      GST_LOG_OBJECT (pad, "refusing %" GST_PTR_FORMAT ": %s", (gpointer) event,
          gst_flow_get_name (result));
      gst_event_unref (event);
      return FALSE;
    }
  }
  if (q.eos && !new_stream) {
    QUNLOCK (self);
    GST_LOG_OBJECT (pad, "refusing %" GST_PTR_FORMAT " after EOS", (gpointer) event);
    gst_event_unref (event);
    return FALSE;
  }
  if (q.eos) {
    /* The task paused after pushing EOS: restart it for the new stream.
     * Not when it paused on an error, which only a flush (or, for
     * NOT_LINKED, a relink) ends: downstream has had our EOS, and would
     * refuse what is still queued. queue restarts here and so drops it. */
    q.eos = false;
    q.unexpected = false;
    if (q.srcresult == GST_FLOW_OK && GST_PAD_MODE (self->srcpad) == GST_PAD_MODE_PUSH)
      gst_pad_start_task (self->srcpad, (GstTaskFunction) loop, self->srcpad,
          nullptr);
  }
  enqueue_event (self, event);
  QUNLOCK (self);
  return TRUE;
}

/* Takes a query its caller gives up on out of the ring, keeping the order
 * of the rest: once the caller returns, the query may be freed, so nothing
 * may push, flush or even inspect it later. */
static void
forget_query (QueueState & q, GstQuery * query)
{
  const size_t n = q.items.size ();
  for (size_t i = 0; i < n; i++) {
    Item item;
    q.items.pop (item);
    if (item.object == GST_MINI_OBJECT_CAST (query))
      q.queued_queries--;
    else
      q.items.push (std::move (item));
  }
}

static gboolean
sink_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  auto *self = GST_ADAPTIVE_QUEUE (parent);
  QueueState & q = *self->q;

  if (!GST_QUERY_IS_SERIALIZED (query))
    return gst_pad_query_default (pad, parent, query);

  /* Serialized queries wait their turn behind the data, but never for
   * space: they do not count towards the limits. */
  QLOCK (self);
  if (q.srcresult != GST_FLOW_OK) {
    QUNLOCK (self);
    return FALSE;
  }
  GST_LOG_OBJECT (pad, "queuing %" GST_PTR_FORMAT, (gpointer) query);
  push_item (q, Item {GST_MINI_OBJECT_CAST (query), 0, 0});
  q.queued_queries++;
  signal_add (self);
  /* Stop waiting when the task stops, but never while it still holds the
   * query: the caller frees it once we return. */
  while (q.last_handled_query != query &&
      (q.srcresult == GST_FLOW_OK || q.query_in_flight == query))
    g_cond_wait (&self->query_handled, &self->qlock);
  const bool handled = q.last_handled_query == query;
  if (handled)
    q.last_handled_query = nullptr;
  else
    forget_query (q, query);
  const gboolean res = handled && q.last_query;
  QUNLOCK (self);
  return res;
}

static gboolean
sink_activate_mode (GstPad * pad, GstObject * parent, GstPadMode mode,
    gboolean active)
{
  auto *self = GST_ADAPTIVE_QUEUE (parent);
  QueueState & q = *self->q;
  if (mode != GST_PAD_MODE_PUSH)
    return FALSE;
  if (active) {
    QLOCK (self);
    q.srcresult = GST_FLOW_OK;
    q.eos = false;
    q.unexpected = false;
    QUNLOCK (self);
    return TRUE;
  }
  QLOCK (self);
  q.srcresult = GST_FLOW_FLUSHING;
  wake_all (self);
  QUNLOCK (self);
  /* Wait for the chain function to leave before dropping everything. */
  GST_PAD_STREAM_LOCK (pad);
  QLOCK (self);
  flush_locked (self, true);
  QUNLOCK (self);
  GST_PAD_STREAM_UNLOCK (pad);
  return TRUE;
}

/* ---- src pad ---- */

static gboolean
src_activate_mode (GstPad * pad, GstObject * parent, GstPadMode mode,
    gboolean active)
{
  auto *self = GST_ADAPTIVE_QUEUE (parent);
  QueueState & q = *self->q;
  if (mode != GST_PAD_MODE_PUSH)
    return FALSE;
  QLOCK (self);
  if (active) {
    q.srcresult = GST_FLOW_OK;
    q.eos = false;
    q.unexpected = false;
    gboolean started = gst_pad_start_task (pad, (GstTaskFunction) loop, pad,
        nullptr);
    QUNLOCK (self);
    return started;
  }
  q.srcresult = GST_FLOW_FLUSHING;
  wake_all (self);
  QUNLOCK (self);
  return gst_pad_stop_task (pad);
}

static gboolean
src_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  auto *self = GST_ADAPTIVE_QUEUE (parent);
  if (GST_EVENT_TYPE (event) == GST_EVENT_RECONFIGURE) {
    QLOCK (self);
    /* Downstream may be linked again: try pushing once more. */
    if (self->q->srcresult == GST_FLOW_NOT_LINKED) {
      self->q->srcresult = GST_FLOW_OK;
      gst_pad_start_task (pad, (GstTaskFunction) loop, pad, nullptr);
    }
    QUNLOCK (self);
  }
  return gst_pad_push_event (self->sinkpad, event);
}

/* The time the buffer limit can hold: max-size-time when set, otherwise the
 * adaptive capacity times the last buffer duration, or NONE if unknown. */
static GstClockTime
time_capacity_locked (const QueueState & q)
{
  if (q.max.time > 0)
    return q.max.time;
  if (q.max.buffers > 0 && GST_CLOCK_TIME_IS_VALID (q.buffer_duration))
    return q.max.buffers * q.buffer_duration;
  return GST_CLOCK_TIME_NONE;
}

/* a + b for valid latencies, saturated below GST_CLOCK_TIME_NONE: huge
 * thresholds or limits must not wrap, or turn a latency into "none". */
static GstClockTime
add_latency (GstClockTime a, GstClockTime b)
{
  const GstClockTime largest = GST_CLOCK_TIME_NONE - 1;
  return b > largest - a ? largest : a + b;
}

static gboolean
src_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  auto *self = GST_ADAPTIVE_QUEUE (parent);
  QueueState & q = *self->q;

  if (!gst_pad_query_default (pad, parent, query))
    return FALSE;

  switch (GST_QUERY_TYPE (query)) {
    case GST_QUERY_POSITION:
    {
      GstFormat format;
      gint64 pos;
      gst_query_parse_position (query, &format, &pos);
      if (pos < 0 || (format != GST_FORMAT_BYTES && format != GST_FORMAT_TIME))
        break;
      QLOCK (self);
      /* Upstream is ahead of us by what we hold. */
      const gint64 held = format == GST_FORMAT_BYTES ? q.cur.bytes
          : static_cast < gint64 > (q.cur.time);
      QUNLOCK (self);
      gst_query_set_position (query, format, std::max < gint64 > (0, pos - held));
      break;
    }
    case GST_QUERY_LATENCY:
    {
      gboolean live;
      GstClockTime min, max;
      gst_query_parse_latency (query, &live, &min, &max);
      QLOCK (self);
      const GstClockTime limit = time_capacity_locked (q);
      const bool leaky = q.leaky != GST_ADAPTIVE_QUEUE_NO_LEAK;
      const guint64 min_threshold = q.min_threshold.time;
      QUNLOCK (self);
      /* We can delay data by up to what the limit holds. A leaky queue
       * never blocks upstream, so, as queue does, it reports the larger of
       * upstream's max and its own capacity rather than their sum (NONE
       * stays NONE). */
      if (!GST_CLOCK_TIME_IS_VALID (limit))
        max = GST_CLOCK_TIME_NONE;
      else if (leaky)
        max = GST_CLOCK_TIME_IS_VALID (max) ? std::max (max, limit) : max;
      else if (GST_CLOCK_TIME_IS_VALID (max))
        max = add_latency (max, limit);
      if (min_threshold > 0 && GST_CLOCK_TIME_IS_VALID (min))
        min = add_latency (min, min_threshold);
      gst_query_set_latency (query, live, min, max);
      break;
    }
    default:
      break;
  }
  return TRUE;
}

/* ---- adaptation tick ---- */

static void schedule_tick_locked (GstAdaptiveQueue * self, GstClockTime delay);

/* Posts what the tick decided, outside every lock. */
struct TickOutcome
{
  GstMessage *adaptation = nullptr;
  std::string config_warning;
  std::string load_warning;
  bool latency_changed = false;
};

static void
ensure_subscription_locked (GstAdaptiveQueue * self, const Settings & s)
{
  TickState & t = *self->tick;
  if (t.subscription && t.subscribed_root == s.proc_root &&
      t.subscribed_scope == s.scope) {
    t.subscription->set_interval (static_cast < int64_t > (s.interval));
    return;
  }
  t.subscription.reset ();
  t.subscription = aq::SharedSampler::subscribe (s.proc_root, s.scope,
      static_cast < int64_t > (s.interval));
  t.subscribed_root = s.proc_root;
  t.subscribed_scope = s.scope;
}

/* One tick: validate, sample, decide, resize. Tick lock held. */
static TickOutcome
run_tick_locked (GstAdaptiveQueue * self, const Settings & s)
{
  TickState & t = *self->tick;
  QueueState & q = *self->q;
  TickOutcome out;

  t.ticks++;
  const auto errors = aq::validate (s.policy);
  if (!errors.empty ()) {
    std::string text = aq::describe (errors);
    if (text != t.warned_config)
      out.config_warning = t.warned_config = text;
  } else {
    t.warned_config.clear ();
  }
  if (!s.adaptive)
    return out;

  ensure_subscription_locked (self, s);
  const aq::SharedReading reading = t.subscription->latest ();
  if (!reading.sample) {
    t.skipped_ticks++;
    t.good_load_ticks = 0;
    GST_DEBUG_OBJECT (self, "tick skipped: %s", reading.reason.c_str ());
    if (!reading.warming_up && t.warned_loads.size () < MAX_LOAD_WARNINGS &&
        t.warned_loads.insert (reading.reason).second)
      out.load_warning = reading.reason;
    return out;
  }
  if (++t.good_load_ticks >= LOAD_RECOVERY_TICKS)
    t.warned_loads.clear ();
  t.last_sample = reading.sample;

  const aq::PolicyConfig & config = s.last_valid;
  QLOCK (self);
  const std::optional<int64_t> latency = q.latency.average ();
  t.policy.set_capacity (q.max.buffers);
  const GstClockTime limit_before = time_capacity_locked (q);
  const aq::Decision decision = t.policy.step (config, *reading.sample, latency,
      static_cast < int64_t > (gst_util_get_timestamp ()));
  t.last_decision = decision;
  if (decision.applied && decision.new_capacity != q.max.buffers) {
    const guint old_capacity = q.max.buffers;
    q.max.buffers = decision.new_capacity;
    reserve_for_capacity (q);
    if (decision.new_capacity < old_capacity &&
        q.leaky == GST_ADAPTIVE_QUEUE_LEAK_DOWNSTREAM)
      leak_downstream (self, true);
    /* With leaky=no upstream simply waits; leaky=upstream drops on entry.
     * Both sides re-check: growing makes room upstream, and shrinking can
     * make the queue full, which overrides a min threshold the task is
     * waiting on. */
    wake_all (self);
  }
  const guint level = q.cur.buffers;
  out.latency_changed = time_capacity_locked (q) != limit_before;
  QUNLOCK (self);

  GST_DEBUG_OBJECT (self, "tick: cpu %.1f%% mem %.1f%% latency %" G_GINT64_FORMAT
      " ns, factors cpu %.3f mem %.3f lat %.3f -> %.3f, capacity %u -> %u%s",
      reading.sample->cpu_percent, reading.sample->mem_percent,
      latency.value_or (-1), decision.cpu_factor, decision.mem_factor,
      decision.latency_factor, decision.combined, decision.old_capacity,
      decision.new_capacity, decision.applied ? "" : " (dead band)");

  if (decision.applied) {
    GstStructure *st = gst_structure_new (ADAPTATION_MESSAGE,
        "old-capacity", G_TYPE_UINT, decision.old_capacity,
        "new-capacity", G_TYPE_UINT, decision.new_capacity,
        "level-buffers", G_TYPE_UINT, level,
        "cpu-percent", G_TYPE_DOUBLE, reading.sample->cpu_percent,
        "mem-percent", G_TYPE_DOUBLE, reading.sample->mem_percent,
        "latency-average", G_TYPE_INT64, latency.value_or (-1),
        "cpu-factor", G_TYPE_DOUBLE, decision.cpu_factor,
        "mem-factor", G_TYPE_DOUBLE, decision.mem_factor,
        "latency-factor", G_TYPE_DOUBLE, decision.latency_factor,
        "combined-factor", G_TYPE_DOUBLE, decision.combined,
        "adaptations", G_TYPE_UINT64, t.policy.adaptations (), nullptr);
    out.adaptation = gst_message_new_element (GST_OBJECT_CAST (self), st);
  }
  return out;
}

static gboolean
on_tick (GstClock *, GstClockTime, GstClockID id, gpointer user_data)
{
  auto *self = static_cast < GstAdaptiveQueue * >(g_weak_ref_get (
          static_cast < GWeakRef * >(user_data)));
  if (!self)
    return TRUE;
  TickOutcome out;

  GST_OBJECT_LOCK (self);
  const Settings settings = *self->settings;
  GST_OBJECT_UNLOCK (self);

  g_mutex_lock (&self->tick_lock);
  if (!self->tick->running || self->tick->id != id) {
    g_mutex_unlock (&self->tick_lock);
    gst_object_unref (self);
    return TRUE;
  }
  out = run_tick_locked (self, settings);
  schedule_tick_locked (self, settings.interval);
  g_mutex_unlock (&self->tick_lock);

  if (!out.config_warning.empty ())
    GST_ELEMENT_WARNING (self, LIBRARY, SETTINGS,
        ("Invalid adaptive configuration, keeping the last valid one"),
        ("%s", out.config_warning.c_str ()));
  if (!out.load_warning.empty ())
    GST_ELEMENT_WARNING (self, RESOURCE, READ,
        ("Cannot read system load, adaptation paused"),
        ("%s", out.load_warning.c_str ()));
  if (out.adaptation)
    gst_element_post_message (GST_ELEMENT_CAST (self), out.adaptation);
  if (out.latency_changed)
    gst_element_post_message (GST_ELEMENT_CAST (self),
        gst_message_new_latency (GST_OBJECT_CAST (self)));
  gst_object_unref (self);
  return TRUE;
}

static void
free_weak_ref (gpointer data)
{
  auto *ref = static_cast < GWeakRef * >(data);
  g_weak_ref_clear (ref);
  g_free (ref);
}

static void
schedule_tick_locked (GstAdaptiveQueue * self, GstClockTime delay)
{
  TickState & t = *self->tick;
  GstClock *clock = gst_system_clock_obtain ();
  if (t.id)
    gst_clock_id_unref (t.id);
  t.id = gst_clock_new_single_shot_id (clock, gst_clock_get_time (clock) + delay);
  /* A weak reference: an unscheduled wait is released by the clock's
   * thread some time later, and must not keep the element alive till then. */
  GWeakRef *ref = g_new0 (GWeakRef, 1);
  g_weak_ref_init (ref, self);
  gst_clock_id_wait_async (t.id, on_tick, ref, free_weak_ref);
  gst_object_unref (clock);
}

static void
start_ticks (GstAdaptiveQueue * self)
{
  GST_OBJECT_LOCK (self);
  const Settings settings = *self->settings;
  GST_OBJECT_UNLOCK (self);

  g_mutex_lock (&self->tick_lock);
  self->tick->running = true;
  /* Subscribing now gives the sampler an interval to take its first two
   * readings before the first tick. */
  if (settings.adaptive)
    ensure_subscription_locked (self, settings);
  schedule_tick_locked (self, settings.interval);
  g_mutex_unlock (&self->tick_lock);
}

static void
stop_ticks (GstAdaptiveQueue * self)
{
  std::unique_ptr<aq::SharedSampler::Subscription> subscription;
  g_mutex_lock (&self->tick_lock);
  TickState & t = *self->tick;
  t.running = false;
  if (t.id) {
    gst_clock_id_unschedule (t.id);
    gst_clock_id_unref (t.id);
    t.id = nullptr;
  }
  subscription = std::move (t.subscription);
  g_mutex_unlock (&self->tick_lock);
  /* The last subscription joins the sampler thread: do it unlocked. */
}

/* ---- properties ---- */

/* Moves the capacity, clamped to the bounds while adapting. */
static void
set_capacity (GstAdaptiveQueue * self, guint requested)
{
  GST_OBJECT_LOCK (self);
  const bool adaptive = self->settings->adaptive;
  const aq::PolicyConfig bounds = self->settings->last_valid;
  GST_OBJECT_UNLOCK (self);
  guint capacity = adaptive ? std::clamp (requested, bounds.min_buffers,
      bounds.max_buffers) : requested;
  QLOCK (self);
  self->q->max.buffers = capacity;
  reserve_for_capacity (*self->q);
  wake_all (self);
  QUNLOCK (self);
}

static GstStructure *
build_stats (GstAdaptiveQueue * self)
{
  g_mutex_lock (&self->tick_lock);
  const TickState & t = *self->tick;
  QLOCK (self);
  const QueueState & q = *self->q;
  const aq::LoadSample load = t.last_sample.value_or (aq::LoadSample {});
  GstStructure *st = gst_structure_new (STATS_STRUCTURE,
      "capacity", G_TYPE_UINT, q.max.buffers,
      "current-level-buffers", G_TYPE_UINT, q.cur.buffers,
      "current-level-bytes", G_TYPE_UINT, q.cur.bytes,
      "current-level-time", G_TYPE_UINT64, q.cur.time,
      "max-level-buffers", G_TYPE_UINT, q.max_level_buffers,
      "latency-average", G_TYPE_INT64, q.latency.average ().value_or (-1),
      "latency-max", G_TYPE_INT64, q.latency.max ().value_or (-1),
      "latency-samples", G_TYPE_UINT64, q.latency.count (),
      "load-valid", G_TYPE_BOOLEAN, t.last_sample.has_value (),
      "cpu-percent", G_TYPE_DOUBLE, load.cpu_percent,
      "mem-percent", G_TYPE_DOUBLE, load.mem_percent,
      "cpu-factor", G_TYPE_DOUBLE, t.last_decision.cpu_factor,
      "mem-factor", G_TYPE_DOUBLE, t.last_decision.mem_factor,
      "latency-factor", G_TYPE_DOUBLE, t.last_decision.latency_factor,
      "combined-factor", G_TYPE_DOUBLE, t.last_decision.combined,
      "adaptations", G_TYPE_UINT64, t.policy.adaptations (),
      "ticks", G_TYPE_UINT64, t.ticks,
      "skipped-ticks", G_TYPE_UINT64, t.skipped_ticks,
      "drops", G_TYPE_UINT64, q.drops,
      "overruns", G_TYPE_UINT64, q.overruns,
      "underruns", G_TYPE_UINT64, q.underruns,
      "buffers-pushed", G_TYPE_UINT64, q.pushed, nullptr);
  QUNLOCK (self);
  g_mutex_unlock (&self->tick_lock);
  return st;
}

/* Stores an adaptation setting; the configuration it completes becomes the
 * one ticks use if it validates. Object lock held. */
static void
policy_changed_locked (GstAdaptiveQueue * self)
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
      set_capacity (self, g_value_get_uint (value));
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
      QLOCK (self);
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
      wake_all (self);
      QUNLOCK (self);
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
    case PROP_CPU_LOW:
      s.policy.cpu_low = g_value_get_double (value);
      break;
    case PROP_CPU_HIGH:
      s.policy.cpu_high = g_value_get_double (value);
      break;
    case PROP_MEM_LOW:
      s.policy.mem_low = g_value_get_double (value);
      break;
    case PROP_MEM_HIGH:
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
    case PROP_INTERVAL:
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
  policy_changed_locked (self);
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
    case PROP_CUR_LEVEL_BUFFERS:
    case PROP_CUR_LEVEL_BYTES:
    case PROP_CUR_LEVEL_TIME:
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
      QLOCK (self);
      switch (prop_id) {
        case PROP_CUR_LEVEL_BUFFERS:
          g_value_set_uint (value, q.cur.buffers);
          break;
        case PROP_CUR_LEVEL_BYTES:
          g_value_set_uint (value, q.cur.bytes);
          break;
        case PROP_CUR_LEVEL_TIME:
          g_value_set_uint64 (value, q.cur.time);
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
      QUNLOCK (self);
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
    case PROP_CPU_LOW:
      g_value_set_double (value, s.policy.cpu_low);
      break;
    case PROP_CPU_HIGH:
      g_value_set_double (value, s.policy.cpu_high);
      break;
    case PROP_MEM_LOW:
      g_value_set_double (value, s.policy.mem_low);
      break;
    case PROP_MEM_HIGH:
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
    case PROP_INTERVAL:
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
  QLOCK (self);
  gst_object_replace ((GstObject **) & self->q->clock, (GstObject *) clock);
  QUNLOCK (self);
  return GST_ELEMENT_CLASS (parent_class)->set_clock (element, clock);
}

static GstStateChangeReturn
change_state (GstElement * element, GstStateChange transition)
{
  auto *self = GST_ADAPTIVE_QUEUE (element);

  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED) {
    QLOCK (self);
    self->q->latency.reset ();
    QUNLOCK (self);
    start_ticks (self);
  }

  GstStateChangeReturn ret =
      GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);

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

  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad, sink_chain);
  gst_pad_set_chain_list_function (self->sinkpad, sink_chain_list);
  gst_pad_set_event_function (self->sinkpad, sink_event);
  gst_pad_set_query_function (self->sinkpad, sink_query);
  gst_pad_set_activatemode_function (self->sinkpad, sink_activate_mode);
  GST_PAD_SET_PROXY_CAPS (self->sinkpad);
  GST_PAD_SET_PROXY_ALLOCATION (self->sinkpad);
  GST_PAD_SET_PROXY_SCHEDULING (self->sinkpad);
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_set_event_function (self->srcpad, src_event);
  gst_pad_set_query_function (self->srcpad, src_query);
  gst_pad_set_activatemode_function (self->srcpad, src_activate_mode);
  GST_PAD_SET_PROXY_CAPS (self->srcpad);
  GST_PAD_SET_PROXY_ALLOCATION (self->srcpad);
  GST_PAD_SET_PROXY_SCHEDULING (self->srcpad);
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);
}

static void
finalize (GObject * object)
{
  auto *self = GST_ADAPTIVE_QUEUE (object);
  stop_ticks (self);
  Item item;
  while (self->q->items.pop (item))
    if (!GST_IS_QUERY (item.object))
      gst_mini_object_unref (item.object);
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
  g_object_class_install_property (gobject_class, PROP_CUR_LEVEL_BUFFERS,
      g_param_spec_uint ("current-level-buffers", "Current level (buffers)",
          "Number of buffers in the queue (buffers, read-only)",
          0, G_MAXUINT, 0, RO));
  g_object_class_install_property (gobject_class, PROP_CUR_LEVEL_BYTES,
      g_param_spec_uint ("current-level-bytes", "Current level (bytes)",
          "Amount of data in the queue (bytes, read-only)",
          0, G_MAXUINT, 0, RO));
  g_object_class_install_property (gobject_class, PROP_CUR_LEVEL_TIME,
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
          "default 4)", 1, MAX_BOUND_BUFFERS, d::kMinBuffers, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_MAX_BUFFERS,
      g_param_spec_uint ("max-buffers", "Max. capacity (buffers)",
          "Largest capacity adaptation may choose (buffers, 1 - 65535, "
          "default 32)", 1, MAX_BOUND_BUFFERS, d::kMaxBuffers, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_CPU_LOW,
      g_param_spec_double ("cpu-low-threshold", "CPU low threshold",
          "CPU load below which the CPU factor is +1 (grow) "
          "(%, 0 - 100, default 20)", 0.0, 100.0, d::kCpuLow, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_CPU_HIGH,
      g_param_spec_double ("cpu-high-threshold", "CPU high threshold",
          "CPU load above which the CPU factor is -1 (shrink) "
          "(%, 0 - 100, default 60)", 0.0, 100.0, d::kCpuHigh, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_MEM_LOW,
      g_param_spec_double ("mem-low-threshold", "Memory low threshold",
          "Memory use below which the memory factor is +1 (grow) "
          "(%, 0 - 100, default 35)", 0.0, 100.0, d::kMemLow, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_MEM_HIGH,
      g_param_spec_double ("mem-high-threshold", "Memory high threshold",
          "Memory use above which the memory factor is -1 (shrink) "
          "(%, 0 - 100, default 75)", 0.0, 100.0, d::kMemHigh, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_TARGET_LATENCY,
      g_param_spec_uint64 ("target-latency", "Target latency",
          "Latency average below which the latency factor is +1 (grow) "
          "(ns, 0 - 3600000000000, default 20000000 = 20 ms)",
          0, MAX_LATENCY_SETTING, d::kTargetLatencyNs, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_MAX_LATENCY,
      g_param_spec_uint64 ("max-latency", "Max. latency",
          "Latency average above which the latency factor is -1 (shrink) "
          "(ns, 0 - 3600000000000, default 50000000 = 50 ms)",
          0, MAX_LATENCY_SETTING, d::kMaxLatencyNs, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_CPU_WEIGHT,
      g_param_spec_double ("cpu-weight", "CPU weight",
          "Weight of the CPU factor in the combined factor "
          "(0 - 1, default 0.5)", 0.0, 1.0, d::kCpuWeight, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_MEM_WEIGHT,
      g_param_spec_double ("mem-weight", "Memory weight",
          "Weight of the memory factor in the combined factor "
          "(0 - 1, default 0.3)", 0.0, 1.0, d::kMemWeight, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_LATENCY_WEIGHT,
      g_param_spec_double ("latency-weight", "Latency weight",
          "Weight of the latency factor in the combined factor "
          "(0 - 1, default 0.2)", 0.0, 1.0, d::kLatencyWeight, RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_SMOOTHING,
      g_param_spec_double ("smoothing", "Smoothing",
          "Fraction of the step towards the target taken per tick; 0 freezes "
          "the capacity (0 - 1, default 0.3)", 0.0, 1.0, d::kSmoothing,
          RW_PLAYING));
  g_object_class_install_property (gobject_class, PROP_INTERVAL,
      g_param_spec_uint64 ("adaptation-interval", "Adaptation interval",
          "Time between ticks, and between reads of /proc "
          "(ns, 10000000 - 60000000000, default 500000000 = 500 ms)",
          MIN_INTERVAL, MAX_INTERVAL, d::kIntervalNs, RW_PLAYING));
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

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
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
