#include "queue/slot_gate.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace vsieve::queue {
namespace {

TEST(SlotGateTest, TakesAndGivesBack) {
  SlotGate gate(2);
  EXPECT_EQ(gate.free(), 2);
  EXPECT_TRUE(gate.Acquire());
  EXPECT_TRUE(gate.Acquire());
  EXPECT_EQ(gate.free(), 0);
  gate.Release();
  EXPECT_EQ(gate.free(), 1);
  EXPECT_EQ(SlotGate(0).free(), 1);  // never fewer than one slot
}

TEST(SlotGateTest, NeverMoreHoldersThanSlots) {
  SlotGate gate(3);
  std::atomic<int> holders{0};
  std::atomic<int> most{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int k = 0; k < 200; ++k) {
        ASSERT_TRUE(gate.Acquire());
        const int now = holders.fetch_add(1) + 1;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        std::this_thread::yield();
        holders.fetch_sub(1);
        gate.Release();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_LE(most.load(), 3);
  EXPECT_EQ(gate.free(), 3);
}

TEST(SlotGateTest, CloseWakesWaiters) {
  SlotGate gate(1);
  ASSERT_TRUE(gate.Acquire());
  std::atomic<int> failed{0};
  std::vector<std::thread> waiters;
  for (int t = 0; t < 3; ++t) {
    waiters.emplace_back([&] {
      if (!gate.Acquire()) failed.fetch_add(1);
    });
  }
  gate.Close();
  for (auto& waiter : waiters) waiter.join();
  EXPECT_EQ(failed.load(), 3);
  gate.Release();  // still counted after closing
  EXPECT_FALSE(gate.Acquire());
}

}  // namespace
}  // namespace vsieve::queue
