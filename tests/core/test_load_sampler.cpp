// Load sampler: exact CPU and memory percentages from fixture procfs trees
// rewritten between polls, bad trees giving no sample and a reason, and the
// shared sampler serving many subscribers from one read per interval.
// SPDX-License-Identifier: LGPL-2.1-or-later

#include <sched.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "shared_sampler.h"
#include "core_test.h"
#include "one_cpu.h"

using aq::DirProcFiles;
using aq::HostInfo;
using aq::LoadSampler;
using aq::LoadScope;
using aq::SampleResult;
using aq::SharedSampler;
using aqtest::contains;

namespace {

constexpr int64_t kSec = 1'000'000'000;
constexpr int64_t kMs = 1'000'000;
constexpr double kTol = 1e-9;
// Waits end as soon as they succeed; the limit only matters on failure.
constexpr auto kWaitLimit = std::chrono::seconds(20);

// A procfs root in a temporary directory that tests write files into.
class ProcTree {
 public:
  ProcTree() {
    char templ[] = "/tmp/aq-core-proc-XXXXXX";
    ck_assert_msg(mkdtemp(templ) != nullptr, "mkdtemp: %s", std::strerror(errno));
    dir_ = templ;
    ck_assert_int_eq(mkdir((dir_ + "/self").c_str(), 0700), 0);
  }
  ~ProcTree() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  ProcTree(const ProcTree&) = delete;
  ProcTree& operator=(const ProcTree&) = delete;

  const std::string& dir() const { return dir_; }

  // Written aside and renamed, so a concurrent reader never sees half a file.
  void write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    const std::string tmp = path + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "w");
    ck_assert_msg(f != nullptr, "%s: %s", tmp.c_str(), std::strerror(errno));
    ck_assert_uint_eq(std::fwrite(text.data(), 1, text.size(), f), text.size());
    ck_assert_int_eq(std::fclose(f), 0);
    ck_assert_int_eq(std::rename(tmp.c_str(), path.c_str()), 0);
  }
  void remove(const std::string& name) {
    ck_assert_int_eq(::unlink((dir_ + "/" + name).c_str()), 0);
  }

 private:
  std::string dir_;
};

struct Cpu {
  uint64_t user, nice, system, idle, iowait, irq, softirq, steal, guest, guest_nice;
};

std::string cpu_line(const std::string& name, const Cpu& c) {
  char buf[256];
  std::snprintf(buf, sizeof buf, " %ju %ju %ju %ju %ju %ju %ju %ju %ju %ju\n", uintmax_t{c.user},
                uintmax_t{c.nice}, uintmax_t{c.system}, uintmax_t{c.idle}, uintmax_t{c.iowait},
                uintmax_t{c.irq}, uintmax_t{c.softirq}, uintmax_t{c.steal}, uintmax_t{c.guest},
                uintmax_t{c.guest_nice});
  return name + buf;
}

// `c` on the aggregate line, which an unpinned process reads.
std::string stat_text(const Cpu& c) {
  return cpu_line("cpu ", c) + "cpu0 1 2 3 4 5 6 7 8 0 0\nintr 12 0 0\nctxt 99\n";
}

// `c` on the aggregate line and on a line per CPU of the machine: a pinned
// process (taskset) reads only its CPUs' lines, and finds `c` there too.
std::string stat_text_every_cpu(const Cpu& c) {
  std::string text = cpu_line("cpu ", c);
  for (long id = 0; id < std::max(1L, sysconf(_SC_NPROCESSORS_CONF)); id++)
    text += cpu_line("cpu" + std::to_string(id), c);
  return text + "intr 12 0 0\nctxt 99\n";
}

std::string meminfo_text(uint64_t total_kb, uint64_t available_kb) {
  return "MemTotal:       " + std::to_string(total_kb) +
         " kB\nMemFree:        " + std::to_string(available_kb / 2) +
         " kB\nMemAvailable:   " + std::to_string(available_kb) +
         " kB\nBuffers:            1312 kB\n";
}

// Fields as in proc(5): utime is 14, stime 15, rss 24.
std::string pid_stat_text(uint64_t utime, uint64_t stime) {
  return "4242 (aq (test) x) S 1 4242 4242 0 -1 4194304 310 0 0 0 " + std::to_string(utime) + " " +
         std::to_string(stime) + " 0 0 20 0 3 0 1300226 4464640 762 " +
         "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
}

std::string statm_text(uint64_t resident_pages) {
  return "90000 " + std::to_string(resident_pages) + " 703 193 0 109 0\n";
}

// The process scope's host facts fixed, so the expected numbers are exact.
const HostInfo kHost{100, 4096, 2, {}};

// The cgroup root of samplers whose scope reads no cgroup files.
aq::ProcFiles& no_cgroup() {
  static DirProcFiles files("/nonexistent-aq-core-root/cgroup");
  return files;
}

void assert_sample(const SampleResult& r, double cpu, double mem, const char* what) {
  ck_assert_msg(r.sample.has_value(), "%s: no sample (%s)", what, r.reason.c_str());
  ck_assert_msg(std::fabs(r.sample->cpu_percent - cpu) < kTol, "%s: cpu %.12g, expected %.12g",
                what, r.sample->cpu_percent, cpu);
  ck_assert_msg(std::fabs(r.sample->mem_percent - mem) < kTol, "%s: mem %.12g, expected %.12g",
                what, r.sample->mem_percent, mem);
  ck_assert_msg(!r.warming_up, "%s: warming_up with a sample", what);
}

void assert_no_sample(const SampleResult& r, const std::string& reason, const char* what) {
  ck_assert_msg(!r.sample.has_value(), "%s: unexpected sample cpu %g mem %g", what,
                r.sample ? r.sample->cpu_percent : 0.0, r.sample ? r.sample->mem_percent : 0.0);
  ck_assert_msg(!r.reason.empty(), "%s: empty reason", what);
  ck_assert_msg(contains(r.reason, reason), "%s: reason '%s', expected '%s'", what,
                r.reason.c_str(), reason.c_str());
  ck_assert_msg(!r.warming_up, "%s: a fault reported as warming up", what);
}

void assert_warming_up(const SampleResult& r, const char* what) {
  ck_assert_msg(!r.sample.has_value(), "%s: sample on a first reading", what);
  ck_assert_msg(r.warming_up, "%s: not warming up (%s)", what, r.reason.c_str());
  ck_assert_msg(!r.reason.empty(), "%s: empty reason", what);
}

// ---- system scope ----

