#include "models/instance_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace vsieve::models {
namespace {

using namespace std::chrono_literals;

// An instance that notices two users at once.
struct Counter {
  std::atomic<int> users{0};
  int uses = 0;
};

InstancePool<Counter>::Factory CounterFactory() {
  return [](const Device&) -> common::StatusOr<std::unique_ptr<Counter>> {
    return std::make_unique<Counter>();
  };
}

TEST(InstancePoolTest, ParsesCpuDevices) {
  auto device = ParseDevice("cpu:3");
  ASSERT_TRUE(device.ok());
  EXPECT_EQ(device->kind, Device::Kind::kCpu);
  EXPECT_EQ(device->index, 3);
  EXPECT_EQ(device->name, "cpu:3");
}

TEST(InstancePoolTest, RefusesBackendsThatAreNotCompiledIn) {
  auto cuda = ParseDevice("cuda:0");
  ASSERT_FALSE(cuda.ok());
  EXPECT_EQ(cuda.status().code(), common::ErrorCode::kInvalidArgument);
  EXPECT_EQ(cuda.status().message(),
            "device cuda:0: this build has no CUDA backend (OpenCV DNN was built without CUDA)");
  auto npu = ParseDevice("npu:1");
  ASSERT_FALSE(npu.ok());
  EXPECT_NE(npu.status().message().find("no NPU backend compiled in"), std::string::npos);
}

TEST(InstancePoolTest, RefusesMalformedDevicesNamingThem) {
  for (const char* text : {"gpu:0", "cpu", "cpu:", "cpu:x", "cpu:-1", ""}) {
    auto device = ParseDevice(text);
    ASSERT_FALSE(device.ok()) << text;
    EXPECT_EQ(device.status().code(), common::ErrorCode::kInvalidArgument);
    EXPECT_NE(device.status().message().find(std::string("device ") + text), std::string::npos)
        << device.status().message();
  }
  auto pool = InstancePool<Counter>::Create({"cpu:0", "tpu:0"}, 1, CounterFactory());
  ASSERT_FALSE(pool.ok());
  EXPECT_NE(pool.status().message().find("tpu:0"), std::string::npos);
}

TEST(InstancePoolTest, EachInstanceHasOneUserAtATime) {
  auto pool = InstancePool<Counter>::Create({"cpu:0", "cpu:1"}, 2, CounterFactory());
  ASSERT_TRUE(pool.ok());
  EXPECT_EQ((*pool)->size(), 4);
  std::atomic<int> overlaps{0};
  std::atomic<int> borrowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        auto lease = (*pool)->Borrow(10s);
        ASSERT_TRUE(lease.ok());
        if (lease->get()->users.fetch_add(1) != 0) overlaps.fetch_add(1);
        ++lease->get()->uses;
        borrowed.fetch_add(1);
        std::this_thread::yield();
        lease->get()->users.fetch_sub(1);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(borrowed.load(), 1600);
  int64_t borrows = 0;
  for (const DeviceCounters& counters : (*pool)->Counters()) {
    EXPECT_EQ(counters.busy, 0);
    EXPECT_EQ(counters.instances, 2);
    borrows += counters.borrows;
  }
  EXPECT_EQ(borrows, 1600);
}

TEST(InstancePoolTest, BorrowTimesOutWhenAllAreLent) {
  auto pool = InstancePool<Counter>::Create({"cpu:0"}, 1, CounterFactory());
  ASSERT_TRUE(pool.ok());
  auto held = (*pool)->Borrow(1s);
  ASSERT_TRUE(held.ok());
  const auto start = std::chrono::steady_clock::now();
  auto second = (*pool)->Borrow(100ms);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), common::ErrorCode::kTimeout);
  EXPECT_TRUE(second.status().retryable());
  EXPECT_GE(std::chrono::steady_clock::now() - start, 90ms);
  EXPECT_EQ((*pool)->Counters()[0].timeouts, 1);
}

TEST(InstancePoolTest, LeaseReturnsTheInstanceOnDestruction) {
  auto pool = InstancePool<Counter>::Create({"cpu:0"}, 1, CounterFactory());
  ASSERT_TRUE(pool.ok());
  Counter* first = nullptr;
  {
    auto lease = (*pool)->Borrow(1s);
    ASSERT_TRUE(lease.ok());
    first = lease->get();
    EXPECT_EQ(lease->device().name, "cpu:0");
    EXPECT_EQ((*pool)->Counters()[0].busy, 1);
  }
  EXPECT_EQ((*pool)->Counters()[0].busy, 0);
  auto again = (*pool)->Borrow(0ms);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->get(), first);

  // A waiter is woken by the return and its wait is counted.
  std::thread returner([lease = std::move(again).value()]() mutable {
    std::this_thread::sleep_for(50ms);
    auto dropped = std::move(lease);
  });
  auto waited = (*pool)->Borrow(5s);
  returner.join();
  ASSERT_TRUE(waited.ok());
  EXPECT_EQ((*pool)->Counters()[0].waits, 1);
  EXPECT_GT((*pool)->Counters()[0].wait_seconds_total, 0.0);
}

TEST(InstancePoolTest, FactoryErrorsNameTheDevice) {
  auto pool = InstancePool<Counter>::Create(
      {"cpu:0"}, 1, [](const Device&) -> common::StatusOr<std::unique_ptr<Counter>> {
        return common::Status(common::ErrorCode::kModelFailed, "bad weights");
      });
  ASSERT_FALSE(pool.ok());
  EXPECT_EQ(pool.status().code(), common::ErrorCode::kModelFailed);
  EXPECT_NE(pool.status().message().find("cpu:0"), std::string::npos);
}

}  // namespace
}  // namespace vsieve::models
