/* adaptivequeue adaptation: the latency readings, the tick that resizes
 * the capacity, the stats structure and the adaptation message.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstadaptivequeue-private.h"

#include <algorithm>

#define GST_CAT_DEFAULT adaptive_queue_debug

namespace aq::element {

/* Load problems already posted are forgotten after this many good ticks in
 * a row, so a /proc that flaps does not post a warning per tick. */
constexpr guint LOAD_RECOVERY_TICKS = 10;
/* Distinct load problems posted per incident: parse errors quote the bad
 * text, so changing garbage would otherwise give a new reason every tick. */
constexpr size_t MAX_LOAD_WARNINGS = 8;

constexpr const char *ADAPTATION_MESSAGE = "adaptivequeue-adaptation";
constexpr const char *STATS_STRUCTURE = "adaptivequeue-stats";

/* ---- latency measurement (queue lock held) ---- */

/* How late the buffer is at output: clock running time now minus buffer
 * running time. Needs a clock, PLAYING, a TIME segment and a timestamp. */
static std::optional<gint64>
clock_latency_qlocked (GstAdaptiveQueue * self, GstBuffer * buffer)
{
  QueueState & q = *self->q;
  if (!q.clock || !q.src_segment_is_time)
    return std::nullopt;
  GstClockTime ts = GST_BUFFER_PTS_IS_VALID (buffer) ? GST_BUFFER_PTS (buffer)
      : GST_BUFFER_DTS (buffer);
  gint64 buffer_rt = segment_running_time (&q.src_segment, ts);
  if (!GST_CLOCK_STIME_IS_VALID (buffer_rt))
    return std::nullopt;
  /* Cached at the state change: no object lock per buffer. */
  const GstClockTime base_time = q.playing_base_time;
  if (!GST_CLOCK_TIME_IS_VALID (base_time))
    return std::nullopt;
  GstClockTime now = gst_clock_get_time (q.clock);
  if (!GST_CLOCK_TIME_IS_VALID (now) || now < base_time)
    return std::nullopt;
  const gint64 running = static_cast < gint64 > (now - base_time);
  /* Saturate rather than overflow for a running time far before 0. */
  if (buffer_rt < 0 && running > G_MAXINT64 + buffer_rt)
    return G_MAXINT64;
  /* An early buffer is not late at all. */
  return std::max < gint64 > (0, running - buffer_rt);
}

/* Time the queue itself adds: the time level behind this buffer. Only
 * meaningful for timestamped buffers in a TIME segment. */
static std::optional<gint64>
queued_latency (const QueueState & q, GstBuffer * buffer)
{
  if (!q.src_segment_is_time || !GST_CLOCK_TIME_IS_VALID (GST_BUFFER_DTS_OR_PTS (buffer)))
    return std::nullopt;
  return static_cast < gint64 > (level_of (q).time);
}

void
sample_latency_qlocked (GstAdaptiveQueue * self, GstBuffer * buffer)
{
  QueueState & q = *self->q;
  std::optional<gint64> sample;
  switch (q.latency_source) {
    case GST_ADAPTIVE_QUEUE_LATENCY_CLOCK:
      sample = clock_latency_qlocked (self, buffer);
      break;
    case GST_ADAPTIVE_QUEUE_LATENCY_QUEUED:
      sample = queued_latency (q, buffer);
      break;
    case GST_ADAPTIVE_QUEUE_LATENCY_AUTO:
      sample = clock_latency_qlocked (self, buffer);
      if (!sample)
        sample = queued_latency (q, buffer);
      break;
  }
  if (sample)
    q.latency.add (*sample);
}

/* ---- adaptation tick ---- */

static void schedule_tick_tlocked (GstAdaptiveQueue * self, GstClockTime delay);

/* Posts what the tick decided, outside every lock. */
struct TickOutcome
{
  GstMessage *adaptation = nullptr;
  std::string config_warning;
  std::string load_warning;
  bool latency_changed = false;
};

static void
ensure_subscription_tlocked (GstAdaptiveQueue * self, const Settings & s)
{
  TickState & t = *self->tick;
  if (t.subscription && t.subscribed_root == s.proc_root &&
      t.subscribed_scope == s.scope) {
    t.subscription->set_interval (static_cast < int64_t > (s.interval));
    return;
  }
  t.subscription.reset ();
  t.subscription = aq::SharedSampler::subscribe (s.proc_root, s.scope,
      static_cast < int64_t > (s.interval));
  t.subscribed_root = s.proc_root;
  t.subscribed_scope = s.scope;
}

