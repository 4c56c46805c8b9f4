#include "models/runtime/model_runtime.h"

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "models/runtime/child_process_model.h"

namespace vsieve::models {

namespace {

// The test hook described in model_runtime.h; `spec` unchanged without it.
common::StatusOr<ItemModelSpec> ApplyTestOverride(ItemModelSpec spec, const std::string& label) {
  const char* enabled = std::getenv("VSIEVE_TEST_MODELS");
  const char* text = std::getenv("VSIEVE_TEST_MODEL_OVERRIDE");
  if (enabled == nullptr || std::string(enabled) != "1" || text == nullptr) return spec;
  const nlohmann::json overrides = nlohmann::json::parse(text, nullptr, false);
  const common::Status bad(common::ErrorCode::kInvalidArgument,
                           "VSIEVE_TEST_MODEL_OVERRIDE: expected {\"<model>\": {\"kind\": K, "
                           "\"params\": {...}}}");
  if (!overrides.is_object()) return bad;
  const auto it = overrides.find(label);
  if (it == overrides.end()) return spec;
  if (!it->is_object() || !it->contains("kind") || !(*it)["kind"].is_string()) return bad;
  nlohmann::json params = spec.params.is_object() ? spec.params : nlohmann::json::object();
  if (it->contains("params")) {
    if (!(*it)["params"].is_object()) return bad;
    params.update((*it)["params"]);
  }
  params["inner"] = spec.kind;
  spec.kind = (*it)["kind"].get<std::string>();
  spec.params = std::move(params);
  return spec;
}

}  // namespace

common::StatusOr<std::unique_ptr<ItemModel>> MakeItemModel(const ItemModelSpec& original,
                                                           const ModelRuntimeOptions& options,
                                                           const std::string& label) {
  VSIEVE_ASSIGN_OR_RETURN(const ItemModelSpec spec, ApplyTestOverride(original, label));
  if (!options.isolate) return BuildItemModel(spec);
  ChildProcessOptions child;
  child.binary = options.worker_binary;
  child.spec = spec;
  child.label = label;
  child.call_timeout_seconds = options.model_timeout_seconds;
  child.build_timeout_seconds = options.build_timeout_seconds;
  child.restart_backoff_base_seconds = options.restart_backoff_base_seconds;
  child.restart_backoff_cap_seconds = options.restart_backoff_cap_seconds;
  VSIEVE_ASSIGN_OR_RETURN(auto model, ChildProcessModel::Start(std::move(child)));
  return std::unique_ptr<ItemModel>(std::move(model));
}

}  // namespace vsieve::models
