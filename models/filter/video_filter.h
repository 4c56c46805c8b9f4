#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "media/frame.h"
#include "media/sampling_plan.h"
#include "media/video_decoder.h"
#include "models/filter/configured_models.h"
#include "models/heads/builtin_heads.h"
#include "models/regions/region_detectors.h"
#include "models/regions/safe_crop.h"
#include "models/regions/text_detector.h"
#include "models/runtime/model_paths.h"

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
  // The user's YOLO detectors ([[detectors]]) and ONNX heads ([[heads]]), beside the built-ins.
  std::vector<DetectorConfig> detectors;
  std::vector<OnnxHeadConfig> heads;
};

// Text across the middle of the picture (title cards, large captions) cannot be cropped away
// without losing most of the frame. When `crop` keeps less than half of `frame`, the text
// regions (and watermarks found on that same text) whose centre lies in the middle half of the
// frame's height stop shaping the crop (avoid = false; they are still reported). Returns true
// if anything changed; the caller then computes the crop again.
bool RelaxCentralText(const cv::Size& frame, const cv::Rect& crop, std::vector<Region>* regions);

// The outcome of filtering one video: the row's "info" object (partial when a stage failed:
// video_meta is kept once known), the status, and per-stage milliseconds.
struct FilterReport {
  common::Status status;
  nlohmann::json info = nlohmann::json::object();
  std::map<std::string, double> stage_ms;
  media::DecodeStats stats;
};

// One decoded and sampled video: the first half of the filter, without models, so decoding can
// run as its own pipeline stage. `info` holds "video_meta" once the header was read (with
// "decode_stats" and "frames_sampled" after sampling); `status` is non-OK (stage "decode") when
// the video cannot be analysed, and then `frames` may be empty. Movable; owned by one stage at a
// time.
struct SampledVideo {
  common::Status status;
  media::VideoMeta meta;
  media::DecodeStats stats;
  std::vector<media::Frame> frames;
  std::vector<media::SamplingPlan::Window> windows;  // the plan's sliding windows
  nlohmann::json info = nlohmann::json::object();
  std::map<std::string, double> stage_ms;  // "decode"
};

// Opens the video at `path` (a local file), reads its header and decodes the frames of one
// sampling plan (options.sampling) under options.limits (including decode_deadline_s). Loads
// no model; safe to call from any number of threads at once. Never throws: library exceptions
// become a status with stage "decode". Blocks for the decode.
SampledVideo SampleVideo(const std::string& path, const FilterOptions& options);

// The whole per-video filter: decode and sample once, find abnormal regions, compute the safe
// crop, run the built-in heads on the cropped frames (whole clip, sliding windows, reversed
// windows). Owns its models; not thread-safe: use one VideoFilter per worker thread.
class VideoFilter {
 public:
  // Loads the models named in `options.models`. A missing optional model disables its cue and
  // is listed in warnings(); a model file that exists but does not load is kModelFailed.
  // The configured detectors and heads come from `configured` (shared by every filter of a
  // process; see ConfiguredModels); when it is null and options name any, the filter loads its
  // own set (errors as ConfiguredModels::Load).
  static common::StatusOr<std::unique_ptr<VideoFilter>> Create(
      const FilterOptions& options, std::shared_ptr<ConfiguredModels> configured = nullptr);

  // Filters the video at `path` (a local file). Never throws; a bad video is a report with a
  // non-OK status and the stage that failed.
  // Equivalent to Analyze(SampleVideo(path, options)).
  FilterReport Run(const std::string& path);

  // The second half of the filter over an already sampled video: regions, safe crop, heads.
  // A `video` whose status is not OK becomes a report with that status (its meta kept). Never
  // throws. Not thread-safe (the filter's models are used); blocks for the analysis.
  FilterReport Analyze(SampledVideo video);

  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  explicit VideoFilter(const FilterOptions& options) : options_(options) {}

  FilterReport AnalyzeUnchecked(SampledVideo& video, FilterReport& report);
  common::Status DetectRegions(const std::vector<media::Frame>& frames,
                               std::vector<Region>* regions);
  common::Status RunHeads(const std::vector<media::Frame>& frames,
                          const std::vector<media::SamplingPlan::Window>& windows,
                          const media::VideoMeta& meta, const std::vector<Region>& regions,
                          const cv::Rect& crop, nlohmann::json* info);
  // `thin` holds the thin copy of each of `frames` (window heads read them, cut to thin_crop).
  common::Status RunConfiguredHeads(const std::vector<media::Frame>& frames,
                                    const std::vector<media::Frame>& thin,
                                    const std::vector<media::SamplingPlan::Window>& windows,
                                    const media::VideoMeta& meta,
                                    const std::vector<Region>& regions, const cv::Rect& crop,
                                    const cv::Rect& thin_crop, uint64_t serial,
                                    nlohmann::json* info);

  FilterOptions options_;
  std::vector<std::string> warnings_;
  // The user's detectors and heads, or null. Declared before detectors_, which borrow from its
  // pools, so that it outlives them.
  std::shared_ptr<ConfiguredModels> configured_;
  // Shared with the other filters of the process (TextDetector::LoadShared).
  std::shared_ptr<TextDetector> text_detector_;
  size_t text_index_ = SIZE_MAX;  // the text detector's place in detectors_, if any
  std::unique_ptr<TextAngleClassifier> text_angle_;
  std::vector<std::unique_ptr<RegionDetector>> detectors_;
  std::unique_ptr<VfxHead> vfx_;
  std::unique_ptr<SimcamHead> simcam_;
  std::unique_ptr<RotateVerticalHead> rotate_;
  std::unique_ptr<LowQualityHead> low_quality_;
  uint64_t video_serial_ = 0;  // one per Run(): lets heads reuse per-frame work within a video
};

}  // namespace vsieve::models
