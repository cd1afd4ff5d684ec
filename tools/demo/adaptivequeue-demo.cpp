/* The README's demo: the same live KVM-like audio graph through
 * adaptivequeue and through queue, side by side in one pipeline, under the
 * same CPU load, memory pressure and stalls. Prints what each lost and how
 * late frames were, and draws it.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "demo.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

void usage(FILE* out) {
  std::fputs(
      "usage: adaptivequeue-demo [OPTION]...\n"
      "\n"
      "Runs one live audio graph through several queues side by side, in one\n"
      "pipeline, under the same trouble; prints per queue the frames lost, the\n"
      "latency and the capacity, and draws demo.png (demo-kvm.png) with gnuplot.\n"
      "\n"
      "  --graph capture|kvm|playback\n"
      "                           capture (default): a capture device -> opusenc\n"
      "                           -> QUEUE -> a synced sink that stalls;\n"
      "                           kvm: audiotestsrc -> opusenc -> rtpopuspay -> UDP\n"
      "                           loopback -> rtpjitterbuffer -> rtpopusdepay ->\n"
      "                           opusdec -> QUEUE -> a synced sink; the sender holds\n"
      "                           its packets and sends them together;\n"
      "                           playback: a network receiver whose frames come in\n"
      "                           bursts -> QUEUE leaky=downstream -> appsink taken\n"
      "                           every 20 ms; plots lost frames against latency\n"
      "                           (demo-playback.png; default variants adaptive,\n"
      "                           queue-2,queue-4,queue-8,queue-16,queue-32,queue-64)\n"
      "  --variants LIST          comma-separated queues to run (default\n"
      "                           adaptive,jetkvm,queue-8,queue-32):\n"
      "                             adaptive  adaptivequeue, defaults\n"
      "                             jetkvm    adaptivequeue demand-headroom=0:\n"
      "                                       JetKVM's rule alone\n"
      "                             queue-N   queue max-size-buffers=N\n"
      "  --duration SECONDS       run time (default 40)\n"
      "  --load WORKERS|none      stress-ng CPU workers (default: one per core)\n"
      "  --load-window START END  when the load runs, as fractions of the run\n"
      "                           (default 0.25 0.75)\n"
      "  --stalls MIN MAX         stall or hold lengths in ms (default 100 400)\n"
      "  --schedule N             which stall schedule: its number (default 17)\n"
      "  --mem PERCENT|real       memory in use the adaptivequeues read, through a\n"
      "                           fixture proc-root (default 85); real: /proc\n"
      "  --jitterbuffer MS        kvm graph: rtpjitterbuffer latency (default 40)\n"
      "  --set PROP=VALUE         a property for every adaptivequeue, e.g.\n"
      "                           --set max-buffers=48 (repeatable)\n"
      "  --output DIR             where the picture and its data go (default .)\n"
      "  --no-plot                no picture\n",
      out);
}

bool parse_double(const char* v, double& out) {
  char* end = nullptr;
  if (!v)
    return false;
  out = g_ascii_strtod(v, &end);
  return end != v && !*end;
}

bool parse_uint(const char* v, guint64& out) {
  char* end = nullptr;
  if (!v || !g_ascii_isdigit(*v))
    return false;
  out = g_ascii_strtoull(v, &end, 10);
  return !*end;
}

bool variants_set = false;

/* Returns the option that is wrong, or nullptr. */
const char* parse_args(int argc, char** argv, demo::Options& o) {
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    guint64 n = 0;
    if (a == "-h" || a == "--help") {
      usage(stdout);
      std::exit(0);
    } else if (a == "--graph") {
      const char* v = next();
      if (v && !strcmp(v, "capture"))
        o.graph = demo::Graph::Capture;
      else if (v && !strcmp(v, "kvm"))
        o.graph = demo::Graph::Kvm;
      else if (v && !strcmp(v, "playback"))
        o.graph = demo::Graph::Playback;
      else
        return argv[i - 1];
    } else if (a == "--variants") {
      variants_set = true;
      const char* v = next();
      if (!v)
        return argv[i - 1];
      o.variants.clear();
      gchar** keys = g_strsplit(v, ",", -1);
      for (gchar** k = keys; *k; k++)
        if (**k)
          o.variants.push_back(*k);
      g_strfreev(keys);
    } else if (a == "--duration") {
      if (!parse_double(next(), o.duration) || o.duration < 2 || o.duration > 3600)
        return "--duration";
    } else if (a == "--load") {
      const char* v = next();
      if (v && !strcmp(v, "none"))
        o.load_workers = 0;
      else if (parse_uint(v, n) && n > 0 && n <= 256)
        o.load_workers = static_cast<int>(n);
      else
        return "--load";
    } else if (a == "--load-window") {
      if (!parse_double(next(), o.load_start) || !parse_double(next(), o.load_end) ||
          o.load_start < 0 || o.load_end > 1 || o.load_start >= o.load_end)
        return "--load-window";
    } else if (a == "--stalls") {
      guint64 lo = 0, hi = 0;
      if (!parse_uint(next(), lo) || !parse_uint(next(), hi) || lo < 10 || hi < lo || hi > 10000)
        return "--stalls";
      o.stall_min_ms = static_cast<guint>(lo);
      o.stall_max_ms = static_cast<guint>(hi);
    } else if (a == "--schedule") {
      if (!parse_uint(next(), o.schedule))
        return "--schedule";
    } else if (a == "--mem") {
      const char* v = next();
      if (v && !strcmp(v, "real"))
        o.mem_percent = -1;
      else if (!parse_double(v, o.mem_percent) || o.mem_percent < 0 || o.mem_percent > 100)
        return "--mem";
    } else if (a == "--jitterbuffer") {
      if (!parse_uint(next(), n) || n > 10000)
        return "--jitterbuffer";
      o.jitterbuffer_ms = static_cast<guint>(n);
    } else if (a == "--set") {
      const char* v = next();
      if (!v || !strchr(v, '=') || *v == '=')
        return "--set";
      o.properties.push_back(v);
    } else if (a == "--output") {
      const char* v = next();
      if (!v || !g_file_test(v, G_FILE_TEST_IS_DIR))
        return "--output";
      o.output_dir = v;
    } else if (a == "--no-plot") {
      o.plot = false;
    } else {
      return argv[i];
    }
  }
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  demo::Options opts;
  if (const char* bad = parse_args(argc, argv, opts)) {
    std::fprintf(stderr, "adaptivequeue-demo: bad or incomplete option %s\n\n", bad);
    usage(stderr);
    return 2;
  }
  if (opts.graph == demo::Graph::Playback && !variants_set)
    opts.variants = {"adaptive", "queue-2",  "queue-4", "queue-8",
                     "queue-16", "queue-32", "queue-64"};
  std::vector<demo::VariantSpec> specs;
  for (const auto& k : opts.variants) {
    demo::VariantSpec s;
    if (!demo::parse_variant(k, s)) {
      std::fprintf(stderr,
                   "adaptivequeue-demo: unknown variant '%s' (known: "
                   "adaptive, jetkvm, queue-N)\n",
                   k.c_str());
      return 2;
    }
    specs.push_back(s);
  }
  if (specs.empty() || specs.size() > 8) {
    std::fprintf(stderr, "adaptivequeue-demo: give 1 to 8 variants\n");
    return 2;
  }
  /* The playback graph's trouble is the network alone. */
  if (opts.graph == demo::Graph::Playback)
    return demo::run_playback(opts, specs);
  if (opts.load_workers != 0) {
    gchar* p = g_find_program_in_path("stress-ng");
    if (!p) {
      std::fprintf(stderr,
                   "adaptivequeue-demo: stress-ng is not installed "
                   "(apt-get install stress-ng), or pass --load none\n");
      return 2;
    }
    g_free(p);
  }
  return demo::run_demo(opts, specs);
}
