// Adapter: JetKVM's step bounded below by the demand floor, the floor's
// window expiry, growth on an overrun (formula and cap), skipped ticks, and
// headroom 0 as JetKVM's step exactly over a long pseudo-random run.
// SPDX-License-Identifier: LGPL-2.1-or-later

#include <cstdint>
#include <optional>

#include "adapter.h"
#include "core_test.h"

using aq::Adapter;
using aq::Decision;
using aq::LoadSample;
using aq::PolicyConfig;
using aq::TickInput;

namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kTick = 500 * kMs;

// With the defaults (min 4, max 32, smoothing 0.3):
// loaded: every factor -1, new = cur - 0.3 * (cur - 4);
// idle: every factor +1, new = cur + 0.3 * (32 - cur);
// mid: every factor 0, the dead band.
enum LoadKind { kLoaded, kIdle, kMid };

LoadSample load_of(LoadKind k) {
  switch (k) {
    case kLoaded:
      return {90, 90};
    case kIdle:
      return {10, 20};
    default:
      return {40, 55};
  }
}

int64_t latency_of(LoadKind k) {
  switch (k) {
    case kLoaded:
      return 80 * kMs;
    case kIdle:
      return 5 * kMs;
    default:
      return 35 * kMs;
  }
}

TickInput input(uint32_t capacity, uint32_t level_max, bool live, LoadKind load, int64_t now) {
  TickInput in;
  in.capacity = capacity;
  in.level_max = level_max;
  in.live = live;
  in.load = load_of(load);
  in.latency_avg_ns = latency_of(load);
  in.now_ns = now;
  return in;
}

PolicyConfig with_headroom(double headroom) {
  PolicyConfig c;
  c.demand_headroom = headroom;
  return c;
}

// ---- the floor, one tick ----

struct FloorCase {
  const char* name;
  double headroom;
  bool live;
  uint32_t cur, level_max;
  LoadKind load;
  uint32_t floor, expected;
  bool applied;
};

const FloorCase kFloorCases[] = {
    // step: 16 - 0.3 * 12 = 12.4 -> 12; no demand, no floor
    {"loaded, no demand", 1.25, true, 16, 0, kLoaded, 0, 12, true},
    // floor ceil(1.25 * 8) = 10 < 12: the step stands
    {"loaded, floor below the step", 1.25, true, 16, 8, kLoaded, 10, 12, true},
    // floor ceil(1.25 * 12) = 15 > 12
    {"loaded, floor binds", 1.25, true, 16, 12, kLoaded, 15, 15, true},
    // floor ceil(1.25 * 13) = ceil(16.25) = 17 > 16: the tick grows it
    {"loaded, floor above the capacity", 1.25, true, 16, 13, kLoaded, 17, 17, true},
    // floor 1 * 16 = 16: the capacity stays, which is no adaptation
    {"loaded, floor holds the capacity", 1.0, true, 16, 16, kLoaded, 16, 16, false},
    {"loaded, not live", 1.25, false, 16, 13, kLoaded, 0, 12, true},
    {"loaded, headroom 0", 0.0, true, 16, 13, kLoaded, 0, 12, true},
    // floor 4 * 5 = 20
    {"loaded, headroom 4", 4.0, true, 16, 5, kLoaded, 20, 20, true},
    // dead band: the step keeps 16; floor 17
    {"dead band, floor above", 1.25, true, 16, 13, kMid, 17, 17, true},
    // dead band: floor 15 below 16
    {"dead band, floor below", 1.25, true, 16, 12, kMid, 15, 16, false},
    // step: 16 + 0.3 * 16 = 20.8 -> 21; floor 20
    {"idle, step above the floor", 1.25, true, 16, 16, kIdle, 20, 21, true},
    // floor ceil(1.25 * 26) = 33, capped at max 32
    {"floor capped at max-buffers", 1.25, true, 16, 26, kLoaded, 32, 32, true},
    // above max by hand: step 40 - 0.3 * 36 = 29.2 -> 29; floor ceil(37.5) -> 32
    {"capacity above max-buffers", 1.25, true, 40, 30, kLoaded, 32, 32, true},
};

