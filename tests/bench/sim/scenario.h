// A scenario: load and consumer behaviour over virtual time, read from a
// CSV file (see scenarios/*.csv for the format).
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

class Scenario {
 public:
  // Throws std::runtime_error naming the file and line on bad input.
  static Scenario load(const std::string& path);

  const std::string& name() const { return name_; }
  int64_t duration_ns() const { return duration_ns_; }
  const std::vector<Segment>& segments() const { return segments_; }
  const std::vector<Stall>& stalls() const { return stalls_; }

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
};

}  // namespace aqsim
