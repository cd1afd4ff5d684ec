// Trimmer: with no need (keep level 1), after trim-period with the level
// never below T >= 2 and no overrun, drop T - 1 buffers once; what restarts
// the stretch; off at 0. Then the keep level following the need.
// SPDX-License-Identifier: LGPL-2.1-or-later

#include <cstdint>
#include <vector>

#include "core_test.h"
#include "trimmer.h"

using aq::PolicyConfig;
using aq::Trimmer;

namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kTick = 500 * kMs;

aq::LevelInterval interval(uint32_t min, uint32_t rise, bool overrun = false) {
  return aq::LevelInterval{min + rise, min, rise, overrun};
}

struct TickIn {
  uint32_t level_min;
  bool overrun;
  uint32_t drop;  // expected
};

// Ticks at 0.5 s, 1.0 s, 1.5 s, ...; the first tick starts a stretch.
struct TrimCase {
  const char* name;
  int64_t period_ns;
  std::vector<TickIn> ticks;
};

const TrimCase kTrimCases[] = {
    {"off at 0",
     0,
     {{5, false, 0}, {5, false, 0}, {5, false, 0}, {5, false, 0}, {5, false, 0}, {5, false, 0}}},
    // Stretch from 0.5 s; at 2.5 s it has lasted 2 s with the level >= 5.
    {"steady backlog of 5",
     2000 * kMs,
     {{5, false, 0},
      {5, false, 0},
      {5, false, 0},
      {5, false, 0},
      {5, false, 4},
      {1, false, 0},
      {1, false, 0}}},
    // The first tick's 9 came before the stretch; then 6, 4, 7, 5: T = 4.
    {"the lowest level decides",
     2000 * kMs,
     {{9, false, 0}, {6, false, 0}, {4, false, 0}, {7, false, 0}, {5, false, 3}}},
    // A level of 1 at 1.5 s restarts the stretch there: trim at 3.5 s.
    {"a level below 2 restarts",
     2000 * kMs,
     {{5, false, 0},
      {5, false, 0},
      {1, false, 0},
      {5, false, 0},
      {5, false, 0},
      {5, false, 0},
      {5, false, 4},
      {5, false, 0}}},
    {"an overrun restarts",
     2000 * kMs,
     {{5, false, 0},
      {5, false, 0},
      {5, true, 0},
      {5, false, 0},
      {5, false, 0},
      {5, false, 0},
      {5, false, 4},
      {5, false, 0}}},
    // After a trim at 2.5 s the next stretch starts there: again at 4.5 s.
    {"a trim restarts",
     2000 * kMs,
     {{3, false, 0},
      {3, false, 0},
      {3, false, 0},
      {3, false, 0},
      {3, false, 2},
      {3, false, 0},
      {3, false, 0},
      {3, false, 0},
      {3, false, 2}}},
    {"level 2 leaves 1",
     2000 * kMs,
     {{2, false, 0}, {2, false, 0}, {2, false, 0}, {2, false, 0}, {2, false, 1}}},
    {"level 1 is never trimmed",
     2000 * kMs,
     {{1, false, 0}, {1, false, 0}, {1, false, 0}, {1, false, 0}, {1, false, 0}, {1, false, 0}}},
    {"an empty queue is never trimmed",
     2000 * kMs,
     {{0, false, 0}, {0, false, 0}, {0, false, 0}, {0, false, 0}, {0, false, 0}, {0, false, 0}}},
    // A period shorter than the tick acts at the next tick.
    {"period below the tick", 100 * kMs, {{3, false, 0}, {3, false, 2}, {1, false, 0}}},
    // 1.2 s: from 0.5 s, the first tick at least 1.2 s later is 2.0 s.
    {"period between ticks",
     1200 * kMs,
     {{3, false, 0}, {3, false, 0}, {3, false, 0}, {3, false, 2}}},
};

START_TEST(trim_table) {
  const TrimCase& c = kTrimCases[_i];
  PolicyConfig config;
  config.trim_period_ns = c.period_ns;
  ck_assert_msg(aq::validate(config).empty(), "%s: invalid config", c.name);
  Trimmer t;
  uint64_t trims = 0, trimmed = 0;
  for (size_t i = 0; i < c.ticks.size(); ++i) {
    const TickIn& in = c.ticks[i];
    const int64_t now = static_cast<int64_t>(i + 1) * kTick;
    const uint32_t got = t.tick(config, now, interval(in.level_min, 0, in.overrun));
    ck_assert_msg(got == in.drop, "%s: tick at %lld ms drops %u, expected %u", c.name,
                  static_cast<long long>(now / kMs), got, in.drop);
    if (got > 0) {
      ++trims;
      trimmed += got;
    }
  }
  ck_assert_uint_eq(t.trims(), trims);
  ck_assert_uint_eq(t.trimmed_buffers(), trimmed);
}
END_TEST

START_TEST(turning_on_starts_a_stretch) {
  PolicyConfig on;
  on.trim_period_ns = 2000 * kMs;
  PolicyConfig off;
  off.trim_period_ns = 0;
  Trimmer t;
  ck_assert_uint_eq(t.tick(on, 1 * kTick, interval(5, 0)), 0);
  ck_assert_uint_eq(t.tick(on, 2 * kTick, interval(5, 0)), 0);
  ck_assert_uint_eq(t.tick(off, 3 * kTick, interval(5, 0)), 0);
  // On again at 2.0 s: the stretch starts there, not at 0.5 s.
  ck_assert_uint_eq(t.tick(on, 4 * kTick, interval(5, 0)), 0);
  ck_assert_uint_eq(t.tick(on, 5 * kTick, interval(5, 0)), 0);
  ck_assert_uint_eq(t.tick(on, 6 * kTick, interval(5, 0)), 0);
  ck_assert_uint_eq(t.tick(on, 7 * kTick, interval(5, 0)), 0);
  ck_assert_uint_eq(t.tick(on, 8 * kTick, interval(5, 0)), 4);
}
END_TEST

