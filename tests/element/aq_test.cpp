/* The element suites' shared helpers; see aq_test.h.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "aq_test.h"

#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cmath>

namespace aqt {

/* ---- properties and stats ---- */

guint uint_prop(GstElement* e, const char* name) {
  guint v = 0;
  g_object_get(e, name, &v, nullptr);
  return v;
}

guint64 uint64_prop(GstElement* e, const char* name) {
  guint64 v = 0;
  g_object_get(e, name, &v, nullptr);
  return v;
}

guint capacity(GstElement* q) {
  return uint_prop(q, "max-size-buffers");
}

guint field_uint(const GstStructure* s, const char* field) {
  guint v = 0;
  fail_unless(gst_structure_get_uint(s, field, &v), "no uint %s", field);
  return v;
}

guint64 field_uint64(const GstStructure* s, const char* field) {
  guint64 v = 0;
  fail_unless(gst_structure_get_uint64(s, field, &v), "no uint64 %s", field);
  return v;
}

gint64 field_int64(const GstStructure* s, const char* field) {
  gint64 v = 0;
  fail_unless(gst_structure_get_int64(s, field, &v), "no int64 %s", field);
  return v;
}

double field_double(const GstStructure* s, const char* field) {
  double v = 0;
  fail_unless(gst_structure_get_double(s, field, &v), "no double %s", field);
  return v;
}

bool field_bool(const GstStructure* s, const char* field) {
  gboolean v = FALSE;
  fail_unless(gst_structure_get_boolean(s, field, &v), "no boolean %s", field);
  return v;
}

Stats::Stats(GstElement* q) {
  g_object_get(q, "stats", &s_, nullptr);
  fail_unless(s_ != nullptr && gst_structure_has_name(s_, "adaptivequeue-stats"),
              "no stats structure");
}

Stats::~Stats() {
  gst_structure_free(s_);
}

/* ---- the element between harness pads ---- */

GstElement* make_queue(const char* proc_root, guint64 interval) {
  GstElement* q = gst_element_factory_make("adaptivequeue", nullptr);
  fail_unless(q != nullptr, "adaptivequeue not found: is GST_PLUGIN_PATH set?");
  g_object_set(q, "proc-root", proc_root, "adaptation-interval", interval, nullptr);
  return q;
}

GstHarness* start_harness(GstElement* q, bool downstream) {
  GstHarness* h = gst_harness_new_with_element(q, "sink", downstream ? "src" : nullptr);
  gst_harness_set_src_caps_str(h, "application/x-aq-test");
  return h;
}

GstBuffer* make_buffer(guint64 offset, GstClockTime pts, GstClockTime duration, gsize size) {
  GstBuffer* b = gst_buffer_new_allocate(nullptr, size, nullptr);
  gst_buffer_memset(b, 0, static_cast<guint8>(offset), size);
  GST_BUFFER_OFFSET(b) = offset;
  GST_BUFFER_PTS(b) = pts;
  GST_BUFFER_DURATION(b) = duration;
  return b;
}

GstBuffer* timed_buffer(guint64 offset) {
  return make_buffer(offset, offset * 10 * GST_MSECOND, 10 * GST_MSECOND);
}

void pull_in_order(GstHarness* h, guint64 start_at, guint n) {
  for (guint i = 0; i < n; i++) {
    GstBuffer* b = gst_harness_pull(h);
    fail_unless(b != nullptr, "buffer %u of %u missing", i, n);
    fail_unless_equals_uint64(GST_BUFFER_OFFSET(b), start_at + i);
    gst_buffer_unref(b);
  }
}

void push_pull(GstHarness* h, guint64 start_at, guint n, bool timed) {
  for (guint i = 0; i < n; i++)
    fail_unless_equals_int(
        gst_harness_push(h, timed ? timed_buffer(start_at + i) : make_buffer(start_at + i)),
        GST_FLOW_OK);
  pull_in_order(h, start_at, n);
}

/* ---- the bus ---- */

Bus::Bus(GstElement* element) {
  bus_ = gst_element_get_bus(element);
  if (!bus_) {
    bus_ = gst_bus_new();
    gst_element_set_bus(element, bus_);
  }
}

Bus::~Bus() {
  for (GstStructure* s : adaptations)
    gst_structure_free(s);
  gst_bus_set_flushing(bus_, TRUE);
  gst_object_unref(bus_);
}

void Bus::drain() {
  while (GstMessage* m = gst_bus_pop(bus_))
    take(m);
}

