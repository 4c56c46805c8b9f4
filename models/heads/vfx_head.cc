// VfxHead: flashes, strobing, colour inversions, dense hard cuts and saturated colour effects.
//
// Every frame is reduced to a 64-px grey thumbnail (mean luma, a 32-bin luma histogram, a
// high-pass copy) and an HSV saturation statistic. Cues, each a probability from a soft
// threshold on a quantity with a physical meaning (luma in 0..255 levels):
//   flash     a frame at least ~40 levels brighter than both neighbours, while the neighbours
//             show the same scene (their histograms agree): light that comes and goes.
//   strobe    runs of three luma steps of more than ~25 levels alternating in sign.
//   inversion a frame that is the negative of the previous one: the correlation of the two
//             thumbnails is strongly negative both on the low-pass picture and on its edges.
//   cuts      hard cuts (luma-histogram Bhattacharyya distance above ~0.5) per second, estimated
//             from the share of sampled intervals that hold a cut (Poisson: rate = -ln(1-p)/dt)
//             and trusted only as far as the sampling interval allows (dt <= ~2 s).
//   colour    pictures mostly made of strongly saturated, bright pixels whose hue histogram
//             shifts by more than ~40% between samples, in most intervals (colour cycling).
//   flicker   on pairs of neighbouring frames (the sampling plan's bursts, 1/fps apart): the
//             pairs whose mean luma jumps by more than ~20 levels or whose picture inverts:
//             at least two such pairs and a share above ~0.1 (a hard cut seldom falls between
//             two neighbours, twice even less): strobing at or near frame rate, which sparse
//             samples alias away. The other cues read only the sparse samples.
//   hue turn  on neighbouring pairs: all colours turned one way around the grey axis (the angle
//             of sum c1 conj(c0) over the thumbnail's chroma c = Cb + i Cr, coherent over the
//             picture) by more than ~4 degrees, in most pairs: hue cycling, which the sparse
//             samples alias into random hue changes, on pictures of any saturation.
//   jumps     the share of sparse intervals whose mean luma swings by more than ~50 levels,
//             above ~0.3: strobing between frame rate and sampling rate, aliased into irregular
//             swings that the alternation test misses.
// The clip's VFX probability is the noisy-OR of the cues.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <opencv2/imgproc.hpp>

#include "models/heads/builtin_heads.h"
#include "models/heads/frame_signals.h"

