/* adaptivequeue dataflow: the sink pad's chain, the src pad's task, events
 * and queries. It follows queue's data flow (gstqueue.c) closely; the
 * differences are upstream's lock-free path, the hand-off between the
 * threads (gstadaptivequeue-handoff.cpp) and the adaptive capacity.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstadaptivequeue-handoff.h"

#include <algorithm>

#define GST_CAT_DEFAULT adaptive_queue_debug

namespace aq::element {

/* The task pushes this many ready items per iteration at most, so it
 * still returns to the task loop now and then. */
constexpr int PUSHES_PER_ITERATION = 64;

/* ---- the queue of the running GStreamer ---- */

/* adaptivequeue behaves like the `queue` of the GStreamer it runs on. Where
 * queue's behaviour changed between versions, the version loaded at run
 * time (gst_version(), not the headers built against) picks; this is the
 * one place that says which changes there are:
 *
 * - 1.24: when a push fails fatally (an error other than NOT_LINKED or
 *   EOS), queue drops what it still holds; 1.22 keeps it. After EOS, a new
 *   STREAM_START then starts the new stream at once on 1.24, while 1.22
 *   first drains the old stream to its EOS and answers EOS to pushes until
 *   the next SEGMENT.
 * - 1.24: current-level-time, until a buffer with a timestamp has left,
 *   counts from the running time of the first timestamp upstream sent
 *   since the last flush (1.22: from the src side's, which starts at 0), so
 *   one buffer without a duration reads 0; a buffer without a timestamp and
 *   a SEGMENT no longer move either side's running time (levels code). */
static bool running_core_at_least(guint want_major, guint want_minor) {
  guint major = 0, minor = 0, micro = 0, nano = 0;
  gst_version(&major, &minor, &micro, &nano);
  return major > want_major || (major == want_major && minor >= want_minor);
}

bool queue_drops_on_fatal_error() {
  static const bool since_1_24 = running_core_at_least(1, 24);
  return since_1_24;
}

bool queue_times_from_first_buffer() {
  static const bool since_1_24 = running_core_at_least(1, 24);
  return since_1_24;
}

static bool is_fatal(GstFlowReturn result) {
  return result < GST_FLOW_EOS && result != GST_FLOW_FLUSHING;
}

/* ---- enqueue / dequeue_qlocked ---- */

/* `restart`: the stream restarts (FLUSH_STOP, deactivation), so a push in
 * flight across it is stale; flush-on-eos is no restart. */
static void flush_qlocked(GstAdaptiveQueue* self, bool full, bool restart = true);

/* Sets DISCONT on a buffer, or on the first buffer of a list. */
static void mark_discont(GstMiniObject** obj) {
  if (GST_IS_BUFFER(*obj)) {
    GstBuffer* buffer = gst_buffer_make_writable(GST_BUFFER_CAST(*obj));
    GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_DISCONT);
    *obj = GST_MINI_OBJECT_CAST(buffer);
  } else {
    GstBufferList* list = gst_buffer_list_make_writable(GST_BUFFER_LIST_CAST(*obj));
    if (gst_buffer_list_length(list) > 0)
      GST_BUFFER_FLAG_SET(gst_buffer_list_get_writable(list, 0), GST_BUFFER_FLAG_DISCONT);
    *obj = GST_MINI_OBJECT_CAST(list);
  }
}

/* The buffer a list's timing comes from; null for an empty list. */
static GstBuffer* first_buffer(GstMiniObject* obj) {
  if (GST_IS_BUFFER(obj))
    return GST_BUFFER_CAST(obj);
  GstBufferList* list = GST_BUFFER_LIST_CAST(obj);
  return gst_buffer_list_length(list) > 0 ? gst_buffer_list_get(list, 0) : nullptr;
}

/* Upstream's thread, queue lock held: grows the ring to what the capacity
 * wants, or when events and queries (or no buffer limit) fill it. Only
 * upstream may move the ring's storage: its lock-free path writes to it. */
static void make_room_qlocked(QueueState& q) {
  if (q.items.storage() < q.want_storage)
    q.items.grow(q.want_storage);
  if (!q.items.can_push())
    q.items.grow(q.items.storage() * 2);
}

static void push_item_qlocked(QueueState& q, const Item& item) {
  make_room_qlocked(q);
  Item copy = item;
  q.items.try_push(std::move(copy));
  if (!GST_IS_BUFFER(item.object) && !GST_IS_BUFFER_LIST(item.object))
    q.control_tail = q.items.published();
}

/* Counts data in and moves the sink position; upstream's thread, with or
 * without the queue lock. */
