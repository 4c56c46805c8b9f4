#include "models/runtime/instance_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "models/runtime/npu_backend.h"

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

TEST(InstancePoolTest, TheNpuBackendIsNotCompiledIn) {
  auto backend = CreateNpuBackend();
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(backend.status().code(), common::ErrorCode::kInvalidArgument);
  EXPECT_NE(backend.status().message().find("npu backend not compiled in"), std::string::npos);
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

TEST(InstancePoolTest, WeightsSetInstancesInProportionToTheHeaviestDevice) {
  PoolOptions options;
  options.model = "weighted";
  options.devices = {"cpu:0", "cpu:1", "cpu:2"};
  options.weights = {4, 2, 1};
  options.instances = 4;
  auto pool = InstancePool<Counter>::Create(options, CounterFactory());
  ASSERT_TRUE(pool.ok()) << pool.status().ToString();
  std::vector<int> counts;
  for (const DeviceCounters& counters : (*pool)->Counters()) counts.push_back(counters.instances);
  EXPECT_EQ(counts, (std::vector<int>{4, 2, 1}));
  EXPECT_EQ((*pool)->size(), 7);
  EXPECT_DOUBLE_EQ((*pool)->Counters()[1].weight, 2);

  // Seed 000's compute levels: 20 and 8 (rounded), and every device keeps at least one.
  options.devices = {"cpu:0", "cpu:1"};
  options.weights = {20, 8};
  auto levels = InstancePool<Counter>::Create(options, CounterFactory());
  ASSERT_TRUE(levels.ok());
  EXPECT_EQ((*levels)->Counters()[1].instances, 2);
  options.weights = {100, 1};
  auto tiny = InstancePool<Counter>::Create(options, CounterFactory());
  ASSERT_TRUE(tiny.ok());
  EXPECT_EQ((*tiny)->Counters()[1].instances, 1);
}

TEST(InstancePoolTest, BorrowsGoWhereLoadPerWeightIsLowest) {
  PoolOptions options;
  options.model = "weighted";
  options.devices = {"cpu:0", "cpu:1"};
  options.weights = {2, 1};
  options.instances = 2;
  auto pool = InstancePool<Counter>::Create(options, CounterFactory());
  ASSERT_TRUE(pool.ok());
  std::vector<InstancePool<Counter>::Lease> held;
  std::vector<std::string> devices;
  for (int i = 0; i < 3; ++i) {
    auto lease = (*pool)->Borrow(1s);
    ASSERT_TRUE(lease.ok());
    devices.push_back(lease->device().name);
    held.push_back(std::move(lease).value());
  }
  // Loads before each borrow: cpu:0 0.5 vs cpu:1 1; then 1 vs 1 (tie: first device); then -
  // vs 1.
  EXPECT_EQ(devices, (std::vector<std::string>{"cpu:0", "cpu:0", "cpu:1"}));

  // Equal weights alternate.
  auto even = InstancePool<Counter>::Create({"cpu:0", "cpu:1"}, 2, CounterFactory());
  ASSERT_TRUE(even.ok());
  auto a = (*even)->Borrow(1s);
  auto b = (*even)->Borrow(1s);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->device().name, b->device().name);
}

TEST(InstancePoolTest, BadWeightsAndCostsAreRefused) {
  PoolOptions options;
  options.model = "yolo";
  options.devices = {"cpu:0", "cpu:1"};
  options.weights = {1};
  auto short_weights = InstancePool<Counter>::Create(options, CounterFactory());
  ASSERT_FALSE(short_weights.ok());
  EXPECT_NE(short_weights.status().message().find("expected one weight per device (2), got 1"),
            std::string::npos)
      << short_weights.status().message();
  options.weights = {1, 0};
  EXPECT_EQ(InstancePool<Counter>::Create(options, CounterFactory()).status().code(),
            common::ErrorCode::kInvalidArgument);
  options.weights = {};
  options.cost = 3;
  options.budgets = std::make_shared<DeviceBudgets>(std::map<std::string, double>{{"cpu:1", 2}});
  auto too_heavy = InstancePool<Counter>::Create(options, CounterFactory());
  ASSERT_FALSE(too_heavy.ok());
  EXPECT_NE(too_heavy.status().message().find("model yolo"), std::string::npos);
  EXPECT_NE(too_heavy.status().message().find("device cpu:1"), std::string::npos)
      << too_heavy.status().message();
}

