#include "load_sampler.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <tuple>

namespace aq {

int64_t monotonic_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

const char* scope_name(LoadScope scope) {
  switch (scope) {
    case LoadScope::System:
      return "system";
    case LoadScope::Process:
      return "process";
    case LoadScope::Cgroup:
      return "cgroup";
    case LoadScope::Pressure:
      return "pressure";
    case LoadScope::Auto:
      return "auto";
  }
  return "?";
}

ProcFiles::Status DirProcFiles::fetch(const std::string& name, std::string& out,
                                      std::string& error) {
  const std::string path = root_ + "/" + name;
  // Non-blocking and regular files only: a FIFO or device under a bad root
  // must not hang the sampler thread, and the read is capped for the same
  // reason (procfs files report size 0, so the size cannot be trusted).
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    error = path + ": " + std::strerror(e);
    return e == ENOENT || e == ENOTDIR ? Status::Missing : Status::Failed;
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    error = path + ": not a regular file";
    return Status::Failed;
  }
  constexpr size_t kMaxBytes = 1 << 20;
  out.clear();
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0)
      break;
    if (n < 0) {
      if (errno == EINTR)
        continue;
      error = path + ": " + std::strerror(errno);
      ::close(fd);
      return Status::Failed;
    }
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > kMaxBytes) {
      ::close(fd);
      error = path + ": larger than 1 MiB";
      return Status::Failed;
    }
  }
  ::close(fd);
  return Status::Ok;
}

HostInfo HostInfo::current() {
  HostInfo h;
  if (long v = sysconf(_SC_CLK_TCK); v > 0)
    h.clock_ticks_per_second = v;
  if (long v = sysconf(_SC_PAGESIZE); v > 0)
    h.page_size = v;
  if (long v = sysconf(_SC_NPROCESSORS_ONLN); v > 0)
    h.cpu_count = v;
  // The mask is sized for the configured CPUs and grown if the kernel's is
  // larger; on failure the process counts as unpinned.
  long configured = sysconf(_SC_NPROCESSORS_CONF);
  for (size_t n = static_cast<size_t>(std::max(configured, 64L)); n <= 65536; n *= 2) {
    cpu_set_t* set = CPU_ALLOC(n);
    if (!set)
      break;
    const size_t bytes = CPU_ALLOC_SIZE(n);
    CPU_ZERO_S(bytes, set);
    if (sched_getaffinity(0, bytes, set) == 0) {
      std::vector<unsigned> ids;
      for (size_t id = 0; id < n; ++id)
        if (CPU_ISSET_S(id, bytes, set))
          ids.push_back(static_cast<unsigned>(id));
      CPU_FREE(set);
      if (!ids.empty() && static_cast<long>(ids.size()) < h.cpu_count)
        h.allowed_cpus = std::move(ids);
      break;
    }
    const int e = errno;
    CPU_FREE(set);
    if (e != EINVAL)
      break;
  }
  return h;
}

// ---- the process's cgroup ----

// Directories relative to the cgroup root ("" is the root itself), found
// from /proc/self/cgroup. An absent directory means an absent controller;
// v2 has one directory for all of them.
struct LoadSampler::Cgroup {
  int version = 2;
  std::string path;                // as /proc/self/cgroup lists it
  std::string usage;               // v2: cpu.stat; v1: cpuacct.usage
  std::optional<std::string> cpu;  // quota and throttling
  std::optional<std::string> memory;
  std::optional<std::string> cpuset;
};

namespace {

using Status = ProcFiles::Status;
using Cgroup = LoadSampler::Cgroup;

std::string join(const std::string& dir, const std::string& name) {
  return dir.empty() ? name : dir + "/" + name;
}

// "/a/b" -> "a/b", "/" -> "". Fails on ".." (a path outside the cgroup
// namespace shows as "/../x"), which must not climb out of the root.
Parsed<std::string> relative_path(const std::string& path) {
  std::string rel;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/')
      ++i;
    const size_t end = std::min(path.find('/', i), path.size());
    if (end == i)
      break;
    const std::string part = path.substr(i, end - i);
    if (part == "..")
      return Parsed<std::string>::failure("cgroup path '" + path +
                                          "' lies outside the cgroup namespace");
    if (part != ".")
      rel = join(rel, part);
    i = end;
  }
  return Parsed<std::string>::success(rel);
}

