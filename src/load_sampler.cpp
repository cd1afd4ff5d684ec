#include "load_sampler.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace aq {

int64_t monotonic_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool DirProcFiles::read(const std::string& name, std::string& out, std::string& error) {
  const std::string path = root_ + "/" + name;
  // Non-blocking and regular files only: a FIFO or device under a bad root
  // must not hang the sampler thread, and the read is capped for the same
  // reason (procfs files report size 0, so the size cannot be trusted).
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    error = path + ": " + std::strerror(errno);
    return false;
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    error = path + ": not a regular file";
    return false;
  }
  constexpr size_t kMaxBytes = 1 << 20;
  out.clear();
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      error = path + ": " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > kMaxBytes) {
      ::close(fd);
      error = path + ": larger than 1 MiB";
      return false;
    }
  }
  ::close(fd);
  return true;
}

HostInfo HostInfo::current() {
  HostInfo h;
  if (long v = sysconf(_SC_CLK_TCK); v > 0) h.clock_ticks_per_second = v;
  if (long v = sysconf(_SC_PAGESIZE); v > 0) h.page_size = v;
  if (long v = sysconf(_SC_NPROCESSORS_ONLN); v > 0) h.cpu_count = v;
  return h;
}

LoadSampler::LoadSampler(LoadScope scope, ProcFiles& files, HostInfo host)
    : scope_(scope), files_(files), host_(host) {}

bool LoadSampler::read_parsed(const char* name, std::string& text, std::string& reason) {
  std::string error;
  if (files_.read(name, text, error)) return true;
  reason = error;
  return false;
}

SampleResult LoadSampler::poll(int64_t now_ns) {
  SampleResult result;
  auto fail = [&](std::string why) {
    previous_.reset();
    result.reason = std::move(why);
    return result;
  };

  std::string text;
  if (!read_parsed("meminfo", text, result.reason)) return fail(result.reason);
  auto mem = parse_meminfo(text);
  if (!mem.ok) return fail("meminfo: " + mem.error);

  Reading now;
  now.when_ns = now_ns;
  double mem_percent = 0.0;
  if (scope_ == LoadScope::System) {
    if (!read_parsed("stat", text, result.reason)) return fail(result.reason);
    auto cpu = parse_proc_stat(text);
    if (!cpu.ok) return fail("stat: " + cpu.error);
    now.busy = cpu.value.busy();
    now.total = cpu.value.total();
    mem_percent = 100.0 * static_cast<double>(mem.value.total_kb - mem.value.available_kb) /
                  static_cast<double>(mem.value.total_kb);
  } else {
    if (!read_parsed("self/stat", text, result.reason)) return fail(result.reason);
    auto stat = parse_pid_stat(text);
    if (!stat.ok) return fail("self/stat: " + stat.error);
    if (!read_parsed("self/statm", text, result.reason)) return fail(result.reason);
    auto statm = parse_statm(text);
    if (!statm.ok) return fail("self/statm: " + statm.error);
    now.busy = stat.value.utime + stat.value.stime;
    const double rss_kb = static_cast<double>(statm.value.resident_pages) *
                          static_cast<double>(host_.page_size) / 1024.0;
    mem_percent = std::min(100.0, 100.0 * rss_kb / static_cast<double>(mem.value.total_kb));
  }

  std::optional<Reading> before = std::exchange(previous_, now);
  if (!before) {
    result.reason = "first reading: CPU load needs two";
    result.warming_up = true;
    return result;
  }
  if (now.busy < before->busy || now.total < before->total || now.when_ns <= before->when_ns) {
    result.reason = "counters went backwards";
    return result;
  }

  double cpu_percent = 0.0;
  if (scope_ == LoadScope::System) {
    const uint64_t total = now.total - before->total;
    if (total == 0) {
      result.reason = "no CPU ticks elapsed between readings";
      return result;
    }
    cpu_percent = 100.0 * static_cast<double>(now.busy - before->busy) / static_cast<double>(total);
  } else {
    const double cpu_seconds = static_cast<double>(now.busy - before->busy) /
                               static_cast<double>(host_.clock_ticks_per_second);
    const double wall_seconds = static_cast<double>(now.when_ns - before->when_ns) / 1e9;
    // Percent of all cores, like the system scope.
    cpu_percent = 100.0 * cpu_seconds / (wall_seconds * static_cast<double>(host_.cpu_count));
  }
  result.sample = LoadSample{std::clamp(cpu_percent, 0.0, 100.0), std::clamp(mem_percent, 0.0, 100.0)};
  return result;
}

namespace {

using Key = std::pair<std::string, LoadScope>;

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}

std::map<Key, std::weak_ptr<SharedSampler>>& registry() {
  static std::map<Key, std::weak_ptr<SharedSampler>> r;
  return r;
}

}  // namespace

SharedSampler::SharedSampler(std::string root, LoadScope scope)
    : root_(std::move(root)), scope_(scope), files_(root_), sampler_(scope, files_, HostInfo::current()) {
  latest_.reason = "no reading yet";
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

std::unique_ptr<SharedSampler::Subscription> SharedSampler::subscribe(const std::string& root,
                                                                     LoadScope scope,
                                                                     int64_t interval_ns) {
  std::shared_ptr<SharedSampler> sampler;
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    auto& slot = registry()[Key{root, scope}];
    sampler = slot.lock();
    if (!sampler) {
      sampler = std::shared_ptr<SharedSampler>(new SharedSampler(root, scope));
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
      auto it = registry().find(Key{sampler_->root_, sampler_->scope_});
      if (it != registry().end() && it->second.lock() == sampler_) registry().erase(it);
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
    intervals_[id] = std::max<int64_t>(interval_ns, 1'000'000);
  }
  wake_.notify_all();
}

int64_t SharedSampler::shortest_interval_locked() const {
  int64_t shortest = defaults::kIntervalNs;
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

void SharedSampler::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  int64_t next_ns = monotonic_now_ns();
  while (!stopping_) {
    const int64_t now = monotonic_now_ns();
    if (now < next_ns) {
      wake_.wait_for(lock, std::chrono::nanoseconds(next_ns - now));
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
    latest_.taken_ns = now;
    ++latest_.sequence;
    ++reads_;
    next_ns = now + shortest_interval_locked();
  }
}

}  // namespace aq
