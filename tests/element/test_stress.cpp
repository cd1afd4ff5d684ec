/* adaptivequeue under stress, each test bounded in time by a watchdog:
 * state cycles with a live source, flushing seeks every 50 ms, four threads
 * setting properties while data flows, 100 instances sharing one /proc
 * sampler, and a procfs root that flaps between present, absent and garbage.
 * Every test checks that nothing queued with leaky=no is lost and that the
 * element still answers at the end.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <poll.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "aq_test.h"

using namespace aqt;

namespace {

/* ---- watchdog ---- */

/* Prints every thread's stack with gdb, if it is installed: a deadlock
 * report is worth little without them. */
void print_backtraces() {
  gchar* gdb = g_find_program_in_path("gdb");
  if (!gdb)
    return;
#ifdef PR_SET_PTRACER
  /* Under Yama a child may not attach to its parent unless allowed. */
  prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
#endif
  gchar* pid = g_strdup_printf("%d", static_cast<int>(getpid()));
  const gchar* argv[] = {gdb, "-nx", "-batch", "-p", pid, "-ex", "thread apply all bt", nullptr};
  g_spawn_sync(nullptr, const_cast<gchar**>(argv), nullptr, G_SPAWN_DEFAULT, nullptr, nullptr,
               nullptr, nullptr, nullptr, nullptr);
  g_free(pid);
  g_free(gdb);
}

/* The newest watchdog. Without fork a failed check unwinds no destructor,
 * so a failed test's watchdog lives on (its state is on the heap for that
 * reason): the next test's retires it. */
std::atomic<unsigned> watchdog_generation{0};

/* Aborts the test with a clear message if it is still running after its
 * bound (scaled by slowdown()): a deadlock must fail, not hang the suite. */
class Watchdog {
 public:
  Watchdog(const char* what, int seconds) : state_(std::make_shared<State>()) {
    state_->what = what;
    state_->seconds = seconds * slowdown();
    state_->generation = ++watchdog_generation;
    thread_ = std::thread([state = state_] {
      std::unique_lock<std::mutex> lock(state->mutex);
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(state->seconds);
      if (!state->cond.wait_until(lock, deadline, [&] { return state->done; }) &&
          watchdog_generation == state->generation) {
        std::fprintf(stderr,
                     "\nWATCHDOG: '%s' did not finish within %d s: "
                     "deadlock or livelock. Thread stacks follow.\n",
                     state->what, state->seconds);
        std::fflush(stderr);
        print_backtraces();
        std::abort();
      }
    });
  }
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      state_->done = true;
    }
    state_->cond.notify_all();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  struct State {
    const char* what = nullptr;
    int seconds = 0;
    unsigned generation = 0;
    std::mutex mutex;
    std::condition_variable cond;
    bool done = false;
  };
  std::shared_ptr<State> state_;
  std::thread thread_;
};

/* Reads every readable property, as an inspector would. */
void read_all_properties(GstElement* q) {
  guint n = 0;
  GParamSpec** specs = g_object_class_list_properties(G_OBJECT_GET_CLASS(q), &n);
  for (guint i = 0; i < n; i++) {
    if (!(specs[i]->flags & G_PARAM_READABLE))
      continue;
    GValue v = G_VALUE_INIT;
    g_value_init(&v, specs[i]->value_type);
    g_object_get_property(G_OBJECT(q), specs[i]->name, &v);
    g_value_unset(&v);
  }
  g_free(specs);
}

/* The element answers property reads and writes, and its stats agree with
 * its properties. */
void check_responds(GstElement* q) {
  read_all_properties(q);
  /* A tick may move the capacity between two reads: retry until it held
   * still around the stats read. */
  bool compared = false;
  for (int attempt = 0; attempt < 5 && !compared; attempt++) {
    guint before = 0, after = 0, in_stats = 0;
    g_object_get(q, "max-size-buffers", &before, nullptr);
    GstStructure* s = nullptr;
    g_object_get(q, "stats", &s, nullptr);
    ck_assert(s != nullptr && gst_structure_has_name(s, "adaptivequeue-stats"));
    ck_assert(gst_structure_get_uint(s, "capacity", &in_stats));
    gst_structure_free(s);
    g_object_get(q, "max-size-buffers", &after, nullptr);
    if (before == after) {
      fail_unless_equals_int(in_stats, before);
      compared = true;
    }
  }
  fail_unless(compared, "the capacity never held still");

  gboolean silent = FALSE;
  g_object_get(q, "silent", &silent, nullptr);
  g_object_set(q, "silent", !silent, nullptr);
  gboolean flipped = silent;
  g_object_get(q, "silent", &flipped, nullptr);
  fail_unless(flipped == !silent, "property write did not take");
  g_object_set(q, "silent", silent, nullptr);
}

/* Follows the buffers through one queue: each one leaving must be the
 * oldest one that entered and has not left yet. A buffer skipped over is
 * lost, one never seen entering (or seen twice) is a mismatch. A flush, or
 * reset() in NULL, legitimately discards what is queued. */
class Flow {
 public:
  explicit Flow(GstElement* queue) {
    probe(queue, "sink", on_sink);
    probe(queue, "src", on_src);
  }
  Flow(const Flow&) = delete;
  Flow& operator=(const Flow&) = delete;

