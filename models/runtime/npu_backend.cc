#include "models/runtime/npu_backend.h"

namespace vsieve::models {

common::StatusOr<std::unique_ptr<NpuBackend>> CreateNpuBackend() {
  return common::Status(common::ErrorCode::kInvalidArgument,
                        "npu backend not compiled in (this build has no vendor NPU runtime)");
}

}  // namespace vsieve::models
