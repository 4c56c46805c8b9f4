#include "tests/storage/file_sink.h"

#include <sstream>

namespace vsieve::testing {

using common::ErrorCode;
using common::Status;

FileSink::FileSink(std::string path, int64_t limit_bytes)
    : path_(std::move(path)),
      limit_bytes_(limit_bytes),
      out_(path_, std::ios::binary | std::ios::trunc) {}

Status FileSink::Reserve(int64_t bytes) {
  reserves_.push_back(bytes);
  if (limit_bytes_ >= 0 && bytes > limit_bytes_) {
    return Status(ErrorCode::kFetchFailed,
                  "object of " + std::to_string(bytes) + " bytes exceeds the sink limit");
  }
  return Status::Ok();
}

Status FileSink::Write(const char* data, size_t size) {
  if (limit_bytes_ >= 0 && written_ + static_cast<int64_t>(size) > limit_bytes_) {
    return Status(ErrorCode::kFetchFailed,
                  "the sink limit of " + std::to_string(limit_bytes_) + " bytes was reached");
  }
  out_.write(data, static_cast<std::streamsize>(size));
  out_.flush();
  if (!out_) return Status(ErrorCode::kFetchFailed, "write failed: " + path_, true);
  written_ += static_cast<int64_t>(size);
  return Status::Ok();
}

Status FileSink::Restart() {
  ++restarts_;
  out_.close();
  out_.open(path_, std::ios::binary | std::ios::trunc);
  written_ = 0;
  if (!out_) return Status(ErrorCode::kFetchFailed, "cannot truncate " + path_, true);
  return Status::Ok();
}

std::string FileSink::Contents() const {
  std::ifstream in(path_, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace vsieve::testing
