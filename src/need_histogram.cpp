#include "need_histogram.h"

#include <algorithm>

namespace aq {

NeedHistogram::NeedHistogram(const Config& config)
    : config_(config), weights_(static_cast<size_t>(config.max_need) + 1, 0.0) {}

void NeedHistogram::add(uint32_t need) {
  const double f = config_.forget_factor;
  for (double& w : weights_)
    w *= f;
  weights_[std::min(need, config_.max_need)] += 1.0 - f;
  total_ = total_ * f + (1.0 - f);
}

uint32_t NeedHistogram::quantile() const {
  if (total_ <= 0.0)
    return 0;
  // Relative tolerance: a sum of scaled weights may fall short of the total
  // by rounding alone.
  const double want = config_.quantile * total_ * (1.0 - 1e-9);
  double sum = 0.0;
  for (size_t i = 0; i < weights_.size(); ++i) {
    sum += weights_[i];
    if (sum >= want)
      return static_cast<uint32_t>(i);
  }
  return config_.max_need;
}

void NeedHistogram::reset() {
  std::fill(weights_.begin(), weights_.end(), 0.0);
  total_ = 0.0;
}

}  // namespace aq
