/* Differential test against core `queue`: random but valid sequences of
 * steps, deterministic from a seed, are fed to `queue` and to adaptivequeue
 * side by side, and after every step everything a user can observe must be
 * the same: what left the src pad and in what order (type, timestamps,
 * flags, identity), flow returns, event and query results, every shared
 * property read back, the four signals and the bus. A difference is shrunk
 * to a minimal sequence (delta debugging over steps) and printed as a step
 * list that the "replay" case runs again.
 *
 * adaptivequeue runs in two configurations: adaptive=false, and adaptive
 * with an explicit max-size-buffers (ticks 60 s apart, so none falls inside
 * a sequence). The differences chosen on purpose are in kChosenDifferences,
 * and nowhere else.
 *
 * Each step ends with both elements settled: the downstream pad holds
 * serialized items at a gate the steps open, so a src task is either held
 * there or waiting for data; a step is done when both sides read the same
 * and stay so for a few polls. A real difference never settles equal; one
 * that shows again in fewer than 2 of 3 replays is reported and counted as
 * timing, not failed on. What queue itself leaves to timing is not compared
 * (see observe()).
 *
 * The "seeds" case runs a fixed set of seeds (fewer under the dynamic
 * checkers); the "hunt" case, for scripts/differential, runs seeds from
 * AQ_DIFF_SEED for AQ_DIFF_MINUTES.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <random>
#include <sstream>

#include "aq_test.h"

using namespace aqt;

namespace {

constexpr GstClockTime kMs = GST_MSECOND;

/* ---- the differences chosen on purpose: the one table ---- */

/* How the tester honours a chosen difference: it either never generates
 * the input, or does not compare the observation. */
enum class Handling { NotGenerated, NotCompared };

struct ChosenDifference {
  const char* id;
  Handling handling;
  const char* what;
};

const ChosenDifference kChosenDifferences[] = {
    {"latency-message", Handling::NotCompared,
     "adaptivequeue posts a LATENCY message when its LATENCY answer changes "
     "(its capacity or the buffer duration moved); queue never posts one"},
    {"latency-max-without-time-limit", Handling::NotCompared,
     "with max-size-time 0, adaptivequeue's LATENCY maximum is what its capacity "
     "holds in time (max-size-buffers x the last buffer duration); queue's is "
     "unbounded"},
    {"live-overrun-growth", Handling::NotGenerated,
     "adaptive with a live upstream, an overrun grows max-size-buffers at once; "
     "with adaptive on, upstream answers LATENCY as not live"},
    {"reverse-non-time-segment", Handling::NotGenerated,
     "a BYTES or DEFAULT segment with a negative rate: queue 1.22 asks a running "
     "time of an open segment and raises a g_critical; only TIME segments with a "
     "stop get a negative rate"},
    {"limit-lowered-under-threshold", Handling::NotGenerated,
     "a max-size limit lowered to or below the level while a min threshold "
     "holds data back: the queue is full, so adaptivequeue's task pushes at once; "
     "queue wakes only upstream on a limit change and pushes with the next item. "
     "No max-size limit is lowered while a min threshold is set"},
    {"new-stream-after-downstream-eos", Handling::NotGenerated,
     "downstream returned EOS for a buffer with a SEGMENT or STREAM_START queued "
     "behind it: queue 1.22 drops a STREAM_START there, pushes the SEGMENT and then "
     "pauses with EOS, refusing buffers until the next SEGMENT; adaptivequeue stops "
     "dropping at either and goes on. Downstream is told to return EOS only with "
     "nothing queued or held, and no SEGMENT or STREAM_START is sent while it "
     "returns EOS with data queued or held"},
    {"query-after-downstream-eos", Handling::NotGenerated,
     "a serialized query after downstream returned EOS: queue 1.22 holds it, its "
     "caller blocked until a flush; adaptivequeue answers FALSE at once. None is "
     "sent after downstream was told to return EOS, until a flush"},
    {"time-level-after-flushing-return", Handling::NotGenerated,
     "after downstream returned FLUSHING, before FLUSH_STOP: both drop what is "
     "queued; queue also resets upstream's segment, adaptivequeue leaves it to "
     "FLUSH_STOP (upstream may still be pushing), so a SEGMENT or GAP then reads "
     "a different time level. None is sent then"},
    {"drop-on-failure-before-eos", Handling::NotGenerated,
     "queue >= 1.24 drops what it holds when downstream returns any flow but OK, "
     "NOT_LINKED, EOS or FLUSHING (a custom success flow too), before EOS as "
     "after; adaptivequeue drops it at a fatal flow after EOS only, as before EOS "
     "upstream may be handing a buffer over without the lock. On 1.24 and later, "
     "such a flow is not set with data queued or held, and no data is sent while "
     "it is set with data queued or held"},
    {"abandoned-query", Handling::NotGenerated,
     "a serialized query whose caller gave up when the task stopped: queue 1.22 "
     "keeps it and sends it downstream when the task restarts, though its caller "
     "may have freed it; adaptivequeue never does. No flush, state change down or "
     "failing downstream flow is set while a serialized query waits, and no "
     "serialized query is sent while downstream is told to fail (data queued "
     "ahead of it would stop the task)"},
    {"items-behind-eos", Handling::NotGenerated,
     "a STREAM_START, SEGMENT or serialized query queued behind an EOS that has "
     "not left (downstream holds it, or a fatal flow stopped the task, which then "
     "sends an EOS of its own): queue 1.22 pauses on the EOS, answers the query "
     "FALSE and leaves a new stream stuck behind it, answering EOS to pushes; "
     "adaptivequeue pushes them on. None is sent while such an EOS may be queued"},
};

bool chosen(const char* id) {
  for (const ChosenDifference& d : kChosenDifferences)
    if (g_str_equal(d.id, id))
      return true;
  g_error("no chosen difference named %s", id);
  return false;
}

/* ---- steps ---- */

enum class Kind {
  Buffer,
  List,
  StreamStart,
  Caps,
  Segment,
  Gap,
  Eos,
  CustomSerialized,
  CustomOob,
  FlushStart,
  FlushStop,
  QueryAllocation,
  QueryDrain,
  QueryCaps,
  QueryCustom,
  QueryPosition,
  QueryDuration,
  QueryLatency,
  SetProperty,
  State,
  GateOpen,
  GateClose,
  Release,
  DownReturn,
  Reconfigure,
  Count
};

const char* const kKindNames[] = {
    "buffer",         "list",          "stream-start", "caps",
    "segment",        "gap",           "eos",          "custom-serialized",
    "custom-oob",     "flush-start",   "flush-stop",   "query-allocation",
    "query-drain",    "query-caps",    "query-custom", "query-position",
    "query-duration", "query-latency", "set",          "state",
    "gate-open",      "gate-close",    "release",      "down-return",
    "reconfigure"};
static_assert(G_N_ELEMENTS(kKindNames) == static_cast<size_t>(Kind::Count));

/* One step; `a`..`d` mean what the kind says (see apply()). */
struct Step {
  Kind kind;
  guint64 a = 0, b = 0, c = 0, d = 0;
};

struct Property {
  const char* name;
  std::vector<guint64> values;
};

