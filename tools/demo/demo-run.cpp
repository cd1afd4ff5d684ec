/* The demo's run: one pipeline holding every variant's graph, so they share
 * the clock, the CPU and the trouble; a capture device or a network sender
 * feeding them; probes that stall, hold and measure; a monitor thread that
 * samples levels, capacities and load.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "demo.h"

#include <gio/gio.h>
#include <glib-unix.h>
#include <gst/base/gstbasesink.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <csignal>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <memory>
#include <sstream>
#include <thread>

namespace demo {
namespace {

constexpr const char* kRawCaps =
    "audio/x-raw,format=S16LE,layout=interleaved,rate=48000,channels=2";
constexpr const char* kRtpCaps =
    "application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,"
    "payload=96";
/* After the run: time for what is in flight to arrive before counting it
 * lost. Stalls end a second before the run does. */
constexpr guint kDrainMs = 1000;

class Run {
 public:
  Run(const Options& opts, const std::vector<VariantSpec>& specs);
  ~Run();
  int exec();

 private:
  bool build();
  bool configure_queue(Variant& v);
  void print_header() const;
  void print_progress();
  void print_table(const std::vector<Result>& results) const;
  std::vector<Result> results();

  GstClockTime now() const {
    const GstClockTime t = gst_clock_get_time(clock_);
    return t > base_ ? t - base_ : 0;
  }
  void wait_until(GstClockTime running) const;
  void hold(size_t& next) const;
  GstClockTime capture_time(gint64 k) const { return pts0_ + (k + 1) * kFrame; }
  Bin* bin(Variant& v, GstClockTime t) {
    const size_t b = t / kBin;
    return b < v.bins.size() ? &v.bins[b] : nullptr;
  }
  void record(Variant& v, gint64 k, GstClockTime arrival, bool late);

  void capture_loop();
  void monitor_loop();

  static GstPadProbeReturn on_sink_buffer(GstPad*, GstPadProbeInfo*, gpointer) noexcept;
  static GstPadProbeReturn on_encoder_in(GstPad*, GstPadProbeInfo*, gpointer) noexcept;
  static GstPadProbeReturn on_stamp(GstPad*, GstPadProbeInfo*, gpointer) noexcept;
  static GstPadProbeReturn on_sender_encoder_in(GstPad*, GstPadProbeInfo*, gpointer) noexcept;
  static GstPadProbeReturn on_sent(GstPad*, GstPadProbeInfo*, gpointer) noexcept;
  static GstPadProbeReturn on_jitterbuffer_out(GstPad*, GstPadProbeInfo*, gpointer) noexcept;
  static gboolean on_bus(GstBus*, GstMessage*, gpointer) noexcept;

  const Options& opts_;
  std::vector<std::unique_ptr<Variant>> variants_;
  std::vector<Stall> stalls_;
  size_t frames_ = 0, bins_ = 0;

  GstElement* pipeline_ = nullptr;
  GstClock* clock_ = nullptr;
  GstClockTime base_ = 0;
  GMainLoop* loop_ = nullptr;
  int exit_code_ = 0;

  bool any_adaptive_ = false;
  aqfixture::ProcFixture fixture_;
  Load load_;
  int workers_ = 0;
  double load_on_ = -1, load_off_ = -1; /* seconds, as it happened */
  gint64 start_us_ = 0;

  std::atomic<bool> capturing_{true};
  std::atomic<bool> monitoring_{true};
  std::thread capture_thread_, monitor_thread_;
  /* Capture time of frame 0's start: set before the first frame leaves. */
  std::atomic<GstClockTime> pts0_{GST_CLOCK_TIME_NONE};
  std::atomic<gint64> captured_{0};

  /* kvm graph: the sender, shared by every receiver */
  std::mutex sent_lock_;
  std::vector<gint64> seq_to_index_ = std::vector<gint64>(65536, -1);
  size_t sender_next_stall_ = 0; /* sender thread only */
  gint64 sender_frame_ = -1;     /* sender thread only */
  std::vector<GSocket*> sockets_;

  std::mutex series_lock_;
  LoadSeries series_;
};

Run::Run(const Options& opts, const std::vector<VariantSpec>& specs) : opts_(opts) {
  for (const auto& s : specs) {
    auto v = std::make_unique<Variant>();
    v->spec = s;
    v->owner = this;
    any_adaptive_ |= s.adaptive;
    variants_.push_back(std::move(v));
  }
  stalls_ = make_stalls(opts.schedule, opts.duration, opts.stall_min_ms, opts.stall_max_ms);
  const double span = opts.duration + kDrainMs / 1000.0 + 2.0;
  frames_ = static_cast<size_t>(span * GST_SECOND / kFrame);
  bins_ = static_cast<size_t>(span * GST_SECOND / kBin);
  for (auto& v : variants_) {
    v->frames.assign(frames_, kPending);
    v->bins.assign(bins_, Bin());
    v->latencies_ms.reserve(frames_);
  }
  series_.cpu.assign(bins_, -1);
  series_.mem.assign(bins_, -1);
}