bool Bus::wait(const std::function<bool()>& done, gint64 timeout_us) {
  const gint64 deadline = g_get_monotonic_time() + timeout_us * slowdown();
  drain();
  while (!done()) {
    const gint64 left = deadline - g_get_monotonic_time();
    if (left <= 0)
      return false;
    if (GstMessage* m = gst_bus_timed_pop(bus_, left * GST_USECOND))
      take(m);
  }
  return true;
}

bool Bus::wait_adaptations(size_t n, gint64 timeout_us) {
  return wait([&] { return adaptations.size() >= n; }, timeout_us);
}

bool Bus::wait_warning(GQuark domain, const char* saying, gint64 timeout_us) {
  return wait([&] { return warnings_in(domain, saying) > 0; }, timeout_us);
}

bool Bus::wait_error(gint64 timeout_us) {
  return wait([&] { return !errors.empty(); }, timeout_us);
}

bool Bus::wait_eos(gint64 timeout_us) {
  wait([&] { return eos > 0 || !errors.empty(); }, timeout_us);
  return eos > 0;
}

void Bus::check_no_error() const {
  fail_unless(errors.empty(), "error on the bus: %s", errors.empty() ? "" : errors[0].text.c_str());
}

void expect_eos(Bus& bus, gint64 timeout_us) {
  const bool eos = bus.wait_eos(timeout_us);
  bus.check_no_error();
  fail_unless(eos, "no EOS within %" G_GINT64_FORMAT " ms", timeout_us * slowdown() / 1000);
}

size_t Bus::warnings_in(GQuark domain, const char* saying) const {
  size_t n = 0;
  for (const auto& w : warnings)
    n += w.domain == domain && (!saying || w.text.find(saying) != std::string::npos);
  return n;
}

std::string Bus::warning_text(GQuark domain) const {
  for (const auto& w : warnings)
    if (w.domain == domain)
      return w.text;
  return "";
}

void Bus::take(GstMessage* m) {
  GError* err = nullptr;
  gchar* debug = nullptr;
  switch (GST_MESSAGE_TYPE(m)) {
    case GST_MESSAGE_WARNING:
    case GST_MESSAGE_ERROR: {
      if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_WARNING)
        gst_message_parse_warning(m, &err, &debug);
      else
        gst_message_parse_error(m, &err, &debug);
      Report report{err->domain, err->code,
                    std::string(err->message) + " | " + (debug ? debug : "")};
      (GST_MESSAGE_TYPE(m) == GST_MESSAGE_WARNING ? warnings : errors).push_back(report);
      g_error_free(err);
      g_free(debug);
      break;
    }
    case GST_MESSAGE_ELEMENT:
      if (gst_message_has_name(m, "adaptivequeue-adaptation"))
        adaptations.push_back(gst_structure_copy(gst_message_get_structure(m)));
      break;
    case GST_MESSAGE_LATENCY:
      latency_messages++;
      break;
    case GST_MESSAGE_EOS:
      eos++;
      break;
    default:
      break;
  }
  gst_message_unref(m);
}

/* ---- pads ---- */

Blocker::Blocker(GstElement* q, GstPadProbeType what) : pad_(gst_element_get_static_pad(q, "src")) {
  id_ = gst_pad_add_probe(pad_, static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BLOCK | what),
                          on_probe, this, nullptr);
}

Blocker::~Blocker() {
  release();
  gst_object_unref(pad_);
}

void Blocker::release() {
  if (id_)
    gst_pad_remove_probe(pad_, id_);
  id_ = 0;
}

void Blocker::wait_held() {
  fail_unless(wait_until([this] { return held_.load(); }), "nothing held");
}

GstPadProbeReturn Blocker::on_probe(GstPad*, GstPadProbeInfo*, gpointer data) {
  static_cast<Blocker*>(data)->held_ = true;
  return GST_PAD_PROBE_OK;
}

Pusher::Pusher(GstHarness* h, guint64 start_at, guint count,
               std::function<GstBuffer*(guint64)> make) {
  thread_ = std::thread([this, h, start_at, count, make] {
    for (guint i = 0; i < count; i++) {
      if (gst_harness_push(h, make(start_at + i)) != GST_FLOW_OK)
        failed_ = true;
      done_++;
    }
  });
}

Pusher::~Pusher() {
  thread_.join();
}

/* ---- fixture /proc trees ---- */

TempTree::TempTree() : dir_(make_temp_dir("aq-test-")) {
  fail_if(dir_.empty(), "cannot make a temporary directory");
}

TempTree::~TempTree() {
  remove_path(dir_);
}

