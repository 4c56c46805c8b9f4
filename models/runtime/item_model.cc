#include "models/runtime/item_model.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>

#include "models/runtime/dnn_model.h"

namespace vsieve::models {
namespace {

using common::ErrorCode;
using common::Status;
using common::StatusOr;

Status FieldError(const std::string& field, const std::string& why) {
  return Status(ErrorCode::kInvalidArgument, "model spec field '" + field + "': " + why);
}

struct KindEntry {
  ItemModelFactory factory;
  bool test_only = false;
};

struct Registry {
  std::mutex mutex;
  std::map<std::string, KindEntry> kinds;  // guarded by mutex
};

Registry& TheRegistry() {
  static Registry registry;
  return registry;
}

// The "dnn" kind: DnnModel::Load(model, cfg, device); with params.expected_input (dims, -1 =
// any) CheckInput(expected, params.what); with an item shape PrepareBatching(item_shape,
// max_batch), which is also the warm-up.
StatusOr<std::unique_ptr<ItemModel>> BuildDnnModel(const ItemModelSpec& spec,
                                                   const Device& device) {
  VSIEVE_ASSIGN_OR_RETURN(std::unique_ptr<DnnModel> model,
                          DnnModel::Load(spec.model, spec.cfg, device));
  if (const auto it = spec.params.find("expected_input"); it != spec.params.end()) {
    if (!it->is_array()) return FieldError("params.expected_input", "expected an array");
    Dims expected;
    for (const auto& dim : *it) {
      if (!dim.is_number_integer()) {
        return FieldError("params.expected_input", "expected an array of integers");
      }
      expected.push_back(dim.get<int64_t>());
    }
    VSIEVE_RETURN_IF_ERROR(model->CheckInput(expected, spec.params.value("what", spec.model)));
  }
  if (!spec.item_shape.empty()) {
    VSIEVE_RETURN_IF_ERROR(model->PrepareBatching(spec.item_shape, spec.max_batch));
  }
  return std::unique_ptr<ItemModel>(std::move(model));
}

void RegisterBuiltinKinds() {
  static std::once_flag once;
  std::call_once(once, [] { RegisterItemModelKind("dnn", BuildDnnModel); });
}

bool TestModelsEnabled() {
  const char* value = std::getenv("VSIEVE_TEST_MODELS");
  return value != nullptr && std::string(value) == "1";
}

}  // namespace

std::vector<int> MatShape(const cv::Mat& mat) {
  std::vector<int> shape;
  for (int i = 0; i < mat.dims; ++i) shape.push_back(mat.size[i]);
  return shape;
}

nlohmann::json ItemModelSpecToJson(const ItemModelSpec& spec) {
  return {{"kind", spec.kind},
          {"model", spec.model},
          {"cfg", spec.cfg},
          {"device", spec.device},
          {"item_shape", spec.item_shape},
          {"max_batch", spec.max_batch},
          {"params", spec.params.is_null() ? nlohmann::json::object() : spec.params}};
}

StatusOr<ItemModelSpec> ItemModelSpecFromJson(const nlohmann::json& json) {
  if (!json.is_object()) return FieldError("", "expected a JSON object");
  ItemModelSpec spec;
  const auto string_field = [&](const char* name, bool required, std::string* out) -> Status {
    const auto it = json.find(name);
    if (it == json.end()) return required ? FieldError(name, "missing") : Status::Ok();
    if (!it->is_string()) return FieldError(name, "expected a string");
    *out = it->get<std::string>();
    return Status::Ok();
  };
  VSIEVE_RETURN_IF_ERROR(string_field("kind", true, &spec.kind));
  VSIEVE_RETURN_IF_ERROR(string_field("device", true, &spec.device));
  VSIEVE_RETURN_IF_ERROR(string_field("model", false, &spec.model));
  VSIEVE_RETURN_IF_ERROR(string_field("cfg", false, &spec.cfg));
  if (const auto it = json.find("item_shape"); it != json.end()) {
    if (!it->is_array()) return FieldError("item_shape", "expected an array of integers");
    for (const auto& dim : *it) {
      if (!dim.is_number_integer())
        return FieldError("item_shape", "expected an array of integers");
      spec.item_shape.push_back(dim.get<int>());
    }
  }
  if (const auto it = json.find("max_batch"); it != json.end()) {
    if (!it->is_number_integer()) return FieldError("max_batch", "expected an integer");
    spec.max_batch = it->get<int>();
  }
  if (const auto it = json.find("params"); it != json.end()) {
    if (!it->is_object() && !it->is_null()) return FieldError("params", "expected an object");
    if (it->is_object()) spec.params = *it;
  }
  return spec;
}

void RegisterItemModelKind(const std::string& kind, ItemModelFactory factory, bool test_only) {
  Registry& registry = TheRegistry();
  std::lock_guard lock(registry.mutex);
  registry.kinds[kind] = KindEntry{std::move(factory), test_only};
}

std::vector<std::string> ItemModelKinds() {
  RegisterBuiltinKinds();
  Registry& registry = TheRegistry();
  std::lock_guard lock(registry.mutex);
  std::vector<std::string> kinds;
  for (const auto& [kind, entry] : registry.kinds) kinds.push_back(kind);
  return kinds;
}

StatusOr<std::unique_ptr<ItemModel>> BuildItemModel(const ItemModelSpec& spec) {
  RegisterBuiltinKinds();
  if (spec.max_batch < 1) return FieldError("max_batch", "must be at least 1");
  VSIEVE_ASSIGN_OR_RETURN(const Device device, ParseDevice(spec.device));
  KindEntry entry;
  {
    Registry& registry = TheRegistry();
    std::lock_guard lock(registry.mutex);
    const auto it = registry.kinds.find(spec.kind);
    if (it == registry.kinds.end()) {
      std::string known;
      for (const auto& [kind, unused] : registry.kinds) {
        known += (known.empty() ? "" : ", ") + kind;
      }
      return Status(ErrorCode::kInvalidArgument,
                    "unknown model kind '" + spec.kind + "' (known: " + known + ")");
    }
    entry = it->second;
  }
  if (entry.test_only && !TestModelsEnabled()) {
    return Status(ErrorCode::kInvalidArgument,
                  "model kind '" + spec.kind + "' is a test kind; set VSIEVE_TEST_MODELS=1");
  }
  return entry.factory(spec, device);
}

}  // namespace vsieve::models
