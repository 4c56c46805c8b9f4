// LowQualityHead: blur, blocking, noise, bad exposure, BRISQUE and low resolution.
//
// Signals, each the median over up to kMaxFrames frames:
//   blur_px     the width (Gaussian sigma, in pixels of a 320-px-long-side copy) of the picture's
//               edges. Gradient energy of an edge of width s falls as 1/s, so the ratio R of the
//               energy before and after a sigma-2 blur gives s = 2 / sqrt(R^2 - 1). Sharp video
//               measures ~0.3-0.9 px; a visibly soft picture is above ~1.5 px. Undefined (no cue)
//               on pictures without large-scale contrast.
//   sharpness   the variance of the Laplacian of the same 320-px copy (reported only: it depends
//               on content as much as on focus).
//   blockiness  coding-grid excess (GridExcess below): the share of 8-px boundary segments with a
//               visible step on the strongest grid phase minus that share on the other phases.
//               Measured only when frames are at (nearly) displayed size: once downscaled the
//               8-px grid is no longer on whole pixels (reported as null, with a note).
//   upscaled    the share of the edge energy on isolated one-pixel steps at least 3 px apart
//               (two pixels on downscaled frames), and their density along rows and columns:
//               pixel repetition (nearest-neighbour upscaling, flat-coded blocks) at any block
//               size. Flat test-pattern bands step sharply too but rarely (low density).
//   noise       Immerkaer's estimate of the standard deviation of white noise (in grey levels),
//               from the Laplacian-difference operator on the flatter half of the pixels.
//   exposure    the larger of the shares of clipped-dark (<= 16) and clipped-bright (>= 240)
//               pixels, on frames that have content at all.
//   brisque     cv::quality::QualityBRISQUE (0 best .. ~100 worst) on up to kBrisqueFrames
//               frames at <= 320 px. Synthetic graphics score badly on it, so it only supports.
//   resolution  the displayed short side, from the metadata.
// Each signal becomes a cue in [0, 1] through a soft threshold where the defect becomes visible:
//   blur SoftAbove(blur_px, 1.5, 0.2), blocking SoftAbove(excess, 0.12, 0.03),
//   upscaled SoftAbove(share, 0.4, 0.05) * SoftAbove(density, 0.03, 0.005),
//   noise SoftAbove(sigma, 7, 1.2), exposure SoftAbove(share, 0.5, 0.08),
//   brisque SoftAbove(score, 65, 5), resolution SoftBelow(short side, 310, 20),
// and the cues add in logit space:
//   z = -3.5 + 5 blur + 5 max(blocking, upscaled) + 5 noise + 1.5 exposure + 1.5 brisque
//       + 5 resolution,
//   low_quality_video = 1 / (1 + exp(-z)).
// One clear defect (cue ~1) gives ~0.82; exposure and BRISQUE, alone or together (dark
// synthetic content scores badly on both), are not enough.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>
#include <opencv2/imgproc.hpp>
#include <opencv2/quality/qualitybrisque.hpp>

#include "models/heads/builtin_heads.h"
#include "models/heads/frame_signals.h"

