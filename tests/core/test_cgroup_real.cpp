// The load sampler against a real cgroup: a child process moves itself into
// a new cgroup held to 20 % of one CPU and 400 MiB, burns CPU and touches
// 40 MiB, and a sampler in cgroup scope inside it must read the CPU as
// saturated against the quota and the memory against the limit. The
// sampler reads "self", so it runs in the child.
//
// Needs root and a writable cgroup filesystem (v1, hybrid or v2); otherwise
// it exits 77, which meson reports as skipped, and prints why. The cgroup
// (real_cgroup.h) is removed at the end.
// SPDX-License-Identifier: LGPL-2.1-or-later

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "load_sampler.h"
#include "real_cgroup.h"
#include "core_test.h"

namespace {

const realcg::TestCgroup* g_cgroup = nullptr;

// In the cgroup: one line per poll, "sample <cpu> <mem> <own cpu>
// <throttled delta> <detail>" or "none <reason>", then "auto <scope>
// <reason>". The sampler reads "self", so it runs in the child.
bool poll_sampler(FILE* report) {
  aq::DirProcFiles proc(aq::kDefaultProcRoot), cgroup(aq::kDefaultCgroupRoot);
  aq::LoadSampler sampler(aq::LoadScope::Cgroup, proc, cgroup, aq::HostInfo::current());
  int64_t wall_before = aq::monotonic_now_ns();
  double cpu_before = realcg::process_cpu_seconds();
  sampler.poll(wall_before);
  for (int i = 0; i < 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const int64_t wall = aq::monotonic_now_ns();
    const double cpu = realcg::process_cpu_seconds();
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
      aq::resolve_scope(aq::LoadScope::Auto, aq::kDefaultProcRoot, aq::kDefaultCgroupRoot);
  std::fprintf(report, "auto %s %s\n", aq::scope_name(choice.scope), choice.reason.c_str());
  return true;
}

START_TEST(sampler_reads_a_cgroup_held_to_20_percent) {
  std::string lines;
  const bool ok = g_cgroup->run_loaded(poll_sampler, lines);
  std::printf("%s", lines.c_str());
  ck_assert_msg(ok, "child failed: %s", lines.c_str());

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
  // A machine busier than the quota leaves the child less than it: then
  // only the agreement with its own clock can be asked.
  ck_assert_msg(cpu >= 80.0 || own < 80.0, "cpu %.1f %% of the quota, own clock %.1f %%", cpu, own);
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
  // A local, not a global: Check's forked test processes leave through
  // exit(), which would run a global's destructor and remove the cgroup.
  const realcg::TestCgroup cgroup;
  if (!cgroup.skip().empty()) {
    std::printf("SKIP: %s\n", cgroup.skip().c_str());
    return 77;
  }
  g_cgroup = &cgroup;
  Suite* s = suite_create("cgroup_real");
  TCase* real = tcase_create("real");
  tcase_add_test(real, sampler_reads_a_cgroup_held_to_20_percent);
  tcase_set_timeout(real, 60);
  suite_add_tcase(s, real);
  return aqtest::run_suite(s);
}
