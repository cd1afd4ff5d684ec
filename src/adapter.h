// The capacity decision: JetKVM's step, bounded below by recent demand when
// upstream is live, and grown at once when a push overruns, as far as the
// growth limit the caller passes (a queue user's count limit).
//
// The caller owns the capacity and passes it in; Adapter keeps only the
// demand window and the counters. With demand_headroom 0, or a non-live
// upstream, tick() is decide() exactly and overrun() never grows.
#pragma once

#include <cstdint>
#include <optional>

#include "level_window.h"
#include "sizing_policy.h"

namespace aq {

struct TickInput {
  uint32_t capacity = 0;  // the caller's capacity now
  // The highest level since the previous tick, starting from the level then
  // (a compare per buffer). A level passed twice counts once.
  uint32_t level_max = 0;
  // Upstream is live (the LATENCY query). A non-live upstream fills the queue
  // by backpressure, so its level is no sign of demand.
  bool live = false;
  // None: the tick is skipped (no load sample); only the window is fed.
  std::optional<LoadSample> load;
  std::optional<int64_t> latency_avg_ns;
  int64_t now_ns = 0;
  // The most the demand floor may ask for: the count a queue user's limits
  // allow (max-size-buffers when set, else kGrowthLimitBuffers). 0, or
  // below max_buffers, means max_buffers.
  uint32_t growth_limit = 0;
};

class Adapter {
 public:
  Adapter() : window_(defaults::kDemandWindowNs) {}

  // One tick. new_capacity is max(JetKVM's step, demand floor). Where the
  // floor does not bind, `applied` is the step's own (it counts a change that
  // rounds back); where it binds, `applied` means the capacity changes.
  Decision tick(const PolicyConfig& config, const TickInput& in);

  // A push found the queue full by its buffer count, before it blocks or
  // drops. For a live upstream with the floor on and `capacity` below the
  // ceiling, max(max_buffers, growth_limit), the decision grows the capacity
  // to min(ceil(headroom x (capacity + 1)), ceiling), counted as an
  // adaptation; otherwise it is not applied. `level_max` as in TickInput,
  // not reset by the overrun; `growth_limit` as in TickInput.
  Decision overrun(const PolicyConfig& config, uint32_t capacity, uint32_t level_max, bool live,
                   int64_t now_ns, uint32_t growth_limit = 0);

  // min(ceil(headroom x the highest level in the window), ceiling), or 0
  // when the floor is off or upstream is not live.
  uint32_t demand_floor(const PolicyConfig& config, bool live, int64_t now_ns,
                        uint32_t growth_limit = 0) const;

  // Tick adaptations plus overrun growths.
  uint64_t adaptations() const { return adaptations_; }
  uint64_t overrun_growths() const { return overrun_growths_; }
  std::optional<int64_t> last_adaptation_ns() const { return last_adaptation_ns_; }

  // Forgets demand and counters.
  void reset();

 private:
  void note(const PolicyConfig& config, uint32_t level_max, int64_t now_ns);
  void count(int64_t now_ns);

  LevelWindow window_;
  uint64_t adaptations_ = 0;
  uint64_t overrun_growths_ = 0;
  std::optional<int64_t> last_adaptation_ns_;
};

// ceil(headroom x n), capped at `cap`; tolerates the rounding of the product
// (1.1 x 10 is 11.000000000000002 in doubles, and means 11).
uint32_t scaled_ceil(double headroom, double n, uint32_t cap);

// What the floor and an overrun may reach: max(max_buffers, growth_limit).
// For a live upstream a capacity above the need costs nothing (the level is
// the memory), so growth goes as far as a queue user's limits would.
uint32_t growth_ceiling(const PolicyConfig& config, uint32_t growth_limit);

}  // namespace aq
