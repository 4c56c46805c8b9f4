#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "models/runtime/instance_pool.h"

namespace vsieve::models {

// A model that runs "items" (one input tensor each, CV_32F, without the batch dimension) and
// gives, per item, every output without its batch dimension. The seam between the model runtime
// (instance pools, micro-batching, child processes) and whatever runs the tensors: DnnModel
// in-process, ChildProcessModel in a child, test models.
//
// Ownership: the caller owns the model; outputs are owned by the caller. Thread-safety: none;
// one caller at a time (an InstancePool lends it exclusively). Blocking: RunItems() blocks for
// the work. Errors: kModelFailed for anything the model does; kInvalidArgument for items it
// cannot take (wrong type or shape).
class ItemModel {
 public:
  virtual ~ItemModel() = default;

  // Items that may share one forward pass (at least 1). RunItems() accepts any number of items
  // and splits them into passes of at most this many.
  virtual int batch_capacity() const = 0;

  // Runs `items`; returns one vector of outputs per item, in order.
  virtual common::StatusOr<std::vector<std::vector<cv::Mat>>> RunItems(
      const std::vector<cv::Mat>& items) = 0;

  // What the load-time warm-up pass showed, for checks and logs: the shape of each output of one
  // item (as RunItems() gives it) and the pass's milliseconds. Empty and 0 when the model has no
  // warm-up pass.
  struct Warmup {
    std::vector<std::vector<int>> output_shapes;
    double first_pass_ms = 0;
  };
  virtual Warmup warmup() const { return {}; }
};

// The shape of a Mat as a list of dimensions (rows, cols for a 2-D Mat).
std::vector<int> MatShape(const cv::Mat& mat);

// What to build: the BUILD message of the child-process protocol, and the argument of
// BuildItemModel(). `kind` picks a factory from the registry; `params` are the kind's own
// settings (for the test kinds: {"factor": 2.0}, {"value": 13}, {"ms": 50}).
struct ItemModelSpec {
  std::string kind;   // registry key, e.g. "dnn" (after the merge) or "scale"
  std::string model;  // model file (.onnx, or darknet .weights)
  std::string cfg;    // darknet .cfg, or empty
  std::string device = "cpu:0";
  std::vector<int> item_shape;  // one item's input shape, without the batch dimension
  int max_batch = 1;            // most items per forward pass
  nlohmann::json params = nlohmann::json::object();
};

// The spec as JSON ({"kind", "model", "cfg", "device", "item_shape", "max_batch", "params"}) and
// back. ItemModelSpecFromJson() returns kInvalidArgument naming the field that is missing or of
// the wrong type; `kind` and `device` are required, the rest default as above.
nlohmann::json ItemModelSpecToJson(const ItemModelSpec& spec);
common::StatusOr<ItemModelSpec> ItemModelSpecFromJson(const nlohmann::json& json);

// Builds a model of one kind on a parsed device. Errors as the kind decides (kInvalidArgument for
// bad params, kModelFailed for a model that does not load).
using ItemModelFactory = std::function<common::StatusOr<std::unique_ptr<ItemModel>>(
    const ItemModelSpec& spec, const Device& device)>;

// Adds (or replaces) the factory for `kind`. A `test_only` kind is usable only when the
// environment has VSIEVE_TEST_MODELS=1. Thread-safe.
void RegisterItemModelKind(const std::string& kind, ItemModelFactory factory,
                           bool test_only = false);

// Builds `spec` in this process: parses spec.device (ParseDevice()), looks up spec.kind and calls
// its factory. The built-in kind "dnn" is registered on first use; the test kinds only by the
// test programs (tests/support/test_item_models.h), never by the shipped binary. Errors:
// kInvalidArgument for an unknown kind (naming it and the known ones), a test kind
// without VSIEVE_TEST_MODELS=1, a bad device or max_batch < 1; the factory's errors otherwise.
// Thread-safe; blocks while the model loads.
common::StatusOr<std::unique_ptr<ItemModel>> BuildItemModel(const ItemModelSpec& spec);

// The kinds registered now, sorted (for error messages and tests).
std::vector<std::string> ItemModelKinds();

}  // namespace vsieve::models
