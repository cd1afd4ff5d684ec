/* adaptivequeue adaptation: the capacity follows the sizing formulas under
 * load read from fixture /proc trees; stats and bus messages agree; bad
 * configurations and unreadable /proc are survived; manual capacity;
 * shrinking below the level in every leaky mode; latency samples.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <glib/gstdio.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

constexpr guint64 kInterval = 50 * GST_MSECOND;
/* Generous: the machine is shared, and waits end as soon as they succeed. */
constexpr gint64 kWaitUs = 20 * G_USEC_PER_SEC;

/* ---- fixture /proc trees ---- */

/* A directory the element reads as its procfs root. */
class ProcTree
{
public:
  ProcTree ()
  {
    gchar *dir = g_dir_make_tmp ("aq-proc-XXXXXX", nullptr);
    g_assert (dir != nullptr);
    dir_ = dir;
    g_free (dir);
  }
  ~ProcTree ()
  {
    for (const auto & name : names_)
      g_unlink ((dir_ + "/" + name).c_str ());
    g_rmdir (dir_.c_str ());
  }
  ProcTree (const ProcTree &) = delete;
  ProcTree & operator= (const ProcTree &) = delete;

  const char *dir () const { return dir_.c_str (); }

  /* Written aside and renamed, so a reader never sees half a file. */
  void write (const std::string & name, const std::string & text)
  {
    const std::string tmp = dir_ + "/." + name + ".tmp";
    FILE *f = std::fopen (tmp.c_str (), "w");
    g_assert (f != nullptr);
    g_assert (std::fwrite (text.data (), 1, text.size (), f) == text.size ());
    g_assert (std::fclose (f) == 0);
    g_assert (std::rename (tmp.c_str (), (dir_ + "/" + name).c_str ()) == 0);
    names_.insert (name);
  }

private:
  std::string dir_;
  std::set<std::string> names_;
};

constexpr guint64 kMemTotalKb = 1000000;

std::string
meminfo_text (int mem_percent)
{
  const guint64 available = kMemTotalKb * static_cast<guint64> (100 - mem_percent) / 100;
  gchar *text = g_strdup_printf ("MemTotal:       %" G_GUINT64_FORMAT " kB\n"
      "MemFree:        %" G_GUINT64_FORMAT " kB\n"
      "MemAvailable:   %" G_GUINT64_FORMAT " kB\n", kMemTotalKb, available, available);
  std::string out = text;
  g_free (text);
  return out;
}

/* Holds a CPU and memory load. CPU % comes from the deltas between two reads
 * of the "cpu" line, so a helper thread keeps advancing the counters, busy
 * and idle in a fixed proportion: every delta the sampler may see, over any
 * number of steps, gives exactly the set percentage. */
class LoadFixture
{
public:
  LoadFixture (int cpu, int mem)
  {
    set (cpu, mem);
    step ();
    thread_ = std::thread ([this] {
      while (!stop_) {
        step ();
        g_usleep (2000);
      }
    });
  }
  ~LoadFixture ()
  {
    stop_ = true;
    thread_.join ();
  }
  LoadFixture (const LoadFixture &) = delete;
  LoadFixture & operator= (const LoadFixture &) = delete;

  /* Deltas spanning the change mix the two loads for one read or two. */
  void set (int cpu, int mem)
  {
    cpu_ = cpu;
    mem_ = mem;
  }
  const char *dir () const { return tree_.dir (); }

private:
  void step ()
  {
    const int cpu = cpu_;
    busy_ += static_cast<guint64> (cpu);
    idle_ += static_cast<guint64> (100 - cpu);
    gchar *stat = g_strdup_printf ("cpu  %" G_GUINT64_FORMAT " 0 0 %" G_GUINT64_FORMAT
        " 0 0 0 0 0 0\ncpu0 %" G_GUINT64_FORMAT " 0 0 %" G_GUINT64_FORMAT
        " 0 0 0 0 0 0\nintr 0\n", busy_, idle_, busy_, idle_);
    tree_.write ("stat", stat);
    g_free (stat);
    tree_.write ("meminfo", meminfo_text (mem_));
  }

  ProcTree tree_;
  std::atomic<int> cpu_ {0};
  std::atomic<int> mem_ {0};
  guint64 busy_ = 1000;
  guint64 idle_ = 1000;
  std::atomic<bool> stop_ {false};
  std::thread thread_;
};

/* ---- the algorithm, written out from its specification ---- */

struct Step
{
  guint from;
  guint to;
};

double
threshold_factor (double value, double low, double high)
{
  if (value > high)
    return -1.0;
  if (value < low)
    return 1.0;
  const double mid = (high + low) / 2.0;
  return (mid - value) / (mid - low);
}

/* The adaptations a constant combined factor `f` produces from `start`,
 * until the step falls inside the 0.5 dead band. */
std::vector<Step>
expected_steps (guint start, double f, guint min, guint max, double smoothing)
{
  std::vector<Step> steps;
  double cur = start;
  for (int i = 0; i < 1000; i++) {
    const double target = f > 0 ? cur + f * (max - cur) : cur + f * (cur - min);
    double next = cur + smoothing * (target - cur);
    next = std::fmin (std::fmax (next, min), max);
    if (std::fabs (next - cur) < 0.5)
      break;
    /* round half away from zero; values are positive */
    const guint rounded = static_cast<guint> (std::floor (next + 0.5));
    steps.push_back ({static_cast<guint> (cur), rounded});
    if (rounded == static_cast<guint> (cur))
      break;
    cur = rounded;
  }
  return steps;
}

void
check_same_steps (const std::vector<Step> & a, const std::vector<Step> & b)
{
  fail_unless_equals_int (a.size (), b.size ());
  for (size_t i = 0; i < a.size (); i++) {
    fail_unless_equals_int (a[i].from, b[i].from);
    fail_unless_equals_int (a[i].to, b[i].to);
  }
}

/* ---- bus, stats, element helpers ---- */

/* Collects the element's adaptation messages and warnings. */
class Bus
{
public:
  explicit Bus (GstElement * element) : bus_ (gst_bus_new ())
  {
    gst_element_set_bus (element, bus_);
  }
  ~Bus ()
  {
    for (GstStructure *s : adaptations)
      gst_structure_free (s);
    /* Queued messages hold the element, which holds the bus: drop them, or
     * the three keep each other alive. */
    gst_bus_set_flushing (bus_, TRUE);
    gst_object_unref (bus_);
  }
  Bus (const Bus &) = delete;
  Bus & operator= (const Bus &) = delete;

