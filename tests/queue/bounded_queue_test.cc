#include "queue/bounded_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace vsieve::queue {
namespace {

TEST(BoundedQueueTest, FifoForOneProducerAndConsumer) {
  BoundedQueue<int> q(4);
  for (int i = 0; i < 3; ++i) {
    auto item = std::make_unique<int>(i);
    ASSERT_TRUE(q.Push(item));
    EXPECT_EQ(item, nullptr);
  }
  EXPECT_EQ(q.size(), 3U);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(*q.Pop(), i);
}

TEST(BoundedQueueTest, FailedPushAfterCloseKeepsOwnership) {
  BoundedQueue<int> q(2);
  q.Close();
  auto item = std::make_unique<int>(7);
  EXPECT_FALSE(q.Push(item));
  ASSERT_NE(item, nullptr);
  EXPECT_EQ(*item, 7);
  EXPECT_EQ(q.Pop(), nullptr);
}

TEST(BoundedQueueTest, CloseDrainsRemainingItemsThenReturnsNull) {
  BoundedQueue<int> q(2);
  auto a = std::make_unique<int>(1);
  ASSERT_TRUE(q.Push(a));
  q.Close();
  auto first = q.Pop();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(*first, 1);
  EXPECT_EQ(q.Pop(), nullptr);
}

TEST(BoundedQueueTest, ManyProducersAndConsumersDeliverEachItemOnceWithinCapacity) {
  constexpr int kProducers = 4;
  constexpr int kPerProducer = 2000;
  BoundedQueue<int> q(8);
  std::atomic<long long> sum{0};
  std::atomic<int> count{0};
  std::atomic<size_t> max_size{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < kPerProducer; ++i) {
        auto item = std::make_unique<int>(p * kPerProducer + i);
        ASSERT_TRUE(q.Push(item));
        size_t seen = q.size();
        size_t old = max_size.load();
        while (seen > old && !max_size.compare_exchange_weak(old, seen)) {
        }
      }
    });
  }
  std::vector<std::thread> consumers;
  for (int c = 0; c < 3; ++c) {
    consumers.emplace_back([&] {
      while (auto item = q.Pop()) {
        sum += *item;
        ++count;
      }
    });
  }
  for (auto& t : threads) t.join();
  q.Close();
  for (auto& t : consumers) t.join();
  const long long n = kProducers * kPerProducer;
  EXPECT_EQ(count.load(), n);
  EXPECT_EQ(sum.load(), n * (n - 1) / 2);
  EXPECT_LE(max_size.load(), q.capacity());
}

TEST(BoundedQueueTest, PopForTimesOutThenDrainsAfterClose) {
  BoundedQueue<int> q(2);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(q.PopFor(std::chrono::milliseconds(50)), nullptr);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(40));
  EXPECT_FALSE(q.closed());
  auto item = std::make_unique<int>(7);
  ASSERT_TRUE(q.Push(item));
  q.Close();
  EXPECT_TRUE(q.closed());
  auto popped = q.PopFor(std::chrono::seconds(5));
  ASSERT_NE(popped, nullptr);
  EXPECT_EQ(*popped, 7);
  EXPECT_EQ(q.PopFor(std::chrono::seconds(5)), nullptr);  // closed and drained: no wait
  EXPECT_EQ(q.size(), 0U);
}

}  // namespace
}  // namespace vsieve::queue
