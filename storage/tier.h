#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "storage/reader.h"

namespace vsieve::storage {

// Where a tier writes the bytes it downloads: a temporary file in the disk cache. The sink knows
// how many bytes it may take (the cache's byte limit). Owned by the caller of Tier::Fetch();
// used by one thread at a time.
class DownloadSink {
 public:
  virtual ~DownloadSink() = default;
  // Called once the object's size is known (Content-Length, HEAD), before its bytes, to reserve
  // room in the cache (which may evict unpinned files). Errors: kFetchFailed when the object can
  // never fit (not retryable) or no room can be made now (retryable).
  virtual common::Status Reserve(int64_t bytes) = 0;
  // Appends bytes. Errors: kFetchFailed when the total would pass the reservation, or the cache
  // limit when nothing was reserved (the byte cap of a body of unknown size).
  virtual common::Status Write(const char* data, size_t size) = 0;
  // Bytes written so far (where a resumed download continues from).
  virtual int64_t written() const = 0;
  // Drops everything written (a resume that is not possible starts again from byte 0).
  virtual common::Status Restart() = 0;
};

// What a tier served. Remote tiers have written the object into the sink; in-place tiers
// (a mounted folder) return the path of the object where it already is.
struct TierObject {
  std::string in_place_path;  // non-empty: read the object here; the sink was not used
  int64_t size_bytes = 0;
  std::string etag;  // as the server gave it, quotes included; empty when unknown
};

// One place an object may be: a mounted folder (kind "local"), a distributed cache over HTTP
// ("dcache"), an object store over S3's API ("object"). Tried in configured order by
// TieredReader. Safe to call from several threads; blocks for the transfer.
// Errors: kObjectNotFound (a miss: the next tier is tried), kObjectForbidden, kFetchFailed
// (retryable after the tier's own retries), kContentMismatch (size, ETag or an HTML error page).
class Tier {
 public:
  virtual ~Tier() = default;
  // The configured name ("alluxio"); used in logs and metrics labels.
  virtual const std::string& name() const = 0;
  // "local", "dcache" or "object": what result_info.source_tier says when this tier served.
  virtual std::string_view source_tier() const = 0;
  virtual common::StatusOr<TierObject> Fetch(const ObjectRef& ref, DownloadSink* sink) = 0;
};

}  // namespace vsieve::storage
