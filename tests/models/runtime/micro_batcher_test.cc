#include "models/runtime/micro_batcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

namespace vsieve::models {
namespace {

using common::ErrorCode;
using namespace std::chrono_literals;

constexpr double kForever = 600000;  // ms: a delay no test waits for

// Doubles every item; fails a pass holding an item whose value is 666; records pass sizes.
class FakeItemModel : public ItemModel {
 public:
  explicit FakeItemModel(int capacity) : capacity_(capacity) {}
  int batch_capacity() const override { return capacity_; }
  common::StatusOr<std::vector<std::vector<cv::Mat>>> RunItems(
      const std::vector<cv::Mat>& items) override {
    if (busy_.fetch_add(1) != 0) overlapped_ = true;
    {
      std::lock_guard lock(mutex_);
      passes_.push_back(static_cast<int>(items.size()));
    }
    std::vector<std::vector<cv::Mat>> outputs;
    bool poisoned = false;
    for (const cv::Mat& item : items) {
      poisoned = poisoned || item.at<float>(0) == 666.0f;
      outputs.push_back({item * 2.0});
    }
    busy_.fetch_sub(1);
    if (poisoned) return common::Status(ErrorCode::kModelFailed, "poisoned pass");
    return outputs;
  }
  std::vector<int> passes() const {
    std::lock_guard lock(mutex_);
    return passes_;
  }
  bool overlapped() const { return overlapped_; }

 private:
  int capacity_;
  mutable std::mutex mutex_;
  std::vector<int> passes_;
  std::atomic<int> busy_{0};
  std::atomic<bool> overlapped_{false};
};

cv::Mat Value(float value) { return cv::Mat(1, 3, CV_32F, cv::Scalar(value)); }

std::vector<cv::Mat> Values(float first, int count) {
  std::vector<cv::Mat> items;
  for (int i = 0; i < count; ++i) items.push_back(Value(first + static_cast<float>(i)));
  return items;
}

// Checks that `outputs` are the doubled `first`, `first + 1`, ... in order.
void ExpectDoubled(const std::vector<std::vector<cv::Mat>>& outputs, float first, int count) {
  ASSERT_EQ(outputs.size(), static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    ASSERT_EQ(outputs[i].size(), 1u);
    EXPECT_EQ(outputs[i][0].at<float>(0), 2 * (first + static_cast<float>(i))) << i;
  }
}

std::unique_ptr<MicroBatcher> Batcher(FakeItemModel* model, int max_batch, double delay_ms) {
  MicroBatcherOptions options;
  options.max_batch = max_batch;
  options.max_delay_ms = delay_ms;
  options.label = "fake";
  auto batcher = MicroBatcher::ForModel(model, options);
  EXPECT_TRUE(batcher.ok()) << batcher.status().ToString();
  return batcher.ok() ? std::move(batcher).value() : nullptr;
}

TEST(MicroBatcherTest, ItemsFromFourThreadsShareOnePass) {
  FakeItemModel model(16);
  auto batcher = Batcher(&model, 8, kForever);  // only a full pass can run
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const float first = 100.0f * static_cast<float>(t);
      auto outputs = batcher->Run(Values(first, 2));
      ASSERT_TRUE(outputs.ok()) << outputs.status().ToString();
      ExpectDoubled(*outputs, first, 2);
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(model.passes(), std::vector<int>{8});
  EXPECT_EQ(batcher->stats().passes, 1);
  EXPECT_EQ(batcher->stats().items, 8);
}

TEST(MicroBatcherTest, OrderIsKeptPerCallerWhenItemsSpanPasses) {
  FakeItemModel model(16);
  auto batcher = Batcher(&model, 4, kForever);
  std::thread big([&] {
    auto outputs = batcher->Run(Values(10, 6));
    ASSERT_TRUE(outputs.ok()) << outputs.status().ToString();
    ExpectDoubled(*outputs, 10, 6);
  });
  std::thread small([&] {
    auto outputs = batcher->Run(Values(50, 2));
    ASSERT_TRUE(outputs.ok()) << outputs.status().ToString();
    ExpectDoubled(*outputs, 50, 2);
  });
  big.join();
  small.join();
  EXPECT_EQ(model.passes(), (std::vector<int>{4, 4}));
}

TEST(MicroBatcherTest, TheOldestItemWaitsAtMostTheDelay) {
  FakeItemModel model(16);
  auto batcher = Batcher(&model, 8, 30);
  const auto start = std::chrono::steady_clock::now();
  auto outputs = batcher->Run(Values(1, 1));
  ASSERT_TRUE(outputs.ok());
  ExpectDoubled(*outputs, 1, 1);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);  // it did wait for company
  EXPECT_EQ(model.passes(), std::vector<int>{1});
}

TEST(MicroBatcherTest, TheModelCapacityCapsThePass) {
  FakeItemModel model(3);
  auto batcher = Batcher(&model, 8, 0);
  EXPECT_EQ(batcher->pass_size(), 3);
  auto outputs = batcher->Run(Values(0, 7));
  ASSERT_TRUE(outputs.ok());
  ExpectDoubled(*outputs, 0, 7);
  EXPECT_EQ(model.passes(), (std::vector<int>{3, 3, 1}));
}

// A shared pass that fails is run again per caller: only the caller whose items fail gets the
// error.
TEST(MicroBatcherTest, AFailedSharedPassFailsOnlyTheCallerThatFails) {
  FakeItemModel model(16);
  auto batcher = Batcher(&model, 4, kForever);
  common::StatusOr<std::vector<std::vector<cv::Mat>>> first =
      common::Status(ErrorCode::kInternal, "not run");
  common::Status second;
  std::thread a([&] { first = batcher->Run(Values(1, 2)); });
  std::thread b([&] { second = batcher->Run({Value(666), Value(3)}).status(); });
  a.join();
  b.join();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ExpectDoubled(*first, 1, 2);
  EXPECT_EQ(second.code(), ErrorCode::kModelFailed);
  EXPECT_EQ(second.message(), "poisoned pass");
  EXPECT_EQ(model.passes(), (std::vector<int>{4, 2, 2}));  // shared, then each caller alone
  EXPECT_EQ(batcher->stats().passes, 3);
  EXPECT_EQ(batcher->stats().failed_passes, 2);

  // A caller whose later items were still waiting loses them too, and the batcher goes on.
  common::Status split;
  std::thread c([&] {
    std::vector<cv::Mat> items = {Value(666), Value(1), Value(2), Value(3), Value(4), Value(5)};
    split = batcher->Run(items).status();
  });
  c.join();
  EXPECT_EQ(split.message(), "poisoned pass");
  auto fine = batcher->Run(Values(7, 4));
  ASSERT_TRUE(fine.ok()) << fine.status().ToString();
  ExpectDoubled(*fine, 7, 4);
}

TEST(MicroBatcherTest, ShutdownWakesEveryWaitingCaller) {
  FakeItemModel model(16);
  auto batcher = Batcher(&model, 8, kForever);
  std::vector<common::Status> results(3);
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] { results[t] = batcher->Run(Values(1, 1)).status(); });
  }
  std::this_thread::sleep_for(20ms);  // let them queue (either way they fail the same)
  batcher->Shutdown();
  for (auto& thread : threads) thread.join();
  for (const common::Status& status : results) {
    EXPECT_EQ(status.code(), ErrorCode::kModelFailed);
    EXPECT_TRUE(status.retryable());
    EXPECT_NE(status.message().find("stopped"), std::string::npos) << status.message();
  }
  EXPECT_FALSE(batcher->Run(Values(1, 1)).ok());
  EXPECT_TRUE(model.passes().empty());
}

