/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstadaptivequeue.h"

static gboolean plugin_init(GstPlugin* plugin) {
  return GST_ELEMENT_REGISTER(adaptivequeue, plugin);
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, adaptivequeue,
                  "A queue whose capacity adapts to system load and latency", plugin_init,
                  PACKAGE_VERSION, "LGPL", PACKAGE, PACKAGE_ORIGIN)
