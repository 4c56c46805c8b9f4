#pragma once

// Shared by the head tests: a clip's frames read with cv::VideoCapture and the HeadInput that
// points into them.

#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "media/frame.h"
#include "models/heads/head.h"
#include "models/regions/region.h"
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

// Frames no real video should break a head with: black, flat grey, and a 16x16 patch.
inline std::vector<cv::Mat> DegenerateFrames() {
  return {cv::Mat(360, 640, CV_8UC3, cv::Scalar::all(0)),
          cv::Mat(360, 640, CV_8UC3, cv::Scalar::all(128)),
          cv::Mat(16, 16, CV_8UC3, cv::Scalar(10, 200, 30))};
}

// `count` copies of `frame`, 0.5 s apart, uncropped.
inline HeadInput RepeatFrame(const cv::Mat& frame, int count) {
  HeadInput input;
  for (int i = 0; i < count; ++i) {
    input.frames.push_back(frame);
    input.full_frames.push_back(frame);
    input.times_s.push_back(0.5 * i);
  }
  input.crop = cv::Rect(0, 0, frame.cols, frame.rows);
  return input;
}

}  // namespace vsieve::models
