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
 * thread (locked or not), the src side needs the queue lock. */

/* Publishes one side's running time, from which the time level follows. */
void update_running_time(QueueState& q, bool sink) {
  const GstSegment& segment = sink ? q.sink_segment : q.src_segment;
  (sink ? q.sink_rt : q.src_rt)
      .store(segment_running_time(&segment, segment.position), std::memory_order_release);
  /* The src side moves under the lock; upstream's buffers void it by count. */
  if (!sink)
    q.time_zeroed_at.store(G_MAXUINT64, std::memory_order_relaxed);
}

/* Under the lock: upstream's events move its running time. */
void time_level_moved_qlocked(QueueState& q) {
  q.time_zeroed_at.store(G_MAXUINT64, std::memory_order_relaxed);
}

/* The task, under the lock, after a removal: with no buffer left the time
 * level reads 0, as on queue. */
void zero_time_level_if_empty_qlocked(QueueState& q) {
  const guint64 in = q.in_buffers.load(std::memory_order_acquire);
  if (in == q.out_buffers.load(std::memory_order_relaxed))
    q.time_zeroed_at.store(in, std::memory_order_relaxed);
}

void set_position(QueueState& q, bool sink, GstClockTime position) {
  GstSegment& segment = sink ? q.sink_segment : q.src_segment;
  segment.position = position;
  update_running_time(q, sink);
}

/* Advances a segment position past a buffer; a buffer without timestamp
 * continues from the previous position. */
void apply_buffer(QueueState& q, GstBuffer* buffer, bool sink) {
  GstSegment& segment = sink ? q.sink_segment : q.src_segment;
  GstClockTime ts = GST_BUFFER_DTS_OR_PTS(buffer);
  if (!GST_CLOCK_TIME_IS_VALID(ts))
    ts = segment.position;
  if (GST_BUFFER_DURATION_IS_VALID(buffer) && GST_CLOCK_TIME_IS_VALID(ts))
    ts += GST_BUFFER_DURATION(buffer);
  set_position(q, sink, ts);
}

void apply_buffer_list(QueueState& q, GstBufferList* list, bool sink) {
  GstSegment& segment = sink ? q.sink_segment : q.src_segment;
  GstClockTime ts = segment.position;
  guint n = gst_buffer_list_length(list);
  for (guint i = 0; i < n; i++) {
    GstBuffer* b = gst_buffer_list_get(list, i);
    GstClockTime bts = GST_BUFFER_DTS_OR_PTS(b);
    if (GST_CLOCK_TIME_IS_VALID(bts))
      ts = bts;
    if (GST_BUFFER_DURATION_IS_VALID(b) && GST_CLOCK_TIME_IS_VALID(ts))
      ts += GST_BUFFER_DURATION(b);
  }
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
  update_running_time(q, sink);
  time_level_moved_qlocked(q);
}

void apply_gap(QueueState& q, GstEvent* event, bool sink) {
  GstClockTime ts, duration;
  gst_event_parse_gap(event, &ts, &duration);
  if (!GST_CLOCK_TIME_IS_VALID(ts))
    return;
  if (GST_CLOCK_TIME_IS_VALID(duration))
    ts += duration;
  set_position(q, sink, ts);
  time_level_moved_qlocked(q);
}

}  // namespace aq::element
