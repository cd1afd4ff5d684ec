// A high quantile of recent need, with forgetting (NetEq's DelayManager).
//
// One sample per tick: the interval's need in buffers (LevelTrace's rise).
// Each sample scales every bucket by forget_factor and adds 1 - forget_factor
// to its own, so old needs fade geometrically (0.983: a sample weighs half
// after 40 ticks, 20 s at 500 ms). The quantile is the smallest need whose
// cumulative weight reaches `quantile` of the total.
#pragma once

#include <cstdint>
#include <vector>

#include "sizing_policy.h"

namespace aq {

class NeedHistogram {
 public:
  struct Config {
    double quantile = defaults::kNeedQuantile;
    double forget_factor = defaults::kNeedForgetFactor;
    uint32_t max_need = 255;  // needs above count here
  };

  explicit NeedHistogram(const Config& config);

  void add(uint32_t need);
  // 0 before the first sample.
  uint32_t quantile() const;
  const Config& config() const { return config_; }

  void reset();

 private:
  Config config_;
  std::vector<double> weights_;  // sized once, by max_need
  double total_ = 0.0;
};

}  // namespace aq
