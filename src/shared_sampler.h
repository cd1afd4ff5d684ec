// The one load sampler per process, on a thread of its own, that serves
// every element.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "load_sampler.h"

namespace aq {

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
  // thread's wake-ups (deadlines, changes and spurious), the interval read
  // at, and the subscriptions held.
  uint64_t reads() const;
  uint64_t wakeups() const;
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
  // The interval before any subscription registers one: the thread's first
  // read may come first. The element's default interval.
  static constexpr int64_t kUnsubscribedIntervalNs = 500'000'000;

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
  uint64_t wakeups_ = 0;
  std::thread thread_;
};

}  // namespace aq
