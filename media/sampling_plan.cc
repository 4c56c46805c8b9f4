#include "media/sampling_plan.h"

#include <algorithm>
#include <cmath>

namespace vsieve::media {
namespace {

// A planned time and whether a consumer reads its frame in full (see SamplingPlan::full).
struct Planned {
  double t = 0.0;
  bool full = false;
  bool operator<(const Planned& other) const { return t < other.t; }
};

// Adds `count` times at the centres of equal bins of [start, end).
void AddCentres(double start, double end, int count, bool full, std::vector<Planned>* times) {
  if (count <= 0 || end <= start) return;
  const double step = (end - start) / count;
  for (int k = 0; k < count; ++k) times->push_back({start + (k + 0.5) * step, full});
}

}  // namespace

SamplingPlan BuildSamplingPlan(const VideoMeta& meta, const SamplingOptions& options) {
  SamplingPlan plan;
  double duration = meta.duration_s;
  if (!(duration > 0.0) && meta.fps > 0.0 && meta.frame_count > 0) {
    duration = static_cast<double>(meta.frame_count) / meta.fps;
  }
  if (!(duration > 0.0)) {
    plan.times_s.push_back(0.0);  // a still image or unknown length: the first frame only
    plan.full.push_back(true);
    return plan;
  }

  // Sliding windows [k*stride, k*stride + window) that fit in the clip; one short window when
  // the clip is shorter than a window.
  if (options.window_s > 0.0 && options.stride_s > 0.0) {
    if (duration < options.window_s) {
      plan.windows.push_back({0.0, duration});
    } else {
      for (double start = 0.0; start + options.window_s <= duration + 1e-6;
           start += options.stride_s) {
        plan.windows.push_back({start, start + options.window_s});
      }
    }
  }

  std::vector<Planned> times;
  // The frames read in full: region detection and the whole-clip heads both pick from them.
  const int full_frames = std::max(options.region_frames, options.clip_frames);
  AddCentres(0.0, duration, full_frames, true, &times);

  // Frames per window within the budget: at least two (motion needs a pair), thinning the
  // windows themselves only when even two each would not fit.
  const int budget = std::max(
      0, options.max_frames - full_frames - options.bursts * std::max(0, options.burst_length));
  const int window_count = static_cast<int>(plan.windows.size());
  if (window_count > 0 && options.window_frames > 0) {
    int per_window = std::clamp(budget / window_count, 2, std::max(2, options.window_frames));
    per_window = std::min(per_window, options.window_frames);
    int stride = 1;
    while (window_count / stride * per_window > std::max(budget, per_window)) ++stride;
    for (int w = 0; w < window_count; w += stride) {
      // Centres on a grid of `window_s / per_window` anchored at 0, so overlapping windows
      // share frames instead of adding near-duplicates.
      const double step = options.window_s / per_window;
      const auto& win = plan.windows[w];
      const double first = std::ceil((win.start_s - 0.5 * step) / step - 1e-9);
      for (int k = 0; k < per_window; ++k) {
        const double t = (first + k + 0.5) * step;
        if (t >= win.start_s && t < win.end_s) times.push_back({t, false});
      }
    }
  }

  // Bursts: `burst_length` neighbouring frames from the centres of equal bins (needs the frame
  // rate to know where the neighbours are).
  if (meta.fps > 0.0 && options.burst_length > 1) {
    std::vector<Planned> starts;
    AddCentres(0.0, duration, options.bursts, false, &starts);
    for (const Planned& start : starts) {
      for (int j = 0; j < options.burst_length; ++j) {
        times.push_back({start.t + j / meta.fps, false});
      }
    }
  }

  std::stable_sort(times.begin(), times.end());
  // Merge times closer than half a frame: they would decode to the same frame, read in full
  // when any of them is.
  const double tolerance = meta.fps > 0.0 ? 0.5 / meta.fps : 1e-3;
  for (const Planned& p : times) {
    if (p.t < 0.0 || p.t >= duration) continue;
    if (plan.times_s.empty() || p.t - plan.times_s.back() >= tolerance) {
      plan.times_s.push_back(p.t);
      plan.full.push_back(p.full);
    } else if (p.full) {
      plan.full.back() = true;
    }
  }
  if (static_cast<int>(plan.times_s.size()) > options.max_frames && options.max_frames > 0) {
    SamplingPlan thinned;
    const int n = static_cast<int>(plan.times_s.size());
    for (int k = 0; k < options.max_frames; ++k) {
      const size_t i = static_cast<size_t>(k) * n / options.max_frames;
      thinned.times_s.push_back(plan.times_s[i]);
      thinned.full.push_back(plan.full[i]);
    }
    plan.times_s = std::move(thinned.times_s);
    plan.full = std::move(thinned.full);
  }
  if (plan.times_s.empty()) {
    plan.times_s.push_back(0.0);
    plan.full.push_back(true);
  }
  return plan;
}

}  // namespace vsieve::media
