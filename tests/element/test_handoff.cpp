/* The hand-off checker (handoff_check.h) in the plain suite: thousands of
 * single buffers, each of which must reach downstream within a bound, so
 * that a lost wake-up fails every run. tests/tsan runs it under
 * ThreadSanitizer.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <time.h>

#include "aq_test.h"
#include "handoff_check.h"

namespace {

GST_START_TEST(test_every_buffer_arrives) {
  aqt::expect_handoff(4000, 20);
  aqt::expect_handoff(4000, 2026);
  aqt::expect_handoff(4000, 1207);
}
GST_END_TEST;

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

/* Items below the min thresholds wait without the task running: it sleeps
 * until the next item, as queue's does, instead of spinning through its
 * wait (which cost a whole core per queue holding less than a threshold). */
GST_START_TEST(test_task_sleeps_below_min_threshold) {
  GstElement* q = aqt::make_queue("/nonexistent");
  g_object_set(q, "adaptive", FALSE, "min-threshold-buffers", 5, nullptr);
  GstHarness* h = aqt::start_harness(q);
  for (guint i = 0; i < 2; i++)
    fail_unless_equals_int(gst_harness_push(h, aqt::make_buffer(i)), GST_FLOW_OK);
  g_usleep(100000);
  const double before = process_cpu_seconds();
  g_usleep(1000000);
  const double used = process_cpu_seconds() - before;
  /* Idle, the process uses a few milliseconds; spinning, most of a CPU. */
  fail_unless(used < 0.2, "%.3f s of CPU in 1 s while the queue held 2 of 5 buffers", used);
  fail_unless_equals_int(gst_harness_buffers_received(h), 0);
  /* At the threshold one leaves, as on queue; EOS drains the rest. */
  for (guint i = 2; i < 5; i++)
    fail_unless_equals_int(gst_harness_push(h, aqt::make_buffer(i)), GST_FLOW_OK);
  aqt::pull_in_order(h, 0, 1);
  ck_assert(gst_harness_push_event(h, gst_event_new_eos()));
  aqt::pull_in_order(h, 1, 4);
  gst_harness_teardown(h);
  gst_object_unref(q);
}
GST_END_TEST;

Suite* handoff_suite() {
  Suite* s = suite_create("adaptivequeue-handoff");
  TCase* tc = tcase_create("wakeups");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_every_buffer_arrives);
  tcase_add_test(tc, test_task_sleeps_below_min_threshold);
  suite_add_tcase(s, tc);
  return s;
}

}  // namespace

GST_CHECK_MAIN(handoff);
