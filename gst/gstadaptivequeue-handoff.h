/* adaptivequeue hand-off: how the two streaming threads meet. The state it
 * uses is QueueState (gstadaptivequeue-private.h). What the other rooms call:
 *   qlock, qunlock, qwait         the queue lock, tried briefly before sleeping
 *   note_*, signal_*, wake,       tell the other side of an item added or
 *   qunlock_and_wake, wake_all    removed, only when it waits
 *   wait_*_releasing_qlock,       wait for the other side, spinning first
 *   yield_for_batch_releasing_qlock  only where that pays
 *   emit_releasing_qlock          a signal with the queue lock released
 *   fast_path_open_unlocked,      upstream's lock-free path
 *   publish_unlocked
 *   several_cpus_allowed          whether spinning can pay, at activation
 * publish_fast_path_qlocked, spin_enabled and cpu_relax are here only
 * because the queue lock is inline.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "gstadaptivequeue-private.h"

namespace aq::element {

/* ---- the queue lock ---- */

/* Queue lock held: what the lock-free path may do now. */
inline void publish_fast_path_qlocked(QueueState& q) {
  /* notify-levels closes it: levels are notified from the locked path, so
   * the lock-free path pays nothing for them. */
  const bool ok = q.srcresult == GST_FLOW_OK && !q.eos && !q.unexpected && !q.tail_needs_discont &&
                  !q.notify_levels;
  /* Stores only on change: these share a line upstream reads per buffer. */
  if (q.fast_max_buffers.load(std::memory_order_relaxed) != q.max.buffers)
    q.fast_max_buffers.store(q.max.buffers, std::memory_order_relaxed);
  if (q.fast_max_bytes.load(std::memory_order_relaxed) != q.max.bytes)
    q.fast_max_bytes.store(q.max.bytes, std::memory_order_relaxed);
  if (q.fast_max_time.load(std::memory_order_relaxed) != q.max.time)
    q.fast_max_time.store(q.max.time, std::memory_order_relaxed);
  if (q.fast_ok.load(std::memory_order_relaxed) != ok)
    q.fast_ok.store(ok, std::memory_order_release);
}

/* Spinning pays only when the other side can run on another CPU. Counts
 * the CPUs this thread may run on (taskset, cpusets), not those online as
 * g_get_num_processors() does. */
bool several_cpus_allowed();

inline bool spin_enabled(const GstAdaptiveQueue* self) {
  return self->q->spin.load(std::memory_order_relaxed);
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  asm volatile("yield");
#endif
}

/* The queue lock is held for very short sections, so a contended lock is
 * usually free again within a few spins: try those before sleeping. */
inline void qlock(GstAdaptiveQueue* self) {
  constexpr int LOCK_SPINS = 100;
  if (spin_enabled(self)) {
    for (int i = 0; i < LOCK_SPINS; i++) {
      if (g_mutex_trylock(&self->qlock)) {
        tsan_acquired(&self->qlock);
        return;
      }
      cpu_relax();
    }
  }
  g_mutex_lock(&self->qlock);
  tsan_acquired(&self->qlock);
}

inline void qunlock(GstAdaptiveQueue* self) {
  publish_fast_path_qlocked(*self->q);
  tsan_releasing(&self->qlock);
  g_mutex_unlock(&self->qlock);
}

/* Waits on `cond` with the queue lock held, releasing it meanwhile. */
inline void qwait(GstAdaptiveQueue* self, GCond* cond) {
  publish_fast_path_qlocked(*self->q);
  tsan_releasing(&self->qlock);
  g_cond_wait(cond, &self->qlock);
  tsan_acquired(&self->qlock);
}

/* As qwait, until `end_time` (g_get_monotonic_time()); false if it passed. */
inline bool qwait_until(GstAdaptiveQueue* self, GCond* cond, gint64 end_time) {
  publish_fast_path_qlocked(*self->q);
  tsan_releasing(&self->qlock);
  const bool signalled = g_cond_wait_until(cond, &self->qlock, end_time);
  tsan_acquired(&self->qlock);
  return signalled;
}

/* ---- signalling and waiting ---- */

/* Records an addition; returns the condition to signal, or nullptr when
 * nobody waits. The streaming path signals it after releasing the lock, so
 * the woken thread does not wake into a held lock, and the futex call is
 * not made under it. A waiter registered itself under the lock before it
 * slept, so the late signal still reaches it. */
inline GCond* note_add_qlocked(GstAdaptiveQueue* self) {
  QueueState& q = *self->q;
  q.adds.fetch_add(1, std::memory_order_relaxed);
  if (!q.waiting_add.load(std::memory_order_relaxed))
    return nullptr;
  /* One signal per sleep: g_cond_signal() is a futex call even when the
   * waiter is already awake, and until the woken thread runs every further
   * item would signal it again. The waiter re-registers before sleeping. */
  q.waiting_add.store(false, std::memory_order_relaxed);
  return &self->item_add;
}

inline GCond* note_del_qlocked(GstAdaptiveQueue* self) {
  QueueState& q = *self->q;
  q.dels.fetch_add(1, std::memory_order_relaxed);
  if (!q.waiting_del)
    return nullptr;
  if (q.waiting_del_for_batch && !is_empty_qlocked(q))
    return nullptr;
  q.waiting_del = false;
  return &self->item_del;
}

inline void wake(GCond* waiter) {
  if (waiter)
    g_cond_signal(waiter);
}

inline void signal_add_qlocked(GstAdaptiveQueue* self) {
  wake(note_add_qlocked(self));
}

inline void signal_del_qlocked(GstAdaptiveQueue* self) {
  wake(note_del_qlocked(self));
}

/* Releases the queue lock, then wakes `waiter` if set, once. */
inline void qunlock_and_wake(GstAdaptiveQueue* self, GCond*& waiter) {
  qunlock(self);
  wake(waiter);
  waiter = nullptr;
}

/* Wakes every waiter: used when flushing or when limits change. */
void wake_all_qlocked(GstAdaptiveQueue* self);
/* Wait for an item to be added, or removed (or the limits to change);
 * false when the pad is flushing. */
bool wait_add_releasing_qlock(GstAdaptiveQueue* self);
bool wait_del_releasing_qlock(GstAdaptiveQueue* self);
/* The task, finding the queue empty, yields once where the threads share a
 * CPU and upstream is not live; true if it did. */
bool yield_for_batch_releasing_qlock(GstAdaptiveQueue* self);
/* Emits a signal with the queue lock released; false if flushing after. */
bool emit_releasing_qlock(GstAdaptiveQueue* self, guint signal_id);

/* ---- upstream's lock-free path ---- */

/* Whether data may enter now without the lock: the queue is in its plain
 * state and no limit is reached. When not, nothing has changed and the
 * locked path decides. Upstream's thread. */
bool fast_path_open_unlocked(GstAdaptiveQueue* self);
/* Puts an item counted in (account_in) where the task sees it, and wakes
 * the task if it sleeps. Upstream's thread, after fast_path_open_unlocked. */
void publish_unlocked(GstAdaptiveQueue* self, Item item);

}  // namespace aq::element