Run::~Run() {
  if (pipeline_) {
    gst_element_set_state(pipeline_, GST_STATE_NULL);
    for (auto& v : variants_) {
      gst_clear_object(&v->queue);
      gst_clear_object(&v->sink);
      gst_clear_object(&v->appsrc);
    }
    gst_object_unref(pipeline_);
  }
  for (auto s : sockets_)
    g_object_unref(s);
  if (clock_)
    gst_object_unref(clock_);
  if (loop_)
    g_main_loop_unref(loop_);
}

/* ---- building ---- */

std::string queue_description(const Variant& v, size_t i) {
  std::ostringstream d;
  if (v.spec.adaptive)
    d << "adaptivequeue name=q" << i;
  else
    d << "queue name=q" << i << " max-size-buffers=" << v.spec.size
      << " max-size-bytes=0 max-size-time=0";
  return d.str();
}

bool Run::configure_queue(Variant& v) {
  if (!v.spec.adaptive)
    return true;
  GObject* q = G_OBJECT(v.queue);
  GObjectClass* klass = G_OBJECT_GET_CLASS(q);
  /* Say what this build's element is, in the table and the picture too. */
  if (!v.spec.jetkvm_rule && !g_object_class_find_property(klass, "demand-headroom"))
    v.spec.label += " (no demand floor)";
  if (fixture_.root().size()) {
    g_object_set(q, "proc-root", fixture_.root().c_str(), nullptr);
    gst_util_set_object_arg(q, "load-scope", "system");
  }
  for (const auto& p : opts_.properties) {
    const std::string name = p.substr(0, p.find('='));
    if (!g_object_class_find_property(klass, name.c_str())) {
      std::fprintf(stderr, "adaptivequeue has no property '%s'\n", name.c_str());
      return false;
    }
    gst_util_set_object_arg(q, name.c_str(), p.substr(p.find('=') + 1).c_str());
  }
  if (v.spec.jetkvm_rule) {
    if (!g_object_class_find_property(klass, "demand-headroom")) {
      std::fprintf(stderr,
                   "The variant 'jetkvm' (JetKVM's rule alone) sets demand-headroom=0,\n"
                   "but this adaptivequeue has no 'demand-headroom' property: it is\n"
                   "built without the demand floor, so it runs JetKVM's rule alone\n"
                   "already. Leave the variant out, e.g.\n"
                   "  --variants adaptive,queue-8,queue-32\n");
      return false;
    }
    g_object_set(q, "demand-headroom", 0.0, nullptr);
  }
  return true;
}

void probe(GstElement* e, const char* pad_name, GstPadProbeCallback cb, gpointer data) {
  GstPad* pad = gst_element_get_static_pad(e, pad_name);
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, cb, data, nullptr);
  gst_object_unref(pad);
}

