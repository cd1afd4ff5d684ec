/* adaptivequeue adaptation: the capacity and its one writer, the latency
 * readings and the element's latency answer, the tick that resizes the
 * capacity, the stats structure and the adaptation message.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstadaptivequeue-handoff.h"

#include <algorithm>

#define GST_CAT_DEFAULT adaptive_queue_debug

namespace aq::element {

/* Load problems already posted are forgotten after this many good ticks in
 * a row, so a /proc that flaps does not post a warning per tick. */
constexpr guint LOAD_RECOVERY_TICKS = 10;
/* Distinct load problems posted per incident: parse errors quote the bad
 * text, so changing garbage would otherwise give a new reason every tick. */
constexpr size_t MAX_LOAD_WARNINGS = 8;

constexpr const char* ADAPTATION_MESSAGE = "adaptivequeue-adaptation";
constexpr const char* STATS_STRUCTURE = "adaptivequeue-stats";

/* ---- latency measurement (queue lock held) ---- */

/* How late the buffer is at output: clock running time now minus buffer
 * running time. Needs a clock, PLAYING, a TIME segment and a timestamp. It
 * includes the latency upstream declares, which no capacity can change. */
static std::optional<gint64> clock_latency_qlocked(GstAdaptiveQueue* self, GstBuffer* buffer) {
  QueueState& q = *self->q;
  if (!q.clock || !q.src_segment_is_time)
    return std::nullopt;
  GstClockTime ts =
      GST_BUFFER_PTS_IS_VALID(buffer) ? GST_BUFFER_PTS(buffer) : GST_BUFFER_DTS(buffer);
  gint64 buffer_rt = segment_running_time(&q.src_segment, ts);
  if (!GST_CLOCK_STIME_IS_VALID(buffer_rt))
    return std::nullopt;
  /* Cached at the state change: no object lock per buffer. */
  const GstClockTime base_time = q.playing_base_time;
  if (!GST_CLOCK_TIME_IS_VALID(base_time))
    return std::nullopt;
  GstClockTime now = gst_clock_get_time(q.clock);
  if (!GST_CLOCK_TIME_IS_VALID(now) || now < base_time)
    return std::nullopt;
  const gint64 running = static_cast<gint64>(now - base_time);
  /* Saturate rather than overflow for a running time far before 0. */
  if (buffer_rt < 0 && running > G_MAXINT64 + buffer_rt)
    return G_MAXINT64;
  /* An early buffer is not late at all. */
  return std::max<gint64>(0, running - buffer_rt);
}

/* Time the queue itself adds: the time level behind this buffer. Only
 * meaningful for timestamped buffers in a TIME segment. */
static std::optional<gint64> queued_latency_qlocked(const QueueState& q, GstBuffer* buffer) {
  if (!q.src_segment_is_time || !GST_CLOCK_TIME_IS_VALID(GST_BUFFER_DTS_OR_PTS(buffer)))
    return std::nullopt;
  return static_cast<gint64>(level_of(q).time);
}

void sample_latency_qlocked(GstAdaptiveQueue* self, GstBuffer* buffer) {
  QueueState& q = *self->q;
  std::optional<gint64> sample;
  switch (q.latency_source) {
    case GST_ADAPTIVE_QUEUE_LATENCY_CLOCK:
      sample = clock_latency_qlocked(self, buffer);
      break;
    case GST_ADAPTIVE_QUEUE_LATENCY_QUEUED:
      sample = queued_latency_qlocked(q, buffer);
      break;
    case GST_ADAPTIVE_QUEUE_LATENCY_AUTO:
      /* What the queue can act on: lateness beyond upstream's minimum
       * latency, which a live source and an encoder's look-ahead add. */
      sample = clock_latency_qlocked(self, buffer);
      if (sample && q.upstream_latency.known)
        *sample = std::max<gint64>(0, *sample - static_cast<gint64>(std::min<GstClockTime>(
                                                    q.upstream_latency.min, G_MAXINT64)));
      if (!sample)
        sample = queued_latency_qlocked(q, buffer);
      break;
  }
  if (sample)
    q.latency.add(*sample);
}

/* ---- adaptation tick ---- */

/* The time the buffer limit can hold: max-size-time when set, otherwise the
 * adaptive capacity times the last buffer duration, or NONE if unknown. */
