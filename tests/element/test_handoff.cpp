/* The hand-off checker (handoff_check.h) in the plain suite: thousands of
 * single buffers, each of which must reach downstream within a bound, so
 * that a lost wake-up fails every run. tests/tsan runs it under
 * ThreadSanitizer.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "handoff_check.h"

namespace {

GST_START_TEST(test_every_buffer_arrives) {
  aqt::expect_handoff(4000, 20);
  aqt::expect_handoff(4000, 2026);
  aqt::expect_handoff(4000, 1207);
}
GST_END_TEST;

Suite* handoff_suite() {
  Suite* s = suite_create("adaptivequeue-handoff");
  TCase* tc = tcase_create("wakeups");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_every_buffer_arrives);
  suite_add_tcase(s, tc);
  return s;
}

}  // namespace

GST_CHECK_MAIN(handoff);
