/* A KVM-like live audio graph through adaptivequeue: live capture, Opus
 * encode, adaptivequeue, decode, a synced sink. Midway a CPU load is
 * started so the adaptation visibly reacts. Prints one line per adaptation
 * and a summary.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gst/gst.h>
#include <sys/wait.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Options
{
  double duration = 20.0;      /* seconds */
  int load_workers = -1;       /* stress-ng CPU workers; -1 = one per core */
  double load_start = 0.35;    /* fraction of the run */
  double load_end = 0.75;
  std::vector<std::string> properties;
};

struct Demo
{
  Options options;
  GstElement *pipeline = nullptr;
  GstElement *queue = nullptr;
  GMainLoop *main_loop = nullptr;
  GPid stress_pid = 0;
  gint64 start_us = 0;
  guint capacity_min = G_MAXUINT;
  guint capacity_max = 0;
  int exit_code = 0;
};

double
elapsed (const Demo & demo)
{
  return (g_get_monotonic_time () - demo.start_us) / 1e6;
}

void
usage ()
{
  std::puts (
      "usage: adaptivequeue-demo [--duration SECONDS] [--load WORKERS|none]\n"
      "                          [--load-window START END] [--set PROP=VALUE]...\n"
      "\n"
      "  --duration     run time in seconds (default 20)\n"
      "  --load         stress-ng CPU workers started midway; 'none' for no load\n"
      "                 (default: one per core)\n"
      "  --load-window  start and end of the load, as fractions of the run\n"
      "                 (default 0.35 0.75)\n"
      "  --set          an extra adaptivequeue property, e.g. --set max-buffers=64\n");
}

bool
parse_args (int argc, char **argv, Options & o)
{
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto next = [&] () -> const char * {
      return i + 1 < argc ? argv[++i] : nullptr;
    };
    if (a == "-h" || a == "--help") {
      usage ();
      std::exit (0);
    } else if (a == "--duration") {
      const char *v = next ();
      if (!v || (o.duration = g_ascii_strtod (v, nullptr)) <= 0)
        return false;
    } else if (a == "--load") {
      const char *v = next ();
      if (!v)
        return false;
      o.load_workers = std::string (v) == "none" ? 0 : atoi (v);
      if (o.load_workers < 0)
        return false;
    } else if (a == "--load-window") {
      const char *s = next (), *e = next ();
      if (!s || !e)
        return false;
      o.load_start = g_ascii_strtod (s, nullptr);
      o.load_end = g_ascii_strtod (e, nullptr);
      if (o.load_start < 0 || o.load_end > 1 || o.load_start >= o.load_end)
        return false;
    } else if (a == "--set") {
      const char *v = next ();
      if (!v || !strchr (v, '='))
        return false;
      o.properties.push_back (v);
    } else {
      return false;
    }
  }
  return true;
}

void
print_adaptation (Demo & demo, const GstStructure * s)
{
  guint old_capacity = 0, new_capacity = 0, level = 0;
  gint64 latency = -1;
  double cpu = 0, mem = 0, cpu_f = 0, mem_f = 0, lat_f = 0, f = 0;
  gst_structure_get (s, "old-capacity", G_TYPE_UINT, &old_capacity,
      "new-capacity", G_TYPE_UINT, &new_capacity, "level-buffers", G_TYPE_UINT,
      &level, "latency-average", G_TYPE_INT64, &latency, "cpu-percent",
      G_TYPE_DOUBLE, &cpu, "mem-percent", G_TYPE_DOUBLE, &mem, "cpu-factor",
      G_TYPE_DOUBLE, &cpu_f, "mem-factor", G_TYPE_DOUBLE, &mem_f,
      "latency-factor", G_TYPE_DOUBLE, &lat_f, "combined-factor",
      G_TYPE_DOUBLE, &f, nullptr);
  demo.capacity_min = MIN (demo.capacity_min, new_capacity);
  demo.capacity_max = MAX (demo.capacity_max, new_capacity);
  char lat[32] = "   n/a  ";
  if (latency >= 0)
    g_snprintf (lat, sizeof lat, "%5.1f ms", latency / 1e6);
  std::printf ("%6.2f s  capacity %3u -> %3u  level %3u  latency %s  "
      "cpu %5.1f%%  mem %5.1f%%  factors cpu %+.2f mem %+.2f lat %+.2f = %+.2f\n",
      elapsed (demo), old_capacity, new_capacity, level, lat, cpu, mem,
      cpu_f, mem_f, lat_f, f);
  std::fflush (stdout);
}

