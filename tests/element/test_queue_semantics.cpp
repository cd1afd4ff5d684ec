/* adaptivequeue as a drop-in `queue`: signals, levels, leaky modes, EOS,
 * flushing, sticky events when not linked, serialized and non-serialized
 * events and queries, the LATENCY query, caps and allocation proxying, and
 * races between flushing, queries and state changes.
 *
 * The expectations are those of the running GStreamer's `queue` (1.22 to
 * 1.28; scripts/compat runs them against each). Setting
 * AQ_REFERENCE_FACTORY=queue runs the same checks against core `queue`,
 * which is how the expectations themselves are verified. Every check that
 * does not apply to `queue` goes through adaptive_only() (skipped against
 * it) or queue_differs() (its own expectation), which say on stderr which
 * check and why. They are:
 *
 * adaptivequeue's own features, which `queue` lacks:
 * - the `stats` counters (underruns, overruns, drops) that tests compare
 *   with the signals and drops they saw;
 * - reading `stats` from a signal handler;
 * - the adaptation properties: the bounds an explicit max-size-buffers
 *   moves, their order on a gst-launch line, adaptation-interval, proc-root;
 * - LATENCY messages, which `queue` never posts (checked: it posts none).
 *
 * `queue` before 1.26 lacks notify-levels: those checks run against a
 * `queue` that has it and are skipped, saying so, against one without.
 *
 * Where adaptivequeue deliberately differs from `queue` (the reference run
 * checks what `queue` does instead, where that is safe):
 * - the `leaky` enum is a GType of its own, GstAdaptiveQueueLeaky, with
 *   queue's values and nicks: GstQueueLeaky is taken;
 * - the LATENCY query without max-size-time: adaptivequeue reports what its
 *   capacity holds in time (max-size-buffers x the last buffer duration),
 *   `queue` an unbounded maximum;
 * - the LATENCY query with huge thresholds: adaptivequeue saturates the
 *   sums just below GST_CLOCK_TIME_NONE, `queue` 1.22 wraps them and raises
 *   a g_critical (finding 11 in docs/robustness.md), so that check is not
 *   run against it;
 * - a serialized query whose caller gave up when the task stopped: `queue`
 *   1.22 still sends it downstream when the task restarts, adaptivequeue
 *   never does (the caller may have freed it);
 * - a serialized query dropped with the data ahead of it after downstream
 *   returned EOS: adaptivequeue answers it FALSE at once, `queue` 1.22
 *   leaves its caller waiting (past the tests' wait limit), so that check is
 *   not run against it;
 *
 * Where queue's own behaviour changed between versions, the expectation is
 * the running version's, for both elements: what happens after a fatal
 * downstream error with EOS queued (test_fatal_error_after_eos).
 *
 * Every wait is bounded so that a deadlock fails the test quickly instead of
 * hanging until the harness timeout.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>

#include "aq_test.h"
#include "gstadaptivequeue.h"
#include "one_cpu.h"

using namespace aqt;

namespace {

/* How long a negative check ("still blocked", "nothing delivered") looks. */
constexpr gint64 kSettleUs = 150 * G_USEC_PER_SEC / 1000;
/* make_buffer()'s size. */
constexpr gsize kBufferSize = 16;
constexpr GstClockTime kMs = GST_MSECOND;

const char* factory_name() {
  const char* name = g_getenv("AQ_REFERENCE_FACTORY");
  return name && *name ? name : "adaptivequeue";
}

/* True when the element under test is adaptivequeue. Against the
 * reference each says, on stderr, what happens instead and why, and
 * returns false: adaptive_only() guards a check the reference skips,
 * queue_differs() picks the reference's own expectation. */
#define adaptive_only(reason) reference_note(__FILE__, __LINE__, "not checked", (reason))
#define queue_differs(reason) \
  reference_note(__FILE__, __LINE__, "checked for what queue does instead", (reason))

bool reference_note(const char* file, int line, const char* what, const char* reason) {
  if (g_str_equal(factory_name(), "adaptivequeue"))
    return true;
  g_printerr("%s:%d: %s, %s: %s\n", file, line, factory_name(), what, reason);
  return false;
}

/* Runs a function on its own thread, so the test thread can wait for it
 * with a timeout. Assertions stay on the test thread: workers only record. */
class Worker {
 public:
  explicit Worker(std::function<void()> fn) : state_(std::make_shared<State>()) {
    auto state = state_;
    thread_ = std::thread([state, fn = std::move(fn)]() {
      fn();
      std::lock_guard<std::mutex> guard(state->m);
      state->done = true;
      state->c.notify_all();
    });
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker() {
    /* A worker still stuck here means a test already failed. */
    if (wait(kWaitUs))
      thread_.join();
    else
      thread_.detach();
  }

  bool wait(gint64 timeout_us) {
    std::unique_lock<std::mutex> lock(state_->m);
    return state_->c.wait_for(lock, std::chrono::microseconds(timeout_us),
                              [this] { return state_->done; });
  }

 private:
  struct State {
    std::mutex m;
    std::condition_variable c;
    bool done = false;
  };
  std::shared_ptr<State> state_;
  std::thread thread_;
};

/* ---- the fixture: an upstream src pad and a downstream sink pad ---- */

GstStaticPadTemplate up_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);
GstStaticPadTemplate down_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

/* What reached the downstream pad, in order: a buffer, buffer list or event
 * (owned), or the type of a query (not owned). */
struct Entry {
  GstMiniObject* object = nullptr;
  GstQueryType query = GST_QUERY_UNKNOWN;
};

struct Fixture {
  GstElement* queue = nullptr;
  GstPad* up = nullptr;   /* linked to the element's sink pad */
  GstPad* down = nullptr; /* linked to the element's src pad */
  std::unique_ptr<Bus> bus;

  GMutex lock;
  GCond cond;
  /* Downstream: buffers wait at the gate while it is closed, like a sink
   * that does not consume; FLUSH_START releases them as a real sink does. */
  bool gate_open = true;
  /* Buffers the closed gate still lets through. */
  int gate_credit = 0;
  bool flushing = false;
  int held = 0;
  GstFlowReturn chain_return = GST_FLOW_OK;
  std::vector<Entry> log;
  GstCaps* down_caps = nullptr;
  std::function<gboolean(GstQuery*)> on_allocation;
  guint allocation_queries = 0;

  /* Upstream's answers to POSITION and DURATION, by format (BYTES, TIME). */
  gint64 up_position[2] = {1000, 500 * GST_MSECOND};
  gint64 up_duration[2] = {5000, 10 * GST_SECOND};

  /* Upstream's answer to the LATENCY query. */
  gboolean up_live = TRUE;
  GstClockTime up_min = 0;
  GstClockTime up_max = GST_CLOCK_TIME_NONE;
  std::vector<GstEventType> upstream_events;
};

Fixture* fixture_of(GstPad* pad) {
  return static_cast<Fixture*>(gst_pad_get_element_private(pad));
}

GstFlowReturn down_receive(Fixture* fx, GstMiniObject* obj) {
  g_mutex_lock(&fx->lock);
  fx->log.push_back(Entry{obj, GST_QUERY_UNKNOWN});
  fx->held++;
  g_cond_broadcast(&fx->cond);
  while (!fx->gate_open && !fx->flushing && fx->gate_credit == 0)
    g_cond_wait(&fx->cond, &fx->lock);
  if (!fx->gate_open && !fx->flushing)
    fx->gate_credit--;
  fx->held--;
  const GstFlowReturn ret = fx->flushing ? GST_FLOW_FLUSHING : fx->chain_return;
  g_cond_broadcast(&fx->cond);
  g_mutex_unlock(&fx->lock);
  return ret;
}

GstFlowReturn down_chain(GstPad* pad, GstObject*, GstBuffer* buffer) {
  return down_receive(fixture_of(pad), GST_MINI_OBJECT_CAST(buffer));
}

GstFlowReturn down_chain_list(GstPad* pad, GstObject*, GstBufferList* list) {
  return down_receive(fixture_of(pad), GST_MINI_OBJECT_CAST(list));
}

gboolean down_event(GstPad* pad, GstObject*, GstEvent* event) {
  Fixture* fx = fixture_of(pad);
  g_mutex_lock(&fx->lock);
  if (GST_EVENT_TYPE(event) == GST_EVENT_FLUSH_START)
    fx->flushing = true;
  else if (GST_EVENT_TYPE(event) == GST_EVENT_FLUSH_STOP)
    fx->flushing = false;
  fx->log.push_back(Entry{GST_MINI_OBJECT_CAST(event), GST_QUERY_UNKNOWN});
  g_cond_broadcast(&fx->cond);
  g_mutex_unlock(&fx->lock);
  return TRUE;
}

/* Which side answered a custom query: the answer names it. */
constexpr const char* kCustomQuery = "aq-test-query";

gboolean answer_custom(GstQuery* query, const char* side) {
  GstStructure* st = gst_query_writable_structure(query);
  if (!gst_structure_has_name(st, kCustomQuery))
    return FALSE;
  gst_structure_set(st, "answered-by", G_TYPE_STRING, side, nullptr);
  return TRUE;
}

gboolean down_query(GstPad* pad, GstObject* parent, GstQuery* query) {
  Fixture* fx = fixture_of(pad);
  switch (GST_QUERY_TYPE(query)) {
    case GST_QUERY_CAPS: {
      if (!fx->down_caps)
        break;
      GstCaps* filter = nullptr;
      gst_query_parse_caps(query, &filter);
      GstCaps* caps = filter
                          ? gst_caps_intersect_full(filter, fx->down_caps, GST_CAPS_INTERSECT_FIRST)
                          : gst_caps_ref(fx->down_caps);
      gst_query_set_caps_result(query, caps);
      gst_caps_unref(caps);
      return TRUE;
    }
    case GST_QUERY_ACCEPT_CAPS: {
      if (!fx->down_caps)
        break;
      GstCaps* caps = nullptr;
      gst_query_parse_accept_caps(query, &caps);
      gst_query_set_accept_caps_result(query, gst_caps_is_subset(caps, fx->down_caps));
      return TRUE;
    }
    case GST_QUERY_CUSTOM:
      return answer_custom(query, "downstream");
    case GST_QUERY_ALLOCATION:
    case GST_QUERY_DRAIN: {
      g_mutex_lock(&fx->lock);
      fx->log.push_back(Entry{nullptr, GST_QUERY_TYPE(query)});
      if (GST_QUERY_TYPE(query) == GST_QUERY_ALLOCATION)
        fx->allocation_queries++;
      auto hook = fx->on_allocation;
      g_cond_broadcast(&fx->cond);
      g_mutex_unlock(&fx->lock);
      if (GST_QUERY_TYPE(query) == GST_QUERY_ALLOCATION && hook)
        return hook(query);
      return TRUE;
    }
    default:
      break;
  }
  return gst_pad_query_default(pad, parent, query);
}

gboolean up_query(GstPad* pad, GstObject* parent, GstQuery* query) {
  Fixture* fx = fixture_of(pad);
  switch (GST_QUERY_TYPE(query)) {
    case GST_QUERY_POSITION:
    case GST_QUERY_DURATION: {
      GstFormat format;
      const bool position = GST_QUERY_TYPE(query) == GST_QUERY_POSITION;
      if (position)
        gst_query_parse_position(query, &format, nullptr);
      else
        gst_query_parse_duration(query, &format, nullptr);
      if (format != GST_FORMAT_BYTES && format != GST_FORMAT_TIME && format != GST_FORMAT_DEFAULT)
        return FALSE;
      /* DEFAULT (frames) answers with the BYTES figures. */
      const int i = format == GST_FORMAT_TIME ? 1 : 0;
      g_mutex_lock(&fx->lock);
      const gint64 value = position ? fx->up_position[i] : fx->up_duration[i];
      g_mutex_unlock(&fx->lock);
      if (position)
        gst_query_set_position(query, format, value);
      else
        gst_query_set_duration(query, format, value);
      return TRUE;
    }
    case GST_QUERY_SCHEDULING:
      gst_query_set_scheduling(query, GST_SCHEDULING_FLAG_SEEKABLE, 1, -1, 0);
      gst_query_add_scheduling_mode(query, GST_PAD_MODE_PULL);
      gst_query_add_scheduling_mode(query, GST_PAD_MODE_PUSH);
      return TRUE;
    case GST_QUERY_CUSTOM:
      return answer_custom(query, "upstream");
    default:
      break;
  }
  if (GST_QUERY_TYPE(query) == GST_QUERY_LATENCY) {
    g_mutex_lock(&fx->lock);
    gst_query_set_latency(query, fx->up_live, fx->up_min, fx->up_max);
    g_mutex_unlock(&fx->lock);
    return TRUE;
  }
  return gst_pad_query_default(pad, parent, query);
}

gboolean up_event(GstPad* pad, GstObject*, GstEvent* event) {
  Fixture* fx = fixture_of(pad);
  g_mutex_lock(&fx->lock);
  fx->upstream_events.push_back(GST_EVENT_TYPE(event));
  g_cond_broadcast(&fx->cond);
  g_mutex_unlock(&fx->lock);
  gst_event_unref(event);
  return TRUE;
}

void link_down(Fixture* fx) {
  GstPad* src = gst_element_get_static_pad(fx->queue, "src");
  fail_unless_equals_int(gst_pad_link(src, fx->down), GST_PAD_LINK_OK);
  gst_object_unref(src);
}

/* A fixture around a fresh element; adaptation is off so that only the
 * test changes the capacity. */
Fixture* fixture_new(bool link_src = true) {
  auto* fx = new Fixture();
  g_mutex_init(&fx->lock);
  g_cond_init(&fx->cond);

  fx->queue = gst_element_factory_make(factory_name(), "q");
  fail_unless(fx->queue != nullptr, "cannot create %s", factory_name());
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(fx->queue), "adaptive"))
    g_object_set(fx->queue, "adaptive", FALSE, nullptr);
  fx->bus = std::make_unique<Bus>(fx->queue);

  fx->up = gst_pad_new_from_static_template(&up_template, "up");
  gst_pad_set_element_private(fx->up, fx);
  gst_pad_set_query_function(fx->up, up_query);
  gst_pad_set_event_function(fx->up, up_event);
  fail_unless(gst_pad_set_active(fx->up, TRUE), "cannot activate pad");
  GstPad* sink = gst_element_get_static_pad(fx->queue, "sink");
  fail_unless_equals_int(gst_pad_link(fx->up, sink), GST_PAD_LINK_OK);
  gst_object_unref(sink);

  fx->down = gst_pad_new_from_static_template(&down_template, "down");
  gst_pad_set_element_private(fx->down, fx);
  gst_pad_set_chain_function(fx->down, down_chain);
  gst_pad_set_chain_list_function(fx->down, down_chain_list);
  gst_pad_set_event_function(fx->down, down_event);
  gst_pad_set_query_function(fx->down, down_query);
  fail_unless(gst_pad_set_active(fx->down, TRUE), "cannot activate pad");
  if (link_src)
    link_down(fx);
  return fx;
}

void open_gate(Fixture* fx) {
  g_mutex_lock(&fx->lock);
  fx->gate_open = true;
  g_cond_broadcast(&fx->cond);
  g_mutex_unlock(&fx->lock);
}

void close_gate(Fixture* fx) {
  g_mutex_lock(&fx->lock);
  fx->gate_open = false;
  g_mutex_unlock(&fx->lock);
}

void fixture_free(Fixture* fx) {
  open_gate(fx);
  fail_unless_equals_int(gst_element_set_state(fx->queue, GST_STATE_NULL),
                         GST_STATE_CHANGE_SUCCESS);
  /* Posted messages hold references to the element. */
  fx->bus.reset();
  gst_element_set_bus(fx->queue, nullptr);
  gst_pad_set_active(fx->up, FALSE);
  gst_pad_set_active(fx->down, FALSE);
  gst_object_unref(fx->up);
  gst_object_unref(fx->down);
  /* Nothing else may hold the element: no leaked references. A clock
   * callback scheduled before the state change may release its reference
   * a moment later, hence the wait. */
  fail_unless(wait_until([fx] { return GST_OBJECT_REFCOUNT_VALUE(fx->queue) == 1; }),
              "%d references left", GST_OBJECT_REFCOUNT_VALUE(fx->queue));
  gst_object_unref(fx->queue);
  for (Entry& e : fx->log)
    if (e.object)
      gst_mini_object_unref(e.object);
  if (fx->down_caps)
    gst_caps_unref(fx->down_caps);
  g_mutex_clear(&fx->lock);
  g_cond_clear(&fx->cond);
  delete fx;
}

void set_state(Fixture* fx, GstState state) {
  fail_unless_equals_int(gst_element_set_state(fx->queue, state), GST_STATE_CHANGE_SUCCESS);
}

GstEvent* custom_event(GstEventType type) {
  return gst_event_new_custom(type, gst_structure_new_empty("aq-test"));
}

/* Pushes an event from upstream that must be accepted. */
void push_event(Fixture* fx, GstEvent* event) {
  const std::string name = GST_EVENT_TYPE_NAME(event);
  fail_unless(gst_pad_push_event(fx->up, event), "%s refused", name.c_str());
}

void push_segment(Fixture* fx, GstFormat format = GST_FORMAT_TIME) {
  GstSegment segment;
  gst_segment_init(&segment, format);
  push_event(fx, gst_event_new_segment(&segment));
}

void push_initial_events(Fixture* fx, GstCaps* caps = nullptr) {
  push_event(fx, gst_event_new_stream_start("aq"));
  if (caps)
    push_event(fx, gst_event_new_caps(caps));
  push_segment(fx);
}

/* PLAYING, with stream-start and a TIME segment sent. */
void start(Fixture* fx) {
  set_state(fx, GST_STATE_PLAYING);
  push_initial_events(fx);
}

GstFlowReturn push(Fixture* fx, guint64 offset, GstClockTime pts = GST_CLOCK_TIME_NONE,
                   GstClockTime duration = GST_CLOCK_TIME_NONE) {
  return gst_pad_push(fx->up, make_buffer(offset, pts, duration));
}

int held(Fixture* fx) {
  g_mutex_lock(&fx->lock);
  const int n = fx->held;
  g_mutex_unlock(&fx->lock);
  return n;
}

/* Closes the gate and pushes one buffer, which the element's task takes and
 * then holds downstream: from then on the queue itself keeps what follows. */
void block_downstream(Fixture* fx, guint64 offset, GstClockTime pts = GST_CLOCK_TIME_NONE,
                      GstClockTime duration = GST_CLOCK_TIME_NONE) {
  close_gate(fx);
  fail_unless_equals_int(push(fx, offset, pts, duration), GST_FLOW_OK);
  fail_unless(wait_until([fx] { return held(fx) == 1; }), "the task never pushed the first buffer");
}

/* The closed gate lets the buffer held at it through; the next is held. */
void let_one_through(Fixture* fx) {
  g_mutex_lock(&fx->lock);
  fx->gate_credit++;
  g_cond_broadcast(&fx->cond);
  g_mutex_unlock(&fx->lock);
}

std::string buffer_token(GstBuffer* buffer) {
  std::string token = std::to_string(GST_BUFFER_OFFSET(buffer));
  if (GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_DISCONT))
    token += "D";
  return token;
}

/* The downstream log as text: buffers by offset (D = DISCONT), lists in
 * brackets, events and queries by name. */
std::string sequence(Fixture* fx) {
  std::string out;
  g_mutex_lock(&fx->lock);
  for (const Entry& e : fx->log) {
    if (!out.empty())
      out += " ";
    if (!e.object) {
      out += std::string("Q:") + gst_query_type_get_name(e.query);
    } else if (GST_IS_BUFFER(e.object)) {
      out += buffer_token(GST_BUFFER_CAST(e.object));
    } else if (GST_IS_BUFFER_LIST(e.object)) {
      GstBufferList* list = GST_BUFFER_LIST_CAST(e.object);
      out += "[";
      for (guint i = 0; i < gst_buffer_list_length(list); i++)
        out += (i ? " " : "") + buffer_token(gst_buffer_list_get(list, i));
      out += "]";
    } else {
      out += GST_EVENT_TYPE_NAME(GST_EVENT_CAST(e.object));
    }
  }
  g_mutex_unlock(&fx->lock);
  return out;
}

/* Buffers received, lists counted by their length. */
guint received_buffers(Fixture* fx) {
  guint n = 0;
  g_mutex_lock(&fx->lock);
  for (const Entry& e : fx->log) {
    if (e.object && GST_IS_BUFFER(e.object))
      n++;
    else if (e.object && GST_IS_BUFFER_LIST(e.object))
      n += gst_buffer_list_length(GST_BUFFER_LIST_CAST(e.object));
  }
  g_mutex_unlock(&fx->lock);
  return n;
}

