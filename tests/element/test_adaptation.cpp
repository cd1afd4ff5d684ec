/* adaptivequeue adaptation: the capacity follows the sizing formulas tick
 * by tick under load read from fixture /proc trees; stats, adaptation
 * messages and LATENCY messages agree with it; bad configurations are
 * survived; manual capacity; shrinking below the level
 * in every leaky mode; latency samples.
 *
 * Ticks run when the test says (TickDriver), after the fixture has made
 * sure the sampler read the load set, so every count is exact.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "aq_test.h"

#include <algorithm>
#include <string>
#include <vector>

using namespace aqt;

namespace {

/* ---- the sequences the formulas give ---- */

struct Scenario {
  const char* name;
  int cpu, mem;
  guint min, max, start;
  double smoothing;
  /* Worked out separately, as a check on expected_steps() itself. */
  std::vector<Step> by_hand;
};

/* cpu and mem factors differ in most, so the two inputs cannot be swapped
 * unnoticed. */
const std::vector<Scenario>& scenarios() {
  static const std::vector<Scenario> all = {
      /* f = 0.5 * 1 + 0.3 * 1 = 0.8; the dead band stops it at 30 */
      {"idle, defaults",
       10,
       20,
       4,
       32,
       16,
       0.3,
       {{16, 20}, {20, 23}, {23, 25}, {25, 27}, {27, 28}, {28, 29}, {29, 30}}},
      /* full steps reach max-buffers */
      {"idle, smoothing 1", 10, 20, 4, 32, 16, 1.0, {{16, 29}, {29, 31}, {31, 32}}},
      /* full steps reach min-buffers */
      {"loaded, smoothing 1", 90, 90, 4, 32, 16, 1.0, {{16, 6}, {6, 4}}},
      /* cpu_f = 1, mem_f = -1: f = 0.2 grows it */
      {"idle cpu, memory full",
       10,
       90,
       4,
       32,
       16,
       0.3,
       {{16, 17}, {17, 18}, {18, 19}, {19, 20}, {20, 21}, {21, 22}, {22, 23}, {23, 24}}},
      /* cpu_f = -1, mem_f = 1: f = -0.2 shrinks it */
      {"cpu busy, memory free", 90, 20, 4, 32, 16, 0.3, {{16, 15}, {15, 14}, {14, 13}, {13, 12}}},
      /* between the thresholds: cpu_f = 0.5, mem_f = -0.5, f = 0.1 */
      {"between thresholds, bounds 2..64", 30, 65, 2, 64, 10, 1.0, {{10, 15}, {15, 20}, {20, 24},
                                                                    {24, 28}, {28, 32}, {32, 35},
                                                                    {35, 38}, {38, 41}, {41, 43},
                                                                    {43, 45}, {45, 47}, {47, 49},
                                                                    {49, 51}, {51, 52}, {52, 53},
                                                                    {53, 54}, {54, 55}, {55, 56},
                                                                    {56, 57}, {57, 58}, {58, 59},
                                                                    {59, 60}}},
  };
  return all;
}

}  // namespace

/* Tick by tick, the capacity follows exactly the sequence the formulas
 * give, and each message and the stats say so: the load read, each factor,
 * the level at the tick. Eight buffers are held in the queue over the first
 * tick and none after. They carry no timestamp, so there is no latency
 * sample, the latency term is 0, and no LATENCY message is posted. */
GST_START_TEST(test_sequence_follows_formulas) {
  constexpr guint kHeld = 8;
  const Scenario& sc = scenarios().at(__i__);
  const double cpu_f = threshold_factor(sc.cpu, 20, 60);
  const double mem_f = threshold_factor(sc.mem, 35, 75);
  const double f = 0.5 * cpu_f + 0.3 * mem_f + 0.2 * 0.0;
  const guint n_ticks = ticks_to_settle(sc.start, f, sc.min, sc.max, sc.smoothing);
  const auto steps = expected_steps(sc.start, f, sc.min, sc.max, sc.smoothing, n_ticks);
  check_same_steps(steps, sc.by_hand);

  LoadFixture load(sc.cpu, sc.mem);
  TickDriver ticks(&load);
  GstElement* q = make_queue(load.dir(), kTickInterval);
  g_object_set(q, "min-buffers", sc.min, "max-buffers", sc.max, "smoothing", sc.smoothing, nullptr);
  g_object_set(q, "max-size-buffers", sc.start, nullptr);
  fail_unless_equals_int(capacity(q), sc.start);
  /* Holds the buffers back until the threshold is lifted. */
  g_object_set(q, "min-threshold-buffers", 1000u, nullptr);
  Bus bus(q);
  GstHarness* h = start_harness(q);

  for (guint i = 0; i < kHeld; i++)
    fail_unless_equals_int(gst_harness_push(h, make_buffer(i)), GST_FLOW_OK);
  ticks.run(1);
  g_object_set(q, "min-threshold-buffers", 0u, nullptr);
  pull_in_order(h, 0, kHeld);
  fail_unless_equals_int(Stats(q).u("current-level-buffers"), 0);
  ticks.run(n_ticks - 1);
  expect_steps(q, bus, steps, 0);

  for (size_t i = 0; i < bus.adaptations.size(); i++) {
    const GstStructure* s = bus.adaptations[i];
    fail_unless_equals_float(field_double(s, "cpu-percent"), sc.cpu);
    fail_unless_equals_float(field_double(s, "mem-percent"), sc.mem);
    fail_unless_equals_float(field_double(s, "cpu-factor"), cpu_f);
    fail_unless_equals_float(field_double(s, "mem-factor"), mem_f);
    fail_unless_equals_float(field_double(s, "latency-factor"), 0.0);
    fail_unless_equals_float(field_double(s, "combined-factor"), f);
    fail_unless_equals_int64(field_int64(s, "latency-average"), -1);
    fail_unless_equals_int(field_uint(s, "level-buffers"), i == 0 ? kHeld : 0);
  }

  const GstStructure* last = bus.adaptations.back();
  Stats st(q);
  fail_unless_equals_int(st.u("capacity"), steps.back().to);
  fail_unless_equals_uint64(st.u64("adaptations"), steps.size());
  fail_unless_equals_uint64(st.u64("ticks"), n_ticks);
  fail_unless_equals_uint64(st.u64("skipped-ticks"), 0);
  for (const char* field : {"cpu-percent", "mem-percent", "cpu-factor", "mem-factor",
                            "latency-factor", "combined-factor"})
    fail_unless_equals_float(st.d(field), field_double(last, field));
  fail_unless_equals_int64(st.i64("latency-average"), -1);
  ck_assert(st.b("load-valid"));
  fail_unless_equals_uint64(st.u64("latency-samples"), 0);
  fail_unless_equals_uint64(st.u64("buffers-pushed"), kHeld);
  fail_unless_equals_uint64(st.u64("drops"), 0);
  fail_unless_equals_int(st.u("current-level-buffers"), 0);
  fail_unless_equals_int(st.u("max-level-buffers"), kHeld);
  fail_unless_equals_int(bus.warnings.size(), 0);
  fail_unless_equals_int(bus.latency_messages, 0);

  gst_harness_teardown(h);
  gst_object_unref(q);
}
GST_END_TEST;

/* With only the latency weight, a queued latency above max-latency shrinks
 * the capacity and one below target-latency grows it. The buffers have a
 * duration, so every change of the capacity changes the time it holds, and
 * each is announced with one LATENCY message. */
