// Replays scenarios of the adaptation simulator through the real element in
// real time, runs the simulator on the same files and queues, and prints the
// two side by side.
//
//   aq-replay [--variants LIST] [--leaky LIST] [--results FILE.csv]
//             [--markdown FILE] [--series-dir DIR] SCENARIO.csv...
//
// Every scenario and queue runs at once, in one pipeline, for as long as the
// longest scenario. See docs/lab/replay.md.
#include <gst/gst.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "replay.h"
#include "scenario.h"
#include "simulation.h"
#include "sizing_policy.h"

namespace {

using aqreplay::Measured;
using aqreplay::Variant;

// Agreement: losses within 10 % or 3 frames; p99 within 10 % or one frame
// period (20 ms), the step one more frame queued adds.
constexpr double kShare = 0.10;
constexpr double kLostFrames = 3.0;
constexpr double kLatencyMs = 20.0;

double ms(int64_t ns) {
  return static_cast<double>(ns) / 1e6;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(s);
  while (std::getline(in, item, sep))
    if (!item.empty())
      out.push_back(item);
  return out;
}

bool agrees(double replay, double sim, double absolute) {
  return std::fabs(replay - sim) <= std::max(absolute, kShare * std::fabs(sim));
}

// The simulator's queue for a variant: aq-fixed-N is a fixed N there too.
// adaptivequeue with its defaults has queue's time and byte limits (1 s,
// 10 MiB) over its count, grows on overrun up to 200 buffers, and trims
// with leaky=downstream (the core's default trim period).
aqsim::QueueSetup setup_for(const Variant& v) {
  aqsim::QueueSetup q;
  q.name = v.queue;
  q.leaky = v.leaky;
  q.adaptive = v.adaptive;
  q.capacity = v.adaptive ? aq::defaults::kInitialBuffers : v.capacity;
  if (v.adaptive) {
    q.max_time_ns = 1'000'000'000;
    q.max_bytes = 10 * 1024 * 1024;
    q.growth_limit = aq::defaults::kGrowthLimitBuffers;
  }
  return q;
}

// Busy and total ticks of /proc/stat's cpu line, for what other processes
// used during the run.
bool read_busy(unsigned long long& busy, unsigned long long& total) {
  std::ifstream f("/proc/stat");
  std::string cpu;
  unsigned long long v[8] = {0};
  f >> cpu;
  for (auto& x : v)
    f >> x;
  if (!f || cpu != "cpu")
    return false;
  total = 0;
  for (auto x : v)
    total += x;
  busy = total - v[3] - v[4];
  return true;
}

double own_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

struct Row {
  const aqsim::Scenario* scenario;
  Variant variant;
  Measured real;
  aqsim::RunResult sim;
  bool lost_ok, p99_ok;
};

void print_table(FILE* f, const std::vector<Row>& rows, bool markdown) {
  if (markdown) {
    std::fprintf(f,
                 "| scenario | queue | leaky | lost: replay / sim | | p99 ms: replay / sim | | "
                 "mean ms: replay / sim | capacity changes: replay / sim | "
                 "sink underruns: replay / sim | harness late p99 / max ms |\n");
    std::fprintf(f, "|---|---|---|---|---|---|---|---|---|---|---|\n");
  } else {
    std::fprintf(f, "%-12s %-11s %-10s %15s %-7s %17s %-7s %15s %13s %11s %12s\n", "scenario",
                 "queue", "leaky", "lost rep/sim", "", "p99_ms rep/sim", "", "mean_ms rep/sim",
                 "changes", "underruns", "late p99/max");
  }
  for (const Row& r : rows) {
    const Measured& m = r.real;
    const char* leaky = r.variant.leaky == aqsim::Leaky::No ? "no" : "downstream";
    char lost[48], p99[48], mean[48], changes[48], underruns[48], late[48];
    std::snprintf(lost, sizeof lost, "%llu / %llu", static_cast<unsigned long long>(m.lost()),
                  static_cast<unsigned long long>(r.sim.lost()));
    std::snprintf(p99, sizeof p99, "%.1f / %.1f", ms(m.latency_p99_ns), ms(r.sim.latency_p99_ns));
    std::snprintf(mean, sizeof mean, "%.1f / %.1f", m.latency_mean_ns / 1e6,
                  r.sim.latency_mean_ns / 1e6);
    if (m.adaptations >= 0 && r.variant.adaptive)
      std::snprintf(changes, sizeof changes, "%lld / %llu", static_cast<long long>(m.adaptations),
                    static_cast<unsigned long long>(r.sim.adaptations));
    else
      std::snprintf(changes, sizeof changes, "-");
    if (m.underruns >= 0)
      std::snprintf(underruns, sizeof underruns, "%lld / %llu", static_cast<long long>(m.underruns),
                    static_cast<unsigned long long>(r.sim.underruns));
    else
      std::snprintf(underruns, sizeof underruns, "-");
    std::snprintf(late, sizeof late, "%.1f / %.1f", ms(m.wake_late_p99_ns), ms(m.wake_late_max_ns));
    const char* lost_v = r.lost_ok ? "agree" : "DIFFER";
    const char* p99_v = r.p99_ok ? "agree" : "DIFFER";
    if (markdown)
      std::fprintf(f, "| `%s` | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
                   r.scenario->name().c_str(), r.variant.queue.c_str(), leaky, lost, lost_v, p99,
                   p99_v, mean, changes, underruns, late);
    else
      std::fprintf(f, "%-12s %-11s %-10s %15s %-7s %17s %-7s %15s %13s %11s %12s\n",
                   r.scenario->name().c_str(), r.variant.queue.c_str(), leaky, lost, lost_v, p99,
                   p99_v, mean, changes, underruns, late);
  }
}

void write_results(const std::string& path, const std::vector<Row>& rows) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    return;
  }
  std::fprintf(f,
               "scenario,queue,leaky,element,captured,delivered,dropped,source_lost,lost,"
               "left_over,blocked_s,latency_mean_ms,latency_p50_ms,latency_p99_ms,"
               "latency_max_ms,capacity_mean,capacity_min,capacity_max,level_mean,"
               "adaptations,element_drops,upstream_live,wake_late_p99_ms,wake_late_max_ms,"
               "tie_waits,underruns,take_late_p99_ms,take_late_max_ms,schedule_p99_ms,"
               "sim_captured,sim_lost,sim_blocked_s,sim_latency_mean_ms,sim_latency_p99_ms,"
               "sim_latency_max_ms,sim_capacity_mean,sim_level_mean,sim_adaptations,"
               "sim_underruns,lost_agrees,p99_agrees\n");
  for (const Row& r : rows) {
    const Measured& m = r.real;
    const aqsim::RunResult& s = r.sim;
    std::fprintf(
        f,
        "%s,%s,%s,\"%s\",%llu,%llu,%llu,%llu,%llu,%llu,%.3f,%.3f,%.3f,%.3f,%.3f,%.2f,"
        "%u,%u,%.2f,%lld,%lld,%d,%.3f,%.3f,%llu,%lld,%.3f,%.3f,%.3f,%llu,%llu,%.3f,%.3f,%.3f,"
        "%.3f,%.2f,%.2f,%llu,%llu,%d,%d\n",
        r.scenario->name().c_str(), r.variant.queue.c_str(),
        r.variant.leaky == aqsim::Leaky::No ? "no" : "downstream", r.variant.element().c_str(),
        static_cast<unsigned long long>(m.captured), static_cast<unsigned long long>(m.delivered),
        static_cast<unsigned long long>(m.dropped), static_cast<unsigned long long>(m.source_lost),
        static_cast<unsigned long long>(m.lost()), static_cast<unsigned long long>(m.left_over),
        ms(m.blocked_ns) / 1e3, m.latency_mean_ns / 1e6, ms(m.latency_p50_ns), ms(m.latency_p99_ns),
        ms(m.latency_max_ns), m.capacity_mean, m.capacity_min, m.capacity_max, m.level_mean,
        static_cast<long long>(m.adaptations), static_cast<long long>(m.element_drops),
        m.upstream_live, ms(m.wake_late_p99_ns), ms(m.wake_late_max_ns),
        static_cast<unsigned long long>(m.tie_waits), static_cast<long long>(m.underruns),
        ms(m.take_late_p99_ns), ms(m.take_late_max_ns), ms(m.schedule_p99_ns),
        static_cast<unsigned long long>(s.captured), static_cast<unsigned long long>(s.lost()),
        ms(s.blocked_ns) / 1e3, s.latency_mean_ns / 1e6, ms(s.latency_p99_ns), ms(s.latency_max_ns),
        s.capacity_mean, s.level_mean, static_cast<unsigned long long>(s.adaptations),
        static_cast<unsigned long long>(s.underruns), r.lost_ok ? 1 : 0, r.p99_ok ? 1 : 0);
  }
  std::fclose(f);
}

