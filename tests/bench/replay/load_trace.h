// A scenario's load as the files an adaptivequeue reads under proc-root:
// /proc/stat counters that advance in the ratio of the row's cpu_pct, and a
// meminfo with the row's mem_pct in use.
#pragma once

#include <cstdint>
#include <string>

#include "scenario.h"

namespace aqreplay {

// Ticks a second over all CPUs. The element's sampler computes CPU over the
// shortest span of its readings holding at least 100 ticks: at this rate
// that is one 500 ms interval (5000 ticks), the span the simulator averages
// over. (/proc/stat on two CPUs counts 200 a second, 100 an interval.)
constexpr int64_t kTicksPerSecond = 10'000;

class LoadTrace {
 public:
  // Before scenario time 0 the load is the policy's neutral point (CPU and
  // memory half-way between their thresholds: every factor 0), so ticks
  // that come before the scenario leave the capacity alone.
  LoadTrace(const aqsim::Scenario& scenario, unsigned cpus);

  // The text of /proc/stat at scenario time t (ns, may be negative): an
  // aggregate `cpu` line and one per CPU, busy time as user time.
  std::string stat_at(int64_t t_ns) const;
  double mem_at(int64_t t_ns) const;
  double cpu_at(int64_t t_ns) const;

 private:
  const aqsim::Scenario& scenario_;
  unsigned cpus_;
};

}  // namespace aqreplay
