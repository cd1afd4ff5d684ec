// A bounded FIFO whose capacity can be raised or lowered at any time.
// Items are never lost, duplicated or reordered. Storage is allocated only
// when the capacity grows past it; push and pop never allocate.
#pragma once

#include <cstddef>
#include <memory>
#include <utility>

namespace aq {

template <class T>
class Ring {
 public:
  explicit Ring(size_t capacity = 0) { set_capacity(capacity); }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t capacity() const { return capacity_; }
  // Slots allocated; at least capacity() and size().
  size_t storage() const { return storage_; }
  // Also true after a shrink below size(): pushes wait until pops catch up.
  bool full() const { return size_ >= capacity_; }

  // Lowering keeps every queued item; only raising past storage() allocates.
  void set_capacity(size_t capacity) {
    if (capacity > storage_)
      reallocate(capacity);
    capacity_ = capacity;
  }

  // False, leaving `item` untouched, when full.
  bool push(T&& item) {
    if (full())
      return false;
    slots_[index(size_)] = std::move(item);
    ++size_;
    return true;
  }

  // False when empty.
  bool pop(T& out) {
    if (size_ == 0)
      return false;
    out = std::move(slots_[head_]);
    head_ = head_ + 1 == storage_ ? 0 : head_ + 1;
    --size_;
    return true;
  }

  // Oldest item; the ring must not be empty.
  T& front() { return slots_[head_]; }
  const T& front() const { return slots_[head_]; }

  // i-th item from the oldest; i < size().
  T& at(size_t i) { return slots_[index(i)]; }

 private:
  size_t index(size_t i) const {
    size_t j = head_ + i;
    return j >= storage_ ? j - storage_ : j;
  }

  void reallocate(size_t new_storage) {
    std::unique_ptr<T[]> fresh(new T[new_storage]);
    for (size_t i = 0; i < size_; ++i)
      fresh[i] = std::move(slots_[index(i)]);
    slots_ = std::move(fresh);
    storage_ = new_storage;
    head_ = 0;
  }

  std::unique_ptr<T[]> slots_;
  size_t storage_ = 0;
  size_t capacity_ = 0;
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace aq
