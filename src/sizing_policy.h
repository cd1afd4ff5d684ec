// The adaptive buffer-sizing algorithm: a pure function of configuration,
// current capacity, load sample and latency average.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "load_sample.h"

namespace aq {

// Every default is defined here once; the element's param specs use them.
namespace defaults {
constexpr uint32_t kMinBuffers = 4;
constexpr uint32_t kMaxBuffers = 32;
constexpr uint32_t kInitialBuffers = 16;
constexpr double kCpuLow = 20.0;
constexpr double kCpuHigh = 60.0;
constexpr double kMemLow = 35.0;
constexpr double kMemHigh = 75.0;
constexpr int64_t kTargetLatencyNs = 20'000'000;
constexpr int64_t kMaxLatencyNs = 50'000'000;
constexpr double kCpuWeight = 0.5;
constexpr double kMemWeight = 0.3;
constexpr double kLatencyWeight = 0.2;
constexpr double kSmoothing = 0.3;
constexpr int64_t kIntervalNs = 500'000'000;
constexpr double kDemandHeadroom = 1.25;
constexpr int64_t kDemandWindowNs = 10'000'000'000;
// PulseAudio's 20 s of sustained headroom before it shrinks its watermark.
constexpr int64_t kTrimPeriodNs = 20'000'000'000;
// queue's default max-size-buffers: how far a live upstream's overrun may
// grow the capacity when max-size-buffers is not set.
constexpr uint32_t kGrowthLimitBuffers = 200;
// NetEq's DelayManager: a 95th percentile, forgetting 1.7 % per sample.
constexpr double kNeedQuantile = 0.95;
constexpr double kNeedForgetFactor = 0.983;
}  // namespace defaults

// Valid ranges of the fields validate() checks by range; the element's param
// specs use them too.
namespace limits {
constexpr double kMinDemandHeadroom = 1.0;  // besides 0, which is off
constexpr double kMaxDemandHeadroom = 4.0;
constexpr int64_t kMinDemandWindowNs = 100'000'000;
constexpr int64_t kMaxDemandWindowNs = 600'000'000'000;
constexpr int64_t kMinTrimPeriodNs = 100'000'000;  // besides 0, which is off
constexpr int64_t kMaxTrimPeriodNs = 600'000'000'000;
}  // namespace limits

struct PolicyConfig {
  uint32_t min_buffers = defaults::kMinBuffers;
  uint32_t max_buffers = defaults::kMaxBuffers;
  double cpu_low = defaults::kCpuLow;
  double cpu_high = defaults::kCpuHigh;
  double mem_low = defaults::kMemLow;
  double mem_high = defaults::kMemHigh;
  int64_t target_latency_ns = defaults::kTargetLatencyNs;
  int64_t max_latency_ns = defaults::kMaxLatencyNs;
  double cpu_weight = defaults::kCpuWeight;
  double mem_weight = defaults::kMemWeight;
  double latency_weight = defaults::kLatencyWeight;
  double smoothing = defaults::kSmoothing;
  // Live upstreams only: the capacity stays at or above demand_headroom x the
  // highest level of the last demand_window_ns, and an overrun grows it at
  // once. 0 is off: JetKVM's step alone (see Adapter).
  double demand_headroom = defaults::kDemandHeadroom;
  int64_t demand_window_ns = defaults::kDemandWindowNs;
  // leaky=downstream only: see Trimmer. 0 is off.
  int64_t trim_period_ns = defaults::kTrimPeriodNs;
};

// One invalid field, named as the element's property.
struct ConfigError {
  std::string field;
  std::string reason;
};

std::vector<ConfigError> validate(const PolicyConfig& config);
// "field: reason; field: reason" for a warning message.
std::string describe(const std::vector<ConfigError>& errors);

struct Decision {
  uint32_t old_capacity = 0;
  uint32_t new_capacity = 0;  // equals old_capacity inside the dead band
  // Outside the dead band: JetKVM's step sets round(new) and counts an adaptation,
  // even when rounding half away from zero lands back on old_capacity
  // (e.g. 4 -> 3.5 -> 4).
  bool applied = false;
  double cpu_factor = 0.0;
  double mem_factor = 0.0;
  double latency_factor = 0.0;  // 0 when there is no latency measurement
  double combined = 0.0;
  double target = 0.0;     // the step target before smoothing
  double unrounded = 0.0;  // smoothed and clamped, before the dead band
  // Adapter only. The demand floor in force (0: off, non-live or no demand);
  // new_capacity is at least this.
  uint32_t demand_floor = 0;
  // Adapter only: an overrun grew the capacity, not a tick. The factors are 0.
  bool overrun = false;
};

// +1 below low, -1 above high, linear through the midpoint in between.
double threshold_factor(double value, double low, double high);

// One tick of the algorithm. `config` must be valid (see validate()).
// Without a latency average the latency term is 0: a missing measurement is
// not evidence of low latency.
Decision decide(const PolicyConfig& config, uint32_t current, const LoadSample& load,
                std::optional<int64_t> latency_avg_ns);

}  // namespace aq
