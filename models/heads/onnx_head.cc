#include "models/heads/onnx_head.h"

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
                                                   const Device& device,
                                                   const ModelRuntimeOptions& runtime) {
  if (config.labels.empty() || config.frames < 1 || config.height < 1 || config.width < 1) {
    return Status(ErrorCode::kInvalidArgument,
                  "head " + config.name + ": needs labels, frames >= 1 and a size");
  }
  const Dims expected = ExpectedHeadInput(config);
  const std::string what =
      "head " + config.name + ": layout " + std::string(HeadLayoutName(config.layout)) +
      ", frames " + std::to_string(config.frames) + ", size [" + std::to_string(config.height) +
      ", " + std::to_string(config.width) + "]";
  const int per_clip = HeadItemsPerInput(config);
  ItemModelSpec spec;
  spec.kind = "dnn";
  spec.model = config.model;
  spec.device = device.name;
  spec.item_shape = ItemShape(config);
  spec.max_batch = std::max(1, config.batch) * per_clip;
  spec.params = {{"expected_input", expected}, {"what", what}};
  auto loaded = MakeItemModel(spec, runtime, config.name);
  if (!loaded.ok()) {
    return loaded.status().WithContext("head " + config.name + " (expects input " +
                                       DimsText(expected) + ")");
  }
  std::unique_ptr<ItemModel> model = std::move(loaded).value();
  const ItemModel::Warmup warmup = model->warmup();
  size_t values = 0;
  if (!warmup.output_shapes.empty()) {
    values = 1;
    for (int dim : warmup.output_shapes.front()) values *= static_cast<size_t>(std::max(0, dim));
  }
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
  return std::max(1, model_->batch_capacity() / HeadItemsPerInput(config_));
}

int HeadItemsPerInput(const OnnxHeadConfig& config) {
  return config.layout == HeadLayout::kNchw ? std::max(1, config.frames) : 1;
}

namespace {

// The normalised CHW planes of one frame (CV_32F, 3 x height x width).
cv::Mat FramePlanes(const OnnxHeadConfig& config, const cv::Mat& bgr) {
  const cv::Size size(config.width, config.height);
  cv::Mat resized;
  const bool shrink = bgr.cols >= size.width && bgr.rows >= size.height;
  cv::resize(bgr, resized, size, 0, 0, shrink ? cv::INTER_AREA : cv::INTER_LINEAR);
  if (config.rgb) cv::cvtColor(resized, resized, cv::COLOR_BGR2RGB);
  cv::Mat value;
  resized.convertTo(value, CV_32FC3, 1.0 / 255.0);
  const int planes[] = {3, config.height, config.width};
  cv::Mat out(3, planes, CV_32F);
  std::vector<cv::Mat> channels;
  cv::split(value, channels);
  const size_t plane = static_cast<size_t>(config.height) * config.width;
  for (int c = 0; c < 3; ++c) {
    cv::Mat target(config.height, config.width, CV_32F, out.ptr<float>() + c * plane);
    channels[static_cast<size_t>(c)].convertTo(target, CV_32F, 1.0 / config.std[c],
                                               -config.mean[c] / config.std[c]);
  }
  return out;
}

HeadOutput Finish(const OnnxHeadConfig& config, std::vector<double> logits) {
  switch (config.activation) {
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
  for (size_t i = 0; i < logits.size(); ++i) result.emplace_back(config.labels[i], logits[i]);
  return MakeHeadOutput(std::move(result));
}

}  // namespace

StatusOr<std::vector<cv::Mat>> PrepareHeadItems(const OnnxHeadConfig& config,
                                                const std::vector<HeadInput>& inputs) {
  const int frames = config.frames;
  const size_t plane_bytes = static_cast<size_t>(config.height) * config.width * sizeof(float);
  std::vector<cv::Mat> items;
  try {
    for (const HeadInput& input : inputs) {
      if (input.frames.empty()) {
        return Status(ErrorCode::kInvalidArgument, "head " + config.name + ": no frames");
      }
      const std::vector<size_t> picked = EvenIndices(input.frames.size(), frames);
      if (config.layout == HeadLayout::kNchw) {
        for (size_t index : picked) items.push_back(FramePlanes(config, input.frames[index]));
        continue;
      }
      const std::vector<int> shape = ItemShape(config);
      cv::Mat item(static_cast<int>(shape.size()), shape.data(), CV_32F);
      auto* base = reinterpret_cast<uchar*>(item.ptr<float>());
      for (int t = 0; t < frames; ++t) {
        const cv::Mat planes = FramePlanes(config, input.frames[picked[static_cast<size_t>(t)]]);
        for (int c = 0; c < 3; ++c) {
          // NCTHW: plane (c, t) at c * T + t; NTCHW: plane (t, c) at t * 3 + c.
          const size_t slot = config.layout == HeadLayout::kNcthw
                                  ? static_cast<size_t>(c) * frames + t
                                  : static_cast<size_t>(t) * 3 + c;
          std::memcpy(base + slot * plane_bytes, planes.data + c * plane_bytes, plane_bytes);
        }
      }
      items.push_back(std::move(item));
    }
  } catch (const cv::Exception& e) {
    return Status(ErrorCode::kModelFailed,
                  "preparing input of head " + config.name + ": " + e.what());
  }
  return items;
}

StatusOr<std::vector<HeadOutput>> FinishHeadItems(
    const OnnxHeadConfig& config, size_t inputs, const std::vector<std::vector<cv::Mat>>& outputs) {
  const size_t labels = config.labels.size();
  const size_t per_clip = static_cast<size_t>(HeadItemsPerInput(config));
  if (outputs.size() != inputs * per_clip) {
    return Status(ErrorCode::kModelFailed, "head " + config.name + ": " +
                                               std::to_string(outputs.size()) + " outputs for " +
                                               std::to_string(inputs * per_clip) + " items");
  }
  std::vector<HeadOutput> results;
  for (size_t clip = 0; clip < inputs; ++clip) {
    std::vector<double> logits(labels, 0.0);
    for (size_t k = 0; k < per_clip; ++k) {
      const std::vector<cv::Mat>& item = outputs[clip * per_clip + k];
      if (item.empty() || item.front().total() != labels || item.front().depth() != CV_32F) {
        return Status(ErrorCode::kModelFailed,
                      "head " + config.name + ": model gave " +
                          std::to_string(item.empty() ? 0 : item.front().total()) + " values for " +
                          std::to_string(labels) + " labels");
      }
      const float* p = item.front().ptr<float>();
      for (size_t i = 0; i < labels; ++i) logits[i] += p[i] / static_cast<double>(per_clip);
    }
    results.push_back(Finish(config, std::move(logits)));
  }
  return results;
}

StatusOr<HeadOutput> OnnxHead::Run(const HeadInput& input) {
  VSIEVE_ASSIGN_OR_RETURN(std::vector<HeadOutput> outputs, RunBatch({input}));
  return std::move(outputs.front());
}

StatusOr<std::vector<HeadOutput>> OnnxHead::RunBatch(const std::vector<HeadInput>& inputs) {
  VSIEVE_ASSIGN_OR_RETURN(const std::vector<cv::Mat> items, PrepareHeadItems(config_, inputs));
  VSIEVE_ASSIGN_OR_RETURN(const auto outputs, model_->RunItems(items));
  return FinishHeadItems(config_, inputs.size(), outputs);
}

}  // namespace vsieve::models