START_TEST(system_scope_exact_percentages) {
  ProcTree tree;
  DirProcFiles files(tree.dir());
  LoadSampler sampler(LoadScope::System, files, no_cgroup(), kHost);

  tree.write("stat", stat_text({1000, 0, 500, 8000, 500, 0, 0, 0, 200, 0}));
  tree.write("meminfo", meminfo_text(1'000'000, 250'000));
  assert_warming_up(sampler.poll(1 * kSec), "first poll");

  // user +300 (guest +50 inside it), system +100, idle +500, iowait +100:
  // total +1000, busy +400 -> 40 %. Counting guest again would give
  // 450/1050. mem (1e6-4e5)/1e6 -> 60 %.
  tree.write("stat", stat_text({1300, 0, 600, 8500, 600, 0, 0, 0, 250, 0}));
  tree.write("meminfo", meminfo_text(1'000'000, 400'000));
  assert_sample(sampler.poll(2 * kSec), 40.0, 60.0, "second poll");

  // user +100, nice +100, irq +50, softirq +30, steal +20, idle and iowait
  // unchanged: busy = total = +300 -> 100 %. mem all available -> 0 %.
  tree.write("stat", stat_text({1400, 100, 600, 8500, 600, 50, 30, 20, 250, 0}));
  tree.write("meminfo", meminfo_text(1'000'000, 1'000'000));
  assert_sample(sampler.poll(3 * kSec), 100.0, 0.0, "third poll");

  // Only idle +200 and iowait +50: busy 0 of 250 -> 0 %. mem
  // (1e6-1)/1e6 -> 99.9999 %.
  tree.write("stat", stat_text({1400, 100, 600, 8700, 650, 50, 30, 20, 250, 0}));
  tree.write("meminfo", meminfo_text(1'000'000, 1));
  assert_sample(sampler.poll(4 * kSec), 0.0, 99.9999, "fourth poll");

  // +10 busy of +40 is under the 100-tick window, so the span reaches back
  // to the third poll: busy +10 of +290 (the wall clock plays no part).
  // mem (1e6-75e4)/1e6 -> 25 %.
  tree.write("stat", stat_text({1410, 100, 600, 8730, 650, 50, 30, 20, 250, 0}));
  tree.write("meminfo", meminfo_text(1'000'000, 750'000));
  assert_sample(sampler.poll(4 * kSec + 1), 1000.0 / 290.0, 25.0, "fifth poll");
}
END_TEST

START_TEST(system_scope_with_real_fixture_files) {
  // The captured texts parse as a tree; the stat is then advanced by hand:
  // user +30, idle +70 -> 30 %. mem (24684092-24358576)/24684092.
  ProcTree tree;
  tree.write("stat", aqtest::read_fixture("proc/stat"));
  tree.write("meminfo", aqtest::read_fixture("proc/meminfo"));
  DirProcFiles files(tree.dir());
  LoadSampler sampler(LoadScope::System, files, no_cgroup(), kHost);
  assert_warming_up(sampler.poll(1 * kSec), "first poll");
  tree.write("stat", stat_text({14100, 0, 11029, 2566475, 968, 0, 519, 10, 0, 0}));
  assert_sample(sampler.poll(2 * kSec), 30.0, 100.0 * 325516.0 / 24684092.0, "second poll");
}
END_TEST

START_TEST(system_scope_no_ticks_elapsed) {
  ProcTree tree;
  tree.write("stat", stat_text({1000, 0, 500, 8000, 500, 0, 0, 0, 0, 0}));
  tree.write("meminfo", meminfo_text(1'000'000, 250'000));
  DirProcFiles files(tree.dir());
  LoadSampler sampler(LoadScope::System, files, no_cgroup(), kHost);
  assert_warming_up(sampler.poll(1 * kSec), "first poll");
  assert_no_sample(sampler.poll(2 * kSec), "no CPU ticks elapsed", "unchanged stat");
  // Ticks again: user +10, idle +10 -> 50 %; mem 75 %.
  tree.write("stat", stat_text({1010, 0, 500, 8010, 500, 0, 0, 0, 0, 0}));
  assert_sample(sampler.poll(3 * kSec), 50.0, 75.0, "after ticks resume");
}
END_TEST

// ---- process scope ----

START_TEST(process_scope_exact_percentages) {
  ProcTree tree;
  DirProcFiles files(tree.dir());
  LoadSampler sampler(LoadScope::Process, files, no_cgroup(), kHost);
  // No "stat": the process scope does not read it.
  tree.write("meminfo", meminfo_text(400'000, 100'000));
  tree.write("self/stat", pid_stat_text(100, 50));
  tree.write("self/statm", statm_text(25'000));
  assert_warming_up(sampler.poll(10 * kSec), "first poll");

  // utime+stime 150 -> 200: 50 ticks / 100 Hz = 0.5 s of CPU in 1 s of wall
  // time on 2 CPUs: 0.5/(1*2)*100 = 25 %. RSS 30000 pages * 4096 / 1024 =
  // 120000 kB of 400000 kB -> 30 %.
  tree.write("self/stat", pid_stat_text(130, 70));
  tree.write("self/statm", statm_text(30'000));
  assert_sample(sampler.poll(11 * kSec), 25.0, 30.0, "second poll");

  // +40 ticks = 0.4 s in 0.5 s on 2 CPUs: 0.4/(0.5*2)*100 = 40 %.
  // 1000 pages = 4000 kB of 400000 kB -> 1 %.
  tree.write("self/stat", pid_stat_text(160, 80));
  tree.write("self/statm", statm_text(1'000));
  assert_sample(sampler.poll(11 * kSec + 500 * kMs), 40.0, 1.0, "third poll");

  // +500 ticks = 5 s in 0.5 s: 500 % clamps to 100. RSS 200000 pages =
  // 800000 kB, twice MemTotal, clamps to 100.
  tree.write("self/stat", pid_stat_text(560, 180));
  tree.write("self/statm", statm_text(200'000));
  assert_sample(sampler.poll(12 * kSec), 100.0, 100.0, "fourth poll");

  // No ticks in 2 s -> 0 %. RSS 0 -> 0 %.
  tree.write("self/statm", statm_text(0));
  assert_sample(sampler.poll(14 * kSec), 0.0, 0.0, "fifth poll");
}
END_TEST

START_TEST(process_scope_uses_the_injected_host) {
  // The same readings with USER_HZ 250, 1 CPU and 16 KiB pages:
  // +50 ticks / 250 Hz = 0.2 s in 1 s on 1 CPU -> 20 %;
  // 25000 pages * 16384 / 1024 = 400000 kB of 1600000 kB -> 25 %.
  ProcTree tree;
  DirProcFiles files(tree.dir());
  LoadSampler sampler(LoadScope::Process, files, no_cgroup(), HostInfo{250, 16384, 1, {}});
  tree.write("meminfo", meminfo_text(1'600'000, 100'000));
  tree.write("self/stat", pid_stat_text(100, 50));
  tree.write("self/statm", statm_text(25'000));
  assert_warming_up(sampler.poll(1 * kSec), "first poll");
  tree.write("self/stat", pid_stat_text(130, 70));
  assert_sample(sampler.poll(2 * kSec), 20.0, 25.0, "second poll");
}
END_TEST

// ---- pinned to some CPUs ----

// /proc/stat with an aggregate line that must be ignored and per-CPU lines.
std::string per_cpu_stat(const std::vector<std::pair<uint64_t, uint64_t>>& busy_idle) {
  std::string text = "cpu  999999 0 0 999999 0 0 0 0 0 0\n";
  for (size_t i = 0; i < busy_idle.size(); ++i)
    text += "cpu" + std::to_string(i) + " " + std::to_string(busy_idle[i].first) + " 0 0 " +
            std::to_string(busy_idle[i].second) + " 0 0 0 0 0 0\n";
  return text + "intr 1\n";
}

START_TEST(system_scope_reads_only_the_allowed_cpus) {
  // Pinned to cpu1 of two: cpu0's load must not show. Over all CPUs both
  // polls would read 50 %.
  ProcTree tree;
  DirProcFiles files(tree.dir());
  LoadSampler sampler(LoadScope::System, files, no_cgroup(), HostInfo{100, 4096, 2, {1}});
  tree.write("meminfo", meminfo_text(1'000'000, 250'000));
  tree.write("stat", per_cpu_stat({{1000, 1000}, {1000, 1000}}));
  assert_warming_up(sampler.poll(1 * kSec), "first poll");
  // cpu0 saturated, cpu1 idle: 0 %.
  tree.write("stat", per_cpu_stat({{1100, 1000}, {1000, 1100}}));
  assert_sample(sampler.poll(2 * kSec), 0.0, 75.0, "pinned core idle");
  // cpu0 idle, cpu1 saturated: 100 %.
  tree.write("stat", per_cpu_stat({{1100, 1100}, {1100, 1100}}));
  assert_sample(sampler.poll(3 * kSec), 100.0, 75.0, "pinned core saturated");
}
END_TEST

START_TEST(system_scope_sums_several_allowed_cpus) {
  // Allowed cpu0 and cpu2 of four: busy +30 and +70 of +100 each -> 50 %.
  ProcTree tree;
  DirProcFiles files(tree.dir());
  LoadSampler sampler(LoadScope::System, files, no_cgroup(), HostInfo{100, 4096, 4, {0, 2}});
  tree.write("meminfo", meminfo_text(1'000'000, 250'000));
  tree.write("stat", per_cpu_stat({{0, 0}, {0, 0}, {0, 0}, {0, 0}}));
  assert_warming_up(sampler.poll(1 * kSec), "first poll");
  tree.write("stat", per_cpu_stat({{30, 70}, {100, 0}, {70, 30}, {100, 0}}));
  assert_sample(sampler.poll(2 * kSec), 50.0, 75.0, "cpu0 and cpu2");
}
END_TEST

START_TEST(system_scope_allowed_cpus_overflowing_their_sum) {
  // Each line's counters fit in 64 bits; the two allowed CPUs' sum does not.
  ProcTree tree;
  DirProcFiles files(tree.dir());
  LoadSampler sampler(LoadScope::System, files, no_cgroup(), HostInfo{100, 4096, 4, {1, 2}});
  tree.write("meminfo", meminfo_text(1'000'000, 250'000));
  tree.write("stat",
             "cpu0 0 0 0 0\ncpu1 9223372036854775808 0 0 0\ncpu2 9223372036854775808 0 0 0\n");
  for (int i = 1; i <= 2; ++i)
    assert_no_sample(sampler.poll(i * kSec), "stat: allowed CPUs' counters overflow their sum",
                     "overflow");
  // Pinned, the aggregate line alone is not enough.
  tree.write("stat", "cpu  1 2 3 4\nintr 5\n");
  assert_no_sample(sampler.poll(3 * kSec), "stat: no 'cpuN' lines", "aggregate only");
  // One tick less on cpu2: the sum fits, and the reading is good again.
  tree.write("stat",
             "cpu0 0 0 0 0\ncpu1 9223372036854775808 0 0 0\ncpu2 9223372036854775807 0 0 0\n");
  assert_warming_up(sampler.poll(4 * kSec), "fits");
}
END_TEST

START_TEST(system_scope_allowed_cpu_going_offline) {
  ProcTree tree;
  DirProcFiles files(tree.dir());
  LoadSampler sampler(LoadScope::System, files, no_cgroup(), HostInfo{100, 4096, 3, {0, 1}});
  tree.write("meminfo", meminfo_text(1'000'000, 250'000));
  tree.write("stat", per_cpu_stat({{100, 100}, {100, 100}, {0, 0}}));
  assert_warming_up(sampler.poll(1 * kSec), "first poll");
  // cpu1's line goes: its ticks leave the sums, so the history starts over.
  tree.write("stat", "cpu0 150 0 0 150 0 0 0 0 0 0\ncpu2 0 0 0 0\n");
  assert_warming_up(sampler.poll(2 * kSec), "cpu1 offline");
  tree.write("stat", "cpu0 210 0 0 190 0 0 0 0 0 0\ncpu2 0 0 0 0\n");
  assert_sample(sampler.poll(3 * kSec), 60.0, 75.0, "cpu0 alone");
  // None of the allowed CPUs has a line.
  tree.write("stat", "cpu2 0 0 0 0\n");
  assert_no_sample(sampler.poll(4 * kSec), "stat: no line for any allowed CPU", "all offline");
}
END_TEST

START_TEST(process_scope_is_a_share_of_the_allowed_cpus) {
  // Pinned to one CPU of two and saturating it: +100 ticks in 1 s is 100 %
  // (of all CPUs it would read 50 %).
  ProcTree tree;
  DirProcFiles files(tree.dir());
  LoadSampler sampler(LoadScope::Process, files, no_cgroup(), HostInfo{100, 4096, 2, {0}});
  tree.write("meminfo", meminfo_text(400'000, 100'000));
  tree.write("self/statm", statm_text(25'000));
  tree.write("self/stat", pid_stat_text(100, 50));
  assert_warming_up(sampler.poll(1 * kSec), "first poll");
  tree.write("self/stat", pid_stat_text(180, 70));
  assert_sample(sampler.poll(2 * kSec), 100.0, 25.0, "saturated pinned process");
}
END_TEST

// ---- the CPU window ----

START_TEST(window_reads_a_steady_load_at_10_ms) {
  // One allowed CPU at USER_HZ 100 gives one tick per 10 ms poll, busy or
  // idle: a steady 40 % load (busy on 2 of every 5 polls) reads 0 or 100 %
  // over one poll. The window of 100 ticks reads it exactly, and no poll
  // after the first is skipped for lack of ticks.
  ProcTree tree;
  DirProcFiles files(tree.dir());
  LoadSampler sampler(LoadScope::System, files, no_cgroup(), HostInfo{100, 4096, 2, {1}});
  tree.write("meminfo", meminfo_text(1'000'000, 250'000));
  uint64_t busy = 0, idle = 0;
  tree.write("stat", per_cpu_stat({{0, 0}, {busy, idle}}));
  assert_warming_up(sampler.poll(10 * kMs), "first poll");
  for (int i = 1; i <= 400; ++i) {
    (i % 5 == 1 || i % 5 == 3 ? busy : idle) += 1;
    tree.write("stat", per_cpu_stat({{5u * i, 0}, {busy, idle}}));
    const SampleResult r = sampler.poll((i + 1) * 10 * kMs);
    ck_assert_msg(r.sample.has_value(), "poll %d: no sample (%s)", i, r.reason.c_str());
    // Until the window fills it spans every reading so far.
    const uint64_t ticks = std::min<uint64_t>(static_cast<uint64_t>(i), 100);
    if (i >= 100 && i % 5 == 0) {
      ck_assert_msg(r.sample->cpu_percent == 40.0, "poll %d: %.17g", i, r.sample->cpu_percent);
    } else if (i < 100) {
      const double expected = 100.0 * static_cast<double>(busy) / static_cast<double>(ticks);
      ck_assert_msg(std::fabs(r.sample->cpu_percent - expected) < kTol, "poll %d: %g, expected %g",
                    i, r.sample->cpu_percent, expected);
    } else {
      // 100 ticks end at any phase of the pattern: 39, 40 or 41 busy.
      ck_assert_msg(std::fabs(r.sample->cpu_percent - 40.0) <= 1.0 + kTol, "poll %d: %g", i,
                    r.sample->cpu_percent);
    }
  }
}
END_TEST

START_TEST(window_constant_ratio_reads_exactly) {
  // Small and large steps at a busy/total ratio of 40/100 read exactly 40,
  // whatever the window spans.
  ProcTree tree;
  DirProcFiles files(tree.dir());
  LoadSampler sampler(LoadScope::System, files, no_cgroup(), kHost);
  tree.write("meminfo", meminfo_text(1'000'000, 250'000));
  uint64_t busy = 0, idle = 0;
  tree.write("stat", stat_text({busy, 0, 0, idle, 0, 0, 0, 0, 0, 0}));
  assert_warming_up(sampler.poll(1 * kMs), "first poll");
  const uint64_t steps[] = {4, 40, 4, 4, 400, 2, 2, 40, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4};
  for (size_t i = 0; i < std::size(steps); ++i) {
    busy += steps[i];
    idle += steps[i] * 3 / 2;
    tree.write("stat", stat_text({busy, 0, 0, idle, 0, 0, 0, 0, 0, 0}));
    const SampleResult r = sampler.poll(static_cast<int64_t>(i + 2) * kMs);
    ck_assert_msg(r.sample.has_value(), "step %zu: %s", i, r.reason.c_str());
    ck_assert_msg(r.sample->cpu_percent == 40.0, "step %zu: %.17g", i, r.sample->cpu_percent);
  }
}
END_TEST

START_TEST(window_process_scope_spans_a_second_of_one_cpu) {
  // One CPU at USER_HZ 100: 100 ticks of wall time is 1 s. A process using
  // 40 % (2 ticks every 50 ms) reads exactly 40 % at 10 ms polls once a
  // second of readings is held, and 0 or 100 % would be all one poll shows.
  ProcTree tree;
  DirProcFiles files(tree.dir());
  LoadSampler sampler(LoadScope::Process, files, no_cgroup(), HostInfo{100, 4096, 1, {}});
  tree.write("meminfo", meminfo_text(400'000, 100'000));
  tree.write("self/statm", statm_text(25'000));
  uint64_t utime = 0;
  tree.write("self/stat", pid_stat_text(utime, 0));
  assert_warming_up(sampler.poll(0), "first poll");
  for (int i = 1; i <= 300; ++i) {
    if (i % 5 == 1 || i % 5 == 3)
      ++utime;
    tree.write("self/stat", pid_stat_text(utime, 0));
    const SampleResult r = sampler.poll(i * 10 * kMs);
    ck_assert_msg(r.sample.has_value(), "poll %d: %s", i, r.reason.c_str());
    if (i >= 100 && i % 5 == 0)
      ck_assert_msg(std::fabs(r.sample->cpu_percent - 40.0) < kTol, "poll %d: %.17g", i,
                    r.sample->cpu_percent);
  }
}
END_TEST

START_TEST(window_history_is_bounded) {
  // At 1 ms polls on one CPU, 100 ticks of wall time would take 1000
  // readings; only kMaxHistory (256) are kept, so the window spans 255 ms.
  // One tick of CPU time at poll 10 stays in the window up to poll 264.
  static_assert(LoadSampler::kMaxHistory == 256, "the expected polls below assume 256");
  ProcTree tree;
  DirProcFiles files(tree.dir());
  LoadSampler sampler(LoadScope::Process, files, no_cgroup(), HostInfo{100, 4096, 1, {}});
  tree.write("meminfo", meminfo_text(400'000, 100'000));
  tree.write("self/statm", statm_text(25'000));
  tree.write("self/stat", pid_stat_text(0, 0));
  assert_warming_up(sampler.poll(0), "first poll");
  for (int i = 1; i <= 300; ++i) {
    if (i == 10)
      tree.write("self/stat", pid_stat_text(1, 0));
    const SampleResult r = sampler.poll(i * kMs);
    ck_assert_msg(r.sample.has_value(), "poll %d: %s", i, r.reason.c_str());
    // 1 tick / (100 Hz x span x 1 CPU), span = min(i, 255) ms.
    const double span = std::min(i, 255) / 1000.0;
    const double expected = i < 10 ? 0.0 : i <= 264 ? 100.0 / (100.0 * span) : 0.0;
    ck_assert_msg(std::fabs(r.sample->cpu_percent - std::min(expected, 100.0)) < kTol,
                  "poll %d: %.17g, expected %.17g", i, r.sample->cpu_percent, expected);
  }
}
END_TEST

// ---- bad trees ----

START_TEST(missing_root_gives_no_sample) {
  const std::string root = "/nonexistent-aq-core-root/proc";
  DirProcFiles files(root);
  for (LoadScope scope : {LoadScope::System, LoadScope::Process}) {
    LoadSampler sampler(scope, files, no_cgroup(), kHost);
    for (int i = 1; i <= 3; ++i)
      assert_no_sample(sampler.poll(i * kSec), root + "/meminfo", "missing root");
  }
}
END_TEST

// A FIFO or an endless device under a bad root must fail at once: the
// sampler thread must never block on open or read without end.
START_TEST(fifo_and_endless_files_fail_fast) {
  char dir[] = "/tmp/aq-core-fifo-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  const std::string root = dir;
  ck_assert_int_eq(mkfifo((root + "/meminfo").c_str(), 0600), 0);
  ck_assert_int_eq(symlink("/dev/zero", (root + "/stat").c_str()), 0);
  DirProcFiles files(root);
  std::string out, error;
  ck_assert(!files.read("meminfo", out, error));
  ck_assert_msg(error.find("not a regular file") != std::string::npos, "%s", error.c_str());
  ck_assert(!files.read("stat", out, error));
  ck_assert_msg(error.find("not a regular file") != std::string::npos, "%s", error.c_str());
  unlink((root + "/meminfo").c_str());
  unlink((root + "/stat").c_str());
  rmdir(dir);
}
END_TEST

// A regular file whose read() fails after the open succeeded: procfs's
// self/mem reads the process's memory from address 0, which is not mapped.
START_TEST(read_error_after_open_fails) {
  DirProcFiles files("/proc");
  std::string out, error;
  ck_assert(files.fetch("self/mem", out, error) == aq::ProcFiles::Status::Failed);
  const std::string expected = "/proc/self/mem: " + std::string(std::strerror(EIO));
  ck_assert_str_eq(error.c_str(), expected.c_str());
}
END_TEST

struct BadFileCase {
  const char* name;
  LoadScope scope;
  const char* file;      // removed, replaced or made a directory
  const char* contents;  // nullptr: remove the file; "<dir>": a directory
  const char* reason;    // substring of the reason
};

const BadFileCase kBadFiles[] = {
    {"system: stat missing", LoadScope::System, "stat", nullptr, "/stat"},
    {"system: meminfo missing", LoadScope::System, "meminfo", nullptr, "/meminfo"},
    {"system: stat empty", LoadScope::System, "stat", "", "stat: no 'cpu' line"},
    {"system: stat garbage", LoadScope::System, "stat", "\x01\x02 garbage\n", "stat: "},
    {"system: stat truncated", LoadScope::System, "stat", "cpu  1300 0 60", "stat: cpu line"},
    {"system: stat a directory", LoadScope::System, "stat", "<dir>", "stat"},
    {"system: meminfo garbage", LoadScope::System, "meminfo", "MemTotal: lots kB\n",
     "meminfo: MemTotal: not a number"},
    {"system: meminfo without MemTotal", LoadScope::System, "meminfo", "MemAvailable: 5 kB\n",
     "meminfo: MemTotal missing"},
    {"process: self/stat missing", LoadScope::Process, "self/stat", nullptr, "/self/stat"},
    {"process: self/statm missing", LoadScope::Process, "self/statm", nullptr, "/self/statm"},
    {"process: meminfo missing", LoadScope::Process, "meminfo", nullptr, "/meminfo"},
    {"process: self/stat garbage", LoadScope::Process, "self/stat", "4242 (x) S 1 2 3\n",
     "self/stat: truncated"},
    {"process: self/stat empty", LoadScope::Process, "self/stat", "", "self/stat: "},
    {"process: self/statm garbage", LoadScope::Process, "self/statm", "lots\n",
     "self/statm: truncated"},
    {"process: meminfo MemTotal 0", LoadScope::Process, "meminfo",
     "MemTotal: 0 kB\nMemAvailable: 0 kB\n", "meminfo: MemTotal is 0"},
};

void write_good_tree(ProcTree& tree, uint64_t step) {
  tree.write("stat", stat_text({1000 + 10 * step, 0, 500, 8000 + 30 * step, 500, 0, 0, 0, 0, 0}));
  tree.write("meminfo", meminfo_text(1'000'000, 500'000));
  tree.write("self/stat", pid_stat_text(100 + 10 * step, 50));
  tree.write("self/statm", statm_text(25'000));
}

START_TEST(bad_file_table) {
  const BadFileCase& c = kBadFiles[_i];
  ProcTree tree;
  DirProcFiles files(tree.dir());
  LoadSampler sampler(c.scope, files, no_cgroup(), kHost);
  write_good_tree(tree, 0);
  assert_warming_up(sampler.poll(1 * kSec), c.name);

  write_good_tree(tree, 1);
  if (c.contents == nullptr) {
    tree.remove(c.file);
  } else if (std::string(c.contents) == "<dir>") {
    tree.remove(c.file);
    ck_assert_int_eq(mkdir((tree.dir() + "/" + c.file).c_str(), 0700), 0);
  } else {
    tree.write(c.file, c.contents);
  }
  assert_no_sample(sampler.poll(2 * kSec), c.reason, c.name);
  assert_no_sample(sampler.poll(3 * kSec), c.reason, c.name);

  // Repaired: a failure drops the previous reading, so one more poll warms
  // up before samples return. The system CPU figure is then
  // 10 busy of 40 -> 25 %; the process one 10 ticks in 1 s on 2 CPUs -> 5 %.
  if (c.contents != nullptr && std::string(c.contents) == "<dir>")
    std::filesystem::remove(tree.dir() + "/" + c.file);
  write_good_tree(tree, 2);
  assert_warming_up(sampler.poll(4 * kSec), c.name);
  write_good_tree(tree, 3);
  const bool system = c.scope == LoadScope::System;
  // mem: system (1e6-5e5)/1e6 = 50 %; process 100000 kB / 1e6 kB = 10 %.
  assert_sample(sampler.poll(5 * kSec), system ? 25.0 : 5.0, system ? 50.0 : 10.0, c.name);
}
END_TEST

START_TEST(system_counter_going_backwards) {
  ProcTree tree;
  DirProcFiles files(tree.dir());
  LoadSampler sampler(LoadScope::System, files, no_cgroup(), kHost);
  tree.write("meminfo", meminfo_text(1'000'000, 250'000));
  tree.write("stat", stat_text({1000, 0, 500, 8000, 500, 0, 0, 0, 0, 0}));
  assert_warming_up(sampler.poll(1 * kSec), "first poll");
  // user falls by 100 while idle grows: busy and total both go backwards.
  tree.write("stat", stat_text({900, 0, 500, 8050, 500, 0, 0, 0, 0, 0}));
  assert_no_sample(sampler.poll(2 * kSec), "counters went backwards", "user backwards");
  // The backwards reading is the new baseline: user +20, idle +60 -> 25 %.
  tree.write("stat", stat_text({920, 0, 500, 8110, 500, 0, 0, 0, 0, 0}));
  assert_sample(sampler.poll(3 * kSec), 25.0, 75.0, "after user backwards");
  // Only idle backwards: total falls although busy does not.
  tree.write("stat", stat_text({930, 0, 500, 7000, 500, 0, 0, 0, 0, 0}));
  assert_no_sample(sampler.poll(4 * kSec), "counters went backwards", "idle backwards");
  // user +10, idle +30 -> 25 %.
  tree.write("stat", stat_text({940, 0, 500, 7030, 500, 0, 0, 0, 0, 0}));
  assert_sample(sampler.poll(5 * kSec), 25.0, 75.0, "after idle backwards");
}
END_TEST

START_TEST(process_counter_or_clock_going_backwards) {
  ProcTree tree;
  DirProcFiles files(tree.dir());
  LoadSampler sampler(LoadScope::Process, files, no_cgroup(), kHost);
  tree.write("meminfo", meminfo_text(400'000, 100'000));
  tree.write("self/statm", statm_text(25'000));  // 100000 kB of 400000 -> 25 %
  tree.write("self/stat", pid_stat_text(100, 50));
  assert_warming_up(sampler.poll(10 * kSec), "first poll");
  tree.write("self/stat", pid_stat_text(100, 40));
  assert_no_sample(sampler.poll(11 * kSec), "counters went backwards", "stime backwards");
  // +20 ticks = 0.2 s in 1 s on 2 CPUs -> 10 %.
  tree.write("self/stat", pid_stat_text(110, 50));
  assert_sample(sampler.poll(12 * kSec), 10.0, 25.0, "after stime backwards");
  // The same instant again: no wall time to divide by.
  tree.write("self/stat", pid_stat_text(120, 50));
  assert_no_sample(sampler.poll(12 * kSec), "counters went backwards", "clock stands still");
  // A clock that goes back.
  assert_no_sample(sampler.poll(11 * kSec), "counters went backwards", "clock backwards");
  // +40 ticks = 0.4 s in 2 s on 2 CPUs -> 10 %.
  tree.write("self/stat", pid_stat_text(160, 50));
  assert_sample(sampler.poll(13 * kSec), 10.0, 25.0, "after clock backwards");
}
END_TEST

START_TEST(random_garbage_never_crashes) {
  // Valid, truncated and corrupted texts in random order: every poll either
  // gives a sample within 0..100 or no sample with a reason.
  ProcTree tree;
  DirProcFiles files(tree.dir());
  LoadSampler system(LoadScope::System, files, no_cgroup(), kHost);
  LoadSampler process(LoadScope::Process, files, no_cgroup(), kHost);
  std::mt19937 rng(20240611);
  uint64_t counter = 1000;
  int samples = 0;
  for (int i = 1; i <= 600; ++i) {
    counter += rng() % 50;
    const std::string good[] = {stat_text({counter, 0, counter / 2, 4 * counter, 0, 0, 0, 0, 0, 0}),
                                meminfo_text(1'000'000, rng() % 2'000'000),
                                pid_stat_text(counter, counter / 3), statm_text(rng() % 1'000'000)};
    const char* names[] = {"stat", "meminfo", "self/stat", "self/statm"};
    for (int f = 0; f < 4; ++f) {
      std::string text = good[f];
      switch (rng() % 8) {
        case 0:
          text.resize(rng() % (text.size() + 1));
          break;
        case 1:
          for (int k = 0; k < 3; ++k)
            text[rng() % text.size()] = static_cast<char>(rng() % 256);
          break;
        case 2:
          text = std::to_string(rng()) + text;
          break;
        default:
          break;
      }
      tree.write(names[f], text);
    }
    for (LoadSampler* s : {&system, &process}) {
      const SampleResult r = s->poll(i * 10 * kMs);
      if (r.sample) {
        ++samples;
        ck_assert(r.sample->cpu_percent >= 0.0 && r.sample->cpu_percent <= 100.0);
        ck_assert(r.sample->mem_percent >= 0.0 && r.sample->mem_percent <= 100.0);
      } else {
        ck_assert_msg(!r.reason.empty(), "poll %d: no sample and no reason", i);
      }
    }
  }
  // Most rounds are clean, so samples must have come through too.
  ck_assert_int_gt(samples, 50);
}
END_TEST

// ---- cgroup scope, on fixture host trees ----

// A copy of tests/fixtures/hosts/<layout>: a procfs root in proc/ and a
// cgroup root in cgroup/, for tests to rewrite counters in.
class HostTree {
 public:
  explicit HostTree(const std::string& layout) : tree_() {
    std::error_code ec;
    std::filesystem::copy(aqtest::fixtures_dir() + "/hosts/" + layout, tree_.dir(),
                          std::filesystem::copy_options::recursive, ec);
    ck_assert_msg(!ec, "copying layout %s: %s", layout.c_str(), ec.message().c_str());
    proc_ = std::make_unique<DirProcFiles>(proc_dir());
    cgroup_ = std::make_unique<DirProcFiles>(cgroup_dir());
  }
  std::string proc_dir() const { return tree_.dir() + "/proc"; }
  std::string cgroup_dir() const { return tree_.dir() + "/cgroup"; }
  aq::ProcFiles& proc() { return *proc_; }
  aq::ProcFiles& cgroup() { return *cgroup_; }
  // `name` is relative to the tree: "proc/self/cgroup", "cgroup/cpu.max".
  void write(const std::string& name, const std::string& text) { tree_.write(name, text); }
  void remove(const std::string& name) { tree_.remove(name); }
  void make_dir(const std::string& name) {
    ck_assert_int_eq(mkdir((tree_.dir() + "/" + name).c_str(), 0700), 0);
  }
  std::string text(const std::string& name) {
    std::string out;
    ck_assert_msg(aqtest::read_file(tree_.dir() + "/" + name, out), "cannot read %s", name.c_str());
    return out;
  }

 private:
  ProcTree tree_;
  std::unique_ptr<DirProcFiles> proc_, cgroup_;
};

// MemTotal of the fixture meminfo, in bytes.
constexpr double kFixtureMemTotal = 24684092.0 * 1024.0;
// MemTotal - MemAvailable of the fixture meminfo, in percent.
const double kFixtureSystemMem = 100.0 * (24684092.0 - 24358576.0) / 24684092.0;

// Writes the cgroup's CPU usage (v2: cpu.stat in µs; v1: cpuacct.usage in
// ns) and its throttled periods (v1: the cpu hierarchy's cpu.stat).
void write_usage(HostTree& t, int version, const std::string& usage_dir, const char* cpu_dir,
                 uint64_t usage, uint64_t throttled) {
  const std::string base = usage_dir.empty() ? "cgroup/" : "cgroup/" + usage_dir + "/";
  if (version == 2) {
    t.write(base + "cpu.stat", "usage_usec " + std::to_string(usage) + "\nuser_usec " +
                                   std::to_string(usage / 2) + "\nsystem_usec 0\nnr_periods 900\n" +
                                   "nr_throttled " + std::to_string(throttled) +
                                   "\nthrottled_usec 0\n");
    return;
  }
  t.write(base + "cpuacct.usage", std::to_string(usage) + "\n");
  if (cpu_dir)
    t.write(std::string("cgroup/") + cpu_dir + "/cpu.stat",
            "nr_periods 900\nnr_throttled " + std::to_string(throttled) + "\nthrottled_time 0\n");
}

struct CgroupCase {
  const char* name;
  const char* layout;      // under tests/fixtures/hosts/
  const char* membership;  // replaces proc/self/cgroup; nullptr keeps it
  const char* edit;        // a file changed first, or nullptr
  const char* edit_text;   // its new text; nullptr removes it
  int version;
  const char* usage_dir;  // under cgroup/, "" for the root
  const char* cpu_dir;    // v1: the cpu hierarchy's directory, or nullptr
  uint64_t usage_step;    // added in 1 s, in the file's unit
  double cpu, mem;
  LoadScope auto_scope;
  const char* auto_reason;
  const char* detail;
};

const CgroupCase kCgroupCases[] = {
    // 0.2 s of CPU in 1 s against a quota of 20 % of one CPU: saturated.
    // (360 MiB - 16 MiB inactive file) of 400 MiB -> 86 %.
    {"v2 quota", "v2-quota", nullptr, nullptr, nullptr, 2, "system.slice/kvm.service", nullptr,
     200000, 100.0, 86.0, LoadScope::Cgroup,
     "cgroup /system.slice/kvm.service has a CPU quota of 0.2 CPUs",
     "cgroup v2 /system.slice/kvm.service: CPU of 0.2 CPUs (cpu.max), memory of 400 MiB "
     "(memory.max)"},
    // Half the quota; without memory.current (no memory controller) the
    // memory is the host's.
    {"v2 quota, no memory controller", "v2-quota", nullptr,
     "cgroup/system.slice/kvm.service/memory.current", nullptr, 2, "system.slice/kvm.service",
     nullptr, 100000, 50.0, kFixtureSystemMem, LoadScope::Cgroup, "has a CPU quota of 0.2 CPUs",
     "0.2 CPUs (cpu.max), host memory (no memory controller)"},
    // No quota: 1 s of CPU in 1 s of a cpuset of 5 CPUs -> 20 %. No memory
    // limit: (50 - 10) MiB of MemTotal.
    {"v2 no limit", "v2-no-limit", nullptr, nullptr, nullptr, 2,
     "user.slice/user-1000.slice/session-2.scope", nullptr, 1000000, 20.0,
     100.0 * 41943040.0 / kFixtureMemTotal, LoadScope::System, "has no CPU quota or memory limit",
     "CPU of 5 CPUs (cpuset), memory of MemTotal (no limit)"},
    // Without cpuset.cpus.effective: the 2 allowed CPUs -> 50 %.
    {"v2 no limit, no cpuset", "v2-no-limit", nullptr,
     "cgroup/user.slice/user-1000.slice/session-2.scope/cpuset.cpus.effective", nullptr, 2,
     "user.slice/user-1000.slice/session-2.scope", nullptr, 1000000, 50.0,
     100.0 * 41943040.0 / kFixtureMemTotal, LoadScope::System, "no CPU quota or memory limit",
     "CPU of 2 CPUs (allowed CPUs)"},
    // A memory.max of exactly MemTotal limits nothing.
    {"v2 memory.max at MemTotal", "v2-no-limit", nullptr,
     "cgroup/user.slice/user-1000.slice/session-2.scope/memory.max", "25276510208\n", 2,
     "user.slice/user-1000.slice/session-2.scope", nullptr, 1000000, 20.0,
     100.0 * 41943040.0 / kFixtureMemTotal, LoadScope::System, "has no CPU quota or memory limit",
     "CPU of 5 CPUs (cpuset), memory of MemTotal (no limit)"},
    // Hybrid host: v2 under unified/. 0.1 s of 0.5 CPUs -> 20 %.
    {"v2 hybrid", "v2-hybrid", nullptr, nullptr, nullptr, 2, "unified/kvm.service", nullptr, 100000,
     20.0, 100.0 * 104857600.0 / kFixtureMemTotal, LoadScope::Cgroup, "has a CPU quota of 0.5 CPUs",
     "cgroup v2 /kvm.service: CPU of 0.5 CPUs (cpu.max)"},
    // Private cgroup namespace: "/" is the container's cgroup, the root.
    // Quota 1.5 CPUs within a cpuset of 2: 0.75 s -> 50 %. (192 - 64) of
    // 256 MiB -> 50 %.
    {"v2 namespace", "v2-namespace", nullptr, nullptr, nullptr, 2, "", nullptr, 750000, 50.0, 50.0,
     LoadScope::Cgroup, "cgroup / has a CPU quota of 1.5 CPUs",
     "cgroup v2 /: CPU of 1.5 CPUs (cpu.max), memory of 256 MiB (memory.max)"},
    // The host's path shown, but the container's cgroup mounted as the root.
    {"v2 host path, cgroup at the root", "v2-namespace", "0::/kubepods/burstable/pod1/abc\n",
     nullptr, nullptr, 2, "", nullptr, 750000, 50.0, 50.0, LoadScope::Cgroup,
     "cgroup /kubepods/burstable/pod1/abc has a CPU quota of 1.5 CPUs",
     "cgroup v2 /kubepods/burstable/pod1/abc: CPU of 1.5 CPUs"},
    // A quota of 4 CPUs on a cpuset of 2: the 2 CPUs count.
    {"v2 quota above the cpuset", "v2-namespace", nullptr, "cgroup/cpu.max", "400000 100000\n", 2,
     "", nullptr, 1000000, 50.0, 50.0, LoadScope::Cgroup, "has a CPU quota of 4 CPUs",
     "CPU of 2 CPUs (cpuset)"},
    // A regular file where the cgroup's directory would be under the root:
    // that candidate is absent (ENOTDIR), and the one under unified/ counts.
    {"v2 hybrid, a file in the way", "v2-hybrid", nullptr, "cgroup/kvm.service", "x\n", 2,
     "unified/kvm.service", nullptr, 100000, 20.0, 100.0 * 104857600.0 / kFixtureMemTotal,
     LoadScope::Cgroup, "has a CPU quota of 0.5 CPUs",
     "cgroup v2 /kvm.service: CPU of 0.5 CPUs (cpu.max)"},
    // Docker on v1, cpu and cpuacct together: 0.1 s in ns of 0.2 CPUs.
    {"v1 docker", "v1-docker", nullptr, nullptr, nullptr, 1, "cpu,cpuacct/docker/abc",
     "cpu,cpuacct/docker/abc", 100000000, 50.0, 86.0, LoadScope::Cgroup,
     "cgroup /docker/abc has a CPU quota of 0.2 CPUs",
     "cgroup v1 /docker/abc: CPU of 0.2 CPUs (cpu.cfs_quota_us), memory of 400 MiB "
     "(memory.limit_in_bytes)"},
    // Without the quota file the cpu directory is not found: the cpuset's
    // 4 CPUs count, and there is no throttling figure.
    {"v1 docker, no cpu hierarchy", "v1-docker", nullptr,
     "cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", nullptr, 1, "cpu,cpuacct/docker/abc",
     nullptr, 100000000, 2.5, 86.0, LoadScope::Cgroup, "has a memory limit of 400 MiB",
     "CPU of 4 CPUs (cpuset)"},
    // v1 in a container without a cgroup namespace: each mount is the
    // container's cgroup. 0.25 s of 0.5 CPUs; the huge limit is no limit.
    {"v1 container", "v1-container", nullptr, nullptr, nullptr, 1, "cpu,cpuacct", "cpu,cpuacct",
     250000000, 50.0, 100.0 * (104857600.0 - 4194304.0) / kFixtureMemTotal, LoadScope::Cgroup,
     "has a CPU quota of 0.5 CPUs", "CPU of 0.5 CPUs (cpu.cfs_quota_us), memory of MemTotal"},
    // This machine: separate hierarchies, no quota, no memory limit.
    {"v1 this host", "v1-this-host", nullptr, nullptr, nullptr, 1, "cpuacct", "cpu", 1000000000,
     50.0, 100.0 * (767037440.0 - 461369344.0) / kFixtureMemTotal, LoadScope::System,
     "cgroup / has no CPU quota or memory limit",
     "cgroup v1 /: CPU of 2 CPUs (cpuset), memory of MemTotal (no limit)"},
};

START_TEST(cgroup_layout_table) {
  const CgroupCase& c = kCgroupCases[_i];
  HostTree t(c.layout);
  if (c.membership)
    t.write("proc/self/cgroup", c.membership);
  if (c.edit && c.edit_text)
    t.write(c.edit, c.edit_text);
  if (c.edit && !c.edit_text)
    t.remove(c.edit);
  const bool throttling = c.version == 2 || c.cpu_dir;

  LoadSampler sampler(LoadScope::Cgroup, t.proc(), t.cgroup(), kHost);
  write_usage(t, c.version, c.usage_dir, c.cpu_dir, 1'000'000'000, 40);
  SampleResult r = sampler.poll(1 * kSec);
  assert_warming_up(r, c.name);
  ck_assert_msg(r.source.choice.scope == LoadScope::Cgroup, "%s: scope %s", c.name,
                aq::scope_name(r.source.choice.scope));
  ck_assert_msg(r.source.nr_throttled.has_value() == throttling, "%s: throttling", c.name);

  write_usage(t, c.version, c.usage_dir, c.cpu_dir, 1'000'000'000 + c.usage_step, 47);
  r = sampler.poll(2 * kSec);
  assert_sample(r, c.cpu, c.mem, c.name);
  ck_assert_msg(contains(r.source.detail, c.detail), "%s: detail '%s', expected '%s'", c.name,
                r.source.detail.c_str(), c.detail);
  if (throttling) {
    ck_assert_msg(r.source.nr_throttled == std::optional<uint64_t>(47), "%s", c.name);
    ck_assert_uint_eq(r.source.nr_throttled_delta, 7);
  }

  // Auto picks what the table says, and reads the same as that scope.
  const aq::ScopeChoice choice = aq::resolve_scope(LoadScope::Auto, t.proc(), t.cgroup());
  ck_assert_msg(choice.scope == c.auto_scope, "%s: auto picked %s (%s)", c.name,
                aq::scope_name(choice.scope), choice.reason.c_str());
  ck_assert_msg(contains(choice.reason, c.auto_reason), "%s: reason '%s', expected '%s'", c.name,
                choice.reason.c_str(), c.auto_reason);
  LoadSampler automatic(LoadScope::Auto, t.proc(), t.cgroup(), kHost);
  r = automatic.poll(3 * kSec);
  ck_assert_msg(r.source.choice.scope == c.auto_scope, "%s: auto sampler", c.name);
  ck_assert_str_eq(r.source.choice.reason.c_str(), choice.reason.c_str());
}
END_TEST

// A joint v1 hierarchy ("4:cpu,cpuacct:/docker/abc") mounted under each
// controller's name instead (cpuacct/, and cpu/ a link to it, as many
// distributions do): found there, with the same reading as the joint mount.
START_TEST(cgroup_v1_joint_hierarchy_mounted_apart) {
  HostTree t("v1-docker");
  std::filesystem::rename(t.cgroup_dir() + "/cpu,cpuacct", t.cgroup_dir() + "/cpuacct");
  std::filesystem::create_directory_symlink("cpuacct", t.cgroup_dir() + "/cpu");
  LoadSampler sampler(LoadScope::Cgroup, t.proc(), t.cgroup(), kHost);
  write_usage(t, 1, "cpuacct/docker/abc", "cpu/docker/abc", 1'000'000'000, 40);
  assert_warming_up(sampler.poll(1 * kSec), "first poll");
  write_usage(t, 1, "cpuacct/docker/abc", "cpu/docker/abc", 1'100'000'000, 47);
  const SampleResult r = sampler.poll(2 * kSec);
  assert_sample(r, 50.0, 86.0, "mounted apart");
  ck_assert_msg(contains(r.source.detail, "CPU of 0.2 CPUs (cpu.cfs_quota_us)"), "detail '%s'",
                r.source.detail.c_str());
  ck_assert_msg(r.source.nr_throttled == std::optional<uint64_t>(47), "throttling not read");
}
END_TEST

START_TEST(explicit_scopes_are_not_resolved) {
  HostTree t("v2-quota");
  for (LoadScope s :
       {LoadScope::System, LoadScope::Process, LoadScope::Cgroup, LoadScope::Pressure}) {
    const aq::ScopeChoice c = aq::resolve_scope(s, t.proc(), t.cgroup());
    ck_assert(c.scope == s);
    ck_assert_str_eq(c.reason.c_str(), "set explicitly");
  }
  // By roots, as the element calls it.
  const aq::ScopeChoice c = aq::resolve_scope(LoadScope::Auto, t.proc_dir(), t.cgroup_dir());
  ck_assert(c.scope == LoadScope::Cgroup);
  ck_assert_str_eq(aq::scope_name(LoadScope::Auto), "auto");
  ck_assert_str_eq(aq::scope_name(LoadScope::Pressure), "pressure");
}
END_TEST

struct BadCgroupCase {
  const char* name;
  const char* layout;
  const char* file;      // relative to the tree
  const char* contents;  // nullptr: remove; "<dir>": a directory
  const char* reason;    // substring of the cgroup scope's reason
  LoadScope auto_scope;  // what auto falls back to
};

const BadCgroupCase kBadCgroups[] = {
    {"self/cgroup missing", "v2-quota", "proc/self/cgroup", nullptr,
     "self/cgroup: ", LoadScope::System},
    {"self/cgroup garbage", "v2-quota", "proc/self/cgroup", "hello\n",
     "self/cgroup: line 'hello' is not id:controllers:path", LoadScope::System},
    {"self/cgroup climbs out", "v2-quota", "proc/self/cgroup", "0::/../../escape\n",
     "lies outside the cgroup namespace", LoadScope::System},
    {"cgroup not under the root", "v2-quota", "proc/self/cgroup", "0::/system.slice/gone.service\n",
     "cpu.stat of /system.slice/gone.service not found under the cgroup root", LoadScope::System},
    {"v1 without cpuacct", "v2-quota", "proc/self/cgroup", "2:memory:/x\n",
     "cgroup v1 without a cpuacct hierarchy", LoadScope::System},
    {"named hierarchy only", "v2-quota", "proc/self/cgroup", "1:name=systemd:/\n",
     "no v2 entry and no v1 cpu, cpuacct or memory entry", LoadScope::System},
    // Hierarchy 0 is v2 only without controllers; v1 entries have an id.
    {"hierarchy 0 with controllers", "v2-quota", "proc/self/cgroup", "0:cpu:/x\n",
     "no v2 entry and no v1 cpu, cpuacct or memory entry", LoadScope::System},
    {"v2 cpu.stat garbage", "v2-quota", "cgroup/system.slice/kvm.service/cpu.stat",
     "usage_usec x\n", "cpu.stat: usage_usec: not a number", LoadScope::Cgroup},
    {"v2 cpu.stat without usage", "v2-quota", "cgroup/system.slice/kvm.service/cpu.stat",
     "user_usec 5\n", "cpu.stat: usage_usec missing", LoadScope::Cgroup},
    // usage_usec in ns must fit in 64 bits: 2^64 / 1000 µs is one too many.
    {"v2 usage_usec over 2^64 ns", "v2-quota", "cgroup/system.slice/kvm.service/cpu.stat",
     "usage_usec 18446744073709552\n", "cpu.stat: usage_usec too large", LoadScope::Cgroup},
    {"v2 cpu.stat a directory", "v2-quota", "cgroup/system.slice/kvm.service/cpu.stat", "<dir>",
     "cpu.stat: not a regular file", LoadScope::System},
    {"v2 cpu.max one field", "v2-quota", "cgroup/system.slice/kvm.service/cpu.max", "20000\n",
     "cpu.max: expected '$QUOTA $PERIOD'", LoadScope::System},
    {"v2 cpu.max period 0", "v2-quota", "cgroup/system.slice/kvm.service/cpu.max", "max 0\n",
     "cpu.max: period is 0", LoadScope::System},
    {"v2 memory.max garbage", "v2-quota", "cgroup/system.slice/kvm.service/memory.max", "lots\n",
     "memory.max: not a number: 'lots'", LoadScope::System},
    {"v2 memory.current empty", "v2-quota", "cgroup/system.slice/kvm.service/memory.current", "",
     "memory.current: empty", LoadScope::Cgroup},
    {"v2 memory.stat missing", "v2-quota", "cgroup/system.slice/kvm.service/memory.stat", nullptr,
     "memory.stat: No such file", LoadScope::Cgroup},
    {"v2 memory.stat garbage", "v2-quota", "cgroup/system.slice/kvm.service/memory.stat",
     "inactive_file 4k\n", "memory.stat: inactive_file: not a number: '4k'", LoadScope::Cgroup},
    {"v2 memory.stat without inactive_file", "v2-quota",
     "cgroup/system.slice/kvm.service/memory.stat", "anon 5\n",
     "memory.stat: inactive_file missing", LoadScope::Cgroup},
    {"v2 empty cpuset", "v2-no-limit",
     "cgroup/user.slice/user-1000.slice/session-2.scope/cpuset.cpus.effective", "\n",
     "cpuset.cpus.effective: empty CPU list", LoadScope::System},
    {"meminfo missing", "v2-quota", "proc/meminfo", nullptr, "/meminfo: No such file",
     LoadScope::System},
    {"v1 cpuacct.usage missing", "v1-docker", "cgroup/cpu,cpuacct/docker/abc/cpuacct.usage",
     nullptr, "cpuacct.usage of /docker/abc not found under the cgroup root", LoadScope::System},
    {"v1 cpuacct.usage two values", "v1-docker", "cgroup/cpu,cpuacct/docker/abc/cpuacct.usage",
     "12 13\n", "cpuacct.usage: more than one value", LoadScope::Cgroup},
    {"v1 quota -2", "v1-docker", "cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "-2\n",
     "cpu.cfs_quota_us: not a number: '-2'", LoadScope::System},
    {"v1 period missing", "v1-docker", "cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", nullptr,
     "cpu.cfs_period_us: No such file", LoadScope::System},
    {"v1 period 0", "v1-docker", "cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "0\n",
     "cpu.cfs_period_us: period is 0", LoadScope::System},
    {"v1 period garbage", "v1-docker", "cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100ms\n",
     "cpu.cfs_period_us: not a number: '100ms'", LoadScope::System},
    {"v1 cpu.stat garbage", "v1-docker", "cgroup/cpu,cpuacct/docker/abc/cpu.stat",
     "nr_throttled x\n", "cpu.stat: nr_throttled: not a number", LoadScope::Cgroup},
    {"v1 memory limit empty", "v1-docker", "cgroup/memory/docker/abc/memory.limit_in_bytes", "",
     "memory.limit_in_bytes: empty", LoadScope::System},
    {"v1 memory.stat without total_inactive_file", "v1-docker",
     "cgroup/memory/docker/abc/memory.stat", "cache 5\ninactive_file 3\n",
     "memory.stat: total_inactive_file missing", LoadScope::Cgroup},
    {"v1 cpuset group syntax", "v1-docker", "cgroup/cpuset/docker/abc/cpuset.effective_cpus",
     "0-3:1/2\n", "cpuset.effective_cpus: bad CPU range", LoadScope::System},
    // A v1 hierarchy's path that climbs out, for the usage hierarchy and for
    // an optional one (separate cpu and cpuacct hierarchies).
    {"v1 cpuacct path climbs out", "v1-this-host", "proc/self/cgroup",
     "2:cpuacct:/../escape\n1:cpu:/\n0::/\n",
     "cgroup path '/../escape' lies outside the cgroup namespace", LoadScope::System},
    {"v1 cpu path climbs out", "v1-this-host", "proc/self/cgroup",
     "2:cpuacct:/\n1:cpu:/a/../../escape\n0::/\n",
     "cgroup path '/a/../../escape' lies outside the cgroup namespace", LoadScope::System},
    // A file that is there but cannot be read, at each place the scope reads
    // one: probing a v1 hierarchy, the limits, and the usage.
    {"v1 cpuacct.usage a directory", "v1-docker", "cgroup/cpu,cpuacct/docker/abc/cpuacct.usage",
     "<dir>", "docker/abc/cpuacct.usage: not a regular file", LoadScope::System},
    {"v1 cpu.cfs_quota_us a directory", "v1-docker",
     "cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "<dir>",
     "docker/abc/cpu.cfs_quota_us: not a regular file", LoadScope::System},
    {"v1 cpu.stat a directory", "v1-docker", "cgroup/cpu,cpuacct/docker/abc/cpu.stat", "<dir>",
     "docker/abc/cpu.stat: not a regular file", LoadScope::Cgroup},
    {"v2 cpu.max a directory", "v2-quota", "cgroup/system.slice/kvm.service/cpu.max", "<dir>",
     "kvm.service/cpu.max: not a regular file", LoadScope::System},
    {"v2 cpuset a directory", "v2-no-limit",
     "cgroup/user.slice/user-1000.slice/session-2.scope/cpuset.cpus.effective", "<dir>",
     "session-2.scope/cpuset.cpus.effective: not a regular file", LoadScope::System},
    {"v2 memory.max a directory", "v2-quota", "cgroup/system.slice/kvm.service/memory.max", "<dir>",
     "kvm.service/memory.max: not a regular file", LoadScope::System},
    {"v2 memory.current a directory", "v2-quota", "cgroup/system.slice/kvm.service/memory.current",
     "<dir>", "kvm.service/memory.current: not a regular file", LoadScope::Cgroup},
};

START_TEST(bad_cgroup_table) {
  const BadCgroupCase& c = kBadCgroups[_i];
  HostTree t(c.layout);
  if (!c.contents) {
    t.remove(c.file);
  } else if (std::string(c.contents) == "<dir>") {
    t.remove(c.file);
    t.make_dir(c.file);
  } else {
    t.write(c.file, c.contents);
  }
  LoadSampler sampler(LoadScope::Cgroup, t.proc(), t.cgroup(), kHost);
  for (int i = 1; i <= 3; ++i)
    assert_no_sample(sampler.poll(i * kSec), c.reason, c.name);
  // Auto falls back to the system scope when the cgroup cannot be read at
  // all; a cgroup whose limits read but whose usage does not stays picked.
  const aq::ScopeChoice choice = aq::resolve_scope(LoadScope::Auto, t.proc(), t.cgroup());
  ck_assert_msg(choice.scope == c.auto_scope, "%s: auto picked %s (%s)", c.name,
                aq::scope_name(choice.scope), choice.reason.c_str());
  ck_assert_msg(!choice.reason.empty(), "%s: no reason", c.name);
}
END_TEST

// A v1 quota file that turns unreadable once the cgroup was located: the
// reading fails at the limits, and locating it again fails at the probe.
START_TEST(cgroup_v1_quota_unreadable_after_locating) {
  HostTree t("v1-docker");
  const std::string dir = "cpu,cpuacct/docker/abc";
  LoadSampler sampler(LoadScope::Cgroup, t.proc(), t.cgroup(), kHost);
  write_usage(t, 1, dir, dir.c_str(), 1'000'000'000, 0);
  assert_warming_up(sampler.poll(1 * kSec), "first poll");
  t.remove("cgroup/" + dir + "/cpu.cfs_quota_us");
  t.make_dir("cgroup/" + dir + "/cpu.cfs_quota_us");
  for (int i = 2; i <= 3; ++i)
    assert_no_sample(sampler.poll(i * kSec), "docker/abc/cpu.cfs_quota_us: not a regular file",
                     "quota a directory");
}
END_TEST

START_TEST(cgroup_counters_going_backwards) {
  HostTree t("v2-quota");
  const std::string dir = "system.slice/kvm.service";
  LoadSampler sampler(LoadScope::Cgroup, t.proc(), t.cgroup(), kHost);
  write_usage(t, 2, dir, nullptr, 5'000'000, 100);
  assert_warming_up(sampler.poll(1 * kSec), "first poll");
  write_usage(t, 2, dir, nullptr, 4'000'000, 100);
  assert_no_sample(sampler.poll(2 * kSec), "counters went backwards", "usage backwards");
  // 0.04 s of 0.2 CPUs in 1 s -> 20 %.
  write_usage(t, 2, dir, nullptr, 4'040'000, 100);
  assert_sample(sampler.poll(3 * kSec), 20.0, 86.0, "after usage backwards");
  write_usage(t, 2, dir, nullptr, 4'080'000, 99);
  assert_no_sample(sampler.poll(4 * kSec), "counters went backwards", "throttling backwards");
  write_usage(t, 2, dir, nullptr, 4'080'000, 99);
  assert_no_sample(sampler.poll(4 * kSec), "counters went backwards", "clock stands still");
  // Fine counters: any usage delta is a sample, an idle second is 0 %.
  write_usage(t, 2, dir, nullptr, 4'080'000, 99);
  assert_sample(sampler.poll(5 * kSec), 0.0, 86.0, "idle");
  write_usage(t, 2, dir, nullptr, 4'080'001, 99);
  assert_sample(sampler.poll(5 * kSec + 10 * kMs), 100.0 * 1e3 / (10e6 * 0.2), 86.0, "10 ms");
}
END_TEST

START_TEST(cgroup_move_starts_over) {
  // The process moves to another cgroup: the usage counters are another
  // cgroup's, so the history starts over, and the new quota counts.
  HostTree t("v2-quota");
  const std::string a = "system.slice/kvm.service", b = "system.slice/other.service";
  std::filesystem::copy(t.cgroup_dir() + "/" + a, t.cgroup_dir() + "/" + b);
  t.write("cgroup/" + b + "/cpu.max", "50000 100000\n");
  for (LoadScope scope : {LoadScope::Cgroup, LoadScope::Auto}) {
    LoadSampler sampler(scope, t.proc(), t.cgroup(), kHost);
    t.write("proc/self/cgroup", "0::/" + a + "\n");
    write_usage(t, 2, a, nullptr, 1'000'000, 0);
    write_usage(t, 2, b, nullptr, 9'000'000, 0);
    assert_warming_up(sampler.poll(1 * kSec), "first poll");
    write_usage(t, 2, a, nullptr, 1'100'000, 0);
    assert_sample(sampler.poll(2 * kSec), 50.0, 86.0, "in a");
    t.write("proc/self/cgroup", "0::/" + b + "\n");
    SampleResult r = sampler.poll(3 * kSec);
    assert_warming_up(r, "moved to b");
    ck_assert(contains(r.source.detail, "/system.slice/other.service"));
    // 0.25 s of 0.5 CPUs -> 50 %.
    write_usage(t, 2, b, nullptr, 9'250'000, 0);
    r = sampler.poll(4 * kSec);
    assert_sample(r, 50.0, 86.0, "in b");
    ck_assert(contains(r.source.detail, "0.5 CPUs (cpu.max)"));
  }
}
END_TEST

START_TEST(auto_picks_again_after_a_failure) {
  HostTree t("v2-quota");
  const std::string dir = "system.slice/kvm.service";
  LoadSampler sampler(LoadScope::Auto, t.proc(), t.cgroup(), kHost);
  write_usage(t, 2, dir, nullptr, 1'000'000, 0);
  SampleResult r = sampler.poll(1 * kSec);
  assert_warming_up(r, "first poll");
  ck_assert(r.source.choice.scope == LoadScope::Cgroup);
  write_usage(t, 2, dir, nullptr, 1'200'000, 0);
  assert_sample(sampler.poll(2 * kSec), 100.0, 86.0, "cgroup");
  // The quota becomes unreadable: no sample, then auto picks the system.
  t.write("cgroup/" + dir + "/cpu.max", "garbage\n");
  assert_no_sample(sampler.poll(3 * kSec), "cpu.max", "quota garbage");
  r = sampler.poll(4 * kSec);
  assert_warming_up(r, "system after the failure");
  ck_assert(r.source.choice.scope == LoadScope::System);
  ck_assert_msg(contains(r.source.choice.reason, "unreadable: cpu.max"), "%s",
                r.source.choice.reason.c_str());
  // Repaired: the next failure-free poll keeps the system scope's history.
  t.write("cgroup/" + dir + "/cpu.max", "20000 100000\n");
  r = sampler.poll(5 * kSec);
  ck_assert(r.source.choice.scope == LoadScope::System);
}
END_TEST

// ---- pressure scope ----

START_TEST(pressure_scope_reads_psi) {
  struct Row {
    const char* layout;
    const char* remove;
    double cpu, mem;
    const char* detail;
  };
  const Row rows[] = {
      // The cgroup's own files: cpu some avg10=12.50, memory 1.25.
      {"v2-quota", nullptr, 12.5, 1.25, "of cgroup system.slice/kvm.service"},
      // Without the cgroup's memory.pressure, both come from /proc.
      {"v2-quota", "cgroup/system.slice/kvm.service/memory.pressure", 93.74, 0.0, "of the system"},
      // Hybrid: the v2 cgroup under unified/.
      {"v2-hybrid", nullptr, 20.0, 2.0, "of cgroup unified/kvm.service"},
      {"v2-namespace", nullptr, 30.0, 5.5, "of cgroup /"},
      // v1 controllers: the v2 entry's cgroup is not in the tree.
      {"v1-docker", nullptr, 93.74, 0.0, "of the system"},
  };
  for (const Row& row : rows) {
    HostTree t(row.layout);
    if (row.remove)
      t.remove(row.remove);
    LoadSampler sampler(LoadScope::Pressure, t.proc(), t.cgroup(), kHost);
    // No deltas: the first reading is a sample.
    for (int i = 1; i <= 2; ++i) {
      const SampleResult r = sampler.poll(i * kSec);
      assert_sample(r, row.cpu, row.mem, row.layout);
      ck_assert_msg(contains(r.source.detail, row.detail), "%s: detail '%s'", row.layout,
                    r.source.detail.c_str());
      ck_assert(r.source.choice.scope == LoadScope::Pressure);
    }
  }
}
END_TEST

START_TEST(pressure_scope_bad_files) {
  struct Row {
    const char* layout;
    const char* file;
    const char* contents;  // nullptr: remove; "<dir>": a directory
    const char* reason;
  };
  const Row rows[] = {
      {"v1-docker", "proc/pressure/cpu", nullptr, "pressure/cpu: No such file"},
      {"v1-docker", "proc/pressure/memory", "some avg10=x avg60=0 avg300=0 total=0\n",
       "pressure/memory: some: avg10: not a percentage: 'x'"},
      {"v2-quota", "cgroup/system.slice/kvm.service/cpu.pressure",
       "full avg10=1 avg60=0 avg300=0 total=0\n", "cpu.pressure: no 'some' line"},
      // A v2 path that climbs out is a fault, not the system's figures.
      {"v2-quota", "proc/self/cgroup", "0::/../escape\n",
       "cgroup path '/../escape' lies outside the cgroup namespace"},
      // The cgroup's PSI file there but unreadable.
      {"v2-quota", "cgroup/system.slice/kvm.service/cpu.pressure", "<dir>",
       "kvm.service/cpu.pressure: not a regular file"},
  };
  for (const Row& row : rows) {
    HostTree t(row.layout);
    if (!row.contents) {
      t.remove(row.file);
    } else if (std::string(row.contents) == "<dir>") {
      t.remove(row.file);
      t.make_dir(row.file);
    } else {
      t.write(row.file, row.contents);
    }
    LoadSampler sampler(LoadScope::Pressure, t.proc(), t.cgroup(), kHost);
    for (int i = 1; i <= 2; ++i)
      assert_no_sample(sampler.poll(i * kSec), row.reason, row.file);
  }
}
END_TEST

// ---- the real /proc of this machine ----

// Burns CPU on this thread until the process has used `seconds` of it.
void burn_cpu(double seconds) {
  timespec start{}, now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &start);
  volatile uint64_t sink = 0;
  do {
    for (int i = 0; i < 100000; ++i)
      sink = sink + static_cast<uint64_t>(i);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  } while ((now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 < seconds);
}

START_TEST(host_info_comes_from_sysconf) {
  const HostInfo h = HostInfo::current();
  ck_assert_int_eq(h.clock_ticks_per_second, sysconf(_SC_CLK_TCK));
  ck_assert_int_eq(h.page_size, sysconf(_SC_PAGESIZE));
  ck_assert_int_eq(h.cpu_count, sysconf(_SC_NPROCESSORS_ONLN));
}
END_TEST

START_TEST(host_info_follows_the_affinity_mask) {
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  cpu_set_t before;
  ck_assert_int_eq(sched_getaffinity(0, sizeof before, &before), 0);
  const HostInfo h = HostInfo::current();
  // Unpinned: empty, so the system scope reads the aggregate line.
  if (CPU_COUNT(&before) >= online) {
    ck_assert_uint_eq(h.allowed_cpus.size(), 0);
  } else {
    ck_assert_int_eq(static_cast<long>(h.allowed_cpus.size()), CPU_COUNT(&before));
  }
  ck_assert_int_eq(h.allowed_cpu_count(), CPU_COUNT(&before));
  if (CPU_COUNT(&before) < 2) {
    std::printf("host_info_follows_the_affinity_mask: one allowed CPU, pinning not tried\n");
    return;
  }
  // Pinned to the highest allowed CPU, and restored at the scope's end,
  // before asserting: without fork mode the test shares the process.
  HostInfo pinned;
  int last = -1;
  {
    const onecpu::BoundToOneCpu one(onecpu::Which::Last);
    last = one.cpu();
    pinned = HostInfo::current();
  }
  ck_assert_int_ge(last, 0);
  ck_assert(CPU_ISSET(last, &before));
  cpu_set_t after;
  ck_assert_int_eq(sched_getaffinity(0, sizeof after, &after), 0);
  ck_assert(CPU_EQUAL(&after, &before));
  ck_assert_uint_eq(pinned.allowed_cpus.size(), 1);
  ck_assert_uint_eq(pinned.allowed_cpus[0], static_cast<unsigned>(last));
  ck_assert_int_eq(pinned.allowed_cpu_count(), 1);
  ck_assert_int_eq(pinned.cpu_count, online);
}
END_TEST

START_TEST(real_proc_gives_samples) {
  DirProcFiles files("/proc");
  LoadSampler system(LoadScope::System, files, no_cgroup(), HostInfo::current());
  LoadSampler process(LoadScope::Process, files, no_cgroup(), HostInfo::current());
  assert_warming_up(system.poll(aq::monotonic_now_ns()), "system first poll");
  assert_warming_up(process.poll(aq::monotonic_now_ns()), "process first poll");
  // At least 0.2 s of this process's CPU time is at least ~20 ticks.
  burn_cpu(0.2);
  // qemu-user answers /proc/self/stat itself with utime and stime 0: there
  // the process scope has no CPU time to read.
  std::string text;
  ck_assert(aqtest::read_file("/proc/self/stat", text));
  const auto own = aq::parse_pid_stat(text);
  ck_assert_msg(own.ok, "%s", own.error.c_str());
  const bool counted = own.value.utime + own.value.stime > 0;
  if (!counted)
    std::printf(
        "real_proc_gives_samples: /proc/self/stat shows no CPU time (an emulator's);"
        " process scope not checked\n");
  for (LoadSampler* s : {&system, &process}) {
    if (s == &process && !counted)
      continue;
    const SampleResult r = s->poll(aq::monotonic_now_ns());
    ck_assert_msg(r.sample.has_value(), "no sample from /proc: %s", r.reason.c_str());
    ck_assert(r.sample->cpu_percent > 0.0 && r.sample->cpu_percent <= 100.0);
    ck_assert(r.sample->mem_percent > 0.0 && r.sample->mem_percent < 100.0);
  }
}
END_TEST

// ---- the shared sampler ----

bool wait_for(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + kWaitLimit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Counts files in one directory closed after reading, as the kernel sees
// them: each is one real read of the file.
class ReadCounter {
 public:
  explicit ReadCounter(const std::string& dir) {
    fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    ck_assert_msg(fd_ >= 0, "inotify_init1: %s", std::strerror(errno));
    ck_assert_msg(inotify_add_watch(fd_, dir.c_str(), IN_CLOSE_NOWRITE) >= 0,
                  "inotify_add_watch: %s", std::strerror(errno));
  }
  ~ReadCounter() { ::close(fd_); }
  ReadCounter(const ReadCounter&) = delete;
  ReadCounter& operator=(const ReadCounter&) = delete;

  // Drained often so the kernel never merges two equal events in the queue.
  void drain() {
    alignas(inotify_event) char buf[8192];
    for (;;) {
      const ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0)
        return;
      for (ssize_t off = 0; off < n;) {
        const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
        ck_assert_msg(!(ev->mask & IN_Q_OVERFLOW), "inotify queue overflow");
        if (ev->len > 0)
          ++counts_[ev->name];
        off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
      }
    }
  }
  int count(const std::string& name) {
    drain();
    return counts_[name];
  }

 private:
  int fd_ = -1;
  std::map<std::string, int> counts_;
};

using Subscriptions = std::vector<std::unique_ptr<SharedSampler::Subscription>>;

START_TEST(hundred_subscribers_share_one_read_per_interval) {
  ProcTree tree;
  tree.write("stat", stat_text({1000, 0, 500, 8000, 500, 0, 0, 0, 0, 0}));
  tree.write("meminfo", meminfo_text(1'000'000, 250'000));
  ReadCounter counter(tree.dir());

  const int64_t interval = 100 * kMs;
  Subscriptions subs;
  for (int i = 0; i < 100; ++i)
    subs.push_back(SharedSampler::subscribe(tree.dir(), aq::kDefaultCgroupRoot, LoadScope::System, interval));
  SharedSampler& shared = subs[0]->sampler();
  for (const auto& s : subs)
    ck_assert_ptr_eq(&s->sampler(), &shared);
  ck_assert_uint_eq(shared.subscribers(), 100);
  ck_assert_int_eq(shared.interval_ns(), interval);
  ck_assert(wait_for([&] { return shared.reads() >= 1; }));

  const auto start = std::chrono::steady_clock::now();
  const uint64_t before = shared.reads();
  while (seconds_since(start) < 1.0) {
    counter.drain();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const uint64_t after = shared.reads();
  const double periods = seconds_since(start) / 0.1;
  const double reads = static_cast<double>(after - before);
  // About one read per 100 ms for all 100 subscribers together, never one
  // each. The lower bound leaves room for a busy machine.
  ck_assert_msg(reads <= periods + 2, "%g reads in %g intervals", reads, periods);
  ck_assert_msg(reads >= periods / 2 - 1, "%g reads in %g intervals", reads, periods);

  // Every counted read opened each file exactly once; a read still in
  // progress may have closed a file before it was counted.
  const auto total = static_cast<int>(shared.reads());
  const int stat_reads = counter.count("stat");
  const int meminfo_reads = counter.count("meminfo");
  ck_assert_msg(stat_reads >= total && stat_reads <= total + 1, "stat read %d times in %d reads",
                stat_reads, total);
  ck_assert_msg(meminfo_reads >= total && meminfo_reads <= total + 1,
                "meminfo read %d times in %d reads", meminfo_reads, total);
}
END_TEST

START_TEST(shared_latest_gives_the_exact_sample) {
  ProcTree tree;
  tree.write("meminfo", meminfo_text(1'000'000, 250'000));
  uint64_t step = 0;
  auto advance = [&] {
    // user +1, idle +3 per step: 25 % busy over any number of steps.
    ++step;
    tree.write("stat",
               stat_text_every_cpu({1000 + step, 0, 500, 8000 + 3 * step, 500, 0, 0, 0, 0, 0}));
  };
  advance();
  auto sub = SharedSampler::subscribe(tree.dir(), aq::kDefaultCgroupRoot, LoadScope::System, 30 * kMs);
  ck_assert(wait_for([&] {
    advance();
    return sub->latest().sample.has_value();
  }));
  const aq::SharedReading r = sub->latest();
  ck_assert_double_eq_tol(r.sample->cpu_percent, 25.0, kTol);
  ck_assert_double_eq_tol(r.sample->mem_percent, 75.0, kTol);
  ck_assert(!r.warming_up);
  ck_assert_uint_ge(r.sequence, 2);  // the first read only warms up
  ck_assert_int_gt(r.taken_ns, 0);
  // The sequence keeps growing with every read.
  ck_assert(wait_for([&] { return sub->latest().sequence > r.sequence; }));
}
END_TEST

START_TEST(shared_reports_why_there_is_no_sample) {
  const std::string root = "/nonexistent-aq-core-root/shared";
  auto sub = SharedSampler::subscribe(root, aq::kDefaultCgroupRoot, LoadScope::Process, 20 * kMs);
  ck_assert(wait_for([&] { return sub->latest().sequence >= 3; }));
  const aq::SharedReading r = sub->latest();
  ck_assert(!r.sample.has_value());
  ck_assert(!r.warming_up);
  ck_assert_msg(contains(r.reason, root + "/meminfo"), "reason '%s'", r.reason.c_str());
}
END_TEST

START_TEST(shared_sampler_per_root_and_scope) {
  ProcTree a, b;
  auto a_system = SharedSampler::subscribe(a.dir(), aq::kDefaultCgroupRoot, LoadScope::System, 100 * kMs);
  auto a_system2 = SharedSampler::subscribe(a.dir(), aq::kDefaultCgroupRoot, LoadScope::System, 200 * kMs);
  auto a_process = SharedSampler::subscribe(a.dir(), aq::kDefaultCgroupRoot, LoadScope::Process, 100 * kMs);
  auto b_system = SharedSampler::subscribe(b.dir(), aq::kDefaultCgroupRoot, LoadScope::System, 100 * kMs);
  ck_assert_ptr_eq(&a_system->sampler(), &a_system2->sampler());
  ck_assert_ptr_ne(&a_system->sampler(), &a_process->sampler());
  ck_assert_ptr_ne(&a_system->sampler(), &b_system->sampler());
  ck_assert_uint_eq(a_system->sampler().subscribers(), 2);
  ck_assert_uint_eq(a_process->sampler().subscribers(), 1);
}
END_TEST

START_TEST(shared_sampler_per_cgroup_root) {
  HostTree a("v2-quota"), b("v2-quota");
  auto x = SharedSampler::subscribe(a.proc_dir(), a.cgroup_dir(), LoadScope::Cgroup, 20 * kMs);
  auto x2 = SharedSampler::subscribe(a.proc_dir(), a.cgroup_dir(), LoadScope::Cgroup, 50 * kMs);
  auto y = SharedSampler::subscribe(a.proc_dir(), b.cgroup_dir(), LoadScope::Cgroup, 20 * kMs);
  auto automatic =
      SharedSampler::subscribe(a.proc_dir(), a.cgroup_dir(), LoadScope::Auto, 20 * kMs);
  ck_assert_ptr_eq(&x->sampler(), &x2->sampler());
  ck_assert_ptr_ne(&x->sampler(), &y->sampler());
  ck_assert_ptr_ne(&x->sampler(), &automatic->sampler());
  // Another cgroup root is another sampler.
  auto d =
      SharedSampler::subscribe(a.proc_dir(), aq::kDefaultCgroupRoot, LoadScope::Cgroup, 20 * kMs);
  ck_assert_ptr_ne(&d->sampler(), &x->sampler());
  // The reading says what was read, auto resolved.
  ck_assert(
      wait_for([&] { return automatic->latest().sequence >= 1 && x->latest().sequence >= 1; }));
  const aq::SharedReading r = automatic->latest();
  ck_assert(r.source.choice.scope == LoadScope::Cgroup);
  ck_assert_msg(contains(r.source.choice.reason, "CPU quota of 0.2 CPUs"), "%s",
                r.source.choice.reason.c_str());
  ck_assert_msg(contains(x->latest().source.detail, "/system.slice/kvm.service"), "%s",
                x->latest().source.detail.c_str());
  ck_assert(x->latest().source.nr_throttled == std::optional<uint64_t>(120));
}
END_TEST

START_TEST(shared_interval_is_the_shortest_subscribed) {
  ProcTree tree;
  auto slow = SharedSampler::subscribe(tree.dir(), aq::kDefaultCgroupRoot, LoadScope::System, 300 * kMs);
  SharedSampler& shared = slow->sampler();
  ck_assert_int_eq(shared.interval_ns(), 300 * kMs);
  {
    auto fast = SharedSampler::subscribe(tree.dir(), aq::kDefaultCgroupRoot, LoadScope::System, 100 * kMs);
    ck_assert_int_eq(shared.interval_ns(), 100 * kMs);
    ck_assert_uint_eq(shared.subscribers(), 2);
  }
  ck_assert_int_eq(shared.interval_ns(), 300 * kMs);
  ck_assert_uint_eq(shared.subscribers(), 1);
  slow->set_interval(200 * kMs);
  ck_assert_int_eq(shared.interval_ns(), 200 * kMs);
  // Below 1 ms is raised to 1 ms, so the thread cannot spin.
  slow->set_interval(0);
  ck_assert_int_eq(shared.interval_ns(), 1 * kMs);
}
END_TEST

// A new subscriber with a shorter interval wakes the thread sleeping out the
// long one, as a new interval does.
START_TEST(shared_new_subscriber_shortens_the_period) {
  ProcTree tree;
  tree.write("stat", stat_text({1000, 0, 500, 8000, 500, 0, 0, 0, 0, 0}));
  tree.write("meminfo", meminfo_text(1'000'000, 250'000));
  auto slow = SharedSampler::subscribe(tree.dir(), aq::kDefaultCgroupRoot, LoadScope::System,
                                       10 * kSec);
  SharedSampler& shared = slow->sampler();
  ck_assert(wait_for([&] { return shared.reads() >= 1; }));
  // Past the first read, which may have come before the interval was set.
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  const uint64_t before = shared.reads();
  const auto start = std::chrono::steady_clock::now();
  auto fast = SharedSampler::subscribe(tree.dir(), aq::kDefaultCgroupRoot, LoadScope::System,
                                       50 * kMs);
  ck_assert(&fast->sampler() == &shared);
  // Without the wake-up the next read would come 10 s after the last.
  ck_assert(wait_for([&] { return shared.reads() >= before + 3; }));
  ck_assert_msg(seconds_since(start) < 5.0, "3 reads took %g s", seconds_since(start));
}
END_TEST

START_TEST(shared_set_interval_shortens_the_period) {
  ProcTree tree;
  tree.write("stat", stat_text({1000, 0, 500, 8000, 500, 0, 0, 0, 0, 0}));
  tree.write("meminfo", meminfo_text(1'000'000, 250'000));
  auto sub = SharedSampler::subscribe(tree.dir(), aq::kDefaultCgroupRoot, LoadScope::System, 2 * kSec);
  SharedSampler& shared = sub->sampler();
  ck_assert(wait_for([&] { return shared.reads() >= 1; }));

  // At 2 s, half a second holds at most one read.
  uint64_t before = shared.reads();
  auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ck_assert_uint_le(shared.reads() - before, 1);

  // At 50 ms the sleeping thread wakes up and a second holds about 20.
  sub->set_interval(50 * kMs);
  ck_assert_int_eq(shared.interval_ns(), 50 * kMs);
  before = shared.reads();
  start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  double periods = seconds_since(start) / 0.05;
  double reads = static_cast<double>(shared.reads() - before);
  ck_assert_msg(reads >= 8 && reads <= periods + 2, "%g reads in %g intervals", reads, periods);

  // Back to 2 s: the read already scheduled, then none.
  sub->set_interval(2 * kSec);
  before = shared.reads();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  ck_assert_uint_le(shared.reads() - before, 2);
}
END_TEST

// Each tick of each element sets its interval again: an unchanged one must
// not wake the thread, or 100 elements cost it 200 wake-ups a second.
START_TEST(shared_unchanged_interval_does_not_wake) {
  ProcTree tree;
  tree.write("stat", stat_text({1000, 0, 500, 8000, 500, 0, 0, 0, 0, 0}));
  tree.write("meminfo", meminfo_text(1'000'000, 250'000));
  auto sub = SharedSampler::subscribe(tree.dir(), aq::kDefaultCgroupRoot, LoadScope::System, 10 * kSec);
  SharedSampler& shared = sub->sampler();
  ck_assert(wait_for([&] { return shared.reads() >= 1; }));
  const uint64_t before = shared.wakeups();
  for (int i = 0; i < 200; i++) {
    sub->set_interval(10 * kSec);
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  // One spurious wake-up allowed; the next deadline is 10 s away.
  ck_assert_uint_le(shared.wakeups() - before, 1);
  // A change still wakes it.
  sub->set_interval(20 * kMs);
  ck_assert(wait_for([&] { return shared.wakeups() > before + 1 && shared.reads() >= 2; }));
}
END_TEST

START_TEST(shared_resubscribe_after_all_dropped) {
  ProcTree tree;
  tree.write("stat", stat_text({1000, 0, 500, 8000, 500, 0, 0, 0, 0, 0}));
  tree.write("meminfo", meminfo_text(1'000'000, 250'000));
  Subscriptions subs;
  for (int i = 0; i < 3; ++i)
    subs.push_back(SharedSampler::subscribe(tree.dir(), aq::kDefaultCgroupRoot, LoadScope::System, 10 * kMs));
  ck_assert(wait_for([&] { return subs[0]->sampler().reads() >= 10; }));
  subs.clear();  // the last one stops the thread

  // A fresh sampler: one subscriber, and its read count starts over (the
  // old one had at least 10; at 1 s a new one has read at most twice).
  auto sub = SharedSampler::subscribe(tree.dir(), aq::kDefaultCgroupRoot, LoadScope::System, 1 * kSec);
  SharedSampler& shared = sub->sampler();
  ck_assert_uint_eq(shared.subscribers(), 1);
  ck_assert_uint_le(shared.reads(), 2);
  ck_assert(wait_for([&] { return shared.reads() >= 1; }));
  ck_assert_uint_ge(sub->latest().sequence, 1);
  // And it is shared again.
  auto second = SharedSampler::subscribe(tree.dir(), aq::kDefaultCgroupRoot, LoadScope::System, 1 * kSec);
  ck_assert_ptr_eq(&second->sampler(), &shared);
  ck_assert_uint_eq(shared.subscribers(), 2);
}
END_TEST

START_TEST(shared_on_real_proc) {
  auto sub = SharedSampler::subscribe("/proc", aq::kDefaultCgroupRoot, LoadScope::System, 50 * kMs);
  ck_assert(wait_for([&] { return sub->latest().sample.has_value(); }));
  const auto s = *sub->latest().sample;
  ck_assert(s.cpu_percent >= 0.0 && s.cpu_percent <= 100.0);
  ck_assert(s.mem_percent > 0.0 && s.mem_percent < 100.0);
}
END_TEST

Suite* load_sampler_suite() {
  Suite* s = suite_create("load_sampler");
  TCase* exact = tcase_create("exact");
  tcase_add_test(exact, system_scope_exact_percentages);
  tcase_add_test(exact, system_scope_with_real_fixture_files);
  tcase_add_test(exact, system_scope_no_ticks_elapsed);
  tcase_add_test(exact, process_scope_exact_percentages);
  tcase_add_test(exact, process_scope_uses_the_injected_host);
  tcase_add_test(exact, system_scope_reads_only_the_allowed_cpus);
  tcase_add_test(exact, system_scope_sums_several_allowed_cpus);
  tcase_add_test(exact, system_scope_allowed_cpus_overflowing_their_sum);
  tcase_add_test(exact, system_scope_allowed_cpu_going_offline);
  tcase_add_test(exact, process_scope_is_a_share_of_the_allowed_cpus);
  suite_add_tcase(s, exact);

  TCase* window = tcase_create("window");
  tcase_add_test(window, window_reads_a_steady_load_at_10_ms);
  tcase_add_test(window, window_constant_ratio_reads_exactly);
  tcase_add_test(window, window_process_scope_spans_a_second_of_one_cpu);
  tcase_add_test(window, window_history_is_bounded);
  tcase_set_timeout(window, 60);
  suite_add_tcase(s, window);

  TCase* bad = tcase_create("bad");
  tcase_add_test(bad, missing_root_gives_no_sample);
  tcase_add_test(bad, fifo_and_endless_files_fail_fast);
  tcase_add_test(bad, read_error_after_open_fails);
  tcase_add_loop_test(bad, bad_file_table, 0, aqtest::count(kBadFiles));
  tcase_add_test(bad, system_counter_going_backwards);
  tcase_add_test(bad, process_counter_or_clock_going_backwards);
  tcase_add_test(bad, random_garbage_never_crashes);
  tcase_set_timeout(bad, 60);
  suite_add_tcase(s, bad);

  TCase* cgroup = tcase_create("cgroup");
  tcase_add_loop_test(cgroup, cgroup_layout_table, 0, aqtest::count(kCgroupCases));
  tcase_add_test(cgroup, explicit_scopes_are_not_resolved);
  tcase_add_test(cgroup, cgroup_v1_joint_hierarchy_mounted_apart);
  tcase_add_loop_test(cgroup, bad_cgroup_table, 0, aqtest::count(kBadCgroups));
  tcase_add_test(cgroup, cgroup_v1_quota_unreadable_after_locating);
  tcase_add_test(cgroup, cgroup_counters_going_backwards);
  tcase_add_test(cgroup, cgroup_move_starts_over);
  tcase_add_test(cgroup, auto_picks_again_after_a_failure);
  tcase_add_test(cgroup, pressure_scope_reads_psi);
  tcase_add_test(cgroup, pressure_scope_bad_files);
  tcase_set_timeout(cgroup, 60);
  suite_add_tcase(s, cgroup);

  TCase* real = tcase_create("real");
  tcase_add_test(real, host_info_comes_from_sysconf);
  tcase_add_test(real, host_info_follows_the_affinity_mask);
  tcase_add_test(real, real_proc_gives_samples);
  tcase_set_timeout(real, 60);
  suite_add_tcase(s, real);

  TCase* shared = tcase_create("shared");
  tcase_add_test(shared, hundred_subscribers_share_one_read_per_interval);
  tcase_add_test(shared, shared_latest_gives_the_exact_sample);
  tcase_add_test(shared, shared_reports_why_there_is_no_sample);
  tcase_add_test(shared, shared_sampler_per_root_and_scope);
  tcase_add_test(shared, shared_sampler_per_cgroup_root);
  tcase_add_test(shared, shared_interval_is_the_shortest_subscribed);
  tcase_add_test(shared, shared_set_interval_shortens_the_period);
  tcase_add_test(shared, shared_unchanged_interval_does_not_wake);
  tcase_add_test(shared, shared_new_subscriber_shortens_the_period);
  tcase_add_test(shared, shared_resubscribe_after_all_dropped);
  tcase_add_test(shared, shared_on_real_proc);
  tcase_set_timeout(shared, 120);
  suite_add_tcase(s, shared);
  return s;
}

}  // namespace

int main() {
  return aqtest::run_suite(load_sampler_suite());
}
