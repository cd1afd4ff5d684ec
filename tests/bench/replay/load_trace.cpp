#include "load_trace.h"

#include <cmath>
#include <cstdio>
#include <vector>

#include "sizing_policy.h"

namespace aqreplay {

namespace {

constexpr double kNeutralCpu = (aq::defaults::kCpuLow + aq::defaults::kCpuHigh) / 2;
constexpr double kNeutralMem = (aq::defaults::kMemLow + aq::defaults::kMemHigh) / 2;
// Counters at scenario time 0: far enough from 0 that the neutral load
// before it never runs them below zero.
constexpr double kTotal0 = 1e9;

void append_line(std::string& out, const char* name, uint64_t busy, uint64_t total) {
  char line[160];
  // user nice system idle iowait irq softirq steal guest guest_nice
  std::snprintf(line, sizeof line, "%s %llu 0 0 %llu 0 0 0 0 0 0\n", name,
                static_cast<unsigned long long>(busy),
                static_cast<unsigned long long>(total - busy));
  out += line;
}

}  // namespace

LoadTrace::LoadTrace(const aqsim::Scenario& scenario, unsigned cpus)
    : scenario_(scenario), cpus_(cpus ? cpus : 1) {}

double LoadTrace::cpu_at(int64_t t_ns) const {
  return t_ns < 0 ? kNeutralCpu : scenario_.at(t_ns).cpu_percent;
}

double LoadTrace::mem_at(int64_t t_ns) const {
  return t_ns < 0 ? kNeutralMem : scenario_.at(t_ns).mem_percent;
}

std::string LoadTrace::stat_at(int64_t t_ns) const {
  const double seconds = static_cast<double>(t_ns) / 1e9;
  const double rate = static_cast<double>(kTicksPerSecond);
  // The busy share integrated over time: the neutral load before 0, the
  // scenario's rows after.
  const double busy_share =
      t_ns < 0 ? kNeutralCpu / 100.0 * seconds : scenario_.cpu_average(0, t_ns) / 100.0 * seconds;
  const auto total = static_cast<uint64_t>(std::floor(kTotal0 + rate * seconds));
  const auto busy =
      static_cast<uint64_t>(std::floor(kTotal0 * kNeutralCpu / 100.0 + rate * busy_share));
  // Split evenly over the CPUs; each CPU's busy stays within its total.
  std::string out;
  append_line(out, "cpu ", busy, total);
  for (unsigned i = 0; i < cpus_; ++i) {
    const uint64_t b = busy / cpus_ + (i < busy % cpus_ ? 1 : 0);
    const uint64_t n = total / cpus_ + (i < total % cpus_ ? 1 : 0);
    const std::string name = "cpu" + std::to_string(i);
    append_line(out, name.c_str(), b, n);
  }
  return out;
}

}  // namespace aqreplay
