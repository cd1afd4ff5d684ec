// The adaptivequeue element, driven through GstHarness by a script of
// operations read from the input: push buffers and buffer lists (with or
// without timestamps), push events (segments of every format, flushes, EOS,
// caps, gaps, stream starts), set properties (any value inside their
// GParamSpec ranges, contradictory combinations included), change the
// state, rewrite the fixture /proc tree the element samples, make
// downstream return each flow, change the clock, query.
//
// Invariants, checked throughout:
// - output is a strictly increasing subsequence of the accepted buffers:
//   nothing reordered, duplicated or invented (checked as buffers arrive);
// - with leaky=no and nothing that legitimately discards data (a flush, a
//   state change through READY, EOS, a downstream error), every accepted
//   buffer comes out: checked by draining with EOS;
// - the levels never exceed what is queued, so they never go negative or
//   wrap; drops stay 0 unless a leaky mode or a downstream EOS allowed them;
// - no crash, no sanitizer report, no g_critical (made fatal);
// - no deadlock: a watchdog aborts when one operation takes too long.
#include <gst/check/gstharness.h>
#include <gst/check/gsttestclock.h>
#include <gst/gst.h>
#include <glib/gstdio.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../element/aq_test_base.h"
#include "fuzz_check.h"
#include "gstadaptivequeue.h"