  guint64 in() const { return in_; }
  guint64 out() const { return out_; }
  /* Buffers out since the last FLUSH_STOP, and the first one's PTS. */
  guint64 epoch_in() const { return epoch_in_; }
  guint64 epoch_out() const { return epoch_out_; }
  GstClockTime first_pts() const { return first_pts_; }
  guint64 flushes() const { return flushes_; }
  guint64 lost() const { return lost_; }
  guint64 mismatched() const { return mismatched_; }

  /* Nothing lost, duplicated or reordered so far. */
  void check() const {
    fail_unless(lost_ == 0 && mismatched_ == 0,
                "%" G_GUINT64_FORMAT " buffers lost, %" G_GUINT64_FORMAT
                " out of order or unknown (%" G_GUINT64_FORMAT " in, %" G_GUINT64_FORMAT " out)",
                lost_.load(), mismatched_.load(), in_.load(), out_.load());
  }

  /* Everything that entered has left. */
  void check_drained() const {
    check();
    std::lock_guard<std::mutex> lock(mutex_);
    fail_unless(pending_.empty(), "%zu buffers never left", pending_.size());
  }

  /* Only while no streaming thread runs (NULL state). */
  void reset() {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_.clear();
    in_ = out_ = epoch_in_ = epoch_out_ = 0;
    first_pts_ = GST_CLOCK_TIME_NONE;
  }

 private:
  void probe(GstElement* queue, const char* name, GstPadProbeCallback callback) {
    GstPad* pad = gst_element_get_static_pad(queue, name);
    ck_assert(pad != nullptr);
    gst_pad_add_probe(
        pad,
        static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_FLUSH),
        callback, this, nullptr);
    gst_object_unref(pad);
  }

  static guint64 id(GstBuffer* b) {
    return GST_BUFFER_OFFSET_IS_VALID(b) ? GST_BUFFER_OFFSET(b) : GST_BUFFER_PTS(b);
  }

  static bool is_flush_stop(GstPadProbeInfo* info) {
    return (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_EVENT_FLUSH) &&
           GST_EVENT_TYPE(GST_PAD_PROBE_INFO_EVENT(info)) == GST_EVENT_FLUSH_STOP;
  }

  /* At the sink pad FLUSH_STOP comes before the queue drops its content,
   * with its task already paused: what is pending is what it drops. */
  static GstPadProbeReturn on_sink(GstPad*, GstPadProbeInfo* info, gpointer data) {
    auto* self = static_cast<Flow*>(data);
    std::lock_guard<std::mutex> lock(self->mutex_);
    if (is_flush_stop(info)) {
      self->pending_.clear();
      self->epoch_in_ = 0;
    } else if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER) {
      self->pending_.push_back(id(GST_PAD_PROBE_INFO_BUFFER(info)));
      self->in_++;
      self->epoch_in_++;
    }
    return GST_PAD_PROBE_OK;
  }

  static GstPadProbeReturn on_src(GstPad*, GstPadProbeInfo* info, gpointer data) {
    auto* self = static_cast<Flow*>(data);
    std::lock_guard<std::mutex> lock(self->mutex_);
    if (is_flush_stop(info)) {
      self->epoch_out_ = 0;
      self->first_pts_ = GST_CLOCK_TIME_NONE;
      self->flushes_++;
      return GST_PAD_PROBE_OK;
    }
    if (!(GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER))
      return GST_PAD_PROBE_OK;
    GstBuffer* b = GST_PAD_PROBE_INFO_BUFFER(info);
    const auto it = std::find(self->pending_.begin(), self->pending_.end(), id(b));
    if (it == self->pending_.end()) {
      self->mismatched_++;
    } else {
      self->lost_ += static_cast<guint64>(it - self->pending_.begin());
      self->pending_.erase(self->pending_.begin(), it + 1);
    }
    if (self->epoch_out_ == 0)
      self->first_pts_ = GST_BUFFER_PTS(b);
    self->out_++;
    self->epoch_out_++;
    return GST_PAD_PROBE_OK;
  }

  mutable std::mutex mutex_;
  std::deque<guint64> pending_;
  std::atomic<guint64> in_{0};
  std::atomic<guint64> out_{0};
  std::atomic<guint64> epoch_in_{0};
  std::atomic<guint64> epoch_out_{0};
  std::atomic<GstClockTime> first_pts_{GST_CLOCK_TIME_NONE};
  std::atomic<guint64> flushes_{0};
  std::atomic<guint64> lost_{0};
  std::atomic<guint64> mismatched_{0};
};

/* ---- 1,000 state cycles with a live source ---- */