gboolean
on_bus (GstBus *, GstMessage * msg, gpointer data)
{
  Demo & demo = *static_cast < Demo * >(data);
  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_ELEMENT:
      if (gst_message_has_name (msg, "adaptivequeue-adaptation"))
        print_adaptation (demo, gst_message_get_structure (msg));
      break;
    case GST_MESSAGE_WARNING:
    case GST_MESSAGE_ERROR:{
      GError *err = nullptr;
      gchar *dbg = nullptr;
      const bool error = GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR;
      if (error)
        gst_message_parse_error (msg, &err, &dbg);
      else
        gst_message_parse_warning (msg, &err, &dbg);
      std::printf ("%6.2f s  %s from %s: %s (%s)\n", elapsed (demo),
          error ? "ERROR" : "WARNING", GST_OBJECT_NAME (msg->src), err->message,
          dbg ? dbg : "");
      g_clear_error (&err);
      g_free (dbg);
      if (error) {
        demo.exit_code = 1;
        g_main_loop_quit (demo.main_loop);
      }
      break;
    }
    case GST_MESSAGE_EOS:
      g_main_loop_quit (demo.main_loop);
      break;
    case GST_MESSAGE_LATENCY:
      gst_bin_recalculate_latency (GST_BIN (demo.pipeline));
      break;
    default:
      break;
  }
  return TRUE;
}

gboolean
start_load (gpointer data)
{
  Demo & demo = *static_cast < Demo * >(data);
  const int workers = demo.options.load_workers < 0 ?
      static_cast < int >(g_get_num_processors ()) : demo.options.load_workers;
  std::string n = std::to_string (workers);
  const char *argv[] = { "stress-ng", "--cpu", n.c_str (), "--quiet", nullptr };
  GError *err = nullptr;
  if (!g_spawn_async (nullptr, const_cast < char **>(argv), nullptr,
          static_cast < GSpawnFlags > (G_SPAWN_SEARCH_PATH |
              G_SPAWN_DO_NOT_REAP_CHILD), nullptr, nullptr, &demo.stress_pid,
          &err)) {
    std::printf ("%6.2f s  cannot start stress-ng: %s\n", elapsed (demo),
        err->message);
    g_clear_error (&err);
    return G_SOURCE_REMOVE;
  }
  std::printf ("%6.2f s  --- CPU load on: stress-ng --cpu %d ---\n",
      elapsed (demo), workers);
  return G_SOURCE_REMOVE;
}

void
stop_load (Demo & demo)
{
  if (!demo.stress_pid)
    return;
  kill (demo.stress_pid, SIGTERM);
  int status;
  waitpid (demo.stress_pid, &status, 0);
  g_spawn_close_pid (demo.stress_pid);
  demo.stress_pid = 0;
  std::printf ("%6.2f s  --- CPU load off ---\n", elapsed (demo));
}

gboolean
on_stop_load (gpointer data)
{
  stop_load (*static_cast < Demo * >(data));
  return G_SOURCE_REMOVE;
}

gboolean
on_end (gpointer data)
{
  Demo & demo = *static_cast < Demo * >(data);
  gst_element_send_event (demo.pipeline, gst_event_new_eos ());
  return G_SOURCE_REMOVE;
}

