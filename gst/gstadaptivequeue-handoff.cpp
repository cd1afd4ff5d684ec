/* adaptivequeue hand-off: how the two streaming threads meet. A waiter
 * spins only where that pays, sleeps on a condition, and is signalled only
 * when it sleeps; where the threads share a CPU they yield to batch.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstadaptivequeue-handoff.h"

#include <algorithm>

#include <sched.h>

#define GST_CAT_DEFAULT adaptive_queue_debug

namespace aq::element {

/* ---- the wait/notify protocol: signal only when someone waits ---- */

/* Before sleeping on a condition, a waiter spins briefly with the lock
 * released: on a multi-core machine the other side usually makes progress
 * within microseconds, which saves a futex sleep and wake per buffer. On
 * one core spinning would only delay the other side, so it is off; on a
 * loaded machine aq::SpinBackoff stops it while spins keep timing out. */
constexpr gint64 SPIN_MICROSECONDS = 10;

bool several_cpus_allowed() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    return CPU_COUNT(&set) > 1;
  return g_get_num_processors() > 1;
}

/* Progress counters a spinning waiter watches: additions (the lock-free
 * path moves only the ring's tail) and removals. */
using Progress = guint64 (*)(const QueueState& q);

static guint64 add_progress(const QueueState& q) {
  return q.adds.load(std::memory_order_relaxed) + q.items.published();
}

static guint64 del_progress(const QueueState& q) {
  return q.dels.load(std::memory_order_relaxed);
}

/* Spins, unlocked, until `progress` moves away from `seen`. Queue lock held
 * on entry and exit; true if it moved. */
static bool spin_releasing_qlock(GstAdaptiveQueue* self, Progress progress, guint64 seen) {
  const QueueState& q = *self->q;
  bool moved = false;
  qunlock(self);
  const gint64 deadline = g_get_monotonic_time() + SPIN_MICROSECONDS;
  for (int i = 1; !moved; i++) {
    cpu_relax();
    moved = progress(q) != seen;
    /* A pause costs from one cycle to over a hundred depending on the
     * CPU, so the spin is bounded in time, checked now and then. */
    if (i % 64 == 0 && g_get_monotonic_time() >= deadline)
      break;
  }
  qlock(self);
  return moved || progress(q) != seen;
}

/* Whether the other thread is likely running on another CPU right now:
 * there is one, and recent spins saw it make progress. Otherwise the two
 * threads share a CPU, as on one core or a loaded machine. */
static bool spinning_pays_qlocked(GstAdaptiveQueue* self, const aq::SpinBackoff& backoff) {
  return spin_enabled(self) && backoff.skipping() == 0;
}

/* Spins, when the backoff allows, until `counter` moves; true if it did. */
static bool spin_briefly_releasing_qlock(GstAdaptiveQueue* self, aq::SpinBackoff& backoff,
                                         Progress progress) {
  if (!spin_enabled(self) || !backoff.should_spin())
    return false;
  const bool moved = spin_releasing_qlock(self, progress, progress(*self->q));
  backoff.record(moved);
  return moved;
}

/* Waits until the queue is no longer empty to the task (an item, or the
 * min thresholds reached); false when the pad is flushing. */
bool wait_add_releasing_qlock(GstAdaptiveQueue* self) {
  QueueState& q = *self->q;
  if (spin_briefly_releasing_qlock(self, q.add_spin, add_progress))
    return q.srcresult == GST_FLOW_OK;
  if (q.srcresult != GST_FLOW_OK)
    return false;
  /* Upstream's lock-free path publishes an item, then reads this flag with
   * a read-modify-write; the task sets it with one, then looks for an item.
   * Both touch the flag atomically, so one comes second and sees the other:
   * the task sees the item, or upstream sees the flag and wakes it. The
   * task asks for more than an item: below the min thresholds it sleeps
   * until the next one, where returning would spin. */
  q.waiting_add.exchange(true, std::memory_order_acq_rel);
  if (!is_empty_qlocked(q)) {
    q.waiting_add.store(false, std::memory_order_relaxed);
    return true;
  }
  qwait(self, &self->item_add);
  q.waiting_add.store(false, std::memory_order_relaxed);
  return q.srcresult == GST_FLOW_OK;
}

/* Live until a LATENCY query says otherwise: a live upstream's buffers are
 * never held back, nor is its thread. */
static bool upstream_maybe_live(const QueueState& q) {
  return !q.upstream_latency.known || q.upstream_latency.live;
}

/* How long upstream, waiting on a full queue for a batch, may leave free
 * slots unused: longer than a scheduler tick at 250 Hz, meant so that an
 * earlier timer is usually pending and arming this one is cheap. */
constexpr gint64 BATCH_WAIT_MICROSECONDS = 20000;

/* Upstream waits on a full queue for a batch where the threads share one
 * CPU and upstream is not live. Woken at each removal, it preempts the
 * task, so the two alternate per buffer; woken when the task runs dry,
 * they alternate per queue-full. A downstream that blocks while slots are
 * free must not leave them unused for long (queue refills them at once, and
 * a demuxer feeding another branch may need them), hence the deadline; if
 * nothing was removed by then, upstream waits as usual. True if the batch
 * wait ended the wait. */
