#pragma once

#include <cstdint>
#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "models/runtime/instance_pool.h"
#include "models/runtime/item_model.h"

namespace vsieve::models {

// A tensor shape; -1 marks a dimension the model leaves open (an ONNX dim_param, or "any").
using Dims = std::vector<int64_t>;

// "[1,3,416,416]", with open dimensions written as N.
std::string DimsText(const Dims& dims);

// The OpenCV DNN backend and target for a device: cpu:N is DNN_BACKEND_OPENCV on
// DNN_TARGET_CPU; cuda:N is DNN_BACKEND_CUDA only when OpenCV sees a CUDA device, otherwise
// kInvalidArgument saying so (never a silent CPU fallback); npu:N is kInvalidArgument. Pure;
// thread-safe.
struct DnnTarget {
  int backend = cv::dnn::DNN_BACKEND_OPENCV;
  int target = cv::dnn::DNN_TARGET_CPU;
};
common::StatusOr<DnnTarget> DnnTargetFor(const Device& device);

// The declared inputs of an ONNX file (graph inputs that are not initializers), read from its
// protobuf without OpenCV, in graph order. Errors: kModelFailed naming the file when it cannot
// be read or is not an ONNX model. Thread-safe.
struct DeclaredInput {
  std::string name;
  Dims dims;
};
common::StatusOr<std::vector<DeclaredInput>> ReadOnnxInputs(const std::string& path);

// One network loaded into OpenCV DNN for one device: an ONNX file, or darknet cfg + weights.
// Shared by the YOLO detectors and the ONNX heads. Runs several inputs ("items") in one forward
// pass when the model allows it (see RunItems()).
//
// Ownership: owns its cv::dnn::Net. Thread-safety: none; one thread at a time (the instance
// pool lends it exclusively). Blocking: Load() and RunItems() block for the work. Errors:
// kModelFailed naming the file for anything the model does (missing or unreadable file, a file
// OpenCV cannot parse, a declared input other than expected, a forward pass that throws);
// kInvalidArgument for a device this build cannot use.
class DnnModel : public ItemModel {
 public:
  // Loads `model` (an .onnx file, or darknet .weights when `cfg` is not empty) for `device`.
  static common::StatusOr<std::unique_ptr<DnnModel>> Load(const std::string& model,
                                                          const std::string& cfg,
                                                          const Device& device);

  // The first declared input: from the ONNX graph, or [1,C,H,W] from a darknet cfg's [net]
  // section. Empty when unknown.
  const Dims& declared_input() const { return declared_; }

  // Fails with kModelFailed naming the file, the declared shape and `expected` when a dimension
  // that both fix differs, or the ranks differ. `expected` uses -1 for "any"; the batch (first)
  // dimension is not compared. `what` says where the expectation comes from (config keys).
  common::Status CheckInput(const Dims& expected, const std::string& what) const;

  // Prepares batching for items of `item_shape` (the input without its batch dimension): a
  // model whose batch dimension is fixed at B > 1 always runs B items (short batches are
  // padded); otherwise a trial pass of two different items decides whether the batch
  // dimension really works (outputs carry it and match single-item passes), and then up to
  // `max_batch` items share a pass. Doubles as the warm-up. Errors: kModelFailed naming the
  // file and the input shape when a single item does not run.
  common::Status PrepareBatching(const std::vector<int>& item_shape, int max_batch);

  // Items that may share one forward pass (1 until PrepareBatching() says otherwise).
  int batch_capacity() const override { return capacity_; }

  // The outputs of PrepareBatching()'s first single-item pass, shaped as RunItems() gives them
  // (for checking a model's output shape at load).
  const std::vector<cv::Mat>& trial_outputs() const { return trial_outputs_; }

  // Milliseconds of PrepareBatching()'s first single-item pass (the warm-up), 0 before it.
  double first_pass_ms() const { return first_pass_ms_; }

  // Runs `items` (each shaped as the item shape given to PrepareBatching(), CV_32F) in as few
  // passes as batch_capacity() allows. Returns, for every item, every output of the net (in
  // getUnconnectedOutLayersNames() order) without its batch dimension: an output of shape
  // [B, d1, d2...] gives [d1, d2, ...] per item (a 2-D output [B, d] gives 1 x d). Outputs are
  // copies owned by the caller.
  common::StatusOr<std::vector<std::vector<cv::Mat>>> RunItems(
      const std::vector<cv::Mat>& items) override;

  // The shapes of trial_outputs() and first_pass_ms().
  Warmup warmup() const override;

  // The file as given to Load() (the weights for darknet).
  const std::string& path() const { return path_; }
  const Device& device() const { return device_; }

 private:
  DnnModel(cv::dnn::Net net, std::string path, Device device, Dims declared);
  common::StatusOr<std::vector<cv::Mat>> Forward(const cv::Mat& blob);
  common::StatusOr<std::vector<std::vector<cv::Mat>>> RunPass(const std::vector<cv::Mat>& items,
                                                              size_t begin, size_t count);
  common::StatusOr<std::vector<std::vector<cv::Mat>>> QuietRunPass(
      const std::vector<cv::Mat>& items, size_t begin, size_t count);

  cv::dnn::Net net_;
  std::string path_;
  Device device_;
  Dims declared_;
  std::vector<std::string> output_names_;
  std::vector<int> item_shape_;
  int capacity_ = 1;
  bool fixed_batch_ = false;  // the model only takes exactly capacity_ items
  double first_pass_ms_ = 0;
  std::vector<cv::Mat> trial_outputs_;
};

}  // namespace vsieve::models
