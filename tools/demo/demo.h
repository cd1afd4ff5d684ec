/* The adaptivequeue demo: the same live audio graph through several queues
 * side by side, under the same trouble, measured the same way.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>

#include "proc-fixture.h"

#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace demo {

constexpr GstClockTime kFrame = 20 * GST_MSECOND; /* one Opus frame */
constexpr GstClockTime kBin = 100 * GST_MSECOND;  /* plot resolution */
/* Periods a capture device holds while the graph does not read; one more
 * frame and it overruns, as an ALSA device does. */
constexpr guint64 kDeviceRing = 2;

enum class Graph { Capture, Kvm, Playback };

struct Options {
  Graph graph = Graph::Capture;
  double duration = 40.0; /* seconds */
  std::vector<std::string> variants{"adaptive", "jetkvm", "queue-8", "queue-32"};
  int load_workers = -1;    /* stress-ng CPU workers; -1 = one per core */
  double load_start = 0.25; /* fractions of the run */
  double load_end = 0.75;
  double mem_percent = 85.0; /* what the adaptivequeues read; < 0: real */
  guint stall_min_ms = 100;
  guint stall_max_ms = 400;
  guint64 schedule = 17;
  guint jitterbuffer_ms = 40;          /* kvm graph */
  std::vector<std::string> properties; /* --set, for every adaptivequeue */
  std::string output_dir = ".";
  bool plot = true;
};

/* Which queue a variant runs, from its --variants key. */
struct VariantSpec {
  std::string key;
  std::string label;
  std::string column; /* short, for the progress lines */
  bool adaptive = false;
  bool jetkvm_rule = false; /* adaptivequeue with demand-headroom=0 */
  guint size = 0;           /* queue: max-size-buffers */
};

bool parse_variant(const std::string& key, VariantSpec& out);

/* One stall of the sink (capture graph) or hold of the network (kvm graph),
 * in running time. */
struct Stall {
  GstClockTime start;
  GstClockTime end;
};

std::vector<Stall> make_stalls(guint64 schedule, double duration, guint min_ms, guint max_ms);

/* 100 ms of one variant. */
struct Bin {
  guint level_max = 0;
  guint capacity = 0;
  guint lost = 0;
  double latency_max_ms = -1; /* -1: no frame arrived */
};

enum FrameState : guint8 {
  kPending = 0, /* captured, not (yet) at the sink */
  kOnTime,
  kLate,          /* at the sink after its play-out time */
  kLostAtCapture, /* the device overran */
};

struct Variant {
  VariantSpec spec;
  void* owner = nullptr; /* the run, for its probes */
  GstElement* queue = nullptr;
  GstElement* sink = nullptr;
  GstElement* appsrc = nullptr; /* capture graph */
  size_t next_stall = 0;        /* sink streaming thread only */
  bool discont = false;         /* capture thread only */
  /* Capture time of the frame the encoder (decoder) was given last; its
   * upstream streaming thread only. */
  GstClockTime current_capture = GST_CLOCK_TIME_NONE;

  std::mutex lock;            /* guards the rest */
  std::vector<guint8> frames; /* FrameState per capture index */
  std::vector<double> latencies_ms;
  std::vector<Bin> bins;
  gint64 last_index = -1;
  guint capacity_min = G_MAXUINT;
  guint capacity_max = 0;
};

/* What the run measured, for the table and the picture. */
struct Result {
  std::string label;
  std::string key;
  guint64 captured = 0;
  guint64 lost = 0;
  guint64 late = 0;
  double latency_mean_ms = -1;
  double latency_p99_ms = -1;
  double latency_max_ms = -1;
  guint capacity_min = 0;
  guint capacity_max = 0;
  std::vector<Bin> bins;
};

struct LoadSeries {
  std::vector<double> cpu; /* per bin, %; -1 unknown */
  std::vector<double> mem;
};

/* The picture: data file, gnuplot script, PNG in opts.output_dir. The PNG's
 * path, or "" without gnuplot; false when something failed. */
bool write_plot(const Options& opts, const std::vector<Stall>& stalls, double load_on,
                double load_off, const LoadSeries& load, const std::vector<Result>& results,
                std::string& png);

/* A running stress-ng. */
class Load {
 public:
  ~Load() { stop(); }
  /* Ends by itself after seconds, should this process die first. */
  bool start(int workers, int seconds, std::string& error);
  void stop();
  bool running() const { return pid_ != 0; }

 private:
  GPid pid_ = 0;
};

/* Busy share of all CPUs between two readings of /proc/stat. */
class CpuMeter {
 public:
  double sample(); /* -1 on the first call */
 private:
  guint64 busy_ = 0, total_ = 0;
  bool have_ = false;
};

/* Builds the graph, runs it for opts.duration under the trouble, measures. */
int run_demo(const Options& opts, const std::vector<VariantSpec>& specs);
/* The playback graph (--graph playback): demo-playback.cpp. */
int run_playback(const Options& opts, const std::vector<VariantSpec>& specs);

}  // namespace demo
