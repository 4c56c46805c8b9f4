#pragma once

#include <string_view>
#include <vector>

#include "common/status.h"
#include "media/frame.h"
#include "models/regions/region.h"

namespace vsieve::models {

// Finds abnormal regions of one kind in the sampled frames of one video.
// `frames` are all frames sampled for the video, in time order, in analysis pixels; a detector
// picks the subset it needs. Returned boxes are in analysis pixels. Not thread-safe (a detector
// may hold a DNN net); use one instance per thread. Errors: kModelFailed.
class RegionDetector {
 public:
  virtual ~RegionDetector() = default;
  virtual std::string_view name() const = 0;
  virtual common::StatusOr<std::vector<Region>> Detect(const std::vector<media::Frame>& frames) = 0;
};

}  // namespace vsieve::models
