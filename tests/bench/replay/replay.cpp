#include "replay.h"

#include <gst/gst.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <map>
#include <memory>
#include <sstream>
#include <thread>

#include "load_trace.h"
#include "proc-fixture.h"

namespace aqreplay {

namespace {

constexpr int64_t kMs = aqsim::kMs;
constexpr int64_t kFrameNs = 20 * kMs;
constexpr int64_t kTickNs = aqsim::kTickNs;
constexpr int64_t kNever = INT64_MAX;
// The monitor's period: fixture writes and capacity samples.
constexpr int64_t kMonitorNs = 10 * kMs;
// Scenario time 0 is at least this long after PLAYING, so the sources are
// waiting for frame 0 before it is due.
constexpr int64_t kLeadNs = 300 * kMs;
// The longest a frame waits for a consumer that is due to take one, and a
// real-time sink's turn for a source behind its schedule. Either always
// comes (neither waits on the other at once), so this only bounds a hang:
// it is above the 1.5 s the harness's threads were seen to wake late on a
// loaded machine.
constexpr int64_t kTieWaitNs = 2000 * kMs;
// The first ticks come about this long before a multiple of 500 ms.
constexpr int64_t kTickMarginNs = 20 * kMs;
constexpr const char* kCaps = "audio/x-raw,format=S16LE,layout=interleaved,rate=48000,channels=2";
constexpr gsize kFrameBytes = 960 * 2 * 2;

std::atomic<bool> g_interrupted{false};

extern "C" void on_signal(int) {
  g_interrupted = true;
}

int64_t percentile(std::vector<int64_t> v, unsigned pct) {
  return aqsim::percentile(v, pct);
}

}  // namespace

std::string Variant::element() const {
  const char* leak = leaky == aqsim::Leaky::No ? "no" : "downstream";
  std::ostringstream d;
  if (adaptive)
    d << "adaptivequeue leaky=" << leak;
  else if (aq_fixed)
    d << "adaptivequeue adaptive=false max-size-buffers=" << capacity << " leaky=" << leak;
  else
    d << "queue max-size-buffers=" << capacity
      << " max-size-bytes=0 max-size-time=0 leaky=" << leak;
  return d.str();
}

std::string Variant::label() const {
  return queue + " " + (leaky == aqsim::Leaky::No ? "no" : "downstream");
}

bool parse_variant(const std::string& name, Variant& out) {
  out = Variant();
  out.queue = name;
  if (name == "adaptive") {
    out.adaptive = true;
    return true;
  }
  std::string digits;
  if (name.rfind("fixed-", 0) == 0) {
    digits = name.substr(6);
  } else if (name.rfind("aq-fixed-", 0) == 0) {
    digits = name.substr(9);
    out.aq_fixed = true;
  } else {
    return false;
  }
  if (digits.empty() || digits.size() > 5 ||
      digits.find_first_not_of("0123456789") != std::string::npos)
    return false;
  out.capacity = static_cast<uint32_t>(std::stoul(digits));
  return out.capacity > 0;
}

// One queue with its source and consumer. Fields are touched by one thread
// each, as marked, and read by the main thread once the pipeline stopped.
struct Branch {
  const aqsim::Scenario* scenario = nullptr;
  Variant variant;
  class Run* run = nullptr;
  GstElement* src = nullptr;
  GstElement* queue = nullptr;
  GstElement* sink = nullptr;

  // source (appsrc's streaming thread)
  int64_t next_frame = 0;  // also the count of frames that arrived (pushed or lost)
  bool overran = false;    // the last push found the queue full (its overrun signal)
  uint64_t captured = 0, pushed = 0, source_lost = 0;
  int64_t blocked_ns = 0;
  std::vector<int64_t> source_late;
  bool ended = false;