void TempTree::write(const std::string& name, const std::string& text) {
  if (name.rfind("self/", 0) == 0)
    g_mkdir_with_parents(path("self").c_str(), 0755);
  fail_unless(replace_file(path(name), text), "cannot write %s", name.c_str());
}

void TempTree::make_dir(const std::string& name) {
  fail_unless(g_mkdir_with_parents(path(name).c_str(), 0755) == 0, "cannot make %s", name.c_str());
}

void write_good_tree(TempTree& tree) {
  tree.write("meminfo", meminfo_text(20));
  tree.write("stat", stat_text(1000, 1000));
  tree.write("self/stat", pid_stat_text(100, 100));
  tree.write("self/statm", kStatmText);
}

namespace {

/* Every version adds this many ticks: a constant proportion then gives an
 * exact percentage over any number of versions, and a sampler that needs a
 * minimum number of ticks per span finds them in one version. */
constexpr guint64 kTicksPerVersion = 100;

}  // namespace

LoadFixture::LoadFixture(int cpu, int mem) {
  load_ = load_b_ = Load{cpu, mem, false};
  tree_.make_dir("self");
  inotify_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  fail_unless(inotify_ >= 0, "inotify_init1: %s", g_strerror(errno));
  const uint32_t events = IN_OPEN | IN_CLOSE_NOWRITE | IN_MOVED_TO;
  root_watch_ = inotify_add_watch(inotify_, tree_.dir(), events);
  self_watch_ = inotify_add_watch(inotify_, tree_.path("self").c_str(), events);
  fail_unless(root_watch_ >= 0 && self_watch_ >= 0, "inotify_add_watch: %s", g_strerror(errno));
  tree_.write("self/statm", kStatmText);
  write_version();
  thread_ = std::thread([this] { run(); });
}

LoadFixture::~LoadFixture() {
  stop_ = true;
  thread_.join();
  close(inotify_);
}

void LoadFixture::set(int cpu, int mem) {
  std::lock_guard<std::mutex> lock(mutex_);
  load_ = load_b_ = Load{cpu, mem, load_.backwards};
  period_us_ = 0;
}

void LoadFixture::backwards(bool on) {
  std::lock_guard<std::mutex> lock(mutex_);
  load_.backwards = load_b_.backwards = on;
}

void LoadFixture::flip(int cpu_a, int mem_a, int cpu_b, int mem_b, gint64 period_us) {
  std::lock_guard<std::mutex> lock(mutex_);
  load_ = Load{cpu_a, mem_a, false};
  load_b_ = Load{cpu_b, mem_b, false};
  period_us_ = period_us;
}

/* Writes the next version; only the constructor (before the thread) and
 * the thread call it. */
void LoadFixture::write_version() {
  Load load;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const gint64 now = g_get_monotonic_time();
    if (period_us_ > 0 && now - flipped_at_ >= period_us_) {
      phase_ ^= 1;
      flipped_at_ = now;
    }
    load = phase_ ? load_b_ : load_;
    versions_.push_back(load);
  }
  const guint64 busy = kTicksPerVersion * static_cast<guint64>(load.cpu) / 100;
  if (load.backwards) {
    busy_ -= busy + 1;
    idle_ -= kTicksPerVersion - busy + 1;
    process_ticks_ -= 1;
  } else {
    busy_ += busy;
    idle_ += kTicksPerVersion - busy;
    process_ticks_ += kTicksPerVersion / 2;
  }
  tree_.write("meminfo", meminfo_text(load.mem));
  tree_.write("stat", stat_text(busy_, idle_));
  tree_.write("self/stat", pid_stat_text(process_ticks_, process_ticks_));
  std::lock_guard<std::mutex> lock(mutex_);
  written_ = versions_.size();
}

/* Follows the inotify queue, which orders the fixture's renames and the
 * sampler's opens: a file opened after the n-th rename of its name reads
 * version n - 1. After each completed read the next version is written,
 * one interval ahead of the sampler's next read. */