// The first of `dirs` that holds `probe`; empty if none does, and an error
// when a file is there but cannot be read.
Parsed<std::optional<std::string>> first_dir_with(ProcFiles& files,
                                                  const std::vector<std::string>& dirs,
                                                  const std::string& probe) {
  using R = Parsed<std::optional<std::string>>;
  std::string text, error;
  for (const std::string& dir : dirs) {
    const Status st = files.fetch(join(dir, probe), text, error);
    if (st == Status::Ok)
      return R::success(dir);
    if (st == Status::Failed)
      return R::failure(error);
  }
  return R::success(std::nullopt);
}

// Where a cgroup's directory may be: at its path under the mount, or (in a
// container whose cgroup is mounted as the root of the tree while
// /proc/self/cgroup shows the host's path) the mount itself.
std::vector<std::string> candidate_dirs(const std::vector<std::string>& mounts,
                                        const std::string& rel) {
  std::vector<std::string> dirs;
  auto add = [&](const std::string& d) {
    if (std::find(dirs.begin(), dirs.end(), d) == dirs.end())
      dirs.push_back(d);
  };
  for (const std::string& m : mounts)
    add(join(m, rel));
  for (const std::string& m : mounts)
    add(m);
  return dirs;
}

// The v2 directory of `entry` holding `probe`, under the root (pure v2)
// or under "unified" (hybrid hosts).
Parsed<std::optional<std::string>> find_v2_dir(ProcFiles& files, const CgroupEntry& entry,
                                               const std::string& probe) {
  auto rel = relative_path(entry.path);
  if (!rel.ok)
    return Parsed<std::optional<std::string>>::failure(rel.error);
  return first_dir_with(files, candidate_dirs({"", "unified"}, rel.value), probe);
}

// A v1 controller's directory: its hierarchy is mounted under the
// comma-joined controller list ("cpu,cpuacct") or the controller's name.
Parsed<std::optional<std::string>> find_v1_dir(ProcFiles& files, const CgroupMembership& m,
                                               const std::string& controller,
                                               const std::string& probe) {
  using R = Parsed<std::optional<std::string>>;
  const CgroupEntry* e = m.v1(controller);
  if (!e)
    return R::success(std::nullopt);
  auto rel = relative_path(e->path);
  if (!rel.ok)
    return R::failure(rel.error);
  std::string list;
  for (const std::string& c : e->controllers)
    list += (list.empty() ? "" : ",") + c;
  std::vector<std::string> mounts{list};
  if (list != controller)
    mounts.push_back(controller);
  return first_dir_with(files, candidate_dirs(mounts, rel.value), probe);
}

// Finds the process's cgroup from the text of /proc/self/cgroup. cgroup v1
// when a v1 hierarchy holds cpu, cpuacct or memory; v2 otherwise.
Parsed<Cgroup> locate_cgroup(ProcFiles& files, std::string_view membership_text) {
  using R = Parsed<Cgroup>;
  auto m = parse_proc_cgroup(membership_text);
  if (!m.ok)
    return R::failure("self/cgroup: " + m.error);
  Cgroup cg;
  const bool v1 = m.value.v1("cpuacct") || m.value.v1("cpu") || m.value.v1("memory");
  if (v1) {
    cg.version = 1;
    const CgroupEntry* acct = m.value.v1("cpuacct");
    if (!acct)
      return R::failure("cgroup v1 without a cpuacct hierarchy: no CPU usage");
    cg.path = acct->path;
    auto usage = find_v1_dir(files, m.value, "cpuacct", "cpuacct.usage");
    if (!usage.ok)
      return R::failure(usage.error);
    if (!usage.value)
      return R::failure("cpuacct.usage of " + cg.path + " not found under the cgroup root");
    cg.usage = *usage.value;
    const std::pair<std::optional<std::string>*, std::pair<const char*, const char*>>
        optional_dirs[] = {
            {&cg.cpu, {"cpu", "cpu.cfs_quota_us"}},
            {&cg.memory, {"memory", "memory.usage_in_bytes"}},
            {&cg.cpuset, {"cpuset", "cpuset.effective_cpus"}},
        };
    for (const auto& [dir, what] : optional_dirs) {
      auto d = find_v1_dir(files, m.value, what.first, what.second);
      if (!d.ok)
        return R::failure(d.error);
      *dir = d.value;
    }
    return R::success(cg);
  }
  const CgroupEntry* e = m.value.v2();
  if (!e)
    return R::failure("self/cgroup has no v2 entry and no v1 cpu, cpuacct or memory entry");
  cg.path = e->path;
  auto dir = find_v2_dir(files, *e, "cpu.stat");
  if (!dir.ok)
    return R::failure(dir.error);
  if (!dir.value)
    return R::failure("cpu.stat of " + cg.path + " not found under the cgroup root");
  cg.usage = *dir.value;
  cg.cpu = cg.memory = cg.cpuset = *dir.value;
  return R::success(cg);
}

