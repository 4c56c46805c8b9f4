#include "models/regions/yolo_detector.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>
#include <utility>

#include "media/frame.h"

namespace vsieve::models {
namespace {

using common::ErrorCode;
using common::Status;
using common::StatusOr;

// A decoded box before NMS, in network-input pixels.
struct Candidate {
  cv::Rect2d box;
  float score = 0.0F;
  int class_id = 0;
};

float Sigmoid(float x) { return 1.0F / (1.0F + std::exp(-x)); }

cv::Rect2d FromCentre(double cx, double cy, double w, double h) {
  return {cx - w / 2.0, cy - h / 2.0, w, h};
}

// The best class among `count` scores spaced `step` floats apart.
std::pair<int, float> BestClass(const float* scores, int count, size_t step = 1) {
  int best = 0;
  float value = scores[0];
  for (int c = 1; c < count; ++c) {
    const float v = scores[static_cast<size_t>(c) * step];
    if (v > value) {
      value = v;
      best = c;
    }
  }
  return {best, value};
}

std::string Shape(const cv::Mat& m) {
  Dims dims;
  for (int i = 0; i < m.dims; ++i) dims.push_back(m.size[i]);
  return DimsText(dims);
}

// Rows x columns of an item output that is logically 2-D ([N, K], or 1 x (N*K)).
bool AsTable(const cv::Mat& out, int* rows, int* cols) {
  if (out.dims == 2) {
    *rows = out.size[0];
    *cols = out.size[1];
    return true;
  }
  if (out.dims == 3 && out.size[0] == 1) {
    *rows = out.size[1];
    *cols = out.size[2];
    return true;
  }
  return false;
}

}  // namespace

std::string_view YoloKindName(YoloKind kind) {
  switch (kind) {
    case YoloKind::kYolov5:
      return "yolov5";
    case YoloKind::kYolov8:
      return "yolov8";
    case YoloKind::kYolox:
      return "yolox";
    case YoloKind::kDarknet:
      return "darknet";
    case YoloKind::kFastestDet:
      return "fastestdet";
  }
  return "?";
}

bool ParseYoloKind(std::string_view name, YoloKind* kind) {
  for (YoloKind k : {YoloKind::kYolov5, YoloKind::kYolov8, YoloKind::kYolox, YoloKind::kDarknet,
                     YoloKind::kFastestDet}) {
    if (YoloKindName(k) == name) {
      *kind = k;
      return true;
    }
  }
  return false;
}

bool DefaultLetterbox(YoloKind kind) {
  return kind != YoloKind::kDarknet && kind != YoloKind::kFastestDet;
}

StatusOr<std::vector<std::string>> ReadClassNames(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status(ErrorCode::kModelFailed, "class names file '" + path + "' is unreadable");
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    const size_t first = line.find_first_not_of(" \t\r");
    const size_t last = line.find_last_not_of(" \t\r");
    names.push_back(first == std::string::npos ? "" : line.substr(first, last - first + 1));
  }
  while (!names.empty() && names.back().empty()) names.pop_back();
  if (names.empty())
    return Status(ErrorCode::kModelFailed, "class names file '" + path + "' is empty");
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i].empty()) names[i] = std::to_string(i);
  }
  return names;
}

// How one image was fitted into the network input: input = image * scale + pad.
struct YoloDetector::Geometry {
  double sx = 1.0;
  double sy = 1.0;
  double px = 0.0;
  double py = 0.0;
  cv::Size image;
};

YoloDetector::YoloDetector(DetectorConfig config, std::unique_ptr<DnnModel> model,
                           std::vector<std::string> names, cv::Size input)
    : config_(std::move(config)),
      model_(std::move(model)),
      names_(std::move(names)),
      input_(input) {}