GST_START_TEST(test_state_cycles) {
  Watchdog dog("1000 state cycles", 150);
  /* A load that flips keeps the capacity moving during the cycles. */
  LoadFixture load(10, 20);
  load.flip(90, 90, 5, 10, 30000);
  /* 1 ms buffers, so several pass in each PLAYING spell. */
  GstElement* pipeline = launch(
      "audiotestsrc is-live=true samplesperbuffer=44 ! "
      "adaptivequeue name=q adaptation-interval=10000000 proc-root=" +
      std::string(load.dir()) + " ! fakesink sync=true");
  GstElement* q = by_name(pipeline, "q");
  Flow flow(q);
  Bus bus(pipeline);
  std::mt19937 rng(1);
  guint to_null = 0, to_paused = 0;
  guint64 delivered = 0;

  change_state(pipeline, GST_STATE_PLAYING);
  for (int i = 0; i < 1000; i++) {
    /* Vary the moment: mid-push, mid-tick, while prerolling. */
    g_usleep(rng() % 12000);
    /* Every tenth spell must deliver: data flows again after each kind of
     * cycle. A wait, not a count, since a loaded machine delivers little in
     * the others' few milliseconds. */
    if (i % 10 == 9) {
      const guint64 before = flow.out();
      fail_unless(wait_until([&] { return flow.out() > before; }, 10 * G_USEC_PER_SEC),
                  "no buffer in PLAYING after cycle %d", i);
    }
    if (rng() % 2) {
      change_state(pipeline, GST_STATE_NULL);
      /* Buffers queued at NULL are discarded; none before. */
      flow.check();
      delivered += flow.out();
      flow.reset();
      to_null++;
    } else {
      change_state(pipeline, GST_STATE_PAUSED);
      to_paused++;
    }
    change_state(pipeline, GST_STATE_PLAYING);
    bus.drain();
    bus.check_no_error();
  }
  fail_unless(to_null > 400 && to_paused > 400, "cycles not mixed: %u / %u", to_null, to_paused);
  GST_INFO("%u to NULL, %u to PAUSED, %" G_GUINT64_FORMAT " buffers, %" G_GUINT64_FORMAT
           " adaptations",
           to_null, to_paused, delivered, Stats(q).u64("adaptations"));

  /* The last run ends in EOS: everything that entered since the last NULL
   * must have left. */
  g_usleep(200000);
  ck_assert(gst_element_send_event(pipeline, gst_event_new_eos()));
  expect_eos(bus, 10 * G_USEC_PER_SEC);
  flow.check_drained();
  ck_assert(flow.out() > 0);
  fail_unless_equals_uint64(Stats(q).u64("drops"), 0);
  ck_assert(Stats(q).u64("ticks") > 0);
  check_responds(q);
  change_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
}
GST_END_TEST;

/* ---- 150 flushing seeks, 50 ms apart ---- */

GST_START_TEST(test_flushing_seeks) {
  Watchdog dog("flushing seeks", 60);
  LoadFixture load(10, 20);
  load.flip(90, 90, 5, 10, 200000);
  /* Non-live, so seekable; the sink syncs, so the queue is full at each
   * flush and upstream is blocked on it. 441 samples = 10 ms. */
  GstElement* pipeline = launch(
      "audiotestsrc samplesperbuffer=441 ! "
      "adaptivequeue name=q adaptation-interval=50000000 proc-root=" +
      std::string(load.dir()) + " ! fakesink sync=true");
  GstElement* q = by_name(pipeline, "q");
  Flow flow(q);
  Bus bus(pipeline);
  std::mt19937 rng(2);

  change_state(pipeline, GST_STATE_PLAYING);
  /* A count, not a time: a loaded machine takes longer, never fewer. */
  constexpr guint kSeeks = 150;
  guint64 overruns = 0;
  for (guint seeks = 0; seeks < kSeeks; seeks++) {
    const gint64 now = g_get_monotonic_time();
    /* Far apart positions, so stale data would show in the timestamps. */
    const GstClockTime pos = (rng() % 20000) * GST_MSECOND;
    const guint64 flushes = flow.flushes();
    fail_unless(gst_element_seek_simple(pipeline, GST_FORMAT_TIME, GST_SEEK_FLAG_FLUSH,
                                        static_cast<gint64>(pos)),
                "seek %u refused", seeks);
    fail_unless(flow.flushes() > flushes, "seek %u did not flush the queue", seeks);
    fail_unless(wait_until([&] { return flow.epoch_out() > 0; }, 5 * G_USEC_PER_SEC),
                "no data within 5 s after seek %u to %" GST_TIME_FORMAT, seeks, GST_TIME_ARGS(pos));
    /* The first buffer out comes from the new position, not from before. */
    const GstClockTime first = flow.first_pts();
    fail_unless(first + GST_MSECOND >= pos && first <= pos + GST_MSECOND,
                "after seek %u to %" GST_TIME_FORMAT " the first buffer is at %" GST_TIME_FORMAT,
                seeks, GST_TIME_ARGS(pos), GST_TIME_ARGS(first));
    flow.check();
    bus.drain();
    bus.check_no_error();
    overruns = Stats(q).u64("overruns");
    const gint64 next = now + 50000;
    if (g_get_monotonic_time() < next)
      g_usleep(static_cast<gulong>(next - g_get_monotonic_time()));
  }
  GST_INFO("%u seeks, %" G_GUINT64_FORMAT " overruns, %" G_GUINT64_FORMAT " adaptations", kSeeks,
           overruns, Stats(q).u64("adaptations"));
  /* Upstream did block on a full queue, so flushes woke a waiting thread. */
  fail_unless(overruns > 0, "the queue never filled");

  /* A last segment of exactly 300 ms (30 buffers) runs to EOS: all of it
   * must come out. */
  ck_assert(gst_element_seek(pipeline, 1.0, GST_FORMAT_TIME, GST_SEEK_FLAG_FLUSH, GST_SEEK_TYPE_SET,
                             GST_SECOND, GST_SEEK_TYPE_SET, 1300 * GST_MSECOND));
  expect_eos(bus, 10 * G_USEC_PER_SEC);
  fail_unless_equals_uint64(flow.epoch_in(), 30);
  fail_unless_equals_uint64(flow.epoch_out(), 30);
  fail_unless_equals_uint64(flow.first_pts(), GST_SECOND);
  flow.check_drained();
  fail_unless_equals_uint64(Stats(q).u64("drops"), 0);
  check_responds(q);
  change_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
}
GST_END_TEST;

