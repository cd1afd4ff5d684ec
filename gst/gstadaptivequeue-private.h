/* adaptivequeue: the state the element's rooms share, and the lock order.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The element lives in five rooms:
 *   gstadaptivequeue.cpp             registration, the property table, state
 *                                    changes
 *   gstadaptivequeue-dataflow.cpp    chain, task loop, events, queries
 *   gstadaptivequeue-levels.cpp      the levels: both sides' segments and
 *                                    running times, fullness, notify-levels
 *   gstadaptivequeue-handoff.{h,cpp} how the two streaming threads meet: the
 *                                    queue lock, signals, waits, the
 *                                    lock-free path
 *   gstadaptivequeue-adapt.cpp       the capacity, latency readings, the
 *                                    tick, stats
 *
 * Locks, outermost first; a thread holding one may take only those below:
 *   1. tick lock   (self->tick_lock)  TickState: the tick and its policy
 *   2. queue lock  (self->qlock)      QueueState: items, levels, limits
 *      (except upstream's lock-free path: see QueueState)
 *   3. object lock (GST_OBJECT_LOCK)  Settings: adaptation properties
 * The object lock is only held to copy values in or out, never across a
 * call. A function whose name ends in _tlocked, _qlocked or _olocked must be
 * called with that lock held; one named *_releasing_qlock drops the queue
 * lock for a while and holds it again on return; one named *_unlocked is
 * upstream's lock-free path and takes no lock.
 */
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "gstadaptivequeue.h"
#include "adapter.h"
#include "latency_tracker.h"
#include "level_trace.h"
#include "shared_sampler.h"
#include "spsc_ring.h"
#include "sizing_policy.h"
#include "spin_backoff.h"
#include "trimmer.h"

GST_DEBUG_CATEGORY_EXTERN(adaptive_queue_debug);

