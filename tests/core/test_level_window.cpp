// Level window: the highest level over a sliding window kept in fixed slots;
// exact expiry times, slot reuse, window changes, and a long run against a
// brute-force reference.
// SPDX-License-Identifier: LGPL-2.1-or-later

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "core_test.h"
#include "level_window.h"

using aq::LevelWindow;

namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kS = 1'000 * kMs;
// 3.1 s over kSlots - 1 = 31 slots: exactly 100 ms a slot. A level noted in
// slot n counts while the newest slot is at most n + 31, i.e. until
// (n + 32) x 100 ms.
constexpr int64_t kWindow = 3100 * kMs;

struct Note {
  int64_t t_ns;
  uint32_t level;
};

struct Query {
  int64_t t_ns;
  uint32_t expected;
};

struct WindowCase {
  const char* name;
  std::vector<Note> notes;  // noted in order, all before the queries
  std::vector<Query> queries;
};

const WindowCase kWindowCases[] = {
    {"empty", {}, {{0, 0}, {10 * kS, 0}}},
    // Slot 0: counted until 32 x 100 ms = 3.2 s.
    {"noted at 0, gone at 3.2 s",
     {{0, 5}},
     {{0, 5}, {3100 * kMs, 5}, {3200 * kMs - 1, 5}, {3200 * kMs, 0}}},
    // 99.999999 ms is still slot 0: counted 3.1000001 s, never less than the window.
    {"end of a slot", {{100 * kMs - 1, 5}}, {{3200 * kMs - 1, 5}, {3200 * kMs, 0}}},
    // 100 ms is slot 1: until 3.3 s.
    {"start of a slot", {{100 * kMs, 5}}, {{3300 * kMs - 1, 5}, {3300 * kMs, 0}}},
    {"one slot keeps its highest", {{0, 5}, {50 * kMs, 2}, {99 * kMs, 4}}, {{100 * kMs, 5}}},
    // 7 (slot 10) outlives 9 (slot 1): 9 until 3.3 s, 7 until 4.2 s.
    {"the highest expires first",
     {{100 * kMs, 9}, {1 * kS, 7}},
     {{1 * kS, 9}, {3300 * kMs - 1, 9}, {3300 * kMs, 7}, {4200 * kMs - 1, 7}, {4200 * kMs, 0}}},
    // Slot 32 reuses slot 0's place; 5 had expired anyway.
    {"a slot's place is reused",
     {{0, 5}, {3200 * kMs, 2}},
     {{3200 * kMs, 2}, {6400 * kMs - 1, 2}, {6400 * kMs, 0}}},
    // Slot 31 (3.1 s) and slot 0 share no place: both count at 3.1 s.
    {"the oldest slot still counts", {{0, 5}, {3100 * kMs, 2}}, {{3100 * kMs, 5}, {3200 * kMs, 2}}},
    {"level 0 changes nothing", {{0, 3}, {1 * kS, 0}}, {{1 * kS, 3}}},
    // A time before 0 falls in slot -1, not 0: until 3.1 s.
    {"before 0", {{-1, 5}}, {{3100 * kMs - 1, 5}, {3100 * kMs, 0}}},
};

START_TEST(window_table) {
  const WindowCase& c = kWindowCases[_i];
  LevelWindow w(kWindow);
  for (const Note& n : c.notes)
    w.note(n.t_ns, n.level);
  for (const Query& q : c.queries) {
    const uint32_t got = w.max(q.t_ns);
    ck_assert_msg(got == q.expected, "%s: max(%lld ns) = %u, expected %u", c.name,
                  static_cast<long long>(q.t_ns), got, q.expected);
  }
}
END_TEST

