#include "trimmer.h"

#include <algorithm>

namespace aq {

Trimmer::Trimmer() : need_(NeedHistogram::Config{}) {}

uint32_t Trimmer::keep() const {
  return std::max<uint32_t>(1, need_.quantile());
}

uint32_t Trimmer::tick(const PolicyConfig& config, int64_t now_ns, const LevelInterval& interval) {
  need_.add(interval.rise);
  // demand-headroom 0 is JetKVM's step alone: nothing added to it trims.
  const int64_t period = config.demand_headroom == 0.0 ? 0 : config.trim_period_ns;
  return stretch(period, now_ns, interval.min, interval.overrun, keep());
}

uint32_t Trimmer::stretch(int64_t period_ns, int64_t now_ns, uint32_t level_min, bool overrun,
                          uint32_t keep) {
  // The interval before the first tick, or before the rule was turned on, is
  // unknown: a stretch starts at a tick.
  if (period_ns == 0 || !quiet_since_ns_ || overrun || level_min <= keep) {
    quiet_since_ns_ = period_ns == 0 ? std::nullopt : std::optional<int64_t>(now_ns);
    quiet_min_.reset();
    return 0;
  }
  quiet_min_ = std::min(quiet_min_.value_or(level_min), level_min);
  if (now_ns - *quiet_since_ns_ < period_ns)
    return 0;
  const uint32_t drop = *quiet_min_ - keep;
  quiet_since_ns_ = now_ns;
  quiet_min_.reset();
  ++trims_;
  trimmed_ += drop;
  return drop;
}

void Trimmer::reset() {
  need_.reset();
  quiet_since_ns_.reset();
  quiet_min_.reset();
  trims_ = 0;
  trimmed_ = 0;
}

}  // namespace aq
