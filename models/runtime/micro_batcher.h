#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <opencv2/core.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "models/runtime/instance_pool.h"
#include "models/runtime/item_model.h"

namespace vsieve::models {

// How a MicroBatcher groups items.
struct MicroBatcherOptions {
  int max_batch = 8;            // most items in one pass (also capped by the model's capacity)
  double max_delay_ms = 5;      // the oldest waiting item waits at most this long for company
  int runners = 1;              // passes that may run at once (the model instances behind `run`)
  std::string label = "model";  // the "model" label of the metrics
};

// Runs items from many callers (e.g. the windows of several videos, on several worker threads)
// through a model in shared forward passes. A pass runs as soon as min(max_batch, capacity)
// items wait, or when the oldest waiting item has waited max_delay_ms; it takes items in arrival
// order, so a caller's items may be split over consecutive passes and share them with other
// callers' items. Each caller gets its own outputs, in its order. When a pass that held several
// callers' items fails, each caller's items of that pass are run again alone (any one of them
// may be the cause, e.g. a model that crashes on one video's item), so only the callers whose
// own items fail get an error; a caller whose items fail gets the error of that pass (its other
// items are dropped). Other callers are unaffected.
//
// Metrics: vsieve_model_batch_items{model} (a histogram of items per pass).
//
// Ownership: owns its runner threads; `run` (and what it borrows, e.g. a model or a pool) must
// outlive the batcher. Thread-safety: Run() is safe from any number of threads; `run` is called
// from up to `runners` threads at once. Blocking: Run() blocks until its items are done.
// Shutdown() (and destruction) fails the items still waiting with kModelFailed (retryable),
// waits for the passes in flight and joins the runners.
class MicroBatcher {
 public:
  // One forward pass: one vector of outputs per item, in order.
  using PassFn = std::function<common::StatusOr<std::vector<std::vector<cv::Mat>>>(
      const std::vector<cv::Mat>& items)>;

  // `capacity` is the most items `run` takes at once (ItemModel::batch_capacity()). Errors:
  // kInvalidArgument for max_batch, capacity or runners < 1, or a negative delay.
  static common::StatusOr<std::unique_ptr<MicroBatcher>> Create(MicroBatcherOptions options,
                                                                int capacity, PassFn run);

  // A batcher in front of one model (one runner). The model must outlive the batcher.
  static common::StatusOr<std::unique_ptr<MicroBatcher>> ForModel(ItemModel* model,
                                                                  MicroBatcherOptions options);

  // A batcher in front of a pool: one runner per instance; each pass borrows an instance
  // (waiting up to `borrow_timeout`; a timeout fails the pass with kTimeout). The capacity is the
  // smallest batch_capacity() of the instances. Borrows every instance once to read it.
  static common::StatusOr<std::unique_ptr<MicroBatcher>> ForPool(
      InstancePool<ItemModel>* pool, std::chrono::duration<double> borrow_timeout,
      MicroBatcherOptions options);

  ~MicroBatcher();
  MicroBatcher(const MicroBatcher&) = delete;
  MicroBatcher& operator=(const MicroBatcher&) = delete;

  // Runs `items` and returns their outputs, in order. Errors: the failing pass's error;
  // kModelFailed (retryable) after Shutdown().
  common::StatusOr<std::vector<std::vector<cv::Mat>>> Run(std::vector<cv::Mat> items);

  // Stops taking items; see the class comment. Idempotent.
  void Shutdown();

  // Items per pass: min(max_batch, capacity).
  int pass_size() const { return pass_size_; }

  struct Stats {
    int64_t passes = 0;  // forward passes, the solo re-runs after a shared failure included
    int64_t items = 0;   // items taken (a re-run item counts once)
    int64_t failed_passes = 0;
  };
  Stats stats() const;

 private:
  using Clock = std::chrono::steady_clock;

  struct Request {
    std::vector<cv::Mat> items;
    std::vector<std::vector<cv::Mat>> outputs;
    size_t next = 0;  // first item not yet taken into a pass
    size_t done = 0;  // items with outputs
    common::Status status;
    bool finished = false;
    Clock::time_point enqueued;
  };

  MicroBatcher(MicroBatcherOptions options, int pass_size, PassFn run);
  void RunnerLoop();
  // Runs one pass (without the lock) and checks the output count.
  common::StatusOr<std::vector<std::vector<cv::Mat>>> RunPass(const std::vector<cv::Mat>& items);
  // Fails `request` and drops its waiting items. Requires mutex_.
  void FailLocked(const std::shared_ptr<Request>& request, const common::Status& status);

  const MicroBatcherOptions options_;
  const int pass_size_;
  const Clock::duration max_delay_;
  const PassFn run_;
  common::Histogram* batch_items_metric_;

  mutable std::mutex mutex_;
  std::condition_variable work_;                // runners wait for items
  std::condition_variable done_;                // callers wait for their request
  std::deque<std::shared_ptr<Request>> queue_;  // guarded by mutex_: requests with items left
  size_t queued_items_ = 0;                     // guarded by mutex_
  bool stopping_ = false;                       // guarded by mutex_
  Stats stats_;                                 // guarded by mutex_
  std::vector<std::thread> runners_;
};

}  // namespace vsieve::models
