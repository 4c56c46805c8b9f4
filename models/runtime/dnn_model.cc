#include "models/runtime/dnn_model.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>
#include <opencv2/core/cuda.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <set>
#include <string_view>
#include <utility>

namespace vsieve::models {
namespace {

using common::ErrorCode;
using common::Status;
using common::StatusOr;

// A cursor over protobuf wire format (https://protobuf.dev/programming-guides/encoding/), just
// enough to walk ModelProto.graph.input without the generated classes.
class Wire {
 public:
  explicit Wire(std::string_view bytes) : data_(bytes) {}
  bool done() const { return pos_ >= data_.size(); }

  bool Varint(uint64_t* value) {
    *value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) return false;
      const auto byte = static_cast<uint8_t>(data_[pos_++]);
      *value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) return true;
    }
    return false;
  }

  // Reads the next field's number and wire type; for length-delimited fields `payload` is set,
  // for varints `value`; fixed-width fields are skipped. Returns false on malformed input.
  bool Next(uint32_t* field, std::string_view* payload, uint64_t* value) {
    uint64_t key = 0;
    if (!Varint(&key)) return false;
    *field = static_cast<uint32_t>(key >> 3);
    *payload = {};
    *value = 0;
    switch (key & 7) {
      case 0:
        return Varint(value);
      case 1:
        return Skip(8);
      case 5:
        return Skip(4);
      case 2: {
        uint64_t length = 0;
        if (!Varint(&length) || length > data_.size() - pos_) return false;
        *payload = data_.substr(pos_, length);
        pos_ += length;
        return true;
      }
      default:
        return false;  // groups (3, 4) are not used by ONNX
    }
  }

 private:
  bool Skip(size_t n) {
    if (n > data_.size() - pos_) return false;
    pos_ += n;
    return true;
  }
  std::string_view data_;
  size_t pos_ = 0;
};

// Walks the length-delimited fields numbered `wanted` inside `message`, calling `visit` on each.
template <typename Visit>
bool ForEach(std::string_view message, uint32_t wanted, Visit visit) {
  Wire wire(message);
  while (!wire.done()) {
    uint32_t field = 0;
    std::string_view payload;
    uint64_t value = 0;
    if (!wire.Next(&field, &payload, &value)) return false;
    if (field == wanted && !visit(payload, value)) return false;
  }
  return true;
}

// TensorShapeProto (ValueInfoProto.type.tensor_type.shape) -> dims.
bool ParseValueInfo(std::string_view info, DeclaredInput* input) {
  return ForEach(info, 1,
                 [&](std::string_view name, uint64_t) {
                   input->name = std::string(name);
                   return true;
                 }) &&
         ForEach(info, 2, [&](std::string_view type, uint64_t) {
           return ForEach(type, 1, [&](std::string_view tensor, uint64_t) {
             return ForEach(tensor, 2, [&](std::string_view shape, uint64_t) {
               return ForEach(shape, 1, [&](std::string_view dim, uint64_t) {
                 int64_t size = -1;  // dim_param (a name) or nothing: open
                 Wire wire(dim);
                 while (!wire.done()) {
                   uint32_t field = 0;
                   std::string_view payload;
                   uint64_t value = 0;
                   if (!wire.Next(&field, &payload, &value)) return false;
                   if (field == 1) size = static_cast<int64_t>(value);
                 }
                 input->dims.push_back(size > 0 ? size : -1);
                 return true;
               });
             });
           });
         });
}

// [net] width/height/channels of a darknet cfg, as [1, C, H, W]; empty when absent.
Dims DarknetInput(const std::string& cfg_path) {
  std::ifstream in(cfg_path);
  std::string line;
  bool in_net = false;
  int64_t width = -1;
  int64_t height = -1;
  int64_t channels = 3;
  while (std::getline(in, line)) {
    line.erase(
        std::remove_if(line.begin(), line.end(), [](unsigned char c) { return std::isspace(c); }),
        line.end());
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line[0] == '[') {
      if (in_net) break;
      in_net = line == "[net]" || line == "[network]";
      continue;
    }
    if (!in_net) continue;
    const size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = line.substr(0, eq);
    const int64_t value = std::atoll(line.c_str() + eq + 1);
    if (key == "width") width = value;
    if (key == "height") height = value;
    if (key == "channels") channels = value;
  }
  if (width <= 0 || height <= 0) return {};
  return {1, channels, height, width};
}

