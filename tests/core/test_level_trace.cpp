// LevelTrace: an interval's highest and lowest level and its need, the
// highest rise from the lowest point before it, over push and pop sequences;
// a trough that continues past a tick.
// SPDX-License-Identifier: LGPL-2.1-or-later

#include <cstdint>
#include <vector>

#include "core_test.h"
#include "level_trace.h"

using aq::LevelInterval;
using aq::LevelTrace;

namespace {

// +1: a push, -1: a pop, 0: an overrun (a push that found the queue full).
struct TraceCase {
  const char* name;
  uint32_t start;
  std::vector<int> steps;
  uint32_t max, min, rise;
  bool overrun;
};

const TraceCase kTraceCases[] = {
    {"nothing happens", 5, {}, 5, 5, 0, false},
    {"steady stream", 3, {+1, -1, +1, -1, +1, -1}, 4, 3, 1, false},
    // A hold drains 5 to 1, then 6 frames arrive at once: the need is 6.
    {"a burst over a standing backlog",
     5,
     {-1, -1, -1, -1, +1, +1, +1, +1, +1, +1},
     7,
     1,
     6,
     false},
    // The same burst after the queue ran empty.
    {"a burst after an underrun", 2, {-1, -1, +1, +1, +1, +1, +1, +1}, 6, 0, 6, false},
    // A rise counts from the lowest point before it, not after.
    {"a fall after the rise does not count", 2, {+1, +1, -1, -1, -1, -1}, 4, 0, 2, false},
    {"two bursts: the higher rise",
     4,
     {-1, -1, +1, +1, +1, -1, -1, -1, -1, +1, +1},
     5,
     1,
     3,
     false},
    {"an overrun", 8, {0, -1, +1}, 8, 7, 1, true},
};

START_TEST(trace_table) {
  const TraceCase& c = kTraceCases[_i];
  LevelTrace t;
  t.start(c.start);
  uint32_t level = c.start;
  for (int step : c.steps) {
    if (step > 0)
      t.push(++level);
    else if (step < 0)
      t.pop(--level);
    else
      t.overrun();
  }
  const LevelInterval got = t.take(level);
  ck_assert_msg(
      got.max == c.max && got.min == c.min && got.rise == c.rise && got.overrun == c.overrun,
      "%s: max %u min %u rise %u overrun %d, expected %u %u %u %d", c.name, got.max, got.min,
      got.rise, got.overrun, c.max, c.min, c.rise, c.overrun);
}
END_TEST

// A hold that spans the tick: the level falls from 6 to 4 before it and to
// 1 after it; 7 frames then arrive. The next interval's need is the whole
// rise from 1, and its low point 1.
START_TEST(trough_across_a_tick) {
  LevelTrace t;
  t.start(6);
  t.pop(5);
  t.pop(4);
  const LevelInterval first = t.take(4);
  ck_assert_uint_eq(first.min, 4);
  ck_assert_uint_eq(first.rise, 0);
  t.pop(3);
  t.pop(2);
  t.pop(1);
  for (uint32_t level = 2; level <= 8; ++level)
    t.push(level);
  const LevelInterval second = t.take(8);
  ck_assert_uint_eq(second.max, 8);
  ck_assert_uint_eq(second.min, 1);
  ck_assert_uint_eq(second.rise, 7);
  ck_assert(!second.overrun);
}
END_TEST

// A burst that arrives just before the tick, seen by no push() (a lock-free
// push path reports levels at removals): the level passed to take() counts.
START_TEST(burst_seen_at_the_tick) {
  LevelTrace t;
  t.start(2);
  t.pop(1);
  t.pop(0);
  const LevelInterval got = t.take(6);
  ck_assert_uint_eq(got.max, 6);
  ck_assert_uint_eq(got.min, 0);
  ck_assert_uint_eq(got.rise, 6);
}
END_TEST

// Levels reported at removals only: the level before each removal, then
// after it. A hold drains 3 to 0, then 4 frames arrive between removals.
START_TEST(levels_seen_at_removals) {
  LevelTrace t;
  t.start(3);
  const uint32_t before_after[][2] = {{3, 2}, {2, 1}, {1, 0}, {4, 3}, {4, 3}};
  for (const auto& r : before_after) {
    t.push(r[0]);
    t.pop(r[1]);
  }
  const LevelInterval got = t.take(3);
  ck_assert_uint_eq(got.max, 4);
  ck_assert_uint_eq(got.min, 0);
  ck_assert_uint_eq(got.rise, 4);
}
END_TEST

// take() restarts at the level it is given: the overrun and the rise are
// the old interval's only.
START_TEST(take_restarts) {
  LevelTrace t;
  t.start(0);
  t.push(1);
  t.push(2);
  t.overrun();
  const LevelInterval first = t.take(2);
  ck_assert_uint_eq(first.rise, 2);
  ck_assert(first.overrun);
  const LevelInterval second = t.take(2);
  ck_assert_uint_eq(second.max, 2);
  ck_assert_uint_eq(second.min, 2);
  ck_assert_uint_eq(second.rise, 0);
  ck_assert(!second.overrun);
}
END_TEST

// max(level): the highest since the tick, or the level now if higher (the
// overrun's level_max).
START_TEST(max_so_far) {
  LevelTrace t;
  t.start(3);
  t.push(4);
  t.pop(3);
  ck_assert_uint_eq(t.max(3), 4);
  ck_assert_uint_eq(t.max(9), 9);
}
END_TEST

Suite* level_trace_suite() {
  Suite* s = suite_create("level_trace");
  TCase* t = tcase_create("interval");
  tcase_add_loop_test(t, trace_table, 0, aqtest::count(kTraceCases));
  tcase_add_test(t, trough_across_a_tick);
  tcase_add_test(t, burst_seen_at_the_tick);
  tcase_add_test(t, levels_seen_at_removals);
  tcase_add_test(t, take_restarts);
  tcase_add_test(t, max_so_far);
  suite_add_tcase(s, t);
  return s;
}

}  // namespace

int main() {
  return aqtest::run_suite(level_trace_suite());
}
