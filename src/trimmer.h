// Latency trimming for real-time sinks, opt-in (trim-period, leaky=downstream).
//
// A playback sink takes one buffer per buffer duration, so buffers queued
// after a burst are latency that never drains. After trim_period_ns with the
// level never below T >= 2 and no overrun, the T - 1 oldest buffers are
// dropped, once; the level's low point is then one buffer.
#pragma once

#include <cstdint>
#include <optional>

#include "sizing_policy.h"

namespace aq {

class Trimmer {
 public:
  // One tick. `level_min`: the lowest level since the last tick, starting from
  // the level at that tick. `overrun`: a push found the queue full since then.
  // Returns how many of the oldest buffers to drop now; 0 with the rule off.
  uint32_t tick(const PolicyConfig& config, int64_t now_ns, uint32_t level_min, bool overrun);

  uint64_t trims() const { return trims_; }
  uint64_t trimmed_buffers() const { return trimmed_; }

  void reset();

 private:
  // Start of the current stretch without a level below 2 or an overrun, and
  // its lowest level so far. No stretch before the first tick.
  std::optional<int64_t> quiet_since_ns_;
  std::optional<uint32_t> quiet_min_;
  uint64_t trims_ = 0;
  uint64_t trimmed_ = 0;
};

}  // namespace aq
