/* The demo's variants and the trouble they share: the stall schedule, the
 * CPU load and the procfs tree the adaptivequeues read.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "demo.h"

#include <glib/gstdio.h>
#include <sys/wait.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace demo {

bool parse_variant(const std::string& key, VariantSpec& out) {
  out = VariantSpec();
  out.key = key;
  if (key == "adaptive") {
    out.adaptive = true;
    out.label = "adaptivequeue";
    out.column = "adapt";
    return true;
  }
  if (key == "jetkvm") {
    out.adaptive = true;
    out.jetkvm_rule = true;
    out.label = "adaptivequeue demand-headroom=0";
    out.column = "jetkvm";
    return true;
  }
  if (key.rfind("queue-", 0) == 0) {
    char* end = nullptr;
    const guint64 n = g_ascii_strtoull(key.c_str() + 6, &end, 10);
    if (end == key.c_str() + 6 || *end || n == 0 || n > 10000)
      return false;
    out.size = static_cast<guint>(n);
    out.label = "queue max-size-buffers=" + std::to_string(n);
    out.column = "q-" + std::to_string(n);
    return true;
  }
  return false;
}

namespace {

/* splitmix64: the same schedule from the same number on every machine. */
struct Rng {
  guint64 s;
  guint64 next() {
    guint64 z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return (next() >> 11) * (1.0 / 9007199254740992.0); }
};

}  // namespace

std::vector<Stall> make_stalls(guint64 schedule, double duration, guint min_ms, guint max_ms) {
  Rng rng{schedule};
  std::vector<Stall> stalls;
  /* The first after 3 s (less in short runs), so the queues settle; none
   * in the last second, so every stall has ended before the run does. */
  GstClockTime t = static_cast<GstClockTime>(MIN(3.0, 0.3 * duration) * GST_SECOND);
  const GstClockTime last = static_cast<GstClockTime>((duration - 1.0) * GST_SECOND);
  for (;;) {
    const guint steps = (max_ms - min_ms) / 10;
    const guint ms = min_ms + 10 * static_cast<guint>(rng.uniform() * (steps + 1));
    const GstClockTime d = MIN(ms, max_ms) * GST_MSECOND;
    if (t + d > last)
      break;
    stalls.push_back({t, t + d});
    t += d + static_cast<GstClockTime>((1.5 + 2.0 * rng.uniform()) * GST_SECOND);
  }
  return stalls;
}

bool Load::start(int workers, int seconds, std::string& error) {
  const std::string n = std::to_string(workers);
  const std::string t = std::to_string(seconds) + "s";
  const char* argv[] = {"stress-ng", "--cpu",   n.c_str(), "--timeout",
                        t.c_str(),   "--quiet", nullptr};
  GError* err = nullptr;
  if (!g_spawn_async(nullptr, const_cast<char**>(argv), nullptr,
                     static_cast<GSpawnFlags>(G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD),
                     nullptr, nullptr, &pid_, &err)) {
    error = err->message;
    g_clear_error(&err);
    pid_ = 0;
    return false;
  }
  return true;
}

void Load::stop() {
  if (!pid_)
    return;
  kill(pid_, SIGTERM);
  int status;
  waitpid(pid_, &status, 0);
  g_spawn_close_pid(pid_);
  pid_ = 0;
}

ProcFixture::~ProcFixture() {
  if (root_.empty())
    return;
  for (const char* name : {"stat", "stat.new", "meminfo"})
    g_unlink((root_ + "/" + name).c_str());
  g_rmdir(root_.c_str());
}

bool ProcFixture::create(double mem_percent, std::string& error) {
  GError* err = nullptr;
  gchar* dir = g_dir_make_tmp("adaptivequeue-demo-XXXXXX", &err);
  if (!dir) {
    error = err->message;
    g_clear_error(&err);
    return false;
  }
  root_ = dir;
  g_free(dir);
  mem_percent_ = mem_percent;

  /* A 256 MB board with mem_percent of it in use. */
  const guint64 total_kb = 262144;
  const guint64 available_kb = static_cast<guint64>(total_kb * (100.0 - mem_percent) / 100.0);
  std::ostringstream m;
  m << "MemTotal:       " << total_kb << " kB\n"
    << "MemFree:        " << available_kb / 2 << " kB\n"
    << "MemAvailable:   " << available_kb << " kB\n"
    << "Buffers:        " << 0 << " kB\n"
    << "Cached:         " << available_kb / 2 << " kB\n";
  if (!g_file_set_contents((root_ + "/meminfo").c_str(), m.str().c_str(), -1, &err)) {
    error = err->message;
    g_clear_error(&err);
    return false;
  }
  refresh();
  return true;
}

void ProcFixture::refresh() {
  gchar* text = nullptr;
  gsize len = 0;
  if (!g_file_get_contents("/proc/stat", &text, &len, nullptr))
    return;
  /* Written aside and renamed, so a reader never sees half a file. */
  const std::string tmp = root_ + "/stat.new";
  if (g_file_set_contents(tmp.c_str(), text, len, nullptr))
    g_rename(tmp.c_str(), (root_ + "/stat").c_str());
  g_free(text);
}

double CpuMeter::sample() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  guint64 v[8] = {0};
  f >> cpu;
  for (auto& x : v)
    f >> x;
  if (!f || cpu != "cpu")
    return -1;
  guint64 total = 0;
  for (auto x : v)
    total += x;
  /* Idle and iowait are not busy; guest time is inside user already. */
  const guint64 busy = total - v[3] - v[4];
  double pct = -1;
  if (have_ && total > total_)
    pct = 100.0 * (busy - busy_) / (total - total_);
  busy_ = busy;
  total_ = total;
  have_ = true;
  return pct;
}

}  // namespace demo