TEST(MicroBatcherTest, APoolRunsPassesInParallelWithOneUserPerInstance) {
  std::vector<FakeItemModel*> made;
  auto pool = InstancePool<ItemModel>::Create(
      {"cpu:0", "cpu:1"}, 2, [&](const Device&) -> common::StatusOr<std::unique_ptr<ItemModel>> {
        auto model = std::make_unique<FakeItemModel>(made.empty() ? 4 : 8);
        made.push_back(model.get());
        return std::unique_ptr<ItemModel>(std::move(model));
      });
  ASSERT_TRUE(pool.ok());
  MicroBatcherOptions options;
  options.max_batch = 8;
  options.max_delay_ms = 1;
  options.label = "fake_pool";
  auto batcher = MicroBatcher::ForPool(pool->get(), 10s, options);
  ASSERT_TRUE(batcher.ok()) << batcher.status().ToString();
  EXPECT_EQ((*batcher)->pass_size(), 4);  // the smallest capacity
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round) {
        const float first = 1000.0f * static_cast<float>(t) + 10.0f * static_cast<float>(round);
        auto outputs = (*batcher)->Run(Values(first, 1 + (round % 5)));
        ASSERT_TRUE(outputs.ok()) << outputs.status().ToString();
        ExpectDoubled(*outputs, first, 1 + (round % 5));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  int64_t items = 0;
  for (FakeItemModel* model : made) {
    EXPECT_FALSE(model->overlapped());
    for (int size : model->passes()) {
      EXPECT_LE(size, 4);
      items += size;
    }
  }
  EXPECT_EQ(items, 6 * (1 + 2 + 3 + 4 + 5) * 4);
}

TEST(MicroBatcherTest, BadOptionsAreRefused) {
  const auto run =
      [](const std::vector<cv::Mat>&) -> common::StatusOr<std::vector<std::vector<cv::Mat>>> {
    return std::vector<std::vector<cv::Mat>>();
  };
  MicroBatcherOptions options;
  options.max_batch = 0;
  EXPECT_EQ(MicroBatcher::Create(options, 4, run).status().code(), ErrorCode::kInvalidArgument);
  options.max_batch = 4;
  EXPECT_EQ(MicroBatcher::Create(options, 0, run).status().code(), ErrorCode::kInvalidArgument);
  options.max_delay_ms = -1;
  EXPECT_EQ(MicroBatcher::Create(options, 4, run).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(MicroBatcher::ForModel(nullptr, MicroBatcherOptions()).ok());
}

}  // namespace
}  // namespace vsieve::models
