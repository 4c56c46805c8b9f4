#pragma once

// Shared by tests/models/regions/yolo_detector_test.cc and bench/model_bench.cc (header-only, no
// test framework): where the real YOLO-family models of ../shared/assets/models are and how to run
// them.

#include <string>

#include "models/regions/yolo_detector.h"

namespace vsieve::testing {

// The DetectorConfig named `which` for one of the real models under `models_dir` (the
// assets' models folder, ending in '/'): "yolox-nano", "fastestdet", or any other name for
// "yolo-fastest-1.1" (Darknet). Letterboxed as the kind's own preprocessing is; every other
// field keeps its default.
inline models::DetectorConfig RealDetectorConfig(const std::string& models_dir,
                                                 const std::string& which) {
  models::DetectorConfig config;
  config.name = which;
  if (which == "yolox-nano") {
    config.kind = models::YoloKind::kYolox;
    config.model = models_dir + "yolox-nano/yolox_nano.onnx";
    config.classes = models_dir + "yolox-nano/coco_classes.txt";
  } else if (which == "fastestdet") {
    config.kind = models::YoloKind::kFastestDet;
    config.model = models_dir + "fastestdet/FastestDet.onnx";
    config.classes = models_dir + "fastestdet/coco.names";
  } else {
    config.kind = models::YoloKind::kDarknet;
    config.model = models_dir + "yolo-fastest-1.1/yolo-fastest-1.1.weights";
    config.cfg = models_dir + "yolo-fastest-1.1/yolo-fastest-1.1.cfg";
    config.classes = models_dir + "yolo-fastest-1.1/coco.names";
  }
  config.letterbox = models::DefaultLetterbox(config.kind);
  return config;
}

}  // namespace vsieve::testing