// Reads dir/name: Ok, or Missing when the file (and so the feature) is not
// there; Failed sets `reason`.
Status fetch_in(ProcFiles& files, const std::optional<std::string>& dir, const std::string& name,
                std::string& text, std::string& reason) {
  if (!dir)
    return Status::Missing;
  std::string error;
  const Status st = files.fetch(join(*dir, name), text, error);
  if (st == Status::Failed)
    reason = error;
  return st;
}

// A file that must be there: a missing one is a fault too.
bool fetch_required(ProcFiles& files, const std::string& dir, const std::string& name,
                    std::string& text, std::string& reason) {
  std::string error;
  if (files.fetch(join(dir, name), text, error) == Status::Ok)
    return true;
  reason = error;
  return false;
}

template <class T>
bool parsed(const Parsed<T>& p, const std::string& name, std::string& reason) {
  if (!p.ok)
    reason = name + ": " + p.error;
  return p.ok;
}

std::string format_cpus(double cpus) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", cpus);
  return buf;
}

std::string format_mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

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

bool read_limits(ProcFiles& files, const Cgroup& cg, uint64_t mem_total_bytes, CgroupLimits& limits,
                 std::string& reason) {
  std::string text;
  if (cg.version == 2) {
    Status st = fetch_in(files, cg.cpu, "cpu.max", text, reason);
    if (st == Status::Failed)
      return false;
    if (st == Status::Ok) {
      auto q = parse_cpu_max(text);
      if (!parsed(q, "cpu.max", reason))
        return false;
      if (q.value.quota_us)
        limits.quota_cpus =
            static_cast<double>(*q.value.quota_us) / static_cast<double>(q.value.period_us);
      limits.quota_file = "cpu.max";
    }
  } else {
    Status st = fetch_in(files, cg.cpu, "cpu.cfs_quota_us", text, reason);
    if (st == Status::Failed)
      return false;
    if (st == Status::Ok) {
      auto q = parse_cfs_quota(text);
      if (!parsed(q, "cpu.cfs_quota_us", reason))
        return false;
      if (q.value) {
        if (!fetch_required(files, *cg.cpu, "cpu.cfs_period_us", text, reason))
          return false;
        auto period = parse_cgroup_value(text);
        if (!parsed(period, "cpu.cfs_period_us", reason))
          return false;
        if (period.value == 0) {
          reason = "cpu.cfs_period_us: period is 0";
          return false;
        }
        limits.quota_cpus = static_cast<double>(*q.value) / static_cast<double>(period.value);
        limits.quota_file = "cpu.cfs_quota_us";
      }
    }
  }
  const char* cpuset_file = cg.version == 2 ? "cpuset.cpus.effective" : "cpuset.effective_cpus";
  Status st = fetch_in(files, cg.cpuset, cpuset_file, text, reason);
  if (st == Status::Failed)
    return false;
  if (st == Status::Ok) {
    auto list = parse_cpu_list(text);
    if (!parsed(list, cpuset_file, reason))
      return false;
    limits.cpuset_cpus = list.value.size();
  }
  const char* limit_file = cg.version == 2 ? "memory.max" : "memory.limit_in_bytes";
  st = fetch_in(files, cg.memory, limit_file, text, reason);
  if (st == Status::Failed)
    return false;
  if (st == Status::Ok) {
    auto limit = parse_cgroup_limit(text);
    if (!parsed(limit, limit_file, reason))
      return false;
    if (limit.value && *limit.value < mem_total_bytes) {
      limits.memory_bytes = *limit.value;
      limits.memory_file = limit_file;
    }
  }
  return true;
}

