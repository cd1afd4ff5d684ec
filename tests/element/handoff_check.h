/* The hand-off checker: single buffers, one at a time, through the
 * element's real src task, each of which must arrive within a bound.
 *
 * With one buffer in flight, a wake-up the task misses is never made up by
 * a later push: the buffer stays queued until the bound fails the check.
 * A lost wake-up needs the push to land in the few nanoseconds between the
 * task's last look at the queue and its registering as a waiter, so the
 * seeded schedule aims there: half the buffers are pushed as the task,
 * having found the queue empty, is in its "underrun" handler, which holds
 * it 0 to 3 µs, or 8 to 14 µs later (as a brief spin ends); the rest after
 * a pause of 0 to 400 µs, when the task is asleep (its spins time out, so
 * it soon stops spinning). Both threads run at real-time priority
 * where allowed, so they meet at that moment on a loaded machine too.
 * Shared by the element suite and the ThreadSanitizer suite.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <vector>

#include "aq_test_base.h"

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>

namespace aqt {

struct HandoffReport {
  guint sent = 0;
  guint arrived = 0;
  /* False if a buffer other than the one sent arrived. */
  bool in_order = true;
  gint64 slowest_us = 0;
  /* Whether both threads ran at real-time priority. */
  bool realtime = false;
};

namespace handoff {

using Clock = std::chrono::steady_clock;

inline void busy_wait(std::chrono::nanoseconds d) {
  const auto until = Clock::now() + d;
  while (Clock::now() < until) {
  }
}

/* Real-time priority for the calling thread, where allowed (root or
 * CAP_SYS_NICE): the sender and the task then run the moment they can, so
 * on a loaded machine too they meet at the moment the schedule aims at.
 * Elsewhere the check runs all the same, and catches less. */
inline bool make_realtime(bool on) {
  sched_param param{};
  param.sched_priority = on ? 1 : 0;
  return pthread_setschedparam(pthread_self(), on ? SCHED_FIFO : SCHED_OTHER, &param) == 0;
}

/* The task's side: counts underruns, holds the task as the schedule says. */
struct Underruns {
  std::atomic<guint> count{0};
  std::vector<guint32> hold_ns;
  bool realtime = false;

  static void on_underrun(GstElement*, gpointer data) {
    auto* self = static_cast<Underruns*>(data);
    const guint n = self->count.fetch_add(1, std::memory_order_acq_rel);
    if (n == 0 && self->realtime)
      make_realtime(true);
    busy_wait(std::chrono::nanoseconds(self->hold_ns[n % self->hold_ns.size()]));
  }
};

/* Downstream, on the task's thread: counts buffers, notes one out of
 * order, and drops them there, so each buffer is freed on the thread that
 * pushed it on (no hand-back through GLib's queues, which ThreadSanitizer
 * cannot see). */
struct Arrivals {
  std::atomic<guint> count{0};
  std::atomic<bool> disorder{false};

  static GstPadProbeReturn on_buffer(GstPad*, GstPadProbeInfo* info, gpointer data) {
    auto* self = static_cast<Arrivals*>(data);
    const guint n = self->count.load(std::memory_order_relaxed);
    if (GST_BUFFER_OFFSET(GST_PAD_PROBE_INFO_BUFFER(info)) != n)
      self->disorder.store(true, std::memory_order_relaxed);
    self->count.store(n + 1, std::memory_order_release);
    return GST_PAD_PROBE_DROP;
  }
};

}  // namespace handoff

/* Sends `count` buffers through an adaptivequeue on the schedule drawn
 * from `seed`; each must arrive within `bound_us` (scaled by slowdown()).
 * Stops at the first that does not. Adaptation is off: no tick, no /proc
 * read, nothing but the hand-off can wake the task. */
