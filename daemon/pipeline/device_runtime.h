#pragma once

#include <memory>
#include <string>

#include "daemon/config/filter_config.h"
#include "models/filter/configured_models.h"
#include "models/runtime/instance_pool.h"
#include "models/runtime/micro_batcher.h"
#include "models/runtime/model_runtime.h"

namespace vsieve::daemon {

// The per-device budgets of [devices] budget, shared by every pool of the daemon; null when no
// budget is configured. One number applies to every device in the list.
std::shared_ptr<models::DeviceBudgets> MakeDeviceBudgets(const DeviceConfig& devices);

// Pool options for model `name` ("video_filter", a detector or head name) with `instances` on the
// heaviest device: the device list and weights of [devices], its cost from [devices.costs]
// (0 when absent) and the shared `budgets`.
models::PoolOptions PoolOptionsFor(const DeviceConfig& devices, const std::string& name,
                                   int instances, std::shared_ptr<models::DeviceBudgets> budgets);

// [devices] isolate, model_timeout_seconds and restart_backoff_* as runtime options.
models::ModelRuntimeOptions RuntimeOptionsFor(const DeviceConfig& devices);

// The policy for the configured detectors and heads (models::ConfiguredModels::Load()): [devices]
// isolate, timeouts, backoff, weights by device name and costs, the shared `budgets`, and
// [batching].
models::ModelRuntimePolicy ModelPolicyFor(const FilterConfig& config,
                                          std::shared_ptr<models::DeviceBudgets> budgets);

// [batching] as micro-batcher options for model `name`.
models::MicroBatcherOptions BatcherOptionsFor(const BatchingConfig& batching,
                                              const std::string& name);

}  // namespace vsieve::daemon
