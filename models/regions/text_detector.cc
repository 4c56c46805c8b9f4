#include "models/regions/text_detector.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <opencv2/imgproc.hpp>
#include <thread>
#include <utility>

namespace vsieve::models {
namespace {

using common::ErrorCode;
using common::Status;
using common::StatusOr;

// The converted PP-OCRv4 graph runs at any square size, but only at the first size it ran at:
// a later pass at another size gives an all-zero probability map (OpenCV 4.6 keeps the shapes
// of its first pass), as does any non-square input. So a detector keeps one square side.
// DB post-processing, as PaddleOCR's defaults (det_db_thresh, det_db_box_thresh,
// det_db_unclip_ratio).
constexpr float kBinaryThreshold = 0.3F;
constexpr float kBoxThreshold = 0.5F;
constexpr float kUnclipRatio = 1.5F;
constexpr float kMinSide = 3.0F;

// PaddleOCR's det NormalizeImage: (x / 255 - mean) / std, applied in the channel order cv2 read
// the image (BGR), so the first mean goes with blue.
const cv::Scalar kDetMean(0.485, 0.456, 0.406);
const cv::Scalar kDetStd(0.229, 0.224, 0.225);

constexpr int kClsHeight = 48;
constexpr int kClsWidth = 192;

Status ModelError(const std::string& what, const cv::Exception& e) {
  return Status(ErrorCode::kModelFailed, what + ": " + e.what());
}

// Holds the busy flag of a detector for the length of one call.
class BusyScope {
 public:
  explicit BusyScope(std::atomic<bool>* busy) : busy_(busy) { busy_->store(true); }
  ~BusyScope() { busy_->store(false); }
  BusyScope(const BusyScope&) = delete;
  BusyScope& operator=(const BusyScope&) = delete;

 private:
  std::atomic<bool>* busy_;
};

using Cell = TextDetector::Cell;

Cell PlaceAt(const cv::Size& size, double scale, cv::Point origin) {
  Cell cell;
  cell.scale = scale;
  cell.rect =
      cv::Rect(origin, cv::Size(std::max(1, static_cast<int>(std::lround(size.width * scale))),
                                std::max(1, static_cast<int>(std::lround(size.height * scale)))));
  return cell;
}

}  // namespace

TextDetector::Cell TextDetector::SingleCell(const cv::Size& size, int side) {
  const double scale = static_cast<double>(side) / std::max(size.width, size.height);
  Cell cell = PlaceAt(size, scale, cv::Point(0, 0));
  cell.rect &= cv::Rect(0, 0, side, side);
  return cell;
}

std::vector<TextDetector::Cell> TextDetector::PairCells(const cv::Size& size, int side) {
  const bool landscape = size.width >= size.height;
  const int along = landscape ? size.width : size.height;   // the side that spans the pass
  const int across = landscape ? size.height : size.width;  // the side the two share
  const int half = (side - kPairGap) / 2;
  const double scale =
      std::min(static_cast<double>(side) / along, static_cast<double>(half) / across);
  if (along * scale < kPairMinShare * side) return {};
  const int drawn_across = static_cast<int>(std::lround(across * scale));
  const cv::Point second =
      landscape ? cv::Point(0, side - drawn_across) : cv::Point(side - drawn_across, 0);
  std::vector<Cell> cells = {PlaceAt(size, scale, cv::Point(0, 0)), PlaceAt(size, scale, second)};
  for (Cell& c : cells) c.rect &= cv::Rect(0, 0, side, side);
  return cells;
}

namespace {

// Mean probability inside the contour, over its bounding box.
float ContourScore(const cv::Mat& prob, const std::vector<cv::Point>& contour) {
  const cv::Rect bounds = cv::boundingRect(contour) & cv::Rect(0, 0, prob.cols, prob.rows);
  if (bounds.empty()) return 0.0F;
  cv::Mat mask = cv::Mat::zeros(bounds.size(), CV_8UC1);
  std::vector<std::vector<cv::Point>> shifted(1);
  shifted[0].reserve(contour.size());
  for (const auto& p : contour) shifted[0].push_back(p - bounds.tl());
  cv::fillPoly(mask, shifted, cv::Scalar(1));
  return static_cast<float>(cv::mean(prob(bounds), mask)[0]);
}

// DB post-processing of one probability map (or one cell of it). Boxes are scaled by
// 1/`scale` into the pixels of the source image and clipped to `image_size`.
std::vector<TextBox> BoxesFromProb(const cv::Mat& prob, double scale, const cv::Size& image_size) {
  std::vector<TextBox> boxes;
  cv::Mat bitmap = prob > kBinaryThreshold;
  std::vector<std::vector<cv::Point>> contours;
  cv::findContours(bitmap, contours, cv::RETR_LIST, cv::CHAIN_APPROX_SIMPLE);
  const cv::Rect image_rect(cv::Point(0, 0), image_size);
  for (const auto& contour : contours) {
    if (contour.size() < 4) continue;
    cv::RotatedRect rect = cv::minAreaRect(contour);
    if (std::min(rect.size.width, rect.size.height) < kMinSide) continue;
    const float score = ContourScore(prob, contour);
    if (score < kBoxThreshold) continue;
    // Unclip: grow the rectangle by area * ratio / perimeter on every side, as DB does with a
    // polygon offset.
    const float w = rect.size.width;
    const float h = rect.size.height;
    const float distance = w * h * kUnclipRatio / (2.0F * (w + h));
    rect.size.width = w + 2.0F * distance;
    rect.size.height = h + 2.0F * distance;
    if (std::min(rect.size.width, rect.size.height) < kMinSide + 2.0F) continue;
    const auto inv = static_cast<float>(1.0 / scale);
    TextBox box;
    box.rect = cv::RotatedRect(
        rect.center * inv, cv::Size2f(rect.size.width * inv, rect.size.height * inv), rect.angle);
    box.box = box.rect.boundingRect() & image_rect;
    box.score = score;
    if (!box.box.empty()) boxes.push_back(box);
  }
  return boxes;
}

}  // namespace

StatusOr<std::unique_ptr<TextDetector>> TextDetector::Load(const std::string& model_path,
                                                           int side) {
  if (side < 32 || side % 32 != 0) {
    return Status(ErrorCode::kInvalidArgument,
                  "text detector side must be a multiple of 32, got " + std::to_string(side));
  }
  try {
    cv::dnn::Net net = cv::dnn::readNetFromONNX(model_path);
    if (net.empty()) return Status(ErrorCode::kModelFailed, "empty net from " + model_path);
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    return std::unique_ptr<TextDetector>(new TextDetector(std::move(net), side));
  } catch (const cv::Exception& e) {
    return ModelError("loading text detector " + model_path, e);
  }
}

int TextDetector::SharedNetCount() {
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency() / 2));
}

