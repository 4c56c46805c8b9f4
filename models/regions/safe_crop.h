#pragma once

#include <opencv2/core.hpp>
#include <vector>

#include "models/regions/region.h"

namespace vsieve::models {

struct CropOptions {
  double aspect = 0.0;  // keep width/height at this ratio when > 0
};

// The largest axis-aligned rectangle inside a frame of `frame_size` that overlaps no region with
// avoid = true. Returns the whole frame when nothing is avoided, and an empty rectangle when no
// clean area is left. Pure function; thread-safe.
cv::Rect SafeCrop(const cv::Size& frame_size, const std::vector<Region>& regions,
                  const CropOptions& options = {});

}  // namespace vsieve::models