void
print_summary (Demo & demo)
{
  GstStructure *stats = nullptr;
  g_object_get (demo.queue, "stats", &stats, nullptr);
  guint64 adaptations = 0, drops = 0, overruns = 0, underruns = 0, pushed = 0,
      ticks = 0, skipped = 0;
  gint64 latency_avg = -1, latency_max = -1;
  guint capacity = 0, max_level = 0;
  gst_structure_get (stats, "adaptations", G_TYPE_UINT64, &adaptations,
      "drops", G_TYPE_UINT64, &drops, "overruns", G_TYPE_UINT64, &overruns,
      "underruns", G_TYPE_UINT64, &underruns, "buffers-pushed", G_TYPE_UINT64,
      &pushed, "ticks", G_TYPE_UINT64, &ticks, "skipped-ticks", G_TYPE_UINT64,
      &skipped, "latency-average", G_TYPE_INT64, &latency_avg, "latency-max",
      G_TYPE_INT64, &latency_max, "capacity", G_TYPE_UINT, &capacity,
      "max-level-buffers", G_TYPE_UINT, &max_level, nullptr);
  gst_structure_free (stats);
  std::printf ("\nSummary after %.1f s\n", elapsed (demo));
  std::printf ("  adaptations       %" G_GUINT64_FORMAT " (ticks %" G_GUINT64_FORMAT
      ", skipped %" G_GUINT64_FORMAT ")\n", adaptations, ticks, skipped);
  if (adaptations > 0)
    std::printf ("  capacity          %u buffers at the end, %u..%u during the run\n",
        capacity, demo.capacity_min, demo.capacity_max);
  else
    std::printf ("  capacity          %u buffers\n", capacity);
  std::printf ("  max level         %u buffers\n", max_level);
  std::printf ("  buffers pushed    %" G_GUINT64_FORMAT "\n", pushed);
  std::printf ("  drops             %" G_GUINT64_FORMAT " (overruns %" G_GUINT64_FORMAT
      ", underruns %" G_GUINT64_FORMAT ")\n", drops, overruns, underruns);
  if (latency_avg >= 0)
    std::printf ("  latency           average %.1f ms, max %.1f ms\n",
        latency_avg / 1e6, latency_max / 1e6);
  else
    std::printf ("  latency           no samples\n");
}

}  // namespace

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  Demo demo;
  if (!parse_args (argc, argv, demo.options)) {
    usage ();
    return 2;
  }

  /* 20 ms frames at 48 kHz, as a KVM audio capture path uses. */
  GError *err = nullptr;
  demo.pipeline = gst_parse_launch ("audiotestsrc is-live=true wave=sine "
      "samplesperbuffer=960 ! audio/x-raw,rate=48000,channels=2 ! "
      "opusenc frame-size=20 ! adaptivequeue name=aq ! opusdec ! "
      "audioconvert ! fakesink sync=true", &err);
  if (!demo.pipeline) {
    std::fprintf (stderr, "cannot build the pipeline: %s\n", err->message);
    return 1;
  }
  demo.queue = gst_bin_get_by_name (GST_BIN (demo.pipeline), "aq");
  for (const auto & p:demo.options.properties) {
    std::string name = p.substr (0, p.find ('='));
    if (!g_object_class_find_property (G_OBJECT_GET_CLASS (demo.queue),
            name.c_str ())) {
      std::fprintf (stderr, "adaptivequeue has no property '%s'\n", name.c_str ());
      return 2;
    }
    gst_util_set_object_arg (G_OBJECT (demo.queue), name.c_str (),
        p.substr (p.find ('=') + 1).c_str ());
  }

  demo.main_loop = g_main_loop_new (nullptr, FALSE);
  GstBus *bus = gst_element_get_bus (demo.pipeline);
  gst_bus_add_watch (bus, on_bus, &demo);
  gst_object_unref (bus);

  std::printf ("adaptivequeue demo: live Opus capture -> adaptivequeue -> "
      "decode -> synced sink, %.0f s\n", demo.options.duration);
  std::printf ("one line per adaptation; times since start\n\n");
  demo.start_us = g_get_monotonic_time ();
  if (gst_element_set_state (demo.pipeline, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE) {
    std::fprintf (stderr, "cannot start the pipeline\n");
    return 1;
  }
  const double d = demo.options.duration;
  if (demo.options.load_workers != 0) {
    g_timeout_add (static_cast < guint > (d * demo.options.load_start * 1000),
        start_load, &demo);
    g_timeout_add (static_cast < guint > (d * demo.options.load_end * 1000),
        on_stop_load, &demo);
  }
  g_timeout_add (static_cast < guint > (d * 1000), on_end, &demo);
  g_main_loop_run (demo.main_loop);
  stop_load (demo);

  print_summary (demo);
  gst_element_set_state (demo.pipeline, GST_STATE_NULL);
  gst_object_unref (demo.queue);
  gst_object_unref (demo.pipeline);
  g_main_loop_unref (demo.main_loop);
  return demo.exit_code;
}
