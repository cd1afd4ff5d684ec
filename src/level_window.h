// The highest buffer level seen over a sliding time window.
//
// Levels are kept per time slot, in a fixed number of slots, so memory is
// bounded and nothing is allocated whatever the window and however often
// levels are noted. A level counts for at least the window after it is
// noted and for at most one slot (window / (kSlots - 1)) longer.
#pragma once

#include <array>
#include <cstdint>

namespace aq {

class LevelWindow {
 public:
  static constexpr int kSlots = 32;

  explicit LevelWindow(int64_t window_ns);

  int64_t window_ns() const { return window_ns_; }
  // A new window keeps the highest level the old one holds at `now_ns`, so
  // changing it never forgets demand at once.
  void set_window(int64_t now_ns, int64_t window_ns);

  // `now_ns` must not go backwards between calls (reset() first if it does).
  void note(int64_t now_ns, uint32_t level);
  // The highest level noted within the window up to `now_ns`; 0 if none.
  uint32_t max(int64_t now_ns) const;

  void reset();

 private:
  struct Slot {
    int64_t index = 0;  // which slot period; valid only if used
    uint32_t level = 0;
    bool used = false;
  };

  int64_t slot_of(int64_t t_ns) const;

  int64_t window_ns_;
  int64_t width_ns_;  // one slot: ceil(window / (kSlots - 1))
  std::array<Slot, kSlots> slots_{};
};

}  // namespace aq