guint received_events(Fixture* fx, GstEventType type) {
  guint n = 0;
  g_mutex_lock(&fx->lock);
  for (const Entry& e : fx->log)
    if (e.object && GST_IS_EVENT(e.object) && GST_EVENT_TYPE(e.object) == type)
      n++;
  g_mutex_unlock(&fx->lock);
  return n;
}

/* The string must outlive the comparison, hence the copy. */
#define assert_sequence(fx, expected)                    \
  G_STMT_START {                                         \
    const std::string seq_ = sequence(fx);               \
    fail_unless_equals_string(seq_.c_str(), (expected)); \
  }                                                      \
  G_STMT_END

std::vector<GstBuffer*> received_buffer_pointers(Fixture* fx) {
  std::vector<GstBuffer*> out;
  g_mutex_lock(&fx->lock);
  for (const Entry& e : fx->log)
    if (e.object && GST_IS_BUFFER(e.object))
      out.push_back(GST_BUFFER_CAST(e.object));
  g_mutex_unlock(&fx->lock);
  return out;
}

void clear_log(Fixture* fx) {
  g_mutex_lock(&fx->lock);
  for (Entry& e : fx->log)
    if (e.object)
      gst_mini_object_unref(e.object);
  fx->log.clear();
  g_mutex_unlock(&fx->lock);
}

/* ---- signal counting ---- */

struct Signals {
  std::atomic<int> underrun{0};
  std::atomic<int> running{0};
  std::atomic<int> overrun{0};
  std::atomic<int> pushing{0};
};

void on_underrun(GstElement*, Signals* s) {
  s->underrun++;
}

void on_running(GstElement*, Signals* s) {
  s->running++;
}

void on_overrun(GstElement*, Signals* s) {
  s->overrun++;
}

void on_pushing(GstElement*, Signals* s) {
  s->pushing++;
}

void count_signals(GstElement* e, Signals* s) {
  g_signal_connect(e, "underrun", G_CALLBACK(on_underrun), s);
  g_signal_connect(e, "running", G_CALLBACK(on_running), s);
  g_signal_connect(e, "overrun", G_CALLBACK(on_overrun), s);
  g_signal_connect(e, "pushing", G_CALLBACK(on_pushing), s);
}

}  // namespace

/* ======================= signals ======================= */

/* The task finds the queue empty once when it starts; that is one underrun,
 * and nothing else happens until data arrives. Data then brings running and
 * pushing, and draining it another underrun. */
GST_START_TEST(test_underrun_once_on_playing) {
  Fixture* fx = fixture_new();
  Signals sig;
  count_signals(fx->queue, &sig);

  set_state(fx, GST_STATE_PLAYING);
  AQ_WAIT_FOR(sig.underrun.load() >= 1);
  g_usleep(kSettleUs);
  fail_unless_equals_int(sig.underrun.load(), 1);
  fail_unless_equals_int(sig.running.load(), 0);
  fail_unless_equals_int(sig.pushing.load(), 0);
  fail_unless_equals_int(sig.overrun.load(), 0);

  push_initial_events(fx);
  fail_unless_equals_int(push(fx, 0), GST_FLOW_OK);
  AQ_WAIT_FOR(received_buffers(fx) == 1);
  /* Once idle again: every wake-up followed an underrun and was followed by
   * one. */
  fail_unless(wait_until([&] { return sig.underrun.load() == sig.running.load() + 1; }),
              "underrun %d, running %d", sig.underrun.load(), sig.running.load());
  fail_unless(sig.running.load() >= 1, "sig.running.load () >= 1");
  fail_unless_equals_int(sig.pushing.load(), sig.running.load());
  fail_unless_equals_int(sig.overrun.load(), 0);
  if (adaptive_only("stats: queue counts no underruns"))
    fail_unless_equals_uint64(Stats(fx->queue).u64("underruns"),
                              static_cast<guint64>(sig.underrun.load()));

  fixture_free(fx);
}

GST_END_TEST;

/* A queue holding max-size-buffers is full: the next push emits overrun and
 * waits; once downstream consumes, everything arrives in order, untouched. */
GST_START_TEST(test_overrun_at_capacity) {
  constexpr guint N = 3;
  Fixture* fx = fixture_new();
  g_object_set(fx->queue, "max-size-buffers", N, nullptr);
  Signals sig;
  count_signals(fx->queue, &sig);
  start(fx);

  std::vector<GstBuffer*> sent;
  close_gate(fx);
  GstBuffer* head = make_buffer(0);
  sent.push_back(head);
  fail_unless_equals_int(gst_pad_push(fx->up, head), GST_FLOW_OK);
  AQ_WAIT_FOR(held(fx) == 1);

  for (guint i = 1; i <= N; i++) {
    GstBuffer* b = make_buffer(i);
    sent.push_back(b);
    fail_unless_equals_int(gst_pad_push(fx->up, b), GST_FLOW_OK);
  }
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-buffers"), N);
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-bytes"), N * kBufferSize);
  fail_unless_equals_int(sig.overrun.load(), 0);

  GstBuffer* last = make_buffer(N + 1);
  sent.push_back(last);
  GstFlowReturn last_ret = GST_FLOW_ERROR;
  Worker pusher([&] { last_ret = gst_pad_push(fx->up, last); });
  AQ_WAIT_FOR(sig.overrun.load() == 1);
  fail_if(pusher.wait(kSettleUs), "a push into a full queue did not wait");
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-buffers"), N);

  open_gate(fx);
  fail_unless(pusher.wait(kWaitUs), "the push never got room");
  fail_unless_equals_int(last_ret, GST_FLOW_OK);
  AQ_WAIT_FOR(received_buffers(fx) == N + 2);
  assert_sequence(fx, "stream-start segment 0 1 2 3 4");
  /* The very buffers pushed, not copies. */
  const std::vector<GstBuffer*> got = received_buffer_pointers(fx);
  fail_unless_equals_int(got.size(), sent.size());
  for (size_t i = 0; i < sent.size(); i++)
    fail_unless(got[i] == sent[i], "buffer %u was replaced", (guint)i);
  fail_unless_equals_int(sig.overrun.load(), 1);
  fail_unless(sig.running.load() >= 1, "sig.running.load () >= 1");
  if (adaptive_only("stats: queue counts no overruns or drops")) {
    fail_unless_equals_uint64(Stats(fx->queue).u64("overruns"), 1);
    fail_unless_equals_uint64(Stats(fx->queue).u64("drops"), 0);
  }

  fixture_free(fx);
}

GST_END_TEST;

/* ======================= leaky modes ======================= */

/* leaky=downstream drops the oldest queued buffer; the buffer that then
 * leaves first carries DISCONT. Pushes never wait. */
GST_START_TEST(test_leaky_downstream_drops_oldest) {
  Fixture* fx = fixture_new();
  g_object_set(fx->queue, "max-size-buffers", 2, nullptr);
  gst_util_set_object_arg(G_OBJECT(fx->queue), "leaky", "downstream");
  Signals sig;
  count_signals(fx->queue, &sig);
  start(fx);

  block_downstream(fx, 0);
  fail_unless_equals_int(push(fx, 1), GST_FLOW_OK);
  fail_unless_equals_int(push(fx, 2), GST_FLOW_OK);
  /* Full: 1 goes, then 2 goes. */
  fail_unless_equals_int(push(fx, 3), GST_FLOW_OK);
  fail_unless_equals_int(push(fx, 4), GST_FLOW_OK);
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-buffers"), 2);
  fail_unless_equals_int(sig.overrun.load(), 2);
  if (adaptive_only("stats: queue counts no drops"))
    fail_unless_equals_uint64(Stats(fx->queue).u64("drops"), 2);

  open_gate(fx);
  AQ_WAIT_FOR(received_buffers(fx) == 3);
  g_usleep(kSettleUs);
  assert_sequence(fx, "stream-start segment 0 3D 4");

  fixture_free(fx);
}

GST_END_TEST;

/* leaky=upstream drops the incoming buffer; the next buffer accepted carries
 * DISCONT. */
GST_START_TEST(test_leaky_upstream_drops_incoming) {
  Fixture* fx = fixture_new();
  g_object_set(fx->queue, "max-size-buffers", 2, "leaky", GST_ADAPTIVE_QUEUE_LEAK_UPSTREAM,
               nullptr);
  start(fx);

  block_downstream(fx, 0);
  fail_unless_equals_int(push(fx, 1), GST_FLOW_OK);
  fail_unless_equals_int(push(fx, 2), GST_FLOW_OK);
  fail_unless_equals_int(push(fx, 3), GST_FLOW_OK);
  fail_unless_equals_int(push(fx, 4), GST_FLOW_OK);
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-buffers"), 2);
  if (adaptive_only("stats: queue counts no drops"))
    fail_unless_equals_uint64(Stats(fx->queue).u64("drops"), 2);

  open_gate(fx);
  AQ_WAIT_FOR(received_buffers(fx) == 3);
  fail_unless_equals_int(push(fx, 5), GST_FLOW_OK);
  fail_unless_equals_int(push(fx, 6), GST_FLOW_OK);
  AQ_WAIT_FOR(received_buffers(fx) == 5);
  assert_sequence(fx, "stream-start segment 0 1 2 5D 6");
  if (adaptive_only("stats: queue counts no drops"))
    fail_unless_equals_uint64(Stats(fx->queue).u64("drops"), 2);

  fixture_free(fx);
}

GST_END_TEST;

/* `leaky` is an enum of its own type with queue's values and nicks, set
 * from numbers or nicks alike. */
GST_START_TEST(test_leaky_enum) {
  GstElement* q = gst_element_factory_make(factory_name(), nullptr);
  fail_unless(q != nullptr, "q != nullptr");
  GParamSpec* pspec = g_object_class_find_property(G_OBJECT_GET_CLASS(q), "leaky");
  fail_unless(pspec != nullptr && G_IS_PARAM_SPEC_ENUM(pspec), "leaky is not an enum property");
  /* GstQueueLeaky is taken: the same values and nicks under another name. */
  fail_unless_equals_string(
      g_type_name(pspec->value_type),
      queue_differs("the leaky enum's GType name") ? "GstAdaptiveQueueLeaky" : "GstQueueLeaky");

  guint leaky = 99;
  g_object_get(q, "leaky", &leaky, nullptr);
  fail_unless_equals_int(leaky, 0);

  g_object_set(q, "leaky", 2, nullptr);
  g_object_get(q, "leaky", &leaky, nullptr);
  fail_unless_equals_int(leaky, GST_ADAPTIVE_QUEUE_LEAK_DOWNSTREAM);

  const struct {
    const char* text;
    guint value;
  } args[] = {
      {"upstream", 1}, {"0", 0}, {"2", 2}, {"no", 0}, {"1", 1}, {"downstream", 2},
  };
  for (const auto& a : args) {
    gst_util_set_object_arg(G_OBJECT(q), "leaky", a.text);
    g_object_get(q, "leaky", &leaky, nullptr);
    fail_unless_equals_int(leaky, a.value);
  }

  /* Same values and nicks as queue's own enum. */
  GstElement* ref = gst_element_factory_make("queue", nullptr);
  if (ref) {
    GParamSpec* ref_spec = g_object_class_find_property(G_OBJECT_GET_CLASS(ref), "leaky");
    GEnumClass* ours = G_ENUM_CLASS(g_type_class_ref(pspec->value_type));
    GEnumClass* theirs = G_ENUM_CLASS(g_type_class_ref(ref_spec->value_type));
    fail_unless_equals_int(ours->n_values, theirs->n_values);
    for (guint i = 0; i < theirs->n_values; i++) {
      GEnumValue* v = g_enum_get_value(ours, theirs->values[i].value);
      fail_unless(v != nullptr, "v != nullptr");
      fail_unless_equals_string(v->value_nick, theirs->values[i].value_nick);
    }
    g_type_class_unref(ours);
    g_type_class_unref(theirs);
    gst_object_unref(ref);
  }
  gst_object_unref(q);

  /* And from a launch line. */
  GError* error = nullptr;
  gchar* line = g_strdup_printf("%s leaky=downstream", factory_name());
  GstElement* parsed = gst_parse_launch(line, &error);
  g_free(line);
  fail_unless(parsed != nullptr && error == nullptr, "launch line refused");
  g_object_get(parsed, "leaky", &leaky, nullptr);
  fail_unless_equals_int(leaky, 2);
  gst_object_unref(parsed);
}

GST_END_TEST;

/* ======================= levels ======================= */

/* current-level-time is the sink running time minus the src running time,
 * so it does not depend on durations being set; a sum of durations would
 * give 30 ms here (three 10 ms buffers, 20 ms apart) instead of 60 ms. */
GST_START_TEST(test_level_time) {
  const bool with_durations = __i__ == 0;
  const bool with_timestamps = __i__ != 2;
  Fixture* fx = fixture_new();
  g_object_set(fx->queue, "max-size-buffers", 100, nullptr);
  start(fx);

  auto pts = [&](guint i) { return with_timestamps ? i * 20 * kMs : GST_CLOCK_TIME_NONE; };
  const GstClockTime dur = with_durations ? 10 * kMs : GST_CLOCK_TIME_NONE;

  block_downstream(fx, 0, pts(0), dur);
  for (guint i = 1; i <= 3; i++)
    fail_unless_equals_int(push(fx, i, pts(i), dur), GST_FLOW_OK);

  fail_unless_equals_int(uint_prop(fx->queue, "current-level-buffers"), 3);
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-bytes"), 3 * kBufferSize);
  /* The task took buffer 0, so the src side stands at its end. */
  const guint64 expected = with_timestamps ? 60 * kMs : 0;
  fail_unless_equals_uint64(uint64_prop(fx->queue, "current-level-time"), expected);

  open_gate(fx);
  AQ_WAIT_FOR(received_buffers(fx) == 4);
  fail_unless(wait_until([&] {
                return uint64_prop(fx->queue, "current-level-time") == 0 &&
                       uint_prop(fx->queue, "current-level-buffers") == 0 &&
                       uint_prop(fx->queue, "current-level-bytes") == 0;
              }),
              "levels not back to 0 once drained");

  fixture_free(fx);
}

GST_END_TEST;

/* The time level before any buffer has left, by the rule of the running
 * version (queue_times_from_first_buffer()): `queue` 1.22 starts its src
 * side as an open TIME segment at 0, so a buffer at 1 s is a level of 1 s
 * at once, and a buffer without timestamp continues from the previous
 * position; since 1.24 the level counts from the first buffer's running
 * time (0 for that buffer, as it has no duration) and a buffer without
 * timestamp moves nothing. In every segment format and for buffer lists
 * too, whether the segment reached the src side at once (the queue was
 * empty) or waits behind the caps, downstream holding the STREAM_START; on
 * a new element and after a restart; through the lock-free path and, with
 * notify-levels (which closes it, where the element has it), the locked
 * one. Looped, since the reading once depended on which of the two the
 * task's timing gave. */
GST_START_TEST(test_level_time_from_first_buffer) {
  const GstFormat formats[] = {GST_FORMAT_TIME, GST_FORMAT_BYTES, GST_FORMAT_DEFAULT};
  const GstFormat format = formats[__i__ % 3];
  const bool as_list = (__i__ / 3) % 2 == 1;
  const bool segment_queued = (__i__ / 6) % 2 == 1;
  const bool restarted = (__i__ / 12) % 2 == 1;
  const bool locked = (__i__ / 24) % 2 == 1;
  const bool from_first = queue_times_from_first_buffer();
  Fixture* fx = fixture_new();
  /* 1.22's reading passes 1 s: the default max-size-time would fill it. */
  g_object_set(fx->queue, "max-size-time", 10 * GST_SECOND, nullptr);
  if (locked && g_object_class_find_property(G_OBJECT_GET_CLASS(fx->queue), "notify-levels"))
    g_object_set(fx->queue, "notify-levels", TRUE, nullptr);
  if (restarted) {
    set_state(fx, GST_STATE_PAUSED);
    set_state(fx, GST_STATE_READY);
  }
  auto blocker = std::make_unique<Blocker>(fx->queue, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM);
  set_state(fx, GST_STATE_PAUSED);
  push_event(fx, gst_event_new_stream_start("aq"));
  blocker->wait_held();
  if (segment_queued) {
    GstCaps* caps = gst_caps_new_empty_simple("audio/x-raw");
    push_event(fx, gst_event_new_caps(caps));
    gst_caps_unref(caps);
  }
  push_segment(fx, format);

  auto push_one = [&](GstBuffer* buffer) {
    if (!as_list)
      return gst_pad_push(fx->up, buffer);
    GstBufferList* list = gst_buffer_list_new();
    gst_buffer_list_add(list, buffer);
    return gst_pad_push_list(fx->up, list);
  };
  fail_unless_equals_int(push_one(make_buffer(0, GST_SECOND)), GST_FLOW_OK);
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-buffers"), 1);
  fail_unless_equals_uint64(uint64_prop(fx->queue, "current-level-time"),
                            from_first ? 0 : GST_SECOND);

  /* No timestamp, 250 ms long. */
  fail_unless_equals_int(push_one(make_buffer(1, GST_CLOCK_TIME_NONE, 250 * kMs)), GST_FLOW_OK);
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-buffers"), 2);
  fail_unless_equals_uint64(uint64_prop(fx->queue, "current-level-time"),
                            from_first ? 0 : GST_SECOND + 250 * kMs);

  fail_unless_equals_int(push_one(make_buffer(2, GST_SECOND + 500 * kMs)), GST_FLOW_OK);
  fail_unless_equals_uint64(uint64_prop(fx->queue, "current-level-time"),
                            from_first ? 500 * kMs : GST_SECOND + 500 * kMs);

  blocker.reset();
  fixture_free(fx);
}

GST_END_TEST;

/* Min thresholds hold items back only while data is at the tail, as on
 * queue: an event queued last drains the buffers before it, and an event
 * with a buffer below the threshold behind it waits with it. */
GST_START_TEST(test_threshold_follows_the_tail) {
  Fixture* fx = fixture_new();
  g_object_set(fx->queue, "min-threshold-buffers", 3, nullptr);
  start(fx);
  /* Below the threshold, then an event: both go. */
  fail_unless_equals_int(push(fx, 0), GST_FLOW_OK);
  push_event(fx, custom_event(GST_EVENT_CUSTOM_DOWNSTREAM));
  AQ_WAIT_FOR(received_events(fx, GST_EVENT_CUSTOM_DOWNSTREAM) == 1);
  assert_sequence(fx, "stream-start segment 0 custom-downstream");

  /* An event with a buffer behind it, queued while downstream holds the
   * last event: the tail is data below the threshold, so neither goes
   * until another event arrives. */
  auto blocker = std::make_unique<Blocker>(fx->queue, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM);
  push_event(fx, custom_event(GST_EVENT_CUSTOM_DOWNSTREAM));
  blocker->wait_held();
  push_event(fx, custom_event(GST_EVENT_CUSTOM_DOWNSTREAM_STICKY));
  fail_unless_equals_int(push(fx, 1), GST_FLOW_OK);
  blocker.reset();
  AQ_WAIT_FOR(received_events(fx, GST_EVENT_CUSTOM_DOWNSTREAM) == 2);
  g_usleep(kSettleUs);
  assert_sequence(fx, "stream-start segment 0 custom-downstream custom-downstream");
  push_event(fx, custom_event(GST_EVENT_CUSTOM_DOWNSTREAM_OOB));
  push_event(fx, custom_event(GST_EVENT_CUSTOM_DOWNSTREAM));
  AQ_WAIT_FOR(received_events(fx, GST_EVENT_CUSTOM_DOWNSTREAM) == 3);
  assert_sequence(fx,
                  "stream-start segment 0 custom-downstream custom-downstream "
                  "custom-downstream-oob custom-downstream-sticky 1 custom-downstream");
  fixture_free(fx);
}

GST_END_TEST;

/* EOS clears the min thresholds so everything drains, and they read back
 * cleared until a flush restores them, as on queue. */
