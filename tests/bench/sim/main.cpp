// Runs every queue configuration over each scenario file and prints a table.
//
//   adaptation-sim [--results FILE.csv] [--series-dir DIR] SCENARIO.csv...
//
// --results writes one CSV row per (scenario, configuration);
// --series-dir writes a per-tick TSV per run, named SCENARIO--QUEUE-LEAKY.tsv,
// and the scenario's stalls and holds as SCENARIO--stalls.tsv and
// SCENARIO--holds.tsv.
// Any scenario file works; the format is in docs/lab/simulator.md.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "scenario.h"
#include "simulation.h"
#include "sizing_policy.h"

namespace {

// queue's default limits: 200 buffers, 1 s, 10 MiB.
constexpr uint32_t kQueueBuffers = aq::defaults::kGrowthLimitBuffers;
constexpr int64_t kQueueTimeNs = 1'000'000'000;
constexpr uint64_t kQueueBytes = 10 * 1024 * 1024;

// The comparison the report is about: fixed capacities (a count alone),
// queue's defaults, the adaptive defaults and JetKVM's step alone
// (demand-headroom 0, which turns off the floor, the growth and the
// trimming), in both leaky modes. The adaptive rows have queue's
// time and byte limits over their count, as the element does, and grow on
// overrun up to queue's 200 buffers.
std::vector<aqsim::QueueSetup> setups() {
  std::vector<aqsim::QueueSetup> out;
  for (aqsim::Leaky leaky : {aqsim::Leaky::No, aqsim::Leaky::Downstream}) {
    for (uint32_t capacity : {2u, 4u, 8u, 16u, 32u, 64u, 128u})
      out.push_back({"fixed-" + std::to_string(capacity), false, capacity, leaky, {}});
    aqsim::QueueSetup queue{"queue-defaults", false, kQueueBuffers, leaky, {}};
    queue.max_time_ns = kQueueTimeNs;
    queue.max_bytes = kQueueBytes;
    out.push_back(queue);
    aqsim::QueueSetup adaptive{"adaptive", true, aq::defaults::kInitialBuffers, leaky, {}};
    adaptive.max_time_ns = kQueueTimeNs;
    adaptive.max_bytes = kQueueBytes;
    adaptive.growth_limit = kQueueBuffers;
    out.push_back(adaptive);
    aqsim::QueueSetup jetkvm = adaptive;
    jetkvm.name = "jetkvm";
    jetkvm.config.demand_headroom = 0.0;
    out.push_back(jetkvm);
  }
  return out;
}

double ms(double ns) {
  return ns / 1e6;
}
double ms(int64_t ns) {
  return static_cast<double>(ns) / 1e6;
}

std::string describe(const aqsim::Scenario& s) {
  const aqsim::Source& src = s.source();
  const aqsim::Sink& sink = s.sink();
  char text[160];
  if (src.live)
    std::snprintf(text, sizeof text, "live source, a frame every %g ms%s", ms(src.period_ns),
                  src.drift_ppm ? " (sender clock fast)" : "");
  else
    std::snprintf(text, sizeof text, "non-live source, a frame made in %g ms", ms(src.period_ns));
  std::string out = text;
  if (sink.kind == aqsim::SinkKind::RealTime) {
    std::snprintf(text, sizeof text, "; real-time sink, a frame every %g ms", ms(sink.period_ns));
    out += text;
  }
  return out;
}

// A service consumer behind a live source waits for every frame by design:
// its underruns say nothing.
bool underruns_matter(const aqsim::Scenario& s) {
  return !s.source().live || s.sink().kind == aqsim::SinkKind::RealTime;
}

void print_header(const aqsim::Scenario& s) {
  std::printf("\n== %s (%.0f s; %s)\n", s.name().c_str(),
              static_cast<double>(s.duration_ns()) / 1e9, describe(s).c_str());
  std::printf("%-14s %-10s %7s %6s %9s %9s %8s %8s %8s %7s %8s %8s %9s\n", "queue", "leaky", "lost",
              "lost%", "blocked_s", "underruns", "mean_ms", "p99_ms", "max_ms", "changes",
              "mean_cap", "mean_lvl", "lvl_memhi");
}

void print_row(const aqsim::Scenario& s, const aqsim::QueueSetup& q, const aqsim::RunResult& r) {
  const double lost_pct =
      r.captured ? 100.0 * static_cast<double>(r.lost()) / static_cast<double>(r.captured) : 0.0;
  char underruns[24] = "-";
  if (underruns_matter(s))
    std::snprintf(underruns, sizeof underruns, "%llu",
                  static_cast<unsigned long long>(r.underruns));
  char memhi[24] = "-";
  if (r.level_mean_mem_high >= 0)
    std::snprintf(memhi, sizeof memhi, "%.1f", r.level_mean_mem_high);
  std::printf("%-14s %-10s %7llu %6.2f %9.2f %9s %8.1f %8.1f %8.1f %7llu %8.1f %8.1f %9s\n",
              q.name.c_str(), q.leaky_name().c_str(), static_cast<unsigned long long>(r.lost()),
              lost_pct, static_cast<double>(r.blocked_ns) / 1e9, underruns, ms(r.latency_mean_ns),
              ms(r.latency_p99_ns), ms(r.latency_max_ns),
              static_cast<unsigned long long>(r.capacity_changes), r.capacity_mean, r.level_mean,
              memhi);
}

void write_result(FILE* f, const aqsim::Scenario& s, const aqsim::QueueSetup& q,
                  const aqsim::RunResult& r) {
  const double lost_pct =
      r.captured ? 100.0 * static_cast<double>(r.lost()) / static_cast<double>(r.captured) : 0.0;
  std::fprintf(
      f,
      "%s,%s,%s,%u,%llu,%llu,%llu,%llu,%llu,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%llu,%llu,"
      "%.2f,%u,%u,%llu,%s,%s,%llu,%llu,%llu,%.3f,%.3f,%u,%u,%.2f,%.3f\n",
      s.name().c_str(), q.name.c_str(), q.leaky_name().c_str(), q.capacity,
      static_cast<unsigned long long>(r.captured), static_cast<unsigned long long>(r.delivered),
      static_cast<unsigned long long>(r.dropped), static_cast<unsigned long long>(r.source_lost),
      static_cast<unsigned long long>(r.lost()), lost_pct, static_cast<double>(r.blocked_ns) / 1e9,
      ms(r.latency_mean_ns), ms(r.latency_p50_ns), ms(r.latency_p99_ns), ms(r.latency_max_ns),
      static_cast<unsigned long long>(r.capacity_changes),
      static_cast<unsigned long long>(r.adaptations), r.capacity_mean, r.capacity_min,
      r.capacity_max, static_cast<unsigned long long>(r.left_over),
      s.source().live ? "live" : "nonlive",
      s.sink().kind == aqsim::SinkKind::RealTime ? "realtime" : "service",
      static_cast<unsigned long long>(r.underruns), static_cast<unsigned long long>(r.trimmed),
      static_cast<unsigned long long>(r.overrun_growths), r.level_mean, r.level_mean_mem_high,
      q.config.min_buffers, q.config.max_buffers, q.adaptive ? q.config.demand_headroom : 0.0,
      // Trimming applies to leaky=downstream only.
      q.adaptive && q.leaky == aqsim::Leaky::Downstream
          ? static_cast<double>(q.config.trim_period_ns) / 1e9
          : 0.0);
}

bool write_series(const std::string& dir, const aqsim::Scenario& s, const aqsim::QueueSetup& q,
                  const aqsim::RunResult& r) {
  const std::string path = dir + "/" + s.name() + "--" + q.name + "-" + q.leaky_name() + ".tsv";
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    return false;
  }
  std::fprintf(f,
               "# t_s\tcapacity\tlevel\tlevel_max\tlatency_max_ms\tlatency_mean_ms\t"
               "latency_average_ms\tcpu_pct\tmem_pct\tlost_total\tdemand_floor\t"
               "underruns_total\trise\tkeep\n");
  for (const aqsim::TickRecord& t : r.ticks)
    std::fprintf(f, "%.1f\t%u\t%zu\t%zu\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%llu\t%u\t%llu\t%u\t%u\n",
                 static_cast<double>(t.t_ns) / 1e9, t.capacity, t.level, t.level_max,
                 ms(t.latency_max_ns), ms(t.latency_mean_ns),
                 t.latency_average_ns < 0 ? -1.0 : ms(t.latency_average_ns), t.cpu_percent,
                 t.mem_percent, static_cast<unsigned long long>(t.lost_total), t.demand_floor,
                 static_cast<unsigned long long>(t.underruns_total), t.rise, t.keep);
  return std::fclose(f) == 0;
}

