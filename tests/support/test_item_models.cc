#include "tests/support/test_item_models.h"

#include <sys/prctl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>

#include "models/runtime/item_model.h"

namespace vsieve::models {
namespace {

using common::ErrorCode;
using common::Status;
using common::StatusOr;

enum class Misbehaviour { kNone, kAbort, kHang, kExit, kSlow, kFail };

struct TestModelSettings {
  Misbehaviour misbehaviour = Misbehaviour::kNone;
  double factor = 1.0;
  double value = 0.0;
  bool above = false;  // trigger when the first value is above `value`, not equal to it
  int exit_code = 3;
  int sleep_ms = 0;
};

class TestItemModel : public ItemModel {
 public:
  TestItemModel(TestModelSettings settings, int capacity, std::unique_ptr<ItemModel> inner)
      : settings_(settings), capacity_(capacity), inner_(std::move(inner)) {}

  int batch_capacity() const override {
    return inner_ != nullptr ? inner_->batch_capacity() : capacity_;
  }
  Warmup warmup() const override { return inner_ != nullptr ? inner_->warmup() : Warmup(); }

  StatusOr<std::vector<std::vector<cv::Mat>>> RunItems(const std::vector<cv::Mat>& items) override {
    if (settings_.misbehaviour == Misbehaviour::kSlow) {
      std::this_thread::sleep_for(std::chrono::milliseconds(settings_.sleep_ms));
    }
    std::vector<std::vector<cv::Mat>> outputs;
    outputs.reserve(items.size());
    for (const cv::Mat& item : items) {
      if (item.type() != CV_32F) {
        return Status(ErrorCode::kInvalidArgument, "test model items must be CV_32F");
      }
      if (item.total() > 0 && item.isContinuous() && Triggers(item.ptr<float>()[0])) {
        Misbehave();
        if (settings_.misbehaviour == Misbehaviour::kFail) {
          return Status(ErrorCode::kModelFailed, "test model refused an item");
        }
      }
      if (inner_ != nullptr) continue;
      cv::Mat out;
      item.convertTo(out, CV_32F, settings_.factor);
      outputs.push_back({out});
    }
    if (inner_ != nullptr) return inner_->RunItems(items);
    return outputs;
  }

 private:
  void Misbehave() const {
    switch (settings_.misbehaviour) {
      case Misbehaviour::kAbort:
        prctl(PR_SET_DUMPABLE, 0);  // no core file for a crash made on purpose
        std::abort();
      case Misbehaviour::kHang:
        for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
      case Misbehaviour::kExit:
        _exit(settings_.exit_code);
      default:
        break;
    }
  }

  bool Triggers(float first) const {
    const auto value = static_cast<double>(first);
    return settings_.above ? value > settings_.value : value == settings_.value;
  }

  TestModelSettings settings_;
  int capacity_;
  std::unique_ptr<ItemModel> inner_;  // computes the outputs when set
};

StatusOr<double> NumberParam(const ItemModelSpec& spec, const char* name,
                             std::optional<double> fallback) {
  const auto it = spec.params.find(name);
  if (it == spec.params.end()) {
    if (fallback) return *fallback;
    return Status(ErrorCode::kInvalidArgument,
                  "model kind '" + spec.kind + "' needs params." + name);
  }
  if (!it->is_number()) {
    return Status(ErrorCode::kInvalidArgument,
                  "model kind '" + spec.kind + "': params." + name + " must be a number");
  }
  return it->get<double>();
}

ItemModelFactory TestFactory(Misbehaviour misbehaviour) {
  return [misbehaviour](const ItemModelSpec& spec,
                        const Device&) -> StatusOr<std::unique_ptr<ItemModel>> {
    TestModelSettings settings;
    settings.misbehaviour = misbehaviour;
    VSIEVE_ASSIGN_OR_RETURN(settings.factor, NumberParam(spec, "factor", 1.0));
    const bool needs_value =
        misbehaviour != Misbehaviour::kNone && misbehaviour != Misbehaviour::kSlow;
    if (needs_value && spec.params.contains("above")) {
      VSIEVE_ASSIGN_OR_RETURN(settings.value, NumberParam(spec, "above", std::nullopt));
      settings.above = true;
    } else if (needs_value) {
      VSIEVE_ASSIGN_OR_RETURN(settings.value, NumberParam(spec, "value", std::nullopt));
    } else {
      settings.value = std::numeric_limits<double>::quiet_NaN();  // never equal
    }
    if (misbehaviour == Misbehaviour::kExit) {
      VSIEVE_ASSIGN_OR_RETURN(const double code, NumberParam(spec, "code", 3.0));
      settings.exit_code = static_cast<int>(code);
    }
    if (misbehaviour == Misbehaviour::kSlow) {
      VSIEVE_ASSIGN_OR_RETURN(const double ms, NumberParam(spec, "ms", std::nullopt));
      if (ms < 0) {
        return Status(ErrorCode::kInvalidArgument, "model kind 'slow': params.ms must be >= 0");
      }
      settings.sleep_ms = static_cast<int>(ms);
    }
    std::unique_ptr<ItemModel> inner;
    if (const auto it = spec.params.find("inner"); it != spec.params.end()) {
      if (!it->is_string()) {
        return Status(ErrorCode::kInvalidArgument,
                      "model kind '" + spec.kind + "': params.inner must be a kind name");
      }
      ItemModelSpec inner_spec = spec;
      inner_spec.kind = it->get<std::string>();
      inner_spec.params.erase("inner");
      VSIEVE_ASSIGN_OR_RETURN(inner, BuildItemModel(inner_spec));
    }
    return std::unique_ptr<ItemModel>(
        std::make_unique<TestItemModel>(settings, spec.max_batch, std::move(inner)));
  };
}

}  // namespace

void RegisterTestItemModelKinds() {
  static std::once_flag once;
  std::call_once(once, [] {
    RegisterItemModelKind("scale", TestFactory(Misbehaviour::kNone), true);
    RegisterItemModelKind("abort_on", TestFactory(Misbehaviour::kAbort), true);
    RegisterItemModelKind("hang_on", TestFactory(Misbehaviour::kHang), true);
    RegisterItemModelKind("exit_on", TestFactory(Misbehaviour::kExit), true);
    RegisterItemModelKind("slow", TestFactory(Misbehaviour::kSlow), true);
    RegisterItemModelKind("fail_on", TestFactory(Misbehaviour::kFail), true);
  });
}

}  // namespace vsieve::models
