#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "storage/http_client.h"
#include "storage/tier.h"
#include "storage/tier_factory.h"

namespace vsieve::storage {

// A distributed cache reached over HTTP (an Alluxio proxy, an nginx cache, any server with Range
// support): kind "http", source_tier "dcache". The object's URL is `base_url` ("{bucket}"
// replaced by the row's bucket; without it the bucket is ignored) + "/" + the key with each
// path segment percent-encoded ("/" kept). One GET into the sink, resumed with Range and
// If-Match after a broken transfer (HttpClient has the retry and error rules).
// Errors: kInvalidArgument (a bad key or bucket), kObjectNotFound, kObjectForbidden,
// kFetchFailed (retryable after the retries), kContentMismatch, or the sink's error.
// Thread-safe; blocks for the transfer and retry delays.
class HttpTier : public Tier {
 public:
  // `config` must have passed ValidateTierConfig().
  HttpTier(const TierConfig& config, const TierDeps& deps);

  const std::string& name() const override { return name_; }
  std::string_view source_tier() const override { return "dcache"; }
  common::StatusOr<TierObject> Fetch(const ObjectRef& ref, DownloadSink* sink) override;

  // The URL of `ref`, or kInvalidArgument.
  common::StatusOr<std::string> UrlOf(const ObjectRef& ref) const;

 private:
  const std::string name_;
  const std::string base_url_;
  std::unique_ptr<HttpClient> client_;
};

}  // namespace vsieve::storage
