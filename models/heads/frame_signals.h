#pragma once

#include <opencv2/core.hpp>
#include <vector>

namespace vsieve::models {

// Small per-frame measures shared by the built-in heads. All functions are pure and thread-safe;
// none throws for empty or tiny images (they return neutral values instead).

// 1 / (1 + exp(-(x - center) / width)): rises through 0.5 at `center`, from 0.12 to 0.88 over
// center -/+ 2 * width. `width` must be positive.
double SoftAbove(double x, double center, double width);

// 1 - SoftAbove(x, center, width).
double SoftBelow(double x, double center, double width);

// 1 / (1 + exp(-z)).
double Sigmoid(double z);

// Noisy-OR of independent cue probabilities: 1 - prod(1 - p).
double NoisyOr(const std::vector<double>& probs);

// `count` indices spread evenly over [0, n) (all of them when n <= count), in increasing order.
std::vector<int> EvenIndices(int n, int count);

// The 8-bit grey version of a BGR (or already grey) image, resized so that its long side is
// `long_side` (area-averaged when shrinking, bilinear when enlarging). `long_side` <= 0 keeps
// the size. Returns an empty Mat for an empty input.
cv::Mat GrayAtLongSide(const cv::Mat& bgr, int long_side);

// The 8-bit grey version of a BGR image, shrunk (never enlarged) so that its long side is at
// most `max_side`.
cv::Mat GrayAtMostLongSide(const cv::Mat& bgr, int max_side);

}  // namespace vsieve::models
