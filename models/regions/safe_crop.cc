#include "models/regions/safe_crop.h"

#include <algorithm>
#include <cmath>

namespace vsieve::models {
namespace {

// Fits the largest rectangle of `aspect` (width / height) into `free`, centred in it.
cv::Rect FitAspect(const cv::Rect& free, double aspect) {
  if (free.empty()) return {};
  int w = free.width;
  int h = static_cast<int>(std::floor(w / aspect));
  if (h > free.height) {
    h = free.height;
    w = static_cast<int>(std::floor(h * aspect));
  }
  if (w <= 0 || h <= 0) return {};
  return cv::Rect(free.x + (free.width - w) / 2, free.y + (free.height - h) / 2, w, h);
}

}  // namespace

cv::Rect SafeCrop(const cv::Size& frame_size, const std::vector<Region>& regions,
                  const CropOptions& options) {
  const cv::Rect frame(cv::Point(0, 0), frame_size);
  if (frame.empty()) return {};
  // Work on the grid cut by the avoided boxes' edges (at most 2n+1 cells a side), so the cost
  // does not depend on the frame size.
  std::vector<cv::Rect> boxes;
  std::vector<int> xs{0, frame_size.width};
  std::vector<int> ys{0, frame_size.height};
  for (const Region& region : regions) {
    if (!region.avoid) continue;
    const cv::Rect box = region.box & frame;
    if (box.empty()) continue;
    boxes.push_back(box);
    xs.push_back(box.x);
    xs.push_back(box.x + box.width);
    ys.push_back(box.y);
    ys.push_back(box.y + box.height);
  }
  const bool keep_aspect = options.aspect > 0.0;
  if (boxes.empty()) return keep_aspect ? FitAspect(frame, options.aspect) : frame;
  std::sort(xs.begin(), xs.end());
  xs.erase(std::unique(xs.begin(), xs.end()), xs.end());
  std::sort(ys.begin(), ys.end());
  ys.erase(std::unique(ys.begin(), ys.end()), ys.end());
  const int cols = static_cast<int>(xs.size()) - 1;
  const int rows = static_cast<int>(ys.size()) - 1;

  // blocked[r][c]: the grid cell is covered by an avoided box.
  std::vector<std::vector<char>> blocked(rows, std::vector<char>(cols, 0));
  for (const cv::Rect& box : boxes) {
    const int c0 = static_cast<int>(std::lower_bound(xs.begin(), xs.end(), box.x) - xs.begin());
    const int c1 =
        static_cast<int>(std::lower_bound(xs.begin(), xs.end(), box.x + box.width) - xs.begin());
    const int r0 = static_cast<int>(std::lower_bound(ys.begin(), ys.end(), box.y) - ys.begin());
    const int r1 =
        static_cast<int>(std::lower_bound(ys.begin(), ys.end(), box.y + box.height) - ys.begin());
    for (int r = r0; r < r1; ++r) {
      for (int c = c0; c < c1; ++c) blocked[r][c] = 1;
    }
  }

  // Largest rectangle in a histogram, row by row; heights are in pixels, columns have widths.
  // Every maximal free rectangle is one of the candidates, so fitting the aspect into each
  // candidate finds the largest rectangle of that aspect too.
  std::vector<int> height(cols, 0);  // free pixels above and including this grid row
  cv::Rect best;
  int64_t best_area = 0;
  auto consider = [&](int c_begin, int c_end, int r_bottom, int h) {
    if (h <= 0 || c_end <= c_begin) return;
    const int y1 = ys[r_bottom + 1];
    cv::Rect candidate(xs[c_begin], y1 - h, xs[c_end] - xs[c_begin], h);
    if (keep_aspect) candidate = FitAspect(candidate, options.aspect);
    const int64_t area = static_cast<int64_t>(candidate.width) * candidate.height;
    if (area > best_area) {
      best_area = area;
      best = candidate;
    }
  };
  std::vector<int> stack;
  for (int r = 0; r < rows; ++r) {
    const int row_h = ys[r + 1] - ys[r];
    for (int c = 0; c < cols; ++c) height[c] = blocked[r][c] ? 0 : height[c] + row_h;
    stack.clear();
    for (int c = 0; c <= cols; ++c) {
      const int h = c < cols ? height[c] : 0;
      while (!stack.empty() && height[stack.back()] >= h) {
        const int top = stack.back();
        stack.pop_back();
        const int begin = stack.empty() ? 0 : stack.back() + 1;
        consider(begin, c, r, height[top]);
      }
      stack.push_back(c);
    }
  }
  return best;
}

}  // namespace vsieve::models
