// Decides whether a waiter spins before it sleeps. A spin pays only while
// the other side runs on another core and makes progress within the spin.
// When the other thread is preempted (a loaded machine) or idle (a slow or
// live source), every spin times out and burns CPU the other thread may
// need. So each timed-out spin doubles the number of waits that skip
// spinning, and a spin that saw progress ends the backoff: a few failures
// among successes (an idle machine) cost little, while a run of failures
// (a preempted or idle peer) soon leaves only one spin in 256 waits.
#pragma once

#include <algorithm>
#include <cstdint>

namespace aq {

class SpinBackoff {
 public:
  // At most this many waits in a row sleep at once, so spinning is
  // retried now and then and comes back when the machine is idle again.
  static constexpr uint32_t kMaxSkip = 256;

  // True if this wait should spin; false while waits are being skipped.
  bool should_spin() {
    if (skip_ == 0)
      return true;
    --skip_;
    return false;
  }

  // The outcome of a spin that should_spin() allowed.
  void record(bool progressed) {
    if (progressed)
      backoff_ = 0;
    else
      backoff_ = std::min(backoff_ == 0 ? 1 : backoff_ * 2, kMaxSkip);
    skip_ = backoff_;
  }

  // Waits that will sleep at once before the next spin.
  uint32_t skipping() const { return skip_; }

 private:
  uint32_t skip_ = 0;
  uint32_t backoff_ = 0;
};

}  // namespace aq
