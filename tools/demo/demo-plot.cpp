/* The demo's picture: a data file of 100 ms bins and a gnuplot script that
 * draws load, each queue's capacity and level, latency and losses, with the
 * stalls shaded; gnuplot renders it if it is installed.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "demo.h"

#include <cmath>
#include <cstdio>
#include <fstream>

namespace demo {
namespace {

const char* color(const std::vector<Result>& results, size_t i) {
  static const char* fixed[] = {"#d62728", "#2ca02c", "#8c564b", "#7f7f7f", "#e377c2"};
  if (results[i].key == "adaptive")
    return "#1f77b4";
  if (results[i].key == "jetkvm")
    return "#ff7f0e";
  size_t n = 0;
  for (size_t j = 0; j < i; j++)
    n += results[j].key != "adaptive" && results[j].key != "jetkvm";
  return fixed[n % G_N_ELEMENTS(fixed)];
}

/* gnuplot single-quoted string */
std::string quoted(const std::string& s) {
  std::string q = "'";
  for (char c : s)
    q += c == '\'' ? std::string("''") : std::string(1, c);
  return q + "'";
}

}  // namespace

bool write_plot(const Options& opts, const std::vector<Stall>& stalls, double load_on,
                double load_off, const LoadSeries& load, const std::vector<Result>& results,
                std::string& png) {
  const std::string stem = opts.graph == Graph::Kvm ? "demo-kvm" : "demo";
  const std::string dir = opts.output_dir;
  const std::string dat = stem + ".dat", gp = stem + ".gp";
  png = stem + ".png";
  const size_t nbins = static_cast<size_t>(opts.duration * GST_SECOND / kBin);

  {
    std::ofstream f(dir + "/" + dat);
    f << "# time_s cpu_pct mem_pct, then per queue: level_max capacity "
         "lost_cumulative latency_max_ms\n";
    std::vector<guint> lost(results.size(), 0);
    for (size_t b = 0; b < nbins; b++) {
      f << (b + 0.5) * kBin / 1e9;
      for (double x : {load.cpu[b], load.mem[b]})
        if (x >= 0)
          f << ' ' << x;
        else
          f << " NaN";
      for (size_t i = 0; i < results.size(); i++) {
        const Bin& bin = results[i].bins[b];
        lost[i] += bin.lost;
        f << ' ' << bin.level_max << ' ';
        if (bin.capacity)
          f << bin.capacity;
        else
          f << "NaN";
        f << ' ' << lost[i] << ' ';
        if (bin.latency_max_ms >= 0)
          f << bin.latency_max_ms;
        else
          f << "NaN";
      }
      f << '\n';
    }
    if (!f) {
      std::printf("cannot write %s/%s\n", dir.c_str(), dat.c_str());
      return false;
    }
  }

  guint ymax = 8;
  double lat_max = 50;
  for (const auto& r : results) {
    for (const auto& b : r.bins) {
      ymax = MAX(ymax, MAX(b.capacity, b.level_max));
      lat_max = MAX(lat_max, b.latency_max_ms);
    }
  }
  const size_t panels = 3 + results.size();
  std::ofstream g(dir + "/" + gp);
  g << "# written by adaptivequeue-demo; run: gnuplot " << gp << "\n"
    << "set terminal pngcairo size 1100," << 90 + 150 * panels << " font 'Sans,9'\n"
    << "set output " << quoted(png) << "\n"
    << "set xrange [0:" << opts.duration << "]\n"
    << "set grid back xtics ytics lc rgb '#dddddd'\n"
    << "set key top right horizontal samplen 2 opaque\n"
    << "set lmargin 9\nset rmargin 3\n"
    << "set multiplot layout " << panels << ",1 title "
    << quoted(std::string(opts.graph == Graph::Kvm
                              ? "kvm graph: network holds (grey), RTP over loopback, the queue "
                                "after the decoder"
                              : "capture graph: sink stalls (grey), capture device -> opusenc "
                                "-> queue -> sink"))
    << "\n";
  int obj = 1;
  for (const auto& s : stalls)
    g << "set object " << obj++ << " rect from first " << s.start / 1e9 << ", graph 0 to first "
      << s.end / 1e9 << ", graph 1 behind fc rgb '#dedede' fs solid noborder\n";
  g << "set format x ''\n";

  /* load */
  std::string load_title = "CPU of this machine";
  if (load_on >= 0) {
    char w[96];
    g_snprintf(w, sizeof w, " (stress-ng from %.0f to %.0f s)", load_on,
               load_off >= 0 ? load_off : opts.duration);
    load_title += w;
  }
  if (load_on >= 0)
    g << "set object 1000 rect from first " << load_on << ", graph 0 to first "
      << (load_off >= 0 ? load_off : opts.duration)
      << ", graph 1 behind fc rgb '#f6dfc4' fs solid 0.6 noborder\n";
  g << "set key bottom right\nset ylabel '%'\nset yrange [0:105]\n"
    << "plot " << quoted(dat) << " u 1:2 w l lw 1.5 lc rgb '#333333' t " << quoted(load_title)
    << ", '' u 1:3 w l lw 2 dt 2 lc rgb '#8e44ad' t "
    << quoted(opts.mem_percent >= 0 ? "memory, as the adaptivequeues read it" : "memory") << "\n";

  /* capacity and level, one panel per queue */
  g << "unset object 1000\nset key top right\nset ylabel 'buffers'\nset yrange [0:"
    << ymax + ymax / 5 + 1 << "]\n"
    << "set style fill solid 0.35 noborder\nset boxwidth 0.1\n";
  for (size_t i = 0; i < results.size(); i++) {
    const size_t c = 4 + 4 * i;
    char t[64];
    g_snprintf(t, sizeof t, ": %" G_GUINT64_FORMAT " frames lost", results[i].lost);
    g << "plot " << quoted(dat) << " u 1:" << c << " w boxes lc rgb '" << color(results, i)
      << "' t 'level', '' u 1:" << c + 1 << " w steps lw 2 lc rgb '" << color(results, i) << "' t "
      << quoted("capacity: " + results[i].label + t) << "\n";
  }

  /* latency, every queue; colours as in the losses below, smaller dots
   * drawn over larger ones so equal values stay visible */
  g << "set ylabel 'latency, ms'\nset logscale y\nset yrange [1:"
    << std::pow(10, std::ceil(std::log10(lat_max))) << "]\n"
    << "unset key\nset label 1 'latency at the sink, highest per 100 ms'"
    << " at graph 0.01, graph 0.9 front\nplot ";
  for (size_t i = 0; i < results.size(); i++)
    g << (i ? ", " : "") << (i ? "''" : quoted(dat)) << " u 1:" << 7 + 4 * i << " w p pt 7 ps "
      << 0.9 - 0.6 * i / MAX(results.size() - 1, 1u) << " lc rgb '" << color(results, i) << "'";
  g << "\nunset logscale y\nunset label 1\nset key\n";

  /* losses, every queue */
  guint64 lost_max = 1;
  for (const auto& r : results)
    lost_max = MAX(lost_max, r.lost);
  g << "set ylabel 'frames lost'\nset yrange [0:" << lost_max + lost_max / 5 + 1
    << "]\nset format x '%g'\nset xlabel 'seconds'\n"
    << "set key top left horizontal\nplot ";
  for (size_t i = 0; i < results.size(); i++)
    g << (i ? ", " : "") << (i ? "''" : quoted(dat)) << " u 1:" << 6 + 4 * i
      << " w steps lw 2 lc rgb '" << color(results, i) << "' t " << quoted(results[i].label) << "";
  g << "\nunset multiplot\n";
  g.close();
  if (!g) {
    std::printf("cannot write %s/%s\n", dir.c_str(), gp.c_str());
    return false;
  }

  gchar* gnuplot = g_find_program_in_path("gnuplot");
  if (!gnuplot) {
    std::printf("\ngnuplot is not installed: no picture (data in %s/%s)\n", dir.c_str(),
                dat.c_str());
    png.clear();
    return true;
  }
  const char* argv[] = {gnuplot, gp.c_str(), nullptr};
  gchar* err_text = nullptr;
  gint status = 0;
  GError* err = nullptr;
  const bool ok = g_spawn_sync(dir.c_str(), const_cast<char**>(argv), nullptr, G_SPAWN_DEFAULT,
                               nullptr, nullptr, nullptr, &err_text, &status, &err) &&
                  g_spawn_check_wait_status(status, nullptr);
  if (!ok)
    std::printf("\ngnuplot failed: %s\n", err ? err->message : (err_text ? err_text : "?"));
  g_clear_error(&err);
  g_free(err_text);
  g_free(gnuplot);
  png = dir + "/" + png;
  return ok;
}

}  // namespace demo
