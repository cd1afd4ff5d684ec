#include "proc_files.h"

#include <fcntl.h>
#include <sched.h>
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

using Status = ProcFiles::Status;

std::string join_path(const std::string& dir, const std::string& name) {
  return dir.empty() ? name : dir + "/" + name;
}

Status fetch_in(ProcFiles& files, const std::optional<std::string>& dir, const std::string& name,
                std::string& text, std::string& reason) {
  if (!dir)
    return Status::Missing;
  std::string error;
  const Status st = files.fetch(join_path(*dir, name), text, error);
  if (st == Status::Failed)
    reason = error;
  return st;
}

bool fetch_required(ProcFiles& files, const std::string& dir, const std::string& name,
                    std::string& text, std::string& reason) {
  std::string error;
  if (files.fetch(join_path(dir, name), text, error) == Status::Ok)
    return true;
  reason = error;
  return false;
}

}  // namespace aq
