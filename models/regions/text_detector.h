#pragma once

#include <atomic>
#include <cstdint>
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

// PP-OCR's DB (differentiable binarisation) text detector through OpenCV DNN. Each image is
// letterboxed into a square pass of `side` pixels (the model was converted at 640; the filter
// runs it at 320, half resolution: four 320 passes cost about one 640 pass, and the net's
// buffers take about 25 MB instead of 100). DetectEach() puts two wide frames of one size (16:9,
// or portrait 9:16) into one pass, stacked, which halves the passes of a wide video at 87 % of
// the resolution (see PairCells()); an image's boxes then depend slightly on its neighbour, as
// the net sees both. A detector keeps the side it was loaded with: the converted graph gives an
// all-zero map once the input size changes. Thread-safe: calls on one detector are serialized
// (it owns one cv::dnn::Net). Errors: kModelFailed, kInvalidArgument (an empty or non-BGR image,
// a side that is not a multiple of 32).
class TextDetector {
 public:
  static constexpr int kDefaultSide = 320;
  static common::StatusOr<std::unique_ptr<TextDetector>> Load(const std::string& model_path,
                                                              int side = kDefaultSide);

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
  common::StatusOr<std::vector<std::vector<TextBox>>> DetectEach(
      const std::vector<cv::Mat>& images);

  // Where an image goes in a square pass, and the scale it is drawn at.
  struct Cell {
    cv::Rect rect;
    double scale = 1.0;
  };
  // An image alone in a pass of `side` pixels: its long side spans the pass.
  static Cell SingleCell(const cv::Size& size, int side);
  // Two images of `size` sharing a pass of `side` pixels: stacked when landscape, side by side
  // when portrait, kPairGap pixels apart. Empty when sharing would draw them with their long
  // side below kPairMinShare of the pass (4:3 and squarer pictures get a pass each).
  static std::vector<Cell> PairCells(const cv::Size& size, int side);
  static constexpr int kPairGap = 8;
  static constexpr double kPairMinShare = 0.85;

  // True while a Detect() or DetectEach() call runs (a hint: it may change at once).
  bool Busy() const { return busy_.load(std::memory_order_relaxed); }
  // Forward passes run so far (one per image, or per pair of wide images).
  int64_t passes() const { return passes_.load(std::memory_order_relaxed); }

 private:
  TextDetector(cv::dnn::Net net, int side) : side_(side), net_(std::move(net)) {}
  // The probability map of one square BGR input, of the input's size.
  common::StatusOr<cv::Mat> Forward(const cv::Mat& square);
  // One forward pass over `images` (one, or two that PairCells() placed), each drawn into its
  // cell of `cells`; boxes per image.
  common::StatusOr<std::vector<std::vector<TextBox>>> DetectPassLocked(
      const std::vector<const cv::Mat*>& images, const std::vector<Cell>& cells);

  std::mutex mutex_;  // held for the whole of a Detect() or DetectEach() call
  std::atomic<bool> busy_{false};
  std::atomic<int64_t> passes_{0};
  const int side_;
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
