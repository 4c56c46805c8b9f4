#include "models/instance_pool.h"

#include <charconv>

namespace vsieve::models {

common::StatusOr<Device> ParseDevice(const std::string& text) {
  const auto bad = [&](const std::string& why) {
    return common::Status(common::ErrorCode::kInvalidArgument, "device " + text + ": " + why);
  };
  const std::size_t colon = text.find(':');
  if (colon == std::string::npos) return bad("expected cpu:N, cuda:N or npu:N");
  const std::string kind = text.substr(0, colon);
  const std::string number = text.substr(colon + 1);
  int index = -1;
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), index);
  if (number.empty() || ec != std::errc() || end != number.data() + number.size() || index < 0) {
    return bad("expected cpu:N, cuda:N or npu:N with N a device number");
  }
  Device device;
  device.index = index;
  device.name = text;
  if (kind == "cpu") {
    device.kind = Device::Kind::kCpu;
    return device;
  }
  if (kind == "cuda") {
    return bad("this build has no CUDA backend (OpenCV DNN was built without CUDA)");
  }
  if (kind == "npu") return bad("this build has no NPU backend compiled in");
  return bad("unknown device kind '" + kind + "' (expected cpu:N, cuda:N or npu:N)");
}

}  // namespace vsieve::models
