#include "models/runtime/micro_batcher.h"

#include <algorithm>

namespace vsieve::models {

using common::ErrorCode;
using common::Status;
using common::StatusOr;

StatusOr<std::unique_ptr<MicroBatcher>> MicroBatcher::Create(MicroBatcherOptions options,
                                                             int capacity, PassFn run) {
  const auto bad = [](const std::string& why) {
    return Status(ErrorCode::kInvalidArgument, "micro-batcher: " + why);
  };
  if (options.max_batch < 1) return bad("max_batch must be at least 1");
  if (capacity < 1) return bad("model batch capacity must be at least 1");
  if (options.runners < 1) return bad("runners must be at least 1");
  if (!(options.max_delay_ms >= 0)) return bad("max_delay_ms must be 0 or more");
  if (!run) return bad("no pass function");
  const int pass_size = std::min(options.max_batch, capacity);
  return std::unique_ptr<MicroBatcher>(
      new MicroBatcher(std::move(options), pass_size, std::move(run)));
}

StatusOr<std::unique_ptr<MicroBatcher>> MicroBatcher::ForModel(ItemModel* model,
                                                               MicroBatcherOptions options) {
  if (model == nullptr) return Status(ErrorCode::kInvalidArgument, "micro-batcher: no model");
  options.runners = 1;
  return Create(std::move(options), model->batch_capacity(),
                [model](const std::vector<cv::Mat>& items) { return model->RunItems(items); });
}

StatusOr<std::unique_ptr<MicroBatcher>> MicroBatcher::ForPool(
    InstancePool<ItemModel>* pool, std::chrono::duration<double> borrow_timeout,
    MicroBatcherOptions options) {
  if (pool == nullptr) return Status(ErrorCode::kInvalidArgument, "micro-batcher: no pool");
  int capacity = 0;
  {
    std::vector<InstancePool<ItemModel>::Lease> leases;
    for (int i = 0; i < pool->size(); ++i) {
      VSIEVE_ASSIGN_OR_RETURN(auto lease, pool->Borrow(borrow_timeout));
      const int own = lease->batch_capacity();
      capacity = capacity == 0 ? own : std::min(capacity, own);
      leases.push_back(std::move(lease));
    }
  }
  options.runners = pool->size();
  return Create(std::move(options), capacity,
                [pool, borrow_timeout](const std::vector<cv::Mat>& items)
                    -> StatusOr<std::vector<std::vector<cv::Mat>>> {
                  VSIEVE_ASSIGN_OR_RETURN(auto lease, pool->Borrow(borrow_timeout));
                  return lease->RunItems(items);
                });
}

MicroBatcher::MicroBatcher(MicroBatcherOptions options, int pass_size, PassFn run)
    : options_(std::move(options)),
      pass_size_(pass_size),
      max_delay_(std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double, std::milli>(options_.max_delay_ms))),
      run_(std::move(run)) {
  batch_items_metric_ = &common::MetricsRegistry::Global().GetHistogram(
      "vsieve_model_batch_items", "Items per micro-batched forward pass",
      {1, 2, 4, 8, 16, 32, 64, 128, 256}, {{"model", options_.label}});
  for (int i = 0; i < options_.runners; ++i) runners_.emplace_back([this] { RunnerLoop(); });
}

MicroBatcher::~MicroBatcher() { Shutdown(); }

void MicroBatcher::Shutdown() {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      stopping_ = true;
      const Status stopped(ErrorCode::kModelFailed, "micro-batcher " + options_.label + " stopped",
                           true);
      while (!queue_.empty()) FailLocked(queue_.front(), stopped);
    }
  }
  work_.notify_all();
  done_.notify_all();
  for (std::thread& runner : runners_) {
    if (runner.joinable()) runner.join();
  }
}

MicroBatcher::Stats MicroBatcher::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void MicroBatcher::FailLocked(const std::shared_ptr<Request>& request, const Status& status) {
  if (!request->finished) {
    request->status = status;
    request->finished = true;
  }
  const auto it = std::find(queue_.begin(), queue_.end(), request);
  if (it != queue_.end()) {
    queued_items_ -= request->items.size() - request->next;
    request->next = request->items.size();
    queue_.erase(it);
  }
}