START_TEST(floor_table) {
  const FloorCase& c = kFloorCases[_i];
  const PolicyConfig config = with_headroom(c.headroom);
  ck_assert_msg(aq::validate(config).empty(), "%s: invalid config", c.name);
  Adapter a;
  const Decision d = a.tick(config, input(c.cur, c.level_max, c.live, c.load, kTick));
  ck_assert_msg(d.demand_floor == c.floor, "%s: floor %u, expected %u", c.name, d.demand_floor,
                c.floor);
  ck_assert_msg(d.old_capacity == c.cur, "%s: old_capacity %u", c.name, d.old_capacity);
  ck_assert_msg(d.new_capacity == c.expected, "%s: new_capacity %u, expected %u", c.name,
                d.new_capacity, c.expected);
  ck_assert_msg(d.applied == c.applied, "%s: applied %d, expected %d", c.name, d.applied,
                c.applied);
  ck_assert_msg(!d.overrun, "%s: a tick is no overrun", c.name);
  ck_assert_uint_eq(a.adaptations(), c.applied ? 1 : 0);
  ck_assert_uint_eq(a.overrun_growths(), 0);
  ck_assert_uint_eq(a.demand_floor(config, c.live, kTick), c.floor);
}
END_TEST

START_TEST(unbound_floor_keeps_the_step_applied_flag) {
  // min 3, smoothing 0.5, cpu weight only, at 4 under load: the step goes to
  // 3.5, which rounds back to 4 and is counted. A floor of 4 (headroom 1,
  // level 4) does not bind, so the step's own flag stands.
  PolicyConfig c;
  c.min_buffers = 3;
  c.smoothing = 0.5;
  c.cpu_weight = 1.0;
  c.mem_weight = 0.0;
  c.latency_weight = 0.0;
  c.demand_headroom = 1.0;
  Adapter a;
  TickInput in;
  in.capacity = 4;
  in.level_max = 4;
  in.live = true;
  in.load = LoadSample{90, 55};
  in.now_ns = kTick;
  const Decision d = a.tick(c, in);
  ck_assert_uint_eq(d.demand_floor, 4);
  ck_assert_uint_eq(d.new_capacity, 4);
  ck_assert(d.applied);
  ck_assert_uint_eq(a.adaptations(), 1);
  ck_assert_int_eq(*a.last_adaptation_ns(), kTick);
}
END_TEST

// ---- the window ----

START_TEST(floor_expires_after_the_window) {
  // Default window, 10 s: the level 20 noted at 0.5 s (slot 1 of
  // 322580646 ns) counts until 10645161318 ns, so through the 10.5 s tick.
  const PolicyConfig config;
  Adapter a;
  Decision d = a.tick(config, input(16, 20, true, kLoaded, kTick));
  ck_assert_uint_eq(d.demand_floor, 25);  // ceil(1.25 * 20)
  ck_assert_uint_eq(d.new_capacity, 25);
  ck_assert(d.applied);
  uint32_t cap = d.new_capacity;
  for (int i = 2; i <= 21; ++i) {  // 1.0 s .. 10.5 s, nothing queued
    d = a.tick(config, input(cap, 0, true, kLoaded, i * kTick));
    ck_assert_msg(d.demand_floor == 25 && d.new_capacity == 25 && !d.applied,
                  "tick at %d ms: floor %u, capacity %u, applied %d", i * 500, d.demand_floor,
                  d.new_capacity, d.applied);
  }
  // 11.0 s: the floor is gone and the step shrinks 25 - 0.3 * 21 = 18.7 -> 19.
  d = a.tick(config, input(cap, 0, true, kLoaded, 22 * kTick));
  ck_assert_uint_eq(d.demand_floor, 0);
  ck_assert_uint_eq(d.new_capacity, 19);
  ck_assert(d.applied);
  ck_assert_uint_eq(a.adaptations(), 2);
}
END_TEST

START_TEST(window_follows_the_config) {
  // A shorter window set at run time keeps the demand seen so far, noted
  // anew at the first call with it, and then expires with the new window.
  PolicyConfig config;
  Adapter a;
  a.tick(config, input(16, 20, true, kMid, kTick));
  config.demand_window_ns = 3100 * kMs;  // 100 ms slots
  // At 2 s the level 20 is noted again (slot 20): until 5.2 s.
  Decision d = a.tick(config, input(25, 0, true, kMid, 4 * kTick));
  ck_assert_uint_eq(d.demand_floor, 25);
  ck_assert_uint_eq(a.demand_floor(config, true, 5200 * kMs - 1), 25);
  ck_assert_uint_eq(a.demand_floor(config, true, 5200 * kMs), 0);
}
END_TEST

