#include "media/frame.h"

namespace vsieve::media {

std::vector<const Frame*> FramesIn(const std::vector<Frame>& frames, double start_s,
                                   double end_s) {
  std::vector<const Frame*> out;
  for (const auto& frame : frames) {
    if (frame.time_s >= start_s && frame.time_s < end_s) out.push_back(&frame);
  }
  return out;
}

std::vector<const Frame*> SelectEven(const std::vector<Frame>& frames, int count) {
  std::vector<const Frame*> out;
  const int n = static_cast<int>(frames.size());
  if (count <= 0 || n == 0) return out;
  if (count >= n) {
    for (const auto& frame : frames) out.push_back(&frame);
    return out;
  }
  for (int k = 0; k < count; ++k) {
    const int i = static_cast<int>((static_cast<double>(k) + 0.5) * n / count);
    out.push_back(&frames[std::min(i, n - 1)]);
  }
  return out;
}

}  // namespace vsieve::media
