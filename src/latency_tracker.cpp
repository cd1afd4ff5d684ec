#include "latency_tracker.h"

#include <algorithm>

namespace aq {

void LatencyTracker::add(int64_t sample_ns) {
  const int64_t s = std::clamp<int64_t>(sample_ns, 0, kMaxSampleNs);
  average_ = average_ ? (9 * *average_ + s) / 10 : s;
  max_ = max_ ? std::max(*max_, s) : s;
  interval_max_ = interval_max_ ? std::max(*interval_max_, s) : s;
  ++count_;
}

std::optional<int64_t> LatencyTracker::take_interval_max() {
  std::optional<int64_t> out = interval_max_;
  interval_max_.reset();
  return out;
}

}  // namespace aq
