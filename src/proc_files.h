// Where the load sampler's files come from, the host facts it needs, and the
// helpers every reader of those files shares.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "proc_parse.h"

namespace aq {

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

int64_t monotonic_now_ns();

// dir/name; the dir "" is the root itself.
std::string join_path(const std::string& dir, const std::string& name);

// Reads dir/name: Ok, or Missing when the file (and so the feature) is not
// there; Failed sets `reason`.
ProcFiles::Status fetch_in(ProcFiles& files, const std::optional<std::string>& dir,
                           const std::string& name, std::string& text, std::string& reason);

// A file that must be there: a missing one is a fault too.
bool fetch_required(ProcFiles& files, const std::string& dir, const std::string& name,
                    std::string& text, std::string& reason);

// False with `reason` set to "name: why" when `p` holds no value.
template <class T>
bool parsed(const Parsed<T>& p, const std::string& name, std::string& reason) {
  if (!p.ok)
    reason = name + ": " + p.error;
  return p.ok;
}

}  // namespace aq