/* ---- four threads setting properties while data flows ---- */

/* Counts GLib's warnings about values outside a property's range. */
std::atomic<guint> range_warnings{0};
/* Reads of "stats" that gave nothing. */
std::atomic<guint> missing_stats{0};

gboolean on_range_warning(const gchar*, GLogLevelFlags, const gchar*, gpointer) {
  range_warnings++;
  return TRUE;
}

/* One thread's random writes and reads. Returns how many writes were out of
 * range for their GParamSpec, which GLib must reject with a warning. Leaky
 * stays "no" and flush-on-eos false, so no buffer may go missing; a time
 * ceiling is always set, so the queue drains quickly at the end. */
guint hammer_properties(GstElement* q, const std::string& good_root, unsigned seed, gint64 end) {
  std::mt19937 rng(seed);
  auto pick = [&](guint n) { return static_cast<guint>(rng() % n); };
  auto percent = [&] { return static_cast<double>(pick(10001)) / 100.0; };
  auto fraction = [&] { return static_cast<double>(pick(1001)) / 1000.0; };
  const double nan = std::nan("");
  guint out_of_range = 0;

  while (g_get_monotonic_time() < end) {
    switch (pick(24)) {
      case 0: {
        const guint values[] = {0, 1, 2, 4, 16, 32, 64, 65535, G_MAXUINT};
        g_object_set(q, "max-size-buffers", values[pick(9)], nullptr);
        break;
      }
      case 1: {
        const guint values[] = {0, 1, 441 * 2, 100000, G_MAXUINT};
        g_object_set(q, "max-size-bytes", values[pick(5)], nullptr);
        break;
      }
      case 2:
        g_object_set(q, "max-size-time", static_cast<guint64>(1 + pick(200)) * GST_MSECOND,
                     nullptr);
        break;
      case 3:
        g_object_set(q, "min-threshold-buffers", pick(65), nullptr);
        break;
      case 4:
        g_object_set(q, "min-threshold-bytes", pick(20000), nullptr);
        break;
      case 5:
        g_object_set(q, "min-threshold-time", static_cast<guint64>(pick(100)) * GST_MSECOND,
                     nullptr);
        break;
      case 6:
        g_object_set(q, "leaky", 0, "flush-on-eos", FALSE, nullptr);
        break;
      case 7:
        g_object_set(q, "silent", static_cast<gboolean>(pick(2)), nullptr);
        break;
      case 8:
        g_object_set(q, "adaptive", static_cast<gboolean>(pick(4) != 0), nullptr);
        break;
      case 9:
      case 10: {
        /* Bounds, often the wrong way round. */
        const char* name = pick(2) ? "min-buffers" : "max-buffers";
        const guint values[] = {0, 1, 2, 4, 8, 32, 1000, 65535, 65536};
        const guint v = values[pick(9)];
        if (v == 0)
          out_of_range++;
        g_object_set(q, name, v, nullptr);
        break;
      }
      case 11:
      case 12: {
        /* Thresholds: often inverted or equal; sometimes out of range or
         * NaN, which GLib refuses too. */
        const char* names[] = {"cpu-low-threshold", "cpu-high-threshold", "mem-low-threshold",
                               "mem-high-threshold"};
        double v = percent();
        if (pick(5) == 0) {
          const double bad[] = {-1.0, 100.5, nan};
          v = bad[pick(3)];
          out_of_range++;
        }
        g_object_set(q, names[pick(4)], v, nullptr);
        break;
      }
      case 13:
      case 14: {
        /* Weights, often all 0. */
        const char* names[] = {"cpu-weight", "mem-weight", "latency-weight"};
        double v = pick(2) ? 0.0 : fraction();
        if (pick(6) == 0) {
          const double bad[] = {-0.5, 2.0, nan};
          v = bad[pick(3)];
          out_of_range++;
        }
        g_object_set(q, names[pick(3)], v, nullptr);
        break;
      }
      case 15: {
        double v = fraction();
        if (pick(5) == 0) {
          v = pick(2) ? 1.5 : nan;
          out_of_range++;
        }
        g_object_set(q, "smoothing", v, nullptr);
        break;
      }
      case 16: {
        const char* name = pick(2) ? "target-latency" : "max-latency";
        guint64 v = static_cast<guint64>(pick(100)) * GST_MSECOND;
        if (pick(10) == 0) {
          v = 3601 * GST_SECOND;
          out_of_range++;
        }
        g_object_set(q, name, v, nullptr);
        break;
      }
      case 17: {
        guint64 v = static_cast<guint64>(10 + pick(90)) * GST_MSECOND;
        if (pick(10) == 0) {
          v = pick(2) ? 0 : 61 * GST_SECOND;
          out_of_range++;
        }
        g_object_set(q, "adaptation-interval", v, nullptr);
        break;
      }
      case 18: {
        gint v = static_cast<gint>(pick(2));
        if (pick(10) == 0) {
          v = 7;
          out_of_range++;
        }
        g_object_set(q, "load-scope", v, nullptr);
        break;
      }
      case 19: {
        gint v = static_cast<gint>(pick(3));
        if (pick(10) == 0) {
          v = 9;
          out_of_range++;
        }
        g_object_set(q, "latency-source", v, nullptr);
        break;
      }
      case 20: {
        const std::string roots[] = {good_root, "/proc", good_root + "/stat",
                                     "/nonexistent/aq-stress", ""};
        const guint i = pick(6);
        g_object_set(q, "proc-root", i < 5 ? roots[i].c_str() : nullptr, nullptr);
        break;
      }
      case 21: {
        GstStructure* s = nullptr;
        g_object_get(q, "stats", &s, nullptr);
        /* Checked on the test thread: Check fails only from there. */
        if (s)
          gst_structure_free(s);
        else
          missing_stats++;
        break;
      }
      default:
        read_all_properties(q);
        break;
    }
    g_usleep(pick(300));
  }
  return out_of_range;
}

