#include "models/regions/region_detectors.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <iterator>
#include <numeric>
#include <opencv2/imgproc.hpp>

namespace vsieve::models {
namespace {

using common::StatusOr;

// ---- Shared helpers ---------------------------------------------------------------------------

// Up to `count` usable frames spread evenly over `frames` (all must share one size, that of the
// first usable frame).
std::vector<const cv::Mat*> PickFrames(const std::vector<media::Frame>& frames, int count) {
  std::vector<const cv::Mat*> out;
  const cv::Mat* first = nullptr;
  for (const media::Frame* frame : media::SelectEven(frames, count)) {
    const cv::Mat& bgr = frame->bgr;
    if (bgr.empty() || bgr.type() != CV_8UC3) continue;
    if (first == nullptr) first = &bgr;
    if (bgr.size() != first->size()) continue;
    out.push_back(&bgr);
  }
  return out;
}

cv::Mat Gray(const cv::Mat& bgr) {
  cv::Mat gray;
  cv::cvtColor(bgr, gray, cv::COLOR_BGR2GRAY);
  return gray;
}

// ---- Black borders ----------------------------------------------------------------------------

// A row or column of a bar: its brightest pixel (in any colour channel) and its mean luma stay
// near black.
constexpr float kBarMaxLuma = 40.0F;
constexpr float kBarMeanLuma = 24.0F;
// A line is part of a bar when it is black in this share of the frames.
constexpr double kBarFrameShare = 0.9;
// Lines past the first non-black one that may still join the bar (compression ringing).
constexpr int kSeamTolerance = 2;
// The picture next to a bar "has content" in a frame when its mean luma or its brightest colour
// channel is above these (pure red or blue is content, with a luma of 76 or 29).
constexpr float kContentMeanLuma = 40.0F;
constexpr float kContentMaxLuma = 80.0F;
// The most the mean luma of a bar's lines may differ within one frame.
constexpr float kBarMaxSpread = 4.0F;

// Per-line statistics over the sampled frames, for one direction (rows or columns).
struct LineStats {
  std::vector<int> black_frames;         // frames in which the line is near-black
  std::vector<std::vector<float>> mean;  // [frame][line]
  std::vector<std::vector<float>> max;   // [frame][line], of the brightest channel
};

// Rows (dim = 1, reduce along columns) or columns (dim = 0) of `gray` (mean) and `value` (the
// brightest channel of each pixel: max) restricted to `roi`.
void AddLines(const cv::Mat& gray, const cv::Mat& value, const cv::Rect& roi, bool rows,
              LineStats* stats) {
  cv::Mat mean;
  cv::Mat max;
  const int dim = rows ? 1 : 0;
  cv::reduce(gray(roi), mean, dim, cv::REDUCE_AVG, CV_32F);
  cv::reduce(value(roi), max, dim, cv::REDUCE_MAX, CV_8U);
  mean = mean.reshape(1, 1);
  max = max.reshape(1, 1);
  std::vector<float> mean_line(mean.begin<float>(), mean.end<float>());
  std::vector<float> max_line(max.total());
  for (size_t i = 0; i < max_line.size(); ++i) max_line[i] = max.at<uchar>(static_cast<int>(i));
  if (stats->black_frames.empty()) stats->black_frames.assign(mean_line.size(), 0);
  for (size_t i = 0; i < mean_line.size(); ++i) {
    if (mean_line[i] <= kBarMeanLuma && max_line[i] <= kBarMaxLuma) ++stats->black_frames[i];
  }
  stats->mean.push_back(std::move(mean_line));
  stats->max.push_back(std::move(max_line));
}

// Thickness of the bar that starts at line `start` (0 or the last line) and grows by `step`
// (+1 from the top/left, -1 from the bottom/right).
int BarThickness(const LineStats& stats, int start, int step, int frames) {
  const int n = static_cast<int>(stats.black_frames.size());
  const int need = static_cast<int>(std::ceil(kBarFrameShare * frames));
  int thickness = 0;
  for (int i = start; i >= 0 && i < n; i += step) {
    if (stats.black_frames[i] < need) break;
    ++thickness;
  }
  if (thickness == 0 || thickness >= n) return thickness;
  // Ringing at the seam: up to kSeamTolerance lines that are dark in the median frame but not
  // flat enough to pass as black still belong to the bar.
  for (int extra = 0; extra < kSeamTolerance && thickness < n; ++extra) {
    const int i = start + step * thickness;
    std::vector<float> means;
    for (const auto& m : stats.mean) means.push_back(m[i]);
    std::nth_element(means.begin(), means.begin() + means.size() / 2, means.end());
    if (means[means.size() / 2] > kBarMeanLuma * 1.5F) break;
    ++thickness;
  }
  return thickness;
}

// True when the picture next to the bar (the `depth` lines past it) shows content in at least
// one frame in ten.
bool PictureHasContent(const LineStats& stats, int start, int step, int thickness, int depth) {
  const int n = static_cast<int>(stats.black_frames.size());
  int frames_with_content = 0;
  for (size_t f = 0; f < stats.mean.size(); ++f) {
    float mean = 0.0F;
    float max = 0.0F;
    int lines = 0;
    for (int k = thickness; k < thickness + depth; ++k) {
      const int i = start + step * k;
      if (i < 0 || i >= n) break;
      mean += stats.mean[f][i];
      max = std::max(max, stats.max[f][i]);
      ++lines;
    }
    if (lines > 0 && (mean / lines > kContentMeanLuma || max > kContentMaxLuma)) {
      ++frames_with_content;
    }
  }
  return frames_with_content * 10 >= static_cast<int>(stats.mean.size());
}

// True when the picture next to the bar is lit as a whole (mean luma above kContentMeanLuma) in at
// least half of the frames: a one-sided bar must end at a straight seam into lit picture, not
// fade into a dark scene.
bool PictureIsLit(const LineStats& stats, int start, int step, int thickness, int depth) {
  const int n = static_cast<int>(stats.black_frames.size());
  int lit = 0;
  for (const auto& means : stats.mean) {
    float mean = 0.0F;
    int lines = 0;
    for (int k = thickness; k < thickness + depth; ++k) {
      const int i = start + step * k;
      if (i < 0 || i >= n) break;
      mean += means[i];
      ++lines;
    }
    if (lines > 0 && mean / lines > kContentMeanLuma) ++lit;
  }
  return lit * 2 >= static_cast<int>(stats.mean.size());
}

// True when the bar's lines (less the fifth next to the seam) have one colour: the spread of their
// mean luma is small in the median frame. A dark scene darkens towards the frame's edge; a bar
// does not.
bool BarIsFlat(const LineStats& stats, int start, int step, int thickness) {
  if (thickness <= 4) return true;
  std::vector<float> spreads;
  for (const auto& means : stats.mean) {
    float lo = 255.0F;
    float hi = 0.0F;
    for (int k = 0; k < thickness - std::max(2, thickness / 5); ++k) {
      const float v = means[start + step * k];
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    spreads.push_back(hi - lo);
  }
  std::nth_element(spreads.begin(), spreads.begin() + spreads.size() / 2, spreads.end());
  return spreads[spreads.size() / 2] <= kBarMaxSpread;
}

// Finds the two bars along one direction. Returns {leading, trailing} thicknesses, or {0, 0}
// when there are none or when they would leave almost nothing of the frame. Bars come in
// matching pairs; a bar without its twin crops far more than it seems to, so it must be at most
// a quarter of the frame and border picture that is lit across the seam.
std::pair<int, int> FindBars(const LineStats& stats, int frames) {
  const int n = static_cast<int>(stats.black_frames.size());
  const int min_bar = std::max(2, n / 100);
  int lead = BarThickness(stats, 0, 1, frames);
  int trail = BarThickness(stats, n - 1, -1, frames);
  if (lead + trail >= n * 9 / 10) return {0, 0};  // black everywhere: not a border
  const int depth = std::max(4, n / 20);
  if (lead < min_bar || !PictureHasContent(stats, 0, 1, lead, depth) ||
      !BarIsFlat(stats, 0, 1, lead)) {
    lead = 0;
  }
  if (trail < min_bar || !PictureHasContent(stats, n - 1, -1, trail, depth) ||
      !BarIsFlat(stats, n - 1, -1, trail)) {
    trail = 0;
  }
  const bool paired = lead > 0 && trail > 0 && std::abs(lead - trail) <= std::max(4, n / 50);
  if (!paired) {
    if (lead > n / 4 || (lead > 0 && !PictureIsLit(stats, 0, 1, lead, depth))) lead = 0;
    if (trail > n / 4 || (trail > 0 && !PictureIsLit(stats, n - 1, -1, trail, depth))) trail = 0;
  }
  return {lead, trail};
}

// ---- Blurred fill -----------------------------------------------------------------------------

// Column (or row) profile of the mean absolute Laplacian of a frame.
std::vector<float> EnergyProfile(const cv::Mat& abs_lap, bool columns) {
  cv::Mat profile;
  cv::reduce(abs_lap, profile, columns ? 0 : 1, cv::REDUCE_AVG, CV_32F);
  profile = profile.reshape(1, 1);
  return std::vector<float>(profile.begin<float>(), profile.end<float>());
}

// Column (or row) profile of the median of a grey frame, over every second pixel of each line.
std::vector<float> MedianProfile(const cv::Mat& gray, bool columns) {
  const cv::Mat lines = columns ? cv::Mat(gray.t()) : gray;
  std::vector<float> profile(static_cast<size_t>(lines.rows));
  const int taken = (lines.cols + 1) / 2;  // every other pixel
  std::array<int, 256> counts{};
  for (int i = 0; i < lines.rows; ++i) {
    const uchar* p = lines.ptr<uchar>(i);
    counts.fill(0);
    for (int j = 0; j < lines.cols; j += 2) ++counts[p[j]];
    // The value of rank taken / 2, as nth_element picks it.
    int seen = 0;
    int v = 0;
    while (seen + counts[v] <= taken / 2) seen += counts[v++];
    profile[i] = static_cast<float>(v);
  }
  return profile;
}

float MeanOf(const std::vector<float>& v, int begin, int end) {
  begin = std::max(begin, 0);
  end = std::min(end, static_cast<int>(v.size()));
  if (end <= begin) return 0.0F;
  return std::accumulate(v.begin() + begin, v.begin() + end, 0.0F) /
         static_cast<float>(end - begin);
}

// The largest mean over `width` neighbouring lines within [begin, end): local detail, without
// the single lines that a codec's block edges light up in a flat area.
float MaxWindowMean(const std::vector<float>& v, int begin, int end, int width) {
  begin = std::max(begin, 0);
  end = std::min(end, static_cast<int>(v.size()));
  if (end - begin < width) return MeanOf(v, begin, end);
  float best = 0.0F;
  for (int i = begin; i + width <= end; ++i) best = std::max(best, MeanOf(v, i, i + width));
  return best;
}

constexpr int kSeamWindow = 6;     // lines on each side of a seam compared
constexpr float kSeamStep = 3.0F;  // energy inside / outside the seam
// Added to the outer energy of a step: a blurred band's codec noise reads 0.1-0.3, and a picture
// of weak detail (a road's or a wall's grain) only 1-2, whose step a larger floor would hide.
constexpr float kSeamFloor = 0.25F;
constexpr float kBandRatio = 0.3F;  // band energy / centre energy, at most
constexpr double kBandFrameShare = 0.6;
constexpr float kFillMinLuma = 30.0F;    // darker bands are black borders, not fill
constexpr float kFlatBandEnergy = 1.0F;  // mean |Laplacian| of a band with no detail at all
constexpr float kFillMinShade = 3.0F;    // luma change across a fill band or over time, at least
constexpr double kMaxFillPictureAspect = 0.9;  // picture extent / the frame's other extent
constexpr double kMinFilledPicture = 0.4;  // picture extent / the frame's other extent, at least

// The step of the energy profile at `seam`: energy on the inner side over energy on the outer.
// `inner_dir` is +1 when the picture lies at larger coordinates than the band.
float SeamStep(const std::vector<float>& e, int seam, int inner_dir) {
  float inner = 0.0F;
  float outer = 0.0F;
  if (inner_dir > 0) {
    inner = MeanOf(e, seam + 1, seam + 1 + kSeamWindow);
    outer = MeanOf(e, seam - 1 - kSeamWindow, seam - 1);
  } else {
    inner = MeanOf(e, seam - kSeamWindow, seam);
    outer = MeanOf(e, seam + 2, seam + 2 + kSeamWindow);
  }
  return inner / (outer + kSeamFloor);
}

// Fill is a blurred copy of the picture: its shade varies across the band or over time. A
// plain margin of one colour (a slide's, a window's) is not fill, even where the slide's
// graphics reach into it: the shade across the band is read on the lines' median luma
// (`medians`), which a bar or a line of text over a few rows does not move. The bands are
// [0, band1_end) and [band2_begin, n) of the profiles.
bool BandsChangeShade(const std::vector<std::vector<float>>& lumas,
                      const std::vector<std::vector<float>>& medians, int band1_end,
                      int band2_begin) {
  const int n = static_cast<int>(lumas.front().size());
  float across = 0.0F;
  float lo = 255.0F;
  float hi = 0.0F;
  for (size_t f = 0; f < lumas.size(); ++f) {
    const auto& luma = lumas[f];
    const auto& median = medians[f];
    for (const auto& [begin, end] :
         {std::pair{1, band1_end - 2}, std::pair{band2_begin + 2, n - 1}}) {
      if (end <= begin) continue;
      const auto [mn, mx] = std::minmax_element(median.begin() + begin, median.begin() + end);
      across = std::max(across, *mx - *mn);
      const float mean = MeanOf(luma, begin, end);
      lo = std::min(lo, mean);
      hi = std::max(hi, mean);
    }
  }
  return across >= kFillMinShade || hi - lo >= kFillMinShade;
}

// Looks for symmetric low-energy bands along one axis. `profiles[f]` is the energy profile of
// frame f along the axis; `lumas[f]` the mean-luma profile. On success sets the band widths
// (band 1 = [0, *lead), band 2 = [n - *trail, n)) and returns a score in (0, 1].
float FindFillBands(const std::vector<std::vector<float>>& profiles,
                    const std::vector<std::vector<float>>& lumas,
                    const std::vector<std::vector<float>>& medians, int other, int* lead,
                    int* trail) {
  const int n = static_cast<int>(profiles.front().size());
  const int frames = static_cast<int>(profiles.size());
  std::vector<float> mean_profile(n, 0.0F);
  for (const auto& p : profiles) {
    for (int i = 0; i < n; ++i) mean_profile[i] += p[i] / static_cast<float>(frames);
  }
  // The leading seam: the strongest energy step in the first 45% of the axis.
  int best_lead = -1;
  float best_step = 0.0F;
  for (int x = std::max(kSeamWindow + 2, n / 25); x < n * 45 / 100; ++x) {
    const float step = SeamStep(mean_profile, x, 1);
    if (step > best_step) {
      best_step = step;
      best_lead = x;
    }
  }
  if (best_lead < 0 || best_step < kSeamStep) return 0.0F;
  // The trailing seam, near the mirror position.
  const int mirror = n - 1 - best_lead;
  const int slack = std::max(3, n * 3 / 100);
  int best_trail = -1;
  float best_trail_step = 0.0F;
  for (int x = mirror - slack; x <= mirror + slack; ++x) {
    if (x <= n / 2 || x >= n - kSeamWindow - 2) continue;
    const float step = SeamStep(mean_profile, x, -1);
    if (step > best_trail_step) {
      best_trail_step = step;
      best_trail = x;
    }
  }
  if (best_trail < 0 || best_trail_step < kSeamStep) return 0.0F;
  // The seam itself is the line of highest energy near the step (the edge between the two).
  auto peak = [&](int around) {
    int best = around;
    for (int x = std::max(0, around - kSeamWindow); x <= std::min(n - 1, around + kSeamWindow);
         ++x) {
      if (mean_profile[x] > mean_profile[best]) best = x;
    }
    return best;
  };
  const int band1_end = peak(best_lead) + 1;  // first picture line (the seam goes to the band)
  const int band2_begin = peak(best_trail);   // last picture line + 1
  if (band1_end < kSeamWindow || band2_begin > n - kSeamWindow || band2_begin <= band1_end) {
    return 0.0F;
  }
  // Per frame: both bands far less detailed than the centre, not black, and the step present.
  int good = 0;
  int good_by_ratio = 0;  // good without the floor for flat pictures
  int seamed = 0;
  int counted = 0;
  for (int f = 0; f < frames; ++f) {
    const auto& p = profiles[f];
    const float centre = MeanOf(p, band1_end + 2, band2_begin - 2);
    if (centre < 1.0F) continue;  // a flat frame says nothing
    ++counted;
    const float band1 = MeanOf(p, 0, band1_end - 2);
    const float band2 = MeanOf(p, band2_begin + 2, n);
    // The lines next to the seam carry its edge; the band's own detail is measured past them.
    // Smooth content (a gradient, flat graphics) holds little detail itself: bands with almost
    // none, behind sharp seams, are fill all the same.
    const float band_limit = std::max(kBandRatio * centre, kFlatBandEnergy);
    const bool low = band1 < band_limit && band2 < band_limit &&
                     MaxWindowMean(p, 2, band1_end - kSeamWindow, 9) < 0.6F * centre &&
                     MaxWindowMean(p, band2_begin + kSeamWindow, n - 2, 9) < 0.6F * centre;
    // Both bands lit, or one black where the picture's edge is (a fractal's interior, a night
    // sky) beside a lit one. Bars have one shade on both sides, however dark a grey.
    const float luma1 = MeanOf(lumas[f], 0, band1_end);
    const float luma2 = MeanOf(lumas[f], band2_begin, n);
    const bool lit =
        (std::max(luma1, luma2) > kFillMinLuma && std::min(luma1, luma2) > kFillMinLuma / 2.0F) ||
        std::abs(luma1 - luma2) > kFillMinLuma / 2.0F;
    const bool seam = SeamStep(p, best_lead, 1) > kSeamStep * 0.5F &&
                      SeamStep(p, best_trail, -1) > kSeamStep * 0.5F;
    if (low && lit && seam) ++good;
    if (low && lit && seam && band1 < kBandRatio * centre && band2 < kBandRatio * centre) {
      ++good_by_ratio;
    }
    if (seam && lit) ++seamed;
  }
  // A smooth picture holds little more detail than its fill: then the bands are judged against
  // an absolute floor, and seams this sharp in nearly every frame are the picture's edges even
  // where the bands are not flat enough in every frame. Graphics with two strong lines pass such
  // tests too, so the picture between must then be taller than wide (wider than tall between
  // bands above and below), as a phone's picture is.
  const bool portrait = band2_begin - band1_end <= kMaxFillPictureAspect * other;
  const bool sharp_seams = best_step >= 2.0F * kSeamStep && best_trail_step >= 2.0F * kSeamStep &&
                           seamed >= 0.8 * counted && good >= 0.3 * counted;
  const bool by_ratio = good_by_ratio >= kBandFrameShare * counted;
  const bool smooth = (good >= kBandFrameShare * counted || sharp_seams) && portrait;
  if (counted == 0 || !(by_ratio || smooth)) return 0.0F;
  if (!BandsChangeShade(lumas, medians, band1_end, band2_begin)) return 0.0F;
  *lead = band1_end;
  *trail = n - band2_begin;
  return static_cast<float>(good) / static_cast<float>(counted);
}

// How far the step across line x stands out: the profile there over the median of the
// profile in the kLineContext lines on either side (less the two next to it).
constexpr int kLineContext = 10;
constexpr float kLineContrast = 4.0F;  // a seam's step over its surroundings' (mean profile)
// Mean |Laplacian| of a blurred band at most: a codec's noise and a gradient's dithering, no
// detail.
constexpr float kSmoothFillEnergy = 2.0F;

float LineContrast(const std::vector<float>& d, int x) {
  const int n = static_cast<int>(d.size());
  std::vector<float> around;
  for (int i = x - kLineContext; i <= x + kLineContext; ++i) {
    if (i < 0 || i >= n || std::abs(i - x) <= 1) continue;
    around.push_back(d[i]);
  }
  if (around.empty()) return 0.0F;
  std::nth_element(around.begin(), around.begin() + around.size() / 2, around.end());
  return d[x] / (around[around.size() / 2] + 0.3F);
}

// Fill around a smooth picture (a gradient, flat graphics): neither side of the seam holds
// detail, so the energy steps of FindFillBands() are not there, but the seam itself is: a line
// across the whole frame where the shade jumps, at mirrored places, in nearly every frame, with
// detail-free bands outside it and a portrait picture between. `diffs[f]` is frame f's mean
// |step| between neighbouring lines along the axis; the rest as for FindFillBands().
float FindSmoothFillBands(const std::vector<std::vector<float>>& diffs,
                          const std::vector<std::vector<float>>& profiles,
                          const std::vector<std::vector<float>>& lumas,
                          const std::vector<std::vector<float>>& medians, int other, int* lead,
                          int* trail) {
  const int n = static_cast<int>(diffs.front().size());
  const int frames = static_cast<int>(diffs.size());
  if (n <= other) return 0.0F;  // bands lie along the frame's long side
  std::vector<float> mean(n, 0.0F);
  for (const auto& d : diffs) {
    for (int i = 0; i < n; ++i) mean[i] += d[i] / static_cast<float>(frames);
  }
  auto best_line = [&](int begin, int end) {
    int best = -1;
    float contrast = 0.0F;
    for (int x = std::max(begin, 2); x < std::min(end, n - 2); ++x) {
      const float c = LineContrast(mean, x);
      if (c > contrast) {
        contrast = c;
        best = x;
      }
    }
    return std::pair{best, contrast};
  };
  const auto [seam1, c1] = best_line(n / 25, n * 45 / 100);
  if (seam1 < 0 || c1 < kLineContrast) return 0.0F;
  const int mirror = n - 1 - seam1;
  const int slack = std::max(3, n * 3 / 100);
  const auto [seam2, c2] = best_line(mirror - slack, mirror + slack + 1);
  if (seam2 < 0 || c2 < kLineContrast || seam2 <= n / 2) return 0.0F;
  const int band1_end = seam1 + 1;  // the step between lines seam1 and seam1 + 1
  const int band2_begin = seam2 + 1;
  if (band2_begin - band1_end > kMaxFillPictureAspect * other) return 0.0F;
  // Where the picture's edge has the fill's shade the seam vanishes for a while: each seam must
  // show in half the frames, one of them in nearly all.
  int seen1 = 0;
  int seen2 = 0;
  int either = 0;
  int good = 0;
  for (int f = 0; f < frames; ++f) {
    const bool s1 = LineContrast(diffs[f], seam1) >= kLineContrast / 2.0F;
    const bool s2 = LineContrast(diffs[f], seam2) >= kLineContrast / 2.0F;
    seen1 += static_cast<int>(s1);
    seen2 += static_cast<int>(s2);
    either += static_cast<int>(s1 || s2);
    const bool flat = MeanOf(profiles[f], 0, band1_end - 2) < kSmoothFillEnergy &&
                      MeanOf(profiles[f], band2_begin + 2, n) < kSmoothFillEnergy;
    const float luma1 = MeanOf(lumas[f], 0, band1_end);
    const float luma2 = MeanOf(lumas[f], band2_begin, n);
    const bool lit =
        std::max(luma1, luma2) > kFillMinLuma && std::min(luma1, luma2) > kFillMinLuma / 2.0F;
    if (flat && lit) ++good;
  }
  if (seen1 * 2 < frames || seen2 * 2 < frames || either < 0.8 * frames || good < 0.8 * frames ||
      !BandsChangeShade(lumas, medians, band1_end, band2_begin)) {
    return 0.0F;
  }
  *lead = band1_end;
  *trail = static_cast<int>(profiles.front().size()) - band2_begin;
  return static_cast<float>(good) / static_cast<float>(frames);
}

// ---- Static overlays --------------------------------------------------------------------------

constexpr int kOverlayFrames = 10;
// The median temporal std (luma) of a video that moves. Low: a mostly still picture that drifts
// slowly still shows its marks; each mark must still have a moving picture around it
// (kRingMotion), and a picture whose edges mostly stay is scenery (kMaxStaticEdgeShare).
constexpr float kMinFrameMotion = 1.5F;
// A frame whose mean luma is this far from the clip's median is a flash or a strobe's phase:
// left out of the motion measures.
constexpr double kMotionBrightnessJump = 40.0;
constexpr float kOverlayEdge = 48.0F;        // |mean gradient| of a static edge (Sobel 3x3)
constexpr float kOverlayConsistency = 0.7F;  // |mean gradient| / mean |gradient|
constexpr double kOverlayFrameShare = 0.8;   // frames in which a static edge is strong
constexpr float kRingMotion = 6.0F;          // median temporal std around an overlay
constexpr float kBlackLuma = 24.0F;          // a pixel at most this bright in every frame
constexpr size_t kMaxOverlays = 4;           // more still patches than this: scenery
constexpr size_t kMaxStillPatches = 8;       // more patches of static edges than this: scenery
constexpr double kMaxStaticEdgeShare = 0.4;  // static share of all edges in a moving picture
constexpr int kMinStaticEdgeGroup = 12;      // pixels in a group of static edges, at least
// A mark's edges are where they were in every frame: the share of frames whose gradient is near
// the mean one, the correlation of its edge map in the first and last frames, and the least share
// of its edges visible in one frame. Content that changes slowly (a zoom, a drift) keeps its
// gradient directions for a while but not its edges' places, and fails these.
constexpr double kOverlayStable = 0.55;
constexpr double kOverlayEndsCorrelation = 0.5;
constexpr double kOverlayPresent = 0.5;
// A mark whose avoidance would cost more than this share of the frame needs near-perfect
// stability.
constexpr double kCheapOverlayCost = 0.2;
constexpr double kStrongOverlayEvidence = 0.8;
// A plate: a box (a translucent or opaque mark's background) whose four sides are straight static
// edges, each covering at least kPlateSideCover of its length. Over busy texture a plate's edges
// drown among the still bits of the texture (a cellular pattern's still lifes), but none of those
// make long straight lines. Sides are runs of at least kPlateSideShare of the frame's short side;
// a plate may cost the crop at most kMaxPlateCost of the frame (a mark hugs an edge).
constexpr double kPlateSideCover = 0.9;
constexpr double kPlateSideShare = 0.05;
constexpr double kMaxPlateCost = 0.25;
// A mark (a plate or any other) covers at most this share of the frame, and at least
// kMinOverlayShare.
constexpr double kMaxOverlayShare = 0.2;
constexpr double kMinOverlayShare = 0.0005;
// The picture around a plate must move too, though far less than around other marks
// (kRingMotion): its shape is evidence they lack, and a smooth picture drifting slowly or a held
// frame zooming slowly moves its ring by only 1-5 levels. (The whole picture must move as well:
// kMinFrameMotion.)
constexpr float kPlateRingMotion = 1.0F;
// Still text whose centre is within this share of the frame's width from the middle, over a
// picture whose luma moves less than kStillRingMotion (temporal std, median) around it, is a
// title of a still picture, not a mark.
constexpr double kTitleCentring = 0.05;
constexpr float kStillRingMotion = 1.0F;
// Words of one line of text are at most this many text heights apart.
constexpr int kLineGapHeights = 2;
// Text that persists without being still is a caption only with its centre in the top or bottom
// this share of the frame.
constexpr double kCaptionBand = 0.3;

// Folds elements of `items` into each other until no pair joins: for the first pair (i, j), i != j,
// with joins(items[i], items[j]), calls fold(items[i], items[j]), erases items[j] and starts over.
// Both orders of a pair are asked, so joins() may be one-sided ("the first contains the second").
template <typename T, typename Joins, typename Fold>
void FoldUntilStable(std::vector<T>* items, Joins joins, Fold fold) {
  for (bool folded = true; folded;) {
    folded = false;
    for (size_t i = 0; i < items->size() && !folded; ++i) {
      for (size_t j = 0; j < items->size(); ++j) {
        if (i == j || !joins((*items)[i], (*items)[j])) continue;
        fold((*items)[i], (*items)[j]);
        items->erase(items->begin() + static_cast<std::ptrdiff_t>(j));
        folded = true;
        break;
      }
    }
  }
}

// What a static-overlay candidate looks like over time.
struct OverlayEvidence {
  double stable = 0.0;       // mean share of frames whose gradient is near the mean gradient
  double present_min = 0.0;  // the least share of the box's static edges strong in one frame
  double ncc_ends = 0.0;     // correlation of the box's edge map in the first and last frames
  double cost = 0.0;         // share of the frame lost if the crop avoided this box alone
  int edge_pixels = 0;
};

// Share of the frame lost when the crop avoids `box` alone: the largest of the four bands
// beside it is kept.
double CropCost(const cv::Rect& box, const cv::Size& size) {
  const double keep =
      std::max({static_cast<double>(box.x) * size.height,
                static_cast<double>(size.width - box.x - box.width) * size.height,
                static_cast<double>(box.y) * size.width,
                static_cast<double>(size.height - box.y - box.height) * size.width});
  return 1.0 - keep / size.area();
}

// The planes a mark's edges are looked for in: luma, and the two colour differences (a mark may
// differ from the picture in colour alone: light blue on pink has hardly any luma edge).
enum class Plane { kLuma, kCr, kCb };
constexpr Plane kPlanes[] = {Plane::kLuma, Plane::kCr, Plane::kCb};

// One plane of a BGR image (a grey image is its own luma).
cv::Mat PlaneOf(const cv::Mat& image, Plane plane) {
  if (image.channels() == 1) return image;
  if (plane == Plane::kLuma) return Gray(image);
  cv::Mat ycrcb;
  cv::cvtColor(image, ycrcb, cv::COLOR_BGR2YCrCb);
  cv::Mat out;
  cv::extractChannel(ycrcb, out, plane == Plane::kCr ? 1 : 2);
  return out;
}

// How still the edges inside `box` are over `frames` (grey or BGR, one size) in one `plane`: the
// edges are the pixels whose mean gradient is at least `min_edge` (Sobel 3x3).
OverlayEvidence BoxStability(const std::vector<const cv::Mat*>& frames, const cv::Rect& box,
                             float min_edge, Plane plane = Plane::kLuma) {
  OverlayEvidence e;
  if (frames.empty()) return e;
  const cv::Size size = frames.front()->size();
  const cv::Rect inner = box & cv::Rect(cv::Point(0, 0), size);
  e.cost = CropCost(inner, size);
  if (inner.width < 3 || inner.height < 3 || frames.size() < 2) return e;
  const size_t n = frames.size();
  std::vector<cv::Mat> gx(n);
  std::vector<cv::Mat> gy(n);
  cv::Mat sum_gx = cv::Mat::zeros(inner.size(), CV_32F);
  cv::Mat sum_gy = cv::Mat::zeros(inner.size(), CV_32F);
  for (size_t f = 0; f < n; ++f) {
    const cv::Mat gray = PlaneOf((*frames[f])(inner), plane);
    cv::Sobel(gray, gx[f], CV_32F, 1, 0, 3);
    cv::Sobel(gray, gy[f], CV_32F, 0, 1, 3);
    cv::accumulate(gx[f], sum_gx);
    cv::accumulate(gy[f], sum_gy);
  }
  const cv::Mat mean_gx = sum_gx / static_cast<double>(n);
  const cv::Mat mean_gy = sum_gy / static_cast<double>(n);
  std::vector<int> present(n, 0);
  double stable_sum = 0.0;
  int pixels = 0;
  for (int y = 1; y + 1 < inner.height; ++y) {  // the patch's own border rows see its edge
    const float* mx = mean_gx.ptr<float>(y);
    const float* my = mean_gy.ptr<float>(y);
    for (int x = 1; x + 1 < inner.width; ++x) {
      const float mean_mag = std::hypot(mx[x], my[x]);
      if (mean_mag < min_edge) continue;
      ++pixels;
      int near = 0;
      for (size_t f = 0; f < n; ++f) {
        const float fx = gx[f].at<float>(y, x);
        const float fy = gy[f].at<float>(y, x);
        if (std::hypot(fx - mx[x], fy - my[x]) <= 0.4F * mean_mag) ++near;
        if (std::hypot(fx, fy) >= min_edge * 0.5F) ++present[f];
      }
      stable_sum += static_cast<double>(near) / static_cast<double>(n);
    }
  }
  e.edge_pixels = pixels;
  if (pixels == 0) return e;
  e.stable = stable_sum / pixels;
  e.present_min = static_cast<double>(*std::min_element(present.begin(), present.end())) / pixels;
  cv::Mat first;
  cv::Mat last;
  cv::magnitude(gx.front(), gy.front(), first);
  cv::magnitude(gx.back(), gy.back(), last);
  cv::Mat ncc;
  cv::matchTemplate(first, last, ncc, cv::TM_CCOEFF_NORMED);
  e.ncc_ends = ncc.at<float>(0, 0);
  return e;
}

// The median temporal standard deviation of luma in a ring `margin` pixels wide around `box`
// (outside it), over `frames` (BGR, one size): how much the picture around a mark moves.
float RingMotion(const std::vector<const cv::Mat*>& frames, const cv::Rect& box, int margin) {
  if (frames.size() < 2) return 0.0F;
  const cv::Rect bounds(cv::Point(0, 0), frames.front()->size());
  const cv::Rect outer =
      cv::Rect(box.x - margin, box.y - margin, box.width + 2 * margin, box.height + 2 * margin) &
      bounds;
  if (outer.empty()) return 0.0F;
  cv::Mat sum = cv::Mat::zeros(outer.size(), CV_32F);
  cv::Mat sum_sq = cv::Mat::zeros(outer.size(), CV_32F);
  cv::Mat luma;
  for (const cv::Mat* frame : frames) {
    PlaneOf((*frame)(outer), Plane::kLuma).convertTo(luma, CV_32F);
    cv::accumulate(luma, sum);
    cv::accumulateSquare(luma, sum_sq);
  }
  const double n = static_cast<double>(frames.size());
  cv::Mat mean = sum / n;
  cv::Mat var = sum_sq / n - mean.mul(mean);
  const cv::Rect inside = (box & bounds) - outer.tl();
  std::vector<float> ring;
  for (int y = 0; y < outer.height; ++y) {
    const float* v = var.ptr<float>(y);
    for (int x = 0; x < outer.width; ++x) {
      if (!inside.contains(cv::Point(x, y))) ring.push_back(std::sqrt(std::max(v[x], 0.0F)));
    }
  }
  if (ring.empty()) return 0.0F;
  std::nth_element(ring.begin(), ring.begin() + ring.size() / 2, ring.end());
  return ring[ring.size() / 2];
}

// Clears the 8-connected groups of fewer than `min_pixels` set pixels of `mask` (CV_8U).
void DropSpecks(cv::Mat* mask, int min_pixels) {
  cv::Mat labels;
  cv::Mat stats;
  cv::Mat centroids;
  const int count = cv::connectedComponentsWithStats(*mask, labels, stats, centroids, 8, CV_32S);
  std::vector<uchar> keep(static_cast<size_t>(count), 0);
  for (int i = 1; i < count; ++i) keep[i] = stats.at<int>(i, cv::CC_STAT_AREA) >= min_pixels;
  for (int y = 0; y < mask->rows; ++y) {
    const int* label = labels.ptr<int>(y);
    uchar* m = mask->ptr<uchar>(y);
    for (int x = 0; x < mask->cols; ++x) {
      if (m[x]) m[x] = keep[label[x]] ? 255 : 0;
    }
  }
}

// The pixels of `edges` (CV_8U) on straight runs of at least `length` pixels along rows
// (`horizontal`) or columns, a run allowed to wobble by a pixel across.
cv::Mat StraightRuns(const cv::Mat& edges, int length, bool horizontal) {
  cv::Mat thick;
  cv::dilate(
      edges, thick,
      cv::getStructuringElement(cv::MORPH_RECT, horizontal ? cv::Size(1, 3) : cv::Size(3, 1)));
  cv::Mat runs;
  cv::morphologyEx(thick, runs, cv::MORPH_OPEN,
                   cv::getStructuringElement(
                       cv::MORPH_RECT, horizontal ? cv::Size(length, 1) : cv::Size(1, length)));
  return runs;
}

// The best share of `box`'s side covered by `runs`, over the lines within two pixels of `line`
// (a row for the top and bottom sides, a column for the left and right).
double SideCover(const cv::Mat& runs, const cv::Rect& box, int line, bool row) {
  double best = 0.0;
  const int last = (row ? runs.rows : runs.cols) - 1;
  for (int at = std::max(0, line - 2); at <= std::min(last, line + 2); ++at) {
    const cv::Mat side =
        row ? runs(cv::Rect(box.x, at, box.width, 1)) : runs(cv::Rect(at, box.y, 1, box.height));
    best = std::max(best, cv::countNonZero(side) / static_cast<double>(side.total()));
  }
  return best;
}

// The first line from `from` towards `to` (rows when `row`, else columns) whose part within `span`
// `runs` covers for at least kPlateSideCover; `from` when none does.
int CoveredLine(const cv::Mat& runs, const cv::Range& span, int from, int to, bool row) {
  const int step = to >= from ? 1 : -1;
  for (int at = from; at != to + step; at += step) {
    const cv::Mat line =
        row ? runs(cv::Range(at, at + 1), span) : runs(span, cv::Range(at, at + 1));
    if (cv::countNonZero(line) >= kPlateSideCover * static_cast<double>(line.total())) return at;
  }
  return from;
}

// The plates among the static edges `edges` (see kPlateSideCover): groups of straight runs whose
// bounding box has all four sides drawn.
std::vector<cv::Rect> StillPlates(const cv::Mat& edges) {
  const int length =
      std::max(8, static_cast<int>(kPlateSideShare * std::min(edges.cols, edges.rows)));
  const cv::Mat rows = StraightRuns(edges, length, true);
  const cv::Mat cols = StraightRuns(edges, length, false);
  cv::Mat labels;
  cv::Mat stats;
  cv::Mat centroids;
  const int count =
      cv::connectedComponentsWithStats(rows | cols, labels, stats, centroids, 8, CV_32S);
  std::vector<cv::Rect> plates;
  for (int i = 1; i < count; ++i) {
    const cv::Rect box(stats.at<int>(i, cv::CC_STAT_LEFT), stats.at<int>(i, cv::CC_STAT_TOP),
                       stats.at<int>(i, cv::CC_STAT_WIDTH), stats.at<int>(i, cv::CC_STAT_HEIGHT));
    if (box.width < length || box.height < length) continue;
    const double cover = std::min({SideCover(rows, box, box.y + 1, true),
                                   SideCover(rows, box, box.y + box.height - 2, true),
                                   SideCover(cols, box, box.x + 1, false),
                                   SideCover(cols, box, box.x + box.width - 2, false)});
    if (cover < kPlateSideCover) continue;
    // Each side lies on the outermost line its runs cover: texture runs that touch the plate
    // widen the group, not the plate. Twice, as a narrower box leaves fewer stray pixels on a
    // line's span. The runs are a pixel thicker than the edges they were found on, and the edges
    // (of a 3x3 gradient) a pixel wider than the plate: the box keeps that pixel.
    cv::Rect outer = box;
    for (int pass = 0; pass < 2; ++pass) {
      const int reach = std::max(2, std::min(outer.width, outer.height) / 4);
      const cv::Range across(outer.x, outer.x + outer.width);
      const cv::Range down(outer.y, outer.y + outer.height);
      const int top = CoveredLine(rows, across, outer.y, outer.y + reach, true);
      const int bottom =
          CoveredLine(rows, across, outer.br().y - 1, outer.br().y - 1 - reach, true);
      const int left = CoveredLine(cols, down, outer.x, outer.x + reach, false);
      const int right = CoveredLine(cols, down, outer.br().x - 1, outer.br().x - 1 - reach, false);
      outer = cv::Rect(cv::Point(left, top), cv::Point(right + 1, bottom + 1));
    }
    plates.push_back(cv::Rect(outer.x + 1, outer.y + 1, outer.width - 2, outer.height - 2));
  }
  return plates;
}

// True when `e` shows edges that stayed where they were: a mark, not content. A box that would
// cost more than kCheapOverlayCost of the frame needs near-perfect stability.
bool IsStill(const OverlayEvidence& e) {
  const double need = e.cost > kCheapOverlayCost ? kStrongOverlayEvidence : 0.0;
  return e.edge_pixels >= 20 && e.stable >= std::max(kOverlayStable, need) &&
         e.ncc_ends >= std::max(kOverlayEndsCorrelation, need) &&
         e.present_min >= std::max(kOverlayPresent, need);
}

}  // namespace

// ---- BlackBorderDetector ----------------------------------------------------------------------

StatusOr<std::vector<Region>> BlackBorderDetector::Detect(const std::vector<media::Frame>& frames) {
  std::vector<Region> regions;
  const auto picked = PickFrames(frames, 10);
  if (picked.empty()) return regions;
  std::vector<cv::Mat> grays;
  std::vector<cv::Mat> values;  // the brightest channel of each pixel
  grays.reserve(picked.size());
  for (const cv::Mat* bgr : picked) {
    grays.push_back(Gray(*bgr));
    cv::Mat channels[3];
    cv::split(*bgr, channels);
    cv::Mat value;
    cv::max(channels[0], channels[1], value);
    cv::max(value, channels[2], value);
    values.push_back(std::move(value));
  }
  const int w = grays.front().cols;
  const int h = grays.front().rows;
  const int n = static_cast<int>(grays.size());

  LineStats rows;
  for (int f = 0; f < n; ++f) AddLines(grays[f], values[f], cv::Rect(0, 0, w, h), true, &rows);
  const auto [top, bottom] = FindBars(rows, n);

  // Columns are judged on the rows between the letterbox bars.
  const cv::Rect inner_rows(0, top, w, h - top - bottom);
  LineStats cols;
  for (int f = 0; f < n; ++f) AddLines(grays[f], values[f], inner_rows, false, &cols);
  const auto [left, right] = FindBars(cols, n);

  auto add = [&](const cv::Rect& box, const char* label) {
    regions.push_back(Region{RegionKind::kBlackBorder, box, 1.0F, label, true});
  };
  if (top > 0) add(cv::Rect(0, 0, w, top), "letterbox");
  if (bottom > 0) add(cv::Rect(0, h - bottom, w, bottom), "letterbox");
  if (left > 0) add(cv::Rect(0, 0, left, h), "pillarbox");
  if (right > 0) add(cv::Rect(w - right, 0, right, h), "pillarbox");
  return regions;
}

// ---- BlurFillDetector -------------------------------------------------------------------------

StatusOr<std::vector<Region>> BlurFillDetector::Detect(const std::vector<media::Frame>& frames) {
  std::vector<Region> regions;
  const auto picked = PickFrames(frames, 8);
  if (picked.empty()) return regions;
  const int w = picked.front()->cols;
  const int h = picked.front()->rows;
  if (w < 64 || h < 64) return regions;
  std::vector<std::vector<float>> col_energy;
  std::vector<std::vector<float>> row_energy;
  std::vector<std::vector<float>> col_luma;
  std::vector<std::vector<float>> row_luma;
  std::vector<std::vector<float>> col_median;
  std::vector<std::vector<float>> row_median;
  std::vector<std::vector<float>> col_diff;
  std::vector<std::vector<float>> row_diff;
  for (const cv::Mat* bgr : picked) {
    const cv::Mat gray = Gray(*bgr);
    cv::Mat dx;
    cv::Mat dy;
    cv::absdiff(gray.colRange(1, w), gray.colRange(0, w - 1), dx);
    cv::absdiff(gray.rowRange(1, h), gray.rowRange(0, h - 1), dy);
    col_diff.push_back(EnergyProfile(dx, true));
    row_diff.push_back(EnergyProfile(dy, false));
    cv::Mat lap;
    cv::Laplacian(gray, lap, CV_16S, 1);
    cv::Mat abs_lap;
    cv::convertScaleAbs(lap, abs_lap);
    col_energy.push_back(EnergyProfile(abs_lap, true));
    row_energy.push_back(EnergyProfile(abs_lap, false));
    col_luma.push_back(EnergyProfile(gray, true));
    row_luma.push_back(EnergyProfile(gray, false));
    col_median.push_back(MedianProfile(gray, true));
    row_median.push_back(MedianProfile(gray, false));
  }
  int lead = 0;
  int trail = 0;
  const auto columns = [&](int* a, int* b) {
    const float score = FindFillBands(col_energy, col_luma, col_median, h, a, b);
    return score > 0.0F ? score
                        : FindSmoothFillBands(col_diff, col_energy, col_luma, col_median, h, a, b);
  };
  const auto rows = [&](int* a, int* b) {
    const float score = FindFillBands(row_energy, row_luma, row_median, w, a, b);
    return score > 0.0F ? score
                        : FindSmoothFillBands(row_diff, row_energy, row_luma, row_median, w, a, b);
  };
  // A picture between fill bands is a picture of its own shape (a portrait video is 0.56 of the
  // frame's height wide): a sliver narrower than kMinFilledPicture of the other side is the
  // content's own smooth areas around a band of detail, not fill.
  const auto framed = [](float score, int inner, int across) {
    return score > 0.0F && inner >= kMinFilledPicture * across;
  };
  if (float score = columns(&lead, &trail); framed(score, w - lead - trail, h)) {
    regions.push_back(
        Region{RegionKind::kBlurFill, cv::Rect(0, 0, lead, h), score, "blur_fill", true});
    regions.push_back(
        Region{RegionKind::kBlurFill, cv::Rect(w - trail, 0, trail, h), score, "blur_fill", true});
  } else if (score = rows(&lead, &trail); framed(score, h - lead - trail, w)) {
    regions.push_back(
        Region{RegionKind::kBlurFill, cv::Rect(0, 0, w, lead), score, "blur_fill", true});
    regions.push_back(
        Region{RegionKind::kBlurFill, cv::Rect(0, h - trail, w, trail), score, "blur_fill", true});
  }
  return regions;
}

// ---- StaticOverlayDetector --------------------------------------------------------------------

StatusOr<std::vector<Region>> StaticOverlayDetector::Detect(
    const std::vector<media::Frame>& frames) {
  std::vector<Region> regions;
  const auto picked = PickFrames(frames, kOverlayFrames);
  if (picked.size() < 4) return regions;
  const cv::Size size = picked.front()->size();
  const auto n = static_cast<double>(picked.size());

  cv::Mat sum = cv::Mat::zeros(size, CV_32F);
  cv::Mat sum_sq = cv::Mat::zeros(size, CV_32F);
  cv::Mat max_luma = cv::Mat::zeros(size, CV_8U);
  // Gradient sums per plane (luma, Cr, Cb).
  struct PlaneSums {
    cv::Mat gx;
    cv::Mat gy;
    cv::Mat mag;
    cv::Mat strong_frames;  // frames in which the gradient is at least half a static edge's
  };
  std::vector<PlaneSums> planes(std::size(kPlanes));
  for (PlaneSums& p : planes) {
    p.gx = cv::Mat::zeros(size, CV_32F);
    p.gy = cv::Mat::zeros(size, CV_32F);
    p.mag = cv::Mat::zeros(size, CV_32F);
    p.strong_frames = cv::Mat::zeros(size, CV_8U);
  }
  cv::Mat gx;
  cv::Mat gy;
  cv::Mat mag;
  cv::Mat centred;
  cv::Mat ycrcb;
  cv::Mat chroma[3];
  // Motion is measured on luma less the frame's mean, so a fade or a lighting change alone does
  // not count as a moving picture, and only on frames of the clip's usual brightness: a flash
  // (or a strobe's bright phase) washes the picture out, which would read as motion everywhere.
  // (The mean luma from the channel means: luma is linear in them, so it serves both.)
  std::vector<double> brightness;
  for (const cv::Mat* bgr : picked) {
    const cv::Scalar m = cv::mean(*bgr);
    brightness.push_back(0.114 * m[0] + 0.587 * m[1] + 0.299 * m[2]);
  }
  std::vector<double> sorted = brightness;
  std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2, sorted.end());
  const double usual = sorted[sorted.size() / 2];
  const auto usual_frame = [&](size_t f) {
    return std::abs(brightness[f] - usual) <= kMotionBrightnessJump;
  };
  double motion_frames = 0.0;
  for (size_t f = 0; f < picked.size(); ++f) motion_frames += usual_frame(f) ? 1.0 : 0.0;
  const bool all_frames = motion_frames < 4.0;  // too few to say: every frame counts
  if (all_frames) motion_frames = n;
  for (size_t f = 0; f < picked.size(); ++f) {
    const cv::Mat* bgr = picked[f];
    const cv::Mat gray = Gray(*bgr);
    if (all_frames || usual_frame(f)) {
      gray.convertTo(centred, CV_32F, 1.0, -brightness[f]);
      cv::accumulate(centred, sum);
      cv::accumulateSquare(centred, sum_sq);
    }
    cv::max(max_luma, gray, max_luma);
    cv::cvtColor(*bgr, ycrcb, cv::COLOR_BGR2YCrCb);
    cv::split(ycrcb, chroma);
    for (size_t i = 0; i < planes.size(); ++i) {
      const cv::Mat& plane = kPlanes[i] == Plane::kLuma ? gray
                             : kPlanes[i] == Plane::kCr ? chroma[1]
                                                        : chroma[2];
      cv::Sobel(plane, gx, CV_32F, 1, 0, 3);
      cv::Sobel(plane, gy, CV_32F, 0, 1, 3);
      cv::accumulate(gx, planes[i].gx);
      cv::accumulate(gy, planes[i].gy);
      cv::magnitude(gx, gy, mag);
      cv::accumulate(mag, planes[i].mag);
      cv::add(planes[i].strong_frames, 1, planes[i].strong_frames, mag >= kOverlayEdge * 0.5F);
    }
  }
  // Pixels black in every frame (bars) say nothing about motion and hold no overlay edges.
  // Only large black areas count (bars, mattes), not dark parts of a mark.
  cv::Mat black;
  cv::morphologyEx(max_luma <= kBlackLuma, black, cv::MORPH_OPEN,
                   cv::getStructuringElement(cv::MORPH_RECT, cv::Size(15, 15)));
  const cv::Mat lit = ~black;
  if (cv::countNonZero(lit) < size.area() / 4) return regions;