GST_START_TEST(test_latency_factor_moves_capacity) {
  LoadFixture load(40, 55);
  TickDriver ticks(&load);
  GstElement* q = make_queue(load.dir(), kTickInterval);
  g_object_set(q, "cpu-weight", 0.0, "mem-weight", 0.0, "latency-weight", 1.0, nullptr);
  gst_util_set_object_arg(G_OBJECT(q), "latency-source", "queued");
  Bus bus(q);
  GstHarness* h = start_harness(q);

  /* Downstream stalls on an untimestamped buffer (no sample), while nine
   * 100 ms buffers queue up behind it: 900 ms queued. */
  Blocker block(q);
  fail_unless_equals_int(gst_harness_push(h, make_buffer(0)), GST_FLOW_OK);
  block.wait_held();
  for (guint i = 0; i < 9; i++)
    fail_unless_equals_int(
        gst_harness_push(h, make_buffer(i + 1, i * 100 * GST_MSECOND, 100 * GST_MSECOND)),
        GST_FLOW_OK);

  /* No latency sample yet: the latency term is 0 and nothing moves. */
  ticks.run(4);
  expect_steps(q, bus, {}, 0);
  fail_unless_equals_int(capacity(q), 16);
  fail_unless_equals_uint64(Stats(q).u64("latency-samples"), 0);
  fail_unless_equals_uint64(Stats(q).u64("current-level-time"), 900 * GST_MSECOND);

  /* Draining samples the time queued behind each buffer: 800 ms ... 0. */
  block.release();
  pull_in_order(h, 0, 10);
  gint64 avg = -1;
  for (int left = 8; left >= 0; left--) {
    const gint64 sample = left * 100 * GST_MSECOND;
    avg = avg < 0 ? sample : (9 * avg + sample) / 10;
  }
  ck_assert(avg > static_cast<gint64>(50 * GST_MSECOND));
  {
    Stats st(q);
    fail_unless_equals_uint64(st.u64("latency-samples"), 9);
    fail_unless_equals_int64(st.i64("latency-average"), avg);
    /* latency-max is that of the last tick interval; none has ended yet. */
    fail_unless_equals_int64(st.i64("latency-max"), -1);
  }

  /* lat_f = -1 is the whole combined factor. */
  check_same_steps(expected_steps(16, -1.0, 4, 32, 0.3, 10),
                   {{16, 12}, {12, 10}, {10, 8}, {8, 7}, {7, 6}, {6, 5}});
  run_to_settle(ticks, q, bus, 16, -1.0);
  for (const GstStructure* s : bus.adaptations) {
    fail_unless_equals_float(field_double(s, "latency-factor"), -1.0);
    fail_unless_equals_float(field_double(s, "combined-factor"), -1.0);
    fail_unless_equals_int64(field_int64(s, "latency-average"), avg);
  }
  /* The first tick's interval held the drain: its largest sample, 800 ms;
   * no later interval had a sample. */
  fail_unless_equals_int64(field_int64(bus.adaptations.front(), "latency-max"), 800 * GST_MSECOND);
  fail_unless_equals_int64(field_int64(bus.adaptations.back(), "latency-max"), -1);
  fail_unless_equals_int64(Stats(q).i64("latency-max"), -1);
  /* The harness declares no maximum latency, so the element's stays
   * unbounded and no capacity change needs a LATENCY message. */
  fail_unless_equals_int(bus.latency_messages, 0);

  /* Buffers that pass straight through sample 0 ns: the average decays below
   * target-latency and the capacity grows to where lat_f = +1 leaves it. */
  for (guint i = 0; i < 100; i++) {
    fail_unless_equals_int(
        gst_harness_push(h, make_buffer(10 + i, (900 + i) * GST_MSECOND, GST_MSECOND)),
        GST_FLOW_OK);
    pull_in_order(h, 10 + i, 1);
    avg = (9 * avg) / 10;
  }
  ck_assert(avg < static_cast<gint64>(20 * GST_MSECOND));
  fail_unless_equals_int64(Stats(q).i64("latency-average"), avg);
  const size_t down = bus.adaptations.size();
  run_to_settle(ticks, q, bus, 5, 1.0);
  fail_unless_equals_int(capacity(q), 31);
  for (size_t i = down; i < bus.adaptations.size(); i++)
    fail_unless_equals_float(field_double(bus.adaptations[i], "latency-factor"), 1.0);
  fail_unless_equals_float(Stats(q).d("latency-factor"), 1.0);
  fail_unless_equals_int(bus.latency_messages, 0);

  gst_harness_teardown(h);
  gst_object_unref(q);
}
GST_END_TEST;

/* Upstream answers a LATENCY query live, 5 ms to 20 ms; other queries go to
 * the harness as before. */
static GstPadQueryFunction harness_src_query;

static gboolean bounded_upstream_query(GstPad* pad, GstObject* parent, GstQuery* query) {
  if (GST_QUERY_TYPE(query) == GST_QUERY_LATENCY) {
    gst_query_set_latency(query, TRUE, 5 * GST_MSECOND, 20 * GST_MSECOND);
    return TRUE;
  }
  return harness_src_query(pad, parent, query);
}

/* A LATENCY message is posted only when the pipeline must act on it: when
 * the element's minimum changes, or its maximum falls below the latency the
 * pipeline configured. Never for a capacity that grows, never twice for one
 * change. Here the maximum is 20 ms upstream plus capacity x 10 ms, and the
 * pipeline configured 55 ms: it falls below when the capacity reaches 3. */
GST_START_TEST(test_latency_message_only_when_needed) {
  LoadFixture load(10, 20);
  TickDriver ticks(&load);
  GstElement* q = make_queue(load.dir(), kTickInterval);
  g_object_set(q, "latency-weight", 0.0, "max-size-time", G_GUINT64_CONSTANT(0), "min-buffers", 1u,
               "max-size-buffers", 4u, nullptr);
  Bus bus(q);
  GstHarness* h = start_harness(q);
  harness_src_query = GST_PAD_QUERYFUNC(h->srcpad);
  gst_pad_set_query_function(h->srcpad, bounded_upstream_query);
  push_pull(h, 0, 1, true);
  GstQuery* query = gst_query_new_latency();
  fail_unless(gst_pad_peer_query(h->sinkpad, query), "LATENCY query failed");
  gst_query_unref(query);
  fail_unless(gst_pad_push_event(h->sinkpad, gst_event_new_latency(55 * GST_MSECOND)),
              "LATENCY event refused");

  /* Growing: the maximum only rises. */
  run_to_settle(ticks, q, bus, 4, 0.8);
  fail_unless_equals_int(bus.latency_messages, 0);

  /* Shrinking, 1..32 at f = -0.8: one message, at the tick that takes the
   * capacity from 4 to 3 (60 ms to 50 ms). */
  load.set(90, 90);
  const guint from = capacity(q);
  const size_t before = bus.adaptations.size();
  const guint n = ticks_to_settle(from, -0.8, 1, 32, 0.3);
  const auto steps = expected_steps(from, -0.8, 1, 32, 0.3, n);
  fail_unless_equals_int(steps.back().to, 3);
  ticks.run(n);
  expect_steps(q, bus, steps, before);
  fail_unless_equals_int(bus.latency_messages, 1);

  /* A new minimum: one message at the next tick, and no more. */
  g_object_set(q, "min-threshold-time", 5 * GST_MSECOND, nullptr);
  ticks.run(3);
  bus.drain();
  fail_unless_equals_int(bus.latency_messages, 2);

  gst_harness_teardown(h);
  gst_object_unref(q);
}
GST_END_TEST;

/* An invalid configuration gets one WARNING naming the fields, and ticks go
 * on with the last valid configuration: none is skipped. */