bool Run::build() {
  if (any_adaptive_) {
    GstElementFactory* f = gst_element_factory_find("adaptivequeue");
    if (!f) {
      std::fprintf(stderr,
                   "GStreamer finds no adaptivequeue element: point "
                   "GST_PLUGIN_PATH at the build's gst/ directory (scripts/demo does).\n");
      return false;
    }
    gst_object_unref(f);
    std::string error;
    /* Memory as --mem says; the stat mirrors /proc/stat, refreshed by the
     * monitor. */
    if (opts_.mem_percent >= 0 &&
        (!fixture_.create(error) || !fixture_.write_meminfo(opts_.mem_percent) ||
         !fixture_.mirror_stat())) {
      if (error.empty())
        error = "cannot write " + fixture_.root();
      std::fprintf(stderr, "cannot create the procfs fixture: %s\n", error.c_str());
      return false;
    }
  }

  std::ostringstream d;
  if (opts_.graph == Graph::Capture) {
    for (size_t i = 0; i < variants_.size(); i++)
      d << "appsrc name=src" << i << " is-live=true format=time"
        << " min-latency=" << kFrame << " caps=" << kRawCaps << " ! opusenc name=enc" << i
        << " frame-size=20 ! " << queue_description(*variants_[i], i) << " ! fakesink name=sink"
        << i << " sync=true\n";
  } else {
    std::ostringstream clients;
    for (size_t i = 0; i < variants_.size(); i++) {
      GError* err = nullptr;
      GSocket* s =
          g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, &err);
      GInetAddress* lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
      GSocketAddress* any = g_inet_socket_address_new(lo, 0);
      const bool bound = s && g_socket_bind(s, any, FALSE, &err);
      g_object_unref(any);
      g_object_unref(lo);
      if (!bound) {
        std::fprintf(stderr, "cannot open a UDP socket on loopback: %s\n",
                     err ? err->message : "?");
        g_clear_error(&err);
        if (s)
          g_object_unref(s);
        return false;
      }
      sockets_.push_back(s);
      GSocketAddress* local = g_socket_get_local_address(s, nullptr);
      clients << (i ? "," : "")
              << "127.0.0.1:" << g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(local));
      g_object_unref(local);
    }
    /* One capture and one network for all: the same audio, the same holds. */
    d << "audiotestsrc is-live=true wave=sine freq=400 samplesperbuffer=960"
      << " ! audio/x-raw,rate=48000,channels=2 ! opusenc name=enc frame-size=20"
      << " ! rtpopuspay name=pay pt=96 ! multiudpsink name=net clients=" << clients.str()
      << " sync=false async=false\n";
    for (size_t i = 0; i < variants_.size(); i++)
      d << "udpsrc name=rx" << i << " caps=\"" << kRtpCaps << "\""
        << " ! rtpjitterbuffer name=jb" << i << " latency=" << opts_.jitterbuffer_ms
        << " do-lost=true"
        << " ! rtpopusdepay ! opusdec name=dec" << i << " ! " << queue_description(*variants_[i], i)
        << " ! fakesink name=sink" << i << " sync=true\n";
  }

  GError* err = nullptr;
  pipeline_ = gst_parse_launch(d.str().c_str(), &err);
  if (!pipeline_ || err) {
    std::fprintf(stderr,
                 "cannot build the pipeline: %s\n(scripts/demo "
                 "installs the GStreamer plugins it needs)\n",
                 err ? err->message : "?");
    g_clear_error(&err);
    return false;
  }
  clock_ = gst_system_clock_obtain();
  gst_pipeline_use_clock(GST_PIPELINE(pipeline_), clock_);
  GstBin* bin = GST_BIN(pipeline_);

  for (size_t i = 0; i < variants_.size(); i++) {
    Variant& v = *variants_[i];
    const std::string n = std::to_string(i);
    v.queue = gst_bin_get_by_name(bin, ("q" + n).c_str());
    v.sink = gst_bin_get_by_name(bin, ("sink" + n).c_str());
    if (!configure_queue(v))
      return false;
    probe(v.sink, "sink", on_sink_buffer, &v);
    if (opts_.graph == Graph::Capture) {
      v.appsrc = gst_bin_get_by_name(bin, ("src" + n).c_str());
      GstElement* enc = gst_bin_get_by_name(bin, ("enc" + n).c_str());
      probe(enc, "sink", on_encoder_in, &v);
      probe(enc, "src", on_stamp, &v);
      gst_object_unref(enc);
    } else {
      GstElement* rx = gst_bin_get_by_name(bin, ("rx" + n).c_str());
      g_object_set(rx, "socket", sockets_[i], nullptr);
      gst_object_unref(rx);
      GstElement* jb = gst_bin_get_by_name(bin, ("jb" + n).c_str());
      probe(jb, "src", on_jitterbuffer_out, &v);
      gst_object_unref(jb);
      GstElement* dec = gst_bin_get_by_name(bin, ("dec" + n).c_str());
      probe(dec, "src", on_stamp, &v);
      gst_object_unref(dec);
    }
  }
  if (opts_.graph == Graph::Kvm) {
    GstElement* enc = gst_bin_get_by_name(bin, "enc");
    probe(enc, "sink", on_sender_encoder_in, this);
    gst_object_unref(enc);
    GstElement* pay = gst_bin_get_by_name(bin, "pay");
    probe(pay, "src", on_sent, this);
    gst_object_unref(pay);
  }

  loop_ = g_main_loop_new(nullptr, FALSE);
  GstBus* bus = gst_element_get_bus(pipeline_);
  gst_bus_add_watch(bus, on_bus, this);
  gst_object_unref(bus);
  return true;
}

/* ---- time, trouble and measurement (streaming threads) ---- */

void Run::wait_until(GstClockTime running) const {
  GstClockID id = gst_clock_new_single_shot_id(clock_, base_ + running);
  gst_clock_id_wait(id, nullptr);
  gst_clock_id_unref(id);
}

/* Stalls the calling streaming thread while a stall of the schedule is on.
 * A stall no buffer met (the thread was elsewhere) is skipped. */
void Run::hold(size_t& next) const {
  const GstClockTime t = now();
  while (next < stalls_.size() && t >= stalls_[next].end)
    next++;
  if (next < stalls_.size() && t >= stalls_[next].start) {
    wait_until(stalls_[next].end);
    next++;
  }
}

/* Which frame a buffer carries travels as a meta, added where the frame
 * leaves its encoder (capture graph) or decoder (kvm graph): timestamps do
 * not say it, as encoders keep counting samples across a lost frame. */
GstCaps* frame_meta_caps() {
  static GstCaps* caps = gst_caps_new_empty_simple("timestamp/x-adaptivequeue-demo-capture");
  return caps;
}