static void account_in(QueueState& q, GstMiniObject* obj, guint buffers, guint bytes) {
  q.in_buffers.store(q.in_buffers.load(std::memory_order_relaxed) + buffers,
                     std::memory_order_release);
  q.in_bytes.store(q.in_bytes.load(std::memory_order_relaxed) + bytes, std::memory_order_release);
  GstBuffer* first = first_buffer(obj);
  if (first && GST_BUFFER_DURATION_IS_VALID(first) &&
      GST_BUFFER_DURATION(first) != q.buffer_duration.load(std::memory_order_relaxed))
    q.buffer_duration.store(GST_BUFFER_DURATION(first), std::memory_order_relaxed);
  if (GST_IS_BUFFER(obj))
    apply_buffer(q, GST_BUFFER_CAST(obj), true);
  else
    apply_buffer_list(q, GST_BUFFER_LIST_CAST(obj), true);
}

/* Queues data; returns the waiter to wake once the lock is released. */
static GCond* enqueue_data_qlocked(GstAdaptiveQueue* self, GstMiniObject* obj, guint buffers,
                                   guint bytes) {
  QueueState& q = *self->q;
  make_room_qlocked(q);
  account_in(q, obj, buffers, bytes);
  push_item_qlocked(q, Item{obj, buffers, bytes});
  q.trace.push(level_of(q).buffers);
  return note_add_qlocked(self);
}

static void enqueue_event_qlocked(GstAdaptiveQueue* self, GstEvent* event) {
  QueueState& q = *self->q;
  switch (GST_EVENT_TYPE(event)) {
    case GST_EVENT_EOS:
      q.eos = true;
      if (q.flush_on_eos) {
        flush_qlocked(self, false, false);
      } else {
        /* Drain everything: the thresholds no longer hold data back. */
        q.min_threshold = Level{};
      }
      break;
    case GST_EVENT_SEGMENT:
      apply_segment(q, event, true);
      if (q.items.empty()) {
        apply_segment(q, event, false);
        q.newseg_applied_to_src = true;
      }
      q.unexpected = false;
      break;
    case GST_EVENT_STREAM_START:
      q.unexpected = false;
      break;
    case GST_EVENT_GAP:
      apply_gap(q, event, true);
      break;
    default:
      break;
  }
  push_item_qlocked(q, Item{GST_MINI_OBJECT_CAST(event), 0, 0});
  signal_add_qlocked(self);
}

/* Answers a queued query that will never reach downstream. */
static void abandon_query_qlocked(QueueState& q, GstQuery* query, GCond* handled) {
  q.queued_queries--;
  q.last_handled_query = query;
  q.last_query = false;
  g_cond_broadcast(handled);
}

/* Takes the head item and updates the levels. Returns false when empty.
 * With `waiter`, the caller wakes it after releasing the lock. */
static bool dequeue_qlocked(GstAdaptiveQueue* self, Item& item, GCond** waiter = nullptr) {
  QueueState& q = *self->q;
  if (!q.items.pop(item))
    return false;
  /* The level with this item, before its removal is counted: upstream
   * counts an item in before it publishes it. The highest level is reached
   * just before a removal (or a flush's drop); the stats add the level
   * queued now, so no push needs to track it. */
  const guint before = buffers_of(q);
  q.max_level_buffers = std::max(q.max_level_buffers, before);
  q.trace.push(before);
  GstMiniObject* obj = item.object;
  if (GST_IS_BUFFER(obj) || GST_IS_BUFFER_LIST(obj)) {
    q.out_buffers.store(q.out_buffers.load(std::memory_order_relaxed) + item.buffers,
                        std::memory_order_release);
    q.out_bytes.store(q.out_bytes.load(std::memory_order_relaxed) + item.bytes,
                      std::memory_order_release);
    q.trace.pop(before - item.buffers);
    if (GST_IS_BUFFER(obj))
      apply_buffer(q, GST_BUFFER_CAST(obj), false);
    else
      apply_buffer_list(q, GST_BUFFER_LIST_CAST(obj), false);
    zero_time_level_if_empty_qlocked(q);
  } else if (GST_IS_EVENT(obj)) {
    GstEvent* event = GST_EVENT_CAST(obj);
    if (GST_EVENT_TYPE(event) == GST_EVENT_EOS) {
      zero_time_level_if_empty_qlocked(q);
    } else if (GST_EVENT_TYPE(event) == GST_EVENT_SEGMENT) {
      if (!q.newseg_applied_to_src)
        apply_segment(q, event, false);
      else
        q.newseg_applied_to_src = false;
    } else if (GST_EVENT_TYPE(event) == GST_EVENT_GAP) {
      apply_gap(q, event, false);
    }
  }
  if (waiter)
    *waiter = note_del_qlocked(self);
  else
    signal_del_qlocked(self);
  return true;
}

/* Drops items from the head: down to `keep` buffers when given, else until
 * a buffer fits. Sticky events are stored on the src pad so they are not
 * lost. */