GST_START_TEST(test_bad_configuration) {
  LoadFixture load(10, 20);
  TickDriver ticks(&load);
  GstElement* q = make_queue(load.dir(), kTickInterval);
  Bus bus(q);
  GstHarness* h = start_harness(q);
  run_to_settle(ticks, q, bus, 16, 0.8);
  check_same_steps(expected_steps(16, 0.8, 4, 32, 0.3, 10), scenarios()[0].by_hand);
  fail_unless_equals_int(bus.warnings_in(settings_domain()), 0);
  guint64 n_ticks = Stats(q).u64("ticks");

  std::vector<const char*> named;
  double f = 0.8;
  switch (__i__) {
    case 0:
      g_object_set(q, "max-buffers", 2u, nullptr);
      named = {"min-buffers", "max-buffers"};
      break;
    case 1:
      /* Were it used, cpu 10 % would be above "high" and shrink. */
      g_object_set(q, "cpu-high-threshold", 5.0, nullptr);
      named = {"cpu-low-threshold", "cpu-high-threshold"};
      break;
    default:
      /* The last valid configuration is cpu-weight alone. */
      g_object_set(q, "latency-weight", 0.0, nullptr);
      g_object_set(q, "mem-weight", 0.0, nullptr);
      g_object_set(q, "cpu-weight", 0.0, nullptr);
      named = {"cpu-weight", "mem-weight", "latency-weight"};
      f = 0.5;
      break;
  }
  /* Settled at 30 under either configuration: the first tick only warns. */
  const size_t settled = bus.adaptations.size();
  ticks.run(1);
  n_ticks++;
  expect_steps(q, bus, {}, settled);
  fail_unless_equals_int(bus.warnings_in(settings_domain()), 1);
  const std::string text = bus.warning_text(settings_domain());
  for (const char* field : named)
    fail_unless(text.find(field) != std::string::npos, "'%s' not named in: %s", field,
                text.c_str());

  if (__i__ == 0) {
    /* An explicit size is kept exactly and moves the nearer bound to it,
     * which here ends the contradiction; undo that for what follows. */
    g_object_set(q, "max-size-buffers", 100u, nullptr);
    fail_unless_equals_int(capacity(q), 100);
    fail_unless_equals_int(uint_prop(q, "max-buffers"), 100);
    g_object_set(q, "max-buffers", 32u, nullptr);
  }
  /* Moved by hand, it adapts back with the last valid configuration. */
  g_object_set(q, "max-size-buffers", 10u, nullptr);
  const guint settle = ticks_to_settle(10, f, 4, 32, 0.3);
  run_to_settle(ticks, q, bus, 10, f);
  n_ticks += settle;
  fail_unless_equals_float(field_double(bus.adaptations.back(), "combined-factor"), f);

  /* Data flows, and the warning was posted once for all those ticks. */
  push_pull(h, 0, 20, false);
  bus.drain();
  fail_unless_equals_int(bus.warnings_in(settings_domain()), 1);
  fail_unless_equals_int(bus.warnings.size(), 1);
  fail_unless_equals_int(bus.errors.size(), 0);
  Stats st(q);
  fail_unless_equals_uint64(st.u64("ticks"), n_ticks);
  fail_unless_equals_uint64(st.u64("skipped-ticks"), 0);

  gst_harness_teardown(h);
  gst_object_unref(q);
}
GST_END_TEST;

/* Invalid before the first tick: the defaults are the last valid
 * configuration, so the idle sequence is the default one. */
GST_START_TEST(test_bad_configuration_from_start) {
  LoadFixture load(10, 20);
  TickDriver ticks(&load);
  GstElement* q = make_queue(load.dir(), kTickInterval);
  g_object_set(q, "min-buffers", 40u, nullptr);
  Bus bus(q);
  GstHarness* h = start_harness(q);

  run_to_settle(ticks, q, bus, 16, 0.8);
  fail_unless_equals_int(capacity(q), 30);
  fail_unless_equals_int(bus.warnings_in(settings_domain()), 1);
  const std::string text = bus.warning_text(settings_domain());
  fail_unless(text.find("min-buffers") != std::string::npos, "not named: %s", text.c_str());

  /* Made valid again, it is used at once: the bounds 4..8 bring 30 down to
   * 8 as they are set, and the next tick stays there. */
  g_object_set(q, "min-buffers", 4u, "max-buffers", 8u, nullptr);
  fail_unless_equals_int(capacity(q), 8);
  const size_t before = bus.adaptations.size();
  ticks.run(1);
  expect_steps(q, bus, {}, before);
  fail_unless_equals_int(bus.warnings_in(settings_domain()), 1);
  fail_unless_equals_uint64(Stats(q).u64("skipped-ticks"), 0);

  gst_harness_teardown(h);
  gst_object_unref(q);
}
GST_END_TEST;

/* Setting max-size-buffers sets the capacity exactly, as on queue; a value
 * outside the bounds moves the nearer bound to it, and adaptation continues
 * from there; adaptive=false freezes it. */
GST_START_TEST(test_manual_capacity) {
  LoadFixture load(10, 20);
  TickDriver ticks(&load);
  GstElement* q = make_queue(load.dir(), kTickInterval);
  Bus bus(q);
  GstHarness* h = start_harness(q);
  run_to_settle(ticks, q, bus, 16, 0.8);
  fail_unless_equals_int(capacity(q), 30);

  g_object_set(q, "max-size-buffers", 1u, nullptr);
  fail_unless_equals_int(capacity(q), 1);
  fail_unless_equals_int(uint_prop(q, "min-buffers"), 1);
  fail_unless_equals_int(uint_prop(q, "max-buffers"), 32);
  {
    const size_t from = bus.adaptations.size();
    const guint n = ticks_to_settle(1, 0.8, 1, 32, 0.3);
    ticks.run(n);
    expect_steps(q, bus, expected_steps(1, 0.8, 1, 32, 0.3, n), from);
  }
  fail_unless_equals_int(capacity(q), 30);

  g_object_set(q, "max-size-buffers", 1000u, nullptr);
  fail_unless_equals_int(capacity(q), 1000);
  fail_unless_equals_int(uint_prop(q, "min-buffers"), 4);
  fail_unless_equals_int(uint_prop(q, "max-buffers"), 1000);
  {
    const size_t from = bus.adaptations.size();
    ticks.run(3);
    expect_steps(q, bus, {}, from);
  }

  /* Not adaptive: a plain limit, kept whatever the load. */
  const size_t n = bus.adaptations.size();
  g_object_set(q, "adaptive", FALSE, nullptr);
  g_object_set(q, "max-size-buffers", 100u, nullptr);
  fail_unless_equals_int(capacity(q), 100);
  load.set(90, 90);
  ticks.run(8);
  expect_steps(q, bus, {}, n);
  fail_unless_equals_int(capacity(q), 100);

  /* Adaptive again, within 4..100 (max-buffers followed the 100): the
   * load shrinks it from there. */
  fail_unless_equals_int(uint_prop(q, "max-buffers"), 100);
  g_object_set(q, "adaptive", TRUE, nullptr);
  {
    const guint settle = ticks_to_settle(100, -0.8, 4, 100, 0.3);
    ticks.run(settle);
    expect_steps(q, bus, expected_steps(100, -0.8, 4, 100, 0.3, settle), n);
  }
  fail_unless_equals_int(capacity(q), 6);
  fail_unless_equals_uint64(Stats(q).u64("skipped-ticks"), 0);

  gst_harness_teardown(h);
  gst_object_unref(q);
}
GST_END_TEST;

/* Shrinking and growing tests: the CPU alone decides, in one full step.
 * cpu 40 % is the midpoint (factor 0, nothing moves), 90 % shrinks straight
 * to min-buffers, 10 % grows straight to max-buffers. */
static GstElement* make_stepping_queue(const LoadFixture& load, const char* leaky) {
  GstElement* q = make_queue(load.dir(), kTickInterval);
  g_object_set(q, "cpu-weight", 1.0, "mem-weight", 0.0, "latency-weight", 0.0, "smoothing", 1.0,
               nullptr);
  gst_util_set_object_arg(G_OBJECT(q), "leaky", leaky);
  return q;
}

GST_START_TEST(test_shrink_not_leaky_keeps_all) {
  LoadFixture load(40, 50);
  TickDriver ticks(&load);
  GstElement* q = make_stepping_queue(load, "no");
  GstHarness* h = start_harness(q);
  Blocker block(q);

  /* One buffer held downstream, 16 queued, the 18th push waits. */
  Pusher pusher(h, 0, 30);
  AQ_WAIT_FOR(pusher.done() == 17);
  AQ_WAIT_FOR(Stats(q).u("current-level-buffers") == 16);
  ticks.run(2);
  fail_unless_equals_int(capacity(q), 16);

  load.set(90, 50);
  ticks.run(1);
  fail_unless_equals_int(capacity(q), 4);
  ticks.run(2);
  {
    Stats st(q);
    fail_unless_equals_uint64(st.u64("drops"), 0);
    fail_unless_equals_int(st.u("current-level-buffers"), 16);
  }
  fail_unless_equals_int(pusher.done(), 17);

  block.release();
  pull_in_order(h, 0, 30);
  AQ_WAIT_FOR(pusher.done() == 30);
  ck_assert(!pusher.failed());
  Stats st(q);
  fail_unless_equals_uint64(st.u64("drops"), 0);
  fail_unless_equals_uint64(st.u64("buffers-pushed"), 30);
  fail_unless_equals_int(gst_harness_buffers_in_queue(h), 0);

  gst_harness_teardown(h);
  gst_object_unref(q);
}
GST_END_TEST;