StatusOr<std::shared_ptr<TextDetector>> TextDetector::LoadShared(const std::string& model_path) {
  struct Shared {
    std::vector<std::weak_ptr<TextDetector>> nets;
    size_t next = 0;  // the net the next caller gets
  };
  static std::mutex mutex;
  static std::map<std::string, Shared> shared;  // weak references only: nothing outlives users
  std::lock_guard lock(mutex);  // loading under the lock: the next caller may get this net
  Shared& entry = shared[model_path];
  entry.nets.resize(static_cast<size_t>(SharedNetCount()));
  const size_t slot = entry.next++ % entry.nets.size();
  if (std::shared_ptr<TextDetector> net = entry.nets[slot].lock()) return net;
  VSIEVE_ASSIGN_OR_RETURN(std::unique_ptr<TextDetector> loaded, Load(model_path));
  std::shared_ptr<TextDetector> net(std::move(loaded));
  entry.nets[slot] = net;
  return net;
}

StatusOr<cv::Mat> TextDetector::Forward(const cv::Mat& square) {
  try {
    cv::Mat input;
    square.convertTo(input, CV_32FC3, 1.0 / 255.0);
    cv::subtract(input, kDetMean, input);
    cv::divide(input, kDetStd, input);
    cv::Mat blob = cv::dnn::blobFromImage(input);
    net_.setInput(blob);
    cv::Mat out = net_.forward();
    if (out.total() != square.total()) {
      return Status(ErrorCode::kModelFailed,
                    "text detector output has " + std::to_string(out.total()) + " values");
    }
    return cv::Mat(square.rows, square.cols, CV_32FC1, out.ptr<float>()).clone();
  } catch (const cv::Exception& e) {
    return ModelError("running text detector", e);
  }
}

StatusOr<std::vector<TextBox>> TextDetector::Detect(const cv::Mat& bgr) {
  if (bgr.empty() || bgr.type() != CV_8UC3) {
    return Status(ErrorCode::kInvalidArgument, "text detector needs a non-empty BGR image");
  }
  std::lock_guard lock(mutex_);
  BusyScope busy(&busy_);
  VSIEVE_ASSIGN_OR_RETURN(auto boxes, DetectPassLocked({&bgr}, {SingleCell(bgr.size(), side_)}));
  return std::move(boxes.front());
}

