#include "simulation.h"

#include <algorithm>
#include <limits>

#include "adapter.h"
#include "latency_tracker.h"
#include "level_trace.h"
#include "ring.h"
#include "trimmer.h"

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
        live_(scenario.source().live),
        realtime_(scenario.sink().kind == SinkKind::RealTime),
        trimming_(setup.adaptive && live_ && setup.leaky == Leaky::Downstream &&
                  setup.config.trim_period_ns > 0),
        ring_(setup.capacity) {
    result_.capacity_min = result_.capacity_max = setup.capacity;
    next_sink_ns_ = scenario.sink().phase_ns;
  }

  RunResult run() {
    const int64_t end = scenario_.duration_ns();
    int64_t next_tick = kTickNs;
    for (;;) {
      const int64_t consumer_at = next_consumer();
      const int64_t producer_at = next_producer();
      const int64_t next = std::min({consumer_at, next_tick, producer_at});
      if (next >= end)
        break;
      advance(next);
      // Equal times: the consumer frees a slot first, then the tick, then the
      // producer, so a frame never waits on a decision made at its own instant.
      if (consumer_at == now_) {
        consume();
      } else if (next_tick == now_) {
        tick();
        next_tick += kTickNs;
      } else {
        produce();
      }
    }
    advance(end);
    finish();
    return std::move(result_);
  }

 private:
  int64_t next_consumer() const {
    if (realtime_)
      return next_sink_ns_;
    return ring_.empty() ? kNever : scenario_.resume_at(std::max(consumer_free_at_, now_));
  }

  int64_t next_producer() const {
    if (live_)
      return scenario_.arrival_ns(next_frame_);
    return pending_ ? kNever : producer_ready_ns_;
  }

  // Integrates level and capacity over [now, t).
  void advance(int64_t t) {
    const double dt = static_cast<double>(t - now_);
    const double level = static_cast<double>(ring_.size());
    capacity_area_ += static_cast<double>(ring_.capacity()) * dt;
    level_area_ += level * dt;
    const int64_t high = scenario_.time_above_mem(now_, t, setup_.config.mem_high);
    level_area_mem_high_ += level * static_cast<double>(high);
    mem_high_ns_ += high;
    now_ = t;
  }

  void consume() {
    if (realtime_) {
      next_sink_ns_ += scenario_.sink().period_ns;
      if (scenario_.resume_at(now_) != now_)
        return;  // a stalled sink skips its turn
      if (ring_.empty()) {
        if (result_.captured > 0)
          ++result_.underruns;
        return;
      }
    } else if (!latencies_.empty() && scenario_.resume_at(consumer_free_at_) < now_) {
      ++result_.underruns;  // it was ready before this frame was there
    }
    Frame frame;
    ring_.pop(frame);
    seen_removal();
    // The frame leaves the queue now: how late it is against its capture.
    const int64_t latency = now_ - frame.capture_ns;
    latencies_.push_back(latency);
    tracker_.add(latency);
    interval_latency_sum_ += static_cast<double>(latency);
    ++interval_delivered_;
    if (!realtime_)
      consumer_free_at_ = scenario_.finish_after(now_, scenario_.at(now_).service_ns);
    unblock_producer();
  }

  void produce() {
    ++result_.captured;
    if (live_) {
      offer(Frame{scenario_.capture_ns(next_frame_)});
      ++next_frame_;
      return;
    }
    offer(Frame{now_});
    if (!pending_)
      producer_ready_ns_ = now_ + scenario_.source().period_ns;
  }

  void offer(const Frame& frame) {
    // A live source cannot wait: what it captures while its push is blocked
    // overflows its device buffer and is lost.
    if (setup_.leaky == Leaky::No && pending_) {
      ++result_.source_lost;
      return;
    }
    const bool overran = full();
    if (overran) {
      // An overrun: full by its count, the element asks the core before it
      // blocks or drops; full by time or bytes, no count helps.
      trace_.overrun();
      if (setup_.adaptive && ring_.full()) {
        const aq::Decision d = adapter_.overrun(setup_.config, capacity(), trace_.max(capacity()),
                                                live_, now_, setup_.growth_limit);
        if (d.applied && d.new_capacity != capacity())
          resize(d.new_capacity);
      }
    }
    if (setup_.leaky == Leaky::No) {
      if (full()) {
        pending_ = frame;
        blocked_since_ = now_;
      } else {
        push(frame, overran);
      }
      return;
    }
    while (full())
      drop_oldest();
    push(frame, overran);
  }

  void tick() {
    const aq::LoadSample load{scenario_.cpu_average(now_ - kTickNs, now_),
                              scenario_.at(now_).mem_percent};
    const std::optional<int64_t> latency_average = tracker_.average();
    const aq::LevelInterval interval = trace_.take(static_cast<uint32_t>(ring_.size()));
    uint32_t floor = 0;
    uint32_t keep = 0;
    if (setup_.adaptive) {
      aq::TickInput in;
      in.capacity = capacity();
      in.level_max = interval.max;
      in.live = live_;
      in.load = load;
      in.latency_avg_ns = latency_average;
      in.now_ns = now_;
      in.growth_limit = setup_.growth_limit;
      const aq::Decision d = adapter_.tick(setup_.config, in);
      floor = d.demand_floor;
      if (d.applied && d.new_capacity != capacity())
        resize(d.new_capacity);
      if (trimming_) {
        const uint32_t n = trimmer_.tick(setup_.config, now_, interval);
        keep = trimmer_.keep();
        for (uint32_t i = 0; i < n && !ring_.empty(); ++i) {
          drop_oldest();
          ++result_.trimmed;
        }
      }
    }
    TickRecord r;
    r.t_ns = now_;
    r.capacity = capacity();
    r.level = ring_.size();
    r.level_max = interval.max;
    r.latency_max_ns = tracker_.take_interval_max().value_or(0);
    r.latency_mean_ns = interval_delivered_
                            ? interval_latency_sum_ / static_cast<double>(interval_delivered_)
                            : 0.0;
    r.latency_average_ns = latency_average.value_or(-1);
    r.cpu_percent = load.cpu_percent;
    r.mem_percent = load.mem_percent;
    r.lost_total = result_.lost();
    r.demand_floor = floor;
    r.rise = interval.rise;
    r.keep = keep;
    r.underruns_total = result_.underruns;
    result_.ticks.push_back(r);
    interval_latency_sum_ = 0.0;
    interval_delivered_ = 0;
  }

  uint32_t capacity() const { return static_cast<uint32_t>(ring_.capacity()); }

  // Full by count, or by queue's time or byte limit.
  bool full() const {
    const auto n = static_cast<int64_t>(ring_.size());
    return ring_.full() ||
           (setup_.max_time_ns > 0 && n * scenario_.source().frame_ns >= setup_.max_time_ns) ||
           (setup_.max_bytes > 0 &&
            static_cast<uint64_t>(n) * scenario_.source().frame_bytes >= setup_.max_bytes);
  }

  void resize(uint32_t capacity) {
    ++result_.capacity_changes;
    result_.capacity_min = std::min(result_.capacity_min, capacity);
    result_.capacity_max = std::max(result_.capacity_max, capacity);
    ring_.set_capacity(capacity);
    // Shrinking below the level: leaky=no keeps everything (the producer
    // waits); leaky=downstream drops the oldest frames.
    if (setup_.leaky == Leaky::Downstream)
      while (ring_.size() > ring_.capacity())
        drop_oldest();
    unblock_producer();
  }

  // The element sees the level only where it holds the queue lock: a push
  // that found the queue full (`locked`), and every removal. A push on its
  // lock-free path shows at the next removal or tick.
  void push(const Frame& frame, bool locked) {
    Frame copy = frame;
    ring_.push(std::move(copy));
    if (locked)
      trace_.push(static_cast<uint32_t>(ring_.size()));
  }

  void drop_oldest() {
    Frame gone;
    ring_.pop(gone);
    seen_removal();
    ++result_.dropped;
  }

  // A removal: the level just before it, the highest since the last one,
  // and after it.
  void seen_removal() {
    const auto after = static_cast<uint32_t>(ring_.size());
    trace_.push(after + 1);
    trace_.pop(after);
  }

  void unblock_producer() {
    if (!pending_ || full())
      return;
    result_.blocked_ns += now_ - blocked_since_;
    push(*pending_, true);
    pending_.reset();
    if (!live_)
      producer_ready_ns_ = now_ + scenario_.source().period_ns;
  }

  void finish() {
    if (pending_)
      result_.blocked_ns += now_ - blocked_since_;
    result_.left_over = ring_.size() + (pending_ ? 1 : 0);
    const double length = static_cast<double>(now_);
    result_.capacity_mean = now_ > 0 ? capacity_area_ / length : 0.0;
    result_.level_mean = now_ > 0 ? level_area_ / length : 0.0;
    if (mem_high_ns_ > 0)
      result_.level_mean_mem_high = level_area_mem_high_ / static_cast<double>(mem_high_ns_);
    result_.adaptations = adapter_.adaptations();
    result_.overrun_growths = adapter_.overrun_growths();
    result_.delivered = latencies_.size();
    if (!latencies_.empty()) {
      double sum = 0.0;
      for (int64_t l : latencies_)
        sum += static_cast<double>(l);
      result_.latency_mean_ns = sum / static_cast<double>(latencies_.size());
      result_.latency_p50_ns = percentile(latencies_, 50);
      result_.latency_p99_ns = percentile(latencies_, 99);
      result_.latency_max_ns = latencies_.back();  // sorted by percentile()
    }
  }

  const Scenario& scenario_;
  const QueueSetup& setup_;
  const bool live_;
  const bool realtime_;
  const bool trimming_;
  aq::Ring<Frame> ring_;
  aq::Adapter adapter_;
  aq::Trimmer trimmer_;
  aq::LatencyTracker tracker_;
  RunResult result_;
  std::vector<int64_t> latencies_;

  int64_t now_ = 0;
  int64_t consumer_free_at_ = 0;   // service consumer
  int64_t next_sink_ns_ = 0;       // real-time sink
  int64_t next_frame_ = 0;         // live source: the next frame's number
  int64_t producer_ready_ns_ = 0;  // non-live source: when its next frame is made
  std::optional<Frame> pending_;   // leaky=no: the frame whose push is blocked
  int64_t blocked_since_ = 0;

  double capacity_area_ = 0.0;
  double level_area_ = 0.0;
  double level_area_mem_high_ = 0.0;
  int64_t mem_high_ns_ = 0;
  // What the element tracks between ticks.
  aq::LevelTrace trace_;
  double interval_latency_sum_ = 0.0;
  uint64_t interval_delivered_ = 0;
};

}  // namespace

std::string QueueSetup::leaky_name() const {
  return leaky == Leaky::No ? "no" : "downstream";
}

int64_t percentile(std::vector<int64_t>& samples, unsigned pct) {
  if (samples.empty())
    return 0;
  std::sort(samples.begin(), samples.end());
  const size_t n = samples.size();
  const size_t rank = (pct * n + 99) / 100;  // ceil(pct/100 * n), 1-based
  return samples[std::max<size_t>(rank, 1) - 1];
}

RunResult simulate(const Scenario& scenario, const QueueSetup& setup) {
  return Run(scenario, setup).run();
}

}  // namespace aqsim