GST_START_TEST(test_shrink_leaky_downstream_drops_oldest) {
  LoadFixture load(40, 50);
  TickDriver ticks(&load);
  GstElement* q = make_stepping_queue(load, "downstream");
  GstHarness* h = start_harness(q);
  Blocker block(q);

  fail_unless_equals_int(gst_harness_push(h, timed_buffer(0)), GST_FLOW_OK);
  block.wait_held();
  for (guint i = 1; i <= 16; i++)
    fail_unless_equals_int(gst_harness_push(h, timed_buffer(i)), GST_FLOW_OK);
  fail_unless_equals_int(Stats(q).u("current-level-buffers"), 16);
  fail_unless_equals_uint64(Stats(q).u64("drops"), 0);

  load.set(90, 50);
  ticks.run(1);
  fail_unless_equals_int(capacity(q), 4);
  {
    Stats st(q);
    fail_unless_equals_uint64(st.u64("drops"), 12);
    fail_unless_equals_int(st.u("current-level-buffers"), 4);
  }

  /* The held one, then the newest four; the first after the gap is DISCONT. */
  block.release();
  pull_in_order(h, 0, 1);
  for (guint64 i = 13; i <= 16; i++) {
    GstBuffer* b = gst_harness_pull(h);
    ck_assert(b != nullptr);
    fail_unless_equals_uint64(GST_BUFFER_OFFSET(b), i);
    fail_unless_equals_int(GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DISCONT), i == 13);
    gst_buffer_unref(b);
  }
  AQ_WAIT_FOR(Stats(q).u64("buffers-pushed") == 5);
  fail_unless_equals_int(gst_harness_buffers_in_queue(h), 0);
  fail_unless_equals_uint64(Stats(q).u64("drops"), 12);

  gst_harness_teardown(h);
  gst_object_unref(q);
}
GST_END_TEST;

GST_START_TEST(test_shrink_leaky_upstream_drops_new) {
  LoadFixture load(40, 50);
  TickDriver ticks(&load);
  GstElement* q = make_stepping_queue(load, "upstream");
  GstHarness* h = start_harness(q);
  Blocker block(q);

  fail_unless_equals_int(gst_harness_push(h, timed_buffer(0)), GST_FLOW_OK);
  block.wait_held();
  for (guint i = 1; i <= 16; i++)
    fail_unless_equals_int(gst_harness_push(h, timed_buffer(i)), GST_FLOW_OK);

  load.set(90, 50);
  ticks.run(1);
  fail_unless_equals_int(capacity(q), 4);
  {
    /* Shrinking itself drops nothing... */
    Stats st(q);
    fail_unless_equals_uint64(st.u64("drops"), 0);
    fail_unless_equals_int(st.u("current-level-buffers"), 16);
  }
  /* ...new buffers are dropped while the queue is over its capacity. */
  for (guint i = 17; i <= 21; i++)
    fail_unless_equals_int(gst_harness_push(h, timed_buffer(i)), GST_FLOW_OK);
  {
    Stats st(q);
    fail_unless_equals_uint64(st.u64("drops"), 5);
    fail_unless_equals_int(st.u("current-level-buffers"), 16);
  }

  block.release();
  pull_in_order(h, 0, 17);
  AQ_WAIT_FOR(Stats(q).u("current-level-buffers") == 0);
  /* Room again: the next buffer passes, marked DISCONT after the gap. */
  fail_unless_equals_int(gst_harness_push(h, timed_buffer(22)), GST_FLOW_OK);
  GstBuffer* b = gst_harness_pull(h);
  fail_unless_equals_uint64(GST_BUFFER_OFFSET(b), 22);
  ck_assert(GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DISCONT));
  gst_buffer_unref(b);
  fail_unless_equals_int(gst_harness_buffers_in_queue(h), 0);
  fail_unless_equals_uint64(Stats(q).u64("drops"), 5);

  gst_harness_teardown(h);
  gst_object_unref(q);
}
GST_END_TEST;

/* Growing wakes an upstream blocked on a full queue, while downstream is
 * still stalled. */
GST_START_TEST(test_grow_wakes_upstream) {
  LoadFixture load(40, 50);
  TickDriver ticks(&load);
  GstElement* q = make_stepping_queue(load, "no");
  g_object_set(q, "max-size-buffers", 4u, nullptr);
  GstHarness* h = start_harness(q);
  Blocker block(q);

  Pusher pusher(h, 0, 12);
  AQ_WAIT_FOR(pusher.done() == 5);
  ticks.run(3);
  fail_unless_equals_int(pusher.done(), 5);
  fail_unless_equals_int(capacity(q), 4);

  load.set(10, 50);
  ticks.run(1);
  fail_unless_equals_int(capacity(q), 32);
  fail_unless(wait_until([&] { return pusher.done() == 12; }),
              "upstream still blocked: %u pushed, capacity %u", pusher.done(), capacity(q));
  fail_unless_equals_int(Stats(q).u("current-level-buffers"), 11);

  block.release();
  pull_in_order(h, 0, 12);
  ck_assert(!pusher.failed());
  fail_unless_equals_uint64(Stats(q).u64("drops"), 0);

  gst_harness_teardown(h);
  gst_object_unref(q);
}
GST_END_TEST;

/* Shrinking wakes a task held back by a min threshold: at the new capacity
 * the queue is full, which overrides the threshold, so the task must push.
 * Left asleep, it would wait for an add that a full queue never gets,
 * while upstream waits for room. */
GST_START_TEST(test_shrink_wakes_held_back_task) {
  LoadFixture load(40, 50);
  TickDriver ticks(&load);
  GstElement* q = make_stepping_queue(load, "no");
  g_object_set(q, "min-threshold-buffers", 12u, nullptr);
  GstHarness* h = start_harness(q);

  /* 8 queued, below the threshold and the capacity 16: held back. */
  for (guint i = 0; i < 8; i++)
    fail_unless_equals_int(gst_harness_push(h, make_buffer(i)), GST_FLOW_OK);
  ticks.run(2);
  fail_unless_equals_int(gst_harness_buffers_received(h), 0);
  fail_unless_equals_int(capacity(q), 16);

  load.set(90, 50);
  ticks.run(1);
  fail_unless_equals_int(capacity(q), 4);
  /* Full at 4: pushed down to 3, then held back again. */
  fail_unless(wait_until([&] { return gst_harness_buffers_received(h) == 5; }),
              "%u buffers came out, capacity %u, level %u", gst_harness_buffers_received(h),
              capacity(q), Stats(q).u("current-level-buffers"));
  pull_in_order(h, 0, 5);
  fail_unless_equals_int(Stats(q).u("current-level-buffers"), 3);
  fail_unless_equals_uint64(Stats(q).u64("drops"), 0);

  gst_harness_teardown(h);
  gst_object_unref(q);
}
GST_END_TEST;

/* ---- latency samples ---- */

static guint64 samples(GstElement* q) {
  return Stats(q).u64("latency-samples");
}

/* A latency-only element: no load needed. */
static GstElement* make_latency_queue(const char* source) {
  GstElement* q = make_queue("/proc");
  g_object_set(q, "adaptive", FALSE, nullptr);
  gst_util_set_object_arg(G_OBJECT(q), "latency-source", source);
  return q;
}