void leak_downstream_qlocked(GstAdaptiveQueue* self, std::optional<guint> keep) {
  QueueState& q = *self->q;
  Item item;
  while ((keep ? level_of(q).buffers > *keep : is_filled_qlocked(q)) &&
         dequeue_qlocked(self, item)) {
    GstMiniObject* obj = item.object;
    GST_LOG_OBJECT(self, "queue is full, leaking %" GST_PTR_FORMAT, (gpointer)obj);
    if (GST_IS_QUERY(obj)) {
      abandon_query_qlocked(q, GST_QUERY_CAST(obj), &self->query_handled);
      continue;
    }
    if (GST_IS_EVENT(obj) && GST_EVENT_IS_STICKY(obj))
      gst_pad_store_sticky_event(self->srcpad, GST_EVENT_CAST(obj));
    q.drops += item.buffers;
    gst_mini_object_unref(obj);
    q.head_needs_discont = true;
  }
}

/* Drops every queued item, counting each out. The src side's part of a
 * flush: upstream may still be adding meanwhile. */
static void drop_queued_qlocked(GstAdaptiveQueue* self, bool full) {
  QueueState& q = *self->q;
  /* The lock-free path does not raise the highest level; its items leave
   * here without a removal that would. */
  q.max_level_buffers = std::max(q.max_level_buffers, buffers_of(q));
  Item item;
  while (q.items.pop(item)) {
    GstMiniObject* obj = item.object;
    if (GST_IS_QUERY(obj)) {
      abandon_query_qlocked(q, GST_QUERY_CAST(obj), &self->query_handled);
      continue;
    }
    /* Keep sticky events (not segment or EOS) across a flush. */
    if (!full && GST_IS_EVENT(obj) && GST_EVENT_IS_STICKY(obj) &&
        GST_EVENT_TYPE(obj) != GST_EVENT_SEGMENT && GST_EVENT_TYPE(obj) != GST_EVENT_EOS)
      gst_pad_store_sticky_event(self->srcpad, GST_EVENT_CAST(obj));
    q.out_buffers.store(q.out_buffers.load(std::memory_order_relaxed) + item.buffers,
                        std::memory_order_release);
    q.out_bytes.store(q.out_bytes.load(std::memory_order_relaxed) + item.bytes,
                      std::memory_order_release);
    gst_mini_object_unref(obj);
  }
  q.queued_queries = 0;
  q.last_query = false;
  g_cond_broadcast(&self->query_handled);
  q.min_threshold = q.orig_min_threshold;
  q.head_needs_discont = false;
}

static void flush_qlocked(GstAdaptiveQueue* self, bool full, bool restart) {
  QueueState& q = *self->q;
  if (restart)
    q.flushes++;
  /* Counts each item out: upstream counts an item in before it publishes
   * it, so with upstream quiet (its own FLUSH_STOP or EOS, or after
   * deactivation took its stream lock) the level reads 0 after this. */
  drop_queued_qlocked(self, full);
  q.trace.start(0);
  gst_segment_init(&q.sink_segment, GST_FORMAT_TIME);
  gst_segment_init(&q.src_segment, GST_FORMAT_TIME);
  q.src_segment_is_time = true;
  q.newseg_applied_to_src = false;
  q.head_needs_discont = q.tail_needs_discont = false;
  q.dropping_to_boundary = false;
  reset_running_times(q);
  signal_del_qlocked(self);
}

/* What downstream takes again after it returned EOS. */
static bool is_stream_boundary(GstMiniObject* obj) {
  const GstEventType type = GST_IS_EVENT(obj) ? GST_EVENT_TYPE(obj) : GST_EVENT_UNKNOWN;
  return type == GST_EVENT_EOS || type == GST_EVENT_SEGMENT || type == GST_EVENT_STREAM_START;
}

/* After downstream returned EOS: drops `item`, counting its buffers; a
 * query is answered FALSE. */
static void drop_after_downstream_eos_qlocked(GstAdaptiveQueue* self, const Item& item) {
  QueueState& q = *self->q;
  if (GST_IS_QUERY(item.object)) {
    abandon_query_qlocked(q, GST_QUERY_CAST(item.object), &self->query_handled);
  } else {
    q.drops += item.buffers; /* 0 for an event */
    gst_mini_object_unref(item.object);
  }
}

/* ---- the src pad task ---- */

/* Pushes the head item downstream. Called and returns with the lock held;
 * returns the flow result, or the flushing result when the lock check fails.
 * `changed`: the levels its removal changed, to notify after the push. */
