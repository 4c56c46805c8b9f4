// RotateVerticalHead: content on its side or upside down, and portrait content in a landscape
// frame.
//
// rotated_video, the noisy-OR of three cues:
//   text on its side  text regions (any label) whose boxes are mostly tall and narrow
//                     (height > 2 x width): lines of text run vertically. Probability from the
//                     area share of such boxes (soft threshold at 0.6) and their number (>= 2).
//   text upside down  the text-angle classifier on up to kMaxLines line-shaped text boxes
//                     (width >= 2.5 x height, height <= 20% of the frame: merged caption blocks
//                     are not lines) cut from the full frames (each from the frame where the box
//                     holds the most edges); the area-weighted mean upside-down probability,
//                     soft threshold at 0.8 (a guessing classifier sits near 0.5), trusted more
//                     with more lines.
//   faces             the Haar frontal-face cascade on up to two frames (200-px long side) at
//                     0/90/180/270 degrees. Faces found upright rule this cue out (and end
//                     the search); faces found only at one non-zero turn, in most of the
//                     frames looked at, mean the picture is turned. A first frame without a
//                     face at any turn ends the search too.
// vertical_screen_video: the displayed frame is landscape, the safe crop is portrait-like
// (width/height below ~0.8) and blur-fill or black-border regions flank it on both sides.
// Scores r (rotated), v (vertical) combine as r, v, (1 - r)(1 - v), normalised to sum to 1.
#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

#include "models/heads/builtin_heads.h"
#include "models/heads/frame_signals.h"