GST_START_TEST(test_thresholds_read_back_after_eos) {
  Fixture* fx = fixture_new();
  g_object_set(fx->queue, "min-threshold-buffers", 3, "min-threshold-bytes", 40,
               "min-threshold-time", 30 * kMs, nullptr);
  start(fx);
  push_event(fx, gst_event_new_eos());
  AQ_WAIT_FOR(received_events(fx, GST_EVENT_EOS) == 1);
  fail_unless_equals_int(uint_prop(fx->queue, "min-threshold-buffers"), 0);
  fail_unless_equals_int(uint_prop(fx->queue, "min-threshold-bytes"), 0);
  fail_unless_equals_uint64(uint64_prop(fx->queue, "min-threshold-time"), 0);
  push_event(fx, gst_event_new_flush_start());
  push_event(fx, gst_event_new_flush_stop(TRUE));
  fail_unless_equals_int(uint_prop(fx->queue, "min-threshold-buffers"), 3);
  fail_unless_equals_int(uint_prop(fx->queue, "min-threshold-bytes"), 40);
  fail_unless_equals_uint64(uint64_prop(fx->queue, "min-threshold-time"), 30 * kMs);
  fixture_free(fx);
}

GST_END_TEST;

/* When the task stops on FLUSHING, from a FLUSH_START or from downstream,
 * what is queued is dropped at once, as on queue: the levels read 0 before
 * any FLUSH_STOP. */
GST_START_TEST(test_flushing_task_drops_queued) {
  const bool from_downstream = __i__ == 1;
  Fixture* fx = fixture_new();
  start(fx);
  block_downstream(fx, 0, 0, 10 * kMs);
  for (guint i = 1; i <= 2; i++)
    fail_unless_equals_int(push(fx, i, i * 10 * kMs, 10 * kMs), GST_FLOW_OK);
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-buffers"), 2);
  if (from_downstream) {
    g_mutex_lock(&fx->lock);
    fx->chain_return = GST_FLOW_FLUSHING;
    g_mutex_unlock(&fx->lock);
    open_gate(fx);
  } else {
    push_event(fx, gst_event_new_flush_start());
  }
  AQ_WAIT_FOR(uint_prop(fx->queue, "current-level-buffers") == 0);
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-bytes"), 0);
  fail_unless_equals_uint64(uint64_prop(fx->queue, "current-level-time"), 0);
  fail_unless_equals_int(received_buffers(fx), 1);
  fixture_free(fx);
}

GST_END_TEST;

/* An EOS refused while not linked reports the error once: the refusal
 * returns NOT_LINKED, as on queue, so upstream's pad does not send the EOS
 * again before a later serialized query or event. */
GST_START_TEST(test_refused_eos_reports_once) {
  Fixture* fx = fixture_new();
  start(fx);
  g_mutex_lock(&fx->lock);
  fx->chain_return = GST_FLOW_NOT_LINKED;
  g_mutex_unlock(&fx->lock);
  GstFlowReturn ret = push(fx, 0);
  fail_unless(wait_until([&] {
                ret = push(fx, 1);
                return ret != GST_FLOW_OK;
              }),
              "data still accepted after a fatal flow");
  fail_unless_equals_int(ret, GST_FLOW_NOT_LINKED);
  fail_if(gst_pad_push_event(fx->up, gst_event_new_eos()), "EOS accepted after a fatal flow");
  fail_unless(fx->bus->wait_error(), "no error posted");

  GstQuery* query = gst_query_new_drain();
  fail_if(gst_pad_peer_query(fx->up, query), "query answered after a fatal flow");
  gst_query_unref(query);
  fail_if(gst_pad_push_event(fx->up, custom_event(GST_EVENT_CUSTOM_DOWNSTREAM)),
          "event accepted after a fatal flow");
  fx->bus->drain();
  fail_unless_equals_int(fx->bus->errors.size(), 1);
  fixture_free(fx);
}

GST_END_TEST;

/* The time level reads 0 once the task has taken the last buffer, even
 * with a segment still queued, until either side moves again: queue's
 * rule. The segment moves upstream's running time on 1.22 (to its base,
 * 5 s, as it sets the position to 0); since 1.24 a SEGMENT alone moves
 * nothing, and the level stays buffer 1's 10 ms. */
GST_START_TEST(test_level_time_zero_without_buffers) {
  Fixture* fx = fixture_new();
  start(fx);
  block_downstream(fx, 0, 0, 10 * kMs);
  fail_unless_equals_int(push(fx, 1, 10 * kMs, 10 * kMs), GST_FLOW_OK);
  fail_unless_equals_uint64(uint64_prop(fx->queue, "current-level-time"), 10 * kMs);
  GstSegment segment;
  gst_segment_init(&segment, GST_FORMAT_TIME);
  segment.base = 5 * GST_SECOND;
  push_event(fx, gst_event_new_segment(&segment));
  fail_unless_equals_uint64(uint64_prop(fx->queue, "current-level-time"),
                            queue_times_from_first_buffer() ? 10 * kMs : 5 * GST_SECOND - 10 * kMs);

  auto blocker = std::make_unique<Blocker>(fx->queue);
  open_gate(fx);
  blocker->wait_held();
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-buffers"), 0);
  fail_unless_equals_uint64(uint64_prop(fx->queue, "current-level-time"), 0);
  blocker.reset();
  fixture_free(fx);
}

GST_END_TEST;

/* flush-on-eos drops what is queued but is no new stream: the buffer in
 * flight keeps its result, so a fatal flow from downstream with EOS queued
 * is reported, as on queue. */
GST_START_TEST(test_flush_on_eos_keeps_result_in_flight) {
  Fixture* fx = fixture_new();
  g_object_set(fx->queue, "flush-on-eos", TRUE, nullptr);
  start(fx);
  block_downstream(fx, 0);
  push_event(fx, gst_event_new_eos());
  g_mutex_lock(&fx->lock);
  fx->chain_return = GST_FLOW_ERROR;
  g_mutex_unlock(&fx->lock);
  open_gate(fx);
  fail_unless(fx->bus->wait_error(), "no error for the fatal flow");
  fail_unless_equals_int(fx->bus->errors.size(), 1);
  fixture_free(fx);
}

GST_END_TEST;

/* A buffer list counts as its length, its bytes as theirs, and its time runs
 * from its first to its last timestamp; buffers without a timestamp
 * continue from the previous one. */
GST_START_TEST(test_level_buffer_lists) {
  Fixture* fx = fixture_new();
  g_object_set(fx->queue, "max-size-buffers", 100, nullptr);
  start(fx);

  block_downstream(fx, 0, 0, 10 * kMs);

  GstBufferList* list = gst_buffer_list_new();
  for (guint i = 1; i <= 4; i++)
    gst_buffer_list_add(list, make_buffer(i, i * 20 * kMs, 10 * kMs));
  fail_unless_equals_int(gst_pad_push_list(fx->up, list), GST_FLOW_OK);
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-buffers"), 4);
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-bytes"), 4 * kBufferSize);
  /* Sink side at 80 + 10 ms, src side at 0 + 10 ms. */
  fail_unless_equals_uint64(uint64_prop(fx->queue, "current-level-time"), 80 * kMs);

  list = gst_buffer_list_new();
  gst_buffer_list_add(list, make_buffer(5, 100 * kMs, 10 * kMs, 8));
  gst_buffer_list_add(list, make_buffer(6, GST_CLOCK_TIME_NONE, 10 * kMs, 8));
  fail_unless_equals_int(gst_pad_push_list(fx->up, list), GST_FLOW_OK);
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-buffers"), 6);
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-bytes"), 4 * kBufferSize + 16);
  /* 100 ms + 10 ms, then the untimed buffer's 10 ms: 120 ms - 10 ms. */
  fail_unless_equals_uint64(uint64_prop(fx->queue, "current-level-time"), 110 * kMs);

  open_gate(fx);
  AQ_WAIT_FOR(received_buffers(fx) == 7);
  assert_sequence(fx, "stream-start segment 0 [1 2 3 4] [5 6]");
  fail_unless(wait_until([&] {
                return uint_prop(fx->queue, "current-level-buffers") == 0 &&
                       uint64_prop(fx->queue, "current-level-time") == 0;
              }),
              "levels not back to 0 once drained");

  fixture_free(fx);
}

GST_END_TEST;

/* A list fills the queue by its length: with room for 5, a list of 4 fits,
 * the next list still enters (the queue was not full), and then it is. */
/* min-threshold-buffers N lets data go once N buffers are queued, as on
 * queue, and holds it again below N. */
GST_START_TEST(test_min_threshold_reached_releases) {
  Fixture* fx = fixture_new();
  g_object_set(fx->queue, "max-size-buffers", 10, "min-threshold-buffers", 2, nullptr);
  start(fx);
  fail_unless_equals_int(push(fx, 0, 0, 10 * kMs), GST_FLOW_OK);
  fail_unless_equals_int(push(fx, 1, 10 * kMs, 10 * kMs), GST_FLOW_OK);
  AQ_WAIT_FOR(received_buffers(fx) == 1);
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-buffers"), 1);
  fixture_free(fx);
}

GST_END_TEST;

GST_START_TEST(test_buffer_list_fills_by_length) {
  Fixture* fx = fixture_new();
  g_object_set(fx->queue, "max-size-buffers", 5, "leaky", GST_ADAPTIVE_QUEUE_LEAK_UPSTREAM,
               nullptr);
  start(fx);
  block_downstream(fx, 0);

  GstBufferList* list = gst_buffer_list_new();
  for (guint i = 1; i <= 4; i++)
    gst_buffer_list_add(list, make_buffer(i));
  fail_unless_equals_int(gst_pad_push_list(fx->up, list), GST_FLOW_OK);
  list = gst_buffer_list_new();
  for (guint i = 5; i <= 6; i++)
    gst_buffer_list_add(list, make_buffer(i));
  fail_unless_equals_int(gst_pad_push_list(fx->up, list), GST_FLOW_OK);
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-buffers"), 6);
  /* Full now: this one leaks. */
  fail_unless_equals_int(push(fx, 7), GST_FLOW_OK);
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-buffers"), 6);

  open_gate(fx);
  AQ_WAIT_FOR(received_buffers(fx) == 7);
  assert_sequence(fx, "stream-start segment 0 [1 2 3 4] [5 6]");
  if (adaptive_only("stats: queue counts no drops"))
    fail_unless_equals_uint64(Stats(fx->queue).u64("drops"), 1);

  fixture_free(fx);
}

GST_END_TEST;

/* ---- notify-levels ---- */

namespace {

/* One notify::current-level-* as a handler saw it: which level, its value
 * read in the handler, and the thread. */
struct LevelNote {
  std::string level;
  guint64 value;
  GThread* thread;
};

struct LevelNotes {
  std::mutex m;
  std::vector<LevelNote> notes;

  std::vector<LevelNote> take() {
    std::lock_guard<std::mutex> guard(m);
    return std::exchange(notes, {});
  }
  size_t size() {
    std::lock_guard<std::mutex> guard(m);
    return notes.size();
  }
};

/* Reads the level in the handler: only possible with the lock released. */
void on_level_notify(GObject* object, GParamSpec* pspec, LevelNotes* log) {
  GValue v = G_VALUE_INIT;
  g_value_init(&v, pspec->value_type);
  g_object_get_property(object, pspec->name, &v);
  const guint64 value =
      pspec->value_type == G_TYPE_UINT64 ? g_value_get_uint64(&v) : g_value_get_uint(&v);
  g_value_unset(&v);
  std::lock_guard<std::mutex> guard(log->m);
  log->notes.push_back(LevelNote{pspec->name + strlen("current-level-"), value, g_thread_self()});
}

void watch_levels(GstElement* e, LevelNotes* log) {
  for (const char* name : {"current-level-buffers", "current-level-bytes", "current-level-time"})
    g_signal_connect(e, (std::string("notify::") + name).c_str(), G_CALLBACK(on_level_notify), log);
}

/* The values notified for one level, in order; ms for time. */
std::string notified(const std::vector<LevelNote>& notes, const char* level) {
  std::string out;
  for (const LevelNote& n : notes)
    if (n.level == level)
      out += (out.empty() ? "" : " ") + std::to_string(n.level == "time" ? n.value / kMs : n.value);
  return out;
}

/* notify-levels exists on queue only from GStreamer 1.26. */
bool has_notify_levels(GstElement* e) {
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(e), "notify-levels"))
    return true;
  fail_unless(!g_str_equal(factory_name(), "adaptivequeue"), "no notify-levels");
  g_printerr("%s: no notify-levels (queue < 1.26), not checked\n", factory_name());
  return false;
}

}  // namespace

/* notify-levels is false by default, and then no level is notified while
 * buffers enter and leave; it can be set in PLAYING. */
GST_START_TEST(test_notify_levels_off_by_default) {
  Fixture* fx = fixture_new();
  if (!has_notify_levels(fx->queue)) {
    fixture_free(fx);
    return;
  }
  GParamSpec* pspec = g_object_class_find_property(G_OBJECT_GET_CLASS(fx->queue), "notify-levels");
  fail_unless_equals_int(pspec->value_type, G_TYPE_BOOLEAN);
  fail_unless(!G_PARAM_SPEC_BOOLEAN(pspec)->default_value, "default true");
  fail_unless((pspec->flags & G_PARAM_READWRITE) == G_PARAM_READWRITE, "not read-write");
  fail_unless(pspec->flags & GST_PARAM_MUTABLE_PLAYING, "not mutable in PLAYING");
  gboolean on = TRUE;
  g_object_get(fx->queue, "notify-levels", &on, nullptr);
  fail_unless(!on, "notify-levels reads true");

  LevelNotes log;
  watch_levels(fx->queue, &log);
  g_object_set(fx->queue, "max-size-buffers", 100, nullptr);
  start(fx);
  block_downstream(fx, 0, 0, 10 * kMs);
  for (guint i = 1; i <= 3; i++)
    fail_unless_equals_int(push(fx, i, i * 20 * kMs, 10 * kMs), GST_FLOW_OK);
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-buffers"), 3);
  open_gate(fx);
  AQ_WAIT_FOR(received_buffers(fx) == 4);
  AQ_WAIT_FOR(uint_prop(fx->queue, "current-level-buffers") == 0);
  g_usleep(kSettleUs);
  fail_unless_equals_int(log.size(), 0);

  fixture_free(fx);
}

GST_END_TEST;

/* With notify-levels, each level is notified as buffers enter, from
 * upstream's thread, and as they leave, from the task once downstream took
 * them; a handler reads the new value (the lock is released). */
GST_START_TEST(test_notify_levels_follow_buffers) {
  Fixture* fx = fixture_new();
  if (!has_notify_levels(fx->queue)) {
    fixture_free(fx);
    return;
  }
  LevelNotes log;
  watch_levels(fx->queue, &log);
  g_object_set(fx->queue, "max-size-buffers", 100, "notify-levels", TRUE, nullptr);
  start(fx);
  /* Buffer 0 held downstream: the task sits in its push. */
  block_downstream(fx, 0, 0, 10 * kMs);
  log.take();

  GThread* upstream = nullptr;
  Worker pusher([&] {
    upstream = g_thread_self();
    for (guint i = 1; i <= 3; i++)
      if (push(fx, i, i * 20 * kMs, 10 * kMs) != GST_FLOW_OK)
        return;
  });
  fail_unless(pusher.wait(kWaitUs), "a push deadlocked: notified under the lock?");
  std::vector<LevelNote> in = log.take();
  {
    const std::string got = notified(in, "buffers");
    fail_unless_equals_string(got.c_str(), "1 2 3");
  }
  {
    const std::string got = notified(in, "bytes");
    fail_unless_equals_string(got.c_str(), "16 32 48");
  }
  /* Sink running time (end of each buffer) minus the src's (end of 0). */
  {
    const std::string got = notified(in, "time");
    fail_unless_equals_string(got.c_str(), "20 40 60");
  }
  for (const LevelNote& n : in)
    fail_unless(n.thread == upstream, "%s notified from another thread", n.level.c_str());

  /* Each removal is notified once downstream returns: buffer 0's first. */
  open_gate(fx);
  AQ_WAIT_FOR(received_buffers(fx) == 4);
  AQ_WAIT_FOR(log.size() == 12);
  g_usleep(kSettleUs);
  std::vector<LevelNote> out = log.take();
  {
    const std::string got = notified(out, "buffers");
    fail_unless_equals_string(got.c_str(), "3 2 1 0");
  }
  {
    const std::string got = notified(out, "bytes");
    fail_unless_equals_string(got.c_str(), "48 32 16 0");
  }
  {
    const std::string got = notified(out, "time");
    fail_unless_equals_string(got.c_str(), "60 40 20 0");
  }
  for (const LevelNote& n : out)
    fail_unless(n.thread != upstream, "%s notified from upstream's thread", n.level.c_str());

  fixture_free(fx);
}

GST_END_TEST;

/* notify-levels set in PLAYING takes effect at the next change, and unset
 * stops the notifications. */
GST_START_TEST(test_notify_levels_set_while_playing) {
  Fixture* fx = fixture_new();
  if (!has_notify_levels(fx->queue)) {
    fixture_free(fx);
    return;
  }
  LevelNotes log;
  watch_levels(fx->queue, &log);
  g_object_set(fx->queue, "max-size-buffers", 100, nullptr);
  start(fx);
  block_downstream(fx, 0);
  fail_unless_equals_int(push(fx, 1), GST_FLOW_OK);
  fail_unless_equals_int(log.size(), 0);

  g_object_set(fx->queue, "notify-levels", TRUE, nullptr);
  fail_unless_equals_int(push(fx, 2), GST_FLOW_OK);
  std::vector<LevelNote> in = log.take();
  {
    const std::string got = notified(in, "buffers");
    fail_unless_equals_string(got.c_str(), "2");
  }
  {
    const std::string got = notified(in, "bytes");
    fail_unless_equals_string(got.c_str(), "32");
  }

  g_object_set(fx->queue, "notify-levels", FALSE, nullptr);
  fail_unless_equals_int(push(fx, 3), GST_FLOW_OK);
  open_gate(fx);
  AQ_WAIT_FOR(received_buffers(fx) == 4);
  AQ_WAIT_FOR(uint_prop(fx->queue, "current-level-buffers") == 0);
  g_usleep(kSettleUs);
  fail_unless_equals_int(log.size(), 0);

  fixture_free(fx);
}

GST_END_TEST;

/* ======================= events ======================= */

/* Sticky events reach downstream without waiting for a buffer. */
GST_START_TEST(test_initial_events_without_buffers) {
  Fixture* fx = fixture_new();
  set_state(fx, GST_STATE_PLAYING);
  GstCaps* caps = gst_caps_from_string("audio/x-opus, channels=(int)2");
  push_initial_events(fx, caps);

  fail_unless(wait_until([&] { return received_events(fx, GST_EVENT_SEGMENT) == 1; }),
              "initial events held back: %s", sequence(fx).c_str());
  assert_sequence(fx, "stream-start caps segment");
  GstCaps* current = gst_pad_get_current_caps(fx->down);
  fail_unless(current != nullptr && gst_caps_is_equal(current, caps),
              "downstream does not have the caps");
  gst_caps_unref(current);
  gst_caps_unref(caps);
  fail_unless_equals_int(received_buffers(fx), 0);

  fixture_free(fx);
}

GST_END_TEST;

/* With the src pad unlinked, sticky events are accepted; the first buffer is
 * accepted too, and once the task has failed to push it the next ones
 * return NOT_LINKED. Linking and RECONFIGURE make data flow again, sticky
 * events first. */
GST_START_TEST(test_sticky_events_not_linked) {
  Fixture* fx = fixture_new(false);
  set_state(fx, GST_STATE_PLAYING);
  push_event(fx, gst_event_new_stream_start("aq"));
  push_segment(fx);

  fail_unless_equals_int(push(fx, 0), GST_FLOW_OK);
  GstFlowReturn ret = GST_FLOW_OK;
  fail_unless(wait_until([&] {
                ret = push(fx, 1);
                return ret != GST_FLOW_OK;
              }),
              "data still accepted while not linked");
  fail_unless_equals_int(ret, GST_FLOW_NOT_LINKED);

  /* Still not linked: sticky events are kept, other serialized ones are
   * refused. */
  GstTagList* tags = gst_tag_list_new(GST_TAG_TITLE, "aq", nullptr);
  push_event(fx, gst_event_new_tag(tags));
  fail_if(gst_pad_push_event(fx->up, custom_event(GST_EVENT_CUSTOM_DOWNSTREAM)),
          "a serialized event was accepted while not linked");
  fail_unless_equals_int(push(fx, 2), GST_FLOW_NOT_LINKED);

  link_down(fx);
  fail_unless(gst_pad_push_event(fx->down, gst_event_new_reconfigure()), "RECONFIGURE refused");
  fail_unless(wait_until([&] {
                ret = push(fx, 3);
                return ret == GST_FLOW_OK;
              }),
              "still %s after relinking", gst_flow_get_name(ret));
  AQ_WAIT_FOR(g_str_has_suffix(sequence(fx).c_str(), " 3"));
  /* The sticky events the src pad stored while unlinked come first, then
   * what was queued in order: the buffers accepted before the task failed
   * (buffer 0 was the one it failed on), the tag, and the new buffer. */
  std::string expected = "stream-start segment";
  for (guint i = 1; i < received_buffers(fx); i++)
    expected += " 1";
  expected += " tag 3";
  assert_sequence(fx, expected.c_str());

  fixture_free(fx);
}