/* Values near the limits a short sequence reaches. */
const Property kProperties[] = {
    {"max-size-buffers", {0, 1, 2, 3, 5, 200}},
    {"max-size-bytes", {0, 16, 40, 100, 10485760}},
    {"max-size-time", {0, 10 * kMs, 30 * kMs, GST_SECOND}},
    {"min-threshold-buffers", {0, 1, 2, 3}},
    {"min-threshold-bytes", {0, 16, 40}},
    {"min-threshold-time", {0, 10 * kMs, 30 * kMs}},
    {"leaky", {0, 1, 2}},
    {"silent", {0, 1}},
    {"flush-on-eos", {0, 1}},
};

const GstFlowReturn kDownReturns[] = {
    GST_FLOW_OK,    GST_FLOW_FLUSHING,       GST_FLOW_NOT_LINKED,     GST_FLOW_EOS,
    GST_FLOW_ERROR, GST_FLOW_NOT_NEGOTIATED, GST_FLOW_CUSTOM_SUCCESS, GST_FLOW_CUSTOM_ERROR};
const GstFormat kFormats[] = {GST_FORMAT_TIME, GST_FORMAT_BYTES, GST_FORMAT_DEFAULT};
const GstState kStates[] = {GST_STATE_READY, GST_STATE_PAUSED, GST_STATE_PLAYING};

std::string step_text(const Step& s) {
  std::ostringstream o;
  o << kKindNames[static_cast<int>(s.kind)] << " " << s.a << " " << s.b << " " << s.c << " " << s.d;
  return o.str();
}

/* The inverse of step_text(), for replaying a printed sequence. */
std::vector<Step> parse_steps(const std::string& text) {
  std::vector<Step> steps;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line, ';')) {
    std::istringstream l(line);
    std::string name;
    Step s{Kind::Count};
    if (!(l >> name))
      continue;
    for (int k = 0; k < static_cast<int>(Kind::Count); k++)
      if (name == kKindNames[k])
        s.kind = static_cast<Kind>(k);
    fail_unless(s.kind != Kind::Count, "unknown step %s", name.c_str());
    l >> s.a >> s.b >> s.c >> s.d;
    steps.push_back(s);
  }
  return steps;
}

/* A random sequence; weights favour data, so queues fill and drain. */
std::vector<Step> generate(guint64 seed, size_t length) {
  std::mt19937_64 rng(seed);
  auto pick = [&](guint64 n) { return static_cast<guint64>(rng() % n); };
  struct Weight {
    Kind kind;
    int weight;
  };
  const Weight weights[] = {
      {Kind::Buffer, 30},       {Kind::List, 6},
      {Kind::StreamStart, 3},   {Kind::Caps, 2},
      {Kind::Segment, 5},       {Kind::Gap, 2},
      {Kind::Eos, 3},           {Kind::CustomSerialized, 2},
      {Kind::CustomOob, 1},     {Kind::FlushStart, 2},
      {Kind::FlushStop, 3},     {Kind::QueryAllocation, 2},
      {Kind::QueryDrain, 1},    {Kind::QueryCaps, 1},
      {Kind::QueryCustom, 1},   {Kind::QueryPosition, 2},
      {Kind::QueryDuration, 1}, {Kind::QueryLatency, 2},
      {Kind::SetProperty, 10},  {Kind::State, 2},
      {Kind::GateOpen, 6},      {Kind::GateClose, 5},
      {Kind::Release, 8},       {Kind::DownReturn, 3},
      {Kind::Reconfigure, 1},
  };
  int total = 0;
  for (const Weight& w : weights)
    total += w.weight;
  std::vector<Step> steps;
  /* Most sequences start a stream at once; a few start from nothing. */
  if (pick(8) != 0) {
    steps.push_back(Step{Kind::State, 2});
    steps.push_back(Step{Kind::StreamStart});
    steps.push_back(Step{Kind::Segment, 0, 0});
  }
  while (steps.size() < length) {
    int r = static_cast<int>(pick(total));
    Kind kind = Kind::Buffer;
    for (const Weight& w : weights) {
      if (r < w.weight) {
        kind = w.kind;
        break;
      }
      r -= w.weight;
    }
    Step s{kind, pick(1u << 16), pick(1u << 16), pick(1u << 16), pick(1u << 16)};
    steps.push_back(s);
  }
  return steps;
}

/* ---- one element between test pads ---- */

GstStaticPadTemplate up_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);
GstStaticPadTemplate down_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

std::string time_text(GstClockTime t) {
  return GST_CLOCK_TIME_IS_VALID(t) ? std::to_string(t / GST_USECOND) + "us" : "none";
}

std::string buffer_text(GstBuffer* b) {
  std::ostringstream o;
  o << "#" << GST_BUFFER_OFFSET(b) << "(" << gst_buffer_get_size(b)
    << " pts=" << time_text(GST_BUFFER_PTS(b)) << " dts=" << time_text(GST_BUFFER_DTS(b))
    << " dur=" << time_text(GST_BUFFER_DURATION(b)) << " flags=0x" << std::hex
    << GST_BUFFER_FLAGS(b) << ")";
  return o.str();
}

std::string event_text(GstEvent* e) {
  std::string out = GST_EVENT_TYPE_NAME(e);
  if (GST_EVENT_TYPE(e) == GST_EVENT_SEGMENT) {
    const GstSegment* seg;
    gst_event_parse_segment(e, &seg);
    std::ostringstream o;
    o << "(" << gst_format_get_name(seg->format) << " rate=" << seg->rate << " " << seg->start
      << "-" << static_cast<gint64>(seg->stop) << " pos=" << seg->position << ")";
    return out + o.str();
  }
  if (const GstStructure* s = gst_event_get_structure(e)) {
    gchar* text = gst_structure_to_string(s);
    /* The stream-start's group id and the like are the pad's, not ours. */
    if (GST_EVENT_TYPE(e) != GST_EVENT_STREAM_START)
      out += std::string(" ") + text;
    g_free(text);
  }
  return out;
}

/* Upstream's answers: fixed, so both sides get the same. */
gint64 up_position(GstFormat f) {
  return f == GST_FORMAT_TIME ? 5 * GST_SECOND : f == GST_FORMAT_BYTES ? 1000 : -1;
}