StatusOr<std::unique_ptr<YoloDetector>> YoloDetector::Load(const DetectorConfig& config,
                                                           const Device& device) {
  const bool darknet = config.kind == YoloKind::kDarknet;
  if (darknet && config.cfg.empty()) {
    return Status(ErrorCode::kInvalidArgument,
                  "detector " + config.name + ": kind darknet needs cfg");
  }
  std::vector<std::string> names;
  if (!config.classes.empty()) {
    VSIEVE_ASSIGN_OR_RETURN(names, ReadClassNames(config.classes));
  }
  if (!names.empty()) {
    const auto known = [&](const std::string& label) {
      return std::find(names.begin(), names.end(), label) != names.end();
    };
    for (const std::string& label : config.class_filter) {
      if (!known(label)) {
        return Status(ErrorCode::kInvalidArgument,
                      "detector " + config.name + ": class_filter names '" + label +
                          "', which is not in '" + config.classes + "'");
      }
    }
    for (const auto& [label, mapping] : config.kinds) {
      if (label != "default" && !known(label)) {
        return Status(ErrorCode::kInvalidArgument, "detector " + config.name + ": kinds names '" +
                                                       label + "', which is not in '" +
                                                       config.classes + "'");
      }
    }
  }
  auto loaded = DnnModel::Load(config.model, darknet ? config.cfg : "", device);
  if (!loaded.ok()) {
    std::string expects = "detector " + config.name + " (kind " +
                          std::string(YoloKindName(config.kind)) + ", expects input [N,3,";
    expects += config.input_height > 0 ? std::to_string(config.input_height) : "H";
    expects += ",";
    expects += config.input_width > 0 ? std::to_string(config.input_width) : "W";
    expects += "])";
    return loaded.status().WithContext(expects);
  }
  std::unique_ptr<DnnModel> model = std::move(loaded).value();
  const Dims& declared = model->declared_input();
  cv::Size input(config.input_width, config.input_height);
  if (input.width <= 0 || input.height <= 0) {
    if (declared.size() != 4 || declared[2] <= 0 || declared[3] <= 0) {
      return Status(ErrorCode::kModelFailed,
                    "model '" + config.model + "' declares input " + DimsText(declared) +
                        ": its size is open, so set input in the detector's config");
    }
    input = cv::Size(static_cast<int>(declared[3]), static_cast<int>(declared[2]));
  }
  VSIEVE_RETURN_IF_ERROR(
      model->CheckInput({-1, 3, input.height, input.width}, "detector " + config.name + " input " +
                                                                std::to_string(input.width) + "x" +
                                                                std::to_string(input.height)));
  VSIEVE_RETURN_IF_ERROR(
      model->PrepareBatching({3, input.height, input.width}, std::max(1, config.batch)));
  std::unique_ptr<YoloDetector> detector(
      new YoloDetector(config, std::move(model), std::move(names), input));
  VSIEVE_RETURN_IF_ERROR(detector->MainOutput(detector->model_->trial_outputs()).status());
  return detector;
}

cv::Mat YoloDetector::Preprocess(const cv::Mat& bgr, Geometry* g) const {
  g->image = bgr.size();
  const bool letterbox = config_.letterbox;
  cv::Mat canvas;
  if (letterbox) {
    const double scale = std::min(static_cast<double>(input_.width) / bgr.cols,
                                  static_cast<double>(input_.height) / bgr.rows);
    const int w = std::clamp(static_cast<int>(std::lround(bgr.cols * scale)), 1, input_.width);
    const int h = std::clamp(static_cast<int>(std::lround(bgr.rows * scale)), 1, input_.height);
    g->sx = static_cast<double>(w) / bgr.cols;
    g->sy = static_cast<double>(h) / bgr.rows;
    // YOLOX pads right and bottom (its preproc); the others centre the picture.
    const bool centre = config_.kind != YoloKind::kYolox;
    const int px = centre ? (input_.width - w) / 2 : 0;
    const int py = centre ? (input_.height - h) / 2 : 0;
    g->px = px;
    g->py = py;
    canvas = cv::Mat(input_, CV_8UC3, cv::Scalar::all(114));
    cv::Mat resized;
    cv::resize(bgr, resized, cv::Size(w, h), 0, 0, scale < 1.0 ? cv::INTER_AREA : cv::INTER_LINEAR);
    resized.copyTo(canvas(cv::Rect(px, py, w, h)));
  } else {
    g->sx = static_cast<double>(input_.width) / bgr.cols;
    g->sy = static_cast<double>(input_.height) / bgr.rows;
    cv::resize(bgr, canvas, input_, 0, 0,
               g->sx < 1.0 && g->sy < 1.0 ? cv::INTER_AREA : cv::INTER_LINEAR);
  }
  const bool rgb = config_.kind != YoloKind::kYolox && config_.kind != YoloKind::kFastestDet;
  const double scale = config_.kind == YoloKind::kYolox ? 1.0 : 1.0 / 255.0;
  cv::Mat blob = cv::dnn::blobFromImage(canvas, scale, cv::Size(), cv::Scalar(), rgb, false);
  const int item[] = {3, input_.height, input_.width};
  return cv::Mat(3, item, CV_32F, blob.ptr<float>()).clone();
}

