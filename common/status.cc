#include "common/status.h"

#include <array>

namespace vsieve::common {
namespace {

struct CodeName {
  ErrorCode code;
  std::string_view name;
};

constexpr std::array kCodeNames = {
    CodeName{ErrorCode::kOk, "OK"},
    CodeName{ErrorCode::kInputEmpty, "INPUT_EMPTY"},
    CodeName{ErrorCode::kContainerUnrecognized, "CONTAINER_UNRECOGNIZED"},
    CodeName{ErrorCode::kNoVideoStream, "NO_VIDEO_STREAM"},
    CodeName{ErrorCode::kTruncated, "TRUNCATED"},
    CodeName{ErrorCode::kDecodeErrorsExceeded, "DECODE_ERRORS_EXCEEDED"},
    CodeName{ErrorCode::kUnsupportedCodec, "UNSUPPORTED_CODEC"},
    CodeName{ErrorCode::kDimensionsExceedLimit, "DIMENSIONS_EXCEED_LIMIT"},
    CodeName{ErrorCode::kObjectNotFound, "OBJECT_NOT_FOUND"},
    CodeName{ErrorCode::kObjectForbidden, "OBJECT_FORBIDDEN"},
    CodeName{ErrorCode::kFetchFailed, "FETCH_FAILED"},
    CodeName{ErrorCode::kContentMismatch, "CONTENT_MISMATCH"},
    CodeName{ErrorCode::kTimeout, "TIMEOUT"},
    CodeName{ErrorCode::kModelFailed, "MODEL_FAILED"},
    CodeName{ErrorCode::kAttemptsExhausted, "ATTEMPTS_EXHAUSTED"},
    CodeName{ErrorCode::kEncodeFailed, "ENCODE_FAILED"},
    CodeName{ErrorCode::kUploadFailed, "UPLOAD_FAILED"},
    CodeName{ErrorCode::kInvalidArgument, "INVALID_ARGUMENT"},
    CodeName{ErrorCode::kInternal, "INTERNAL"},
};

}  // namespace

std::string_view ErrorCodeName(ErrorCode code) {
  for (const auto& entry : kCodeNames) {
    if (entry.code == code) return entry.name;
  }
  return "INTERNAL";
}

bool ParseErrorCode(std::string_view name, ErrorCode* code) {
  for (const auto& entry : kCodeNames) {
    if (entry.name == name) {
      *code = entry.code;
      return true;
    }
  }
  return false;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  Status copy = *this;
  copy.message_ = std::string(context) + ": " + message_;
  return copy;
}

Status Status::WithStage(std::string_view stage) const {
  if (ok() || !stage_.empty()) return *this;
  Status copy = *this;
  copy.stage_ = std::string(stage);
  return copy;
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out(ErrorCodeName(code_));
  if (!stage_.empty()) out += " [" + stage_ + "]";
  out += ": " + message_;
  return out;
}

}  // namespace vsieve::common
