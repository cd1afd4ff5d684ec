/* The helpers every element suite shares: bounded waiting, the element
 * between GstHarness pads, buffers, the stats structure and properties, a
 * bus that collects what the element posts, pads that stall or push from
 * a thread, fixture /proc trees with a load the test sets, ticks that run
 * when the test says, and pipelines. Compiled once (aq_test.cpp) and
 * linked into each suite.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

/* Standard headers first: Check's fail() macro breaks std::basic_ios::fail()
 * in any that come after it. */
#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "aq_test_base.h"

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/check/gsttestclock.h>
#include <glib/gstdio.h>

namespace aqt {

/* Fails the test unless `cond` holds within kWaitUs. */
#define AQ_WAIT_FOR(cond)                                               \
  fail_unless(aqt::wait_until([&] { return static_cast<bool>(cond); }), \
              "timed out waiting for: %s", #cond)

/* ---- properties and stats ---- */

guint uint_prop(GstElement* e, const char* name);
guint64 uint64_prop(GstElement* e, const char* name);
/* max-size-buffers, the adaptive capacity. */
guint capacity(GstElement* q);

/* Typed fields of a structure (stats, messages); failing when missing. */
guint field_uint(const GstStructure* s, const char* field);
guint64 field_uint64(const GstStructure* s, const char* field);
gint64 field_int64(const GstStructure* s, const char* field);
double field_double(const GstStructure* s, const char* field);
bool field_bool(const GstStructure* s, const char* field);

/* One snapshot of the element's "stats" structure. */
class Stats {
 public:
  explicit Stats(GstElement* q);
  ~Stats();
  Stats(const Stats&) = delete;
  Stats& operator=(const Stats&) = delete;

  guint u(const char* f) const { return field_uint(s_, f); }
  guint64 u64(const char* f) const { return field_uint64(s_, f); }
  gint64 i64(const char* f) const { return field_int64(s_, f); }
  double d(const char* f) const { return field_double(s_, f); }
  bool b(const char* f) const { return field_bool(s_, f); }
  std::string str(const char* f) const {
    const char* v = gst_structure_get_string(s_, f);
    return v ? v : "";
  }

 private:
  GstStructure* s_ = nullptr;
};

/* ---- the element between harness pads ---- */

/* Reads of the procfs root, and ticks that run on real time, come this
 * often unless a test says otherwise. */
constexpr guint64 kInterval = 50 * GST_MSECOND;

/* An adaptivequeue reading `proc_root`, ticking every `interval`. */
GstElement* make_queue(const char* proc_root, guint64 interval = kInterval);

/* Plays `q` between harness pads (without `downstream`, only upstream's:
 * the test links the src pad). Properties set before reach the first tick,
 * so no tick ever reads the real /proc by accident. */
GstHarness* start_harness(GstElement* q, bool downstream = true);

/* A buffer whose offset is its id and whose bytes repeat it. */
GstBuffer* make_buffer(guint64 offset, GstClockTime pts = GST_CLOCK_TIME_NONE,
                       GstClockTime duration = GST_CLOCK_TIME_NONE, gsize size = 16);
/* Buffer `offset` of a stream of 10 ms buffers. */
GstBuffer* timed_buffer(guint64 offset);

/* Pulls `n` buffers and checks their offsets are start_at, start_at + 1, ... */
void pull_in_order(GstHarness* h, guint64 start_at, guint n);
/* Pushes buffers start_at .. start_at + n - 1 (timed or not) and pulls them. */
void push_pull(GstHarness* h, guint64 start_at, guint n, bool timed = true);

/* Configuration warnings are LIBRARY/SETTINGS, load warnings RESOURCE/READ. */
/* Where `queue` changed between versions the elements follow the running
 * version (see the dataflow code), and so do the tests: whether the core
 * loaded at run time is at least major.minor. */
inline bool running_core_at_least(guint want_major, guint want_minor) {
  guint major, minor, micro, nano;
  gst_version(&major, &minor, &micro, &nano);
  return major > want_major || (major == want_major && minor >= want_minor);
}
/* Whether `queue` drops what it holds when a push fails fatally (since
 * 1.24; 1.22 keeps it). */
inline bool queue_drops_on_fatal_error() {
  return running_core_at_least(1, 24);
}
/* Whether `queue`'s current-level-time counts from the first timestamp
 * upstream sent until a buffer with a timestamp has left, and moves only
 * with timestamps (since 1.24; 1.22 counts from the src side's running
 * time, which starts at 0, and moves with SEGMENTs and untimestamped
 * buffers too). */
inline bool queue_times_from_first_buffer() {
  return running_core_at_least(1, 24);
}

inline GQuark settings_domain() {
  return GST_LIBRARY_ERROR;
}
inline GQuark read_domain() {
  return GST_RESOURCE_ERROR;
}

/* ---- the bus ---- */

/* Collects what an element or a pipeline posts: warnings and errors with
 * their text, copies of the adaptation messages, LATENCY messages and EOS.
 * A bare element gets a bus of its own, a pipeline keeps its own. Queued
 * messages hold the element, which holds the bus, so the destructor sets
 * the bus flushing before letting go of it (finding 7 in
 * docs/robustness.md: without that the three were never freed). */
class Bus {
 public:
  explicit Bus(GstElement* element);
  ~Bus();
  Bus(const Bus&) = delete;
  Bus& operator=(const Bus&) = delete;

  /* Takes every message already posted. */
  void drain();
  /* Each waits for its message (the total count for adaptations); false on
   * timeout. */
  bool wait_adaptations(size_t n, gint64 timeout_us = kWaitUs);
  bool wait_warning(GQuark domain, const char* saying = nullptr, gint64 timeout_us = kWaitUs);
  bool wait_error(gint64 timeout_us = kWaitUs);
  /* EOS or an error, whichever comes first; true for EOS. */
  bool wait_eos(gint64 timeout_us = kWaitUs);
  /* Fails the test on any error posted so far, quoting the first. */
  void check_no_error() const;

  size_t warnings_in(GQuark domain, const char* saying = nullptr) const;
  /* The first warning of `domain`, or "". */
  std::string warning_text(GQuark domain) const;

  /* A WARNING or ERROR message: its GError and "message | debug" text. */
  struct Report {
    GQuark domain;
    gint code;
    std::string text;
  };

  std::vector<GstStructure*> adaptations;
  std::vector<Report> warnings;
  std::vector<Report> errors;
  size_t latency_messages = 0;
  size_t eos = 0;

 private:
  bool wait(const std::function<bool()>& done, gint64 timeout_us);
  void take(GstMessage* m);

  GstBus* bus_;
};

/* Waits for EOS; fails on an error or when it does not come in time. */
void expect_eos(Bus& bus, gint64 timeout_us = kWaitUs);

/* ---- pads ---- */

/* Holds buffers (or what `what` names) at the element's src pad, like a
 * stalled downstream. */
class Blocker {
 public:
  explicit Blocker(GstElement* q, GstPadProbeType what = static_cast<GstPadProbeType>(
                                      GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST));
  ~Blocker();
  Blocker(const Blocker&) = delete;
  Blocker& operator=(const Blocker&) = delete;

  void release();
  /* Waits until a buffer is held. */
  void wait_held();

 private:
  static GstPadProbeReturn on_probe(GstPad*, GstPadProbeInfo*, gpointer data);

  GstPad* pad_;
  gulong id_ = 0;
  std::atomic<bool> held_{false};
};

/* Pushes buffers start_at .. start_at + count - 1 from a thread. */
class Pusher {
 public:
  Pusher(GstHarness* h, guint64 start_at, guint count,
         std::function<GstBuffer*(guint64)> make = timed_buffer);
  ~Pusher();
  Pusher(const Pusher&) = delete;
  Pusher& operator=(const Pusher&) = delete;

  guint done() const { return done_; }
  /* A push returned something other than OK. */
  bool failed() const { return failed_; }

 private:
  std::atomic<guint> done_{0};
  std::atomic<bool> failed_{false};
  std::thread thread_;
};

/* ---- fixture /proc trees ---- */

/* A temporary directory, removed with everything in it: a procfs root for
 * the element, or room for data files. Files are replaced by rename, never
 * seen half written. */
class TempTree {
 public:
  TempTree();
  ~TempTree();
  TempTree(const TempTree&) = delete;
  TempTree& operator=(const TempTree&) = delete;

  const char* dir() const { return dir_.c_str(); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  /* `name` may be in "self/". */
  void write(const std::string& name, const std::string& text);
  void make_dir(const std::string& name);

 private:
  std::string dir_;
};

/* A tree the sampler reads without complaint in either scope (a first
 * reading only: the counters do not move). */
void write_good_tree(TempTree& tree);

/* A procfs tree whose load the test sets. CPU % comes from the deltas
 * between two readings of the "cpu" line, so after every read of the
 * sampler (watched with inotify) the fixture writes the next version of
 * the files: the counters advance by exactly 100 ticks, busy and idle in
 * the set proportion, so any delta over one read or several gives exactly
 * the set percentage; memory is exact too. The fixture tracks which
 * version each read saw, so settle() can wait until the sampler's latest
 * result is the set load, and no read is left to chance. */
class LoadFixture {
 public:
  LoadFixture(int cpu, int mem);
  ~LoadFixture();
  LoadFixture(const LoadFixture&) = delete;
  LoadFixture& operator=(const LoadFixture&) = delete;

  const char* dir() const { return tree_.dir(); }
  /* The load of the versions written from now on. */
  void set(int cpu, int mem);
  /* From now on the counters go backwards (or forwards again). */
  void backwards(bool on);
  /* Alternates between load a and b every `period_us` of real time (0:
   * only a); settle() cannot be used meanwhile. */
  void flip(int cpu_a, int mem_a, int cpu_b, int mem_b, gint64 period_us);

  /* Waits until the sampler's last two reads each saw only versions of the
   * set load (or, backwards, of counters going backwards): whichever of
   * the two results a tick takes, it is exactly that load. Fails the test
   * on timeout, saying how many reads found the counters unchanged (the
   * fixture fell behind the sampler). */
  void settle();

 private:
  struct Load {
    int cpu;
    int mem;
    bool backwards;
    /* Backwards, only the direction counts. */
    bool operator==(const Load& o) const {
      return backwards == o.backwards && (backwards || (cpu == o.cpu && mem == o.mem));
    }
  };
  /* What one read of the sampler saw: version numbers, by the order of the
   * fixture's renames and the sampler's opens in the inotify queue. */
  struct Read {
    size_t cpu_version;
    size_t mem_version;
  };

  void write_version();
  void run();
  bool settled_locked() const;
  guint stale_reads_locked() const;

  TempTree tree_;
  int inotify_ = -1;
  int root_watch_ = -1;
  int self_watch_ = -1;

  mutable std::mutex mutex_;
  Load load_;
  Load load_b_;
  gint64 period_us_ = 0;
  gint64 flipped_at_ = 0;
  int phase_ = 0;
  /* The load each version was written with, by version. */
  std::vector<Load> versions_;
  /* Versions whose files are all renamed into place. */
  size_t written_ = 0;
  std::vector<Read> reads_;
  /* inotify lost events: versions can no longer be told apart. */
  bool overflowed_ = false;
  guint64 busy_ = 1000000000;
  guint64 idle_ = 1000000000;
  guint64 process_ticks_ = 1000000000;

  /* Thread-only: versions of each file seen renamed in the queue so far,
   * and what the read in progress opened. */
  size_t seen_stat_ = 0;
  size_t seen_meminfo_ = 0;
  size_t seen_pid_stat_ = 0;
  Read current_{0, 0};

  std::atomic<bool> stop_{false};
  std::thread thread_;
};

/* ---- ticks the test runs ---- */

/* The element schedules its ticks on the system clock. A TickDriver puts a
 * GstTestClock in its place for the test's lifetime, so a tick runs only
 * when the test calls run(), on the test's own thread: counts of ticks,
 * adaptations and skipped ticks are exact, and data can be placed exactly
 * between two ticks. Create it before the element starts; do not combine it
 * with anything that needs a running system clock (pipelines, latency from
 * the clock). */
class TickDriver {
 public:
  /* With `load`, each tick first waits for load->settle(). */
  explicit TickDriver(LoadFixture* load = nullptr);
  ~TickDriver();
  TickDriver(const TickDriver&) = delete;
  TickDriver& operator=(const TickDriver&) = delete;

  /* Runs the next `n` ticks; fails the test if the element schedules none. */
  void run(guint n = 1);
  /* Runs ticks one at a time until `done` holds; false if it does not
   * within kWaitUs. For what a tick shows only once the sampler has read. */
  bool run_until(const std::function<bool()>& done);

  /* The schedule itself: the test clock's time, moved on without running
   * a tick that falls due; the ticks pending and when the first is due
   * (GST_CLOCK_TIME_NONE if none). */
  GstClockTime now() const;
  void advance(GstClockTime delta);
  guint pending() const;
  GstClockTime next_due() const;

 private:
  GstClock* clock_;
  LoadFixture* load_;
};

/* ---- the algorithm, written out from its specification ---- */

/* Ticks are the test's (TickDriver); this only paces the sampler's reads,
 * and so how soon a load the test sets is read. */
constexpr guint64 kTickInterval = 100 * GST_MSECOND;

struct Step {
  guint from;
  guint to;
};

/* +1 below `low`, -1 above `high`, linear through their midpoint between. */
double threshold_factor(double value, double low, double high);

/* The adaptations `ticks` ticks make from `start` under a constant combined
 * factor `f`, in order; a tick whose step falls in the 0.5 dead band makes
 * none. */
std::vector<Step> expected_steps(guint start, double f, guint min, guint max, double smoothing,
                                 guint ticks);

/* Ticks enough to reach the dead band, plus three that must not adapt. */
guint ticks_to_settle(guint start, double f, guint min, guint max, double smoothing);

void check_same_steps(const std::vector<Step>& a, const std::vector<Step>& b);

/* The adaptation messages from `start_at` on are exactly `steps`, nothing
 * more, and the capacity is where the last one left it. */
void expect_steps(GstElement* q, Bus& bus, const std::vector<Step>& steps, size_t start_at);

/* Runs `n` ticks from capacity `start` under factor `f`, bounds 4..32 and
 * smoothing 0.3 (the defaults), checking the messages they post. */
void run_expecting(TickDriver& ticks, GstElement* q, Bus& bus, guint start, double f, guint n);
/* The same, for as many ticks as it takes to settle. */
void run_to_settle(TickDriver& ticks, GstElement* q, Bus& bus, guint start, double f);

/* ---- pipelines ---- */

GstElement* launch(const std::string& description);
/* Borrowed: the pipeline keeps it alive. */
GstElement* by_name(GstElement* pipeline, const char* name);
/* Changes the state and waits for it: a change that does not complete in
 * time fails as much as one that fails. */
void change_state(GstElement* element, GstState target);

}  // namespace aqt
