// The buffer level between two ticks: its highest and lowest point, and its
// highest rise from the lowest point before it.
//
// The rise is the need of the interval: a burst of n buffers (a network hold
// released at once, a consumer stall) raises the level by n from where it
// was, whatever backlog stands under it. A steady stream rises by 1.
// push() and pop() are a few compares, for the queue lock's hot path.
#pragma once

#include <algorithm>
#include <cstdint>

namespace aq {

struct LevelInterval {
  uint32_t max = 0;
  uint32_t min = 0;
  uint32_t rise = 0;
  bool overrun = false;  // a push found the queue full
};

class LevelTrace {
 public:
  // The level after a buffer went in.
  void push(uint32_t level) {
    max_ = std::max(max_, level);
    rise_ = std::max(rise_, level - std::min(trough_, level));
  }
  // The level after a buffer left (taken, dropped or trimmed).
  void pop(uint32_t level) {
    min_ = std::min(min_, level);
    trough_ = std::min(trough_, level);
  }
  void overrun() { overrun_ = true; }
  // The highest level since the interval began, or `level` if higher.
  uint32_t max(uint32_t level) const { return std::max(max_, level); }

  // The interval up to and including `level`, the level now, and a new one
  // starting there. A caller that sees pushes only at the next removal (a
  // lock-free push path) passes each removal's level before it to push():
  // the level only rises between removals. The level now counts as seen, so
  // a burst just before the tick is in this interval's rise. A trough that
  // falls on after the tick still counts for the rise that follows it.
  LevelInterval take(uint32_t level) {
    push(level);
    const LevelInterval out{max_, std::min(min_, level), rise_, overrun_};
    start(level);
    return out;
  }

  void start(uint32_t level) {
    max_ = min_ = trough_ = level;
    rise_ = 0;
    overrun_ = false;
  }

 private:
  uint32_t max_ = 0;
  uint32_t min_ = 0;
  uint32_t trough_ = 0;
  uint32_t rise_ = 0;
  bool overrun_ = false;
};

}  // namespace aq
