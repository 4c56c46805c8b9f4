#pragma once

#include <curl/curl.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "storage/retry_policy.h"
#include "storage/tier.h"

namespace vsieve::storage {

namespace internal {
struct HttpTransfer;  // one request's state, shared with the libcurl callbacks
}  // namespace internal

// Owns one libcurl easy handle (curl_easy_init / curl_easy_cleanup). The first handle of the
// process runs curl_global_init once. A handle is used by one thread at a time; moving it
// between threads is fine. `get()` is null when libcurl could not allocate one.
class CurlEasy {
 public:
  CurlEasy();
  ~CurlEasy();
  CurlEasy(const CurlEasy&) = delete;
  CurlEasy& operator=(const CurlEasy&) = delete;
  CURL* get() const { return handle_; }

 private:
  CURL* handle_ = nullptr;
};

// Owns a curl_slist of request headers (curl_slist_free_all on destruction).
class CurlHeaders {
 public:
  CurlHeaders() = default;
  ~CurlHeaders();
  CurlHeaders(const CurlHeaders&) = delete;
  CurlHeaders& operator=(const CurlHeaders&) = delete;
  // Appends "Name: value". Returns false when libcurl cannot allocate.
  bool Add(const std::string& line);
  curl_slist* get() const { return list_; }

 private:
  curl_slist* list_ = nullptr;
};

// Transport settings of one tier. The credentials are only handed to libcurl (SigV4 signing);
// they never appear in messages or logs.
struct HttpClientOptions {
  std::string tier_name = "http";          // the `tier` label of the storage metrics
  double connect_timeout_seconds = 10;     // TCP (and TLS) connect
  long low_speed_bytes_per_second = 1024;  // a transfer slower than this ...
  long low_speed_seconds = 30;             // ... for this long is a timeout (no total timeout)
  // AWS SigV4 through CURLOPT_AWS_SIGV4, e.g. "aws:amz:us-east-1:s3"; empty: unsigned requests.
  std::string aws_sigv4;
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // sent as x-amz-security-token when not empty
  // S3: a single-part ETag (32 hex digits) is the MD5 of the body; check it after a download
  // that passed every byte through this client (skipped for SSE-KMS and SSE-C objects, whose
  // ETags are not MD5s).
  bool verify_md5_etag = false;
};

// Size and ETag of an object (HEAD).
struct ObjectHead {
  int64_t size_bytes = -1;  // -1 when the server sent no Content-Length
  std::string etag;         // quotes included; "" when the server sent none
};

// What to download, and what is already known about it (from HEAD).
struct DownloadRequest {
  std::string url;
  int64_t expected_size = -1;  // -1: unknown; otherwise the final size must match
  std::string expected_etag;   // "": unknown; otherwise the object must still have it
  // Send If-Match with the known ETag on every GET, not only on resumed ones (S3: a change
  // between HEAD and GET shows up as 412 and restarts the download).
  bool if_match_always = false;
};

// How a download went.
struct DownloadResult {
  int64_t size_bytes = 0;
  std::string etag;
  int attempts = 0;  // GET requests made
  int restarts = 0;  // times the sink was emptied because the object changed or Range was ignored
};

// A request with a body (or none) for the upload path: PUT, POST or DELETE.
struct SendRequest {
  std::string method = "PUT";
  std::string url;
  std::vector<std::string> headers;  // "Name: value" lines
  // The body: `body_file` from `body_offset` for `body_length` bytes when a file is named,
  // else `body`.
  std::string body;
  std::string body_file;
  int64_t body_offset = 0;
  int64_t body_length = 0;
};

// The answer to a SendRequest.
struct SendResponse {
  long status = 0;
  std::string etag;  // quotes included; "" when none
  std::string body;  // the first 16 KiB
  int attempts = 0;
};

// HTTP GET/HEAD over libcurl with the project's rules for remote tiers: retries by RetryPolicy
// (AWS standard: full jitter, per-endpoint budget, Retry-After), resume with Range from
// sink->written() guarded by If-Match, and every outcome classified:
//   404 -> kObjectNotFound; 401/403 -> kObjectForbidden (never retried);
//   408, 429, 500, 502, 503, 504, S3 codes SlowDown / RequestTimeout / InternalError /
//   ServiceUnavailable / Throttling, connection errors, timeouts (low-speed limit), resets and
//   bodies shorter than their Content-Length -> retryable kFetchFailed (resumed with Range);
//   412 (If-Match failed), 416, an ETag that changed, a 200 answer to a Range request -> the sink
//   is restarted from byte 0 and the request retried;
//   a 2xx body that starts like HTML (<!DOCTYPE html, <html, after whitespace, any case) or with
//   Content-Type text/html -> kContentMismatch (not retried);
//   a complete body whose size differs from Content-Length / HEAD, or whose MD5 differs from a
//   single-part S3 ETag -> kContentMismatch (not retried);
//   other statuses -> kFetchFailed, not retryable; sink errors are returned as the sink gave them.
// Credentials and Authorization headers never appear in messages; URLs in messages lose their
// userinfo and query. Metrics: vsieve_storage_requests_total{tier,result},
// vsieve_storage_bytes_total{tier}, vsieve_storage_retries_total{tier},
// vsieve_storage_restarts_total{tier}.
// Thread-safe: handles come from an internal pool (reused connections); each call blocks for
// its transfer and retry delays.
class HttpClient {
 public:
  // `retry` must not be null.
  HttpClient(HttpClientOptions options, std::shared_ptr<RetryPolicy> retry);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // HEAD with retries. Errors as above (no body checks).
  common::StatusOr<ObjectHead> Head(const std::string& url);

