#include "models/onnx_head.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <opencv2/imgproc.hpp>
#include <utility>

namespace vsieve::models {
namespace {

using common::ErrorCode;
using common::Status;
using common::StatusOr;

// `count` indices spread evenly over `available` items (the centre of each of `count` equal
// bins); repeats items when there are fewer than `count`.
std::vector<size_t> EvenIndices(size_t available, int count) {
  std::vector<size_t> indices;
  for (int t = 0; t < count; ++t) {
    const auto index = static_cast<size_t>((t + 0.5) * static_cast<double>(available) / count);
    indices.push_back(std::min(index, available - 1));
  }
  return indices;
}

std::vector<int> ItemShape(const OnnxHeadConfig& c) {
  switch (c.layout) {
    case HeadLayout::kNcthw:
      return {3, c.frames, c.height, c.width};
    case HeadLayout::kNtchw:
      return {c.frames, 3, c.height, c.width};
    case HeadLayout::kNchw:
      break;
  }
  return {3, c.height, c.width};
}

}  // namespace

std::string_view HeadLayoutName(HeadLayout layout) {
  switch (layout) {
    case HeadLayout::kNcthw:
      return "NCTHW";
    case HeadLayout::kNtchw:
      return "NTCHW";
    case HeadLayout::kNchw:
      return "NCHW";
  }
  return "?";
}

bool ParseHeadLayout(std::string_view name, HeadLayout* layout) {
  for (HeadLayout l : {HeadLayout::kNcthw, HeadLayout::kNtchw, HeadLayout::kNchw}) {
    if (HeadLayoutName(l) == name) {
      *layout = l;
      return true;
    }
  }
  return false;
}

std::string_view HeadActivationName(HeadActivation activation) {
  switch (activation) {
    case HeadActivation::kSoftmax:
      return "softmax";
    case HeadActivation::kSigmoid:
      return "sigmoid";
    case HeadActivation::kNone:
      return "none";
  }
  return "?";
}

bool ParseHeadActivation(std::string_view name, HeadActivation* activation) {
  for (HeadActivation a :
       {HeadActivation::kSoftmax, HeadActivation::kSigmoid, HeadActivation::kNone}) {
    if (HeadActivationName(a) == name) {
      *activation = a;
      return true;
    }
  }
  return false;
}

std::string_view HeadModeName(HeadMode mode) {
  switch (mode) {
    case HeadMode::kClip:
      return "clip";
    case HeadMode::kWindows:
      return "windows";
    case HeadMode::kReversedWindows:
      return "reversed_windows";
  }
  return "?";
}

bool ParseHeadMode(std::string_view name, HeadMode* mode) {
  for (HeadMode m : {HeadMode::kClip, HeadMode::kWindows, HeadMode::kReversedWindows}) {
    if (HeadModeName(m) == name) {
      *mode = m;
      return true;
    }
  }
  return false;
}

Dims ExpectedHeadInput(const OnnxHeadConfig& config) {
  const std::vector<int> item = ItemShape(config);
  Dims dims = {-1};
  dims.insert(dims.end(), item.begin(), item.end());
  return dims;
}

StatusOr<std::unique_ptr<OnnxHead>> OnnxHead::Load(const OnnxHeadConfig& config,
                                                   const Device& device) {
  if (config.labels.empty() || config.frames < 1 || config.height < 1 || config.width < 1) {
    return Status(ErrorCode::kInvalidArgument,
                  "head " + config.name + ": needs labels, frames >= 1 and a size");
  }
  const Dims expected = ExpectedHeadInput(config);
  auto loaded = DnnModel::Load(config.model, "", device);
  if (!loaded.ok()) {
    return loaded.status().WithContext("head " + config.name + " (expects input " +
                                       DimsText(expected) + ")");
  }
  std::unique_ptr<DnnModel> model = std::move(loaded).value();
  const std::string what =
      "head " + config.name + ": layout " + std::string(HeadLayoutName(config.layout)) +
      ", frames " + std::to_string(config.frames) + ", size [" + std::to_string(config.height) +
      ", " + std::to_string(config.width) + "]";
  VSIEVE_RETURN_IF_ERROR(model->CheckInput(expected, what));
  const int per_clip = config.layout == HeadLayout::kNchw ? config.frames : 1;
  VSIEVE_RETURN_IF_ERROR(
      model->PrepareBatching(ItemShape(config), std::max(1, config.batch) * per_clip));
  const std::vector<cv::Mat>& outputs = model->trial_outputs();
  const size_t values = outputs.empty() ? 0 : outputs.front().total();
  if (values != config.labels.size()) {
    return Status(ErrorCode::kModelFailed,
                  "model '" + config.model + "' gives " + std::to_string(values) + " values per " +
                      (per_clip > 1 ? "frame" : "clip") + "; expected [N," +
                      std::to_string(config.labels.size()) + "] for the labels of head " +
                      config.name + " (" + what + ")");
  }
  return std::unique_ptr<OnnxHead>(new OnnxHead(config, std::move(model)));
}

int OnnxHead::batch_capacity() const {
  const int capacity = model_->batch_capacity();
  return config_.layout == HeadLayout::kNchw ? std::max(1, capacity / config_.frames) : capacity;
}

cv::Mat OnnxHead::FramePlanes(const cv::Mat& bgr) const {
  const cv::Size size(config_.width, config_.height);
  cv::Mat resized;
  const bool shrink = bgr.cols >= size.width && bgr.rows >= size.height;
  cv::resize(bgr, resized, size, 0, 0, shrink ? cv::INTER_AREA : cv::INTER_LINEAR);
  if (config_.rgb) cv::cvtColor(resized, resized, cv::COLOR_BGR2RGB);
  cv::Mat value;
  resized.convertTo(value, CV_32FC3, 1.0 / 255.0);
  const int planes[] = {3, config_.height, config_.width};
  cv::Mat out(3, planes, CV_32F);
  std::vector<cv::Mat> channels;
  cv::split(value, channels);
  const size_t plane = static_cast<size_t>(config_.height) * config_.width;
  for (int c = 0; c < 3; ++c) {
    cv::Mat target(config_.height, config_.width, CV_32F, out.ptr<float>() + c * plane);
    channels[static_cast<size_t>(c)].convertTo(target, CV_32F, 1.0 / config_.std[c],
                                               -config_.mean[c] / config_.std[c]);
  }
  return out;
}

HeadOutput OnnxHead::Finish(std::vector<double> logits) const {
  switch (config_.activation) {
    case HeadActivation::kSoftmax: {
      const double top = *std::max_element(logits.begin(), logits.end());
      double sum = 0;
      for (double& v : logits) sum += (v = std::exp(v - top));
      for (double& v : logits) v /= sum;
      break;
    }
    case HeadActivation::kSigmoid:
      for (double& v : logits) v = 1.0 / (1.0 + std::exp(-v));
      break;
    case HeadActivation::kNone:
      break;
  }
  std::vector<std::pair<std::string, double>> result;
  for (size_t i = 0; i < logits.size(); ++i) result.emplace_back(config_.labels[i], logits[i]);
  return MakeHeadOutput(std::move(result));
}

StatusOr<HeadOutput> OnnxHead::Run(const HeadInput& input) {
  VSIEVE_ASSIGN_OR_RETURN(std::vector<HeadOutput> outputs, RunBatch({input}));
  return std::move(outputs.front());
}

StatusOr<std::vector<HeadOutput>> OnnxHead::RunBatch(const std::vector<HeadInput>& inputs) {
  const int frames = config_.frames;
  const size_t plane_bytes = static_cast<size_t>(config_.height) * config_.width * sizeof(float);
  std::vector<cv::Mat> items;
  try {
    for (const HeadInput& input : inputs) {
      if (input.frames.empty()) {
        return Status(ErrorCode::kInvalidArgument, "head " + config_.name + ": no frames");
      }
      const std::vector<size_t> picked = EvenIndices(input.frames.size(), frames);
      if (config_.layout == HeadLayout::kNchw) {
        for (size_t index : picked) items.push_back(FramePlanes(input.frames[index]));
        continue;
      }
      const std::vector<int> shape = ItemShape(config_);
      cv::Mat item(static_cast<int>(shape.size()), shape.data(), CV_32F);
      auto* base = reinterpret_cast<uchar*>(item.ptr<float>());
      for (int t = 0; t < frames; ++t) {
        const cv::Mat planes = FramePlanes(input.frames[picked[static_cast<size_t>(t)]]);
        for (int c = 0; c < 3; ++c) {
          // NCTHW: plane (c, t) at c * T + t; NTCHW: plane (t, c) at t * 3 + c.
          const size_t slot = config_.layout == HeadLayout::kNcthw
                                  ? static_cast<size_t>(c) * frames + t
                                  : static_cast<size_t>(t) * 3 + c;
          std::memcpy(base + slot * plane_bytes, planes.data + c * plane_bytes, plane_bytes);
        }
      }
      items.push_back(std::move(item));
    }
  } catch (const cv::Exception& e) {
    return Status(ErrorCode::kModelFailed,
                  "preparing input of head " + config_.name + ": " + e.what());
  }
  VSIEVE_ASSIGN_OR_RETURN(auto outputs, model_->RunItems(items));
  const size_t labels = config_.labels.size();
  const size_t per_clip = config_.layout == HeadLayout::kNchw ? static_cast<size_t>(frames) : 1;
  std::vector<HeadOutput> results;
  for (size_t clip = 0; clip < inputs.size(); ++clip) {
    std::vector<double> logits(labels, 0.0);
    for (size_t k = 0; k < per_clip; ++k) {
      const cv::Mat& out = outputs[clip * per_clip + k].front();
      if (out.total() != labels || out.depth() != CV_32F) {
        return Status(ErrorCode::kModelFailed, "head " + config_.name + ": model gave " +
                                                   std::to_string(out.total()) + " values for " +
                                                   std::to_string(labels) + " labels");
      }
      const float* p = out.ptr<float>();
      for (size_t i = 0; i < labels; ++i) logits[i] += p[i] / static_cast<double>(per_clip);
    }
    results.push_back(Finish(std::move(logits)));
  }
  return results;
}

}  // namespace vsieve::models
