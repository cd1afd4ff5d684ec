// A load sample: the share of CPU and of memory in use. The load sampler
// makes it and the sizing policy reads it; neither needs the other.
#pragma once

namespace aq {

struct LoadSample {
  double cpu_percent = 0.0;
  double mem_percent = 0.0;
};

}  // namespace aq