GST_START_TEST(test_random_properties) {
  Watchdog dog("random properties", 60);
  LoadFixture load(10, 20);
  load.flip(90, 90, 5, 10, 100000);
  /* 44 samples = 1 ms buffers; the source is faster than the syncing sink,
   * so upstream keeps running into the limits the threads move. */
  GstElement* pipeline = launch(
      "audiotestsrc samplesperbuffer=44 ! "
      "adaptivequeue name=q max-size-time=200000000 adaptation-interval=10000000 "
      "proc-root=" +
      std::string(load.dir()) + " ! fakesink sync=true");
  GstElement* q = by_name(pipeline, "q");
  Flow flow(q);
  Bus bus(pipeline);

  range_warnings = 0;
  missing_stats = 0;
  GRegex* regex = g_regex_new("out of range", static_cast<GRegexCompileFlags>(0),
                              static_cast<GRegexMatchFlags>(0), nullptr);
  GstCheckLogFilter* filter = gst_check_add_log_filter("GLib-GObject", G_LOG_LEVEL_WARNING, regex,
                                                       on_range_warning, nullptr, nullptr);

  change_state(pipeline, GST_STATE_PLAYING);
  const gint64 end = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
  std::atomic<guint> out_of_range{0};
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < 4; i++)
    threads.emplace_back(
        [&, i] { out_of_range += hammer_properties(q, load.dir(), 100 + i, end); });
  guint64 last_out = 0;
  guint stalls = 0;
  while (g_get_monotonic_time() < end) {
    g_usleep(static_cast<gulong>(500000 * slowdown()));
    bus.drain();
    bus.check_no_error();
    /* Data keeps moving the whole time. */
    stalls += flow.out() == last_out;
    last_out = flow.out();
  }
  for (auto& t : threads)
    t.join();
  gst_check_remove_log_filter(filter);

  /* Every out-of-range write was refused by GLib, none reached the element
   * silently. */
  ck_assert(out_of_range > 0);
  fail_unless_equals_int(missing_stats.load(), 0);
  fail_unless_equals_int(range_warnings.load(), out_of_range.load());
  GST_INFO("%" G_GUINT64_FORMAT " buffers, %" G_GUINT64_FORMAT " overruns, %" G_GUINT64_FORMAT
           " ticks (%" G_GUINT64_FORMAT
           " skipped), %zu warnings, %u "
           "writes out of range",
           flow.out(), Stats(q).u64("overruns"), Stats(q).u64("ticks"),
           Stats(q).u64("skipped-ticks"), bus.warnings.size(), out_of_range.load());
  fail_unless(stalls <= 2, "output stalled %u times", stalls);

  /* Drain: everything that entered must leave. */
  ck_assert(gst_element_send_event(pipeline, gst_event_new_eos()));
  expect_eos(bus, 10 * G_USEC_PER_SEC);
  flow.check_drained();
  fail_unless(flow.out() > 1000u / slowdown(), "only %" G_GUINT64_FORMAT " buffers", flow.out());
  fail_unless_equals_uint64(Stats(q).u64("buffers-pushed"), flow.out());
  fail_unless_equals_uint64(Stats(q).u64("drops"), 0);
  /* The contradictory settings were reported. */
  fail_unless(!bus.warnings.empty(), "no warning about the configuration");
  check_responds(q);
  change_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
}
GST_END_TEST;

/* ---- 100 instances, one sampler ---- */

/* Counts opens of the files in a directory, by name, with inotify: what
 * the sampler really reads, not what it says it reads. */
class OpenCounter {
 public:
  explicit OpenCounter(const std::string& dir) {
    fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    fail_unless(fd_ >= 0, "inotify_init1 failed");
    fail_unless(inotify_add_watch(fd_, dir.c_str(), IN_OPEN) >= 0, "cannot watch %s", dir.c_str());
  }
  ~OpenCounter() { close(fd_); }
  OpenCounter(const OpenCounter&) = delete;
  OpenCounter& operator=(const OpenCounter&) = delete;

