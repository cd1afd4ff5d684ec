/* adaptivequeue levels: what the queue holds, in buffers, bytes and time,
 * from both sides' segments and running times as queue keeps them, and the
 * level notifications of notify-levels.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstadaptivequeue-handoff.h"

#define GST_CAT_DEFAULT adaptive_queue_debug

namespace aq::element {

/* ---- levels ---- */

bool is_filled_qlocked(const QueueState& q) {
  return fills(level_of(q), q.max.buffers, q.max.bytes, q.max.time);
}

bool is_empty_qlocked(QueueState& q) {
  if (q.items.empty())
    return true;
  /* As on queue, min thresholds hold items back only while data is at the
   * tail: an event or query queued last drains all before it, so a waiting
   * query is never stuck behind them. */
  if (q.items.published() == q.control_tail || q.queued_queries > 0)
    return false;
  const Level& t = q.min_threshold;
  if (t.buffers == 0 && t.bytes == 0 && t.time == 0)
    return false;
  const Level cur = level_of(q);
  const bool below_threshold =
      (q.min_threshold.buffers > 0 && cur.buffers < q.min_threshold.buffers) ||
      (q.min_threshold.bytes > 0 && cur.bytes < q.min_threshold.bytes) ||
      (q.min_threshold.time > 0 && cur.time < q.min_threshold.time);
  /* A max limit can be hit before the min thresholds are. */
  return below_threshold && !is_filled_qlocked(q);
}

/* ---- notify-levels ---- */

/* As queue >= 1.26: with notify-levels, a streaming thread that changed a
 * level notifies it once it has released the lock, never under it. Each
 * level is compared with the one last notified, so a change is notified
 * once whichever thread sees it first. */
/* Which levels changed since the last notify, taking them as notified. */
unsigned levels_to_notify_qlocked(QueueState& q) {
  if (!q.notify_levels)
    return 0;
  const Level now = level_of(q);
  const Level& last = q.notified_level;
  const unsigned changed = (now.buffers != last.buffers ? LEVEL_BUFFERS : 0) |
                           (now.bytes != last.bytes ? LEVEL_BYTES : 0) |
                           (now.time != last.time ? LEVEL_TIME : 0);
  q.notified_level = now;
  return changed;
}

/* No lock held. */
void notify_levels(GstAdaptiveQueue* self, unsigned changed) {
  if (changed & LEVEL_BUFFERS)
    g_object_notify(G_OBJECT(self), "current-level-buffers");
  if (changed & LEVEL_BYTES)
    g_object_notify(G_OBJECT(self), "current-level-bytes");
  if (changed & LEVEL_TIME)
    g_object_notify(G_OBJECT(self), "current-level-time");
}

/* Notifies `changed`, releasing the lock only if there is any; false if
 * flushing after. */
bool notify_levels_releasing_qlock(GstAdaptiveQueue* self, unsigned changed) {
  if (!changed)
    return true;
  qunlock(self);
  notify_levels(self, changed);
  qlock(self);
  return self->q->srcresult == GST_FLOW_OK;
}

gint64 segment_running_time(const GstSegment* segment, GstClockTime position) {
  if (!GST_CLOCK_TIME_IS_VALID(position))
    return GST_CLOCK_STIME_NONE;
  /* Reverse playback needs a stop (GStreamer asserts it); a non-TIME segment
   * tracked as an open TIME segment has none. */
  if (segment->rate < 0.0 && !GST_CLOCK_TIME_IS_VALID(segment->stop))
    return GST_CLOCK_STIME_NONE;
  guint64 rt = 0;
  int sign = gst_segment_to_running_time_full(segment, GST_FORMAT_TIME, position, &rt);
  /* Saturate to +-(2^63 - 1): a wider value would wrap, and -2^63 is
   * GST_CLOCK_STIME_NONE. */
  const gint64 magnitude = rt > G_MAXINT64 ? G_MAXINT64 : static_cast<gint64>(rt);
  if (sign > 0)
    return magnitude;
  if (sign < 0)
    return -magnitude;
  return GST_CLOCK_STIME_NONE;
}

/* The segments and positions below: the sink side belongs to upstream's
 * thread (locked or not), the src side needs the queue lock.
 *
 * queue 1.22 computes a side's running time anew at each of its buffers,
 * lists, GAPs and SEGMENTs; a buffer without timestamp continues from the
 * previous position, and both sides start at running time 0. Since 1.24
 * only a timestamp moves it (a buffer, list or GAP with one), both sides
 * start with none, and until a buffer with a timestamp has left the level
 * counts from the first one upstream sent (sink_start_rt; see level_of()). */