uint64_t mem_total_bytes(const MemInfo& m) {
  return m.total_kb > UINT64_MAX / 1024 ? UINT64_MAX : m.total_kb * 1024;
}

double system_mem_percent(const MemInfo& m) {
  return 100.0 * static_cast<double>(m.total_kb - m.available_kb) / static_cast<double>(m.total_kb);
}

bool read_meminfo(ProcFiles& proc, MemInfo& mem, std::string& reason) {
  std::string text;
  if (!proc.read("meminfo", text, reason))
    return false;
  auto m = parse_meminfo(text);
  if (!parsed(m, "meminfo", reason))
    return false;
  mem = m.value;
  return true;
}

// The auto rule, given the cgroup (or why there is none).
ScopeChoice choose_auto(ProcFiles& proc, ProcFiles& files, const Cgroup* cg,
                        const std::string& why_not) {
  if (!cg)
    return {LoadScope::System, "no cgroup: " + why_not};
  MemInfo mem;
  std::string reason;
  CgroupLimits limits;
  if (!read_meminfo(proc, mem, reason) ||
      !read_limits(files, *cg, mem_total_bytes(mem), limits, reason))
    return {LoadScope::System, "cgroup " + cg->path + " unreadable: " + reason};
  if (limits.quota_cpus)
    return {LoadScope::Cgroup, "cgroup " + cg->path + " has a CPU quota of " +
                                   format_cpus(*limits.quota_cpus) + " CPUs"};
  if (limits.memory_bytes)
    return {LoadScope::Cgroup,
            "cgroup " + cg->path + " has a memory limit of " + format_mib(*limits.memory_bytes)};
  return {LoadScope::System, "cgroup " + cg->path + " has no CPU quota or memory limit"};
}

// The cgroup from /proc/self/cgroup's text, or null with `why_not` set.
std::unique_ptr<Cgroup> find_cgroup(ProcFiles& files, const std::string* membership,
                                    const std::string& read_error, std::string& why_not) {
  if (!membership) {
    why_not = read_error;
    return nullptr;
  }
  auto cg = locate_cgroup(files, *membership);
  if (!cg.ok) {
    why_not = cg.error;
    return nullptr;
  }
  return std::make_unique<Cgroup>(std::move(cg.value));
}

}  // namespace

ScopeChoice resolve_scope(LoadScope requested, ProcFiles& proc, ProcFiles& cgroup) {
  if (requested != LoadScope::Auto)
    return {requested, "set explicitly"};
  std::string text, error, why_not;
  const bool ok = proc.read("self/cgroup", text, error);
  auto cg = find_cgroup(cgroup, ok ? &text : nullptr, "self/cgroup: " + error, why_not);
  return choose_auto(proc, cgroup, cg.get(), why_not);
}

ScopeChoice resolve_scope(LoadScope requested, const std::string& proc_root,
                          const std::string& cgroup_root) {
  DirProcFiles proc(proc_root), cgroup(cgroup_root);
  return resolve_scope(requested, proc, cgroup);
}

// ---- the sampler ----

LoadSampler::LoadSampler(LoadScope scope, ProcFiles& proc, ProcFiles& cgroup, HostInfo host)
    : requested_(scope), proc_(proc), cgroup_files_(cgroup), host_(std::move(host)) {
  choice_ = {scope == LoadScope::Auto ? LoadScope::System : scope,
             scope == LoadScope::Auto ? "not resolved yet" : "set explicitly"};
}

LoadSampler::~LoadSampler() = default;

// Reads /proc/self/cgroup. When it changed (the process moved), or when
// there is no history to keep, the cgroup is located again and auto picks
// its scope again; a change of either starts a new history.
void LoadSampler::refresh_cgroup() {
  std::string text, error;
  const bool ok = proc_.read("self/cgroup", text, error);
  // A leading NUL cannot start the kernel's text: it marks a read error.
  const std::string key = ok ? text : std::string(1, '\0') + error;
  const bool moved = membership_ && *membership_ != key;
  if (!moved && membership_ && !history_.empty())
    return;
  membership_ = key;
  cgroup_ =
      find_cgroup(cgroup_files_, ok ? &text : nullptr, "self/cgroup: " + error, cgroup_error_);
  ScopeChoice choice = choice_;
  if (requested_ == LoadScope::Auto)
    choice = choose_auto(proc_, cgroup_files_, cgroup_.get(), cgroup_error_);
  if (moved || choice.scope != choice_.scope)
    history_.clear();
  choice_ = std::move(choice);
}

