#pragma once

#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <string>
#include <vector>

#include "common/status.h"

namespace vsieve::models {

// One line of text found by the DB detector, in the pixels of the image it was given.
struct TextBox {
  cv::RotatedRect rect;  // minimum-area rectangle of the text blob
  cv::Rect box;          // its axis-aligned bounding box, clipped to the image
  float score = 0.0F;    // mean text probability inside the blob
};

// PP-OCR's DB (differentiable binarisation) text detector through OpenCV DNN. The model takes
// 1x3x640x640; Detect() letterboxes each image into that input. DetectTiled() packs up to four
// images (2x2, each at half resolution) into one forward pass, which is how the filter keeps
// text detection cheap. Not thread-safe (owns a cv::dnn::Net). Errors: kModelFailed.
class TextDetector {
 public:
  static common::StatusOr<std::unique_ptr<TextDetector>> Load(const std::string& model_path);

  common::StatusOr<std::vector<TextBox>> Detect(const cv::Mat& bgr);
  // Returns one list per image, boxes in that image's pixels.
  common::StatusOr<std::vector<std::vector<TextBox>>> DetectTiled(
      const std::vector<cv::Mat>& images);

 private:
  explicit TextDetector(cv::dnn::Net net) : net_(std::move(net)) {}
  common::StatusOr<cv::Mat> Forward(const cv::Mat& input640);  // returns the 640x640 prob map
  cv::dnn::Net net_;
};

// PP-OCR's text-line angle classifier (0 vs 180 degrees), 1x3x48x192. Not thread-safe.
class TextAngleClassifier {
 public:
  static common::StatusOr<std::unique_ptr<TextAngleClassifier>> Load(const std::string& model_path);
  // Probability that the text line in `line_bgr` (cut out, wider than tall) is upside down.
  common::StatusOr<float> UpsideDownProbability(const cv::Mat& line_bgr);

 private:
  explicit TextAngleClassifier(cv::dnn::Net net) : net_(std::move(net)) {}
  cv::dnn::Net net_;
};

}  // namespace vsieve::models