START_TEST(skipped_tick_feeds_the_window_only) {
  const PolicyConfig config;
  Adapter a;
  TickInput in = input(16, 13, true, kLoaded, kTick);
  in.load.reset();
  Decision d = a.tick(config, in);
  ck_assert_uint_eq(d.demand_floor, 17);
  ck_assert_uint_eq(d.old_capacity, 16);
  ck_assert_uint_eq(d.new_capacity, 16);
  ck_assert(!d.applied);
  ck_assert_uint_eq(a.adaptations(), 0);
  // The next tick still sees the level 13: floor 17 over a dead-band step.
  d = a.tick(config, input(16, 0, true, kMid, 2 * kTick));
  ck_assert_uint_eq(d.new_capacity, 17);
  ck_assert(d.applied);
}
END_TEST

// ---- overrun growth ----

struct OverrunCase {
  const char* name;
  double headroom;
  uint32_t max_buffers;
  bool live;
  uint32_t cap, expected;
  bool applied;
};

const OverrunCase kOverrunCases[] = {
    {"16 -> ceil(1.25 * 17) = 22", 1.25, 32, true, 16, 22, true},
    {"4 -> ceil(1.25 * 5) = 7", 1.25, 32, true, 4, 7, true},
    {"1 -> ceil(1.25 * 2) = 3", 1.25, 32, true, 1, 3, true},
    {"24 -> ceil(31.25) = 32", 1.25, 32, true, 24, 32, true},
    {"26 -> ceil(33.75) = 34, capped at 32", 1.25, 32, true, 26, 32, true},
    {"31 -> 40, capped at 32", 1.25, 32, true, 31, 32, true},
    {"at max-buffers: no growth", 1.25, 32, true, 32, 32, false},
    {"above max-buffers: no growth", 1.25, 32, true, 40, 40, false},
    {"max-buffers 64: 26 -> 34", 1.25, 64, true, 26, 34, true},
    {"headroom 1: one more", 1.0, 32, true, 16, 17, true},
    {"headroom 4: 2 -> 12", 4.0, 32, true, 2, 12, true},
    {"headroom 4: 16 -> 68, capped", 4.0, 32, true, 16, 32, true},
    // 1.1 * 10 is 11.000000000000002 in doubles
    {"headroom 1.1: 9 -> 11, not 12", 1.1, 32, true, 9, 11, true},
    {"headroom 0: off", 0.0, 32, true, 16, 16, false},
    {"not live: backpressure", 1.25, 32, false, 16, 16, false},
};

START_TEST(overrun_table) {
  const OverrunCase& c = kOverrunCases[_i];
  PolicyConfig config = with_headroom(c.headroom);
  config.max_buffers = c.max_buffers;
  ck_assert_msg(aq::validate(config).empty(), "%s: invalid config", c.name);
  Adapter a;
  const Decision d = a.overrun(config, c.cap, c.cap, c.live, 1234);
  ck_assert_msg(d.overrun, "%s: not marked as an overrun", c.name);
  ck_assert_msg(d.old_capacity == c.cap, "%s: old_capacity %u", c.name, d.old_capacity);
  ck_assert_msg(d.new_capacity == c.expected, "%s: new_capacity %u, expected %u", c.name,
                d.new_capacity, c.expected);
  ck_assert_msg(d.applied == c.applied, "%s: applied %d", c.name, d.applied);
  ck_assert_uint_eq(a.adaptations(), c.applied ? 1 : 0);
  ck_assert_uint_eq(a.overrun_growths(), c.applied ? 1 : 0);
  ck_assert(a.last_adaptation_ns().has_value() == c.applied);
  if (c.applied)
    ck_assert_int_eq(*a.last_adaptation_ns(), 1234);
}
END_TEST