  /* Reads events until `until_us`, counting opens of `name`. */
  guint count(const char* name, gint64 until_us, guint* other = nullptr,
              const char* other_name = nullptr) {
    guint n = 0;
    alignas(struct inotify_event) char buf[8192];
    for (;;) {
      const gint64 left = until_us - g_get_monotonic_time();
      struct pollfd p = {fd_, POLLIN, 0};
      if (left > 0 && poll(&p, 1, static_cast<int>((left + 999) / 1000)) < 0)
        break;
      const ssize_t len = read(fd_, buf, sizeof buf);
      if (len > 0) {
        for (ssize_t i = 0; i < len;) {
          auto* e = reinterpret_cast<struct inotify_event*>(buf + i);
          fail_if(e->mask & IN_Q_OVERFLOW, "inotify queue overflowed");
          if (e->len > 0 && std::string(e->name) == name)
            n++;
          else if (other && e->len > 0 && std::string(e->name) == other_name)
            (*other)++;
          i += static_cast<ssize_t>(sizeof(struct inotify_event) + e->len);
        }
      }
      if (g_get_monotonic_time() >= until_us && len <= 0)
        break;
    }
    return n;
  }

 private:
  int fd_ = -1;
};

GST_START_TEST(test_many_instances_one_sampler) {
  Watchdog dog("100 instances", 60);
  constexpr int kInstances = 100;
  constexpr gint64 kIntervalUs = 50000;
  LoadFixture load(10, 20);
  OpenCounter opens(load.dir());
  /* The sinks do not preroll: 100 sinks prerolling on the same buffer post
   * at once to a bus whose lock-free queue makes its writers wait for each
   * other in turn, and on a loaded machine that took `queue` itself 10 to
   * 32 s to reach PLAYING in 5 of 150 starts. */
  std::string description = "audiotestsrc is-live=true samplesperbuffer=441 ! tee name=t";
  for (int i = 0; i < kInstances; i++)
    description += " t. ! adaptivequeue name=q" + std::to_string(i) +
                   " adaptation-interval=" + std::to_string(kIntervalUs * 1000) +
                   " proc-root=" + std::string(load.dir()) + " ! fakesink sync=false async=false";
  GstElement* pipeline = launch(description);
  std::vector<GstElement*> queues;
  std::vector<std::unique_ptr<Flow>> flows;
  for (int i = 0; i < kInstances; i++) {
    queues.push_back(by_name(pipeline, ("q" + std::to_string(i)).c_str()));
    flows.push_back(std::make_unique<Flow>(queues.back()));
  }
  Bus bus(pipeline);

  change_state(pipeline, GST_STATE_PLAYING);
  /* Let every instance subscribe and the sampler settle. */
  g_usleep(300000);
  opens.count("stat", g_get_monotonic_time());
  constexpr gint64 kWindowUs = 2 * G_USEC_PER_SEC;
  guint meminfo = 0;
  const guint stat = opens.count("stat", g_get_monotonic_time() + kWindowUs, &meminfo, "meminfo");
  const guint expected = kWindowUs / kIntervalUs;
  GST_INFO("%u reads of stat, %u of meminfo", stat, meminfo);
  /* One sampler reads once per interval: 40 reads, fewer on a busy machine
   * (its thread competes with 200 streaming threads); one sampler per
   * instance would read 4,000 times. */
  fail_unless(stat >= 1 && stat <= expected * 3 / 2,
              "%u reads of stat in %" G_GINT64_FORMAT " ms, expected about %u", stat,
              kWindowUs / 1000, expected);
  fail_unless(meminfo + 2 >= stat && meminfo <= stat + 2, "%u reads of meminfo, %u of stat",
              meminfo, stat);

  /* Every instance ticks on the shared sample. One clock thread runs all
   * 100 instances' ticks: on a slow machine some come late, so wait. */
  for (GstElement* q : queues) {
    fail_unless(wait_until([&] {
                  const Stats st(q);
                  return st.u64("ticks") >= 10 && st.b("load-valid");
                }),
                "%s ticked only %" G_GUINT64_FORMAT " times, load-valid %d", GST_OBJECT_NAME(q),
                Stats(q).u64("ticks"), Stats(q).b("load-valid"));
  }

  ck_assert(gst_element_send_event(pipeline, gst_event_new_eos()));
  expect_eos(bus, 20 * G_USEC_PER_SEC);
  for (int i = 0; i < kInstances; i++) {
    flows[i]->check_drained();
    ck_assert(flows[i]->out() > 0);
    check_responds(queues[i]);
  }
  change_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
}
GST_END_TEST;

/* ---- a procfs root that flaps every tick ---- */

enum Fault {
  VALID,
  GONE,
  GARBAGE,
  TRUNCATED,
  EMPTY,
  BACKWARDS,
  NOT_A_DIR,
  STAT_IS_DIR,
  NO_MEMINFO
};

/* Every `period`, the root is replaced by the next fault in the list: valid
 * files, no directory, random bytes, truncated or empty files, counters
 * going backwards, a plain file where the directory should be, a directory
 * where a file should be, a missing file. */
