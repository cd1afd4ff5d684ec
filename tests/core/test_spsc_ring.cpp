// SpscRing: single-threaded model checks (order, fullness, growth while
// wrapped) and a two-thread hand-off that checks every item arrives once
// and in order, with growth under a lock that keeps the consumer out; the
// tsan step of scripts/test-full runs it under ThreadSanitizer.
// SPDX-License-Identifier: LGPL-2.1-or-later

#include <cstdint>
#include <deque>
#include <mutex>
#include <random>
#include <thread>

#include "core_test.h"
#include "spsc_ring.h"

using aq::SpscRing;

START_TEST(storage_is_a_power_of_two) {
  SpscRing<int> r(5);
  ck_assert_uint_eq(r.storage(), 8);
  r.grow(9);
  ck_assert_uint_eq(r.storage(), 16);
  r.grow(3);  // never shrinks
  ck_assert_uint_eq(r.storage(), 16);
}
END_TEST

START_TEST(full_refuses_and_keeps_the_item) {
  SpscRing<int> r(4);
  for (int i = 0; i < 4; i++)
    ck_assert(r.try_push(int(i)));
  ck_assert(!r.can_push());
  int extra = 99;
  ck_assert(!r.try_push(std::move(extra)));
  ck_assert_int_eq(extra, 99);
  int out = -1;
  ck_assert(r.pop(out));
  ck_assert_int_eq(out, 0);
  ck_assert(r.can_push());
}
END_TEST

START_TEST(randomized_against_deque) {
  SpscRing<uint64_t> r(2);
  std::deque<uint64_t> model;
  std::mt19937 rng(7);
  uint64_t next = 0;
  for (int step = 0; step < 200000; step++) {
    const unsigned op = rng() % 10;
    if (op < 5) {
      if (!r.can_push())
        r.grow(r.storage() * 2);
      ck_assert(r.try_push(uint64_t(next)));
      model.push_back(next++);
    } else if (op < 9) {
      uint64_t out = 0;
      const bool got = r.pop(out);
      ck_assert(got == !model.empty());
      if (got) {
        if (out != model.front())
          ck_abort_msg("got %llu, want %llu", (unsigned long long)out,
                       (unsigned long long)model.front());
        model.pop_front();
      }
    } else if (rng() % 64 == 0 && r.storage() < 4096) {
      r.grow(r.storage() * 2);  // while wrapped, with items queued
    }
    if (r.size() != model.size())
      ck_abort_msg("size %zu, want %zu", r.size(), model.size());
    if (!model.empty() && r.front() != model.front())
      ck_abort_msg("front differs");
    if (r.empty() != model.empty())
      ck_abort_msg("empty() differs");
  }
}
END_TEST

// The element's pattern: one producer pushes without a lock and grows the
// ring under the lock when it is full; consumers pop only under the lock.
START_TEST(two_threads_hand_off_in_order) {
  constexpr uint64_t kItems = 200000;
  SpscRing<uint64_t> r(2);
  std::mutex lock;
  std::thread producer([&] {
    for (uint64_t i = 1; i <= kItems;) {
      if (r.try_push(uint64_t(i))) {
        i++;
        continue;
      }
      if (r.storage() < 1024) {
        std::lock_guard<std::mutex> l(lock);
        r.grow(r.storage() * 2);
      } else {
        std::this_thread::yield();
      }
    }
  });
  uint64_t expect = 1, bad = 0;
  while (expect <= kItems) {
    uint64_t out = 0;
    bool got;
    {
      std::lock_guard<std::mutex> l(lock);
      got = r.pop(out);
    }
    if (!got) {
      std::this_thread::yield();
      continue;
    }
    if (out != expect)
      bad++;
    expect = out + 1;
  }
  producer.join();
  ck_assert_uint_eq(bad, 0);
  ck_assert(r.empty());
}
END_TEST

static Suite* spsc_ring_suite() {
  Suite* s = suite_create("spsc_ring");
  TCase* tc = tcase_create("model");
  tcase_add_test(tc, storage_is_a_power_of_two);
  tcase_add_test(tc, full_refuses_and_keeps_the_item);
  tcase_add_test(tc, randomized_against_deque);
  suite_add_tcase(s, tc);
  tc = tcase_create("threads");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, two_threads_hand_off_in_order);
  suite_add_tcase(s, tc);
  return s;
}

int main() {
  return aqtest::run_suite(spsc_ring_suite());
}