GST_END_TEST;

/* EOS with nothing able to take it is an error, as for queue. */
GST_START_TEST(test_eos_not_linked_is_an_error) {
  Fixture* fx = fixture_new(false);
  set_state(fx, GST_STATE_PLAYING);
  push_event(fx, gst_event_new_stream_start("aq"));
  push_segment(fx);
  GstFlowReturn ret = push(fx, 0);
  fail_unless(wait_until([&] {
                ret = push(fx, 1);
                return ret != GST_FLOW_OK;
              }),
              "data still accepted while not linked");
  fail_unless_equals_int(ret, GST_FLOW_NOT_LINKED);

  fail_if(gst_pad_push_event(fx->up, gst_event_new_eos()), "EOS accepted with nothing to take it");
  fail_unless(fx->bus->wait_error(), "no error posted");
  fail_unless_equals_int(fx->bus->errors.size(), 1);
  fail_unless(fx->bus->errors[0].domain == GST_STREAM_ERROR &&
                  fx->bus->errors[0].code == GST_STREAM_ERROR_FAILED,
              "not a stream error: %s", fx->bus->errors[0].text.c_str());

  fixture_free(fx);
}

GST_END_TEST;

/* Data before EOS is delivered, then EOS; after EOS the element refuses
 * data with EOS. */
GST_START_TEST(test_eos_after_data) {
  Fixture* fx = fixture_new();
  start(fx);
  for (guint i = 0; i < 3; i++)
    fail_unless_equals_int(push(fx, i), GST_FLOW_OK);
  push_event(fx, gst_event_new_eos());
  AQ_WAIT_FOR(received_events(fx, GST_EVENT_EOS) == 1);
  assert_sequence(fx, "stream-start segment 0 1 2 eos");

  /* Through the pad, and straight into the element (the pad refuses by
   * itself after EOS, the element must too). */
  fail_unless_equals_int(push(fx, 3), GST_FLOW_EOS);
  GstPad* sink = gst_element_get_static_pad(fx->queue, "sink");
  GstPadChainFunction chain = GST_PAD_CHAINFUNC(sink);
  fail_unless_equals_int(chain(sink, GST_OBJECT(fx->queue), make_buffer(4)), GST_FLOW_EOS);
  GstPadEventFunction event = GST_PAD_EVENTFUNC(sink);
  fail_if(event(sink, GST_OBJECT(fx->queue), custom_event(GST_EVENT_CUSTOM_DOWNSTREAM)),
          "a serialized event was accepted after EOS");
  gst_object_unref(sink);
  g_usleep(kSettleUs);
  fail_unless_equals_int(received_buffers(fx), 3);

  fixture_free(fx);
}

GST_END_TEST;

/* EOS clears the min thresholds, so data held back by them drains. */
GST_START_TEST(test_eos_drains_below_threshold) {
  Fixture* fx = fixture_new();
  g_object_set(fx->queue, "min-threshold-buffers", 10, nullptr);
  start(fx);
  for (guint i = 0; i < 3; i++)
    fail_unless_equals_int(push(fx, i), GST_FLOW_OK);
  g_usleep(kSettleUs);
  fail_unless_equals_int(received_buffers(fx), 0);
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-buffers"), 3);

  push_event(fx, gst_event_new_eos());
  AQ_WAIT_FOR(received_events(fx, GST_EVENT_EOS) == 1);
  assert_sequence(fx, "stream-start segment 0 1 2 eos");

  fixture_free(fx);
}

GST_END_TEST;

/* flush-on-eos=true drops what is queued at EOS, and EOS passes at once. */
GST_START_TEST(test_flush_on_eos) {
  Fixture* fx = fixture_new();
  g_object_set(fx->queue, "flush-on-eos", TRUE, nullptr);
  start(fx);
  block_downstream(fx, 0);
  fail_unless_equals_int(push(fx, 1), GST_FLOW_OK);
  fail_unless_equals_int(push(fx, 2), GST_FLOW_OK);
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-buffers"), 2);

  bool eos_ok = false;
  Worker eos([&] { eos_ok = gst_pad_push_event(fx->up, gst_event_new_eos()); });
  fail_unless(eos.wait(kWaitUs), "EOS waited for the queue");
  fail_unless(eos_ok, "EOS refused");
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-buffers"), 0);

  open_gate(fx);
  AQ_WAIT_FOR(received_events(fx, GST_EVENT_EOS) == 1);
  assert_sequence(fx, "stream-start segment 0 eos");

  fixture_free(fx);
}

GST_END_TEST;

/* After EOS, a flush makes the element accept data again. */
GST_START_TEST(test_flush_stop_after_eos) {
  Fixture* fx = fixture_new();
  start(fx);
  fail_unless_equals_int(push(fx, 0), GST_FLOW_OK);
  push_event(fx, gst_event_new_eos());
  AQ_WAIT_FOR(received_events(fx, GST_EVENT_EOS) == 1);
  fail_unless_equals_int(push(fx, 1), GST_FLOW_EOS);

  push_event(fx, gst_event_new_flush_start());
  push_event(fx, gst_event_new_flush_stop(TRUE));
  /* FLUSH_STOP itself ends the EOS: a serialized event before the next
   * SEGMENT is taken, not refused with EOS. */
  push_event(fx, gst_event_new_custom(GST_EVENT_CUSTOM_DOWNSTREAM,
                                      gst_structure_new_empty("aq-after-flush")));
  push_segment(fx);
  fail_unless_equals_int(push(fx, 2), GST_FLOW_OK);
  AQ_WAIT_FOR(received_buffers(fx) == 2);
  assert_sequence(fx,
                  "stream-start segment 0 eos flush-start flush-stop custom-downstream segment 2");

  fixture_free(fx);
}

GST_END_TEST;

/* After EOS, a new stream (STREAM_START, then SEGMENT) is accepted and data
 * flows again, as queue restarts its task for it. */
GST_START_TEST(test_new_stream_after_eos) {
  Fixture* fx = fixture_new();
  start(fx);
  fail_unless_equals_int(push(fx, 0), GST_FLOW_OK);
  push_event(fx, gst_event_new_eos());
  AQ_WAIT_FOR(received_events(fx, GST_EVENT_EOS) == 1);

  push_event(fx, gst_event_new_stream_start("aq-2"));
  push_segment(fx);
  fail_unless_equals_int(push(fx, 1), GST_FLOW_OK);
  fail_unless(wait_until([&] { return received_buffers(fx) == 2; }), "%s", sequence(fx).c_str());
  assert_sequence(fx, "stream-start segment 0 eos stream-start segment 1");

  fixture_free(fx);
}

GST_END_TEST;

/* FLUSH_START releases an upstream waiting for space; FLUSH_STOP empties the
 * queue, keeps the caps, and data flows again. */
GST_START_TEST(test_flush_wakes_and_resets) {
  Fixture* fx = fixture_new();
  g_object_set(fx->queue, "max-size-buffers", 2, nullptr);
  set_state(fx, GST_STATE_PLAYING);
  GstCaps* caps = gst_caps_from_string("audio/x-opus");
  push_initial_events(fx, caps);
  block_downstream(fx, 0);
  fail_unless_equals_int(push(fx, 1), GST_FLOW_OK);
  fail_unless_equals_int(push(fx, 2), GST_FLOW_OK);
  GstFlowReturn blocked_ret = GST_FLOW_OK;
  Worker pusher([&] { blocked_ret = push(fx, 3); });
  fail_if(pusher.wait(kSettleUs), "a push into a full queue did not wait");

  push_event(fx, gst_event_new_flush_start());
  fail_unless(pusher.wait(kWaitUs), "FLUSH_START did not wake upstream");
  fail_unless_equals_int(blocked_ret, GST_FLOW_FLUSHING);
  push_event(fx, gst_event_new_flush_stop(TRUE));
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-buffers"), 0);
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-bytes"), 0);
  fail_unless_equals_uint64(uint64_prop(fx->queue, "current-level-time"), 0);

  open_gate(fx);
  push_segment(fx);
  fail_unless_equals_int(push(fx, 4), GST_FLOW_OK);
  AQ_WAIT_FOR(received_buffers(fx) == 2);
  assert_sequence(fx, "stream-start caps segment 0 flush-start flush-stop segment 4");
  GstCaps* current = gst_pad_get_current_caps(fx->down);
  fail_unless(current != nullptr && gst_caps_is_equal(current, caps),
              "downstream does not have the caps");
  gst_caps_unref(current);
  gst_caps_unref(caps);

  fixture_free(fx);
}

GST_END_TEST;

/* A full queue (leaky=no, downstream blocked) still takes serialized events
 * at once, more of them than it has room for buffers, in order. */
GST_START_TEST(test_serialized_events_never_block) {
  constexpr guint kEvents = 40;
  Fixture* fx = fixture_new();
  g_object_set(fx->queue, "max-size-buffers", 2, nullptr);
  start(fx);
  block_downstream(fx, 0);
  fail_unless_equals_int(push(fx, 1), GST_FLOW_OK);
  fail_unless_equals_int(push(fx, 2), GST_FLOW_OK);

  guint accepted = 0;
  Worker events([&] {
    for (guint i = 0; i < kEvents; i++)
      if (gst_pad_push_event(fx->up, custom_event(GST_EVENT_CUSTOM_DOWNSTREAM)))
        accepted++;
  });
  fail_unless(events.wait(kWaitUs), "a serialized event waited for space");
  fail_unless_equals_int(accepted, kEvents);
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-buffers"), 2);

  open_gate(fx);
  fail_unless_equals_int(push(fx, 3), GST_FLOW_OK);
  AQ_WAIT_FOR(received_buffers(fx) == 4);
  std::string expected = "stream-start segment 0 1 2";
  for (guint i = 0; i < kEvents; i++)
    expected += " custom-downstream";
  expected += " 3";
  assert_sequence(fx, expected.c_str());

  fixture_free(fx);
}

GST_END_TEST;

/* Out-of-band events and non-serialized queries go through at once, in both
 * directions, while the queue is full and downstream is blocked. */
GST_START_TEST(test_non_serialized_pass_through) {
  Fixture* fx = fixture_new();
  fx->down_caps = gst_caps_from_string("audio/x-raw, rate=(int)48000");
  g_object_set(fx->queue, "max-size-buffers", 2, nullptr);
  start(fx);
  block_downstream(fx, 0);
  fail_unless_equals_int(push(fx, 1), GST_FLOW_OK);
  fail_unless_equals_int(push(fx, 2), GST_FLOW_OK);

  bool oob_ok = false;
  GstCaps* caps = nullptr;
  bool upstream_ok = false;
  Worker worker([&] {
    oob_ok = gst_pad_push_event(fx->up, custom_event(GST_EVENT_CUSTOM_DOWNSTREAM_OOB));
    caps = gst_pad_peer_query_caps(fx->up, nullptr);
    upstream_ok = gst_pad_push_event(fx->down, custom_event(GST_EVENT_CUSTOM_UPSTREAM));
  });
  fail_unless(worker.wait(kWaitUs), "a non-serialized event or query waited");
  fail_unless(oob_ok && upstream_ok, "an out-of-band event was refused");
  fail_unless(caps != nullptr && gst_caps_is_equal(caps, fx->down_caps),
              "CAPS query not answered by downstream");
  gst_caps_unref(caps);
  /* Delivered ahead of the queued buffers. */
  assert_sequence(fx, "stream-start segment 0 custom-downstream-oob");
  g_mutex_lock(&fx->lock);
  const bool upstream_seen =
      !fx->upstream_events.empty() && fx->upstream_events.back() == GST_EVENT_CUSTOM_UPSTREAM;
  g_mutex_unlock(&fx->lock);
  fail_unless(upstream_seen, "the upstream event did not reach upstream");

  open_gate(fx);
  AQ_WAIT_FOR(received_buffers(fx) == 3);

  fixture_free(fx);
}

GST_END_TEST;

/* ======================= queries ======================= */

/* The element's sink pad answers CAPS and ACCEPT_CAPS with downstream's
 * answer, and an ALLOCATION query comes back with downstream's proposal. */
GST_START_TEST(test_caps_and_allocation_proxied) {
  Fixture* fx = fixture_new();
  fx->down_caps = gst_caps_from_string(
      "audio/x-raw, format=(string)S16LE, "
      "rate=(int)48000, channels=(int)2, layout=(string)interleaved");
  GstBufferPool* pool = gst_buffer_pool_new();
  fx->on_allocation = [pool](GstQuery* query) {
    GstAllocationParams params;
    gst_allocation_params_init(&params);
    params.align = 63;
    gst_query_add_allocation_param(query, nullptr, &params);
    gst_query_add_allocation_pool(query, pool, 4096, 2, 8);
    gst_query_add_allocation_meta(query, GST_PARENT_BUFFER_META_API_TYPE, nullptr);
    return TRUE;
  };
  set_state(fx, GST_STATE_PLAYING);

  GstCaps* caps = gst_pad_peer_query_caps(fx->up, nullptr);
  fail_unless(gst_caps_is_equal(caps, fx->down_caps), "got %" GST_PTR_FORMAT, caps);
  gst_caps_unref(caps);
  GstCaps* other = gst_caps_from_string("audio/x-raw, rate=(int)44100");
  caps = gst_pad_peer_query_caps(fx->up, other);
  fail_unless(gst_caps_is_empty(caps), "gst_caps_is_empty (caps)");
  gst_caps_unref(caps);
  fail_unless(gst_pad_peer_query_accept_caps(fx->up, fx->down_caps), "downstream's caps refused");
  fail_if(gst_pad_peer_query_accept_caps(fx->up, other), "caps downstream refuses were accepted");
  gst_caps_unref(other);

  push_initial_events(fx, fx->down_caps);
  GstQuery* query = gst_query_new_allocation(fx->down_caps, TRUE);
  fail_unless(gst_pad_peer_query(fx->up, query), "ALLOCATION query failed");
  fail_unless_equals_int(gst_query_get_n_allocation_params(query), 1);
  GstAllocator* allocator = nullptr;
  GstAllocationParams params;
  gst_query_parse_nth_allocation_param(query, 0, &allocator, &params);
  fail_unless_equals_int(params.align, 63);
  if (allocator)
    gst_object_unref(allocator);
  fail_unless_equals_int(gst_query_get_n_allocation_pools(query), 1);
  GstBufferPool* got = nullptr;
  guint size = 0, min = 0, max = 0;
  gst_query_parse_nth_allocation_pool(query, 0, &got, &size, &min, &max);
  fail_unless(got == pool, "got == pool");
  fail_unless_equals_int(size, 4096);
  fail_unless_equals_int(min, 2);
  fail_unless_equals_int(max, 8);
  gst_object_unref(got);
  fail_unless(gst_query_find_allocation_meta(query, GST_PARENT_BUFFER_META_API_TYPE, nullptr),
              "meta not proposed");
  gst_query_unref(query);

  /* Downstream refusing the serialized query: upstream is told so. */
  g_mutex_lock(&fx->lock);
  fx->on_allocation = [](GstQuery*) { return FALSE; };
  g_mutex_unlock(&fx->lock);
  query = gst_query_new_allocation(fx->down_caps, TRUE);
  fail_if(gst_pad_peer_query(fx->up, query), "a refused ALLOCATION query answered TRUE");
  gst_query_unref(query);

  fixture_free(fx);
  gst_object_unref(pool);
}

GST_END_TEST;

/* A serialized query waits for the data ahead of it, but min thresholds
 * must not hold it (and that data) back. */
GST_START_TEST(test_serialized_query_with_min_threshold) {
  Fixture* fx = fixture_new();
  switch (__i__) {
    case 0:
      g_object_set(fx->queue, "min-threshold-buffers", 5, nullptr);
      break;
    case 1:
      g_object_set(fx->queue, "min-threshold-time", GST_SECOND, nullptr);
      break;
    default:
      g_object_set(fx->queue, "min-threshold-bytes", 1000, nullptr);
      break;
  }
  const bool drain = __i__ == 2;
  start(fx);
  fail_unless_equals_int(push(fx, 0, 0, 10 * kMs), GST_FLOW_OK);
  g_usleep(kSettleUs);
  fail_unless_equals_int(received_buffers(fx), 0);

  gboolean answered = FALSE;
  Worker worker([&] {
    GstQuery* query = drain ? gst_query_new_drain() : gst_query_new_allocation(nullptr, FALSE);
    answered = gst_pad_peer_query(fx->up, query);
    gst_query_unref(query);
  });
  fail_unless(worker.wait(kWaitUs), "the serialized query blocked");
  fail_unless(answered, "downstream's answer was lost");
  assert_sequence(fx,
                  drain ? "stream-start segment 0 Q:drain" : "stream-start segment 0 Q:allocation");

  /* Answered, the query no longer counts: the threshold holds data again. */
  fail_unless_equals_int(push(fx, 1, 10 * kMs, 10 * kMs), GST_FLOW_OK);
  g_usleep(kSettleUs);
  fail_unless_equals_int(received_buffers(fx), 1);

  fixture_free(fx);
}

GST_END_TEST;

/* A serialized query must not be handed back to its caller while the
 * element is still passing it downstream: here FLUSH_START arrives while
 * downstream is answering it. */
GST_START_TEST(test_flush_waits_for_query_in_flight) {
  Fixture* fx = fixture_new();
  std::atomic<bool> caller_returned{false};
  std::atomic<bool> overlapped{false};
  fx->on_allocation = [&](GstQuery* query) {
    /* Hold the query until the flush has reached downstream, then give the
     * caller time to return if it (wrongly) could. */
    wait_until([&] {
      g_mutex_lock(&fx->lock);
      const bool f = fx->flushing;
      g_mutex_unlock(&fx->lock);
      return f;
    });
    wait_until([&] { return caller_returned.load(); }, kSettleUs * 2);
    overlapped = caller_returned.load();
    if (!overlapped) {
      GstAllocationParams params;
      gst_allocation_params_init(&params);
      gst_query_add_allocation_param(query, nullptr, &params);
    }
    return TRUE;
  };
  start(fx);

  Worker query_thread([&] {
    GstQuery* query = gst_query_new_allocation(nullptr, FALSE);
    gst_pad_peer_query(fx->up, query);
    caller_returned = true;
    gst_query_unref(query);
  });
  fail_unless(wait_until([&] {
                g_mutex_lock(&fx->lock);
                const guint n = fx->allocation_queries;
                g_mutex_unlock(&fx->lock);
                return n == 1;
              }),
              "the query never reached downstream");
  Worker flush([&] { gst_pad_push_event(fx->up, gst_event_new_flush_start()); });
  fail_unless(flush.wait(kWaitUs), "FLUSH_START deadlocked");
  fail_unless(query_thread.wait(kWaitUs), "the query never returned");
  fail_if(overlapped.load(), "the query was answered while downstream still held it");
  push_event(fx, gst_event_new_flush_stop(TRUE));

  fixture_free(fx);
}

GST_END_TEST;

/* A serialized query the caller has given up on (the task stopped on
 * NOT_LINKED before reaching it) must not be sent downstream later, when
 * the task restarts: the caller may have freed it by then. (queue 1.22
 * sends it; the reference run checks that it does.) */