StatusOr<std::vector<std::vector<cv::Mat>>> MicroBatcher::Run(std::vector<cv::Mat> items) {
  if (items.empty()) return std::vector<std::vector<cv::Mat>>();
  auto request = std::make_shared<Request>();
  request->outputs.resize(items.size());
  request->items = std::move(items);
  std::unique_lock lock(mutex_);
  if (stopping_) {
    return Status(ErrorCode::kModelFailed, "micro-batcher " + options_.label + " stopped", true);
  }
  request->enqueued = Clock::now();
  queue_.push_back(request);
  queued_items_ += request->items.size();
  work_.notify_one();
  done_.wait(lock, [&] { return request->finished; });
  if (!request->status.ok()) return request->status;
  return std::move(request->outputs);
}

void MicroBatcher::RunnerLoop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    // Wait for a full pass, or for the oldest item's delay to run out.
    while (!stopping_) {
      if (queue_.empty()) {
        work_.wait(lock);
        continue;
      }
      if (queued_items_ >= static_cast<size_t>(pass_size_)) break;
      const auto due = queue_.front()->enqueued + max_delay_;
      if (Clock::now() >= due) break;
      work_.wait_until(lock, due);
    }
    if (stopping_) return;

    std::vector<cv::Mat> batch;
    std::vector<std::pair<std::shared_ptr<Request>, size_t>> owners;
    while (batch.size() < static_cast<size_t>(pass_size_) && !queue_.empty()) {
      const std::shared_ptr<Request>& request = queue_.front();
      while (request->next < request->items.size() &&
             batch.size() < static_cast<size_t>(pass_size_)) {
        batch.push_back(request->items[request->next]);
        owners.emplace_back(request, request->next);
        ++request->next;
        --queued_items_;
      }
      if (request->next == request->items.size()) queue_.pop_front();
    }
    if (!queue_.empty()) work_.notify_one();  // more for another runner
    lock.unlock();
    // One result per slice of the batch: the whole pass, or, after a failed pass that held
    // several callers' items, each caller's items alone (any one of them may have caused the
    // failure, e.g. a model that crashes on one video's item: the others should not pay).
    struct Slice {
      size_t begin;
      size_t end;
      StatusOr<std::vector<std::vector<cv::Mat>>> result;
    };
    std::vector<Slice> slices;
    slices.push_back({0, batch.size(), RunPass(batch)});
    int64_t passes = 1;
    int64_t failed = slices.front().result.ok() ? 0 : 1;
    if (!slices.front().result.ok() && owners.front().first != owners.back().first) {
      slices.clear();
      size_t begin = 0;
      while (begin < owners.size()) {
        size_t end = begin;
        while (end < owners.size() && owners[end].first == owners[begin].first) ++end;
        std::vector<cv::Mat> alone(batch.begin() + static_cast<std::ptrdiff_t>(begin),
                                   batch.begin() + static_cast<std::ptrdiff_t>(end));
        slices.push_back({begin, end, RunPass(alone)});
        ++passes;
        failed += slices.back().result.ok() ? 0 : 1;
        begin = end;
      }
    }
    lock.lock();
    stats_.passes += passes;
    stats_.failed_passes += failed;
    stats_.items += static_cast<int64_t>(batch.size());
    for (Slice& slice : slices) {
      if (!slice.result.ok()) {
        for (size_t i = slice.begin; i < slice.end; ++i) {
          if (i == slice.begin || owners[i].first != owners[i - 1].first) {
            FailLocked(owners[i].first, slice.result.status());
          }
        }
        continue;
      }
      for (size_t i = slice.begin; i < slice.end; ++i) {
        Request& request = *owners[i].first;
        if (request.finished) continue;  // failed by another pass
        request.outputs[owners[i].second] = std::move((*slice.result)[i - slice.begin]);
        if (++request.done == request.items.size()) request.finished = true;
      }
    }
    done_.notify_all();
  }
}

StatusOr<std::vector<std::vector<cv::Mat>>> MicroBatcher::RunPass(
    const std::vector<cv::Mat>& items) {
  batch_items_metric_->Observe(static_cast<double>(items.size()));
  StatusOr<std::vector<std::vector<cv::Mat>>> result = run_(items);
  if (result.ok() && result->size() != items.size()) {
    result = Status(ErrorCode::kModelFailed, "the model gave " + std::to_string(result->size()) +
                                                 " outputs for " + std::to_string(items.size()) +
                                                 " items");
  }
  return result;
}

}  // namespace vsieve::models
