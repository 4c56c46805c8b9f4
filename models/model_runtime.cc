#include "models/model_runtime.h"

#include "models/child_process_model.h"

namespace vsieve::models {

common::StatusOr<std::unique_ptr<ItemModel>> MakeItemModel(const ItemModelSpec& spec,
                                                           const ModelRuntimeOptions& options,
                                                           const std::string& label) {
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