START_TEST(reset_forgets_the_stretch) {
  PolicyConfig config;
  config.trim_period_ns = 1000 * kMs;
  Trimmer t;
  t.tick(config, 1 * kTick, interval(5, 0));
  t.tick(config, 2 * kTick, interval(5, 0));
  ck_assert_uint_eq(t.tick(config, 3 * kTick, interval(5, 0)), 4);
  t.reset();
  ck_assert_uint_eq(t.trims(), 0);
  ck_assert_uint_eq(t.trimmed_buffers(), 0);
  // A new stretch starts at the next tick, 2.0 s: trim at 3.0 s.
  ck_assert_uint_eq(t.tick(config, 4 * kTick, interval(5, 0)), 0);
  ck_assert_uint_eq(t.tick(config, 5 * kTick, interval(5, 0)), 0);
  ck_assert_uint_eq(t.tick(config, 6 * kTick, interval(5, 0)), 4);
}
END_TEST

// ---- the keep level follows the need ----

struct KeepCase {
  const char* name;
  int64_t period_ns;
  std::vector<aq::LevelInterval> ticks;
  std::vector<uint32_t> drops;  // expected, per tick
  uint32_t keep;                // expected after the last tick
};

const KeepCase kKeepCases[] = {
    // A need of 3: the low point 10 keeps 3 and drops 7 at 2.5 s.
    {"the need's quantile is kept",
     2000 * kMs,
     {interval(10, 3), interval(10, 3), interval(10, 3), interval(10, 3), interval(10, 3)},
     {0, 0, 0, 0, 7},
     3},
    // The low point reaching the keep level at 1.5 s restarts the stretch.
    {"a level at the keep level restarts",
     2000 * kMs,
     {interval(10, 3), interval(10, 3), interval(3, 3), interval(10, 3), interval(10, 3),
      interval(10, 3), interval(10, 3)},
     {0, 0, 0, 0, 0, 0, 7},
     3},
    {"an overrun restarts",
     2000 * kMs,
     {interval(10, 3), interval(10, 3), interval(10, 3, true), interval(10, 3), interval(10, 3),
      interval(10, 3), interval(10, 3)},
     {0, 0, 0, 0, 0, 0, 7},
     3},
    {"no need keeps 1",
     2000 * kMs,
     {interval(5, 0), interval(5, 0), interval(5, 0), interval(5, 0), interval(5, 0)},
     {0, 0, 0, 0, 4},
     1},
    // One burst of 8 among 4 ticks is above 5 % of their weight.
    {"a burst raises the keep level",
     2000 * kMs,
     {interval(10, 1), interval(10, 1), interval(10, 8), interval(10, 1), interval(10, 1)},
     {0, 0, 0, 0, 2},
     8},
    {"off: the need is learnt, nothing dropped",
     0,
     {interval(10, 6), interval(10, 6), interval(10, 6), interval(10, 6), interval(10, 6)},
     {0, 0, 0, 0, 0},
     6},
};

START_TEST(keep_table) {
  const KeepCase& c = kKeepCases[_i];
  PolicyConfig config;
  config.trim_period_ns = c.period_ns;
  Trimmer t;
  for (size_t i = 0; i < c.ticks.size(); ++i) {
    const int64_t now = static_cast<int64_t>(i + 1) * kTick;
    const uint32_t got = t.tick(config, now, c.ticks[i]);
    ck_assert_msg(got == c.drops[i], "%s: tick at %lld ms drops %u, expected %u", c.name,
                  static_cast<long long>(now / kMs), got, c.drops[i]);
  }
  ck_assert_msg(t.keep() == c.keep, "%s: keep %u, expected %u", c.name, t.keep(), c.keep);
}
END_TEST

// demand-headroom 0 is JetKVM's step alone: a trim period set does not
// trim, and the need is still learnt.
START_TEST(headroom_zero_never_trims) {
  PolicyConfig config;
  config.trim_period_ns = 2000 * kMs;
  config.demand_headroom = 0.0;
  Trimmer t;
  for (int i = 1; i <= 10; ++i)
    ck_assert_uint_eq(t.tick(config, i * kTick, interval(10, 3)), 0);
  ck_assert_uint_eq(t.keep(), 3);
  ck_assert_uint_eq(t.trims(), 0);
}
END_TEST

Suite* trimmer_suite() {
  Suite* s = suite_create("trimmer");
  TCase* tc = tcase_create("trim");
  tcase_add_loop_test(tc, trim_table, 0, aqtest::count(kTrimCases));
  tcase_add_test(tc, turning_on_starts_a_stretch);
  tcase_add_test(tc, reset_forgets_the_stretch);
  tcase_add_loop_test(tc, keep_table, 0, aqtest::count(kKeepCases));
  tcase_add_test(tc, headroom_zero_never_trims);
  suite_add_tcase(s, tc);
  return s;
}

}  // namespace

int main() {
  return aqtest::run_suite(trimmer_suite());
}