GST_START_TEST(test_abandoned_query_not_pushed_later) {
  Fixture* fx = fixture_new();
  start(fx);
  block_downstream(fx, 0);
  fail_unless_equals_int(push(fx, 1), GST_FLOW_OK);

  /* The caller keeps its query alive, so a late use is seen, not a crash. */
  GstQuery* query = gst_query_new_allocation(nullptr, FALSE);
  gboolean answered = TRUE;
  Worker query_thread([&] { answered = gst_pad_peer_query(fx->up, query); });
  fail_if(query_thread.wait(kSettleUs), "the query overtook the buffer ahead of it");

  g_mutex_lock(&fx->lock);
  fx->chain_return = GST_FLOW_NOT_LINKED;
  g_mutex_unlock(&fx->lock);
  open_gate(fx);
  fail_unless(query_thread.wait(kWaitUs),
              "the query caller was not released when the task stopped");
  fail_if(answered, "a query that never reached downstream was answered");

  g_mutex_lock(&fx->lock);
  fx->chain_return = GST_FLOW_OK;
  g_mutex_unlock(&fx->lock);
  fail_unless(gst_pad_push_event(fx->down, gst_event_new_reconfigure()), "RECONFIGURE refused");
  AQ_WAIT_FOR(received_buffers(fx) == 2);
  fail_unless_equals_int(push(fx, 2), GST_FLOW_OK);
  AQ_WAIT_FOR(received_buffers(fx) == 3);
  assert_sequence(fx, queue_differs("an abandoned query: queue 1.22 sends it "
                                    "downstream when its task restarts")
                          ? "stream-start segment 0 1 2"
                          : "stream-start segment 0 1 Q:allocation 2");
  gst_query_unref(query);

  fixture_free(fx);
}

GST_END_TEST;

namespace {

struct Latency {
  gboolean live;
  GstClockTime min;
  GstClockTime max;
};

Latency query_latency(Fixture* fx, gboolean up_live, GstClockTime up_min, GstClockTime up_max) {
  g_mutex_lock(&fx->lock);
  fx->up_live = up_live;
  fx->up_min = up_min;
  fx->up_max = up_max;
  g_mutex_unlock(&fx->lock);
  GstQuery* query = gst_query_new_latency();
  fail_unless(gst_pad_peer_query(fx->down, query), "LATENCY query failed");
  Latency l{FALSE, 0, 0};
  gst_query_parse_latency(query, &l.live, &l.min, &l.max);
  gst_query_unref(query);
  return l;
}

}  // namespace

#define assert_latency(expr, live_, min_, max_)                      \
  G_STMT_START {                                                     \
    const Latency got_ = (expr);                                     \
    fail_unless_equals_int(got_.live, (live_));                      \
    fail_unless_equals_uint64(got_.min, static_cast<guint64>(min_)); \
    fail_unless_equals_uint64(got_.max, static_cast<guint64>(max_)); \
  }                                                                  \
  G_STMT_END

/* Upstream's latency plus what the queue can hold: max grows by the time
 * capacity (max-size-time, or max-size-buffers times the buffer duration),
 * NONE when unknown; min grows by min-threshold-time. A leaky queue never
 * blocks upstream, so as queue does it reports the larger of upstream's max
 * and its own capacity instead of their sum. */
GST_START_TEST(test_latency_query) {
  constexpr GstClockTime NONE = GST_CLOCK_TIME_NONE;
  Fixture* fx = fixture_new();
  start(fx);

  g_object_set(fx->queue, "max-size-time", 100 * kMs, nullptr);
  assert_latency(query_latency(fx, TRUE, 5 * kMs, 20 * kMs), TRUE, 5 * kMs, 120 * kMs);
  /* A non-live upstream adds no latency, so there is nothing to adjust. */
  assert_latency(query_latency(fx, FALSE, 5 * kMs, 20 * kMs), FALSE, 0, NONE);
  /* Unbounded upstream stays unbounded. */
  assert_latency(query_latency(fx, TRUE, 5 * kMs, NONE), TRUE, 5 * kMs, NONE);

  g_object_set(fx->queue, "min-threshold-time", 10 * kMs, nullptr);
  assert_latency(query_latency(fx, TRUE, 5 * kMs, 20 * kMs), TRUE, 15 * kMs, 120 * kMs);
  g_object_set(fx->queue, "min-threshold-time", G_GUINT64_CONSTANT(0), nullptr);

  if (adaptive_only("latency sums past 2^64 - 1: queue 1.22 wraps them and "
                    "raises a g_critical")) {
    /* Sums that would pass 2^64 - 1 saturate just below NONE instead of
     * wrapping or turning into NONE (found by the element fuzz target). */
    g_object_set(fx->queue, "min-threshold-time", G_MAXUINT64, "max-size-time", G_MAXUINT64 - 1,
                 nullptr);
    assert_latency(query_latency(fx, TRUE, 5 * kMs, 20 * kMs), TRUE, NONE - 1, NONE - 1);
    g_object_set(fx->queue, "min-threshold-time", G_GUINT64_CONSTANT(0), "max-size-time", 100 * kMs,
                 nullptr);
  }

  for (const char* leaky : {"upstream", "downstream"}) {
    gst_util_set_object_arg(G_OBJECT(fx->queue), "leaky", leaky);
    assert_latency(query_latency(fx, TRUE, 5 * kMs, 20 * kMs), TRUE, 5 * kMs, 100 * kMs);
    assert_latency(query_latency(fx, TRUE, 5 * kMs, 300 * kMs), TRUE, 5 * kMs, 300 * kMs);
    assert_latency(query_latency(fx, TRUE, 5 * kMs, NONE), TRUE, 5 * kMs, NONE);
  }
  gst_util_set_object_arg(G_OBJECT(fx->queue), "leaky", "no");

  /* No time limit and no buffer duration seen: the capacity in time is
   * unknown. */
  g_object_set(fx->queue, "max-size-time", G_GUINT64_CONSTANT(0), "max-size-buffers", 4, nullptr);
  assert_latency(query_latency(fx, TRUE, 5 * kMs, 20 * kMs), TRUE, 5 * kMs, NONE);

  /* A buffer duration seen: adaptivequeue's capacity in time is 4 buffers
   * of 10 ms; queue knows no time limit. */
  fail_unless_equals_int(push(fx, 0, 0, 10 * kMs), GST_FLOW_OK);
  AQ_WAIT_FOR(received_buffers(fx) == 1);
  const bool adaptive = queue_differs(
      "LATENCY without max-size-time: queue "
      "reports an unbounded max, not capacity x buffer duration");
  assert_latency(query_latency(fx, TRUE, 5 * kMs, 20 * kMs), TRUE, 5 * kMs,
                 adaptive ? 60 * kMs : NONE);
  gst_util_set_object_arg(G_OBJECT(fx->queue), "leaky", "downstream");
  assert_latency(query_latency(fx, TRUE, 5 * kMs, 20 * kMs), TRUE, 5 * kMs,
                 adaptive ? 40 * kMs : NONE);
  assert_latency(query_latency(fx, TRUE, 5 * kMs, 300 * kMs), TRUE, 5 * kMs,
                 adaptive ? 300 * kMs : NONE);
  gst_util_set_object_arg(G_OBJECT(fx->queue), "leaky", "no");
  /* max-size-time, when set, is the limit. */
  g_object_set(fx->queue, "max-size-time", 30 * kMs, nullptr);
  assert_latency(query_latency(fx, TRUE, 5 * kMs, 20 * kMs), TRUE, 5 * kMs, 50 * kMs);
  g_object_set(fx->queue, "max-size-time", G_GUINT64_CONSTANT(0), nullptr);

  /* No limit at all. */
  g_object_set(fx->queue, "max-size-buffers", 0, nullptr);
  assert_latency(query_latency(fx, TRUE, 5 * kMs, 20 * kMs), TRUE, 5 * kMs, NONE);

  fixture_free(fx);
}

GST_END_TEST;

/* ======================= signals and the lock ======================= */

namespace {

struct OverrunProbe {
  std::atomic<int> calls{0};
  std::atomic<guint> level_seen{0};
  std::atomic<bool> stats_read{false};
};

void on_overrun_grow(GstElement* e, OverrunProbe* p) {
  /* Both need the element's lock: a handler called with it held would
   * deadlock here. */
  p->level_seen = uint_prop(e, "current-level-buffers");
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(e), "stats")) {
    GstStructure* st = nullptr;
    g_object_get(e, "stats", &st, nullptr);
    p->stats_read = st != nullptr;
    if (st)
      gst_structure_free(st);
  }
  if (p->calls++ == 0)
    g_object_set(e, "max-size-buffers", 10, nullptr);
}

struct UnderrunProbe {
  std::atomic<int> calls{0};
  std::atomic<guint> level_seen{99};
};

void on_underrun_read(GstElement* e, UnderrunProbe* p) {
  p->level_seen = uint_prop(e, "current-level-buffers");
  p->calls++;
}

}  // namespace

/* Signal handlers run with the lock released: they can read and change
 * properties, and the element re-checks the queue after them (here the
 * handler makes room, so the push that overran does not wait). */
GST_START_TEST(test_signals_emitted_unlocked) {
  Fixture* fx = fixture_new();
  g_object_set(fx->queue, "max-size-buffers", 2, nullptr);
  OverrunProbe over;
  UnderrunProbe under;
  g_signal_connect(fx->queue, "overrun", G_CALLBACK(on_overrun_grow), &over);
  g_signal_connect(fx->queue, "underrun", G_CALLBACK(on_underrun_read), &under);
  start(fx);
  fail_unless(wait_until([&] { return under.calls.load() >= 1; }),
              "underrun handler never returned");
  fail_unless_equals_int(under.level_seen.load(), 0);

  block_downstream(fx, 0);
  fail_unless_equals_int(push(fx, 1), GST_FLOW_OK);
  fail_unless_equals_int(push(fx, 2), GST_FLOW_OK);
  GstFlowReturn ret = GST_FLOW_ERROR;
  Worker pusher([&] { ret = push(fx, 3); });
  fail_unless(pusher.wait(kWaitUs),
              "the overrun handler deadlocked, or its new limit was not re-checked");
  fail_unless_equals_int(ret, GST_FLOW_OK);
  fail_unless_equals_int(over.calls.load(), 1);
  fail_unless_equals_int(over.level_seen.load(), 2);
  if (adaptive_only("stats read from a signal handler: queue has none"))
    fail_unless(over.stats_read.load(), "stats unreadable from the handler");
  fail_unless_equals_int(uint_prop(fx->queue, "max-size-buffers"), 10);
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-buffers"), 3);

  open_gate(fx);
  AQ_WAIT_FOR(received_buffers(fx) == 4);
  assert_sequence(fx, "stream-start segment 0 1 2 3");

  fixture_free(fx);
}

GST_END_TEST;

/* ======================= races ======================= */

namespace {

/* Downstream of test_no_buffer_after_downstream_eos: answers every buffer
 * EOS and counts a buffer that came with no EOS, SEGMENT or STREAM_START
 * since the last EOS it answered. */
struct EosAnswering {
  std::atomic<bool> answered_eos{false};
  std::atomic<guint64> buffers{0};
  std::atomic<guint64> after_eos{0};
};

EosAnswering* eos_answering(GstPad* pad) {
  return static_cast<EosAnswering*>(gst_pad_get_element_private(pad));
}

GstFlowReturn eos_answering_chain(GstPad* pad, GstObject*, GstBuffer* buffer) {
  EosAnswering* down = eos_answering(pad);
  gst_buffer_unref(buffer);
  down->buffers++;
  if (down->answered_eos.exchange(true))
    down->after_eos++;
  return GST_FLOW_EOS;
}

gboolean eos_answering_event(GstPad* pad, GstObject*, GstEvent* event) {
  switch (GST_EVENT_TYPE(event)) {
    case GST_EVENT_EOS:
    case GST_EVENT_SEGMENT:
    case GST_EVENT_STREAM_START:
      eos_answering(pad)->answered_eos = false;
      break;
    default:
      break;
  }
  gst_event_unref(event);
  return TRUE;
}

}  // namespace

/* Downstream answers EOS while upstream pushes as fast as it can, and a new
 * segment resumes the stream, thousands of times: no buffer may reach
 * downstream after its EOS answer before the next segment. Upstream's
 * lock-free path could publish one after the element dropped what it held
 * and before it refused further data (in a fifth to two fifths of the rounds). */
GST_START_TEST(test_no_buffer_after_downstream_eos) {
  if (!adaptive_only("queue 1.22 lets a buffer through now and then, and its task can stay "
                     "paused with upstream waiting on a full queue"))
    return;
  constexpr int kRounds = 3000;
  GstElement* queue = gst_element_factory_make(factory_name(), nullptr);
  ck_assert(queue != nullptr);
  g_object_set(queue, "max-size-buffers", 1000, nullptr);
  EosAnswering down;
  GstPad* up = gst_pad_new("src", GST_PAD_SRC);
  GstPad* sink = gst_pad_new("sink", GST_PAD_SINK);
  gst_pad_set_element_private(sink, &down);
  gst_pad_set_chain_function(sink, eos_answering_chain);
  gst_pad_set_event_function(sink, eos_answering_event);
  GstPad* queue_sink = gst_element_get_static_pad(queue, "sink");
  GstPad* queue_src = gst_element_get_static_pad(queue, "src");
  fail_unless_equals_int(gst_pad_link(up, queue_sink), GST_PAD_LINK_OK);
  fail_unless_equals_int(gst_pad_link(queue_src, sink), GST_PAD_LINK_OK);
  gst_pad_set_active(up, TRUE);
  gst_pad_set_active(sink, TRUE);
  ck_assert(gst_element_set_state(queue, GST_STATE_PLAYING) == GST_STATE_CHANGE_SUCCESS);
  ck_assert(gst_pad_push_event(up, gst_event_new_stream_start("eos-rounds")));
  GstSegment segment;
  gst_segment_init(&segment, GST_FORMAT_TIME);
  ck_assert(gst_pad_push_event(up, gst_event_new_segment(&segment)));

  for (int round = 0; round < kRounds; round++) {
    GstFlowReturn ret;
    do
      ret = gst_pad_push(up, gst_buffer_new());
    while (ret == GST_FLOW_OK);
    fail_unless_equals_int(ret, GST_FLOW_EOS);
    ck_assert(gst_pad_push_event(up, gst_event_new_segment(&segment)));
  }
  ck_assert(gst_element_set_state(queue, GST_STATE_NULL) == GST_STATE_CHANGE_SUCCESS);
  fail_unless(down.buffers.load() >= static_cast<guint64>(kRounds), "%" G_GUINT64_FORMAT " buffers",
              down.buffers.load());
  fail_unless_equals_uint64(down.after_eos.load(), 0);
  gst_object_unref(queue_sink);
  gst_object_unref(queue_src);
  gst_object_unref(up);
  gst_object_unref(sink);
  gst_object_unref(queue);
}
GST_END_TEST;

/* ALLOCATION queries racing FLUSH_START/FLUSH_STOP: every round ends, with
 * either answer, and downstream never holds a query its caller has already
 * got back. */
GST_START_TEST(test_allocation_query_vs_flush) {
  constexpr int kRounds = 500;
  Fixture* fx = fixture_new();
  std::atomic<int> round{0};
  std::atomic<int> returned_round{-1};
  std::atomic<int> overlaps{0};
  fx->on_allocation = [&](GstQuery* query) {
    const int r = round.load();
    /* Vary how long downstream takes, so that the flush lands before,
     * during and after it. */
    g_usleep(static_cast<gulong>((r * 37) % 200));
    if (returned_round.load() == r)
      overlaps++;
    GstAllocationParams params;
    gst_allocation_params_init(&params);
    gst_query_add_allocation_param(query, nullptr, &params);
    return TRUE;
  };
  start(fx);
  GstCaps* caps = gst_caps_from_string("audio/x-opus");

  int answered = 0;
  for (int r = 0; r < kRounds; r++) {
    round = r;
    gboolean res = FALSE;
    Worker query_thread([&] {
      GstQuery* query = gst_query_new_allocation(caps, TRUE);
      res = gst_pad_peer_query(fx->up, query);
      returned_round = r;
      gst_query_unref(query);
    });
    g_usleep(static_cast<gulong>((r * 53) % 300));
    bool flushed = false;
    Worker flush([&] {
      flushed = gst_pad_push_event(fx->up, gst_event_new_flush_start()) &&
                gst_pad_push_event(fx->up, gst_event_new_flush_stop(TRUE));
    });
    fail_unless(flush.wait(kWaitUs), "flush deadlocked in round %d", r);
    fail_unless(query_thread.wait(kWaitUs), "query deadlocked in round %d", r);
    fail_unless(flushed, "flush refused in round %d", r);
    if (res)
      answered++;
  }
  gst_caps_unref(caps);
  fail_unless_equals_int(overlaps.load(), 0);
  GST_INFO("%d of %d queries answered", answered, kRounds);

  /* And the element still works. */
  push_segment(fx);
  fail_unless_equals_int(push(fx, 0), GST_FLOW_OK);
  AQ_WAIT_FOR(received_buffers(fx) == 1);

  fixture_free(fx);
}

GST_END_TEST;

/* FLUSH_STOP racing PAUSED -> READY, many times over: no deadlock, no
 * crash, and the element ends in READY every time. */
GST_START_TEST(test_flush_stop_vs_paused_to_ready) {
  constexpr int kRounds = 200;
  Fixture* fx = fixture_new();
  for (int r = 0; r < kRounds; r++) {
    set_state(fx, GST_STATE_PAUSED);
    fail_unless(gst_pad_push_event(fx->up, gst_event_new_stream_start("aq")),
                "stream-start refused in round %d", r);
    push_segment(fx);
    fail_unless_equals_int(push(fx, static_cast<guint64>(r)), GST_FLOW_OK);
    push_event(fx, gst_event_new_flush_start());

    GstStateChangeReturn change = GST_STATE_CHANGE_FAILURE;
    Worker stopper([&] {
      gst_pad_push_event(fx->up, gst_event_new_flush_stop(TRUE));
      /* Data right behind the flush, as a source would send. */
      GstSegment segment;
      gst_segment_init(&segment, GST_FORMAT_TIME);
      gst_pad_push_event(fx->up, gst_event_new_segment(&segment));
      push(fx, 1000);
    });
    if (r % 2)
      g_usleep(static_cast<gulong>(r % 50));
    Worker state([&] { change = gst_element_set_state(fx->queue, GST_STATE_READY); });
    fail_unless(state.wait(kWaitUs), "PAUSED->READY deadlocked in round %d", r);
    fail_unless(stopper.wait(kWaitUs), "FLUSH_STOP deadlocked in round %d", r);
    fail_unless_equals_int(change, GST_STATE_CHANGE_SUCCESS);
    GstState current = GST_STATE_VOID_PENDING;
    gst_element_get_state(fx->queue, &current, nullptr, 0);
    fail_unless_equals_int(current, GST_STATE_READY);
    /* Reset both neighbours, as their elements would be on going to
     * READY: the flush-stop may have met a deactivated element and never
     * reached downstream. */
    gst_pad_push_event(fx->up, gst_event_new_flush_stop(TRUE));
    fail_unless(gst_pad_set_active(fx->down, FALSE), "cannot deactivate pad");
    fail_unless(gst_pad_set_active(fx->down, TRUE), "cannot activate pad");
    g_mutex_lock(&fx->lock);
    fx->flushing = false;
    g_mutex_unlock(&fx->lock);
  }
  clear_log(fx);

  /* It still works afterwards. */
  start(fx);
  fail_unless_equals_int(push(fx, 0), GST_FLOW_OK);
  AQ_WAIT_FOR(received_buffers(fx) == 1);

  fixture_free(fx);
}

GST_END_TEST;

/* ======================= one CPU ======================= */

namespace {

/* A fixture for the one-CPU tests: started, upstream known not live, at
 * most `max_buffers` buffers. Made with the test thread bound to one CPU
 * (onecpu::BoundToOneCpu): the element reads the mask when it activates,
 * and then neither spins nor wakes upstream for each free slot. */
Fixture* one_cpu_fixture(guint max_buffers) {
  Fixture* fx = fixture_new();
  g_object_set(fx->queue, "max-size-buffers", max_buffers, "max-size-bytes", 0, "max-size-time",
               G_GUINT64_CONSTANT(0), nullptr);
  start(fx);
  const Latency answer = query_latency(fx, FALSE, 0, GST_CLOCK_TIME_NONE);
  fail_if(answer.live, "upstream answered live");
  return fx;
}

}  // namespace

/* Upstream waiting on a full queue wakes when the queue has run dry, where
 * adaptivequeue has one CPU and a non-live upstream (docs/lab/hotpath.md).
 * A downstream that blocks after a removal must not leave the freed slot
 * unused, or a demuxer whose other branch needs the next buffer could hang
 * where it does not with queue, which refills the slot at once. */