static GstClockTime time_capacity_qlocked(const QueueState& q) {
  if (q.max.time > 0)
    return q.max.time;
  const GstClockTime duration = q.buffer_duration.load(std::memory_order_relaxed);
  if (q.max.buffers > 0 && GST_CLOCK_TIME_IS_VALID(duration))
    return q.max.buffers * duration;
  return GST_CLOCK_TIME_NONE;
}

/* a + b for valid latencies, saturated below GST_CLOCK_TIME_NONE: huge
 * thresholds or limits must not wrap, or turn a latency into "none". */
static GstClockTime add_latency(GstClockTime a, GstClockTime b) {
  const GstClockTime largest = GST_CLOCK_TIME_NONE - 1;
  return b > largest - a ? largest : a + b;
}

LatencyAnswer add_own_latency_qlocked(const QueueState& q, const LatencyAnswer& upstream) {
  LatencyAnswer answer = upstream;
  const GstClockTime limit = time_capacity_qlocked(q);
  /* We can delay data by up to what the limit holds. A leaky queue never
   * blocks upstream, so, as queue does, it reports the larger of upstream's
   * max and its own capacity rather than their sum (NONE stays NONE). */
  if (!GST_CLOCK_TIME_IS_VALID(limit))
    answer.max = GST_CLOCK_TIME_NONE;
  else if (q.leaky != GST_ADAPTIVE_QUEUE_NO_LEAK)
    answer.max = GST_CLOCK_TIME_IS_VALID(answer.max) ? std::max(answer.max, limit) : answer.max;
  else if (GST_CLOCK_TIME_IS_VALID(answer.max))
    answer.max = add_latency(answer.max, limit);
  if (q.min_threshold.time > 0 && GST_CLOCK_TIME_IS_VALID(answer.min))
    answer.min = add_latency(answer.min, q.min_threshold.time);
  return answer;
}

/* The pipeline must recompute its latency when the element's minimum
 * changes, or when its maximum falls below the latency it configured;
 * other changes (a capacity that grows, a maximum still above) need
 * nothing, and posting for them would make every pipeline recompute. */
bool latency_report_changed_qlocked(QueueState& q) {
  if (!q.upstream_latency.known)
    return false;
  const LatencyAnswer now = add_own_latency_qlocked(q, q.upstream_latency);
  const LatencyAnswer before = q.reported_latency;
  const bool min_changed = now.min != before.min;
  const bool max_too_low = now.max != before.max && GST_CLOCK_TIME_IS_VALID(now.max) &&
                           GST_CLOCK_TIME_IS_VALID(q.configured_latency) &&
                           now.max < q.configured_latency;
  if (!min_changed && !max_too_low)
    return false;
  q.reported_latency = now;
  return true;
}

static void schedule_tick_tlocked(GstAdaptiveQueue* self, GstClockTime at);

/* Posts what the tick decided, outside every lock. */
struct TickOutcome {
  GstMessage* adaptation = nullptr;
  std::string load_warning;
  bool latency_changed = false;
};

static void ensure_subscription_tlocked(GstAdaptiveQueue* self, const Settings& s) {
  TickState& t = *self->tick;
  if (t.subscription && t.subscribed_proc_root == s.proc_root &&
      t.subscribed_cgroup_root == s.cgroup_root && t.subscribed_scope == s.scope) {
    t.subscription->set_interval(static_cast<int64_t>(s.interval));
    return;
  }
  t.subscription.reset();
  t.subscription = aq::SharedSampler::subscribe(s.proc_root, s.cgroup_root, s.scope,
                                                static_cast<int64_t>(s.interval));
  t.last_source.reset();
  t.subscribed_proc_root = s.proc_root;
  t.subscribed_cgroup_root = s.cgroup_root;
  t.subscribed_scope = s.scope;
}

/* The adaptation message, for a tick or an overrun growth. The load and
 * factors are those of the tick: -1 and 0 for an overrun. */
