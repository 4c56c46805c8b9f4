#pragma once

// Shared by the head tests: a clip's frames read with cv::VideoCapture and the HeadInput that
// points into them.

#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "media/frame.h"
#include "models/head.h"
#include "models/region.h"
#include "tests/support/video_frames.h"

namespace vsieve::models {

// Frames of a clip and the HeadInput that points into them (uncropped).
struct Clip {
  std::vector<media::Frame> frames;
  media::VideoMeta meta;
  std::vector<Region> regions;
  HeadInput input;
};

inline std::unique_ptr<Clip> Load(const std::string& path, int count = 16) {
  auto clip = std::make_unique<Clip>();
  clip->frames = testing::ReadFramesEvenly(path, count);
  if (clip->frames.empty()) return clip;
  const media::Frame& first = clip->frames.front();
  clip->meta.width = static_cast<int>(first.bgr.cols / first.analysis_scale + 0.5);
  clip->meta.height = static_cast<int>(first.bgr.rows / first.analysis_scale + 0.5);
  for (const media::Frame& f : clip->frames) {
    clip->input.frames.push_back(f.bgr);
    clip->input.full_frames.push_back(f.bgr);
    clip->input.times_s.push_back(f.time_s);
  }
  clip->input.meta = &clip->meta;
  clip->input.regions = &clip->regions;
  clip->input.crop = cv::Rect(0, 0, first.bgr.cols, first.bgr.rows);
  clip->input.analysis_scale = first.analysis_scale;
  return clip;
}

inline double Prob(const HeadOutput& out, const std::string& label) {
  for (const auto& [name, p] : out.result) {
    if (name == label) return p;
  }
  return -1.0;
}

}  // namespace vsieve::models