START_TEST(default_window_slots) {
  // 10 s over 31 slots: ceil(1e10 / 31) = 322580646 ns a slot. 500 ms is
  // slot 1 (322580646 <= 5e8 < 645161292), counted until
  // 33 x 322580646 = 10645161318 ns: 10.145 s after it was noted.
  LevelWindow w(10 * kS);
  w.note(500 * kMs, 20);
  ck_assert_uint_eq(w.max(10'645'161'317), 20);
  ck_assert_uint_eq(w.max(10'645'161'318), 0);
  ck_assert_int_eq(w.window_ns(), 10 * kS);
}
END_TEST

START_TEST(set_window_keeps_the_highest_level) {
  LevelWindow w(kWindow);
  w.note(0, 5);
  w.note(1 * kS, 7);
  // 31 s: 1 s a slot. 7 is noted again at 2 s (slot 2): until 34 s.
  w.set_window(2 * kS, 31 * kS);
  ck_assert_int_eq(w.window_ns(), 31 * kS);
  ck_assert_uint_eq(w.max(2 * kS), 7);
  ck_assert_uint_eq(w.max(34 * kS - 1), 7);
  ck_assert_uint_eq(w.max(34 * kS), 0);
  // Back to 3.1 s at 10 s: 7 noted at 10 s (slot 100), until 13.2 s.
  w.set_window(10 * kS, kWindow);
  ck_assert_uint_eq(w.max(13200 * kMs - 1), 7);
  ck_assert_uint_eq(w.max(13200 * kMs), 0);
}
END_TEST

START_TEST(set_window_same_value_changes_nothing) {
  LevelWindow w(kWindow);
  w.note(0, 5);
  w.set_window(3 * kS, kWindow);
  ck_assert_uint_eq(w.max(3200 * kMs - 1), 5);
  ck_assert_uint_eq(w.max(3200 * kMs), 0);
}
END_TEST

START_TEST(set_window_after_expiry_keeps_nothing) {
  LevelWindow w(kWindow);
  w.note(0, 5);
  w.set_window(4 * kS, 31 * kS);
  ck_assert_uint_eq(w.max(4 * kS), 0);
}
END_TEST

START_TEST(reset_forgets) {
  LevelWindow w(kWindow);
  w.note(0, 5);
  w.reset();
  ck_assert_uint_eq(w.max(0), 0);
  w.note(0, 2);
  ck_assert_uint_eq(w.max(0), 2);
}
END_TEST

// xorshift64: a fixed pseudo-random sequence.
uint64_t next_random(uint64_t& x) {
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return x;
}

START_TEST(long_run_within_bounds) {
  // Whatever the spacing of notes and queries, max() is at least the highest
  // level noted in the last window and at most the highest of the last
  // window plus one slot (100 ms).
  LevelWindow w(kWindow);
  std::vector<Note> all;
  uint64_t x = 88172645463325252ull;
  int64_t t = 0;
  for (int i = 0; i < 20000; ++i) {
    t += static_cast<int64_t>(next_random(x) % (700 * kMs));
    const uint32_t level = static_cast<uint32_t>(next_random(x) % 40);
    if (next_random(x) % 3 != 0) {
      w.note(t, level);
      all.push_back({t, level});
    }
    uint32_t at_least = 0, at_most = 0;
    for (auto it = all.rbegin(); it != all.rend() && it->t_ns >= t - kWindow - 100 * kMs; ++it) {
      at_most = std::max(at_most, it->level);
      if (it->t_ns >= t - kWindow)
        at_least = std::max(at_least, it->level);
    }
    const uint32_t got = w.max(t);
    ck_assert_msg(got >= at_least && got <= at_most, "step %d at %lld ns: %u not in %u..%u", i,
                  static_cast<long long>(t), got, at_least, at_most);
  }
}
END_TEST

Suite* level_window_suite() {
  Suite* s = suite_create("level_window");
  TCase* tc = tcase_create("window");
  tcase_add_loop_test(tc, window_table, 0, aqtest::count(kWindowCases));
  tcase_add_test(tc, default_window_slots);
  tcase_add_test(tc, set_window_keeps_the_highest_level);
  tcase_add_test(tc, set_window_same_value_changes_nothing);
  tcase_add_test(tc, set_window_after_expiry_keeps_nothing);
  tcase_add_test(tc, reset_forgets);
  tcase_add_test(tc, long_run_within_bounds);
  suite_add_tcase(s, tc);
  return s;
}

}  // namespace

int main() {
  return aqtest::run_suite(level_window_suite());
}