namespace aq::element {

/* Property defaults, one name each; the param specs and reset code use
 * these. The adaptation ones come from the core, which owns the algorithm. */
constexpr guint DEFAULT_MAX_SIZE_BUFFERS = defaults::kInitialBuffers;
constexpr guint DEFAULT_MAX_SIZE_BYTES = 10 * 1024 * 1024; /* as queue */
constexpr guint64 DEFAULT_MAX_SIZE_TIME = GST_SECOND;      /* as queue */
constexpr guint DEFAULT_MIN_THRESHOLD_BUFFERS = 0;
constexpr guint DEFAULT_MIN_THRESHOLD_BYTES = 0;
constexpr guint64 DEFAULT_MIN_THRESHOLD_TIME = 0;
constexpr GstAdaptiveQueueLeaky DEFAULT_LEAKY = GST_ADAPTIVE_QUEUE_NO_LEAK;
constexpr gboolean DEFAULT_SILENT = FALSE;
constexpr gboolean DEFAULT_FLUSH_ON_EOS = FALSE;
constexpr gboolean DEFAULT_NOTIFY_LEVELS = FALSE; /* as queue >= 1.26 */
constexpr gboolean DEFAULT_ADAPTIVE = TRUE;
constexpr guint64 DEFAULT_ADAPTATION_INTERVAL = defaults::kIntervalNs;
constexpr GstAdaptiveQueueLoadScope DEFAULT_LOAD_SCOPE = GST_ADAPTIVE_QUEUE_SCOPE_AUTO;
constexpr const char* DEFAULT_PROC_ROOT = aq::kDefaultProcRoot;
constexpr const char* DEFAULT_CGROUP_ROOT = aq::kDefaultCgroupRoot;
constexpr GstAdaptiveQueueLatencySource DEFAULT_LATENCY_SOURCE = GST_ADAPTIVE_QUEUE_LATENCY_AUTO;

/* The most buffer slots the ring reserves up front; beyond, it grows as
 * buffers arrive. */
constexpr guint MAX_RESERVED_BUFFERS = 65535;
/* Ring slots kept beyond the buffer capacity for serialized events. */
constexpr size_t EVENT_HEADROOM = 16;

/* One queued buffer, buffer list, event or query. Sizes are kept so the
 * dequeue side need not recompute them. */
struct Item {
  GstMiniObject* object = nullptr;
  guint buffers = 0;
  guint bytes = 0;
};

struct LatencyAnswer {
  bool known = false;
  bool live = false;
  GstClockTime min = 0;
  GstClockTime max = GST_CLOCK_TIME_NONE;
};

struct Level {
  guint buffers = 0;
  guint bytes = 0;
  guint64 time = 0;
};

/* Adaptation properties as set, guarded by the object lock. The
 * configuration they make, once valid, is QueueState::policy. */
struct Settings {
  /* min-buffers and max-buffers as asked for, before an explicit
   * max-size-buffers moves them. */
  aq::PolicyConfig policy;
  /* The last max-size-buffers set by the user, if any (0: no limit). */
  std::optional<guint> explicit_max_size_buffers;
  /* Why the configuration as set is invalid; empty when it is valid. */
  std::string config_problem;
  /* config_problem has been posted on the bus. */
  bool config_problem_posted = false;
  guint64 interval = DEFAULT_ADAPTATION_INTERVAL;
  aq::LoadScope scope = aq::LoadScope::Auto;
  std::string proc_root = DEFAULT_PROC_ROOT;
  std::string cgroup_root = DEFAULT_CGROUP_ROOT;
};

/* What upstream writes with each item, on the ring's tail line: the task
 * reads the tail and these in one cache-line transfer. */
struct UpstreamSide {
  std::atomic<guint64> in_buffers{0};
  std::atomic<guint64> in_bytes{0};
  /* Set by reset_running_times() before any item (see flush). */
  std::atomic<gint64> sink_rt{GST_CLOCK_STIME_NONE};
  std::atomic<GstClockTime> buffer_duration{GST_CLOCK_TIME_NONE};
  /* Bumped each time sink_rt is computed anew, after storing it: what
   * voids a zeroed time level (time_zeroed_at). 32 bits keep the side on
   * the tail's line; a wrap needs 2^32 moves with no removal between. */
  std::atomic<guint32> sink_moves{0};
  /* Set by the task before it sleeps; upstream's lock-free path reads it
   * with a read-modify-write per buffer (see wait_add_releasing_qlock). */
  std::atomic<bool> waiting_add{false};
};

/* The streaming state, guarded by the queue lock, with one exception: a
 * buffer that finds the queue neither full nor in a special state enters
 * without the lock (the fast path in chain_data()). That path writes only
 * the ring's tail, the in_* totals, the sink segment and sink_rt, which
 * belong to the upstream thread, and reads only the atomics below. Every
 * other item, and every removal, takes the lock. */
struct QueueState {
  /* Upstream pushes, lock-free or locked; removals hold the queue lock. */
  aq::SpscRing<Item, UpstreamSide> items;
  /* Slots wanted for the capacity: upstream grows the ring to it under the
   * lock, since only upstream may move the ring's storage. */
  size_t want_storage = 0;
  /* Levels as running totals: upstream adds to in_*, whoever removes items
   * adds to out_* under the lock; the level is the difference (level_of).
   * sink_rt and src_rt are the running times of the sink and src positions,
   * NONE if unknown; the time level is their difference. Upstream's are on
   * the ring's tail line, the removals on their own line, so one side's
   * writes per buffer do not evict what the other side writes. */
  std::atomic<guint64>& in_buffers = items.side().in_buffers;
  std::atomic<guint64>& in_bytes = items.side().in_bytes;
  std::atomic<gint64>& sink_rt = items.side().sink_rt;
  std::atomic<guint32>& sink_moves = items.side().sink_moves;
  std::atomic<GstClockTime>& buffer_duration = items.side().buffer_duration;
  std::atomic<bool>& waiting_add = items.side().waiting_add;
  /* Upstream's last view of the removal totals, which only grow: a stale
   * view overstates the level, so it is read again only when the level it
   * gives reaches a limit. Upstream's thread only. */
  guint64 seen_out_buffers = 0;
  guint64 seen_out_bytes = 0;
  /* queue >= 1.24: the running time of the first timestamped buffer (or
   * GAP) since the last flush, NONE before; the time level counts from it
   * until a buffer with a timestamp has left (src_rt NONE). Written by
   * upstream once per flush, so off the tail's line. Stays NONE on 1.22. */
  std::atomic<gint64> sink_start_rt{GST_CLOCK_STIME_NONE};
  alignas(64) std::atomic<guint64> out_buffers{0};
  std::atomic<guint64> out_bytes{0};
  std::atomic<gint64> src_rt{GST_CLOCK_STIME_NONE};
  /* As on queue, the time level reads 0 once a removal empties the queue of
   * buffers, until either side's running time moves again: sink_moves at
   * that removal (upstream's next move voids it), or G_MAXUINT64. */
  std::atomic<guint64> time_zeroed_at{G_MAXUINT64};
  /* Bumped on every locked add and every removal, so spinning waiters see
   * progress without the lock; the lock-free path only moves the ring. */
  std::atomic<guint64> adds{0};
  std::atomic<guint64> dels{0};
  /* What the fast path reads per buffer and is written rarely: republished
   * from the fields below by every qunlock(), so a change made under the
   * lock reaches it at unlock. */
  alignas(64) std::atomic<bool> fast_ok{false};
  std::atomic<guint> fast_max_buffers{0};
  std::atomic<guint> fast_max_bytes{0};
  std::atomic<guint64> fast_max_time{0};

