#pragma once

#include <map>
#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "models/regions/region.h"
#include "models/regions/region_detector.h"
#include "models/runtime/dnn_model.h"
#include "models/runtime/instance_pool.h"

namespace vsieve::models {

// The output layouts of the YOLO family that the detector decodes.
//   kYolov5     [1, N, 5+C]: cx, cy, w, h (input pixels), objectness, C class scores
//   kYolov8     [1, 4+C, N]: cx, cy, w, h (input pixels), C class scores
//   kYolox      [1, N, 5+C] raw grid (strides 8, 16, 32): offsets, log sizes, objectness, scores
//   kDarknet    darknet cfg+weights: per yolo layer [N, 5+C], cx, cy, w, h relative to the input,
//               objectness, C scores already multiplied by objectness (OpenCV's region layer)
//   kFastestDet [1, 5+C, H, W]: objectness, tanh offsets, sigmoid sizes, C softmax scores
enum class YoloKind { kYolov5, kYolov8, kYolox, kDarknet, kFastestDet };

// "yolov5", "yolov8", "yolox", "darknet", "fastestdet"; Parse returns false for anything else.
std::string_view YoloKindName(YoloKind kind);
bool ParseYoloKind(std::string_view name, YoloKind* kind);

// Where a detected class goes in the row: a region kind, and whether it shapes the crop.
struct ClassMapping {
  RegionKind kind = RegionKind::kObject;
  bool avoid = false;
};

// One [[detectors]] entry of the config (DESIGN.md, "Configuration").
struct DetectorConfig {
  std::string name = "yolo";
  YoloKind kind = YoloKind::kYolox;
  std::string model;    // .onnx, or darknet .weights
  std::string cfg;      // darknet .cfg (kind darknet only)
  std::string classes;  // class names, one per line ("" = class ids as names)
  int input_width = 0;  // 0 = from the model's declared input (or the darknet cfg)
  int input_height = 0;
  bool letterbox = true;  // keep the aspect ratio, pad; false = stretch to the input
  float conf = 0.3F;      // minimum score
  float nms = 0.45F;      // IoU above which a weaker box of the same class is dropped
  std::vector<std::string> class_filter;  // classes reported; empty = all
  // Class name -> where it goes; "default" covers classes not listed. Without a default,
  // unlisted classes are objects (not avoided).
  std::map<std::string, ClassMapping> kinds;
  int frames = 4;                    // sampled frames the detector reads per video
  double min_presence = 0.5;         // share of those frames a region must be found in
  std::vector<std::string> devices;  // empty = cpu:0
  int instances = 1;                 // exclusive instances per device
  int batch = 8;                     // frames per forward pass, when the model allows more than 1
};

// The letterbox defaults per kind: YOLOv5/v8/YOLOX letterbox (as their own preprocessing);
// darknet (AlexeyAB's default letter_box=0) and FastestDet stretch.
bool DefaultLetterbox(YoloKind kind);

// One detection, in the pixels of the image given to Detect().
struct Detection {
  int class_id = 0;
  std::string label;
  float score = 0.0F;
  cv::Rect2f box;
};

// A YOLO-family detector on OpenCV DNN: letterbox (or stretch) preprocessing with each
// layout's pixel convention (YOLOv5/v8 and darknet: RGB / 255; YOLOX: BGR 0..255; FastestDet:
// BGR / 255), the layout's decoding, the confidence threshold and per-class NMS.
//
// Ownership: owns its DnnModel. Thread-safety: none; one thread at a time (pooled). Blocking:
// Load() and Detect*() block for the work. Errors: kModelFailed naming the file (missing,
// unreadable, declared input other than the configured size, output not of the layout's
// shape for the class count) or the forward pass that failed; kInvalidArgument for a bad
// device.
class YoloDetector {
 public:
  // Loads and warms the model (one trial pass; two when probing the batch dimension).
  static common::StatusOr<std::unique_ptr<YoloDetector>> Load(const DetectorConfig& config,
                                                              const Device& device);

  // Detections in one BGR image.
  common::StatusOr<std::vector<Detection>> Detect(const cv::Mat& bgr);

  // Detections in several BGR images, in as few forward passes as the model's batch allows
  // (batch_capacity()); one list per image, boxes in that image's pixels.
  common::StatusOr<std::vector<std::vector<Detection>>> RunBatch(
      const std::vector<cv::Mat>& images);

  const DetectorConfig& config() const { return config_; }
  const std::vector<std::string>& class_names() const { return names_; }
  cv::Size input_size() const { return input_; }
  int batch_capacity() const { return model_->batch_capacity(); }
  const DnnModel& model() const { return *model_; }

 private:
  YoloDetector(DetectorConfig config, std::unique_ptr<DnnModel> model,
               std::vector<std::string> names, cv::Size input);
  struct Geometry;  // how one image was fitted into the input
  cv::Mat Preprocess(const cv::Mat& bgr, Geometry* geometry) const;
  common::StatusOr<std::vector<Detection>> Decode(const std::vector<cv::Mat>& outputs,
                                                  const Geometry& geometry) const;
  // The output that has the layout's shape (kModelFailed naming the file, the shapes and the
  // expected one when none has).
  common::StatusOr<size_t> MainOutput(const std::vector<cv::Mat>& outputs) const;

  DetectorConfig config_;
  std::unique_ptr<DnnModel> model_;
  std::vector<std::string> names_;
  cv::Size input_;
};

// The YOLO detector as one of the filter's region detectors: reads config.frames frames spread
// over the sampled frames (analysis pixels), batches them through a borrowed detector, keeps the
// classes in class_filter, and links detections of one class across frames (IoU >= 0.3 with the
// track's latest box). A track found in at least min_presence of the frames read becomes one
// Region: the union of its boxes, its mean score, the class name as label, and kind/avoid from
// config.kinds. Objects therefore do not shrink the crop; classes mapped with avoid = true do.
//
// Ownership: borrows `pool`, which must outlive it. Thread-safety: as RegionDetector (one
// thread); the pool lends each detector instance to one thread at a time. Blocks while waiting
// for a free instance (up to `borrow_timeout_s`: kTimeout) and for the passes.
class ObjectRegionDetector : public RegionDetector {
 public:
  ObjectRegionDetector(const DetectorConfig& config, InstancePool<YoloDetector>* pool,
                       double borrow_timeout_s);
  std::string_view name() const override { return config_.name; }
  common::StatusOr<std::vector<Region>> Detect(const std::vector<media::Frame>& frames) override;

  // The aggregation step alone (for tests): per-frame detections -> regions.
  static std::vector<Region> Aggregate(const DetectorConfig& config,
                                       const std::vector<std::vector<Detection>>& per_frame);

 private:
  DetectorConfig config_;
  InstancePool<YoloDetector>* pool_;
  double borrow_timeout_s_;
};

// Reads class names, one per line (blank lines end the list; surrounding spaces trimmed).
// Errors: kModelFailed naming the file when it cannot be read or holds no name.
common::StatusOr<std::vector<std::string>> ReadClassNames(const std::string& path);

}  // namespace vsieve::models