static GstFlowReturn push_one_releasing_qlock(GstAdaptiveQueue* self, unsigned& changed) {
  QueueState& q = *self->q;
  Item item;
  GstFlowReturn result = GST_FLOW_OK;
  GCond* waiter = nullptr;

  if (!dequeue_qlocked(self, item, &waiter))
    return GST_FLOW_OK;
  /* Taken as notified now, so an item entering during the push notifies
   * its own change. */
  changed = levels_to_notify_qlocked(q);
  if (q.dropping_to_boundary) {
    /* Only data can have come in since the drop: events and queries are
     * queued and passed on after it, as queue passes them. */
    if (GST_IS_BUFFER(item.object) || GST_IS_BUFFER_LIST(item.object)) {
      drop_after_downstream_eos_qlocked(self, item);
      wake(waiter);
      return GST_FLOW_OK;
    }
    q.dropping_to_boundary = !is_stream_boundary(item.object);
  }

next:
  GstMiniObject* obj = item.object;
  if (GST_IS_BUFFER(obj) || GST_IS_BUFFER_LIST(obj)) {
    const bool is_list = GST_IS_BUFFER_LIST(obj);
    if (q.head_needs_discont) {
      mark_discont(&obj);
      q.head_needs_discont = false;
    }
    if (GstBuffer* first = first_buffer(obj))
      sample_latency_qlocked(self, first);
    q.pushed += item.buffers;
    const guint64 flushes = q.flushes;
    qunlock_and_wake(self, waiter);
    result = is_list ? gst_pad_push_list(self->srcpad, GST_BUFFER_LIST_CAST(obj))
                     : gst_pad_push(self->srcpad, GST_BUFFER_CAST(obj));
    qlock(self);
    if (q.srcresult != GST_FLOW_OK)
      return q.srcresult;
    if (q.flushes != flushes)
      return GST_FLOW_OK;
    if (result == GST_FLOW_EOS) {
      GST_DEBUG_OBJECT(self, "downstream returned EOS, dropping until a new segment");
      while (dequeue_qlocked(self, item)) {
        if (is_stream_boundary(item.object)) {
          /* The EOS was the dropped buffer's, not this event's. */
          result = GST_FLOW_OK;
          goto next;
        }
        drop_after_downstream_eos_qlocked(self, item);
      }
      /* Refuse buffers at the sink pad until a new segment arrives, but keep
       * the task running so that EOS and SEGMENT still pass. */
      q.unexpected = true;
      q.dropping_to_boundary = true;
      result = GST_FLOW_OK;
    }
  } else if (GST_IS_EVENT(obj)) {
    GstEvent* event = GST_EVENT_CAST(obj);
    const GstEventType type = GST_EVENT_TYPE(event);
    const guint64 flushes = q.flushes;
    qunlock_and_wake(self, waiter);
    gst_pad_push_event(self->srcpad, event);
    qlock(self);
    if (q.srcresult != GST_FLOW_OK)
      return q.srcresult;
    /* Flushed meanwhile: an EOS of the old stream must not end the new one. */
    if (q.flushes != flushes)
      return GST_FLOW_OK;
    /* Pause after EOS only when nothing follows it: a new stream
     * (STREAM_START or SEGMENT after EOS) may already be queued behind. */
    if (type == GST_EVENT_EOS && q.items.empty())
      result = GST_FLOW_EOS;
  } else if (GST_IS_QUERY(obj)) {
    GstQuery* query = GST_QUERY_CAST(obj);
    q.query_in_flight = query;
    qunlock_and_wake(self, waiter);
    const bool answered = gst_pad_peer_query(self->srcpad, query);
    qlock(self);
    q.query_in_flight = nullptr;
    q.queued_queries--;
    q.last_query = answered;
    q.last_handled_query = query;
    g_cond_broadcast(&self->query_handled);
    if (q.srcresult != GST_FLOW_OK)
      return q.srcresult;
  }
  wake(waiter); /* no branch above released the lock */
  return result;
}

