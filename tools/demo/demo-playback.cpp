/* The playback graph: a live stream that arrives in bursts, through each
 * queue with leaky=downstream, into a consumer that takes one frame every
 * 20 ms whatever the queue holds (an appsink feeding a network sender, or
 * a device not slaved to the pipeline clock). Such a consumer never drains
 * a backlog: what stands in the queue is latency, and the trade is lost
 * frames against delay. Prints, per queue, the frames lost and the latency,
 * and draws demo-playback.png: lost frames against mean latency.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "demo.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

namespace demo {

namespace {

using Clock = std::chrono::steady_clock;

/* Network holds like a Wi-Fi link whose quality changes, in the regimes
 * of the simulator's rtp-wifi scenario, each an equal part of the run. A
 * hold keeps every frame due in it and delivers them together at its end. */
struct HoldRegime {
  const char* name;
  double min_len, max_len, min_gap, max_gap; /* seconds */
};

const HoldRegime kGood{"good", 0.02, 0.08, 5.0, 20.0};
const HoldRegime kBad{"bad", 0.1, 0.5, 1.0, 4.0};
const HoldRegime kModerate{"moderate", 0.05, 0.2, 3.0, 10.0};
const HoldRegime* const kRegimes[] = {&kGood, &kBad, &kGood, &kModerate, &kGood};

/* The schedule as the run uses it, one regime a line. */
std::string describe_regimes(double duration) {
  const size_t n = G_N_ELEMENTS(kRegimes);
  std::string out;
  for (size_t i = 0; i < n; i++) {
    const HoldRegime& r = *kRegimes[i];
    char line[160];
    g_snprintf(line, sizeof line, "           %g-%g s %s: %g-%g ms every %g-%g s\n",
               duration * static_cast<double>(i) / static_cast<double>(n),
               duration * static_cast<double>(i + 1) / static_cast<double>(n), r.name,
               r.min_len * 1000, r.max_len * 1000, r.min_gap, r.max_gap);
    out += line;
  }
  return out;
}

std::vector<Stall> make_holds(guint64 schedule, double duration) {
  GRand* rand = g_rand_new_with_seed(static_cast<guint32>(schedule));
  std::vector<Stall> holds;
  const size_t n_regimes = G_N_ELEMENTS(kRegimes);
  double t = 2.0;
  while (t < duration - 1.0) {
    const size_t i = std::min(n_regimes - 1, static_cast<size_t>(t / duration * n_regimes));
    const HoldRegime& r = *kRegimes[i];
    const double len = g_rand_double_range(rand, r.min_len, r.max_len);
    holds.push_back({static_cast<GstClockTime>(t * GST_SECOND),
                     static_cast<GstClockTime>((t + len) * GST_SECOND)});
    t += len + g_rand_double_range(rand, r.min_gap, r.max_gap);
  }
  g_rand_free(rand);
  return holds;
}

struct Branch {
  VariantSpec spec;
  GstElement* src = nullptr;
  GstElement* queue = nullptr;
  GstElement* sink = nullptr;
  guint64 delivered = 0;
  guint64 underruns = 0;
  guint64 left_over = 0;
  std::vector<double> latencies_ms;
};

double percentile(std::vector<double> v, double pct) {
  if (v.empty())
    return -1;
  std::sort(v.begin(), v.end());
  const size_t rank = static_cast<size_t>(std::ceil(pct / 100.0 * v.size()));
  return v[std::max<size_t>(rank, 1) - 1];
}

std::string element_for(const Options& opts, const VariantSpec& s) {
  std::ostringstream d;
  if (s.adaptive) {
    d << "adaptivequeue leaky=downstream";
    if (s.jetkvm_rule)
      d << " demand-headroom=0";
    for (const auto& p : opts.properties)
      d << " " << p;
  } else {
    d << "queue leaky=downstream max-size-bytes=0 max-size-time=0 max-size-buffers=" << s.size;
  }
  return d.str();
}

