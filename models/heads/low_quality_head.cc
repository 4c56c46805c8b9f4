// LowQualityHead: blur, blocking, noise, bad exposure, BRISQUE and low resolution.
//
// Signals, each the median over up to kMaxFrames frames:
//   blur_px     the width (Gaussian sigma, in pixels of a 320-px-long-side copy) of the picture's
//               edges. Gradient energy of an edge of width s falls as 1/s, so the ratio R of the
//               energy before and after a sigma-2 blur gives s = 2 / sqrt(R^2 - 1). Sharp video
//               measures ~0.3-0.9 px; a visibly soft picture is above ~1.5 px. Undefined (no cue)
//               on pictures without large-scale contrast.
//   spectral_curvature  E(1-2) x E(4-8) / E(2-4)^2 over octave bands of the frame (see
//               SpectralCurvature): ~1 for any power-law spectrum, well below 1 once Gaussian
//               blur bends it (textures with a characteristic scale bend it too).
//   edge_steepness  over the strongest 1 % of gradients, the median ratio of the gradient to the
//               grey range around it: ~0.5 for a step crossed within a pixel, ~1 / (2.5 s) once
//               blurred by sigma s (see EdgeSteepness).
//               Curvature and steepness low together catch blur on random textures (cellular
//               automata, the Game of Life), whose blurred blobs read as sharp fine texture to
//               blur_px.
//   slope_coherence  the share of the gradient energy that runs along one direction over the
//               whole frame (structure tensor): ~1 for a linear colour gradient. Such a picture
//               has no edge to be sharp about; every blur measure reads its slopes as soft edges,
//               so it vetoes the blur cue.
//   sharpness   the variance of the Laplacian of the same 320-px copy (reported only: it depends
//               on content as much as on focus).
//   blockiness  coding-grid excess (GridExcess below): the share of 8-px boundary segments with a
//               visible step on the strongest grid phase minus that share on the other phases.
//               On frames shrunk for analysis, the grid's phase is known (every 8th displayed
//               pixel from the picture's corner): on-grid share minus off-grid share
//               (ShrunkGridExcess below).
//   upscaled    the share of the edge energy on isolated one-pixel steps at least 3 px apart
//               (steps of up to two pixels, two apart, on downscaled frames), and their density
//               along rows and columns:
//               pixel repetition (nearest-neighbour upscaling, flat-coded blocks) at any block
//               size. Flat test-pattern bands step sharply too but rarely (low density).
//   noise       Immerkaer's estimate of the standard deviation of white noise (in grey levels),
//               from the median response of the Laplacian-difference operator on the flatter
//               half of the pixels.
//   level_spread the distance from the 8 most common grey levels that 75 % of the pixels are
//               within: a picture of a few levels (a one-pixel cellular automaton) has fine
//               structure that reads as noise but keeps its pixels on its levels; noise of
//               sigma s leaves a quarter of them ~s off (~s/4 when half are clipped).
//   exposure    the larger of the shares of clipped-dark (<= 16) and clipped-bright (>= 240)
//               pixels, on frames that have content at all.
//   brisque     cv::quality::QualityBRISQUE (0 best .. ~100 worst) on up to kBrisqueFrames
//               frames at <= 320 px. Synthetic graphics score badly on it, so it only supports.
//   resolution  the displayed short side, from the metadata.
// Each signal becomes a cue in [0, 1] through a soft threshold where the defect becomes visible:
//   blur max(SoftAbove(blur_px, 1.5, 0.2),
//            SoftBelow(spectral_curvature, 0.56, 0.03) * SoftBelow(edge_steepness, 0.3, 0.02),
//            SoftBelow(edge_steepness, 0.16, 0.015)) x SoftBelow(slope_coherence, 0.95, 0.01),
//   blocking SoftAbove(excess, 0.12, 0.03),
//   upscaled max(SoftAbove(share, 0.4, 0.05) * SoftAbove(density, 0.03, 0.005),
//                SoftAbove(share, 0.85, 0.03) * SoftAbove(density, 0.02, 0.003)),
//   noise SoftAbove(sigma, 7, 1.2) *
//         max(SoftAbove(level_spread / sigma, 0.1, 0.025), SoftAbove(level_spread, 6, 1))
//         x (downscaled frames only) SoftBelow(sigma, 35, 2),
//   exposure SoftAbove(share, 0.5, 0.08),
//   brisque SoftAbove(score, 65, 5), resolution SoftBelow(short side, 300, 10),
// and the cues add in logit space:
//   z = -3.5 + 5 blur + 5 max(blocking, upscaled) + 5 noise
//       + 1.5 max(exposure, brisque) + 0.5 min(exposure, brisque) + 5 resolution,
//   low_quality_video = 1 / (1 + exp(-z)).
// One clear defect (cue ~1) gives ~0.82; exposure and BRISQUE, alone or together (dark
// synthetic content scores badly on both: z = -1.5 then, which a weak trace of another cue does
// not tip over), are not enough.
#include <algorithm>
#include <array>
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