void Run::record(Variant& v, gint64 k, GstClockTime arrival, bool late) {
  std::lock_guard<std::mutex> g(v.lock);
  if (k < 0 || k >= static_cast<gint64>(v.frames.size()) || k <= v.last_index)
    return; /* an encoder's extra output, or too late */
  v.last_index = k;
  const double ms = (static_cast<gint64>(arrival) - static_cast<gint64>(capture_time(k))) / 1e6;
  v.frames[k] = late ? kLate : kOnTime;
  v.latencies_ms.push_back(ms);
  if (Bin* b = bin(v, arrival)) {
    b->latency_max_ms = std::max(b->latency_max_ms, ms);
    if (late)
      b->lost++;
  }
}

GstPadProbeReturn Run::on_sink_buffer(GstPad* pad, GstPadProbeInfo* info, gpointer data) noexcept {
  Variant& v = *static_cast<Variant*>(data);
  Run& run = *static_cast<Run*>(v.owner);
  GstBuffer* buf = GST_PAD_PROBE_INFO_BUFFER(info);
  if (run.opts_.graph == Graph::Capture)
    run.hold(v.next_stall);
  const GstClockTime arrival = run.now();
  GstReferenceTimestampMeta* m = gst_buffer_get_reference_timestamp_meta(buf, frame_meta_caps());
  const GstClockTime pts0 = run.pts0_;
  if (!m || pts0 == GST_CLOCK_TIME_NONE || m->timestamp < pts0 + kFrame)
    return GST_PAD_PROBE_OK; /* not a captured frame: concealment */
  const gint64 k = (m->timestamp - pts0 + kFrame / 2) / kFrame - 1;

  /* kvm: late when past the time the synced sink plays it at */
  bool late = false;
  GstEvent* ev = gst_pad_get_sticky_event(pad, GST_EVENT_SEGMENT, 0);
  if (ev && run.opts_.graph == Graph::Kvm && GST_BUFFER_PTS_IS_VALID(buf)) {
    const GstSegment* seg;
    gst_event_parse_segment(ev, &seg);
    const GstClockTime rt = gst_segment_to_running_time(seg, GST_FORMAT_TIME, GST_BUFFER_PTS(buf));
    if (GST_CLOCK_TIME_IS_VALID(rt))
      late = arrival > rt + gst_base_sink_get_latency(GST_BASE_SINK(v.sink));
  }
  if (ev)
    gst_event_unref(ev);
  run.record(v, k, arrival, late);
  return GST_PAD_PROBE_OK;
}

/* Capture graph: the frame the encoder is given, by its capture time. */
GstPadProbeReturn Run::on_encoder_in(GstPad*, GstPadProbeInfo* info, gpointer data) noexcept {
  Variant& v = *static_cast<Variant*>(data);
  GstBuffer* buf = GST_PAD_PROBE_INFO_BUFFER(info);
  v.current_capture =
      GST_BUFFER_PTS_IS_VALID(buf) ? GST_BUFFER_PTS(buf) + kFrame : GST_CLOCK_TIME_NONE;
  return GST_PAD_PROBE_OK;
}

/* An encoder's or decoder's output is the frame it was last given: it runs
 * in the thread that gave it. */
GstPadProbeReturn Run::on_stamp(GstPad*, GstPadProbeInfo* info, gpointer data) noexcept {
  Variant& v = *static_cast<Variant*>(data);
  if (v.current_capture == GST_CLOCK_TIME_NONE)
    return GST_PAD_PROBE_OK;
  GstBuffer* buf = gst_buffer_make_writable(GST_PAD_PROBE_INFO_BUFFER(info));
  GST_PAD_PROBE_INFO_DATA(info) = buf;
  gst_buffer_add_reference_timestamp_meta(buf, frame_meta_caps(), v.current_capture,
                                          GST_CLOCK_TIME_NONE);
  return GST_PAD_PROBE_OK;
}

guint16 rtp_seqnum(GstBuffer* buf) {
  guint8 h[4] = {0};
  gst_buffer_extract(buf, 0, h, sizeof h);
  return static_cast<guint16>((h[2] << 8) | h[3]);
}

/* kvm: the sender's frames are 20 ms slots from its first timestamp. */
GstPadProbeReturn Run::on_sender_encoder_in(GstPad*, GstPadProbeInfo* info,
                                            gpointer data) noexcept {
  Run& run = *static_cast<Run*>(data);
  GstBuffer* buf = GST_PAD_PROBE_INFO_BUFFER(info);
  if (!GST_BUFFER_PTS_IS_VALID(buf))
    return GST_PAD_PROBE_OK;
  const GstClockTime pts = GST_BUFFER_PTS(buf);
  if (run.pts0_ == GST_CLOCK_TIME_NONE)
    run.pts0_ = pts;
  run.sender_frame_ =
      pts < run.pts0_ ? -1 : static_cast<gint64>((pts - run.pts0_ + kFrame / 2) / kFrame);
  return GST_PAD_PROBE_OK;
}