// Two heavy models (cost 1 each) on a device whose budget is 1 never run at once; a light one
// (cost 0) is not held back; a borrow that waits for the budget is woken by the other pool.
TEST(InstancePoolTest, ABudgetKeepsTwoHeavyModelsApart) {
  auto budgets = std::make_shared<DeviceBudgets>(std::map<std::string, double>{{"cpu:0", 1}});
  const auto make = [&](const std::string& model, double cost) {
    PoolOptions options;
    options.model = model;
    options.devices = {"cpu:0"};
    options.instances = 2;
    options.cost = cost;
    options.budgets = budgets;
    auto pool = InstancePool<Counter>::Create(options, CounterFactory());
    EXPECT_TRUE(pool.ok()) << pool.status().ToString();
    return std::move(pool).value();
  };
  auto yolo = make("budget_yolo", 1);
  auto head = make("budget_head", 1);
  auto light = make("budget_light", 0);

  auto held = yolo->Borrow(1s);
  ASSERT_TRUE(held.ok());
  EXPECT_DOUBLE_EQ(budgets->used("cpu:0"), 1);
  auto blocked = head->Borrow(50ms);
  ASSERT_FALSE(blocked.ok());
  EXPECT_EQ(blocked.status().code(), common::ErrorCode::kTimeout);
  EXPECT_NE(blocked.status().message().find("device budget exhausted"), std::string::npos)
      << blocked.status().message();
  EXPECT_EQ(head->Counters()[0].budget_waits, 1);
  // The second instance of the same heavy model waits too: the budget is per device.
  EXPECT_FALSE(yolo->Borrow(10ms).ok());
  auto free_ride = light->Borrow(0ms);
  EXPECT_TRUE(free_ride.ok());

  std::thread releaser([lease = std::move(held).value()]() mutable {
    std::this_thread::sleep_for(50ms);
    auto dropped = std::move(lease);
  });
  auto woken = head->Borrow(10s);
  releaser.join();
  ASSERT_TRUE(woken.ok()) << woken.status().ToString();
  EXPECT_EQ(head->Counters()[0].budget_waits, 2);

  // Under load: never two heavy instances busy at once.
  { auto dropped = std::move(woken).value(); }
  std::atomic<int> heavy_running{0};
  std::atomic<int> overlaps{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto& pool = t % 2 == 0 ? yolo : head;
      for (int i = 0; i < 100; ++i) {
        auto lease = pool->Borrow(10s);
        ASSERT_TRUE(lease.ok());
        if (heavy_running.fetch_add(1) != 0) overlaps.fetch_add(1);
        std::this_thread::yield();
        heavy_running.fetch_sub(1);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_DOUBLE_EQ(budgets->used("cpu:0"), 0);
}

TEST(InstancePoolTest, ABudgetFitsHeavyModelsThatSumWithinIt) {
  auto budgets = std::make_shared<DeviceBudgets>(std::map<std::string, double>{{"cpu:0", 2}});
  PoolOptions options;
  options.devices = {"cpu:0"};
  options.cost = 1;
  options.budgets = budgets;
  options.model = "fit_a";
  auto a = InstancePool<Counter>::Create(options, CounterFactory());
  options.model = "fit_b";
  auto b = InstancePool<Counter>::Create(options, CounterFactory());
  ASSERT_TRUE(a.ok() && b.ok());
  auto first = (*a)->Borrow(0ms);
  auto second = (*b)->Borrow(0ms);
  EXPECT_TRUE(first.ok());
  EXPECT_TRUE(second.ok());
  EXPECT_DOUBLE_EQ(budgets->used("cpu:0"), 2);
  // An unlisted device is unlimited.
  EXPECT_DOUBLE_EQ(budgets->budget("cpu:7"), 0);
  EXPECT_TRUE(budgets->TryAcquire("cpu:7", 1000));
}

// The value of one series in the global registry's text, or -1 when absent.
double SeriesValue(const std::string& series) {
  const std::string text = common::MetricsRegistry::Global().Render();
  const size_t at = text.find(series + " ");
  return at == std::string::npos ? -1 : std::stod(text.substr(at + series.size() + 1));
}

TEST(InstancePoolTest, BorrowWaitsAreExportedAsMetrics) {
  const std::string labels = R"({device="cpu:3",model="metrics_pool"})";
  const double borrows_before =
      std::max(0.0, SeriesValue("vsieve_model_borrow_wait_seconds_count" + labels));
  PoolOptions options;
  options.model = "metrics_pool";
  options.devices = {"cpu:3"};
  auto pool = InstancePool<Counter>::Create(options, CounterFactory());
  ASSERT_TRUE(pool.ok());
  auto lease = (*pool)->Borrow(1s);
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(SeriesValue("vsieve_model_borrow_wait_seconds_count" + labels), borrows_before + 1);
  // Counts the daemon exports from Counters() are not exported by the pool a second time.
  EXPECT_EQ(SeriesValue("vsieve_model_instances" + labels), -1);
  EXPECT_EQ(SeriesValue("vsieve_model_instances_busy" + labels), -1);
}

}  // namespace
}  // namespace vsieve::models
