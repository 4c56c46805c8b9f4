#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "models/heads/onnx_head.h"
#include "models/regions/region_detector.h"
#include "models/regions/yolo_detector.h"
#include "models/runtime/instance_pool.h"
#include "models/runtime/micro_batcher.h"
#include "models/runtime/model_runtime.h"

namespace vsieve::models {

// Where and how the configured models run: the daemon's [devices] and [batching].
struct ModelRuntimePolicy {
  // In-process or child processes (heads only: detectors always run in-process), timeouts and
  // restart backoff.
  ModelRuntimeOptions runtime;
  // Relative compute by device name (PoolOptions::weights); a device not listed weighs 1.
  std::map<std::string, double> device_weights;
  std::shared_ptr<DeviceBudgets> budgets;  // shared by every pool; null = none
  std::map<std::string, double> costs;     // budget a busy instance holds, by model name
  // The heads' micro-batchers (label: the head's name). Passes are at most min(max_batch, the
  // model's capacity from the head's `batch`).
  MicroBatcherOptions batching;
};

// What loading and warming one model instance took (for `vsieve validate` and logs).
struct ModelWarmup {
  std::string name;  // the config's name ("yolo", "aesthetic_filter")
  std::string role;  // "detector" or "head"
  std::string file;
  std::string device;
  int instance = 0;          // index on that device
  double load_ms = 0;        // reading and parsing the model
  double first_pass_ms = 0;  // the first (warm-up) forward pass
  int batch = 1;             // items one forward pass takes
};

// The user's configured models ([[detectors]] and [[heads]]), loaded once per process: for each
// model, `instances` exclusive instances on each of its devices, in an InstancePool (Triton
// style), every instance warmed by a first pass at load. VideoFilters share one set; a filter
// borrows an instance per video and gives it back.
//
// Ownership: owns the pools and the instances in them; held by shared_ptr by every filter that
// uses it. Thread-safety: all methods are safe from any number of threads (the pools lock);
// an instance lent out is used by its borrower alone. Blocking: Load() blocks while every
// instance loads and warms up. Errors from Load(): the first failing model's, with the config
// entry (detectors[i] / heads[i]) and device named: kModelFailed for a missing, unreadable or
// wrongly shaped file, kInvalidArgument for a device this build cannot use or a bad entry.
class ConfiguredModels {
 public:
  // One pool per configured model. `borrow_timeout_s` bounds each borrow (kTimeout after it).
  // `policy` says where and how the instances run (see ModelRuntimePolicy).
  static common::StatusOr<std::shared_ptr<ConfiguredModels>> Load(
      const std::vector<DetectorConfig>& detectors, const std::vector<OnnxHeadConfig>& heads,
      double borrow_timeout_s = 300, const ModelRuntimePolicy& policy = ModelRuntimePolicy());

  // Runs head `i` on `inputs` (one output per input, in order) through the head's
  // micro-batcher: its items share forward passes with those of other videos (other threads)
  // as [batching] allows, each pass on an instance borrowed from the head's pool. Errors: as
  // OnnxHead::RunBatch(), the failing pass's error (retryable when the pass also held other
  // videos' items), kTimeout when no instance came free.
  common::StatusOr<std::vector<HeadOutput>> RunHead(size_t i, const std::vector<HeadInput>& inputs);

  // New region detectors, one per configured detector, borrowing from this set's pools. They
  // must not outlive the set.
  std::vector<std::unique_ptr<RegionDetector>> MakeRegionDetectors();

  // Configured heads, in config order.
  size_t head_count() const { return heads_.size(); }
  const OnnxHeadConfig& head_config(size_t i) const { return heads_[i].config; }
  // Lends an instance of head `i`. Errors: kTimeout (retryable) when none came free in time.
  common::StatusOr<InstancePool<OnnxHead>::Lease> BorrowHead(size_t i);

  // Load and warm-up times of every instance, in load order.
  const std::vector<ModelWarmup>& warmups() const { return warmups_; }

 private:
  struct DetectorEntry {
    DetectorConfig config;
    std::unique_ptr<InstancePool<YoloDetector>> pool;
  };
  struct HeadEntry {
    OnnxHeadConfig config;
    std::unique_ptr<InstancePool<OnnxHead>> pool;
    std::unique_ptr<MicroBatcher> batcher;  // borrows from `pool`: declared after it
  };
  ConfiguredModels() = default;

  std::vector<DetectorEntry> detectors_;
  std::vector<HeadEntry> heads_;
  std::vector<ModelWarmup> warmups_;
  double borrow_timeout_s_ = 300;
};

}  // namespace vsieve::models