  // The consumer's first release since the source's last push began: when
  // it was scheduled to take the next frame (kNever: none yet).
  std::atomic<int64_t> first_release{INT64_MAX};
  // When the consumer is due to take the next frame; kNever once it has.
  std::atomic<int64_t> due_pop{INT64_MAX};
  uint64_t tie_waits = 0;  // source thread
  // When the source's next frame arrives: every frame that arrives before
  // it has been through the queue's chain (kNever after the last).
  std::atomic<int64_t> pushed_until{0};

  // consumer (the queue's streaming thread)
  int64_t ready_at = INT64_MIN;  // when it was scheduled to take the next frame
  int64_t last_frame = -1;
  std::vector<Gap> gaps;
  std::vector<int64_t> latencies;
  uint64_t left_over = 0;
  std::vector<int64_t> consumer_late;
  // real-time sink
  int64_t turn = 0;  // the turn it took, or is to take, its frame at
  uint64_t underruns = 0;
  uint64_t source_waits = 0;
  std::vector<int64_t> take_late, schedule_latencies;

  // monitor thread
  double capacity_sum = 0.0, level_sum = 0.0;
  uint64_t samples = 0;
  uint32_t capacity_min = UINT32_MAX, capacity_max = 0;
  std::vector<TickRow> ticks;
  uint64_t ticks_seen = 0;
  int64_t tick_phase_min = INT64_MAX, tick_phase_max = INT64_MIN;
  bool frozen = false;

  int64_t end() const { return scenario->duration_ns(); }
  bool realtime() const { return scenario->sink().kind == aqsim::SinkKind::RealTime; }
};

class Run {
 public:
  explicit Run(const std::vector<Pair>& pairs);
  ~Run();
  std::vector<Outcome> exec();

  int64_t now() const {
    const GstClockTime t = gst_clock_get_time(clock_);
    return static_cast<int64_t>(t) - static_cast<int64_t>(zero_);
  }
  // Sleeps until scenario time t; notes how late it woke.
  void wait_until(int64_t t, std::vector<int64_t>* late) const;

  void feed(Branch& b);
  void wait_for_consumer(Branch& b, int64_t arrival);
  void consume(Branch& b, GstBuffer* buf);
  void play(Branch& b, GstBuffer* buf);

 private:
  bool build();
  int64_t note_taken(Branch& b, GstBuffer* buf, int64_t t);
  bool frame_queued(Branch& b);
  void monitor();
  void note_tick(Branch& b, int64_t t, const GstStructure* st);
  bool wait_for_eos();
  Measured measure(Branch& b);

