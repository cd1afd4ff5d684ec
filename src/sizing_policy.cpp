#include "sizing_policy.h"

#include <algorithm>
#include <cmath>

namespace aq {

namespace {

void check_thresholds(std::vector<ConfigError>& errors, const char* low_name, const char* high_name,
                      double low, double high) {
  if (!(low >= 0.0 && low <= 100.0))
    errors.push_back({low_name, "must be within 0..100 %"});
  if (!(high >= 0.0 && high <= 100.0))
    errors.push_back({high_name, "must be within 0..100 %"});
  if (!(low < high))
    errors.push_back({low_name, std::string("must be below ") + high_name});
}

}  // namespace

std::vector<ConfigError> validate(const PolicyConfig& c) {
  std::vector<ConfigError> errors;
  if (c.min_buffers < 1)
    errors.push_back({"min-buffers", "must be at least 1"});
  if (c.min_buffers > c.max_buffers)
    errors.push_back({"min-buffers", "must not exceed max-buffers"});
  check_thresholds(errors, "cpu-low-threshold", "cpu-high-threshold", c.cpu_low, c.cpu_high);
  check_thresholds(errors, "mem-low-threshold", "mem-high-threshold", c.mem_low, c.mem_high);
  if (c.target_latency_ns < 0)
    errors.push_back({"target-latency", "must not be negative"});
  if (!(c.target_latency_ns < c.max_latency_ns))
    errors.push_back({"target-latency", "must be below max-latency"});
  const double weights[] = {c.cpu_weight, c.mem_weight, c.latency_weight};
  const char* weight_names[] = {"cpu-weight", "mem-weight", "latency-weight"};
  for (int i = 0; i < 3; ++i)
    if (!(weights[i] >= 0.0 && std::isfinite(weights[i])))
      errors.push_back({weight_names[i], "must be a finite value >= 0"});
  if (c.cpu_weight == 0.0 && c.mem_weight == 0.0 && c.latency_weight == 0.0)
    errors.push_back({"cpu-weight, mem-weight, latency-weight", "must not all be 0"});
  if (!(c.smoothing >= 0.0 && c.smoothing <= 1.0))
    errors.push_back({"smoothing", "must be within 0..1"});
  if (!(c.demand_headroom == 0.0 || (c.demand_headroom >= limits::kMinDemandHeadroom &&
                                     c.demand_headroom <= limits::kMaxDemandHeadroom)))
    errors.push_back({"demand-headroom", "must be 0 (off) or within 1..4"});
  if (!(c.demand_window_ns >= limits::kMinDemandWindowNs &&
        c.demand_window_ns <= limits::kMaxDemandWindowNs))
    errors.push_back({"demand-window", "must be within 100 ms..10 min"});
  if (!(c.trim_period_ns == 0 || (c.trim_period_ns >= limits::kMinTrimPeriodNs &&
                                  c.trim_period_ns <= limits::kMaxTrimPeriodNs)))
    errors.push_back({"trim-period", "must be 0 (off) or within 100 ms..10 min"});
  return errors;
}

std::string describe(const std::vector<ConfigError>& errors) {
  std::string out;
  for (const auto& e : errors) {
    if (!out.empty())
      out += "; ";
    out += e.field + ": " + e.reason;
  }
  return out;
}

double threshold_factor(double value, double low, double high) {
  if (value > high)
    return -1.0;
  if (value < low)
    return 1.0;
  const double mid = (high + low) / 2.0;
  return (mid - value) / (mid - low);
}

Decision decide(const PolicyConfig& c, uint32_t current, const LoadSample& load,
                std::optional<int64_t> latency_avg_ns) {
  Decision d;
  d.old_capacity = current;
  d.new_capacity = current;
  d.cpu_factor = threshold_factor(load.cpu_percent, c.cpu_low, c.cpu_high);
  d.mem_factor = threshold_factor(load.mem_percent, c.mem_low, c.mem_high);
  if (latency_avg_ns)
    d.latency_factor = threshold_factor(static_cast<double>(*latency_avg_ns),
                                        static_cast<double>(c.target_latency_ns),
                                        static_cast<double>(c.max_latency_ns));
  d.combined = c.cpu_weight * d.cpu_factor + c.mem_weight * d.mem_factor +
               c.latency_weight * d.latency_factor;

  const double cur = current;
  const double lo = c.min_buffers;
  const double hi = c.max_buffers;
  if (d.combined > 0.0)
    d.target = cur + d.combined * (hi - cur);
  else
    d.target = cur + d.combined * (cur - lo);
  d.unrounded = std::clamp(cur + c.smoothing * (d.target - cur), lo, hi);

  if (std::fabs(d.unrounded - cur) >= 0.5) {
    d.new_capacity = static_cast<uint32_t>(std::lround(d.unrounded));
    d.applied = true;
  }
  return d;
}

}  // namespace aq