StatusOr<size_t> YoloDetector::MainOutput(const std::vector<cv::Mat>& outputs) const {
  const int classes = static_cast<int>(names_.size());  // 0 = unknown
  int cells = 0;
  for (int stride : {8, 16, 32}) cells += (input_.width / stride) * (input_.height / stride);
  // Whether one output has the layout's shape; a model may have other outputs (an old YOLOv5
  // export also returns its three raw heads).
  const auto fits = [&](const cv::Mat& out) {
    int rows = 0;
    int cols = 0;
    switch (config_.kind) {
      case YoloKind::kYolov5:
      case YoloKind::kDarknet:
        return AsTable(out, &rows, &cols) && cols >= 6 && (classes == 0 || cols == 5 + classes);
      case YoloKind::kYolox:
        return AsTable(out, &rows, &cols) && cols >= 6 && (classes == 0 || cols == 5 + classes) &&
               rows == cells;
      case YoloKind::kYolov8:
        return AsTable(out, &rows, &cols) && rows >= 5 && (classes == 0 || rows == 4 + classes);
      case YoloKind::kFastestDet:
        return out.dims == 3 && out.size[0] >= 6 && (classes == 0 || out.size[0] == 5 + classes);
    }
    return false;
  };
  bool all = !outputs.empty();
  for (const cv::Mat& out : outputs) all = all && fits(out);
  if (config_.kind == YoloKind::kDarknet) {
    if (all) return size_t{0};  // every yolo layer is read
  } else {
    for (size_t i = 0; i < outputs.size(); ++i) {
      if (fits(outputs[i])) return i;
    }
  }
  std::string expected;
  switch (config_.kind) {
    case YoloKind::kYolov5:
      expected = "[N, 5+C]";
      break;
    case YoloKind::kYolox:
      expected = "[";
      expected += std::to_string(cells);
      expected += ", 5+C] (strides 8, 16, 32 over the input)";
      break;
    case YoloKind::kYolov8:
      expected = "[4+C, N]";
      break;
    case YoloKind::kDarknet:
      expected = "[N, 5+C] per yolo layer";
      break;
    case YoloKind::kFastestDet:
      expected = "[5+C, H, W]";
      break;
  }
  std::string got;
  for (const cv::Mat& out : outputs) {
    if (!got.empty()) got += ' ';
    got += Shape(out);
  }
  return Status(ErrorCode::kModelFailed,
                "model '" + config_.model + "' (kind " + std::string(YoloKindName(config_.kind)) +
                    ") outputs " + got + " per image; expected " + expected +
                    (classes > 0 ? " with C = " + std::to_string(classes) + " classes from '" +
                                       config_.classes + "'"
                                 : ""));
}