  // GET into `sink` with retries and resume. When the sink already holds bytes and no ETag is
  // known, a HEAD comes first so the resume can be guarded by If-Match.
  common::StatusOr<DownloadResult> Download(const DownloadRequest& request, DownloadSink* sink);

  // Sends `request` (its body re-read from the start on every attempt) with the same retries as
  // a GET: transport errors and 408/429/5xx/S3 throttling codes are retried by the policy;
  // 404 -> kObjectNotFound, 401/403 -> kObjectForbidden, other statuses >= 300 -> kFetchFailed
  // (not retryable); a body file that cannot be read -> kInternal. The caller maps the codes to
  // its own. Blocks for the transfers and the retry delays.
  common::StatusOr<SendResponse> Send(const SendRequest& request);

  const HttpClientOptions& options() const { return options_; }
  const RetryPolicy& retry() const { return *retry_; }

 private:
  struct Attempt;
  using Transfer = internal::HttpTransfer;

  std::unique_ptr<CurlEasy> AcquireHandle();
  void ReleaseHandle(std::unique_ptr<CurlEasy> handle);
  common::Status Configure(CURL* curl, const std::string& url, CurlHeaders* headers,
                           Transfer* transfer, char* error_buffer) const;
  Attempt HeadOnce(const std::string& url, ObjectHead* head);
  Attempt SendOnce(const SendRequest& request, SendResponse* response);
  Attempt GetOnce(const std::string& url, DownloadSink* sink, int64_t offset,
                  const std::string& if_match, Transfer* transfer);
  void Record(const Attempt& attempt, int64_t body_bytes) const;
  // Calls `once(attempt)` until an attempt succeeds, fails for good or the retry policy gives up
  // (the last status then says why), sleeping and counting retries in between.
  common::Status Retrying(const std::function<Attempt(int attempt)>& once);

  const HttpClientOptions options_;
  const std::shared_ptr<RetryPolicy> retry_;
  std::mutex pool_mutex_;
  std::vector<std::unique_ptr<CurlEasy>> idle_;  // guarded by pool_mutex_
};

// `url` without userinfo, query or fragment: safe for messages and logs.
std::string RedactUrl(std::string_view url);

// "scheme://host[:port]" of `url` (the retry budget's key); `url` itself when it has no scheme.
std::string EndpointOf(std::string_view url);

// Observes vsieve_storage_fetch_duration_seconds{tier} (one object, retries included).
void RecordFetchDuration(const std::string& tier, double seconds);

// True when `body` starts, after whitespace (and a UTF-8 BOM), with "<!doctype html" or "<html"
// in any case: an HTML error page served in place of an object.
bool LooksLikeHtml(std::string_view body);

}  // namespace vsieve::storage