  alignas(64) GstFlowReturn srcresult = GST_FLOW_FLUSHING;

  /* max.buffers is the adaptive capacity: set_capacity_qlocked() writes it. */
  Level max{DEFAULT_MAX_SIZE_BUFFERS, DEFAULT_MAX_SIZE_BYTES, DEFAULT_MAX_SIZE_TIME};
  Level min_threshold;
  Level orig_min_threshold;
  GstAdaptiveQueueLeaky leaky = DEFAULT_LEAKY;
  bool silent = DEFAULT_SILENT;
  bool flush_on_eos = DEFAULT_FLUSH_ON_EOS;
  /* notify-levels: the levels as last notified, so each change is
   * notified once, by whichever streaming thread next releases the lock. */
  bool notify_levels = DEFAULT_NOTIFY_LEVELS;
  Level notified_level;
  GstAdaptiveQueueLatencySource latency_source = DEFAULT_LATENCY_SOURCE;

  /* Adaptation: on or off, the configuration it runs on (the newest that
   * validated, bounds moved to an explicit max-size-buffers), the demand
   * it has seen and the trimming rule. Kept here because a push that
   * overruns grows the capacity at once, under this lock. */
  bool adaptive = DEFAULT_ADAPTIVE;
  aq::PolicyConfig policy;
  /* How far a live upstream's overrun may grow the capacity: an explicit
   * max-size-buffers, else queue's default count (the time and byte limits
   * stay hard limits over it). */
  guint growth_limit = defaults::kGrowthLimitBuffers;
  aq::Adapter adapter;
  aq::Trimmer trimmer;
  /* The buffer level since the last tick, as seen under this lock (at
   * locked pushes and every removal), and the largest latency sample of
   * the interval before. */
  aq::LevelTrace trace;
  std::optional<gint64> interval_latency_max;
  /* The demand floor at the last tick. */
  guint demand_floor = 0;

  bool eos = false;
  /* Downstream returned EOS: refuse buffers until a new segment. */
  bool unexpected = false;
  /* The task's side of the same: drop the data it takes until a stream
   * boundary. Upstream's lock-free path may publish a buffer after the
   * task dropped what was queued, before `unexpected` closes that path;
   * queue, all under one lock, would have refused it. */
  bool dropping_to_boundary = false;
  bool head_needs_discont = false;
  bool tail_needs_discont = false;