class Side {
 public:
  Side(const char* factory, int config) {
    g_mutex_init(&lock_);
    g_cond_init(&cond_);
    element_ = gst_element_factory_make(factory, "q");
    fail_unless(element_ != nullptr, "cannot create %s", factory);
    adaptive_ = g_str_equal(factory, "adaptivequeue");
    if (adaptive_ && config == 0) {
      g_object_set(element_, "adaptive", FALSE, nullptr);
    } else if (adaptive_) {
      g_object_set(element_, "adaptation-interval", 60 * GST_SECOND, nullptr);
    }
    /* queue's default, so the two start alike; the explicit configuration
     * sets it as a user would. */
    g_object_set(element_, "max-size-buffers", config == 1 ? 5 : 200, nullptr);
    bus_ = std::make_unique<Bus>(element_);
    connect_signals();

    up_ = gst_pad_new_from_static_template(&up_template, "up");
    gst_pad_set_element_private(up_, this);
    gst_pad_set_query_function(up_, up_query);
    gst_pad_set_event_function(up_, up_event);
    gst_pad_set_active(up_, TRUE);
    GstPad* sink = gst_element_get_static_pad(element_, "sink");
    fail_unless_equals_int(gst_pad_link(up_, sink), GST_PAD_LINK_OK);
    gst_object_unref(sink);

    down_ = gst_pad_new_from_static_template(&down_template, "down");
    gst_pad_set_element_private(down_, this);
    gst_pad_set_chain_function(down_, down_chain);
    gst_pad_set_chain_list_function(down_, down_chain_list);
    gst_pad_set_event_function(down_, down_event);
    gst_pad_set_query_function(down_, down_query);
    gst_pad_set_active(down_, TRUE);
    GstPad* src = gst_element_get_static_pad(element_, "src");
    fail_unless_equals_int(gst_pad_link(src, down_), GST_PAD_LINK_OK);
    gst_object_unref(src);

    worker_ = std::thread([this] { work(); });
  }

  ~Side() {
    open_gate();
    gst_element_set_state(element_, GST_STATE_NULL);
    {
      std::lock_guard<std::mutex> g(jobs_lock_);
      stop_ = true;
      jobs_cond_.notify_all();
    }
    worker_.join();
    for (GstQuery* q : queries_)
      gst_query_unref(q);
    bus_.reset();
    gst_element_set_bus(element_, nullptr);
    gst_pad_set_active(up_, FALSE);
    gst_pad_set_active(down_, FALSE);
    gst_object_unref(up_);
    gst_object_unref(down_);
    gst_object_unref(element_);
    g_mutex_clear(&lock_);
    g_cond_clear(&cond_);
  }

  Side(const Side&) = delete;
  Side& operator=(const Side&) = delete;

  GstElement* element() const { return element_; }
  GstPad* up() const { return up_; }
  GstPad* down() const { return down_; }

  /* Runs `job` on upstream's streaming thread; it returns its result text. */
  void upstream(std::function<std::string()> job) {
    std::lock_guard<std::mutex> g(jobs_lock_);
    jobs_.push_back(std::move(job));
    busy_ = true;
    jobs_cond_.notify_all();
  }

  bool upstream_busy() {
    std::lock_guard<std::mutex> g(jobs_lock_);
    return busy_;
  }

  /* What a step on the test's thread answered: event and query results.
   * Upstream's thread keeps its own list: the two interleave by timing. */
  void note(const std::string& text) {
    std::lock_guard<std::mutex> g(jobs_lock_);
    notes_.push_back(text);
  }

  /* Queries are freed with the side: queue 1.22 keeps an abandoned one
   * and pushes it later (chosen difference "abandoned-query"). */
  void keep(GstQuery* q) {
    std::lock_guard<std::mutex> g(jobs_lock_);
    queries_.push_back(q);
  }

  /* EOS events the element accepted that downstream has not seen. */
  bool eos_in_flight() {
    std::lock_guard<std::mutex> g(jobs_lock_);
    g_mutex_lock(&lock_);
    const bool in_flight = eos_accepted_ > eos_delivered_;
    g_mutex_unlock(&lock_);
    return in_flight;
  }

  /* A flush or a restart dropped what was queued. */
  void forget_eos() {
    std::lock_guard<std::mutex> g(jobs_lock_);
    g_mutex_lock(&lock_);
    eos_accepted_ = eos_delivered_;
    eos_taken_since_flush_ = false;
    g_mutex_unlock(&lock_);
  }

  /* The element took an EOS since the last flush: after a fatal flow it
   * may still hold it behind the EOS it sent itself. */
  bool eos_taken_since_flush() {
    std::lock_guard<std::mutex> g(jobs_lock_);
    return eos_taken_since_flush_;
  }

  int held() {
    g_mutex_lock(&lock_);
    const int n = held_;
    g_mutex_unlock(&lock_);
    return n;
  }

  void open_gate() {
    g_mutex_lock(&lock_);
    gate_open_ = true;
    g_cond_broadcast(&cond_);
    g_mutex_unlock(&lock_);
  }
  void close_gate() {
    g_mutex_lock(&lock_);
    gate_open_ = false;
    g_mutex_unlock(&lock_);
  }
  void release(int n) {
    g_mutex_lock(&lock_);
    credits_ += n;
    g_cond_broadcast(&cond_);
    g_mutex_unlock(&lock_);
  }
  void set_down_return(GstFlowReturn r) {
    g_mutex_lock(&lock_);
    down_return_ = r;
    g_mutex_unlock(&lock_);
  }
  void set_up_latency(bool live, GstClockTime min, GstClockTime max) {
    g_mutex_lock(&lock_);
    up_live_ = live;
    up_min_ = min;
    up_max_ = max;
    g_mutex_unlock(&lock_);
  }

  /* Everything a user can observe, as text, except what a chosen
   * difference excludes. */
  /* The signals since rebase_signals(): compared only for a step that did
   * not start with upstream blocked, as otherwise whether the task finds
   * the queue empty before upstream refills it is a race, on queue too. */
  std::string observe(bool signals) {
    std::ostringstream o;
    g_mutex_lock(&lock_);
    o << "downstream:";
    for (const std::string& s : log_)
      o << " " << s;
    o << "\nheld: " << held_ << "\nupstream events:";
    for (const std::string& e : upstream_events_)
      o << " " << e;
    o << "\n";
    g_mutex_unlock(&lock_);
    {
      std::lock_guard<std::mutex> g(jobs_lock_);
      o << "upstream: " << (busy_ ? "busy" : "idle") << ";";
      for (const std::string& s : answers_)
        o << " " << s;
      o << "\nanswers:";
      for (const std::string& s : notes_)
        o << " " << s;
      o << "\n";
    }
    o << "properties:";
    for (const Property& p : kProperties)
      o << " " << p.name << "=" << read_property(p.name);
    for (const char* name : {"current-level-buffers", "current-level-bytes", "current-level-time"})
      o << " " << name << "=" << read_property(name);
    if (signals)
      o << "\nsignals this step: underrun=" << underrun_ - base_[0]
        << " running=" << running_ - base_[1] << " overrun=" << overrun_ - base_[2]
        << " pushing=" << pushing_ - base_[3] << "\n";
    else
      o << "\nsignals this step: not compared\n";
    bus_->drain();
    o << "bus: errors";
    for (const Bus::Report& r : bus_->errors)
      o << " " << g_quark_to_string(r.domain) << ":" << r.code;
    o << " warnings";
    for (const Bus::Report& r : bus_->warnings)
      o << " " << g_quark_to_string(r.domain) << ":" << r.code;
    o << " eos " << bus_->eos;
    if (!chosen("latency-message"))
      o << " latency " << bus_->latency_messages;
    o << "\n";
    return o.str();
  }

  void rebase_signals() {
    base_[0] = underrun_;
    base_[1] = running_;
    base_[2] = overrun_;
    base_[3] = pushing_;
  }

