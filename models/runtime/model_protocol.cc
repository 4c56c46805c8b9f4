#include "models/runtime/model_protocol.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

namespace vsieve::models {
namespace {

using common::ErrorCode;
using common::Status;
using common::StatusOr;

constexpr uint32_t kMagic = 0x574d5356;  // "VSMW" in little-endian memory order
constexpr uint32_t kMaxDims = 16;

struct Header {
  uint32_t magic;
  uint32_t type;
  uint64_t length;
};
static_assert(sizeof(Header) == 16);

bool KnownType(uint32_t type) { return type <= static_cast<uint32_t>(MessageType::kBuild); }

// Waits until `fd` is ready for `events` or the deadline passes.
Status WaitReady(int fd, short events, FrameChannel::Deadline deadline) {
  for (;;) {
    int timeout_ms = -1;
    if (deadline != FrameChannel::Deadline::max()) {
      const auto left = deadline - FrameChannel::Clock::now();
      if (left <= FrameChannel::Clock::duration::zero()) {
        return Status(ErrorCode::kTimeout, "deadline passed");
      }
      timeout_ms = static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(left).count());
    }
    pollfd p{fd, events, 0};
    const int n = poll(&p, 1, timeout_ms);
    if (n > 0) return Status::Ok();  // ready, or HUP/ERR that the next call reports
    if (n < 0 && errno != EINTR) {
      return Status(ErrorCode::kModelFailed, std::string("poll: ") + std::strerror(errno));
    }
  }
}

void AppendU32(std::string* out, uint32_t value) {
  out->append(reinterpret_cast<const char*>(&value), sizeof(value));
}

Status AppendTensor(std::string* out, const cv::Mat& tensor) {
  if (tensor.empty()) {
    AppendU32(out, 0);
    return Status::Ok();
  }
  if (tensor.type() != CV_32F) {
    return Status(ErrorCode::kInvalidArgument, "tensors must be single-channel CV_32F (got type " +
                                                   std::to_string(tensor.type()) + ")");
  }
  const cv::Mat dense = tensor.isContinuous() ? tensor : tensor.clone();
  AppendU32(out, static_cast<uint32_t>(dense.dims));
  for (int i = 0; i < dense.dims; ++i) AppendU32(out, static_cast<uint32_t>(dense.size[i]));
  out->append(reinterpret_cast<const char*>(dense.data), dense.total() * sizeof(float));
  return Status::Ok();
}

// Reads values from a payload, failing cleanly when it runs out.
class PayloadReader {
 public:
  PayloadReader(std::string_view payload, const char* what) : rest_(payload), what_(what) {}

  StatusOr<uint32_t> U32() {
    if (rest_.size() < sizeof(uint32_t)) return Bad("truncated");
    uint32_t value = 0;
    std::memcpy(&value, rest_.data(), sizeof(value));
    rest_.remove_prefix(sizeof(value));
    return value;
  }

  StatusOr<cv::Mat> Tensor() {
    VSIEVE_ASSIGN_OR_RETURN(const uint32_t ndims, U32());
    if (ndims == 0) return cv::Mat();
    if (ndims > kMaxDims) return Bad("tensor with " + std::to_string(ndims) + " dimensions");
    std::vector<int> dims(ndims);
    uint64_t count = 1;
    for (uint32_t i = 0; i < ndims; ++i) {
      VSIEVE_ASSIGN_OR_RETURN(const uint32_t dim, U32());
      if (dim > (uint32_t{1} << 30)) return Bad("tensor dimension too large");
      dims[i] = static_cast<int>(dim);
      count *= dim;
      if (count > kMaxPayloadBytes) return Bad("tensor too large");
    }
    const uint64_t bytes = count * sizeof(float);
    if (rest_.size() < bytes) return Bad("truncated tensor data");
    cv::Mat tensor(static_cast<int>(ndims), dims.data(), CV_32F);
    if (bytes > 0) std::memcpy(tensor.data, rest_.data(), bytes);
    rest_.remove_prefix(bytes);
    return tensor;
  }

