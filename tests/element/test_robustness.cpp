/* adaptivequeue under bad input and faults: malformed, missing and
 * unreadable /proc files, counters that go backwards, contradictory and
 * out-of-range properties, buffers without timestamps, segments that are
 * not TIME, no clock, every flow return from downstream, and EOS around a
 * flush. Each test is a row of docs/robustness.md.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <glib/gstdio.h>

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

constexpr guint64 kInterval = 20 * GST_MSECOND;
/* Generous: the machine is shared and may run this under valgrind; waits
 * end as soon as they succeed. */
constexpr gint64 kWaitUs = 30 * G_USEC_PER_SEC;

bool
wait_until (const std::function<bool ()> & done, gint64 timeout_us = kWaitUs)
{
  const gint64 deadline = g_get_monotonic_time () + timeout_us;
  while (!done ()) {
    if (g_get_monotonic_time () > deadline)
      return false;
    g_usleep (1000);
  }
  return true;
}

/* ---- fixture /proc trees ---- */

void
remove_tree (const std::string & path)
{
  if (g_file_test (path.c_str (), G_FILE_TEST_IS_DIR) &&
      !g_file_test (path.c_str (), G_FILE_TEST_IS_SYMLINK)) {
    if (GDir * dir = g_dir_open (path.c_str (), 0, nullptr)) {
      while (const gchar * name = g_dir_read_name (dir))
        remove_tree (path + "/" + name);
      g_dir_close (dir);
    }
    g_rmdir (path.c_str ());
  } else {
    g_unlink (path.c_str ());
  }
}

/* A directory the element reads as its procfs root; files are replaced by
 * rename, so a reader never sees one half written. */
class ProcTree
{
public:
  ProcTree ()
  {
    gchar *dir = g_dir_make_tmp ("aq-robust-XXXXXX", nullptr);
    g_assert (dir != nullptr);
    dir_ = dir;
    g_free (dir);
  }
  ~ProcTree () { remove_tree (dir_); }
  ProcTree (const ProcTree &) = delete;
  ProcTree & operator= (const ProcTree &) = delete;

  const char *dir () const { return dir_.c_str (); }
  std::string path (const std::string & name) const { return dir_ + "/" + name; }

  void write (const std::string & name, const std::string & text)
  {
    if (name.rfind ("self/", 0) == 0)
      g_mkdir_with_parents (path ("self").c_str (), 0755);
    const std::string tmp = dir_ + "/.tmp";
    FILE *f = std::fopen (tmp.c_str (), "wb");
    g_assert (f != nullptr);
    g_assert (std::fwrite (text.data (), 1, text.size (), f) == text.size ());
    g_assert (std::fclose (f) == 0);
    g_assert (std::rename (tmp.c_str (), path (name).c_str ()) == 0);
  }
  void make_dir (const std::string & name)
  {
    g_assert (g_mkdir_with_parents (path (name).c_str (), 0755) == 0);
  }

private:
  std::string dir_;
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

std::string
stat_text (guint64 busy, guint64 idle)
{
  gchar *text = g_strdup_printf ("cpu  %" G_GUINT64_FORMAT " 0 0 %" G_GUINT64_FORMAT
      " 0 0 0 0 0 0\ncpu0 %" G_GUINT64_FORMAT " 0 0 %" G_GUINT64_FORMAT
      " 0 0 0 0 0 0\nintr 0\n", busy, idle, busy, idle);
  std::string out = text;
  g_free (text);
  return out;
}

/* Fields 3..24 of /proc/<pid>/stat: utime is field 14, stime 15, rss 24. */
std::string
pid_stat_text (guint64 utime, guint64 stime)
{
  gchar *text = g_strdup_printf ("4242 (aq (test)) S 1 1 1 0 -1 0 0 0 0 0 %"
      G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " 0 0 20 0 1 0 100 1000 250\n",
      utime, stime);
  std::string out = text;
  g_free (text);
  return out;
}

const char *const kStatm = "1000 250 100 10 0 200 0\n";

/* Writes a tree the sampler reads without complaint in either scope. */
void
write_good_tree (ProcTree & tree)
{
  tree.write ("meminfo", meminfo_text (20));
  tree.write ("stat", stat_text (1000, 1000));
  tree.write ("self/stat", pid_stat_text (100, 100));
  tree.write ("self/statm", kStatm);
}

/* Keeps a load current: every 2 ms the counters move, forwards in the set
 * proportion or, when told, backwards. */
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

  void set (int cpu, int mem)
  {
    cpu_ = cpu;
    mem_ = mem;
  }
  void backwards (bool b) { backwards_ = b; }
  const char *dir () const { return tree_.dir (); }

private:
  void step ()
  {
    const guint64 cpu = static_cast<guint64> (cpu_.load ());
    if (backwards_) {
      busy_ -= cpu + 1;
      idle_ -= 100 - cpu + 1;
      ticks_ -= 1;
    } else {
      busy_ += cpu;
      idle_ += 100 - cpu;
      ticks_ += 1;
    }
    tree_.write ("stat", stat_text (busy_, idle_));
    tree_.write ("meminfo", meminfo_text (mem_));
    tree_.write ("self/stat", pid_stat_text (ticks_, ticks_));
    tree_.write ("self/statm", kStatm);
  }

  ProcTree tree_;
  std::atomic<int> cpu_ {0};
  std::atomic<int> mem_ {0};
  std::atomic<bool> backwards_ {false};
  /* Far from 0, so going backwards never wraps. */
  guint64 busy_ = 1000000000;
  guint64 idle_ = 1000000000;
  guint64 ticks_ = 1000000000;
  std::atomic<bool> stop_ {false};
  std::thread thread_;
};

/* ---- bus, stats, element ---- */

/* Collects the element's warnings, errors and adaptation messages. */
class Bus
{
public:
  explicit Bus (GstElement * element) : bus_ (gst_bus_new ())
  {
    gst_element_set_bus (element, bus_);
  }
  ~Bus ()
  {
    /* Queued messages hold the element, which holds the bus: drop them, or
     * the three keep each other alive. */
    gst_bus_set_flushing (bus_, TRUE);
    gst_object_unref (bus_);
  }
  Bus (const Bus &) = delete;
  Bus & operator= (const Bus &) = delete;

  void drain ()
  {
    while (GstMessage * m = gst_bus_pop (bus_))
      take (m);
  }

  /* Waits for a warning of `domain`; with `saying`, one whose text has it. */
  bool wait_warning (GQuark domain, const char *saying = nullptr,
      gint64 timeout_us = kWaitUs)
  {
    const gint64 deadline = g_get_monotonic_time () + timeout_us;
    while (warnings_in (domain, saying) == 0) {
      const gint64 left = deadline - g_get_monotonic_time ();
      if (left <= 0)
        return false;
      if (GstMessage * m = gst_bus_timed_pop (bus_, left * GST_USECOND))
        take (m);
    }
    return true;
  }

  bool wait_error (gint64 timeout_us = kWaitUs)
  {
    const gint64 deadline = g_get_monotonic_time () + timeout_us;
    while (errors.empty ()) {
      const gint64 left = deadline - g_get_monotonic_time ();
      if (left <= 0)
        return false;
      if (GstMessage * m = gst_bus_timed_pop (bus_, left * GST_USECOND))
        take (m);
    }
    return true;
  }

  size_t warnings_in (GQuark domain, const char *saying = nullptr) const
  {
    size_t n = 0;
    for (const auto & w : warnings)
      n += w.first == domain && (!saying || w.second.find (saying) != std::string::npos);
    return n;
  }

  std::string warning_text (GQuark domain) const
  {
    for (const auto & w : warnings)
      if (w.first == domain)
        return w.second;
    return "";
  }

  std::vector<std::pair<GQuark, std::string>> warnings;
  std::vector<std::string> errors;
  size_t adaptations = 0;

private:
  static std::string text (GError * err, gchar * debug)
  {
    std::string s = std::string (err->message) + " | " + (debug ? debug : "");
    g_error_free (err);
    g_free (debug);
    return s;
  }

  void take (GstMessage * m)
  {
    GError *err = nullptr;
    gchar *debug = nullptr;
    if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_WARNING) {
      gst_message_parse_warning (m, &err, &debug);
      const GQuark domain = err->domain;
      warnings.emplace_back (domain, text (err, debug));
    } else if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ERROR) {
      gst_message_parse_error (m, &err, &debug);
      errors.push_back (text (err, debug));
    } else if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ELEMENT &&
        gst_message_has_name (m, "adaptivequeue-adaptation")) {
      adaptations++;
    }
    gst_message_unref (m);
  }

  GstBus *bus_;
};

/* One snapshot of the "stats" property. */
class Stats
{
public:
  explicit Stats (GstElement * q)
  {
    g_object_get (q, "stats", &s_, nullptr);
    ck_assert (s_ != nullptr);
  }
  ~Stats () { gst_structure_free (s_); }
  Stats (const Stats &) = delete;
  Stats & operator= (const Stats &) = delete;

