// NeedHistogram: NetEq's quantile with forgetting, sample by sample: what a
// spike weighs among few and many samples, how long a regime takes to fade,
// the cap on needs, and other quantiles.
// SPDX-License-Identifier: LGPL-2.1-or-later

#include <cstdint>
#include <vector>

#include "core_test.h"
#include "need_histogram.h"

using aq::NeedHistogram;

namespace {

// `count` samples of `need`, in order.
struct Run {
  uint32_t need;
  int count;
};

struct HistCase {
  const char* name;
  double quantile;
  uint32_t max_need;
  std::vector<Run> samples;
  uint32_t expected;
};

// Forget factor 0.983: a sample weighs 1.7 % at first, and 5 % of the total
// is the top 5 % of the recent weight.
const HistCase kHistCases[] = {
    {"empty", 0.95, 255, {}, 0},
    {"one sample", 0.95, 255, {{7, 1}}, 7},
    // 20 samples weigh 1 - 0.983^20 = 0.290; the spike's 0.017 is above 5 %.
    {"a spike among 20 samples", 0.95, 255, {{1, 19}, {10, 1}}, 10},
    // 201 samples weigh 0.968: one spike is 1.8 %, two 3.5 %, three 5.2 %.
    {"one spike after a long calm", 0.95, 255, {{5, 300}, {10, 1}}, 5},
    {"two spikes after a long calm", 0.95, 255, {{5, 300}, {10, 2}}, 5},
    {"three spikes after a long calm", 0.95, 255, {{5, 300}, {10, 3}}, 10},
    // 20 ticks of 12 outweigh 5 % for 109 more ticks of 2, not for 110.
    {"a regime fades after 55 s", 0.95, 255, {{12, 20}, {2, 109}}, 12},
    {"a regime faded", 0.95, 255, {{12, 20}, {2, 110}}, 2},
    {"needs above max_need count at it", 0.95, 8, {{20, 1}}, 8},
    {"median of 1, 2, 3", 0.5, 255, {{1, 1}, {2, 1}, {3, 1}}, 2},
    {"median leans to the newest", 0.5, 255, {{1, 1}, {1, 1}, {9, 1}}, 1},
    // A quantile no weight reaches (above 1) reads as the cap, not the
    // highest need seen.
    {"a quantile above 1 reads max_need", 1.5, 8, {{3, 5}}, 8},
};

START_TEST(hist_table) {
  const HistCase& c = kHistCases[_i];
  NeedHistogram::Config config;
  config.quantile = c.quantile;
  config.max_need = c.max_need;
  NeedHistogram h(config);
  for (const Run& r : c.samples)
    for (int i = 0; i < r.count; ++i)
      h.add(r.need);
  ck_assert_msg(h.quantile() == c.expected, "%s: quantile %u, expected %u", c.name, h.quantile(),
                c.expected);
}
END_TEST

START_TEST(defaults_are_netEq_s) {
  const NeedHistogram h(NeedHistogram::Config{});
  ck_assert(h.config().quantile == 0.95);
  ck_assert(h.config().forget_factor == 0.983);
}
END_TEST

START_TEST(reset_forgets) {
  NeedHistogram h(NeedHistogram::Config{});
  h.add(9);
  h.reset();
  ck_assert_uint_eq(h.quantile(), 0);
  h.add(3);
  ck_assert_uint_eq(h.quantile(), 3);
}
END_TEST

// A long run stays bounded: weights scale down, they never grow past 1.
START_TEST(long_run_of_one_need) {
  NeedHistogram h(NeedHistogram::Config{});
  for (int i = 0; i < 100'000; ++i)
    h.add(4);
  ck_assert_uint_eq(h.quantile(), 4);
  h.add(30);
  ck_assert_uint_eq(h.quantile(), 4);
}
END_TEST

Suite* need_histogram_suite() {
  Suite* s = suite_create("need_histogram");
  TCase* t = tcase_create("quantile");
  tcase_add_loop_test(t, hist_table, 0, aqtest::count(kHistCases));
  tcase_add_test(t, defaults_are_netEq_s);
  tcase_add_test(t, reset_forgets);
  tcase_add_test(t, long_run_of_one_need);
  suite_add_tcase(s, t);
  return s;
}

}  // namespace

int main() {
  return aqtest::run_suite(need_histogram_suite());
}