std::string series_base(const std::string& dir, const Row& r) {
  return dir + "/" + r.scenario->name() + "--" + r.variant.queue + "-" +
         (r.variant.leaky == aqsim::Leaky::No ? "no" : "downstream");
}

// The frames each queue lost, by when the next frame got through; the
// simulator's lost_total per tick (SCENARIO--QUEUE-LEAKY.sim.tsv) is the
// same story in its time.
void write_gaps(const std::string& dir, const Row& r, const std::vector<aqreplay::Gap>& gaps) {
  if (FILE* f = std::fopen((series_base(dir, r) + ".gaps.tsv").c_str(), "w")) {
    std::fprintf(f, "# first_frame\tlast_frame\tframes\tcaptured_s\tnext_out_s\n");
    for (const auto& g : gaps)
      std::fprintf(f, "%lld\t%lld\t%lld\t%.3f\t%.3f\n", static_cast<long long>(g.first),
                   static_cast<long long>(g.last), static_cast<long long>(g.last - g.first + 1),
                   static_cast<double>(g.first) * 0.02, static_cast<double>(g.t_ns) / 1e9);
    std::fclose(f);
  }
}

// Per tick, what the element reported and what the simulator's queue held.
void write_series(const std::string& dir, const Row& r,
                  const std::vector<aqreplay::TickRow>& ticks) {
  const std::string base = series_base(dir, r);
  FILE* f = ticks.empty() ? nullptr : std::fopen((base + ".tsv").c_str(), "w");
  if (f) {
    std::fprintf(f,
                 "# t_s\tcapacity\tlevel\tdemand_floor\tcpu_pct\tmem_pct\tlatency_average_ms\t"
                 "adaptations\n");
    for (const auto& t : ticks)
      std::fprintf(f, "%.1f\t%u\t%u\t%u\t%.1f\t%.1f\t%.1f\t%llu\n",
                   static_cast<double>(t.t_ns) / 1e9, t.capacity, t.level, t.demand_floor,
                   t.cpu_percent, t.mem_percent,
                   t.latency_average_ns < 0 ? -1.0 : ms(t.latency_average_ns),
                   static_cast<unsigned long long>(t.adaptations));
    std::fclose(f);
  }
  if ((f = std::fopen((base + ".sim.tsv").c_str(), "w"))) {
    std::fprintf(f,
                 "# t_s\tcapacity\tlevel\tdemand_floor\tcpu_pct\tmem_pct\tlatency_average_ms\t"
                 "lost_total\n");
    for (const auto& t : r.sim.ticks)
      std::fprintf(f, "%.1f\t%u\t%zu\t%u\t%.1f\t%.1f\t%.1f\t%llu\n",
                   static_cast<double>(t.t_ns) / 1e9, t.capacity, t.level, t.demand_floor,
                   t.cpu_percent, t.mem_percent,
                   t.latency_average_ns < 0 ? -1.0 : ms(t.latency_average_ns),
                   static_cast<unsigned long long>(t.lost_total));
    std::fclose(f);
  }
}

