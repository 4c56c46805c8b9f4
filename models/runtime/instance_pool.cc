#include "models/runtime/instance_pool.h"

#include <algorithm>
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

DeviceBudgets::DeviceBudgets(std::map<std::string, double> budgets)
    : budgets_(std::move(budgets)) {}

double DeviceBudgets::budget(const std::string& device) const {
  const auto it = budgets_.find(device);
  return it == budgets_.end() ? 0.0 : std::max(0.0, it->second);
}

double DeviceBudgets::used(const std::string& device) const {
  std::lock_guard lock(mutex_);
  const auto it = used_.find(device);
  return it == used_.end() ? 0.0 : it->second;
}

bool DeviceBudgets::TryAcquire(const std::string& device, double cost) {
  if (!(cost > 0)) return true;
  const double limit = budget(device);
  std::lock_guard lock(mutex_);
  double& used = used_[device];
  // A small tolerance so that costs like 0.1 + 0.2 fill a budget of 0.3.
  if (limit > 0 && used + cost > limit + 1e-9) return false;
  used += cost;
  return true;
}

void DeviceBudgets::Release(const std::string& device, double cost) {
  if (cost > 0) {
    std::lock_guard lock(mutex_);
    double& used = used_[device];
    used = std::max(0.0, used - cost);
  }
  std::lock_guard lock(listeners_mutex_);
  for (const auto& [id, listener] : listeners_) listener();
}

int DeviceBudgets::AddListener(std::function<void()> listener) {
  std::lock_guard lock(listeners_mutex_);
  const int id = next_listener_++;
  listeners_[id] = std::move(listener);
  return id;
}

void DeviceBudgets::RemoveListener(int id) {
  std::lock_guard lock(listeners_mutex_);
  listeners_.erase(id);
}

}  // namespace vsieve::models
