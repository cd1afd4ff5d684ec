// The load sampler against a real cgroup: a child process moves itself into
// a new cgroup held to 20 % of one CPU and 400 MiB, burns CPU and touches
// 40 MiB, and a sampler in cgroup scope inside it must read the CPU as
// saturated against the quota and the memory against the limit. The
// sampler reads "self", so it runs in the child.
//
// Needs root and a writable cgroup filesystem (v1, hybrid or v2); otherwise
// it exits 77, which meson reports as skipped, and prints why. The cgroups
// it makes are removed at the end.
// SPDX-License-Identifier: LGPL-2.1-or-later

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "load_sampler.h"
#include "core_test.h"

namespace {

constexpr char kCgroupRoot[] = "/sys/fs/cgroup";
constexpr uint64_t kMemoryLimit = 400ull << 20;

// The cgroups made for the test, and the files that take its pid.
struct Setup {
  std::vector<std::string> made;   // created directories, removed at the end
  std::vector<std::string> procs;  // cgroup.procs files to join
  std::string skip;                // why the test cannot run
};
Setup g_setup;

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

// Makes `dir` (once) and records it for removal.
bool make(const std::string& dir, std::string& error) {
  for (const std::string& d : g_setup.made)
    if (d == dir)
      return true;
  if (::mkdir(dir.c_str(), 0755) != 0) {
    error = "mkdir " + dir + ": " + std::strerror(errno);
    return false;
  }
  g_setup.made.push_back(dir);
  return true;
}

std::string parent_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
}

// cgroup v1 (or hybrid): a new cgroup under the process's own in the cpu,
// cpuacct and memory hierarchies.
void setup_v1(const aq::CgroupMembership& m, const std::string& name) {
  std::string error;
  for (const char* controller : {"cpu", "cpuacct", "memory"}) {
    const aq::CgroupEntry* e = m.v1(controller);
    if (!e) {
      g_setup.skip = std::string("no cgroup v1 ") + controller + " hierarchy for this process";
      return;
    }
    std::string list;
    for (const std::string& c : e->controllers)
      list += (list.empty() ? "" : ",") + c;
    std::string mount = std::string(kCgroupRoot) + "/" + list;
    if (!exists(mount))
      mount = std::string(kCgroupRoot) + "/" + controller;
    const std::string dir = mount + (e->path == "/" ? "" : e->path) + "/" + name;
    if (!make(dir, error)) {
      g_setup.skip = error;
      return;
    }
    if (std::find(g_setup.procs.begin(), g_setup.procs.end(), dir + "/cgroup.procs") ==
        g_setup.procs.end())
      g_setup.procs.push_back(dir + "/cgroup.procs");
    bool ok = true;
    if (std::string(controller) == "cpu")
      ok = write_file(dir + "/cpu.cfs_period_us", "100000", error) &&
           write_file(dir + "/cpu.cfs_quota_us", "20000", error);
    if (std::string(controller) == "memory")
      ok = write_file(dir + "/memory.limit_in_bytes", std::to_string(kMemoryLimit), error);
    if (!ok) {
      g_setup.skip = error;
      return;
    }
  }
}

// cgroup v2: a sibling of the process's cgroup (a cgroup with processes
// cannot enable controllers for children), or a child of the root.
void setup_v2(const aq::CgroupMembership& m, const std::string& name) {
  const aq::CgroupEntry* e = m.v2();
  if (!e) {
    g_setup.skip = "no cgroup v2 entry for this process";
    return;
  }
  const std::string parent = std::string(kCgroupRoot) + (e->path == "/" ? "" : parent_of(e->path));
  std::string error;
  const std::string dir = parent + "/" + name;
  if (!make(dir, error)) {
    g_setup.skip = error;
    return;
  }
  if (!exists(dir + "/cpu.max") || !exists(dir + "/memory.max")) {
    std::string ignored;
    write_file(parent + "/cgroup.subtree_control", "+cpu +memory", ignored);
  }
  if (!exists(dir + "/cpu.max") || !exists(dir + "/memory.max")) {
    g_setup.skip = "the cpu and memory controllers are not enabled for " + dir;
    return;
  }
  if (!write_file(dir + "/cpu.max", "20000 100000", error) ||
      !write_file(dir + "/memory.max", std::to_string(kMemoryLimit), error)) {
    g_setup.skip = error;
    return;
  }
  g_setup.procs.push_back(dir + "/cgroup.procs");
}

void setup() {
  if (geteuid() != 0) {
    g_setup.skip = "not root: making a cgroup needs root";
    return;
  }
  std::string text;
  if (!aqtest::read_file("/proc/self/cgroup", text)) {
    g_setup.skip = "no /proc/self/cgroup";
    return;
  }
  const auto m = aq::parse_proc_cgroup(text);
  if (!m.ok) {
    g_setup.skip = "/proc/self/cgroup: " + m.error;
    return;
  }
  const std::string name = "aq-test-" + std::to_string(getpid());
  if (exists(std::string(kCgroupRoot) + "/cgroup.controllers"))
    setup_v2(m.value, name);
  else
    setup_v1(m.value, name);
}