START_TEST(overruns_grow_step_by_step) {
  // A burst at 4 buffers: 4 -> 7 -> 10 -> 14 -> 19 -> 25 -> 32, each at once.
  const PolicyConfig config;
  Adapter a;
  const uint32_t expected[] = {7, 10, 14, 19, 25, 32};
  uint32_t cap = 4;
  for (uint32_t want : expected) {
    const Decision d = a.overrun(config, cap, cap, true, 100);
    ck_assert_msg(d.applied && d.new_capacity == want, "from %u: %u, expected %u", cap,
                  d.new_capacity, want);
    cap = d.new_capacity;
  }
  ck_assert(!a.overrun(config, cap, cap, true, 100).applied);
  ck_assert_uint_eq(a.overrun_growths(), 6);
  ck_assert_uint_eq(a.adaptations(), 6);
}
END_TEST

START_TEST(tick_after_growth_keeps_it) {
  // 16 overruns to 22; the push then makes the level 17, which the next tick
  // sees: floor ceil(1.25 * 17) = 22 holds the capacity under load.
  const PolicyConfig config;
  Adapter a;
  Decision d = a.overrun(config, 16, 16, true, 200 * kMs);
  ck_assert_uint_eq(d.new_capacity, 22);
  ck_assert_uint_eq(d.demand_floor, 20);  // ceil(1.25 * 16), before the push
  d = a.tick(config, input(22, 17, true, kLoaded, kTick));
  ck_assert_uint_eq(d.demand_floor, 22);
  ck_assert_uint_eq(d.new_capacity, 22);
  ck_assert(!d.applied);
  ck_assert_uint_eq(a.adaptations(), 1);
  ck_assert_int_eq(*a.last_adaptation_ns(), 200 * kMs);
}
END_TEST

// Past max-buffers: the growth limit a queue user's limits give (200 by
// default); 0, or a limit below max-buffers, keeps max-buffers.
struct GrowthCase {
  const char* name;
  uint32_t cap, growth_limit, expected;
  bool applied;
};

const GrowthCase kGrowthCases[] = {
    {"no limit stops at max-buffers", 32, 0, 32, false},
    {"a limit below max-buffers stops there too", 32, 10, 32, false},
    {"past max-buffers: ceil(1.25 x 33)", 32, 200, 42, true},
    {"capped at the limit", 180, 200, 200, true},
    {"at the limit", 200, 200, 200, false},
};

START_TEST(growth_table) {
  const GrowthCase& c = kGrowthCases[_i];
  const PolicyConfig config;
  Adapter a;
  const Decision d = a.overrun(config, c.cap, c.cap, true, 1234, c.growth_limit);
  ck_assert_msg(d.new_capacity == c.expected && d.applied == c.applied,
                "%s: %u (applied %d), expected %u (%d)", c.name, d.new_capacity, d.applied,
                c.expected, c.applied);
}
END_TEST

// The floor follows demand past max-buffers up to the limit: a level of 100
// holds 125 where JetKVM's step alone would fall to 32.
START_TEST(floor_past_max_buffers) {
  const PolicyConfig config;
  TickInput in = input(60, 100, true, kIdle, kTick);
  in.growth_limit = 200;
  Adapter with_limit;
  Decision d = with_limit.tick(config, in);
  ck_assert_uint_eq(d.demand_floor, 125);
  ck_assert_uint_eq(d.new_capacity, 125);
  ck_assert(d.applied);
  in.growth_limit = 0;
  Adapter without;
  d = without.tick(config, in);
  ck_assert_uint_eq(d.demand_floor, 32);
  ck_assert_uint_eq(d.new_capacity, 32);
}
END_TEST

START_TEST(reset_forgets_demand_and_counts) {
  const PolicyConfig config;
  Adapter a;
  a.overrun(config, 16, 16, true, 1);
  a.reset();
  ck_assert_uint_eq(a.adaptations(), 0);
  ck_assert_uint_eq(a.overrun_growths(), 0);
  ck_assert(!a.last_adaptation_ns().has_value());
  ck_assert_uint_eq(a.demand_floor(config, true, 1), 0);
}
END_TEST

// ---- headroom 0 is JetKVM's step ----

uint64_t next_random(uint64_t& x) {
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return x;
}

double uniform(uint64_t& x, double lo, double hi) {
  return lo + (hi - lo) * static_cast<double>(next_random(x) % 1000001) / 1e6;
}

