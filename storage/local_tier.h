#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "storage/tier.h"

namespace vsieve::storage {

// A mounted folder (CPFS, NFS, a local disk) holding objects as files: kind "local",
// source_tier "local". `root` may contain "{bucket}" (replaced by the row's bucket); without it
// keys map directly under root and the bucket is ignored. Objects are served in place
// (TierObject::in_place_path); the sink is never used. Keys are checked by ValidateTierKey()
// (no "..", absolute paths or NUL); the mapping is lexical, so a symbolic link inside the root
// is followed wherever it points.
// Errors: kInvalidArgument (a bad key or bucket), kObjectNotFound (no such file, or not a regular
// file), kObjectForbidden (permission denied), kFetchFailed (other I/O errors, retryable).
// Thread-safe (immutable); blocks for a stat and an open.
class LocalTier : public Tier {
 public:
  LocalTier(std::string name, std::string root);

  const std::string& name() const override { return name_; }
  std::string_view source_tier() const override { return "local"; }
  common::StatusOr<TierObject> Fetch(const ObjectRef& ref, DownloadSink* sink) override;

  // The path `ref` maps to, or kInvalidArgument.
  common::StatusOr<std::string> PathOf(const ObjectRef& ref) const;

 private:
  const std::string name_;
  const std::string root_;
};

}  // namespace vsieve::storage
