// Parsers for the /proc files the load sampler reads: text in, numbers out,
// no file I/O and no exceptions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace aq {

// A value or the reason there is none.
template <class T>
struct Parsed {
  bool ok = false;
  T value{};
  std::string error;

  static Parsed success(T v) { return {true, std::move(v), {}}; }
  static Parsed failure(std::string why) { return {false, T{}, std::move(why)}; }
};

// The aggregate "cpu" line of /proc/stat, in USER_HZ ticks.
struct CpuTimes {
  uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0,
           softirq = 0, steal = 0, guest = 0, guest_nice = 0;

  // guest and guest_nice are already included in user and nice.
  uint64_t total() const {
    return user + nice + system + idle + iowait + irq + softirq + steal;
  }
  uint64_t busy() const { return total() - idle - iowait; }
};

struct MemInfo {
  uint64_t total_kb = 0;
  uint64_t available_kb = 0;
  // True when MemAvailable was absent (kernels before 3.14) and
  // MemFree + Buffers + Cached stood in for it.
  bool available_estimated = false;
};

// The fields of /proc/<pid>/stat the sampler uses.
struct PidStat {
  std::string comm;
  char state = '?';
  uint64_t utime = 0;  // USER_HZ ticks
  uint64_t stime = 0;  // USER_HZ ticks
  int64_t rss_pages = 0;
};

// /proc/<pid>/statm, in pages.
struct Statm {
  uint64_t size_pages = 0;
  uint64_t resident_pages = 0;
};

Parsed<CpuTimes> parse_proc_stat(std::string_view text);
Parsed<MemInfo> parse_meminfo(std::string_view text);
Parsed<PidStat> parse_pid_stat(std::string_view text);
Parsed<Statm> parse_statm(std::string_view text);

// Strict unsigned decimal: digits only, no sign, no overflow.
Parsed<uint64_t> parse_u64(std::string_view token);

}  // namespace aq
