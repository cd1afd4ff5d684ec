// Integer exponential moving average of latency samples: the first sample
// becomes the average, then avg = (9 * avg + sample) / 10.
#pragma once

#include <cstdint>
#include <optional>

namespace aq {

class LatencyTracker {
 public:
  // Samples are clamped to [0, kMaxSampleNs] so 9 * avg cannot overflow.
  static constexpr int64_t kMaxSampleNs = int64_t{3600} * 1'000'000'000;

  void add(int64_t sample_ns);
  void reset() {
    average_.reset();
    max_.reset();
    interval_max_.reset();
    count_ = 0;
  }
  std::optional<int64_t> average() const { return average_; }
  // Largest clamped sample since the last reset.
  std::optional<int64_t> max() const { return max_; }
  // Largest clamped sample since the last take_interval_max(), then starts a
  // new interval. A tick reports it, so a stall shows at its full length
  // where the average has already forgotten it. None: no sample meanwhile.
  std::optional<int64_t> take_interval_max();
  uint64_t count() const { return count_; }

 private:
  std::optional<int64_t> average_;
  std::optional<int64_t> max_;
  std::optional<int64_t> interval_max_;
  uint64_t count_ = 0;
};

}  // namespace aq