  /* Takes every message already posted. */
  void drain ()
  {
    while (GstMessage * m = gst_bus_pop (bus_))
      take (m);
  }

  /* Waits until `n` adaptation messages have arrived in total. */
  bool wait_adaptations (size_t n, gint64 timeout_us = kWaitUs)
  {
    const gint64 deadline = g_get_monotonic_time () + timeout_us;
    while (adaptations.size () < n) {
      const gint64 left = deadline - g_get_monotonic_time ();
      if (left <= 0)
        return false;
      if (GstMessage * m = gst_bus_timed_pop (bus_, left * GST_USECOND))
        take (m);
    }
    return true;
  }

  /* Waits for a warning of `domain`. */
  bool wait_warning (GQuark domain, gint64 timeout_us = kWaitUs)
  {
    const gint64 deadline = g_get_monotonic_time () + timeout_us;
    while (warnings_in (domain) == 0) {
      const gint64 left = deadline - g_get_monotonic_time ();
      if (left <= 0)
        return false;
      if (GstMessage * m = gst_bus_timed_pop (bus_, left * GST_USECOND))
        take (m);
    }
    return true;
  }

  size_t warnings_in (GQuark domain) const
  {
    size_t n = 0;
    for (const auto & w : warnings)
      n += w.first == domain;
    return n;
  }

  std::string warning_text (GQuark domain) const
  {
    for (const auto & w : warnings)
      if (w.first == domain)
        return w.second;
    return "";
  }

  std::vector<GstStructure *> adaptations;
  std::vector<std::pair<GQuark, std::string>> warnings;
  size_t errors = 0;

private:
  void take (GstMessage * m)
  {
    if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ELEMENT &&
        gst_message_has_name (m, "adaptivequeue-adaptation")) {
      adaptations.push_back (gst_structure_copy (gst_message_get_structure (m)));
    } else if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_WARNING) {
      GError *err = nullptr;
      gchar *debug = nullptr;
      gst_message_parse_warning (m, &err, &debug);
      warnings.emplace_back (err->domain, std::string (err->message) + " | " +
          (debug ? debug : ""));
      g_error_free (err);
      g_free (debug);
    } else if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ERROR) {
      errors++;
    }
    gst_message_unref (m);
  }

  GstBus *bus_;
};

guint
msg_uint (const GstStructure * s, const char *field)
{
  guint v = 0;
  fail_unless (gst_structure_get_uint (s, field, &v), "no uint %s", field);
  return v;
}

double
msg_double (const GstStructure * s, const char *field)
{
  double v = 0;
  fail_unless (gst_structure_get_double (s, field, &v), "no double %s", field);
  return v;
}

gint64
msg_int64 (const GstStructure * s, const char *field)
{
  gint64 v = 0;
  fail_unless (gst_structure_get_int64 (s, field, &v), "no int64 %s", field);
  return v;
}

guint64
msg_uint64 (const GstStructure * s, const char *field)
{
  guint64 v = 0;
  fail_unless (gst_structure_get_uint64 (s, field, &v), "no uint64 %s", field);
  return v;
}

/* One snapshot of the "stats" property. */
class Stats
{
public:
  explicit Stats (GstElement * q)
  {
    g_object_get (q, "stats", &s_, nullptr);
    ck_assert (s_ != nullptr);
    ck_assert (gst_structure_has_name (s_, "adaptivequeue-stats"));
  }
  ~Stats () { gst_structure_free (s_); }
  Stats (const Stats &) = delete;
  Stats & operator= (const Stats &) = delete;

  guint u (const char *f) const { return msg_uint (s_, f); }
  guint64 u64 (const char *f) const { return msg_uint64 (s_, f); }
  gint64 i64 (const char *f) const { return msg_int64 (s_, f); }
  double d (const char *f) const { return msg_double (s_, f); }
  bool b (const char *f) const
  {
    gboolean v = FALSE;
    fail_unless (gst_structure_get_boolean (s_, f, &v), "no boolean %s", f);
    return v;
  }

private:
  GstStructure *s_ = nullptr;
};

guint
uint_prop (GstElement * q, const char *name)
{
  guint v = 0;
  g_object_get (q, name, &v, nullptr);
  return v;
}

guint
capacity (GstElement * q)
{
  return uint_prop (q, "max-size-buffers");
}

bool
wait_until (const std::function<bool ()> & done, gint64 timeout_us = kWaitUs)
{
  const gint64 deadline = g_get_monotonic_time () + timeout_us;
  while (!done ()) {
    if (g_get_monotonic_time () > deadline)
      return false;
    g_usleep (2000);
  }
  return true;
}

/* Waits for `n` more ticks to run. */
void
wait_ticks (GstElement * q, guint64 n)
{
  const guint64 base = Stats (q).u64 ("ticks");
  fail_unless (wait_until ([&] { return Stats (q).u64 ("ticks") >= base + n; }),
      "ticks stopped");
}

GstElement *
make_queue (const char *proc_root)
{
  GstElement *q = gst_element_factory_make ("adaptivequeue", nullptr);
  fail_unless (q != nullptr, "adaptivequeue not found: is GST_PLUGIN_PATH set?");
  g_object_set (q, "proc-root", proc_root, "adaptation-interval", kInterval, nullptr);
  return q;
}

/* Plays the element between harness pads; properties are set before, so
 * no tick ever reads the real /proc. */
GstHarness *
start (GstElement * q)
{
  GstHarness *h = gst_harness_new_with_element (q, "sink", "src");
  gst_harness_set_src_caps_str (h, "application/x-aq-test");
  return h;
}

GstBuffer *
make_buffer (guint64 offset, GstClockTime pts = GST_CLOCK_TIME_NONE,
    GstClockTime duration = GST_CLOCK_TIME_NONE)
{
  GstBuffer *b = gst_buffer_new_allocate (nullptr, 16, nullptr);
  gst_buffer_memset (b, 0, static_cast<guint8> (offset), 16);
  GST_BUFFER_OFFSET (b) = offset;
  GST_BUFFER_PTS (b) = pts;
  GST_BUFFER_DURATION (b) = duration;
  return b;
}