Status FileReadable(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status(ErrorCode::kModelFailed, what + " '" + path + "' is missing or unreadable");
  }
  char byte = 0;
  if (!in.read(&byte, 1)) return Status(ErrorCode::kModelFailed, what + " '" + path + "' is empty");
  return Status::Ok();
}

// Output `out` of a pass over `batch` items, without the batch dimension, for item `i`.
cv::Mat ItemSlice(const cv::Mat& out, int i, int batch, bool batched) {
  if (!batched) {
    // Single pass: drop a leading 1 ([1, N, K] -> [N, K]); keep [N, K] as it is (darknet).
    if (out.dims > 2 && out.size[0] == 1) {
      return cv::Mat(out.dims - 1, out.size.p + 1, out.type(), const_cast<uchar*>(out.data))
          .clone();
    }
    return out.clone();
  }
  const size_t per_item = out.total() / static_cast<size_t>(batch);
  const uchar* start = out.data + static_cast<size_t>(i) * per_item * out.elemSize();
  if (out.dims > 2) {
    return cv::Mat(out.dims - 1, out.size.p + 1, out.type(), const_cast<uchar*>(start)).clone();
  }
  return cv::Mat(1, static_cast<int>(per_item), out.type(), const_cast<uchar*>(start)).clone();
}

// A deterministic, varied input for trial passes (values in [0, 1)).
cv::Mat TrialItem(const std::vector<int>& shape, int seed) {
  cv::Mat item(static_cast<int>(shape.size()), shape.data(), CV_32F);
  cv::RNG rng(0x5EED + seed);
  float* p = item.ptr<float>();
  for (size_t k = 0; k < item.total(); ++k) p[k] = rng.uniform(0.0F, 1.0F);
  return item;
}

bool Close(const cv::Mat& a, const cv::Mat& b) {
  if (a.total() != b.total() || a.type() != b.type()) return false;
  const cv::Mat fa = a.reshape(1, 1);
  const cv::Mat fb = b.reshape(1, 1);
  const double scale = std::max(1.0, cv::norm(fa, cv::NORM_INF));
  return cv::norm(fa, fb, cv::NORM_INF) <= 1e-3 * scale;
}

}  // namespace

std::string DimsText(const Dims& dims) {
  std::string text = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i > 0) text += ",";
    text += dims[i] < 0 ? "N" : std::to_string(dims[i]);
  }
  return text + "]";
}

StatusOr<DnnTarget> DnnTargetFor(const Device& device) {
  switch (device.kind) {
    case Device::Kind::kCpu:
      return DnnTarget{cv::dnn::DNN_BACKEND_OPENCV, cv::dnn::DNN_TARGET_CPU};
    case Device::Kind::kCuda: {
      int count = 0;
      try {
        count = cv::cuda::getCudaEnabledDeviceCount();
      } catch (const cv::Exception&) {
        count = 0;
      }
      if (count <= device.index) {
        return Status(ErrorCode::kInvalidArgument,
                      "device " + device.name + ": OpenCV sees " + std::to_string(count) +
                          " CUDA device(s) (this OpenCV was built without CUDA, or none is "
                          "present)");
      }
      return DnnTarget{cv::dnn::DNN_BACKEND_CUDA, cv::dnn::DNN_TARGET_CUDA};
    }
    case Device::Kind::kNpu:
      break;
  }
  return Status(ErrorCode::kInvalidArgument,
                "device " + device.name + ": this build has no NPU backend compiled in");
}

StatusOr<std::vector<DeclaredInput>> ReadOnnxInputs(const std::string& path) {
  VSIEVE_RETURN_IF_ERROR(FileReadable(path, "ONNX model"));
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<DeclaredInput> inputs;
  std::set<std::string, std::less<>> initializers;
  bool has_graph = false;
  const bool ok = ForEach(bytes, 7, [&](std::string_view graph, uint64_t) {
    has_graph = true;
    return ForEach(graph, 5,
                   [&](std::string_view tensor, uint64_t) {
                     return ForEach(tensor, 8, [&](std::string_view name, uint64_t) {
                       initializers.emplace(name);
                       return true;
                     });
                   }) &&
           ForEach(graph, 11, [&](std::string_view info, uint64_t) {
             DeclaredInput input;
             if (!ParseValueInfo(info, &input)) return false;
             inputs.push_back(std::move(input));
             return true;
           });
  });
  if (!ok || !has_graph) {
    return Status(ErrorCode::kModelFailed, "'" + path + "' is not an ONNX model (no graph)");
  }
  std::erase_if(inputs, [&](const DeclaredInput& input) {
    return initializers.find(input.name) != initializers.end();
  });
  return inputs;
}

