#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/heads/head.h"
#include "models/regions/text_detector.h"

namespace vsieve::models {

// Flashes, strobing, colour inversions and dense transitions, from per-frame luma statistics and
// frame-to-frame change. Labels: "VFX_video", "normal_video".
class VfxHead : public Head {
 public:
  VfxHead();
  const std::string& name() const override { return name_; }
  const std::vector<std::string>& labels() const override { return labels_; }
  common::StatusOr<HeadOutput> Run(const HeadInput& input) override;

 private:
  std::string name_;
  std::vector<std::string> labels_;
};

// Frozen/still content ("static_video") and a still picture panned or zoomed
// ("simulated_camera_video"), from a global motion fit between consecutive frames and the
// residual it leaves. Labels: "static_video", "simulated_camera_video", "normal_video".
// Also used per sliding window (seg_simcam_filter) and on reversed windows.
//
// When the input names its frames (HeadInput::video_serial and frame_keys), each frame's reduced
// grey image and tracked corners are kept between Run() calls on the same video, because the
// whole clip, every window and every reversed window read the same decoded frames. A new
// video_serial drops them; ForgetFrames() frees them early.
class SimcamHead : public Head {
 public:
  SimcamHead();
  const std::string& name() const override { return name_; }
  const std::vector<std::string>& labels() const override { return labels_; }
  common::StatusOr<HeadOutput> Run(const HeadInput& input) override;
  void ForgetFrames() {
    prepared_.clear();
    pairs_.clear();
    prepared_serial_ = 0;
  }

  // What one pair of neighbouring frames shows (see simcam_head.cc).
  struct PairMeasure {
    double change = 0.0;    // share of pixels with |diff| > 10
    double raw = 0.0;       // mean |diff| before warping
    double residual = 0.0;  // mean |diff| after warping, valid region
    double motion = 0.0;    // mean corner displacement, px at the work size
    double inliers = 0.0;   // share of tracks the fit explains (1 for the phase fallback)
    double floor = 0.0;     // what resampling alone leaves on this picture
  };

 private:
  struct Prepared {
    cv::Mat gray;
    std::vector<cv::Point2f> corners;
  };
  static Prepared PrepareFrame(const cv::Mat& frame);

  std::string name_;
  std::vector<std::string> labels_;
  uint64_t prepared_serial_ = 0;          // the video `prepared_` and `pairs_` belong to
  std::map<int64_t, Prepared> prepared_;  // by frame key
  // By (earlier, later) frame key: a pair is measured once per video, from the earlier frame to
  // the later one whichever order a call gives them in, so a reversed window reuses the forward
  // window's pairs and reads the same.
  std::map<std::pair<int64_t, int64_t>, PairMeasure> pairs_;
};

// Content on its side or upside down ("rotated_video") from text-line orientation (the text
// regions, the angle classifier) and face orientation (Haar cascade at 0/90/180/270), and
// portrait content placed in a landscape frame ("vertical_screen_video") from the crop and the
// border/blur-fill regions. Labels: "rotated_video", "vertical_screen_video", "normal_video".
// Models are optional: a missing one removes that cue. Borrowed pointers are not owned.
class RotateVerticalHead : public Head {
 public:
  RotateVerticalHead(TextAngleClassifier* angle, const std::string& face_cascade_path);
  ~RotateVerticalHead() override;
  const std::string& name() const override { return name_; }
  const std::vector<std::string>& labels() const override { return labels_; }
  common::StatusOr<HeadOutput> Run(const HeadInput& input) override;

 private:
  struct Faces;
  std::string name_;
  std::vector<std::string> labels_;
  TextAngleClassifier* angle_;
  std::unique_ptr<Faces> faces_;
};

// Sharpness, blockiness, noise, exposure, BRISQUE (opencv-data models) and resolution, combined
// into a probability of "low_quality_video" vs "normal_video"; `scores` holds each signal.
class LowQualityHead : public Head {
 public:
  LowQualityHead(const std::string& brisque_model, const std::string& brisque_range);
  ~LowQualityHead() override;
  const std::string& name() const override { return name_; }
  const std::vector<std::string>& labels() const override { return labels_; }
  common::StatusOr<HeadOutput> Run(const HeadInput& input) override;

 private:
  struct Brisque;
  std::string name_;
  std::vector<std::string> labels_;
  std::unique_ptr<Brisque> brisque_;
};

}  // namespace vsieve::models
