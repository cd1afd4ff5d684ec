/* Test helpers that need neither GStreamer nor Check: bounded waiting, and
 * the texts and files of fixture /proc trees. aq_test.h builds on them for
 * the element suites; the element fuzz target includes this part only.
 * Plain C++17 and POSIX.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <thread>

namespace aqt {

/* How many times slower than native this run is. The dynamic checkers set
 * CK_TIMEOUT_MULTIPLIER (valgrind: 4); time limits grow by it, so a slow
 * run is not taken for a hang. */
inline int slowdown() {
  static const int factor = [] {
    const char* env = std::getenv("CK_TIMEOUT_MULTIPLIER");
    return std::max(env ? std::atoi(env) : 1, 1);
  }();
  return factor;
}

/* "Eventually": generous, since the machine is shared; waits end as soon as
 * their condition holds, so the limit only costs time on a failure. */
constexpr int64_t kWaitUs = 30 * 1000 * 1000;

/* Polls `done` every `poll_us` until it holds (true) or `timeout_us`, scaled
 * by slowdown(), has passed (false). */
template <class Pred>
bool wait_until(Pred done, int64_t timeout_us = kWaitUs, int64_t poll_us = 1000) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::microseconds(timeout_us * slowdown());
  while (!done()) {
    if (Clock::now() >= deadline)
      return done();
    std::this_thread::sleep_for(std::chrono::microseconds(poll_us));
  }
  return true;
}

/* ---- /proc texts ---- */

constexpr uint64_t kMemTotalKb = 1000000;

/* /proc/stat with the aggregate "cpu" line and one line per CPU of the
 * machine, each with the same counters: a pinned process (taskset) reads
 * only its CPUs' lines, and finds the same percentage there. `busy` ticks
 * are split between user and system time and `idle` ones between idle and
 * iowait, so a reader must count all four right to get the percentage. */
inline std::string stat_text(uint64_t busy, uint64_t idle) {
  const std::string counters = std::to_string(busy - busy / 2) + " 0 " + std::to_string(busy / 2) +
                               " " + std::to_string(idle - idle / 2) + " " +
                               std::to_string(idle / 2) + " 0 0 0 0 0\n";
  std::string text = "cpu  " + counters;
  for (long id = 0; id < std::max(1L, sysconf(_SC_NPROCESSORS_CONF)); id++)
    text += "cpu" + std::to_string(id) + " " + counters;
  return text + "intr 0\n";
}

inline std::string meminfo_text_kb(uint64_t total_kb, uint64_t available_kb) {
  return "MemTotal:       " + std::to_string(total_kb) +
         " kB\n"
         "MemFree:        " +
         std::to_string(available_kb) +
         " kB\n"
         "MemAvailable:   " +
         std::to_string(available_kb) + " kB\n";
}

/* Memory `mem_percent` % used, exactly: (MemTotal - MemAvailable) / MemTotal. */
inline std::string meminfo_text(int mem_percent) {
  return meminfo_text_kb(kMemTotalKb, kMemTotalKb * static_cast<uint64_t>(100 - mem_percent) / 100);
}

/* /proc/<pid>/stat: utime is field 14, stime 15, rss 24; the command name
 * holds a space and parentheses. */
inline std::string pid_stat_text(uint64_t utime, uint64_t stime) {
  return "4242 (aq (test)) S 1 1 1 0 -1 0 0 0 0 0 " + std::to_string(utime) + " " +
         std::to_string(stime) + " 0 0 20 0 1 0 100 1000 250\n";
}

constexpr const char* kStatmText = "1000 250 100 10 0 200 0\n";

/* ---- files ---- */

inline bool write_file(const std::string& path, const std::string& text) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f)
    return false;
  const bool written = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  return std::fclose(f) == 0 && written;
}

/* Written under a hidden name beside it and renamed, so a reader never sees
 * half a file, and a watcher tells the writer's opens from a reader's. */
inline bool replace_file(const std::string& path, const std::string& text) {
  const std::filesystem::path p(path);
  const std::string tmp = (p.parent_path() / ("." + p.filename().string() + ".tmp")).string();
  return write_file(tmp, text) && std::rename(tmp.c_str(), path.c_str()) == 0;
}

/* A file, or a directory and everything in it; no error if it is gone. */
inline void remove_path(const std::string& path) {
  std::error_code ignored;
  std::filesystem::remove_all(path, ignored);
}

/* A new directory `parent`/`prefix`XXXXXX (parent: $TMPDIR or /tmp); empty
 * on failure. */
inline std::string make_temp_dir(const std::string& prefix, const std::string& parent = "") {
  std::string base = parent;
  if (base.empty()) {
    const char* tmpdir = std::getenv("TMPDIR");
    base = tmpdir && *tmpdir ? tmpdir : "/tmp";
  }
  std::string templ = base + "/" + prefix + "XXXXXX";
  return mkdtemp(templ.data()) ? templ : std::string();
}

}  // namespace aqt
