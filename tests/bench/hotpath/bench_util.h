// Helpers shared by the hot-path benchmarks: clocks, statistics, running a
// launch line to EOS, and small text formatting.
#pragma once

#include <gst/gst.h>
#include <sched.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace bench {

inline int64_t clock_ns(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

inline int64_t monotonic_ns() {
  return clock_ns(CLOCK_MONOTONIC);
}

// Process CPU time, every thread, user + system.
struct Usage {
  int64_t cpu_ns = 0;
  int64_t context_switches = 0;
};

inline Usage process_usage() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto ns = [](const timeval& tv) {
    return static_cast<int64_t>(tv.tv_sec) * 1'000'000'000 +
           static_cast<int64_t>(tv.tv_usec) * 1000;
  };
  return Usage{ns(ru.ru_utime) + ns(ru.ru_stime), ru.ru_nvcsw + ru.ru_nivcsw};
}

// CPU time the whole machine spent busy (not idle or iowait; steal counts
// as busy: another guest had the core), from /proc/stat.
inline int64_t system_busy_ns() {
  FILE* f = std::fopen("/proc/stat", "r");
  if (!f)
    return 0;
  unsigned long long v[8] = {};
  const int n = std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                            &v[3], &v[4], &v[5], &v[6], &v[7]);
  std::fclose(f);
  if (n < 8)
    return 0;
  const unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  return static_cast<int64_t>(busy) * (1'000'000'000 / sysconf(_SC_CLK_TCK));
}

// How many cores' worth of CPU others used while a measurement ran: the
// machine's busy time minus this process's. Tick granularity (10 ms) makes
// it approximate; it is there to show when a run was disturbed.
class OtherLoad {
 public:
  OtherLoad() : sys0_(system_busy_ns()), own0_(process_usage().cpu_ns), t0_(monotonic_ns()) {}
  double cores() const {
    const int64_t sys = system_busy_ns() - sys0_, own = process_usage().cpu_ns - own0_;
    const int64_t wall = monotonic_ns() - t0_;
    return wall > 0 ? std::max(0.0, static_cast<double>(sys - own) / static_cast<double>(wall))
                    : 0.0;
  }

 private:
  int64_t sys0_, own0_, t0_;
};

// CPUs this thread may run on.
inline int allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  return sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
}

// Binds this thread, and every thread it starts later, to the first n CPUs
// it may run on (n <= 0 leaves it alone).
inline void bind_to_cpus(int n) {
  if (n <= 0)
    return;
  cpu_set_t have, want;
  CPU_ZERO(&have);
  CPU_ZERO(&want);
  if (sched_getaffinity(0, sizeof have, &have) != 0)
    return;
  for (int cpu = 0, taken = 0; cpu < CPU_SETSIZE && taken < n; cpu++)
    if (CPU_ISSET(cpu, &have))
      CPU_SET(cpu, &want), taken++;
  if (sched_setaffinity(0, sizeof want, &want) != 0) {
    std::perror("sched_setaffinity");
    std::exit(2);
  }
}

inline double median(std::vector<double> v) {
  if (v.empty())
    return NAN;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

// Nearest-rank percentile of a sorted sample; p in (0, 100].
inline double percentile_sorted(const std::vector<double>& sorted, double p) {
  if (sorted.empty())
    return NAN;
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

inline std::string fmt(const char* format, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, value);
  return buf;
}

// The build's plugin directory unless the caller chose one.
inline void use_build_plugin_dir() {
#ifdef AQ_PLUGIN_DIR
  setenv("GST_PLUGIN_PATH", AQ_PLUGIN_DIR, 0);
#endif
}

// Fails loudly if the element is missing: the numbers would be meaningless.
inline std::string require_adaptivequeue() {
  GstElementFactory* factory = gst_element_factory_find("adaptivequeue");
  if (!factory) {
    std::fprintf(stderr, "adaptivequeue not found; set GST_PLUGIN_PATH to the plugin build dir\n");
    std::exit(2);
  }
  GstPlugin* plugin = gst_plugin_feature_get_plugin(GST_PLUGIN_FEATURE(factory));
  std::string file =
      plugin && gst_plugin_get_filename(plugin) ? gst_plugin_get_filename(plugin) : "?";
  if (plugin)
    gst_object_unref(plugin);
  gst_object_unref(factory);
  return file;
}

inline GstElement* parse_or_die(const std::string& description) {
  GError* error = nullptr;
  GstElement* pipeline = gst_parse_launch(description.c_str(), &error);
  if (!pipeline || error) {
    std::fprintf(stderr, "cannot build '%s': %s\n", description.c_str(),
                 error ? error->message : "unknown error");
    std::exit(2);
  }
  return pipeline;
}

// Plays an already built pipeline until EOS; exits on error so that a broken
// variant never yields a number.
inline void play_to_eos(GstElement* pipeline, const std::string& description) {
  GstBus* bus = gst_element_get_bus(pipeline);
  if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    std::fprintf(stderr, "cannot play '%s'\n", description.c_str());
    std::exit(2);
  }
  GstMessage* msg = gst_bus_timed_pop_filtered(
      bus, GST_CLOCK_TIME_NONE, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
    GError* error = nullptr;
    gst_message_parse_error(msg, &error, nullptr);
    std::fprintf(stderr, "error in '%s': %s\n", description.c_str(), error->message);
    std::exit(2);
  }
  gst_message_unref(msg);
  gst_object_unref(bus);
}

inline void stop(GstElement* pipeline) {
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
}

// Writes text to a file, or to nothing when path is empty.
inline void write_file(const std::string& path, const std::string& text, const char* mode = "w") {
  if (path.empty())
    return;
  FILE* f = std::fopen(path.c_str(), mode);
  if (!f) {
    std::perror(path.c_str());
    std::exit(2);
  }
  std::fputs(text.c_str(), f);
  std::fclose(f);
}

}  // namespace bench
