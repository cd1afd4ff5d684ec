// CPU and memory load read from a procfs tree and the cgroup filesystem, in
// one of several scopes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "load_sample.h"
#include "proc_files.h"

namespace aq {

// What the load figures measure. System and Process keep their values from
// before the other scopes existed.
enum class LoadScope {
  System,    // the CPUs this process may run on, and the host's memory
  Process,   // this process, as a share of the CPUs it may run on and of MemTotal
  Cgroup,    // this process's cgroup, against its CPU quota and memory limit
  Pressure,  // PSI: the share of time tasks stalled waiting for CPU and memory
  Auto,      // Cgroup when the cgroup has a limit, System otherwise
};

// "system", "process", "cgroup", "pressure", "auto".
const char* scope_name(LoadScope scope);

struct Cgroup;  // where the process's cgroup files are (cgroup.h)

// The scope a request resolves to (Auto never stays Auto) and why, in a few
// words for the element's documentation and stats.
struct ScopeChoice {
  LoadScope scope = LoadScope::System;
  std::string reason;
};

// Picks the scope for `requested` as the sampler would: Auto becomes Cgroup
// when the process's cgroup has a CPU quota or a memory limit below
// MemTotal, and System otherwise (also when no cgroup can be read); other
// scopes stay as they are. Reads "self/cgroup" and "meminfo" from `proc`
// and the cgroup's files from `cgroup`.
ScopeChoice resolve_scope(LoadScope requested, ProcFiles& proc, ProcFiles& cgroup);
ScopeChoice resolve_scope(LoadScope requested, const std::string& proc_root,
                          const std::string& cgroup_root);

// How a reading was made, for stats and debug logs.
struct LoadSource {
  ScopeChoice choice;  // the scope read
  // What the figures are shares of, e.g. "cgroup v2 /kvm.service: CPU of
  // 0.2 CPUs (cpu.max), memory of 400 MiB (memory.max)".
  std::string detail;
  // Cgroup scope with a CPU controller: the periods in which the cgroup was
  // throttled (cpu.stat nr_throttled) so far, and since the previous reading.
  std::optional<uint64_t> nr_throttled;
  uint64_t nr_throttled_delta = 0;
};

struct SampleResult {
  std::optional<LoadSample> sample;  // empty: no sample this time
  std::string reason;                // why there is none
  // No sample only because CPU load needs a second reading: not a fault.
  bool warming_up = false;
  LoadSource source;
};

// Not thread-safe: the shared sampler serialises calls.
//
// CPU figures of the tick-counted scopes (system, process) come from
// /proc counters in USER_HZ ticks, 10 ms each: over one short interval a
// steady load reads in coarse steps (on two CPUs, a 40 % load read every
// 10 ms shows 0, 33 or 50 %). So each figure spans the shortest run of recent readings, ending
// at the newest, that holds at least kWindowTicks ticks (system: the
// allowed CPUs' total ticks; process: wall time x USER_HZ x allowed CPUs),
// about 1 % resolution whatever the interval; with fewer readings it spans
// all of them. At most kMaxHistory readings are kept. The cgroup scope's
// counters are in microseconds or nanoseconds and use the previous reading
// alone; PSI averages need no delta at all.
class LoadSampler {
 public:
  static constexpr uint64_t kWindowTicks = 100;
  static constexpr size_t kMaxHistory = 256;

  // `proc` is the procfs root, `cgroup` the cgroup filesystem root.
  LoadSampler(LoadScope scope, ProcFiles& proc, ProcFiles& cgroup, HostInfo host);
  ~LoadSampler();

  // Reads the files once. The system, process and cgroup scopes need a
  // previous good reading, so the first call (and the first after a
  // failure, a counter going backwards or a move to another cgroup) gives
  // none. Auto picks its scope on the first call, again after any failure,
  // and when /proc/self/cgroup changes.
  SampleResult poll(int64_t monotonic_ns);

 private:
  // One reading of a scope's files.
  struct Reading {
    uint64_t busy = 0;   // system: busy ticks; process: utime + stime; cgroup: usage ns
    uint64_t total = 0;  // system: all ticks; otherwise unused
    int64_t when_ns = 0;
    std::optional<uint64_t> nr_throttled;
    double cpus = 0.0;         // cgroup: the CPUs it may use
    double cpu_percent = 0.0;  // pressure: read as it is, with no delta
    double mem_percent = 0.0;
  };
  // What a scope reads and how its CPU figure comes out: one row per scope
  // in kScopes (load_sampler.cpp).
  struct Scope;
  static const Scope kScopes[];
  static const Scope& scope_of(LoadScope scope);
  friend const char* scope_name(LoadScope scope);

  void refresh_cgroup();
  bool read_system(Reading& now, std::string& reason);
  bool read_process(Reading& now, std::string& reason);
  bool read_cgroup(Reading& now, std::string& reason);
  bool read_pressure(Reading& now, std::string& reason);

  LoadScope requested_;
  ProcFiles& proc_;
  ProcFiles& cgroup_files_;
  HostInfo host_;
  ScopeChoice choice_;
  std::string detail_;
  // /proc/self/cgroup as last read (or why it could not be), and the
  // cgroup found from it, or why none was.
  std::optional<std::string> membership_;
  std::unique_ptr<Cgroup> cgroup_;
  std::string cgroup_error_;
  // The allowed CPUs that had a line in /proc/stat at the last reading.
  std::vector<unsigned> cpus_seen_;
  std::deque<Reading> history_;
};

}  // namespace aq
