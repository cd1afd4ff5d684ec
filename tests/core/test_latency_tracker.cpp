// Latency tracker: the first sample sets the average, then the integer
// avg = (9*avg + s)/10; samples are clamped; reset starts over; the interval
// maximum a tick reads and restarts.
// SPDX-License-Identifier: LGPL-2.1-or-later

#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "latency_tracker.h"
#include "core_test.h"

using aq::LatencyTracker;

namespace {

constexpr int64_t kMaxSample = LatencyTracker::kMaxSampleNs;

START_TEST(empty_tracker_has_no_average) {
  LatencyTracker t;
  ck_assert(!t.average().has_value());
  ck_assert(!t.max().has_value());
  ck_assert_uint_eq(t.count(), 0);
}
END_TEST

START_TEST(first_sample_becomes_the_average) {
  LatencyTracker t;
  t.add(12'345'678);
  ck_assert_int_eq(*t.average(), 12'345'678);
  ck_assert_int_eq(*t.max(), 12'345'678);
  ck_assert_uint_eq(t.count(), 1);
}
END_TEST

START_TEST(moving_average_in_integers) {
  LatencyTracker t;
  t.add(1000);
  t.add(2000);  // (9*1000 + 2000)/10 = 1100
  ck_assert_int_eq(*t.average(), 1100);
  t.add(5);  // (9900 + 5)/10 = 990.5 -> 990
  ck_assert_int_eq(*t.average(), 990);
  t.add(999);  // (8910 + 999)/10 = 990.9 -> 990: truncated, not rounded
  ck_assert_int_eq(*t.average(), 990);
  t.add(0);  // 8910/10 = 891
  ck_assert_int_eq(*t.average(), 891);
  ck_assert_int_eq(*t.max(), 2000);
  ck_assert_uint_eq(t.count(), 5);
}
END_TEST

START_TEST(integer_average_stalls_below_a_close_sample) {
  // avg 10, sample 19: (90+19)/10 = 10.9 -> 10, every time. A floating
  // average would creep up to 19.
  LatencyTracker t;
  t.add(10);
  for (int i = 0; i < 50; ++i)
    t.add(19);
  ck_assert_int_eq(*t.average(), 10);
  ck_assert_int_eq(*t.max(), 19);
  ck_assert_uint_eq(t.count(), 51);
}
END_TEST

START_TEST(steps_towards_a_new_level) {
  // From 0 towards 1,000,000 ns: 100000, 190000, 271000, 343900, 409510.
  const int64_t expected[] = {100'000, 190'000, 271'000, 343'900, 409'510};
  LatencyTracker t;
  t.add(0);
  for (int64_t want : expected) {
    t.add(1'000'000);
    ck_assert_int_eq(*t.average(), want);
  }
}
END_TEST

START_TEST(negative_samples_clamp_to_zero) {
  LatencyTracker t;
  t.add(-5);
  ck_assert_int_eq(*t.average(), 0);
  ck_assert_int_eq(*t.max(), 0);
  t.add(1000);  // (0 + 1000)/10 = 100
  ck_assert_int_eq(*t.average(), 100);
  t.add(std::numeric_limits<int64_t>::min());  // (900 + 0)/10 = 90
  ck_assert_int_eq(*t.average(), 90);
}
END_TEST

START_TEST(huge_samples_clamp_without_overflow) {
  ck_assert_int_eq(kMaxSample, int64_t{3'600'000'000'000});
  LatencyTracker t;
  t.add(std::numeric_limits<int64_t>::max());
  ck_assert_int_eq(*t.average(), kMaxSample);
  ck_assert_int_eq(*t.max(), kMaxSample);
  // 9*avg stays far inside int64_t: (9*3.6e12 + 3.6e12)/10 = 3.6e12.
  t.add(std::numeric_limits<int64_t>::max());
  ck_assert_int_eq(*t.average(), kMaxSample);
  t.add(0);  // 9*3.6e12/10 = 3.24e12
  ck_assert_int_eq(*t.average(), int64_t{3'240'000'000'000});
  t.add(kMaxSample + 1);  // (9*3.24e12 + 3.6e12)/10 = 3.276e12
  ck_assert_int_eq(*t.average(), int64_t{3'276'000'000'000});
}
END_TEST

START_TEST(reset_starts_over) {
  LatencyTracker t;
  t.add(5000);
  t.add(7000);
  t.reset();
  ck_assert(!t.average().has_value());
  ck_assert(!t.max().has_value());
  ck_assert_uint_eq(t.count(), 0);
  // The next sample sets the average instead of blending with the old one.
  t.add(300);
  ck_assert_int_eq(*t.average(), 300);
  ck_assert_int_eq(*t.max(), 300);
  ck_assert_uint_eq(t.count(), 1);
}
END_TEST

START_TEST(interval_max_per_tick) {
  // Per interval: a 200 ms stall shows at its full length in its interval,
  // where the average has already moved a tenth of the way.
  struct Interval {
    std::vector<int64_t> samples;
    int64_t expected_max;  // -1: none
  };
  const Interval intervals[] = {
      {{}, -1},
      {{5'000'000, 9'000'000, 3'000'000}, 9'000'000},
      {{2'000'000}, 2'000'000},
      {{}, -1},
      {{1'000'000, 200'000'000, 1'000'000}, 200'000'000},
      {{-7}, 0},  // clamped like every sample
      {{std::numeric_limits<int64_t>::max()}, kMaxSample},
  };
  LatencyTracker t;
  for (const Interval& in : intervals) {
    for (int64_t s : in.samples)
      t.add(s);
    const std::optional<int64_t> got = t.take_interval_max();
    if (in.expected_max < 0) {
      ck_assert(!got.has_value());
    } else {
      ck_assert(got.has_value());
      ck_assert_int_eq(*got, in.expected_max);
    }
  }
  ck_assert_int_eq(*t.max(), kMaxSample);
  ck_assert_uint_eq(t.count(), 9);
}
END_TEST

START_TEST(interval_max_leaves_the_average_exact) {
  // The same samples with and without take_interval_max() in between give
  // the same average, sample by sample.
  LatencyTracker with, without;
  int64_t s = 1;
  for (int i = 0; i < 1000; ++i) {
    s = (s * 48271) % 2147483647;  // Lehmer sequence
    const int64_t sample = s % 300'000'000;
    with.add(sample);
    without.add(sample);
    if (i % 7 == 0)
      with.take_interval_max();
    ck_assert_int_eq(*with.average(), *without.average());
  }
  ck_assert_int_eq(*with.max(), *without.max());
}
END_TEST

START_TEST(reset_ends_the_interval) {
  LatencyTracker t;
  t.add(5000);
  t.reset();
  ck_assert(!t.take_interval_max().has_value());
  t.add(300);
  ck_assert_int_eq(*t.take_interval_max(), 300);
}
END_TEST

Suite* latency_tracker_suite() {
  Suite* s = suite_create("latency_tracker");
  TCase* tc = tcase_create("average");
  tcase_add_test(tc, empty_tracker_has_no_average);
  tcase_add_test(tc, first_sample_becomes_the_average);
  tcase_add_test(tc, moving_average_in_integers);
  tcase_add_test(tc, integer_average_stalls_below_a_close_sample);
  tcase_add_test(tc, steps_towards_a_new_level);
  tcase_add_test(tc, negative_samples_clamp_to_zero);
  tcase_add_test(tc, huge_samples_clamp_without_overflow);
  tcase_add_test(tc, reset_starts_over);
  suite_add_tcase(s, tc);
  TCase* interval = tcase_create("interval");
  tcase_add_test(interval, interval_max_per_tick);
  tcase_add_test(interval, interval_max_leaves_the_average_exact);
  tcase_add_test(interval, reset_ends_the_interval);
  suite_add_tcase(s, interval);
  return s;
}

}  // namespace

int main() {
  return aqtest::run_suite(latency_tracker_suite());
}