static bool wait_batch_releasing_qlock(GstAdaptiveQueue* self) {
  QueueState& q = *self->q;
  if (spin_enabled(self) || upstream_maybe_live(q))
    return false;
  const guint64 dels = q.dels.load(std::memory_order_relaxed);
  q.waiting_del_for_batch = true;
  qwait_until(self, &self->item_del, g_get_monotonic_time() + BATCH_WAIT_MICROSECONDS);
  q.waiting_del_for_batch = false;
  /* Every removal and every wake_all counts in dels. */
  return q.dels.load(std::memory_order_relaxed) != dels;
}

/* Waits for an item to be removed or the limits to change; false when the
 * pad is flushing. */
bool wait_del_releasing_qlock(GstAdaptiveQueue* self) {
  QueueState& q = *self->q;
  if (spin_briefly_releasing_qlock(self, q.del_spin, del_progress))
    return q.srcresult == GST_FLOW_OK;
  if (q.srcresult != GST_FLOW_OK)
    return false;
  q.waiting_del = true;
  const bool batched = wait_batch_releasing_qlock(self);
  if (!batched)
    qwait(self, &self->item_del);
  q.waiting_del = false;
  /* Sharing a CPU, the woken thread preempts the task that woke it at the
   * first free slot: yield, so the task frees a batch before this thread
   * fills the queue again, instead of the two alternating per buffer. */
  if (!batched && !spinning_pays_qlocked(self, q.del_spin)) {
    qunlock(self);
    sched_yield();
    qlock(self);
  }
  return q.srcresult == GST_FLOW_OK;
}

/* Whether the task, finding the queue empty, yields its CPU once before it
 * sleeps. Sharing a CPU, the task preempts upstream when woken for one item,
 * takes it and sleeps again, so the two threads alternate per buffer;
 * yielding lets upstream queue a batch first. Never for a live upstream,
 * whose buffers must leave at once, nor while spinning pays. */
bool yield_for_batch_releasing_qlock(GstAdaptiveQueue* self) {
  QueueState& q = *self->q;
  if (spinning_pays_qlocked(self, q.add_spin) || upstream_maybe_live(q))
    return false;
  qunlock(self);
  sched_yield();
  qlock(self);
  return true;
}

void wake_all_qlocked(GstAdaptiveQueue* self) {
  QueueState& q = *self->q;
  q.adds.fetch_add(1, std::memory_order_relaxed);
  q.dels.fetch_add(1, std::memory_order_relaxed);
  g_cond_signal(&self->item_add);
  g_cond_signal(&self->item_del);
  g_cond_broadcast(&self->query_handled);
}

/* Emits a signal with the queue lock released; false if flushing after. */
bool emit_releasing_qlock(GstAdaptiveQueue* self, guint signal_id) {
  qunlock(self);
  g_signal_emit(self, signals[signal_id], 0);
  qlock(self);
  return self->q->srcresult == GST_FLOW_OK;
}

/* ---- upstream's lock-free path ---- */

bool fast_path_open_unlocked(GstAdaptiveQueue* self) {
  QueueState& q = *self->q;
  if (!q.fast_ok.load(std::memory_order_acquire))
    return false;
  const guint max_buffers = q.fast_max_buffers.load(std::memory_order_relaxed);
  const guint max_bytes = q.fast_max_bytes.load(std::memory_order_relaxed);
  const guint64 max_time = q.fast_max_time.load(std::memory_order_relaxed);
  /* The level with the removals as last seen, which only overstates it;
   * the task's line is read again only when that reaches a limit. The time
   * level needs the src running time fresh: it can go back (a flush). */
  const guint64 in_buffers = q.in_buffers.load(std::memory_order_relaxed);
  const guint64 in_bytes = q.in_bytes.load(std::memory_order_relaxed);
  auto saturate = [](guint64 v) { return static_cast<guint>(std::min<guint64>(v, G_MAXUINT)); };
  Level level{saturate(in_buffers - q.seen_out_buffers), saturate(in_bytes - q.seen_out_bytes), 0};
  if (max_time > 0)
    level.time = level_of(q).time;
  if (fills(level, max_buffers, max_bytes, max_time)) {
    q.seen_out_buffers = q.out_buffers.load(std::memory_order_acquire);
    q.seen_out_bytes = q.out_bytes.load(std::memory_order_acquire);
    level.buffers = saturate(in_buffers - q.seen_out_buffers);
    level.bytes = saturate(in_bytes - q.seen_out_bytes);
    if (fills(level, max_buffers, max_bytes, max_time))
      return false;
  }
  return q.items.can_push();
}

void publish_unlocked(GstAdaptiveQueue* self, Item item) {
  QueueState& q = *self->q;
  q.items.try_push(std::move(item));
  /* Pairs with the exchange in wait_add_releasing_qlock(). */
  bool waiting = false;
  if (!q.waiting_add.compare_exchange_strong(waiting, false, std::memory_order_acq_rel,
                                             std::memory_order_acquire)) {
    qlock(self);
    GCond* waiter = note_add_qlocked(self);
    qunlock(self);
    wake(waiter);
  }
}

}  // namespace aq::element
