// A scenario: the source, the load and the consumer over virtual time, read
// from a CSV file (see scenarios/*.csv and docs/lab/simulator.md for the
// format).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace aqsim {

constexpr int64_t kMs = 1'000'000;  // ns per ms

struct Segment {
  int64_t start_ns = 0;
  double cpu_percent = 0.0;
  double mem_percent = 0.0;
  int64_t service_ns = 0;  // consumer time for a frame started in this segment
};

// The consumer is stopped during [start, end).
struct Stall {
  int64_t start_ns = 0;
  int64_t end_ns = 0;
};

// The network holds frames: every frame due in [start, end) arrives at end.
using Hold = Stall;

// "@source live|nonlive [period_ms=P] [drift_ppm=D] [frame_ms=F]
// [frame_bytes=B]". Live (the default): one frame every P ms (20), or
// P / (1 + D/1e6) when the sender's clock runs D ppm fast; what arrives while
// the push is blocked is lost. Non-live: the producer makes a frame in P ms
// and waits while the queue is full. Every frame holds F ms of media (20) in
// B bytes (3840: 20 ms of 48 kHz stereo S16), for max-size-time and
// max-size-bytes.
struct Source {
  bool live = true;
  int64_t period_ns = 20 * kMs;
  int64_t drift_ppm = 0;
  int64_t frame_ns = 20 * kMs;
  uint64_t frame_bytes = 3840;
};

// "@sink service|realtime [period_ms=P] [phase_ms=F]". Service (the default):
// the consumer takes the head frame whenever it is free and serves it for the
// row's service_ms. Real-time: a playback sink takes one frame at F, F + P,
// F + 2P, ... and plays silence (an underrun) when the queue is empty.
enum class SinkKind { Service, RealTime };
struct Sink {
  SinkKind kind = SinkKind::Service;
  int64_t period_ns = 20 * kMs;
  int64_t phase_ns = 10 * kMs;
};

class Scenario {
 public:
  // Throws std::runtime_error naming the file and line on bad input.
  static Scenario load(const std::string& path);

  const std::string& name() const { return name_; }
  int64_t duration_ns() const { return duration_ns_; }
  const std::vector<Segment>& segments() const { return segments_; }
  const std::vector<Stall>& stalls() const { return stalls_; }
  const std::vector<Hold>& holds() const { return holds_; }
  const Source& source() const { return source_; }
  const Sink& sink() const { return sink_; }

  // Live source: when frame k is captured (its timestamp, on our clock), and
  // when it reaches the queue, after any hold.
  int64_t capture_ns(int64_t k) const;
  int64_t arrival_ns(int64_t k) const;
  // Time within [from, to) with the memory column above `percent`.
  int64_t time_above_mem(int64_t from_ns, int64_t to_ns, double percent) const;

  const Segment& at(int64_t t_ns) const;
  // Time average of the CPU column over [from, to): /proc/stat CPU is a delta.
  double cpu_average(int64_t from_ns, int64_t to_ns) const;
  // The first instant at or after t when the consumer is not stalled.
  int64_t resume_at(int64_t t_ns) const;
  // When `work` of service started at `start` ends, pausing during stalls.
  int64_t finish_after(int64_t start_ns, int64_t work_ns) const;

 private:
  std::string name_;
  int64_t duration_ns_ = 0;
  std::vector<Segment> segments_;
  std::vector<Stall> stalls_;  // sorted, merged, non-overlapping
  std::vector<Hold> holds_;    // likewise
  Source source_;
  Sink sink_;
};

}  // namespace aqsim
