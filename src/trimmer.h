// Latency trimming for a live upstream into a consumer that does not catch
// up by itself (leaky=downstream, trim-period).
//
// A playback sink takes one buffer per buffer duration, so buffers queued
// after a burst are latency that never drains. The level worth keeping is
// the recent need: a high quantile of each interval's rise (NeedHistogram),
// at least 1. After trim_period_ns with the level never at or below that
// keep level K and no overrun, the buffers the level's low point L held
// above it, L - K of the oldest, are dropped once.
#pragma once

#include <cstdint>
#include <optional>

#include "level_trace.h"
#include "need_histogram.h"
#include "sizing_policy.h"

namespace aq {

class Trimmer {
 public:
  Trimmer();

  // One tick with the interval's levels (LevelTrace::take). Returns how many
  // of the oldest buffers to drop now; 0 with the rule off (trim_period_ns
  // 0, or demand_headroom 0: JetKVM's step alone). The need is learnt with
  // the rule off too, so turning it on starts informed.
  uint32_t tick(const PolicyConfig& config, int64_t now_ns, const LevelInterval& interval);

  // The level the rule keeps: max(1, the need quantile).
  uint32_t keep() const;
  uint64_t trims() const { return trims_; }
  uint64_t trimmed_buffers() const { return trimmed_; }

  void reset();

 private:
  uint32_t stretch(int64_t period_ns, int64_t now_ns, uint32_t level_min, bool overrun,
                   uint32_t keep);

  NeedHistogram need_;
  // Start of the current stretch without a level at or below the keep level
  // or an overrun, and its lowest level so far. No stretch before the first
  // tick.
  std::optional<int64_t> quiet_since_ns_;
  std::optional<uint32_t> quiet_min_;
  uint64_t trims_ = 0;
  uint64_t trimmed_ = 0;
};

}  // namespace aq