class FlappingRoot {
 public:
  FlappingRoot(gint64 period_us, std::vector<Fault> faults)
      : base_(make_temp_dir("aq-flap-")),
        root_(base_ + "/proc"),
        period_us_(period_us),
        faults_(std::move(faults)) {
    thread_ = std::thread([this] {
      std::mt19937 rng(5);
      while (!stop_) {
        apply(faults_[steps_ % faults_.size()], rng);
        steps_++;
        g_usleep(static_cast<gulong>(period_us_));
      }
    });
  }
  ~FlappingRoot() {
    stop_ = true;
    thread_.join();
    remove_path(base_);
  }
  FlappingRoot(const FlappingRoot&) = delete;
  FlappingRoot& operator=(const FlappingRoot&) = delete;

  const std::string& root() const { return root_; }
  guint steps() const { return steps_; }

 private:
  void fresh_dir() {
    remove_path(root_);
    g_assert(g_mkdir(root_.c_str(), 0700) == 0);
  }

  void apply(Fault fault, std::mt19937& rng) {
    busy_ += 37;
    idle_ += 63;
    switch (fault) {
      case VALID: {
        /* Appears whole, by rename. */
        const std::string next = base_ + "/next";
        remove_path(next);
        g_assert(g_mkdir(next.c_str(), 0700) == 0);
        write_file(next + "/stat", stat_text(busy_, idle_));
        write_file(next + "/meminfo", meminfo_text(40));
        remove_path(root_);
        g_assert(g_rename(next.c_str(), root_.c_str()) == 0);
        break;
      }
      case GONE: {
        /* Moved away, then deleted. */
        const std::string old = base_ + "/old";
        if (g_rename(root_.c_str(), old.c_str()) != 0)
          remove_path(root_);
        remove_path(old);
        break;
      }
      case GARBAGE: {
        fresh_dir();
        std::string junk(1 + rng() % 4096, '\0');
        for (char& c : junk)
          c = static_cast<char>(rng());
        write_file(root_ + "/stat", junk);
        std::shuffle(junk.begin(), junk.end(), rng);
        write_file(root_ + "/meminfo", junk);
        break;
      }
      case TRUNCATED: {
        fresh_dir();
        const std::string stat = stat_text(busy_, idle_);
        const std::string mem = meminfo_text(40);
        write_file(root_ + "/stat", stat.substr(0, rng() % stat.size()));
        write_file(root_ + "/meminfo", mem.substr(0, rng() % mem.size()));
        break;
      }
      case EMPTY:
        fresh_dir();
        write_file(root_ + "/stat", "");
        write_file(root_ + "/meminfo", "");
        break;
      case BACKWARDS:
        fresh_dir();
        write_file(root_ + "/stat", stat_text(busy_ / 2, idle_ / 2));
        write_file(root_ + "/meminfo", meminfo_text(40));
        break;
      case NOT_A_DIR:
        remove_path(root_);
        write_file(root_, "not a directory\n");
        break;
      case STAT_IS_DIR:
        fresh_dir();
        g_mkdir((root_ + "/stat").c_str(), 0700);
        write_file(root_ + "/meminfo", meminfo_text(40));
        break;
      case NO_MEMINFO:
        fresh_dir();
        write_file(root_ + "/stat", stat_text(busy_, idle_));
        break;
    }
  }

