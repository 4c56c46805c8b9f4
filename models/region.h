#pragma once

#include <opencv2/core.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace vsieve::models {

// The kinds of abnormal region in the output row ("abnormal_region_info.regions[].kind").
enum class RegionKind { kBlackBorder, kBlurFill, kText, kWatermark, kObject };

// "black_border", "blur_fill", "text", "watermark", "object".
std::string_view RegionKindName(RegionKind kind);

// The inverse of RegionKindName(); returns false for any other word.
bool ParseRegionKind(std::string_view name, RegionKind* kind);

// One region found in a video. Detectors return boxes in analysis pixels (the pixels of
// media::Frame::bgr); the filter converts them to displayed-frame pixels for the row.
// `avoid` regions shape the safe crop; objects are reported but do not.
struct Region {
  RegionKind kind = RegionKind::kObject;
  cv::Rect box;
  float score = 0.0F;
  std::string label;  // e.g. "letterbox", "subtitle", "logo", "person"
  bool avoid = true;
};

// Scales a box by `factor` and clips it to `bounds`.
cv::Rect ScaleBox(const cv::Rect& box, double factor, const cv::Size& bounds);

}  // namespace vsieve::models
