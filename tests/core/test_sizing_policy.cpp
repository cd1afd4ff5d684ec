// Sizing policy: threshold factors, single decisions derived by hand from the
// formulas, runs of ticks, and configuration validation.
// SPDX-License-Identifier: LGPL-2.1-or-later

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core_test.h"
#include "adapter.h"
#include "sizing_policy.h"

using aq::Decision;
using aq::LoadSample;
using aq::PolicyConfig;

namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kNoLatency = -1;
// The hand-derived values below carry about 10 significant digits.
constexpr double kTol = 1e-6;

std::optional<int64_t> latency(int64_t ns) {
  if (ns == kNoLatency)
    return std::nullopt;
  return ns;
}

// ---- threshold_factor ----

struct FactorCase {
  double value, low, high, expected;
};

// Defaults: cpu 20/60 (mid 40, half-width 20), mem 35/75 (mid 55, half-width
// 20), latency 20/50 ms (mid 35 ms, half-width 15 ms).
const FactorCase kFactorCases[] = {
    {19.9, 20, 60, 1.0},     // below low
    {20.0, 20, 60, 1.0},     // at low: (40-20)/20
    {20.1, 20, 60, 0.995},   // (40-20.1)/20
    {30.0, 20, 60, 0.5},     // (40-30)/20
    {40.0, 20, 60, 0.0},     // midpoint
    {50.0, 20, 60, -0.5},    // (40-50)/20
    {59.9, 20, 60, -0.995},  // (40-59.9)/20
    {60.0, 20, 60, -1.0},    // at high: (40-60)/20
    {60.1, 20, 60, -1.0},    // above high
    {0.0, 20, 60, 1.0},
    {100.0, 20, 60, -1.0},
    {34.9, 35, 75, 1.0},
    {35.0, 35, 75, 1.0},    // (55-35)/20
    {35.1, 35, 75, 0.995},  // (55-35.1)/20
    {55.0, 35, 75, 0.0},
    {74.9, 35, 75, -0.995},  // (55-74.9)/20
    {75.0, 35, 75, -1.0},
    {75.1, 35, 75, -1.0},
    {19'999'999, 20e6, 50e6, 1.0},
    {20'000'000, 20e6, 50e6, 1.0},                 // (35e6-20e6)/15e6
    {20'000'001, 20e6, 50e6, 0.9999999333333333},  // 14999999/15e6
    {35'000'000, 20e6, 50e6, 0.0},
    {49'999'999, 20e6, 50e6, -0.9999999333333333},  // -14999999/15e6
    {50'000'000, 20e6, 50e6, -1.0},
    {50'000'001, 20e6, 50e6, -1.0},
};

START_TEST(threshold_factor_table) {
  const FactorCase& c = kFactorCases[_i];
  const double got = aq::threshold_factor(c.value, c.low, c.high);
  ck_assert_msg(std::fabs(got - c.expected) < 1e-12,
                "threshold_factor(%.9g, %g, %g) = %.17g, expected %.17g", c.value, c.low, c.high,
                got, c.expected);
}
END_TEST

// ---- decide ----

// 0: defaults (min 4, max 32, smoothing 0.3, weights 0.5/0.3/0.2).
// 1: min 3, smoothing 0.5, cpu weight only: lands exactly on 3.5.
// 2: min 4, max 6, smoothing 0.5, cpu weight only: lands exactly on 5.5.
PolicyConfig config_for(int index) {
  PolicyConfig c;
  if (index == 1 || index == 2) {
    c.smoothing = 0.5;
    c.cpu_weight = 1.0;
    c.mem_weight = 0.0;
    c.latency_weight = 0.0;
  }
  if (index == 1)
    c.min_buffers = 3;
  if (index == 2)
    c.max_buffers = 6;
  return c;
}

struct DecideCase {
  const char* name;
  int config;
  uint32_t cur;
  double cpu, mem;
  int64_t latency_ns;
  double cpu_f, mem_f, lat_f, f, target, unrounded;
  uint32_t expected;
  bool applied;
};