// The value of rank `rank` (0-based, ascending) among the non-negative CV_32S values of
// `values`, as std::nth_element would give it: counted in at most 4096 buckets, then sorted
// within the bucket that holds the rank.
int32_t RankValue(const cv::Mat& values, int64_t rank) {
  int32_t largest = 0;
  for (int y = 0; y < values.rows; ++y) {
    const int32_t* v = values.ptr<int32_t>(y);
    for (int x = 0; x < values.cols; ++x) largest = std::max(largest, v[x]);
  }
  int shift = 0;
  while ((largest >> shift) >= 4096) ++shift;
  std::vector<int64_t> buckets(static_cast<size_t>(largest >> shift) + 1, 0);
  for (int y = 0; y < values.rows; ++y) {
    const int32_t* v = values.ptr<int32_t>(y);
    for (int x = 0; x < values.cols; ++x) ++buckets[static_cast<size_t>(v[x] >> shift)];
  }
  int64_t below = 0;
  size_t bucket = 0;
  while (bucket + 1 < buckets.size() && below + buckets[bucket] <= rank) below += buckets[bucket++];
  if (shift == 0) return static_cast<int32_t>(bucket);
  std::vector<int32_t> inside;
  inside.reserve(static_cast<size_t>(buckets[bucket]));
  for (int y = 0; y < values.rows; ++y) {
    const int32_t* v = values.ptr<int32_t>(y);
    for (int x = 0; x < values.cols; ++x) {
      if (static_cast<size_t>(v[x] >> shift) == bucket) inside.push_back(v[x]);
    }
  }
  if (inside.empty()) return 0;
  const auto at = inside.begin() + std::clamp<int64_t>(rank - below, 0, inside.size() - 1);
  std::nth_element(inside.begin(), at, inside.end());
  return *at;
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

// Slope coherence: how much of the gradient energy of `gray` (the 320-px copy, after a sigma-2
// blur that removes codec noise and one-level banding) runs along one direction over the whole
// frame: (l1 - l2) / (l1 + l2) of the structure tensor summed over the frame. ~0.99 for a linear
// colour gradient, whose shade changes along one direction only; 0.1-0.5 for scenes, blurred or
// not, and up to ~0.8 for a test pattern of vertical bars. NaN without any slope.
double SlopeCoherence(const cv::Mat& gray) {
  if (gray.cols < 32 || gray.rows < 32) return std::nan("");
  cv::Mat f;
  gray.convertTo(f, CV_32F);
  cv::GaussianBlur(f, f, cv::Size(0, 0), 2.0, 2.0, cv::BORDER_REFLECT);
  cv::Mat gx;
  cv::Mat gy;
  cv::Sobel(f, gx, CV_32F, 1, 0);
  cv::Sobel(f, gy, CV_32F, 0, 1);
  const double jxx = gx.dot(gx);
  const double jyy = gy.dot(gy);
  const double jxy = gx.dot(gy);
  if ((jxx + jyy) / static_cast<double>(gx.total()) < 1e-3) return std::nan("");
  return std::sqrt((jxx - jyy) * (jxx - jyy) + 4.0 * jxy * jxy) / (jxx + jyy);
}

// Spectral curvature: E(1-2) x E(4-8) / E(2-4)^2, where E(a-b) is the variance of the
// difference of Gaussian blurs of sigma a and b (one octave of scale each) of `gray`. Content
// whose power spectrum follows a power law, whatever its slope (natural scenes, white-noise-like
// textures, sharp graphics), has octave energies in geometric progression: curvature ~1. A
// Gaussian blur multiplies the spectrum by exp(-k^2 s^2), which bends its log down at the fine
// end: curvature well below 1 (0.4-0.5 for a sigma-4-9 blur of a cellular automaton, where the
// edge-width measure reads the blurred blobs as sharp texture). Codec losses bend it a little
// (0.55-0.8 on clean coded video). NaN when the middle octave holds no contrast.
double SpectralCurvature(const cv::Mat& gray) {
  if (gray.cols < 32 || gray.rows < 32) return std::nan("");
  cv::Mat f;
  gray.convertTo(f, CV_32F);
  auto blur = [](const cv::Mat& in, double sigma) {
    cv::Mat out;
    cv::GaussianBlur(in, out, cv::Size(0, 0), sigma, sigma, cv::BORDER_REFLECT);
    return out;
  };
  auto variance = [](const cv::Mat& fine, const cv::Mat& coarse) {
    cv::Scalar mean;
    cv::Scalar stddev;
    cv::meanStdDev(fine - coarse, mean, stddev);
    return stddev[0] * stddev[0];
  };
  // A blur of sigma s keeps almost nothing above 1 / (4 s) cycles per pixel (a sigma-2 blur
  // leaves 0.7 % of the amplitude at a quarter cycle), so every other pixel of it is the same
  // picture at half size, where the next blur needs half the sigma and a quarter of the pixels;
  // blurs add in quadrature (sigma 4 = sigma 2 then sigma sqrt(12)).
  auto half = [](const cv::Mat& in) {
    cv::Mat out;
    cv::resize(in, out, cv::Size(in.cols / 2, in.rows / 2), 0, 0, cv::INTER_NEAREST);
    return out;
  };
  const double step = std::sqrt(3.0);  // sqrt(4^2 - 2^2) / 2 = sqrt(8^2 - 4^2) / 4
  const cv::Mat b1 = blur(f, 1.0);
  const cv::Mat b2 = blur(f, 2.0);
  const double e12 = variance(b1, b2);
  const cv::Mat b2_half = half(b2);
  const cv::Mat b4_half = blur(b2_half, step);
  const double e24 = variance(b2_half, b4_half);
  const cv::Mat b4_quarter = half(b4_half);
  const double e48 = variance(b4_quarter, blur(b4_quarter, step));
  if (e24 < 1.0) return std::nan("");
  return e12 * e48 / (e24 * e24);
}

// Edge steepness: over the pixels with the strongest 1 % of gradients (Sobel / 8), the median
// ratio of the gradient to the grey range of the 15x15 neighbourhood. A step between two
// levels, even a low-contrast one, is crossed within about a pixel: ratio ~0.5 (0.35-0.55 on
// clean video, down to ~0.22 on soft natural footage); a Gaussian blur of sigma s spreads it to
// ~1 / (2.5 s): 0.12-0.25 for the blurs that make a clip low quality. NaN when fewer than half
// of those pixels (0.5 % of the frame) have a neighbourhood spanning at least 12 levels.
double EdgeSteepness(const cv::Mat& gray) {
  if (gray.cols < 16 || gray.rows < 16) return std::nan("");
  // Sobel of 8-bit grey is exact in 16 bits; the magnitude (Sobel / 8) is sqrt(s) / 8 with s the
  // integer sum of squares, so the percentile is taken on s (monotone) without sorting floats.
  cv::Mat gx;
  cv::Mat gy;
  cv::Sobel(gray, gx, CV_16S, 1, 0);
  cv::Sobel(gray, gy, CV_16S, 0, 1);
  cv::Mat squares(gray.size(), CV_32S);
  for (int y = 0; y < gray.rows; ++y) {
    const int16_t* a = gx.ptr<int16_t>(y);
    const int16_t* b = gy.ptr<int16_t>(y);
    int32_t* q = squares.ptr<int32_t>(y);
    for (int x = 0; x < gray.cols; ++x) q[x] = a[x] * a[x] + b[x] * b[x];
  }
  const auto total = static_cast<int64_t>(squares.total());
  const int32_t top_square = RankValue(squares, total * 99 / 100);
  const float cut = std::max(std::sqrt(static_cast<float>(top_square) / 64.0F), 1.0F);
  const cv::Mat window = cv::getStructuringElement(cv::MORPH_RECT, cv::Size(15, 15));
  cv::Mat high;
  cv::Mat low;
  cv::dilate(gray, high, window);
  cv::erode(gray, low, window);
  std::vector<double> ratios;
  for (int y = 0; y < gray.rows; ++y) {
    const int32_t* q = squares.ptr<int32_t>(y);
    const uint8_t* h = high.ptr<uint8_t>(y);
    const uint8_t* l = low.ptr<uint8_t>(y);
    for (int x = 0; x < gray.cols; ++x) {
      const int range = h[x] - l[x];
      if (range < 12) continue;
      const float m = std::sqrt(static_cast<float>(q[x]) / 64.0F);
      if (m >= cut) ratios.push_back(m / range);
    }
  }
  // A featureless picture (a plain wall) has nothing to be sharp or blurred: at least half of
  // the strongest gradients must cross real contrast.
  if (static_cast<int64_t>(ratios.size()) < total / 200) return std::nan("");
  return Median(ratios);
}

// For each run of 8 rows of `g` (CV_8U) and each boundary between columns x and x+1: 1 where
// the |step| summed over the run is more than 16 (a visible step along the segment), else 0.
// Rows: runs; columns: g.cols - 1.
cv::Mat SteppedSegments(const cv::Mat& g) {
  cv::Mat step;
  cv::absdiff(g.colRange(1, g.cols), g.colRange(0, g.cols - 1), step);
  const int runs = g.rows / 8;
  cv::Mat stepped(runs, g.cols - 1, CV_8U);
  cv::Mat sum;
  for (int r = 0; r < runs; ++r) {
    cv::reduce(step.rowRange(r * 8, r * 8 + 8), sum, 0, cv::REDUCE_SUM, CV_32S);
    cv::Mat row = stepped.row(r);
    cv::compare(sum, 16, row, cv::CMP_GT);
  }
  return stepped / 255;
}

// Coding-grid excess: the share of 8-px boundary segments that carry a visible step (mean
// |step| above 2 levels along the segment) on the strongest of the eight grid phases, minus that
// share on the other seven phases; averaged over columns and rows. Blocking puts steps on nearly
// every boundary of one phase; content edges, even grid-aligned graphics, cover few of them and
// appear on all phases. Returns NaN for frames too small to hold a grid.
double GridExcess(const cv::Mat& gray) {
  if (gray.cols < 32 || gray.rows < 32) return std::nan("");
  auto excess = [](const cv::Mat& g) {
    const cv::Mat stepped = SteppedSegments(g);
    double share[8] = {0};
    double total[8] = {0};
    for (int r = 0; r < stepped.rows; ++r) {
      const uint8_t* s = stepped.ptr<uint8_t>(r);
      for (int x = 0; x < stepped.cols; ++x) {
        total[x % 8] += 1.0;
        share[x % 8] += s[x];
      }
    }
    for (int p = 0; p < 8; ++p) share[p] = total[p] > 0 ? share[p] / total[p] : 0.0;
    const double peak = *std::max_element(share, share + 8);
    const double others = (std::accumulate(share, share + 8, 0.0) - peak) / 7.0;
    return peak - others;
  };
  cv::Mat transposed;
  cv::transpose(gray, transposed);
  return 0.5 * (excess(gray) + excess(transposed));
}

// Coding-grid excess on frames shrunk for analysis (`scale` analysis px per displayed px, the
// frame's top-left corner at `origin` analysis px of the decoded picture): the codec's grid lies
// on every 8th displayed pixel from the picture's corner, so its phase is known rather than
// searched. A boundary between analysis pixels is on the grid when its displayed position is
// within half an analysis pixel of a multiple of 8; the share of on-grid segments with a step,
// minus that share off the grid, averaged over columns and rows. Area averaging keeps a block
// edge's step where the grid falls between analysis pixels (1280 and 854 px wide pictures shrunk
// to 640) and blends it into the nearest boundary otherwise.
double ShrunkGridExcess(const cv::Mat& gray, double scale, cv::Point origin) {
  if (gray.cols < 32 || gray.rows < 32 || scale <= 0.0) return std::nan("");
  const double tolerance = 0.5 / scale;
  auto excess = [&](const cv::Mat& g, int offset) {
    const cv::Mat stepped = SteppedSegments(g);
    double steps[2] = {0};
    double total[2] = {0};
    for (int x = 0; x < stepped.cols; ++x) {
      const double displayed = (offset + x + 1) / scale;
      const int on = std::abs(displayed - 8.0 * std::round(displayed / 8.0)) < tolerance ? 1 : 0;
      total[on] += stepped.rows;
      steps[on] += cv::countNonZero(stepped.col(x));
    }
    if (total[0] == 0 || total[1] == 0) return std::nan("");
    return steps[1] / total[1] - steps[0] / total[0];
  };
  cv::Mat transposed;
  cv::transpose(gray, transposed);
  return 0.5 * (excess(gray, origin.x) + excess(transposed, origin.y));
}

// Upscaled-block share: how much of the picture's edge energy sits on isolated steps (runs of at
// most `max_run` pixels) at least `min_gap` pixels from the next one, along rows and along
// columns: one-pixel steps kMinBlockGap apart at displayed size; on downscaled frames steps of up
// to two pixels, two apart (a 4x nearest upscale halved for analysis is a 2x one). A picture
// enlarged by pixel repetition (nearest-neighbour upscaling, or blocks coded flat) is made of
// flat blocks: all of its detail is such steps on the block grid, whatever the block size. Real
// edges are spread over two or more pixels, and one-pixel pixel-art detail steps at every pixel.
// Returns NaN for frames too small or too flat to tell (fewer than kMinBlockSteps steps).
constexpr int kMinBlockGap = 3;
constexpr int kMinBlockSteps = 200;

double UpscaledBlockShare(const cv::Mat& gray, int max_run, int min_gap, double* density) {
  if (gray.cols < 32 || gray.rows < 32) return std::nan("");
  auto share = [max_run, min_gap](const cv::Mat& g, double* steps) {
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
          if (x - last_step >= min_gap) {
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
  *density = std::min(row_steps, column_steps) * min_gap / area;
  return value;
}

// Immerkaer (1996) noise sigma on the flatter half of the pixels, from the median of the
// operator's absolute response (median |r| = 0.6745 x 6 sigma for Gaussian noise). The mean of
// it read sparse structure as noise: live cells of a cellular automaton scattered over a flat
// background sit among the flatter half and carry large responses (a clean Game of Life read
// as 7 levels of noise), while added noise moves every pixel and so the median.
double NoiseSigma(const cv::Mat& gray) {
  if (gray.cols < 8 || gray.rows < 8) return std::nan("");
  // Over the inner pixels of 8-bit grey, the operator's response and the Sobel magnitude are
  // small integers: both medians come from counts.
  const cv::Rect inner(1, 1, gray.cols - 2, gray.rows - 2);
  cv::Mat mag(inner.size(), CV_32S);
  cv::Mat response(inner.size(), CV_32S);
  for (int y = 0; y < inner.height; ++y) {
    const uint8_t* up = gray.ptr<uint8_t>(y);
    const uint8_t* mid = gray.ptr<uint8_t>(y + 1);
    const uint8_t* down = gray.ptr<uint8_t>(y + 2);
    int32_t* m = mag.ptr<int32_t>(y);
    int32_t* r = response.ptr<int32_t>(y);
    for (int x = 0; x < inner.width; ++x) {
      const int a = up[x], b = up[x + 1], c = up[x + 2];
      const int d = mid[x], e = mid[x + 1], f = mid[x + 2];
      const int g = down[x], h = down[x + 1], i = down[x + 2];
      const int gx = (c + 2 * f + i) - (a + 2 * d + g);
      const int gy = (g + 2 * h + i) - (a + 2 * b + c);
      m[x] = std::abs(gx) + std::abs(gy);
      r[x] = std::abs((a - 2 * b + c) - 2 * (d - 2 * e + f) + (g - 2 * h + i));
    }
  }
  const int32_t cut = RankValue(mag, static_cast<int64_t>(mag.total()) / 2);
  cv::Mat flat_abs(1, static_cast<int>(mag.total()), CV_32S);
  int kept = 0;
  int32_t* out = flat_abs.ptr<int32_t>(0);
  for (int y = 0; y < inner.height; ++y) {
    const int32_t* r = response.ptr<int32_t>(y);
    const int32_t* m = mag.ptr<int32_t>(y);
    for (int x = 0; x < inner.width; ++x) {
      if (m[x] <= cut) out[kept++] = r[x];
    }
  }
  if (kept == 0) return std::nan("");
  return RankValue(flat_abs.colRange(0, kept), kept / 2) / (0.6745 * 6.0);
}

// How far the pixels of `gray` lie from its 8 most common grey levels: the distance (in levels)
// that 75 % of the pixels are within. A picture made of a few levels (a two-colour cellular
// automaton, flat graphics) has its pixels on them (0-2 levels off after coding); noise of sigma
// s spreads any level, so that a quarter of the pixels lie more than ~s off (about s / 4 when
// half of them are clipped at black or white).
double LevelSpread(const cv::Mat& gray) {
  if (gray.empty()) return std::nan("");
  std::array<int, 256> counts{};
  for (int y = 0; y < gray.rows; ++y) {
    const uint8_t* row = gray.ptr<uint8_t>(y);
    for (int x = 0; x < gray.cols; ++x) ++counts[row[x]];
  }
  std::array<int, 256> order{};
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + 8, order.end(),
                    [&counts](int a, int b) { return counts[a] > counts[b]; });
  std::array<double, 256> at_distance{};
  for (int v = 0; v < 256; ++v) {
    int nearest = 255;
    for (int k = 0; k < 8; ++k) nearest = std::min(nearest, std::abs(v - order[k]));
    at_distance[nearest] += counts[v];
  }
  double seen = 0.0;
  for (int d = 0; d < 256; ++d) {
    seen += at_distance[d];
    if (seen >= 0.75 * static_cast<double>(gray.total())) return d;
  }
  return 255.0;
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
  std::vector<double> levels;
  std::vector<double> curvature;
  std::vector<double> steepness;
  std::vector<double> coherence;
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
      const cv::Mat work = GrayAtLongSide(frame, kWorkSide);
      const double width = BlurWidth(work, &lap_var);
      const double coherent = SlopeCoherence(work);
      if (std::isfinite(coherent)) coherence.push_back(coherent);
      lap.push_back(lap_var);
      if (std::isfinite(width)) blur.push_back(width);
      const double bend = SpectralCurvature(gray);
      if (std::isfinite(bend)) curvature.push_back(bend);
      const double steep = EdgeSteepness(gray);
      if (std::isfinite(steep)) steepness.push_back(steep);
      const double n = NoiseSigma(gray);
      if (std::isfinite(n)) noise.push_back(n);
      levels.push_back(LevelSpread(gray));
      const double g =
          native ? GridExcess(gray) : ShrunkGridExcess(gray, input.analysis_scale, input.crop.tl());
      if (std::isfinite(g)) grid.push_back(g);
      // Downscaled frames blend a block edge over two pixels.
      double density = 0.0;
      const double u =
          UpscaledBlockShare(gray, native ? 1 : 2, native ? kMinBlockGap : 2, &density);
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

  // Blur on textures: the spectrum bent at the fine end AND no steep edge anywhere. Either alone
  // also describes clean content: a texture with a characteristic scale (the Game of Life's
  // mould blobs) bends the spectrum, and soft natural footage or smooth fractal colouring has no
  // very steep edges.
  const double spectral_curvature = Median(curvature);
  const double edge_steepness = Median(steepness);
  const double c_texture_blur =
      std::isfinite(spectral_curvature) && std::isfinite(edge_steepness)
          ? SoftBelow(spectral_curvature, 0.56, 0.03) * SoftBelow(edge_steepness, 0.3, 0.02)
          : 0.0;
  // No edge steeper than a sigma-2.5 blur leaves, anywhere in the picture: blurred whatever the
  // content (soft natural footage keeps some edges at 0.22 or steeper).
  const double c_no_steep_edge =
      std::isfinite(edge_steepness) ? SoftBelow(edge_steepness, 0.16, 0.015) : 0.0;
  // A linear colour gradient changes shade along one direction over the whole frame: it has no
  // edge to be sharp about, and every blur measure reads its slopes as blurred edges. Blurring it
  // would lose nothing either.
  const double slope_coherence = Median(coherence);
  const double smooth =
      std::isfinite(slope_coherence) ? SoftAbove(slope_coherence, 0.95, 0.01) : 0.0;
  const double c_blur =
      (1.0 - smooth) * std::max({std::isfinite(blur_px) ? SoftAbove(blur_px, 1.5, 0.2) : 0.0,
                                 c_texture_blur, c_no_steep_edge});
  // Shrinking blends part of each block edge into its neighbours and halves the share of stepped
  // segments (mpeg2 at q 31: 0.15 at 640x360, 0.08-0.10 shrunk from 854x480-1280x720; clean
  // pictures 0.03 and 0.02).
  const double c_block = std::isfinite(grid_excess) ? (native ? SoftAbove(grid_excess, 0.12, 0.03)
                                                              : SoftAbove(grid_excess, 0.06, 0.012))
                                                    : 0.0;
  // Noise must spread the grey levels: a picture whose pixels stay on a few levels while the
  // estimate reads several is fine structure (a one-pixel cellular automaton reads as ~100 levels
  // of "noise" with 75 % of its pixels within 2 levels of its two colours), not noise.
  const double level_spread = Median(levels);
  // Over such fine structure the estimate reads the structure, not the noise (~60-190 levels on
  // a clean automaton): noise added to it shows as pixels spread off its levels (11-15 levels for
  // the noise that makes a clip low quality, 0-2 without noise), whatever the estimate says.
  const double structure =
      std::isfinite(level_spread) && std::isfinite(noise_sigma) && noise_sigma > 0
          ? std::max(SoftAbove(level_spread / noise_sigma, 0.1, 0.025),
                     SoftAbove(level_spread, 6.0, 1.0))
          : 1.0;
  // On downscaled frames the levels tell nothing: area averaging spreads a two-colour automaton's
  // pixels over 20-90 levels, as noise would. There an estimate far above what added noise reads
  // after the downscale (13-28 levels for noise strong enough to see) is the structure's.
  const double downscaled_structure = native ? 0.0 : SoftAbove(noise_sigma, 35.0, 2.0);
  const double c_noise = std::isfinite(noise_sigma) ? SoftAbove(noise_sigma, 7.0, 1.2) * structure *
                                                          (1.0 - downscaled_structure)
                                                    : 0.0;
  const double c_exposure =
      SoftAbove(std::isfinite(exposure_share) ? exposure_share : 0.0, 0.5, 0.08);
  const double c_brisque = std::isfinite(brisque_score) ? SoftAbove(brisque_score, 65.0, 5.0) : 0.0;
  // Below ~300 lines (288p, 240p and less); a 360-line clip is not low resolution, and a softer
  // edge (0.08 there, 0.4 in z) tipped dark clean content already marked by exposure and BRISQUE.
  const double c_res = min_side > 0 ? SoftBelow(min_side, 300.0, 10.0) : 0.0;
  // Blocks must tile the picture, densely where part of its edge energy is soft (graphics with
  // flat areas: full testsrc2 0.66 of it on steps, at density 0.023). A picture with almost all
  // of it on isolated steps is made of blocks even where they are sparser: footage pixelated
  // over its flat areas (0.029-0.033); a test pattern's few flat bands step at under 0.011.
  const double upscaled_share = Median(upscaled);
  const double density = Median(block_density);
  const double c_upscaled =
      std::isfinite(upscaled_share)
          ? std::max(SoftAbove(upscaled_share, 0.4, 0.05) * SoftAbove(density, 0.03, 0.005),
                     SoftAbove(upscaled_share, 0.85, 0.03) * SoftAbove(density, 0.02, 0.003))
          : 0.0;
  // Exposure and BRISQUE only support: both high together is still one weak sign (a dark synthetic
  // picture scores badly on both), not two.
  const double z = -3.5 + 5.0 * c_blur + 5.0 * std::max(c_block, c_upscaled) + 5.0 * c_noise +
                   1.5 * std::max(c_exposure, c_brisque) + 0.5 * std::min(c_exposure, c_brisque) +
                   5.0 * c_res;
  const double p = std::clamp(Sigmoid(z), 0.001, 0.999);

  auto value = [](double v) -> nlohmann::json {
    if (!std::isfinite(v)) return nullptr;
    return v;
  };
  nlohmann::json scores = {{"sharpness", value(Median(lap))},
                           {"blur_px", value(blur_px)},
                           {"spectral_curvature", value(spectral_curvature)},
                           {"edge_steepness", value(edge_steepness)},
                           {"slope_coherence", value(slope_coherence)},
                           {"blockiness", value(grid_excess)},
                           {"noise", value(noise_sigma)},
                           {"level_spread", value(level_spread)},
                           {"exposure", value(exposure_share)},
                           {"mean_luma", value(Median(means))},
                           {"brisque", value(brisque_score)},
                           {"resolution", min_side},
                           {"upscaled_blocks", value(Median(upscaled))},
                           {"block_density", value(Median(block_density))}};
  return MakeHeadOutput({{labels_[0], p}, {labels_[1], 1.0 - p}}, std::move(scores));
}

}  // namespace vsieve::models