GST_START_TEST(test_slot_freed_before_downstream_blocks_is_refilled) {
  const onecpu::BoundToOneCpu one_cpu;
  fail_unless(one_cpu.bound(), "cannot bind the test to one CPU");
  Fixture* fx = one_cpu_fixture(4);
  block_downstream(fx, 0);
  for (guint64 i = 1; i <= 4; i++)
    fail_unless_equals_int(push(fx, i), GST_FLOW_OK);
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-buffers"), 4);
  std::atomic<GstFlowReturn> ret{GST_FLOW_ERROR};
  Worker pusher([fx, &ret] { ret = push(fx, 5); });
  fail_if(pusher.wait(100 * 1000), "a push into a full queue returned");

  /* Buffer 0 passes; the task takes buffer 1 and holds it at the gate. */
  let_one_through(fx);
  fail_unless(wait_until([fx] { return held(fx) == 1 && received_buffers(fx) == 2; }),
              "the task did not take the next buffer");
  fail_unless(pusher.wait(kWaitUs), "the slot freed before downstream blocked stayed unused");
  fail_unless_equals_int(ret.load(), GST_FLOW_OK);
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-buffers"), 4);

  open_gate(fx);
  fail_unless(wait_until([fx] { return received_buffers(fx) == 6; }), "not all buffers arrived");
  assert_sequence(fx, "stream-start segment 0 1 2 3 4 5");
  fixture_free(fx);
}
GST_END_TEST;

/* The same waits, with downstream taking every buffer: the queue runs dry
 * every few buffers, and each time upstream is woken at once. Were it left
 * to its deadline (20 ms), 1,000 buffers through 4 slots would take 250 of
 * them, 5 s; they take milliseconds. */
GST_START_TEST(test_queue_run_dry_wakes_upstream) {
  constexpr guint64 kBuffers = 1000;
  const onecpu::BoundToOneCpu one_cpu;
  fail_unless(one_cpu.bound(), "cannot bind the test to one CPU");
  Fixture* fx = one_cpu_fixture(4);
  const gint64 started = g_get_monotonic_time();
  std::atomic<guint64> pushed{0};
  Worker pusher([fx, &pushed] {
    for (guint64 i = 0; i < kBuffers; i++) {
      if (push(fx, i) != GST_FLOW_OK)
        return;
      pushed++;
    }
  });
  fail_unless(pusher.wait(kWaitUs), "upstream is stuck after %" G_GUINT64_FORMAT " buffers",
              pushed.load());
  fail_unless_equals_uint64(pushed.load(), kBuffers);
  fail_unless(wait_until([fx] { return received_buffers(fx) == kBuffers; }),
              "not all buffers arrived");
  const gint64 took_us = g_get_monotonic_time() - started;
  fail_unless(took_us < 2500 * 1000 * slowdown(), "1,000 buffers took %" G_GINT64_FORMAT " ms",
              took_us / 1000);
  fixture_free(fx);
}
GST_END_TEST;

/* What the batch wait is for: on one CPU with a non-live upstream,
 * upstream waiting on a full queue is woken when the queue runs dry, or
 * at its deadline (20 ms), not at each removal. Downstream takes one buffer
 * at a time and pauses, leaving upstream the CPU; queue refills each freed
 * slot at once. A full queue read after a removal means upstream refilled
 * it: after the queue ran dry (at most once per 4 removals) or at a
 * deadline (at most once per 20 ms), so the bound holds however slow the
 * machine, and a wake per removal exceeds it. */
GST_START_TEST(test_upstream_refills_after_a_batch) {
  if (!adaptive_only("queue refills each freed slot at once"))
    return;
  constexpr guint kCapacity = 4;
  constexpr guint kSteps = 40;
  const onecpu::BoundToOneCpu one_cpu;
  fail_unless(one_cpu.bound(), "cannot bind the test to one CPU");
  Fixture* fx = one_cpu_fixture(kCapacity);
  block_downstream(fx, 0);
  Worker pusher([fx] {
    for (guint64 i = 1; i <= kSteps + kCapacity; i++)
      if (push(fx, i) != GST_FLOW_OK)
        return;
  });
  fail_unless(
      wait_until([fx] { return uint_prop(fx->queue, "current-level-buffers") == kCapacity; }),
      "the queue did not fill");
  const gint64 started = g_get_monotonic_time();
  guint refilled = 0;
  for (guint k = 1; k <= kSteps; k++) {
    let_one_through(fx);
    fail_unless(wait_until([fx, k] { return held(fx) == 1 && received_buffers(fx) == k + 1; }),
                "the task did not take buffer %u", k);
    g_usleep(1000);
    if (uint_prop(fx->queue, "current-level-buffers") == kCapacity)
      refilled++;
  }
  const gint64 took_ms = (g_get_monotonic_time() - started) / 1000;
  const guint bound = kSteps / kCapacity + static_cast<guint>(took_ms / 20) + 2;
  fail_unless(refilled <= bound,
              "upstream refilled the queue after %u of %u removals, in %" G_GINT64_FORMAT
              " ms (at most %u)",
              refilled, kSteps, took_ms, bound);
  open_gate(fx);
  fail_unless(pusher.wait(kWaitUs), "upstream is stuck");
  fail_unless(wait_until([fx] { return received_buffers(fx) == 1 + kSteps + kCapacity; }),
              "not all buffers arrived");
  fixture_free(fx);
}
GST_END_TEST;

/* ======================= drop-in: what a queue user sets ======================= */

namespace {

/* Sets adaptation on, for adaptivequeue, with a load it cannot read: ticks
 * run but never resize, so only the test moves the capacity. */
void adapt_without_load(Fixture* fx) {
  if (adaptive_only("queue does not adapt"))
    g_object_set(fx->queue, "adaptive", TRUE, "proc-root", "/nonexistent", nullptr);
}

/* LATENCY messages posted since the last call. */
size_t new_latency_messages(Fixture* fx) {
  fx->bus->drain();
  const size_t n = fx->bus->latency_messages;
  fx->bus->latency_messages = 0;
  return n;
}

void count_notify(GObject*, GParamSpec*, std::atomic<int>* count) {
  (*count)++;
}

}  // namespace

const guint kExplicitSizes[] = {0, 2, 100, 1000};

/* max-size-buffers means what it means on queue, at once, whatever the
 * adaptive bounds: 0 is no buffer limit, and 2, 100 and 1000 are exact.
 * On adaptivequeue, a size outside min-buffers..max-buffers moves the
 * nearer bound to it, with notify. */
GST_START_TEST(test_max_size_buffers_exact) {
  const guint size = kExplicitSizes[__i__];
  Fixture* fx = fixture_new();
  adapt_without_load(fx);
  std::atomic<int> min_notes{0}, max_notes{0};
  const bool bounds = adaptive_only("queue has no adaptation bounds");
  if (bounds) {
    g_signal_connect(fx->queue, "notify::min-buffers", G_CALLBACK(count_notify), &min_notes);
    g_signal_connect(fx->queue, "notify::max-buffers", G_CALLBACK(count_notify), &max_notes);
  }
  g_object_set(fx->queue, "max-size-buffers", size, nullptr);
  fail_unless_equals_int(uint_prop(fx->queue, "max-size-buffers"), size);
  if (bounds) {
    fail_unless_equals_int(uint_prop(fx->queue, "min-buffers"), size > 0 ? std::min(size, 4u) : 4);
    fail_unless_equals_int(uint_prop(fx->queue, "max-buffers"), std::max(size, 32u));
    fail_unless_equals_int(min_notes.load(), size == 2 ? 1 : 0);
    fail_unless_equals_int(max_notes.load(), size >= 100 ? 1 : 0);
  }
  start(fx);
  block_downstream(fx, 0);
  /* With no limit, far more than any bound fits. */
  const guint fits = size > 0 ? size : 2000;
  for (guint i = 1; i <= fits; i++)
    fail_unless_equals_int(push(fx, i), GST_FLOW_OK);
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-buffers"), fits);
  if (size > 0) {
    /* One more waits for room. */
    Worker pusher([fx, size] { push(fx, size + 1); });
    fail_if(pusher.wait(kSettleUs), "a push past %u buffers did not wait", size);
    open_gate(fx);
    fail_unless(pusher.wait(kWaitUs), "the waiting push never returned");
  }
  open_gate(fx);
  AQ_WAIT_FOR(received_buffers(fx) == fits + (size > 0 ? 2 : 1));
  fixture_free(fx);
}

GST_END_TEST;

/* The same gst-launch line gives the same element whatever the order of
 * its properties: each queue property, in every order relative to
 * adaptive, min-buffers and max-buffers. adaptivequeue only: queue has
 * no adaptation properties. */
GST_START_TEST(test_property_order) {
  if (!adaptive_only("queue has no adaptation properties"))
    return;
  const std::vector<std::string> queue_settings = {"max-size-buffers=0",
                                                   "max-size-buffers=2",
                                                   "max-size-buffers=10",
                                                   "max-size-buffers=100",
                                                   "max-size-bytes=1000",
                                                   "max-size-time=5000000",
                                                   "min-threshold-buffers=3",
                                                   "min-threshold-bytes=10",
                                                   "min-threshold-time=1000",
                                                   "leaky=downstream",
                                                   "silent=true",
                                                   "flush-on-eos=true"};
  const char* read_back[] = {
      "max-size-buffers",    "max-size-bytes",     "max-size-time", "min-threshold-buffers",
      "min-threshold-bytes", "min-threshold-time", "leaky",         "silent",
      "flush-on-eos",        "adaptive",           "min-buffers",   "max-buffers"};
  for (const char* adaptive : {"adaptive=false", "adaptive=true"}) {
    for (const std::string& setting : queue_settings) {
      std::vector<std::string> parts = {setting, adaptive, "min-buffers=8", "max-buffers=12"};
      std::sort(parts.begin(), parts.end());
      std::string expected;
      do {
        std::string line = "adaptivequeue";
        for (const std::string& p : parts)
          line += " " + p;
        GError* error = nullptr;
        GstElement* e = gst_parse_launch(line.c_str(), &error);
        fail_unless(e != nullptr && error == nullptr, "%s: %s", line.c_str(),
                    error ? error->message : "no element");
        std::string state;
        for (const char* name : read_back) {
          GValue v = G_VALUE_INIT;
          GParamSpec* spec = g_object_class_find_property(G_OBJECT_GET_CLASS(e), name);
          g_value_init(&v, spec->value_type);
          g_object_get_property(G_OBJECT(e), name, &v);
          gchar* text = gst_value_serialize(&v);
          state += std::string(name) + "=" + text + " ";
          g_free(text);
          g_value_unset(&v);
        }
        gst_object_unref(e);
        if (expected.empty())
          expected = state;
        fail_unless(state == expected, "%s\n  gives %s\n  not %s", line.c_str(), state.c_str(),
                    expected.c_str());
      } while (std::next_permutation(parts.begin(), parts.end()));
    }
  }
}

GST_END_TEST;

/* max-size-bytes and max-size-time default to queue's 10 MiB and 1 s, and
 * are hard ceilings over the buffer count, adaptive or not. */
GST_START_TEST(test_default_byte_and_time_limits) {
  Fixture* fx = fixture_new();
  adapt_without_load(fx);
  fail_unless_equals_int(uint_prop(fx->queue, "max-size-bytes"), 10485760);
  fail_unless_equals_uint64(uint64_prop(fx->queue, "max-size-time"), GST_SECOND);
  start(fx);
  close_gate(fx);
  const gsize mib = 1024 * 1024;
  fail_unless_equals_int(gst_pad_push(fx->up, make_buffer(0, 0, 0, mib)), GST_FLOW_OK);
  AQ_WAIT_FOR(held(fx) == 1);
  for (guint i = 1; i <= 10; i++)
    fail_unless_equals_int(gst_pad_push(fx->up, make_buffer(i, 0, 0, mib)), GST_FLOW_OK);
  Worker bytes([fx] { gst_pad_push(fx->up, make_buffer(11, 0, 0, mib)); });
  fail_if(bytes.wait(kSettleUs), "an 11th MiB did not wait");
  open_gate(fx);
  fail_unless(bytes.wait(kWaitUs), "the waiting push never returned");
  AQ_WAIT_FOR(received_buffers(fx) == 12);

  /* 200 ms buffers: five fill a second. */
  close_gate(fx);
  const GstClockTime d = 200 * kMs;
  fail_unless_equals_int(push(fx, 20, 0, d), GST_FLOW_OK);
  AQ_WAIT_FOR(held(fx) == 1);
  for (guint i = 1; i <= 5; i++)
    fail_unless_equals_int(push(fx, 20 + i, i * d, d), GST_FLOW_OK);
  fail_unless_equals_uint64(uint64_prop(fx->queue, "current-level-time"), GST_SECOND);
  Worker time([fx, d] { push(fx, 26, 6 * d, d); });
  fail_if(time.wait(kSettleUs), "a push past 1 s did not wait");
  open_gate(fx);
  fail_unless(time.wait(kWaitUs), "the waiting push never returned");
  fixture_free(fx);
}

GST_END_TEST;

/* Lowering a limit with leaky=downstream drops the oldest buffers at once,
 * as queue does, until the queue is no longer full. */
GST_START_TEST(test_lowering_limit_leaks_at_once) {
  const char* limits[] = {"max-size-buffers", "max-size-bytes", "max-size-time"};
  const char* limit = limits[__i__];
  Fixture* fx = fixture_new();
  adapt_without_load(fx);
  gst_util_set_object_arg(G_OBJECT(fx->queue), "leaky", "downstream");
  start(fx);
  block_downstream(fx, 0, 0, 10 * kMs);
  for (guint i = 1; i <= 5; i++)
    fail_unless_equals_int(gst_pad_push(fx->up, make_buffer(i, i * 10 * kMs, 10 * kMs, 100)),
                           GST_FLOW_OK);
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-buffers"), 5);
  switch (__i__) {
    case 0:
      g_object_set(fx->queue, limit, 3u, nullptr);
      break;
    case 1:
      g_object_set(fx->queue, limit, 300u, nullptr);
      break;
    default:
      g_object_set(fx->queue, limit, 30 * kMs, nullptr);
      break;
  }
  /* Full means at the limit, so two are left, the newest. */
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-buffers"), 2);
  open_gate(fx);
  AQ_WAIT_FOR(received_buffers(fx) == 3);
  assert_sequence(fx, "stream-start segment 0 4D 5");
  fixture_free(fx);
}

GST_END_TEST;

/* A new adaptation-interval takes effect at once: the pending tick is
 * rescheduled, with no burst of catch-up ticks. adaptivequeue only. */
GST_START_TEST(test_interval_takes_effect_at_once) {
  if (!adaptive_only("queue has no ticks"))
    return;
  Fixture* fx = fixture_new();
  g_object_set(fx->queue, "adaptation-interval", 60 * GST_SECOND, nullptr);
  start(fx);
  g_usleep(kSettleUs);
  fail_unless_equals_uint64(Stats(fx->queue).u64("ticks"), 0);

  g_object_set(fx->queue, "adaptation-interval", 50 * kMs, nullptr);
  AQ_WAIT_FOR(Stats(fx->queue).u64("ticks") >= 1);
  const guint64 before = Stats(fx->queue).u64("ticks");
  const gint64 start_us = g_get_monotonic_time();
  g_usleep(G_USEC_PER_SEC / 2);
  const guint64 ticks = Stats(fx->queue).u64("ticks") - before;
  const gint64 elapsed_ms = (g_get_monotonic_time() - start_us) / 1000;
  /* At most one per 50 ms, plus the one that may be due at either end. */
  fail_unless(ticks <= static_cast<guint64>(elapsed_ms / 50 + 2),
              "%" G_GUINT64_FORMAT " ticks in %" G_GINT64_FORMAT " ms", ticks, elapsed_ms);

  /* Back to a minute: the pending tick moves a minute after the last. */
  g_object_set(fx->queue, "adaptation-interval", 60 * GST_SECOND, nullptr);
  const guint64 settled = Stats(fx->queue).u64("ticks");
  g_usleep(kSettleUs * 2);
  fail_unless(Stats(fx->queue).u64("ticks") <= settled + 1, "ticks went on");
  fixture_free(fx);
}

GST_END_TEST;

/* A min threshold lowered while it holds data back wakes the task, which
 * pushes at once, as queue's does. */
GST_START_TEST(test_lowered_threshold_releases) {
  Fixture* fx = fixture_new();
  g_object_set(fx->queue, "min-threshold-buffers", 5, nullptr);
  start(fx);
  fail_unless_equals_int(push(fx, 0), GST_FLOW_OK);
  fail_unless_equals_int(push(fx, 1), GST_FLOW_OK);
  g_usleep(kSettleUs);
  fail_unless_equals_int(received_buffers(fx), 0);
  g_object_set(fx->queue, "min-threshold-buffers", 0, nullptr);
  AQ_WAIT_FOR(received_buffers(fx) == 2);
  fixture_free(fx);
}

GST_END_TEST;

/* An empty buffer list moves upstream's side as queue 1.22 does, from its
 * position: a time level that a removal zeroed reads again (differential,
 * seed 500001097). Since 1.24 a list without timestamps moves nothing. */
GST_START_TEST(test_empty_list_moves_time_level) {
  Fixture* fx = fixture_new();
  g_object_set(fx->queue, "min-threshold-time", 30 * kMs, nullptr);
  start(fx);
  close_gate(fx);
  fail_unless_equals_int(push(fx, 0, 0, 10 * kMs), GST_FLOW_OK);
  /* Queued last, the GAP drains buffer 0, which downstream then holds: its
   * removal leaves no buffer, so the level reads 0 with the GAP queued. */
  push_event(fx, gst_event_new_gap(30 * kMs, 10 * kMs));
  AQ_WAIT_FOR(held(fx) == 1);
  fail_unless_equals_uint64(uint64_prop(fx->queue, "current-level-time"), 0);
  fail_unless_equals_int(gst_pad_push_list(fx->up, gst_buffer_list_new()), GST_FLOW_OK);
  /* Upstream's side at the GAP's end, 40 ms; the src side at 10 ms. */
  fail_unless_equals_uint64(uint64_prop(fx->queue, "current-level-time"),
                            queue_times_from_first_buffer() ? 0 : 30 * kMs);
  open_gate(fx);
  fixture_free(fx);
}

GST_END_TEST;

/* Stopped at READY, ticks stay stopped: a new interval set then schedules
 * none until the element starts again. */
GST_START_TEST(test_no_ticks_after_stop) {
  if (!adaptive_only("queue has no ticks"))
    return;
  Fixture* fx = fixture_new();
  g_object_set(fx->queue, "adaptation-interval", 60 * GST_SECOND, nullptr);
  start(fx);
  set_state(fx, GST_STATE_READY);
  const guint64 before = Stats(fx->queue).u64("ticks");
  g_object_set(fx->queue, "adaptation-interval", 10 * kMs, nullptr);
  g_usleep(kSettleUs * 2);
  fail_unless_equals_uint64(Stats(fx->queue).u64("ticks"), before);
  /* Started again, the new interval ticks. */
  set_state(fx, GST_STATE_PLAYING);
  AQ_WAIT_FOR(Stats(fx->queue).u64("ticks") > before);
  fixture_free(fx);
}

GST_END_TEST;

/* The element posts LATENCY only when the pipeline must act: when its
 * minimum changes, or its maximum falls below the latency the pipeline
 * configured; never for a capacity that grows. queue posts none. */
GST_START_TEST(test_latency_message_only_when_needed) {
  Fixture* fx = fixture_new();
  g_object_set(fx->queue, "max-size-time", G_GUINT64_CONSTANT(0), "max-size-buffers", 4u, nullptr);
  const bool ticking = adaptive_only("queue has no ticks and posts no LATENCY");
  if (ticking)
    g_object_set(fx->queue, "adaptation-interval", 20 * kMs, nullptr);
  start(fx);
  fail_unless_equals_int(push(fx, 0, 0, 10 * kMs), GST_FLOW_OK);
  AQ_WAIT_FOR(received_buffers(fx) == 1);
  query_latency(fx, TRUE, 5 * kMs, 20 * kMs);
  fail_unless(gst_pad_push_event(fx->down, gst_event_new_latency(50 * kMs)),
              "LATENCY event refused");
  auto settle = [fx, ticking] {
    if (ticking) {
      const guint64 t = Stats(fx->queue).u64("ticks");
      AQ_WAIT_FOR(Stats(fx->queue).u64("ticks") >= t + 3);
    } else {
      g_usleep(kSettleUs);
    }
  };
  settle();
  new_latency_messages(fx);

  /* Growing: the maximum only rises. */
  g_object_set(fx->queue, "max-size-buffers", 8u, nullptr);
  settle();
  fail_unless_equals_int(new_latency_messages(fx), 0);

  /* 2 buffers of 10 ms: 20 + 20 ms is below the 50 ms configured. */
  g_object_set(fx->queue, "max-size-buffers", 2u, nullptr);
  settle();
  settle();
  fail_unless_equals_int(new_latency_messages(fx), ticking ? 1 : 0);

  /* A new minimum. */
  g_object_set(fx->queue, "min-threshold-time", 5 * kMs, nullptr);
  settle();
  settle();
  fail_unless_equals_int(new_latency_messages(fx), ticking ? 1 : 0);
  fixture_free(fx);
}

