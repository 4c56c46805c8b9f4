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

// The label of a watermark found as text that never changes ("SAMPLE", a channel's name): it is
// text to the heads that read text (orientation) and to the crop's rules for central text.
inline constexpr std::string_view kTextMarkLabel = "text_mark";

// True for text regions and for watermarks found as text.
inline bool IsTextRegion(const Region& r) {
  return r.kind == RegionKind::kText ||
         (r.kind == RegionKind::kWatermark && r.label == kTextMarkLabel);
}

// Scales a box by `factor` and clips it to `bounds`.
cv::Rect ScaleBox(const cv::Rect& box, double factor, const cv::Size& bounds);

}  // namespace vsieve::models
