// SimcamHead: still content ("static_video") and a still picture moved rigidly
// ("simulated_camera_video": Ken Burns, zoompan, a crop panned over a photo).
//
// Frames are reduced to grey at a 160-px long side, low-pass filtered before the last halving so
// that fine detail does not alias (see WorkGray), and lightly blurred. For each consecutive pair:
//   change   share of pixels whose grey level moved by more than 10 levels;
//   motion   a similarity transform (shift, zoom, rotation) fitted to Lucas-Kanade tracks with
//            RANSAC, or to a phase correlation shift when there is too little texture to track;
//            its size is the mean displacement of the four corners, in 160-px pixels;
//   residual the mean absolute difference left after warping the first frame onto the second,
//            over the pixels both frames cover, beside the raw mean difference before warping.
// A pair is soft-labelled
//   static   change below ~1% of the picture and motion below ~0.3 px (a frozen or still frame;
//            a small timecode or a distant passer-by still counts as still);
//   rigid    motion above ~0.4 px, a residual below ~2.5 levels above what resampling alone
//            leaves on this picture (at least 0.5 levels; more on fine detail, measured by
//            shifting the picture half a pixel and back), the residual above that floor below
//            ~40% of the raw difference, and most tracks agreeing: the whole
//            picture moved as one flat plane; real camera motion leaves parallax, independent
//            motion and lighting change;
//   cut      neither, with a residual above ~12 levels (a different picture).
// Over the clip, cuts are forgiven up to the number of static (or rigid) pairs, so a slideshow
// of stills or of Ken Burns shots keeps its label. Then
//   p_static = SoftAbove(static share, 0.6, 0.08), p_rigid = SoftAbove(rigid share, 0.5, 0.08),
//   static_video = p_static, simulated_camera_video = (1 - p_static) * p_rigid, normal = rest.
// With fewer than two frames there is nothing to compare: the answer leans to normal_video.
#include <algorithm>
#include <cmath>
#include <opencv2/calib3d.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/video/tracking.hpp>

#include "models/heads/builtin_heads.h"
#include "models/heads/frame_signals.h"