  std::vector<std::unique_ptr<Branch>> branches_;
  // One fixture and load per scenario, shared by its adaptivequeues.
  std::map<const aqsim::Scenario*, std::unique_ptr<aqfixture::ProcFixture>> fixtures_;
  std::map<const aqsim::Scenario*, std::unique_ptr<LoadTrace>> loads_;
  GstElement* pipeline_ = nullptr;
  GstClock* clock_ = nullptr;
  // Set while the pipeline starts, read by the streaming threads.
  std::atomic<GstClockTime> zero_{0};  // clock time of scenario time 0
  std::atomic<GstClockTime> pts0_{0};  // running time of frame 0's start
  GstBuffer* frame_ = nullptr;
  std::atomic<bool> monitoring_{true};
  std::thread monitor_thread_;
  int64_t last_end_ = 0;
};

Run::Run(const std::vector<Pair>& pairs) {
  clock_ = gst_system_clock_obtain();
  // Zero stays far in the future until the pipeline has started.
  zero_ = gst_clock_get_time(clock_) + 3600 * GST_SECOND;
  for (const Pair& p : pairs) {
    auto b = std::make_unique<Branch>();
    b->scenario = p.scenario;
    b->variant = p.variant;
    b->run = this;
    b->latencies.reserve(static_cast<size_t>(p.scenario->duration_ns() / kFrameNs) + 1);
    last_end_ = std::max(last_end_, p.scenario->duration_ns());
    branches_.push_back(std::move(b));
  }
  frame_ = gst_buffer_new_allocate(nullptr, kFrameBytes, nullptr);
  gst_buffer_memset(frame_, 0, 0, kFrameBytes);
}

Run::~Run() {
  monitoring_ = false;
  if (monitor_thread_.joinable())
    monitor_thread_.join();
  if (pipeline_) {
    gst_element_set_state(pipeline_, GST_STATE_NULL);
    for (auto& b : branches_) {
      gst_clear_object(&b->src);
      gst_clear_object(&b->queue);
      gst_clear_object(&b->sink);
    }
    gst_object_unref(pipeline_);
  }
  gst_buffer_unref(frame_);
  gst_object_unref(clock_);
}

void Run::wait_until(int64_t t, std::vector<int64_t>* late) const {
  if (now() >= t)
    return;
  GstClockID id = gst_clock_new_single_shot_id(clock_, zero_ + static_cast<GstClockTime>(t));
  gst_clock_id_wait(id, nullptr);
  gst_clock_id_unref(id);
  if (late)
    late->push_back(now() - t);
}

// Both threads keep the scenario's schedule: they act at the times the
// simulator's source and consumer would, and the lateness of their own
// wake-ups does not carry over into what follows (it shows in the
// latencies only, and is reported).

// appsrc's need-data, on its streaming thread: called when the previous
// push has returned, so the thread is the capture device, or the socket
// behind a network: a frame arrives at its capture or, captured during a
// network hold, with the others at the hold's end, pushed one after the
// other. A frame that arrives while the push is blocked is lost, as a
// device or socket with no buffer of its own loses it; the frame being
// pushed is not. The push was blocked until the consumer's release that
// freed a slot, at its scheduled time.
void Run::feed(Branch& b) {
  const aqsim::Scenario& s = *b.scenario;
  const int64_t end = b.end();
  // With leaky=no a push that overran waited for room, and only such a
  // push did, however late this thread ran.
  const bool blocked = b.overran && b.variant.leaky == aqsim::Leaky::No;
  b.overran = false;
  if (blocked) {
    const int64_t pushed_at = s.arrival_ns(b.next_frame - 1);
    const int64_t release = b.first_release.load();
    if (release != kNever && release > pushed_at) {
      b.blocked_ns += release - pushed_at;
      // A frame arriving at the instant of the release is not lost: the
      // simulator frees the slot first.
      while (s.arrival_ns(b.next_frame) < std::min(release, end)) {
        ++b.source_lost;
        ++b.captured;
        ++b.next_frame;
      }
    }
  }
  const int64_t arrival = s.arrival_ns(b.next_frame);
  if (arrival >= end) {
    b.pushed_until = kNever;
    if (!b.ended) {
      b.ended = true;
      GstFlowReturn ret;
      g_signal_emit_by_name(b.src, "end-of-stream", &ret);
    }
    return;
  }
  b.pushed_until = arrival;
  wait_until(arrival, &b.source_late);
  wait_for_consumer(b, arrival);
  // PTS is the frame's start: it is complete, captured, 20 ms later. With
  // the 20 ms min-latency upstream declares, the element's latency reading
  // is then how late the frame is against its capture, as the simulator's.
  GstBuffer* buf = gst_buffer_copy(frame_);
  GST_BUFFER_PTS(buf) = pts0_ + static_cast<GstClockTime>(s.capture_ns(b.next_frame));
  GST_BUFFER_DURATION(buf) = kFrameNs;
  ++b.captured;
  ++b.pushed;
  ++b.next_frame;
  b.first_release = kNever;
  GstFlowReturn ret;
  g_signal_emit_by_name(b.src, "push-buffer", buf, &ret);
  gst_buffer_unref(buf);
}

// At an instant both share, the simulator's consumer goes first: a frame
// arriving when the consumer is due to take one comes in after it has.
// Here they race (a stall or a hold ending on the consumer's instant, or a
// consumer thread that woke late): the frame would find one more queued,
// and with leaky=downstream a full queue would drop. So a frame waits, a
// little, for a consumer that is due while there is a frame for it to
// take; for a real-time sink, whatever it finds: a frame now would be taken
// in a turn that plays silence in the simulator.
void Run::wait_for_consumer(Branch& b, int64_t arrival) {
  const int64_t since = now();
  bool waited = false;
  while (b.due_pop.load() <= arrival && now() - since < kTieWaitNs) {
    guint level = 0;
    g_object_get(b.queue, "current-level-buffers", &level, nullptr);
    if (level == 0 && !b.realtime())
      break;
    waited = true;
    g_usleep(100);
  }
  if (waited)
    ++b.tie_waits;
}

// The consumer, on the queue's streaming thread, as a probe on the sink's
// pad: the frame has just left the queue. It is served for the row's
// service_ms from when the simulator's consumer would have taken it, paused
// by stalls; the thread then returns for the next frame.
void Run::consume(Branch& b, GstBuffer* buf) {
  const aqsim::Scenario& s = *b.scenario;
  const int64_t end = b.end();
  const int64_t t = now();
  if (t >= end) {  // after the end: what is left drains at once
    ++b.left_over;
    return;
  }
  const int64_t k = note_taken(b, buf, t);
  // It arrived at its capture, or, if its push was blocked, at the release
  // that let it in, which is no later than b.ready_at.
  const int64_t start = std::min(t, std::max(b.ready_at, s.capture_ns(k)));
  const int64_t free_at = s.finish_after(start, s.at(start).service_ns);
  b.due_pop = free_at;
  wait_until(std::min(free_at, end), &b.consumer_late);
  // A stopped consumer takes no frame: the simulator's stays stalled with
  // the frame queued. This thread would take it at once and hold it, one
  // more frame of room; so when the next frame is due in a stall (or one is
  // queued and the stall is on), it stays here till the stall ends.
  guint level = 0;
  g_object_get(b.queue, "current-level-buffers", &level, nullptr);
  const int64_t next = level > 0 ? free_at : (free_at + kFrameNs - 1) / kFrameNs * kFrameNs;
  int64_t release = free_at;
  if (s.resume_at(next) > next) {
    release = s.resume_at(next);
    b.due_pop = release;
    wait_until(std::min(release, end), &b.consumer_late);
  }
  b.ready_at = release;
  int64_t none = kNever;
  b.first_release.compare_exchange_strong(none, release);
}

// The consumer took frame k (returned) at t: its latency against its
// capture, and the frames before it that never came.
int64_t Run::note_taken(Branch& b, GstBuffer* buf, int64_t t) {
  b.due_pop = kNever;
  const int64_t k = static_cast<int64_t>((GST_BUFFER_PTS(buf) - pts0_) / kFrameNs);
  b.latencies.push_back(t - b.scenario->capture_ns(k));
  if (k > b.last_frame + 1)
    b.gaps.push_back({b.last_frame + 1, k - 1, t});
  b.last_frame = k;
  return k;
}

// The real-time sink, a probe on the sink's pad as the service consumer:
// at each of its turns (phase, phase + period, ...) outside a stall it
// takes the head frame, and plays silence when the queue is empty. The
// queue's thread stays here from one take to the next turn that has a frame
// to take, and only then goes back for it: between turns the frames waiting
// for the sink are in the queue, where leaky=downstream, the element's
// level and a blocked push see them, as in the simulator. Only the first
// frame, taken by a thread that was waiting for data, waits for its turn
// outside the queue.
void Run::play(Branch& b, GstBuffer* buf) {
  const aqsim::Scenario& s = *b.scenario;
  const aqsim::Sink& sink = s.sink();
  const int64_t end = b.end();
  if (b.last_frame < 0) {
    // At a shared instant the sink goes first: its first turn with a frame
    // is the first after frame 0 arrived.
    b.turn = sink.phase_ns;
    while (b.turn <= s.arrival_ns(0) || s.resume_at(b.turn) != b.turn)
      b.turn += sink.period_ns;
    b.due_pop = b.turn;
    wait_until(std::min(b.turn, end), &b.consumer_late);
  }
  if (now() >= end) {  // after the end: what is left drains at once
    ++b.left_over;
    return;
  }
  const int64_t t = now();
  const int64_t k = note_taken(b, buf, t);
  b.take_late.push_back(t - b.turn);
  b.schedule_latencies.push_back(b.turn - s.capture_ns(k));
  for (;;) {
    b.turn += sink.period_ns;
    if (b.turn >= end) {  // what is left drains after the end
      b.due_pop = kNever;
      wait_until(end, &b.consumer_late);
      return;
    }
    b.due_pop = b.turn;
    wait_until(b.turn, &b.consumer_late);
    if (s.resume_at(b.turn) != b.turn)
      continue;  // a stalled sink skips its turn
    if (frame_queued(b))
      break;
    ++b.underruns;
  }
  int64_t none = kNever;
  b.first_release.compare_exchange_strong(none, b.turn);
}

// Whether the queue holds a frame at the sink's turn. A source behind its
// schedule (a late wake-up) may not have pushed every frame that arrives
// before the turn: the turn waits for those, as they are the simulator's
// queue at it.
bool Run::frame_queued(Branch& b) {
  const int64_t since = now();
  bool waited = false;
  for (;;) {
    guint level = 0;
    g_object_get(b.queue, "current-level-buffers", &level, nullptr);
    if (level > 0 || b.pushed_until.load() >= b.turn || now() - since > kTieWaitNs) {
      if (waited)
        ++b.source_waits;
      return level > 0;
    }
    waited = true;
    g_usleep(100);
  }
}

namespace {

void on_need_data(GstElement*, guint, gpointer data) {
  Branch& b = *static_cast<Branch*>(data);
  b.run->feed(b);
}

// queue's and adaptivequeue's overrun, on the pushing thread: the push
// found the queue full, past any growth, and with leaky=no waits.
void on_overrun(GstElement*, gpointer data) {
  static_cast<Branch*>(data)->overran = true;
}

GstPadProbeReturn on_sink_buffer(GstPad*, GstPadProbeInfo* info, gpointer data) {
  Branch& b = *static_cast<Branch*>(data);
  if (b.realtime())
    b.run->play(b, GST_PAD_PROBE_INFO_BUFFER(info));
  else
    b.run->consume(b, GST_PAD_PROBE_INFO_BUFFER(info));
  return GST_PAD_PROBE_OK;
}

}  // namespace

bool Run::build() {
  GstElementFactory* f = gst_element_factory_find("adaptivequeue");
  if (!f) {
    std::fprintf(stderr,
                 "GStreamer finds no adaptivequeue element: point GST_PLUGIN_PATH at the "
                 "build's gst/ directory\n");
    return false;
  }
  gst_object_unref(f);
  const unsigned cpus = static_cast<unsigned>(std::max(1L, sysconf(_SC_NPROCESSORS_CONF)));
  std::ostringstream d;
  for (size_t i = 0; i < branches_.size(); ++i) {
    Branch& b = *branches_[i];
    if (b.variant.adaptive && !fixtures_.count(b.scenario)) {
      auto fx = std::make_unique<aqfixture::ProcFixture>();
      std::string error;
      if (!fx->create(error)) {
        std::fprintf(stderr, "cannot create a procfs fixture: %s\n", error.c_str());
        return false;
      }
      auto load = std::make_unique<LoadTrace>(*b.scenario, cpus);
      // Both files exist before any element reads them; the monitor
      // rewrites them from then on.
      if (!fx->write_stat(load->stat_at(now())) || !fx->write_meminfo(load->mem_at(now()))) {
        std::fprintf(stderr, "cannot write the procfs fixture in %s\n", fx->root().c_str());
        return false;
      }
      loads_[b.scenario] = std::move(load);
      fixtures_[b.scenario] = std::move(fx);
    }
    d << "appsrc name=src" << i << " is-live=true format=time min-latency=" << kFrameNs
      << " caps=" << kCaps << " ! " << b.variant.element() << " name=q" << i;
    if (b.variant.adaptive)
      d << " load-scope=system proc-root=\"" << fixtures_[b.scenario]->root() << "\"";
    // sync=true: a synced sink asks upstream for its latency, which tells the
    // adaptivequeue that upstream is live. The probe makes every frame late
    // for its render time, so the sink never waits.
    d << " ! fakesink name=sink" << i << " sync=true\n";
  }
  GError* err = nullptr;
  pipeline_ = gst_parse_launch(d.str().c_str(), &err);
  if (!pipeline_ || err) {
    std::fprintf(stderr, "cannot build the pipeline: %s\n", err ? err->message : "?");
    g_clear_error(&err);
    return false;
  }
  gst_pipeline_use_clock(GST_PIPELINE(pipeline_), clock_);
  for (size_t i = 0; i < branches_.size(); ++i) {
    Branch& b = *branches_[i];
    const std::string n = std::to_string(i);
    b.src = gst_bin_get_by_name(GST_BIN(pipeline_), ("src" + n).c_str());
    b.queue = gst_bin_get_by_name(GST_BIN(pipeline_), ("q" + n).c_str());
    b.sink = gst_bin_get_by_name(GST_BIN(pipeline_), ("sink" + n).c_str());
    g_signal_connect(b.src, "need-data", G_CALLBACK(on_need_data), &b);
    g_signal_connect(b.queue, "overrun", G_CALLBACK(on_overrun), &b);
    GstPad* pad = gst_element_get_static_pad(b.sink, "sink");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_sink_buffer, &b, nullptr);
    gst_object_unref(pad);
  }
  return true;
}