bool LoadSampler::read_system(Reading& now, double& mem, std::string& reason) {
  MemInfo m;
  if (!read_meminfo(proc_, m, reason))
    return false;
  mem = system_mem_percent(m);
  std::string text;
  if (!proc_.read("stat", text, reason))
    return false;
  if (host_.allowed_cpus.empty()) {
    auto cpu = parse_proc_stat(text);
    if (!parsed(cpu, "stat", reason))
      return false;
    now.busy = cpu.value.busy();
    now.total = cpu.value.total();
    detail_ = "all " + std::to_string(host_.cpu_count) + " CPUs; host memory";
    return true;
  }
  // Pinned: only the lines of the CPUs this process may run on.
  auto lines = parse_proc_stat_cpus(text);
  if (!parsed(lines, "stat", reason))
    return false;
  std::vector<unsigned> seen;
  now.busy = now.total = 0;
  for (const CpuLine& line : lines.value) {
    if (!std::binary_search(host_.allowed_cpus.begin(), host_.allowed_cpus.end(), line.id))
      continue;
    // Each line's sum fits; the sum of many might not.
    if (now.total + line.times.total() < now.total) {
      reason = "stat: allowed CPUs' counters overflow their sum";
      return false;
    }
    now.busy += line.times.busy();
    now.total += line.times.total();
    seen.push_back(line.id);
  }
  if (seen.empty()) {
    reason = "stat: no line for any allowed CPU";
    return false;
  }
  std::sort(seen.begin(), seen.end());
  // A CPU going offline drops its line: the sums jump, so start again.
  if (seen != cpus_seen_) {
    if (!cpus_seen_.empty())
      history_.clear();
    cpus_seen_ = seen;
  }
  detail_ = std::to_string(seen.size()) + " of " + std::to_string(host_.cpu_count) +
            " CPUs (affinity); host memory";
  return true;
}

bool LoadSampler::read_process(Reading& now, double& mem, std::string& reason) {
  MemInfo m;
  if (!read_meminfo(proc_, m, reason))
    return false;
  std::string text;
  if (!proc_.read("self/stat", text, reason))
    return false;
  auto stat = parse_pid_stat(text);
  if (!parsed(stat, "self/stat", reason))
    return false;
  if (!proc_.read("self/statm", text, reason))
    return false;
  auto statm = parse_statm(text);
  if (!parsed(statm, "self/statm", reason))
    return false;
  now.busy = stat.value.utime + stat.value.stime;
  const double rss_kb = static_cast<double>(statm.value.resident_pages) *
                        static_cast<double>(host_.page_size) / 1024.0;
  mem = 100.0 * rss_kb / static_cast<double>(m.total_kb);
  detail_ = "this process, of " + std::to_string(host_.allowed_cpu_count()) + " CPUs and MemTotal";
  return true;
}