/* One tick: validate, sample, decide, resize. Tick lock held. */
static TickOutcome
run_tick_tlocked (GstAdaptiveQueue * self, const Settings & s)
{
  TickState & t = *self->tick;
  QueueState & q = *self->q;
  TickOutcome out;

  t.ticks++;
  const auto errors = aq::validate (s.policy);
  if (!errors.empty ()) {
    std::string text = aq::describe (errors);
    if (text != t.warned_config)
      out.config_warning = t.warned_config = text;
  } else {
    t.warned_config.clear ();
  }
  if (!s.adaptive)
    return out;

  ensure_subscription_tlocked (self, s);
  const aq::SharedReading reading = t.subscription->latest ();
  if (!reading.sample) {
    t.skipped_ticks++;
    t.good_load_ticks = 0;
    GST_DEBUG_OBJECT (self, "tick skipped: %s", reading.reason.c_str ());
    if (!reading.warming_up && t.warned_loads.size () < MAX_LOAD_WARNINGS &&
        t.warned_loads.insert (reading.reason).second)
      out.load_warning = reading.reason;
    return out;
  }
  if (++t.good_load_ticks >= LOAD_RECOVERY_TICKS)
    t.warned_loads.clear ();
  t.last_sample = reading.sample;

  const aq::PolicyConfig & config = s.last_valid;
  qlock (self);
  const std::optional<int64_t> latency = q.latency.average ();
  t.policy.set_capacity (q.max.buffers);
  const GstClockTime limit_before = time_capacity (q);
  const aq::Decision decision = t.policy.step (config, *reading.sample, latency,
      static_cast < int64_t > (gst_util_get_timestamp ()));
  t.last_decision = decision;
  if (decision.applied && decision.new_capacity != q.max.buffers) {
    const guint old_capacity = q.max.buffers;
    q.max.buffers = decision.new_capacity;
    reserve_for_capacity (q);
    if (decision.new_capacity < old_capacity &&
        q.leaky == GST_ADAPTIVE_QUEUE_LEAK_DOWNSTREAM)
      leak_downstream_qlocked (self, true);
    /* With leaky=no upstream simply waits; leaky=upstream drops on entry.
     * Both sides re-check: growing makes room upstream, and shrinking can
     * make the queue full, which overrides a min threshold the task is
     * waiting on. */
    wake_all_qlocked (self);
  }
  const guint level = level_of (q).buffers;
  out.latency_changed = time_capacity (q) != limit_before;
  qunlock (self);

  GST_DEBUG_OBJECT (self, "tick: cpu %.1f%% mem %.1f%% latency %" G_GINT64_FORMAT
      " ns, factors cpu %.3f mem %.3f lat %.3f -> %.3f, capacity %u -> %u%s",
      reading.sample->cpu_percent, reading.sample->mem_percent,
      latency.value_or (-1), decision.cpu_factor, decision.mem_factor,
      decision.latency_factor, decision.combined, decision.old_capacity,
      decision.new_capacity, decision.applied ? "" : " (dead band)");

  if (decision.applied) {
    GstStructure *st = gst_structure_new (ADAPTATION_MESSAGE,
        "old-capacity", G_TYPE_UINT, decision.old_capacity,
        "new-capacity", G_TYPE_UINT, decision.new_capacity,
        "level-buffers", G_TYPE_UINT, level,
        "cpu-percent", G_TYPE_DOUBLE, reading.sample->cpu_percent,
        "mem-percent", G_TYPE_DOUBLE, reading.sample->mem_percent,
        "latency-average", G_TYPE_INT64, latency.value_or (-1),
        "cpu-factor", G_TYPE_DOUBLE, decision.cpu_factor,
        "mem-factor", G_TYPE_DOUBLE, decision.mem_factor,
        "latency-factor", G_TYPE_DOUBLE, decision.latency_factor,
        "combined-factor", G_TYPE_DOUBLE, decision.combined,
        "adaptations", G_TYPE_UINT64, t.policy.adaptations (), nullptr);
    out.adaptation = gst_message_new_element (GST_OBJECT_CAST (self), st);
  }
  return out;
}

static gboolean
on_tick (GstClock *, GstClockTime, GstClockID id, gpointer user_data)
{
  auto *self = static_cast < GstAdaptiveQueue * >(g_weak_ref_get (
          static_cast < GWeakRef * >(user_data)));
  if (!self)
    return TRUE;
  TickOutcome out;

  GST_OBJECT_LOCK (self);
  const Settings settings = *self->settings;
  GST_OBJECT_UNLOCK (self);

  tlock (self);
  if (!self->tick->running || self->tick->id != id) {
    tunlock (self);
    gst_object_unref (self);
    return TRUE;
  }
  out = run_tick_tlocked (self, settings);
  schedule_tick_tlocked (self, settings.interval);
  tunlock (self);

  if (!out.config_warning.empty ())
    GST_ELEMENT_WARNING (self, LIBRARY, SETTINGS,
        ("Invalid adaptive configuration, keeping the last valid one"),
        ("%s", out.config_warning.c_str ()));
  if (!out.load_warning.empty ())
    GST_ELEMENT_WARNING (self, RESOURCE, READ,
        ("Cannot read system load, adaptation paused"),
        ("%s", out.load_warning.c_str ()));
  if (out.adaptation)
    gst_element_post_message (GST_ELEMENT_CAST (self), out.adaptation);
  if (out.latency_changed)
    gst_element_post_message (GST_ELEMENT_CAST (self),
        gst_message_new_latency (GST_OBJECT_CAST (self)));
  gst_object_unref (self);
  return TRUE;
}