DnnModel::DnnModel(cv::dnn::Net net, std::string path, Device device, Dims declared)
    : net_(std::move(net)),
      path_(std::move(path)),
      device_(std::move(device)),
      declared_(std::move(declared)) {}

StatusOr<std::unique_ptr<DnnModel>> DnnModel::Load(const std::string& model, const std::string& cfg,
                                                   const Device& device) {
  VSIEVE_ASSIGN_OR_RETURN(DnnTarget target, DnnTargetFor(device));
  Dims declared;
  if (cfg.empty()) {
    VSIEVE_ASSIGN_OR_RETURN(std::vector<DeclaredInput> inputs, ReadOnnxInputs(model));
    if (inputs.empty()) {
      return Status(ErrorCode::kModelFailed, "ONNX model '" + model + "' declares no input");
    }
    if (inputs.size() > 1) {
      return Status(ErrorCode::kModelFailed, "ONNX model '" + model + "' declares " +
                                                 std::to_string(inputs.size()) +
                                                 " inputs; one image/clip input is supported");
    }
    declared = inputs.front().dims;
  } else {
    VSIEVE_RETURN_IF_ERROR(FileReadable(cfg, "darknet cfg"));
    VSIEVE_RETURN_IF_ERROR(FileReadable(model, "darknet weights"));
    declared = DarknetInput(cfg);
  }
  try {
    cv::dnn::Net net =
        cfg.empty() ? cv::dnn::readNetFromONNX(model) : cv::dnn::readNetFromDarknet(cfg, model);
    if (net.empty())
      return Status(ErrorCode::kModelFailed, "OpenCV read an empty net from '" + model + "'");
    net.setPreferableBackend(target.backend);
    net.setPreferableTarget(target.target);
    std::unique_ptr<DnnModel> loaded(new DnnModel(std::move(net), model, device, declared));
    loaded->output_names_ = loaded->net_.getUnconnectedOutLayersNames();
    return loaded;
  } catch (const cv::Exception& e) {
    return Status(ErrorCode::kModelFailed, "loading '" + model + "': " + e.what());
  }
}

Status DnnModel::CheckInput(const Dims& expected, const std::string& what) const {
  if (declared_.empty()) return Status::Ok();
  bool same = declared_.size() == expected.size();
  for (size_t i = 1; same && i < expected.size(); ++i) {
    same = declared_[i] < 0 || expected[i] < 0 || declared_[i] == expected[i];
  }
  if (same) return Status::Ok();
  return Status(ErrorCode::kModelFailed, "model '" + path_ + "' declares input " +
                                             DimsText(declared_) + "; expected " +
                                             DimsText(expected) + " (" + what + ")");
}

StatusOr<std::vector<cv::Mat>> DnnModel::Forward(const cv::Mat& blob) {
  try {
    net_.setInput(blob);
    std::vector<cv::Mat> outs;
    net_.forward(outs, output_names_);
    return outs;
  } catch (const cv::Exception& e) {
    std::vector<int> shape(blob.size.p, blob.size.p + blob.dims);
    Dims dims(shape.begin(), shape.end());
    return Status(ErrorCode::kModelFailed,
                  "running '" + path_ + "' on input " + DimsText(dims) + ": " + e.what());
  }
}