// With the defaults and cur=16: up, target-cur = f*(32-16) = 16f and
// new-cur = 0.3*16f = 4.8f; down, target-cur = f*(16-4) = 12f and
// new-cur = 3.6f. Unmentioned factors sit at their midpoints (0).
const DecideCase kDecideCases[] = {
    // f=0 takes the "otherwise" branch: target=16+0*12=16; new=16.
    {"all at midpoint", 0, 16, 40, 55, 35 * kMs, 0, 0, 0, 0, 16, 16, 16, false},
    // cpu_f=+1; f=0.5; target=16+0.5*16=24; new=16+0.3*8=18.4 -> 18
    {"cpu below low", 0, 16, 19.9, 55, 35 * kMs, 1, 0, 0, 0.5, 24, 18.4, 18, true},
    // cpu_f=(40-20)/20=1; same as above
    {"cpu at low", 0, 16, 20, 55, 35 * kMs, 1, 0, 0, 0.5, 24, 18.4, 18, true},
    // cpu_f=19.9/20=0.995; f=0.4975; target=16+7.96=23.96; new=16+2.388=18.388 -> 18
    {"cpu just above low", 0, 16, 20.1, 55, 35 * kMs, 0.995, 0, 0, 0.4975, 23.96, 18.388, 18, true},
    // cpu_f=10/20=0.5; f=0.25; target=16+4=20; new=16+1.2=17.2 -> 17
    {"cpu between low and midpoint", 0, 16, 30, 55, 35 * kMs, 0.5, 0, 0, 0.25, 20, 17.2, 17, true},
    // cpu_f=-19.9/20=-0.995; f=-0.4975; target=16-5.97=10.03; new=16-1.791=14.209 -> 14
    {"cpu just below high", 0, 16, 59.9, 55, 35 * kMs, -0.995, 0, 0, -0.4975, 10.03, 14.209, 14,
     true},
    // cpu_f=-20/20=-1; f=-0.5; target=16-6=10; new=16-1.8=14.2 -> 14
    {"cpu at high", 0, 16, 60, 55, 35 * kMs, -1, 0, 0, -0.5, 10, 14.2, 14, true},
    {"cpu above high", 0, 16, 60.1, 55, 35 * kMs, -1, 0, 0, -0.5, 10, 14.2, 14, true},
    // mem_f=+1; f=0.3; target=16+4.8=20.8; new=16+1.44=17.44 -> 17
    {"mem below low", 0, 16, 40, 34.9, 35 * kMs, 0, 1, 0, 0.3, 20.8, 17.44, 17, true},
    // mem_f=(55-35)/20=1; same as above
    {"mem at low", 0, 16, 40, 35, 35 * kMs, 0, 1, 0, 0.3, 20.8, 17.44, 17, true},
    // mem_f=0.995; f=0.2985; target=16+4.776=20.776; new=16+1.4328=17.4328 -> 17
    {"mem just above low", 0, 16, 40, 35.1, 35 * kMs, 0, 0.995, 0, 0.2985, 20.776, 17.4328, 17,
     true},
    // mem_f=-0.995; f=-0.2985; target=16-3.582=12.418; new=16-1.0746=14.9254 -> 15
    {"mem just below high", 0, 16, 40, 74.9, 35 * kMs, 0, -0.995, 0, -0.2985, 12.418, 14.9254, 15,
     true},
    // mem_f=-1; f=-0.3; target=16-3.6=12.4; new=16-1.08=14.92 -> 15
    {"mem at high", 0, 16, 40, 75, 35 * kMs, 0, -1, 0, -0.3, 12.4, 14.92, 15, true},
    {"mem above high", 0, 16, 40, 75.1, 35 * kMs, 0, -1, 0, -0.3, 12.4, 14.92, 15, true},
    // lat_f=+1; f=0.2; target=16+3.2=19.2; new=16+0.96=16.96 -> 17
    {"latency 1 ns below target", 0, 16, 40, 55, 20 * kMs - 1, 0, 0, 1, 0.2, 19.2, 16.96, 17, true},
    {"latency at target", 0, 16, 40, 55, 20 * kMs, 0, 0, 1, 0.2, 19.2, 16.96, 17, true},
    // lat_f=14999999/15e6=0.99999993333; f=0.19999998667;
    // target=16+16f=19.19999978667; new=16+4.8f=16.959999936 -> 17
    {"latency 1 ns above target", 0, 16, 40, 55, 20 * kMs + 1, 0, 0, 0.9999999333333,
     0.1999999866667, 19.1999997866667, 16.959999936, 17, true},
    // lat_f=7.5e6/15e6=0.5; f=0.1; target=16+1.6=17.6; new=16+0.48=16.48:
    // |0.48| < 0.5, dead band
    {"latency between target and midpoint", 0, 16, 40, 55, 27'500'000, 0, 0, 0.5, 0.1, 17.6, 16.48,
     16, false},
    // lat_f=-0.99999993333; f=-0.19999998667;
    // target=16+12f=13.60000016; new=16+3.6f=15.280000048 -> 15
    {"latency 1 ns below max", 0, 16, 40, 55, 50 * kMs - 1, 0, 0, -0.9999999333333,
     -0.1999999866667, 13.60000016, 15.280000048, 15, true},
    // lat_f=-1; f=-0.2; target=16-2.4=13.6; new=16-0.72=15.28 -> 15
    {"latency at max", 0, 16, 40, 55, 50 * kMs, 0, 0, -1, -0.2, 13.6, 15.28, 15, true},
    {"latency above max", 0, 16, 40, 55, 50 * kMs + 1, 0, 0, -1, -0.2, 13.6, 15.28, 15, true},
    // No measurement: lat_f=0, not +1. cpu_f=+1; f=0.5 -> 18.4 -> 18
    {"no latency, cpu low", 0, 16, 10, 55, kNoLatency, 1, 0, 0, 0.5, 24, 18.4, 18, true},
    // lat_f=0; f=0; nothing moves
    {"no latency, rest at midpoint", 0, 16, 40, 55, kNoLatency, 0, 0, 0, 0, 16, 16, 16, false},
    // f=0.5+0.3+0.2=1; target=32; new=16+0.3*16=20.8 -> 21
    {"idle: every factor +1", 0, 16, 10, 20, 5 * kMs, 1, 1, 1, 1, 32, 20.8, 21, true},
    // f=-1; target=16-12=4; new=16-3.6=12.4 -> 12
    {"loaded: every factor -1", 0, 16, 90, 90, 80 * kMs, -1, -1, -1, -1, 4, 12.4, 12, true},
    // f=0.5-0.3+0=0.2 > 0; target=16+3.2=19.2; new=16.96 -> 17
    {"mixed, f > 0", 0, 16, 10, 90, 35 * kMs, 1, -1, 0, 0.2, 19.2, 16.96, 17, true},
    // f=-0.5+0.3+0=-0.2 < 0; target=16-2.4=13.6; new=15.28 -> 15
    {"mixed, f < 0", 0, 16, 90, 20, 35 * kMs, -1, 1, 0, -0.2, 13.6, 15.28, 15, true},
    // cpu_f=4.2/20=0.21; f=0.105; target=16+1.68=17.68; new=16+0.504=16.504 -> 17
    {"dead band edge, up, outside", 0, 16, 35.8, 55, 35 * kMs, 0.21, 0, 0, 0.105, 17.68, 16.504, 17,
     true},
    // cpu_f=4/20=0.2; f=0.1; target=17.6; new=16+0.48=16.48: inside
    {"dead band edge, up, inside", 0, 16, 36, 55, 35 * kMs, 0.2, 0, 0, 0.1, 17.6, 16.48, 16, false},
    // cpu_f=-6/20=-0.3; f=-0.15; target=16-1.8=14.2; new=16-0.54=15.46 -> 15
    {"dead band edge, down, outside", 0, 16, 46, 55, 35 * kMs, -0.3, 0, 0, -0.15, 14.2, 15.46, 15,
     true},
    // cpu_f=-5/20=-0.25; f=-0.125; target=16-1.5=14.5; new=16-0.45=15.55: inside
    {"dead band edge, down, inside", 0, 16, 45, 55, 35 * kMs, -0.25, 0, 0, -0.125, 14.5, 15.55, 16,
     false},
    // f=1; target=30+1*2=32; new=30+0.6=30.6 -> 31
    {"near max, idle", 0, 30, 10, 20, 5 * kMs, 1, 1, 1, 1, 32, 30.6, 31, true},
    // f=1; target=32; new=31+0.3=31.3: the dead band stops short of max
    {"one below max, idle", 0, 31, 10, 20, 5 * kMs, 1, 1, 1, 1, 32, 31.3, 31, false},
    // f=1; target=32+1*0=32; new=32
    {"at max, idle", 0, 32, 10, 20, 5 * kMs, 1, 1, 1, 1, 32, 32, 32, false},
    // f=-1; target=6-2=4; new=6-0.6=5.4 -> 5
    {"near min, loaded", 0, 6, 90, 90, 80 * kMs, -1, -1, -1, -1, 4, 5.4, 5, true},
    // f=-1; target=5-1=4; new=5-0.3=4.7: inside
    {"one above min, loaded", 0, 5, 90, 90, 80 * kMs, -1, -1, -1, -1, 4, 4.7, 5, false},
    // f=-1; target=4-1*0=4; new=4
    {"at min, loaded", 0, 4, 90, 90, 80 * kMs, -1, -1, -1, -1, 4, 4, 4, false},
    // Above max after a manual setting: f=1; target=40+1*(32-40)=32;
    // new=40+0.3*(-8)=37.6, clamped to 32
    {"clamped at max", 0, 40, 10, 20, 5 * kMs, 1, 1, 1, 1, 32, 32, 32, true},
    // Below min: f=-1; target=2-1*(2-4)=4; new=2+0.3*2=2.6, clamped to 4
    {"clamped at min", 0, 2, 90, 90, 80 * kMs, -1, -1, -1, -1, 4, 4, 4, true},
    // Config 1: f=1*(-1)+0+0=-1; target=4-1*(4-3)=3; new=4+0.5*(3-4)=3.5;
    // |-0.5| >= 0.5 so applied, and round(3.5)=4: counted with no change
    {"rounding lands back on cur", 1, 4, 90, 55, kNoLatency, -1, 0, 0, -1, 3, 3.5, 4, true},
    // Config 2: f=1; target=5+1*(6-5)=6; new=5+0.5*1=5.5; round half up -> 6
    {"half rounds away from zero", 2, 5, 10, 55, kNoLatency, 1, 0, 0, 1, 6, 5.5, 6, true},
};

