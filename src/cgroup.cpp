#include "cgroup.h"

#include <algorithm>
#include <vector>

namespace aq {

namespace {

using Status = ProcFiles::Status;

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
      rel = join_path(rel, part);
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
    const Status st = files.fetch(join_path(dir, probe), text, error);
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
    add(join_path(m, rel));
  for (const std::string& m : mounts)
    add(m);
  return dirs;
}

}  // namespace

Parsed<std::optional<std::string>> find_v2_dir(ProcFiles& files, const CgroupEntry& entry,
                                               const std::string& probe) {
  auto rel = relative_path(entry.path);
  if (!rel.ok)
    return Parsed<std::optional<std::string>>::failure(rel.error);
  return first_dir_with(files, candidate_dirs({"", "unified"}, rel.value), probe);
}

namespace {

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

}  // namespace

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

}  // namespace aq
