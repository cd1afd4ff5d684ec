// aq::Ring against a std::deque model. The input is a script of operations;
// every item carries a unique sequence number in its own allocation, so a
// lost, duplicated or reordered item shows up as a mismatch, and a slot read
// after its item moved out shows up as a null pointer (or an ASan report).
#include <deque>
#include <memory>

#include "fuzz_check.h"
#include "ring.h"

namespace {

using Item = std::unique_ptr<uint64_t>;

// Reads the script one byte at a time; past the end it reads zeros.
struct Script {
  const uint8_t* data;
  size_t size;
  size_t pos = 0;
  bool done() const { return pos >= size; }
  uint8_t next() { return pos < size ? data[pos++] : 0; }
};

// The capacities the element uses are small; 0..64 reaches every wrap-around.
constexpr size_t kMaxCapacity = 64;

struct Harness {
  aq::Ring<Item> ring;
  std::deque<uint64_t> model;
  size_t capacity;
  uint64_t next_seq = 0;

  explicit Harness(size_t cap) : ring(cap), capacity(cap) {}

  void push() {
    Item item = std::make_unique<uint64_t>(next_seq);
    bool accepted = ring.push(std::move(item));
    // Same rule as the model: refused once size reaches capacity, which
    // after a shrink may already be exceeded.
    FUZZ_CHECK(accepted == (model.size() < capacity));
    if (accepted) {
      model.push_back(next_seq++);
    } else {
      FUZZ_CHECK(item && *item == next_seq);  // a refused push leaves it untouched
    }
  }

  void pop() {
    Item out;
    bool got = ring.pop(out);
    FUZZ_CHECK(got == !model.empty());
    if (!got)
      return;
    FUZZ_CHECK(out && *out == model.front());
    model.pop_front();
  }

  void set_capacity(size_t cap) {
    ring.set_capacity(cap);
    capacity = cap;  // shrinking below size keeps every item
  }

  void front() {
    if (model.empty())
      return;  // front() on an empty ring is a caller error
    const auto& cring = ring;
    FUZZ_CHECK(ring.front() && *ring.front() == model.front());
    FUZZ_CHECK(cring.front() && *cring.front() == model.front());
  }

  void at(uint8_t arg) {
    if (model.empty())
      return;
    size_t i = arg % model.size();
    FUZZ_CHECK(ring.at(i) && *ring.at(i) == model[i]);
  }

  void check_state() const {
    FUZZ_CHECK(ring.size() == model.size());
    FUZZ_CHECK(ring.empty() == model.empty());
    FUZZ_CHECK(ring.capacity() == capacity);
    FUZZ_CHECK(ring.full() == (model.size() >= capacity));
    FUZZ_CHECK(ring.storage() >= ring.capacity());
    FUZZ_CHECK(ring.storage() >= ring.size());
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Script s{data, size};
  Harness h(s.next() % (kMaxCapacity + 1));
  h.check_state();

  while (!s.done()) {
    uint8_t op = s.next();
    uint8_t arg = s.next();
    // The low 3 bits pick the operation; pushes and pops get two codes each
    // so that random scripts both fill and drain the ring.
    switch (op & 7) {
      case 0:
      case 1:
        h.push();
        break;
      case 2:
      case 3:
        h.pop();
        break;
      case 4:
        h.set_capacity(arg % (kMaxCapacity + 1));
        break;
      case 5:
        h.front();
        break;
      case 6:
        h.at(arg);
        break;
      case 7:
        // A burst: the ring often goes from empty to full (or back) in one
        // step, which single operations reach only slowly.
        for (unsigned n = arg & 0x7f; n > 0; --n)
          (arg & 0x80) ? h.pop() : h.push();
        break;
    }
    h.check_state();
  }

  // Draining must give back exactly what the model holds, in order.
  while (!h.model.empty()) {
    h.pop();
    h.check_state();
  }
  Item out;
  FUZZ_CHECK(!h.ring.pop(out) && !out);
  return 0;
}
