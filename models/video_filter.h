#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "media/frame.h"
#include "media/sampling_plan.h"
#include "media/video_decoder.h"
#include "models/builtin_heads.h"
#include "models/model_paths.h"
#include "models/region_detectors.h"
#include "models/safe_crop.h"
#include "models/text_detector.h"

namespace vsieve::models {

// Everything that shapes one run of the filter over a video.
struct FilterOptions {
  media::SamplingOptions sampling;
  media::DecodeLimits limits;
  ModelPaths models;
  CropOptions crop;
  bool text_regions = true;  // run the DB text detector (when its model is present)
  bool vfx = true;
  bool simcam = true;
  bool rotate_vertical = true;
  bool low_quality = true;
  bool windows = true;  // seg_simcam_filter and inverse_seg_simcam_filter
};

// The outcome of filtering one video: the row's "info" object (partial when a stage failed:
// video_meta is kept once known), the status, and per-stage milliseconds.
struct FilterReport {
  common::Status status;
  nlohmann::json info = nlohmann::json::object();
  std::map<std::string, double> stage_ms;
  media::DecodeStats stats;
};

// The whole per-video filter: decode and sample once, find abnormal regions, compute the safe
// crop, run the built-in heads on the cropped frames (whole clip, sliding windows, reversed
// windows). Owns its models; not thread-safe: use one VideoFilter per worker thread.
class VideoFilter {
 public:
  // Loads the models named in `options.models`. A missing optional model disables its cue and
  // is listed in warnings(); a model file that exists but does not load is kModelFailed.
  static common::StatusOr<std::unique_ptr<VideoFilter>> Create(const FilterOptions& options);

  // Filters the video at `path` (a local file). Never throws; a bad video is a report with a
  // non-OK status and the stage that failed.
  FilterReport Run(const std::string& path);

  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  explicit VideoFilter(const FilterOptions& options) : options_(options) {}

  FilterReport RunUnchecked(const std::string& path);
  common::Status DetectRegions(const std::vector<media::Frame>& frames,
                               std::vector<Region>* regions);
  common::Status RunHeads(const std::vector<media::Frame>& frames, const media::VideoMeta& meta,
                          const std::vector<Region>& regions, const cv::Rect& crop,
                          nlohmann::json* info);

  FilterOptions options_;
  std::vector<std::string> warnings_;
  std::unique_ptr<TextDetector> text_detector_;
  std::unique_ptr<TextAngleClassifier> text_angle_;
  std::vector<std::unique_ptr<RegionDetector>> detectors_;
  std::unique_ptr<VfxHead> vfx_;
  std::unique_ptr<SimcamHead> simcam_;
  std::unique_ptr<RotateVerticalHead> rotate_;
  std::unique_ptr<LowQualityHead> low_quality_;
};

}  // namespace vsieve::models