// Which interval's CPU each tick of the element saw: the sampler's reading
// just before the tick (the simulator's assumption) or the one an interval
// earlier, when the reading came just after the tick.
struct Phase {
  int own = 0, previous = 0;
};

Phase cpu_phase(const std::vector<aqreplay::TickRow>& real, const aqsim::RunResult& sim) {
  std::map<int64_t, double> cpu;
  for (const auto& t : sim.ticks)
    cpu[t.t_ns] = t.cpu_percent;
  Phase p;
  for (const auto& t : real) {
    auto own = cpu.find(t.t_ns), prev = cpu.find(t.t_ns - aqsim::kTickNs);
    if (own == cpu.end() || prev == cpu.end() || own->second == prev->second)
      continue;
    if (std::fabs(t.cpu_percent - own->second) < std::fabs(t.cpu_percent - prev->second))
      ++p.own;
    else
      ++p.previous;
  }
  return p;
}

int usage() {
  std::fprintf(stderr,
               "usage: aq-replay [--variants LIST] [--leaky LIST] [--results FILE.csv]\n"
               "                 [--markdown FILE] [--series-dir DIR] SCENARIO.csv...\n"
               "  --variants  adaptive, fixed-N (queue), aq-fixed-N (adaptivequeue\n"
               "              adaptive=false); default adaptive,fixed-8,fixed-32\n"
               "  --leaky     no, downstream; default no,downstream\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  // This build's element, unless GST_PLUGIN_PATH says otherwise.
  setenv("GST_PLUGIN_PATH", AQ_PLUGIN_DIR, 0);
  gst_init(&argc, &argv);
  std::string variants = "adaptive,fixed-8,fixed-32";
  std::string leaky = "no,downstream";
  std::string results_path, markdown_path, series_dir;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--variants" && has_value)
      variants = argv[++i];
    else if (a == "--leaky" && has_value)
      leaky = argv[++i];
    else if (a == "--results" && has_value)
      results_path = argv[++i];
    else if (a == "--markdown" && has_value)
      markdown_path = argv[++i];
    else if (a == "--series-dir" && has_value)
      series_dir = argv[++i];
    else if (a[0] == '-')
      return usage();
    else
      paths.push_back(a);
  }
  if (paths.empty())
    return usage();
  if (!series_dir.empty() && g_mkdir_with_parents(series_dir.c_str(), 0755) != 0) {
    std::fprintf(stderr, "cannot make %s\n", series_dir.c_str());
    return 1;
  }

  std::vector<std::unique_ptr<aqsim::Scenario>> scenarios;
  for (const std::string& p : paths) {
    try {
      scenarios.push_back(std::make_unique<aqsim::Scenario>(aqsim::Scenario::load(p)));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
      return 1;
    }
    const aqsim::Scenario& s = *scenarios.back();
    if (!s.source().live || s.source().drift_ppm != 0 || s.source().period_ns != 20 * aqsim::kMs ||
        s.source().frame_ns != 20 * aqsim::kMs) {
      std::fprintf(stderr,
                   "%s: the replay runs a live source of a 20 ms frame every 20 ms, "
                   "without drift, only\n",
                   p.c_str());
      return 1;
    }
  }
  std::vector<aqreplay::Pair> pairs;
  for (const auto& s : scenarios) {
    for (const std::string& l : split(leaky, ',')) {
      if (l != "no" && l != "downstream")
        return usage();
      for (const std::string& name : split(variants, ',')) {
        Variant v;
        if (!aqreplay::parse_variant(name, v))
          return usage();
        v.leaky = l == "no" ? aqsim::Leaky::No : aqsim::Leaky::Downstream;
        pairs.push_back({s.get(), v});
      }
    }
  }

  int64_t longest = 0;
  for (const auto& s : scenarios)
    longest = std::max(longest, s->duration_ns());
  std::printf("replay: %zu queues at once in one pipeline, %.0f s of real time\n", pairs.size(),
              static_cast<double>(longest) / 1e9);
  for (const auto& s : scenarios)
    std::printf("  %s: %.0f s\n", s->name().c_str(), static_cast<double>(s->duration_ns()) / 1e9);
  std::fflush(stdout);

  unsigned long long busy0 = 0, total0 = 0, busy1 = 0, total1 = 0;
  const bool have_load = read_busy(busy0, total0);
  const double own0 = own_cpu_seconds();
  const gint64 wall0 = g_get_monotonic_time();
  const std::vector<aqreplay::Outcome> outcomes = aqreplay::replay(pairs);
  if (outcomes.empty())
    return 1;
  const double wall = static_cast<double>(g_get_monotonic_time() - wall0) / 1e6;
  const double own = own_cpu_seconds() - own0;
  double others = -1.0;
  if (have_load && read_busy(busy1, total1)) {
    const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
    others = std::max(0.0, static_cast<double>(busy1 - busy0) / hz - own) / wall;
  }

  std::vector<Row> rows;
  int status = 0;
  for (size_t i = 0; i < pairs.size(); ++i) {
    Row r{pairs[i].scenario,
          pairs[i].variant,
          outcomes[i].measured,
          aqsim::simulate(*pairs[i].scenario, setup_for(pairs[i].variant)),
          false,
          false};
    r.lost_ok =
        agrees(static_cast<double>(r.real.lost()), static_cast<double>(r.sim.lost()), kLostFrames);
    r.p99_ok = agrees(ms(r.real.latency_p99_ns), ms(r.sim.latency_p99_ns), kLatencyMs);
    if (r.variant.adaptive && r.real.upstream_live != 1) {
      std::fprintf(stderr, "%s %s: the element did not learn that upstream is live\n",
                   r.scenario->name().c_str(), r.variant.label().c_str());
      status = 1;
    }
    if (r.variant.leaky == aqsim::Leaky::No && r.real.dropped != 0) {
      std::fprintf(stderr, "%s %s: %llu frames went into the queue and never came out\n",
                   r.scenario->name().c_str(), r.variant.label().c_str(),
                   static_cast<unsigned long long>(r.real.dropped));
      status = 1;
    }
    if (!series_dir.empty()) {
      write_series(series_dir, r, outcomes[i].ticks);
      write_gaps(series_dir, r, outcomes[i].gaps);
    }
    rows.push_back(r);
  }

  std::printf("\n");
  print_table(stdout, rows, false);
  std::printf("\nagree: lost within 10 %% or %.0f frames, p99 within 10 %% or %.0f ms\n",
              kLostFrames, kLatencyMs);
  std::string takes;
  for (const Row& r : rows) {
    if (r.real.underruns < 0)
      continue;
    char line[240];
    std::snprintf(line, sizeof line,
                  "  %s %s: taken %.1f ms after the turn at p99 (%.1f at most); p99 on the "
                  "sink's schedule %.1f ms, the simulator's %.1f\n",
                  r.scenario->name().c_str(), r.variant.label().c_str(),
                  ms(r.real.take_late_p99_ns), ms(r.real.take_late_max_ns),
                  ms(r.real.schedule_p99_ns), ms(r.sim.latency_p99_ns));
    takes += line;
  }
  if (!takes.empty())
    std::printf(
        "the real-time sinks: how late the frames were taken against their turns, and p99 "
        "without that lateness (turn minus capture):\n%s",
        takes.c_str());
  std::string phases;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (!rows[i].variant.adaptive)
      continue;
    const Phase p = cpu_phase(outcomes[i].ticks, rows[i].sim);
    char line[240];
    std::snprintf(line, sizeof line,
                  "  %s %s: ticks %+.0f to %+.0f ms from the simulator's; %d "
                  "saw their own interval's CPU, %d the interval before\n",
                  rows[i].scenario->name().c_str(), rows[i].variant.label().c_str(),
                  ms(rows[i].real.tick_phase_min_ns), ms(rows[i].real.tick_phase_max_ns), p.own,
                  p.previous);
    phases += line;
  }
  if (!phases.empty())
    std::printf(
        "the adaptivequeues' ticks, as seen every 10 ms, and the CPU they saw (the "
        "simulator's ticks see their own interval's):\n%s",
        phases.c_str());
  std::printf("wall %.0f s; this process used %.2f cores, other processes %.2f cores\n", wall,
              own / wall, others);
  if (!markdown_path.empty()) {
    if (FILE* f = std::fopen(markdown_path.c_str(), "w")) {
      print_table(f, rows, true);
      std::fprintf(f,
                   "\nOther processes used %.2f cores on average during the run (of %ld), "
                   "the replay %.2f.\n",
                   others, sysconf(_SC_NPROCESSORS_ONLN), own / wall);
      if (!takes.empty()) {
        std::string list;
        for (const std::string& line : split(takes, '\n'))
          list += "- " + line.substr(2) + "\n";
        std::fprintf(f,
                     "\nThe real-time sinks: how late the frames were taken against their "
                     "turns, and p99 without that lateness (turn minus capture):\n\n%s",
                     list.c_str());
      }
      if (!phases.empty()) {
        // The same lines as a Markdown list.
        std::string list;
        for (const std::string& line : split(phases, '\n'))
          list += "- " + line.substr(2) + "\n";
        std::fprintf(f,
                     "\nThe adaptivequeues' ticks, as seen every 10 ms, and the CPU they saw "
                     "(the simulator's ticks see their own interval's):\n\n%s",
                     list.c_str());
      }
      std::fclose(f);
    }
  }
  if (!results_path.empty())
    write_results(results_path, rows);
  return status;
}