StatusOr<std::vector<std::vector<cv::Mat>>> DnnModel::RunPass(const std::vector<cv::Mat>& items,
                                                              size_t begin, size_t count) {
  const int batch = fixed_batch_ ? capacity_ : static_cast<int>(count);
  std::vector<int> shape = {batch};
  shape.insert(shape.end(), item_shape_.begin(), item_shape_.end());
  cv::Mat blob(static_cast<int>(shape.size()), shape.data(), CV_32F);
  const size_t item_bytes = blob.total() / static_cast<size_t>(batch) * sizeof(float);
  for (int i = 0; i < batch; ++i) {
    const cv::Mat& item = items[begin + std::min<size_t>(i, count - 1)];  // pad with the last
    if (item.total() * item.elemSize() != item_bytes || item.type() != CV_32F ||
        !item.isContinuous()) {
      return Status(ErrorCode::kInternal, "DnnModel item does not match the prepared shape");
    }
    std::memcpy(blob.data + static_cast<size_t>(i) * item_bytes, item.data, item_bytes);
  }
  VSIEVE_ASSIGN_OR_RETURN(std::vector<cv::Mat> outs, Forward(blob));
  std::vector<std::vector<cv::Mat>> per_item(count);
  for (size_t i = 0; i < count; ++i) {
    for (const cv::Mat& out : outs) {
      if (batch > 1 && (out.dims < 1 || out.size[0] != batch)) {
        return Status(ErrorCode::kModelFailed, "'" + path_ + "' returned an output without the " +
                                                   std::to_string(batch) + "-item batch dimension");
      }
      per_item[i].push_back(ItemSlice(out, static_cast<int>(i), batch, batch > 1));
    }
  }
  return per_item;
}

Status DnnModel::PrepareBatching(const std::vector<int>& item_shape, int max_batch) {
  item_shape_ = item_shape;
  capacity_ = 1;
  fixed_batch_ = false;
  const std::vector<cv::Mat> trial = {TrialItem(item_shape, 0), TrialItem(item_shape, 1)};
  Dims item_dims(item_shape.begin(), item_shape.end());
  item_dims.insert(item_dims.begin(), 1);
  if (!declared_.empty() && declared_[0] > 1) {
    capacity_ = static_cast<int>(declared_[0]);
    fixed_batch_ = true;
  }
  const auto single = [&](size_t index) { return RunPass(trial, index, 1); };
  const auto start = std::chrono::steady_clock::now();
  auto first = single(0);
  first_pass_ms_ =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (!first.ok()) {
    return first.status().WithContext("trial pass of '" + path_ + "' on input " +
                                      DimsText(item_dims));
  }
  trial_outputs_ = (*first)[0];
  if (fixed_batch_) return Status::Ok();
  if (max_batch < 2) return Status::Ok();
  auto second = single(1);
  if (!second.ok()) return second.status();
  // A model whose graph hard-codes batch 1 (a Reshape to [1, ...]) may still accept two items
  // and mix them up; only outputs that match single passes count.
  capacity_ = 2;
  auto both = QuietRunPass(trial, 0, 2);
  capacity_ = 1;
  if (!both.ok()) return Status::Ok();
  for (size_t i = 0; i < 2; ++i) {
    const auto& alone = i == 0 ? (*first)[0] : (*second)[0];
    for (size_t k = 0; k < alone.size(); ++k) {
      if (!Close(alone[k], (*both)[i][k])) return Status::Ok();
    }
  }
  capacity_ = max_batch;
  return Status::Ok();
}

StatusOr<std::vector<std::vector<cv::Mat>>> DnnModel::QuietRunPass(
    const std::vector<cv::Mat>& items, size_t begin, size_t count) {
  // OpenCV logs an ERROR line before it throws on a batch the graph cannot take; that is an
  // expected answer here. The log level is process-wide: the lock keeps trial passes from
  // restoring each other's level.
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  const auto level = cv::utils::logging::getLogLevel();
  cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
  auto result = RunPass(items, begin, count);
  cv::utils::logging::setLogLevel(level);
  return result;
}

StatusOr<std::vector<std::vector<cv::Mat>>> DnnModel::RunItems(const std::vector<cv::Mat>& items) {
  std::vector<std::vector<cv::Mat>> results;
  results.reserve(items.size());
  if (item_shape_.empty())
    return Status(ErrorCode::kInternal, "DnnModel::PrepareBatching not called");
  for (size_t begin = 0; begin < items.size(); begin += static_cast<size_t>(capacity_)) {
    const size_t count = std::min(items.size() - begin, static_cast<size_t>(capacity_));
    VSIEVE_ASSIGN_OR_RETURN(auto pass, RunPass(items, begin, count));
    for (auto& item : pass) results.push_back(std::move(item));
  }
  return results;
}

ItemModel::Warmup DnnModel::warmup() const {
  Warmup warmup;
  for (const cv::Mat& output : trial_outputs_) warmup.output_shapes.push_back(MatShape(output));
  warmup.first_pass_ms = first_pass_ms_;
  return warmup;
}

}  // namespace vsieve::models
