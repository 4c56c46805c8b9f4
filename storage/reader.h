#pragma once

#include <string>

#include "common/status.h"

namespace vsieve::storage {

// Where a fetched video now lives and which tier served it.
struct FetchedObject {
  std::string local_path;   // a readable file on this machine
  std::string source_tier;  // "local", "dcache" or "object"
  long long size_bytes = 0;
};

// Makes the bytes of a video available as a local file. Implementations: LocalReader (paths and
// file:// URIs). Safe to call from several threads; blocks for the duration of the transfer.
// Errors: kObjectNotFound, kObjectForbidden, kFetchFailed (retryable), kInputEmpty.
class Reader {
 public:
  virtual ~Reader() = default;
  virtual common::StatusOr<FetchedObject> Fetch(const std::string& uri) = 0;
};

// Reads plain paths and file:// URIs in place: nothing is copied.
class LocalReader : public Reader {
 public:
  common::StatusOr<FetchedObject> Fetch(const std::string& uri) override;
};

}  // namespace vsieve::storage
