#include "models/configured_models.h"

#include <chrono>
#include <map>

namespace vsieve::models {
namespace {

double MillisSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

std::vector<std::string> DevicesOrCpu(const std::vector<std::string>& devices) {
  return devices.empty() ? std::vector<std::string>{"cpu:0"} : devices;
}

// Builds a pool of `Model` instances and records each one's load and first-pass times.
template <typename Model, typename Config>
common::StatusOr<std::unique_ptr<InstancePool<Model>>> LoadPool(const Config& config,
                                                                const std::string& role,
                                                                const std::string& entry,
                                                                std::vector<ModelWarmup>* warmups) {
  std::map<std::string, int> per_device;
  auto pool = InstancePool<Model>::Create(
      DevicesOrCpu(config.devices), config.instances,
      [&](const Device& device) -> common::StatusOr<std::unique_ptr<Model>> {
        const auto start = std::chrono::steady_clock::now();
        VSIEVE_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Model::Load(config, device));
        ModelWarmup warmup;
        warmup.name = config.name;
        warmup.role = role;
        warmup.file = config.model;
        warmup.device = device.name;
        warmup.instance = per_device[device.name]++;
        warmup.first_pass_ms = model->model().first_pass_ms();
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
    double borrow_timeout_s) {
  std::shared_ptr<ConfiguredModels> set(new ConfiguredModels());
  set->borrow_timeout_s_ = borrow_timeout_s;
  for (size_t i = 0; i < detectors.size(); ++i) {
    VSIEVE_ASSIGN_OR_RETURN(
        auto pool, LoadPool<YoloDetector>(detectors[i], "detector",
                                          "detectors[" + std::to_string(i) + "]", &set->warmups_));
    set->detectors_.push_back({detectors[i], std::move(pool)});
  }
  for (size_t i = 0; i < heads.size(); ++i) {
    VSIEVE_ASSIGN_OR_RETURN(
        auto pool,
        LoadPool<OnnxHead>(heads[i], "head", "heads[" + std::to_string(i) + "]", &set->warmups_));
    set->heads_.push_back({heads[i], std::move(pool)});
  }
  return set;
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