  Status Done() { return rest_.empty() ? Status::Ok() : Bad("trailing bytes"); }

  Status Bad(const std::string& why) const {
    return Status(ErrorCode::kModelFailed, std::string("bad ") + what_ + " payload: " + why);
  }

 private:
  std::string_view rest_;
  const char* what_;
};

}  // namespace

std::string MessageTypeName(MessageType type) {
  switch (type) {
    case MessageType::kError:
      return "ERROR";
    case MessageType::kPredict:
      return "PREDICT";
    case MessageType::kReply:
      return "REPLY";
    case MessageType::kBuildFinish:
      return "BUILD_FINISH";
    case MessageType::kExit:
      return "EXIT";
    case MessageType::kBuild:
      return "BUILD";
  }
  return "UNKNOWN(" + std::to_string(static_cast<uint32_t>(type)) + ")";
}

Status FrameChannel::Fail(ChannelError error, Status status) {
  last_error_ = error;
  return status;
}

Status FrameChannel::WriteAll(const char* data, size_t size, Deadline deadline) {
  while (size > 0) {
    ssize_t n = send(fd_out_, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK) n = write(fd_out_, data, size);
    if (n > 0) {
      data += n;
      size -= static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      Status ready = WaitReady(fd_out_, POLLOUT, deadline);
      if (ready.code() == ErrorCode::kTimeout) return Fail(ChannelError::kTimeout, ready);
      if (!ready.ok()) return Fail(ChannelError::kIo, ready);
      continue;
    }
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
      return Fail(ChannelError::kClosed,
                  Status(ErrorCode::kModelFailed, "peer closed the channel"));
    }
    return Fail(ChannelError::kIo,
                Status(ErrorCode::kModelFailed, std::string("write: ") + std::strerror(errno)));
  }
  return Status::Ok();
}

Status FrameChannel::ReadAll(char* data, size_t size, Deadline deadline, bool at_boundary) {
  size_t done = 0;
  while (done < size) {
    const ssize_t n = read(fd_in_, data + done, size - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) {
      if (at_boundary && done == 0) {
        return Fail(ChannelError::kEof, Status(ErrorCode::kModelFailed, "peer closed the channel"));
      }
      return Fail(ChannelError::kClosed,
                  Status(ErrorCode::kModelFailed, "peer closed the channel mid-frame"));
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      Status ready = WaitReady(fd_in_, POLLIN, deadline);
      if (ready.code() == ErrorCode::kTimeout) return Fail(ChannelError::kTimeout, ready);
      if (!ready.ok()) return Fail(ChannelError::kIo, ready);
      continue;
    }
    if (errno == ECONNRESET) {
      return Fail(ChannelError::kClosed, Status(ErrorCode::kModelFailed, "peer reset the channel"));
    }
    return Fail(ChannelError::kIo,
                Status(ErrorCode::kModelFailed, std::string("read: ") + std::strerror(errno)));
  }
  return Status::Ok();
}

Status FrameChannel::Send(MessageType type, std::string_view payload, Deadline deadline) {
  last_error_ = ChannelError::kNone;
  const Header header{kMagic, static_cast<uint32_t>(type), payload.size()};
  VSIEVE_RETURN_IF_ERROR(
      WriteAll(reinterpret_cast<const char*>(&header), sizeof(header), deadline));
  return WriteAll(payload.data(), payload.size(), deadline);
}

StatusOr<Message> FrameChannel::Receive(Deadline deadline) {
  last_error_ = ChannelError::kNone;
  Header header{};
  VSIEVE_RETURN_IF_ERROR(ReadAll(reinterpret_cast<char*>(&header), sizeof(header), deadline, true));
  if (header.magic != kMagic) {
    return Fail(ChannelError::kBadFrame, Status(ErrorCode::kModelFailed, "bad frame magic"));
  }
  if (!KnownType(header.type)) {
    return Fail(ChannelError::kBadFrame,
                Status(ErrorCode::kModelFailed, "bad frame type " + std::to_string(header.type)));
  }
  if (header.length > kMaxPayloadBytes) {
    return Fail(ChannelError::kBadFrame,
                Status(ErrorCode::kModelFailed,
                       "frame length " + std::to_string(header.length) + " over the limit"));
  }
  Message message;
  message.type = static_cast<MessageType>(header.type);
  message.payload.resize(header.length);
  VSIEVE_RETURN_IF_ERROR(ReadAll(message.payload.data(), message.payload.size(), deadline, false));
  return message;
}