namespace vsieve::models {

// The face cascade, loaded on first use; `tried` stops a failed load from being retried.
struct RotateVerticalHead::Faces {
  std::string path;
  bool tried = false;
  cv::CascadeClassifier cascade;
};

namespace {

constexpr int kMaxLines = 6;
constexpr int kFaceSide = 200;
constexpr int kFaceFrames = 2;

bool IsText(const Region& r) { return IsTextRegion(r); }

// Sum of absolute horizontal+vertical gradients inside `box` of `gray` (edge content).
double EdgeEnergy(const cv::Mat& bgr, const cv::Rect& box) {
  cv::Mat gray;
  cv::cvtColor(bgr(box), gray, cv::COLOR_BGR2GRAY);
  cv::Mat gx;
  cv::Mat gy;
  cv::Sobel(gray, gx, CV_16S, 1, 0);
  cv::Sobel(gray, gy, CV_16S, 0, 1);
  return cv::norm(gx, cv::NORM_L1) + cv::norm(gy, cv::NORM_L1);
}

}  // namespace

RotateVerticalHead::RotateVerticalHead(TextAngleClassifier* angle,
                                       const std::string& face_cascade_path)
    : name_("rotate_vertical_filter"),
      labels_({"rotated_video", "vertical_screen_video", "normal_video"}),
      angle_(angle),
      faces_(std::make_unique<Faces>()) {
  faces_->path = face_cascade_path;
}

RotateVerticalHead::~RotateVerticalHead() = default;

common::StatusOr<HeadOutput> RotateVerticalHead::Run(const HeadInput& input) {
  nlohmann::json scores = nlohmann::json::object();
  std::vector<Region> text;
  if (input.regions != nullptr) {
    for (const Region& r : *input.regions) {
      if (IsText(r) && r.box.area() > 0) text.push_back(r);
    }
  }

  // (a) Text on its side.
  // Shares are by area: a picture's texture read as a few small words must not outvote the
  // lines that carry the text.
  int tall = 0;
  int wide = 0;
  double tall_area = 0.0;
  double wide_area = 0.0;
  for (const Region& r : text) {
    if (r.box.height > 2 * r.box.width) {
      ++tall;
      tall_area += r.box.area();
    }
    if (r.box.width > r.box.height) {
      ++wide;
      wide_area += r.box.area();
    }
  }
  double p_side = 0.0;
  if (tall + wide > 0) {
    const double share = tall_area / std::max(1.0, tall_area + wide_area);
    p_side = SoftAbove(share, 0.6, 0.08) * SoftAbove(tall, 1.5, 0.3);
  }
  scores["text_tall"] = tall;
  scores["text_wide"] = wide;

  // (b) Text upside down.
  double p_upside = 0.0;
  if (angle_ != nullptr && wide > 0 && !input.full_frames.empty()) {
    // The classifier reads one line of text: regions merged over frames (caption blocks of
    // several lines, title cards) give it meaningless input, so only line-shaped boxes count.
    const int frame_height = input.full_frames.front().rows;
    std::vector<Region> lines;
    for (const Region& r : text) {
      const bool line_shaped =
          r.box.width >= 5 * r.box.height / 2 && r.box.height <= std::max(12, frame_height / 5);
      if (line_shaped && r.box.height >= 6 && r.box.width >= 16) lines.push_back(r);
    }
    std::sort(lines.begin(), lines.end(),
              [](const Region& a, const Region& b) { return a.box.area() > b.box.area(); });
    if (lines.size() > kMaxLines) lines.resize(kMaxLines);
    double weighted = 0.0;
    double weight = 0.0;
    try {
      for (const Region& line : lines) {
        const cv::Mat* best = nullptr;
        double best_energy = -1.0;
        for (const cv::Mat& full : input.full_frames) {
          const cv::Rect box = line.box & cv::Rect(0, 0, full.cols, full.rows);
          if (full.empty() || box.area() <= 0 || full.channels() != 3) continue;
          const double e = EdgeEnergy(full, box);
          if (e > best_energy) {
            best_energy = e;
            best = &full;
          }
        }
        if (best == nullptr) continue;
        const cv::Rect box = line.box & cv::Rect(0, 0, best->cols, best->rows);
        auto prob = angle_->UpsideDownProbability((*best)(box).clone());
        if (!prob.ok()) continue;
        const double w = static_cast<double>(box.area());
        weighted += w * static_cast<double>(*prob);
        weight += w;
      }
    } catch (const cv::Exception& e) {
      return common::Status(common::ErrorCode::kModelFailed,
                            std::string("rotate_vertical: text angle: ") + e.what());
    }
    if (weight > 0) {
      const double mean = weighted / weight;
      const double trust = 1.0 - std::exp(-0.7 * static_cast<double>(lines.size()));
      // Upside-down text reads as such with confidence; a mean near 0.5 is the classifier
      // guessing.
      p_upside = SoftAbove(mean, 0.8, 0.05) * trust;
      scores["text_upside_down"] = mean;
    }
  }

  // (c) Faces at the four turns.
  double p_faces = 0.0;
  if (!faces_->tried) {
    faces_->tried = true;
    if (!faces_->path.empty()) {
      try {
        faces_->cascade.load(faces_->path);
      } catch (const cv::Exception&) {
        faces_->cascade = cv::CascadeClassifier();
      }
    }
  }
  if (!faces_->cascade.empty() && !input.frames.empty()) {
    int hits[4] = {0, 0, 0, 0};
    const std::vector<int> picks = EvenIndices(static_cast<int>(input.frames.size()), kFaceFrames);
    int looked = 0;
    try {
      for (const int index : picks) {
        const cv::Mat gray =
            GrayAtMostLongSide(input.frames[static_cast<size_t>(index)], kFaceSide);
        if (gray.empty() || std::min(gray.cols, gray.rows) < 24) continue;
        cv::Mat eq;
        cv::equalizeHist(gray, eq);
        ++looked;
        for (int turn = 0; turn < 4; ++turn) {
          cv::Mat view;
          if (turn == 0) {
            view = eq;
          } else {
            const int code = turn == 1   ? cv::ROTATE_90_CLOCKWISE
                             : turn == 2 ? cv::ROTATE_180
                                         : cv::ROTATE_90_COUNTERCLOCKWISE;
            cv::rotate(eq, view, code);
          }
          std::vector<cv::Rect> found;
          faces_->cascade.detectMultiScale(view, found, 1.2, 4, 0, cv::Size(24, 24));
          if (!found.empty()) ++hits[turn];
          if (hits[0] > 0) break;  // upright faces: the picture is upright, no turn to try
        }
        if (hits[0] > 0) break;
        // No face at any turn in the first frame: one in the second alone (half the frames
        // looked at, p_faces 0.3) would not call the picture turned on its own.
        if (hits[1] + hits[2] + hits[3] == 0) break;
      }
    } catch (const cv::Exception& e) {
      return common::Status(common::ErrorCode::kModelFailed,
                            std::string("rotate_vertical: faces: ") + e.what());
    }
    const int best_turn = static_cast<int>(std::max_element(hits + 1, hits + 4) - hits);
    if (looked > 0 && hits[0] == 0) {
      const double share = static_cast<double>(hits[best_turn]) / looked;
      p_faces = SoftAbove(share, 0.5, 0.1) * (hits[best_turn] >= 2 ? 0.9 : 0.6);
    }
    scores["faces"] = {hits[0], hits[1], hits[2], hits[3]};
  }

  // vertical_screen_video.
  double p_vertical = 0.0;
  if (input.meta != nullptr && input.meta->width > input.meta->height && input.crop.height > 0) {
    const double aspect = static_cast<double>(input.crop.width) / input.crop.height;
    bool left = false;
    bool right = false;
    if (input.regions != nullptr) {
      const int slack = std::max(2, input.crop.width / 20);
      for (const Region& r : *input.regions) {
        if (r.kind != RegionKind::kBlurFill && r.kind != RegionKind::kBlackBorder) continue;
        // A side band: taller than wide, beside the crop.
        if (r.box.height < r.box.width) continue;
        if (r.box.x + r.box.width <= input.crop.x + slack) left = true;
        if (r.box.x >= input.crop.x + input.crop.width - slack) right = true;
      }
    }
    const double sides = left && right ? 1.0 : (left || right ? 0.4 : 0.1);
    p_vertical = SoftBelow(aspect, 0.8, 0.05) * sides;
    scores["crop_aspect"] = aspect;
  }

  const double p_rotated = NoisyOr({p_side, p_upside, p_faces});
  scores["p_text_side"] = p_side;
  scores["p_text_upside_down"] = p_upside;
  scores["p_faces"] = p_faces;
  const double r = p_rotated;
  const double v = p_vertical;
  const double n = (1.0 - r) * (1.0 - v);
  const double total = std::max(1e-9, r + v + n);
  return MakeHeadOutput({{labels_[0], r / total}, {labels_[1], v / total}, {labels_[2], n / total}},
                        std::move(scores));
}

}  // namespace vsieve::models
