#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "storage/tier_factory.h"

namespace vsieve::storage {

// Where finished files (the cropped videos) are stored: `[output] url`.
struct OutputStoreOptions {
  // "file:///abs/path/" (a mounted store; the folder is created) or "s3://bucket/prefix/".
  std::string url;
  // s3: the endpoint, region, credentials, addressing, transport and retry settings, taken from
  // the configured s3 tier (see daemon/config/filter_config.h).
  TierConfig s3;
  int64_t multipart_bytes = 64LL << 20;  // s3: files above this go up in parts ...
  int64_t part_bytes = 16LL << 20;       // ... of this size (S3's minimum is 5 MiB)
};

// A store that takes whole files under a key. Put() is all or nothing: a reader never sees a
// partial object (file: written beside the target, fsynced, then renamed; s3: one PUT, or a
// multipart upload that is completed only after every part arrived intact and aborted with
// AbortMultipartUpload otherwise). Putting the same key again replaces the object. Thread-safe;
// Put() blocks for the copy or the transfers and their retry delays.
class OutputStore {
 public:
  virtual ~OutputStore() = default;

  // The store's URL of `key` ("file:///path/key", "s3://bucket/key").
  virtual std::string UrlOf(const std::string& key) const = 0;

  // Stores the file at `local_path` as `key` (relative to the URL's prefix, already joined by
  // the caller; see prefix()). Returns the object's URL. Errors: kUploadFailed (retryable when
  // the last failure was transient: a 5xx, a throttle, a broken connection; not retryable for
  // 403/404, a bad key or a checksum that does not match twice), kInvalidArgument for a key
  // with "..", an empty segment or a leading "/".
  virtual common::StatusOr<std::string> Put(const std::string& local_path,
                                            const std::string& key) = 0;

  // The path part of the URL after the bucket or root, e.g. "crops/" of "s3://b/crops/".
  virtual const std::string& prefix() const = 0;
};

// Builds the store `options.url` names. Errors: kInvalidArgument for another scheme, an s3 URL
// without a bucket, an s3 store without an endpoint, a part size under 5 MiB, or credentials
// that cannot be read (named, never shown).
common::StatusOr<std::unique_ptr<OutputStore>> CreateOutputStore(const OutputStoreOptions& options,
                                                                 const TierDeps& deps = {});

}  // namespace vsieve::storage