static GstMessage* adaptation_message_qlocked(GstAdaptiveQueue* self, const aq::Decision& d,
                                              const QueueState& q,
                                              const std::optional<aq::LoadSample>& load) {
  // One field per line: clang-format would run them together.
  // clang-format off
  GstStructure* st = gst_structure_new(ADAPTATION_MESSAGE,
      "reason", G_TYPE_STRING, d.overrun ? "overrun" : "tick",
      "old-capacity", G_TYPE_UINT, d.old_capacity,
      "new-capacity", G_TYPE_UINT, d.new_capacity,
      "level-buffers", G_TYPE_UINT, level_of(q).buffers,
      "demand-floor", G_TYPE_UINT, d.demand_floor,
      "cpu-percent", G_TYPE_DOUBLE, load ? load->cpu_percent : -1.0,
      "mem-percent", G_TYPE_DOUBLE, load ? load->mem_percent : -1.0,
      "latency-average", G_TYPE_INT64, q.latency.average().value_or(-1),
      "latency-max", G_TYPE_INT64, q.interval_latency_max.value_or(-1),
      "cpu-factor", G_TYPE_DOUBLE, d.cpu_factor,
      "mem-factor", G_TYPE_DOUBLE, d.mem_factor,
      "latency-factor", G_TYPE_DOUBLE, d.latency_factor,
      "combined-factor", G_TYPE_DOUBLE, d.combined,
      "adaptations", G_TYPE_UINT64, q.adapter.adaptations(), nullptr);
  // clang-format on
  return gst_message_new_element(GST_OBJECT_CAST(self), st);
}

/* ---- the capacity ---- */

/* Notes the ring size the capacity needs. A fixed limit above the adaptive
 * range (up to G_MAXUINT, as queue allows) is not reserved up front: that
 * would allocate gigabytes for an "unlimited" queue. Beyond the reserve the
 * ring grows as buffers actually arrive. */
void reserve_for_capacity_qlocked(QueueState& q) {
  if (q.max.buffers == 0)
    return;
  /* Adapting, a push that overruns may grow the capacity up to the growth
   * ceiling: reserve for that too, so the push does not allocate. */
  const guint most = q.adaptive
                         ? std::max(q.max.buffers, aq::growth_ceiling(q.policy, q.growth_limit))
                         : q.max.buffers;
  const size_t want = static_cast<size_t>(std::min(most, MAX_RESERVED_BUFFERS)) + EVENT_HEADROOM;
  if (q.want_storage < want)
    q.want_storage = want;
}

/* The one writer of the capacity. Set by a property, it acts as on queue:
 * lowered with leaky=downstream, the oldest items go until a buffer fits.
 * Adaptation drops only down to the new capacity, no more than needed. Both
 * sides re-check: growing makes room upstream, and shrinking can make the
 * queue full, which overrides a min threshold the task is waiting on. */
void set_capacity_qlocked(GstAdaptiveQueue* self, guint capacity, CapacityCause why) {
  QueueState& q = *self->q;
  const guint old_capacity = q.max.buffers;
  q.max.buffers = capacity;
  reserve_for_capacity_qlocked(q);
  if (capacity > 0 && capacity < old_capacity && q.leaky == GST_ADAPTIVE_QUEUE_LEAK_DOWNSTREAM) {
    if (why == CapacityCause::Property)
      leak_downstream_qlocked(self);
    else
      leak_downstream_qlocked(self, capacity);
  }
  wake_all_qlocked(self);
}

GstMessage* grow_on_overrun_qlocked(GstAdaptiveQueue* self) {
  QueueState& q = *self->q;
  q.trace.overrun();
  const guint level = level_of(q).buffers;
  /* Only a queue full by its buffer count, with a count to size. */
  if (!q.adaptive || q.max.buffers == 0 || level < q.max.buffers)
    return nullptr;
  /* The level only rises between removals, so the highest since the tick
   * is the highest seen at a removal, or now. */
  const aq::Decision d =
      q.adapter.overrun(q.policy, q.max.buffers, q.trace.max(level), q.upstream_latency.live,
                        static_cast<int64_t>(gst_util_get_timestamp()), q.growth_limit);
  if (!d.applied)
    return nullptr;
  GST_DEBUG_OBJECT(self, "overrun: capacity %u -> %u", d.old_capacity, d.new_capacity);
  set_capacity_qlocked(self, d.new_capacity, CapacityCause::Adaptation);
  return adaptation_message_qlocked(self, d, q, std::nullopt);
}

