#include "adapter.h"

#include <algorithm>
#include <cmath>

namespace aq {

uint32_t scaled_ceil(double headroom, double n, uint32_t cap) {
  const double x = headroom * n;
  if (!(x < static_cast<double>(cap)))
    return cap;
  const double up = std::ceil(x * (1.0 - 1e-12));
  return up <= 0.0 ? 0 : static_cast<uint32_t>(up);
}

uint32_t growth_ceiling(const PolicyConfig& config, uint32_t growth_limit) {
  return std::max(config.max_buffers, growth_limit);
}

uint32_t Adapter::demand_floor(const PolicyConfig& config, bool live, int64_t now_ns,
                               uint32_t growth_limit) const {
  if (!live || config.demand_headroom == 0.0)
    return 0;
  return scaled_ceil(config.demand_headroom, window_.max(now_ns),
                     growth_ceiling(config, growth_limit));
}

void Adapter::note(const PolicyConfig& config, uint32_t level_max, int64_t now_ns) {
  window_.set_window(now_ns, config.demand_window_ns);
  window_.note(now_ns, level_max);
}

void Adapter::count(int64_t now_ns) {
  ++adaptations_;
  last_adaptation_ns_ = now_ns;
}

Decision Adapter::tick(const PolicyConfig& config, const TickInput& in) {
  note(config, in.level_max, in.now_ns);
  const uint32_t floor = demand_floor(config, in.live, in.now_ns, in.growth_limit);
  Decision d;
  if (in.load) {
    d = decide(config, in.capacity, *in.load, in.latency_avg_ns);
  } else {
    d.old_capacity = d.new_capacity = in.capacity;
  }
  d.demand_floor = floor;
  // A skipped tick changes nothing: overruns still grow the capacity.
  if (in.load && floor > d.new_capacity) {
    d.new_capacity = floor;
    d.applied = floor != in.capacity;
  }
  if (d.applied)
    count(in.now_ns);
  return d;
}

Decision Adapter::overrun(const PolicyConfig& config, uint32_t capacity, uint32_t level_max,
                          bool live, int64_t now_ns, uint32_t growth_limit) {
  note(config, level_max, now_ns);
  Decision d;
  d.old_capacity = d.new_capacity = capacity;
  d.overrun = true;
  d.demand_floor = demand_floor(config, live, now_ns, growth_limit);
  const uint32_t ceiling = growth_ceiling(config, growth_limit);
  if (!live || config.demand_headroom == 0.0 || capacity >= ceiling)
    return d;
  d.new_capacity = scaled_ceil(config.demand_headroom, capacity + 1.0, ceiling);
  d.applied = true;
  ++overrun_growths_;
  count(now_ns);
  return d;
}

void Adapter::reset() {
  window_.reset();
  adaptations_ = 0;
  overrun_growths_ = 0;
  last_adaptation_ns_.reset();
}

}  // namespace aq