GST_END_TEST;

/* Downstream fails fatally on the first buffer of a stream whose EOS is
 * queued: the element posts the error and pushes EOS itself. What follows
 * is the `queue` of the running GStreamer's (both elements are checked
 * against it):
 * - since 1.24, queue drops what it holds on the fatal error, and a new
 *   STREAM_START starts the new stream at once: the next push is OK (and
 *   held: the flush restored min-threshold-buffers, which EOS had lifted);
 * - 1.22 keeps the old stream: a new STREAM_START restarts the task, which
 *   drops the old buffers (downstream has had EOS), pauses on the old EOS
 *   and answers EOS to pushes until the next SEGMENT, which starts the new
 *   stream. */
GST_START_TEST(test_fatal_error_after_eos) {
  Fixture* fx = fixture_new();
  g_object_set(fx->queue, "min-threshold-buffers", 10u, nullptr);
  start(fx);
  g_mutex_lock(&fx->lock);
  fx->chain_return = GST_FLOW_ERROR;
  g_mutex_unlock(&fx->lock);
  for (guint i = 0; i < 3; i++)
    fail_unless_equals_int(push(fx, i, i * kMs, kMs), GST_FLOW_OK);
  push_event(fx, gst_event_new_eos());
  AQ_WAIT_FOR(received_events(fx, GST_EVENT_EOS) == 1);
  fx->bus->drain();
  fail_unless_equals_int(fx->bus->errors.size(), 1);
  fail_unless_equals_int(received_buffers(fx), 1);
  /* The two buffers behind the failed one: dropped since 1.24, held on
   * 1.22. */
  const bool drops = queue_drops_on_fatal_error();
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-buffers"), drops ? 0 : 2);
  g_mutex_lock(&fx->lock);
  fx->chain_return = GST_FLOW_OK;
  g_mutex_unlock(&fx->lock);

  push_event(fx, gst_event_new_stream_start("next"));
  AQ_WAIT_FOR(uint_prop(fx->queue, "current-level-buffers") == 0);
  g_usleep(kSettleUs);
  fail_unless_equals_int(received_buffers(fx), 1);
  if (drops) {
    push_segment(fx);
    fail_unless_equals_int(push(fx, 10, 10 * kMs, kMs), GST_FLOW_OK);
    AQ_WAIT_FOR(uint_prop(fx->queue, "current-level-buffers") == 1);
    g_usleep(kSettleUs);
    fail_unless_equals_int(received_buffers(fx), 1);
    /* The new stream's EOS lifts the threshold again. */
    push_event(fx, gst_event_new_eos());
    AQ_WAIT_FOR(received_buffers(fx) == 2);
  } else {
    fail_unless_equals_int(push(fx, 10, 10 * kMs, kMs), GST_FLOW_EOS);
    /* The new stream's SEGMENT ends the old EOS. */
    push_segment(fx);
    fail_unless_equals_int(push(fx, 10, 10 * kMs, kMs), GST_FLOW_OK);
    if (queue_differs("queue 1.22 takes the new stream but leaves its task paused"))
      AQ_WAIT_FOR(received_buffers(fx) == 2);
  }
  fixture_free(fx);
}

GST_END_TEST;

/* A property value the element replaces is logged and notified, never
 * changed silently: an empty proc-root reads /proc. adaptivequeue only. */
GST_START_TEST(test_replaced_value_notified) {
  if (!adaptive_only("queue has no proc-root"))
    return;
  Fixture* fx = fixture_new();
  std::atomic<int> notes{0};
  g_signal_connect(fx->queue, "notify::proc-root", G_CALLBACK(count_notify), &notes);
  g_object_set(fx->queue, "proc-root", "", nullptr);
  gchar* root = nullptr;
  g_object_get(fx->queue, "proc-root", &root, nullptr);
  fail_unless_equals_string(root, "/proc");
  g_free(root);
  fail_unless_equals_int(notes.load(), 1);

  /* A capacity that a lowered max-buffers moves is notified too. */
  std::atomic<int> size_notes{0};
  g_signal_connect(fx->queue, "notify::max-size-buffers", G_CALLBACK(count_notify), &size_notes);
  const guint size = uint_prop(fx->queue, "max-size-buffers");
  g_object_set(fx->queue, "max-buffers", size - 1, nullptr);
  fail_unless_equals_int(uint_prop(fx->queue, "max-size-buffers"), size - 1);
  fail_unless_equals_int(size_notes.load(), 1);
  fixture_free(fx);
}

GST_END_TEST;

/* ---- answers: queries, counters and read-back, with data held ---- */

/* A POSITION or DURATION query from downstream; -1 if refused. */
gint64 query_upstream(Fixture* fx, GstQueryType type, GstFormat format) {
  GstQuery* query =
      type == GST_QUERY_POSITION ? gst_query_new_position(format) : gst_query_new_duration(format);
  gint64 value = -1;
  if (gst_pad_peer_query(fx->down, query)) {
    if (type == GST_QUERY_POSITION)
      gst_query_parse_position(query, nullptr, &value);
    else
      gst_query_parse_duration(query, nullptr, &value);
  }
  gst_query_unref(query);
  return value;
}

/* Which side answered a custom query sent from `pad`'s peer; "" if none. */
std::string custom_answer(GstPad* pad) {
  GstQuery* query = gst_query_new_custom(GST_QUERY_CUSTOM, gst_structure_new_empty(kCustomQuery));
  std::string side;
  if (gst_pad_peer_query(pad, query)) {
    const gchar* by = gst_structure_get_string(gst_query_get_structure(query), "answered-by");
    side = by ? by : "?";
  }
  gst_query_unref(query);
  return side;
}

/* Every query the element answers without queueing it, answered the same
 * with data held as without, and at once: POSITION upstream is ahead of
 * the src pad by what the queue holds, in bytes and in time (never below
 * 0); SCHEDULING is push only; DURATION, CAPS, ACCEPT_CAPS and custom
 * queries pass through untouched in both directions. */
GST_START_TEST(test_queries_with_data_held) {
  Fixture* fx = fixture_new();
  fx->down_caps = gst_caps_from_string("audio/x-raw, rate=(int)48000");
  start(fx);

  auto check_passthrough = [fx]() {
    fail_unless_equals_int64(query_upstream(fx, GST_QUERY_DURATION, GST_FORMAT_BYTES), 5000);
    fail_unless_equals_int64(query_upstream(fx, GST_QUERY_DURATION, GST_FORMAT_TIME),
                             10 * GST_SECOND);
    /* Named: Check keeps the pointer past the temporary's life. */
    const std::string from_upstream = custom_answer(fx->down);
    const std::string from_downstream = custom_answer(fx->up);
    fail_unless_equals_string(from_upstream.c_str(), "upstream");
    fail_unless_equals_string(from_downstream.c_str(), "downstream");
    GstCaps* caps = gst_pad_peer_query_caps(fx->up, nullptr);
    fail_unless(gst_caps_is_equal(caps, fx->down_caps), "caps %" GST_PTR_FORMAT, caps);
    gst_caps_unref(caps);
    fail_unless(gst_pad_peer_query_accept_caps(fx->up, fx->down_caps), "caps refused");
    /* The src pad is driven by the task: push only, whatever upstream
     * offers (its pull mode and seekable flag do not pass). */
    GstQuery* query = gst_query_new_scheduling();
    fail_unless(gst_pad_peer_query(fx->down, query), "SCHEDULING refused");
    GstSchedulingFlags flags;
    gst_query_parse_scheduling(query, &flags, nullptr, nullptr, nullptr);
    fail_unless_equals_int(flags, 0);
    fail_unless_equals_int(gst_query_get_n_scheduling_modes(query), 1);
    fail_unless(gst_query_has_scheduling_mode(query, GST_PAD_MODE_PUSH), "no push mode");
    gst_query_unref(query);
  };

  /* Nothing held: upstream's own answers. */
  fail_unless_equals_int64(query_upstream(fx, GST_QUERY_POSITION, GST_FORMAT_BYTES), 1000);
  fail_unless_equals_int64(query_upstream(fx, GST_QUERY_POSITION, GST_FORMAT_TIME),
                           500 * GST_MSECOND);
  fail_unless_equals_int64(query_upstream(fx, GST_QUERY_POSITION, GST_FORMAT_DEFAULT), 1000);
  check_passthrough();

  /* One buffer downstream, three held: 48 bytes and 30 ms. */
  block_downstream(fx, 0, 0, 10 * kMs);
  for (guint64 i = 1; i <= 3; i++)
    fail_unless_equals_int(push(fx, i, i * 10 * kMs, 10 * kMs), GST_FLOW_OK);
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-bytes"), 3 * kBufferSize);
  fail_unless_equals_uint64(uint64_prop(fx->queue, "current-level-time"), 30 * kMs);
  fail_unless_equals_int64(query_upstream(fx, GST_QUERY_POSITION, GST_FORMAT_BYTES),
                           1000 - 3 * kBufferSize);
  fail_unless_equals_int64(query_upstream(fx, GST_QUERY_POSITION, GST_FORMAT_TIME),
                           470 * GST_MSECOND);
  /* A format the queue does not count in is not adjusted. */
  fail_unless_equals_int64(query_upstream(fx, GST_QUERY_POSITION, GST_FORMAT_DEFAULT), 1000);
  check_passthrough();

  /* Upstream's position behind what is held: 0, not negative. */
  g_mutex_lock(&fx->lock);
  fx->up_position[0] = 20;
  fx->up_position[1] = 10 * GST_MSECOND;
  g_mutex_unlock(&fx->lock);
  fail_unless_equals_int64(query_upstream(fx, GST_QUERY_POSITION, GST_FORMAT_BYTES), 0);
  fail_unless_equals_int64(query_upstream(fx, GST_QUERY_POSITION, GST_FORMAT_TIME), 0);

  /* Drained, the answers are upstream's again. */
  open_gate(fx);
  AQ_WAIT_FOR(received_buffers(fx) == 4);
  AQ_WAIT_FOR(uint_prop(fx->queue, "current-level-bytes") == 0 &&
              uint64_prop(fx->queue, "current-level-time") == 0);
  fail_unless_equals_int64(query_upstream(fx, GST_QUERY_POSITION, GST_FORMAT_BYTES), 20);
  fail_unless_equals_int64(query_upstream(fx, GST_QUERY_POSITION, GST_FORMAT_TIME),
                           10 * GST_MSECOND);
  check_passthrough();
  fixture_free(fx);
}

GST_END_TEST;

/* Pushes on upstream's lock-free path count in the highest level too: read
 * while they wait, and after a flush dropped them unread. */
GST_START_TEST(test_max_level_with_lock_free_pushes) {
  if (!adaptive_only("queue has no stats"))
    return;
  Fixture* fx = fixture_new();
  start(fx);
  block_downstream(fx, 0);
  for (guint i = 1; i < 5; i++)
    fail_unless_equals_int(push(fx, i), GST_FLOW_OK);
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-buffers"), 4);
  fail_unless_equals_int(Stats(fx->queue).u("max-level-buffers"), 4);
  for (guint i = 5; i < 7; i++)
    fail_unless_equals_int(push(fx, i), GST_FLOW_OK);
  push_event(fx, gst_event_new_flush_start());
  push_event(fx, gst_event_new_flush_stop(TRUE));
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-buffers"), 0);
  fail_unless_equals_int(Stats(fx->queue).u("max-level-buffers"), 6);
  fixture_free(fx);
}

GST_END_TEST;

/* A push under the lock (notify-levels takes every push there) counts in
 * the highest level at once, before the task removes anything. */
GST_START_TEST(test_max_level_raised_by_locked_push) {
  if (!adaptive_only("queue has no stats"))
    return;
  Fixture* fx = fixture_new();
  g_object_set(fx->queue, "notify-levels", TRUE, nullptr);
  start(fx);
  block_downstream(fx, 0);
  for (guint i = 1; i < 5; i++)
    fail_unless_equals_int(push(fx, i), GST_FLOW_OK);
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-buffers"), 4);
  fail_unless_equals_int(Stats(fx->queue).u("max-level-buffers"), 4);
  open_gate(fx);
  fixture_free(fx);
}

GST_END_TEST;

/* Every counter counts buffers, a list by its length, through both of
 * upstream's paths (the queue not full, and full): buffers-pushed, drops
 * in both leaky modes, max-level-buffers; overruns count pushes that found
 * the queue full, underruns the times the task found it empty. */
GST_START_TEST(test_counters_with_buffer_lists) {
  if (!adaptive_only("the stats structure")) {
    return;
  }
  Fixture* fx = fixture_new();
  g_object_set(fx->queue, "max-size-buffers", 6, "leaky", GST_ADAPTIVE_QUEUE_LEAK_UPSTREAM,
               nullptr);
  start(fx);
  auto list_of = [](guint64 first, guint n) {
    GstBufferList* list = gst_buffer_list_new();
    for (guint i = 0; i < n; i++)
      gst_buffer_list_add(list, make_buffer(first + i));
    return list;
  };

  block_downstream(fx, 0);
  const guint64 underruns = Stats(fx->queue).u64("underruns");
  fail_unless_equals_int(gst_pad_push_list(fx->up, list_of(1, 4)), GST_FLOW_OK);
  /* Not full at 4: the list of 3 enters, to 7. */
  fail_unless_equals_int(gst_pad_push_list(fx->up, list_of(5, 3)), GST_FLOW_OK);
  /* Full: leaky=upstream drops the whole incoming list. */
  fail_unless_equals_int(gst_pad_push_list(fx->up, list_of(8, 2)), GST_FLOW_OK);
  {
    Stats st(fx->queue);
    fail_unless_equals_int(st.u("current-level-buffers"), 7);
    fail_unless_equals_uint64(st.u64("drops"), 2);
    fail_unless_equals_uint64(st.u64("overruns"), 1);
    fail_unless_equals_uint64(st.u64("buffers-pushed"), 1);
  }

  /* leaky=downstream: a list that finds the queue full pushes out whole
   * items from the head, the list of 4 first. */
  g_object_set(fx->queue, "leaky", GST_ADAPTIVE_QUEUE_LEAK_DOWNSTREAM, nullptr);
  fail_unless_equals_int(gst_pad_push_list(fx->up, list_of(10, 2)), GST_FLOW_OK);
  {
    Stats st(fx->queue);
    fail_unless_equals_int(st.u("current-level-buffers"), 5);
    fail_unless_equals_uint64(st.u64("drops"), 6);
    fail_unless_equals_uint64(st.u64("overruns"), 2);
  }

  open_gate(fx);
  AQ_WAIT_FOR(received_buffers(fx) == 6);
  AQ_WAIT_FOR(Stats(fx->queue).u64("underruns") == underruns + 1);
  assert_sequence(fx, "stream-start segment 0 [5D 6 7] [10D 11]");
  Stats st(fx->queue);
  fail_unless_equals_uint64(st.u64("buffers-pushed"), 6);
  fail_unless_equals_uint64(st.u64("drops"), 6);
  fail_unless_equals_uint64(st.u64("overruns"), 2);
  fail_unless_equals_int(st.u("max-level-buffers"), 7);
  fail_unless_equals_int(st.u("current-level-buffers"), 0);
  fixture_free(fx);
}

GST_END_TEST;

/* What a set property reads back: right after the set, after EOS, and
 * after each state change up and down; the levels follow the data. */
GST_START_TEST(test_property_read_back) {
  Fixture* fx = fixture_new();
  g_object_set(fx->queue, "max-size-buffers", 7, "max-size-bytes", 1234, "max-size-time",
               3 * GST_SECOND, "min-threshold-buffers", 2, "min-threshold-bytes", 16,
               "min-threshold-time", 5 * kMs, "silent", TRUE, nullptr);
  gst_util_set_object_arg(G_OBJECT(fx->queue), "leaky", "downstream");
  const bool adaptive = adaptive_only("adaptivequeue's own properties");
  if (adaptive)
    g_object_set(fx->queue, "adaptation-interval", 70 * kMs, "trim-period", 300 * kMs, "cpu-weight",
                 0.25, "demand-headroom", 1.5, "min-buffers", 3, "max-buffers", 40, nullptr);

  /* EOS clears the thresholds so the queue drains, and they read back 0
   * until a flush (here: PAUSED -> READY) restores them, as on queue. */
  bool thresholds = true;
  auto check = [fx, adaptive, &thresholds](const char* when, guint level) {
    fail_unless(uint_prop(fx->queue, "max-size-buffers") == 7, "%s: max-size-buffers", when);
    fail_unless(uint_prop(fx->queue, "max-size-bytes") == 1234, "%s: max-size-bytes", when);
    fail_unless(uint64_prop(fx->queue, "max-size-time") == 3 * GST_SECOND, "%s: max-size-time",
                when);
    fail_unless(uint_prop(fx->queue, "min-threshold-buffers") == (thresholds ? 2u : 0u),
                "%s: min-threshold-buffers", when);
    fail_unless(uint_prop(fx->queue, "min-threshold-bytes") == (thresholds ? 16u : 0u),
                "%s: min-threshold-bytes", when);
    fail_unless(uint64_prop(fx->queue, "min-threshold-time") == (thresholds ? 5 * kMs : 0),
                "%s: min-threshold-time", when);
    gint leaky = -1;
    gboolean silent = FALSE, flush_on_eos = TRUE;
    g_object_get(fx->queue, "leaky", &leaky, "silent", &silent, "flush-on-eos", &flush_on_eos,
                 nullptr);
    fail_unless(leaky == 2 && silent && !flush_on_eos, "%s: leaky, silent or flush-on-eos", when);
    fail_unless(uint_prop(fx->queue, "current-level-buffers") == level,
                "%s: current-level-buffers %u, not %u", when,
                uint_prop(fx->queue, "current-level-buffers"), level);
    fail_unless(uint_prop(fx->queue, "current-level-bytes") == level * kBufferSize,
                "%s: current-level-bytes", when);
    /* Each held buffer is 10 ms. */
    fail_unless(uint64_prop(fx->queue, "current-level-time") == level * 10 * kMs,
                "%s: current-level-time %" G_GUINT64_FORMAT, when,
                uint64_prop(fx->queue, "current-level-time"));
    if (!adaptive)
      return;
    gdouble weight = 0, headroom = 0;
    g_object_get(fx->queue, "cpu-weight", &weight, "demand-headroom", &headroom, nullptr);
    fail_unless(weight == 0.25 && headroom == 1.5, "%s: cpu-weight or demand-headroom", when);
    fail_unless(uint64_prop(fx->queue, "adaptation-interval") == 70 * kMs,
                "%s: adaptation-interval", when);
    fail_unless(uint64_prop(fx->queue, "trim-period") == 300 * kMs, "%s: trim-period", when);
    fail_unless(
        uint_prop(fx->queue, "min-buffers") == 3 && uint_prop(fx->queue, "max-buffers") == 40,
        "%s: min-buffers or max-buffers", when);
    fail_unless(Stats(fx->queue).u("capacity") == 7, "%s: stats capacity", when);
  };

  check("after the set", 0);
  const GstState up[] = {GST_STATE_READY, GST_STATE_PAUSED, GST_STATE_PLAYING};
  for (GstState state : up) {
    set_state(fx, state);
    check(gst_element_state_get_name(state), 0);
  }
  /* Buffer 0 leaves once the thresholds are met, and waits downstream. */
  push_initial_events(fx);
  close_gate(fx);
  for (guint64 i = 0; i <= 3; i++)
    fail_unless_equals_int(push(fx, i, i * 10 * kMs, 10 * kMs), GST_FLOW_OK);
  AQ_WAIT_FOR(held(fx) == 1);
  check("holding 3", 3);
  push_event(fx, gst_event_new_eos());
  thresholds = false;
  check("after EOS", 3);
  open_gate(fx);
  AQ_WAIT_FOR(received_buffers(fx) == 4);
  AQ_WAIT_FOR(uint_prop(fx->queue, "current-level-buffers") == 0);
  check("after EOS, drained", 0);
  set_state(fx, GST_STATE_PAUSED);
  check("PAUSED", 0);
  thresholds = true;
  for (GstState state : {GST_STATE_READY, GST_STATE_NULL}) {
    set_state(fx, state);
    check(gst_element_state_get_name(state), 0);
  }
  fixture_free(fx);
}