/* Drops the `n` oldest buffers at once (trimming), counted as drops. */
static void trim_qlocked(GstAdaptiveQueue* self, guint n) {
  QueueState& q = *self->q;
  const guint level = level_of(q).buffers;
  leak_downstream_qlocked(self, level > n ? level - n : 0);
  wake_all_qlocked(self);
}

/* One tick: sample, decide, resize, trim. The configuration was validated
 * when it was set; ticks run on the last valid one. Tick lock held. */
static TickOutcome run_tick_tlocked(GstAdaptiveQueue* self, const Settings& s) {
  TickState& t = *self->tick;
  QueueState& q = *self->q;
  TickOutcome out;

  t.ticks++;
  qlock(self);
  const bool adaptive = q.adaptive;
  qunlock(self);
  /* Without adaptation the load is not read at all. */
  aq::SharedReading reading;
  if (adaptive) {
    ensure_subscription_tlocked(self, s);
    reading = t.subscription->latest();
    if (reading.sequence > 0)
      t.last_source = reading.source;
    if (!reading.sample) {
      t.skipped_ticks++;
      t.good_load_ticks = 0;
      GST_DEBUG_OBJECT(self, "tick skipped: %s", reading.reason.c_str());
      if (!reading.warming_up && t.warned_loads.size() < MAX_LOAD_WARNINGS &&
          t.warned_loads.insert(reading.reason).second)
        out.load_warning = reading.reason;
    } else {
      if (++t.good_load_ticks >= LOAD_RECOVERY_TICKS)
        t.warned_loads.clear();
      t.last_sample = reading.sample;
    }
  }

  qlock(self);
  const int64_t now = static_cast<int64_t>(gst_util_get_timestamp());
  q.interval_latency_max = q.latency.take_interval_max();
  /* Without adaptation, or without a buffer limit, there is nothing to
   * size: the tick only samples and reports. */
  /* The level only rises between removals: the highest since the last
   * tick was seen at a removal, or is the level now. */
  const aq::LevelInterval iv = q.trace.take(level_of(q).buffers);
  if (adaptive && q.adaptive && q.max.buffers > 0) {
    aq::TickInput in;
    in.capacity = q.max.buffers;
    in.level_max = iv.max;
    in.live = q.upstream_latency.live;
    in.load = reading.sample;
    in.latency_avg_ns = q.latency.average();
    in.now_ns = now;
    in.growth_limit = q.growth_limit;
    const aq::Decision d = q.adapter.tick(q.policy, in);
    q.demand_floor = d.demand_floor;
    if (reading.sample) {
      t.last_decision = d;
      GST_DEBUG_OBJECT(self,
                       "tick: cpu %.1f%% mem %.1f%% latency %" G_GINT64_FORMAT
                       " ns, factors cpu %.3f mem %.3f lat %.3f -> %.3f, "
                       "floor %u, capacity %u -> %u%s",
                       reading.sample->cpu_percent, reading.sample->mem_percent,
                       in.latency_avg_ns.value_or(-1), d.cpu_factor, d.mem_factor, d.latency_factor,
                       d.combined, d.demand_floor, d.old_capacity, d.new_capacity,
                       d.applied ? "" : " (dead band)");
    }
    if (d.applied && d.new_capacity != q.max.buffers)
      set_capacity_qlocked(self, d.new_capacity, CapacityCause::Adaptation);
    if (d.applied)
      out.adaptation = adaptation_message_qlocked(self, d, q, reading.sample);
    /* A non-live upstream's backlog is backpressure, not latency. */
    if (q.leaky == GST_ADAPTIVE_QUEUE_LEAK_DOWNSTREAM && in.live) {
      const guint n = q.trimmer.tick(q.policy, now, iv);
      if (n > 0) {
        GST_DEBUG_OBJECT(self, "trimming %u buffers of latency, keeping %u", n, q.trimmer.keep());
        trim_qlocked(self, n);
      }
    }
  }
  out.latency_changed = latency_report_changed_qlocked(q);
  qunlock(self);
  return out;
}

