/* adaptivequeue's two streaming threads under ThreadSanitizer. Upstream (a
 * thread of this test) pushes numbered buffers, serialized events and
 * serialized queries; the element's task pushes them into a pad of this
 * test; a third thread changes the limits, the leaky mode and the min
 * threshold, reads the levels and the stats, and flushes now and then.
 * Every item carries one sequence number: downstream checks that they only
 * ever increase (nothing reordered or duplicated) and, with leaky=no and no
 * flush, that nothing is lost.
 *
 * Built with -Db_sanitize=thread by scripts/test-full (step tsan), with
 * GLib and GStreamer uninstrumented: the element annotates its queue lock
 * for ThreadSanitizer, and tests/suppressions/tsan.supp lists what is left
 * to GLib and GStreamer. It also runs, without the sanitizer, in the plain
 * suite.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* First: Check's fail() macro breaks standard headers included after it. */
#include "handoff_check.h"

#include <gst/check/gstcheck.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <random>
#include <string>
#include <thread>

namespace {

constexpr const char* SEQ_EVENT = "aq-tsan-seq";

/* What the downstream pad saw; written by the element's task, read by the
 * test thread, so behind a mutex ThreadSanitizer understands. */
struct Seen {
  std::mutex lock;
  guint64 last = 0;
  guint64 buffers = 0;
  guint64 events = 0;
  guint64 queries = 0;
  guint64 disorder = 0;
  bool eos = false;
};

Seen* seen;

/* Held by the control thread while its FLUSH_START travels, and taken by
 * the producer before its FLUSH_STOP: as in GStreamer's flushing protocol
 * (a seek sends FLUSH_START, then takes the streaming thread's stream lock,
 * then sends FLUSH_STOP), a FLUSH_STOP never overtakes the FLUSH_START
 * it ends. */
std::mutex flush_start_lock;

void note(guint64 seq) {
  std::lock_guard<std::mutex> l(seen->lock);
  if (seq <= seen->last)
    seen->disorder++;
  seen->last = seq;
}

GstFlowReturn sink_chain(GstPad*, GstObject*, GstBuffer* buffer) {
  note(GST_BUFFER_OFFSET(buffer));
  {
    std::lock_guard<std::mutex> l(seen->lock);
    seen->buffers++;
  }
  /* Now and then a slow downstream, so the queue fills and upstream waits. */
  if (GST_BUFFER_OFFSET(buffer) % 97 == 0)
    g_usleep(50);
  gst_buffer_unref(buffer);
  return GST_FLOW_OK;
}

gboolean sink_event(GstPad* pad, GstObject* parent, GstEvent* event) {
  if (GST_EVENT_TYPE(event) == GST_EVENT_CUSTOM_DOWNSTREAM) {
    guint64 seq = 0;
    gst_structure_get_uint64(gst_event_get_structure(event), "seq", &seq);
    note(seq);
    std::lock_guard<std::mutex> l(seen->lock);
    seen->events++;
  } else if (GST_EVENT_TYPE(event) == GST_EVENT_EOS) {
    std::lock_guard<std::mutex> l(seen->lock);
    seen->eos = true;
  } else if (GST_EVENT_TYPE(event) == GST_EVENT_FLUSH_STOP) {
    /* Items queued before a flush are gone; numbering goes on. */
  }
  return gst_pad_event_default(pad, parent, event);
}

gboolean sink_query(GstPad* pad, GstObject* parent, GstQuery* query) {
  if (GST_QUERY_TYPE(query) == GST_QUERY_DRAIN) {
    std::lock_guard<std::mutex> l(seen->lock);
    seen->queries++;
    return TRUE;
  }
  return gst_pad_query_default(pad, parent, query);
}

struct Rig {
  GstElement* q;
  GstPad* src;  /* upstream, pushed by the test */
  GstPad* sink; /* downstream, fed by the element's task */
};

Rig make_rig() {
  Rig r;
  r.q = gst_element_factory_make("adaptivequeue", nullptr);
  ck_assert(r.q != nullptr);
  /* Ticks would move the capacity on their own; the test moves it. */
  g_object_set(r.q, "adaptive", FALSE, nullptr);
  r.src = gst_pad_new("src", GST_PAD_SRC);
  r.sink = gst_pad_new("sink", GST_PAD_SINK);
  gst_pad_set_chain_function(r.sink, sink_chain);
  gst_pad_set_event_function(r.sink, sink_event);
  gst_pad_set_query_function(r.sink, sink_query);
  GstPad* qsink = gst_element_get_static_pad(r.q, "sink");
  GstPad* qsrc = gst_element_get_static_pad(r.q, "src");
  fail_unless_equals_int(gst_pad_link(r.src, qsink), GST_PAD_LINK_OK);
  fail_unless_equals_int(gst_pad_link(qsrc, r.sink), GST_PAD_LINK_OK);
  gst_object_unref(qsink);
  gst_object_unref(qsrc);
  gst_pad_set_active(r.src, TRUE);
  gst_pad_set_active(r.sink, TRUE);
  fail_unless_equals_int(gst_element_set_state(r.q, GST_STATE_PLAYING), GST_STATE_CHANGE_SUCCESS);
  return r;
}

void start_stream(GstPad* src) {
  gst_pad_push_event(src, gst_event_new_stream_start("tsan"));
  GstSegment segment;
  gst_segment_init(&segment, GST_FORMAT_TIME);
  gst_pad_push_event(src, gst_event_new_segment(&segment));
}

void free_rig(Rig& r) {
  gst_element_set_state(r.q, GST_STATE_NULL);
  gst_pad_set_active(r.src, FALSE);
  gst_pad_set_active(r.sink, FALSE);
  gst_object_unref(r.src);
  gst_object_unref(r.sink);
  gst_object_unref(r.q);
}

/* How long the stress runs: long enough for many thousands of hand-offs
 * under the sanitizer's slowdown, short enough for the full checks. */
std::chrono::milliseconds duration() {
  const char* env = g_getenv("AQ_TSAN_STRESS_MS");
  return std::chrono::milliseconds(env ? std::atoi(env) : 3000);
}

/* Pushes numbered buffers, with an event every 16 and a query every 256,
 * until told to stop; restarts the stream after a flush. */
guint64 produce(GstPad* src, std::atomic<bool>& stop, bool flushes) {
  guint64 seq = 0;
  while (!stop.load()) {
    ++seq;
    GstFlowReturn ret = GST_FLOW_OK;
    if (seq % 256 == 0) {
      GstQuery* query = gst_query_new_drain();
      gst_pad_peer_query(src, query);
      gst_query_unref(query);
      continue;
    }
    if (seq % 16 == 0) {
      GstStructure* s = gst_structure_new(SEQ_EVENT, "seq", G_TYPE_UINT64, seq, nullptr);
      if (!gst_pad_push_event(src, gst_event_new_custom(GST_EVENT_CUSTOM_DOWNSTREAM, s)))
        ret = GST_FLOW_FLUSHING;
    } else {
      GstBuffer* buffer = gst_buffer_new();
      GST_BUFFER_OFFSET(buffer) = seq;
      GST_BUFFER_PTS(buffer) = seq * GST_MSECOND;
      GST_BUFFER_DURATION(buffer) = GST_MSECOND;
      ret = gst_pad_push(src, buffer);
    }
    if (ret == GST_FLOW_FLUSHING && flushes) {
      /* A flush started from the control thread: end it from here, the
       * streaming thread, once the FLUSH_START has been delivered. */
      { std::lock_guard<std::mutex> l(flush_start_lock); }
      gst_pad_push_event(src, gst_event_new_flush_stop(TRUE));
      start_stream(src);
    } else {
      fail_unless_equals_int(ret, GST_FLOW_OK);
    }
  }
  return seq;
}

/* Changes the limits and reads the state while data flows. */
void control(GstElement* q, GstPad* src, std::atomic<bool>& stop, bool lossy) {
  std::mt19937 rng(1234);
  while (!stop.load()) {
    const guint cap = 1 + rng() % 48;
    g_object_set(q, "max-size-buffers", cap, nullptr);
    if (lossy) {
      g_object_set(q, "leaky", rng() % 2 ? 2 : 0, nullptr);
      g_object_set(q, "min-threshold-buffers", rng() % 4, nullptr);
      if (rng() % 8 == 0) {
        std::lock_guard<std::mutex> l(flush_start_lock);
        gst_pad_push_event(src, gst_event_new_flush_start());
      }
    }
    guint level = 0;
    GstStructure* stats = nullptr;
    g_object_get(q, "current-level-buffers", &level, "stats", &stats, nullptr);
    gst_structure_free(stats);
    g_usleep(200 + rng() % 800);
  }
  g_object_set(q, "leaky", 0, "min-threshold-buffers", 0, nullptr);
}

void run(bool lossy) {
  Seen s;
  seen = &s;
  Rig r = make_rig();
  start_stream(r.src);
  std::atomic<bool> stop{false};
  guint64 pushed = 0;
  std::atomic<bool> controlled{false};
  std::thread producer([&] {
    pushed = produce(r.src, stop, lossy);
    /* A last flush may have started after the last push: end it once the
     * control thread is done, so the EOS is not refused. */
    while (!controlled.load())
      g_usleep(1000);
    if (GST_PAD_IS_FLUSHING(r.src)) {
      gst_pad_push_event(r.src, gst_event_new_flush_stop(TRUE));
      start_stream(r.src);
    }
    gst_pad_push_event(r.src, gst_event_new_eos());
  });
  std::thread controller([&] {
    control(r.q, r.src, stop, lossy);
    controlled = true;
  });
  std::this_thread::sleep_for(duration());
  stop = true;
  controller.join();
  producer.join();

  /* EOS leaves after everything queued before it. */
  for (int i = 0; i < 3000; i++) {
    {
      std::lock_guard<std::mutex> l(s.lock);
      if (s.eos)
        break;
    }
    g_usleep(10 * 1000);
  }
  {
    std::lock_guard<std::mutex> l(s.lock);
    fail_unless(s.eos, "EOS did not come out");
    fail_unless_equals_uint64(s.disorder, 0);
    GST_INFO("pushed %" G_GUINT64_FORMAT ": %" G_GUINT64_FORMAT " buffers, %" G_GUINT64_FORMAT
             " events, %" G_GUINT64_FORMAT " queries",
             pushed, s.buffers, s.events, s.queries);
    if (!lossy) {
      /* Every item but the last (which saw the stop) arrived. */
      ck_assert(s.buffers + s.events + s.queries >= pushed - 1);
      fail_unless(s.buffers > 1000, "only %" G_GUINT64_FORMAT " buffers", s.buffers);
    }
  }
  free_rig(r);
  seen = nullptr;
}

}  // namespace

GST_START_TEST(test_handoff_in_order) {
  run(false);
}
GST_END_TEST;

GST_START_TEST(test_handoff_with_flushes_and_leaks) {
  run(true);
}
GST_END_TEST;

/* The hand-off checker of the element suite (handoff_check.h), here so the
 * sanitizer watches the waiting flag and the wake-up on every hand-off
 * (1,000 buffers in the TSan step, whose CK_TIMEOUT_MULTIPLIER is 4). */
GST_START_TEST(test_handoff_wakeups) {
  aqt::expect_handoff(4000, 7);
}
GST_END_TEST;

static Suite* tsan_suite(void) {
  Suite* s = suite_create("adaptivequeue-tsan");
  TCase* tc = tcase_create("handoff");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_handoff_in_order);
  tcase_add_test(tc, test_handoff_with_flushes_and_leaks);
  tcase_add_test(tc, test_handoff_wakeups);
  suite_add_tcase(s, tc);
  return s;
}

GST_CHECK_MAIN(tsan);