StatusOr<std::vector<Detection>> YoloDetector::Decode(const std::vector<cv::Mat>& outputs,
                                                      const Geometry& g) const {
  VSIEVE_ASSIGN_OR_RETURN(const size_t main, MainOutput(outputs));
  const float conf = config_.conf;
  std::vector<Candidate> found;
  const cv::Mat& out = outputs[main];
  int rows = 0;
  int cols = 0;
  switch (config_.kind) {
    case YoloKind::kYolov5: {
      AsTable(out, &rows, &cols);
      for (int r = 0; r < rows; ++r) {
        const float* p = out.ptr<float>() + static_cast<size_t>(r) * cols;
        if (p[4] < conf) continue;
        const auto [cls, value] = BestClass(p + 5, cols - 5);
        const float score = p[4] * value;
        if (score >= conf) found.push_back({FromCentre(p[0], p[1], p[2], p[3]), score, cls});
      }
      break;
    }
    case YoloKind::kYolov8: {
      AsTable(out, &rows, &cols);  // rows = 4 + C, cols = N
      const float* p = out.ptr<float>();
      for (int n = 0; n < cols; ++n) {
        const auto [cls, score] = BestClass(p + static_cast<size_t>(4) * cols + n, rows - 4, cols);
        if (score < conf) continue;
        const auto at = [&](int row) { return p[static_cast<size_t>(row) * cols + n]; };
        found.push_back({FromCentre(at(0), at(1), at(2), at(3)), score, cls});
      }
      break;
    }
    case YoloKind::kYolox: {
      AsTable(out, &rows, &cols);
      int r = 0;
      for (int stride : {8, 16, 32}) {
        const int gw = input_.width / stride;
        const int gh = input_.height / stride;
        for (int gy = 0; gy < gh; ++gy) {
          for (int gx = 0; gx < gw; ++gx, ++r) {
            const float* p = out.ptr<float>() + static_cast<size_t>(r) * cols;
            if (p[4] < conf) continue;
            const auto [cls, value] = BestClass(p + 5, cols - 5);
            const float score = p[4] * value;
            if (score < conf) continue;
            found.push_back({FromCentre((p[0] + gx) * stride, (p[1] + gy) * stride,
                                        std::exp(p[2]) * stride, std::exp(p[3]) * stride),
                             score, cls});
          }
        }
      }
      break;
    }
    case YoloKind::kDarknet: {
      for (const cv::Mat& o : outputs) {
        AsTable(o, &rows, &cols);
        for (int r = 0; r < rows; ++r) {
          const float* p = o.ptr<float>() + static_cast<size_t>(r) * cols;
          const auto [cls, score] = BestClass(p + 5, cols - 5);
          if (score < conf) continue;
          found.push_back({FromCentre(p[0] * input_.width, p[1] * input_.height,
                                      p[2] * input_.width, p[3] * input_.height),
                           score, cls});
        }
      }
      break;
    }
    case YoloKind::kFastestDet: {
      const int channels = out.size[0];
      const int gh = out.size[1];
      const int gw = out.size[2];
      const size_t plane = static_cast<size_t>(gh) * gw;
      const float* p = out.ptr<float>();
      for (int gy = 0; gy < gh; ++gy) {
        for (int gx = 0; gx < gw; ++gx) {
          const size_t cell = static_cast<size_t>(gy) * gw + gx;
          const float obj = p[cell];
          if (obj < conf) continue;
          const auto [cls, value] = BestClass(p + 5 * plane + cell, channels - 5, plane);
          const float score = obj * value;
          if (score < conf) continue;
          const double cx = (std::tanh(p[plane + cell]) + gx) / gw * input_.width;
          const double cy = (std::tanh(p[2 * plane + cell]) + gy) / gh * input_.height;
          const double w = Sigmoid(p[3 * plane + cell]) * input_.width;
          const double h = Sigmoid(p[4 * plane + cell]) * input_.height;
          found.push_back({FromCentre(cx, cy, w, h), score, cls});
        }
      }
      break;
    }
  }

  // Per-class NMS, then back to image pixels.
  std::vector<Detection> detections;
  std::map<int, std::vector<size_t>> by_class;
  for (size_t i = 0; i < found.size(); ++i) by_class[found[i].class_id].push_back(i);
  const cv::Rect2d image(0, 0, g.image.width, g.image.height);
  for (const auto& [cls, members] : by_class) {
    std::vector<cv::Rect2d> boxes;
    std::vector<float> scores;
    for (size_t i : members) {
      boxes.push_back(found[i].box);
      scores.push_back(found[i].score);
    }
    std::vector<int> keep;
    cv::dnn::NMSBoxes(boxes, scores, conf, config_.nms, keep);
    for (int k : keep) {
      const Candidate& c = found[members[static_cast<size_t>(k)]];
      const cv::Rect2d mapped((c.box.x - g.px) / g.sx, (c.box.y - g.py) / g.sy, c.box.width / g.sx,
                              c.box.height / g.sy);
      const cv::Rect2d clipped = mapped & image;
      if (clipped.width <= 0 || clipped.height <= 0) continue;
      Detection d;
      d.class_id = cls;
      d.label = cls < static_cast<int>(names_.size()) ? names_[static_cast<size_t>(cls)]
                                                      : std::to_string(cls);
      d.score = c.score;
      d.box = cv::Rect2f(clipped);
      detections.push_back(std::move(d));
    }
  }
  std::sort(detections.begin(), detections.end(),
            [](const Detection& a, const Detection& b) { return a.score > b.score; });
  return detections;
}

StatusOr<std::vector<Detection>> YoloDetector::Detect(const cv::Mat& bgr) {
  VSIEVE_ASSIGN_OR_RETURN(auto lists, RunBatch({bgr}));
  return std::move(lists.front());
}

StatusOr<std::vector<std::vector<Detection>>> YoloDetector::RunBatch(
    const std::vector<cv::Mat>& images) {
  std::vector<Geometry> geometry(images.size());
  std::vector<cv::Mat> items;
  items.reserve(images.size());
  for (size_t i = 0; i < images.size(); ++i) {
    if (images[i].empty() || images[i].type() != CV_8UC3) {
      return Status(ErrorCode::kInvalidArgument, "detector " + config_.name + " needs BGR images");
    }
    try {
      items.push_back(Preprocess(images[i], &geometry[i]));
    } catch (const cv::Exception& e) {
      return Status(ErrorCode::kModelFailed, "preprocessing for " + config_.name + ": " + e.what());
    }
  }
  VSIEVE_ASSIGN_OR_RETURN(auto outputs, model_->RunItems(items));
  std::vector<std::vector<Detection>> lists;
  lists.reserve(images.size());
  for (size_t i = 0; i < images.size(); ++i) {
    VSIEVE_ASSIGN_OR_RETURN(auto detections, Decode(outputs[i], geometry[i]));
    lists.push_back(std::move(detections));
  }
  return lists;
}