bool LoadSampler::read_cgroup(Reading& now, double& cpus, double& mem, std::string& reason) {
  if (!cgroup_) {
    reason = cgroup_error_;
    return false;
  }
  const Cgroup& cg = *cgroup_;
  MemInfo m;
  if (!read_meminfo(proc_, m, reason))
    return false;
  CgroupLimits limits;
  if (!read_limits(cgroup_files_, cg, mem_total_bytes(m), limits, reason))
    return false;
  cpus = limits.cpus(host_);

  std::string text;
  if (cg.version == 2) {
    if (!fetch_required(cgroup_files_, cg.usage, "cpu.stat", text, reason))
      return false;
    auto stat = parse_flat_keyed(text);
    if (!parsed(stat, "cpu.stat", reason))
      return false;
    const auto usage = stat.value.get("usage_usec");
    if (!usage) {
      reason = "cpu.stat: usage_usec missing";
      return false;
    }
    if (*usage > UINT64_MAX / 1000) {
      reason = "cpu.stat: usage_usec too large";
      return false;
    }
    now.busy = *usage * 1000;
    now.nr_throttled = stat.value.get("nr_throttled");
  } else {
    if (!fetch_required(cgroup_files_, cg.usage, "cpuacct.usage", text, reason))
      return false;
    auto usage = parse_cgroup_value(text);
    if (!parsed(usage, "cpuacct.usage", reason))
      return false;
    now.busy = usage.value;
    const Status st = fetch_in(cgroup_files_, cg.cpu, "cpu.stat", text, reason);
    if (st == Status::Failed)
      return false;
    if (st == Status::Ok) {
      auto stat = parse_flat_keyed(text);
      if (!parsed(stat, "cpu.stat", reason))
        return false;
      now.nr_throttled = stat.value.get("nr_throttled");
    }
  }

  // Memory in use is what cannot be reclaimed at once: the page cache not
  // recently used (inactive_file) goes first under the limit.
  const char* usage_file = cg.version == 2 ? "memory.current" : "memory.usage_in_bytes";
  const Status st = fetch_in(cgroup_files_, cg.memory, usage_file, text, reason);
  if (st == Status::Failed)
    return false;
  std::string mem_detail;
  if (st == Status::Ok) {
    auto usage = parse_cgroup_value(text);
    if (!parsed(usage, usage_file, reason))
      return false;
    if (!fetch_required(cgroup_files_, *cg.memory, "memory.stat", text, reason))
      return false;
    auto stat = parse_flat_keyed(text);
    if (!parsed(stat, "memory.stat", reason))
      return false;
    const char* inactive_key = cg.version == 2 ? "inactive_file" : "total_inactive_file";
    const auto inactive = stat.value.get(inactive_key);
    if (!inactive) {
      reason = std::string("memory.stat: ") + inactive_key + " missing";
      return false;
    }
    const uint64_t used = usage.value - std::min(usage.value, *inactive);
    const uint64_t limit = limits.memory_bytes.value_or(mem_total_bytes(m));
    mem = 100.0 * static_cast<double>(used) / static_cast<double>(limit);
    mem_detail = limits.memory_bytes
                     ? "memory of " + format_mib(limit) + " (" + limits.memory_file + ")"
                     : "memory of MemTotal (no limit)";
  } else {
    mem = system_mem_percent(m);
    mem_detail = "host memory (no memory controller)";
  }
  detail_ = "cgroup v" + std::to_string(cg.version) + " " + cg.path + ": CPU of " +
            format_cpus(cpus) + " CPUs (" + limits.cpus_from(host_) + "), " + mem_detail;
  return true;
}

bool LoadSampler::read_pressure(double& cpu, double& mem, std::string& reason) {
  // The cgroup's own PSI files when it has them (v2), else the system's.
  // At the root of the hierarchy the two are the same figures.
  std::optional<std::string> dir;
  std::string text, error;
  if (proc_.read("self/cgroup", text, error)) {
    auto m = parse_proc_cgroup(text);
    if (m.ok && m.value.v2()) {
      auto d = find_v2_dir(cgroup_files_, *m.value.v2(), "cpu.pressure");
      if (!d.ok) {
        reason = d.error;
        return false;
      }
      if (d.value &&
          cgroup_files_.fetch(join(*d.value, "memory.pressure"), text, error) == Status::Ok)
        dir = d.value;
    }
  }
  const std::pair<const char*, double*> files[] = {{"cpu", &cpu}, {"memory", &mem}};
  for (const auto& [resource, out] : files) {
    const std::string name =
        dir ? join(*dir, std::string(resource) + ".pressure") : std::string("pressure/") + resource;
    ProcFiles& from = dir ? cgroup_files_ : proc_;
    if (!from.read(name, text, reason))
      return false;
    auto psi = parse_psi(text);
    if (!parsed(psi, name, reason))
      return false;
    *out = psi.value.some.avg10;
  }
  detail_ = dir ? "PSI some avg10 of cgroup " + (dir->empty() ? std::string("/") : *dir)
                : std::string("PSI some avg10 of the system");
  return true;
}

