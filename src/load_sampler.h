// CPU and memory load read from a procfs tree and the cgroup filesystem, in
// one of several scopes, and the one shared sampler per process that serves
// every element.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "proc_parse.h"
#include "sizing_policy.h"

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

inline constexpr char kDefaultProcRoot[] = "/proc";
inline constexpr char kDefaultCgroupRoot[] = "/sys/fs/cgroup";

// Where the sampler's files come from, relative to a root directory: the
// procfs root ("stat", "meminfo", "self/stat", "self/cgroup",
// "pressure/cpu", ...) or the cgroup root ("cpu,cpuacct/docker/x/cpu.stat").
class ProcFiles {
 public:
  // Missing: no such file. For cgroup files that means a controller or a
  // limit that is not there, which is not a fault.
  enum class Status { Ok, Missing, Failed };

  virtual ~ProcFiles() = default;
  // `error` is set unless the status is Ok.
  virtual Status fetch(const std::string& name, std::string& out, std::string& error) = 0;
  // False with `error` set when the file cannot be read.
  bool read(const std::string& name, std::string& out, std::string& error) {
    return fetch(name, out, error) == Status::Ok;
  }
};

// Reads real files under a root directory such as "/proc".
class DirProcFiles final : public ProcFiles {
 public:
  explicit DirProcFiles(std::string root) : root_(std::move(root)) {}
  Status fetch(const std::string& name, std::string& out, std::string& error) override;

 private:
  std::string root_;
};

// Host facts the scopes need, injected so tests can fix them.
struct HostInfo {
  long clock_ticks_per_second = 100;  // USER_HZ
  long page_size = 4096;
  long cpu_count = 1;  // online CPUs
  // The CPUs this process may run on (its affinity mask), sorted, when that
  // leaves out some online CPU; empty when it may run on all of them.
  std::vector<unsigned> allowed_cpus;

  long allowed_cpu_count() const {
    return allowed_cpus.empty() ? cpu_count : static_cast<long>(allowed_cpus.size());
  }
  static HostInfo current();  // from sysconf() and sched_getaffinity()
};

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

  struct Cgroup;  // where the process's cgroup files are (load_sampler.cpp)

 private:
  struct Reading {
    uint64_t busy = 0;   // system: busy ticks; process: utime + stime; cgroup: usage ns
    uint64_t total = 0;  // system: all ticks; otherwise unused
    int64_t when_ns = 0;
    std::optional<uint64_t> nr_throttled;
  };
  void refresh_cgroup();
  bool read_system(Reading& now, double& mem, std::string& reason);
  bool read_process(Reading& now, double& mem, std::string& reason);
  bool read_cgroup(Reading& now, double& cpus, double& mem, std::string& reason);
  bool read_pressure(double& cpu, double& mem, std::string& reason);
  bool span_is_enough(const Reading& from, const Reading& to) const;

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

// The latest result of the shared sampler. `sequence` grows with every read.
struct SharedReading {
  std::optional<LoadSample> sample;
  std::string reason;
  bool warming_up = true;
  uint64_t sequence = 0;
  int64_t taken_ns = 0;
  LoadSource source;  // the scope read (auto resolved), throttling
};

// One per (procfs root, cgroup root, scope) in the process. A background
// thread reads the files once per interval, the shortest any subscriber
// asked for; readers copy the latest result under a short lock and never
// wait for file I/O.
class SharedSampler {
 public:
  class Subscription;

  // The process-wide sampler for these roots and this scope, created on
  // first use.
  static std::unique_ptr<Subscription> subscribe(const std::string& proc_root,
                                                 const std::string& cgroup_root, LoadScope scope,
                                                 int64_t interval_ns);

  ~SharedSampler();
  SharedReading latest() const;
  // How the sharing works, for its tests: completed reads of the files, the
  // interval read at, and the subscriptions held.
  uint64_t reads() const;
  int64_t interval_ns() const;
  size_t subscribers() const;

  // Owning handle: keeps the sampler alive and its interval registered.
  class Subscription {
   public:
    ~Subscription();
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;
    SharedSampler& sampler() const { return *sampler_; }
    SharedReading latest() const { return sampler_->latest(); }
    void set_interval(int64_t interval_ns);

   private:
    friend class SharedSampler;
    Subscription(std::shared_ptr<SharedSampler> sampler, uint64_t id)
        : sampler_(std::move(sampler)), id_(id) {}
    std::shared_ptr<SharedSampler> sampler_;
    uint64_t id_;
  };

 private:
  SharedSampler(std::string proc_root, std::string cgroup_root, LoadScope scope);
  uint64_t add(int64_t interval_ns);
  void remove(uint64_t id);
  void update(uint64_t id, int64_t interval_ns);
  int64_t shortest_interval_locked() const;
  void run();

  std::string root_;
  std::string cgroup_root_;
  LoadScope scope_;
  DirProcFiles files_;
  DirProcFiles cgroup_files_;
  LoadSampler sampler_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::map<uint64_t, int64_t> intervals_;
  uint64_t next_id_ = 1;
  bool stopping_ = false;
  SharedReading latest_;
  uint64_t reads_ = 0;
  std::thread thread_;
};

int64_t monotonic_now_ns();

}  // namespace aq