/* kvm: the sender. Remembers which frame each packet carries, then holds
 * the sending thread through a scheduled hold: what was captured meanwhile
 * leaves together afterwards, as on a Wi-Fi link that stops and recovers. */
GstPadProbeReturn Run::on_sent(GstPad*, GstPadProbeInfo* info, gpointer data) noexcept {
  Run& run = *static_cast<Run*>(data);
  if (!run.capturing_)
    return GST_PAD_PROBE_DROP;
  GstBuffer* buf = GST_PAD_PROBE_INFO_BUFFER(info);
  if (run.sender_frame_ >= 0) {
    std::lock_guard<std::mutex> g(run.sent_lock_);
    run.seq_to_index_[rtp_seqnum(buf)] = run.sender_frame_;
    run.captured_ = MAX(run.captured_.load(), run.sender_frame_ + 1);
  }
  run.hold(run.sender_next_stall_);
  return GST_PAD_PROBE_OK;
}

/* kvm: a receiver's jitter buffer lets a packet go; its decoder gets it
 * next, in this thread. */
GstPadProbeReturn Run::on_jitterbuffer_out(GstPad*, GstPadProbeInfo* info, gpointer data) noexcept {
  Variant& v = *static_cast<Variant*>(data);
  Run& run = *static_cast<Run*>(v.owner);
  GstBuffer* buf = GST_PAD_PROBE_INFO_BUFFER(info);
  gint64 k;
  {
    std::lock_guard<std::mutex> g(run.sent_lock_);
    k = run.seq_to_index_[rtp_seqnum(buf)];
  }
  v.current_capture = k >= 0 ? run.capture_time(k) : GST_CLOCK_TIME_NONE;
  return GST_PAD_PROBE_OK;
}

/* The capture graph's source: a device that completes a 20 ms period every
 * 20 ms whatever the graph does. Each variant's appsrc is its ring: when
 * kDeviceRing periods still wait there, the new one is lost. */
void Run::capture_loop() {
  /* A device keeps time; this thread stands in for it, so it asks for a
   * real-time priority (granted to root) to be late as rarely as one. */
  sched_param sp{};
  sp.sched_priority = 10;
  pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);

  const GstClockTime start = now();
  pts0_ = start;
  const gsize bytes = 960 * 2 * 2;
  GstBuffer* frame = gst_buffer_new_allocate(nullptr, bytes, nullptr);
  GstMapInfo map;
  gst_buffer_map(frame, &map, GST_MAP_WRITE);
  auto* s = reinterpret_cast<gint16*>(map.data);
  for (guint i = 0; i < 960; i++) /* 400 Hz: whole cycles per frame */
    s[2 * i] = s[2 * i + 1] = static_cast<gint16>(8000 * std::sin(2 * G_PI * 400 * i / 48000.0));
  gst_buffer_unmap(frame, &map);

  gint64 k = 0;
  while (capturing_) {
    wait_until(start + (k + 1) * kFrame);
    /* Every period completed by now. More than one if this thread was late:
     * the ring is judged by its level now, which is the least it held at
     * each of their ends, so lateness here never counts as a loss. */
    const gint64 last = (now() - start) / kFrame - 1;
    for (auto& vp : variants_) {
      Variant& v = *vp;
      guint64 level = 0;
      g_object_get(v.appsrc, "current-level-buffers", &level, nullptr);
      for (gint64 j = k; j <= last; j++) {
        const GstClockTime end = start + (j + 1) * kFrame;
        if (level >= kDeviceRing) {
          std::lock_guard<std::mutex> g(v.lock);
          if (j < static_cast<gint64>(v.frames.size()))
            v.frames[j] = kLostAtCapture;
          if (Bin* b = bin(v, end))
            b->lost++;
          v.discont = true;
          continue;
        }
        GstBuffer* b = gst_buffer_copy(frame);
        GST_BUFFER_PTS(b) = start + j * kFrame;
        GST_BUFFER_DURATION(b) = kFrame;
        if (v.discont)
          GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_DISCONT);
        v.discont = false;
        GstFlowReturn ret;
        g_signal_emit_by_name(v.appsrc, "push-buffer", b, &ret);
        gst_buffer_unref(b);
      }
    }
    k = MAX(k, last + 1);
    captured_ = k;
  }
  gst_buffer_unref(frame);
}

/* Every 10 ms: each queue's level and capacity. Every 100 ms: the fixture's
 * stat. Every 500 ms: the CPU for the picture. */