// A tick of the element: the stats' tick count moved since the last look,
// at most one monitor period ago. The row goes under the multiple of 500 ms
// nearest to it, where the simulator's tick is.
void Run::note_tick(Branch& b, int64_t t, const GstStructure* st) {
  TickRow r;
  r.t_ns = (t + kTickNs / 2) / kTickNs * kTickNs;
  guint u = 0;
  gst_structure_get_uint(st, "capacity", &r.capacity);
  gst_structure_get_uint(st, "current-level-buffers", &r.level);
  gst_structure_get_uint(st, "demand-floor", &u);
  r.demand_floor = u;
  gst_structure_get_double(st, "cpu-percent", &r.cpu_percent);
  gst_structure_get_double(st, "mem-percent", &r.mem_percent);
  gst_structure_get_int64(st, "latency-average", &r.latency_average_ns);
  guint64 a = 0;
  gst_structure_get_uint64(st, "adaptations", &a);
  r.adaptations = a;
  b.ticks.push_back(r);
  const int64_t phase = t - r.t_ns;
  b.tick_phase_min = std::min(b.tick_phase_min, phase);
  b.tick_phase_max = std::max(b.tick_phase_max, phase);
}

// Every 10 ms: the fixtures' load, each queue's capacity and level, and
// whether an adaptivequeue ticked; at a scenario's end, its adaptivequeues
// stop adapting, so what is left drains as it is.
void Run::monitor() {
  std::map<const aqsim::Scenario*, double> mem_written;
  int64_t next = now();
  while (monitoring_) {
    const int64_t t = now();
    for (auto& [scenario, fx] : fixtures_) {
      const LoadTrace& load = *loads_[scenario];
      fx->write_stat(load.stat_at(t));
      const double mem = load.mem_at(t);
      auto it = mem_written.find(scenario);
      if (it == mem_written.end() || it->second != mem) {
        fx->write_meminfo(mem);
        mem_written[scenario] = mem;
      }
    }
    for (auto& bp : branches_) {
      Branch& b = *bp;
      if (t < 0 || t >= b.end()) {
        if (t >= b.end() && b.variant.adaptive && !b.frozen) {
          g_object_set(b.queue, "adaptive", FALSE, nullptr);
          b.frozen = true;
        }
        continue;
      }
      guint capacity = 0, level = 0;
      if (b.variant.adaptive) {
        GstStructure* st = nullptr;
        g_object_get(b.queue, "stats", &st, nullptr);
        guint64 ticks = 0;
        gst_structure_get_uint(st, "capacity", &capacity);
        gst_structure_get_uint(st, "current-level-buffers", &level);
        gst_structure_get_uint64(st, "ticks", &ticks);
        if (ticks > b.ticks_seen && b.ticks_seen > 0)
          note_tick(b, t, st);
        b.ticks_seen = ticks;
        gst_structure_free(st);
      } else {
        g_object_get(b.queue, "max-size-buffers", &capacity, "current-level-buffers", &level,
                     nullptr);
      }
      b.capacity_sum += capacity;
      b.level_sum += level;
      ++b.samples;
      b.capacity_min = std::min(b.capacity_min, capacity);
      b.capacity_max = std::max(b.capacity_max, capacity);
    }
    // No catching up: after a late wake, or when scenario time 0 is set
    // and time jumps, the next round is one period from now.
    next = std::max(next, now()) + kMonitorNs;
    wait_until(next, nullptr);
  }
}