  /* Written by upstream only (and by a flush while upstream is quiet). */
  GstSegment sink_segment;
  GstSegment src_segment;
  bool src_segment_is_time = true;
  bool newseg_applied_to_src = false;

  bool waiting_del = false;
  /* Upstream waits on a full queue for a batch: removals wake it only once
   * the queue runs dry; it wakes by itself at a deadline. */
  bool waiting_del_for_batch = false;
  /* Whether waiters may spin at all: only with another CPU to run the
   * other side. Set when the src pad activates; read before the lock. */
  std::atomic<bool> spin{false};
  /* Whether the task (add) and upstream (del) spin before sleeping. */
  aq::SpinBackoff add_spin;
  aq::SpinBackoff del_spin;
  /* items.published() when the tail item is an event or query (queued
   * under the lock); any other value means data is at the tail. */
  size_t control_tail = SIZE_MAX;
  guint queued_queries = 0;
  GstQuery* last_handled_query = nullptr;
  /* The query the task is passing downstream with the lock released: its
   * caller must not get it back before the task is done with it. */
  GstQuery* query_in_flight = nullptr;
  bool last_query = false;

  GstClock* clock = nullptr;
  /* Upstream's answer to the last LATENCY query through the element, and
   * the element's own answer then; the latency the pipeline configured.
   * Upstream counts as live for batching until a query says otherwise (its
   * buffers are never held back), as not live for the demand floor. */
  LatencyAnswer upstream_latency;
  LatencyAnswer reported_latency;
  GstClockTime configured_latency = GST_CLOCK_TIME_NONE;
  /* The element's base time while PLAYING, NONE otherwise: cached at the
   * state change so a latency sample takes no object lock. */
  GstClockTime playing_base_time = GST_CLOCK_TIME_NONE;
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
struct TickState {
  GstClockID id = nullptr;
  bool running = false;
  /* System clock time the last tick was due at, or of the start. */
  GstClockTime last_tick_at = 0;
  /* System clock time the pending tick is due at. */
  GstClockTime due_at = 0;
  std::unique_ptr<aq::SharedSampler::Subscription> subscription;
  std::string subscribed_proc_root;
  std::string subscribed_cgroup_root;
  aq::LoadScope subscribed_scope = aq::LoadScope::Auto;
  /* How the last reading was made: the scope read, and throttling. */
  std::optional<aq::LoadSource> last_source;
  /* The last tick's decision with a load sample. */
  aq::Decision last_decision;
  std::optional<aq::LoadSample> last_sample;
  guint64 ticks = 0;
  guint64 skipped_ticks = 0;
  /* Each load warning is posted once until the condition clears. */
  std::set<std::string> warned_loads;
  guint good_load_ticks = 0;
};

enum Signal { SIGNAL_UNDERRUN, SIGNAL_RUNNING, SIGNAL_OVERRUN, SIGNAL_PUSHING, LAST_SIGNAL };

extern guint signals[LAST_SIGNAL];

}  // namespace aq::element

struct _GstAdaptiveQueue {
  GstElement parent;

  GstPad* sinkpad;
  GstPad* srcpad;

  GMutex qlock;
  GCond item_add;
  GCond item_del;
  GCond query_handled;
  GMutex tick_lock;

