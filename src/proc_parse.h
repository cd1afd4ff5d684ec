// Parsers for the /proc files the load sampler reads: text in, numbers out,
// no file I/O and no exceptions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

// A "cpu" or "cpuN" line of /proc/stat, in USER_HZ ticks.
struct CpuTimes {
  uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0,
           guest = 0, guest_nice = 0;

  // guest and guest_nice are already included in user and nice.
  uint64_t total() const { return user + nice + system + idle + iowait + irq + softirq + steal; }
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

// One "cpuN" line of /proc/stat.
struct CpuLine {
  unsigned id = 0;
  CpuTimes times;
};

// One line of /proc/<pid>/cgroup: "hierarchy:controllers:path". cgroup v2
// is hierarchy 0 with no controllers; a v1 named hierarchy lists
// "name=systemd".
struct CgroupEntry {
  unsigned hierarchy = 0;
  std::vector<std::string> controllers;
  std::string path;
};

struct CgroupMembership {
  std::vector<CgroupEntry> entries;
  const CgroupEntry* v2() const;
  const CgroupEntry* v1(std::string_view controller) const;
};

// cgroup v2 cpu.max: "$QUOTA $PERIOD" in microseconds, quota "max" for none.
// cgroup v1 gives the same from cpu.cfs_quota_us and cpu.cfs_period_us.
struct CpuQuota {
  std::optional<uint64_t> quota_us;  // empty: no quota
  uint64_t period_us = 100000;
};

// Flat keyed cgroup files (cpu.stat, memory.stat): one "key value" per line.
struct FlatKeyed {
  std::vector<std::pair<std::string, uint64_t>> entries;
  std::optional<uint64_t> get(std::string_view key) const;
};

// One line of a PSI file: the share of wall time, in percent, in which
// some (or all) tasks stalled on the resource over 10, 60 and 300 s, and
// the total stall time in microseconds.
struct PsiLine {
  double avg10 = 0, avg60 = 0, avg300 = 0;
  uint64_t total_us = 0;
};

// /proc/pressure/<resource> or a cgroup's <resource>.pressure. "full" is
// absent for CPU on kernels before 5.13.
struct Psi {
  PsiLine some;
  std::optional<PsiLine> full;
};

Parsed<CpuTimes> parse_proc_stat(std::string_view text);
// Every "cpuN" line, in file order. A CPU that is offline has no line.
Parsed<std::vector<CpuLine>> parse_proc_stat_cpus(std::string_view text);
Parsed<MemInfo> parse_meminfo(std::string_view text);
Parsed<PidStat> parse_pid_stat(std::string_view text);
Parsed<Statm> parse_statm(std::string_view text);

// A kernel CPU list such as "0-3,5" (cpuset.cpus.effective), sorted and
// without repeats. Ids are bounded by kMaxCpuId so a bad range cannot make
// a huge list. An empty list is an error: no CPU to run on.
constexpr unsigned kMaxCpuId = 65535;
Parsed<std::vector<unsigned>> parse_cpu_list(std::string_view text);

Parsed<CgroupMembership> parse_proc_cgroup(std::string_view text);
Parsed<CpuQuota> parse_cpu_max(std::string_view text);
// cpu.cfs_quota_us: microseconds, or -1 for no quota.
Parsed<std::optional<uint64_t>> parse_cfs_quota(std::string_view text);
// A file holding one number (memory.current, cpuacct.usage, ...).
Parsed<uint64_t> parse_cgroup_value(std::string_view text);
// A limit that may be "max" (memory.max): empty for none.
Parsed<std::optional<uint64_t>> parse_cgroup_limit(std::string_view text);
Parsed<FlatKeyed> parse_flat_keyed(std::string_view text);
Parsed<Psi> parse_psi(std::string_view text);

// Strict unsigned decimal: digits only, no sign, no overflow.
Parsed<uint64_t> parse_u64(std::string_view token);

}  // namespace aq