bool Run::wait_for_eos() {
  GstBus* bus = gst_element_get_bus(pipeline_);
  bool ok = false;
  for (;;) {
    if (g_interrupted) {
      std::fprintf(stderr, "interrupted\n");
      break;
    }
    if (now() > last_end_ + 10 * GST_SECOND) {
      std::fprintf(stderr, "no end of stream 10 s after the end\n");
      break;
    }
    GstMessage* msg = gst_bus_timed_pop(bus, 100 * GST_MSECOND);
    if (!msg)
      continue;
    const GstMessageType type = GST_MESSAGE_TYPE(msg);
    if (type == GST_MESSAGE_EOS) {
      gst_message_unref(msg);
      ok = true;
      break;
    }
    if (type == GST_MESSAGE_ERROR || type == GST_MESSAGE_WARNING) {
      GError* e = nullptr;
      gchar* dbg = nullptr;
      if (type == GST_MESSAGE_ERROR)
        gst_message_parse_error(msg, &e, &dbg);
      else
        gst_message_parse_warning(msg, &e, &dbg);
      std::fprintf(stderr, "%s from %s: %s (%s)\n", type == GST_MESSAGE_ERROR ? "ERROR" : "WARNING",
                   GST_OBJECT_NAME(msg->src), e->message, dbg ? dbg : "");
      g_clear_error(&e);
      g_free(dbg);
      if (type == GST_MESSAGE_ERROR) {
        gst_message_unref(msg);
        break;
      }
    } else if (type == GST_MESSAGE_LATENCY) {
      gst_bin_recalculate_latency(GST_BIN(pipeline_));
    }
    gst_message_unref(msg);
  }
  gst_object_unref(bus);
  return ok;
}