GST_START_TEST(test_no_sample_without_timestamps) {
  GstElement* q = make_latency_queue("queued");
  GstHarness* h = start_harness(q);

  push_pull(h, 0, 20, false);
  fail_unless_equals_uint64(samples(q), 0);
  fail_unless_equals_int64(Stats(q).i64("latency-average"), -1);

  push_pull(h, 20, 5, true);
  fail_unless_equals_uint64(samples(q), 5);
  ck_assert(Stats(q).i64("latency-average") >= 0);

  gst_harness_teardown(h);
  gst_object_unref(q);
}
GST_END_TEST;

GST_START_TEST(test_no_sample_without_time_segment) {
  GstElement* q = make_latency_queue("queued");
  GstHarness* h = start_harness(q);
  gst_harness_use_systemclock(h);

  GstSegment segment;
  gst_segment_init(&segment, GST_FORMAT_BYTES);
  ck_assert(gst_harness_push_event(h, gst_event_new_segment(&segment)));
  push_pull(h, 0, 10);
  fail_unless_equals_uint64(samples(q), 0);
  gst_util_set_object_arg(G_OBJECT(q), "latency-source", "clock");
  push_pull(h, 10, 10);
  fail_unless_equals_uint64(samples(q), 0);
  gst_util_set_object_arg(G_OBJECT(q), "latency-source", "auto");
  push_pull(h, 20, 10);
  fail_unless_equals_uint64(samples(q), 0);
  fail_unless_equals_int64(Stats(q).i64("latency-average"), -1);

  gst_segment_init(&segment, GST_FORMAT_TIME);
  ck_assert(gst_harness_push_event(h, gst_event_new_segment(&segment)));
  push_pull(h, 30, 5);
  fail_unless_equals_uint64(samples(q), 5);

  gst_harness_teardown(h);
  gst_object_unref(q);
}
GST_END_TEST;

/* A clock that reads before the element's base time gives no running time,
 * so no clock latency; once it passes the base time, each buffer's is the
 * running time less the buffer's. */
GST_START_TEST(test_clock_latency_before_base_time) {
  GstElement* q = make_latency_queue("clock");
  GstHarness* h = start_harness(q);
  fail_unless_equals_int(gst_element_set_state(q, GST_STATE_PAUSED), GST_STATE_CHANGE_SUCCESS);
  gst_element_set_base_time(q, 10 * GST_SECOND);
  gst_harness_set_time(h, 5 * GST_SECOND);
  fail_unless_equals_int(gst_element_set_state(q, GST_STATE_PLAYING), GST_STATE_CHANGE_SUCCESS);
  push_pull(h, 0, 5);
  fail_unless_equals_uint64(samples(q), 0);

  /* Running time 1 s; buffers 5..9 at 50..90 ms are 950..910 ms late. */
  gst_harness_set_time(h, 11 * GST_SECOND);
  push_pull(h, 5, 5);
  fail_unless_equals_uint64(samples(q), 5);
  const gint64 average = Stats(q).i64("latency-average");
  fail_unless(average >= 910 * GST_MSECOND && average <= 950 * GST_MSECOND,
              "latency-average %" G_GINT64_FORMAT, average);

  gst_harness_teardown(h);
  gst_object_unref(q);
}
GST_END_TEST;

/* Clock latency needs a clock and PLAYING; auto falls back to queued. */
GST_START_TEST(test_clock_latency_needs_clock) {
  GstElement* q = make_latency_queue("clock");
  GstHarness* h = start_harness(q);
  gst_element_set_clock(q, nullptr);

  push_pull(h, 0, 10);
  fail_unless_equals_uint64(samples(q), 0);
  /* A new source restarts the average. */
  gst_util_set_object_arg(G_OBJECT(q), "latency-source", "auto");
  push_pull(h, 10, 10);
  fail_unless_equals_uint64(samples(q), 10);

  gst_harness_use_systemclock(h);
  gst_util_set_object_arg(G_OBJECT(q), "latency-source", "clock");
  fail_unless_equals_uint64(samples(q), 0);
  push_pull(h, 20, 5);
  fail_unless_equals_uint64(samples(q), 5);

  /* PAUSED: no running clock. */
  fail_unless_equals_int(gst_element_set_state(q, GST_STATE_PAUSED), GST_STATE_CHANGE_SUCCESS);
  push_pull(h, 25, 5);
  fail_unless_equals_uint64(samples(q), 5);
  gst_util_set_object_arg(G_OBJECT(q), "latency-source", "auto");
  push_pull(h, 30, 5);
  fail_unless_equals_uint64(samples(q), 5);
  fail_unless_equals_int(gst_element_set_state(q, GST_STATE_PLAYING), GST_STATE_CHANGE_SUCCESS);

  gst_harness_teardown(h);
  gst_object_unref(q);
}
GST_END_TEST;

/* ---- the demand floor ---- */

/* An element whose ticks never come within a test (a minute apart), with
 * an explicit capacity of 4 in the default bounds 4..32. */
static GstElement* make_overrun_queue(const char* leaky) {
  GstElement* q = make_queue("/nonexistent", 60 * GST_SECOND);
  g_object_set(q, "max-size-buffers", 4u, nullptr);
  gst_util_set_object_arg(G_OBJECT(q), "leaky", leaky);
  return q;
}

/* Makes the element ask upstream for its latency, as a pipeline does:
 * the harness answers live, 20 ms. */
static void learn_live_upstream(GstHarness* h, GstElement* q) {
  gst_harness_set_upstream_latency(h, 20 * GST_MSECOND);
  gst_harness_query_latency(h);
  Stats st(q);
  fail_unless(st.b("upstream-live"), "upstream not seen as live");
  fail_unless_equals_uint64(st.u64("upstream-min-latency"), 20 * GST_MSECOND);
}

/* With a live upstream, a push that finds the queue full grows it at once
 * to ceil(1.25 x (capacity + 1)) instead of blocking or dropping, up to
 * max-buffers: 4, 7, 10, 14, 19, 25, 32. Past that, leaky decides as on
 * queue: with leaky=no the push waits, with leaky=downstream the oldest
 * buffer goes. Each growth is an adaptation, posted with reason "overrun". */
GST_START_TEST(test_overrun_grows_live) {
  const bool leaky = __i__ == 1;
  GstElement* q = make_overrun_queue(leaky ? "downstream" : "no");
  Bus bus(q);
  GstHarness* h = start_harness(q);
  learn_live_upstream(h, q);
  Blocker block(q);
  fail_unless_equals_int(gst_harness_push(h, timed_buffer(0)), GST_FLOW_OK);
  block.wait_held();

  const guint sizes[] = {4, 7, 10, 14, 19, 25, 32};
  guint64 next = 1;
  for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
    /* Fill to the capacity; the push after finds it full. */
    while (next <= sizes[i])
      fail_unless_equals_int(gst_harness_push(h, timed_buffer(next++)), GST_FLOW_OK);
    fail_unless_equals_int(capacity(q), sizes[i]);
    fail_unless_equals_int(Stats(q).u("current-level-buffers"), sizes[i]);
  }
  fail_unless(bus.wait_adaptations(6), "%zu adaptations", bus.adaptations.size());
  for (size_t i = 0; i + 1 < G_N_ELEMENTS(sizes); i++) {
    const GstStructure* m = bus.adaptations[i];
    fail_unless_equals_string(gst_structure_get_string(m, "reason"), "overrun");
    fail_unless_equals_int(field_uint(m, "old-capacity"), sizes[i]);
    fail_unless_equals_int(field_uint(m, "new-capacity"), sizes[i + 1]);
    fail_unless_equals_int(field_uint(m, "level-buffers"), sizes[i]);
  }
  {
    Stats st(q);
    fail_unless_equals_uint64(st.u64("overrun-growths"), 6);
    fail_unless_equals_uint64(st.u64("adaptations"), 6);
    fail_unless_equals_uint64(st.u64("drops"), 0);
  }

  /* At max-buffers the queue is full for good. */
  Pusher pusher(h, next, 1);
  if (leaky) {
    AQ_WAIT_FOR(pusher.done() == 1);
    fail_unless_equals_uint64(Stats(q).u64("drops"), 1);
  } else {
    g_usleep(100 * 1000);
    fail_unless_equals_int(pusher.done(), 0);
  }
  fail_unless_equals_int(capacity(q), 32);
  block.release();
  AQ_WAIT_FOR(pusher.done() == 1);
  /* Nothing lost but the one leaky=downstream dropped, in order. */
  pull_in_order(h, 0, 1);
  pull_in_order(h, leaky ? 2 : 1, leaky ? 32 : 33);
  fail_unless_equals_int(bus.adaptations.size(), 6);

  gst_harness_teardown(h);
  gst_object_unref(q);
}
GST_END_TEST;

