#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "media/frame.h"
#include "models/regions/region.h"

namespace vsieve::models {

// What a head says about a clip: probabilities over its labels (in the head's label order),
// the winning label and its probability, and for some heads the measured signals behind them.
struct HeadOutput {
  std::vector<std::pair<std::string, double>> result;
  std::string label;
  double prob = 0.0;
  nlohmann::json scores;  // null when the head has none
};

// {"result": {...}, "label": ..., "prob": ..., "scores": {...}} as in the output row.
nlohmann::json HeadOutputToJson(const HeadOutput& output);

// Picks the label with the highest probability.
HeadOutput MakeHeadOutput(std::vector<std::pair<std::string, double>> result,
                          nlohmann::json scores = nullptr);

// The frames a head looks at. `frames` are cropped to the safe crop (views into the decoded
// frames, not copies) and given in the order the head must read them: a reversed window passes
// them last to first. `times_s` matches `frames`. `full_frames` are the same frames uncropped.
struct HeadInput {
  std::vector<cv::Mat> frames;  // BGR, cropped, analysis pixels
  std::vector<double> times_s;
  std::vector<cv::Mat> full_frames;  // BGR, uncropped, same order
  const media::VideoMeta* meta = nullptr;
  const std::vector<Region>* regions = nullptr;  // analysis pixels, uncropped coordinates
  cv::Rect crop;                                 // analysis pixels
  double analysis_scale = 1.0;
  // Optional identity of the frames, so a head may reuse per-frame work across calls on one
  // video (the clip, every window and every reversed window read the same frames).
  // `video_serial` is distinct for each video; 0 means "unknown: do not reuse anything".
  // `frame_keys` then matches `frames` one to one and is unique within the video.
  uint64_t video_serial = 0;
  std::vector<int64_t> frame_keys;
};

// A classifier over a clip. Labels and name are fixed per head (DESIGN.md). Not thread-safe:
// one instance per thread. Errors: kModelFailed.
class Head {
 public:
  virtual ~Head() = default;
  virtual const std::string& name() const = 0;
  virtual const std::vector<std::string>& labels() const = 0;
  virtual common::StatusOr<HeadOutput> Run(const HeadInput& input) = 0;
};

}  // namespace vsieve::models
