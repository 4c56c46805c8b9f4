#include "models/regions/region.h"

#include <cmath>

namespace vsieve::models {

std::string_view RegionKindName(RegionKind kind) {
  switch (kind) {
    case RegionKind::kBlackBorder:
      return "black_border";
    case RegionKind::kBlurFill:
      return "blur_fill";
    case RegionKind::kText:
      return "text";
    case RegionKind::kWatermark:
      return "watermark";
    case RegionKind::kObject:
      return "object";
  }
  return "object";
}

bool ParseRegionKind(std::string_view name, RegionKind* kind) {
  for (RegionKind k : {RegionKind::kBlackBorder, RegionKind::kBlurFill, RegionKind::kText,
                       RegionKind::kWatermark, RegionKind::kObject}) {
    if (RegionKindName(k) == name) {
      *kind = k;
      return true;
    }
  }
  return false;
}

cv::Rect ScaleBox(const cv::Rect& box, double factor, const cv::Size& bounds) {
  const int x0 = static_cast<int>(std::floor(box.x * factor));
  const int y0 = static_cast<int>(std::floor(box.y * factor));
  const int x1 = static_cast<int>(std::ceil((box.x + box.width) * factor));
  const int y1 = static_cast<int>(std::ceil((box.y + box.height) * factor));
  return cv::Rect(cv::Point(x0, y0), cv::Point(x1, y1)) & cv::Rect(cv::Point(0, 0), bounds);
}

}  // namespace vsieve::models