namespace {

// ---- the script ----

struct Script {
  const uint8_t* data;
  size_t size;
  size_t pos = 0;
  bool done() const { return pos >= size; }
  uint8_t u8() { return pos < size ? data[pos++] : 0; }
  uint16_t u16() { return static_cast<uint16_t>(u8() | (u8() << 8)); }
  uint32_t u32() { return static_cast<uint32_t>(u16()) | (static_cast<uint32_t>(u16()) << 16); }
  uint64_t u64() { return static_cast<uint64_t>(u32()) | (static_cast<uint64_t>(u32()) << 32); }
};

// Timestamps: mostly small multiples of 1 ms, sometimes the ends of the range.
GstClockTime pick_time(Script& s) {
  static const GstClockTime extremes[] = {0,
                                          1,
                                          GST_SECOND,
                                          G_MAXINT64 - 1,
                                          G_MAXINT64,
                                          static_cast<GstClockTime>(G_MAXINT64) + 1,
                                          G_MAXUINT64 - 1,
                                          G_MAXUINT64 - GST_SECOND,
                                          GST_CLOCK_TIME_NONE};
  const uint8_t mode = s.u8();
  if (mode < 200)
    return static_cast<GstClockTime>(s.u16()) * GST_MSECOND;
  if (mode < 240)
    return extremes[s.u8() % G_N_ELEMENTS(extremes)];
  return s.u64();
}

// ---- the watchdog ----

constexpr gint64 kStuckUs = 30 * G_USEC_PER_SEC;
std::atomic<gint64> op_started{0};
std::atomic<const char*> op_name{""};

// AQ_FUZZ_TRACE=1 prints each operation, to read a finding.
const bool trace = g_getenv("AQ_FUZZ_TRACE") != nullptr;

G_GNUC_PRINTF(1, 2) void tracef(const char* format, ...) {
  if (!trace)
    return;
  va_list args;
  va_start(args, format);
  std::vfprintf(stderr, format, args);
  va_end(args);
  std::fputc('\n', stderr);
}

struct Op {
  explicit Op(const char* name) {
    op_name = name;
    op_started = g_get_monotonic_time();
  }
  ~Op() { op_started = 0; }
  Op(const Op&) = delete;
  Op& operator=(const Op&) = delete;
};

void watchdog() {
  for (;;) {
    g_usleep(G_USEC_PER_SEC / 2);
    const gint64 started = op_started;
    if (started != 0 && g_get_monotonic_time() - started > kStuckUs) {
      std::fprintf(stderr, "deadlock: operation '%s' did not return in %d s\n", op_name.load(),
                   static_cast<int>(kStuckUs / G_USEC_PER_SEC));
      std::abort();
    }
  }
}

// Waits until `done` or `timeout_us`; false on timeout. Polls often: the
// waits are short and the fuzzer's speed depends on them.
template <class F>
bool wait_for(F done, gint64 timeout_us) {
  return aqt::wait_until(done, timeout_us, 100);
}

// ---- the fixture /proc tree ----

std::string base_dir;      // holds the three below
std::string fixture_root;  // rewritten by the script
std::string empty_root;    // an empty directory
std::string missing_root;  // does not exist

struct FixtureCounters {
  guint64 busy = 1000000, idle = 1000000, ticks = 1000000;
} counters;

void write_file(const std::string& name, const std::string& text) {
  FUZZ_CHECK(aqt::replace_file(fixture_root + "/" + name, text));
}

std::string good_text(int file) {
  switch (file) {
    case 0:
      return aqt::stat_text(counters.busy, counters.idle);
    case 1:
      return aqt::meminfo_text_kb(1000000, counters.idle % 1000000);
    case 2:
      return aqt::pid_stat_text(counters.ticks, 0);
    default:
      return aqt::kStatmText;
  }
}

const char* const kFixtureFiles[] = {"stat", "meminfo", "self/stat", "self/statm"};

void reset_fixture() {
  for (int i = 0; i < 4; i++)
    write_file(kFixtureFiles[i], good_text(i));
}

// At a normal exit; after a finding the tree stays, for the replay.
void remove_fixture() {
  aqt::remove_path(base_dir);
}

void load_op(Script& s) {
  const int file = s.u8() % 4;
  const uint8_t mode = s.u8() % 6;
  tracef("load: %s mode %d", kFixtureFiles[file], mode);
  const uint8_t amount = s.u8();
  switch (mode) {
    case 0:  // forwards
      counters.busy += amount;
      counters.idle += 255 - amount;
      counters.ticks += amount;
      write_file(kFixtureFiles[file], good_text(file));
      break;
    case 1:  // backwards
      counters.busy -= std::min<guint64>(counters.busy, amount);
      counters.idle -= std::min<guint64>(counters.idle, 255 - amount);
      counters.ticks -= std::min<guint64>(counters.ticks, amount);
      write_file(kFixtureFiles[file], good_text(file));
      break;
    case 2: {  // garbage from the script
      std::string text;
      for (int i = 0; i < amount % 64; i++)
        text += static_cast<char>(s.u8());
      write_file(kFixtureFiles[file], text);
      break;
    }
    case 3: {  // truncated
      const std::string text = good_text(file);
      write_file(kFixtureFiles[file], text.substr(0, amount % (text.size() + 1)));
      break;
    }
    case 4:  // missing
      g_unlink((fixture_root + "/" + kFixtureFiles[file]).c_str());
      break;
    default:
      reset_fixture();
      break;
  }
}

// ---- downstream: a pad that records what arrives and returns a set flow ----

struct Downstream {
  GstPad* pad = nullptr;
  std::mutex mutex;
  std::vector<guint64> received;  // buffer ids, in arrival order
  std::vector<uint8_t>* accepted = nullptr;
  std::atomic<GstFlowReturn> flow{GST_FLOW_OK};
  std::atomic<guint> eos{0};
  guint64 last = G_MAXUINT64;  // last id seen, G_MAXUINT64 for none
};

Downstream* downstream_of(GstPad* pad) {
  return static_cast<Downstream*>(gst_pad_get_element_private(pad));
}

void record(Downstream* d, GstBuffer* b) {
  const guint64 id = GST_BUFFER_OFFSET(b);
  std::lock_guard<std::mutex> lock(d->mutex);
  // Only what upstream had accepted, strictly in order, never twice.
  FUZZ_CHECK(id < d->accepted->size() && (*d->accepted)[id]);
  FUZZ_CHECK(d->last == G_MAXUINT64 || id > d->last);
  d->last = id;
  d->received.push_back(id);
}

GstFlowReturn down_chain(GstPad* pad, GstObject*, GstBuffer* buffer) {
  Downstream* d = downstream_of(pad);
  record(d, buffer);
  gst_buffer_unref(buffer);
  return d->flow;
}

GstFlowReturn down_chain_list(GstPad* pad, GstObject*, GstBufferList* list) {
  Downstream* d = downstream_of(pad);
  for (guint i = 0; i < gst_buffer_list_length(list); i++)
    record(d, gst_buffer_list_get(list, i));
  gst_buffer_list_unref(list);
  return d->flow;
}

gboolean down_event(GstPad* pad, GstObject*, GstEvent* event) {
  if (GST_EVENT_TYPE(event) == GST_EVENT_EOS)
    downstream_of(pad)->eos++;
  gst_event_unref(event);
  return TRUE;
}

// Downstream takes any caps, however often they change: refusals are
// modelled by the flow it returns, not by negotiation.
gboolean down_query(GstPad* pad, GstObject* parent, GstQuery* query) {
  switch (GST_QUERY_TYPE(query)) {
    case GST_QUERY_DRAIN:
      return TRUE;
    case GST_QUERY_ACCEPT_CAPS:
      gst_query_set_accept_caps_result(query, TRUE);
      return TRUE;
    case GST_QUERY_CAPS: {
      GstCaps* filter = nullptr;
      gst_query_parse_caps(query, &filter);
      GstCaps* caps = filter ? gst_caps_ref(filter) : gst_caps_new_any();
      gst_query_set_caps_result(query, caps);
      gst_caps_unref(caps);
      return TRUE;
    }
    default:
      return gst_pad_query_default(pad, parent, query);
  }
}

// A g_critical is a bug, ours or in how the script drives GStreamer: abort,
// so libFuzzer keeps the input (a fatal-criticals breakpoint would not).
// Warnings (such as data after a flush before the new segment, which the
// script may well cause) are expected and not printed.
void on_log(const gchar* domain, GLogLevelFlags level, const gchar* message, gpointer) {
  if (!(level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_ERROR)))
    return;
  std::fprintf(stderr, "%s: %s\n", domain ? domain : "", message);
  std::abort();
}