static void loop(GstPad* pad) {
  auto* self = GST_ADAPTIVE_QUEUE(GST_PAD_PARENT(pad));
  QueueState& q = *self->q;
  GstFlowReturn ret;

  qlock(self);
  if (q.srcresult != GST_FLOW_OK)
    goto out_flushing;

  if (is_empty_qlocked(q) && yield_for_batch_releasing_qlock(self) && q.srcresult != GST_FLOW_OK)
    goto out_flushing;
  while (is_empty_qlocked(q)) {
    q.underruns++;
    if (!q.silent && !emit_releasing_qlock(self, SIGNAL_UNDERRUN))
      goto out_flushing;
    /* A handler may have changed the thresholds. */
    while (is_empty_qlocked(q)) {
      if (!wait_add_releasing_qlock(self))
        goto out_flushing;
    }
    if (!q.silent && (!emit_releasing_qlock(self, SIGNAL_RUNNING) ||
                      !emit_releasing_qlock(self, SIGNAL_PUSHING)))
      goto out_flushing;
  }

  /* Keep pushing while data is ready: one lock round and one task
   * iteration fewer per item. Bounded so the task still cycles. */
  for (int n = 1;; n++) {
    unsigned changed = 0;
    ret = push_one_releasing_qlock(self, changed);
    if (q.srcresult != GST_FLOW_OK)
      goto out_flushing;
    q.srcresult = ret;
    if (ret != GST_FLOW_OK)
      goto out_flushing;
    /* After the push, as queue; with what dropping after EOS removed. */
    changed |= levels_to_notify_qlocked(q);
    if (!notify_levels_releasing_qlock(self, changed))
      goto out_flushing;
    if (n == PUSHES_PER_ITERATION || is_empty_qlocked(q))
      break;
  }
  qunlock(self);
  return;

out_flushing : {
  const bool eos = q.eos;
  const GstFlowReturn result = q.srcresult;
  GST_DEBUG_OBJECT(self, "pausing task, reason %s", gst_flow_get_name(result));
  gst_pad_pause_task(self->srcpad);
  /* Flushing, what is queued will never go: drop it now, as queue does.
   * Upstream's side is reset by its FLUSH_STOP; the time level reads 0. */
  if (result == GST_FLOW_FLUSHING) {
    drop_queued_qlocked(self, false);
    q.src_rt.store(q.sink_rt.load(std::memory_order_acquire), std::memory_order_release);
  }
  /* queue >= 1.24 drops what it holds on a fatal error. Only after EOS
   * here: upstream is quiet then, as a flush needs (before EOS, upstream's
   * lock-free path may be adding an item this very moment). */
  if (eos && is_fatal(result) && queue_drops_on_fatal_error())
    flush_qlocked(self, false);
  wake_all_qlocked(self);
  qunlock(self);
  /* Upstream has finished, so nobody else will report the error. */
  if (eos && (result == GST_FLOW_NOT_LINKED || result < GST_FLOW_EOS)) {
    GST_ELEMENT_FLOW_ERROR(self, result);
    gst_pad_push_event(self->srcpad, gst_event_new_eos());
  }
}
}

/* ---- sink pad ---- */

static GstFlowReturn chain_data(GstAdaptiveQueue* self, GstMiniObject* obj, guint buffers,
                                guint bytes) {
  QueueState& q = *self->q;
  GstFlowReturn ret;
  GCond* waiter;
  unsigned changed = 0;
  /* An overrun growth's adaptation message, posted once unlocked. */
  GstMessage* grown = nullptr;

  if (fast_path_open_unlocked(self)) {
    /* Counted before it is published, so a level never misses a visible item. */
    account_in(q, obj, buffers, bytes);
    publish_unlocked(self, Item{obj, buffers, bytes});
    return GST_FLOW_OK;
  }

  qlock(self);
  if (q.srcresult != GST_FLOW_OK)
    goto out_flushing;
  if (q.eos || q.unexpected) {
    ret = GST_FLOW_EOS;
    goto out_unref;
  }

  while (is_filled_qlocked(q)) {
    q.overruns++;
    /* With a live upstream, a blocked push loses data at the source:
     * grow at once rather than block or drop. */
    if (!grown && (grown = grow_on_overrun_qlocked(self)) && !is_filled_qlocked(q))
      break;
    if (!q.silent && !emit_releasing_qlock(self, SIGNAL_OVERRUN))
      goto out_flushing;
    /* A handler may have changed the limits. */
    if (!is_filled_qlocked(q))
      break;
    if (q.leaky == GST_ADAPTIVE_QUEUE_LEAK_UPSTREAM) {
      GST_LOG_OBJECT(self, "queue is full, leaking incoming %" GST_PTR_FORMAT, (gpointer)obj);
      q.tail_needs_discont = true;
      q.drops += buffers;
      ret = GST_FLOW_OK;
      goto out_unref;
    }
    if (q.leaky == GST_ADAPTIVE_QUEUE_LEAK_DOWNSTREAM) {
      leak_downstream_qlocked(self);
      /* queue notifies the drop at once unless silent. */
      if (!q.silent && !notify_levels_releasing_qlock(self, levels_to_notify_qlocked(q)))
        goto out_flushing;
      continue;
    }
    do {
      if (!wait_del_releasing_qlock(self))
        goto out_flushing;
    } while (is_filled_qlocked(q));
    if (!q.silent && !emit_releasing_qlock(self, SIGNAL_RUNNING))
      goto out_flushing;
  }

  if (q.tail_needs_discont) {
    mark_discont(&obj);
    q.tail_needs_discont = false;
  }
  waiter = enqueue_data_qlocked(self, obj, buffers, bytes);
  changed = levels_to_notify_qlocked(q);
  qunlock(self);
  wake(waiter);
  notify_levels(self, changed);
  if (grown)
    gst_element_post_message(GST_ELEMENT_CAST(self), grown);
  return GST_FLOW_OK;

out_flushing:
  ret = q.srcresult;
  GST_LOG_OBJECT(self, "refusing data, task paused: %s", gst_flow_get_name(ret));
out_unref:
  changed = levels_to_notify_qlocked(q);
  qunlock(self);
  notify_levels(self, changed);
  gst_mini_object_unref(obj);
  if (grown)
    gst_element_post_message(GST_ELEMENT_CAST(self), grown);
  return ret;
}

