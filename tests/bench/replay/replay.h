// The replay: scenarios of the simulator through real queues, in real time.
//
// Every queue gets its own branch of one pipeline,
//   appsrc is-live=true min-latency=20ms ! QUEUE ! fakesink sync=true
// with a source that captures a 20 ms frame every 20 ms (released late by
// the scenario's network holds) and a consumer that serves and stalls, or
// plays a frame every period, as its scenario says; the adaptivequeues read
// the scenario's load from a procfs fixture. See docs/lab/replay.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "scenario.h"
#include "simulation.h"

namespace aqreplay {

struct Variant {
  std::string queue;  // the simulator's name: "adaptive", "fixed-8"
  aqsim::Leaky leaky = aqsim::Leaky::No;
  // adaptivequeue with its defaults; otherwise a fixed capacity, in core
  // queue or (aq_fixed) adaptivequeue adaptive=false.
  bool adaptive = false;
  bool aq_fixed = false;
  uint32_t capacity = 0;

  std::string element() const;  // the element and its properties, as gst-launch says it
  std::string label() const;    // queue and leaky mode
};

// Parses "adaptive", "fixed-N" (queue) or "aq-fixed-N" (adaptivequeue
// adaptive=false); false if it is neither.
bool parse_variant(const std::string& name, Variant& out);

// What one branch measured, in the simulator's terms (simulation.h).
struct Measured {
  uint64_t captured = 0;
  uint64_t delivered = 0;    // left the queue before the scenario's end
  uint64_t dropped = 0;      // pushed into the queue, never out of it
  uint64_t source_lost = 0;  // leaky=no: captured while the push was blocked
  uint64_t left_over = 0;    // left the queue after the end
  int64_t blocked_ns = 0;
  double latency_mean_ns = 0.0;
  int64_t latency_p50_ns = 0;
  int64_t latency_p99_ns = 0;
  int64_t latency_max_ns = 0;
  double capacity_mean = 0.0;  // sampled every 10 ms
  uint32_t capacity_min = 0;
  uint32_t capacity_max = 0;
  double level_mean = 0.0;
  // adaptivequeue's stats at the end; -1 for queue
  int64_t adaptations = -1;
  int64_t element_drops = -1;
  int upstream_live = -1;
  // How late the harness's own threads woke, against when they meant to.
  int64_t wake_late_p99_ns = 0;
  int64_t wake_late_max_ns = 0;
  // Frames that waited for a consumer due to take one, and real-time turns
  // that waited for a source behind its schedule (ties, late wake-ups).
  uint64_t tie_waits = 0;
  // Real-time sink: turns that found the queue empty; -1 for a service
  // consumer.
  int64_t underruns = -1;
  // Real-time sink: how late each frame was taken against its turn (this
  // harness's lateness, with the catch-up after a late wake-up), and the
  // p99 of latency on the sink's schedule (turn minus capture), which
  // leaves that out.
  int64_t take_late_p99_ns = 0;
  int64_t take_late_max_ns = 0;
  int64_t schedule_p99_ns = 0;
  // When the adaptivequeue's ticks came against the nearest multiple of
  // 500 ms of scenario time (the simulator's), as the monitor saw them: up
  // to its 10 ms period late.
  int64_t tick_phase_min_ns = 0;
  int64_t tick_phase_max_ns = 0;

  uint64_t lost() const { return dropped + source_lost; }
};

// A per-tick row: adaptivequeue's stats just after a tick.
struct TickRow {
  int64_t t_ns = 0;
  uint32_t capacity = 0;
  uint32_t level = 0;
  uint32_t demand_floor = 0;
  double cpu_percent = 0.0;
  double mem_percent = 0.0;
  int64_t latency_average_ns = -1;
  uint64_t adaptations = 0;
};

// Frames first..last never reached the consumer (lost at the source or
// dropped); the next one that did left the queue at t_ns.
struct Gap {
  int64_t first = 0;
  int64_t last = 0;
  int64_t t_ns = 0;
};

struct Outcome {
  Measured measured;
  std::vector<TickRow> ticks;  // adaptivequeue only
  std::vector<Gap> gaps;
};

// Runs every (scenario, variant) pair at once, in one pipeline, until the
// longest scenario ends. Returns outcomes in the order of the pairs, or an
// empty vector after printing why it failed.
struct Pair {
  const aqsim::Scenario* scenario;
  Variant variant;
};
std::vector<Outcome> replay(const std::vector<Pair>& pairs);

}  // namespace aqreplay
