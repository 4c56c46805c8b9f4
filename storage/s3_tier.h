#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "storage/http_client.h"
#include "storage/tier.h"
#include "storage/tier_factory.h"

namespace vsieve::storage {

// Credentials for SigV4. Never logged, never put in a message.
struct S3Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // "" when none
};

// Reads the credentials `config` names: "env" (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// optional AWS_SESSION_TOKEN) or an INI file like ~/.aws/credentials:
//   [default]
//   aws_access_key_id = AKIA...
//   aws_secret_access_key = ...
//   aws_session_token = ...        (optional)
// Sections are [NAME] or [profile NAME]; config.profile picks one; '#' and ';' start comments.
// Errors: kInvalidArgument naming the variable, file, section or key that is missing (never a
// value). Blocks for the file read.
common::StatusOr<S3Credentials> LoadS3Credentials(const TierConfig& config);

// The canonical query string of SigV4 (and of S3): each name and value RFC 3986-encoded ('/'
// encoded too), pairs sorted by encoded name then value, joined as "a=1&b=2". libcurl 7.88
// signs the query exactly as written in the URL and neither sorts nor encodes it, so any URL
// with a query must be built with this. Pure.
std::string CanonicalQueryString(std::vector<std::pair<std::string, std::string>> params);

// An object store over S3's API (AWS S3, OSS's S3-compatible endpoint, s3rver): kind "s3",
// source_tier "object". Requests are signed with SigV4 by libcurl (CURLOPT_AWS_SIGV4
// "aws:amz:<region>:s3", x-amz-content-sha256: UNSIGNED-PAYLOAD, x-amz-security-token when a
// session token is set). A fetch is a HEAD (size, ETag), then a GET with If-Match on that ETag,
// resumed with Range after a broken transfer; the size must match the HEAD, and a single-part
// ETag must be the MD5 of the bytes (multipart "-N" ETags are only compared between HEAD and
// GET). Addressing: "path" (endpoint/bucket/key) or "virtual" (bucket.host/key).
// Errors: kInvalidArgument (no bucket, a bad key), kObjectNotFound, kObjectForbidden (403, a
// wrong secret included; never retried), kFetchFailed, kContentMismatch, or the sink's error.
// Thread-safe; blocks for the transfers and retry delays.
class S3Tier : public Tier {
 public:
  // `config` must have passed ValidateTierConfig().
  S3Tier(const TierConfig& config, const S3Credentials& credentials, const TierDeps& deps);

  const std::string& name() const override { return name_; }
  std::string_view source_tier() const override { return "object"; }
  common::StatusOr<TierObject> Fetch(const ObjectRef& ref, DownloadSink* sink) override;

  // The object URL of `ref` in the configured addressing style, or kInvalidArgument.
  common::StatusOr<std::string> UrlOf(const ObjectRef& ref) const;

 private:
  const std::string name_;
  const std::string endpoint_;
  const bool virtual_host_;
  std::unique_ptr<HttpClient> client_;
};

}  // namespace vsieve::storage
