// Spin backoff: spins until one times out, then skips a doubling number of
// waits (capped), and a spin that saw progress ends the backoff.
// SPDX-License-Identifier: LGPL-2.1-or-later

#include <cstdint>

#include "spin_backoff.h"
#include "core_test.h"

using aq::SpinBackoff;

namespace {

// Waits that sleep at once before should_spin() is true again.
uint32_t skipped_waits(SpinBackoff& b) {
  uint32_t n = 0;
  while (!b.should_spin()) ++n;
  return n;
}

START_TEST(spins_while_spins_succeed) {
  SpinBackoff b;
  for (int i = 0; i < 1000; ++i) {
    ck_assert(b.should_spin());
    b.record(true);
  }
  ck_assert_uint_eq(b.skipping(), 0);
}
END_TEST

START_TEST(failures_double_the_skip_up_to_the_cap) {
  SpinBackoff b;
  const uint32_t expected[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 256, 256};
  for (uint32_t want : expected) {
    ck_assert(b.should_spin());
    b.record(false);
    ck_assert_uint_eq(b.skipping(), want);
    ck_assert_uint_eq(skipped_waits(b), want);
  }
  ck_assert_uint_eq(SpinBackoff::kMaxSkip, 256);
}
END_TEST

START_TEST(a_success_ends_the_backoff) {
  SpinBackoff b;
  for (int i = 0; i < 20; ++i) {
    skipped_waits(b);
    b.record(false);
  }
  ck_assert_uint_eq(b.skipping(), SpinBackoff::kMaxSkip);
  skipped_waits(b);
  b.record(true);
  ck_assert_uint_eq(b.skipping(), 0);
  ck_assert(b.should_spin());
  // The next failure starts again from one skipped wait.
  b.record(false);
  ck_assert_uint_eq(b.skipping(), 1);
}
END_TEST

// One failure in four (a machine with some noise) still spins on most
// waits.
START_TEST(occasional_failures_keep_spinning) {
  SpinBackoff b;
  uint32_t spins = 0, waits = 0;
  for (int i = 0; i < 10000; ++i) {
    ++waits;
    if (!b.should_spin()) continue;
    ++spins;
    b.record(spins % 4 != 0);
    ck_assert_uint_le(b.skipping(), 1);
  }
  ck_assert_uint_ge(spins * 4, waits * 3);
}
END_TEST

// When nearly every spin times out (one success in 20), nearly every wait
// sleeps at once.
START_TEST(mostly_failing_spins_are_rare) {
  SpinBackoff b;
  uint32_t spins = 0, waits = 0;
  for (int i = 0; i < 100000; ++i) {
    ++waits;
    if (!b.should_spin()) continue;
    ++spins;
    b.record(spins % 20 == 0);
  }
  ck_assert_uint_lt(spins * 20, waits);
}
END_TEST

Suite* spin_backoff_suite() {
  Suite* s = suite_create("spin_backoff");
  TCase* tc = tcase_create("backoff");
  tcase_add_test(tc, spins_while_spins_succeed);
  tcase_add_test(tc, failures_double_the_skip_up_to_the_cap);
  tcase_add_test(tc, a_success_ends_the_backoff);
  tcase_add_test(tc, occasional_failures_keep_spinning);
  tcase_add_test(tc, mostly_failing_spins_are_rare);
  suite_add_tcase(s, tc);
  return s;
}

}  // namespace

int main() { return aqtest::run_suite(spin_backoff_suite()); }
