// Binds the calling thread to one of the CPUs it may run on, for a scope,
// as on a one-core board or under `taskset -c N`: threads it starts
// meanwhile inherit the mask. Plain C++, no Check, so the gstcheck suites
// can use it too; the caller asserts bound(), and a test that must not
// leave the mask changed asserts after the scope ends.
// SPDX-License-Identifier: LGPL-2.1-or-later
#pragma once

#include <sched.h>

namespace onecpu {

enum class Which { First, Last };

class BoundToOneCpu {
 public:
  explicit BoundToOneCpu(Which which = Which::First) {
    if (sched_getaffinity(0, sizeof saved_, &saved_) != 0)
      return;
    int chosen = -1;
    for (int id = 0; id < CPU_SETSIZE; id++) {
      if (!CPU_ISSET(id, &saved_))
        continue;
      chosen = id;
      if (which == Which::First)
        break;
    }
    if (chosen < 0)
      return;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(chosen, &one);
    if (sched_setaffinity(0, sizeof one, &one) == 0)
      cpu_ = chosen;
  }
  ~BoundToOneCpu() {
    if (bound())
      sched_setaffinity(0, sizeof saved_, &saved_);
  }
  BoundToOneCpu(const BoundToOneCpu&) = delete;
  BoundToOneCpu& operator=(const BoundToOneCpu&) = delete;

  // False when the mask could not be read or set; nothing changed then.
  bool bound() const { return cpu_ >= 0; }
  int cpu() const { return cpu_; }

 private:
  cpu_set_t saved_{};
  int cpu_ = -1;
};

}  // namespace onecpu
