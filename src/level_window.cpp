#include "level_window.h"

#include <algorithm>

namespace aq {

namespace {

// kSlots - 1 whole slots before the current one cover the window.
int64_t width_for(int64_t window_ns) {
  const int64_t w = std::max<int64_t>(window_ns, 1);
  return (w + LevelWindow::kSlots - 2) / (LevelWindow::kSlots - 1);
}

int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

size_t position(int64_t index) {
  const int64_t n = LevelWindow::kSlots;
  return static_cast<size_t>(((index % n) + n) % n);
}

}  // namespace

LevelWindow::LevelWindow(int64_t window_ns)
    : window_ns_(window_ns), width_ns_(width_for(window_ns)) {}

int64_t LevelWindow::slot_of(int64_t t_ns) const {
  return floor_div(t_ns, width_ns_);
}

void LevelWindow::set_window(int64_t now_ns, int64_t window_ns) {
  if (window_ns == window_ns_)
    return;
  const uint32_t kept = max(now_ns);
  reset();
  window_ns_ = window_ns;
  width_ns_ = width_for(window_ns);
  if (kept > 0)
    note(now_ns, kept);
}

void LevelWindow::note(int64_t now_ns, uint32_t level) {
  const int64_t index = slot_of(now_ns);
  Slot& s = slots_[position(index)];
  if (!s.used || s.index != index) {
    s = Slot{index, level, true};
  } else {
    s.level = std::max(s.level, level);
  }
}

uint32_t LevelWindow::max(int64_t now_ns) const {
  const int64_t newest = slot_of(now_ns);
  const int64_t oldest = newest - (kSlots - 1);
  uint32_t out = 0;
  for (const Slot& s : slots_)
    if (s.used && s.index >= oldest && s.index <= newest)
      out = std::max(out, s.level);
  return out;
}

void LevelWindow::reset() {
  slots_.fill(Slot{});
}

}  // namespace aq