void Run::monitor_loop() {
  /* Measuring, and keeping the fixture's stat moving, must not stop when
   * the machine is busy, or the picture has holes and the adaptivequeues
   * see no CPU time pass. */
  sched_param sp{};
  sp.sched_priority = 5;
  pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
  const GstClockTime run_end = static_cast<GstClockTime>(opts_.duration * GST_SECOND);
  CpuMeter cpu;
  cpu.sample();
  size_t filled = 0;
  for (guint i = 0; monitoring_; i++) {
    const GstClockTime t = now();
    for (auto& vp : variants_) {
      Variant& v = *vp;
      guint level = 0, capacity = 0;
      g_object_get(v.queue, "current-level-buffers", &level, "max-size-buffers", &capacity,
                   nullptr);
      std::lock_guard<std::mutex> g(v.lock);
      if (Bin* b = bin(v, t)) {
        b->level_max = MAX(b->level_max, level);
        b->capacity = capacity;
      }
      if (t < run_end) {
        v.capacity_min = MIN(v.capacity_min, capacity);
        v.capacity_max = MAX(v.capacity_max, capacity);
      }
    }
    if (i % 10 == 0 && !fixture_.root().empty())
      fixture_.mirror_stat();
    if (i % 50 == 49) {
      const double pct = cpu.sample();
      const size_t b = MIN(t / kBin + 1, bins_);
      std::lock_guard<std::mutex> g(series_lock_);
      for (; filled < b; filled++) {
        series_.cpu[filled] = pct;
        series_.mem[filled] = opts_.mem_percent;
      }
    }
    wait_until(t + 10 * GST_MSECOND);
  }
}

/* ---- the main loop ---- */

gboolean Run::on_bus(GstBus*, GstMessage* msg, gpointer data) noexcept {
  Run& run = *static_cast<Run*>(data);
  switch (GST_MESSAGE_TYPE(msg)) {
    case GST_MESSAGE_WARNING:
    case GST_MESSAGE_ERROR: {
      GError* err = nullptr;
      gchar* dbg = nullptr;
      const bool error = GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR;
      if (error)
        gst_message_parse_error(msg, &err, &dbg);
      else
        gst_message_parse_warning(msg, &err, &dbg);
      std::printf("%5.1f s  %s from %s: %s (%s)\n", (g_get_monotonic_time() - run.start_us_) / 1e6,
                  error ? "ERROR" : "WARNING", GST_OBJECT_NAME(msg->src), err->message,
                  dbg ? dbg : "");
      std::fflush(stdout);
      g_clear_error(&err);
      g_free(dbg);
      if (error) {
        run.exit_code_ = 1;
        g_main_loop_quit(run.loop_);
      }
      break;
    }
    case GST_MESSAGE_LATENCY:
      gst_bin_recalculate_latency(GST_BIN(run.pipeline_));
      break;
    default:
      break;
  }
  return TRUE;
}

double machine_memory_gb() {
  unsigned long kb = 0;
  if (FILE* f = std::fopen("/proc/meminfo", "r")) {
    if (std::fscanf(f, "MemTotal: %lu kB", &kb) != 1)
      kb = 0;
    std::fclose(f);
  }
  return kb / 1048576.0;
}

void Run::print_header() const {
  const bool capture = opts_.graph == Graph::Capture;
  std::printf(
      "adaptivequeue demo, %s graph: %zu queues side by side in one "
      "pipeline, %.0f s\n\n",
      capture ? "capture" : "kvm", variants_.size(), opts_.duration);
  if (capture) {
    std::printf(
        "  graph    per queue: capture device -> opusenc -> QUEUE -> "
        "fakesink sync=true\n"
        "  capture  a device completing a 20 ms frame every 20 ms; it keeps %u "
        "frames the\n"
        "           graph has not taken and loses the next, as an ALSA "
        "capture device\n"
        "           overruns. \"lost\" counts those frames.\n",
        (guint)kDeviceRing);
  } else {
    std::printf(
        "  graph    one sender: audiotestsrc -> opusenc -> rtpopuspay -> UDP "
        "loopback;\n"
        "           per queue a receiver: udpsrc -> rtpjitterbuffer "
        "latency=%u ->\n"
        "           rtpopusdepay -> opusdec -> QUEUE -> fakesink sync=true\n"
        "  lost     frames sent that never reached the sink, or reached it "
        "after their\n"
        "           play-out time (an audio device would have played "
        "silence)\n",
        opts_.jitterbuffer_ms);
  }
  std::printf("  trouble  the same for every queue:\n");
  std::printf(
      "           - %s %u-%u ms, %zu times, at times drawn from "
      "--schedule %" G_GUINT64_FORMAT "\n",
      capture ? "the sink stalls"
              : "the sender holds its packets, then sends them together (Wi-Fi),\n"
                "             for",
      opts_.stall_min_ms, opts_.stall_max_ms, stalls_.size(), opts_.schedule);
  if (opts_.load_workers != 0)
    std::printf(
        "           - stress-ng --cpu %d from %.0f s to %.0f s, on "
        "top of what else runs\n",
        workers_, opts_.duration * opts_.load_start, opts_.duration * opts_.load_end);
  if (any_adaptive_ && opts_.mem_percent >= 0)
    std::printf(
        "           - the adaptivequeues read memory as %.0f %% used: "
        "their proc-root is\n"
        "             a fixture whose meminfo is a 256 MB board's and whose "
        "stat mirrors\n"
        "             /proc/stat (this machine has %.0f GB)\n",
        opts_.mem_percent, machine_memory_gb());
  std::printf(
      "  latency  from the end of a frame's capture to its arrival "
      "at the sink\n\n");
  for (const auto& vp : variants_) {
    const Variant& v = *vp;
    std::string note = "fixed capacity";
    if (v.spec.adaptive) {
      note = "JetKVM's rule alone";
      if (g_object_class_find_property(G_OBJECT_GET_CLASS(v.queue), "demand-headroom")) {
        double h = 0;
        g_object_get(v.queue, "demand-headroom", &h, nullptr);
        char t[64];
        g_snprintf(t, sizeof t, "demand floor, headroom %.2f", h);
        if (h > 0)
          note = t;
      }
    }
    std::printf("  %-9s %-40s %s\n", v.spec.key.c_str(), v.spec.label.c_str(), note.c_str());
  }
  /* Progress: one line per 5 s. */
  const int w = static_cast<int>(variants_.size() * 7);
  std::printf(
      "\nEvery 5 s: the machine's CPU (+L while stress-ng runs), each "
      "queue's capacity\nnow and the frames it lost so far.\n");
  std::printf("\n%5s  %-9s %-*s  %s\n%5s  %-9s", "time", "CPU", w, "capacity", "lost frames", "",
              "");
  for (int pass = 0; pass < 2; pass++) {
    for (const auto& vp : variants_)
      std::printf(" %6s", vp->spec.column.c_str());
    std::printf("  ");
  }
  std::printf("\n");
  std::fflush(stdout);
}