// Removes the test's cgroups, deepest first; a cgroup whose last process
// has just exited may stay busy for a moment.
void cleanup() {
  for (auto it = g_setup.made.rbegin(); it != g_setup.made.rend(); ++it) {
    for (int i = 0; i < 100 && ::rmdir(it->c_str()) != 0 && errno == EBUSY; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (exists(*it))
      std::fprintf(stderr, "could not remove %s: %s\n", it->c_str(), std::strerror(errno));
  }
}

double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

// The child: joins the cgroup, burns CPU on two threads, touches 40 MiB and
// reports one line per poll: "sample <cpu> <mem> <own cpu> <throttled
// delta> <detail>" or "none <reason>", then "auto <scope> <reason>".
[[noreturn]] void child(int out) {
  FILE* report = fdopen(out, "w");
  std::string error;
  for (const std::string& procs : g_setup.procs) {
    if (!write_file(procs, std::to_string(getpid()), error)) {
      std::fprintf(report, "error %s\n", error.c_str());
      std::fclose(report);
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

  aq::DirProcFiles proc(aq::kDefaultProcRoot), cgroup(kCgroupRoot);
  aq::LoadSampler sampler(aq::LoadScope::Cgroup, proc, cgroup, aq::HostInfo::current());
  int64_t wall_before = aq::monotonic_now_ns();
  double cpu_before = process_cpu_seconds();
  sampler.poll(wall_before);
  for (int i = 0; i < 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const int64_t wall = aq::monotonic_now_ns();
    const double cpu = process_cpu_seconds();
    const aq::SampleResult r = sampler.poll(wall);
    // This process's own share of the 0.2 CPU quota over the same span.
    const double own =
        100.0 * (cpu - cpu_before) / (static_cast<double>(wall - wall_before) / 1e9 * 0.2);
    wall_before = wall;
    cpu_before = cpu;
    if (r.sample)
      std::fprintf(report, "sample %.3f %.3f %.3f %ju %s\n", r.sample->cpu_percent,
                   r.sample->mem_percent, own, static_cast<uintmax_t>(r.source.nr_throttled_delta),
                   r.source.detail.c_str());
    else
      std::fprintf(report, "none %s\n", r.reason.c_str());
  }
  const aq::ScopeChoice choice =
      aq::resolve_scope(aq::LoadScope::Auto, aq::kDefaultProcRoot, kCgroupRoot);
  std::fprintf(report, "auto %s %s\n", aq::scope_name(choice.scope), choice.reason.c_str());
  stop = true;
  for (std::thread& t : burners)
    t.join();
  std::fclose(report);
  _exit(0);
}

START_TEST(sampler_reads_a_cgroup_held_to_20_percent) {
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  const pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    child(fds[1]);
  }
  ::close(fds[1]);
  std::string lines;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
    lines.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  std::printf("%s", lines.c_str());
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed: %s", lines.c_str());

  std::istringstream in(lines);
  std::string line;
  std::vector<double> cpus, owns;
  std::vector<uint64_t> throttles;
  double mem = 0;
  std::string detail, auto_line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string kind;
    fields >> kind;
    if (kind == "sample") {
      double cpu = 0, own = 0;
      uint64_t throttled = 0;
      fields >> cpu >> mem >> own >> throttled;
      cpus.push_back(cpu);
      owns.push_back(std::min(own, 100.0));
      throttles.push_back(throttled);
      std::getline(fields, detail);
    } else if (kind == "auto") {
      auto_line = line;
    }
  }
  ck_assert_msg(cpus.size() >= 3, "%zu samples of 4:\n%s", cpus.size(), lines.c_str());
  // The last three samples (1.5 s, 15 quota periods: a 0.5 s sample can
  // start or end inside a throttled period and read up to 20 points off):
  // saturated against the quota, as the process's own CPU clock says, and
  // memory against 400 MiB (40 MiB touched is 10 %; of this host's memory it
  // would be well under 1 %).
  const auto mean_of_last_3 = [](const std::vector<double>& v) {
    return (v[v.size() - 1] + v[v.size() - 2] + v[v.size() - 3]) / 3.0;
  };
  const double cpu = mean_of_last_3(cpus), own = mean_of_last_3(owns);
  const uint64_t throttled = throttles[throttles.size() - 1] + throttles[throttles.size() - 2] +
                             throttles[throttles.size() - 3];
  ck_assert_msg(cpu >= 80.0, "cpu %.1f %% of the quota", cpu);
  ck_assert_msg(std::abs(cpu - own) <= 10.0, "cpu %.1f %%, own clock %.1f %%", cpu, own);
  // ThreadSanitizer's shadow memory is charged to the cgroup too.
#if defined(__SANITIZE_THREAD__)
  const double mem_most = 100.0;
#else
  const double mem_most = 40.0;
#endif
  ck_assert_msg(mem >= 8.0 && mem <= mem_most, "mem %.2f %% of 400 MiB", mem);
  ck_assert_msg(aqtest::contains(detail, "0.2 CPUs") && aqtest::contains(detail, "400 MiB"),
                "detail '%s'", detail.c_str());
  ck_assert_msg(throttled > 0, "no throttled periods in the last 1.5 s");
  ck_assert_msg(aqtest::contains(auto_line, "auto cgroup ") &&
                    aqtest::contains(auto_line, "has a CPU quota of 0.2 CPUs"),
                "%s", auto_line.c_str());
}
END_TEST

}  // namespace

int main() {
  setup();
  if (!g_setup.skip.empty()) {
    cleanup();
    std::printf("SKIP: %s\n", g_setup.skip.c_str());
    return 77;
  }
  Suite* s = suite_create("cgroup_real");
  TCase* real = tcase_create("real");
  tcase_add_test(real, sampler_reads_a_cgroup_held_to_20_percent);
  tcase_set_timeout(real, 60);
  suite_add_tcase(s, real);
  const int result = aqtest::run_suite(s);
  cleanup();
  return result;
}