/* No growth where upstream is not live (backpressure is its normal state,
 * so its level is no sign of demand), nor with demand-headroom=0 (JetKVM's
 * rule alone): the push waits, as on queue. */
GST_START_TEST(test_overrun_waits_without_floor) {
  GstElement* q = make_overrun_queue("no");
  GstHarness* h = start_harness(q);
  if (__i__ == 1) {
    g_object_set(q, "demand-headroom", 0.0, nullptr);
    learn_live_upstream(h, q);
  }
  Blocker block(q);
  fail_unless_equals_int(gst_harness_push(h, timed_buffer(0)), GST_FLOW_OK);
  block.wait_held();
  for (guint64 i = 1; i <= 4; i++)
    fail_unless_equals_int(gst_harness_push(h, timed_buffer(i)), GST_FLOW_OK);
  Pusher pusher(h, 5, 1);
  g_usleep(100 * 1000);
  fail_unless_equals_int(pusher.done(), 0);
  fail_unless_equals_int(capacity(q), 4);
  block.release();
  AQ_WAIT_FOR(pusher.done() == 1);
  pull_in_order(h, 0, 6);
  Stats st(q);
  fail_unless_equals_uint64(st.u64("overrun-growths"), 0);
  fail_unless_equals_uint64(st.u64("adaptations"), 0);

  gst_harness_teardown(h);
  gst_object_unref(q);
}
GST_END_TEST;

/* leaky=no, live: growth goes past max-buffers (32) as far as a queue user's
 * limits keep data: 200 buffers by default (max-size-time 0 here), the time
 * limit where it binds first (1 s of 10 ms buffers: the level stops at 100
 * although the capacity grew to 102), or an explicit max-size-buffers in
 * place of 200 (here 20 < max-buffers, so max-buffers bounds it). Then the
 * push waits, as on queue, and nothing is lost. */
struct GrowthCase {
  const char* name;
  guint explicit_size; /* 0: not set */
  guint64 max_time;
  std::vector<guint> sizes; /* capacities, each found full by a push */
  guint full_at;            /* the level at which the push waits */
};

static const GrowthCase kGrowthCases[] = {
    {"200 buffers", 0, 0, {16, 22, 29, 38, 49, 63, 80, 102, 129, 163, 200}, 200},
    {"max-size-time 1 s", 0, GST_SECOND, {16, 22, 29, 38, 49, 63, 80, 102}, 100},
    {"max-size-buffers 20", 20, 0, {20, 27, 32}, 32},
};

GST_START_TEST(test_overrun_grows_past_max_buffers) {
  const GrowthCase& c = kGrowthCases[__i__];
  GstElement* q = make_queue("/nonexistent", 60 * GST_SECOND);
  g_object_set(q, "max-size-time", c.max_time, nullptr);
  if (c.explicit_size)
    g_object_set(q, "max-size-buffers", c.explicit_size, nullptr);
  Bus bus(q);
  GstHarness* h = start_harness(q);
  learn_live_upstream(h, q);
  Blocker block(q);
  fail_unless_equals_int(gst_harness_push(h, timed_buffer(0)), GST_FLOW_OK);
  block.wait_held();

  guint64 next = 1;
  for (guint size : c.sizes) {
    while (next <= std::min(size, c.full_at))
      fail_unless_equals_int(gst_harness_push(h, timed_buffer(next++)), GST_FLOW_OK);
    fail_unless_equals_int(capacity(q), size);
  }
  fail_unless_equals_int(uint_prop(q, "max-buffers"), 32);
  fail_unless_equals_uint64(Stats(q).u64("overrun-growths"), c.sizes.size() - 1);

  /* Full for good: the push waits, and nothing was dropped. */
  Pusher pusher(h, next, 1);
  g_usleep(100 * 1000);
  fail_unless_equals_int(pusher.done(), 0);
  fail_unless_equals_int(Stats(q).u("current-level-buffers"), c.full_at);
  fail_unless_equals_int(capacity(q), c.sizes.back());
  block.release();
  AQ_WAIT_FOR(pusher.done() == 1);
  pull_in_order(h, 0, c.full_at + 2);
  fail_unless_equals_uint64(Stats(q).u64("drops"), 0);

  gst_harness_teardown(h);
  gst_object_unref(q);
}
GST_END_TEST;

/* After a growth to 200, the ticks bring the capacity back: the floor holds
 * it while the demand window holds the level of 200, then JetKVM's step
 * takes it within min-buffers..max-buffers at once (its result is clamped
 * there) and on down under load. */
GST_START_TEST(test_growth_comes_back) {
  LoadFixture load(90, 90);
  TickDriver ticks(&load);
  GstElement* q = make_queue(load.dir(), kTickInterval);
  g_object_set(q, "latency-weight", 0.0, "max-size-time", G_GUINT64_CONSTANT(0), "demand-window",
               100 * GST_MSECOND, nullptr);
  Bus bus(q);
  GstHarness* h = start_harness(q);
  learn_live_upstream(h, q);
  Blocker block(q);
  fail_unless_equals_int(gst_harness_push(h, timed_buffer(0)), GST_FLOW_OK);
  block.wait_held();
  for (guint64 i = 1; i <= 200; i++)
    fail_unless_equals_int(gst_harness_push(h, timed_buffer(i)), GST_FLOW_OK);
  fail_unless_equals_int(capacity(q), 200);
  block.release();
  pull_in_order(h, 0, 201);

  /* The interval saw 200: the floor holds 200. */
  ticks.run(1);
  fail_unless_equals_int(capacity(q), 200);
  fail_unless_equals_int(Stats(q).u("demand-floor"), 200);
  /* Past the window, JetKVM's step alone: 200 is clamped to 32 at once. */
  g_usleep(300 * 1000);
  ticks.run(1);
  fail_unless_equals_int(capacity(q), 32);
  fail_unless_equals_int(Stats(q).u("demand-floor"), 0);
  const guint settle = ticks_to_settle(32, -0.8, 4, 32, 0.3);
  ticks.run(settle);
  fail_unless_equals_int(capacity(q), 6);

  gst_harness_teardown(h);
  gst_object_unref(q);
}
GST_END_TEST;

/* leaky=downstream, live: a burst of 10 behind a stalled consumer is the
 * need of its interval, and the trimmer keeps it; ticks that see no rise
 * make it forget (95th percentile, forget factor 0.983: about 20 ticks),
 * until it keeps 1. At the default trim period, 20 s after the last tick
 * with the level at or below the keep level, the 9 oldest go at once: not
 * at 19 s. A non-live upstream, or demand-headroom 0 (JetKVM's step alone),
 * never trims, even at the shortest period. */
