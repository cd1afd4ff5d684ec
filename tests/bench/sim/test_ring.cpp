// Ring: a randomized run against a std::deque model, resizing while items
// are queued, and proof that push and pop never allocate.
// SPDX-License-Identifier: LGPL-2.1-or-later

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "ring.h"
#include "core_test.h"

// Every allocation in this executable goes through these, so a test can
// tell whether the ring allocated.
namespace {
std::atomic<uint64_t> g_allocs{0};
std::atomic<uint64_t> g_frees{0};

void* counted_alloc(std::size_t n) {
  ++g_allocs;
  if (void* p = std::malloc(n == 0 ? 1 : n))
    return p;
  throw std::bad_alloc();
}

void counted_free(void* p) noexcept {
  if (p == nullptr)
    return;
  ++g_frees;
  std::free(p);
}
}  // namespace

void* operator new(std::size_t n) {
  return counted_alloc(n);
}
void* operator new[](std::size_t n) {
  return counted_alloc(n);
}
void operator delete(void* p) noexcept {
  counted_free(p);
}
void operator delete[](void* p) noexcept {
  counted_free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  counted_free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  counted_free(p);
}

using aq::Ring;

namespace {

// Not trivially copyable: only moves work, and a lost or duplicated
// payload shows up as a null pointer or a wrong sequence number.
struct Frame {
  std::unique_ptr<uint64_t> payload;
  uint64_t seq = 0;
  std::string tag;  // short: kept inline, so moving it never allocates
};

Frame make_frame(uint64_t seq) {
  return Frame{std::make_unique<uint64_t>(seq * 7), seq, "f" + std::to_string(seq % 10)};
}

// Checks in hot loops report only failures: every passing ck_assert also
// records its location with the runner, which costs more than the ring.
void check_frame(const Frame& f, uint64_t seq, const char* what) {
  if (f.payload == nullptr)
    ck_abort_msg("%s: frame %ju lost its payload", what, static_cast<uintmax_t>(seq));
  if (f.seq != seq || *f.payload != seq * 7)
    ck_abort_msg("%s: frame %ju where %ju was expected", what, static_cast<uintmax_t>(f.seq),
                 static_cast<uintmax_t>(seq));
  if (f.tag != "f" + std::to_string(seq % 10))
    ck_abort_msg("%s: tag of frame %ju", what, static_cast<uintmax_t>(seq));
}

START_TEST(randomized_against_deque) {
  std::mt19937 rng(0xA0C0FFEE);
  Ring<Frame> ring;
  std::deque<uint64_t> model;
  size_t capacity = 0, storage = 0;
  uint64_t next_seq = 0;
  int pushes = 0, refused = 0, pops = 0, grows = 0, shrinks = 0;

  for (int op = 0; op < 100'000; ++op) {
    const unsigned kind = rng() % 100;
    if (kind < 46) {
      Frame f = make_frame(next_seq);
      const bool fits = model.size() < capacity;
      if (ring.push(std::move(f)) != fits)
        ck_abort_msg("op %d: push returned %d", op, !fits);
      if (fits) {
        model.push_back(next_seq++);
        ++pushes;
      } else {
        check_frame(f, next_seq, "refused push");  // left untouched
        ++refused;
      }
    } else if (kind < 90) {
      Frame out = make_frame(999'999);
      const bool had = !model.empty();
      if (ring.pop(out) != had)
        ck_abort_msg("op %d: pop returned %d", op, !had);
      if (had) {
        check_frame(out, model.front(), "pop");
        model.pop_front();
        ++pops;
      } else {
        check_frame(out, 999'999, "pop from empty");
      }
    } else {
      // Anywhere from 0 to 48, often below the current size.
      const size_t cap = rng() % 49;
      if (cap > capacity)
        ++grows;
      if (cap < capacity)
        ++shrinks;
      ring.set_capacity(cap);
      capacity = cap;
      if (cap > storage)
        storage = cap;  // storage only ever grows
    }

    if (ring.size() != model.size() || ring.empty() != model.empty() ||
        ring.capacity() != capacity || ring.storage() != storage ||
        ring.full() != (model.size() >= capacity))
      ck_abort_msg("op %d: size %zu (model %zu), capacity %zu (%zu), storage %zu (%zu), full %d",
                   op, ring.size(), model.size(), ring.capacity(), capacity, ring.storage(),
                   storage, ring.full());
    if (!model.empty())
      check_frame(ring.front(), model.front(), "front");
    if (op % 1000 == 0)
      for (size_t i = 0; i < model.size(); ++i)
        check_frame(ring.at(i), model[i], "at");
  }
  // The mix really exercised every path.
  ck_assert_int_gt(pushes, 10'000);
  ck_assert_int_gt(refused, 1'000);
  ck_assert_int_gt(pops, 10'000);
  ck_assert_int_gt(grows, 1'000);
  ck_assert_int_gt(shrinks, 1'000);
}
END_TEST

START_TEST(shrink_below_size_keeps_every_item) {
  Ring<Frame> ring(8);
  for (uint64_t i = 0; i < 8; ++i)
    ck_assert(ring.push(make_frame(i)));
  ring.set_capacity(3);
  ck_assert_uint_eq(ring.size(), 8);
  ck_assert(ring.full());
  Frame extra = make_frame(100);
  ck_assert(!ring.push(std::move(extra)));
  check_frame(extra, 100, "refused push");
  // Pops drain the backlog in order; pushes resume only below 3.
  Frame out;
  for (uint64_t i = 0; i < 5; ++i) {
    ck_assert(ring.full());
    ck_assert(ring.pop(out));
    check_frame(out, i, "draining pop");
  }
  ck_assert_uint_eq(ring.size(), 3);
  ck_assert(ring.full());
  ck_assert(ring.pop(out));
  check_frame(out, 5, "draining pop");
  ck_assert(!ring.full());
  ck_assert(ring.push(make_frame(8)));
  for (uint64_t i = 6; i <= 8; ++i) {
    ck_assert(ring.pop(out));
    check_frame(out, i, "final pop");
  }
  ck_assert(ring.empty());
  ck_assert(!ring.pop(out));
}
END_TEST

START_TEST(grow_while_wrapped_keeps_order) {
  Ring<Frame> ring(5);
  Frame out;
  // Move the head to the middle so the items wrap around the storage end.
  for (uint64_t i = 0; i < 3; ++i)
    ck_assert(ring.push(make_frame(i)));
  for (uint64_t i = 0; i < 3; ++i)
    ck_assert(ring.pop(out));
  for (uint64_t i = 3; i < 8; ++i)
    ck_assert(ring.push(make_frame(i)));
  ck_assert(ring.full());
  ring.set_capacity(9);
  ck_assert_uint_eq(ring.storage(), 9);
  for (uint64_t i = 8; i < 12; ++i)
    ck_assert(ring.push(make_frame(i)));
  ck_assert(ring.full());
  for (uint64_t i = 3; i < 12; ++i) {
    check_frame(ring.at(i - 3), i, "at after grow");
  }
  for (uint64_t i = 3; i < 12; ++i) {
    ck_assert(ring.pop(out));
    check_frame(out, i, "pop after grow");
  }
}
END_TEST

START_TEST(zero_capacity_holds_nothing) {
  Ring<Frame> ring;
  ck_assert_uint_eq(ring.capacity(), 0);
  ck_assert_uint_eq(ring.storage(), 0);
  ck_assert(ring.full());
  ck_assert(ring.empty());
  Frame f = make_frame(1);
  ck_assert(!ring.push(std::move(f)));
  check_frame(f, 1, "refused push");
  Frame out;
  ck_assert(!ring.pop(out));
}
END_TEST

START_TEST(popped_items_are_not_retained) {
  // Counted references show what the ring still holds after a pop.
  auto a = std::make_shared<int>(1);
  auto x = std::make_shared<int>(9);
  Ring<std::shared_ptr<int>> ring(4);
  ck_assert(ring.push(std::shared_ptr<int>(a)));
  ck_assert_int_eq(a.use_count(), 2);
  std::shared_ptr<int> out = x;
  ck_assert(ring.pop(out));
  ck_assert_ptr_eq(out.get(), a.get());
  ck_assert_int_eq(a.use_count(), 2);  // here and in `out`, not in the ring
  ck_assert_int_eq(x.use_count(), 1);  // out's old value was released, not parked
}
END_TEST

// Fills and drains the ring `rounds` times, moving items between it and a
// preallocated pool, and checks the order on the way.
template <class T, class Check>
void cycle(Ring<T>& ring, std::vector<T>& pool, int rounds, Check check) {
  const size_t n = pool.size();
  T out{};
  for (int r = 0; r < rounds; ++r) {
    for (size_t i = 0; i < n; ++i)
      if (!ring.push(std::move(pool[i])))
        ck_abort_msg("round %d: push %zu refused", r, i);
    T spare{};
    if (ring.push(std::move(spare)))
      ck_abort_msg("round %d: push into a full ring", r);
    for (size_t i = 0; i < n; ++i) {
      if (!ring.pop(out))
        ck_abort_msg("round %d: pop %zu found nothing", r, i);
      check(out, i);
      pool[i] = std::move(out);
    }
    if (ring.pop(out))
      ck_abort_msg("round %d: pop from an empty ring", r);
  }
}

template <class T, class Make, class Check>
void push_and_pop_do_not_allocate(Make make, Check check) {
  Ring<T> ring;
  ring.set_capacity(64);
  std::vector<T> pool;
  pool.reserve(64);
  for (size_t i = 0; i < 64; ++i)
    pool.push_back(make(i));

  const uint64_t allocs = g_allocs.load(), frees = g_frees.load();
  cycle(ring, pool, 2000, check);
  // Half full, then pushes and pops interleaved so the head wraps.
  T out{};
  for (size_t i = 0; i < 32; ++i)
    ck_assert(ring.push(std::move(pool[i])));
  for (int k = 0; k < 10'000; ++k) {
    if (!ring.pop(out))
      ck_abort_msg("step %d: pop found nothing", k);
    check(out, static_cast<size_t>(k) % 32);
    if (!ring.push(std::move(out)))
      ck_abort_msg("step %d: push refused", k);
  }
  ck_assert_uint_eq(g_allocs.load(), allocs);
  ck_assert_uint_eq(g_frees.load(), frees);

  // Growing past the storage allocates once and frees the old block.
  ring.set_capacity(128);
  ck_assert_uint_eq(g_allocs.load(), allocs + 1);
  ck_assert_uint_eq(g_frees.load(), frees + 1);
  for (size_t i = 0; i < 32; ++i)
    check(ring.at(i), (10'000 + i) % 32);

  // Shrinking, and growing back within the storage, allocate nothing.
  ring.set_capacity(4);
  ring.set_capacity(100);
  ring.set_capacity(128);
  ck_assert_uint_eq(ring.storage(), 128);
  ck_assert_uint_eq(g_allocs.load(), allocs + 1);
  ck_assert_uint_eq(g_frees.load(), frees + 1);

  ring.set_capacity(129);
  ck_assert_uint_eq(g_allocs.load(), allocs + 2);
  ck_assert_uint_eq(ring.size(), 32);
}

START_TEST(unique_ptr_push_pop_allocate_nothing) {
  push_and_pop_do_not_allocate<std::unique_ptr<int>>(
      [](size_t i) { return std::make_unique<int>(static_cast<int>(i)); },
      [](const std::unique_ptr<int>& p, size_t i) {
        if (!p || *p != static_cast<int>(i))
          ck_abort_msg("item %zu lost or out of order", i);
      });
}
END_TEST

START_TEST(frame_push_pop_allocate_nothing) {
  push_and_pop_do_not_allocate<Frame>([](size_t i) { return make_frame(i); },
                                      [](const Frame& f, size_t i) { check_frame(f, i, "cycle"); });
}
END_TEST

// Where test allocations escape to, so the compiler cannot elide them.
void* volatile g_escape = nullptr;

START_TEST(allocation_counter_sees_allocations) {
  // Guards the tests above against counting hooks that are not in use.
  const uint64_t allocs = g_allocs.load(), frees = g_frees.load();
  {
    auto p = std::make_unique<int>(5);
    g_escape = p.get();
  }
  {
    std::vector<int> v(10);
    g_escape = v.data();
  }
  ck_assert_uint_eq(g_allocs.load(), allocs + 2);
  ck_assert_uint_eq(g_frees.load(), frees + 2);
}
END_TEST

Suite* ring_suite() {
  Suite* s = suite_create("ring");
  TCase* model = tcase_create("model");
  tcase_add_test(model, randomized_against_deque);
  tcase_add_test(model, shrink_below_size_keeps_every_item);
  tcase_add_test(model, grow_while_wrapped_keeps_order);
  tcase_add_test(model, zero_capacity_holds_nothing);
  tcase_add_test(model, popped_items_are_not_retained);
  tcase_set_timeout(model, 60);
  suite_add_tcase(s, model);

  TCase* alloc = tcase_create("allocation");
  tcase_add_test(alloc, allocation_counter_sees_allocations);
  tcase_add_test(alloc, unique_ptr_push_pop_allocate_nothing);
  tcase_add_test(alloc, frame_push_pop_allocate_nothing);
  tcase_set_timeout(alloc, 60);
  suite_add_tcase(s, alloc);
  return s;
}

}  // namespace

int main() {
  return aqtest::run_suite(ring_suite());
}