void LoadFixture::run() {
  alignas(struct inotify_event) char buf[8192];
  auto version = [](size_t seen) { return seen > 0 ? seen - 1 : 0; };
  while (!stop_) {
    struct pollfd p = {inotify_, POLLIN, 0};
    if (poll(&p, 1, 20) <= 0)
      continue;
    const ssize_t len = read(inotify_, buf, sizeof buf);
    for (ssize_t i = 0; i < len;) {
      const auto* e = reinterpret_cast<const struct inotify_event*>(buf + i);
      i += static_cast<ssize_t>(sizeof(struct inotify_event) + e->len);
      if (e->mask & IN_Q_OVERFLOW) {
        std::lock_guard<std::mutex> lock(mutex_);
        overflowed_ = true;
        continue;
      }
      const std::string name = e->len ? e->name : "";
      const bool root = e->wd == root_watch_;
      const bool self = e->wd == self_watch_;
      if (e->mask & IN_MOVED_TO) {
        if (root && name == "stat")
          seen_stat_++;
        else if (root && name == "meminfo")
          seen_meminfo_++;
        else if (self && name == "stat")
          seen_pid_stat_++;
      } else if (e->mask & IN_OPEN) {
        if (root && name == "meminfo")
          current_.mem_version = version(seen_meminfo_);
        else if (root && name == "stat")
          current_.cpu_version = version(seen_stat_);
        else if (self && name == "stat")
          current_.cpu_version = version(seen_pid_stat_);
      } else if ((e->mask & IN_CLOSE_NOWRITE) &&
                 ((root && name == "stat") || (self && name == "statm"))) {
        {
          std::lock_guard<std::mutex> lock(mutex_);
          reads_.push_back(current_);
        }
        write_version();
      }
    }
  }
}

bool LoadFixture::settled_locked() const {
  const size_t n = reads_.size();
  if (n < 3)
    return false;
  /* The version after the last read is on disk, or the next read could
   * find the one just read again. */
  if (written_ != versions_.size() || versions_.size() < reads_.back().cpu_version + 2)
    return false;
  for (size_t k = n - 2; k < n; k++) {
    const Read& read = reads_[k];
    const Read& before = reads_[k - 1];
    if (read.cpu_version <= before.cpu_version)
      return false;
    for (size_t v = before.cpu_version + 1; v <= read.cpu_version; v++)
      if (!(versions_[v] == load_))
        return false;
    if (!(versions_[read.mem_version] == load_))
      return false;
  }
  return true;
}

void LoadFixture::settle() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    fail_if(period_us_ > 0, "settle() while the load flips");
  }
  const bool settled = wait_until([this] {
    std::lock_guard<std::mutex> lock(mutex_);
    return overflowed_ || settled_locked();
  });
  std::lock_guard<std::mutex> lock(mutex_);
  fail_if(overflowed_, "the fixture lost inotify events");
  fail_unless(settled,
              "the sampler did not read the set load: %zu reads, "
              "%u of them stale",
              reads_.size(), stale_reads_locked());
}

guint LoadFixture::stale_reads_locked() const {
  guint n = 0;
  for (size_t k = 1; k < reads_.size(); k++)
    n += reads_[k].cpu_version == reads_[k - 1].cpu_version;
  return n;
}

/* ---- ticks the test runs ---- */

TickDriver::TickDriver(LoadFixture* load) : clock_(gst_test_clock_new()), load_(load) {
  gst_system_clock_set_default(clock_);
}

TickDriver::~TickDriver() {
  gst_system_clock_set_default(nullptr);
  gst_object_unref(clock_);
}

void TickDriver::run(guint n) {
  const guint timeout_ms = static_cast<guint>(kWaitUs / 1000 * slowdown());
  for (guint i = 0; i < n; i++) {
    if (load_)
      load_->settle();
    fail_unless(gst_test_clock_timed_wait_for_multiple_pending_ids(GST_TEST_CLOCK(clock_), 1,
                                                                   timeout_ms, nullptr),
                "no tick scheduled");
    fail_unless(gst_test_clock_crank(GST_TEST_CLOCK(clock_)), "tick %u did not run", i);
  }
}

GstClockTime TickDriver::now() const {
  return gst_clock_get_time(clock_);
}

void TickDriver::advance(GstClockTime delta) {
  gst_test_clock_advance_time(GST_TEST_CLOCK(clock_), static_cast<GstClockTimeDiff>(delta));
}

guint TickDriver::pending() const {
  return gst_test_clock_peek_id_count(GST_TEST_CLOCK(clock_));
}

GstClockTime TickDriver::next_due() const {
  GstClockID id = nullptr;
  if (!gst_test_clock_peek_next_pending_id(GST_TEST_CLOCK(clock_), &id))
    return GST_CLOCK_TIME_NONE;
  const GstClockTime due = gst_clock_id_get_time(id);
  gst_clock_id_unref(id);
  return due;
}

/* ---- the algorithm, written out from its specification ---- */