ObjectRegionDetector::ObjectRegionDetector(const DetectorConfig& config,
                                           InstancePool<YoloDetector>* pool,
                                           double borrow_timeout_s)
    : config_(config), pool_(pool), borrow_timeout_s_(borrow_timeout_s) {}

std::vector<Region> ObjectRegionDetector::Aggregate(
    const DetectorConfig& config, const std::vector<std::vector<Detection>>& per_frame) {
  struct Track {
    std::string label;
    cv::Rect2f last;
    cv::Rect2f all;
    double score_sum = 0;
    int count = 0;
    size_t last_frame = 0;
  };
  const auto wanted = [&](const std::string& label) {
    return config.class_filter.empty() ||
           std::find(config.class_filter.begin(), config.class_filter.end(), label) !=
               config.class_filter.end();
  };
  const auto iou = [](const cv::Rect2f& a, const cv::Rect2f& b) {
    const double inter = (a & b).area();
    const double uni = a.area() + b.area() - inter;
    return uni > 0 ? inter / uni : 0.0;
  };
  std::vector<Track> tracks;
  for (size_t f = 0; f < per_frame.size(); ++f) {
    for (const Detection& d : per_frame[f]) {  // highest score first
      if (!wanted(d.label)) continue;
      Track* best = nullptr;
      double best_iou = 0.3;
      for (Track& t : tracks) {
        if (t.label != d.label || (t.count > 0 && t.last_frame == f)) continue;
        const double overlap = iou(t.last, d.box);
        if (overlap >= best_iou) {
          best_iou = overlap;
          best = &t;
        }
      }
      if (best == nullptr) {
        tracks.push_back(Track{d.label, d.box, d.box, 0, 0, f});
        best = &tracks.back();
      }
      best->last = d.box;
      best->all |= d.box;
      best->score_sum += d.score;
      ++best->count;
      best->last_frame = f;
    }
  }
  const int needed = std::max(
      1, static_cast<int>(
             std::ceil(config.min_presence * static_cast<double>(per_frame.size()) - 1e-9)));
  std::vector<Region> regions;
  for (const Track& t : tracks) {
    if (t.count < needed) continue;
    ClassMapping mapping;
    if (auto it = config.kinds.find(t.label); it != config.kinds.end()) {
      mapping = it->second;
    } else if (auto def = config.kinds.find("default"); def != config.kinds.end()) {
      mapping = def->second;
    }
    Region region;
    region.kind = mapping.kind;
    region.avoid = mapping.avoid;
    region.label = t.label;
    region.score = static_cast<float>(t.score_sum / t.count);
    const int x0 = static_cast<int>(std::floor(t.all.x));
    const int y0 = static_cast<int>(std::floor(t.all.y));
    const int x1 = static_cast<int>(std::ceil(t.all.x + t.all.width));
    const int y1 = static_cast<int>(std::ceil(t.all.y + t.all.height));
    region.box = cv::Rect(x0, y0, x1 - x0, y1 - y0);
    regions.push_back(std::move(region));
  }
  std::sort(regions.begin(), regions.end(),
            [](const Region& a, const Region& b) { return a.score > b.score; });
  return regions;
}

StatusOr<std::vector<Region>> ObjectRegionDetector::Detect(
    const std::vector<media::Frame>& frames) {
  const std::vector<const media::Frame*> chosen = media::SelectEven(frames, config_.frames);
  if (chosen.empty()) return std::vector<Region>();
  std::vector<cv::Mat> images;
  images.reserve(chosen.size());
  for (const media::Frame* frame : chosen) images.push_back(frame->bgr);
  VSIEVE_ASSIGN_OR_RETURN(auto lease,
                          pool_->Borrow(std::chrono::duration<double>(borrow_timeout_s_)));
  VSIEVE_ASSIGN_OR_RETURN(auto per_frame, lease->RunBatch(images));
  return Aggregate(config_, per_frame);
}

}  // namespace vsieve::models
