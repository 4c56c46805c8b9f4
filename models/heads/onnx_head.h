#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "models/heads/head.h"
#include "models/runtime/dnn_model.h"
#include "models/runtime/instance_pool.h"
#include "models/runtime/item_model.h"
#include "models/runtime/model_runtime.h"

namespace vsieve::models {

// How a head's input tensor is laid out.
//   kNcthw  [N, 3, T, H, W]  one clip per item (VJEPA/X3D/SlowFast style)
//   kNtchw  [N, T, 3, H, W]  one clip per item (TimeSformer/VideoMAE style)
//   kNchw   [N, 3, H, W]     one frame per item; the T per-frame outputs of a clip are averaged
//                            (before the activation) into the clip's output
enum class HeadLayout { kNcthw, kNtchw, kNchw };
// What turns the model's outputs into probabilities.
enum class HeadActivation { kSoftmax, kSigmoid, kNone };
// Where the head runs: the whole clip, each sliding window, or each window read backwards.
enum class HeadMode { kClip, kWindows, kReversedWindows };

// "NCTHW", "NTCHW", "NCHW" / "softmax", "sigmoid", "none" / "clip", "windows",
// "reversed_windows". Parse functions return false for anything else.
std::string_view HeadLayoutName(HeadLayout layout);
bool ParseHeadLayout(std::string_view name, HeadLayout* layout);
std::string_view HeadActivationName(HeadActivation activation);
bool ParseHeadActivation(std::string_view name, HeadActivation* activation);
std::string_view HeadModeName(HeadMode mode);
bool ParseHeadMode(std::string_view name, HeadMode* mode);

// One [[heads]] entry with kind = "onnx" (DESIGN.md, "Configuration").
struct OnnxHeadConfig {
  std::string name;  // the key in the row's info, e.g. "aesthetic_filter"
  std::string model;
  HeadLayout layout = HeadLayout::kNcthw;
  int frames = 16;  // T: frames per clip or window, spread evenly over what the filter gives
  int height = 224;
  int width = 224;
  // Per channel, in the model's colour order: value = (pixel / 255 - mean) / std.
  std::array<double, 3> mean = {0.485, 0.456, 0.406};
  std::array<double, 3> std = {0.229, 0.224, 0.225};
  bool rgb = true;  // channel order of the input ("rgb" or "bgr")
  std::vector<std::string> labels;
  HeadActivation activation = HeadActivation::kSoftmax;
  HeadMode mode = HeadMode::kClip;
  std::vector<std::string> devices;  // empty = cpu:0
  int instances = 1;                 // exclusive instances per device
  int batch = 8;                     // clips (windows) per forward pass, when the model allows
};

// The expected input shape for `config`, batch open: e.g. [N,3,16,224,224] for NCTHW.
Dims ExpectedHeadInput(const OnnxHeadConfig& config);

// The items a head's model runs for `inputs` (one clip or window each): per input, config.frames
// frames picked evenly from HeadInput::frames in the order given (so a reversed window reads its
// frames last to first), each resized to width x height, colour-converted and normalised, packed
// in the layout: one item per input (NCTHW, NTCHW), or config.frames items (NCHW). Pure;
// thread-safe. Errors: kInvalidArgument for an input without frames; kModelFailed when OpenCV
// throws.
common::StatusOr<std::vector<cv::Mat>> PrepareHeadItems(const OnnxHeadConfig& config,
                                                        const std::vector<HeadInput>& inputs);

// Items per input: config.frames for NCHW, else 1.
int HeadItemsPerInput(const OnnxHeadConfig& config);

// One output per input from the model's outputs for PrepareHeadItems()'s items: NCHW's
// per-frame outputs are averaged, then the activation gives one probability per label (in the
// labels' order; the winner is the highest). Pure; thread-safe. Errors: kModelFailed when an
// output does not hold one value per label.
common::StatusOr<std::vector<HeadOutput>> FinishHeadItems(
    const OnnxHeadConfig& config, size_t inputs, const std::vector<std::vector<cv::Mat>>& outputs);

// A user's ONNX classifier over a clip, configured by OnnxHeadConfig: PrepareHeadItems(), the
// model, FinishHeadItems(). The model is an ItemModel of kind "dnn" built by MakeItemModel():
// a DnnModel in this process, or, with runtime.isolate, a ChildProcessModel whose child loads it
// (a crash or hang of the model then fails the call with kModelFailed and restarts the child).
//
// Ownership: owns its model. Thread-safety: none; one thread at a time (pooled). Blocking:
// Load() and Run*() block for the work. Errors from Load(): kModelFailed naming the file and
// the expected shape when the model is missing, unreadable, declares another input shape, or
// gives another number of outputs than labels; kInvalidArgument for a bad device. Errors from
// Run*(): kInvalidArgument for an input without frames; kModelFailed when a pass fails.
class OnnxHead : public Head {
 public:
  // Loads and warms the model (one trial pass; two when probing the batch dimension).
  static common::StatusOr<std::unique_ptr<OnnxHead>> Load(
      const OnnxHeadConfig& config, const Device& device,
      const ModelRuntimeOptions& runtime = ModelRuntimeOptions());

  const std::string& name() const override { return config_.name; }
  const std::vector<std::string>& labels() const override { return config_.labels; }
  common::StatusOr<HeadOutput> Run(const HeadInput& input) override;

  // Several clips (e.g. every window of a video) in as few forward passes as the model's batch
  // allows; one output per input, in order.
  common::StatusOr<std::vector<HeadOutput>> RunBatch(const std::vector<HeadInput>& inputs);

  const OnnxHeadConfig& config() const { return config_; }
  // Inputs (clips) one forward pass takes.
  int batch_capacity() const;
  // The model, for running prepared items directly (the micro-batcher does).
  ItemModel& model() const { return *model_; }

 private:
  OnnxHead(OnnxHeadConfig config, std::unique_ptr<ItemModel> model)
      : config_(std::move(config)), model_(std::move(model)) {}

  OnnxHeadConfig config_;
  std::unique_ptr<ItemModel> model_;
};

}  // namespace vsieve::models