static void
free_weak_ref (gpointer data)
{
  auto *ref = static_cast < GWeakRef * >(data);
  g_weak_ref_clear (ref);
  g_free (ref);
}

static void
schedule_tick_tlocked (GstAdaptiveQueue * self, GstClockTime delay)
{
  TickState & t = *self->tick;
  GstClock *clock = gst_system_clock_obtain ();
  if (t.id)
    gst_clock_id_unref (t.id);
  t.id = gst_clock_new_single_shot_id (clock, gst_clock_get_time (clock) + delay);
  /* A weak reference: an unscheduled wait is released by the clock's
   * thread some time later, and must not keep the element alive till then. */
  GWeakRef *ref = g_new0 (GWeakRef, 1);
  g_weak_ref_init (ref, self);
  gst_clock_id_wait_async (t.id, on_tick, ref, free_weak_ref);
  gst_object_unref (clock);
}

void
start_ticks (GstAdaptiveQueue * self)
{
  GST_OBJECT_LOCK (self);
  const Settings settings = *self->settings;
  GST_OBJECT_UNLOCK (self);

  tlock (self);
  self->tick->running = true;
  /* Subscribing now gives the sampler an interval to take its first two
   * readings before the first tick. */
  if (settings.adaptive)
    ensure_subscription_tlocked (self, settings);
  schedule_tick_tlocked (self, settings.interval);
  tunlock (self);
}

void
stop_ticks (GstAdaptiveQueue * self)
{
  std::unique_ptr<aq::SharedSampler::Subscription> subscription;
  tlock (self);
  TickState & t = *self->tick;
  t.running = false;
  if (t.id) {
    gst_clock_id_unschedule (t.id);
    gst_clock_id_unref (t.id);
    t.id = nullptr;
  }
  subscription = std::move (t.subscription);
  tunlock (self);
  /* The last subscription joins the sampler thread: do it unlocked. */
}

/* ---- stats ---- */

GstStructure *
build_stats (GstAdaptiveQueue * self)
{
  tlock (self);
  const TickState & t = *self->tick;
  qlock (self);
  const QueueState & q = *self->q;
  const Level cur = level_of (q);
  const aq::LoadSample load = t.last_sample.value_or (aq::LoadSample {});
  GstStructure *st = gst_structure_new (STATS_STRUCTURE,
      "capacity", G_TYPE_UINT, q.max.buffers,
      "current-level-buffers", G_TYPE_UINT, cur.buffers,
      "current-level-bytes", G_TYPE_UINT, cur.bytes,
      "current-level-time", G_TYPE_UINT64, cur.time,
      "max-level-buffers", G_TYPE_UINT, q.max_level_buffers,
      "latency-average", G_TYPE_INT64, q.latency.average ().value_or (-1),
      "latency-max", G_TYPE_INT64, q.latency.max ().value_or (-1),
      "latency-samples", G_TYPE_UINT64, q.latency.count (),
      "load-valid", G_TYPE_BOOLEAN, t.last_sample.has_value (),
      "cpu-percent", G_TYPE_DOUBLE, load.cpu_percent,
      "mem-percent", G_TYPE_DOUBLE, load.mem_percent,
      "cpu-factor", G_TYPE_DOUBLE, t.last_decision.cpu_factor,
      "mem-factor", G_TYPE_DOUBLE, t.last_decision.mem_factor,
      "latency-factor", G_TYPE_DOUBLE, t.last_decision.latency_factor,
      "combined-factor", G_TYPE_DOUBLE, t.last_decision.combined,
      "adaptations", G_TYPE_UINT64, t.policy.adaptations (),
      "ticks", G_TYPE_UINT64, t.ticks,
      "skipped-ticks", G_TYPE_UINT64, t.skipped_ticks,
      "drops", G_TYPE_UINT64, q.drops,
      "overruns", G_TYPE_UINT64, q.overruns,
      "underruns", G_TYPE_UINT64, q.underruns,
      "buffers-pushed", G_TYPE_UINT64, q.pushed, nullptr);
  qunlock (self);
  tunlock (self);
  return st;
}

}  // namespace aq::element
