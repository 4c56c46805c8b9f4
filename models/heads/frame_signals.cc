#include "models/heads/frame_signals.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

namespace vsieve::models {

double Sigmoid(double z) {
  if (!std::isfinite(z)) return z > 0 ? 1.0 : 0.0;
  return 1.0 / (1.0 + std::exp(-z));
}

double SoftAbove(double x, double center, double width) { return Sigmoid((x - center) / width); }

double SoftBelow(double x, double center, double width) {
  return 1.0 - SoftAbove(x, center, width);
}

double NoisyOr(const std::vector<double>& probs) {
  double none = 1.0;
  for (const double p : probs) none *= 1.0 - std::clamp(p, 0.0, 1.0);
  return 1.0 - none;
}

std::vector<int> EvenIndices(int n, int count) {
  std::vector<int> out;
  if (n <= 0 || count <= 0) return out;
  if (n <= count) {
    for (int i = 0; i < n; ++i) out.push_back(i);
    return out;
  }
  for (int k = 0; k < count; ++k) {
    const int index = static_cast<int>((k + 0.5) * n / count);
    if (out.empty() || out.back() != index) out.push_back(std::min(index, n - 1));
  }
  return out;
}

namespace {

cv::Mat ToGray(const cv::Mat& image) {
  cv::Mat gray;
  if (image.channels() == 3) {
    cv::cvtColor(image, gray, cv::COLOR_BGR2GRAY);
  } else if (image.channels() == 4) {
    cv::cvtColor(image, gray, cv::COLOR_BGRA2GRAY);
  } else {
    gray = image;
  }
  if (gray.depth() != CV_8U) gray.convertTo(gray, CV_8U);
  return gray;
}

// ToGray(), never sharing pixels with `image` (a conversion already made a new picture).
cv::Mat OwnedGray(const cv::Mat& image) {
  cv::Mat gray = ToGray(image);
  return gray.datastart == image.datastart ? gray.clone() : gray;
}

}  // namespace

cv::Mat GrayAtLongSide(const cv::Mat& bgr, int long_side) {
  if (bgr.empty()) return {};
  const int current = std::max(bgr.cols, bgr.rows);
  if (long_side <= 0 || long_side == current) return OwnedGray(bgr);
  const double factor = static_cast<double>(long_side) / current;
  const cv::Size size(std::max(1, static_cast<int>(std::lround(bgr.cols * factor))),
                      std::max(1, static_cast<int>(std::lround(bgr.rows * factor))));
  cv::Mat resized;
  // Resize the colour image first when shrinking: one conversion on fewer pixels.
  if (factor < 1.0) {
    cv::resize(bgr, resized, size, 0, 0, cv::INTER_AREA);
    return OwnedGray(resized);
  }
  cv::resize(ToGray(bgr), resized, size, 0, 0, cv::INTER_LINEAR);
  return resized;
}

cv::Mat GrayAtMostLongSide(const cv::Mat& bgr, int max_side) {
  if (bgr.empty()) return {};
  const int current = std::max(bgr.cols, bgr.rows);
  return GrayAtLongSide(bgr, current > max_side ? max_side : 0);
}

}  // namespace vsieve::models