  std::string read_property(const char* name) {
    GParamSpec* spec = g_object_class_find_property(G_OBJECT_GET_CLASS(element_), name);
    GValue v = G_VALUE_INIT;
    g_value_init(&v, spec->value_type);
    g_object_get_property(G_OBJECT(element_), name, &v);
    std::string out;
    if (G_VALUE_HOLDS_UINT(&v))
      out = std::to_string(g_value_get_uint(&v));
    else if (G_VALUE_HOLDS_UINT64(&v))
      out = std::to_string(g_value_get_uint64(&v));
    else if (G_VALUE_HOLDS_BOOLEAN(&v))
      out = g_value_get_boolean(&v) ? "true" : "false";
    else if (G_VALUE_HOLDS_ENUM(&v))
      out = std::to_string(g_value_get_enum(&v));
    g_value_unset(&v);
    return out;
  }

  void set_property(const char* name, guint64 value) {
    GParamSpec* spec = g_object_class_find_property(G_OBJECT_GET_CLASS(element_), name);
    GValue v = G_VALUE_INIT;
    g_value_init(&v, spec->value_type);
    if (G_VALUE_HOLDS_UINT(&v))
      g_value_set_uint(&v, static_cast<guint>(value));
    else if (G_VALUE_HOLDS_UINT64(&v))
      g_value_set_uint64(&v, value);
    else if (G_VALUE_HOLDS_BOOLEAN(&v))
      g_value_set_boolean(&v, value != 0);
    else if (G_VALUE_HOLDS_ENUM(&v))
      g_value_set_enum(&v, static_cast<gint>(value));
    g_object_set_property(G_OBJECT(element_), name, &v);
    g_value_unset(&v);
  }

 private:
  void connect_signals() {
    g_signal_connect_swapped(element_, "underrun", G_CALLBACK(+[](Side* s) { s->underrun_++; }),
                             this);
    g_signal_connect_swapped(element_, "running", G_CALLBACK(+[](Side* s) { s->running_++; }),
                             this);
    g_signal_connect_swapped(element_, "overrun", G_CALLBACK(+[](Side* s) { s->overrun_++; }),
                             this);
    g_signal_connect_swapped(element_, "pushing", G_CALLBACK(+[](Side* s) { s->pushing_++; }),
                             this);
  }

  void work() {
    std::unique_lock<std::mutex> g(jobs_lock_);
    for (;;) {
      jobs_cond_.wait(g, [this] { return stop_ || !jobs_.empty(); });
      if (jobs_.empty())
        return;
      auto job = std::move(jobs_.front());
      jobs_.pop_front();
      g.unlock();
      const std::string result = job();
      g.lock();
      answers_.push_back(result);
      if (result == "eos 1") {
        eos_accepted_++;
        eos_taken_since_flush_ = true;
      }
      busy_ = !jobs_.empty();
    }
  }

  static Side* of(GstPad* pad) { return static_cast<Side*>(gst_pad_get_element_private(pad)); }

  /* Serialized items wait at the gate, like a sink that does not consume,
   * until it opens, a release lets one through, or a flush starts. */
  GstFlowReturn receive(const std::string& text, bool is_data) {
    g_mutex_lock(&lock_);
    log_.push_back(text);
    held_++;
    while (!gate_open_ && credits_ == 0 && !flushing_)
      g_cond_wait(&cond_, &lock_);
    if (!gate_open_ && credits_ > 0 && !flushing_)
      credits_--;
    held_--;
    GstFlowReturn ret = flushing_ ? GST_FLOW_FLUSHING : is_data ? down_return_ : GST_FLOW_OK;
    g_mutex_unlock(&lock_);
    return ret;
  }

  static GstFlowReturn down_chain(GstPad* pad, GstObject*, GstBuffer* b) {
    const GstFlowReturn ret = of(pad)->receive(buffer_text(b), true);
    gst_buffer_unref(b);
    return ret;
  }

  static GstFlowReturn down_chain_list(GstPad* pad, GstObject*, GstBufferList* list) {
    std::string text = "[";
    for (guint i = 0; i < gst_buffer_list_length(list); i++)
      text += (i ? " " : "") + buffer_text(gst_buffer_list_get(list, i));
    text += "]";
    const GstFlowReturn ret = of(pad)->receive(text, true);
    gst_buffer_list_unref(list);
    return ret;
  }

  static gboolean down_event(GstPad* pad, GstObject*, GstEvent* e) {
    Side* s = of(pad);
    const std::string text = event_text(e);
    const GstEventType type = GST_EVENT_TYPE(e);
    gst_event_unref(e);
    if (type == GST_EVENT_FLUSH_START || type == GST_EVENT_FLUSH_STOP) {
      g_mutex_lock(&s->lock_);
      s->flushing_ = type == GST_EVENT_FLUSH_START;
      s->log_.push_back(text);
      g_cond_broadcast(&s->cond_);
      g_mutex_unlock(&s->lock_);
      return TRUE;
    }
    if (!(gst_event_type_get_flags(type) & GST_EVENT_TYPE_SERIALIZED)) {
      g_mutex_lock(&s->lock_);
      s->log_.push_back(text);
      g_mutex_unlock(&s->lock_);
      return TRUE;
    }
    const gboolean ok = s->receive(text, false) == GST_FLOW_OK;
    /* Counted once past the gate: the element's push has returned. */
    if (type == GST_EVENT_EOS) {
      g_mutex_lock(&s->lock_);
      s->eos_delivered_++;
      g_mutex_unlock(&s->lock_);
    }
    return ok;
  }

  static gboolean down_query(GstPad* pad, GstObject* parent, GstQuery* q) {
    Side* s = of(pad);
    switch (GST_QUERY_TYPE(q)) {
      case GST_QUERY_CAPS: {
        GstCaps* caps = gst_caps_from_string("audio/x-raw, rate=(int)48000");
        gst_query_set_caps_result(q, caps);
        gst_caps_unref(caps);
        return TRUE;
      }
      case GST_QUERY_ALLOCATION:
        gst_query_add_allocation_meta(q, GST_PARENT_BUFFER_META_API_TYPE, nullptr);
        /* fall through */
      case GST_QUERY_DRAIN:
      case GST_QUERY_CUSTOM:
        g_mutex_lock(&s->lock_);
        s->log_.push_back(std::string("query:") + GST_QUERY_TYPE_NAME(q));
        g_mutex_unlock(&s->lock_);
        return TRUE;
      default:
        return gst_pad_query_default(pad, parent, q);
    }
  }

  static gboolean up_query(GstPad* pad, GstObject* parent, GstQuery* q) {
    Side* s = of(pad);
    switch (GST_QUERY_TYPE(q)) {
      case GST_QUERY_LATENCY:
        g_mutex_lock(&s->lock_);
        gst_query_set_latency(q, s->up_live_, s->up_min_, s->up_max_);
        g_mutex_unlock(&s->lock_);
        return TRUE;
      case GST_QUERY_POSITION: {
        GstFormat f;
        gst_query_parse_position(q, &f, nullptr);
        gst_query_set_position(q, f, up_position(f));
        return TRUE;
      }
      case GST_QUERY_DURATION: {
        GstFormat f;
        gst_query_parse_duration(q, &f, nullptr);
        gst_query_set_duration(q, f, 2 * up_position(f));
        return TRUE;
      }
      default:
        return gst_pad_query_default(pad, parent, q);
    }
  }

