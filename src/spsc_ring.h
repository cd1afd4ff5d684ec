// A FIFO between one producer thread and one consumer side, with no lock:
// the producer publishes an item by moving the tail, the consumer frees a
// slot by moving the head, and each side keeps its index on its own cache
// line with a cached copy of the other's, so a hand-off touches a shared
// line only when the cached view runs out.
//
// Roles: push() and try_push() from the producer thread only; pop(),
// front() and empty() from one consumer at a time (callers that pop from
// several threads serialize them with a lock, which orders them). grow()
// needs both sides quiet: the producer thread calls it with the consumers
// locked out. Storage is a power of two and only grows.
//
// `Side` is state the producer writes with each item (counters, say): it
// shares the tail's cache line, so a consumer that reads the tail gets it
// in the same transfer. It must fit in that line with the two indices.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <utility>

namespace aq {

struct NoSide {};

template <class T, class Side = NoSide>
class SpscRing {
 public:
  explicit SpscRing(size_t slots = 16) { grow(slots); }
  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  // Slots allocated.
  size_t storage() const { return mask_ + 1; }

  // The producer's side state, on the tail's line.
  Side& side() { return side_; }
  const Side& side() const { return side_; }

  // Producer: whether try_push() would succeed now.
  bool can_push() {
    const size_t tail = tail_.load(std::memory_order_relaxed);
    if (tail - head_cache_ <= mask_)
      return true;
    head_cache_ = head_.load(std::memory_order_acquire);
    return tail - head_cache_ <= mask_;
  }

  // Producer: false, leaving `item` untouched, when every slot is taken.
  bool try_push(T&& item) {
    const size_t tail = tail_.load(std::memory_order_relaxed);
    if (tail - head_cache_ > mask_) {
      head_cache_ = head_.load(std::memory_order_acquire);
      if (tail - head_cache_ > mask_)
        return false;
    }
    slots_[tail & mask_] = std::move(item);
    tail_.store(tail + 1, std::memory_order_release);
    return true;
  }

  // Consumer: false when empty.
  bool pop(T& out) {
    const size_t head = head_.load(std::memory_order_relaxed);
    if (head == tail_cache_) {
      tail_cache_ = tail_.load(std::memory_order_acquire);
      if (head == tail_cache_)
        return false;
    }
    out = std::move(slots_[head & mask_]);
    head_.store(head + 1, std::memory_order_release);
    return true;
  }

  // Consumer: whether nothing is published.
  bool empty() {
    const size_t head = head_.load(std::memory_order_relaxed);
    if (head != tail_cache_)
      return false;
    tail_cache_ = tail_.load(std::memory_order_acquire);
    return head == tail_cache_;
  }

  // Consumer: the oldest item; the ring must not be empty().
  T& front() { return slots_[head_.load(std::memory_order_relaxed) & mask_]; }

  // Consumer: items published (may grow meanwhile).
  size_t size() {
    tail_cache_ = tail_.load(std::memory_order_acquire);
    return tail_cache_ - head_.load(std::memory_order_relaxed);
  }

  // Monotonic count of items ever published; a waiter watches it move.
  size_t published() const { return tail_.load(std::memory_order_acquire); }

  // Both sides quiet: room for at least `slots` items, order kept. Only the
  // producer thread calls it, with every consumer locked out.
  void grow(size_t slots) {
    size_t want = 1;
    while (want < slots)
      want <<= 1;
    if (slots_ && want <= mask_ + 1)
      return;
    std::unique_ptr<T[]> fresh(new T[want]);
    const size_t head = head_.load(std::memory_order_relaxed);
    const size_t tail = tail_.load(std::memory_order_relaxed);
    for (size_t i = head; i != tail; ++i)
      fresh[i & (want - 1)] = std::move(slots_[i & mask_]);
    slots_ = std::move(fresh);
    mask_ = want - 1;
  }

 private:
  // Producer-written line, then consumer-written line.
  alignas(64) std::atomic<size_t> tail_{0};
  size_t head_cache_ = 0;  // producer's view of head_
  Side side_;
  static_assert(sizeof(Side) + 2 * sizeof(size_t) <= 64, "Side must share the tail's line");
  alignas(64) std::atomic<size_t> head_{0};
  size_t tail_cache_ = 0;  // consumer's view of tail_
  alignas(64) std::unique_ptr<T[]> slots_;
  size_t mask_ = 0;
};

}  // namespace aq
