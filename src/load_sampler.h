// CPU and memory load read from a procfs tree, as deltas between readings,
// and the one shared sampler per process that serves every element.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "proc_parse.h"
#include "sizing_policy.h"

namespace aq {

enum class LoadScope { System, Process };

// Where the sampler's files come from. Names are relative to the procfs
// root: "stat", "meminfo", "self/stat", "self/statm".
class ProcFiles {
 public:
  virtual ~ProcFiles() = default;
  // False with `error` set when the file cannot be read.
  virtual bool read(const std::string& name, std::string& out, std::string& error) = 0;
};

// Reads real files under a root directory such as "/proc".
class DirProcFiles final : public ProcFiles {
 public:
  explicit DirProcFiles(std::string root) : root_(std::move(root)) {}
  bool read(const std::string& name, std::string& out, std::string& error) override;

 private:
  std::string root_;
};

// Host facts the process scope needs, injected so tests can fix them.
struct HostInfo {
  long clock_ticks_per_second = 100;  // USER_HZ
  long page_size = 4096;
  long cpu_count = 1;
  static HostInfo current();  // from sysconf()
};

struct SampleResult {
  std::optional<LoadSample> sample;  // empty: no sample this time
  std::string reason;                // why there is none
  // No sample only because CPU load needs a second reading: not a fault.
  bool warming_up = false;
};

// Not thread-safe: the shared sampler serialises calls.
class LoadSampler {
 public:
  LoadSampler(LoadScope scope, ProcFiles& files, HostInfo host);

  // Reads the files once. A sample needs a previous good reading, so the
  // first call (and the first after a failure or a counter going backwards)
  // gives none.
  SampleResult poll(int64_t monotonic_ns);

 private:
  struct Reading {
    uint64_t busy = 0;   // system: busy ticks; process: utime + stime
    uint64_t total = 0;  // system: all ticks; process: unused
    int64_t when_ns = 0;
  };
  bool read_parsed(const char* name, std::string& text, std::string& reason);

  LoadScope scope_;
  ProcFiles& files_;
  HostInfo host_;
  std::optional<Reading> previous_;
};

// The latest result of the shared sampler. `sequence` grows with every read.
struct SharedReading {
  std::optional<LoadSample> sample;
  std::string reason;
  bool warming_up = true;
  uint64_t sequence = 0;
  int64_t taken_ns = 0;
};

// One per (procfs root, scope) in the process. A background thread reads the
// files once per interval, the shortest any subscriber asked for; readers
// copy the latest result under a short lock and never wait for file I/O.
class SharedSampler {
 public:
  class Subscription;

  // The process-wide sampler for this root and scope, created on first use.
  static std::unique_ptr<Subscription> subscribe(const std::string& root, LoadScope scope,
                                                 int64_t interval_ns);

  ~SharedSampler();
  SharedReading latest() const;
  uint64_t reads() const;  // completed reads of the procfs tree
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
  SharedSampler(std::string root, LoadScope scope);
  uint64_t add(int64_t interval_ns);
  void remove(uint64_t id);
  void update(uint64_t id, int64_t interval_ns);
  int64_t shortest_interval_locked() const;
  void run();

  std::string root_;
  LoadScope scope_;
  DirProcFiles files_;
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
