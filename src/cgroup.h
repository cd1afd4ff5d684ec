// The process's cgroup: where its files are, found from /proc/self/cgroup
// (v1 or v2, in a container or not), and its CPU and memory limits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "proc_files.h"
#include "proc_parse.h"

namespace aq {

// Directories relative to the cgroup root ("" is the root itself), found
// from /proc/self/cgroup. An absent directory means an absent controller;
// v2 has one directory for all of them.
struct Cgroup {
  int version = 2;
  std::string path;                // as /proc/self/cgroup lists it
  std::string usage;               // v2: cpu.stat; v1: cpuacct.usage
  std::optional<std::string> cpu;  // quota and throttling
  std::optional<std::string> memory;
  std::optional<std::string> cpuset;
};

// The cgroup from /proc/self/cgroup's text (`membership`; null when it
// could not be read, `read_error` saying why), or null with `why_not` set.
// `files` reads under the cgroup root.
std::unique_ptr<Cgroup> find_cgroup(ProcFiles& files, const std::string* membership,
                                    const std::string& read_error, std::string& why_not);

// The v2 directory of `entry` holding `probe`, under the root (pure v2)
// or under "unified" (hybrid hosts).
Parsed<std::optional<std::string>> find_v2_dir(ProcFiles& files, const CgroupEntry& entry,
                                               const std::string& probe);

// A cgroup's limits. Memory limits at or above MemTotal are no limit:
// unlimited v1 cgroups show a huge number, not "max".
struct CgroupLimits {
  std::optional<double> quota_cpus;
  const char* quota_file = "";
  std::optional<size_t> cpuset_cpus;
  std::optional<uint64_t> memory_bytes;
  const char* memory_file = "";

  // The CPUs the cgroup can use: its quota, but no more than its CPUs.
  double set_cpus(const HostInfo& host) const {
    return static_cast<double>(cpuset_cpus ? static_cast<long>(*cpuset_cpus)
                                           : host.allowed_cpu_count());
  }
  bool quota_limits(const HostInfo& host) const {
    return quota_cpus && *quota_cpus <= set_cpus(host);
  }
  double cpus(const HostInfo& host) const {
    return quota_limits(host) ? *quota_cpus : set_cpus(host);
  }
  const char* cpus_from(const HostInfo& host) const {
    return quota_limits(host) ? quota_file : cpuset_cpus ? "cpuset" : "allowed CPUs";
  }
  bool any() const { return quota_cpus || memory_bytes; }
};

// Reads the limits of `cg`: false with `reason` set when a file is there
// but cannot be read or parsed; an absent file is an absent limit.
bool read_limits(ProcFiles& files, const Cgroup& cg, uint64_t mem_total_bytes, CgroupLimits& limits,
                 std::string& reason);

}  // namespace aq