StatusOr<std::string> EncodeItems(const std::vector<cv::Mat>& items) {
  std::string out;
  size_t bytes = sizeof(uint32_t);
  for (const cv::Mat& item : items) bytes += 64 + item.total() * item.elemSize();
  out.reserve(bytes);
  AppendU32(&out, static_cast<uint32_t>(items.size()));
  for (const cv::Mat& item : items) VSIEVE_RETURN_IF_ERROR(AppendTensor(&out, item));
  return out;
}

StatusOr<std::vector<cv::Mat>> DecodeItems(std::string_view payload) {
  PayloadReader reader(payload, "PREDICT");
  VSIEVE_ASSIGN_OR_RETURN(const uint32_t count, reader.U32());
  if (count > payload.size()) return reader.Bad("item count " + std::to_string(count));
  std::vector<cv::Mat> items;
  items.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    VSIEVE_ASSIGN_OR_RETURN(cv::Mat item, reader.Tensor());
    items.push_back(std::move(item));
  }
  VSIEVE_RETURN_IF_ERROR(reader.Done());
  return items;
}

StatusOr<std::string> EncodeOutputs(const std::vector<std::vector<cv::Mat>>& outputs) {
  std::string out;
  AppendU32(&out, static_cast<uint32_t>(outputs.size()));
  for (const auto& item : outputs) {
    AppendU32(&out, static_cast<uint32_t>(item.size()));
    for (const cv::Mat& tensor : item) VSIEVE_RETURN_IF_ERROR(AppendTensor(&out, tensor));
  }
  return out;
}

StatusOr<std::vector<std::vector<cv::Mat>>> DecodeOutputs(std::string_view payload) {
  PayloadReader reader(payload, "REPLY");
  VSIEVE_ASSIGN_OR_RETURN(const uint32_t count, reader.U32());
  if (count > payload.size()) return reader.Bad("item count " + std::to_string(count));
  std::vector<std::vector<cv::Mat>> outputs(count);
  for (auto& item : outputs) {
    VSIEVE_ASSIGN_OR_RETURN(const uint32_t tensors, reader.U32());
    if (tensors > payload.size()) return reader.Bad("output count " + std::to_string(tensors));
    for (uint32_t i = 0; i < tensors; ++i) {
      VSIEVE_ASSIGN_OR_RETURN(cv::Mat tensor, reader.Tensor());
      item.push_back(std::move(tensor));
    }
  }
  VSIEVE_RETURN_IF_ERROR(reader.Done());
  return outputs;
}

std::string EncodeError(const Status& status) {
  return nlohmann::json{{"code", std::string(common::ErrorCodeName(status.code()))},
                        {"message", status.message()},
                        {"retryable", status.retryable()}}
      .dump();
}

Status DecodeError(std::string_view payload) {
  const nlohmann::json json = nlohmann::json::parse(payload.begin(), payload.end(), nullptr, false);
  ErrorCode code = ErrorCode::kModelFailed;
  if (!json.is_object() || !json.contains("message") || !json["message"].is_string()) {
    return Status(code, std::string(payload));
  }
  if (json.contains("code") && json["code"].is_string()) {
    if (!common::ParseErrorCode(json["code"].get<std::string>(), &code) || code == ErrorCode::kOk) {
      code = ErrorCode::kModelFailed;
    }
  }
  const bool retryable = json.value("retryable", false);
  return Status(code, json["message"].get<std::string>(), retryable);
}

}  // namespace vsieve::models