  // Whole-frame motion: the median temporal std of the lit pixels.
  cv::Mat mean = sum / motion_frames;
  cv::Mat var = sum_sq / motion_frames - mean.mul(mean);
  cv::Mat stddev;
  cv::sqrt(cv::max(var, 0.0), stddev);
  std::vector<float> lit_std;
  lit_std.reserve(static_cast<size_t>(size.area()));
  for (int y = 0; y < size.height; y += 2) {
    const float* s = stddev.ptr<float>(y);
    const uchar* l = lit.ptr<uchar>(y);
    for (int x = 0; x < size.width; x += 2) {
      if (l[x]) lit_std.push_back(s[x]);
    }
  }
  if (lit_std.empty()) return regions;
  std::nth_element(lit_std.begin(), lit_std.begin() + lit_std.size() / 2, lit_std.end());
  if (lit_std[lit_std.size() / 2] < kMinFrameMotion) return regions;  // a static video

  // Static edges: a strong mean gradient that keeps its direction in every frame, in any plane.
  cv::Mat edges = cv::Mat::zeros(size, CV_8U);
  cv::Mat any_edges = cv::Mat::zeros(size, CV_8U);
  cv::Mat consistency = cv::Mat::zeros(size, CV_32F);  // the best plane's
  for (const PlaneSums& p : planes) {
    cv::Mat mean_mag;
    cv::magnitude(p.gx / n, p.gy / n, mean_mag);
    const cv::Mat plane_consistency = mean_mag / (p.mag / n + 1.0);
    edges |= (mean_mag >= kOverlayEdge) & (plane_consistency >= kOverlayConsistency) &
             (p.strong_frames >= std::ceil(kOverlayFrameShare * n));
    any_edges |= p.mag / n >= kOverlayEdge;
    cv::max(consistency, plane_consistency, consistency);
  }
  // Drop the seams of black bars: edges right next to pixels that are black in every frame.
  cv::Mat near_black;
  cv::dilate(black, near_black, cv::getStructuringElement(cv::MORPH_RECT, cv::Size(7, 7)));
  edges.setTo(0, near_black);
  const int k = std::max(5, std::max(size.width, size.height) / 64) | 1;
  const double frame_area = size.area();
  const cv::Rect frame_rect(cv::Point(0, 0), size);
  // The median temporal std of the lit pixels in a ring k wide around `box`, or -1 when the ring
  // is too small to say.
  const auto ring_motion = [&](const cv::Rect& box) {
    const cv::Rect ring_box =
        cv::Rect(box.x - k, box.y - k, box.width + 2 * k, box.height + 2 * k) & frame_rect;
    std::vector<float> ring;
    for (int y = ring_box.y; y < ring_box.y + ring_box.height; ++y) {
      const float* s = stddev.ptr<float>(y);
      const uchar* l = lit.ptr<uchar>(y);
      for (int x = ring_box.x; x < ring_box.x + ring_box.width; ++x) {
        if (l[x] && !box.contains(cv::Point(x, y))) ring.push_back(s[x]);
      }
    }
    if (ring.size() < 16) return -1.0F;
    std::nth_element(ring.begin(), ring.begin() + ring.size() / 2, ring.end());
    return ring[ring.size() / 2];
  };
  // One pixel more on each side covers a mark's soft (anti-aliased) edges.
  const auto grow = [&](const cv::Rect& box) {
    return cv::Rect(box.x - 1, box.y - 1, box.width + 2, box.height + 2) & frame_rect;
  };
  const auto add = [&](const cv::Rect& box, float score) {
    const bool wide = box.width >= 3 * box.height;
    regions.push_back(
        Region{RegionKind::kWatermark, box, score, wide ? "watermark" : "logo", true});
  };
  // Plates stand out by their shape alone, whatever the share of the picture's edges that stay.
  // (A plate's box already holds its soft edge: see StillPlates.)
  for (const cv::Rect& plate : StillPlates(edges)) {
    // A plate on a black bar's seam is the seam; one inside a bar is cropped away anyway.
    if (plate.area() > frame_area * kMaxOverlayShare || CropCost(plate, size) > kMaxPlateCost ||
        cv::countNonZero(near_black(plate)) > 0) {
      continue;
    }
    const float motion = ring_motion(plate);
    if (motion < kPlateRingMotion) continue;
    add(plate, static_cast<float>(cv::mean(consistency(plate), edges(plate))[0]));
  }
  const size_t plates = regions.size();
  const auto plate_holds = [&](const cv::Rect& box) {
    return std::any_of(regions.begin(), regions.begin() + static_cast<std::ptrdiff_t>(plates),
                       [&](const Region& r) { return !(r.box & box).empty(); });
  };

