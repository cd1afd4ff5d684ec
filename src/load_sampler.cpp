#include "load_sampler.h"

#include <algorithm>
#include <cstdio>

#include "cgroup.h"

namespace aq {

namespace {

using Status = ProcFiles::Status;

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

struct LoadSampler::Scope {
  LoadScope scope;
  const char* name;
  // Reads /proc/self/cgroup before each reading, to follow a move (and for
  // auto, to pick its scope again).
  bool follows_cgroup;
  // Reads the files into `now`; null for auto, which reads as the scope it
  // picked.
  bool (LoadSampler::*read)(Reading& now, std::string& reason);
  // Whether readings from..to span enough to measure CPU; null: the
  // previous reading is enough.
  bool (*span_is_enough)(const HostInfo& host, const Reading& from, const Reading& to);
  // CPU % over start..now, or false with `reason` set; null: the reading
  // holds the figure itself, with no history.
  bool (*cpu_percent)(const HostInfo& host, const Reading& start, const Reading& now, double& cpu,
                      std::string& reason);
};

// Each scope in one row: adding a scope is its enum value, its row and its
// read function.
const LoadSampler::Scope LoadSampler::kScopes[] = {
    {LoadScope::System, "system", false, &LoadSampler::read_system,
     [](const HostInfo&, const Reading& from, const Reading& to) {
       return to.total - from.total >= kWindowTicks;
     },
     [](const HostInfo&, const Reading& start, const Reading& now, double& cpu,
        std::string& reason) {
       const uint64_t total = now.total - start.total;
       if (total == 0) {
         reason = "no CPU ticks elapsed between readings";
         return false;
       }
       cpu = 100.0 * static_cast<double>(now.busy - start.busy) / static_cast<double>(total);
       return true;
     }},
    {LoadScope::Process, "process", false, &LoadSampler::read_process,
     // wall seconds x USER_HZ x CPUs: the ticks the CPUs could have used.
     [](const HostInfo& host, const Reading& from, const Reading& to) {
       return static_cast<double>(to.when_ns - from.when_ns) *
                  static_cast<double>(host.clock_ticks_per_second) *
                  static_cast<double>(host.allowed_cpu_count()) >=
              static_cast<double>(kWindowTicks) * 1e9;
     },
     [](const HostInfo& host, const Reading& start, const Reading& now, double& cpu, std::string&) {
       cpu = 100.0 * static_cast<double>(now.busy - start.busy) * 1e9 /
             (static_cast<double>(host.clock_ticks_per_second) *
              static_cast<double>(now.when_ns - start.when_ns) *
              static_cast<double>(host.allowed_cpu_count()));
       return true;
     }},
    // Fine-grained counters (µs, ns): the previous reading is enough.
    {LoadScope::Cgroup, "cgroup", true, &LoadSampler::read_cgroup, nullptr,
     [](const HostInfo&, const Reading& start, const Reading& now, double& cpu, std::string&) {
       cpu = 100.0 * static_cast<double>(now.busy - start.busy) /
             (static_cast<double>(now.when_ns - start.when_ns) * now.cpus);
       return true;
     }},
    // PSI averages need no delta.
    {LoadScope::Pressure, "pressure", false, &LoadSampler::read_pressure, nullptr, nullptr},
    {LoadScope::Auto, "auto", true, nullptr, nullptr, nullptr},
};

const LoadSampler::Scope& LoadSampler::scope_of(LoadScope scope) {
  for (const Scope& s : kScopes)
    if (s.scope == scope)
      return s;
  return kScopes[0];  // not reached: every LoadScope has a row
}

const char* scope_name(LoadScope scope) {
  for (const LoadSampler::Scope& s : LoadSampler::kScopes)
    if (s.scope == scope)
      return s.name;
  return "?";
}

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

bool LoadSampler::read_system(Reading& now, std::string& reason) {
  MemInfo m;
  if (!read_meminfo(proc_, m, reason))
    return false;
  now.mem_percent = system_mem_percent(m);
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

bool LoadSampler::read_process(Reading& now, std::string& reason) {
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
  now.mem_percent = 100.0 * rss_kb / static_cast<double>(m.total_kb);
  detail_ = "this process, of " + std::to_string(host_.allowed_cpu_count()) + " CPUs and MemTotal";
  return true;
}

bool LoadSampler::read_cgroup(Reading& now, std::string& reason) {
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
  now.cpus = limits.cpus(host_);

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
    now.mem_percent = 100.0 * static_cast<double>(used) / static_cast<double>(limit);
    mem_detail = limits.memory_bytes
                     ? "memory of " + format_mib(limit) + " (" + limits.memory_file + ")"
                     : "memory of MemTotal (no limit)";
  } else {
    now.mem_percent = system_mem_percent(m);
    mem_detail = "host memory (no memory controller)";
  }
  detail_ = "cgroup v" + std::to_string(cg.version) + " " + cg.path + ": CPU of " +
            format_cpus(now.cpus) + " CPUs (" + limits.cpus_from(host_) + "), " + mem_detail;
  return true;
}

bool LoadSampler::read_pressure(Reading& now, std::string& reason) {
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
          cgroup_files_.fetch(join_path(*d.value, "memory.pressure"), text, error) == Status::Ok)
        dir = d.value;
    }
  }
  const std::pair<const char*, double*> files[] = {{"cpu", &now.cpu_percent},
                                                   {"memory", &now.mem_percent}};
  for (const auto& [resource, out] : files) {
    const std::string name = dir ? join_path(*dir, std::string(resource) + ".pressure")
                                 : std::string("pressure/") + resource;
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

SampleResult LoadSampler::poll(int64_t now_ns) {
  SampleResult result;
  if (scope_of(requested_).follows_cgroup)
    refresh_cgroup();
  result.source.choice = choice_;
  auto fail = [&](std::string why) {
    history_.clear();
    result.reason = std::move(why);
    return result;
  };

  const Scope& scope = scope_of(choice_.scope);
  Reading now;
  now.when_ns = now_ns;
  std::string reason;
  if (!(this->*scope.read)(now, reason))
    return fail(reason);
  result.source.detail = detail_;
  result.source.nr_throttled = now.nr_throttled;
  const double mem = std::clamp(now.mem_percent, 0.0, 100.0);
  if (!scope.cpu_percent) {
    result.sample = LoadSample{std::clamp(now.cpu_percent, 0.0, 100.0), mem};
    return result;
  }

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
    if (!scope.span_is_enough || scope.span_is_enough(host_, history_[i], now)) {
      from = i;
      break;
    }
  }
  history_.erase(history_.begin(), history_.begin() + static_cast<std::ptrdiff_t>(from));

  double cpu = 0.0;
  if (!scope.cpu_percent(host_, history_.front(), now, cpu, result.reason))
    return result;
  result.sample = LoadSample{std::clamp(cpu, 0.0, 100.0), mem};
  return result;
}

}  // namespace aq