  static gboolean up_event(GstPad* pad, GstObject*, GstEvent* e) {
    Side* s = of(pad);
    g_mutex_lock(&s->lock_);
    s->upstream_events_.push_back(GST_EVENT_TYPE_NAME(e));
    g_mutex_unlock(&s->lock_);
    gst_event_unref(e);
    return TRUE;
  }

  GstElement* element_ = nullptr;
  GstPad* up_ = nullptr;
  GstPad* down_ = nullptr;
  bool adaptive_ = false;
  std::unique_ptr<Bus> bus_;
  std::atomic<int> underrun_{0}, running_{0}, overrun_{0}, pushing_{0};
  int base_[4] = {0, 0, 0, 0};

  GMutex lock_;
  GCond cond_;
  std::vector<std::string> log_;
  /* Events that reached upstream: a thread of their own, so a list of
   * their own. */
  std::vector<std::string> upstream_events_;
  bool gate_open_ = true;
  int credits_ = 0;
  bool flushing_ = false;
  int held_ = 0;
  GstFlowReturn down_return_ = GST_FLOW_OK;
  bool up_live_ = false;
  GstClockTime up_min_ = 0;
  GstClockTime up_max_ = GST_CLOCK_TIME_NONE;

  std::mutex jobs_lock_;
  std::condition_variable jobs_cond_;
  std::deque<std::function<std::string()>> jobs_;
  std::vector<std::string> answers_;
  std::vector<std::string> notes_;
  std::vector<GstQuery*> queries_;
  bool busy_ = false;
  bool stop_ = false;
  /* Guarded by jobs_lock_, and lock_ for the second. */
  int eos_accepted_ = 0;
  bool eos_taken_since_flush_ = false;
  int eos_delivered_ = 0;
  std::thread worker_;
};

/* ---- running a sequence on both ---- */

/* What the runner knows of the stream, so every step it applies is valid:
 * GStreamer wants STREAM_START, then a SEGMENT, before data, and FLUSH_STOP
 * after FLUSH_START. Steps that would break that are skipped. */
struct StreamState {
  GstState state = GST_STATE_NULL;
  bool started = false;
  bool segment = false;
  bool caps = false;
  /* Downstream returns EOS for data; it was told to return a fatal flow
   * since the last flush. */
  bool down_eos = false;
  bool fatal = false;
  /* Since the last flush, downstream was told to return EOS, FLUSHING. */
  bool down_eos_seen = false;
  bool down_flushing = false;
  /* Downstream is told to return a flow other than OK now; one on which
   * queue >= 1.24 drops what it holds (drop-on-failure-before-eos). */
  bool down_failing = false;
  bool down_dropping = false;
  /* A segment was sent since the pads were activated: the pad keeps it
   * across flushes and streams. */
  bool any_segment = false;
  bool flushing = false;
  bool eos = false;
  GstFormat format = GST_FORMAT_TIME;
  double rate = 1.0;
  guint64 next_id = 1;
  GstClockTime next_pts = 0;
};

std::string flow_text(GstFlowReturn r) {
  return gst_flow_get_name(r);
}

GstBuffer* step_buffer(StreamState& st, guint64 r) {
  const bool pts = r % 5 != 0;
  const bool dts = (r >> 3) % 3 == 0;
  const bool dur = (r >> 5) % 4 != 0;
  const gsize size = 8 + 8 * ((r >> 7) % 3);
  GstBuffer* b = make_buffer(st.next_id++, pts ? st.next_pts : GST_CLOCK_TIME_NONE,
                             dur ? 10 * kMs : GST_CLOCK_TIME_NONE, size);
  if (dts && pts)
    GST_BUFFER_DTS(b) = st.next_pts;
  if ((r >> 9) % 4 == 0)
    GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_DISCONT);
  if ((r >> 11) % 3 == 0)
    GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_DELTA_UNIT);
  /* Reverse playback runs timestamps down from the segment's stop. */
  if (st.rate < 0 && st.next_pts >= 10 * kMs)
    st.next_pts -= 10 * kMs;
  else if (st.rate > 0)
    st.next_pts += 10 * kMs;
  return b;
}

class Runner {
 public:
  explicit Runner(int config) : config_(config) {
    sides_[0] = std::make_unique<Side>("queue", config);
    sides_[1] = std::make_unique<Side>("adaptivequeue", config);
  }

  /* Applies the steps, comparing after each; returns "" or the first
   * difference, with the index of its step in `failed_at`. */
  std::string run(const std::vector<Step>& steps, size_t* failed_at) {
    for (size_t i = 0; i < steps.size(); i++) {
      signals_ = !sides_[0]->upstream_busy() && !sides_[1]->upstream_busy();
      /* FLUSH_START frees the task from downstream's gate, and whether it
       * finds the queue empty (an underrun) before it sees the flushing
       * flag is a race, on queue too: both counts show, in both ways. */
      if (steps[i].kind == Kind::FlushStart && (sides_[0]->held() > 0 || sides_[1]->held() > 0))
        signals_ = false;
      apply(steps[i]);
      std::string diff = pending_diff_.empty() ? settle() : pending_diff_;
      if (!diff.empty()) {
        *failed_at = i;
        return diff;
      }
    }
    return "";
  }

 private:
  template <class F>
  void both(F f) {
    for (auto& s : sides_)
      f(*s);
  }