GST_START_TEST(test_trims_standing_backlog) {
  const bool trims = __i__ == 0;
  GstElement* q = make_queue("/nonexistent", 60 * GST_SECOND);
  gst_util_set_object_arg(G_OBJECT(q), "leaky", "downstream");
  fail_unless_equals_uint64(uint64_prop(q, "trim-period"), 20 * GST_SECOND);
  if (__i__ == 2)
    g_object_set(q, "demand-headroom", 0.0, nullptr);
  if (!trims)
    g_object_set(q, "trim-period", 100 * GST_MSECOND, nullptr);
  TickDriver ticks;
  GstHarness* h = start_harness(q);
  if (__i__ != 1)
    learn_live_upstream(h, q);
  Blocker block(q);
  fail_unless_equals_int(gst_harness_push(h, timed_buffer(0)), GST_FLOW_OK);
  block.wait_held();
  for (guint64 i = 1; i <= 10; i++)
    fail_unless_equals_int(gst_harness_push(h, timed_buffer(i)), GST_FLOW_OK);

  ticks.run(1);
  /* Not live, the trimmer is not fed at all. */
  fail_unless_equals_int(Stats(q).u("trim-keep"), __i__ == 1 ? 1 : 10);
  const gint64 t0 = g_get_monotonic_time();
  fail_unless(ticks.run_until([&] { return Stats(q).u("trim-keep") == 1; }),
              "the need of 10 is never forgotten");
  const gint64 t1 = g_get_monotonic_time();
  if (trims) {
    /* The stretch began at a tick between t0 and t1. */
    if (t1 < t0 + 19 * G_USEC_PER_SEC) {
      g_usleep(t0 + 19 * G_USEC_PER_SEC - g_get_monotonic_time());
      ticks.run(1);
      /* Unless the tick came a second late, past the period. */
      if (g_get_monotonic_time() < t0 + 20 * G_USEC_PER_SEC)
        fail_unless_equals_uint64(Stats(q).u64("trims"), 0);
    }
    g_usleep(t1 + 20 * G_USEC_PER_SEC + 50 * 1000 - g_get_monotonic_time());
  } else {
    /* Past the shortest period, the level still above the keep level. */
    ticks.run(3);
    g_usleep(200 * 1000);
  }
  ticks.run(1);
  {
    Stats st(q);
    fail_unless_equals_uint64(st.u64("trims"), trims ? 1 : 0);
    fail_unless_equals_uint64(st.u64("trimmed-buffers"), trims ? 9 : 0);
    fail_unless_equals_uint64(st.u64("drops"), trims ? 9 : 0);
    fail_unless_equals_int(st.u("current-level-buffers"), trims ? 1 : 10);
  }
  block.release();
  pull_in_order(h, 0, 1);
  pull_in_order(h, trims ? 10 : 1, trims ? 1 : 10);

  gst_harness_teardown(h);
  gst_object_unref(q);
}
GST_END_TEST;

/* Under a load that shrinks the capacity, the floor keeps it at
 * ceil(1.25 x the highest level of the demand window) while that level is
 * in the window; once it has left, JetKVM's step shrinks on from there. */
GST_START_TEST(test_floor_holds_under_load) {
  LoadFixture load(90, 90);
  TickDriver ticks(&load);
  GstElement* q = make_queue(load.dir(), kTickInterval);
  /* The shortest window, so the test can wait it out. */
  g_object_set(q, "latency-weight", 0.0, "demand-window", 100 * GST_MSECOND, nullptr);
  Bus bus(q);
  GstHarness* h = start_harness(q);
  learn_live_upstream(h, q);

  /* 12 queued behind a stalled downstream: the floor is 15. */
  Blocker block(q);
  fail_unless_equals_int(gst_harness_push(h, timed_buffer(0)), GST_FLOW_OK);
  block.wait_held();
  for (guint64 i = 1; i <= 12; i++)
    fail_unless_equals_int(gst_harness_push(h, timed_buffer(i)), GST_FLOW_OK);
  /* JetKVM's step alone would go 16 -> 13 (f = -0.8); the floor holds 15. */
  ticks.run(1);
  expect_steps(q, bus, {{16, 15}}, 0);
  fail_unless_equals_int(field_uint(bus.adaptations[0], "demand-floor"), 15);
  ticks.run(4);
  expect_steps(q, bus, {}, 1);
  fail_unless_equals_int(Stats(q).u("demand-floor"), 15);

  /* The stall ends; one tick still sees the 12 of its interval. */
  block.release();
  pull_in_order(h, 0, 13);
  ticks.run(1);
  expect_steps(q, bus, {}, 1);
  /* Past the window, nothing is left of that demand. */
  g_usleep(300 * 1000);
  const guint settle = ticks_to_settle(15, -0.8, 4, 32, 0.3);
  ticks.run(settle);
  expect_steps(q, bus, expected_steps(15, -0.8, 4, 32, 0.3, settle), 1);
  fail_unless_equals_int(capacity(q), 6);
  fail_unless_equals_int(Stats(q).u("demand-floor"), 0);

  gst_harness_teardown(h);
  gst_object_unref(q);
}
GST_END_TEST;

/* The default latency reading (auto) is the lateness at output beyond the
 * latency upstream declares; clock is the raw lateness. The harness's test
 * clock reads 100 ms as a buffer of running time 50 ms leaves: 50 ms late,
 * 30 ms beyond upstream's 20 ms. */
GST_START_TEST(test_latency_beyond_upstream) {
  const char* sources[] = {"auto", "clock"};
  const gint64 expected[] = {30 * GST_MSECOND, 50 * GST_MSECOND};
  GstElement* q = make_queue("/nonexistent", 60 * GST_SECOND);
  gst_util_set_object_arg(G_OBJECT(q), "latency-source", sources[__i__]);
  GstHarness* h = start_harness(q);
  learn_live_upstream(h, q);
  fail_unless(gst_harness_set_time(h, 100 * GST_MSECOND), "cannot set the clock");
  fail_unless_equals_int(gst_harness_push(h, make_buffer(0, 50 * GST_MSECOND, 10 * GST_MSECOND)),
                         GST_FLOW_OK);
  pull_in_order(h, 0, 1);
  Stats st(q);
  fail_unless_equals_uint64(st.u64("latency-samples"), 1);
  fail_unless_equals_int64(st.i64("latency-average"), expected[__i__]);

  gst_harness_teardown(h);
  gst_object_unref(q);
}
GST_END_TEST;

/* A restart forgets upstream's latency answer: the next start may have
 * another upstream, or a non-live one, so what holds only for a live
 * upstream (overrun growth, the floor, trimming) waits for a new answer. */
