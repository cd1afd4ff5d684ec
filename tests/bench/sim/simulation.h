// One run of a queue configuration over a scenario, in virtual time.
//
// The scenario's source offers frames to the queue, the real aq::Ring; its
// consumer takes them (see scenario.h). The adaptive configurations run the
// element's core as the element feeds it: aq::Adapter at every 500 ms tick
// with the scenario's load, an aq::LatencyTracker that gets one sample per
// frame leaving the queue, and the highest level since the last tick; on a
// push that finds the queue full by its count, aq::Adapter::overrun before the
// push blocks or drops; with a live source, leaky=downstream and a trim
// period, aq::Trimmer at each tick with the interval's aq::LevelTrace.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "scenario.h"
#include "sizing_policy.h"

namespace aqsim {

constexpr int64_t kTickNs = aq::defaults::kIntervalNs;

enum class Leaky { No, Downstream };

struct QueueSetup {
  std::string name;  // "fixed-16", "adaptive", ...
  bool adaptive = false;
  uint32_t capacity = 0;  // the fixed capacity, or the adaptive start
  Leaky leaky = Leaky::No;
  aq::PolicyConfig config;  // used when adaptive
  // queue's other limits, 0 for none: full at this much media or memory
  // queued, whatever the count (frames carry the source's frame_ms and
  // frame_bytes).
  int64_t max_time_ns = 0;
  uint64_t max_bytes = 0;
  // Adaptive: the count an overrun may grow to (Adapter's growth_limit).
  uint32_t growth_limit = 0;

  std::string leaky_name() const;  // "no", "downstream"
};

// What happened during one tick interval, recorded at its end.
struct TickRecord {
  int64_t t_ns = 0;
  uint32_t capacity = 0;       // after this tick's decision
  size_t level = 0;            // frames queued after this tick
  size_t level_max = 0;        // most frames queued during the interval
  int64_t latency_max_ns = 0;  // of frames that left during the interval
  double latency_mean_ns = 0.0;
  int64_t latency_average_ns = -1;  // the tracker's average the policy saw; -1: none
  double cpu_percent = 0.0;         // the load sample the policy saw
  double mem_percent = 0.0;
  uint64_t lost_total = 0;    // dropped + source_lost so far
  uint32_t demand_floor = 0;  // adaptive: the floor in force at this tick
  uint32_t rise = 0;          // the interval's need (aq::LevelTrace)
  uint32_t keep = 0;          // trimming: the level it keeps; 0 when off
  uint64_t underruns_total = 0;
};

struct RunResult {
  uint64_t captured = 0;     // frames the source produced
  uint64_t delivered = 0;    // frames that left the queue
  uint64_t dropped = 0;      // leaky=downstream: oldest frames discarded (trimmed included)
  uint64_t trimmed = 0;      // of those, dropped by aq::Trimmer
  uint64_t source_lost = 0;  // leaky=no, live: captured while the producer was blocked
  uint64_t left_over = 0;    // still queued or held by the producer at the end
  int64_t blocked_ns = 0;    // leaky=no: total time the producer was blocked
  // The consumer was ready and the queue empty: a real-time sink's silent
  // period, or a service consumer waiting for data (once per wait).
  uint64_t underruns = 0;
  double latency_mean_ns = 0.0;
  int64_t latency_p50_ns = 0;
  int64_t latency_p99_ns = 0;
  int64_t latency_max_ns = 0;
  uint64_t capacity_changes = 0;
  uint64_t adaptations = 0;  // aq::Adapter's count (ticks and overrun growths)
  uint64_t overrun_growths = 0;
  double capacity_mean = 0.0;  // time-weighted
  uint32_t capacity_min = 0;
  uint32_t capacity_max = 0;
  double level_mean = 0.0;  // frames queued, time-weighted
  // Time-weighted level while the memory column is above mem-high-threshold;
  // -1 when it never is.
  double level_mean_mem_high = -1.0;
  std::vector<TickRecord> ticks;

  uint64_t lost() const { return dropped + source_lost; }
};

RunResult simulate(const Scenario& scenario, const QueueSetup& setup);

// Nearest-rank percentile of unsorted samples (sorted in place); 0 if empty.
int64_t percentile(std::vector<int64_t>& samples, unsigned pct);

}  // namespace aqsim
