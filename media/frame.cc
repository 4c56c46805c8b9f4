#include "media/frame.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

namespace vsieve::media {

std::vector<const Frame*> FramesIn(const std::vector<Frame>& frames, double start_s, double end_s) {
  std::vector<const Frame*> out;
  for (const auto& frame : frames) {
    if (frame.time_s >= start_s && frame.time_s < end_s) out.push_back(&frame);
  }
  return out;
}

Frame ThinCopy(const Frame& frame, int max_side) {
  Frame thin = frame;
  thin.thin = true;
  const int long_side = std::max(frame.bgr.cols, frame.bgr.rows);
  if (max_side <= 0 || long_side <= max_side) return thin;
  const double f = static_cast<double>(max_side) / long_side;
  const cv::Size size(std::max(1, static_cast<int>(std::lround(frame.bgr.cols * f))),
                      std::max(1, static_cast<int>(std::lround(frame.bgr.rows * f))));
  cv::resize(frame.bgr, thin.bgr, size, 0, 0, cv::INTER_AREA);
  thin.analysis_scale = frame.analysis_scale * size.width / frame.bgr.cols;
  return thin;
}

std::vector<const Frame*> SelectEven(const std::vector<Frame>& frames, int count) {
  std::vector<const Frame*> pool;
  for (const auto& frame : frames) {
    if (!frame.thin) pool.push_back(&frame);
  }
  if (pool.empty()) {
    for (const auto& frame : frames) pool.push_back(&frame);
  }
  std::vector<const Frame*> out;
  const int n = static_cast<int>(pool.size());
  if (count <= 0 || n == 0) return out;
  if (count >= n) return pool;
  for (int k = 0; k < count; ++k) {
    const int i = static_cast<int>((static_cast<double>(k) + 0.5) * n / count);
    out.push_back(pool[static_cast<size_t>(std::min(i, n - 1))]);
  }
  return out;
}

}  // namespace vsieve::media