static gboolean on_tick(GstClock*, GstClockTime, GstClockID id, gpointer user_data) {
  auto* self = static_cast<GstAdaptiveQueue*>(g_weak_ref_get(static_cast<GWeakRef*>(user_data)));
  if (!self)
    return TRUE;
  TickOutcome out;

  tlock(self);
  TickState& t = *self->tick;
  if (!t.running || t.id != id) {
    tunlock(self);
    gst_object_unref(self);
    return TRUE;
  }
  /* Copied under the tick lock: setters that move the capacity hold it,
   * so a tick never decides on values they are changing. */
  GST_OBJECT_LOCK(self);
  const Settings settings = *self->settings;
  GST_OBJECT_UNLOCK(self);
  /* The next tick is due one interval after this one was, so ticks do not
   * drift by the callback's delay; one that is late starts from now, with
   * no catch-up burst. */
  GstClock* clock = gst_system_clock_obtain();
  const GstClockTime now = gst_clock_get_time(clock);
  gst_object_unref(clock);
  t.last_tick_at = t.due_at;
  out = run_tick_tlocked(self, settings);
  schedule_tick_tlocked(self, std::max(now, t.last_tick_at + settings.interval));
  tunlock(self);

  if (!out.load_warning.empty())
    GST_ELEMENT_WARNING(self, RESOURCE, READ, ("Cannot read system load, adaptation paused"),
                        ("%s", out.load_warning.c_str()));
  if (out.adaptation)
    gst_element_post_message(GST_ELEMENT_CAST(self), out.adaptation);
  if (out.latency_changed)
    gst_element_post_message(GST_ELEMENT_CAST(self),
                             gst_message_new_latency(GST_OBJECT_CAST(self)));
  gst_object_unref(self);
  return TRUE;
}

static void free_weak_ref(gpointer data) {
  auto* ref = static_cast<GWeakRef*>(data);
  g_weak_ref_clear(ref);
  g_free(ref);
}

/* Schedules the next tick at `at` on the system clock, replacing any. */
static void schedule_tick_tlocked(GstAdaptiveQueue* self, GstClockTime at) {
  TickState& t = *self->tick;
  GstClock* clock = gst_system_clock_obtain();
  if (t.id) {
    gst_clock_id_unschedule(t.id);
    gst_clock_id_unref(t.id);
  }
  t.id = gst_clock_new_single_shot_id(clock, at);
  t.due_at = at;
  /* A weak reference: an unscheduled wait is released by the clock's
   * thread some time later, and must not keep the element alive till then. */
  GWeakRef* ref = g_new0(GWeakRef, 1);
  g_weak_ref_init(ref, self);
  gst_clock_id_wait_async(t.id, on_tick, ref, free_weak_ref);
  gst_object_unref(clock);
}

void start_ticks(GstAdaptiveQueue* self) {
  GST_OBJECT_LOCK(self);
  const Settings settings = *self->settings;
  GST_OBJECT_UNLOCK(self);

  tlock(self);
  TickState& t = *self->tick;
  t.running = true;
  /* Subscribing now gives the sampler an interval to take its first two
   * readings before the first tick. */
  qlock(self);
  const bool adaptive = self->q->adaptive;
  qunlock(self);
  if (adaptive)
    ensure_subscription_tlocked(self, settings);
  GstClock* clock = gst_system_clock_obtain();
  t.last_tick_at = gst_clock_get_time(clock);
  gst_object_unref(clock);
  schedule_tick_tlocked(self, t.last_tick_at + settings.interval);
  tunlock(self);
  /* A problem found while the element had no bus is told now. */
  post_config_problem(self);
}

/* A new interval applies to the pending tick at once: it fires one new
 * interval after the last tick, or now if that is past. */
void reschedule_tick(GstAdaptiveQueue* self) {
  GST_OBJECT_LOCK(self);
  const guint64 interval = self->settings->interval;
  GST_OBJECT_UNLOCK(self);

  tlock(self);
  TickState& t = *self->tick;
  if (t.running) {
    GstClock* clock = gst_system_clock_obtain();
    const GstClockTime now = gst_clock_get_time(clock);
    gst_object_unref(clock);
    schedule_tick_tlocked(self, std::max(now, t.last_tick_at + interval));
    if (t.subscription)
      t.subscription->set_interval(static_cast<int64_t>(interval));
  }
  tunlock(self);
}

