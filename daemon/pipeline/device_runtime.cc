#include "daemon/pipeline/device_runtime.h"

namespace vsieve::daemon {

std::shared_ptr<models::DeviceBudgets> MakeDeviceBudgets(const DeviceConfig& devices) {
  if (devices.budgets.empty()) return nullptr;
  std::map<std::string, double> budgets;
  for (size_t i = 0; i < devices.list.size(); ++i) {
    budgets[devices.list[i]] =
        devices.budgets.size() == 1 ? devices.budgets.front() : devices.budgets.at(i);
  }
  return std::make_shared<models::DeviceBudgets>(std::move(budgets));
}

models::PoolOptions PoolOptionsFor(const DeviceConfig& devices, const std::string& name,
                                   int instances, std::shared_ptr<models::DeviceBudgets> budgets) {
  models::PoolOptions options;
  options.model = name;
  options.devices = devices.list;
  options.weights = devices.weights;
  options.instances = instances;
  const auto cost = devices.costs.find(name);
  options.cost = cost == devices.costs.end() ? 0.0 : cost->second;
  options.budgets = std::move(budgets);
  return options;
}

models::ModelRuntimeOptions RuntimeOptionsFor(const DeviceConfig& devices) {
  models::ModelRuntimeOptions options;
  options.isolate = devices.isolate;
  options.model_timeout_seconds = devices.model_timeout_seconds;
  options.restart_backoff_base_seconds = devices.restart_backoff_base_seconds;
  options.restart_backoff_cap_seconds = devices.restart_backoff_cap_seconds;
  return options;
}

models::ModelRuntimePolicy ModelPolicyFor(const FilterConfig& config,
                                          std::shared_ptr<models::DeviceBudgets> budgets) {
  models::ModelRuntimePolicy policy;
  policy.runtime = RuntimeOptionsFor(config.devices);
  const DeviceConfig& devices = config.devices;
  for (size_t i = 0; i < devices.list.size() && i < devices.weights.size(); ++i) {
    policy.device_weights[devices.list[i]] = devices.weights[i];
  }
  policy.budgets = std::move(budgets);
  policy.costs = devices.costs;
  policy.batching = BatcherOptionsFor(config.batching, "");
  return policy;
}

models::MicroBatcherOptions BatcherOptionsFor(const BatchingConfig& batching,
                                              const std::string& name) {
  models::MicroBatcherOptions options;
  options.max_batch = batching.max_batch;
  options.max_delay_ms = batching.max_delay_ms;
  options.label = name;
  return options;
}

}  // namespace vsieve::daemon