GstBuffer *
timed_buffer (guint64 offset)
{
  return make_buffer (offset, offset * 10 * GST_MSECOND, 10 * GST_MSECOND);
}

/* Pulls `n` buffers and checks they are offsets start_at, start_at + 1, ... */
void
pull_in_order (GstHarness * h, guint64 start_at, guint n)
{
  for (guint i = 0; i < n; i++) {
    GstBuffer *b = gst_harness_pull (h);
    fail_unless (b != nullptr, "buffer %u of %u missing", i, n);
    fail_unless_equals_uint64 (GST_BUFFER_OFFSET (b), start_at + i);
    gst_buffer_unref (b);
  }
}

/* Holds buffers at the queue's src pad, like a stalled downstream. */
class Blocker
{
public:
  explicit Blocker (GstElement * q) : pad_ (gst_element_get_static_pad (q, "src"))
  {
    id_ = gst_pad_add_probe (pad_, static_cast<GstPadProbeType> (GST_PAD_PROBE_TYPE_BLOCK
            | GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
        on_probe, this, nullptr);
  }
  ~Blocker ()
  {
    release ();
    gst_object_unref (pad_);
  }
  Blocker (const Blocker &) = delete;
  Blocker & operator= (const Blocker &) = delete;

  void release ()
  {
    if (id_)
      gst_pad_remove_probe (pad_, id_);
    id_ = 0;
  }
  /* Waits until a buffer is held. */
  void wait_held ()
  {
    fail_unless (wait_until ([this] { return held_.load (); }), "nothing held");
  }

private:
  static GstPadProbeReturn on_probe (GstPad *, GstPadProbeInfo *, gpointer data)
  {
    static_cast<Blocker *> (data)->held_ = true;
    return GST_PAD_PROBE_OK;
  }

  GstPad *pad_;
  gulong id_ = 0;
  std::atomic<bool> held_ {false};
};

/* Pushes timed buffers with offsets [start_at, start_at + count) from a thread. */
class Pusher
{
public:
  Pusher (GstHarness * h, guint64 start_at, guint count)
  {
    thread_ = std::thread ([this, h, start_at, count] {
      for (guint i = 0; i < count; i++) {
        if (gst_harness_push (h, timed_buffer (start_at + i)) != GST_FLOW_OK)
          failed_ = true;
        done_++;
      }
    });
  }
  ~Pusher () { thread_.join (); }
  Pusher (const Pusher &) = delete;
  Pusher & operator= (const Pusher &) = delete;

  guint done () const { return done_; }
  bool failed () const { return failed_; }

private:
  std::atomic<guint> done_ {0};
  std::atomic<bool> failed_ {false};
  std::thread thread_;
};

/* Checks the messages from `start_at` on against `steps`. */
void
expect_steps (Bus & bus, const std::vector<Step> & steps, size_t start_at)
{
  fail_unless (bus.wait_adaptations (start_at + steps.size ()),
      "only %zu adaptation messages, expected %zu", bus.adaptations.size (),
      start_at + steps.size ());
  for (size_t i = 0; i < steps.size (); i++) {
    const GstStructure *s = bus.adaptations[start_at + i];
    fail_unless_equals_int (msg_uint (s, "old-capacity"), steps[i].from);
    fail_unless_equals_int (msg_uint (s, "new-capacity"), steps[i].to);
    fail_unless_equals_uint64 (msg_uint64 (s, "adaptations"), start_at + i + 1);
  }
}

/* Checks that nothing more adapts over a few ticks. */
void
expect_settled (GstElement * q, Bus & bus, guint expected_capacity)
{
  const size_t n = bus.adaptations.size ();
  wait_ticks (q, 5);
  bus.drain ();
  fail_unless_equals_int (bus.adaptations.size (), n);
  fail_unless_equals_int (capacity (q), expected_capacity);
}

/* Configuration warnings are LIBRARY/SETTINGS, load warnings RESOURCE/READ. */
GQuark
settings_domain ()
{
  return GST_LIBRARY_ERROR;
}

GQuark
read_domain ()
{
  return GST_RESOURCE_ERROR;
}

/* ---- the sequences the formulas give ---- */

struct Scenario
{
  const char *name;
  int cpu, mem;
  guint min, max, start;
  double smoothing;
  /* Worked out by hand, as a check on expected_steps() itself. */
  std::vector<Step> by_hand;
};

const std::vector<Scenario> &
scenarios ()
{
  static const std::vector<Scenario> all = {
    /* f = 0.5 * 1 + 0.3 * 1 = 0.8; the dead band stops it at 30 */
    {"idle, defaults", 10, 20, 4, 32, 16, 0.3,
        {{16, 20}, {20, 23}, {23, 25}, {25, 27}, {27, 28}, {28, 29}, {29, 30}}},
    /* full steps reach max-buffers */
    {"idle, smoothing 1", 10, 20, 4, 32, 16, 1.0, {{16, 29}, {29, 31}, {31, 32}}},
    /* f = -0.8; the dead band stops it at 6 */
    {"loaded, defaults", 90, 90, 4, 32, 16, 0.3,
        {{16, 13}, {13, 11}, {11, 9}, {9, 8}, {8, 7}, {7, 6}}},
    /* full steps reach min-buffers */
    {"loaded, smoothing 1", 90, 90, 4, 32, 16, 1.0, {{16, 6}, {6, 4}}},
    /* between the thresholds: cpu_f = mem_f = 0.5, f = 0.4 */
    {"half load, bounds 2..64", 30, 45, 2, 64, 10, 0.3,
        {{10, 16}, {16, 22}, {22, 27}, {27, 31}, {31, 35}, {35, 38}, {38, 41},
         {41, 44}, {44, 46}, {46, 48}, {48, 50}, {50, 52}, {52, 53}, {53, 54},
         {54, 55}, {55, 56}, {56, 57}, {57, 58}, {58, 59}, {59, 60}}},
  };
  return all;
}

}  // namespace

/* The capacity follows exactly the sequence the formulas give, and the stats
 * agree with the messages. No buffer has a timestamp, so there is no latency
 * sample and the latency term is 0. */