// Signal handlers read a level: they run with the queue lock released.
void on_signal(GstElement* q, gpointer) {
  guint level = 0;
  g_object_get(q, "current-level-buffers", &level, nullptr);
}

// ---- properties, each within its GParamSpec range ----

enum class Kind { UInt, UInt64, Double, Enum, Bool, Root };

struct Prop {
  const char* name;
  Kind kind;
  double lo, hi;  // numeric range; for Enum the number of values
};

const Prop kProps[] = {
    {"max-size-buffers", Kind::UInt, 0, G_MAXUINT},
    {"max-size-bytes", Kind::UInt, 0, G_MAXUINT},
    {"max-size-time", Kind::UInt64, 0, 1.8e19},
    {"min-threshold-buffers", Kind::UInt, 0, G_MAXUINT},
    {"min-threshold-bytes", Kind::UInt, 0, G_MAXUINT},
    {"min-threshold-time", Kind::UInt64, 0, 1.8e19},
    {"leaky", Kind::Enum, 0, 3},
    {"silent", Kind::Bool, 0, 1},
    {"flush-on-eos", Kind::Bool, 0, 1},
    {"adaptive", Kind::Bool, 0, 1},
    {"min-buffers", Kind::UInt, 1, G_MAXUINT},
    {"max-buffers", Kind::UInt, 1, G_MAXUINT},
    {"cpu-low-threshold", Kind::Double, 0, 100},
    {"cpu-high-threshold", Kind::Double, 0, 100},
    {"mem-low-threshold", Kind::Double, 0, 100},
    {"mem-high-threshold", Kind::Double, 0, 100},
    {"target-latency", Kind::UInt64, 0, 3600e9},
    {"max-latency", Kind::UInt64, 0, 3600e9},
    {"cpu-weight", Kind::Double, 0, 1},
    {"mem-weight", Kind::Double, 0, 1},
    {"latency-weight", Kind::Double, 0, 1},
    {"smoothing", Kind::Double, 0, 1},
    // Short intervals only, so ticks happen within an input.
    {"adaptation-interval", Kind::UInt64, 10e6, 50e6},
    {"load-scope", Kind::Enum, 0, 5},
    {"proc-root", Kind::Root, 0, 3},
    {"cgroup-root", Kind::Root, 0, 3},
    {"latency-source", Kind::Enum, 0, 3},
    // 0 is off; between 0 and 1 is invalid, which the element must survive.
    {"demand-headroom", Kind::Double, 0, 4},
    {"demand-window", Kind::UInt64, 100e6, 600e9},
    // Invalid between 0 and 100 ms, as above.
    {"trim-period", Kind::UInt64, 0, 600e9},
};

// Mostly small values, sometimes anywhere in the range, sometimes its ends.
guint64 pick_integer(Script& s, guint64 lo, guint64 hi) {
  const uint8_t mode = s.u8();
  const guint64 span = hi - lo;
  guint64 v;
  if (mode < 160)
    v = s.u8() % 70;
  else if (mode < 200)
    v = s.u32();
  else if (mode < 230)
    v = s.u64();
  else
    v = (mode & 1) ? span : 0;
  return span == G_MAXUINT64 ? lo + v : lo + v % (span + 1);
}

// ---- the run ----

const GstFlowReturn kFlows[] = {GST_FLOW_OK,          GST_FLOW_OK,
                                GST_FLOW_NOT_LINKED,  GST_FLOW_FLUSHING,
                                GST_FLOW_EOS,         GST_FLOW_NOT_NEGOTIATED,
                                GST_FLOW_ERROR,       GST_FLOW_CUSTOM_SUCCESS,
                                GST_FLOW_CUSTOM_ERROR};