StatusOr<std::vector<std::vector<TextBox>>> TextDetector::DetectPassLocked(
    const std::vector<const cv::Mat*>& images, const std::vector<Cell>& cells) {
  cv::Mat canvas(side_, side_, CV_8UC3, cv::Scalar::all(0));
  for (size_t i = 0; i < images.size(); ++i) {
    cv::resize(*images[i], canvas(cells[i].rect), cells[i].rect.size(), 0, 0,
               cells[i].scale < 1.0 ? cv::INTER_AREA : cv::INTER_LINEAR);
  }
  passes_.fetch_add(1, std::memory_order_relaxed);
  VSIEVE_ASSIGN_OR_RETURN(cv::Mat prob, Forward(canvas));
  std::vector<std::vector<TextBox>> boxes;
  boxes.reserve(images.size());
  for (size_t i = 0; i < images.size(); ++i) {
    boxes.push_back(BoxesFromProb(prob(cells[i].rect), cells[i].scale, images[i]->size()));
  }
  return boxes;
}

StatusOr<std::vector<std::vector<TextBox>>> TextDetector::DetectEach(
    const std::vector<cv::Mat>& images) {
  for (const cv::Mat& image : images) {
    if (image.empty() || image.type() != CV_8UC3) {
      return Status(ErrorCode::kInvalidArgument, "text detector needs non-empty BGR images");
    }
  }
  std::lock_guard lock(mutex_);
  BusyScope busy(&busy_);
  std::vector<std::vector<TextBox>> results;
  results.reserve(images.size());
  for (size_t i = 0; i < images.size();) {
    std::vector<const cv::Mat*> pass = {&images[i]};
    std::vector<Cell> cells;
    if (i + 1 < images.size() && images[i + 1].size() == images[i].size()) {
      cells = PairCells(images[i].size(), side_);
    }
    if (cells.empty()) {
      cells.push_back(SingleCell(images[i].size(), side_));
    } else {
      pass.push_back(&images[i + 1]);
    }
    VSIEVE_ASSIGN_OR_RETURN(auto boxes, DetectPassLocked(pass, cells));
    for (auto& b : boxes) results.push_back(std::move(b));
    i += pass.size();
  }
  return results;
}

StatusOr<std::unique_ptr<TextAngleClassifier>> TextAngleClassifier::Load(
    const std::string& model_path) {
  try {
    cv::dnn::Net net = cv::dnn::readNetFromONNX(model_path);
    if (net.empty()) return Status(ErrorCode::kModelFailed, "empty net from " + model_path);
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    return std::unique_ptr<TextAngleClassifier>(new TextAngleClassifier(std::move(net)));
  } catch (const cv::Exception& e) {
    return ModelError("loading text angle classifier " + model_path, e);
  }
}

StatusOr<float> TextAngleClassifier::UpsideDownProbability(const cv::Mat& line_bgr) {
  if (line_bgr.empty() || line_bgr.type() != CV_8UC3) {
    return Status(ErrorCode::kInvalidArgument, "angle classifier needs a non-empty BGR image");
  }
  try {
    // PaddleOCR's cls resize: height 48, width by aspect ratio up to 192, padded on the right
    // with zeros after normalising.
    const double ratio = static_cast<double>(line_bgr.cols) / line_bgr.rows;
    const int width = std::clamp(static_cast<int>(std::ceil(kClsHeight * ratio)), 1, kClsWidth);
    cv::Mat resized;
    cv::resize(line_bgr, resized, cv::Size(width, kClsHeight));
    cv::Mat input(kClsHeight, kClsWidth, CV_32FC3, cv::Scalar::all(0));
    resized.convertTo(input(cv::Rect(0, 0, width, kClsHeight)), CV_32FC3, 2.0 / 255.0, -1.0);
    net_.setInput(cv::dnn::blobFromImage(input));
    cv::Mat out = net_.forward();
    if (out.total() != 2) {
      return Status(ErrorCode::kModelFailed,
                    "angle classifier output has " + std::to_string(out.total()) + " values");
    }
    const float* p = out.ptr<float>();
    // The exported model ends in softmax; normalise anyway in case it gives logits.
    if (p[0] >= 0.0F && p[1] >= 0.0F && std::abs(p[0] + p[1] - 1.0F) < 1e-3F) return p[1];
    const float m = std::max(p[0], p[1]);
    const float e0 = std::exp(p[0] - m);
    const float e1 = std::exp(p[1] - m);
    return e1 / (e0 + e1);
  } catch (const cv::Exception& e) {
    return ModelError("running text angle classifier", e);
  }
}

}  // namespace vsieve::models
