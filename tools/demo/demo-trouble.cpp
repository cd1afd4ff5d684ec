/* The demo's variants and the trouble they share: the stall schedule and the
 * CPU load.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "demo.h"

#include <sys/wait.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>

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