struct Run {
  GstElement* q = nullptr;
  GstHarness* h = nullptr;
  Downstream down;

  guint64 next_id = 0;
  std::vector<uint8_t> accepted;  // by id
  std::vector<guint64> accepted_ids;
  std::vector<guint64> accepted_bytes;  // prefix sums over accepted_ids
  // Ids from here on must all come out at the next drain; G_MAXUINT64 while
  // something that may legitimately discard data has happened.
  guint64 lossless_from = 0;
  // The first id pushed since the queue was last emptied by a flush or a
  // state change through READY.
  guint64 epoch_first = 0;
  bool active = true;             // element in PAUSED or PLAYING
  bool harness_flushing = false;  // FLUSH_START pushed, FLUSH_STOP not yet
  // Downstream may be flushing or EOS: set by every FLUSH_START and EOS,
  // cleared only by a FLUSH_START/FLUSH_STOP pair that reached it.
  bool down_dirty = false;
  bool leaky = false;
  bool may_drop = false;  // drops allowed: a leaky mode or downstream EOS
  // Total sleeping an input may ask for: two ticks at the 10 ms interval
  // the run starts with. Sleeping is most of an input's time, so this
  // sets the executions per second.
  gint64 wait_budget_us = 20000;

  void lossy() { lossless_from = G_MAXUINT64; }

  // The push of `id` returned: record the outcome. Down's mutex held.
  void settle(guint64 id, guint64 bytes, bool ok) {
    accepted[id] = ok;
    if (!ok)
      return;
    accepted_ids.push_back(id);
    accepted_bytes.push_back((accepted_bytes.empty() ? 0 : accepted_bytes.back()) + bytes);
  }