Measured Run::measure(Branch& b) {
  Measured m;
  m.captured = b.captured;
  m.delivered = b.latencies.size();
  m.source_lost = b.source_lost;
  m.left_over = b.left_over;
  // Every pushed frame left the queue, before the end or in the drain after
  // it, unless the queue dropped it.
  const uint64_t out = m.delivered + m.left_over;
  m.dropped = b.pushed > out ? b.pushed - out : 0;
  m.blocked_ns = b.blocked_ns;
  m.tie_waits = b.tie_waits + b.source_waits;
  if (b.realtime()) {
    m.underruns = static_cast<int64_t>(b.underruns);
    if (!b.take_late.empty()) {
      m.take_late_p99_ns = percentile(b.take_late, 99);
      m.take_late_max_ns = *std::max_element(b.take_late.begin(), b.take_late.end());
      m.schedule_p99_ns = percentile(b.schedule_latencies, 99);
    }
  }
  if (!b.ticks.empty()) {
    m.tick_phase_min_ns = b.tick_phase_min;
    m.tick_phase_max_ns = b.tick_phase_max;
  }
  if (!b.latencies.empty()) {
    double sum = 0.0;
    for (int64_t l : b.latencies)
      sum += static_cast<double>(l);
    m.latency_mean_ns = sum / static_cast<double>(b.latencies.size());
    m.latency_p50_ns = percentile(b.latencies, 50);
    m.latency_p99_ns = percentile(b.latencies, 99);
    m.latency_max_ns = *std::max_element(b.latencies.begin(), b.latencies.end());
  }
  if (b.samples) {
    m.capacity_mean = b.capacity_sum / static_cast<double>(b.samples);
    m.level_mean = b.level_sum / static_cast<double>(b.samples);
    m.capacity_min = b.capacity_min;
    m.capacity_max = b.capacity_max;
  }
  std::vector<int64_t> late = b.source_late;
  late.insert(late.end(), b.consumer_late.begin(), b.consumer_late.end());
  if (!late.empty()) {
    m.wake_late_p99_ns = percentile(late, 99);
    m.wake_late_max_ns = *std::max_element(late.begin(), late.end());
  }
  if (b.variant.adaptive || b.variant.aq_fixed) {
    GstStructure* st = nullptr;
    g_object_get(b.queue, "stats", &st, nullptr);
    if (st) {
      guint64 v = 0;
      gboolean live = FALSE;
      if (gst_structure_get_uint64(st, "adaptations", &v))
        m.adaptations = static_cast<int64_t>(v);
      if (gst_structure_get_uint64(st, "drops", &v))
        m.element_drops = static_cast<int64_t>(v);
      if (gst_structure_get_boolean(st, "upstream-live", &live))
        m.upstream_live = live ? 1 : 0;
      gst_structure_free(st);
    }
  }
  return m;
}

