/* adaptivequeue: a drop-in queue whose capacity follows load and latency.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_ADAPTIVE_QUEUE (gst_adaptive_queue_get_type())
G_DECLARE_FINAL_TYPE(GstAdaptiveQueue, gst_adaptive_queue, GST, ADAPTIVE_QUEUE, GstElement)

/* Same values and nicks as GstQueueLeaky, under a name of its own. */
typedef enum {
  GST_ADAPTIVE_QUEUE_NO_LEAK = 0,
  GST_ADAPTIVE_QUEUE_LEAK_UPSTREAM = 1,
  GST_ADAPTIVE_QUEUE_LEAK_DOWNSTREAM = 2
} GstAdaptiveQueueLeaky;

typedef enum {
  GST_ADAPTIVE_QUEUE_SCOPE_SYSTEM = 0,
  GST_ADAPTIVE_QUEUE_SCOPE_PROCESS = 1,
  GST_ADAPTIVE_QUEUE_SCOPE_CGROUP = 2,
  GST_ADAPTIVE_QUEUE_SCOPE_PRESSURE = 3,
  GST_ADAPTIVE_QUEUE_SCOPE_AUTO = 4
} GstAdaptiveQueueLoadScope;

typedef enum {
  GST_ADAPTIVE_QUEUE_LATENCY_AUTO = 0,
  GST_ADAPTIVE_QUEUE_LATENCY_QUEUED = 1,
  GST_ADAPTIVE_QUEUE_LATENCY_CLOCK = 2
} GstAdaptiveQueueLatencySource;

GType gst_adaptive_queue_leaky_get_type(void);
GType gst_adaptive_queue_load_scope_get_type(void);
GType gst_adaptive_queue_latency_source_get_type(void);

GST_ELEMENT_REGISTER_DECLARE(adaptivequeue);

G_END_DECLS