  // The new buffer's id counts as accepted until its push says otherwise:
  // it may come out before the push returns.
  GstBuffer* make_buffer(Script& s) {
    const uint8_t flags = s.u8();
    static const gsize sizes[] = {0, 1, 16, 100};
    GstBuffer* b = gst_buffer_new_allocate(nullptr, sizes[flags & 3], nullptr);
    GST_BUFFER_OFFSET(b) = next_id++;
    {
      std::lock_guard<std::mutex> lock(down.mutex);
      accepted.push_back(1);
    }
    if (flags & 4)
      GST_BUFFER_PTS(b) = pick_time(s);
    if (flags & 8)
      GST_BUFFER_DTS(b) = pick_time(s);
    if (flags & 16)
      GST_BUFFER_DURATION(b) = pick_time(s);
    if (flags & 32)
      GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_DISCONT);
    return b;
  }

  void push_buffer(Script& s) {
    Op op("push buffer");
    GstBuffer* b = make_buffer(s);
    const guint64 id = GST_BUFFER_OFFSET(b);
    const guint64 bytes = gst_buffer_get_size(b);
    const GstFlowReturn ret = gst_harness_push(h, b);
    tracef("push buffer %" G_GUINT64_FORMAT ": %s", id, gst_flow_get_name(ret));
    std::lock_guard<std::mutex> lock(down.mutex);
    settle(id, bytes, ret == GST_FLOW_OK);
  }

  void push_list(Script& s) {
    Op op("push buffer list");
    const guint n = s.u8() % 5;
    GstBufferList* list = gst_buffer_list_new();
    std::vector<std::pair<guint64, guint64>> ids;
    for (guint i = 0; i < n; i++) {
      GstBuffer* b = make_buffer(s);
      ids.emplace_back(GST_BUFFER_OFFSET(b), gst_buffer_get_size(b));
      gst_buffer_list_add(list, b);
    }
    const GstFlowReturn ret = gst_pad_push_list(h->srcpad, list);
    tracef("push list of %u: %s", n, gst_flow_get_name(ret));
    std::lock_guard<std::mutex> lock(down.mutex);
    for (const auto& [id, bytes] : ids)
      settle(id, bytes, ret == GST_FLOW_OK);
  }

  GstEvent* make_segment(Script& s) {
    static const GstFormat formats[] = {GST_FORMAT_TIME,    GST_FORMAT_TIME,    GST_FORMAT_BYTES,
                                        GST_FORMAT_DEFAULT, GST_FORMAT_BUFFERS, GST_FORMAT_PERCENT};
    static const double rates[] = {1.0, 1.0, 2.0, 0.5, -1.0, -2.0};
    GstSegment seg;
    gst_segment_init(&seg, formats[s.u8() % G_N_ELEMENTS(formats)]);
    seg.rate = rates[s.u8() % G_N_ELEMENTS(rates)];
    seg.start = pick_time(s);
    if (!GST_CLOCK_TIME_IS_VALID(seg.start))
      seg.start = 0;
    const GstClockTime length = pick_time(s);
    seg.stop = GST_CLOCK_TIME_IS_VALID(length) && length <= G_MAXUINT64 - 1 - seg.start
                   ? seg.start + length
                   : GST_CLOCK_TIME_NONE;
    // GStreamer requires a stop for reverse playback (its running-time
    // functions assert it); an upstream that breaks that breaks queue too.
    if (seg.rate < 0 && !GST_CLOCK_TIME_IS_VALID(seg.stop))
      seg.stop = seg.start <= G_MAXUINT64 - 1 - GST_SECOND ? seg.start + GST_SECOND : seg.start;
    seg.time = seg.start;
    seg.position = seg.start;
    const GstClockTime base = pick_time(s);
    seg.base = GST_CLOCK_TIME_IS_VALID(base) ? base : 0;
    return gst_event_new_segment(&seg);
  }

  void flush_stop(bool reset_time) {
    tracef("flush-stop: %d", gst_harness_push_event(h, gst_event_new_flush_stop(reset_time)));
    // Without a FLUSH_START first, the task may have been pushing an EOS
    // that reaches downstream after the FLUSH_STOP: downstream may then
    // refuse data, rightly, until a new stream. Only a proper pair resets.
    const bool paired = harness_flushing;
    harness_flushing = false;
    // Data refused by an EOS downstream is dropped and counted.
    if (!paired && down_dirty)
      may_drop = true;
    lossy();  // it discards what is queued
    epoch_first = next_id;
    if (active && paired)
      down_dirty = false;
    if (active) {
      // The queue is empty now.
      guint buffers = 1, bytes = 1;
      g_object_get(q, "current-level-buffers", &buffers, "current-level-bytes", &bytes, nullptr);
      FUZZ_CHECK(buffers == 0 && bytes == 0);
      if (paired && !leaky && down.flow == GST_FLOW_OK)
        lossless_from = next_id;
    }
    // A flush removes the sticky segment; data needs a new one.
    GstSegment seg;
    gst_segment_init(&seg, GST_FORMAT_TIME);
    gst_harness_push_event(h, gst_event_new_segment(&seg));
  }

  void push_event(Script& s) {
    Op op("push event");
    GstEvent* e = nullptr;
    switch (s.u8() % 12) {
      case 0:
      case 1:
        e = make_segment(s);
        break;
      case 2:
        tracef("flush-start: %d", gst_harness_push_event(h, gst_event_new_flush_start()));
        harness_flushing = down_dirty = true;
        lossy();
        return;
      case 3:
        flush_stop(s.u8() & 1);
        return;
      case 4:
        lossy();
        down_dirty = true;
        e = gst_event_new_eos();
        break;
      case 5: {
        GstCaps* caps = gst_caps_new_simple("application/x-fuzz", "n", G_TYPE_INT,
                                            static_cast<int>(s.u8()), nullptr);
        e = gst_event_new_caps(caps);
        gst_caps_unref(caps);
        break;
      }
      case 6: {
        GstClockTime ts = pick_time(s);
        if (!GST_CLOCK_TIME_IS_VALID(ts))
          ts = 0;
        e = gst_event_new_gap(ts, pick_time(s));
        break;
      }
      case 7: {
        gchar* id = g_strdup_printf("fuzz-%u", s.u8());
        e = gst_event_new_stream_start(id);
        g_free(id);
        break;
      }
      case 8:
        e = gst_event_new_custom(GST_EVENT_CUSTOM_DOWNSTREAM,
                                 gst_structure_new_empty("fuzz-serialized"));
        break;
      case 9:
        e = gst_event_new_custom(GST_EVENT_CUSTOM_DOWNSTREAM_OOB,
                                 gst_structure_new_empty("fuzz-oob"));
        break;
      case 10:
        e = gst_event_new_tag(gst_tag_list_new_empty());
        break;
      default:
        e = gst_event_new_custom(GST_EVENT_CUSTOM_DOWNSTREAM_STICKY,
                                 gst_structure_new_empty("fuzz-sticky"));
        break;
    }
    // A new stream after EOS restarts the task, as on queue, even when it
    // stopped on a fatal error; a downstream that has had EOS refuses what
    // is still queued of the old stream, which is dropped.
    if (down_dirty &&
        (GST_EVENT_TYPE(e) == GST_EVENT_SEGMENT || GST_EVENT_TYPE(e) == GST_EVENT_STREAM_START))
      may_drop = true;
    const char* name = GST_EVENT_TYPE_NAME(e);
    tracef("event %s: %d", name, gst_harness_push_event(h, e));
  }

  void set_property(Script& s) {
    Op op("set property");
    const Prop& p = kProps[s.u8() % G_N_ELEMENTS(kProps)];
    tracef("set %s", p.name);
    switch (p.kind) {
      case Kind::UInt:
        g_object_set(q, p.name,
                     static_cast<guint>(
                         pick_integer(s, static_cast<guint64>(p.lo), static_cast<guint64>(p.hi))),
                     nullptr);
        break;
      case Kind::UInt64: {
        const guint64 hi = p.hi >= 1.8e19 ? G_MAXUINT64 : static_cast<guint64>(p.hi);
        g_object_set(q, p.name, pick_integer(s, static_cast<guint64>(p.lo), hi), nullptr);
        break;
      }
      case Kind::Double: {
        const uint8_t mode = s.u8();
        double v = p.lo + (p.hi - p.lo) * (s.u16() / 65535.0);
        if (mode >= 220)
          v = (mode & 1) ? p.hi : p.lo;
        g_object_set(q, p.name, v, nullptr);
        break;
      }
      case Kind::Enum: {
        const int v = s.u8() % static_cast<int>(p.hi);
        g_object_set(q, p.name, v, nullptr);
        if (g_str_equal(p.name, "leaky")) {
          if (v != GST_ADAPTIVE_QUEUE_NO_LEAK) {
            leaky = may_drop = true;
            lossy();
          } else {
            leaky = false;
          }
        }
        break;
      }
      case Kind::Bool:
        g_object_set(q, p.name, static_cast<gboolean>(s.u8() & 1), nullptr);
        break;
      case Kind::Root: {
        const std::string* roots[] = {&fixture_root, &empty_root, &missing_root};
        g_object_set(q, p.name, roots[s.u8() % 3]->c_str(), nullptr);
        break;
      }
    }
  }

  void change_state(Script& s) {
    Op op("change state");
    static const GstState states[] = {GST_STATE_NULL, GST_STATE_READY, GST_STATE_PAUSED,
                                      GST_STATE_PLAYING};
    const GstState target = states[s.u8() % 4];
    tracef("state %s", gst_element_state_get_name(target));
    FUZZ_CHECK(gst_element_set_state(q, target) == GST_STATE_CHANGE_SUCCESS);
    if (target <= GST_STATE_READY) {
      // Deactivating empties the queue.
      active = false;
      epoch_first = next_id;
      lossy();
    } else {
      // Activating resets the element; downstream must be clean too.
      if (!active && !down_dirty && !harness_flushing && !leaky && down.flow == GST_FLOW_OK)
        lossless_from = next_id;
      active = true;
    }
  }

  void set_flow(Script& s) {
    Op op("downstream flow");
    const GstFlowReturn flow = kFlows[s.u8() % G_N_ELEMENTS(kFlows)];
    tracef("downstream returns %s", gst_flow_get_name(flow));
    down.flow = flow;
    if (flow != GST_FLOW_OK)
      lossy();
    if (flow == GST_FLOW_EOS)
      may_drop = true;
  }

  void wait(Script& s) {
    Op op("wait");
    const uint8_t kind = s.u8() % 3;
    if (wait_budget_us <= 0)
      return;
    const gint64 start = g_get_monotonic_time();
    if (kind == 0) {
      g_usleep(200);
    } else if (kind == 1) {
      // For a tick (intervals are 10..50 ms), within limits.
      guint64 ticks = 0;
      GstStructure* st = nullptr;
      g_object_get(q, "stats", &st, nullptr);
      gst_structure_get_uint64(st, "ticks", &ticks);
      gst_structure_free(st);
      wait_for(
          [&] {
            guint64 now = 0;
            GstStructure* st2 = nullptr;
            g_object_get(q, "stats", &st2, nullptr);
            gst_structure_get_uint64(st2, "ticks", &now);
            gst_structure_free(st2);
            return now > ticks;
          },
          std::min<gint64>(wait_budget_us, 60000));
    } else {
      wait_for(
          [&] {
            guint level = 0;
            g_object_get(q, "current-level-buffers", &level, nullptr);
            return level == 0;
          },
          std::min<gint64>(wait_budget_us, 20000));
    }
    wait_budget_us -= g_get_monotonic_time() - start;
  }

  void query(Script& s) {
    Op op("query");
    switch (s.u8() % 4) {
      case 0: {
        // Serialized: waits behind the data, must not hang.
        GstQuery* qy = gst_query_new_drain();
        gst_pad_peer_query(h->srcpad, qy);
        gst_query_unref(qy);
        break;
      }
      case 1: {
        GstQuery* qy = gst_query_new_latency();
        gst_pad_peer_query(down.pad, qy);
        gst_query_unref(qy);
        break;
      }
      case 2: {
        GstQuery* qy = gst_query_new_position(s.u8() & 1 ? GST_FORMAT_TIME : GST_FORMAT_BYTES);
        gst_pad_peer_query(down.pad, qy);
        gst_query_unref(qy);
        break;
      }
      default:
        // A relink restarts a task stopped on NOT_LINKED, as queue does; if
        // downstream has had an EOS (its own, or the one the element pushes
        // after the error) it refuses what was queued, which is dropped.
        if (down_dirty)
          may_drop = true;
        gst_pad_push_event(down.pad, gst_event_new_reconfigure());
        break;
    }
  }

  void clock(Script& s) {
    Op op("clock");
    switch (s.u8() % 3) {
      case 0:
        gst_element_set_clock(q, nullptr);
        break;
      case 1: {
        GstClock* c = gst_system_clock_obtain();
        gst_element_set_clock(q, c);
        gst_object_unref(c);
        break;
      }
      default: {
        GstTestClock* c = gst_harness_get_testclock(h);
        gst_element_set_clock(q, GST_CLOCK(c));
        gst_test_clock_advance_time(c, static_cast<GstClockTimeDiff>(s.u16()) * GST_MSECOND);
        gst_object_unref(c);
        break;
      }
    }
  }

  // Pushes EOS and checks every buffer accepted since the queue became
  // lossless came out; then flushes, to start afresh.
  void drain() {
    Op op("drain");
    tracef("drain: lossless from %" G_GUINT64_FORMAT ", active %d, flushing %d", lossless_from,
           active, harness_flushing);
    if (lossless_from == G_MAXUINT64 || !active || harness_flushing)
      return;
    const guint eos_before = down.eos;
    // flush-on-eos would rightly discard what the check wants to see.
    gboolean flush_on_eos = FALSE;
    g_object_get(q, "flush-on-eos", &flush_on_eos, nullptr);
    g_object_set(q, "flush-on-eos", FALSE, nullptr);
    // Not its return value: GStreamer pushes pending sticky events after the
    // EOS (by sticky order) and reports their refusal by an EOS pad.
    gst_harness_push_event(h, gst_event_new_eos());
    down_dirty = true;
    if (!wait_for([&] { return down.eos > eos_before; }, 10 * G_USEC_PER_SEC)) {
      std::fprintf(stderr, "EOS never came out of a lossless queue\n");
      std::abort();
    }
    {
      std::lock_guard<std::mutex> lock(down.mutex);
      size_t r = 0;
      for (guint64 id : accepted_ids) {
        if (id < lossless_from)
          continue;
        while (r < down.received.size() && down.received[r] < id)
          r++;
        if (r == down.received.size() || down.received[r] != id) {
          std::fprintf(stderr,
                       "buffer %" G_GUINT64_FORMAT
                       " was accepted with leaky=no "
                       "but never came out\n",
                       id);
          std::abort();
        }
      }
    }
    gst_harness_push_event(h, gst_event_new_flush_start());
    harness_flushing = true;
    flush_stop(true);
    g_object_set(q, "flush-on-eos", flush_on_eos, nullptr);
  }

  // After every operation: the levels never exceed what is queued.
  void check_levels() {
    guint64 last;
    size_t received;
    {
      std::lock_guard<std::mutex> lock(down.mutex);
      last = down.last;
      received = down.received.size();
    }
    guint buffers = 0, bytes = 0;
    GstStructure* st = nullptr;
    g_object_get(q, "current-level-buffers", &buffers, "current-level-bytes", &bytes, "stats", &st,
                 nullptr);
    guint64 drops = 0, pushed = 0;
    FUZZ_CHECK(gst_structure_get_uint64(st, "drops", &drops));
    FUZZ_CHECK(gst_structure_get_uint64(st, "buffers-pushed", &pushed));
    gst_structure_free(st);
    // What may still be queued: accepted in this epoch and not yet out.
    const guint64 after = last == G_MAXUINT64 ? epoch_first : std::max(last + 1, epoch_first);
    const size_t first = static_cast<size_t>(
        std::lower_bound(accepted_ids.begin(), accepted_ids.end(), after) - accepted_ids.begin());
    const guint64 max_buffers = accepted_ids.size() - first;
    const guint64 max_bytes = accepted_bytes.empty()
                                  ? 0
                                  : accepted_bytes.back() - (first ? accepted_bytes[first - 1] : 0);
    if (buffers > max_buffers || bytes > max_bytes) {
      std::fprintf(stderr,
                   "levels %u buffers %u bytes, but at most %" G_GUINT64_FORMAT
                   " buffers %" G_GUINT64_FORMAT " bytes are queued\n",
                   buffers, bytes, max_buffers, max_bytes);
      std::abort();
    }
    FUZZ_CHECK(may_drop || drops == 0);
    FUZZ_CHECK(received <= pushed && pushed <= accepted_ids.size());
  }
};