  void apply(const Step& s) {
    StreamState& st = st_;
    const bool active = st.state >= GST_STATE_PAUSED;
    const bool up_idle = !sides_[0]->upstream_busy() && !sides_[1]->upstream_busy();
    const bool can_serialize = active && up_idle && !st.flushing;
    const bool can_data = can_serialize && st.started && st.segment &&
                          !(data_behind_dropping_failure() && chosen("drop-on-failure-before-eos"));
    switch (s.kind) {
      case Kind::Buffer: {
        if (!can_data)
          return;
        const StreamState start = st;
        both([&](Side& side) {
          StreamState copy = start;
          GstBuffer* b = step_buffer(copy, s.a);
          st = copy;
          GstPad* up = side.up();
          side.upstream([up, b] { return "push " + flow_text(gst_pad_push(up, b)); });
        });
        return;
      }
      case Kind::List: {
        if (!can_data)
          return;
        const guint n = static_cast<guint>(s.a % 4);
        const StreamState start = st;
        both([&](Side& side) {
          StreamState copy = start;
          GstBufferList* list = gst_buffer_list_new();
          for (guint i = 0; i < n; i++)
            gst_buffer_list_add(list, step_buffer(copy, s.b >> i));
          st = copy;
          GstPad* up = side.up();
          side.upstream(
              [up, list] { return "push-list " + flow_text(gst_pad_push_list(up, list)); });
        });
        return;
      }
      case Kind::StreamStart:
        if (!can_serialize || (eos_in_flight() && chosen("items-behind-eos")) ||
            (data_behind_downstream_eos() && chosen("new-stream-after-downstream-eos")))
          return;
        st.started = true;
        st.eos = false;
        st.segment = false;
        serialized_event([&] {
          GstEvent* e = gst_event_new_stream_start("aq-differential");
          gst_event_set_group_id(e, 1);
          return e;
        });
        return;
      case Kind::Caps:
        /* Sticky order: the first caps must come before the segment. */
        /* Once, before any segment: a CAPS dropped on the way (downstream's
         * EOS) must not leave a later one after a segment downstream. */
        if (!can_serialize || !st.started || st.any_segment)
          return;
        st.caps = true;
        serialized_event([&] {
          GstCaps* caps = gst_caps_new_simple("audio/x-raw", "rate", G_TYPE_INT,
                                              static_cast<int>(8000 * (1 + s.a % 6)), nullptr);
          GstEvent* e = gst_event_new_caps(caps);
          gst_caps_unref(caps);
          return e;
        });
        return;
      case Kind::Segment: {
        if (!can_serialize || !st.started || (eos_in_flight() && chosen("items-behind-eos")) ||
            (st.down_flushing && chosen("time-level-after-flushing-return")) ||
            (data_behind_downstream_eos() && chosen("new-stream-after-downstream-eos")))
          return;
        GstSegment seg;
        const GstFormat format = kFormats[s.a % 3];
        gst_segment_init(&seg, format);
        /* Reverse playback for TIME only, with a stop. */
        const bool reverse = format == GST_FORMAT_TIME && s.b % 4 == 0;
        if (reverse && chosen("reverse-non-time-segment")) {
          seg.rate = -1.0;
          seg.stop = 10 * GST_SECOND;
          st.next_pts = 2 * GST_SECOND;
        } else if (format == GST_FORMAT_TIME) {
          seg.start = (s.c % 3) * 100 * kMs;
          seg.position = seg.start;
          if (s.d % 3 == 0)
            seg.rate = 2.0;
        }
        st.rate = seg.rate;
        st.format = format;
        st.segment = true;
        st.any_segment = true;
        st.eos = false;
        serialized_event([seg] { return gst_event_new_segment(&seg); });
        return;
      }
      case Kind::Gap: {
        if (!can_data || (st.down_flushing && chosen("time-level-after-flushing-return")))
          return;
        const GstClockTime ts = st.next_pts;
        const GstClockTime dur = s.a % 2 ? 20 * kMs : GST_CLOCK_TIME_NONE;
        if (st.rate > 0)
          st.next_pts += 20 * kMs;
        serialized_event([ts, dur] { return gst_event_new_gap(ts, dur); });
        return;
      }
      case Kind::Eos:
        if (!can_serialize)
          return;
        st.eos = true;
        serialized_event([] { return gst_event_new_eos(); });
        return;
      case Kind::CustomSerialized:
        if (!can_serialize || !st.started)
          return;
        serialized_event([&] {
          return gst_event_new_custom(
              GST_EVENT_CUSTOM_DOWNSTREAM,
              gst_structure_new("aq-custom", "n", G_TYPE_UINT64, s.a, nullptr));
        });
        return;
      case Kind::CustomOob:
        both([&](Side& side) {
          const gboolean ok = gst_pad_push_event(
              side.up(), gst_event_new_custom(GST_EVENT_CUSTOM_DOWNSTREAM_OOB,
                                              gst_structure_new_empty("aq-oob")));
          side.note(std::string("oob ") + (ok ? "1" : "0"));
        });
        return;
      case Kind::FlushStart:
        if (!active || st.flushing || (query_pending() && chosen("abandoned-query")))
          return;
        st.flushing = true;
        both([&](Side& side) {
          side.note(std::string("flush-start ") +
                    (gst_pad_push_event(side.up(), gst_event_new_flush_start()) ? "1" : "0"));
        });
        return;
      case Kind::FlushStop:
        if (!active || !st.flushing || !up_idle)
          return;
        st.flushing = false;
        st.eos = false;
        st.fatal = false;
        st.down_eos_seen = st.down_eos;
        st.down_flushing = false;
        both([](Side& side) { side.forget_eos(); });
        st.segment = false;
        serialized_event([] { return gst_event_new_flush_stop(TRUE); });
        return;
      case Kind::QueryAllocation:
      case Kind::QueryDrain:
        if (!can_serialize || !st.started || (eos_in_flight() && chosen("items-behind-eos")) ||
            (st.down_eos_seen && chosen("query-after-downstream-eos")) ||
            (st.down_failing && chosen("abandoned-query")))
          return;
        query_sent_ = true;
        both([&](Side& side) {
          GstPad* up = side.up();
          Side* owner = &side;
          const bool allocation = s.kind == Kind::QueryAllocation;
          side.upstream([up, owner, allocation] {
            GstCaps* caps = gst_caps_from_string("audio/x-raw");
            GstQuery* q = allocation ? gst_query_new_allocation(caps, TRUE) : gst_query_new_drain();
            gst_caps_unref(caps);
            const gboolean ok = gst_pad_peer_query(up, q);
            std::string out = std::string(GST_QUERY_TYPE_NAME(q)) + " " + (ok ? "1" : "0");
            if (allocation)
              out += " metas=" + std::to_string(gst_query_get_n_allocation_metas(q));
            owner->keep(q);
            return out;
          });
        });
        return;
      case Kind::QueryCaps:
      case Kind::QueryCustom:
        both([&](Side& side) {
          GstQuery* q =
              s.kind == Kind::QueryCaps
                  ? gst_query_new_caps(nullptr)
                  : gst_query_new_custom(GST_QUERY_CUSTOM, gst_structure_new_empty("aq-query"));
          const gboolean ok = gst_pad_peer_query(side.up(), q);
          std::string out = std::string(GST_QUERY_TYPE_NAME(q)) + " " + (ok ? "1" : "0");
          if (ok && s.kind == Kind::QueryCaps) {
            GstCaps* caps = nullptr;
            gst_query_parse_caps_result(q, &caps);
            gchar* text = gst_caps_to_string(caps);
            out += std::string(" ") + text;
            g_free(text);
          }
          gst_query_unref(q);
          side.note(out);
        });
        return;
      case Kind::QueryPosition:
      case Kind::QueryDuration: {
        const GstFormat format = kFormats[s.a % 3];
        both([&](Side& side) {
          const bool position = s.kind == Kind::QueryPosition;
          GstQuery* q = position ? gst_query_new_position(format) : gst_query_new_duration(format);
          const gboolean ok = gst_pad_peer_query(side.down(), q);
          gint64 v = 0;
          if (position)
            gst_query_parse_position(q, nullptr, &v);
          else
            gst_query_parse_duration(q, nullptr, &v);
          gst_query_unref(q);
          side.note(std::string(position ? "position " : "duration ") +
                    gst_format_get_name(format) + " " + (ok ? "1 " : "0 ") + std::to_string(v));
        });
        return;
      }
      case Kind::QueryLatency: {
        /* Adapting, a live upstream grows the capacity on overrun. */
        const bool live = s.a % 2 == 0 && !(config_ == 1 && chosen("live-overrun-growth"));
        const GstClockTime min = (s.b % 3) * 10 * kMs;
        const GstClockTime max = s.c % 3 == 0 ? GST_CLOCK_TIME_NONE : min + (s.c % 3) * 50 * kMs;
        both([&](Side& side) {
          side.set_up_latency(live, min, max);
          GstQuery* q = gst_query_new_latency();
          const gboolean ok = gst_pad_peer_query(side.down(), q);
          gboolean qlive = FALSE;
          GstClockTime qmin = 0, qmax = 0;
          gst_query_parse_latency(q, &qlive, &qmin, &qmax);
          gst_query_unref(q);
          std::string out = std::string("latency ") + (ok ? "1 " : "0 ") + (qlive ? "live " : "") +
                            time_text(qmin);
          if (side.read_property("max-size-time") != "0" ||
              !chosen("latency-max-without-time-limit"))
            out += " " + time_text(qmax);
          side.note(out);
        });
        return;
      }
      case Kind::SetProperty: {
        const Property& p = kProperties[s.a % G_N_ELEMENTS(kProperties)];
        const guint64 v = p.values[s.b % p.values.size()];
        if (g_str_has_prefix(p.name, "max-size-") && lowers(p.name, v) && thresholds_set() &&
            chosen("limit-lowered-under-threshold"))
          return;
        both([&](Side& side) { side.set_property(p.name, v); });
        return;
      }
      case Kind::State: {
        const GstState target = kStates[s.a % 3];
        /* Going down, the task must be able to leave downstream, and what
         * it can push is pushed first: how much a deactivation overtakes
         * is a matter of timing, on queue as here. */
        if (target < st.state && query_pending() && chosen("abandoned-query"))
          return;
        if (target < st.state && st.state > GST_STATE_READY) {
          both([](Side& side) { side.open_gate(); });
          pending_diff_ = settle();
          if (!pending_diff_.empty())
            return;
        }
        both([&](Side& side) {
          side.note(std::string("state ") + gst_element_state_change_return_get_name(
                                                gst_element_set_state(side.element(), target)));
        });
        if (target <= GST_STATE_READY && st.state > GST_STATE_READY) {
          StreamState fresh;
          fresh.next_id = st.next_id;
          fresh.down_eos = st.down_eos;
          fresh.down_eos_seen = st.down_eos;
          fresh.down_dropping = st.down_dropping;
          st = fresh;
          both([](Side& side) { side.forget_eos(); });
          /* The pads' sticky events must not be sent again on their own;
           * downstream, as an element going to READY would, forgets the
           * old stream's, or the new stream's CAPS lands after the old
           * SEGMENT (GStreamer's sticky-order warning). */
          both([](Side& side) { gst_pad_set_active(side.up(), FALSE); });
          both([](Side& side) { gst_pad_set_active(side.up(), TRUE); });
          both([](Side& side) { gst_pad_set_active(side.down(), FALSE); });
          both([](Side& side) { gst_pad_set_active(side.down(), TRUE); });
        }
        st.state = target;
        return;
      }
      case Kind::GateOpen:
        both([](Side& side) { side.open_gate(); });
        return;
      case Kind::GateClose:
        both([](Side& side) { side.close_gate(); });
        return;
      case Kind::Release:
        both([&](Side& side) { side.release(static_cast<int>(1 + s.a % 3)); });
        return;
      case Kind::DownReturn: {
        /* Mostly OK, so that data flows again. */
        const GstFlowReturn r =
            s.a % 2 ? GST_FLOW_OK : kDownReturns[s.b % G_N_ELEMENTS(kDownReturns)];
        if (r != GST_FLOW_OK && query_pending() && chosen("abandoned-query"))
          return;
        if (r == GST_FLOW_EOS && data_queued_or_held() && chosen("new-stream-after-downstream-eos"))
          return;
        const bool dropping = r != GST_FLOW_OK && r != GST_FLOW_NOT_LINKED && r != GST_FLOW_EOS &&
                              r != GST_FLOW_FLUSHING && queue_drops_on_fatal_error();
        if (dropping && data_queued_or_held() && chosen("drop-on-failure-before-eos"))
          return;
        st.down_dropping = dropping;
        st.down_eos = r == GST_FLOW_EOS;
        st.down_failing = r != GST_FLOW_OK;
        st.down_eos_seen |= st.down_eos;
        st.down_flushing |= r == GST_FLOW_FLUSHING;
        if (r == GST_FLOW_NOT_LINKED || r < GST_FLOW_EOS)
          st.fatal = true;
        both([&](Side& side) { side.set_down_return(r); });
        return;
      }
      case Kind::Reconfigure:
        both([](Side& side) {
          side.note(std::string("reconfigure ") +
                    (gst_pad_push_event(side.down(), gst_event_new_reconfigure()) ? "1" : "0"));
        });
        return;
      case Kind::Count:
        return;
    }
  }