  guint u (const char *f) const
  {
    guint v = 0;
    fail_unless (gst_structure_get_uint (s_, f, &v), "no uint %s", f);
    return v;
  }
  guint64 u64 (const char *f) const
  {
    guint64 v = 0;
    fail_unless (gst_structure_get_uint64 (s_, f, &v), "no uint64 %s", f);
    return v;
  }
  double d (const char *f) const
  {
    double v = 0;
    fail_unless (gst_structure_get_double (s_, f, &v), "no double %s", f);
    return v;
  }
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

guint64
uint64_prop (GstElement * q, const char *name)
{
  guint64 v = 0;
  g_object_get (q, name, &v, nullptr);
  return v;
}

void
wait_ticks (GstElement * q, guint64 n)
{
  const guint64 base = Stats (q).u64 ("ticks");
  fail_unless (wait_until ([&] { return Stats (q).u64 ("ticks") >= base + n; }),
      "ticks stopped");
}

/* Waits for `n` ticks; true if none of them was skipped. */
bool
unskipped_ticks (GstElement * q, guint64 n)
{
  Stats a (q);
  wait_ticks (q, n);
  Stats b (q);
  return b.u64 ("skipped-ticks") == a.u64 ("skipped-ticks") &&
      b.u64 ("ticks") >= a.u64 ("ticks") + n;
}

GstElement *
make_queue (const char *proc_root)
{
  GstElement *q = gst_element_factory_make ("adaptivequeue", nullptr);
  fail_unless (q != nullptr, "adaptivequeue not found: is GST_PLUGIN_PATH set?");
  g_object_set (q, "proc-root", proc_root, "adaptation-interval", kInterval, nullptr);
  return q;
}

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

void
push_pull (GstHarness * h, guint64 start_at, guint n)
{
  for (guint i = 0; i < n; i++)
    fail_unless_equals_int (gst_harness_push (h, timed_buffer (start_at + i)), GST_FLOW_OK);
  pull_in_order (h, start_at, n);
}

/* Holds buffers at the element's src pad, like a stalled downstream. */
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

/* Pushes buffers [start_at, start_at + count) from a thread. */
class Pusher
{
public:
  Pusher (GstHarness * h, guint64 start_at, guint count,
      std::function<GstBuffer * (guint64)> make = timed_buffer)
  {
    thread_ = std::thread ([this, h, start_at, count, make] {
      for (guint i = 0; i < count; i++) {
        if (gst_harness_push (h, make (start_at + i)) != GST_FLOW_OK)
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

GQuark
read_domain ()
{
  return GST_RESOURCE_ERROR;
}

GQuark
settings_domain ()
{
  return GST_LIBRARY_ERROR;
}

/* ---- bad /proc: one warning saying why, every tick skipped, data flows ---- */

struct ProcCase
{
  const char *name;
  bool process_scope;
  /* Breaks a good tree; the root path may be changed too. */
  std::function<void (ProcTree &, std::string &)> spoil;
  const char *expect_in_warning;
};

void
run_proc_case (const ProcCase & c)
{
  ProcTree tree;
  write_good_tree (tree);
  std::string root = tree.dir ();
  c.spoil (tree, root);

  GstElement *q = make_queue (root.c_str ());
  if (c.process_scope)
    gst_util_set_object_arg (G_OBJECT (q), "load-scope", "process");
  Bus bus (q);
  GstHarness *h = start (q);

  fail_unless (bus.wait_warning (read_domain ()), "%s: no warning", c.name);
  const std::string text = bus.warning_text (read_domain ());
  fail_unless (text.find (c.expect_in_warning) != std::string::npos,
      "%s: warning does not say '%s': %s", c.name, c.expect_in_warning, text.c_str ());

  push_pull (h, 0, 20);
  wait_ticks (q, 5);
  bus.drain ();

  Stats st (q);
  ck_assert (st.u64 ("ticks") >= 5);
  fail_unless_equals_uint64 (st.u64 ("skipped-ticks"), st.u64 ("ticks"));
  fail_unless_equals_uint64 (st.u64 ("adaptations"), 0);
  ck_assert (!st.b ("load-valid"));
  fail_unless_equals_int (st.u ("capacity"), 16);
  fail_unless_equals_uint64 (st.u64 ("buffers-pushed"), 20);
  fail_unless_equals_uint64 (st.u64 ("drops"), 0);
  fail_unless_equals_int (bus.warnings_in (read_domain ()), 1);
  fail_unless_equals_int (bus.errors.size (), 0);

  gst_harness_teardown (h);
  gst_object_unref (q);
}

std::string
repeat (char c, size_t n)
{
  return std::string (n, c);
}

const std::vector<ProcCase> &
malformed_cases ()
{
  using T = ProcTree;
  static const std::vector<ProcCase> all = {
    {"empty stat", false, [](T & t, std::string &) { t.write ("stat", ""); }, "stat"},
    {"binary stat", false, [](T & t, std::string &) {
          t.write ("stat", std::string ("\0\xff\x01 cpu\0 12", 11)); }, "stat"},
    {"stat counter beyond 64 bits", false, [](T & t, std::string &) {
          t.write ("stat", "cpu  99999999999999999999 0 0 1 0 0 0 0 0 0\n"); }, "stat"},
    {"negative stat counter", false, [](T & t, std::string &) {
          t.write ("stat", "cpu  -5 0 0 1 0 0 0 0 0 0\n"); }, "stat"},
    {"stat counters overflow their sum", false, [](T & t, std::string &) {
          t.write ("stat", "cpu  18446744073709551615 1 0 1 0 0 0 0 0 0\n"); }, "stat"},
    {"stat without the aggregate line", false, [](T & t, std::string &) {
          t.write ("stat", "cpu0 1 2 3 4 0 0 0 0 0 0\nintr 0\n"); }, "stat"},
    {"stat with three counters", false, [](T & t, std::string &) {
          t.write ("stat", "cpu  1 2 3\n"); }, "stat"},
    {"stat with a 1 MiB counter", false, [](T & t, std::string &) {
          t.write ("stat", "cpu  " + repeat ('7', 1 << 20) + " 0 0 1\n"); }, "stat"},
    {"empty meminfo", false, [](T & t, std::string &) { t.write ("meminfo", ""); },
        "meminfo"},
    {"meminfo MemTotal 0", false, [](T & t, std::string &) {
          t.write ("meminfo", "MemTotal: 0 kB\nMemAvailable: 0 kB\n"); }, "meminfo"},
    {"meminfo without MemAvailable or MemFree", false, [](T & t, std::string &) {
          t.write ("meminfo", "MemTotal: 1000 kB\nBuffers: 5 kB\n"); }, "meminfo"},
    {"meminfo in MB", false, [](T & t, std::string &) {
          t.write ("meminfo", "MemTotal: 1000 MB\nMemAvailable: 5 MB\n"); }, "meminfo"},
    {"meminfo cut after the key", false, [](T & t, std::string &) {
          t.write ("meminfo", "MemTotal:"); }, "meminfo"},
    {"truncated self/stat", true, [](T & t, std::string &) {
          t.write ("self/stat", "4242 (aq) S 1 1 1 0"); }, "self/stat"},
    {"self/stat without (comm)", true, [](T & t, std::string &) {
          t.write ("self/stat", "4242 aq S 1 1 1 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 1 1 1\n"); },
        "self/stat"},
    {"self/stat with text for utime", true, [](T & t, std::string &) {
          t.write ("self/stat", "4242 (aq) S 1 1 1 0 -1 0 0 0 0 0 x 1 0 0 20 0 1 0 1 1 1\n"); },
        "self/stat"},
    {"garbage self/statm", true, [](T & t, std::string &) {
          t.write ("self/statm", "lots of pages\n"); }, "self/statm"},
    {"stat is a directory", false, [](T & t, std::string &) {
          g_unlink (t.path ("stat").c_str ());
          t.make_dir ("stat"); }, "stat"},
  };
  return all;
}

const std::vector<ProcCase> &
missing_cases ()
{
  using T = ProcTree;
  static const std::vector<ProcCase> all = {
    {"no procfs root", false, [](T &, std::string & root) { root += "/nowhere"; },
        "No such file"},
    {"no stat", false, [](T & t, std::string &) { g_unlink (t.path ("stat").c_str ()); },
        "No such file"},
    {"no meminfo", false, [](T & t, std::string &) {
          g_unlink (t.path ("meminfo").c_str ()); }, "No such file"},
    {"no self/stat", true, [](T & t, std::string &) {
          g_unlink (t.path ("self/stat").c_str ()); }, "No such file"},
    {"no self/statm", true, [](T & t, std::string &) {
          g_unlink (t.path ("self/statm").c_str ()); }, "No such file"},
    {"empty root directory", false, [](T &, std::string & root) {
          root += "/empty";
          g_mkdir (root.c_str (), 0755); }, "No such file"},
  };
  return all;
}

}  // namespace

GST_START_TEST (test_malformed_proc)
{
  run_proc_case (malformed_cases ().at (__i__));
}
GST_END_TEST;

GST_START_TEST (test_missing_proc_files)
{
  run_proc_case (missing_cases ().at (__i__));
}
GST_END_TEST;

/* Without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH in the calling thread's
 * effective set, mode 0 files cannot be read even by root. Capabilities are
 * per thread and inherited by threads created meanwhile, such as the shared
 * sampler's, which the element starts from this thread. */
class NoDacOverride
{
public:
  NoDacOverride ()
  {
    if (geteuid () != 0)
      return;
    header_.version = _LINUX_CAPABILITY_VERSION_3;
    header_.pid = 0;
    ck_assert (syscall (SYS_capget, &header_, saved_) == 0);
    __user_cap_data_struct data[2] = {saved_[0], saved_[1]};
    for (int cap : {CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH})
      data[CAP_TO_INDEX (cap)].effective &= ~CAP_TO_MASK (cap);
    ck_assert (syscall (SYS_capset, &header_, data) == 0);
    dropped_ = true;
  }
  ~NoDacOverride ()
  {
    if (dropped_)
      syscall (SYS_capset, &header_, saved_);
  }
  NoDacOverride (const NoDacOverride &) = delete;
  NoDacOverride & operator= (const NoDacOverride &) = delete;

private:
  __user_cap_header_struct header_ {};
  __user_cap_data_struct saved_[2] {};
  bool dropped_ = false;
};

GST_START_TEST (test_permission_denied)
{
  ProcTree tree;
  write_good_tree (tree);
  const char *file = __i__ == 0 ? "stat" : "meminfo";
  ck_assert (g_chmod (tree.path (file).c_str (), 0) == 0);

  GstElement *q = make_queue (tree.dir ());
  Bus bus (q);
  GstHarness *h;
  {
    NoDacOverride no_override;
    /* The precondition, checked: this thread cannot read the file. */
    const int fd = g_open (tree.path (file).c_str (), O_RDONLY, 0);
    const int err = errno;
    if (fd >= 0)
      close (fd);
    fail_unless (fd < 0 && err == EACCES, "cannot make %s unreadable here", file);
    h = start (q);
    /* The sampler thread has started from here without the override. */
    wait_ticks (q, 2);
  }

  fail_unless (bus.wait_warning (read_domain ()), "no warning");
  const std::string text = bus.warning_text (read_domain ());
  fail_unless (text.find ("Permission denied") != std::string::npos &&
      text.find (file) != std::string::npos, "warning does not say why: %s",
      text.c_str ());
  push_pull (h, 0, 20);
  wait_ticks (q, 3);
  bus.drain ();
  Stats st (q);
  fail_unless_equals_uint64 (st.u64 ("skipped-ticks"), st.u64 ("ticks"));
  ck_assert (!st.b ("load-valid"));
  fail_unless_equals_uint64 (st.u64 ("buffers-pushed"), 20);
  fail_unless_equals_int (bus.warnings_in (read_domain ()), 1);
  fail_unless_equals_int (bus.errors.size (), 0);

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

/* Counters that go backwards (a counter reset, a rewritten fixture) give no
 * sample and one warning; once they move forwards again sampling resumes
 * from the new values. Loop: 0 system scope, 1 process scope. */
GST_START_TEST (test_counters_backwards)
{
  LoadFixture load (10, 20);
  GstElement *q = make_queue (load.dir ());
  if (__i__ == 1)
    gst_util_set_object_arg (G_OBJECT (q), "load-scope", "process");
  Bus bus (q);
  GstHarness *h = start (q);

  fail_unless (wait_until ([&] { return Stats (q).b ("load-valid"); }), "no sample");
  bus.drain ();
  fail_unless_equals_int (bus.warnings_in (read_domain (), "backwards"), 0);

  load.backwards (true);
  fail_unless (bus.wait_warning (read_domain (), "backwards"), "no warning: %s",
      bus.warning_text (read_domain ()).c_str ());
  {
    const guint64 skipped = Stats (q).u64 ("skipped-ticks");
    wait_ticks (q, 4);
    ck_assert (Stats (q).u64 ("skipped-ticks") >= skipped + 3);
  }
  push_pull (h, 0, 10);

  load.backwards (false);
  load.set (90, 20);
  /* Sampling resumes: ticks stop being skipped. */
  fail_unless (wait_until ([&] { return unskipped_ticks (q, 3); }), "ticks still skipped");
  if (__i__ == 0)
    fail_unless (wait_until ([&] { return Stats (q).d ("cpu-percent") == 90.0; }),
        "cpu %% is %f, not 90", Stats (q).d ("cpu-percent"));
  push_pull (h, 10, 10);
  bus.drain ();
  fail_unless_equals_int (bus.warnings_in (read_domain (), "backwards"), 1);
  /* On a loaded machine (valgrind) the fixture thread may not run between
   * two reads: that is a stall, and its own warning, not the fault here. */
  fail_unless_equals_int (bus.warnings_in (read_domain ()),
      1 + bus.warnings_in (read_domain (), "no CPU ticks elapsed"));
  fail_unless_equals_int (bus.errors.size (), 0);

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

/* ---- contradictory and out-of-range properties ---- */

struct ConfigCase
{
  const char *name;
  std::function<void (GstElement *)> apply;
  std::vector<const char *> named;
};

const std::vector<ConfigCase> &
config_cases ()
{
  static const std::vector<ConfigCase> all = {
    {"mem thresholds inverted", [](GstElement * q) {
          g_object_set (q, "mem-low-threshold", 80.0, "mem-high-threshold", 75.0, nullptr); },
        {"mem-low-threshold", "mem-high-threshold"}},
    {"cpu thresholds equal", [](GstElement * q) {
          g_object_set (q, "cpu-low-threshold", 50.0, "cpu-high-threshold", 50.0, nullptr); },
        {"cpu-low-threshold", "cpu-high-threshold"}},
    {"target latency above max latency", [](GstElement * q) {
          g_object_set (q, "target-latency", 60 * GST_MSECOND, nullptr); },
        {"target-latency", "max-latency"}},
    {"target latency equal to max latency", [](GstElement * q) {
          g_object_set (q, "target-latency", 50 * GST_MSECOND, nullptr); },
        {"target-latency", "max-latency"}},
    {"min-buffers above max-buffers", [](GstElement * q) {
          g_object_set (q, "min-buffers", 10u, "max-buffers", 5u, nullptr); },
        {"min-buffers", "max-buffers"}},
    {"all weights 0", [](GstElement * q) {
          g_object_set (q, "latency-weight", 0.0, "mem-weight", 0.0, "cpu-weight", 0.0,
              nullptr); },
        {"cpu-weight", "mem-weight", "latency-weight"}},
    {"everything at once", [](GstElement * q) {
          g_object_set (q, "min-buffers", 40u, "cpu-low-threshold", 90.0,
              "mem-low-threshold", 99.0, "mem-high-threshold", 1.0,
              "target-latency", GST_SECOND, "cpu-weight", 0.0, "mem-weight", 0.0,
              "latency-weight", 0.0, nullptr); },
        {"min-buffers", "cpu-low-threshold", "mem-low-threshold", "target-latency",
          "cpu-weight", "mem-weight", "latency-weight"}},
  };
  return all;
}

/* An invalid combination gets one WARNING that names every field involved;
 * ticks go on with the last valid configuration, and data flows. Each
 * g_object_set() stores one property at a time, so the last valid one is
 * what the properties set before the first invalid one made: here it always
 * grows the capacity under an idle load (to 29 or 30), within 4..32. */
GST_START_TEST (test_contradictory_config)
{
  const ConfigCase & c = config_cases ().at (__i__);
  LoadFixture load (10, 20);
  GstElement *q = make_queue (load.dir ());
  c.apply (q);
  Bus bus (q);
  GstHarness *h = start (q);

  fail_unless (bus.wait_warning (settings_domain ()), "%s: no warning", c.name);
  const std::string text = bus.warning_text (settings_domain ());
  for (const char *field : c.named)
    fail_unless (text.find (field) != std::string::npos, "%s: '%s' not named in: %s",
        c.name, field, text.c_str ());

  fail_unless (wait_until ([&] { return uint_prop (q, "max-size-buffers") >= 29; }),
      "%s: capacity %u did not grow", c.name, uint_prop (q, "max-size-buffers"));
  push_pull (h, 0, 20);
  /* Ticks are not skipped for the configuration: three in a row sample and
   * decide. (One may be skipped when the fixture thread did not run between
   * two reads, on a loaded machine.) */
  fail_unless (wait_until ([&] { return unskipped_ticks (q, 3); }),
      "%s: ticks are skipped", c.name);
  const guint capacity = uint_prop (q, "max-size-buffers");
  fail_unless (capacity >= 29 && capacity <= 32, "%s: capacity %u", c.name, capacity);
  ck_assert (Stats (q).u64 ("adaptations") >= 5);
  bus.drain ();
  fail_unless_equals_int (bus.warnings_in (settings_domain ()), 1);
  fail_unless_equals_int (bus.errors.size (), 0);

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

/* min-buffers == max-buffers is valid: a fixed capacity whatever the load. */
GST_START_TEST (test_equal_bounds_fix_capacity)
{
  LoadFixture load (10, 20);
  GstElement *q = make_queue (load.dir ());
  g_object_set (q, "min-buffers", 8u, "max-buffers", 8u, "smoothing", 1.0, nullptr);
  Bus bus (q);
  GstHarness *h = start (q);
  fail_unless (wait_until ([&] { return uint_prop (q, "max-size-buffers") == 8; }),
      "capacity %u, not 8", uint_prop (q, "max-size-buffers"));
  load.set (90, 90);
  wait_ticks (q, 6);
  fail_unless_equals_int (uint_prop (q, "max-size-buffers"), 8);
  load.set (0, 0);
  wait_ticks (q, 6);
  fail_unless_equals_int (uint_prop (q, "max-size-buffers"), 8);
  push_pull (h, 0, 20);
  bus.drain ();
  fail_unless_equals_int (bus.warnings_in (settings_domain ()), 0);

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

/* smoothing=0 is valid and freezes the capacity: no step leaves the dead
 * band. */
GST_START_TEST (test_zero_smoothing_freezes)
{
  LoadFixture load (90, 90);
  GstElement *q = make_queue (load.dir ());
  g_object_set (q, "smoothing", 0.0, nullptr);
  Bus bus (q);
  GstHarness *h = start (q);
  fail_unless (wait_until ([&] { return Stats (q).b ("load-valid"); }), "no sample");
  wait_ticks (q, 8);
  bus.drain ();
  fail_unless_equals_int (bus.adaptations, 0);
  fail_unless_equals_int (uint_prop (q, "max-size-buffers"), 16);
  fail_unless_equals_uint64 (Stats (q).u64 ("adaptations"), 0);
  fail_unless_equals_int (bus.warnings_in (settings_domain ()), 0);

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

/* A min threshold above the max size can never be met while the queue is
 * full: the max limit wins and data flows (as in queue); what is left below
 * the threshold drains at EOS. Loop: buffers, bytes, time. */
GST_START_TEST (test_min_threshold_above_max_size)
{
  constexpr guint kCount = 30;
  GstElement *q = make_queue ("/nonexistent");
  g_object_set (q, "adaptive", FALSE, nullptr);
  switch (__i__) {
    case 0:
      g_object_set (q, "max-size-buffers", 4u, "min-threshold-buffers", 40u, nullptr);
      break;
    case 1:
      /* 16-byte buffers: four fill it. */
      g_object_set (q, "max-size-buffers", 0u, "max-size-bytes", 64u,
          "min-threshold-bytes", 640u, nullptr);
      break;
    default:
      /* 10 ms buffers: 40 ms fill it. */
      g_object_set (q, "max-size-buffers", 0u, "max-size-time", 40 * GST_MSECOND,
          "min-threshold-time", GST_SECOND, nullptr);
      break;
  }
  GstHarness *h = start (q);
  {
    Pusher pusher (h, 0, kCount);
    /* Everything but what sits below the threshold comes out. */
    GstBuffer *b;
    for (guint i = 0; i + 4 < kCount; i++) {
      b = gst_harness_pull (h);
      fail_unless (b != nullptr, "case %d: stuck after %u buffers", __i__, i);
      fail_unless_equals_uint64 (GST_BUFFER_OFFSET (b), i);
      gst_buffer_unref (b);
    }
    ck_assert (wait_until ([&] { return pusher.done () == kCount; }));
    ck_assert (!pusher.failed ());
  }
  ck_assert (gst_harness_push_event (h, gst_event_new_eos ()));
  GstBuffer *b;
  guint64 next = kCount - 4;
  while (gst_harness_pull_until_eos (h, &b) && b) {
    fail_unless_equals_uint64 (GST_BUFFER_OFFSET (b), next++);
    gst_buffer_unref (b);
  }
  fail_unless_equals_uint64 (next, kCount);
  fail_unless_equals_uint64 (Stats (q).u64 ("drops"), 0);

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

/* adaptive=false and every max-size at 0: no limit at all, as in queue.
 * Nothing blocks while downstream is stalled, nothing is lost. */
GST_START_TEST (test_all_limits_off)
{
  constexpr guint kCount = 500;
  GstElement *q = make_queue ("/nonexistent");
  g_object_set (q, "adaptive", FALSE, "max-size-buffers", 0u, "max-size-bytes", 0u,
      "max-size-time", G_GUINT64_CONSTANT (0), nullptr);
  GstHarness *h = start (q);
  Blocker block (q);
  for (guint i = 0; i < kCount; i++)
    fail_unless_equals_int (gst_harness_push (h, timed_buffer (i)), GST_FLOW_OK);
  block.wait_held ();
  fail_unless_equals_int (uint_prop (q, "current-level-buffers"), kCount - 1);
  fail_unless_equals_int (uint_prop (q, "current-level-bytes"), (kCount - 1) * 16);
  block.release ();
  pull_in_order (h, 0, kCount);
  fail_unless_equals_int (uint_prop (q, "current-level-buffers"), 0);

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

/* Values outside a property's GParamSpec range are refused by GObject with
 * a warning and leave the property as it was; the element keeps working. */
GST_START_TEST (test_out_of_range_values)
{
  GstElement *q = make_queue ("/nonexistent");
  GstHarness *h = start (q);

  ASSERT_WARNING (g_object_set (q, "min-buffers", 0u, nullptr));
  fail_unless_equals_int (uint_prop (q, "min-buffers"), 4);
  ASSERT_WARNING (g_object_set (q, "max-buffers", 0u, nullptr));
  fail_unless_equals_int (uint_prop (q, "max-buffers"), 32);
  ASSERT_WARNING (g_object_set (q, "adaptation-interval", G_GUINT64_CONSTANT (1000), nullptr));
  fail_unless_equals_uint64 (uint64_prop (q, "adaptation-interval"), kInterval);
  ASSERT_WARNING (g_object_set (q, "target-latency", 3601 * GST_SECOND, nullptr));
  fail_unless_equals_uint64 (uint64_prop (q, "target-latency"), 20 * GST_MSECOND);
  const struct
  {
    const char *name;
    double bad;
    double unchanged;
  } doubles[] = {
    {"cpu-low-threshold", 101.0, 20.0},
    {"cpu-high-threshold", -1.0, 60.0},
    {"mem-low-threshold", 1e9, 35.0},
    {"smoothing", 1.5, 0.3},
    {"cpu-weight", -0.1, 0.5},
    {"latency-weight", 2.0, 0.2},
  };
  for (const auto & d : doubles) {
    ASSERT_WARNING (g_object_set (q, d.name, d.bad, nullptr));
    double v = 0;
    g_object_get (q, d.name, &v, nullptr);
    fail_unless_equals_float (v, d.unchanged);
  }
  ASSERT_WARNING (g_object_set (q, "leaky", 7, nullptr));
  gint leaky = -1;
  g_object_get (q, "leaky", &leaky, nullptr);
  fail_unless_equals_int (leaky, 0);
  /* An empty or unset procfs root means the default. */
  for (const char *root : {"", static_cast<const char *> (nullptr)}) {
    g_object_set (q, "proc-root", root, nullptr);
    gchar *now = nullptr;
    g_object_get (q, "proc-root", &now, nullptr);
    fail_unless_equals_string (now, "/proc");
    g_free (now);
  }

  push_pull (h, 0, 10);
  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

/* The largest limits queue accepts: G_MAXUINT buffers and bytes, G_MAXUINT64
 * ns. They are valid, so they must not make the element reserve storage for
 * them up front (4 G slots would not fit in memory); data flows as with no
 * limit. */
GST_START_TEST (test_huge_limits)
{
  GstElement *q = make_queue ("/nonexistent");
  g_object_set (q, "adaptive", FALSE, nullptr);
  g_object_set (q, "max-size-buffers", G_MAXUINT, "max-size-bytes", G_MAXUINT,
      "max-size-time", G_MAXUINT64, "min-threshold-buffers", G_MAXUINT, nullptr);
  GstHarness *h = start (q);
  fail_unless_equals_int (uint_prop (q, "max-size-buffers"), G_MAXUINT);
  {
    Blocker block (q);
    for (guint i = 0; i < 200; i++)
      fail_unless_equals_int (gst_harness_push (h, timed_buffer (i)), GST_FLOW_OK);
    /* The min threshold holds everything back until EOS. */
    fail_unless_equals_int (uint_prop (q, "current-level-buffers"), 200);
  }
  ck_assert (gst_harness_push_event (h, gst_event_new_eos ()));
  pull_in_order (h, 0, 200);

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

/* ---- timestamps and segments ---- */

/* Untimestamped buffers leave the time level at 0, so max-size-time never
 * fills; the buffer limit still applies and nothing is lost. Timestamped
 * buffers after them are measured from their own timestamps. */
GST_START_TEST (test_untimestamped_buffers)
{
  GstElement *q = make_queue ("/nonexistent");
  g_object_set (q, "adaptive", FALSE, "max-size-buffers", 5u,
      "max-size-time", 30 * GST_MSECOND, nullptr);
  GstHarness *h = start (q);
  Blocker block (q);
  {
    Pusher pusher (h, 0, 8, [](guint64 i) { return make_buffer (i); });
    block.wait_held ();
    /* One held downstream, five queued, the seventh push waits. */
    fail_unless (wait_until ([&] { return pusher.done () == 6; }), "%u pushed",
        pusher.done ());
    g_usleep (50000);
    fail_unless_equals_int (pusher.done (), 6);
    fail_unless_equals_int (uint_prop (q, "current-level-buffers"), 5);
    fail_unless_equals_uint64 (uint64_prop (q, "current-level-time"), 0);
    block.release ();
    pull_in_order (h, 0, 8);
  }
  /* A buffer with only a duration, one with only a DTS. */
  GstBuffer *b = make_buffer (8, GST_CLOCK_TIME_NONE, 10 * GST_MSECOND);
  fail_unless_equals_int (gst_harness_push (h, b), GST_FLOW_OK);
  b = make_buffer (9);
  GST_BUFFER_DTS (b) = 5 * GST_MSECOND;
  fail_unless_equals_int (gst_harness_push (h, b), GST_FLOW_OK);
  pull_in_order (h, 8, 2);
  push_pull (h, 10, 5);
  fail_unless_equals_uint64 (Stats (q).u64 ("drops"), 0);

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

/* A segment that is not TIME is treated as an open TIME segment from 0 (as
 * queue does): the time level comes from the buffer timestamps, data passes
 * in order, and a later TIME segment works as usual. Loop over formats. */
GST_START_TEST (test_non_time_segments)
{
  const GstFormat formats[] = {GST_FORMAT_BYTES, GST_FORMAT_DEFAULT,
    GST_FORMAT_BUFFERS, GST_FORMAT_PERCENT};
  const GstFormat format = formats[__i__];
  GstElement *q = make_queue ("/nonexistent");
  g_object_set (q, "adaptive", FALSE, nullptr);
  GstHarness *h = start (q);

  GstSegment segment;
  gst_segment_init (&segment, format);
  segment.start = 1000;
  segment.position = 1000;
  segment.base = 77;
  ck_assert (gst_harness_push_event (h, gst_event_new_segment (&segment)));
  {
    Blocker block (q);
    for (guint i = 0; i < 5; i++)
      fail_unless_equals_int (gst_harness_push (h, timed_buffer (i)), GST_FLOW_OK);
    block.wait_held ();
    /* Buffer 0 is held downstream: 10 ms .. 50 ms are queued. */
    fail_unless_equals_uint64 (uint64_prop (q, "current-level-time"), 40 * GST_MSECOND);
    GstEvent *gap = gst_event_new_gap (100 * GST_MSECOND, 10 * GST_MSECOND);
    ck_assert (gst_harness_push_event (h, gap));
    fail_unless_equals_uint64 (uint64_prop (q, "current-level-time"), 100 * GST_MSECOND);
  }
  pull_in_order (h, 0, 5);
  ck_assert (wait_until ([&] { return uint64_prop (q, "current-level-time") == 0; }));

  gst_segment_init (&segment, GST_FORMAT_TIME);
  ck_assert (gst_harness_push_event (h, gst_event_new_segment (&segment)));
  push_pull (h, 5, 5);

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

/* A reverse BYTES segment (valid: it has a stop) becomes an open TIME
 * segment for level tracking; an open segment cannot be played backwards, so
 * it gives no running time instead of tripping GStreamer's assertion (a
 * g_critical, which fails this test). */
GST_START_TEST (test_reverse_non_time_segment)
{
  GstElement *q = make_queue ("/nonexistent");
  g_object_set (q, "adaptive", FALSE, nullptr);
  GstHarness *h = start (q);
  GstSegment segment;
  gst_segment_init (&segment, GST_FORMAT_BYTES);
  segment.rate = -1.0;
  segment.start = 0;
  segment.stop = 100000;
  segment.position = 100000;
  ck_assert (gst_harness_push_event (h, gst_event_new_segment (&segment)));
  {
    Blocker block (q);
    for (guint i = 0; i < 5; i++)
      fail_unless_equals_int (gst_harness_push (h, timed_buffer (5 - i)), GST_FLOW_OK);
    block.wait_held ();
    fail_unless_equals_uint64 (uint64_prop (q, "current-level-time"), 0);
  }
  for (guint i = 0; i < 5; i++) {
    GstBuffer *b = gst_harness_pull (h);
    fail_unless_equals_uint64 (GST_BUFFER_OFFSET (b), 5 - i);
    gst_buffer_unref (b);
  }
  gst_segment_init (&segment, GST_FORMAT_TIME);
  ck_assert (gst_harness_push_event (h, gst_event_new_segment (&segment)));
  push_pull (h, 10, 3);

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

/* Timestamps the segment cannot map (before its start, in a reverse
 * segment, or so large that PTS + duration wraps) give no running time: the
 * time level stays 0 rather than wrapping, and data passes in order. */
GST_START_TEST (test_unmappable_timestamps)
{
  GstElement *q = make_queue ("/nonexistent");
  g_object_set (q, "adaptive", FALSE, "max-size-time", GST_SECOND, nullptr);
  GstHarness *h = start (q);
  GstSegment segment;
  gst_segment_init (&segment, GST_FORMAT_TIME);
  segment.start = 10 * GST_SECOND;
  segment.stop = 20 * GST_SECOND;
  segment.rate = -1.0;
  ck_assert (gst_harness_push_event (h, gst_event_new_segment (&segment)));

  const GstClockTime pts[] = {0, 5 * GST_SECOND, 30 * GST_SECOND,
    G_MAXUINT64 - 5, G_MAXUINT64 - 1, 15 * GST_SECOND};
  const GstClockTime durations[] = {GST_MSECOND, GST_MSECOND, GST_MSECOND, 10,
    GST_CLOCK_TIME_NONE, G_MAXUINT64 - 1};
  {
    Blocker block (q);
    for (guint i = 0; i < G_N_ELEMENTS (pts); i++) {
      fail_unless_equals_int (gst_harness_push (h, make_buffer (i, pts[i], durations[i])),
          GST_FLOW_OK);
      const guint64 level = uint64_prop (q, "current-level-time");
      fail_unless (level <= 20 * GST_SECOND, "level %" G_GUINT64_FORMAT " after %u",
          level, i);
    }
    block.wait_held ();
  }
  pull_in_order (h, 0, G_N_ELEMENTS (pts));
  fail_unless_equals_uint64 (uint64_prop (q, "current-level-time"), 0);
  push_pull (h, 10, 3);

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

/* Segment values near the ends of the 64-bit range: running times of
 * -2^63 and differences beyond 2^63 must neither overflow nor wrap into a
 * small or "negative" level. Loop: 0 a running time of exactly -2^63, 1 a
 * time level wider than 2^63 - 1, 2 a clock latency from a running time
 * near -2^63. */
GST_START_TEST (test_extreme_segments)
{
  constexpr guint64 kHalf = G_GUINT64_CONSTANT (1) << 63;
  GstElement *q = make_queue ("/nonexistent");
  /* No time limit: the huge levels here would block upstream. */
  g_object_set (q, "adaptive", FALSE, "max-size-time", G_GUINT64_CONSTANT (0), nullptr);
  if (__i__ == 2)
    gst_util_set_object_arg (G_OBJECT (q), "latency-source", "clock");
  GstHarness *h = start (q);
  if (__i__ == 2)
    gst_harness_use_systemclock (h);
  GstSegment segment;
  gst_segment_init (&segment, GST_FORMAT_TIME);
  switch (__i__) {
    case 0:
      /* PTS 0, before a start of 2^63: running time -2^63. */
      segment.start = kHalf;
      ck_assert (gst_harness_push_event (h, gst_event_new_segment (&segment)));
      fail_unless_equals_int (gst_harness_push (h, make_buffer (0, 0)), GST_FLOW_OK);
      ck_assert (gst_harness_push_event (h, gst_event_new_gap (0, GST_CLOCK_TIME_NONE)));
      pull_in_order (h, 0, 1);
      break;
    case 1:
    {
      /* The src side at running time -(2^63 - 1), the sink side at +10 s. */
      segment.start = kHalf - 1;
      ck_assert (gst_harness_push_event (h, gst_event_new_segment (&segment)));
      Blocker block (q);
      fail_unless_equals_int (gst_harness_push (h, make_buffer (0)), GST_FLOW_OK);
      block.wait_held ();
      fail_unless_equals_int (gst_harness_push (h, make_buffer (1)), GST_FLOW_OK);
      gst_segment_init (&segment, GST_FORMAT_TIME);
      ck_assert (gst_harness_push_event (h, gst_event_new_segment (&segment)));
      fail_unless_equals_int (gst_harness_push (h, make_buffer (2, 10 * GST_SECOND)),
          GST_FLOW_OK);
      const guint64 level = uint64_prop (q, "current-level-time");
      fail_unless (level == 0 || level >= kHalf, "level %" G_GUINT64_FORMAT
          " wrapped", level);
      block.release ();
      pull_in_order (h, 0, 3);
      break;
    }
    default:
      segment.start = kHalf - 1;
      ck_assert (gst_harness_push_event (h, gst_event_new_segment (&segment)));
      fail_unless_equals_int (gst_harness_push (h, make_buffer (0, 0)), GST_FLOW_OK);
      pull_in_order (h, 0, 1);
      break;
  }
  gst_segment_init (&segment, GST_FORMAT_TIME);
  ck_assert (gst_harness_push_event (h, gst_event_new_segment (&segment)));
  push_pull (h, 10, 3);
  fail_unless (wait_until ([&] { return uint64_prop (q, "current-level-time") == 0; }),
      "level %" G_GUINT64_FORMAT " left", uint64_prop (q, "current-level-time"));

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

/* ---- no clock ---- */

/* In a pipeline told to use no clock there is no clock latency: with
 * latency-source=clock no sample is taken, with auto the queued latency
 * stands in; ticks run on the system clock either way and data reaches
 * EOS. Loop: 0 clock, 1 auto. */
GST_START_TEST (test_pipeline_without_clock)
{
  LoadFixture load (10, 20);
  gchar *desc = g_strdup_printf ("audiotestsrc num-buffers=100 samplesperbuffer=480 ! "
      "adaptivequeue name=q adaptation-interval=20000000 latency-source=%s ! "
      "fakesink name=sink sync=true", __i__ == 0 ? "clock" : "auto");
  GError *err = nullptr;
  GstElement *pipeline = gst_parse_launch (desc, &err);
  g_free (desc);
  fail_unless (pipeline != nullptr && err == nullptr, "%s", err ? err->message : "");
  gst_pipeline_use_clock (GST_PIPELINE (pipeline), nullptr);
  GstElement *q = gst_bin_get_by_name (GST_BIN (pipeline), "q");
  g_object_set (q, "proc-root", load.dir (), nullptr);
  /* A slow sink (2 ms a buffer) keeps data flowing over several ticks. */
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  GstPad *sinkpad = gst_element_get_static_pad (sink, "sink");
  gst_pad_add_probe (sinkpad, GST_PAD_PROBE_TYPE_BUFFER,
      [](GstPad *, GstPadProbeInfo *, gpointer) {
        g_usleep (2000);
        return GST_PAD_PROBE_OK;
      }, nullptr, nullptr);
  gst_object_unref (sinkpad);
  gst_object_unref (sink);

  ck_assert (gst_element_set_state (pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *msg = gst_bus_timed_pop_filtered (bus, 60 * GST_SECOND,
      static_cast<GstMessageType> (GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  fail_unless (msg != nullptr, "no EOS");
  fail_unless_equals_int (GST_MESSAGE_TYPE (msg), GST_MESSAGE_EOS);
  gst_message_unref (msg);
  gst_object_unref (bus);
  {
    Stats st (q);
    fail_unless_equals_uint64 (st.u64 ("buffers-pushed"), 100);
    ck_assert (st.u64 ("ticks") >= 2);
    fail_unless_equals_uint64 (st.u64 ("latency-samples"), __i__ == 0 ? 0 : 100);
  }
  ck_assert (gst_element_set_state (pipeline, GST_STATE_NULL) == GST_STATE_CHANGE_SUCCESS);
  gst_object_unref (q);
  gst_object_unref (pipeline);
}
GST_END_TEST;

/* ---- downstream flow returns ---- */

/* The element's src pad linked to a pad of ours that returns a chosen flow
 * for one buffer and records what arrives. */
class Downstream
{
public:
  explicit Downstream (GstElement * q)
  {
    pad_ = gst_pad_new ("downstream", GST_PAD_SINK);
    g_object_set_data (G_OBJECT (pad_), "downstream", this);
    gst_pad_set_chain_function (pad_, chain);
    gst_pad_set_event_function (pad_, event);
    gst_pad_set_query_function (pad_, query);
    ck_assert (gst_pad_set_active (pad_, TRUE));
    GstPad *src = gst_element_get_static_pad (q, "src");
    fail_unless_equals_int (gst_pad_link (src, pad_), GST_PAD_LINK_OK);
    gst_object_unref (src);
  }
  ~Downstream ()
  {
    gst_pad_set_active (pad_, FALSE);
    gst_object_unref (pad_);
  }
  Downstream (const Downstream &) = delete;
  Downstream & operator= (const Downstream &) = delete;

  /* The buffer with this offset gets `flow`, the others OK. */
  void fail_at (guint64 offset, GstFlowReturn flow)
  {
    std::lock_guard<std::mutex> lock (mutex_);
    fail_offset_ = offset;
    flow_ = flow;
  }
  std::vector<guint64> received ()
  {
    std::lock_guard<std::mutex> lock (mutex_);
    return received_;
  }
  size_t eos () { return eos_; }
  GstPad *pad () const { return pad_; }

private:
  static Downstream *of (GstPad * pad)
  {
    return static_cast<Downstream *> (g_object_get_data (G_OBJECT (pad), "downstream"));
  }
  static GstFlowReturn chain (GstPad * pad, GstObject *, GstBuffer * buffer)
  {
    Downstream *self = of (pad);
    const guint64 offset = GST_BUFFER_OFFSET (buffer);
    gst_buffer_unref (buffer);
    std::lock_guard<std::mutex> lock (self->mutex_);
    if (offset == self->fail_offset_)
      return self->flow_;
    self->received_.push_back (offset);
    return GST_FLOW_OK;
  }
  static gboolean event (GstPad * pad, GstObject *, GstEvent * e)
  {
    if (GST_EVENT_TYPE (e) == GST_EVENT_EOS)
      of (pad)->eos_++;
    gst_event_unref (e);
    return TRUE;
  }
  static gboolean query (GstPad * pad, GstObject * parent, GstQuery * q)
  {
    return gst_pad_query_default (pad, parent, q);
  }

  GstPad *pad_;
  std::mutex mutex_;
  guint64 fail_offset_ = G_MAXUINT64;
  GstFlowReturn flow_ = GST_FLOW_OK;
  std::vector<guint64> received_;
  std::atomic<size_t> eos_ {0};
};

const GstFlowReturn kFlows[] = {GST_FLOW_NOT_LINKED, GST_FLOW_FLUSHING, GST_FLOW_EOS,
  GST_FLOW_NOT_NEGOTIATED, GST_FLOW_ERROR, GST_FLOW_CUSTOM_SUCCESS, GST_FLOW_CUSTOM_ERROR};

/* Downstream returns `flow` for buffer 3. Like queue, the element's task
 * stops and upstream's next push returns that flow (EOS: data is refused
 * until a new segment, events still pass). Upstream EOS then gives an ERROR
 * message for NOT_LINKED and the fatal flows (< EOS). A flush, and for
 * NOT_LINKED a RECONFIGURE, makes data flow again. */
GST_START_TEST (test_downstream_flow_returns)
{
  const GstFlowReturn flow = kFlows[__i__];
  GstElement *q = make_queue ("/nonexistent");
  g_object_set (q, "adaptive", FALSE, nullptr);
  Bus bus (q);
  GstHarness *h = gst_harness_new_with_element (q, "sink", nullptr);
  gst_harness_set_src_caps_str (h, "application/x-aq-test");
  Downstream down (q);

  for (guint i = 0; i < 3; i++)
    fail_unless_equals_int (gst_harness_push (h, timed_buffer (i)), GST_FLOW_OK);
  ck_assert (wait_until ([&] { return down.received ().size () == 3; }));

  down.fail_at (3, flow);
  /* The flow comes back to upstream within a few pushes. */
  guint64 next = 3;
  GstFlowReturn ret = GST_FLOW_OK;
  const gint64 deadline = g_get_monotonic_time () + kWaitUs;
  while (ret == GST_FLOW_OK && g_get_monotonic_time () < deadline) {
    ret = gst_harness_push (h, timed_buffer (next++));
    if (ret == GST_FLOW_OK)
      g_usleep (1000);
  }
  fail_unless_equals_int (ret, flow);
  fail_unless_equals_int (down.received ().size (), 3);

  /* The element still answers: properties, and a serialized query that
   * does not hang. */
  Stats (q).u64 ("buffers-pushed");
  GstQuery *drain = gst_query_new_drain ();
  gst_pad_peer_query (h->srcpad, drain);
  gst_query_unref (drain);

  const bool fatal = flow == GST_FLOW_NOT_LINKED || flow < GST_FLOW_EOS;
  if (flow == GST_FLOW_EOS) {
    /* Events still pass; a new segment makes data welcome again. */
    GstSegment segment;
    gst_segment_init (&segment, GST_FORMAT_TIME);
    ck_assert (gst_harness_push_event (h, gst_event_new_segment (&segment)));
    fail_unless_equals_int (gst_harness_push (h, timed_buffer (100)), GST_FLOW_OK);
    ck_assert (wait_until ([&] { return down.received ().back () == 100; }));
  }

  /* Upstream's EOS: delivered when the task still runs (downstream EOS),
   * refused otherwise, with an ERROR for the fatal flows. */
  const gboolean eos_taken = gst_harness_push_event (h, gst_event_new_eos ());
  fail_unless_equals_int (eos_taken, flow == GST_FLOW_EOS);
  if (fatal)
    fail_unless (bus.wait_error (), "no error for %s", gst_flow_get_name (flow));
  if (flow == GST_FLOW_EOS)
    ck_assert (wait_until ([&] { return down.eos () == 1; }));

  if (flow == GST_FLOW_NOT_LINKED) {
    /* Downstream linked again: the buffers queued behind the failed one
     * were kept and now come out, in order. */
    const guint64 last_accepted = next - 2;
    down.fail_at (G_MAXUINT64, GST_FLOW_OK);
    ck_assert (gst_pad_push_event (down.pad (), gst_event_new_reconfigure ()));
    ck_assert (wait_until ([&] { return down.received ().size () == last_accepted; }));
    const auto got = down.received ();
    for (guint64 i = 4; i <= last_accepted; i++)
      fail_unless_equals_uint64 (got[i - 1], i);
  }

  /* A flush recovers, whatever happened. */
  down.fail_at (G_MAXUINT64, GST_FLOW_OK);
  ck_assert (gst_harness_push_event (h, gst_event_new_flush_start ()));
  ck_assert (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  GstSegment segment;
  gst_segment_init (&segment, GST_FORMAT_TIME);
  ck_assert (gst_harness_push_event (h, gst_event_new_segment (&segment)));
  const size_t before = down.received ().size ();
  for (guint64 i = 200; i < 210; i++)
    fail_unless_equals_int (gst_harness_push (h, timed_buffer (i)), GST_FLOW_OK);
  ck_assert (wait_until ([&] { return down.received ().size () == before + 10; }));
  const auto got = down.received ();
  for (guint64 i = 0; i < 10; i++)
    fail_unless_equals_uint64 (got[before + i], 200 + i);
  bus.drain ();
  if (!fatal)
    fail_unless_equals_int (bus.errors.size (), 0);

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

/* Downstream returns EOS for a buffer; the element drops what follows until
 * an item that starts something new (here a STREAM_START already queued)
 * and passes that on. It must then keep running: the EOS result belongs to
 * the dropped buffer, not to the new stream, or data and serialized queries
 * would wait forever on a paused task. */
GST_START_TEST (test_downstream_eos_then_queued_stream_start)
{
  GstElement *q = make_queue ("/nonexistent");
  /* Held back until three buffers are in, so all is queued first. */
  g_object_set (q, "adaptive", FALSE, "min-threshold-buffers", 3u, nullptr);
  GstHarness *h = gst_harness_new_with_element (q, "sink", nullptr);
  gst_harness_set_src_caps_str (h, "application/x-aq-test");
  Downstream down (q);
  down.fail_at (0, GST_FLOW_EOS);

  fail_unless_equals_int (gst_harness_push (h, timed_buffer (0)), GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_push (h, timed_buffer (1)), GST_FLOW_OK);
  ck_assert (gst_harness_push_event (h, gst_event_new_stream_start ("next")));
  g_object_set (q, "min-threshold-buffers", 0u, nullptr);
  /* Buffer 0 gets EOS, buffer 1 is dropped, STREAM_START goes through. */
  ck_assert (wait_until ([&] { return Stats (q).u64 ("drops") == 1; }));
  g_usleep (20000);

  GstSegment segment;
  gst_segment_init (&segment, GST_FORMAT_TIME);
  ck_assert (gst_harness_push_event (h, gst_event_new_segment (&segment)));
  for (guint64 i = 10; i < 15; i++)
    fail_unless_equals_int (gst_harness_push (h, timed_buffer (i)), GST_FLOW_OK);
  fail_unless (wait_until ([&] { return down.received ().size () == 5; }),
      "%zu buffers of the new stream came out", down.received ().size ());
  const auto got = down.received ();
  for (guint64 i = 0; i < 5; i++)
    fail_unless_equals_uint64 (got[i], 10 + i);

  /* A serialized query is answered, not left waiting. */
  std::atomic<bool> answered {false};
  std::thread asker ([&] {
    GstQuery *drain = gst_query_new_drain ();
    gst_pad_peer_query (h->srcpad, drain);
    gst_query_unref (drain);
    answered = true;
  });
  const bool in_time = wait_until ([&] { return answered.load (); });
  if (!in_time) {
    /* Unblock the asker before failing, so the test can end. */
    ck_assert (gst_harness_push_event (h, gst_event_new_flush_start ()));
  }
  asker.join ();
  fail_unless (in_time, "serialized query never answered");

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

const GstFlowReturn kFatalFlows[] = {GST_FLOW_NOT_NEGOTIATED, GST_FLOW_ERROR,
  GST_FLOW_CUSTOM_ERROR};

/* Downstream fails fatally on the first buffer of a stream whose EOS is
 * already queued: the element reports the error and pushes EOS itself.
 * A STREAM_START then restarts the task, as on queue 1.22: downstream has
 * had EOS, so it refuses the first queued buffer (EOS, never reaching its
 * chain) and the element drops the rest of the old stream. It then pushes
 * the old EOS and the new STREAM_START, and the new stream flows. (queue
 * 1.22 pauses on the old EOS instead, with the STREAM_START left queued,
 * and answers EOS to pushes until another SEGMENT or STREAM_START.) */
GST_START_TEST (test_fatal_error_then_new_stream)
{
  const GstFlowReturn flow = kFatalFlows[__i__];
  GstElement *q = make_queue ("/nonexistent");
  /* Held back until EOS comes, so all is queued first. */
  g_object_set (q, "adaptive", FALSE, "min-threshold-buffers", 10u, nullptr);
  Bus bus (q);
  GstHarness *h = gst_harness_new_with_element (q, "sink", nullptr);
  gst_harness_set_src_caps_str (h, "application/x-aq-test");
  Downstream down (q);
  down.fail_at (0, flow);

  for (guint i = 0; i < 3; i++)
    fail_unless_equals_int (gst_harness_push (h, timed_buffer (i)), GST_FLOW_OK);
  ck_assert (gst_harness_push_event (h, gst_event_new_eos ()));
  fail_unless (bus.wait_error (), "no error for %s", gst_flow_get_name (flow));
  ck_assert (wait_until ([&] { return down.eos () == 1; }));

  ck_assert (gst_harness_push_event (h, gst_event_new_stream_start ("next")));
  fail_unless (wait_until ([&] { return Stats (q).u ("current-level-buffers") == 0; }),
      "the old stream's buffers are still queued");
  Stats st (q);
  /* Buffer 1 was refused by downstream, buffer 2 dropped by the element. */
  fail_unless_equals_uint64 (st.u64 ("drops"), 1);
  fail_unless_equals_int (down.received ().size (), 0);
  down.fail_at (G_MAXUINT64, GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_push (h, timed_buffer (3)), GST_FLOW_OK);
  ck_assert (wait_until ([&] { return down.received ().size () == 1; }));
  fail_unless_equals_uint64 (down.received ()[0], 3);

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

/* ---- EOS and flushing ---- */

/* EOS between FLUSH_START and FLUSH_STOP is refused without an error; after
 * FLUSH_STOP the element takes data again and a new EOS passes. */
GST_START_TEST (test_eos_during_flush)
{
  GstElement *q = make_queue ("/nonexistent");
  Bus bus (q);
  GstHarness *h = start (q);
  push_pull (h, 0, 3);

  ck_assert (gst_harness_push_event (h, gst_event_new_flush_start ()));
  fail_if (gst_harness_push_event (h, gst_event_new_eos ()), "EOS taken while flushing");
  fail_unless_equals_int (gst_harness_push (h, timed_buffer (3)), GST_FLOW_FLUSHING);
  ck_assert (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));

  GstSegment segment;
  gst_segment_init (&segment, GST_FORMAT_TIME);
  ck_assert (gst_harness_push_event (h, gst_event_new_segment (&segment)));
  push_pull (h, 10, 5);
  ck_assert (gst_harness_push_event (h, gst_event_new_eos ()));
  GstBuffer *b = nullptr;
  ck_assert (gst_harness_pull_until_eos (h, &b));
  ck_assert (b == nullptr);
  fail_unless_equals_int (gst_harness_push (h, timed_buffer (20)), GST_FLOW_EOS);
  bus.drain ();
  fail_unless_equals_int (bus.errors.size (), 0);

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

/* EOS queued behind data that downstream has not taken, then a flush: the
 * EOS is discarded with the data, never delivered, and the element is not
 * left refusing data. */
GST_START_TEST (test_flush_discards_queued_eos)
{
  GstElement *q = make_queue ("/nonexistent");
  Bus bus (q);
  GstHarness *h = start (q);
  {
    Blocker block (q);
    for (guint i = 0; i < 4; i++)
      fail_unless_equals_int (gst_harness_push (h, timed_buffer (i)), GST_FLOW_OK);
    block.wait_held ();
    ck_assert (gst_harness_push_event (h, gst_event_new_eos ()));
    fail_unless_equals_int (gst_harness_push (h, timed_buffer (4)), GST_FLOW_EOS);
    /* FLUSH_START travels downstream first, which unblocks the held push. */
    ck_assert (gst_harness_push_event (h, gst_event_new_flush_start ()));
    block.release ();
    ck_assert (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  }
  fail_unless_equals_int (uint_prop (q, "current-level-buffers"), 0);
  /* Drop what reached the harness before the flush. */
  while (GstBuffer * b = gst_harness_try_pull (h))
    gst_buffer_unref (b);
  while (GstEvent * e = gst_harness_try_pull_event (h)) {
    fail_if (GST_EVENT_TYPE (e) == GST_EVENT_EOS, "queued EOS was delivered");
    gst_event_unref (e);
  }

  GstSegment segment;
  gst_segment_init (&segment, GST_FORMAT_TIME);
  ck_assert (gst_harness_push_event (h, gst_event_new_segment (&segment)));
  push_pull (h, 10, 5);
  g_usleep (20000);
  while (GstEvent * e = gst_harness_try_pull_event (h)) {
    fail_if (GST_EVENT_TYPE (e) == GST_EVENT_EOS, "queued EOS was delivered");
    gst_event_unref (e);
  }
  ck_assert (gst_harness_push_event (h, gst_event_new_eos ()));
  GstBuffer *b = nullptr;
  ck_assert (gst_harness_pull_until_eos (h, &b));
  ck_assert (b == nullptr);
  bus.drain ();
  fail_unless_equals_int (bus.errors.size (), 0);

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

/* FLUSH_STOP without FLUSH_START (a misbehaving upstream) while the task is
 * pushing EOS downstream: once the flush has reset the element, the result
 * of that old push must not pause the task again, or the queue stalls with
 * data in it and a full queue would block upstream forever. */
GST_START_TEST (test_lone_flush_stop_during_eos_push)
{
  GstElement *q = make_queue ("/nonexistent");
  g_object_set (q, "adaptive", FALSE, "max-size-buffers", 4u, nullptr);
  GstHarness *h = start (q);
  push_pull (h, 0, 2);

  /* Holds the EOS event inside the task's push until released. */
  struct Gate
  {
    std::mutex mutex;
    std::condition_variable cond;
    bool entered = false;
    bool open = false;
  } gate;
  GstPad *src = gst_element_get_static_pad (q, "src");
  const gulong probe = gst_pad_add_probe (src, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
      [](GstPad *, GstPadProbeInfo * info, gpointer data) {
        if (GST_EVENT_TYPE (GST_PAD_PROBE_INFO_EVENT (info)) == GST_EVENT_EOS) {
          auto *g = static_cast<Gate *> (data);
          std::unique_lock<std::mutex> lock (g->mutex);
          g->entered = true;
          g->cond.notify_all ();
          g->cond.wait (lock, [g] { return g->open; });
        }
        return GST_PAD_PROBE_OK;
      }, &gate, nullptr);

  ck_assert (gst_harness_push_event (h, gst_event_new_eos ()));
  {
    std::unique_lock<std::mutex> lock (gate.mutex);
    ck_assert (gate.cond.wait_for (lock, std::chrono::seconds (30),
            [&] { return gate.entered; }));
  }
  ck_assert (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  {
    std::lock_guard<std::mutex> lock (gate.mutex);
    gate.open = true;
    gate.cond.notify_all ();
  }
  gst_pad_remove_probe (src, probe);
  gst_object_unref (src);
  /* Drop what the harness got before and around the flush. */
  while (GstBuffer * b = gst_harness_try_pull (h))
    gst_buffer_unref (b);

  /* A new stream flows, and keeps flowing past the queue's capacity. (The
   * old EOS reached downstream after the flush, so downstream needs the
   * new STREAM_START as much as the element does.) */
  ck_assert (gst_harness_push_event (h, gst_event_new_stream_start ("again")));
  GstSegment segment;
  gst_segment_init (&segment, GST_FORMAT_TIME);
  ck_assert (gst_harness_push_event (h, gst_event_new_segment (&segment)));
  {
    Pusher pusher (h, 10, 20);
    for (guint i = 0; i < 20; i++) {
      GstBuffer *b = nullptr;
      wait_until ([&] { return (b = gst_harness_try_pull (h)) != nullptr; });
      fail_unless (b != nullptr, "stalled after %u buffers of the new stream", i);
      fail_unless_equals_uint64 (GST_BUFFER_OFFSET (b), 10 + i);
      gst_buffer_unref (b);
    }
    ck_assert (!pusher.failed ());
  }

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

/* A new stream (STREAM_START after EOS) arriving while the task is still
 * pushing the old stream's EOS downstream: the element restarts for the new
 * stream, so the old push's EOS result must not pause the task again, or
 * the new stream's data would be refused or stuck (and a serialized query
 * would wait for ever). */
GST_START_TEST (test_new_stream_during_eos_push)
{
  GstElement *q = make_queue ("/nonexistent");
  g_object_set (q, "adaptive", FALSE, "max-size-buffers", 4u, nullptr);
  GstHarness *h = start (q);
  push_pull (h, 0, 2);

  struct Gate
  {
    std::mutex mutex;
    std::condition_variable cond;
    bool entered = false;
    bool open = false;
  } gate;
  GstPad *src = gst_element_get_static_pad (q, "src");
  const gulong probe = gst_pad_add_probe (src, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
      [](GstPad *, GstPadProbeInfo * info, gpointer data) {
        if (GST_EVENT_TYPE (GST_PAD_PROBE_INFO_EVENT (info)) == GST_EVENT_EOS) {
          auto *g = static_cast<Gate *> (data);
          std::unique_lock<std::mutex> lock (g->mutex);
          g->entered = true;
          g->cond.notify_all ();
          g->cond.wait (lock, [g] { return g->open; });
        }
        return GST_PAD_PROBE_OK;
      }, &gate, nullptr);

  ck_assert (gst_harness_push_event (h, gst_event_new_eos ()));
  {
    std::unique_lock<std::mutex> lock (gate.mutex);
    ck_assert (gate.cond.wait_for (lock, std::chrono::seconds (30),
            [&] { return gate.entered; }));
  }
  ck_assert (gst_harness_push_event (h, gst_event_new_stream_start ("again")));
  GstSegment segment;
  gst_segment_init (&segment, GST_FORMAT_TIME);
  ck_assert (gst_harness_push_event (h, gst_event_new_segment (&segment)));
  fail_unless_equals_int (gst_harness_push (h, timed_buffer (10)), GST_FLOW_OK);
  {
    std::lock_guard<std::mutex> lock (gate.mutex);
    gate.open = true;
    gate.cond.notify_all ();
  }
  gst_pad_remove_probe (src, probe);
  gst_object_unref (src);

  /* The new stream flows, past the queue's capacity. */
  {
    Pusher pusher (h, 11, 19);
    for (guint i = 0; i < 20; i++) {
      GstBuffer *b = nullptr;
      wait_until ([&] { return (b = gst_harness_try_pull (h)) != nullptr; });
      fail_unless (b != nullptr, "stalled after %u buffers of the new stream", i);
      fail_unless_equals_uint64 (GST_BUFFER_OFFSET (b), 10 + i);
      gst_buffer_unref (b);
    }
    ck_assert (!pusher.failed ());
  }

  gst_harness_teardown (h);
  gst_object_unref (q);
}
GST_END_TEST;

/* Keeps the system clock's thread busy for a while, and says when. */
static gboolean
occupy_clock_thread (GstClock *, GstClockTime, GstClockID, gpointer data)
{
  auto *state = static_cast < gint * >(data);
  g_atomic_int_set (state, 1);
  g_usleep (300 * G_TIME_SPAN_MILLISECOND);
  g_atomic_int_set (state, 2);
  return TRUE;
}

/* A pending tick must not keep the element alive: the system clock releases
 * an unscheduled wait on its own thread, later. With a strong reference in
 * the wait, the element outlived its last unref until then (the leaks
 * tracer caught it at exit). Here that thread is busy, so "later" is after
 * the check. */
GST_START_TEST (test_finalized_at_last_unref)
{
  GstElement *q = gst_element_factory_make ("adaptivequeue", nullptr);
  ck_assert (q != nullptr);
  gpointer alive = q;
  g_object_add_weak_pointer (G_OBJECT (q), &alive);
  fail_unless_equals_int (gst_element_set_state (q, GST_STATE_PLAYING),
      GST_STATE_CHANGE_SUCCESS);

  /* Static: the clock thread writes it even if the test fails early. */
  static gint clock_thread;
  g_atomic_int_set (&clock_thread, 0);
  GstClock *clock = gst_system_clock_obtain ();
  GstClockID busy = gst_clock_new_single_shot_id (clock, gst_clock_get_time (clock));
  gst_clock_id_wait_async (busy, occupy_clock_thread, &clock_thread, nullptr);
  const gint64 deadline = g_get_monotonic_time () + 5 * G_TIME_SPAN_SECOND;
  while (g_atomic_int_get (&clock_thread) == 0 && g_get_monotonic_time () < deadline)
    g_usleep (1000);
  fail_unless_equals_int (g_atomic_int_get (&clock_thread), 1);

  fail_unless_equals_int (gst_element_set_state (q, GST_STATE_NULL),
      GST_STATE_CHANGE_SUCCESS);
  gst_object_unref (q);
  fail_unless (alive == nullptr, "%s", "element alive after its last unref");

  while (g_atomic_int_get (&clock_thread) != 2)
    g_usleep (1000);
  gst_clock_id_unref (busy);
  gst_object_unref (clock);
}
GST_END_TEST;

static Suite *
robustness_suite (void)
{
  Suite *s = suite_create ("adaptivequeue-robustness");

  TCase *tc = tcase_create ("proc");
  tcase_set_timeout (tc, 180);
  tcase_add_loop_test (tc, test_malformed_proc, 0,
      static_cast<int> (malformed_cases ().size ()));
  tcase_add_loop_test (tc, test_missing_proc_files, 0,
      static_cast<int> (missing_cases ().size ()));
  tcase_add_loop_test (tc, test_permission_denied, 0, 2);
  tcase_add_loop_test (tc, test_counters_backwards, 0, 2);
  suite_add_tcase (s, tc);

  tc = tcase_create ("config");
  tcase_set_timeout (tc, 180);
  tcase_add_loop_test (tc, test_contradictory_config, 0,
      static_cast<int> (config_cases ().size ()));
  tcase_add_test (tc, test_equal_bounds_fix_capacity);
  tcase_add_test (tc, test_zero_smoothing_freezes);
  tcase_add_loop_test (tc, test_min_threshold_above_max_size, 0, 3);
  tcase_add_test (tc, test_all_limits_off);
  tcase_add_test (tc, test_out_of_range_values);
  tcase_add_test (tc, test_huge_limits);
  suite_add_tcase (s, tc);

  tc = tcase_create ("timestamps");
  tcase_set_timeout (tc, 120);
  tcase_add_test (tc, test_untimestamped_buffers);
  tcase_add_loop_test (tc, test_non_time_segments, 0, 4);
  tcase_add_test (tc, test_reverse_non_time_segment);
  tcase_add_test (tc, test_unmappable_timestamps);
  tcase_add_loop_test (tc, test_extreme_segments, 0, 3);
  tcase_add_loop_test (tc, test_pipeline_without_clock, 0, 2);
  suite_add_tcase (s, tc);

  tc = tcase_create ("flow");
  tcase_set_timeout (tc, 120);
  tcase_add_loop_test (tc, test_downstream_flow_returns, 0, G_N_ELEMENTS (kFlows));
  tcase_add_test (tc, test_downstream_eos_then_queued_stream_start);
  tcase_add_loop_test (tc, test_fatal_error_then_new_stream, 0,
      G_N_ELEMENTS (kFatalFlows));
  tcase_add_test (tc, test_eos_during_flush);
  tcase_add_test (tc, test_flush_discards_queued_eos);
  tcase_add_test (tc, test_lone_flush_stop_during_eos_push);
  tcase_add_test (tc, test_new_stream_during_eos_push);
  tcase_add_test (tc, test_finalized_at_last_unref);
  suite_add_tcase (s, tc);

  return s;
}

GST_CHECK_MAIN (robustness);