namespace vsieve::models {
namespace {

constexpr int kWorkSide = 160;
// Mean |difference| a perfectly rigid warp still leaves at kWorkSide: resampling and coding noise.
constexpr double kResidualFloor = 0.5;
// Gaussian sigma, in kWorkSide pixels, of the low-pass filter applied before the last shrink.
constexpr double kAntiAlias = 0.7;

using PairMeasure = SimcamHead::PairMeasure;

// Mean |difference| that linear resampling alone leaves on `gray`: the picture shifted by half a
// pixel and back, halved (one resampling's worth). Fine detail (a fractal, a texture) loses far
// more than the kResidualFloor of an ordinary picture, so a rigid warp of it cannot do better.
double ResamplingFloor(const cv::Mat& gray) {
  const cv::Mat there = (cv::Mat_<double>(2, 3) << 1, 0, 0.5, 0, 1, 0.5);
  const cv::Mat back = (cv::Mat_<double>(2, 3) << 1, 0, -0.5, 0, 1, -0.5);
  cv::Mat shifted;
  cv::Mat returned;
  cv::warpAffine(gray, shifted, there, gray.size(), cv::INTER_LINEAR, cv::BORDER_REFLECT);
  cv::warpAffine(shifted, returned, back, gray.size(), cv::INTER_LINEAR, cv::BORDER_REFLECT);
  cv::Mat diff;
  cv::absdiff(gray, returned, diff);
  const cv::Rect inner(2, 2, std::max(1, gray.cols - 4), std::max(1, gray.rows - 4));
  return 0.5 * cv::mean(diff(inner & cv::Rect(0, 0, gray.cols, gray.rows)))[0];
}

// The grey picture at a kWorkSide long side. Detail finer than that size (a cellular
// automaton's one-pixel cells, a fractal's filaments) aliases when shrunk: the same picture moved
// by a fraction of a work pixel reduces to a different pattern, so a rigid pan or zoom of it left
// residuals like independent motion (7.5 levels on a panned automaton, against 1 once
// filtered). The frame is brought to twice the work size, low-pass filtered there, then halved;
// only a frame little larger than the work size is shrunk directly. (The filter gives simcam
// thin frames, 2 * kWorkSide on their long side, cut to the crop.)
cv::Mat WorkGray(const cv::Mat& frame) {
  if (2 * std::max(frame.cols, frame.rows) <= 3 * kWorkSide) {
    return GrayAtLongSide(frame, kWorkSide);
  }
  cv::Mat twice = GrayAtLongSide(frame, 2 * kWorkSide);
  cv::GaussianBlur(twice, twice, cv::Size(0, 0), 2.0 * kAntiAlias);
  return GrayAtLongSide(twice, kWorkSide);
}

// Mean displacement of the image corners under the 2x3 transform `m`.
double CornerMotion(const cv::Mat& m, const cv::Size& size) {
  const double w = size.width - 1.0;
  const double h = size.height - 1.0;
  const double corners[4][2] = {{0, 0}, {w, 0}, {0, h}, {w, h}};
  double total = 0.0;
  for (const auto& c : corners) {
    const double x = m.at<double>(0, 0) * c[0] + m.at<double>(0, 1) * c[1] + m.at<double>(0, 2);
    const double y = m.at<double>(1, 0) * c[0] + m.at<double>(1, 1) * c[1] + m.at<double>(1, 2);
    total += std::hypot(x - c[0], y - c[1]);
  }
  return total / 4.0;
}

// Fits prev -> next. Returns a 2x3 CV_64F matrix and the inlier share.
cv::Mat FitMotion(const cv::Mat& prev, const cv::Mat& next, const std::vector<cv::Point2f>& pts,
                  double* inlier_share) {
  *inlier_share = 0.0;
  if (pts.size() >= 8) {
    std::vector<cv::Point2f> moved;
    std::vector<unsigned char> status;
    std::vector<float> err;
    cv::calcOpticalFlowPyrLK(
        prev, next, pts, moved, status, err, cv::Size(15, 15), 3,
        cv::TermCriteria(cv::TermCriteria::COUNT | cv::TermCriteria::EPS, 20, 0.03));
    std::vector<cv::Point2f> a;
    std::vector<cv::Point2f> b;
    for (size_t i = 0; i < pts.size(); ++i) {
      if (status[i] != 0) {
        a.push_back(pts[i]);
        b.push_back(moved[i]);
      }
    }
    if (a.size() >= 8) {
      std::vector<unsigned char> inliers;
      cv::Mat m = cv::estimateAffinePartial2D(a, b, inliers, cv::RANSAC, 1.0, 500, 0.99, 10);
      if (!m.empty()) {
        const double count = static_cast<double>(std::count(inliers.begin(), inliers.end(), 1));
        // Of the tracked points: points that leave the picture do not count against the fit.
        *inlier_share = count / static_cast<double>(a.size());
        return m;
      }
    }
  }
  // Too little texture to track: a global shift from phase correlation.
  cv::Mat fa;
  cv::Mat fb;
  prev.convertTo(fa, CV_64F);
  next.convertTo(fb, CV_64F);
  double response = 0.0;
  const cv::Point2d shift = cv::phaseCorrelate(fa, fb, cv::noArray(), &response);
  cv::Mat m = (cv::Mat_<double>(2, 3) << 1, 0, shift.x, 0, 1, shift.y);
  *inlier_share = std::isfinite(response) ? std::clamp(response, 0.0, 1.0) : 0.0;
  if (!std::isfinite(shift.x) || !std::isfinite(shift.y)) m = cv::Mat::eye(2, 3, CV_64F);
  return m;
}

PairMeasure MeasurePair(const cv::Mat& prev, const cv::Mat& next,
                        const std::vector<cv::Point2f>& pts) {
  PairMeasure p;
  cv::Mat diff;
  cv::absdiff(prev, next, diff);
  p.raw = cv::mean(diff)[0];
  p.change = static_cast<double>(cv::countNonZero(diff > 10)) / std::max<size_t>(1, diff.total());
  if (p.raw < 0.05) {
    p.inliers = 1.0;
    return p;  // identical frames: no motion, no residual
  }
  cv::Mat m = FitMotion(prev, next, pts, &p.inliers);
  p.motion = CornerMotion(m, prev.size());
  cv::Mat warped;
  cv::Mat valid;
  cv::warpAffine(prev, warped, m, prev.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT);
  cv::warpAffine(cv::Mat(prev.size(), CV_8U, cv::Scalar(255)), valid, m, prev.size(),
                 cv::INTER_NEAREST, cv::BORDER_CONSTANT);
  cv::erode(valid, valid, cv::Mat(), cv::Point(-1, -1), 2);
  if (cv::countNonZero(valid) < static_cast<int>(valid.total() / 4)) {
    p.residual = p.raw;
    p.inliers = 0.0;
    return p;
  }
  cv::absdiff(warped, next, diff);
  p.residual = cv::mean(diff, valid)[0];
  p.floor = std::max(kResidualFloor, ResamplingFloor(next));
  return p;
}

double Median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + static_cast<long>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

}  // namespace

SimcamHead::SimcamHead()
    : name_("simcam_filter"), labels_({"static_video", "simulated_camera_video", "normal_video"}) {}

SimcamHead::Prepared SimcamHead::PrepareFrame(const cv::Mat& frame) {
  Prepared prepared;
  prepared.gray = WorkGray(frame);
  cv::GaussianBlur(prepared.gray, prepared.gray, cv::Size(3, 3), 0.8);
  if (std::min(prepared.gray.cols, prepared.gray.rows) >= 16) {
    cv::goodFeaturesToTrack(prepared.gray, prepared.corners, 120, 0.01, 5.0);
  }
  return prepared;
}

common::StatusOr<HeadOutput> SimcamHead::Run(const HeadInput& input) {
  const bool reuse = input.video_serial != 0 && input.frame_keys.size() == input.frames.size();
  if (!reuse || input.video_serial != prepared_serial_) ForgetFrames();
  if (reuse) prepared_serial_ = input.video_serial;

  std::vector<Prepared> local;  // frames prepared for this call only (no identity given)
  local.reserve(input.frames.size());
  std::vector<const Prepared*> frames;
  std::vector<int64_t> keys;  // the frame key of each of `frames` (when reusing)
  std::vector<PairMeasure> pairs;
  try {
    for (size_t i = 0; i < input.frames.size(); ++i) {
      const cv::Mat& frame = input.frames[i];
      if (frame.empty()) continue;
      const Prepared* prepared = nullptr;
      if (reuse) {
        auto found = prepared_.find(input.frame_keys[i]);
        if (found == prepared_.end()) {
          found = prepared_.emplace(input.frame_keys[i], PrepareFrame(frame)).first;
        }
        prepared = &found->second;
      } else {
        local.push_back(PrepareFrame(frame));
        prepared = &local.back();
      }
      if (!frames.empty() && prepared->gray.size() != frames.front()->gray.size()) continue;
      frames.push_back(prepared);
      keys.push_back(reuse ? input.frame_keys[i] : 0);
    }
    for (size_t i = 1; i < frames.size(); ++i) {
      // Measured from the earlier frame to the later, whatever the order given: the measures
      // describe the pair, and a reversed window reads as its forward one.
      size_t first = i - 1;
      size_t second = i;
      if (reuse && keys[first] > keys[second]) std::swap(first, second);
      const auto measure = [&] {
        return MeasurePair(frames[first]->gray, frames[second]->gray, frames[first]->corners);
      };
      if (!reuse) {
        pairs.push_back(measure());
        continue;
      }
      const std::pair<int64_t, int64_t> key(keys[first], keys[second]);
      auto found = pairs_.find(key);
      if (found == pairs_.end()) found = pairs_.emplace(key, measure()).first;
      pairs.push_back(found->second);
    }
  } catch (const cv::Exception& e) {
    return common::Status(common::ErrorCode::kModelFailed, std::string("simcam: ") + e.what());
  }

  if (pairs.empty()) {
    return MakeHeadOutput({{labels_[0], 0.2}, {labels_[1], 0.1}, {labels_[2], 0.7}},
                          {{"pairs", 0}});
  }
  double still = 0.0;
  double rigid = 0.0;
  double cut = 0.0;
  std::vector<double> motions;
  std::vector<double> residuals;
  std::vector<double> floors;
  for (const PairMeasure& p : pairs) {
    const double s = SoftBelow(p.change, 0.01, 0.003) * SoftBelow(p.motion, 0.3, 0.08);
    const double r =
        (1.0 - s) * SoftAbove(p.motion, 0.4, 0.1) *
        SoftBelow(p.residual - (p.floor - kResidualFloor), 2.5, 0.5) *
        SoftBelow(std::max(0.0, p.residual - p.floor) / std::max(p.raw, 1e-3), 0.4, 0.08) *
        SoftAbove(p.inliers, 0.5, 0.08);
    const double c = (1.0 - s) * (1.0 - r) * SoftAbove(p.residual, 12.0, 2.0);
    still += s;
    rigid += r;
    cut += c;
    motions.push_back(p.motion);
    residuals.push_back(p.residual);
    floors.push_back(p.floor);
  }
  const double n = static_cast<double>(pairs.size());
  const double static_share = still / std::max(1.0, n - std::min(cut, still));
  const double rigid_share = rigid / std::max(1.0, n - std::min(cut, rigid));
  const double p_static = SoftAbove(static_share, 0.6, 0.08);
  const double p_rigid = SoftAbove(rigid_share, 0.5, 0.08);
  const double sim = (1.0 - p_static) * p_rigid;
  nlohmann::json scores = {{"static_share", static_share},
                           {"rigid_share", rigid_share},
                           {"cut_pairs", cut},
                           {"motion_px", Median(motions)},
                           {"residual", Median(residuals)},
                           {"resampling_floor", Median(floors)}};
  return MakeHeadOutput(
      {{labels_[0], p_static}, {labels_[1], sim}, {labels_[2], 1.0 - p_static - sim}},
      std::move(scores));
}

}  // namespace vsieve::models