void stop_ticks(GstAdaptiveQueue* self) {
  std::unique_ptr<aq::SharedSampler::Subscription> subscription;
  tlock(self);
  TickState& t = *self->tick;
  t.running = false;
  if (t.id) {
    gst_clock_id_unschedule(t.id);
    gst_clock_id_unref(t.id);
    t.id = nullptr;
  }
  subscription = std::move(t.subscription);
  tunlock(self);
  /* The last subscription joins the sampler thread: do it unlocked. */
}

/* ---- stats ---- */

aq::LoadScope current_load_scope(GstAdaptiveQueue* self) {
  tlock(self);
  const std::optional<aq::LoadSource> source = self->tick->last_source;
  tunlock(self);
  if (source)
    return source->choice.scope;
  GST_OBJECT_LOCK(self);
  const Settings s = *self->settings;
  GST_OBJECT_UNLOCK(self);
  /* Reads the files: only when asked, never on a streaming thread. */
  return aq::resolve_scope(s.scope, s.proc_root, s.cgroup_root).scope;
}

GstStructure* build_stats(GstAdaptiveQueue* self) {
  tlock(self);
  const TickState& t = *self->tick;
  qlock(self);
  const QueueState& q = *self->q;
  const Level cur = level_of(q);
  const aq::LoadSample load = t.last_sample.value_or(aq::LoadSample{});
  const aq::LoadSource source = t.last_source.value_or(aq::LoadSource{});
  // One field per line: clang-format would run them together.
  // clang-format off
  GstStructure* st = gst_structure_new(STATS_STRUCTURE,
      "capacity", G_TYPE_UINT, q.max.buffers,
      "current-level-buffers", G_TYPE_UINT, cur.buffers,
      "current-level-bytes", G_TYPE_UINT, cur.bytes,
      "current-level-time", G_TYPE_UINT64, cur.time,
      "max-level-buffers", G_TYPE_UINT, std::max(q.max_level_buffers, cur.buffers),
      "demand-floor", G_TYPE_UINT, q.demand_floor,
      "upstream-live", G_TYPE_BOOLEAN, q.upstream_latency.live,
      "upstream-min-latency", G_TYPE_UINT64, q.upstream_latency.known ?
          q.upstream_latency.min : G_GUINT64_CONSTANT(0),
      "latency-average", G_TYPE_INT64, q.latency.average().value_or(-1),
      "latency-max", G_TYPE_INT64, q.interval_latency_max.value_or(-1),
      "latency-samples", G_TYPE_UINT64, q.latency.count(),
      "load-valid", G_TYPE_BOOLEAN, t.last_sample.has_value(),
      "load-scope", G_TYPE_STRING, t.last_source ?
          aq::scope_name(source.choice.scope) : "none",
      "load-scope-reason", G_TYPE_STRING, source.choice.reason.c_str(),
      "load-detail", G_TYPE_STRING, source.detail.c_str(),
      "throttled-periods", G_TYPE_UINT64, source.nr_throttled.value_or(0),
      "cpu-percent", G_TYPE_DOUBLE, load.cpu_percent,
      "mem-percent", G_TYPE_DOUBLE, load.mem_percent,
      "cpu-factor", G_TYPE_DOUBLE, t.last_decision.cpu_factor,
      "mem-factor", G_TYPE_DOUBLE, t.last_decision.mem_factor,
      "latency-factor", G_TYPE_DOUBLE, t.last_decision.latency_factor,
      "combined-factor", G_TYPE_DOUBLE, t.last_decision.combined,
      "adaptations", G_TYPE_UINT64, q.adapter.adaptations(),
      "overrun-growths", G_TYPE_UINT64, q.adapter.overrun_growths(),
      "trim-keep", G_TYPE_UINT, q.trimmer.keep(),
      "trims", G_TYPE_UINT64, q.trimmer.trims(),
      "trimmed-buffers", G_TYPE_UINT64, q.trimmer.trimmed_buffers(),
      "ticks", G_TYPE_UINT64, t.ticks,
      "skipped-ticks", G_TYPE_UINT64, t.skipped_ticks,
      "drops", G_TYPE_UINT64, q.drops,
      "overruns", G_TYPE_UINT64, q.overruns,
      "underruns", G_TYPE_UINT64, q.underruns,
      "buffers-pushed", G_TYPE_UINT64, q.pushed, nullptr);
  // clang-format on
  qunlock(self);
  tunlock(self);
  return st;
}

}  // namespace aq::element
