#include "models/runtime/model_paths.h"

#include <filesystem>

namespace vsieve::models {
namespace {

std::string Find(const std::vector<std::string>& dirs, const std::vector<std::string>& names) {
  for (const auto& dir : dirs) {
    for (const auto& name : names) {
      std::error_code ec;
      const std::filesystem::path candidate = std::filesystem::path(dir) / name;
      if (std::filesystem::is_regular_file(candidate, ec)) return candidate.string();
    }
  }
  return "";
}

}  // namespace

ModelPaths ResolveModelPaths(const std::vector<std::string>& search_dirs) {
  std::vector<std::string> dirs = search_dirs;
  dirs.emplace_back("/usr/share/opencv4");
  ModelPaths paths;
  paths.text_detector = Find(
      dirs, {"ch_PP-OCRv4_det_640x640_ocv46.onnx", "paddleocr/ch_PP-OCRv4_det_640x640_ocv46.onnx"});
  paths.text_angle = Find(dirs, {"ch_ppocr_mobile_v2.0_cls_48x192_ocv46.onnx",
                                 "paddleocr/ch_ppocr_mobile_v2.0_cls_48x192_ocv46.onnx"});
  paths.face_cascade = Find(dirs, {"haarcascade_frontalface_default.xml",
                                   "haarcascades/haarcascade_frontalface_default.xml"});
  paths.brisque_model = Find(dirs, {"brisque_model_live.yml", "quality/brisque_model_live.yml"});
  paths.brisque_range = Find(dirs, {"brisque_range_live.yml", "quality/brisque_range_live.yml"});
  return paths;
}

}  // namespace vsieve::models