std::vector<Outcome> Run::exec() {
  if (!build())
    return {};
  monitor_thread_ = std::thread([this] { monitor(); });
  if (gst_element_set_state(pipeline_, GST_STATE_READY) == GST_STATE_CHANGE_FAILURE) {
    std::fprintf(stderr, "cannot set the pipeline to READY\n");
    return {};
  }
  // The adaptivequeues start their ticks during READY->PAUSED and tick one
  // interval (and the clock callback's latency) apart from then. Scenario
  // time 0 goes on that grid, a little after it, so the first ticks come
  // shortly before a multiple of 500 ms, as the simulator's do (consumer,
  // tick, producer); from there the callbacks' latency moves them later.
  gst_element_set_state(pipeline_, GST_STATE_PAUSED);
  GstClockTime zero = gst_clock_get_time(clock_) + kTickMarginNs;
  while (zero < gst_clock_get_time(clock_) + kLeadNs)
    zero += kTickNs;
  zero_ = zero;
  if (gst_element_set_state(pipeline_, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    std::fprintf(stderr, "cannot start the pipeline\n");
    return {};
  }
  const GstClockTime base = gst_element_get_base_time(pipeline_);
  if (base + kFrameNs > zero_) {
    std::fprintf(stderr, "the pipeline took too long to start\n");
    return {};
  }
  // Running time of frame 0's start: it is captured at scenario time 0.
  pts0_ = zero_ - base - kFrameNs;

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  const bool ok = wait_for_eos();
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  monitoring_ = false;
  monitor_thread_.join();
  if (!ok)
    return {};

  std::vector<Outcome> out;
  for (auto& b : branches_)
    out.push_back({measure(*b), b->ticks, b->gaps});
  gst_element_set_state(pipeline_, GST_STATE_NULL);
  return out;
}

std::vector<Outcome> replay(const std::vector<Pair>& pairs) {
  Run run(pairs);
  return run.exec();
}

}  // namespace aqreplay