  /* An EOS the element took has not reached downstream (on queue's side,
   * which the other matches once settled). */
  bool eos_in_flight() {
    return sides_[0]->eos_in_flight() || (st_.fatal && sides_[0]->eos_taken_since_flush());
  }

  /* A serialized query is waiting for its answer on upstream's thread. */
  bool query_pending() {
    if (!sides_[0]->upstream_busy() && !sides_[1]->upstream_busy())
      query_sent_ = false;
    return query_sent_;
  }

  bool data_queued_or_held() {
    return sides_[0]->held() > 0 || sides_[0]->read_property("current-level-buffers") != "0";
  }

  bool data_behind_downstream_eos() { return st_.down_eos && data_queued_or_held(); }

  bool data_behind_dropping_failure() { return st_.down_dropping && data_queued_or_held(); }

  /* Whether `value` lowers a limit: 0 is no limit. */
  bool lowers(const char* name, guint64 value) {
    const guint64 now = g_ascii_strtoull(sides_[0]->read_property(name).c_str(), nullptr, 10);
    return value != 0 && (now == 0 || value < now);
  }

  bool thresholds_set() {
    for (const char* name : {"min-threshold-buffers", "min-threshold-bytes", "min-threshold-time"})
      if (sides_[0]->read_property(name) != "0")
        return true;
    return false;
  }

  template <class Make>
  void serialized_event(Make make) {
    both([&](Side& side) {
      GstEvent* e = make();
      GstPad* up = side.up();
      const std::string name = GST_EVENT_TYPE_NAME(e);
      side.upstream([up, e, name] { return name + " " + (gst_pad_push_event(up, e) ? "1" : "0"); });
    });
  }

  /* Waits until both sides read the same for a few polls in a row; the
   * difference when they never do. */
  std::string settle() {
    constexpr int kStablePolls = 4;
    constexpr gint64 kPollUs = 1000;
    const gint64 deadline = g_get_monotonic_time() + 2 * G_USEC_PER_SEC * slowdown();
    std::string last;
    int stable = 0;
    std::string a, b;
    for (;;) {
      a = sides_[0]->observe(signals_);
      b = sides_[1]->observe(signals_);
      if (a == b) {
        stable = a == last ? stable + 1 : 0;
        last = a;
        if (stable >= kStablePolls) {
          both([](Side& side) { side.rebase_signals(); });
          return "";
        }
      } else {
        stable = 0;
        last.clear();
      }
      if (g_get_monotonic_time() > deadline)
        break;
      g_usleep(kPollUs);
    }
    return "queue:\n" + a + "adaptivequeue:\n" + b;
  }