static GstFlowReturn sink_chain(GstPad*, GstObject* parent, GstBuffer* buffer) {
  return chain_data(GST_ADAPTIVE_QUEUE(parent), GST_MINI_OBJECT_CAST(buffer), 1,
                    static_cast<guint>(gst_buffer_get_size(buffer)));
}

static GstFlowReturn sink_chain_list(GstPad*, GstObject* parent, GstBufferList* list) {
  return chain_data(GST_ADAPTIVE_QUEUE(parent), GST_MINI_OBJECT_CAST(list),
                    gst_buffer_list_length(list),
                    static_cast<guint>(gst_buffer_list_calculate_size(list)));
}

/* A full event function, as queue's: a refused event returns the flow that
 * refused it, which upstream's pad acts on (a sticky EOS refused for a
 * fatal flow is not sent again). */
static GstFlowReturn sink_event(GstPad* pad, GstObject* parent, GstEvent* event) {
  auto* self = GST_ADAPTIVE_QUEUE(parent);
  QueueState& q = *self->q;

  switch (GST_EVENT_TYPE(event)) {
    case GST_EVENT_FLUSH_START: {
      const gboolean res = gst_pad_push_event(self->srcpad, event);
      qlock(self);
      q.srcresult = GST_FLOW_FLUSHING;
      q.last_query = false;
      wake_all_qlocked(self);
      qunlock(self);
      /* Downstream is flushing too, so the task returns promptly. */
      gst_pad_pause_task(self->srcpad);
      return res ? GST_FLOW_OK : GST_FLOW_ERROR;
    }
    case GST_EVENT_FLUSH_STOP: {
      gboolean res = gst_pad_push_event(self->srcpad, event);
      qlock(self);
      flush_qlocked(self, false);
      q.srcresult = GST_FLOW_OK;
      q.eos = false;
      q.unexpected = false;
      if (gst_pad_is_active(self->srcpad))
        gst_pad_start_task(self->srcpad, (GstTaskFunction)loop, self->srcpad, nullptr);
      qunlock(self);
      return res ? GST_FLOW_OK : GST_FLOW_ERROR;
    }
    default:
      break;
  }

  if (!GST_EVENT_IS_SERIALIZED(event))
    return gst_pad_push_event(self->srcpad, event) ? GST_FLOW_OK : GST_FLOW_ERROR;

  qlock(self);
  /* STREAM_START and SEGMENT end an EOS: a new stream may follow. */
  const bool new_stream =
      GST_EVENT_TYPE(event) == GST_EVENT_STREAM_START || GST_EVENT_TYPE(event) == GST_EVENT_SEGMENT;
  if (new_stream && q.srcresult == GST_FLOW_EOS)
    q.srcresult = GST_FLOW_OK;
  if (q.srcresult != GST_FLOW_OK) {
    const GstFlowReturn result = q.srcresult;
    /* Sticky events are kept for when data flows again; EOS that no data
     * follows reports the error now. */
    if (!GST_EVENT_IS_STICKY(event) || GST_EVENT_TYPE(event) == GST_EVENT_EOS) {
      qunlock(self);
      if (GST_EVENT_TYPE(event) == GST_EVENT_EOS &&
          (result == GST_FLOW_NOT_LINKED || result < GST_FLOW_EOS))
        GST_ELEMENT_FLOW_ERROR(self, result);
      GST_LOG_OBJECT(pad, "refusing %" GST_PTR_FORMAT ": %s", (gpointer)event,
                     gst_flow_get_name(result));
      gst_event_unref(event);
      return result;
    }
  }
  if (q.eos && !new_stream) {
    qunlock(self);
    GST_LOG_OBJECT(pad, "refusing %" GST_PTR_FORMAT " after EOS", (gpointer)event);
    gst_event_unref(event);
    return GST_FLOW_EOS;
  }
  if (q.eos && GST_EVENT_TYPE(event) == GST_EVENT_STREAM_START && is_fatal(q.srcresult) &&
      !queue_drops_on_fatal_error()) {
    /* queue 1.22 kept the old stream after the fatal error: restarted, it
     * drops its buffers (downstream has had EOS), pauses on its EOS and
     * answers EOS to pushes until the next SEGMENT restarts it. Dropped
     * here at once, with the same result. */
    Item item;
    while (dequeue_qlocked(self, item)) {
      GstMiniObject* obj = item.object;
      const bool old_eos = GST_IS_EVENT(obj) && GST_EVENT_TYPE(obj) == GST_EVENT_EOS;
      if (GST_IS_QUERY(obj)) {
        abandon_query_qlocked(q, GST_QUERY_CAST(obj), &self->query_handled);
      } else {
        q.drops += item.buffers;
        gst_mini_object_unref(obj);
      }
      if (old_eos)
        break;
    }
    q.srcresult = GST_FLOW_EOS;
    enqueue_event_qlocked(self, event);
    qunlock(self);
    return GST_FLOW_OK;
  }
  if (q.eos) {
    /* The task paused after EOS: restart it for the new stream, as queue
     * does, even when it paused on a fatal error. Downstream has had EOS
     * then, so what is still queued of the old stream is dropped. */
    q.eos = false;
    q.unexpected = false;
    if (GST_PAD_MODE(self->srcpad) == GST_PAD_MODE_PUSH) {
      q.srcresult = GST_FLOW_OK;
      gst_pad_start_task(self->srcpad, (GstTaskFunction)loop, self->srcpad, nullptr);
    }
  }
  enqueue_event_qlocked(self, event);
  /* A SEGMENT or GAP moves the time level; EOS with flush-on-eos all. */
  const unsigned changed = levels_to_notify_qlocked(q);
  qunlock(self);
  notify_levels(self, changed);
  return GST_FLOW_OK;
}