  std::string base_;
  std::string root_;
  gint64 period_us_;
  std::vector<Fault> faults_;
  guint64 busy_ = 1000;
  guint64 idle_ = 1000;
  std::atomic<guint> steps_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

GST_START_TEST(test_flapping_proc_root) {
  Watchdog dog("flapping procfs root", 60);
  constexpr gint64 kIntervalUs = 50000;
  FlappingRoot flapping(kIntervalUs, {VALID, GONE, GARBAGE, TRUNCATED, EMPTY, BACKWARDS, NOT_A_DIR,
                                      STAT_IS_DIR, NO_MEMINFO});
  GstElement* pipeline = launch(
      "audiotestsrc is-live=true samplesperbuffer=441 ! "
      "adaptivequeue name=q adaptation-interval=" +
      std::to_string(kIntervalUs * 1000) + " proc-root=" + flapping.root() +
      " ! fakesink sync=true");
  GstElement* q = by_name(pipeline, "q");
  Flow flow(q);
  Bus bus(pipeline);

  change_state(pipeline, GST_STATE_PLAYING);
  const guint64 skipped_before = Stats(q).u64("skipped-ticks");
  guint64 last_out = 0;
  for (int i = 0; i < 6; i++) {
    g_usleep(static_cast<gulong>(500000 * slowdown()));
    bus.drain();
    bus.check_no_error();
    /* Data flows through all of it. */
    fail_unless(flow.out() > last_out, "no buffer for %d ms", 500 * slowdown());
    last_out = flow.out();
  }
  const guint64 ticks = Stats(q).u64("ticks");
  const guint64 skipped = Stats(q).u64("skipped-ticks") - skipped_before;
  GST_INFO("%" G_GUINT64_FORMAT " ticks, %" G_GUINT64_FORMAT
           " skipped, %u "
           "changes of the root",
           ticks, skipped, flapping.steps());
  fail_unless(flapping.steps() >= 20u / slowdown(), "root changed only %u times", flapping.steps());
  /* Most ticks find no usable sample. */
  fail_unless(skipped >= 20u / slowdown() && skipped * 2 >= ticks,
              "%" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " ticks skipped", skipped, ticks);

  ck_assert(gst_element_send_event(pipeline, gst_event_new_eos()));
  expect_eos(bus, 10 * G_USEC_PER_SEC);
  flow.check_drained();
  fail_unless_equals_uint64(Stats(q).u64("drops"), 0);

  /* Told, but not once per tick. */
  for (const auto& w : bus.warnings)
    GST_INFO("warning: %s", w.text.c_str());
  fail_unless(!bus.warnings.empty(), "no warning about the unreadable root");
  fail_unless(bus.warnings.size() <= 10, "%zu warnings in %" G_GUINT64_FORMAT " ticks",
              bus.warnings.size(), ticks);
  check_responds(q);
  change_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
}
GST_END_TEST;

/* ---- regressions ---- */

/* Two faults taking turns every tick posted a warning per tick, since only
 * the last reason was remembered: each reason is posted once. */
GST_START_TEST(test_alternating_faults_warn_once_each) {
  Watchdog dog("alternating faults", 60);
  constexpr gint64 kIntervalUs = 50000;
  FlappingRoot flapping(kIntervalUs, {GONE, EMPTY});
  GstElement* pipeline = launch(
      "audiotestsrc is-live=true samplesperbuffer=441 ! "
      "adaptivequeue name=q adaptation-interval=" +
      std::to_string(kIntervalUs * 1000) + " proc-root=" + flapping.root() +
      " ! fakesink sync=true");
  GstElement* q = by_name(pipeline, "q");
  Bus bus(pipeline);

  change_state(pipeline, GST_STATE_PLAYING);
  fail_unless(wait_until([&] { return Stats(q).u64("skipped-ticks") >= 30; }, 20 * G_USEC_PER_SEC),
              "ticks are not running");
  bus.drain();
  bus.check_no_error();
  for (const auto& w : bus.warnings)
    GST_INFO("warning: %s", w.text.c_str());
  fail_unless_equals_int(bus.warnings.size(), 2);
  int missing = 0, garbage = 0;
  for (const auto& w : bus.warnings) {
    missing += w.text.find("No such file") != std::string::npos;
    garbage += w.text.find("MemTotal missing") != std::string::npos;
  }
  fail_unless(missing == 1 && garbage == 1, "warnings: %s / %s", bus.warnings[0].text.c_str(),
              bus.warnings[1].text.c_str());
  check_responds(q);
  change_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
}
GST_END_TEST;

/* queue takes max-size-buffers up to G_MAXUINT. A fixed limit that large was
 * reserved up front, which aborted with bad_alloc (and 100000000 cost 1.5 GB
 * before any data). The ring now grows with what is actually queued. */
GST_START_TEST(test_huge_fixed_limit) {
  Watchdog dog("huge fixed limit", 60);
  constexpr guint kCount = 70000; /* past any up-front reserve */
  GstElement* q = make_queue("/nonexistent");
  g_object_set(q, "adaptive", FALSE, "max-size-buffers", G_MAXUINT, nullptr);
  fail_unless_equals_uint64(capacity(q), G_MAXUINT);

  GstHarness* h = start_harness(q);
  {
    /* Downstream stalls on the first, so everything after stays queued. */
    Blocker block(q);
    for (guint i = 0; i < kCount; i++) {
      GstBuffer* b = gst_buffer_new();
      GST_BUFFER_OFFSET(b) = i;
      fail_unless_equals_int(gst_harness_push(h, b), GST_FLOW_OK);
    }
    block.wait_held();
    fail_unless_equals_int(uint_prop(q, "current-level-buffers"), kCount - 1);
  }
  for (guint i = 0; i < kCount; i++) {
    GstBuffer* b = gst_harness_pull(h);
    fail_unless(b != nullptr, "buffer %u missing", i);
    fail_unless_equals_uint64(GST_BUFFER_OFFSET(b), i);
    gst_buffer_unref(b);
  }
  check_responds(q);
  gst_harness_teardown(h);
  gst_object_unref(q);
}
GST_END_TEST;

}  // namespace

static Suite* stress_suite(void) {
  Suite* s = suite_create("adaptivequeue-stress");

  /* Check's own limit is above every watchdog, so the watchdog reports. */
  TCase* tc = tcase_create("state");
  tcase_set_timeout(tc, 200);
  tcase_add_test(tc, test_state_cycles);
  suite_add_tcase(s, tc);

  tc = tcase_create("flow");
  tcase_set_timeout(tc, 100);
  tcase_add_test(tc, test_flushing_seeks);
  tcase_add_test(tc, test_random_properties);
  suite_add_tcase(s, tc);

  tc = tcase_create("proc");
  tcase_set_timeout(tc, 100);
  tcase_add_test(tc, test_many_instances_one_sampler);
  tcase_add_test(tc, test_flapping_proc_root);
  suite_add_tcase(s, tc);

  tc = tcase_create("regressions");
  tcase_set_timeout(tc, 100);
  tcase_add_test(tc, test_alternating_faults_warn_once_each);
  tcase_add_test(tc, test_huge_fixed_limit);
  suite_add_tcase(s, tc);

  return s;
}

GST_CHECK_MAIN(stress);
