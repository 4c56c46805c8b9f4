#include "models/filter/configured_models.h"

#include <chrono>
#include <map>

namespace vsieve::models {
namespace {

using common::StatusOr;

double MillisSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

std::vector<std::string> DevicesOrCpu(const std::vector<std::string>& devices) {
  return devices.empty() ? std::vector<std::string>{"cpu:0"} : devices;
}

double FirstPassMs(const YoloDetector& detector) { return detector.model().first_pass_ms(); }
double FirstPassMs(const OnnxHead& head) { return head.model().warmup().first_pass_ms; }

common::StatusOr<std::unique_ptr<YoloDetector>> LoadModel(const DetectorConfig& config,
                                                          const Device& device,
                                                          const ModelRuntimePolicy&) {
  return YoloDetector::Load(config, device);
}
common::StatusOr<std::unique_ptr<OnnxHead>> LoadModel(const OnnxHeadConfig& config,
                                                      const Device& device,
                                                      const ModelRuntimePolicy& policy) {
  return OnnxHead::Load(config, device, policy.runtime);
}

// Builds a pool of `Model` instances and records each one's load and first-pass times.
template <typename Model, typename Config>
common::StatusOr<std::unique_ptr<InstancePool<Model>>> LoadPool(const Config& config,
                                                                const std::string& role,
                                                                const std::string& entry,
                                                                const ModelRuntimePolicy& policy,
                                                                std::vector<ModelWarmup>* warmups) {
  std::map<std::string, int> per_device;
  PoolOptions options;
  options.model = config.name;
  options.devices = DevicesOrCpu(config.devices);
  for (const std::string& device : options.devices) {
    const auto weight = policy.device_weights.find(device);
    options.weights.push_back(weight == policy.device_weights.end() ? 1.0 : weight->second);
  }
  options.instances = config.instances;
  const auto cost = policy.costs.find(config.name);
  options.cost = cost == policy.costs.end() ? 0.0 : cost->second;
  options.budgets = policy.budgets;
  auto pool = InstancePool<Model>::Create(
      options, [&](const Device& device) -> common::StatusOr<std::unique_ptr<Model>> {
        const auto start = std::chrono::steady_clock::now();
        VSIEVE_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, LoadModel(config, device, policy));
        ModelWarmup warmup;
        warmup.name = config.name;
        warmup.role = role;
        warmup.file = config.model;
        warmup.device = device.name;
        warmup.instance = per_device[device.name]++;
        warmup.first_pass_ms = FirstPassMs(*model);
        warmup.load_ms = MillisSince(start) - warmup.first_pass_ms;
        warmup.batch = model->batch_capacity();
        warmups->push_back(warmup);
        return model;
      });
  if (!pool.ok()) return pool.status().WithContext(entry + " (" + config.name + ")");
  return pool;
}

}  // namespace

common::StatusOr<std::shared_ptr<ConfiguredModels>> ConfiguredModels::Load(
    const std::vector<DetectorConfig>& detectors, const std::vector<OnnxHeadConfig>& heads,
    double borrow_timeout_s, const ModelRuntimePolicy& policy) {
  std::shared_ptr<ConfiguredModels> set(new ConfiguredModels());
  set->borrow_timeout_s_ = borrow_timeout_s;
  for (size_t i = 0; i < detectors.size(); ++i) {
    VSIEVE_ASSIGN_OR_RETURN(
        auto pool,
        LoadPool<YoloDetector>(detectors[i], "detector", "detectors[" + std::to_string(i) + "]",
                               policy, &set->warmups_));
    set->detectors_.push_back({detectors[i], std::move(pool)});
  }
  const auto timeout = std::chrono::duration<double>(borrow_timeout_s);
  for (size_t i = 0; i < heads.size(); ++i) {
    const std::string entry = "heads[" + std::to_string(i) + "]";
    VSIEVE_ASSIGN_OR_RETURN(auto pool,
                            LoadPool<OnnxHead>(heads[i], "head", entry, policy, &set->warmups_));
    // Items per pass: the smallest capacity among the instances.
    int capacity = 0;
    {
      std::vector<InstancePool<OnnxHead>::Lease> leases;
      for (int k = 0; k < pool->size(); ++k) {
        VSIEVE_ASSIGN_OR_RETURN(auto lease, pool->Borrow(timeout));
        const int own = lease->model().batch_capacity();
        capacity = capacity == 0 ? own : std::min(capacity, own);
        leases.push_back(std::move(lease));
      }
    }
    MicroBatcherOptions batching = policy.batching;
    batching.label = heads[i].name;
    batching.runners = pool->size();
    InstancePool<OnnxHead>* raw = pool.get();
    auto batcher = MicroBatcher::Create(batching, capacity,
                                        [raw, timeout](const std::vector<cv::Mat>& items)
                                            -> StatusOr<std::vector<std::vector<cv::Mat>>> {
                                          VSIEVE_ASSIGN_OR_RETURN(auto lease, raw->Borrow(timeout));
                                          return lease->model().RunItems(items);
                                        });
    if (!batcher.ok()) return batcher.status().WithContext(entry + " (" + heads[i].name + ")");
    set->heads_.push_back({heads[i], std::move(pool), std::move(batcher).value()});
  }
  return set;
}

common::StatusOr<std::vector<HeadOutput>> ConfiguredModels::RunHead(
    size_t i, const std::vector<HeadInput>& inputs) {
  HeadEntry& entry = heads_[i];
  VSIEVE_ASSIGN_OR_RETURN(std::vector<cv::Mat> items, PrepareHeadItems(entry.config, inputs));
  VSIEVE_ASSIGN_OR_RETURN(const auto outputs, entry.batcher->Run(std::move(items)));
  return FinishHeadItems(entry.config, inputs.size(), outputs);
}

std::vector<std::unique_ptr<RegionDetector>> ConfiguredModels::MakeRegionDetectors() {
  std::vector<std::unique_ptr<RegionDetector>> made;
  for (DetectorEntry& entry : detectors_) {
    made.push_back(
        std::make_unique<ObjectRegionDetector>(entry.config, entry.pool.get(), borrow_timeout_s_));
  }
  return made;
}

common::StatusOr<InstancePool<OnnxHead>::Lease> ConfiguredModels::BorrowHead(size_t i) {
  return heads_[i].pool->Borrow(std::chrono::duration<double>(borrow_timeout_s_));
}

}  // namespace vsieve::models