GST_START_TEST (test_sequence_follows_formulas)
{
  const Scenario & sc = scenarios ().at (__i__);
  const double cpu_f = threshold_factor (sc.cpu, 20, 60);
  const double mem_f = threshold_factor (sc.mem, 35, 75);
  const double f = 0.5 * cpu_f + 0.3 * mem_f + 0.2 * 0.0;
  const auto steps = expected_steps (sc.start, f, sc.min, sc.max, sc.smoothing);
  check_same_steps (steps, sc.by_hand);

  LoadFixture load (sc.cpu, sc.mem);
  GstElement *q = make_queue (load.dir ());
  g_object_set (q, "min-buffers", sc.min, "max-buffers", sc.max,
      "smoothing", sc.smoothing, nullptr);
  g_object_set (q, "max-size-buffers", sc.start, nullptr);
  fail_unless_equals_int (capacity (q), sc.start);
  Bus bus (q);
  GstHarness *h = start (q);

  /* Data flows meanwhile, untimestamped. */
  for (guint i = 0; i < 10; i++)
    fail_unless_equals_int (gst_harness_push (h, make_buffer (i)), GST_FLOW_OK);
  pull_in_order (h, 0, 10);
  /* Ticks that came while the data flowed (a slow machine, valgrind) saw
   * some of it queued; every later one saw an empty queue. */
  bus.drain ();
  const size_t during_flow = bus.adaptations.size ();

  expect_steps (bus, steps, 0);
  const guint final_capacity = steps.back ().to;
  expect_settled (q, bus, final_capacity);

  for (size_t i = 0; i < bus.adaptations.size (); i++) {
    const GstStructure *s = bus.adaptations[i];
    fail_unless_equals_float (msg_double (s, "cpu-percent"), sc.cpu);
    fail_unless_equals_float (msg_double (s, "mem-percent"), sc.mem);
    fail_unless_equals_float (msg_double (s, "cpu-factor"), cpu_f);
    fail_unless_equals_float (msg_double (s, "mem-factor"), mem_f);
    fail_unless_equals_float (msg_double (s, "latency-factor"), 0.0);
    fail_unless_equals_float (msg_double (s, "combined-factor"), f);
    fail_unless_equals_int64 (msg_int64 (s, "latency-average"), -1);
    if (i < during_flow)
      ck_assert_uint_le (msg_uint (s, "level-buffers"), 10);
    else
      fail_unless_equals_int (msg_uint (s, "level-buffers"), 0);
  }

  const GstStructure *last = bus.adaptations.back ();
  Stats st (q);
  fail_unless_equals_int (st.u ("capacity"), msg_uint (last, "new-capacity"));
  fail_unless_equals_int (st.u ("capacity"), final_capacity);
  fail_unless_equals_uint64 (st.u64 ("adaptations"), bus.adaptations.size ());
  fail_unless_equals_uint64 (st.u64 ("adaptations"), msg_uint64 (last, "adaptations"));
  for (const char *field : {"cpu-percent", "mem-percent", "cpu-factor",
          "mem-factor", "latency-factor", "combined-factor"})
    fail_unless_equals_float (st.d (field), msg_double (last, field));
  fail_unless_equals_int64 (st.i64 ("latency-average"), msg_int64 (last, "latency-average"));
  ck_assert (st.b ("load-valid"));
  fail_unless_equals_uint64 (st.u64 ("latency-samples"), 0);
  /* Every tick adapted, fell in the dead band, or was skipped. */
  ck_assert (st.u64 ("ticks") >= st.u64 ("adaptations") + st.u64 ("skipped-ticks"));
  ck_assert (st.u64 ("ticks") >= st.u64 ("adaptations") + 5);
  fail_unless_equals_uint64 (st.u64 ("buffers-pushed"), 10);
  fail_unless_equals_uint64 (st.u64 ("drops"), 0);
  fail_unless_equals_int (st.u ("current-level-buffers"), 0);
  ck_assert (st.u ("max-level-buffers") >= 1);
  fail_unless_equals_int (bus.warnings_in (settings_domain ()), 0);

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

/* With only the latency weight, a queued latency above max-latency shrinks
 * the capacity and one below target-latency grows it. */
GST_START_TEST (test_latency_factor_moves_capacity)
{
  LoadFixture load (40, 55);
  GstElement *q = make_queue (load.dir ());
  g_object_set (q, "cpu-weight", 0.0, "mem-weight", 0.0, "latency-weight", 1.0,
      nullptr);
  gst_util_set_object_arg (G_OBJECT (q), "latency-source", "queued");
  Bus bus (q);
  GstHarness *h = start (q);

  /* Downstream stalls on an untimestamped buffer (no sample), while nine
   * 100 ms buffers queue up behind it: 900 ms queued. */
  Blocker block (q);
  fail_unless_equals_int (gst_harness_push (h, make_buffer (0)), GST_FLOW_OK);
  block.wait_held ();
  for (guint i = 0; i < 9; i++)
    fail_unless_equals_int (gst_harness_push (h, make_buffer (i + 1,
                i * 100 * GST_MSECOND, 100 * GST_MSECOND)), GST_FLOW_OK);

  /* No latency sample yet: the latency term is 0 and nothing moves. */
  wait_ticks (q, 4);
  bus.drain ();
  fail_unless_equals_int (bus.adaptations.size (), 0);
  fail_unless_equals_uint64 (Stats (q).u64 ("latency-samples"), 0);
  fail_unless_equals_uint64 (Stats (q).u64 ("current-level-time"), 900 * GST_MSECOND);

  /* Draining samples the time queued behind each buffer: 800 ms ... 0. */
  block.release ();
  pull_in_order (h, 0, 10);
  gint64 avg = -1;
  for (int left = 8; left >= 0; left--) {
    const gint64 sample = left * 100 * GST_MSECOND;
    avg = avg < 0 ? sample : (9 * avg + sample) / 10;
  }
  ck_assert (avg > static_cast<gint64> (50 * GST_MSECOND));
  {
    Stats st (q);
    fail_unless_equals_uint64 (st.u64 ("latency-samples"), 9);
    fail_unless_equals_int64 (st.i64 ("latency-average"), avg);
  }
  /* The largest sample shows for the tick interval it fell in. */
  fail_unless (wait_until ([&] { return Stats (q).i64 ("latency-max") ==
              static_cast<gint64> (800 * GST_MSECOND); }), "latency-max %" G_GINT64_FORMAT,
      Stats (q).i64 ("latency-max"));

  /* lat_f = -1 is the whole combined factor. */
  const auto down = expected_steps (16, -1.0, 4, 32, 0.3);
  check_same_steps (down, {{16, 12}, {12, 10}, {10, 8}, {8, 7}, {7, 6}, {6, 5}});
  expect_steps (bus, down, 0);
  expect_settled (q, bus, 5);
  for (const GstStructure *s : bus.adaptations) {
    fail_unless_equals_float (msg_double (s, "latency-factor"), -1.0);
    fail_unless_equals_float (msg_double (s, "combined-factor"), -1.0);
    /* A tick may land halfway through the drain. */
    ck_assert (msg_int64 (s, "latency-average") > static_cast<gint64> (50 * GST_MSECOND));
  }

  /* Buffers that pass straight through sample 0 ns: the average decays below
   * target-latency and the capacity grows to where lat_f = +1 leaves it. */
  for (guint i = 0; i < 100; i++) {
    fail_unless_equals_int (gst_harness_push (h, make_buffer (10 + i,
                (900 + i) * GST_MSECOND, GST_MSECOND)), GST_FLOW_OK);
    pull_in_order (h, 10 + i, 1);
    avg = (9 * avg) / 10;
  }
  ck_assert (avg < static_cast<gint64> (20 * GST_MSECOND));
  fail_unless_equals_int64 (Stats (q).i64 ("latency-average"), avg);
  const guint top = expected_steps (5, 1.0, 4, 32, 0.3).back ().to;
  fail_unless_equals_int (top, 31);
  fail_unless (wait_until ([&] { return capacity (q) == top; }),
      "capacity %u did not grow to %u", capacity (q), top);
  bus.drain ();
  const GstStructure *last = bus.adaptations.back ();
  ck_assert (msg_uint (last, "new-capacity") > msg_uint (last, "old-capacity"));
  fail_unless_equals_float (msg_double (last, "latency-factor"), 1.0);
  fail_unless_equals_float (Stats (q).d ("latency-factor"), 1.0);

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

/* An invalid configuration gets one WARNING naming the fields, and ticks go
 * on with the last valid configuration. */
GST_START_TEST (test_bad_configuration)
{
  LoadFixture load (10, 20);
  GstElement *q = make_queue (load.dir ());
  Bus bus (q);
  GstHarness *h = start (q);
  expect_steps (bus, scenarios ()[0].by_hand, 0);
  expect_settled (q, bus, 30);
  fail_unless_equals_int (bus.warnings_in (settings_domain ()), 0);

  std::vector<const char *> named;
  double f = 0.8;
  switch (__i__) {
    case 0:
      g_object_set (q, "max-buffers", 2u, nullptr);
      named = {"min-buffers", "max-buffers"};
      break;
    case 1:
      /* Were it used, cpu 10 % would be above "high" and shrink. */
      g_object_set (q, "cpu-high-threshold", 5.0, nullptr);
      named = {"cpu-low-threshold", "cpu-high-threshold"};
      break;
    default:
      /* The last valid configuration is cpu-weight alone. */
      g_object_set (q, "latency-weight", 0.0, nullptr);
      g_object_set (q, "mem-weight", 0.0, nullptr);
      g_object_set (q, "cpu-weight", 0.0, nullptr);
      named = {"cpu-weight", "mem-weight", "latency-weight"};
      f = 0.5;
      break;
  }
  fail_unless (bus.wait_warning (settings_domain ()), "no warning");
  const std::string text = bus.warning_text (settings_domain ());
  for (const char *field : named)
    fail_unless (text.find (field) != std::string::npos, "'%s' not named in: %s",
        field, text.c_str ());

  if (__i__ == 0) {
    /* An explicit size is kept exactly and moves the nearer bound to it,
     * which here ends the contradiction; undo that for what follows. */
    g_object_set (q, "max-size-buffers", 100u, nullptr);
    fail_unless_equals_int (capacity (q), 100);
    fail_unless_equals_int (uint_prop (q, "max-buffers"), 100);
    g_object_set (q, "max-buffers", 32u, nullptr);
  }
  /* Moved by hand, it adapts back with the last valid configuration. */
  const size_t before = bus.adaptations.size ();
  g_object_set (q, "max-size-buffers", 10u, nullptr);
  const auto steps = expected_steps (10, f, 4, 32, 0.3);
  expect_steps (bus, steps, before);
  expect_settled (q, bus, steps.back ().to);
  fail_unless_equals_float (msg_double (bus.adaptations.back (), "combined-factor"), f);

  /* Data flows, and the warning was posted once for all those ticks. */
  for (guint i = 0; i < 20; i++)
    fail_unless_equals_int (gst_harness_push (h, make_buffer (i)), GST_FLOW_OK);
  pull_in_order (h, 0, 20);
  bus.drain ();
  fail_unless_equals_int (bus.warnings_in (settings_domain ()), 1);
  fail_unless_equals_int (bus.errors, 0);

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

/* Invalid before the first tick: the defaults are the last valid
 * configuration, so the idle sequence is the default one. */
GST_START_TEST (test_bad_configuration_from_start)
{
  LoadFixture load (10, 20);
  GstElement *q = make_queue (load.dir ());
  g_object_set (q, "min-buffers", 40u, nullptr);
  Bus bus (q);
  GstHarness *h = start (q);

  expect_steps (bus, scenarios ()[0].by_hand, 0);
  expect_settled (q, bus, 30);
  fail_unless_equals_int (bus.warnings_in (settings_domain ()), 1);
  const std::string text = bus.warning_text (settings_domain ());
  fail_unless (text.find ("min-buffers") != std::string::npos, "not named: %s",
      text.c_str ());

  /* Made valid again, it is used from the next tick: 4..8 pulls 30 down. */
  g_object_set (q, "min-buffers", 4u, "max-buffers", 8u, nullptr);
  fail_unless (wait_until ([&] { return capacity (q) <= 8; }),
      "capacity %u above the new max-buffers", capacity (q));
  fail_unless_equals_int (bus.warnings_in (settings_domain ()), 1);

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

/* A missing or unreadable procfs root gives one warning; every tick is
 * skipped and counted, and data passes untouched. */
GST_START_TEST (test_unreadable_proc)
{
  ProcTree tree;
  std::string root = tree.dir ();
  const char *expect_in_warning = nullptr;
  switch (__i__) {
    case 0:
      root += "/missing";
      expect_in_warning = "missing";
      break;
    case 1:
      tree.write ("meminfo", meminfo_text (20));
      tree.write ("stat", "this is not a stat file\n");
      expect_in_warning = "stat";
      break;
    case 2:
      tree.write ("meminfo", "MemTotal: plenty kB\nMemAvailable: 5 kB\n");
      tree.write ("stat", "cpu  1 0 0 1 0 0 0 0 0 0\n");
      expect_in_warning = "meminfo";
      break;
    default:
      tree.write ("meminfo", meminfo_text (20));
      tree.write ("stat", "cpu  12 34\n");
      expect_in_warning = "stat";
      break;
  }
  GstElement *q = make_queue (root.c_str ());
  Bus bus (q);
  GstHarness *h = start (q);

  fail_unless (bus.wait_warning (read_domain ()), "no warning");
  const std::string text = bus.warning_text (read_domain ());
  fail_unless (text.find (expect_in_warning) != std::string::npos,
      "warning does not say why: %s", text.c_str ());

  for (guint i = 0; i < 40; i++) {
    GstBuffer *b = timed_buffer (i);
    fail_unless_equals_int (gst_harness_push (h, b), GST_FLOW_OK);
  }
  pull_in_order (h, 0, 40);
  wait_ticks (q, 8);
  bus.drain ();

  Stats st (q);
  ck_assert (st.u64 ("ticks") >= 8);
  fail_unless_equals_uint64 (st.u64 ("skipped-ticks"), st.u64 ("ticks"));
  fail_unless_equals_uint64 (st.u64 ("adaptations"), 0);
  ck_assert (!st.b ("load-valid"));
  fail_unless_equals_int (st.u ("capacity"), 16);
  fail_unless_equals_uint64 (st.u64 ("buffers-pushed"), 40);
  fail_unless_equals_uint64 (st.u64 ("drops"), 0);
  fail_unless_equals_int (bus.adaptations.size (), 0);
  fail_unless_equals_int (bus.warnings_in (read_domain ()), 1);
  fail_unless_equals_int (bus.errors, 0);

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

/* Setting max-size-buffers sets the capacity exactly, as on queue; a value
 * outside the bounds moves the nearer bound to it, and adaptation continues
 * from there; adaptive=false freezes it. */
GST_START_TEST (test_manual_capacity)
{
  LoadFixture load (10, 20);
  GstElement *q = make_queue (load.dir ());
  Bus bus (q);
  GstHarness *h = start (q);
  expect_steps (bus, scenarios ()[0].by_hand, 0);
  expect_settled (q, bus, 30);

  g_object_set (q, "max-size-buffers", 1u, nullptr);
  fail_unless_equals_int (capacity (q), 1);
  fail_unless_equals_int (uint_prop (q, "min-buffers"), 1);
  fail_unless_equals_int (uint_prop (q, "max-buffers"), 32);
  const auto up = expected_steps (1, 0.8, 1, 32, 0.3);
  expect_steps (bus, up, 7);
  expect_settled (q, bus, up.back ().to);

  g_object_set (q, "max-size-buffers", 1000u, nullptr);
  fail_unless_equals_int (capacity (q), 1000);
  fail_unless_equals_int (uint_prop (q, "min-buffers"), 4);
  fail_unless_equals_int (uint_prop (q, "max-buffers"), 1000);
  expect_settled (q, bus, 1000);

  /* Not adaptive: a plain limit, kept whatever the load. */
  const size_t n = bus.adaptations.size ();
  g_object_set (q, "adaptive", FALSE, nullptr);
  g_object_set (q, "max-size-buffers", 100u, nullptr);
  fail_unless_equals_int (capacity (q), 100);
  load.set (90, 90);
  wait_ticks (q, 8);
  bus.drain ();
  fail_unless_equals_int (bus.adaptations.size (), n);
  fail_unless_equals_int (capacity (q), 100);

  /* Adaptive again, within 4..100 (max-buffers followed the 100). */
  fail_unless_equals_int (uint_prop (q, "max-buffers"), 100);
  g_object_set (q, "adaptive", TRUE, nullptr);
  ck_assert (bus.wait_adaptations (n + 1));
  fail_unless_equals_int (msg_uint (bus.adaptations[n], "old-capacity"), 100);
  fail_unless_equals_int (msg_uint (bus.adaptations[n], "new-capacity"),
      expected_steps (100, -0.8, 4, 100, 0.3).front ().to);
  fail_unless (wait_until ([&] { return capacity (q) == 6; }),
      "capacity %u did not fall to 6", capacity (q));

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

/* Shrinking and growing tests: the CPU alone decides, in one full step.
 * cpu 40 % is the midpoint (factor 0, nothing moves), 90 % shrinks straight
 * to min-buffers, 10 % grows straight to max-buffers. */
static GstElement *
make_stepping_queue (const LoadFixture & load, const char *leaky)
{
  GstElement *q = make_queue (load.dir ());
  g_object_set (q, "cpu-weight", 1.0, "mem-weight", 0.0, "latency-weight", 0.0,
      "smoothing", 1.0, nullptr);
  gst_util_set_object_arg (G_OBJECT (q), "leaky", leaky);
  return q;
}

GST_START_TEST (test_shrink_not_leaky_keeps_all)
{
  LoadFixture load (40, 50);
  GstElement *q = make_stepping_queue (load, "no");
  GstHarness *h = start (q);
  Blocker block (q);

  /* One buffer held downstream, 16 queued, the 18th push waits. */
  Pusher pusher (h, 0, 30);
  ck_assert (wait_until ([&] { return pusher.done () == 17; }));
  ck_assert (wait_until ([&] { return Stats (q).u ("current-level-buffers") == 16; }));

  load.set (90, 50);
  fail_unless (wait_until ([&] { return capacity (q) == 4; }),
      "capacity %u did not fall to 4", capacity (q));
  wait_ticks (q, 2);
  {
    Stats st (q);
    fail_unless_equals_uint64 (st.u64 ("drops"), 0);
    fail_unless_equals_int (st.u ("current-level-buffers"), 16);
  }
  fail_unless_equals_int (pusher.done (), 17);

  block.release ();
  pull_in_order (h, 0, 30);
  ck_assert (wait_until ([&] { return pusher.done () == 30; }));
  ck_assert (!pusher.failed ());
  Stats st (q);
  fail_unless_equals_uint64 (st.u64 ("drops"), 0);
  fail_unless_equals_uint64 (st.u64 ("buffers-pushed"), 30);
  fail_unless_equals_int (gst_harness_buffers_in_queue (h), 0);

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

GST_START_TEST (test_shrink_leaky_downstream_drops_oldest)
{
  LoadFixture load (40, 50);
  GstElement *q = make_stepping_queue (load, "downstream");
  GstHarness *h = start (q);
  Blocker block (q);

  fail_unless_equals_int (gst_harness_push (h, timed_buffer (0)), GST_FLOW_OK);
  block.wait_held ();
  for (guint i = 1; i <= 16; i++)
    fail_unless_equals_int (gst_harness_push (h, timed_buffer (i)), GST_FLOW_OK);
  fail_unless_equals_int (Stats (q).u ("current-level-buffers"), 16);
  fail_unless_equals_uint64 (Stats (q).u64 ("drops"), 0);

  load.set (90, 50);
  fail_unless (wait_until ([&] { return capacity (q) == 4; }),
      "capacity %u did not fall to 4", capacity (q));
  {
    Stats st (q);
    fail_unless_equals_uint64 (st.u64 ("drops"), 12);
    fail_unless_equals_int (st.u ("current-level-buffers"), 4);
  }

  /* The held one, then the newest four; the first after the gap is DISCONT. */
  block.release ();
  pull_in_order (h, 0, 1);
  for (guint64 i = 13; i <= 16; i++) {
    GstBuffer *b = gst_harness_pull (h);
    ck_assert (b != nullptr);
    fail_unless_equals_uint64 (GST_BUFFER_OFFSET (b), i);
    fail_unless_equals_int (GST_BUFFER_FLAG_IS_SET (b, GST_BUFFER_FLAG_DISCONT), i == 13);
    gst_buffer_unref (b);
  }
  ck_assert (wait_until ([&] { return Stats (q).u64 ("buffers-pushed") == 5; }));
  fail_unless_equals_int (gst_harness_buffers_in_queue (h), 0);
  fail_unless_equals_uint64 (Stats (q).u64 ("drops"), 12);

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

GST_START_TEST (test_shrink_leaky_upstream_drops_new)
{
  LoadFixture load (40, 50);
  GstElement *q = make_stepping_queue (load, "upstream");
  GstHarness *h = start (q);
  Blocker block (q);

  fail_unless_equals_int (gst_harness_push (h, timed_buffer (0)), GST_FLOW_OK);
  block.wait_held ();
  for (guint i = 1; i <= 16; i++)
    fail_unless_equals_int (gst_harness_push (h, timed_buffer (i)), GST_FLOW_OK);

  load.set (90, 50);
  fail_unless (wait_until ([&] { return capacity (q) == 4; }),
      "capacity %u did not fall to 4", capacity (q));
  {
    /* Shrinking itself drops nothing... */
    Stats st (q);
    fail_unless_equals_uint64 (st.u64 ("drops"), 0);
    fail_unless_equals_int (st.u ("current-level-buffers"), 16);
  }
  /* ...new buffers are dropped while the queue is over its capacity. */
  for (guint i = 17; i <= 21; i++)
    fail_unless_equals_int (gst_harness_push (h, timed_buffer (i)), GST_FLOW_OK);
  {
    Stats st (q);
    fail_unless_equals_uint64 (st.u64 ("drops"), 5);
    fail_unless_equals_int (st.u ("current-level-buffers"), 16);
  }

  block.release ();
  pull_in_order (h, 0, 17);
  ck_assert (wait_until ([&] { return Stats (q).u ("current-level-buffers") == 0; }));
  /* Room again: the next buffer passes, marked DISCONT after the gap. */
  fail_unless_equals_int (gst_harness_push (h, timed_buffer (22)), GST_FLOW_OK);
  GstBuffer *b = gst_harness_pull (h);
  fail_unless_equals_uint64 (GST_BUFFER_OFFSET (b), 22);
  ck_assert (GST_BUFFER_FLAG_IS_SET (b, GST_BUFFER_FLAG_DISCONT));
  gst_buffer_unref (b);
  fail_unless_equals_int (gst_harness_buffers_in_queue (h), 0);
  fail_unless_equals_uint64 (Stats (q).u64 ("drops"), 5);

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

/* Growing wakes an upstream blocked on a full queue, while downstream is
 * still stalled. */
GST_START_TEST (test_grow_wakes_upstream)
{
  LoadFixture load (40, 50);
  GstElement *q = make_stepping_queue (load, "no");
  g_object_set (q, "max-size-buffers", 4u, nullptr);
  GstHarness *h = start (q);
  Blocker block (q);

  Pusher pusher (h, 0, 12);
  ck_assert (wait_until ([&] { return pusher.done () == 5; }));
  wait_ticks (q, 3);
  fail_unless_equals_int (pusher.done (), 5);
  fail_unless_equals_int (capacity (q), 4);

  load.set (10, 50);
  fail_unless (wait_until ([&] { return pusher.done () == 12; }),
      "upstream still blocked: %u pushed, capacity %u", pusher.done (), capacity (q));
  fail_unless_equals_int (Stats (q).u ("current-level-buffers"), 11);
  ck_assert (wait_until ([&] { return capacity (q) == 32; }));

  block.release ();
  pull_in_order (h, 0, 12);
  ck_assert (!pusher.failed ());
  fail_unless_equals_uint64 (Stats (q).u64 ("drops"), 0);

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

/* Shrinking wakes a task held back by a min threshold: at the new capacity
 * the queue is full, which overrides the threshold, so the task must push.
 * Left asleep, it would wait for an add that a full queue never gets,
 * while upstream waits for room. */
GST_START_TEST (test_shrink_wakes_held_back_task)
{
  LoadFixture load (40, 50);
  GstElement *q = make_stepping_queue (load, "no");
  g_object_set (q, "min-threshold-buffers", 12u, nullptr);
  GstHarness *h = start (q);

  /* 8 queued, below the threshold and the capacity 16: held back. */
  for (guint i = 0; i < 8; i++)
    fail_unless_equals_int (gst_harness_push (h, make_buffer (i)), GST_FLOW_OK);
  wait_ticks (q, 2);
  fail_unless_equals_int (gst_harness_buffers_received (h), 0);
  fail_unless_equals_int (capacity (q), 16);

  load.set (90, 50);
  fail_unless (wait_until ([&] { return capacity (q) == 4; }),
      "capacity %u did not fall to 4", capacity (q));
  /* Full at 4: pushed down to 3, then held back again. */
  fail_unless (wait_until ([&] { return gst_harness_buffers_received (h) == 5; }),
      "%u buffers came out, capacity %u, level %u", gst_harness_buffers_received (h),
      capacity (q), Stats (q).u ("current-level-buffers"));
  pull_in_order (h, 0, 5);
  fail_unless_equals_int (Stats (q).u ("current-level-buffers"), 3);
  fail_unless_equals_uint64 (Stats (q).u64 ("drops"), 0);

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

/* ---- latency samples ---- */

static guint64
samples (GstElement * q)
{
  return Stats (q).u64 ("latency-samples");
}

static void
push_pull (GstHarness * h, guint64 start_at, guint n, bool timed)
{
  for (guint i = 0; i < n; i++)
    fail_unless_equals_int (gst_harness_push (h, timed ? timed_buffer (start_at + i) :
            make_buffer (start_at + i)), GST_FLOW_OK);
  pull_in_order (h, start_at, n);
}

/* A latency-only element: no load needed. */
static GstElement *
make_latency_queue (const char *source)
{
  GstElement *q = make_queue ("/proc");
  g_object_set (q, "adaptive", FALSE, nullptr);
  gst_util_set_object_arg (G_OBJECT (q), "latency-source", source);
  return q;
}

GST_START_TEST (test_no_sample_without_timestamps)
{
  GstElement *q = make_latency_queue ("queued");
  GstHarness *h = start (q);

  push_pull (h, 0, 20, false);
  fail_unless_equals_uint64 (samples (q), 0);
  fail_unless_equals_int64 (Stats (q).i64 ("latency-average"), -1);

  push_pull (h, 20, 5, true);
  fail_unless_equals_uint64 (samples (q), 5);
  ck_assert (Stats (q).i64 ("latency-average") >= 0);

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

GST_START_TEST (test_no_sample_without_time_segment)
{
  GstElement *q = make_latency_queue ("queued");
  GstHarness *h = start (q);
  gst_harness_use_systemclock (h);

  GstSegment segment;
  gst_segment_init (&segment, GST_FORMAT_BYTES);
  ck_assert (gst_harness_push_event (h, gst_event_new_segment (&segment)));
  push_pull (h, 0, 10, true);
  fail_unless_equals_uint64 (samples (q), 0);
  gst_util_set_object_arg (G_OBJECT (q), "latency-source", "clock");
  push_pull (h, 10, 10, true);
  fail_unless_equals_uint64 (samples (q), 0);
  gst_util_set_object_arg (G_OBJECT (q), "latency-source", "auto");
  push_pull (h, 20, 10, true);
  fail_unless_equals_uint64 (samples (q), 0);
  fail_unless_equals_int64 (Stats (q).i64 ("latency-average"), -1);

  gst_segment_init (&segment, GST_FORMAT_TIME);
  ck_assert (gst_harness_push_event (h, gst_event_new_segment (&segment)));
  push_pull (h, 30, 5, true);
  fail_unless_equals_uint64 (samples (q), 5);

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

/* Clock latency needs a clock and PLAYING; auto falls back to queued. */
GST_START_TEST (test_clock_latency_needs_clock)
{
  GstElement *q = make_latency_queue ("clock");
  GstHarness *h = start (q);
  gst_element_set_clock (q, nullptr);

  push_pull (h, 0, 10, true);
  fail_unless_equals_uint64 (samples (q), 0);
  /* A new source restarts the average. */
  gst_util_set_object_arg (G_OBJECT (q), "latency-source", "auto");
  push_pull (h, 10, 10, true);
  fail_unless_equals_uint64 (samples (q), 10);

  gst_harness_use_systemclock (h);
  gst_util_set_object_arg (G_OBJECT (q), "latency-source", "clock");
  fail_unless_equals_uint64 (samples (q), 0);
  push_pull (h, 20, 5, true);
  fail_unless_equals_uint64 (samples (q), 5);

  /* PAUSED: no running clock. */
  fail_unless_equals_int (gst_element_set_state (q, GST_STATE_PAUSED),
      GST_STATE_CHANGE_SUCCESS);
  push_pull (h, 25, 5, true);
  fail_unless_equals_uint64 (samples (q), 5);
  gst_util_set_object_arg (G_OBJECT (q), "latency-source", "auto");
  push_pull (h, 30, 5, true);
  fail_unless_equals_uint64 (samples (q), 5);
  fail_unless_equals_int (gst_element_set_state (q, GST_STATE_PLAYING),
      GST_STATE_CHANGE_SUCCESS);

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

static Suite *
adaptation_suite (void)
{
  Suite *s = suite_create ("adaptivequeue-adaptation");

  TCase *tc = tcase_create ("formulas");
  tcase_set_timeout (tc, 120);
  tcase_add_loop_test (tc, test_sequence_follows_formulas, 0,
      static_cast<int> (scenarios ().size ()));
  tcase_add_test (tc, test_latency_factor_moves_capacity);
  tcase_add_test (tc, test_manual_capacity);
  suite_add_tcase (s, tc);

  tc = tcase_create ("robustness");
  tcase_set_timeout (tc, 120);
  tcase_add_loop_test (tc, test_bad_configuration, 0, 3);
  tcase_add_test (tc, test_bad_configuration_from_start);
  tcase_add_loop_test (tc, test_unreadable_proc, 0, 4);
  suite_add_tcase (s, tc);

  tc = tcase_create ("resizing");
  tcase_set_timeout (tc, 120);
  tcase_add_test (tc, test_shrink_not_leaky_keeps_all);
  tcase_add_test (tc, test_shrink_leaky_downstream_drops_oldest);
  tcase_add_test (tc, test_shrink_leaky_upstream_drops_new);
  tcase_add_test (tc, test_grow_wakes_upstream);
  tcase_add_test (tc, test_shrink_wakes_held_back_task);
  suite_add_tcase (s, tc);

  tc = tcase_create ("latency-samples");
  tcase_add_test (tc, test_no_sample_without_timestamps);
  tcase_add_test (tc, test_no_sample_without_time_segment);
  tcase_add_test (tc, test_clock_latency_needs_clock);
  suite_add_tcase (s, tc);

  return s;
}

GST_CHECK_MAIN (adaptation);
