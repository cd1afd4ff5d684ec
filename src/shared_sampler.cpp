#include "shared_sampler.h"

#include <algorithm>
#include <chrono>
#include <tuple>

namespace aq {

namespace {

using Key = std::tuple<std::string, std::string, LoadScope>;

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}

std::map<Key, std::weak_ptr<SharedSampler>>& registry() {
  static std::map<Key, std::weak_ptr<SharedSampler>> r;
  return r;
}

}  // namespace

SharedSampler::SharedSampler(std::string proc_root, std::string cgroup_root, LoadScope scope)
    : root_(std::move(proc_root)),
      cgroup_root_(std::move(cgroup_root)),
      scope_(scope),
      files_(root_),
      cgroup_files_(cgroup_root_),
      sampler_(scope, files_, cgroup_files_, HostInfo::current()) {
  latest_.reason = "no reading yet";
  latest_.source.choice = {scope, "no reading yet"};
  thread_ = std::thread([this] { run(); });
}

SharedSampler::~SharedSampler() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::unique_ptr<SharedSampler::Subscription> SharedSampler::subscribe(
    const std::string& proc_root, const std::string& cgroup_root, LoadScope scope,
    int64_t interval_ns) {
  std::shared_ptr<SharedSampler> sampler;
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    auto& slot = registry()[Key{proc_root, cgroup_root, scope}];
    sampler = slot.lock();
    if (!sampler) {
      sampler = std::shared_ptr<SharedSampler>(new SharedSampler(proc_root, cgroup_root, scope));
      slot = sampler;
    }
  }
  uint64_t id = sampler->add(interval_ns);
  return std::unique_ptr<Subscription>(new Subscription(std::move(sampler), id));
}

SharedSampler::Subscription::~Subscription() {
  sampler_->remove(id_);
  std::shared_ptr<SharedSampler> last;
  {
    // Drop the registry entry with the last user so a new one starts fresh.
    std::lock_guard<std::mutex> lock(registry_mutex());
    if (sampler_.use_count() == 1) {
      auto it = registry().find(Key{sampler_->root_, sampler_->cgroup_root_, sampler_->scope_});
      if (it != registry().end() && it->second.lock() == sampler_)
        registry().erase(it);
    }
    last = std::move(sampler_);
  }
  // `last` joins the thread outside the registry lock if it was the last.
}

void SharedSampler::Subscription::set_interval(int64_t interval_ns) {
  sampler_->update(id_, interval_ns);
}

uint64_t SharedSampler::add(int64_t interval_ns) {
  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    id = next_id_++;
    intervals_[id] = std::max<int64_t>(interval_ns, 1'000'000);
  }
  wake_.notify_all();
  return id;
}

void SharedSampler::remove(uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  intervals_.erase(id);
}

void SharedSampler::update(uint64_t id, int64_t interval_ns) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    int64_t& interval = intervals_[id];
    const int64_t updated = std::max<int64_t>(interval_ns, 1'000'000);
    /* Every tick of every subscriber updates: waking the thread for an
     * unchanged interval would cost a wake-up per tick for nothing. */
    if (interval == updated)
      return;
    interval = updated;
  }
  wake_.notify_all();
}

int64_t SharedSampler::shortest_interval_locked() const {
  int64_t shortest = kUnsubscribedIntervalNs;
  bool any = false;
  for (const auto& [id, interval] : intervals_) {
    shortest = any ? std::min(shortest, interval) : interval;
    any = true;
  }
  return shortest;
}

int64_t SharedSampler::interval_ns() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return shortest_interval_locked();
}

size_t SharedSampler::subscribers() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return intervals_.size();
}

SharedReading SharedSampler::latest() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return latest_;
}

uint64_t SharedSampler::reads() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return reads_;
}

uint64_t SharedSampler::wakeups() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return wakeups_;
}

void SharedSampler::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  int64_t next_ns = monotonic_now_ns();
  while (!stopping_) {
    const int64_t now = monotonic_now_ns();
    if (now < next_ns) {
      wake_.wait_for(lock, std::chrono::nanoseconds(next_ns - now));
      ++wakeups_;
      // A shorter interval may have been registered: recompute the deadline.
      next_ns = std::min(next_ns, latest_.taken_ns + shortest_interval_locked());
      continue;
    }
    lock.unlock();
    // File I/O happens here only, outside the lock readers take.
    SampleResult r = sampler_.poll(now);
    lock.lock();
    latest_.sample = r.sample;
    latest_.reason = std::move(r.reason);
    latest_.warming_up = r.warming_up;
    latest_.source = std::move(r.source);
    latest_.taken_ns = now;
    ++latest_.sequence;
    ++reads_;
    next_ns = now + shortest_interval_locked();
  }
}

}  // namespace aq