// The merged stalls and holds, for plotting next to the series.
bool write_events(const std::string& dir, const aqsim::Scenario& s) {
  bool ok = true;
  const std::pair<const char*, const std::vector<aqsim::Stall>*> kinds[] = {{"stalls", &s.stalls()},
                                                                            {"holds", &s.holds()}};
  for (const auto& kind : kinds) {
    const std::string path = dir + "/" + s.name() + "--" + kind.first + ".tsv";
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f) {
      std::fprintf(stderr, "cannot write %s\n", path.c_str());
      ok = false;
      continue;
    }
    std::fprintf(f, "# start_s\tlength_ms\n");
    for (const aqsim::Stall& st : *kind.second)
      std::fprintf(f, "%.3f\t%.1f\n", static_cast<double>(st.start_ns) / 1e9,
                   ms(st.end_ns - st.start_ns));
    if (std::fclose(f) != 0)
      ok = false;
  }
  return ok;
}

int usage() {
  std::fprintf(stderr,
               "usage: adaptation-sim [--results FILE.csv] [--series-dir DIR] SCENARIO.csv...\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string results_path;
  std::string series_dir;
  std::vector<std::string> scenario_paths;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--results") == 0 && i + 1 < argc)
      results_path = argv[++i];
    else if (std::strcmp(argv[i], "--series-dir") == 0 && i + 1 < argc)
      series_dir = argv[++i];
    else if (argv[i][0] == '-')
      return usage();
    else
      scenario_paths.push_back(argv[i]);
  }
  if (scenario_paths.empty())
    return usage();

  const std::vector<aqsim::QueueSetup> queues = setups();
  for (const aqsim::QueueSetup& q : queues) {
    if (q.adaptive && !aq::validate(q.config).empty()) {
      std::fprintf(stderr, "%s: %s\n", q.name.c_str(),
                   aq::describe(aq::validate(q.config)).c_str());
      return 1;
    }
  }

  FILE* results = nullptr;
  if (!results_path.empty()) {
    results = std::fopen(results_path.c_str(), "w");
    if (!results) {
      std::fprintf(stderr, "cannot write %s\n", results_path.c_str());
      return 1;
    }
    std::fprintf(results,
                 "scenario,queue,leaky,start_capacity,captured,delivered,dropped,source_lost,lost,"
                 "lost_pct,blocked_s,latency_mean_ms,latency_p50_ms,latency_p99_ms,"
                 "latency_max_ms,capacity_changes,adaptations,capacity_mean,capacity_min,"
                 "capacity_max,left_over,source,sink,underruns,trimmed,overrun_growths,"
                 "level_mean,level_mean_mem_high,min_buffers,max_buffers,demand_headroom,"
                 "trim_period_s\n");
  }

  const aq::PolicyConfig config;  // the element's defaults
  int status = 0;
  std::printf(
      "policy: defaults (min %u, max %u, start %u buffers, tick %lld ms, smoothing %.1f, "
      "demand-headroom %.2f, demand-window %lld s; leaky=downstream, live: trim-period %lld s); "
      "adaptive and queue-defaults: max-size-time 1 s, max-size-bytes 10 MiB\n",
      config.min_buffers, config.max_buffers, aq::defaults::kInitialBuffers,
      static_cast<long long>(aqsim::kTickNs / aqsim::kMs), config.smoothing, config.demand_headroom,
      static_cast<long long>(config.demand_window_ns / 1'000'000'000),
      static_cast<long long>(aq::defaults::kTrimPeriodNs / 1'000'000'000));
  for (const std::string& path : scenario_paths) {
    aqsim::Scenario scenario;
    try {
      scenario = aqsim::Scenario::load(path);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
      status = 1;
      continue;
    }
    print_header(scenario);
    if (!series_dir.empty() && !write_events(series_dir, scenario))
      status = 1;
    for (const aqsim::QueueSetup& q : queues) {
      const aqsim::RunResult r = aqsim::simulate(scenario, q);
      print_row(scenario, q, r);
      if (results)
        write_result(results, scenario, q, r);
      if (!series_dir.empty() && !write_series(series_dir, scenario, q, r))
        status = 1;
    }
  }
  if (results && std::fclose(results) != 0)
    status = 1;
  return status;
}
