#include "storage/tier_key.h"

namespace vsieve::storage {

using common::ErrorCode;
using common::Status;

Status ValidateTierKey(std::string_view key) {
  if (key.empty()) return Status(ErrorCode::kInvalidArgument, "empty object key");
  if (key.find('\0') != std::string_view::npos) {
    return Status(ErrorCode::kInvalidArgument, "object key contains a NUL byte");
  }
  if (key.front() == '/') {
    return Status(ErrorCode::kInvalidArgument,
                  "object key '" + std::string(key) + "' is absolute (starts with '/')");
  }
  size_t start = 0;
  while (start <= key.size()) {
    const size_t slash = key.find('/', start);
    const size_t end = slash == std::string_view::npos ? key.size() : slash;
    const std::string_view segment = key.substr(start, end - start);
    if (segment == ".." || segment == ".") {
      return Status(ErrorCode::kInvalidArgument, "object key '" + std::string(key) + "' has a '" +
                                                     std::string(segment) +
                                                     "' segment (it would escape the tier's root)");
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return Status::Ok();
}

Status ValidateTierBucket(std::string_view bucket) {
  if (bucket.empty()) return Status(ErrorCode::kInvalidArgument, "empty bucket");
  if (bucket.find('\0') != std::string_view::npos || bucket.find('/') != std::string_view::npos ||
      bucket == "." || bucket == "..") {
    return Status(
        ErrorCode::kInvalidArgument,
        "bucket '" + std::string(bucket.substr(0, bucket.find('\0'))) + "' is not a plain name");
  }
  return Status::Ok();
}

std::string UriEncode(std::string_view text, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    const bool unreserved = (byte >= 'A' && byte <= 'Z') || (byte >= 'a' && byte <= 'z') ||
                            (byte >= '0' && byte <= '9') || byte == '-' || byte == '.' ||
                            byte == '_' || byte == '~';
    if (unreserved || (keep_slash && byte == '/')) {
      out += c;
    } else {
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 15];
    }
  }
  return out;
}

std::string SubstituteBucket(std::string_view pattern, std::string_view bucket) {
  constexpr std::string_view kPlaceholder = "{bucket}";
  std::string out;
  size_t start = 0;
  while (true) {
    const size_t at = pattern.find(kPlaceholder, start);
    if (at == std::string_view::npos) break;
    out += pattern.substr(start, at - start);
    out += bucket;
    start = at + kPlaceholder.size();
  }
  out += pattern.substr(start);
  return out;
}

}  // namespace vsieve::storage
