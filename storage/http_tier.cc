#include "storage/http_tier.h"

#include "common/stopwatch.h"
#include "storage/tier_key.h"

namespace vsieve::storage {

HttpTier::HttpTier(const TierConfig& config, const TierDeps& deps)
    : name_(config.DisplayName()), base_url_(config.base_url) {
  client_ = std::make_unique<HttpClient>(MakeHttpClientOptions(config),
                                         MakeRetryPolicy(config, EndpointOf(base_url_), deps));
}

common::StatusOr<std::string> HttpTier::UrlOf(const ObjectRef& ref) const {
  VSIEVE_RETURN_IF_ERROR(ValidateTierKey(ref.key));
  std::string base = base_url_;
  if (base.find("{bucket}") != std::string::npos) {
    VSIEVE_RETURN_IF_ERROR(
        ValidateTierBucket(ref.bucket).WithContext("tier '" + name_ + "' base_url uses {bucket}"));
    base = SubstituteBucket(base, UriEncode(ref.bucket, /*keep_slash=*/false));
  }
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + "/" + UriEncode(ref.key, /*keep_slash=*/true);
}

common::StatusOr<TierObject> HttpTier::Fetch(const ObjectRef& ref, DownloadSink* sink) {
  common::Stopwatch watch;
  VSIEVE_ASSIGN_OR_RETURN(const std::string url, UrlOf(ref));
  DownloadRequest request;
  request.url = url;
  auto downloaded = client_->Download(request, sink);
  RecordFetchDuration(name_, watch.ElapsedSeconds());
  if (!downloaded.ok()) return downloaded.status();
  TierObject object;
  object.size_bytes = downloaded->size_bytes;
  object.etag = downloaded->etag;
  return object;
}

}  // namespace vsieve::storage