  /* C++ members, constructed in init and destroyed in finalize. */
  aq::element::Settings* settings;
  aq::element::QueueState* q;
  aq::element::TickState* tick;
};

namespace aq::element {

/* ---- the locks, as ThreadSanitizer sees them ---- */

/* GLib's GMutex and GCond are futex calls that ThreadSanitizer does not
 * intercept, so in a -fsanitize=thread build the element's own locks tell
 * it what they order; elsewhere these are empty. */
#if defined(__SANITIZE_THREAD__)
#define AQ_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define AQ_TSAN 1
#endif
#endif

#ifdef AQ_TSAN
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
inline void tsan_acquired(void* lock) {
  __tsan_acquire(lock);
}
inline void tsan_releasing(void* lock) {
  __tsan_release(lock);
}
#else
inline void tsan_acquired(void*) {}
inline void tsan_releasing(void*) {}
#endif

inline void tlock(GstAdaptiveQueue* self) {
  g_mutex_lock(&self->tick_lock);
  tsan_acquired(&self->tick_lock);
}

inline void tunlock(GstAdaptiveQueue* self) {
  tsan_releasing(&self->tick_lock);
  g_mutex_unlock(&self->tick_lock);
}

/* ---- levels ---- */

/* The current level. Reads the removals first, so it never goes negative
 * while upstream adds; exact under the queue lock from upstream's thread. */
/* The buffer level alone: what a removal needs, without the time level's
 * reads of the other side's running time. */
inline guint buffers_of(const QueueState& q) {
  const guint64 out = q.out_buffers.load(std::memory_order_acquire);
  return static_cast<guint>(q.in_buffers.load(std::memory_order_acquire) - out);
}

inline Level level_of(const QueueState& q) {
  Level l;
  /* First: upstream stores sink_rt before bumping it. */
  const guint32 sink_moves = q.sink_moves.load(std::memory_order_acquire);
  const guint64 out_buffers = q.out_buffers.load(std::memory_order_acquire);
  const guint64 out_bytes = q.out_bytes.load(std::memory_order_acquire);
  const gint64 src = q.src_rt.load(std::memory_order_acquire);
  const guint64 in_buffers = q.in_buffers.load(std::memory_order_acquire);
  l.buffers = static_cast<guint>(in_buffers - out_buffers);
  l.bytes = static_cast<guint>(q.in_bytes.load(std::memory_order_acquire) - out_bytes);
  const gint64 sink = q.sink_rt.load(std::memory_order_acquire);
  if (!GST_CLOCK_STIME_IS_VALID(sink) ||
      q.time_zeroed_at.load(std::memory_order_relaxed) == sink_moves)
    return l;
  /* queue's update_time_level(): from the src side's running time once a
   * buffer has left, before that from the first buffer's (NONE on 1.22,
   * where the src side starts at 0 instead). Unsigned: the difference may
   * exceed G_MAXINT64 but never G_MAXUINT64. */
  const gint64 from =
      GST_CLOCK_STIME_IS_VALID(src) ? src : q.sink_start_rt.load(std::memory_order_acquire);
  if (GST_CLOCK_STIME_IS_VALID(from) && sink >= from)
    l.time = static_cast<guint64>(sink) - static_cast<guint64>(from);
  return l;
}

/* Whether a level reaches any of the limits (0 = no limit). The one test of
 * "the queue is full": upstream's fast path declines when it holds and the
 * locked path in chain_data() then overruns, leaks or waits. */
inline bool fills(const Level& level, guint max_buffers, guint max_bytes, guint64 max_time) {
  return (max_buffers > 0 && level.buffers >= max_buffers) ||
         (max_bytes > 0 && level.bytes >= max_bytes) || (max_time > 0 && level.time >= max_time);
}

/* ---- dataflow (gstadaptivequeue-dataflow.cpp) ---- */

void add_pad_templates(GstElementClass* element_class);
/* Creates both pads with their functions and adds them to the element. */
void add_pads(GstAdaptiveQueue* self);
/* Drops the oldest items until a buffer fits, or down to `keep` buffers. */
void leak_downstream_qlocked(GstAdaptiveQueue* self, std::optional<guint> keep = std::nullopt);
/* Releases every queued item; for finalize, when no thread is left. */
void drop_all_items(QueueState& q);

/* ---- levels (gstadaptivequeue-levels.cpp) ---- */

/* Whether the level reaches a max limit: the queue is full. */
bool is_filled_qlocked(const QueueState& q);
/* Whether the task has nothing to push: no item, or data held back by the
 * min thresholds. */
bool is_empty_qlocked(QueueState& q);
/* Running time of a position in a segment, saturated; NONE if it has none. */
gint64 segment_running_time(const GstSegment* segment, GstClockTime position);
/* Each side's segment and position, as queue's apply_*() keep them, by the
 * rule of the running version (queue_times_from_first_buffer()). The sink
 * side belongs to upstream's thread (locked or not), the src side needs
 * the queue lock. */
void apply_buffer(QueueState& q, GstBuffer* buffer, bool sink);
void apply_buffer_list(QueueState& q, GstBufferList* list, bool sink);
void apply_segment(QueueState& q, GstEvent* event, bool sink);
void apply_gap(QueueState& q, GstEvent* event, bool sink);
/* Both sides' running times as a new element or a flush leaves them, with
 * the segments just reset; upstream quiet. */
void reset_running_times(QueueState& q);
/* After a removal: with no buffer left the time level reads 0, as on queue. */
void zero_time_level_if_empty_qlocked(QueueState& q);
/* notify-levels: the levels changed since the last notify, as bits. */
constexpr unsigned LEVEL_BUFFERS = 1, LEVEL_BYTES = 2, LEVEL_TIME = 4;
unsigned levels_to_notify_qlocked(QueueState& q);
/* Notifies the `changed` levels; no lock held. */
void notify_levels(GstAdaptiveQueue* self, unsigned changed);
/* Notifies `changed`, releasing the lock only if there is any; false if
 * flushing after. */
bool notify_levels_releasing_qlock(GstAdaptiveQueue* self, unsigned changed);

/* ---- the queue of the running GStreamer (gstadaptivequeue-dataflow.cpp) ---- */

/* Where queue changed between versions; each reads the version loaded at
 * run time once. */
bool queue_drops_on_fatal_error();
bool queue_times_from_first_buffer();

/* ---- properties (gstadaptivequeue.cpp) ---- */

/* Posts the configuration problem, if any, once it can reach a bus. */
void post_config_problem(GstAdaptiveQueue* self);

/* ---- adaptation (gstadaptivequeue-adapt.cpp) ---- */

/* Who changes the capacity: a property (max-size-buffers or a bound), or
 * adaptation (a tick, an overrun's growth). */
enum class CapacityCause { Property, Adaptation };
/* Sets the capacity, max.buffers; the only function that writes it. */
void set_capacity_qlocked(GstAdaptiveQueue* self, guint capacity, CapacityCause why);
/* Notes the ring size the capacity needs; upstream grows the ring to it the
 * next time it takes the lock, so buffer pushes never allocate. */
void reserve_for_capacity_qlocked(QueueState& q);
/* Upstream's latency with what the element adds: its answer to a LATENCY
 * query. */
LatencyAnswer add_own_latency_qlocked(const QueueState& q, const LatencyAnswer& upstream);
/* Whether the element's answer to a LATENCY query changed in a way the
 * pipeline must act on since it last answered; records the new answer. */
bool latency_report_changed_qlocked(QueueState& q);
/* Feeds the latency tracker from a buffer leaving the queue. */
void sample_latency_qlocked(GstAdaptiveQueue* self, GstBuffer* buffer);
/* A push found the queue full: with a live upstream, grows the capacity at
 * once. Returns the adaptation message to post once the lock is released,
 * or nullptr when it did not grow. */
GstMessage* grow_on_overrun_qlocked(GstAdaptiveQueue* self);
void start_ticks(GstAdaptiveQueue* self);
void reschedule_tick(GstAdaptiveQueue* self);
void stop_ticks(GstAdaptiveQueue* self);
GstStructure* build_stats(GstAdaptiveQueue* self);
/* The scope the last reading used; before any, the one it would use now. */
aq::LoadScope current_load_scope(GstAdaptiveQueue* self);

}  // namespace aq::element