void Run::print_progress() {
  const GstClockTime t = now();
  double cpu = -1;
  {
    std::lock_guard<std::mutex> g(series_lock_);
    const size_t b = t / kBin;
    for (size_t i = MIN(b, bins_ - 1); i > 0 && cpu < 0; i--)
      cpu = series_.cpu[i];
  }
  std::printf("%5.0f  ", t / 1e9);
  if (cpu >= 0)
    std::printf("%3.0f %%%s ", cpu, load_.running() ? " +L" : "   ");
  else
    std::printf("   - %s ", load_.running() ? "  +L" : "    ");
  for (auto& vp : variants_) {
    guint c = 0;
    g_object_get(vp->queue, "max-size-buffers", &c, nullptr);
    std::printf(" %6u", c);
  }
  std::printf("  ");
  for (auto& vp : variants_) {
    std::lock_guard<std::mutex> g(vp->lock);
    guint lost = 0;
    for (const auto& b : vp->bins)
      lost += b.lost;
    std::printf(" %6u", lost);
  }
  std::printf("\n");
  std::fflush(stdout);
}

std::vector<Result> Run::results() {
  std::vector<Result> out;
  const gint64 captured = captured_;
  for (auto& vp : variants_) {
    Variant& v = *vp;
    std::lock_guard<std::mutex> g(v.lock);
    Result r;
    r.label = v.spec.label;
    r.key = v.spec.key;
    r.captured = captured;
    for (gint64 k = 0; k < captured && k < (gint64)v.frames.size(); k++) {
      switch (v.frames[k]) {
        case kLostAtCapture:
          r.lost++;
          break;
        case kLate:
          r.lost++;
          r.late++;
          break;
        case kPending:
          /* kvm: sent, and after the drain still not at the sink */
          if (opts_.graph == Graph::Kvm) {
            r.lost++;
            if (Bin* b = bin(v, capture_time(k)))
              b->lost++;
          }
          break;
        default:
          break;
      }
    }
    std::vector<double> l = v.latencies_ms;
    if (!l.empty()) {
      std::sort(l.begin(), l.end());
      double sum = 0;
      for (double x : l)
        sum += x;
      r.latency_mean_ms = sum / l.size();
      r.latency_p99_ms = l[static_cast<size_t>(std::ceil(0.99 * l.size())) - 1];
      r.latency_max_ms = l.back();
    }
    r.capacity_min = v.capacity_min == G_MAXUINT ? 0 : v.capacity_min;
    r.capacity_max = v.capacity_max;
    r.bins = v.bins;
    out.push_back(std::move(r));
  }
  return out;
}