/* Takes a query its caller gives up on out of the ring, keeping the order
 * of the rest: once the caller returns, the query may be freed, so nothing
 * may push, flush or even inspect it later. */
static void forget_query_qlocked(QueueState& q, GstQuery* query) {
  const size_t n = q.items.size();
  for (size_t i = 0; i < n; i++) {
    Item item;
    q.items.pop(item);
    if (item.object == GST_MINI_OBJECT_CAST(query)) {
      q.queued_queries--;
    } else {
      const bool data = GST_IS_BUFFER(item.object) || GST_IS_BUFFER_LIST(item.object);
      q.items.try_push(std::move(item)); /* the pop made room */
      /* The tail moved: mark it again if it is no data. */
      if (!data)
        q.control_tail = q.items.published();
    }
  }
}

static gboolean sink_query(GstPad* pad, GstObject* parent, GstQuery* query) {
  auto* self = GST_ADAPTIVE_QUEUE(parent);
  QueueState& q = *self->q;

  if (!GST_QUERY_IS_SERIALIZED(query))
    return gst_pad_query_default(pad, parent, query);

  /* Serialized queries wait their turn behind the data, but never for
   * space: they do not count towards the limits. */
  qlock(self);
  if (q.srcresult != GST_FLOW_OK) {
    qunlock(self);
    return FALSE;
  }
  GST_LOG_OBJECT(pad, "queuing %" GST_PTR_FORMAT, (gpointer)query);
  push_item_qlocked(q, Item{GST_MINI_OBJECT_CAST(query), 0, 0});
  q.queued_queries++;
  signal_add_qlocked(self);
  /* Stop waiting when the task stops, but never while it still holds the
   * query: the caller frees it once we return. */
  while (q.last_handled_query != query &&
         (q.srcresult == GST_FLOW_OK || q.query_in_flight == query))
    qwait(self, &self->query_handled);
  const bool handled = q.last_handled_query == query;
  if (handled)
    q.last_handled_query = nullptr;
  else
    forget_query_qlocked(q, query);
  const gboolean res = handled && q.last_query;
  qunlock(self);
  return res;
}

static gboolean sink_activate_mode(GstPad* pad, GstObject* parent, GstPadMode mode,
                                   gboolean active) {
  auto* self = GST_ADAPTIVE_QUEUE(parent);
  QueueState& q = *self->q;
  if (mode != GST_PAD_MODE_PUSH)
    return FALSE;
  if (active) {
    qlock(self);
    q.srcresult = GST_FLOW_OK;
    q.eos = false;
    q.unexpected = false;
    qunlock(self);
    return TRUE;
  }
  qlock(self);
  q.srcresult = GST_FLOW_FLUSHING;
  wake_all_qlocked(self);
  qunlock(self);
  /* Wait for the chain function to leave before dropping everything. */
  GST_PAD_STREAM_LOCK(pad);
  qlock(self);
  flush_qlocked(self, true);
  qunlock(self);
  GST_PAD_STREAM_UNLOCK(pad);
  return TRUE;
}

/* ---- src pad ---- */

static gboolean src_activate_mode(GstPad* pad, GstObject* parent, GstPadMode mode,
                                  gboolean active) {
  auto* self = GST_ADAPTIVE_QUEUE(parent);
  QueueState& q = *self->q;
  if (mode != GST_PAD_MODE_PUSH)
    return FALSE;
  if (active)
    q.spin.store(several_cpus_allowed(), std::memory_order_relaxed);
  qlock(self);
  if (active) {
    /* A new start: upstream's latency is asked again. */
    q.upstream_latency = LatencyAnswer{};
    q.srcresult = GST_FLOW_OK;
    q.eos = false;
    q.unexpected = false;
    gboolean started = gst_pad_start_task(pad, (GstTaskFunction)loop, pad, nullptr);
    qunlock(self);
    return started;
  }
  q.srcresult = GST_FLOW_FLUSHING;
  wake_all_qlocked(self);
  qunlock(self);
  return gst_pad_stop_task(pad);
}

