#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "models/runtime/item_model.h"

namespace vsieve::models {

// How the daemon runs ItemModel instances ([devices] isolate, model_timeout_seconds,
// restart_backoff_*).
struct ModelRuntimeOptions {
  bool isolate = false;  // each instance in its own child process (ChildProcessModel)
  std::string worker_binary = "/proc/self/exe";  // what the child execs (`model-worker`)
  double model_timeout_seconds = 30;             // isolated: one call
  double build_timeout_seconds = 300;            // isolated: loading and warming the model
  double restart_backoff_base_seconds = 1;
  double restart_backoff_cap_seconds = 60;
};

// Builds one instance of `spec`: in this process (BuildItemModel()), or, when `options.isolate`,
// as a ChildProcessModel whose child builds it. `label` names the model in metrics and errors
// ("aesthetic_filter"). This is the factory an InstancePool<ItemModel> of a detector or ONNX
// head calls per device. Errors: those of BuildItemModel() or ChildProcessModel::Start().
// Thread-safe; blocks while the model loads.
//
// Test hook: with VSIEVE_TEST_MODELS=1 and VSIEVE_TEST_MODEL_OVERRIDE='{"<label>": {"kind": K,
// "params": {...}}}' the model named <label> is built as test kind K wrapping the configured
// kind (params merged, params.inner = the configured kind), e.g. an ONNX head that aborts on
// chosen inputs ({"kind": "abort_on", "params": {"above": 1.5}}). Ignored otherwise.
common::StatusOr<std::unique_ptr<ItemModel>> MakeItemModel(const ItemModelSpec& spec,
                                                           const ModelRuntimeOptions& options,
                                                           const std::string& label);

}  // namespace vsieve::models