START_TEST(decide_table) {
  const DecideCase& c = kDecideCases[_i];
  const PolicyConfig config = config_for(c.config);
  ck_assert_msg(aq::validate(config).empty(), "%s: config %d invalid", c.name, c.config);
  const Decision d = aq::decide(config, c.cur, LoadSample{c.cpu, c.mem}, latency(c.latency_ns));
  const struct {
    const char* what;
    double got, want;
  } checks[] = {{"cpu_factor", d.cpu_factor, c.cpu_f},
                {"mem_factor", d.mem_factor, c.mem_f},
                {"latency_factor", d.latency_factor, c.lat_f},
                {"combined", d.combined, c.f},
                {"target", d.target, c.target},
                {"unrounded", d.unrounded, c.unrounded}};
  for (const auto& k : checks)
    ck_assert_msg(std::fabs(k.got - k.want) < kTol, "%s: %s = %.12g, expected %.12g", c.name,
                  k.what, k.got, k.want);
  ck_assert_msg(d.old_capacity == c.cur, "%s: old_capacity %u", c.name, d.old_capacity);
  ck_assert_msg(d.new_capacity == c.expected, "%s: new_capacity %u, expected %u", c.name,
                d.new_capacity, c.expected);
  ck_assert_msg(d.applied == c.applied, "%s: applied %d, expected %d", c.name, d.applied,
                c.applied);
}
END_TEST

