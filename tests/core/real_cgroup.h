// A real cgroup for the tests that read one, core and element alike: held
// to 20 % of one CPU and 400 MiB, made under the process's own cgroup (v1,
// hybrid) or beside it (v2), and removed at the end. Plain C++, no Check,
// so the gstcheck suites can use it too.
// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace aq {
struct CgroupMembership;
}

namespace realcg {

// Made under aq::kDefaultCgroupRoot.
constexpr uint64_t kMemoryLimit = 400ull << 20;

class TestCgroup {
 public:
  // Makes the cgroup; without root or a writable cgroup filesystem, skip()
  // says why and nothing is made.
  TestCgroup();
  // Removes what was made, deepest first.
  ~TestCgroup();
  TestCgroup(const TestCgroup&) = delete;
  TestCgroup& operator=(const TestCgroup&) = delete;

  const std::string& skip() const { return skip_; }

  // Forks a child that joins the cgroup, burns CPU on two threads, touches
  // 40 MiB and then runs `body`, which writes its report to the FILE*. The
  // child, not this process, joins: a Check runner without forking (as
  // under qemu-user) stays out of the cgroup and can remove it. Returns
  // whether the child exited 0 with `body` true; `report` gets what it
  // wrote (or why it could not join).
  bool run_loaded(const std::function<bool(FILE*)>& body, std::string& report) const;

 private:
  bool make(const std::string& dir, std::string& error);
  void setup_v1(const aq::CgroupMembership& self, const std::string& name);
  void setup_v2(const aq::CgroupMembership& self, const std::string& name);

  std::vector<std::string> made_;   // created directories
  std::vector<std::string> procs_;  // cgroup.procs files to join
  std::string skip_;
};

// This process's CPU time, all threads, in seconds.
double process_cpu_seconds();

}  // namespace realcg