/* Publishes one side's running time, from which the time level follows. */
static void update_running_time(QueueState& q, bool sink) {
  const GstSegment& segment = sink ? q.sink_segment : q.src_segment;
  const gint64 rt = segment_running_time(&segment, segment.position);
  if (sink) {
    q.sink_rt.store(rt, std::memory_order_release);
    /* After the store: a reader that sees the bump sees the new time. */
    q.sink_moves.store(q.sink_moves.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  } else {
    q.src_rt.store(rt, std::memory_order_release);
    q.time_zeroed_at.store(G_MAXUINT64, std::memory_order_relaxed);
  }
}

/* queue >= 1.24: the first timestamp upstream sends after a flush starts
 * the time level. Before the position moves, as queue does. */
static void note_sink_start(QueueState& q, const GstSegment& segment, GstClockTime timestamp) {
  if (!queue_times_from_first_buffer() ||
      GST_CLOCK_STIME_IS_VALID(q.sink_start_rt.load(std::memory_order_relaxed)))
    return;
  q.sink_start_rt.store(segment_running_time(&segment, timestamp), std::memory_order_release);
}

static void set_position(QueueState& q, bool sink, GstClockTime position) {
  GstSegment& segment = sink ? q.sink_segment : q.src_segment;
  segment.position = position;
  update_running_time(q, sink);
}

void reset_running_times(QueueState& q) {
  q.sink_start_rt.store(GST_CLOCK_STIME_NONE, std::memory_order_relaxed);
  if (queue_times_from_first_buffer()) {
    q.sink_rt.store(GST_CLOCK_STIME_NONE, std::memory_order_release);
    q.src_rt.store(GST_CLOCK_STIME_NONE, std::memory_order_release);
    q.time_zeroed_at.store(G_MAXUINT64, std::memory_order_relaxed);
  } else {
    /* The fresh TIME segments at 0: a buffer's time counts in the level
     * before any segment has reached the src side. */
    update_running_time(q, true);
    update_running_time(q, false);
  }
}

/* Advances a segment position past a buffer. */
void apply_buffer(QueueState& q, GstBuffer* buffer, bool sink) {
  GstSegment& segment = sink ? q.sink_segment : q.src_segment;
  GstClockTime ts = GST_BUFFER_DTS_OR_PTS(buffer);
  if (!GST_CLOCK_TIME_IS_VALID(ts)) {
    /* 1.24 leaves the position; 1.22 continues from it. */
    if (queue_times_from_first_buffer())
      return;
    ts = segment.position;
  } else if (sink) {
    note_sink_start(q, segment, ts);
  }
  if (GST_BUFFER_DURATION_IS_VALID(buffer) && GST_CLOCK_TIME_IS_VALID(ts))
    ts += GST_BUFFER_DURATION(buffer);
  set_position(q, sink, ts);
}

/* To the end of the list's last buffer with a timestamp, plus the
 * durations after it; 1.22 starts from the position, 1.24 leaves the
 * position alone when no buffer has a timestamp. */
void apply_buffer_list(QueueState& q, GstBufferList* list, bool sink) {
  GstSegment& segment = sink ? q.sink_segment : q.src_segment;
  const bool from_first = queue_times_from_first_buffer();
  GstClockTime first = GST_CLOCK_TIME_NONE;
  GstClockTime ts = from_first ? GST_CLOCK_TIME_NONE : segment.position;
  guint n = gst_buffer_list_length(list);
  for (guint i = 0; i < n; i++) {
    GstBuffer* b = gst_buffer_list_get(list, i);
    GstClockTime bts = GST_BUFFER_DTS_OR_PTS(b);
    if (GST_CLOCK_TIME_IS_VALID(bts)) {
      if (!GST_CLOCK_TIME_IS_VALID(first))
        first = bts;
      ts = bts;
    }
    if (GST_BUFFER_DURATION_IS_VALID(b) && GST_CLOCK_TIME_IS_VALID(ts))
      ts += GST_BUFFER_DURATION(b);
  }
  if (from_first && !GST_CLOCK_TIME_IS_VALID(ts))
    return;
  if (sink && GST_CLOCK_TIME_IS_VALID(first))
    note_sink_start(q, segment, first);
  set_position(q, sink, ts);
}

void apply_segment(QueueState& q, GstEvent* event, bool sink) {
  GstSegment& segment = sink ? q.sink_segment : q.src_segment;
  gst_event_copy_segment(event, &segment);
  const bool is_time = segment.format == GST_FORMAT_TIME;
  if (!is_time) {
    /* Levels are tracked in time: treat other formats as an open time
     * segment from 0, as queue does. */
    segment.format = GST_FORMAT_TIME;
    segment.start = 0;
    segment.stop = GST_CLOCK_TIME_NONE;
    segment.time = 0;
  }
  if (!sink)
    q.src_segment_is_time = is_time;
  /* Since 1.24 the next timestamp moves the running time, not the segment. */
  if (!queue_times_from_first_buffer())
    update_running_time(q, sink);
}

void apply_gap(QueueState& q, GstEvent* event, bool sink) {
  GstClockTime ts, duration;
  gst_event_parse_gap(event, &ts, &duration);
  if (!GST_CLOCK_TIME_IS_VALID(ts))
    return;
  if (sink)
    note_sink_start(q, q.sink_segment, ts);
  if (GST_CLOCK_TIME_IS_VALID(duration))
    ts += duration;
  set_position(q, sink, ts);
}

/* The task, under the lock, after a removal: with no buffer left the time
 * level reads 0, as on queue. sink_moves before in_buffers: upstream counts
 * a buffer in before it moves its running time, so a move this misses
 * comes after the count it reads. */
void zero_time_level_if_empty_qlocked(QueueState& q) {
  const guint32 moves = q.sink_moves.load(std::memory_order_acquire);
  const guint64 in = q.in_buffers.load(std::memory_order_acquire);
  if (in == q.out_buffers.load(std::memory_order_relaxed))
    q.time_zeroed_at.store(moves, std::memory_order_relaxed);
}

}  // namespace aq::element