void compare_with_jetkvm(PolicyConfig config, uint64_t random_state) {
  config.demand_headroom = 0.0;
  ck_assert(aq::validate(config).empty());
  Adapter a;
  // JetKVM's step by hand: decide(), applied when outside the dead band.
  uint32_t reference_cap = 16;
  uint64_t reference_adaptations = 0;
  std::optional<int64_t> reference_last;
  uint32_t cap = 16;
  uint64_t x = random_state;
  for (int i = 1; i <= 20000; ++i) {
    const int64_t now = i * kTick;
    const bool live = next_random(x) % 2 == 0;
    const uint32_t level = static_cast<uint32_t>(next_random(x) % (cap + 3));
    if (next_random(x) % 4 == 0) {
      const Decision o = a.overrun(config, cap, level, live, now - 1);
      ck_assert_msg(!o.applied && o.new_capacity == cap, "step %d: overrun grew", i);
    }
    TickInput in;
    in.capacity = cap;
    in.level_max = level;
    in.live = live;
    in.now_ns = now;
    if (next_random(x) % 10 != 0)
      in.load = LoadSample{uniform(x, 0, 100), uniform(x, 0, 100)};
    if (next_random(x) % 5 != 0)
      in.latency_avg_ns = static_cast<int64_t>(next_random(x) % (120 * kMs));
    const Decision d = a.tick(config, in);
    if (!in.load) {
      ck_assert_msg(!d.applied && d.new_capacity == cap, "step %d: skipped tick changed", i);
      continue;
    }
    const Decision r = aq::decide(config, reference_cap, *in.load, in.latency_avg_ns);
    if (r.applied) {
      reference_cap = r.new_capacity;
      ++reference_adaptations;
      reference_last = now;
    }
    ck_assert_msg(d.old_capacity == r.old_capacity && d.new_capacity == r.new_capacity &&
                      d.applied == r.applied && d.cpu_factor == r.cpu_factor &&
                      d.mem_factor == r.mem_factor && d.latency_factor == r.latency_factor &&
                      d.combined == r.combined && d.target == r.target &&
                      d.unrounded == r.unrounded && d.demand_floor == 0 && !d.overrun,
                  "step %d: capacity %u -> %u (%d), JetKVM %u -> %u (%d)", i, d.old_capacity,
                  d.new_capacity, d.applied, r.old_capacity, r.new_capacity, r.applied);
    ck_assert_uint_eq(a.adaptations(), reference_adaptations);
    ck_assert(a.last_adaptation_ns() == reference_last);
    if (d.applied)
      cap = d.new_capacity;
    ck_assert_uint_eq(cap, reference_cap);
  }
}

START_TEST(headroom_zero_is_jetkvm_defaults) {
  compare_with_jetkvm(PolicyConfig{}, 42);
}
END_TEST

START_TEST(headroom_zero_is_jetkvm_fast_smoothing) {
  PolicyConfig c;
  c.min_buffers = 2;
  c.max_buffers = 9;
  c.smoothing = 0.9;
  c.cpu_weight = 1.0;
  c.latency_weight = 0.7;
  compare_with_jetkvm(c, 7);
}
END_TEST

Suite* adapter_suite() {
  Suite* s = suite_create("adapter");
  TCase* floor = tcase_create("floor");
  tcase_add_loop_test(floor, floor_table, 0, aqtest::count(kFloorCases));
  tcase_add_test(floor, unbound_floor_keeps_the_step_applied_flag);
  tcase_add_test(floor, floor_expires_after_the_window);
  tcase_add_test(floor, window_follows_the_config);
  tcase_add_test(floor, skipped_tick_feeds_the_window_only);
  suite_add_tcase(s, floor);

  TCase* overrun = tcase_create("overrun");
  tcase_add_loop_test(overrun, overrun_table, 0, aqtest::count(kOverrunCases));
  tcase_add_test(overrun, overruns_grow_step_by_step);
  tcase_add_test(overrun, tick_after_growth_keeps_it);
  tcase_add_test(overrun, reset_forgets_demand_and_counts);
  tcase_add_loop_test(overrun, growth_table, 0, aqtest::count(kGrowthCases));
  tcase_add_test(overrun, floor_past_max_buffers);
  suite_add_tcase(s, overrun);

  TCase* jetkvm = tcase_create("headroom 0");
  tcase_add_test(jetkvm, headroom_zero_is_jetkvm_defaults);
  tcase_add_test(jetkvm, headroom_zero_is_jetkvm_fast_smoothing);
  suite_add_tcase(s, jetkvm);
  return s;
}

}  // namespace

int main() {
  return aqtest::run_suite(adapter_suite());
}
