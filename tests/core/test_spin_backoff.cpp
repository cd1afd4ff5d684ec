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
  while (!b.should_spin())
    ++n;
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

// `waits` waits on a fresh backoff; each allowed spin succeeds when
// `succeeds(n)` says so for the n-th spin (from 1).
struct Tally {
  uint32_t waits = 0;
  uint32_t spins = 0;
  uint32_t max_skip = 0;
};

template <class Outcome>
Tally run_waits(uint32_t waits, Outcome succeeds) {
  SpinBackoff b;
  Tally t;
  for (; t.waits < waits; ++t.waits) {
    if (!b.should_spin())
      continue;
    ++t.spins;
    b.record(succeeds(t.spins));
    if (b.skipping() > t.max_skip)
      t.max_skip = b.skipping();
  }
  return t;
}

// One failure in four (a machine with some noise) still spins on most
// waits.
START_TEST(occasional_failures_keep_spinning) {
  const Tally t = run_waits(10000, [](uint32_t n) { return n % 4 != 0; });
  ck_assert_uint_le(t.max_skip, 1);
  ck_assert_uint_ge(t.spins * 4, t.waits * 3);
}
END_TEST

// When nearly every spin times out (one success in 20), nearly every wait
// sleeps at once.
START_TEST(mostly_failing_spins_are_rare) {
  const Tally t = run_waits(100000, [](uint32_t n) { return n % 20 == 0; });
  ck_assert_uint_lt(t.spins * 20, t.waits);
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

int main() {
  return aqtest::run_suite(spin_backoff_suite());
}