bool write_playback_plot(const Options& opts, const std::vector<std::unique_ptr<Branch>>& branches,
                         const std::vector<double>& means, const std::vector<guint64>& lost,
                         std::string& png) {
  const std::string stem = opts.output_dir + "/demo-playback";
  std::ofstream dat(stem + ".dat");
  for (size_t i = 0; i < branches.size(); i++)
    dat << means[i] << " " << lost[i] << " \"" << branches[i]->spec.key << "\" "
        << (branches[i]->spec.adaptive ? 1 : 0) << "\n";
  dat.close();
  std::ofstream gp(stem + ".gp");
  gp << "set terminal pngcairo size 900,560 font ',11'\n"
     << "set output '" << stem << ".png'\n"
     << "set title 'Playback into a consumer at a fixed pace, leaky=downstream, " << opts.duration
     << " s: lost frames against latency'\n"
     << "set xlabel 'mean latency, capture to consumer (ms)'\n"
     << "set ylabel 'frames lost'\n"
     << "set grid\nset key off\nset offsets graph 0.05, graph 0.12, graph 0.1, graph 0.1\n"
     << "plot '" << stem << ".dat' using 1:($4==0?$2:1/0) with linespoints pt 7 ps 1.4 lc rgb "
     << "'#777777', '' using 1:2:3 with labels offset 1.2,0.8 left, '' using 1:($4==1?$2:1/0) "
     << "with points pt 9 ps 2.2 lc rgb '#c0392b'\n";
  gp.close();
  gchar* gnuplot = g_find_program_in_path("gnuplot");
  if (!gnuplot)
    return true;
  g_free(gnuplot);
  const std::string cmd = "gnuplot '" + stem + ".gp'";
  if (std::system(cmd.c_str()) != 0)
    return false;
  png = stem + ".png";
  return true;
}

}  // namespace

