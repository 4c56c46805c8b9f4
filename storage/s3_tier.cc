#include "storage/s3_tier.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>

#include "common/stopwatch.h"
#include "storage/tier_key.h"

namespace vsieve::storage {

using common::ErrorCode;
using common::Status;

namespace {

std::string Trimmed(std::string text) {
  const auto not_space = [](unsigned char c) { return !std::isspace(c); };
  text.erase(text.begin(), std::find_if(text.begin(), text.end(), not_space));
  text.erase(std::find_if(text.rbegin(), text.rend(), not_space).base(), text.end());
  return text;
}

Status CredentialError(const std::string& why) { return Status(ErrorCode::kInvalidArgument, why); }

}  // namespace

common::StatusOr<S3Credentials> LoadS3Credentials(const TierConfig& config) {
  S3Credentials credentials;
  if (config.credentials == "env") {
    // Read once, when the tier is created at start-up (nothing changes the environment then).
    const char* key = std::getenv("AWS_ACCESS_KEY_ID");         // NOLINT(concurrency-mt-unsafe)
    const char* secret = std::getenv("AWS_SECRET_ACCESS_KEY");  // NOLINT(concurrency-mt-unsafe)
    const char* token = std::getenv("AWS_SESSION_TOKEN");       // NOLINT(concurrency-mt-unsafe)
    if (key == nullptr || *key == '\0') {
      return CredentialError("\"env\" is configured but AWS_ACCESS_KEY_ID is not set");
    }
    if (secret == nullptr || *secret == '\0') {
      return CredentialError("\"env\" is configured but AWS_SECRET_ACCESS_KEY is not set");
    }
    credentials.access_key_id = key;
    credentials.secret_access_key = secret;
    if (token != nullptr) credentials.session_token = token;
    return credentials;
  }
  std::ifstream in(config.credentials);
  if (!in) return CredentialError("cannot read the file " + config.credentials);
  std::string line;
  std::string section;
  bool found = false;
  while (std::getline(in, line)) {
    line = Trimmed(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      section = Trimmed(line.substr(1, line.size() - 2));
      if (section.rfind("profile ", 0) == 0) section = Trimmed(section.substr(8));
      found = found || section == config.profile;
      continue;
    }
    if (section != config.profile) continue;
    const size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    const std::string name = Trimmed(line.substr(0, eq));
    const std::string value = Trimmed(line.substr(eq + 1));
    if (name == "aws_access_key_id") {
      credentials.access_key_id = value;
    } else if (name == "aws_secret_access_key") {
      credentials.secret_access_key = value;
    } else if (name == "aws_session_token" || name == "aws_security_token") {
      credentials.session_token = value;
    }
  }
  const std::string where = config.credentials + " [" + config.profile + "]";
  if (!found)
    return CredentialError(config.credentials + " has no section [" + config.profile + "]");
  if (credentials.access_key_id.empty()) {
    return CredentialError(where + " has no aws_access_key_id");
  }
  if (credentials.secret_access_key.empty()) {
    return CredentialError(where + " has no aws_secret_access_key");
  }
  return credentials;
}

std::string CanonicalQueryString(std::vector<std::pair<std::string, std::string>> params) {
  for (auto& [name, value] : params) {
    name = UriEncode(name, /*keep_slash=*/false);
    value = UriEncode(value, /*keep_slash=*/false);
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [name, value] : params) {
    if (!out.empty()) out += '&';
    out += name;
    out += '=';
    out += value;
  }
  return out;
}

S3Tier::S3Tier(const TierConfig& config, const S3Credentials& credentials, const TierDeps& deps)
    : name_(config.DisplayName()),
      endpoint_(config.endpoint.substr(0, config.endpoint.find_last_not_of('/') + 1)),
      virtual_host_(config.addressing == "virtual") {
  HttpClientOptions options = MakeHttpClientOptions(config);
  options.aws_sigv4 = "aws:amz:" + config.region + ":s3";
  options.access_key_id = credentials.access_key_id;
  options.secret_access_key = credentials.secret_access_key;
  options.session_token = credentials.session_token;
  options.verify_md5_etag = true;
  client_ = std::make_unique<HttpClient>(std::move(options),
                                         MakeRetryPolicy(config, EndpointOf(endpoint_), deps));
}

common::StatusOr<std::string> S3Tier::UrlOf(const ObjectRef& ref) const {
  if (ref.bucket.empty()) {
    return Status(
        ErrorCode::kInvalidArgument,
        "tier '" + name_ + "' (s3) needs a bucket; the row has none for '" + ref.key + "'");
  }
  VSIEVE_RETURN_IF_ERROR(ValidateTierBucket(ref.bucket));
  VSIEVE_RETURN_IF_ERROR(ValidateTierKey(ref.key));
  const std::string key = UriEncode(ref.key, /*keep_slash=*/true);
  if (!virtual_host_) return endpoint_ + "/" + UriEncode(ref.bucket, false) + "/" + key;
  const size_t scheme = endpoint_.find("://");
  const size_t host = scheme == std::string::npos ? 0 : scheme + 3;
  return endpoint_.substr(0, host) + ref.bucket + "." + endpoint_.substr(host) + "/" + key;
}

common::StatusOr<TierObject> S3Tier::Fetch(const ObjectRef& ref, DownloadSink* sink) {
  common::Stopwatch watch;
  VSIEVE_ASSIGN_OR_RETURN(const std::string url, UrlOf(ref));
  auto fetched = [&]() -> common::StatusOr<TierObject> {
    VSIEVE_ASSIGN_OR_RETURN(const ObjectHead head, client_->Head(url));
    DownloadRequest request;
    request.url = url;
    request.expected_size = head.size_bytes;
    request.expected_etag = head.etag;
    request.if_match_always = true;
    VSIEVE_ASSIGN_OR_RETURN(const DownloadResult downloaded, client_->Download(request, sink));
    TierObject object;
    object.size_bytes = downloaded.size_bytes;
    object.etag = downloaded.etag;
    return object;
  }();
  RecordFetchDuration(name_, watch.ElapsedSeconds());
  return fetched;
}

}  // namespace vsieve::storage
