// The queues under test in the throughput, allocation and RSS benchmarks,
// and the launch line they sit in.
#pragma once

#include <string>
#include <vector>

namespace bench {

struct Variant {
  const char* label;    // as printed in the tables
  const char* element;  // launch-line fragment; empty for no queue at all
  // Drop every buffer at fakesrc's src pad: what the source side costs on
  // its own, the least any queue's upstream thread can take per buffer.
  bool drop_at_source = false;
};

// queue's defaults are 200 buffers, 10 MB and 1 s; empty, untimestamped
// buffers make the buffer count the only limit that applies. adaptivequeue
// starts at 16 and adapts between 4 and 32, hence the equal-capacity rows.
inline const std::vector<Variant>& throughput_variants() {
  static const std::vector<Variant> v = {
      {"no queue (floor)", ""},
      {"queue", "queue"},
      {"queue2", "queue2"},
      {"adaptivequeue", "adaptivequeue"},
      {"queue max-size-buffers=16", "queue max-size-buffers=16"},
      {"queue max-size-buffers=32", "queue max-size-buffers=32"},
      {"adaptivequeue adaptive=false max-size-buffers=200",
       "adaptivequeue adaptive=false max-size-buffers=200"},
      {"fakesrc alone (buffers dropped at its src pad)", "", true},
  };
  return v;
}

// The variants that are whole pipelines, for the RSS and allocation runs.
constexpr size_t kPipelineVariants = 7;

// The source: empty buffers, or `size` zeroed bytes each (1920 is 20 ms of
// 48 kHz mono S16 audio).
inline std::string throughput_source(long buffers, long size = 0) {
  std::string s = "fakesrc name=src num-buffers=" + std::to_string(buffers);
  if (size > 0)
    return s + " sizetype=fixed sizemax=" + std::to_string(size) + " filltype=zero";
  return s + " sizetype=empty";
}

inline std::string throughput_pipeline(const Variant& v, long buffers, long size = 0) {
  std::string s = throughput_source(buffers, size) + " ! ";
  if (*v.element)
    s += std::string(v.element) + " name=q ! ";
  return s + "fakesink name=sink sync=false";
}

inline int find_variant(const std::string& label) {
  const auto& v = throughput_variants();
  for (size_t i = 0; i < v.size(); i++)
    if (label == v[i].label || (*v[i].element && label == v[i].element) ||
        (label == "none" && i == 0))
      return static_cast<int>(i);
  return -1;
}

}  // namespace bench