  const int edge_pixels = cv::countNonZero(edges);
  const int any_edge_pixels = cv::countNonZero(any_edges & ~near_black);
  // Most edges of a moving picture move; when many stay, the scene itself is still.
  if (edge_pixels == 0 || edge_pixels > kMaxStaticEdgeShare * any_edge_pixels) {
    if (regions.size() > kMaxOverlays) regions.clear();
    return regions;
  }
  // Specks of a few still pixels are texture that happened to hold (a cellular pattern's cells,
  // noise): a mark's strokes make groups of a dozen pixels or more.
  DropSpecks(&edges, kMinStaticEdgeGroup);

  cv::Mat closed;
  cv::morphologyEx(edges, closed, cv::MORPH_CLOSE,
                   cv::getStructuringElement(cv::MORPH_RECT, cv::Size(k, k)));
  cv::Mat labels;
  cv::Mat stats;
  cv::Mat centroids;
  const int count = cv::connectedComponentsWithStats(closed, labels, stats, centroids, 8, CV_32S);
  // Parts of one mark (letters, a logo's pieces) are merged when their boxes nearly touch.
  std::vector<cv::Rect> boxes;
  for (int i = 1; i < count; ++i) {
    if (stats.at<int>(i, cv::CC_STAT_AREA) < 12) continue;
    boxes.emplace_back(stats.at<int>(i, cv::CC_STAT_LEFT), stats.at<int>(i, cv::CC_STAT_TOP),
                       stats.at<int>(i, cv::CC_STAT_WIDTH), stats.at<int>(i, cv::CC_STAT_HEIGHT));
  }
  FoldUntilStable(
      &boxes,
      [k](const cv::Rect& a, const cv::Rect& b) {
        return !(cv::Rect(a.x - k, a.y - k, a.width + 2 * k, a.height + 2 * k) & b).empty();
      },
      [](cv::Rect& into, const cv::Rect& from) { into |= from; });
  size_t patches = 0;  // boxes of a mark's size and edge count, still or not
  for (const cv::Rect& box : boxes) {
    if (box.area() < frame_area * kMinOverlayShare || box.area() > frame_area * kMaxOverlayShare) {
      continue;
    }
    if (std::min(box.width, box.height) < 4) continue;  // a line, not a mark
    const int pixels = cv::countNonZero(edges(box));
    if (pixels < 30) continue;
    ++patches;
    const float score = static_cast<float>(cv::mean(consistency(box), edges(box))[0]);
    const cv::Rect grown = grow(box);
    if (plate_holds(grown)) continue;  // found whole above
    // The picture around the mark must move; a still background cannot tell a mark from scenery.
    const float motion = ring_motion(grown);
    if (motion < 0.0F) continue;
    // The mark's edges may show in one plane only (a colour on a picture of the same
    // brightness): the box is still when it is in any plane.
    OverlayEvidence evidence;
    for (const Plane plane : kPlanes) {
      evidence = BoxStability(picked, box, kOverlayEdge, plane);
      if (IsStill(evidence)) break;
    }
    if (motion < kRingMotion || !IsStill(evidence)) continue;
    add(grown, score);
  }
  // A video carries a mark or two; many still patches are scenery (a fence, a parked car park
  // seen from a fixed camera), not overlays, whether or not most of them pass as marks.
  if (regions.size() > kMaxOverlays || patches > kMaxStillPatches) regions.clear();
  return regions;
}

// ---- TextRegionDetector -----------------------------------------------------------------------

namespace {

// Two frames repeat each other when no cell of kRepeatCell x kRepeatCell pixels differs in mean
// luma by more than kRepeatStep: a codec's noise on a still picture stays well below it, while a
// changed line of text moves the cells its strokes cross by tens of levels.
constexpr int kRepeatCell = 4;
constexpr double kRepeatStep = 6.0;

cv::Mat RepeatThumb(const cv::Mat& bgr) {
  cv::Mat thumb;
  cv::resize(Gray(bgr), thumb,
             cv::Size(std::max(1, bgr.cols / kRepeatCell), std::max(1, bgr.rows / kRepeatCell)), 0,
             0, cv::INTER_AREA);
  return thumb;
}

bool SameThumb(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && cv::norm(a, b, cv::NORM_INF) <= kRepeatStep;
}

}  // namespace

StatusOr<std::vector<Region>> TextRegionDetector::Detect(const std::vector<media::Frame>& frames) {
  std::vector<Region> regions;
  if (detector_ == nullptr) return regions;
  const auto picked = PickFrames(frames, std::max(1, max_frames_));
  if (picked.empty()) return regions;
  // A frame that repeats an earlier picked one (a still, a slide held) takes no pass of its own:
  // it gets that frame's boxes.
  std::vector<cv::Mat> images;
  std::vector<size_t> source(picked.size());  // index into `images` of each picked frame
  std::vector<cv::Mat> thumbs;                // of `images`
  for (size_t i = 0; i < picked.size(); ++i) {
    cv::Mat thumb = RepeatThumb(*picked[i]);
    const auto same = std::find_if(thumbs.begin(), thumbs.end(),
                                   [&thumb](const cv::Mat& t) { return SameThumb(thumb, t); });
    source[i] = static_cast<size_t>(same - thumbs.begin());
    if (same == thumbs.end()) {
      images.push_back(*picked[i]);
      thumbs.push_back(std::move(thumb));
    }
  }
  VSIEVE_ASSIGN_OR_RETURN(auto passes, detector_->DetectEach(images));
  std::vector<std::vector<TextBox>> per_frame;
  per_frame.reserve(picked.size());
  for (const size_t s : source) per_frame.push_back(passes[s]);
  const cv::Size size = images.front().size();
  const int n = static_cast<int>(per_frame.size());

  // Cluster boxes across frames: a box joins the first cluster it overlaps enough.
  struct Cluster {
    cv::Rect box;  // union
    std::vector<int> frames;
    float score_sum = 0.0F;
    int boxes = 0;
    int horizontal = 0;
  };
  std::vector<Cluster> clusters;
  for (int f = 0; f < n; ++f) {
    for (const TextBox& tb : per_frame[f]) {
      const cv::Rect& b = tb.box;
      float w = tb.rect.size.width;
      float hh = tb.rect.size.height;
      float angle = tb.rect.angle;
      if (w < hh) {
        std::swap(w, hh);
        angle += 90.0F;
      }
      angle = std::fmod(std::fabs(angle), 180.0F);
      const bool horizontal = (angle <= 10.0F || angle >= 170.0F) && w >= 1.5F * hh;
      Cluster* match = nullptr;
      for (auto& c : clusters) {
        const cv::Rect inter = c.box & b;
        if (inter.area() >= 0.3 * std::min(c.box.area(), b.area())) {
          match = &c;
          break;
        }
      }
      if (match == nullptr) {
        clusters.push_back(Cluster{b, {}, 0.0F, 0, 0});
        match = &clusters.back();
      }
      match->box |= b;
      if (match->frames.empty() || match->frames.back() != f) match->frames.push_back(f);
      match->score_sum += tb.score;
      ++match->boxes;
      if (horizontal) ++match->horizontal;
    }
  }

  // A cluster's box grows as boxes join it, so a word the detector returned alone in some frames
  // (before its line's cluster reached it) can be left in a cluster of its own inside the line's:
  // such a part of one line of text joins the line, with its frames.
  FoldUntilStable(
      &clusters,
      [](const Cluster& line, const Cluster& part) {
        return line.box.area() >= part.box.area() &&
               (line.box & part.box).area() >= 0.8 * part.box.area() &&
               line.box.height * 2 <= part.box.height * 3;
      },
      [](Cluster& into, const Cluster& from) {
        std::vector<int> frames_union;
        std::set_union(into.frames.begin(), into.frames.end(), from.frames.begin(),
                       from.frames.end(), std::back_inserter(frames_union));
        into.frames = std::move(frames_union);
        into.box |= from.box;
        into.score_sum += from.score_sum;
        into.boxes += from.boxes;
        into.horizontal += from.horizontal;
      });

  // Classify clusters; subtitle and top-caption clusters are merged into one band box each.
  Region subtitle{RegionKind::kText, cv::Rect(), 0.0F, "subtitle", true};
  Region top_caption{RegionKind::kText, cv::Rect(), 0.0F, "caption", true};
  int subtitle_boxes = 0;
  int top_boxes = 0;
  // Text that stays put, letter for letter, in every frame while the video goes on is a mark
  // (a channel name, "SAMPLE"): reported as a watermark, whatever the picture does around it.
  const auto still_frames = PickFrames(frames, kOverlayFrames);
  // A line of text may come as one box or as a box per word, depending on the detector's
  // response at the gaps: centring is judged on the line, the union of the clusters that share
  // its rows and lie within a few text heights of each other along it.
  std::vector<cv::Rect> lines;
  for (const auto& c : clusters) lines.push_back(c.box);
  FoldUntilStable(
      &lines,
      [](const cv::Rect& a, const cv::Rect& b) {
        const int overlap = std::min(a.br().y, b.br().y) - std::max(a.y, b.y);
        const int gap = std::max(a.x, b.x) - std::min(a.br().x, b.br().x);
        return overlap >= std::min(a.height, b.height) / 2 &&
               gap <= kLineGapHeights * std::max(a.height, b.height);
      },
      [](cv::Rect& into, const cv::Rect& from) { into |= from; });
  const auto LineOf = [&lines](const cv::Rect& box) {
    for (const cv::Rect& line : lines) {
      if ((line & box) == box) return line;
    }
    return box;
  };
  const auto CentredOverStillPicture = [&](const cv::Rect& box) {
    const cv::Rect line = LineOf(box);
    const double offset = std::abs(line.x + line.width / 2.0 - size.width / 2.0);
    const int margin = std::max(size.width, size.height) / 64;
    return offset <= kTitleCentring * size.width && still_frames.size() >= 4 &&
           RingMotion(still_frames, line, margin) < kStillRingMotion;
  };
  for (const auto& c : clusters) {
    const float score = c.score_sum / static_cast<float>(c.boxes);
    const bool in_all = static_cast<int>(c.frames.size()) == n && n >= 2;
    if (in_all && still_frames.size() >= 4 &&
        IsStill(BoxStability(still_frames, c.box, kOverlayEdge))) {
      // A title centred over a picture that is still around it (a slide's heading, a title
      // card, a screen recording's banner) is part of that picture: nothing tells it from the
      // slide's own text, and avoiding it would crop a clean frame. Marks sit in corners or
      // over a picture that moves.
      if (CentredOverStillPicture(c.box)) {
        regions.push_back(Region{RegionKind::kText, c.box, score, "scene_text", false});
        continue;
      }
      regions.push_back(
          Region{RegionKind::kWatermark, c.box, score, std::string(kTextMarkLabel), true});
      continue;
    }
    const bool horizontal = c.horizontal * 2 >= c.boxes;
    const double cy = c.box.y + c.box.height / 2.0;
    const double cx = c.box.x + c.box.width / 2.0;
    const bool persistent = static_cast<int>(c.frames.size()) * 2 >= n && n >= 2;
    const bool centred = std::abs(cx - size.width / 2.0) <= 0.2 * size.width;
    const bool bottom_band = cy >= 0.7 * size.height;
    const bool top_band = c.box.y + c.box.height <= 0.15 * size.height + 1;
    if (horizontal && bottom_band && (centred || c.frames.size() >= 2)) {
      subtitle.box = subtitle_boxes == 0 ? c.box : (subtitle.box | c.box);
      subtitle.score += score;
      ++subtitle_boxes;
    } else if (horizontal && top_band) {
      top_caption.box = top_boxes == 0 ? c.box : (top_caption.box | c.box);
      top_caption.score += score;
      ++top_boxes;
    } else if (persistent &&
               (cy < kCaptionBand * size.height || cy > (1.0 - kCaptionBand) * size.height) &&
               !CentredOverStillPicture(c.box)) {
      // Text that stays at one place in the upper or lower part of the frame, where overlays
      // go (a name, a place, a timecode); centred over a still picture it is the picture's own
      // (a title card's running timecode), as still titles above. Across the middle, text that
      // stays put is the scene's (a label on a bottle a still camera films).
      regions.push_back(Region{RegionKind::kText, c.box, score, "caption", true});
    } else {
      regions.push_back(Region{RegionKind::kText, c.box, score, "scene_text", false});
    }
  }
  if (subtitle_boxes > 0) {
    subtitle.score /= static_cast<float>(subtitle_boxes);
    regions.push_back(subtitle);
  }
  if (top_boxes > 0) {
    top_caption.score /= static_cast<float>(top_boxes);
    regions.push_back(top_caption);
  }
  return regions;
}

}  // namespace vsieve::models