// ---- a sequence of ticks: the caller keeps the capacity (Adapter) ----

const LoadSample kIdle{10, 20};    // cpu_f = mem_f = +1
const LoadSample kLoaded{90, 90};  // cpu_f = mem_f = -1
constexpr int64_t kTick = 500 * kMs;

// One tick of a non-live upstream, where JetKVM's step decides alone.
Decision tick(aq::Adapter& a, uint32_t& capacity, const LoadSample& load,
              std::optional<int64_t> latency, int64_t now) {
  aq::TickInput in;
  in.capacity = capacity;
  in.load = load;
  in.latency_avg_ns = latency;
  in.now_ns = now;
  const Decision d = a.tick(PolicyConfig{}, in);
  if (d.applied)
    capacity = d.new_capacity;
  return d;
}

START_TEST(step_fresh_adapter_has_no_adaptation) {
  aq::Adapter a;
  uint32_t cap = 16;
  ck_assert_uint_eq(a.adaptations(), 0);
  ck_assert(!a.last_adaptation_ns().has_value());
  // Everything at the midpoint: f=0, no change.
  const Decision d = tick(a, cap, LoadSample{40, 55}, 35 * kMs, kTick);
  ck_assert(!d.applied);
  ck_assert_uint_eq(cap, 16);
  ck_assert_uint_eq(a.adaptations(), 0);
  ck_assert(!a.last_adaptation_ns().has_value());
}
END_TEST