void Run::print_table(const std::vector<Result>& results) const {
  int w = 5;
  for (const auto& r : results)
    w = MAX(w, static_cast<int>(r.label.size()));
  std::printf("\n%-*s %12s %9s %9s %10s\n", w, "", "frames lost", "latency", "p99", "capacity");
  std::printf("%-*s %12s %9s %9s %10s\n", w, "queue",
              ("of " + std::to_string(results.empty() ? 0 : results[0].captured)).c_str(),
              "mean ms", "ms", "buffers");
  for (const auto& r : results) {
    char cap[32];
    if (r.capacity_min == r.capacity_max)
      g_snprintf(cap, sizeof cap, "%u", r.capacity_max);
    else
      g_snprintf(cap, sizeof cap, "%u..%u", r.capacity_min, r.capacity_max);
    char mean[16] = "-", p99[16] = "-";
    if (r.latency_mean_ms >= 0) {
      g_snprintf(mean, sizeof mean, "%.1f", r.latency_mean_ms);
      g_snprintf(p99, sizeof p99, "%.0f", r.latency_p99_ms);
    }
    std::printf("%-*s %12" G_GUINT64_FORMAT " %9s %9s %10s\n", w, r.label.c_str(), r.lost, mean,
                p99, cap);
  }
  if (opts_.graph == Graph::Kvm) {
    std::printf("\nlate frames (counted in lost):");
    for (const auto& r : results)
      std::printf(" %s %" G_GUINT64_FORMAT, r.key.c_str(), r.late);
    std::printf("\n");
  }
}

int Run::exec() {
  if (!build())
    return 2;
  workers_ = opts_.load_workers < 0 ? static_cast<int>(g_get_num_processors()) : opts_.load_workers;

  print_header();
  start_us_ = g_get_monotonic_time();
  if (gst_element_set_state(pipeline_, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    std::fprintf(stderr, "cannot start the pipeline\n");
    return 1;
  }
  base_ = gst_element_get_base_time(pipeline_);
  if (opts_.graph == Graph::Capture)
    capture_thread_ = std::thread([this] { capture_loop(); });
  monitor_thread_ = std::thread([this] { monitor_loop(); });

  struct Timer {
    Run* run;
    int what;
  };
  auto at = [this](double seconds, int what) {
    g_timeout_add_full(
        G_PRIORITY_DEFAULT, static_cast<guint>(seconds * 1000),
        [](gpointer p) -> gboolean {
          auto* t = static_cast<Timer*>(p);
          Run& r = *t->run;
          const double s = (g_get_monotonic_time() - r.start_us_) / 1e6;
          switch (t->what) {
            case 0: {
              std::string error;
              const int seconds = static_cast<int>(std::ceil(
                                      r.opts_.duration * (r.opts_.load_end - r.opts_.load_start))) +
                                  1;
              if (r.load_.start(r.workers_, seconds, error))
                r.load_on_ = s;
              else
                std::printf("cannot start stress-ng: %s\n", error.c_str());
              break;
            }
            case 1:
              r.load_.stop();
              r.load_off_ = s;
              break;
            case 2:
              r.print_progress();
              break;
            case 3:
              /* The end: no more frames; what is in flight may arrive. */
              r.capturing_ = false;
              r.load_.stop();
              if (r.load_on_ >= 0 && r.load_off_ < 0)
                r.load_off_ = s;
              break;
            case 4:
              g_main_loop_quit(r.loop_);
              break;
          }
          return G_SOURCE_REMOVE;
        },
        new Timer{this, what}, [](gpointer p) { delete static_cast<Timer*>(p); });
  };
  const double d = opts_.duration;
  if (opts_.load_workers != 0) {
    at(d * opts_.load_start, 0);
    at(d * opts_.load_end, 1);
  }
  for (double t = 5; t < d; t += 5)
    at(t, 2);
  at(d, 3);
  at(d + kDrainMs / 1000.0, 4);
  /* Ctrl-C stops the run the same way, so stress-ng and the fixture go. */
  auto interrupt = [](gpointer p) -> gboolean {
    Run& r = *static_cast<Run*>(p);
    std::printf("interrupted\n");
    r.exit_code_ = 130;
    g_main_loop_quit(r.loop_);
    return G_SOURCE_CONTINUE; /* removed below */
  };
  const guint sigint = g_unix_signal_add(SIGINT, interrupt, this);
  const guint sigterm = g_unix_signal_add(SIGTERM, interrupt, this);
  g_main_loop_run(loop_);
  g_source_remove(sigint);
  g_source_remove(sigterm);

  capturing_ = false;
  monitoring_ = false;
  load_.stop();
  if (capture_thread_.joinable())
    capture_thread_.join();
  if (monitor_thread_.joinable())
    monitor_thread_.join();
  gst_element_set_state(pipeline_, GST_STATE_NULL);
  if (exit_code_)
    return exit_code_;

  std::vector<Result> res = results();
  print_table(res);
  for (const auto& r : res)
    if (r.latency_mean_ms < 0) {
      std::fprintf(stderr, "no frame reached the sink of %s\n", r.label.c_str());
      exit_code_ = 1;
    }

  if (opts_.plot) {
    std::string png;
    if (!write_plot(opts_, stalls_, load_on_, load_off_, series_, res, png))
      exit_code_ = 1;
    else if (!png.empty())
      std::printf("\npicture: %s (docs/demo.md says how to read it)\n", png.c_str());
  }
  return exit_code_;
}

}  // namespace

int run_demo(const Options& opts, const std::vector<VariantSpec>& specs) {
  Run run(opts, specs);
  return run.exec();
}

}  // namespace demo