  int config_;
  /* The last upstream job was a serialized query. */
  bool query_sent_ = false;
  /* Whether this step's signals are compared. */
  bool signals_ = true;
  /* A difference found inside a step. */
  std::string pending_diff_;
  std::unique_ptr<Side> sides_[2];
  StreamState st_;
};

std::string run_once(int config, const std::vector<Step>& steps, size_t* failed_at) {
  Runner runner(config);
  return runner.run(steps, failed_at);
}

std::string steps_text(const std::vector<Step>& steps) {
  std::string out;
  for (const Step& s : steps)
    out += step_text(s) + "; ";
  return out;
}

/* Delta debugging over the steps: the smallest sequence found that still
 * differs. Each candidate is run once; the result is checked again. */
std::vector<Step> shrink(int config, std::vector<Step> steps) {
  size_t n = 2;
  while (steps.size() >= 2) {
    const size_t chunk = (steps.size() + n - 1) / n;
    bool reduced = false;
    for (size_t start = 0; start < steps.size(); start += chunk) {
      std::vector<Step> candidate(steps.begin(), steps.begin() + start);
      candidate.insert(candidate.end(), steps.begin() + std::min(steps.size(), start + chunk),
                       steps.end());
      size_t at = 0;
      if (!candidate.empty() && !run_once(config, candidate, &at).empty()) {
        /* Steps after the difference add nothing. */
        candidate.resize(at + 1);
        steps = candidate;
        n = std::max<size_t>(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (n >= steps.size())
        break;
      n = std::min(steps.size(), n * 2);
    }
  }
  return steps;
}

const char* const kConfigNames[] = {"adaptive=false", "adaptive, max-size-buffers=5"};

/* Differences seen once that no replay showed again. */
guint64 unreproduced = 0;

/* Runs one seed in one configuration; on a difference, shrinks it and
 * prints the replayable sequence. False when they differ. */
bool check_seed(guint64 seed, int config, size_t length) {
  const std::vector<Step> steps = generate(seed, length);
  size_t at = 0;
  const std::string diff = run_once(config, steps, &at);
  if (diff.empty())
    return true;
  std::vector<Step> failing(steps.begin(), steps.begin() + at + 1);
  g_printerr("seed %" G_GUINT64_FORMAT " (%s) differs at step %zu: %s\n%s", seed,
             kConfigNames[config], at, step_text(steps[at]).c_str(), diff.c_str());
  /* A difference that most replays do not show is timing (a signal
   * counted on one side of a race, say), not behaviour: counted and
   * reported, not failed on. */
  int replays = 0;
  for (int i = 0; i < 3; i++) {
    size_t a = 0;
    replays += run_once(config, failing, &a).empty() ? 0 : 1;
  }
  if (replays < 2) {
    g_printerr("seed %" G_GUINT64_FORMAT ": shown again in %d of 3 replays only\n", seed, replays);
    unreproduced++;
    return true;
  }
  const std::vector<Step> minimal = shrink(config, failing);
  int again = 0;
  std::string last;
  for (int i = 0; i < 3; i++) {
    size_t a = 0;
    const std::string d = run_once(config, minimal, &a);
    if (!d.empty()) {
      again++;
      last = d;
    }
  }
  g_printerr(
      "minimal sequence (%zu steps, differs in %d of 3 replays), replay with\n"
      "  AQ_DIFF_REPLAY='%s' AQ_DIFF_CONFIG=%d CK_RUN_CASE=replay\n%s",
      minimal.size(), again, steps_text(minimal).c_str(), config, last.c_str());
  return false;
}

guint64 env_u64(const char* name, guint64 fallback) {
  const char* v = g_getenv(name);
  return v && *v ? g_ascii_strtoull(v, nullptr, 10) : fallback;
}

/* Sequences per seed: long enough to fill, block, flush and restart. */
constexpr size_t kLength = 40;

}  // namespace

/* A fixed set of seeds, in both configurations; fewer under the dynamic
 * checkers, which run several times slower. */
GST_START_TEST(test_seeds) {
  const guint64 seeds = env_u64("AQ_DIFF_SEEDS", slowdown() > 1 ? 10 : 100);
  std::string failed;
  for (guint64 seed = 1; seed <= seeds; seed++)
    if (!check_seed(seed, static_cast<int>(seed % 2), kLength))
      failed += " " + std::to_string(seed);
  g_print("differential: %" G_GUINT64_FORMAT " sequences, %" G_GUINT64_FORMAT
          " differences not reproduced\n",
          seeds, unreproduced);
  fail_unless(failed.empty(), "queue and adaptivequeue differ with seeds%s", failed.c_str());
}

GST_END_TEST;

/* scripts/differential: seeds from AQ_DIFF_SEED on, for AQ_DIFF_MINUTES. */
GST_START_TEST(test_hunt) {
  const guint64 minutes = env_u64("AQ_DIFF_MINUTES", 0);
  if (minutes == 0)
    return;
  const gint64 end = g_get_monotonic_time() + static_cast<gint64>(minutes) * 60 * G_USEC_PER_SEC;
  guint64 seed = env_u64("AQ_DIFF_SEED", 1000);
  guint64 runs = 0;
  std::string failed;
  while (g_get_monotonic_time() < end) {
    if (!check_seed(seed, static_cast<int>(seed % 2), kLength))
      failed += " " + std::to_string(seed);
    seed++;
    runs++;
  }
  g_print("differential: %" G_GUINT64_FORMAT " sequences, seeds %" G_GUINT64_FORMAT
          " to %" G_GUINT64_FORMAT "; %" G_GUINT64_FORMAT " differences not reproduced\n",
          runs, seed - runs, seed - 1, unreproduced);
  fail_unless(failed.empty(), "queue and adaptivequeue differ with seeds%s", failed.c_str());
}

GST_END_TEST;

/* Replays a printed sequence (AQ_DIFF_REPLAY, AQ_DIFF_CONFIG). */
GST_START_TEST(test_replay) {
  const char* text = g_getenv("AQ_DIFF_REPLAY");
  if (!text || !*text)
    return;
  size_t at = 0;
  const int config = static_cast<int>(env_u64("AQ_DIFF_CONFIG", 0));
  const std::string diff = run_once(config, parse_steps(text), &at);
  fail_unless(diff.empty(), "differs at step %zu:\n%s", at, diff.c_str());
}

GST_END_TEST;

static Suite* differential_suite(void) {
  Suite* s = suite_create("adaptivequeue-differential");
  TCase* tc = tcase_create("seeds");
  tcase_add_test(tc, test_seeds);
  suite_add_tcase(s, tc);
  tc = tcase_create("hunt");
  tcase_add_test(tc, test_hunt);
  suite_add_tcase(s, tc);
  tc = tcase_create("replay");
  tcase_add_test(tc, test_replay);
  suite_add_tcase(s, tc);
  return s;
}

GST_CHECK_MAIN(differential)