START_TEST(step_converges_towards_max_at_idle) {
  // f=1 each tick, so new = cur + 0.3*(32-cur):
  // 16->20.8=21, 21->24.3=24, 24->26.4=26, 26->27.8=28, 28->29.2=29,
  // 29->29.9=30, 30->30.6=31, then 31->31.3 stays in the dead band.
  const uint32_t expected[] = {21, 24, 26, 28, 29, 30, 31, 31, 31, 31};
  const uint64_t adaptations[] = {1, 2, 3, 4, 5, 6, 7, 7, 7, 7};
  aq::Adapter a;
  uint32_t cap = 16;
  for (int i = 0; i < 10; ++i) {
    tick(a, cap, kIdle, 5 * kMs, (i + 1) * kTick);
    ck_assert_msg(cap == expected[i], "tick %d: capacity %u, expected %u", i + 1, cap, expected[i]);
    ck_assert_uint_eq(a.adaptations(), adaptations[i]);
    // The last change happened at tick 7 and later ticks do not move it.
    const int64_t last = std::min(i + 1, 7) * kTick;
    ck_assert(a.last_adaptation_ns().has_value());
    ck_assert_int_eq(*a.last_adaptation_ns(), last);
  }
  // Load arrives: f=-1; 31 -> 31-0.3*27 = 22.9 -> 23.
  tick(a, cap, kLoaded, 80 * kMs, 11 * kTick);
  ck_assert_uint_eq(cap, 23);
  ck_assert_uint_eq(a.adaptations(), 8);
  ck_assert_int_eq(*a.last_adaptation_ns(), 11 * kTick);
}
END_TEST

START_TEST(step_converges_towards_min_under_load) {
  // f=-1 each tick, so new = cur - 0.3*(cur-4):
  // 16->12.4=12, 12->9.6=10, 10->8.2=8, 8->6.8=7, 7->6.1=6, 6->5.4=5,
  // then 5->4.7 stays in the dead band.
  const uint32_t expected[] = {12, 10, 8, 7, 6, 5, 5, 5};
  aq::Adapter a;
  uint32_t cap = 16;
  for (int i = 0; i < 8; ++i) {
    tick(a, cap, kLoaded, 80 * kMs, (i + 1) * kTick);
    ck_assert_msg(cap == expected[i], "tick %d: capacity %u, expected %u", i + 1, cap, expected[i]);
  }
  ck_assert_uint_eq(a.adaptations(), 6);
  ck_assert_int_eq(*a.last_adaptation_ns(), 6 * kTick);
}
END_TEST

START_TEST(step_counts_adaptation_that_rounds_back) {
  // Config 1 at 4 under load: new=3.5 rounds back to 4 but is counted.
  aq::Adapter a;
  aq::TickInput in;
  in.capacity = 4;
  in.load = LoadSample{90, 55};
  in.now_ns = 42;
  const Decision d = a.tick(config_for(1), in);
  ck_assert(d.applied);
  ck_assert_uint_eq(d.new_capacity, 4);
  ck_assert_uint_eq(a.adaptations(), 1);
  ck_assert_int_eq(*a.last_adaptation_ns(), 42);
}
END_TEST

