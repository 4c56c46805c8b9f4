#pragma once

#include <string>
#include <vector>

namespace vsieve::models {

// Files the built-in filter uses. An empty path means "not available": the stage that needs it
// is skipped and the row says so. ResolveModelPaths() fills these from the search folders.
struct ModelPaths {
  std::string text_detector;  // PP-OCR DB detector, 1x3x640x640 input, OpenCV-4.6 loadable
  std::string text_angle;     // PP-OCR text-line angle classifier, 1x3x48x192
  std::string face_cascade;   // Haar cascade (opencv-data) for face orientation
  std::string brisque_model;  // brisque_model_live.yml (opencv-data)
  std::string brisque_range;  // brisque_range_live.yml (opencv-data)
};

// Looks for each file in `search_dirs` in order (a folder may hold the file directly or under
// the subfolder names used by the setup script and ../shared/assets/models), then in Debian's
// opencv-data folders.
ModelPaths ResolveModelPaths(const std::vector<std::string>& search_dirs);

}  // namespace vsieve::models
