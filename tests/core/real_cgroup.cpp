// SPDX-License-Identifier: LGPL-2.1-or-later
#include "real_cgroup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "load_sampler.h"
#include "proc_parse.h"

// gcov's counter dump, linked in only by a coverage build (-Db_coverage).
extern "C" void __gcov_dump() __attribute__((weak));

namespace realcg {
namespace {

bool write_file(const std::string& path, const std::string& text, std::string& error) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  bool ok = fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  if (!ok)
    error = path + ": " + std::strerror(errno);
  if (fd >= 0)
    ok = (::close(fd) == 0) && ok;
  return ok;
}

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string parent_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
}

}  // namespace

double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

TestCgroup::TestCgroup() {
  if (geteuid() != 0) {
    skip_ = "not root: making a cgroup needs root";
    return;
  }
  aq::DirProcFiles proc(aq::kDefaultProcRoot);
  std::string text, error;
  if (!proc.read("self/cgroup", text, error)) {
    skip_ = error;
    return;
  }
  const auto self = aq::parse_proc_cgroup(text);
  if (!self.ok) {
    skip_ = "/proc/self/cgroup: " + self.error;
    return;
  }
  const std::string name = "aq-test-" + std::to_string(getpid());
  if (exists(std::string(aq::kDefaultCgroupRoot) + "/cgroup.controllers"))
    setup_v2(self.value, name);
  else
    setup_v1(self.value, name);
}

// A cgroup whose last process has just exited may stay busy for a moment.
TestCgroup::~TestCgroup() {
  for (auto it = made_.rbegin(); it != made_.rend(); ++it) {
    for (int i = 0; i < 100 && ::rmdir(it->c_str()) != 0 && errno == EBUSY; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (exists(*it))
      std::fprintf(stderr, "could not remove %s: %s\n", it->c_str(), std::strerror(errno));
  }
}

// Makes `dir` (once) and records it for removal.
bool TestCgroup::make(const std::string& dir, std::string& error) {
  if (std::find(made_.begin(), made_.end(), dir) != made_.end())
    return true;
  if (::mkdir(dir.c_str(), 0755) != 0) {
    error = "mkdir " + dir + ": " + std::strerror(errno);
    return false;
  }
  made_.push_back(dir);
  return true;
}

// cgroup v1 (or hybrid): a new cgroup under the process's own in the cpu,
// cpuacct and memory hierarchies.
void TestCgroup::setup_v1(const aq::CgroupMembership& self, const std::string& name) {
  std::string error;
  for (const char* controller : {"cpu", "cpuacct", "memory"}) {
    const aq::CgroupEntry* e = self.v1(controller);
    if (!e) {
      skip_ = std::string("no cgroup v1 ") + controller + " hierarchy for this process";
      return;
    }
    std::string list;
    for (const std::string& c : e->controllers)
      list += (list.empty() ? "" : ",") + c;
    std::string mount = std::string(aq::kDefaultCgroupRoot) + "/" + list;
    if (!exists(mount))
      mount = std::string(aq::kDefaultCgroupRoot) + "/" + controller;
    const std::string dir = mount + (e->path == "/" ? "" : e->path) + "/" + name;
    if (!make(dir, error)) {
      skip_ = error;
      return;
    }
    if (std::find(procs_.begin(), procs_.end(), dir + "/cgroup.procs") == procs_.end())
      procs_.push_back(dir + "/cgroup.procs");
    bool ok = true;
    if (std::string(controller) == "cpu")
      ok = write_file(dir + "/cpu.cfs_period_us", "100000", error) &&
           write_file(dir + "/cpu.cfs_quota_us", "20000", error);
    if (std::string(controller) == "memory")
      ok = write_file(dir + "/memory.limit_in_bytes", std::to_string(kMemoryLimit), error);
    if (!ok) {
      skip_ = error;
      return;
    }
  }
}

// cgroup v2: a sibling of the process's cgroup (a cgroup with processes
// cannot enable controllers for children), or a child of the root.
void TestCgroup::setup_v2(const aq::CgroupMembership& self, const std::string& name) {
  const aq::CgroupEntry* e = self.v2();
  if (!e) {
    skip_ = "no cgroup v2 entry for this process";
    return;
  }
  const std::string parent =
      std::string(aq::kDefaultCgroupRoot) + (e->path == "/" ? "" : parent_of(e->path));
  std::string error;
  const std::string dir = parent + "/" + name;
  if (!make(dir, error)) {
    skip_ = error;
    return;
  }
  if (!exists(dir + "/cpu.max") || !exists(dir + "/memory.max")) {
    std::string ignored;
    write_file(parent + "/cgroup.subtree_control", "+cpu +memory", ignored);
  }
  if (!exists(dir + "/cpu.max") || !exists(dir + "/memory.max")) {
    skip_ = "the cpu and memory controllers are not enabled for " + dir;
    return;
  }
  if (!write_file(dir + "/cpu.max", "20000 100000", error) ||
      !write_file(dir + "/memory.max", std::to_string(kMemoryLimit), error)) {
    skip_ = error;
    return;
  }
  procs_.push_back(dir + "/cgroup.procs");
}

bool TestCgroup::run_loaded(const std::function<bool(FILE*)>& body, std::string& report) const {
  int fds[2];
  if (::pipe(fds) != 0) {
    report = std::string("pipe: ") + std::strerror(errno);
    return false;
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    report = std::string("fork: ") + std::strerror(errno);
    return false;
  }
  if (pid == 0) {
    ::close(fds[0]);
    FILE* out = fdopen(fds[1], "w");
    std::string error;
    for (const std::string& procs : procs_) {
      if (!write_file(procs, std::to_string(getpid()), error)) {
        std::fprintf(out, "error %s\n", error.c_str());
        std::fclose(out);
        _exit(1);
      }
    }
    std::atomic<bool> stop{false};
    std::vector<std::thread> burners;
    for (int i = 0; i < 2; ++i)
      burners.emplace_back([&stop] {
        volatile uint64_t sink = 0;
        while (!stop.load(std::memory_order_relaxed))
          sink = sink + 1;
      });
    std::vector<char> memory(40u << 20);
    for (size_t i = 0; i < memory.size(); i += 4096)
      memory[i] = 1;
    const bool ok = body(out);
    stop = true;
    for (std::thread& t : burners)
      t.join();
    std::fclose(out);
    // No exit handlers: they belong to the parent (Check's, GStreamer's).
    // A coverage build still writes what the child ran.
    if (__gcov_dump)
      __gcov_dump();
    _exit(ok ? 0 : 1);
  }
  ::close(fds[1]);
  report.clear();
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
    report.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid)
    return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace realcg