bool LoadSampler::span_is_enough(const Reading& from, const Reading& to) const {
  switch (choice_.scope) {
    case LoadScope::System:
      return to.total - from.total >= kWindowTicks;
    case LoadScope::Process:
      // wall seconds x USER_HZ x CPUs: the ticks the CPUs could have used.
      return static_cast<double>(to.when_ns - from.when_ns) *
                 static_cast<double>(host_.clock_ticks_per_second) *
                 static_cast<double>(host_.allowed_cpu_count()) >=
             static_cast<double>(kWindowTicks) * 1e9;
    default:
      return true;  // fine-grained counters: the previous reading is enough
  }
}

SampleResult LoadSampler::poll(int64_t now_ns) {
  SampleResult result;
  if (requested_ == LoadScope::Auto || requested_ == LoadScope::Cgroup)
    refresh_cgroup();
  result.source.choice = choice_;
  auto fail = [&](std::string why) {
    history_.clear();
    result.reason = std::move(why);
    return result;
  };

  Reading now;
  now.when_ns = now_ns;
  double mem = 0.0, cpus = 0.0;
  std::string reason;
  switch (choice_.scope) {
    case LoadScope::Pressure: {
      double cpu = 0.0;
      if (!read_pressure(cpu, mem, reason))
        return fail(reason);
      result.source.detail = detail_;
      result.sample = LoadSample{std::clamp(cpu, 0.0, 100.0), std::clamp(mem, 0.0, 100.0)};
      return result;
    }
    case LoadScope::Process:
      if (!read_process(now, mem, reason))
        return fail(reason);
      break;
    case LoadScope::Cgroup:
      if (!read_cgroup(now, cpus, mem, reason))
        return fail(reason);
      break;
    default:
      if (!read_system(now, mem, reason))
        return fail(reason);
      break;
  }
  result.source.detail = detail_;
  result.source.nr_throttled = now.nr_throttled;

  if (history_.empty()) {
    history_.push_back(now);
    result.reason = "first reading: CPU load needs two";
    result.warming_up = true;
    return result;
  }
  const Reading& last = history_.back();
  if (now.busy < last.busy || now.total < last.total || now.when_ns <= last.when_ns ||
      (now.nr_throttled && last.nr_throttled && *now.nr_throttled < *last.nr_throttled)) {
    history_.assign(1, now);
    result.reason = "counters went backwards";
    return result;
  }
  if (now.nr_throttled && last.nr_throttled)
    result.source.nr_throttled_delta = *now.nr_throttled - *last.nr_throttled;
  history_.push_back(now);
  if (history_.size() > kMaxHistory)
    history_.pop_front();

  // The shortest span ending now that is long enough, else the longest.
  // Readings before its start can never be needed again: spans only grow.
  size_t from = 0;
  for (size_t i = history_.size() - 1; i-- > 0;) {
    if (span_is_enough(history_[i], now)) {
      from = i;
      break;
    }
  }
  history_.erase(history_.begin(), history_.begin() + static_cast<std::ptrdiff_t>(from));
  const Reading& start = history_.front();

  double cpu = 0.0;
  const uint64_t busy = now.busy - start.busy;
  const double wall_ns = static_cast<double>(now.when_ns - start.when_ns);
  switch (choice_.scope) {
    case LoadScope::System: {
      const uint64_t total = now.total - start.total;
      if (total == 0) {
        result.reason = "no CPU ticks elapsed between readings";
        return result;
      }
      cpu = 100.0 * static_cast<double>(busy) / static_cast<double>(total);
      break;
    }
    case LoadScope::Process:
      cpu = 100.0 * static_cast<double>(busy) * 1e9 /
            (static_cast<double>(host_.clock_ticks_per_second) * wall_ns *
             static_cast<double>(host_.allowed_cpu_count()));
      break;
    default:
      cpu = 100.0 * static_cast<double>(busy) / (wall_ns * cpus);
      break;
  }
  result.sample = LoadSample{std::clamp(cpu, 0.0, 100.0), std::clamp(mem, 0.0, 100.0)};
  return result;
}

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
    latest_.source = std::move(r.source);
    latest_.taken_ns = now;
    ++latest_.sequence;
    ++reads_;
    next_ns = now + shortest_interval_locked();
  }
}

}  // namespace aq