GST_START_TEST(test_upstream_latency_forgotten_on_restart) {
  GstElement* q = make_overrun_queue("downstream");
  GstHarness* h = start_harness(q);
  learn_live_upstream(h, q);
  fail_unless_equals_int(gst_element_set_state(q, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  fail_unless_equals_int(gst_element_set_state(q, GST_STATE_PLAYING), GST_STATE_CHANGE_SUCCESS);
  {
    Stats st(q);
    fail_if(st.b("upstream-live"), "a live answer outlived the restart");
    fail_unless_equals_uint64(st.u64("upstream-min-latency"), 0);
  }
  learn_live_upstream(h, q);

  gst_harness_teardown(h);
  gst_object_unref(q);
}
GST_END_TEST;

/* Setting load-scope while the element runs takes effect at the next tick:
 * it leaves the old scope's shared sampler for one of the new scope. */
GST_START_TEST(test_load_scope_change_while_running) {
  TickDriver ticks;
  GstElement* q = make_queue("/proc", kTickInterval);
  gst_util_set_object_arg(G_OBJECT(q), "load-scope", "system");
  GstHarness* h = start_harness(q);
  fail_unless(ticks.run_until([&] { return Stats(q).str("load-scope") == "system"; }),
              "load-scope read %s, not system", Stats(q).str("load-scope").c_str());
  gst_util_set_object_arg(G_OBJECT(q), "load-scope", "process");
  fail_unless(ticks.run_until([&] { return Stats(q).str("load-scope") == "process"; }),
              "load-scope read %s after the change to process", Stats(q).str("load-scope").c_str());

  gst_harness_teardown(h);
  gst_object_unref(q);
}
GST_END_TEST;

/* Setting properties again and again, the interval among them, neither
 * postpones the pending tick nor adds one: it stays due one interval after
 * the last tick. A new interval moves it to one new interval after the last
 * tick, and setting that again moves it no further. */
GST_START_TEST(test_tick_schedule_under_repeated_sets) {
  TempTree tree;
  write_good_tree(tree);
  TickDriver ticks;
  GstElement* q = make_queue(tree.dir(), kTickInterval);
  GstHarness* h = start_harness(q);
  AQ_WAIT_FOR(ticks.pending() == 1);
  const GstClockTime due = ticks.next_due();
  fail_unless_equals_uint64(due, ticks.now() + kTickInterval);

  for (int i = 0; i < 10; i++) {
    ticks.advance(5 * GST_MSECOND);
    g_object_set(q, "adaptation-interval", kTickInterval, "cpu-weight", 0.5, "max-size-buffers", 16,
                 nullptr);
    fail_unless_equals_int(ticks.pending(), 1);
    fail_unless_equals_uint64(ticks.next_due(), due);
  }
  ticks.run(1);
  fail_unless_equals_uint64(Stats(q).u64("ticks"), 1);
  AQ_WAIT_FOR(ticks.pending() == 1);
  fail_unless_equals_uint64(ticks.next_due(), due + kTickInterval);

  const GstClockTime shorter = 60 * GST_MSECOND;
  for (int i = 0; i < 5; i++) {
    g_object_set(q, "adaptation-interval", shorter, nullptr);
    fail_unless_equals_int(ticks.pending(), 1);
    fail_unless_equals_uint64(ticks.next_due(), due + shorter);
    ticks.advance(10 * GST_MSECOND);
  }
  /* Past the due time, a new interval makes the tick due at once. */
  ticks.advance(20 * GST_MSECOND);
  g_object_set(q, "adaptation-interval", 50 * GST_MSECOND, nullptr);
  fail_unless_equals_int(ticks.pending(), 1);
  fail_unless_equals_uint64(ticks.next_due(), ticks.now());
  ticks.run(1);
  fail_unless_equals_uint64(Stats(q).u64("ticks"), 2);

  gst_harness_teardown(h);
  gst_object_unref(q);
}
GST_END_TEST;

/* Trimming as the element applies it: with trim-period, leaky=downstream
 * and a live upstream, a backlog that stands for the whole period (no
 * overrun) is cut to the recent need (`trim-keep`) at the first tick past
 * the period, once; the oldest go, counted as drops and trims. Not before
 * the period, and not while the level dips to the need. */
GST_START_TEST(test_trim_standing_backlog) {
  /* No load sample (the counters never move): the capacity stays, and
   * ticks run at once, so two ticks in a row are well inside the period. */
  TempTree tree;
  write_good_tree(tree);
  TickDriver ticks;
  GstElement* q = make_queue(tree.dir(), kTickInterval);
  gst_util_set_object_arg(G_OBJECT(q), "leaky", "downstream");
  const GstClockTime period = 500 * GST_MSECOND;
  g_object_set(q, "trim-period", period, nullptr);
  GstHarness* h = start_harness(q);
  learn_live_upstream(h, q);

  /* A first stretch that a dip below 2 interrupts: nothing is trimmed. */
  Blocker block(q);
  fail_unless_equals_int(gst_harness_push(h, timed_buffer(0)), GST_FLOW_OK);
  block.wait_held();
  fail_unless_equals_int(gst_harness_push(h, timed_buffer(1)), GST_FLOW_OK);
  ticks.run(1);
  g_usleep(period / 1000 + 20 * 1000);
  ticks.run(1);
  {
    Stats st(q);
    fail_unless_equals_uint64(st.u64("trims"), 0);
    fail_unless_equals_uint64(st.u64("drops"), 0);
  }

  /* Ten queued: a stretch starts at this tick; before the period is over
   * nothing goes. */
  for (guint64 i = 2; i <= 10; i++)
    fail_unless_equals_int(gst_harness_push(h, timed_buffer(i)), GST_FLOW_OK);
  fail_unless_equals_int(Stats(q).u("current-level-buffers"), 10);
  const gint64 stretch_ticks_from = g_get_monotonic_time();
  ticks.run(1);
  ticks.run(1);
  /* Only when the machine ran both ticks within the period; the checks
   * after the trim hold either way. */
  if (g_get_monotonic_time() - stretch_ticks_from < static_cast<gint64>(period / 1000)) {
    fail_unless_equals_uint64(Stats(q).u64("trims"), 0);
    fail_unless_equals_int(Stats(q).u("current-level-buffers"), 10);
  }

  g_usleep(period / 1000 + 20 * 1000);
  ticks.run(1);
  {
    Stats st(q);
    fail_unless_equals_uint64(st.u64("trims"), 1);
    /* The burst rose by 9 in one interval: that is the need kept. */
    fail_unless_equals_int(st.u("trim-keep"), 9);
    fail_unless_equals_uint64(st.u64("trimmed-buffers"), 1);
    fail_unless_equals_uint64(st.u64("drops"), 1);
    fail_unless_equals_int(st.u("current-level-buffers"), 9);
    fail_unless_equals_int(st.u("capacity"), 16);
  }
  /* Once: the level is at the need now, so no stretch runs. */
  g_usleep(period / 1000 + 20 * 1000);
  ticks.run(2);
  fail_unless_equals_uint64(Stats(q).u64("trims"), 1);

  /* The held one, then the rest from the one after the oldest queued,
   * marked DISCONT after the gap. */
  block.release();
  pull_in_order(h, 0, 1);
  GstBuffer* b = gst_harness_pull(h);
  fail_unless(b != nullptr, "the buffer after the trimmed one is missing");
  fail_unless_equals_uint64(GST_BUFFER_OFFSET(b), 2);
  fail_unless(GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DISCONT), "no DISCONT after the trim");
  gst_buffer_unref(b);
  pull_in_order(h, 3, 8);
  AQ_WAIT_FOR(Stats(q).u64("buffers-pushed") == 10);

  gst_harness_teardown(h);
  gst_object_unref(q);
}
GST_END_TEST;

static Suite* adaptation_suite(void) {
  Suite* s = suite_create("adaptivequeue-adaptation");

  TCase* tc = tcase_create("formulas");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, test_sequence_follows_formulas, 0, static_cast<int>(scenarios().size()));
  tcase_add_test(tc, test_latency_factor_moves_capacity);
  tcase_add_test(tc, test_latency_message_only_when_needed);
  tcase_add_test(tc, test_manual_capacity);
  tcase_add_test(tc, test_tick_schedule_under_repeated_sets);
  suite_add_tcase(s, tc);

  tc = tcase_create("demand");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, test_overrun_grows_live, 0, 2);
  tcase_add_loop_test(tc, test_overrun_waits_without_floor, 0, 2);
  tcase_add_loop_test(tc, test_overrun_grows_past_max_buffers, 0, G_N_ELEMENTS(kGrowthCases));
  tcase_add_test(tc, test_growth_comes_back);
  tcase_add_loop_test(tc, test_trims_standing_backlog, 0, 3);
  tcase_add_test(tc, test_floor_holds_under_load);
  tcase_add_loop_test(tc, test_latency_beyond_upstream, 0, 2);
  tcase_add_test(tc, test_upstream_latency_forgotten_on_restart);
  tcase_add_test(tc, test_load_scope_change_while_running);
  suite_add_tcase(s, tc);

  tc = tcase_create("robustness");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, test_bad_configuration, 0, 3);
  tcase_add_test(tc, test_bad_configuration_from_start);
  suite_add_tcase(s, tc);

  tc = tcase_create("resizing");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_shrink_not_leaky_keeps_all);
  tcase_add_test(tc, test_shrink_leaky_downstream_drops_oldest);
  tcase_add_test(tc, test_shrink_leaky_upstream_drops_new);
  tcase_add_test(tc, test_grow_wakes_upstream);
  tcase_add_test(tc, test_shrink_wakes_held_back_task);
  tcase_add_test(tc, test_trim_standing_backlog);
  suite_add_tcase(s, tc);

  tc = tcase_create("latency-samples");
  tcase_add_test(tc, test_no_sample_without_timestamps);
  tcase_add_test(tc, test_no_sample_without_time_segment);
  tcase_add_test(tc, test_clock_latency_needs_clock);
  tcase_add_test(tc, test_clock_latency_before_base_time);
  suite_add_tcase(s, tc);

  return s;
}

GST_CHECK_MAIN(adaptation);