START_TEST(step_continues_from_callers_capacity) {
  aq::Adapter a;
  // Set by hand above max: 40 -> 37.6, clamped to 32.
  uint32_t cap = 40;
  tick(a, cap, kIdle, 5 * kMs, 1);
  ck_assert_uint_eq(cap, 32);
  // Set by hand to 8; f=-1: 8 -> 8-0.3*4 = 6.8 -> 7.
  cap = 8;
  tick(a, cap, kLoaded, 80 * kMs, 2);
  ck_assert_uint_eq(cap, 7);
  ck_assert_uint_eq(a.adaptations(), 2);
  ck_assert_int_eq(*a.last_adaptation_ns(), 2);
}
END_TEST

// ---- validate / describe ----

using Errors = std::vector<std::pair<std::string, std::string>>;

struct ValidateCase {
  const char* name;
  void (*mutate)(PolicyConfig&);
  Errors expected;
};

const double kNan = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

const std::string kWithin100 = "must be within 0..100 %";
const std::string kWeight = "must be a finite value >= 0";
const std::string kHeadroom = "must be 0 (off) or within 1..4";
const std::string kWindow = "must be within 100 ms..10 min";
const std::string kTrim = "must be 0 (off) or within 100 ms..10 min";

const ValidateCase kValidateCases[] = {
    {"defaults", [](PolicyConfig&) {}, {}},
    {"min 0", [](PolicyConfig& c) { c.min_buffers = 0; }, {{"min-buffers", "must be at least 1"}}},
    {"min above max",
     [](PolicyConfig& c) { c.min_buffers = 33; },
     {{"min-buffers", "must not exceed max-buffers"}}},
    {"min equals max", [](PolicyConfig& c) { c.min_buffers = 32; }, {}},
    {"cpu low equals high",
     [](PolicyConfig& c) { c.cpu_low = 60; },
     {{"cpu-low-threshold", "must be below cpu-high-threshold"}}},
    {"cpu low above high",
     [](PolicyConfig& c) { c.cpu_low = 70; },
     {{"cpu-low-threshold", "must be below cpu-high-threshold"}}},
    {"cpu high above 100",
     [](PolicyConfig& c) { c.cpu_high = 101; },
     {{"cpu-high-threshold", kWithin100}}},
    {"cpu low negative",
     [](PolicyConfig& c) { c.cpu_low = -1; },
     {{"cpu-low-threshold", kWithin100}}},
    {"mem low equals high",
     [](PolicyConfig& c) { c.mem_low = 75; },
     {{"mem-low-threshold", "must be below mem-high-threshold"}}},
    {"mem high below low",
     [](PolicyConfig& c) { c.mem_high = 30; },
     {{"mem-low-threshold", "must be below mem-high-threshold"}}},
    {"mem high NaN",
     [](PolicyConfig& c) { c.mem_high = kNan; },
     {{"mem-high-threshold", kWithin100},
      {"mem-low-threshold", "must be below mem-high-threshold"}}},
    {"target equals max latency",
     [](PolicyConfig& c) { c.target_latency_ns = 50 * kMs; },
     {{"target-latency", "must be below max-latency"}}},
    {"target above max latency",
     [](PolicyConfig& c) { c.target_latency_ns = 60 * kMs; },
     {{"target-latency", "must be below max-latency"}}},
    {"target negative",
     [](PolicyConfig& c) { c.target_latency_ns = -1; },
     {{"target-latency", "must not be negative"}}},
    {"all weights 0",
     [](PolicyConfig& c) { c.cpu_weight = c.mem_weight = c.latency_weight = 0; },
     {{"cpu-weight, mem-weight, latency-weight", "must not all be 0"}}},
    {"latency weight only",
     [](PolicyConfig& c) {
       c.cpu_weight = c.mem_weight = 0;
       c.latency_weight = 1;
     },
     {}},
    {"cpu weight negative",
     [](PolicyConfig& c) { c.cpu_weight = -0.5; },
     {{"cpu-weight", kWeight}}},
    {"mem weight NaN", [](PolicyConfig& c) { c.mem_weight = kNan; }, {{"mem-weight", kWeight}}},
    {"latency weight infinite",
     [](PolicyConfig& c) { c.latency_weight = kInf; },
     {{"latency-weight", kWeight}}},
    {"smoothing negative",
     [](PolicyConfig& c) { c.smoothing = -0.1; },
     {{"smoothing", "must be within 0..1"}}},
    {"smoothing above 1",
     [](PolicyConfig& c) { c.smoothing = 1.5; },
     {{"smoothing", "must be within 0..1"}}},
    {"smoothing NaN",
     [](PolicyConfig& c) { c.smoothing = kNan; },
     {{"smoothing", "must be within 0..1"}}},
    {"smoothing 0", [](PolicyConfig& c) { c.smoothing = 0; }, {}},
    {"smoothing 1", [](PolicyConfig& c) { c.smoothing = 1; }, {}},
    {"demand-headroom 0 (off)", [](PolicyConfig& c) { c.demand_headroom = 0; }, {}},
    {"demand-headroom 1", [](PolicyConfig& c) { c.demand_headroom = 1; }, {}},
    {"demand-headroom 4", [](PolicyConfig& c) { c.demand_headroom = 4; }, {}},
    {"demand-headroom 0.5",
     [](PolicyConfig& c) { c.demand_headroom = 0.5; },
     {{"demand-headroom", kHeadroom}}},
    {"demand-headroom 4.01",
     [](PolicyConfig& c) { c.demand_headroom = 4.01; },
     {{"demand-headroom", kHeadroom}}},
    {"demand-headroom negative",
     [](PolicyConfig& c) { c.demand_headroom = -1; },
     {{"demand-headroom", kHeadroom}}},
    {"demand-headroom NaN",
     [](PolicyConfig& c) { c.demand_headroom = kNan; },
     {{"demand-headroom", kHeadroom}}},
    {"demand-headroom infinite",
     [](PolicyConfig& c) { c.demand_headroom = kInf; },
     {{"demand-headroom", kHeadroom}}},
    {"demand-window 100 ms", [](PolicyConfig& c) { c.demand_window_ns = 100 * kMs; }, {}},
    {"demand-window below 100 ms",
     [](PolicyConfig& c) { c.demand_window_ns = 100 * kMs - 1; },
     {{"demand-window", kWindow}}},
    {"demand-window 10 min", [](PolicyConfig& c) { c.demand_window_ns = 600'000 * kMs; }, {}},
    {"demand-window above 10 min",
     [](PolicyConfig& c) { c.demand_window_ns = 600'000 * kMs + 1; },
     {{"demand-window", kWindow}}},
    {"demand-window 0",
     [](PolicyConfig& c) { c.demand_window_ns = 0; },
     {{"demand-window", kWindow}}},
    {"trim-period 100 ms", [](PolicyConfig& c) { c.trim_period_ns = 100 * kMs; }, {}},
    {"trim-period 10 min", [](PolicyConfig& c) { c.trim_period_ns = 600'000 * kMs; }, {}},
    {"trim-period below 100 ms",
     [](PolicyConfig& c) { c.trim_period_ns = 100 * kMs - 1; },
     {{"trim-period", kTrim}}},
    {"trim-period above 10 min",
     [](PolicyConfig& c) { c.trim_period_ns = 600'000 * kMs + 1; },
     {{"trim-period", kTrim}}},
    {"trim-period negative",
     [](PolicyConfig& c) { c.trim_period_ns = -1; },
     {{"trim-period", kTrim}}},
    {"demand fields at once",
     [](PolicyConfig& c) {
       c.demand_headroom = 0.9;
       c.demand_window_ns = 1;
       c.trim_period_ns = 1;
     },
     {{"demand-headroom", kHeadroom}, {"demand-window", kWindow}, {"trim-period", kTrim}}},
    {"two fields at once",
     [](PolicyConfig& c) {
       c.min_buffers = 0;
       c.smoothing = 2;
     },
     {{"min-buffers", "must be at least 1"}, {"smoothing", "must be within 0..1"}}},
};

START_TEST(validate_table) {
  const ValidateCase& c = kValidateCases[_i];
  PolicyConfig config;
  c.mutate(config);
  const auto errors = aq::validate(config);
  ck_assert_msg(errors.size() == c.expected.size(), "%s: %zu errors (%s), expected %zu", c.name,
                errors.size(), aq::describe(errors).c_str(), c.expected.size());
  for (size_t i = 0; i < errors.size(); ++i) {
    ck_assert_msg(errors[i].field == c.expected[i].first, "%s: field '%s', expected '%s'", c.name,
                  errors[i].field.c_str(), c.expected[i].first.c_str());
    ck_assert_msg(errors[i].reason == c.expected[i].second, "%s: reason '%s', expected '%s'",
                  c.name, errors[i].reason.c_str(), c.expected[i].second.c_str());
  }
}
END_TEST

START_TEST(describe_joins_fields_and_reasons) {
  ck_assert(aq::describe({}).empty());
  ck_assert(aq::describe({{"smoothing", "must be within 0..1"}}) ==
            "smoothing: must be within 0..1");
  PolicyConfig c;
  c.min_buffers = 0;
  c.smoothing = 2;
  const std::string text = aq::describe(aq::validate(c));
  ck_assert_str_eq(text.c_str(), "min-buffers: must be at least 1; smoothing: must be within 0..1");
}
END_TEST

START_TEST(defaults_match_the_design) {
  // The element's param specs and the docs rely on these values.
  const PolicyConfig c;
  ck_assert_uint_eq(c.min_buffers, 4);
  ck_assert_uint_eq(c.max_buffers, 32);
  ck_assert_uint_eq(aq::defaults::kInitialBuffers, 16);
  ck_assert_double_eq(c.cpu_low, 20.0);
  ck_assert_double_eq(c.cpu_high, 60.0);
  ck_assert_double_eq(c.mem_low, 35.0);
  ck_assert_double_eq(c.mem_high, 75.0);
  ck_assert_int_eq(c.target_latency_ns, 20 * kMs);
  ck_assert_int_eq(c.max_latency_ns, 50 * kMs);
  ck_assert_double_eq(c.cpu_weight, 0.5);
  ck_assert_double_eq(c.mem_weight, 0.3);
  ck_assert_double_eq(c.latency_weight, 0.2);
  ck_assert_double_eq(c.smoothing, 0.3);
  ck_assert_int_eq(aq::defaults::kIntervalNs, 500 * kMs);
  ck_assert_double_eq(c.demand_headroom, 1.25);
  ck_assert_int_eq(c.demand_window_ns, 10'000 * kMs);
  ck_assert_int_eq(c.trim_period_ns, 20'000 * kMs);
}
END_TEST

Suite* sizing_policy_suite() {
  Suite* s = suite_create("sizing_policy");
  TCase* factors = tcase_create("threshold_factor");
  tcase_add_loop_test(factors, threshold_factor_table, 0, aqtest::count(kFactorCases));
  suite_add_tcase(s, factors);

  TCase* decide = tcase_create("decide");
  tcase_add_loop_test(decide, decide_table, 0, aqtest::count(kDecideCases));
  suite_add_tcase(s, decide);

  TCase* step = tcase_create("step");
  tcase_add_test(step, step_fresh_adapter_has_no_adaptation);
  tcase_add_test(step, step_converges_towards_max_at_idle);
  tcase_add_test(step, step_converges_towards_min_under_load);
  tcase_add_test(step, step_counts_adaptation_that_rounds_back);
  tcase_add_test(step, step_continues_from_callers_capacity);
  suite_add_tcase(s, step);

  TCase* config = tcase_create("config");
  tcase_add_loop_test(config, validate_table, 0, aqtest::count(kValidateCases));
  tcase_add_test(config, describe_joins_fields_and_reasons);
  tcase_add_test(config, defaults_match_the_design);
  suite_add_tcase(s, config);
  return s;
}

}  // namespace

int main() {
  return aqtest::run_suite(sizing_policy_suite());
}
