#include "simulation.h"

#include <algorithm>
#include <limits>

#include "latency_tracker.h"
#include "ring.h"

namespace aqsim {

namespace {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

struct Frame {
  int64_t capture_ns = 0;
};

class Run {
 public:
  Run(const Scenario& scenario, const QueueSetup& setup)
      : scenario_(scenario),
        setup_(setup),
        ring_(setup.capacity),
        policy_(setup.capacity) {
    result_.capacity_min = result_.capacity_max = setup.capacity;
  }

  RunResult run() {
    const int64_t end = scenario_.duration_ns();
    int64_t next_capture = 0;
    int64_t next_tick = kTickNs;
    for (;;) {
      const int64_t consumer_start =
          ring_.empty() ? kNever : scenario_.resume_at(std::max(consumer_free_at_, now_));
      const int64_t next = std::min({consumer_start, next_tick, next_capture});
      if (next >= end) break;
      now_ = next;
      // Equal times: the consumer frees a slot first, then the tick, then the
      // producer, so a frame never waits on a decision made at its own instant.
      if (consumer_start == now_) {
        consume();
      } else if (next_tick == now_) {
        tick();
        next_tick += kTickNs;
      } else {
        capture();
        next_capture += kFrameNs;
      }
    }
    now_ = end;
    finish();
    return std::move(result_);
  }

 private:
  void consume() {
    Frame frame;
    ring_.pop(frame);
    // The frame leaves the queue now: how late it is against its capture.
    const int64_t latency = now_ - frame.capture_ns;
    latencies_.push_back(latency);
    tracker_.add(latency);
    interval_latency_sum_ += static_cast<double>(latency);
    interval_latency_max_ = std::max(interval_latency_max_, latency);
    ++interval_delivered_;
    consumer_free_at_ = scenario_.finish_after(now_, scenario_.at(now_).service_ns);
    unblock_producer();
  }

  void capture() {
    ++result_.captured;
    const Frame frame{now_};
    if (setup_.leaky == Leaky::No) {
      // A live source cannot wait: what it captures while its push is
      // blocked overflows its device buffer and is lost.
      if (pending_) {
        ++result_.source_lost;
      } else if (ring_.full()) {
        pending_ = frame;
        blocked_since_ = now_;
      } else {
        push(frame);
      }
      return;
    }
    while (ring_.full()) drop_oldest();
    push(frame);
  }

  void tick() {
    const aq::LoadSample load{scenario_.cpu_average(now_ - kTickNs, now_),
                              scenario_.at(now_).mem_percent};
    const std::optional<int64_t> latency_average = tracker_.average();
    if (setup_.adaptive) {
      const aq::Decision d = policy_.step(setup_.config, load, latency_average, now_);
      if (d.applied && d.new_capacity != ring_.capacity()) resize(d.new_capacity);
    }
    TickRecord r;
    r.t_ns = now_;
    r.capacity = static_cast<uint32_t>(ring_.capacity());
    r.level = ring_.size();
    r.level_max = std::max(interval_level_max_, ring_.size());
    r.latency_max_ns = interval_latency_max_;
    r.latency_mean_ns =
        interval_delivered_ ? interval_latency_sum_ / static_cast<double>(interval_delivered_) : 0.0;
    r.latency_average_ns = latency_average.value_or(-1);
    r.cpu_percent = load.cpu_percent;
    r.mem_percent = load.mem_percent;
    r.lost_total = result_.lost();
    result_.ticks.push_back(r);
    interval_level_max_ = ring_.size();
    interval_latency_max_ = 0;
    interval_latency_sum_ = 0.0;
    interval_delivered_ = 0;
  }

  void resize(uint32_t capacity) {
    capacity_area_ += static_cast<double>(ring_.capacity()) * static_cast<double>(now_ - capacity_since_);
    capacity_since_ = now_;
    ++result_.capacity_changes;
    result_.capacity_min = std::min(result_.capacity_min, capacity);
    result_.capacity_max = std::max(result_.capacity_max, capacity);
    ring_.set_capacity(capacity);
    // Shrinking below the level: leaky=no keeps everything (the producer
    // waits); leaky=downstream drops the oldest frames.
    if (setup_.leaky == Leaky::Downstream)
      while (ring_.size() > ring_.capacity()) drop_oldest();
    unblock_producer();
  }

  void push(const Frame& frame) {
    Frame copy = frame;
    ring_.push(std::move(copy));
    interval_level_max_ = std::max(interval_level_max_, ring_.size());
  }

  void drop_oldest() {
    Frame gone;
    ring_.pop(gone);
    ++result_.dropped;
  }

  void unblock_producer() {
    if (!pending_ || ring_.full()) return;
    result_.blocked_ns += now_ - blocked_since_;
    push(*pending_);
    pending_.reset();
  }

  void finish() {
    if (pending_) result_.blocked_ns += now_ - blocked_since_;
    result_.left_over = ring_.size() + (pending_ ? 1 : 0);
    capacity_area_ += static_cast<double>(ring_.capacity()) * static_cast<double>(now_ - capacity_since_);
    result_.capacity_mean = now_ > 0 ? capacity_area_ / static_cast<double>(now_) : 0.0;
    result_.adaptations = policy_.adaptations();
    result_.delivered = latencies_.size();
    if (!latencies_.empty()) {
      double sum = 0.0;
      for (int64_t l : latencies_) sum += static_cast<double>(l);
      result_.latency_mean_ns = sum / static_cast<double>(latencies_.size());
      result_.latency_p50_ns = percentile(latencies_, 50);
      result_.latency_p99_ns = percentile(latencies_, 99);
      result_.latency_max_ns = latencies_.back();  // sorted by percentile()
    }
  }

  const Scenario& scenario_;
  const QueueSetup& setup_;
  aq::Ring<Frame> ring_;
  aq::SizingPolicy policy_;
  aq::LatencyTracker tracker_;
  RunResult result_;
  std::vector<int64_t> latencies_;

  int64_t now_ = 0;
  int64_t consumer_free_at_ = 0;
  std::optional<Frame> pending_;  // leaky=no: the frame whose push is blocked
  int64_t blocked_since_ = 0;

  double capacity_area_ = 0.0;
  int64_t capacity_since_ = 0;
  size_t interval_level_max_ = 0;
  int64_t interval_latency_max_ = 0;
  double interval_latency_sum_ = 0.0;
  uint64_t interval_delivered_ = 0;
};

}  // namespace

std::string QueueSetup::leaky_name() const {
  return leaky == Leaky::No ? "no" : "downstream";
}

int64_t percentile(std::vector<int64_t>& samples, unsigned pct) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const size_t n = samples.size();
  const size_t rank = (pct * n + 99) / 100;  // ceil(pct/100 * n), 1-based
  return samples[std::max<size_t>(rank, 1) - 1];
}

RunResult simulate(const Scenario& scenario, const QueueSetup& setup) {
  return Run(scenario, setup).run();
}

}  // namespace aqsim