static gboolean src_event(GstPad* pad, GstObject* parent, GstEvent* event) {
  auto* self = GST_ADAPTIVE_QUEUE(parent);
  if (GST_EVENT_TYPE(event) == GST_EVENT_RECONFIGURE) {
    qlock(self);
    /* Downstream may be linked again: try pushing once more. */
    if (self->q->srcresult == GST_FLOW_NOT_LINKED) {
      self->q->srcresult = GST_FLOW_OK;
      gst_pad_start_task(pad, (GstTaskFunction)loop, pad, nullptr);
    }
    qunlock(self);
  } else if (GST_EVENT_TYPE(event) == GST_EVENT_LATENCY) {
    GstClockTime latency;
    gst_event_parse_latency(event, &latency);
    qlock(self);
    self->q->configured_latency = latency;
    qunlock(self);
  }
  return gst_pad_push_event(self->sinkpad, event);
}

static gboolean src_query(GstPad* pad, GstObject* parent, GstQuery* query) {
  auto* self = GST_ADAPTIVE_QUEUE(parent);
  QueueState& q = *self->q;

  /* As queue: the task pushes, so downstream may only push; upstream's
   * modes and flags (pull, seekable) do not apply here. */
  if (GST_QUERY_TYPE(query) == GST_QUERY_SCHEDULING) {
    gst_query_add_scheduling_mode(query, GST_PAD_MODE_PUSH);
    return TRUE;
  }
  if (!gst_pad_query_default(pad, parent, query))
    return FALSE;

  switch (GST_QUERY_TYPE(query)) {
    case GST_QUERY_POSITION: {
      GstFormat format;
      gint64 pos;
      gst_query_parse_position(query, &format, &pos);
      if (pos < 0 || (format != GST_FORMAT_BYTES && format != GST_FORMAT_TIME))
        break;
      qlock(self);
      /* Upstream is ahead of us by what we hold. */
      const Level cur = level_of(q);
      const gint64 held = format == GST_FORMAT_BYTES ? cur.bytes : static_cast<gint64>(cur.time);
      qunlock(self);
      gst_query_set_position(query, format, std::max<gint64>(0, pos - held));
      break;
    }
    case GST_QUERY_LATENCY: {
      LatencyAnswer upstream;
      gboolean live;
      gst_query_parse_latency(query, &live, &upstream.min, &upstream.max);
      upstream.known = true;
      upstream.live = live;
      qlock(self);
      q.upstream_latency = upstream;
      const LatencyAnswer answer = q.reported_latency = add_own_latency_qlocked(q, upstream);
      qunlock(self);
      gst_query_set_latency(query, answer.live, answer.min, answer.max);
      break;
    }
    default:
      break;
  }
  return TRUE;
}

void drop_all_items(QueueState& q) {
  Item item;
  while (q.items.pop(item))
    if (!GST_IS_QUERY(item.object))
      gst_mini_object_unref(item.object);
}

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

void add_pad_templates(GstElementClass* element_class) {
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);
}

void add_pads(GstAdaptiveQueue* self) {
  self->sinkpad = gst_pad_new_from_static_template(&sink_template, "sink");
  gst_pad_set_chain_function(self->sinkpad, sink_chain);
  gst_pad_set_chain_list_function(self->sinkpad, sink_chain_list);
  gst_pad_set_event_full_function(self->sinkpad, sink_event);
  gst_pad_set_query_function(self->sinkpad, sink_query);
  gst_pad_set_activatemode_function(self->sinkpad, sink_activate_mode);
  GST_PAD_SET_PROXY_CAPS(self->sinkpad);
  GST_PAD_SET_PROXY_ALLOCATION(self->sinkpad);
  GST_PAD_SET_PROXY_SCHEDULING(self->sinkpad);
  gst_element_add_pad(GST_ELEMENT(self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template(&src_template, "src");
  gst_pad_set_event_function(self->srcpad, src_event);
  gst_pad_set_query_function(self->srcpad, src_query);
  gst_pad_set_activatemode_function(self->srcpad, src_activate_mode);
  GST_PAD_SET_PROXY_CAPS(self->srcpad);
  GST_PAD_SET_PROXY_ALLOCATION(self->srcpad);
  GST_PAD_SET_PROXY_SCHEDULING(self->srcpad);
  gst_element_add_pad(GST_ELEMENT(self), self->srcpad);
}

}  // namespace aq::element