double threshold_factor(double value, double low, double high) {
  if (value > high)
    return -1.0;
  if (value < low)
    return 1.0;
  const double mid = (high + low) / 2.0;
  return (mid - value) / (mid - low);
}

std::vector<Step> expected_steps(guint start, double f, guint min, guint max, double smoothing,
                                 guint ticks) {
  std::vector<Step> steps;
  double cur = start;
  for (guint i = 0; i < ticks; i++) {
    const double target = f > 0 ? cur + f * (max - cur) : cur + f * (cur - min);
    const double next = std::fmin(std::fmax(cur + smoothing * (target - cur), min), max);
    if (std::fabs(next - cur) < 0.5)
      continue;
    /* round half away from zero; values are positive */
    const guint rounded = static_cast<guint>(std::floor(next + 0.5));
    steps.push_back({static_cast<guint>(cur), rounded});
    cur = rounded;
  }
  return steps;
}

guint ticks_to_settle(guint start, double f, guint min, guint max, double smoothing) {
  constexpr guint kEnough = 100;
  const auto all = expected_steps(start, f, min, max, smoothing, kEnough);
  const guint n = static_cast<guint>(all.size()) + 3;
  fail_unless(n < kEnough && expected_steps(start, f, min, max, smoothing, n).size() == all.size(),
              "no dead band from %u under %f", start, f);
  return n;
}

void check_same_steps(const std::vector<Step>& a, const std::vector<Step>& b) {
  fail_unless_equals_int(a.size(), b.size());
  for (size_t i = 0; i < a.size(); i++) {
    fail_unless_equals_int(a[i].from, b[i].from);
    fail_unless_equals_int(a[i].to, b[i].to);
  }
}

void expect_steps(GstElement* q, Bus& bus, const std::vector<Step>& steps, size_t start_at) {
  bus.drain();
  fail_unless_equals_int(bus.adaptations.size(), start_at + steps.size());
  for (size_t i = 0; i < steps.size(); i++) {
    const GstStructure* s = bus.adaptations[start_at + i];
    fail_unless_equals_int(field_uint(s, "old-capacity"), steps[i].from);
    fail_unless_equals_int(field_uint(s, "new-capacity"), steps[i].to);
    fail_unless_equals_uint64(field_uint64(s, "adaptations"), start_at + i + 1);
  }
  if (!steps.empty())
    fail_unless_equals_int(capacity(q), steps.back().to);
}

void run_expecting(TickDriver& ticks, GstElement* q, Bus& bus, guint start, double f, guint n) {
  const size_t before = bus.adaptations.size();
  fail_unless_equals_int(capacity(q), start);
  ticks.run(n);
  expect_steps(q, bus, expected_steps(start, f, 4, 32, 0.3, n), before);
}

void run_to_settle(TickDriver& ticks, GstElement* q, Bus& bus, guint start, double f) {
  run_expecting(ticks, q, bus, start, f, ticks_to_settle(start, f, 4, 32, 0.3));
}

bool TickDriver::run_until(const std::function<bool()>& done) {
  return wait_until([&] {
    run(1);
    return done();
  });
}

/* ---- pipelines ---- */

GstElement* launch(const std::string& description) {
  GError* err = nullptr;
  GstElement* pipeline = gst_parse_launch(description.c_str(), &err);
  fail_unless(pipeline != nullptr && err == nullptr, "cannot build '%s': %s", description.c_str(),
              err ? err->message : "?");
  return pipeline;
}

GstElement* by_name(GstElement* pipeline, const char* name) {
  GstElement* e = gst_bin_get_by_name(GST_BIN(pipeline), name);
  fail_unless(e != nullptr, "no element %s", name);
  gst_object_unref(e);
  return e;
}

void change_state(GstElement* element, GstState target) {
  GstStateChangeReturn ret = gst_element_set_state(element, target);
  fail_if(ret == GST_STATE_CHANGE_FAILURE, "set_state %s failed",
          gst_element_state_get_name(target));
  GstState current = GST_STATE_VOID_PENDING;
  ret = gst_element_get_state(element, &current, nullptr,
                              10 * GST_SECOND * static_cast<GstClockTime>(slowdown()));
  fail_if(ret == GST_STATE_CHANGE_ASYNC, "state change to %s timed out",
          gst_element_state_get_name(target));
  fail_if(ret == GST_STATE_CHANGE_FAILURE, "state change to %s failed",
          gst_element_state_get_name(target));
  fail_unless(current == target, "in %s, wanted %s", gst_element_state_get_name(current),
              gst_element_state_get_name(target));
}

}  // namespace aqt
