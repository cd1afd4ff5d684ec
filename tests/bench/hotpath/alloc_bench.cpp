// Allocations per buffer on the steady-state path. This program replaces
// malloc and friends with counting wrappers around glibc's allocator, runs
// the throughput pipeline with each queue, and counts every allocation in
// the process while the sink receives buffers [skip, skip + window). The
// queue's own cost is the count with the queue minus the count without.
// GLib 2.74's slice allocator would hide allocations in its magazines, so
// the program runs with G_SLICE=always-malloc (it re-executes itself).

#include <errno.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_util.h"
#include "variants.h"

extern "C" {
void* __libc_malloc(size_t size);
void* __libc_calloc(size_t count, size_t size);
void* __libc_realloc(void* ptr, size_t size);
void* __libc_memalign(size_t alignment, size_t size);
void __libc_free(void* ptr);
}

namespace {
std::atomic<unsigned long long> g_allocs{0};
std::atomic<unsigned long long> g_frees{0};

inline void count_alloc() {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

// The replacements: exported from the executable, so GLib, GStreamer and the
// plugins (loaded later) all resolve to them.
extern "C" {
void* malloc(size_t size) noexcept {
  count_alloc();
  return __libc_malloc(size);
}
void* calloc(size_t count, size_t size) noexcept {
  count_alloc();
  return __libc_calloc(count, size);
}
void* realloc(void* ptr, size_t size) noexcept {
  count_alloc();
  return __libc_realloc(ptr, size);
}
void free(void* ptr) noexcept {
  if (ptr)
    g_frees.fetch_add(1, std::memory_order_relaxed);
  __libc_free(ptr);
}
void* memalign(size_t alignment, size_t size) noexcept {
  count_alloc();
  return __libc_memalign(alignment, size);
}
void* aligned_alloc(size_t alignment, size_t size) noexcept {
  count_alloc();
  return __libc_memalign(alignment, size);
}
int posix_memalign(void** out, size_t alignment, size_t size) noexcept {
  count_alloc();
  void* p = __libc_memalign(alignment, size);
  if (!p)
    return ENOMEM;
  *out = p;
  return 0;
}
}

namespace {

using bench::fmt;
using bench::median;

// Counters at the window's edges, taken in the sink's streaming thread.
struct Window {
  long skip = 0, length = 0;
  long seen = 0;
  unsigned long long allocs0 = 0, frees0 = 0, allocs1 = 0, frees1 = 0;
};

GstPadProbeReturn on_buffer(GstPad*, GstPadProbeInfo*, gpointer data) {
  auto* w = static_cast<Window*>(data);
  if (w->seen == w->skip) {
    w->allocs0 = g_allocs.load();
    w->frees0 = g_frees.load();
  } else if (w->seen == w->skip + w->length) {
    w->allocs1 = g_allocs.load();
    w->frees1 = g_frees.load();
  }
  w->seen++;
  return GST_PAD_PROBE_OK;
}

struct Count {
  double allocs_per_buffer, frees_per_buffer;
};

Count run(const bench::Variant& v, long skip, long window) {
  const std::string desc = bench::throughput_pipeline(v, skip + window + 1000);
  GstElement* pipeline = bench::parse_or_die(desc);
  GstElement* sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  GstPad* pad = gst_element_get_static_pad(sink, "sink");
  Window w;
  w.skip = skip;
  w.length = window;
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_buffer, &w, nullptr);
  bench::play_to_eos(pipeline, desc);
  gst_object_unref(pad);
  gst_object_unref(sink);
  bench::stop(pipeline);
  const double n = static_cast<double>(window);
  return {static_cast<double>(w.allocs1 - w.allocs0) / n,
          static_cast<double>(w.frees1 - w.frees0) / n};
}

}  // namespace

int main(int argc, char** argv) {
  const char* slice = getenv("G_SLICE");
  if (!slice || std::strcmp(slice, "always-malloc") != 0) {
    setenv("G_SLICE", "always-malloc", 1);
    execv("/proc/self/exe", argv);
    std::perror("execv");
    return 2;
  }
  long skip = 100'000, window = 400'000;
  int reps = 5;
  std::string markdown, summary;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--skip")
      skip = std::stol(v);
    else if (a == "--window")
      window = std::stol(v);
    else if (a == "--reps")
      reps = std::stoi(v);
    else if (a == "--markdown")
      markdown = v;
    else if (a == "--summary")
      summary = v;
    else {
      std::fprintf(stderr,
                   "usage: aq-hotpath-alloc [--skip N] [--window N] [--reps N] [--markdown FILE] "
                   "[--summary FILE]\n");
      return 2;
    }
  }
  bench::use_build_plugin_dir();
  gst_init(&argc, &argv);
  bench::require_adaptivequeue();

  const std::vector<std::string> labels = {"no queue (floor)", "queue", "queue2", "adaptivequeue",
                                           "adaptivequeue adaptive=false max-size-buffers=200"};
  const auto& all = bench::throughput_variants();
  std::vector<std::vector<double>> allocs(labels.size()), frees(labels.size());
  for (const auto& l : labels)
    run(all[static_cast<size_t>(bench::find_variant(l))], 1000, 10'000);
  for (int rep = 0; rep < reps; rep++)
    for (size_t k = 0; k < labels.size(); k++) {
      const size_t i = (k + static_cast<size_t>(rep)) % labels.size();
      const Count c = run(all[static_cast<size_t>(bench::find_variant(labels[i]))], skip, window);
      allocs[i].push_back(c.allocs_per_buffer);
      frees[i].push_back(c.frees_per_buffer);
      std::fprintf(stderr, "alloc rep %d %-52s %.5f allocs/buffer\n", rep + 1, labels[i].c_str(),
                   c.allocs_per_buffer);
    }

  const double floor = median(allocs[0]);
  std::string s = "### Allocations per buffer\n\n";
  s += "Every `malloc`/`calloc`/`realloc`/`memalign` call in the process (all threads) while the "
       "sink receives buffers " +
       std::to_string(skip) + " to " + std::to_string(skip + window) +
       " of the throughput pipeline, with `G_SLICE=always-malloc` so that GLib's slice allocator "
       "cannot hide any. Median of " +
       std::to_string(reps) +
       " runs. The queue's own cost is the difference to the pipeline without a queue "
       "(fakesrc allocates each buffer).\n\n";
  s += "| Q | allocations/buffer | minus no queue | frees/buffer |\n|---|---:|---:|---:|\n";
  for (size_t i = 0; i < labels.size(); i++) {
    const double a = median(allocs[i]);
    s += std::string("| ") + (i == 0 ? "*no queue (floor)*" : "`" + labels[i] + "`") + " | " +
         fmt("%.5f", a) + " | " + fmt("%+.5f", a - floor) + " | " + fmt("%.5f", median(frees[i])) +
         " |\n";
  }
  s += "\n";
  std::fputs(s.c_str(), stdout);
  bench::write_file(markdown, s);
  // Below one allocation per thousand buffers is not a per-buffer cost: the
  // tick and the sampler thread allocate a few times per interval.
  const double aq = median(allocs[3]) - floor;
  bench::write_file(summary,
                    "| zero allocations per buffer (steady state) | " + fmt("%+.5f", aq) +
                        " per buffer | " + (aq < 0.001 ? "met" : "**not met**") + " |\n",
                    "a");
  return 0;
}