int run_playback(const Options& opts, const std::vector<VariantSpec>& specs) {
  const std::vector<Stall> holds = make_holds(opts.schedule, opts.duration);
  std::vector<std::unique_ptr<Branch>> branches;
  std::ostringstream desc;
  for (size_t i = 0; i < specs.size(); i++) {
    desc << "appsrc name=src" << i << " is-live=true format=time min-latency=" << kFrame
         << " caps=audio/x-raw,format=S16LE,rate=48000,channels=2,layout=interleaved ! "
         << element_for(opts, specs[i]) << " name=q" << i << " ! appsink name=sink" << i
         << " sync=false max-buffers=1 drop=false ";
  }
  GError* err = nullptr;
  GstElement* pipeline = gst_parse_launch(desc.str().c_str(), &err);
  if (!pipeline) {
    std::fprintf(stderr, "adaptivequeue-demo: %s\n", err ? err->message : "cannot build");
    g_clear_error(&err);
    return 1;
  }
  for (size_t i = 0; i < specs.size(); i++) {
    auto b = std::make_unique<Branch>();
    b->spec = specs[i];
    const std::string n = std::to_string(i);
    b->src = gst_bin_get_by_name(GST_BIN(pipeline), ("src" + n).c_str());
    b->queue = gst_bin_get_by_name(GST_BIN(pipeline), ("q" + n).c_str());
    b->sink = gst_bin_get_by_name(GST_BIN(pipeline), ("sink" + n).c_str());
    branches.push_back(std::move(b));
  }

  std::printf(
      "adaptivequeue demo, playback graph: %zu queues side by side in one pipeline, %g s\n\n"
      "  graph    per queue: network receiver -> QUEUE leaky=downstream -> appsink,\n"
      "           taken by a consumer every 20 ms, not slaved to the pipeline clock;\n"
      "           an empty queue at its turn is an underrun\n"
      "  trouble  the same for every queue: the network holds frames and delivers\n"
      "           them together at the hold's end, in the regimes of a Wi-Fi link\n"
      "%s"
      "           (%zu holds, schedule %llu)\n\n",
      specs.size(), opts.duration, describe_regimes(opts.duration).c_str(), holds.size(),
      static_cast<unsigned long long>(opts.schedule));
  std::fflush(stdout);

  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  gst_element_get_state(pipeline, nullptr, nullptr, 5 * GST_SECOND);
  /* The LATENCY query through each queue, as a synced sink would send it:
   * how adaptivequeue learns that upstream is live. */
  for (auto& b : branches) {
    GstPad* pad = gst_element_get_static_pad(b->sink, "sink");
    GstQuery* q = gst_query_new_latency();
    gst_pad_peer_query(pad, q);
    gst_query_unref(q);
    gst_object_unref(pad);
  }

  const gsize frame_bytes = 48000 / 50 * 4;
  GstBuffer* frame = gst_buffer_new_allocate(nullptr, frame_bytes, nullptr);
  gst_buffer_memset(frame, 0, 0, frame_bytes);
  const guint64 frames = static_cast<guint64>(opts.duration * GST_SECOND / kFrame);
  const Clock::time_point t0 = Clock::now() + std::chrono::milliseconds(200);
  auto at = [&](GstClockTime t) { return t0 + std::chrono::nanoseconds(t); };

  /* The receiver: frame k is captured by k x 20 ms and arrives then, or at
   * the end of a hold it falls in. */
  std::thread receiver([&] {
    size_t h = 0;
    for (guint64 k = 0; k < frames; k++) {
      GstClockTime arrival = k * kFrame;
      while (h < holds.size() && holds[h].end <= arrival)
        h++;
      if (h < holds.size() && holds[h].start <= arrival)
        arrival = holds[h].end;
      std::this_thread::sleep_until(at(arrival));
      for (auto& b : branches) {
        GstBuffer* buf = gst_buffer_copy(frame);
        GST_BUFFER_PTS(buf) = k * kFrame;
        GST_BUFFER_DURATION(buf) = kFrame;
        GST_BUFFER_OFFSET(buf) = k;
        GstFlowReturn ret;
        g_signal_emit_by_name(b->src, "push-buffer", buf, &ret);
        gst_buffer_unref(buf);
      }
    }
  });

  /* The consumer: one frame per queue every 20 ms, 10 ms after each
   * capture, for the length of the run. */
  for (guint64 j = 0; j < frames; j++) {
    const GstClockTime turn = j * kFrame + kFrame / 2;
    std::this_thread::sleep_until(at(turn));
    for (auto& b : branches) {
      GstSample* s = nullptr;
      g_signal_emit_by_name(b->sink, "try-pull-sample", static_cast<GstClockTime>(0), &s);
      if (!s) {
        b->underruns++;
        continue;
      }
      const guint64 k = GST_BUFFER_OFFSET(gst_sample_get_buffer(s));
      b->delivered++;
      b->latencies_ms.push_back((static_cast<double>(turn) - static_cast<double>(k * kFrame)) /
                                1e6);
      gst_sample_unref(s);
    }
  }
  receiver.join();
  /* What is still queued at the end is not lost. */
  for (auto& b : branches) {
    guint level = 0;
    g_object_get(b->queue, "current-level-buffers", &level, nullptr);
    b->left_over = level;
    GstSample* s = nullptr;
    g_signal_emit_by_name(b->sink, "try-pull-sample", static_cast<GstClockTime>(0), &s);
    if (s) {
      b->left_over++;
      gst_sample_unref(s);
    }
  }
  gst_element_set_state(pipeline, GST_STATE_NULL);

  std::vector<double> means;
  std::vector<guint64> lost;
  std::printf("%-40s %9s %9s %9s %8s\n", "queue, leaky=downstream", "lost", "mean ms", "p99 ms",
              "underruns");
  for (auto& b : branches) {
    double sum = 0;
    for (double l : b->latencies_ms)
      sum += l;
    const double mean = b->latencies_ms.empty() ? -1 : sum / b->latencies_ms.size();
    const guint64 gone = frames - b->delivered - std::min(frames - b->delivered, b->left_over);
    means.push_back(mean);
    lost.push_back(gone);
    std::printf("%-40s %9llu %9.1f %9.1f %8llu\n", b->spec.label.c_str(),
                static_cast<unsigned long long>(gone), mean, percentile(b->latencies_ms, 99),
                static_cast<unsigned long long>(b->underruns));
  }
  std::printf("\nof %llu frames each\n", static_cast<unsigned long long>(frames));

  int status = 0;
  if (opts.plot) {
    std::string png;
    if (!write_playback_plot(opts, branches, means, lost, png))
      status = 1;
    else if (!png.empty())
      std::printf("picture: %s\n", png.c_str());
  }
  for (auto& b : branches) {
    gst_object_unref(b->src);
    gst_object_unref(b->queue);
    gst_object_unref(b->sink);
  }
  gst_buffer_unref(frame);
  gst_object_unref(pipeline);
  return status;
}

}  // namespace demo