namespace vsieve::models {
namespace {

constexpr int kThumbSide = 64;

struct FrameStats {
  double mean = 0.0;
  double stddev = 0.0;
  cv::Mat hist;                   // 32-bin luma histogram, CV_32F, sums to 1
  cv::Mat low;                    // CV_32F thumbnail, mean removed
  cv::Mat high;                   // CV_32F thumbnail minus its blur
  double vivid = 0.0;             // share of pixels with S > 150 and V > 100
  std::vector<double> hue_share;  // hue histogram of the vivid pixels (12 bins), sums to 1
  cv::Mat chroma;                 // CV_32FC2 thumbnail: (Cb - 128, Cr - 128)
};

FrameStats Measure(const cv::Mat& bgr) {
  FrameStats s;
  cv::Mat small;
  const int long_side = std::max(bgr.cols, bgr.rows);
  if (long_side > kThumbSide) {
    const double f = static_cast<double>(kThumbSide) / long_side;
    cv::resize(bgr, small,
               cv::Size(std::max(1, static_cast<int>(bgr.cols * f)),
                        std::max(1, static_cast<int>(bgr.rows * f))),
               0, 0, cv::INTER_AREA);
  } else {
    small = bgr;
  }
  cv::Mat gray;
  cv::cvtColor(small, gray, cv::COLOR_BGR2GRAY);
  cv::Scalar mean;
  cv::Scalar stddev;
  cv::meanStdDev(gray, mean, stddev);
  s.mean = mean[0];
  s.stddev = stddev[0];
  const int channels[] = {0};
  const int bins[] = {32};
  const float range[] = {0.0F, 256.0F};
  const float* ranges[] = {range};
  cv::calcHist(&gray, 1, channels, cv::Mat(), s.hist, 1, bins, ranges);
  s.hist /= std::max(1.0, static_cast<double>(gray.total()));
  gray.convertTo(s.low, CV_32F);
  s.low -= s.mean;
  cv::Mat blurred;
  cv::GaussianBlur(s.low, blurred, cv::Size(0, 0), 2.0);
  s.high = s.low - blurred;

  cv::Mat ycrcb;
  cv::cvtColor(small, ycrcb, cv::COLOR_BGR2YCrCb);
  cv::Mat planes[3];
  cv::split(ycrcb, planes);
  cv::Mat cb;
  cv::Mat cr;
  planes[2].convertTo(cb, CV_32F, 1.0, -128.0);
  planes[1].convertTo(cr, CV_32F, 1.0, -128.0);
  cv::merge(std::vector<cv::Mat>{cb, cr}, s.chroma);

  cv::Mat hsv;
  cv::cvtColor(small, hsv, cv::COLOR_BGR2HSV);
  std::vector<double> hue_bins(12, 0.0);
  int vivid = 0;
  for (int y = 0; y < hsv.rows; ++y) {
    const cv::Vec3b* row = hsv.ptr<cv::Vec3b>(y);
    for (int x = 0; x < hsv.cols; ++x) {
      if (row[x][1] > 150 && row[x][2] > 100) {
        ++vivid;
        hue_bins[std::min(11, row[x][0] / 15)] += 1.0;
      }
    }
  }
  s.vivid = static_cast<double>(vivid) / std::max<size_t>(1, hsv.total());
  for (double& c : hue_bins) c /= std::max(1, vivid);
  s.hue_share = std::move(hue_bins);
  return s;
}

// Pearson correlation of two zero-mean thumbnails; 0 when either is flat or sizes differ.
double Correlation(const cv::Mat& a, const cv::Mat& b) {
  if (a.size() != b.size() || a.empty()) return 0.0;
  const double ab = a.dot(b);
  const double aa = a.dot(a);
  const double bb = b.dot(b);
  const double n = static_cast<double>(a.total());
  // Below ~2 levels of rms contrast the correlation is noise.
  if (aa < 4.0 * n || bb < 4.0 * n) return 0.0;
  return ab / std::sqrt(aa * bb);
}

// How far the colours of `b` are turned from those of `a` around the grey axis, in degrees
// (positive: Cb towards Cr), and how coherently: the angle of the sum over pixels of
// c_b * conj(c_a), with c = Cb + i Cr, and that sum's magnitude over the sum of |c_a| |c_b|
// (1: every pixel turned alike). Moving content shifts colours between pixels; it does not
// turn them all one way. `weight` gets the mean |c_a| |c_b| (how colourful the pair is).
double ChromaTurn(const cv::Mat& a, const cv::Mat& b, double* coherence, double* weight) {
  *coherence = 0.0;
  *weight = 0.0;
  if (a.size() != b.size() || a.empty()) return 0.0;
  double re = 0.0;
  double im = 0.0;
  double norm = 0.0;
  for (int y = 0; y < a.rows; ++y) {
    const cv::Vec2f* pa = a.ptr<cv::Vec2f>(y);
    const cv::Vec2f* pb = b.ptr<cv::Vec2f>(y);
    for (int x = 0; x < a.cols; ++x) {
      re += pb[x][0] * pa[x][0] + pb[x][1] * pa[x][1];
      im += pb[x][1] * pa[x][0] - pb[x][0] * pa[x][1];
      norm += std::hypot(pa[x][0], pa[x][1]) * std::hypot(pb[x][0], pb[x][1]);
    }
  }
  if (norm <= 0.0) return 0.0;
  *coherence = std::hypot(re, im) / norm;
  *weight = norm / static_cast<double>(a.total());
  return std::atan2(im, re) * 180.0 / CV_PI;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::nth_element(v.begin(), v.begin() + static_cast<long>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

}  // namespace

VfxHead::VfxHead() : name_("vfx_filter"), labels_({"VFX_video", "normal_video"}) {}

common::StatusOr<HeadOutput> VfxHead::Run(const HeadInput& input) {
  std::vector<FrameStats> stats;
  std::vector<double> stat_times;  // matches `stats`
  stats.reserve(input.frames.size());
  try {
    for (size_t i = 0; i < input.frames.size(); ++i) {
      const cv::Mat& frame = input.frames[i];
      if (frame.empty() || frame.channels() != 3) continue;
      stats.push_back(Measure(frame));
      stat_times.push_back(i < input.times_s.size() ? input.times_s[i] : static_cast<double>(i));
    }
  } catch (const cv::Exception& e) {
    return common::Status(common::ErrorCode::kModelFailed, std::string("vfx: ") + e.what());
  }
  // Frames closer than ~1.5 frame intervals are neighbours in the video (the sampling plan's
  // bursts): flicker is measured on those pairs, at the video's own frame rate, since strobing
  // faster than the sampling interval is invisible (aliased) between sparse samples. The other
  // cues read the sparse sequence: the first frame of each burst and the single samples.
  const double fps = input.meta != nullptr && input.meta->fps > 0.0 ? input.meta->fps : 25.0;
  const double neighbour_gap = 1.5 / fps;
  std::vector<double> times;
  std::vector<FrameStats> sparse_stats;
  double flicker_evidence = 0.0;
  int neighbour_pairs = 0;
  std::vector<double> turns;
  std::vector<double> turn_coherence;
  std::vector<double> turn_weight;
  for (size_t i = 0; i < stats.size(); ++i) {
    const double t = stat_times[i];
    const bool neighbour = i > 0 && std::abs(t - stat_times[i - 1]) <= neighbour_gap;
    if (neighbour) {
      ++neighbour_pairs;
      const double jump = std::abs(stats[i].mean - stats[i - 1].mean);
      const bool inverted = Correlation(stats[i - 1].low, stats[i].low) < -0.5;
      flicker_evidence += std::max(SoftAbove(jump, 20.0, 4.0), inverted ? 1.0 : 0.0);
      double coherence = 0.0;
      double weight = 0.0;
      turns.push_back(ChromaTurn(stats[i - 1].chroma, stats[i].chroma, &coherence, &weight));
      turn_coherence.push_back(coherence);
      turn_weight.push_back(weight);
      continue;
    }
    times.push_back(t);
    sparse_stats.push_back(stats[i]);
  }
  stats = std::move(sparse_stats);
  const size_t n = stats.size();
  const double flicker_share = neighbour_pairs > 0 ? flicker_evidence / neighbour_pairs : 0.0;
  // Neighbouring frames of ordinary video differ by a few levels; a hard cut lands between two
  // neighbours rarely, and twice much more rarely. Several jumping pairs mean light or polarity
  // changing at or near frame rate.
  const double p_flicker =
      SoftAbove(flicker_evidence, 1.5, 0.3) * SoftAbove(flicker_share, 0.1, 0.03);

  // Pairwise measures between consecutive sampled frames.
  std::vector<double> step;  // luma step, next - previous
  std::vector<double> dist;  // Bhattacharyya distance of the luma histograms
  int inversions = 0;
  for (size_t i = 1; i < n; ++i) {
    step.push_back(stats[i].mean - stats[i - 1].mean);
    dist.push_back(cv::compareHist(stats[i - 1].hist, stats[i].hist, cv::HISTCMP_BHATTACHARYYA));
    const double low = Correlation(stats[i - 1].low, stats[i].low);
    const double high = Correlation(stats[i - 1].high, stats[i].high);
    if (low < -0.5 && high < -0.3) ++inversions;
  }

  // Flashes: up by > ~40 levels from both neighbours, neighbours alike.
  double flash_evidence = 0.0;
  for (size_t i = 1; i + 1 < n; ++i) {
    const double rise =
        std::min(stats[i].mean - stats[i - 1].mean, stats[i].mean - stats[i + 1].mean);
    const double same_scene =
        SoftBelow(cv::compareHist(stats[i - 1].hist, stats[i + 1].hist, cv::HISTCMP_BHATTACHARYYA),
                  0.35, 0.08);
    flash_evidence += SoftAbove(rise, 40.0, 6.0) * same_scene;
  }
  // Strobing: three or more large luma steps in a row, alternating in sign (up-down-up). One
  // dip and recovery is a camera's exposure control reacting to a bright object, not a strobe.
  double strobe_evidence = 0.0;
  for (size_t i = 1; i + 1 < step.size(); ++i) {
    if (step[i] * step[i - 1] >= 0 || step[i] * step[i + 1] >= 0) continue;
    const double smallest =
        std::min({std::abs(step[i - 1]), std::abs(step[i]), std::abs(step[i + 1])});
    strobe_evidence += SoftAbove(smallest, 25.0, 4.0);
  }

  // Cut rate from the share of intervals that hold a hard cut.
  double cut_pairs = 0.0;
  for (const double d : dist) cut_pairs += SoftAbove(d, 0.5, 0.06);
  std::vector<double> gaps;
  for (size_t i = 1; i < times.size(); ++i) gaps.push_back(std::abs(times[i] - times[i - 1]));
  const double dt = gaps.empty() ? 1.0 : std::max(0.04, Median(gaps));
  double cut_rate = 0.0;
  double p_cuts = 0.0;
  if (!dist.empty()) {
    const double pairs = static_cast<double>(dist.size());
    const double share = std::min(cut_pairs / pairs, (pairs - 0.5) / pairs);
    cut_rate = -std::log(1.0 - share) / dt;
    // A cut in most intervals of <= ~2 s means more than one cut a second; longer intervals
    // cannot tell an edited film from a dense montage.
    const double trust = SoftBelow(dt, 2.0, 0.3) * SoftAbove(pairs, 3.5, 0.7);
    p_cuts = SoftAbove(cut_rate, 1.0, 0.2) * trust;
  }

  // Saturated colour effects: pictures mostly made of vivid colour whose hues shift wholesale
  // from one sample to the next (colour cycling), in most intervals. Colourful content that
  // keeps its colours (graphics, a flower) does not count.
  std::vector<double> colour;
  for (size_t i = 1; i < n; ++i) {
    double moved = 0.0;
    for (size_t b = 0; b < stats[i].hue_share.size(); ++b) {
      moved += std::abs(stats[i].hue_share[b] - stats[i - 1].hue_share[b]);
    }
    colour.push_back(SoftAbove(std::min(stats[i].vivid, stats[i - 1].vivid), 0.3, 0.06) *
                     SoftAbove(0.5 * moved, 0.4, 0.07));
  }
  const double p_colour = colour.empty() ? 0.0 : Median(colour);

  // Luma jumps: the brightness of the whole picture swinging by more than ~50 levels between
  // samples in a large share of intervals. Strobing slower than frame rate but faster than the
  // sampling interval aliases into irregular swings, which the alternation test above misses.
  double jump_evidence = 0.0;
  for (const double st : step) jump_evidence += SoftAbove(std::abs(st), 50.0, 8.0);
  const double jump_share = step.empty() ? 0.0 : jump_evidence / static_cast<double>(step.size());
  const double p_jumps =
      SoftAbove(jump_share, 0.3, 0.07) * SoftAbove(static_cast<double>(step.size()), 3.5, 0.7);

  // Hue turning: neighbouring frames whose colours all turn the same way around the grey axis
  // by more than ~4 degrees (100 degrees a second at 25 fps), in more than ~60 % of the pairs
  // and one direction. Moving content moves colours about without turning them; a white-balance
  // step turns a colour cast once; a fractal zoom's palette bands turn some pairs (up to ~30 %).
  // Needs some colour: a mean |chroma| product above ~6 (chroma ~2.5 levels).
  double turn_up = 0.0;
  double turn_down = 0.0;
  for (size_t i = 0; i < turns.size(); ++i) {
    const double e = SoftAbove(std::abs(turns[i]), 4.0, 1.0) *
                     SoftAbove(turn_coherence[i], 0.7, 0.05) * SoftAbove(turn_weight[i], 6.0, 1.5);
    (turns[i] > 0 ? turn_up : turn_down) += e;
  }
  const double turn_evidence = std::max(turn_up, turn_down);
  const double turn_share = neighbour_pairs > 0 ? turn_evidence / neighbour_pairs : 0.0;
  const double p_turn = SoftAbove(turn_share, 0.6, 0.08) * SoftAbove(turn_evidence, 2.5, 0.5);

  const double p_flash = 1.0 - std::exp(-0.7 * flash_evidence);
  const double p_strobe = 1.0 - std::exp(-0.8 * strobe_evidence);
  const double p_invert = inversions >= 2 ? 0.95 : (inversions == 1 ? 0.7 : 0.0);
  const double p_vfx = std::clamp(
      NoisyOr({p_flash, p_strobe, p_invert, p_cuts, p_colour, p_flicker, p_jumps, p_turn}), 0.01,
      0.99);

  nlohmann::json scores = {{"flashes", flash_evidence},      {"strobe", strobe_evidence},
                           {"inversions", inversions},       {"cuts_per_s", cut_rate},
                           {"cut_intervals", cut_pairs},     {"colour", p_colour},
                           {"flicker_share", flicker_share}, {"neighbour_pairs", neighbour_pairs},
                           {"luma_jump_share", jump_share},  {"hue_turn_share", turn_share}};
  return MakeHeadOutput({{labels_[0], p_vfx}, {labels_[1], 1.0 - p_vfx}}, std::move(scores));
}

}  // namespace vsieve::models