void run(const uint8_t* data, size_t size) {
  Script s{data, size};
  Run r;
  r.q = gst_element_factory_make("adaptivequeue", nullptr);
  FUZZ_CHECK(r.q != nullptr);
  gst_object_ref_sink(r.q);
  g_object_set(r.q, "proc-root", fixture_root.c_str(), "adaptation-interval",
               static_cast<guint64>(10 * GST_MSECOND), nullptr);
  for (const char* sig : {"underrun", "overrun", "running", "pushing"})
    g_signal_connect(r.q, sig, G_CALLBACK(on_signal), nullptr);

  r.down.accepted = &r.accepted;
  r.down.pad = gst_pad_new("fuzzsink", GST_PAD_SINK);
  gst_pad_set_element_private(r.down.pad, &r.down);
  gst_pad_set_chain_function(r.down.pad, down_chain);
  gst_pad_set_chain_list_function(r.down.pad, down_chain_list);
  gst_pad_set_event_function(r.down.pad, down_event);
  gst_pad_set_query_function(r.down.pad, down_query);
  gst_pad_set_active(r.down.pad, TRUE);
  {
    Op op("start");
    r.h = gst_harness_new_with_element(r.q, "sink", nullptr);
    GstPad* src = gst_element_get_static_pad(r.q, "src");
    FUZZ_CHECK(gst_pad_link(src, r.down.pad) == GST_PAD_LINK_OK);
    gst_object_unref(src);
    gst_harness_set_src_caps_str(r.h, "application/x-fuzz");
  }

  for (int ops = 0; ops < 400 && !s.done(); ops++) {
    switch (s.u8() % 12) {
      case 0:
      case 1:
        r.push_buffer(s);
        break;
      case 2:
        r.push_list(s);
        break;
      case 3:
        r.push_event(s);
        break;
      case 4:
        r.set_property(s);
        break;
      case 5:
        r.change_state(s);
        break;
      case 6:
        load_op(s);
        break;
      case 7:
        r.set_flow(s);
        break;
      case 8:
        r.wait(s);
        break;
      case 9:
        r.drain();
        break;
      case 10:
        r.query(s);
        break;
      default:
        r.clock(s);
        break;
    }
    r.check_levels();
  }
  r.drain();

  {
    Op op("teardown");
    gst_harness_teardown(r.h);
    gst_pad_set_active(r.down.pad, FALSE);
    gst_object_unref(r.down.pad);
    // Only our reference is left: nothing keeps the element alive (the
    // clock may drop its reference from its own thread, a little later).
    FUZZ_CHECK(wait_for([&] { return GST_OBJECT_REFCOUNT_VALUE(r.q) == 1; }, 10 * G_USEC_PER_SEC));
    gst_object_unref(r.q);
  }
  reset_fixture();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  (void)argc;
  (void)argv;
  // libFuzzer's flags are not GStreamer's.
  gst_init(nullptr, nullptr);
  g_log_set_default_handler(on_log, nullptr);
  FUZZ_CHECK(GST_ELEMENT_REGISTER(adaptivequeue, nullptr));

  // The fixture is rewritten by every input: in memory where there is a
  // tmpfs, since a disk-backed /tmp costs a writeback per input.
  const gchar* parent = g_file_test("/dev/shm", G_FILE_TEST_IS_DIR) ? "/dev/shm" : g_get_tmp_dir();
  base_dir = aqt::make_temp_dir("aq-fuzz-element-", parent);
  FUZZ_CHECK(!base_dir.empty());
  fixture_root = base_dir + "/proc";
  empty_root = base_dir + "/empty";
  missing_root = base_dir + "/missing";
  FUZZ_CHECK(g_mkdir_with_parents((fixture_root + "/self").c_str(), 0755) == 0);
  FUZZ_CHECK(g_mkdir(empty_root.c_str(), 0755) == 0);
  reset_fixture();
  std::atexit(remove_fixture);

  std::thread(watchdog).detach();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  run(data, size);
  return 0;
}
