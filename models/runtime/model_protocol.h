#pragma once

#include <chrono>
#include <cstdint>
#include <opencv2/core.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace vsieve::models {

// The messages between the daemon and a model child process (seed 003's pipe protocol, plus
// BUILD, which the seed passes as process arguments):
//
//   parent -> child  BUILD    JSON ItemModelSpec          -> BUILD_FINISH {"batch_capacity": N,
//                                                             "output_shapes", "first_pass_ms"}
//                                                          | ERROR
//   parent -> child  PREDICT  items (tensors)             -> REPLY (per item, its outputs)
//                                                          | ERROR
//   parent -> child  EXIT     (empty)                     -> the child exits 0
//
// ERROR carries {"code": "MODEL_FAILED", "message": "...", "retryable": false}.
// The numbers of seed 003 are kept; BUILD is new.
enum class MessageType : uint32_t {
  kError = 0,
  kPredict = 1,
  kReply = 2,
  kBuildFinish = 3,
  kExit = 4,
  kBuild = 5,
};

// "ERROR", "PREDICT", "REPLY", "BUILD_FINISH", "EXIT", "BUILD", or "UNKNOWN(n)".
std::string MessageTypeName(MessageType type);

// One message as read from a channel.
struct Message {
  MessageType type = MessageType::kError;
  std::string payload;
};

// Largest payload a channel accepts (a bigger length in a header is a bad frame).
inline constexpr uint64_t kMaxPayloadBytes = uint64_t{4} << 30;

// Why a channel operation failed.
enum class ChannelError {
  kNone,
  kEof,       // the peer closed its end between two frames
  kClosed,    // the peer closed its end mid-frame, or while we wrote (EPIPE, ECONNRESET)
  kTimeout,   // the deadline passed
  kIo,        // another errno
  kBadFrame,  // a header with a wrong magic, unknown type or oversized length
};

// Frames messages over file descriptors (a socketpair or pipes): a 16-byte header {magic "VSMW",
// type, payload length} in host byte order (both ends are the same binary on one host), then the
// payload.
//
// Ownership: borrows the descriptors; the caller closes them. Writes use send(MSG_NOSIGNAL) on
// sockets so a dead peer is EPIPE, never SIGPIPE (on pipes the caller must ignore SIGPIPE).
// Thread-safety: none; one thread at a time. Blocking: with a finite deadline the descriptors
// must be non-blocking, and every call returns by the deadline; with Deadline::max() blocking
// descriptors are fine. Errors: kTimeout when the deadline passes, kModelFailed otherwise;
// last_error() says which kind.
class FrameChannel {
 public:
  using Clock = std::chrono::steady_clock;
  using Deadline = Clock::time_point;

  FrameChannel(int fd_in, int fd_out) : fd_in_(fd_in), fd_out_(fd_out) {}

  common::Status Send(MessageType type, std::string_view payload,
                      Deadline deadline = Deadline::max());
  common::StatusOr<Message> Receive(Deadline deadline = Deadline::max());

  // The kind of the last failure (kNone after a success).
  ChannelError last_error() const { return last_error_; }

 private:
  common::Status WriteAll(const char* data, size_t size, Deadline deadline);
  // Reads exactly `size` bytes; `at_boundary` says whether EOF here ends a frame cleanly.
  common::Status ReadAll(char* data, size_t size, Deadline deadline, bool at_boundary);
  common::Status Fail(ChannelError error, common::Status status);

  int fd_in_;
  int fd_out_;
  ChannelError last_error_ = ChannelError::kNone;
};

// Payload codecs. A tensor is {u32 ndims, i32 dims[ndims], f32 data[product]}; only
// single-channel CV_32F Mats are accepted (kInvalidArgument otherwise). An empty Mat is ndims 0.
// Decoders return kModelFailed ("bad PREDICT payload: ...") for truncated or inconsistent payloads.
// Pure; thread-safe.
common::StatusOr<std::string> EncodeItems(const std::vector<cv::Mat>& items);
common::StatusOr<std::vector<cv::Mat>> DecodeItems(std::string_view payload);
common::StatusOr<std::string> EncodeOutputs(const std::vector<std::vector<cv::Mat>>& outputs);
common::StatusOr<std::vector<std::vector<cv::Mat>>> DecodeOutputs(std::string_view payload);
std::string EncodeError(const common::Status& status);
// The status an ERROR payload carries (kModelFailed with the raw text if it is not our JSON).
common::Status DecodeError(std::string_view payload);

}  // namespace vsieve::models
