#pragma once

#include <atomic>
#include <memory>
#include <mutex>
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
// text detection cheap. Thread-safe: calls on one detector are serialized (it owns one
// cv::dnn::Net, whose buffers for a 640x640 pass take about 100 MB). Errors: kModelFailed.
class TextDetector {
 public:
  static common::StatusOr<std::unique_ptr<TextDetector>> Load(const std::string& model_path);

  // A detector shared within the process: the filters of one process borrow at most
  // SharedNetCount() nets of `model_path`, handed out in turn (so two workers share one net on
  // a machine of two or three cores), which keeps resident memory down; a worker finding its
  // net busy waits for it (or does other work first: see Busy()). The net is freed with its
  // last user. Errors as Load().
  static common::StatusOr<std::shared_ptr<TextDetector>> LoadShared(const std::string& model_path);
  // How many nets LoadShared() keeps per model: half the hardware threads, at least one.
  static int SharedNetCount();

  common::StatusOr<std::vector<TextBox>> Detect(const cv::Mat& bgr);
  // Returns one list per image, boxes in that image's pixels.
  common::StatusOr<std::vector<std::vector<TextBox>>> DetectTiled(
      const std::vector<cv::Mat>& images);

  // True while a Detect() or DetectTiled() call runs (a hint: it may change at once).
  bool Busy() const { return busy_.load(std::memory_order_relaxed); }

 private:
  explicit TextDetector(cv::dnn::Net net) : net_(std::move(net)) {}
  common::StatusOr<cv::Mat> Forward(const cv::Mat& input640);  // returns the 640x640 prob map
  common::StatusOr<std::vector<std::vector<TextBox>>> DetectTiledLocked(
      const std::vector<cv::Mat>& images);

  std::mutex mutex_;  // held for the whole of a Detect() or DetectTiled() call
  std::atomic<bool> busy_{false};
  cv::dnn::Net net_;  // guarded by mutex_
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
