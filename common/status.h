#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace vsieve::common {

// The closed list of error codes a result row may carry (DESIGN.md, "Output row"). kOk is
// never written to a row. Add a code here and to ErrorCodeName() together; the names are a
// public contract read by operators (`vsieve requeue --error-code C`).
enum class ErrorCode {
  kOk,
  kInputEmpty,             // zero-byte input
  kContainerUnrecognized,  // no demuxer accepts the bytes (random data, text, HTML)
  kNoVideoStream,          // a container with no decodable video stream (audio only)
  kTruncated,              // the file ends before the frames it declares
  kDecodeErrorsExceeded,   // demux/decode error counts above the configured thresholds
  kUnsupportedCodec,       // no decoder for the stream's codec
  kDimensionsExceedLimit,  // declared width/height/pixels above the limits, or too small
  kObjectNotFound,         // the object store or file system has no such object
  kObjectForbidden,        // access denied by the store
  kFetchFailed,            // transport failure after retries
  kContentMismatch,        // size/ETag/magic check failed (an HTML page served as video)
  kTimeout,                // a deadline (open, decode, per-video) passed
  kModelFailed,            // a model could not load or run
  kAttemptsExhausted,      // claimed more than max_attempts times without finishing (the
                           // daemon died or was killed on this video each time: a poison pill)
  kEncodeFailed,           // the cropped video could not be encoded or written ([output])
  kUploadFailed,           // the cropped video could not be stored at [output] url (after
                           // retries when the failure was transient)
  kInvalidArgument,        // bad configuration or request; never written for a video
  kInternal,               // a bug; the message says where
};

// Stable upper-case name, e.g. "CONTAINER_UNRECOGNIZED".
std::string_view ErrorCodeName(ErrorCode code);

// Parses a name produced by ErrorCodeName(); returns false for unknown names.
bool ParseErrorCode(std::string_view name, ErrorCode* code);

// The outcome of an operation that can fail. Carries a code from the closed list, a message for
// humans, the pipeline stage that failed ("fetch", "decode", "regions", "heads", ...) and whether
// trying again may succeed. Cheap to copy; safe to pass between threads by value.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message, bool retryable = false)
      : code_(code), message_(std::move(message)), retryable_(retryable) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::string& stage() const { return stage_; }
  bool retryable() const { return retryable_; }

  // Returns a copy whose message is prefixed with `context` ("opening x.mp4: ...").
  Status WithContext(std::string_view context) const;
  // Returns a copy tagged with the pipeline stage, unless one is already set.
  Status WithStage(std::string_view stage) const;

  // "CODE: message" for logs.
  std::string ToString() const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
  std::string stage_;
  bool retryable_ = false;
};

// Either a value or a non-OK Status. Accessing value() of an error is a programming error.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : data_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  StatusOr(Status status) : data_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(data_).ok() && "StatusOr built from an OK status");
  }

  bool ok() const { return std::holds_alternative<T>(data_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(data_);
  }
  T& value() & {
    assert(ok());
    return std::get<T>(data_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<T>(data_);
  }
  T&& value() && {
    assert(ok());
    return std::get<T>(std::move(data_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<Status, T> data_;
};

}  // namespace vsieve::common

// Returns early from the enclosing function when `expr` yields a non-OK Status.
#define VSIEVE_RETURN_IF_ERROR(expr)                  \
  do {                                                \
    ::vsieve::common::Status vsieve_status_ = (expr); \
    if (!vsieve_status_.ok()) return vsieve_status_;  \
  } while (false)

#define VSIEVE_CONCAT_INNER_(a, b) a##b
#define VSIEVE_CONCAT_(a, b) VSIEVE_CONCAT_INNER_(a, b)

// `VSIEVE_ASSIGN_OR_RETURN(auto x, MakeX());` declares x from a StatusOr or returns its error.
#define VSIEVE_ASSIGN_OR_RETURN(lhs, expr) \
  VSIEVE_ASSIGN_OR_RETURN_IMPL_(VSIEVE_CONCAT_(vsieve_statusor_, __LINE__), lhs, expr)
#define VSIEVE_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()
