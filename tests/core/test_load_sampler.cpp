// Load sampler: exact CPU and memory percentages from fixture procfs trees
// rewritten between polls, bad trees giving no sample and a reason, and the
// shared sampler serving many subscribers from one read per interval.
// SPDX-License-Identifier: LGPL-2.1-or-later

#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

#include "load_sampler.h"
#include "core_test.h"

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

std::string stat_text(const Cpu& c) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "cpu  %ju %ju %ju %ju %ju %ju %ju %ju %ju %ju\n"
                "cpu0 1 2 3 4 5 6 7 8 0 0\nintr 12 0 0\nctxt 99\n",
                uintmax_t{c.user}, uintmax_t{c.nice}, uintmax_t{c.system}, uintmax_t{c.idle},
                uintmax_t{c.iowait}, uintmax_t{c.irq}, uintmax_t{c.softirq}, uintmax_t{c.steal},
                uintmax_t{c.guest}, uintmax_t{c.guest_nice});
  return buf;
}

std::string meminfo_text(uint64_t total_kb, uint64_t available_kb) {
  return "MemTotal:       " + std::to_string(total_kb) + " kB\nMemFree:        " +
         std::to_string(available_kb / 2) + " kB\nMemAvailable:   " +
         std::to_string(available_kb) + " kB\nBuffers:            1312 kB\n";
}

// Fields as in proc(5): utime is 14, stime 15, rss 24.
std::string pid_stat_text(uint64_t utime, uint64_t stime) {
  return "4242 (aq (test) x) S 1 4242 4242 0 -1 4194304 310 0 0 0 " + std::to_string(utime) +
         " " + std::to_string(stime) + " 0 0 20 0 3 0 1300226 4464640 762 " +
         "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
}

std::string statm_text(uint64_t resident_pages) {
  return "90000 " + std::to_string(resident_pages) + " 703 193 0 109 0\n";
}