namespace vsieve::models {

// The BRISQUE model, loaded once at construction; null when the files are missing or unloadable.
struct LowQualityHead::Brisque {
  cv::Ptr<cv::quality::QualityBRISQUE> model;
};

namespace {

constexpr int kMaxFrames = 6;
constexpr int kBrisqueFrames = 2;
constexpr int kWorkSide = 320;

double Median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

double GradientEnergy(const cv::Mat& gray32) {
  cv::Mat gx;
  cv::Mat gy;
  cv::Sobel(gray32, gx, CV_32F, 1, 0);
  cv::Sobel(gray32, gy, CV_32F, 0, 1);
  return (gx.dot(gx) + gy.dot(gy)) / std::max<size_t>(1, gx.total());
}

// Edge width in pixels of `gray` (320-px copy), or NaN when the picture has no contrast.
double BlurWidth(const cv::Mat& gray, double* laplacian_var) {
  cv::Mat f;
  gray.convertTo(f, CV_32F);
  cv::Mat lap;
  cv::Laplacian(f, lap, CV_32F);
  cv::Scalar mean;
  cv::Scalar stddev;
  cv::meanStdDev(lap, mean, stddev);
  *laplacian_var = stddev[0] * stddev[0];
  cv::Mat blurred;
  cv::GaussianBlur(f, blurred, cv::Size(0, 0), 2.0);
  cv::meanStdDev(blurred, mean, stddev);
  const double e0 = GradientEnergy(f);
  const double e1 = GradientEnergy(blurred);
  // Below ~4 levels of large-scale contrast there is nothing to be sharp or blurred.
  if (stddev[0] < 4.0 || e1 < 1.0) return std::nan("");
  const double ratio = e0 / e1;
  if (ratio <= 1.0 + 1e-6) return 20.0;
  return std::min(20.0, 2.0 / std::sqrt(ratio * ratio - 1.0));
}

// Coding-grid excess: the share of 8-px boundary segments that carry a visible step (mean
// |step| above 2 levels along the segment) on the strongest of the eight grid phases, minus that
// share on the other seven phases; averaged over columns and rows. Blocking puts steps on nearly
// every boundary of one phase; content edges, even grid-aligned graphics, cover few of them and
// appear on all phases. Returns NaN for frames too small to hold a grid.
double GridExcess(const cv::Mat& gray) {
  if (gray.cols < 32 || gray.rows < 32) return std::nan("");
  auto excess = [](const cv::Mat& g) {
    // Steps between columns x and x+1, summed over runs of 8 rows.
    double stepped[8] = {0};
    double total[8] = {0};
    const int runs = g.rows / 8;
    for (int r = 0; r < runs; ++r) {
      for (int x = 0; x + 1 < g.cols; ++x) {
        int sum = 0;
        for (int y = r * 8; y < r * 8 + 8; ++y) {
          const uint8_t* row = g.ptr<uint8_t>(y);
          sum += std::abs(row[x + 1] - row[x]);
        }
        total[x % 8] += 1.0;
        if (sum > 16) stepped[x % 8] += 1.0;
      }
    }
    double share[8];
    for (int p = 0; p < 8; ++p) share[p] = total[p] > 0 ? stepped[p] / total[p] : 0.0;
    const double peak = *std::max_element(share, share + 8);
    const double others = (std::accumulate(share, share + 8, 0.0) - peak) / 7.0;
    return peak - others;
  };
  cv::Mat transposed;
  cv::transpose(gray, transposed);
  return 0.5 * (excess(gray) + excess(transposed));
}

// Upscaled-block share: how much of the picture's edge energy sits on isolated one-pixel steps
// at least kMinBlockGap pixels from the next one, along rows and along columns. A picture
// enlarged by pixel repetition (nearest-neighbour upscaling, or blocks coded flat) is made of
// flat blocks: all of its detail is such steps on the block grid, whatever the block size. Real
// edges are spread over two or more pixels, and one-pixel pixel-art detail steps at every pixel.
// Returns NaN for frames too small or too flat to tell (fewer than kMinBlockSteps steps).
constexpr int kMinBlockGap = 3;
constexpr int kMinBlockSteps = 200;

double UpscaledBlockShare(const cv::Mat& gray, int max_run, double* density) {
  if (gray.cols < 32 || gray.rows < 32) return std::nan("");
  auto share = [max_run](const cv::Mat& g, double* steps) {
    double total = 0.0;
    double isolated = 0.0;
    std::vector<int> d(static_cast<size_t>(g.cols) + 1, 0);
    for (int y = 0; y < g.rows; ++y) {
      const uint8_t* row = g.ptr<uint8_t>(y);
      for (int x = 0; x + 1 < g.cols; ++x) d[x] = std::abs(row[x + 1] - row[x]);
      d[g.cols - 1] = 0;
      int last_step = -1000;
      for (int x = 0; x + 1 < g.cols;) {
        if (d[x] < 6) {
          ++x;
          continue;
        }
        // A run of steep pixels: one step when short and flat on both sides.
        int end = x;
        int peak = 0;
        int sum = 0;
        while (end + 1 < g.cols && d[end] >= 6) {
          peak = std::max(peak, d[end]);
          sum += d[end];
          ++end;
        }
        total += sum;
        const int left = x > 0 ? d[x - 1] : 0;
        const int right = d[end];
        if (end - x <= max_run && 3 * left <= peak && 3 * right <= peak) {
          if (x - last_step >= kMinBlockGap) {
            isolated += sum;
            *steps += 1.0;
          }
          last_step = end - 1;
        }
        x = end;
      }
    }
    return total > 0 ? isolated / total : 0.0;
  };
  double row_steps = 0.0;
  double column_steps = 0.0;
  cv::Mat transposed;
  cv::transpose(gray, transposed);
  const double value = 0.5 * (share(gray, &row_steps) + share(transposed, &column_steps));
  if (row_steps + column_steps < kMinBlockSteps) return std::nan("");
  // Blocks tile the picture: steps along rows and along columns, about one per block. A few
  // flat bands (a test pattern) step rarely, and along one direction only.
  const double area = static_cast<double>(gray.total());
  *density = std::min(row_steps, column_steps) * kMinBlockGap / area;
  return value;
}

// Immerkaer (1996) noise sigma on the flatter half of the pixels.
double NoiseSigma(const cv::Mat& gray) {
  if (gray.cols < 8 || gray.rows < 8) return std::nan("");
  cv::Mat f;
  gray.convertTo(f, CV_32F);
  const cv::Mat kernel = (cv::Mat_<float>(3, 3) << 1, -2, 1, -2, 4, -2, 1, -2, 1);
  cv::Mat response;
  cv::filter2D(f, response, CV_32F, kernel, cv::Point(-1, -1), 0, cv::BORDER_REFLECT);
  cv::Mat gx;
  cv::Mat gy;
  cv::Sobel(f, gx, CV_32F, 1, 0);
  cv::Sobel(f, gy, CV_32F, 0, 1);
  cv::Mat mag = cv::abs(gx) + cv::abs(gy);
  const cv::Rect inner(1, 1, f.cols - 2, f.rows - 2);
  const cv::Mat inner_mag = mag(inner).clone();
  std::vector<float> values(inner_mag.begin<float>(), inner_mag.end<float>());
  std::nth_element(values.begin(), values.begin() + static_cast<long>(values.size() / 2),
                   values.end());
  const float cut = values[values.size() / 2];
  const cv::Mat flat = inner_mag <= cut;
  const double mean_abs = cv::mean(cv::abs(response(inner)), flat)[0];
  return std::sqrt(std::numbers::pi / 2.0) * mean_abs / 6.0;
}

}  // namespace

LowQualityHead::LowQualityHead(const std::string& brisque_model, const std::string& brisque_range)
    : name_("low_quality_filter"),
      labels_({"low_quality_video", "normal_video"}),
      brisque_(std::make_unique<Brisque>()) {
  if (!brisque_model.empty() && !brisque_range.empty()) {
    try {
      brisque_->model = cv::quality::QualityBRISQUE::create(brisque_model, brisque_range);
    } catch (const cv::Exception&) {
      brisque_->model.reset();
    }
  }
}

LowQualityHead::~LowQualityHead() = default;

common::StatusOr<HeadOutput> LowQualityHead::Run(const HeadInput& input) {
  std::vector<double> blur;
  std::vector<double> lap;
  std::vector<double> grid;
  std::vector<double> noise;
  std::vector<double> exposure;
  std::vector<double> means;
  std::vector<double> brisque;
  std::vector<double> upscaled;
  std::vector<double> block_density;
  const bool native = input.analysis_scale >= 0.9;
  try {
    const std::vector<int> picks = EvenIndices(static_cast<int>(input.frames.size()), kMaxFrames);
    const std::vector<int> brisque_picks =
        EvenIndices(static_cast<int>(picks.size()), kBrisqueFrames);
    for (size_t k = 0; k < picks.size(); ++k) {
      const cv::Mat& frame = input.frames[static_cast<size_t>(picks[k])];
      if (frame.empty() || frame.channels() != 3) continue;
      const cv::Mat gray = GrayAtLongSide(frame, 0);
      cv::Scalar mean;
      cv::Scalar stddev;
      cv::meanStdDev(gray, mean, stddev);
      means.push_back(mean[0]);
      const bool has_content = stddev[0] >= 8.0;
      if (has_content) {
        const double dark = static_cast<double>(cv::countNonZero(gray <= 16)) / gray.total();
        const double bright = static_cast<double>(cv::countNonZero(gray >= 240)) / gray.total();
        exposure.push_back(std::max(dark, bright));
      } else {
        exposure.push_back(0.0);
      }
      double lap_var = 0.0;
      const double width = BlurWidth(GrayAtLongSide(frame, kWorkSide), &lap_var);
      lap.push_back(lap_var);
      if (std::isfinite(width)) blur.push_back(width);
      const double n = NoiseSigma(gray);
      if (std::isfinite(n)) noise.push_back(n);
      if (native) {
        const double g = GridExcess(gray);
        if (std::isfinite(g)) grid.push_back(g);
      }
      // Downscaled frames blend a block edge over two pixels.
      double density = 0.0;
      const double u = UpscaledBlockShare(gray, native ? 1 : 2, &density);
      if (std::isfinite(u)) {
        upscaled.push_back(u);
        block_density.push_back(density);
      }
      const bool brisque_frame = std::find(brisque_picks.begin(), brisque_picks.end(),
                                           static_cast<int>(k)) != brisque_picks.end();
      if (brisque_->model && brisque_frame && has_content &&
          std::min(frame.cols, frame.rows) >= 48) {
        cv::Mat small = frame;
        if (std::max(frame.cols, frame.rows) > kWorkSide) {
          const double f = static_cast<double>(kWorkSide) / std::max(frame.cols, frame.rows);
          cv::resize(frame, small, cv::Size(), f, f, cv::INTER_AREA);
        }
        const double b = brisque_->model->compute(small)[0];
        if (std::isfinite(b)) brisque.push_back(b);
      }
    }
  } catch (const cv::Exception& e) {
    return common::Status(common::ErrorCode::kModelFailed, std::string("low_quality: ") + e.what());
  }

  int min_side = 0;
  if (input.meta != nullptr && input.meta->width > 0 && input.meta->height > 0) {
    min_side = std::min(input.meta->width, input.meta->height);
  } else if (!input.full_frames.empty() && input.analysis_scale > 0) {
    const cv::Mat& f = input.full_frames.front();
    min_side = static_cast<int>(std::lround(std::min(f.cols, f.rows) / input.analysis_scale));
  }

  const double blur_px = Median(blur);
  const double grid_excess = Median(grid);
  const double noise_sigma = Median(noise);
  const double exposure_share = Median(exposure);
  const double brisque_score = Median(brisque);

  const double c_blur = std::isfinite(blur_px) ? SoftAbove(blur_px, 1.5, 0.2) : 0.0;
  const double c_block = std::isfinite(grid_excess) ? SoftAbove(grid_excess, 0.12, 0.03) : 0.0;
  const double c_noise = std::isfinite(noise_sigma) ? SoftAbove(noise_sigma, 7.0, 1.2) : 0.0;
  const double c_exposure =
      SoftAbove(std::isfinite(exposure_share) ? exposure_share : 0.0, 0.5, 0.08);
  const double c_brisque = std::isfinite(brisque_score) ? SoftAbove(brisque_score, 65.0, 5.0) : 0.0;
  const double c_res = min_side > 0 ? SoftBelow(min_side, 310.0, 20.0) : 0.0;
  const double upscaled_share = Median(upscaled);
  const double c_upscaled =
      std::isfinite(upscaled_share)
          ? SoftAbove(upscaled_share, 0.4, 0.05) * SoftAbove(Median(block_density), 0.03, 0.005)
          : 0.0;
  const double z = -3.5 + 5.0 * c_blur + 5.0 * std::max(c_block, c_upscaled) + 5.0 * c_noise +
                   1.5 * c_exposure + 1.5 * c_brisque + 5.0 * c_res;
  const double p = std::clamp(Sigmoid(z), 0.001, 0.999);

  auto value = [](double v) -> nlohmann::json {
    if (!std::isfinite(v)) return nullptr;
    return v;
  };
  nlohmann::json scores = {{"sharpness", value(Median(lap))},
                           {"blur_px", value(blur_px)},
                           {"blockiness", value(grid_excess)},
                           {"noise", value(noise_sigma)},
                           {"exposure", value(exposure_share)},
                           {"mean_luma", value(Median(means))},
                           {"brisque", value(brisque_score)},
                           {"resolution", min_side},
                           {"upscaled_blocks", value(Median(upscaled))},
                           {"block_density", value(Median(block_density))}};
  if (!native) scores["blockiness_note"] = "not measured: frames are downscaled";
  return MakeHeadOutput({{labels_[0], p}, {labels_[1], 1.0 - p}}, std::move(scores));
}

}  // namespace vsieve::models
