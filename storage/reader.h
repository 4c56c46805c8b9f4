#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace vsieve::storage {

// What to fetch: an input row's bucket and key (seed 001's `oss_bucket` and `video_path`) and
// the row's per-tier options. A plain path or file:// URI is a key with an empty bucket.
struct ObjectRef {
  std::string bucket;
  std::string key;
  bool use_dcache = true;  // false when the row's info says {"use_alluxio": false}

  // "bucket/key", or the key alone when there is no bucket. For logs and messages.
  std::string ToString() const { return bucket.empty() ? key : bucket + "/" + key; }
};

// A tier that failed on the way to the one that served (or to the last one): its name, the
// error code's name ("OBJECT_FORBIDDEN") and the message. Written to result_info.tier_errors.
struct TierError {
  std::string tier;
  std::string code;
  std::string message;
};

// Where a fetched video now lives and which tier served it. While `pin` is held, the file at
// `local_path` stays where it is (a cached copy is never evicted while in use); drop the pin
// once the video is decoded. `pin` may be null when nothing can move the file.
struct FetchedObject {
  std::string local_path;   // a readable file on this machine
  std::string source_tier;  // "local", "dcache" or "object" (result_info.source_tier)
  long long size_bytes = 0;
  bool cache_hit = false;  // served from the local disk cache
  std::shared_ptr<const void> pin;
  std::vector<TierError> tier_errors;  // tiers that failed before the one that served
};

// Makes the bytes of a video available as a local file. Implementations: LocalReader (paths and
// file:// URIs, read in place) and TieredReader (the configured tiers behind a disk cache).
// Safe to call from several threads; blocks for the duration of the transfer.
// Errors: kObjectNotFound, kObjectForbidden, kFetchFailed (retryable), kContentMismatch,
// kInputEmpty, kInvalidArgument (a key that is not a valid path).
class Reader {
 public:
  virtual ~Reader() = default;
  virtual common::StatusOr<FetchedObject> Fetch(const ObjectRef& ref) = 0;
};

// Reads plain paths and file:// URIs in place: nothing is copied. The bucket is ignored.
class LocalReader : public Reader {
 public:
  common::StatusOr<FetchedObject> Fetch(const ObjectRef& ref) override;
};

}  // namespace vsieve::storage