inline HandoffReport check_handoff(guint count, guint32 seed, gint64 bound_us) {
  using handoff::Clock;
  HandoffReport report;
  std::mt19937 random(seed);
  handoff::Underruns underruns;
  std::uniform_int_distribution<guint32> hold(0, 3000);
  for (int i = 0; i < 4096; i++)
    underruns.hold_ns.push_back(hold(random));

  underruns.realtime = report.realtime = handoff::make_realtime(true);
  GstHarness* h = gst_harness_new("adaptivequeue");
  g_object_set(h->element, "adaptive", FALSE, nullptr);
  g_signal_connect(h->element, "underrun", G_CALLBACK(handoff::Underruns::on_underrun), &underruns);
  handoff::Arrivals arrivals;
  GstPad* src = gst_element_get_static_pad(h->element, "src");
  gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER, handoff::Arrivals::on_buffer, &arrivals,
                    nullptr);
  gst_object_unref(src);
  gst_harness_set_src_caps_str(h, "application/x-aq-handoff");
  gst_harness_play(h);

  std::uniform_int_distribution<int> pause_us(0, 400), spin_end_ns(8000, 14000);
  const auto bound = std::chrono::microseconds(bound_us * slowdown());
  guint seen = underruns.count.load();
  for (guint i = 0; i < count; i++) {
    if (i > 0 && random() % 2 == 0) {
      /* Push as the task, having sent the last buffer and found the queue
       * empty, is on its way to sleep: at once, or as its spin ends. */
      const auto since = Clock::now();
      while (underruns.count.load(std::memory_order_acquire) == seen &&
             Clock::now() - since < bound) {
      }
      if (random() & 1)
        handoff::busy_wait(std::chrono::nanoseconds(spin_end_ns(random)));
    } else {
      handoff::busy_wait(std::chrono::microseconds(pause_us(random)));
    }
    seen = underruns.count.load(std::memory_order_acquire);
    GstBuffer* b = gst_buffer_new();
    GST_BUFFER_OFFSET(b) = i;
    const auto sent_at = Clock::now();
    if (gst_harness_push(h, b) != GST_FLOW_OK)
      break;
    report.sent++;
    /* Yielding, so the task gets a CPU even where the two share one. */
    auto arrived = [&] { return arrivals.count.load(std::memory_order_acquire) > i; };
    while (!arrived() && Clock::now() - sent_at < bound)
      sched_yield();
    if (!arrived())
      break;
    const gint64 took =
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - sent_at).count();
    report.slowest_us = std::max(report.slowest_us, took);
    if (arrivals.disorder.load(std::memory_order_relaxed)) {
      report.in_order = false;
      break;
    }
    report.arrived++;
  }
  gst_harness_teardown(h);
  if (underruns.realtime)
    handoff::make_realtime(false);
  return report;
}

/* Fails the test unless all `count` buffers of `seed`'s schedule arrive in
 * order, each within the bound. The bound is generous (a hand-off takes
 * microseconds): a lost wake-up never arrives at all. Slow checkers
 * (CK_TIMEOUT_MULTIPLIER) send a share of the buffers: their threads run
 * serialized (valgrind) or watched (TSan), not at the nanosecond. */
inline void expect_handoff(guint count, guint32 seed) {
  constexpr gint64 kBoundUs = 1000 * 1000;
  count = std::max<guint>(count / slowdown(), 100);
  const HandoffReport r = check_handoff(count, seed, kBoundUs);
  fail_unless(r.in_order, "seed %u: buffer %u arrived out of order", seed, r.arrived);
  fail_unless(r.arrived == count,
              "seed %u: buffer %u of %u sent, not downstream within %" G_GINT64_FORMAT " ms", seed,
              r.arrived, count, kBoundUs * slowdown() / 1000);
  if (!r.realtime)
    g_printerr(
        "hand-off checker: no real-time priority (needs root or CAP_SYS_NICE); "
        "a race of nanoseconds is caught less often\n");
  GST_INFO("seed %u: %u buffers, slowest hand-off %" G_GINT64_FORMAT " us", seed, r.arrived,
           r.slowest_us);
}

}  // namespace aqt
