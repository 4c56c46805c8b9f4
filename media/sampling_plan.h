#pragma once

#include <vector>

#include "media/frame.h"

namespace vsieve::media {

// How densely each consumer needs frames. One plan serves all of them: the centres of
// max(region_frames, clip_frames) equal bins of the clip are decoded in full, and region
// detection and the whole-clip heads take evenly spread subsets of those; each sliding window
// (and its reversed copy) takes the planned frames inside it, thin or full. Nothing is decoded
// twice.
struct SamplingOptions {
  int region_frames = 8;  // frames for abnormal-region detection (at least)
  int clip_frames = 16;   // frames for whole-clip heads
  double window_s = 4.0;  // sliding windows (seed 001, 8.2): length
  double stride_s = 3.0;  //   and stride
  int window_frames = 4;  // frames inside each window
  int bursts = 6;         // runs of neighbouring frames, spread over the clip, so that
  int burst_length = 3;   //   flicker at frame rate is seen (sparse samples alias it)
  int max_frames = 160;   // hard cap on planned frames per video
};

// A sorted list of distinct presentation times to decode, and the windows they serve.
struct SamplingPlan {
  struct Window {
    double start_s = 0.0;
    double end_s = 0.0;
  };
  std::vector<double> times_s;  // ascending, each inside [0, duration)
  // Parallel to times_s: true where region detection or the whole-clip heads read the frame
  // (decoded at the analysis size), false where only the windows and bursts do (decoded thin:
  // DecodeLimits::thin_max_side). Empty means every frame is read in full.
  std::vector<bool> full;
  std::vector<Window> windows;  // in order; may be empty for clips shorter than a window
};

// Builds the plan for a video. Deterministic: the same meta and options give the same plan.
SamplingPlan BuildSamplingPlan(const VideoMeta& meta, const SamplingOptions& options);

}  // namespace vsieve::media