// The process scope's host facts fixed, so the expected numbers are exact.
const HostInfo kHost{100, 4096, 2};

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
  LoadSampler sampler(LoadScope::System, files, kHost);

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

  // The wall clock plays no part in the system scope: +10 busy of +40
  // over any interval -> 25 %. mem (1e6-75e4)/1e6 -> 25 %.
  tree.write("stat", stat_text({1410, 100, 600, 8730, 650, 50, 30, 20, 250, 0}));
  tree.write("meminfo", meminfo_text(1'000'000, 750'000));
  assert_sample(sampler.poll(4 * kSec + 1), 25.0, 25.0, "fifth poll");
}
END_TEST

START_TEST(system_scope_with_real_fixture_files) {
  // The captured texts parse as a tree; the stat is then advanced by hand:
  // user +30, idle +70 -> 30 %. mem (24684092-24358576)/24684092.
  ProcTree tree;
  tree.write("stat", aqtest::read_fixture("proc/stat"));
  tree.write("meminfo", aqtest::read_fixture("proc/meminfo"));
  DirProcFiles files(tree.dir());
  LoadSampler sampler(LoadScope::System, files, kHost);
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
  LoadSampler sampler(LoadScope::System, files, kHost);
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
  LoadSampler sampler(LoadScope::Process, files, kHost);
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
  LoadSampler sampler(LoadScope::Process, files, HostInfo{250, 16384, 1});
  tree.write("meminfo", meminfo_text(1'600'000, 100'000));
  tree.write("self/stat", pid_stat_text(100, 50));
  tree.write("self/statm", statm_text(25'000));
  assert_warming_up(sampler.poll(1 * kSec), "first poll");
  tree.write("self/stat", pid_stat_text(130, 70));
  assert_sample(sampler.poll(2 * kSec), 20.0, 25.0, "second poll");
}
END_TEST

// ---- bad trees ----

START_TEST(missing_root_gives_no_sample) {
  const std::string root = "/nonexistent-aq-core-root/proc";
  DirProcFiles files(root);
  for (LoadScope scope : {LoadScope::System, LoadScope::Process}) {
    LoadSampler sampler(scope, files, kHost);
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
  LoadSampler sampler(c.scope, files, kHost);
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
  LoadSampler sampler(LoadScope::System, files, kHost);
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
  LoadSampler sampler(LoadScope::Process, files, kHost);
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
  LoadSampler system(LoadScope::System, files, kHost);
  LoadSampler process(LoadScope::Process, files, kHost);
  std::mt19937 rng(20240611);
  uint64_t counter = 1000;
  int samples = 0;
  for (int i = 1; i <= 600; ++i) {
    counter += rng() % 50;
    const std::string good[] = {stat_text({counter, 0, counter / 2, 4 * counter, 0, 0, 0, 0, 0, 0}),
                                meminfo_text(1'000'000, rng() % 2'000'000),
                                pid_stat_text(counter, counter / 3),
                                statm_text(rng() % 1'000'000)};
    const char* names[] = {"stat", "meminfo", "self/stat", "self/statm"};
    for (int f = 0; f < 4; ++f) {
      std::string text = good[f];
      switch (rng() % 8) {
        case 0:
          text.resize(rng() % (text.size() + 1));
          break;
        case 1:
          for (int k = 0; k < 3; ++k) text[rng() % text.size()] = static_cast<char>(rng() % 256);
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

// ---- the real /proc of this machine ----

// Burns CPU on this thread until the process has used `seconds` of it.
void burn_cpu(double seconds) {
  timespec start{}, now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &start);
  volatile uint64_t sink = 0;
  do {
    for (int i = 0; i < 100000; ++i) sink = sink + static_cast<uint64_t>(i);
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

START_TEST(real_proc_gives_samples) {
  DirProcFiles files("/proc");
  LoadSampler system(LoadScope::System, files, HostInfo::current());
  LoadSampler process(LoadScope::Process, files, HostInfo::current());
  assert_warming_up(system.poll(aq::monotonic_now_ns()), "system first poll");
  assert_warming_up(process.poll(aq::monotonic_now_ns()), "process first poll");
  // At least 0.2 s of this process's CPU time is at least ~20 ticks.
  burn_cpu(0.2);
  for (LoadSampler* s : {&system, &process}) {
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
    if (std::chrono::steady_clock::now() > deadline) return false;
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
      if (n <= 0) return;
      for (ssize_t off = 0; off < n;) {
        const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
        ck_assert_msg(!(ev->mask & IN_Q_OVERFLOW), "inotify queue overflow");
        if (ev->len > 0) ++counts_[ev->name];
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
    subs.push_back(SharedSampler::subscribe(tree.dir(), LoadScope::System, interval));
  SharedSampler& shared = subs[0]->sampler();
  for (const auto& s : subs) ck_assert_ptr_eq(&s->sampler(), &shared);
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
    tree.write("stat", stat_text({1000 + step, 0, 500, 8000 + 3 * step, 500, 0, 0, 0, 0, 0}));
  };
  advance();
  auto sub = SharedSampler::subscribe(tree.dir(), LoadScope::System, 30 * kMs);
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
  auto sub = SharedSampler::subscribe(root, LoadScope::Process, 20 * kMs);
  ck_assert(wait_for([&] { return sub->latest().sequence >= 3; }));
  const aq::SharedReading r = sub->latest();
  ck_assert(!r.sample.has_value());
  ck_assert(!r.warming_up);
  ck_assert_msg(contains(r.reason, root + "/meminfo"), "reason '%s'", r.reason.c_str());
}
END_TEST

START_TEST(shared_sampler_per_root_and_scope) {
  ProcTree a, b;
  auto a_system = SharedSampler::subscribe(a.dir(), LoadScope::System, 100 * kMs);
  auto a_system2 = SharedSampler::subscribe(a.dir(), LoadScope::System, 200 * kMs);
  auto a_process = SharedSampler::subscribe(a.dir(), LoadScope::Process, 100 * kMs);
  auto b_system = SharedSampler::subscribe(b.dir(), LoadScope::System, 100 * kMs);
  ck_assert_ptr_eq(&a_system->sampler(), &a_system2->sampler());
  ck_assert_ptr_ne(&a_system->sampler(), &a_process->sampler());
  ck_assert_ptr_ne(&a_system->sampler(), &b_system->sampler());
  ck_assert_uint_eq(a_system->sampler().subscribers(), 2);
  ck_assert_uint_eq(a_process->sampler().subscribers(), 1);
}
END_TEST

START_TEST(shared_interval_is_the_shortest_subscribed) {
  ProcTree tree;
  auto slow = SharedSampler::subscribe(tree.dir(), LoadScope::System, 300 * kMs);
  SharedSampler& shared = slow->sampler();
  ck_assert_int_eq(shared.interval_ns(), 300 * kMs);
  {
    auto fast = SharedSampler::subscribe(tree.dir(), LoadScope::System, 100 * kMs);
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

START_TEST(shared_set_interval_shortens_the_period) {
  ProcTree tree;
  tree.write("stat", stat_text({1000, 0, 500, 8000, 500, 0, 0, 0, 0, 0}));
  tree.write("meminfo", meminfo_text(1'000'000, 250'000));
  auto sub = SharedSampler::subscribe(tree.dir(), LoadScope::System, 2 * kSec);
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

START_TEST(shared_resubscribe_after_all_dropped) {
  ProcTree tree;
  tree.write("stat", stat_text({1000, 0, 500, 8000, 500, 0, 0, 0, 0, 0}));
  tree.write("meminfo", meminfo_text(1'000'000, 250'000));
  Subscriptions subs;
  for (int i = 0; i < 3; ++i)
    subs.push_back(SharedSampler::subscribe(tree.dir(), LoadScope::System, 10 * kMs));
  ck_assert(wait_for([&] { return subs[0]->sampler().reads() >= 10; }));
  subs.clear();  // the last one stops the thread

  // A fresh sampler: one subscriber, and its read count starts over (the
  // old one had at least 10; at 1 s a new one has read at most twice).
  auto sub = SharedSampler::subscribe(tree.dir(), LoadScope::System, 1 * kSec);
  SharedSampler& shared = sub->sampler();
  ck_assert_uint_eq(shared.subscribers(), 1);
  ck_assert_uint_le(shared.reads(), 2);
  ck_assert(wait_for([&] { return shared.reads() >= 1; }));
  ck_assert_uint_ge(sub->latest().sequence, 1);
  // And it is shared again.
  auto second = SharedSampler::subscribe(tree.dir(), LoadScope::System, 1 * kSec);
  ck_assert_ptr_eq(&second->sampler(), &shared);
  ck_assert_uint_eq(shared.subscribers(), 2);
}
END_TEST

START_TEST(shared_on_real_proc) {
  auto sub = SharedSampler::subscribe("/proc", LoadScope::System, 50 * kMs);
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
  suite_add_tcase(s, exact);

  TCase* bad = tcase_create("bad");
  tcase_add_test(bad, missing_root_gives_no_sample);
  tcase_add_test(bad, fifo_and_endless_files_fail_fast);
  tcase_add_loop_test(bad, bad_file_table, 0, aqtest::count(kBadFiles));
  tcase_add_test(bad, system_counter_going_backwards);
  tcase_add_test(bad, process_counter_or_clock_going_backwards);
  tcase_add_test(bad, random_garbage_never_crashes);
  tcase_set_timeout(bad, 60);
  suite_add_tcase(s, bad);

  TCase* real = tcase_create("real");
  tcase_add_test(real, host_info_comes_from_sysconf);
  tcase_add_test(real, real_proc_gives_samples);
  tcase_set_timeout(real, 60);
  suite_add_tcase(s, real);

  TCase* shared = tcase_create("shared");
  tcase_add_test(shared, hundred_subscribers_share_one_read_per_interval);
  tcase_add_test(shared, shared_latest_gives_the_exact_sample);
  tcase_add_test(shared, shared_reports_why_there_is_no_sample);
  tcase_add_test(shared, shared_sampler_per_root_and_scope);
  tcase_add_test(shared, shared_interval_is_the_shortest_subscribed);
  tcase_add_test(shared, shared_set_interval_shortens_the_period);
  tcase_add_test(shared, shared_resubscribe_after_all_dropped);
  tcase_add_test(shared, shared_on_real_proc);
  tcase_set_timeout(shared, 120);
  suite_add_tcase(s, shared);
  return s;
}

}  // namespace

int main() { return aqtest::run_suite(load_sampler_suite()); }