GST_END_TEST;

/* What stats says across a restart (PLAYING -> NULL -> PLAYING): the
 * counters run on from element creation, the levels are empty, and the
 * latency average restarts: no sample before the first new buffer. */
GST_START_TEST(test_stats_after_restart) {
  if (!adaptive_only("the stats structure")) {
    return;
  }
  Fixture* fx = fixture_new();
  start(fx);
  for (guint64 i = 0; i < 3; i++)
    fail_unless_equals_int(push(fx, i, i * 10 * kMs, 10 * kMs), GST_FLOW_OK);
  AQ_WAIT_FOR(Stats(fx->queue).u64("buffers-pushed") == 3);
  const guint64 samples = Stats(fx->queue).u64("latency-samples");
  fail_unless_equals_uint64(samples, 3);
  fail_unless(Stats(fx->queue).i64("latency-average") >= 0, "no latency average");
  const guint64 underruns = Stats(fx->queue).u64("underruns");

  const GstState cycle[] = {GST_STATE_PAUSED, GST_STATE_READY,  GST_STATE_NULL,
                            GST_STATE_READY,  GST_STATE_PAUSED, GST_STATE_PLAYING};
  for (GstState state : cycle)
    set_state(fx, state);
  {
    Stats st(fx->queue);
    fail_unless_equals_int64(st.i64("latency-average"), -1);
    fail_unless_equals_uint64(st.u64("latency-samples"), 0);
    fail_unless_equals_uint64(st.u64("buffers-pushed"), 3);
    fail_unless_equals_int(st.u("current-level-buffers"), 0);
    fail_unless_equals_uint64(st.u64("current-level-time"), 0);
    fail_unless(st.u64("underruns") >= underruns, "underruns went back");
  }
  push_initial_events(fx);
  fail_unless_equals_int(push(fx, 3, 0, 10 * kMs), GST_FLOW_OK);
  AQ_WAIT_FOR(Stats(fx->queue).u64("buffers-pushed") == 4);
  fail_unless_equals_uint64(Stats(fx->queue).u64("latency-samples"), 1);
  fixture_free(fx);
}

GST_END_TEST;

/* A serialized query queued behind data is answered FALSE, and never sent
 * later, when a flush drops the data it waits behind. (leaky=downstream
 * never reaches it: the query holds the sink pad's stream lock, so nothing
 * can be queued behind it to fill the queue.) */
GST_START_TEST(test_queued_query_flushed) {
  Fixture* fx = fixture_new();
  start(fx);
  block_downstream(fx, 0);
  fail_unless_equals_int(push(fx, 1), GST_FLOW_OK);

  GstQuery* query = gst_query_new_drain();
  gboolean answered = TRUE;
  Worker query_thread([&] { answered = gst_pad_peer_query(fx->up, query); });
  fail_if(query_thread.wait(kSettleUs), "the query overtook the buffer ahead of it");
  push_event(fx, gst_event_new_flush_start());
  fail_unless(query_thread.wait(kWaitUs), "the query caller was not released");
  fail_if(answered, "a query that never reached downstream was answered");
  gst_query_unref(query);
  push_event(fx, gst_event_new_flush_stop(TRUE));
  push_initial_events(fx);
  open_gate(fx);
  fail_unless_equals_int(push(fx, 2), GST_FLOW_OK);
  AQ_WAIT_FOR(received_buffers(fx) == 2);
  const std::string seq = sequence(fx);
  fail_if(seq.find("Q:") != std::string::npos, "the flushed query went out: %s", seq.c_str());
  fixture_free(fx);
}

GST_END_TEST;

/* Downstream answers EOS: what is queued behind that buffer is dropped up
 * to the next EOS, SEGMENT or STREAM_START, other events included, and
 * counted; further data is refused with EOS. */
GST_START_TEST(test_downstream_eos_drops_queued_events) {
  Fixture* fx = fixture_new();
  start(fx);
  g_mutex_lock(&fx->lock);
  fx->chain_return = GST_FLOW_EOS;
  g_mutex_unlock(&fx->lock);
  block_downstream(fx, 0);
  push_event(fx, custom_event(GST_EVENT_CUSTOM_DOWNSTREAM));
  fail_unless_equals_int(push(fx, 1), GST_FLOW_OK);
  open_gate(fx);
  /* A buffer 2 pushed before the task saw downstream's EOS is queued, then
   * dropped with buffer 1: each counts. */
  guint64 accepted = 0;
  AQ_WAIT_FOR([&] {
    const GstFlowReturn ret = push(fx, 2);
    accepted += ret == GST_FLOW_OK;
    return ret == GST_FLOW_EOS;
  }());
  assert_sequence(fx, "stream-start segment 0");
  if (adaptive_only("the stats structure"))
    fail_unless_equals_uint64(Stats(fx->queue).u64("drops"), 1 + accepted);
  fixture_free(fx);
}

GST_END_TEST;

/* After downstream's EOS answer and the drop: an event that comes before
 * the next segment is passed on, as queue passes it, and data flows again
 * after the segment. */
GST_START_TEST(test_events_pass_after_downstream_eos) {
  Fixture* fx = fixture_new();
  start(fx);
  g_mutex_lock(&fx->lock);
  fx->chain_return = GST_FLOW_EOS;
  g_mutex_unlock(&fx->lock);
  fail_unless_equals_int(push(fx, 1), GST_FLOW_OK);
  /* Refused once the element saw downstream's answer. */
  AQ_WAIT_FOR(push(fx, 2) == GST_FLOW_EOS);
  push_event(fx, custom_event(GST_EVENT_CUSTOM_DOWNSTREAM));
  AQ_WAIT_FOR(sequence(fx) == "stream-start segment 1 custom-downstream");
  g_mutex_lock(&fx->lock);
  fx->chain_return = GST_FLOW_OK;
  g_mutex_unlock(&fx->lock);
  push_segment(fx);
  fail_unless_equals_int(push(fx, 3), GST_FLOW_OK);
  AQ_WAIT_FOR(received_buffers(fx) == 2);
  assert_sequence(fx, "stream-start segment 1 custom-downstream segment 3");
  fixture_free(fx);
}

GST_END_TEST;

namespace {

/* A signal handler that flushes the element from upstream, once: the push
 * that emitted the signal must then be refused, as queue refuses it. */
struct FlushingHandler {
  GstPad* up = nullptr;
  std::atomic<int> calls{0};
  /* Set once the flush-start push returned: calls counts on entry. */
  std::atomic<bool> flush_sent{false};
};

void on_signal_flush(GstElement*, FlushingHandler* h) {
  if (h->calls++ == 0) {
    fail_unless(gst_pad_push_event(h->up, gst_event_new_flush_start()), "flush-start refused");
    h->flush_sent = true;
  }
}

/* After the refused push: the flush-stop empties the queue, and with a new
 * segment data goes through again. */
void assert_flows_after_flush(Fixture* fx) {
  push_event(fx, gst_event_new_flush_stop(TRUE));
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-buffers"), 0);
  push_segment(fx);
  fail_unless_equals_int(push(fx, 9), GST_FLOW_OK);
  AQ_WAIT_FOR(received_buffers(fx) >= 1 && sequence(fx).find(" 9") != std::string::npos);
}

}  // namespace

/* A flush from the overrun handler: the push that overran is refused with
 * FLUSHING and the buffer is not queued. */
GST_START_TEST(test_flush_in_overrun_handler_refuses_the_push) {
  Fixture* fx = fixture_new();
  g_object_set(fx->queue, "max-size-buffers", 2, nullptr);
  FlushingHandler handler;
  handler.up = fx->up;
  g_signal_connect(fx->queue, "overrun", G_CALLBACK(on_signal_flush), &handler);
  start(fx);
  block_downstream(fx, 0);
  fail_unless_equals_int(push(fx, 1), GST_FLOW_OK);
  fail_unless_equals_int(push(fx, 2), GST_FLOW_OK);
  fail_unless_equals_int(push(fx, 3), GST_FLOW_FLUSHING);
  fail_unless_equals_int(handler.calls.load(), 1);
  assert_flows_after_flush(fx);
  fail_unless(sequence(fx).find(" 3") == std::string::npos, "the refused buffer went out");
  fixture_free(fx);
}

GST_END_TEST;

/* A flush from the underrun handler, which the src task emits on finding
 * the queue empty: the task stops there, and after the flush data flows
 * again. */
GST_START_TEST(test_flush_in_underrun_handler_stops_the_task) {
  Fixture* fx = fixture_new();
  start(fx);
  /* Connected after the initial events went: the first underrun may come
   * before or after, and the one after buffer 1 went out comes after. */
  FlushingHandler handler;
  handler.up = fx->up;
  g_signal_connect(fx->queue, "underrun", G_CALLBACK(on_signal_flush), &handler);
  const GstFlowReturn first = push(fx, 1);
  fail_unless(first == GST_FLOW_OK || first == GST_FLOW_FLUSHING, "push returned %s",
              gst_flow_get_name(first));
  AQ_WAIT_FOR(handler.flush_sent.load());
  g_mutex_lock(&fx->lock);
  const bool flushed = fx->flushing;
  g_mutex_unlock(&fx->lock);
  fail_unless(flushed, "the flush did not reach downstream");
  fail_unless_equals_int(push(fx, 2), GST_FLOW_FLUSHING);
  assert_flows_after_flush(fx);
  fail_unless(sequence(fx).find(" 2") == std::string::npos, "the refused buffer went out");
  fixture_free(fx);
}

GST_END_TEST;

/* A flush from the running handler, which the push emits once room came
 * after it waited on a full queue: that push is refused too. */
GST_START_TEST(test_flush_in_running_handler_refuses_the_push) {
  Fixture* fx = fixture_new();
  g_object_set(fx->queue, "max-size-buffers", 2, nullptr);
  start(fx);
  block_downstream(fx, 0);
  fail_unless_equals_int(push(fx, 1), GST_FLOW_OK);
  fail_unless_equals_int(push(fx, 2), GST_FLOW_OK);
  FlushingHandler handler;
  handler.up = fx->up;
  g_signal_connect(fx->queue, "running", G_CALLBACK(on_signal_flush), &handler);
  GstFlowReturn ret = GST_FLOW_OK;
  Worker pusher([&] { ret = push(fx, 3); });
  /* The push waits on the full queue until downstream takes a buffer. */
  g_usleep(kSettleUs);
  fail_unless_equals_int(handler.calls.load(), 0);
  open_gate(fx);
  fail_unless(pusher.wait(kWaitUs), "the push never returned");
  fail_unless_equals_int(ret, GST_FLOW_FLUSHING);
  fail_unless(handler.calls.load() >= 1, "running was not emitted");
  assert_flows_after_flush(fx);
  fail_unless(sequence(fx).find(" 3") == std::string::npos, "the refused buffer went out");
  fixture_free(fx);
}

GST_END_TEST;

/* Downstream returns EOS: the element drops what it holds up to the next
 * event downstream can take, and a serialized query among what it drops is
 * answered FALSE at once, as queue answers it, not left waiting. */
GST_START_TEST(test_query_dropped_after_downstream_eos_is_refused) {
  if (!adaptive_only("queue 1.22 leaves the dropped query's caller waiting"))
    return;
  Fixture* fx = fixture_new();
  start(fx);
  block_downstream(fx, 0);
  fail_unless_equals_int(push(fx, 1), GST_FLOW_OK);
  gboolean answered = TRUE;
  Worker worker([&] {
    GstQuery* query = gst_query_new_allocation(nullptr, FALSE);
    answered = gst_pad_peer_query(fx->up, query);
    gst_query_unref(query);
  });
  /* The query waits behind buffer 1 until downstream answers buffer 0. */
  g_usleep(kSettleUs);
  fail_if(worker.wait(0), "the query was answered before the data ahead of it went");
  g_mutex_lock(&fx->lock);
  fx->chain_return = GST_FLOW_EOS;
  g_mutex_unlock(&fx->lock);
  open_gate(fx);
  fail_unless(worker.wait(kWaitUs), "the dropped query was never answered");
  fail_if(answered, "a query that never reached downstream was answered TRUE");
  g_mutex_lock(&fx->lock);
  const guint allocation_queries = fx->allocation_queries;
  g_mutex_unlock(&fx->lock);
  fail_unless_equals_int(allocation_queries, 0);
  assert_sequence(fx, "stream-start segment 0");
  fixture_free(fx);
}

GST_END_TEST;

/* POSITION in a format other than bytes and time passes upstream's answer
 * untouched, data held or not (frames are not what the queue counts); one
 * upstream refuses is refused. */
GST_START_TEST(test_position_in_other_formats) {
  Fixture* fx = fixture_new();
  start(fx);
  block_downstream(fx, 0);
  fail_unless_equals_int(push(fx, 1), GST_FLOW_OK);
  fail_unless_equals_int(uint_prop(fx->queue, "current-level-bytes"), 16);
  /* Bytes are adjusted by what is held; DEFAULT (upstream answers with its
   * bytes figure) is not. */
  fail_unless_equals_int64(query_upstream(fx, GST_QUERY_POSITION, GST_FORMAT_BYTES), 1000 - 16);
  fail_unless_equals_int64(query_upstream(fx, GST_QUERY_POSITION, GST_FORMAT_DEFAULT), 1000);
  fail_unless_equals_int64(query_upstream(fx, GST_QUERY_POSITION, GST_FORMAT_PERCENT), -1);
  fixture_free(fx);
}

GST_END_TEST;

GstFlowReturn no_range(GstPad*, GstObject*, guint64, guint, GstBuffer**) {
  return GST_FLOW_EOS;
}

/* The sink pad works in push mode only: linked to an upstream that could
 * be pulled from (GStreamer then asks the element itself), it refuses pull
 * mode, as queue does, and push mode still works. */
GST_START_TEST(test_sink_pad_refuses_pull_mode) {
  GstElement* e = gst_element_factory_make(factory_name(), nullptr);
  fail_unless(e != nullptr, "cannot create %s", factory_name());
  GstPad* up = gst_pad_new_from_static_template(&up_template, "pullable");
  gst_pad_set_getrange_function(up, no_range);
  GstPad* sink = gst_element_get_static_pad(e, "sink");
  fail_unless_equals_int(gst_pad_link(up, sink), GST_PAD_LINK_OK);
  fail_if(gst_pad_activate_mode(sink, GST_PAD_MODE_PULL, TRUE), "pull mode accepted");
  fail_unless_equals_int(GST_PAD_MODE(sink), GST_PAD_MODE_NONE);
  fail_unless(gst_pad_activate_mode(sink, GST_PAD_MODE_PUSH, TRUE), "push mode refused");
  fail_unless(gst_pad_activate_mode(sink, GST_PAD_MODE_PUSH, FALSE), "push mode not left");
  gst_pad_set_active(up, FALSE);
  gst_object_unref(sink);
  gst_object_unref(up);
  gst_object_unref(e);
}

GST_END_TEST;

static Suite* queue_semantics_suite(void) {
  Suite* s = suite_create("adaptivequeue-queue-semantics");

  TCase* tc = tcase_create("signals");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_underrun_once_on_playing);
  tcase_add_test(tc, test_overrun_at_capacity);
  tcase_add_test(tc, test_signals_emitted_unlocked);
  tcase_add_test(tc, test_flush_in_overrun_handler_refuses_the_push);
  tcase_add_test(tc, test_flush_in_running_handler_refuses_the_push);
  tcase_add_test(tc, test_flush_in_underrun_handler_stops_the_task);
  suite_add_tcase(s, tc);

  tc = tcase_create("leaky");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_leaky_downstream_drops_oldest);
  tcase_add_test(tc, test_leaky_upstream_drops_incoming);
  tcase_add_test(tc, test_leaky_enum);
  suite_add_tcase(s, tc);

  tc = tcase_create("levels");
  tcase_set_timeout(tc, 60);
  tcase_add_loop_test(tc, test_level_time, 0, 3);
  tcase_add_test(tc, test_level_buffer_lists);
  tcase_add_test(tc, test_buffer_list_fills_by_length);
  tcase_add_test(tc, test_notify_levels_off_by_default);
  tcase_add_test(tc, test_notify_levels_follow_buffers);
  tcase_add_test(tc, test_notify_levels_set_while_playing);
  tcase_add_test(tc, test_min_threshold_reached_releases);
  suite_add_tcase(s, tc);

  tc = tcase_create("events");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_initial_events_without_buffers);
  tcase_add_test(tc, test_sticky_events_not_linked);
  tcase_add_test(tc, test_eos_not_linked_is_an_error);
  tcase_add_test(tc, test_eos_after_data);
  tcase_add_test(tc, test_eos_drains_below_threshold);
  tcase_add_test(tc, test_flush_on_eos);
  tcase_add_test(tc, test_flush_stop_after_eos);
  tcase_add_test(tc, test_new_stream_after_eos);
  tcase_add_test(tc, test_flush_wakes_and_resets);
  tcase_add_test(tc, test_serialized_events_never_block);
  tcase_add_test(tc, test_non_serialized_pass_through);
  suite_add_tcase(s, tc);

  tc = tcase_create("queries");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_caps_and_allocation_proxied);
  tcase_add_loop_test(tc, test_serialized_query_with_min_threshold, 0, 3);
  tcase_add_test(tc, test_flush_waits_for_query_in_flight);
  tcase_add_test(tc, test_abandoned_query_not_pushed_later);
  tcase_add_test(tc, test_latency_query);
  suite_add_tcase(s, tc);

  tc = tcase_create("drop-in");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, test_max_size_buffers_exact, 0, G_N_ELEMENTS(kExplicitSizes));
  tcase_add_test(tc, test_property_order);
  tcase_add_test(tc, test_default_byte_and_time_limits);
  tcase_add_loop_test(tc, test_lowering_limit_leaks_at_once, 0, 3);
  tcase_add_test(tc, test_interval_takes_effect_at_once);
  tcase_add_test(tc, test_no_ticks_after_stop);
  tcase_add_test(tc, test_lowered_threshold_releases);
  tcase_add_test(tc, test_empty_list_moves_time_level);
  tcase_add_test(tc, test_latency_message_only_when_needed);
  tcase_add_test(tc, test_fatal_error_after_eos);
  tcase_add_test(tc, test_replaced_value_notified);
  tcase_add_test(tc, test_threshold_follows_the_tail);
  tcase_add_test(tc, test_thresholds_read_back_after_eos);
  tcase_add_loop_test(tc, test_flushing_task_drops_queued, 0, 2);
  tcase_add_test(tc, test_refused_eos_reports_once);
  tcase_add_test(tc, test_level_time_zero_without_buffers);
  tcase_add_test(tc, test_flush_on_eos_keeps_result_in_flight);
  /* Each format, buffer and list, segment queued or not, element new or
   * restarted: 5 times over. */
  tcase_add_loop_test(tc, test_level_time_from_first_buffer, 0, 120);
  suite_add_tcase(s, tc);

  tc = tcase_create("answers");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_queries_with_data_held);
  tcase_add_test(tc, test_position_in_other_formats);
  tcase_add_test(tc, test_query_dropped_after_downstream_eos_is_refused);
  tcase_add_test(tc, test_sink_pad_refuses_pull_mode);
  tcase_add_test(tc, test_counters_with_buffer_lists);
  tcase_add_test(tc, test_max_level_raised_by_locked_push);
  tcase_add_test(tc, test_max_level_with_lock_free_pushes);
  tcase_add_test(tc, test_property_read_back);
  tcase_add_test(tc, test_stats_after_restart);
  tcase_add_test(tc, test_queued_query_flushed);
  tcase_add_test(tc, test_downstream_eos_drops_queued_events);
  tcase_add_test(tc, test_events_pass_after_downstream_eos);
  suite_add_tcase(s, tc);

  tc = tcase_create("one-cpu");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_slot_freed_before_downstream_blocks_is_refilled);
  tcase_add_test(tc, test_queue_run_dry_wakes_upstream);
  tcase_add_test(tc, test_upstream_refills_after_a_batch);
  suite_add_tcase(s, tc);

  tc = tcase_create("races");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_allocation_query_vs_flush);
  tcase_add_test(tc, test_no_buffer_after_downstream_eos);
  tcase_add_test(tc, test_flush_stop_vs_paused_to_ready);
  suite_add_tcase(s, tc);

  return s;
}

GST_CHECK_MAIN(queue_semantics);
