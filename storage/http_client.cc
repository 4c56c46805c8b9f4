#include "storage/http_client.h"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>

#include "common/metrics.h"

namespace vsieve::storage {

using common::ErrorCode;
using common::Status;

namespace {

constexpr size_t kSniffBytes = 512;        // bytes held back to recognise an HTML page
constexpr size_t kErrorBodyBytes = 16384;  // bytes of an error body kept for its S3 code
constexpr size_t kIdleHandles = 16;

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

std::optional<int64_t> ParseInt(std::string_view text) {
  int64_t value = 0;
  text = Trim(text);
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0) return std::nullopt;
  return value;
}

// The MD5 of the bytes written to the sink (OpenSSL EVP).
class Md5 {
 public:
  Md5() : ctx_(EVP_MD_CTX_new()) { Reset(); }
  ~Md5() { EVP_MD_CTX_free(ctx_); }
  Md5(const Md5&) = delete;
  Md5& operator=(const Md5&) = delete;
  void Reset() { ok_ = ctx_ != nullptr && EVP_DigestInit_ex(ctx_, EVP_md5(), nullptr) == 1; }
  void Update(const char* data, size_t size) {
    if (ok_ && size > 0) ok_ = EVP_DigestUpdate(ctx_, data, size) == 1;
  }
  // Lower-case hex, or "" when OpenSSL failed.
  std::string HexDigest() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (!ok_ || EVP_DigestFinal_ex(ctx_, digest, &length) != 1) return "";
    ok_ = false;
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < length; ++i) {
      out += kHex[digest[i] >> 4];
      out += kHex[digest[i] & 15];
    }
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
  bool ok_ = false;
};

// The text between <Tag> and </Tag> in an S3 error document; "" when absent.
std::string XmlField(const std::string& body, const std::string& tag) {
  const std::string open = "<" + tag + ">";
  const size_t start = body.find(open);
  if (start == std::string::npos) return "";
  const size_t from = start + open.size();
  const size_t end = body.find("</" + tag + ">", from);
  if (end == std::string::npos) return "";
  return body.substr(from, std::min<size_t>(end - from, 200));
}

bool IsRetryableS3Code(const std::string& code) {
  return code == "SlowDown" || code == "RequestTimeout" || code == "InternalError" ||
         code == "ServiceUnavailable" || code == "Throttling" || code == "ThrottlingException" ||
         code == "RequestTimeTooSkewed" || code == "RequestLimitExceeded";
}

// A single-part S3 ETag: "<32 hex digits>".
std::string Md5FromEtag(std::string_view etag) {
  if (etag.size() == 34 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, 32);
  }
  if (etag.size() != 32) return "";
  if (!std::all_of(etag.begin(), etag.end(),
                   [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); })) {
    return "";
  }
  return Lower(etag);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// RAII wrappers.

CurlEasy::CurlEasy() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  handle_ = curl_easy_init();
}

CurlEasy::~CurlEasy() {
  if (handle_ != nullptr) curl_easy_cleanup(handle_);
}

CurlHeaders::~CurlHeaders() { curl_slist_free_all(list_); }

bool CurlHeaders::Add(const std::string& line) {
  curl_slist* next = curl_slist_append(list_, line.c_str());
  if (next == nullptr) return false;
  list_ = next;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Helpers.

std::string RedactUrl(std::string_view url) {
  const size_t cut = url.find_first_of("?#");
  if (cut != std::string_view::npos) url = url.substr(0, cut);
  const size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  const size_t host_start = scheme + 3;
  const size_t path = url.find('/', host_start);
  const std::string_view authority = url.substr(
      host_start, path == std::string_view::npos ? std::string_view::npos : path - host_start);
  const size_t at = authority.rfind('@');
  if (at == std::string_view::npos) return std::string(url);
  std::string out(url.substr(0, host_start));
  out += authority.substr(at + 1);
  if (path != std::string_view::npos) out += url.substr(path);
  return out;
}

std::string EndpointOf(std::string_view url) {
  std::string clean = RedactUrl(url);
  const size_t scheme = clean.find("://");
  if (scheme == std::string::npos) return clean;
  const size_t path = clean.find('/', scheme + 3);
  return path == std::string::npos ? clean : clean.substr(0, path);
}

void RecordFetchDuration(const std::string& tier, double seconds) {
  common::MetricsRegistry::Global()
      .GetHistogram("vsieve_storage_fetch_duration_seconds",
                    "Time to fetch one object from a storage tier, retries included.",
                    common::DurationBuckets(), {{"tier", tier}})
      .Observe(seconds);
}

bool LooksLikeHtml(std::string_view body) {
  if (body.substr(0, 3) == "\xEF\xBB\xBF") body.remove_prefix(3);
  while (!body.empty() && std::isspace(static_cast<unsigned char>(body.front()))) {
    body.remove_prefix(1);
  }
  const std::string head = Lower(body.substr(0, 14));
  return head.rfind("<!doctype html", 0) == 0 || head.rfind("<html", 0) == 0;
}

// ---------------------------------------------------------------------------------------------
// One request's state, shared with the libcurl callbacks.

namespace internal {

struct HttpTransfer {
  // Request.
  bool head = false;
  bool send = false;  // an upload: every body goes to error_body, none to a sink
  DownloadSink* sink = nullptr;
  int64_t offset = 0;           // Range start asked for
  std::string expected_etag;    // an ETag the response must carry (when it carries one)
  Md5* md5 = nullptr;           // running digest of the sink's bytes; null: not checked
  bool* md5_valid = nullptr;    // false when the sink held bytes this client did not see
  int64_t* reserved = nullptr;  // the size last passed to sink->Reserve()

  // Response (reset on every status line).
  long status = 0;
  int64_t content_length = -1;
  int64_t range_start = -1;
  int64_t range_total = -1;
  std::string etag;
  std::string content_type;
  std::string retry_after;
  std::string location;
  bool sse_not_md5 = false;  // SSE-KMS / SSE-C: the ETag is not the MD5 of the body
  bool headers_done = false;

  // Body.
  bool to_sink = false;
  bool sniffing = false;
  std::string held;        // the first bytes, until they are known not to be HTML
  std::string error_body;  // the body of a non-2xx answer (capped)
  int64_t body_bytes = 0;

  // Set by the callbacks when they stop the transfer or empty the sink.
  Status abort;
  bool sink_error = false;
  bool restart = false;        // empty the sink before the next attempt
  bool restarted_now = false;  // the sink was emptied during this attempt (Range ignored)

  void ResetResponse() {
    status = 0;
    content_length = -1;
    range_start = -1;
    range_total = -1;
    etag.clear();
    content_type.clear();
    retry_after.clear();
    location.clear();
    sse_not_md5 = false;
    headers_done = false;
  }

  Status WriteSink(const char* data, size_t size) {
    Status status_of_write = sink->Write(data, size);
    if (!status_of_write.ok()) {
      sink_error = true;
      return status_of_write;
    }
    if (md5 != nullptr) md5->Update(data, size);
    return Status::Ok();
  }

  Status FlushHeld() {
    sniffing = false;
    if (LooksLikeHtml(held)) {
      return Status(ErrorCode::kContentMismatch,
                    "the body is an HTML page (status " + std::to_string(status) + ")");
    }
    Status flushed = held.empty() ? Status::Ok() : WriteSink(held.data(), held.size());
    held.clear();
    return flushed;
  }

  // Decides, once the final headers are in, where the body goes.
  Status OnHeadersDone() {
    if (status < 200 || status >= 300) return Status::Ok();
    if (status != 200 && status != 206) {
      return Status(ErrorCode::kFetchFailed,
                    "unexpected status " + std::to_string(status) + " for a GET");
    }
    if (Lower(content_type).rfind("text/html", 0) == 0) {
      return Status(ErrorCode::kContentMismatch, "the server answered " + std::to_string(status) +
                                                     " with Content-Type " + content_type +
                                                     " (an HTML page, not the object)");
    }
    int64_t total = -1;
    if (status == 206) {
      if (range_start != offset) {
        restart = true;
        return Status(ErrorCode::kFetchFailed,
                      "206 answer starts at byte " + std::to_string(range_start) + ", not " +
                          std::to_string(offset),
                      /*retryable=*/true);
      }
      total = range_total;
    } else {
      if (offset > 0) {  // the server ignored Range: take the whole body from byte 0
        Status restarted = sink->Restart();
        if (!restarted.ok()) {
          sink_error = true;
          return restarted;
        }
        if (md5 != nullptr) md5->Reset();
        *md5_valid = true;
        *reserved = -1;
        offset = 0;
        restarted_now = true;
      }
      total = content_length;
    }
    if (!expected_etag.empty() && !etag.empty() && etag != expected_etag) {
      restart = true;
      return Status(
          ErrorCode::kFetchFailed,
          "the object changed during the download (ETag " + expected_etag + " -> " + etag + ")",
          /*retryable=*/true);
    }
    if (total >= 0 && total != *reserved) {
      Status reserve = sink->Reserve(total);
      if (!reserve.ok()) {
        sink_error = true;
        return reserve;
      }
      *reserved = total;
    }
    to_sink = true;
    sniffing = offset == 0;
    return Status::Ok();
  }

  void OnHeader(std::string_view line) {
    if (line.rfind("HTTP/", 0) == 0) {
      ResetResponse();
      const size_t space = line.find(' ');
      if (space != std::string_view::npos) {
        const auto code = ParseInt(line.substr(space + 1, 3));
        status = code.has_value() ? static_cast<long>(*code) : 0;
      }
      return;
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return;
    const std::string name = Lower(Trim(line.substr(0, colon)));
    const std::string_view value = Trim(line.substr(colon + 1));
    if (name == "content-length") {
      content_length = ParseInt(value).value_or(-1);
    } else if (name == "content-range") {
      // bytes START-END/TOTAL (TOTAL may be *)
      const size_t dash = value.find('-');
      const size_t slash = value.find('/');
      const size_t space = value.find(' ');
      if (dash != std::string_view::npos && space != std::string_view::npos && space < dash) {
        range_start = ParseInt(value.substr(space + 1, dash - space - 1)).value_or(-1);
      }
      if (slash != std::string_view::npos) {
        range_total = ParseInt(value.substr(slash + 1)).value_or(-1);
      }
    } else if (name == "etag") {
      etag = std::string(value);
    } else if (name == "content-type") {
      content_type = std::string(value);
    } else if (name == "retry-after") {
      retry_after = std::string(value);
    } else if (name == "location") {
      location = RedactUrl(value);
    } else if (name == "x-amz-server-side-encryption") {
      sse_not_md5 = sse_not_md5 || Lower(value).rfind("aws:kms", 0) == 0;
    } else if (name == "x-amz-server-side-encryption-customer-algorithm") {
      sse_not_md5 = true;
    }
  }
};

}  // namespace internal

namespace {

using internal::HttpTransfer;

size_t HeaderCallback(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<HttpTransfer*>(user);
  const size_t length = size * count;
  std::string_view line(data, length);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (!line.empty()) {
    t->OnHeader(line);
    return length;
  }
  if (t->status >= 100 && t->status < 200) return length;  // 100 Continue and the like
  t->headers_done = true;
  if (t->head || t->send) return length;
  Status decided = t->OnHeadersDone();
  if (!decided.ok()) {
    t->abort = decided;
    return 0;  // stops the transfer (CURLE_WRITE_ERROR)
  }
  return length;
}

size_t WriteCallback(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<HttpTransfer*>(user);
  const size_t length = size * count;
  if (!t->to_sink) {
    if (t->error_body.size() < kErrorBodyBytes) {
      t->error_body.append(data, std::min(length, kErrorBodyBytes - t->error_body.size()));
    }
    return length;
  }
  t->body_bytes += static_cast<int64_t>(length);
  Status written;
  if (t->sniffing) {
    t->held.append(data, length);
    if (t->held.size() < kSniffBytes) return length;
    written = t->FlushHeld();
  } else {
    written = t->WriteSink(data, length);
  }
  if (!written.ok()) {
    t->abort = written;
    return 0;  // a short count aborts the transfer
  }
  return length;
}

bool IsRetryableCurlCode(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY:
      return true;
    default:
      return false;
  }
}

}  // namespace

// The outcome of one request.
struct HttpClient::Attempt {
  Status status;
  bool timeout = false;
  std::optional<double> retry_after;
  bool sink_error = false;
  bool restart = false;
};

// ---------------------------------------------------------------------------------------------

HttpClient::HttpClient(HttpClientOptions options, std::shared_ptr<RetryPolicy> retry)
    : options_(std::move(options)), retry_(std::move(retry)) {}

HttpClient::~HttpClient() = default;

std::unique_ptr<CurlEasy> HttpClient::AcquireHandle() {
  {
    std::lock_guard lock(pool_mutex_);
    if (!idle_.empty()) {
      std::unique_ptr<CurlEasy> handle = std::move(idle_.back());
      idle_.pop_back();
      return handle;
    }
  }
  return std::make_unique<CurlEasy>();
}

void HttpClient::ReleaseHandle(std::unique_ptr<CurlEasy> handle) {
  if (handle == nullptr || handle->get() == nullptr) return;
  curl_easy_reset(handle->get());  // keeps the connection cache
  std::lock_guard lock(pool_mutex_);
  if (idle_.size() < kIdleHandles) idle_.push_back(std::move(handle));
}

Status HttpClient::Configure(CURL* curl, const std::string& url, CurlHeaders* headers,
                             Transfer* transfer, char* error_buffer) const {
  bool ok = curl_easy_setopt(curl, CURLOPT_URL, url.c_str()) == CURLE_OK;
  ok = ok && curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK;
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout_seconds * 1000.0));
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, options_.low_speed_bytes_per_second);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, options_.low_speed_seconds);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, HeaderCallback);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, transfer);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, WriteCallback);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, transfer);
  if (!options_.aws_sigv4.empty()) {
    ok = ok && curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, options_.aws_sigv4.c_str()) == CURLE_OK;
    curl_easy_setopt(curl, CURLOPT_USERNAME, options_.access_key_id.c_str());
    curl_easy_setopt(curl, CURLOPT_PASSWORD, options_.secret_access_key.c_str());
    // libcurl 7.88 does not add the payload hash header S3 requires; with it present, libcurl
    // signs it and uses its value as the payload hash.
    ok = ok && headers->Add("x-amz-content-sha256: UNSIGNED-PAYLOAD");
    if (!options_.session_token.empty()) {
      ok = ok && headers->Add("x-amz-security-token: " + options_.session_token);
    }
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers->get());
  if (!ok) {
    return Status(ErrorCode::kInternal,
                  "libcurl refused the request options for " + RedactUrl(url));
  }
  return Status::Ok();
}

namespace {

// Classifies a finished request: transport errors first, then the status.
void Classify(const char* method, const std::string& url, CURLcode code, const char* error_buffer,
              const HttpTransfer& t, const RetryPolicy& retry, Status* status, bool* timeout,
              std::optional<double>* retry_after, bool* restart) {
  const std::string what = std::string(method) + " " + RedactUrl(url) + ": ";
  const bool answered = t.headers_done && t.status >= 300;
  if (code != CURLE_OK && !answered) {
    *timeout = code == CURLE_OPERATION_TIMEDOUT;
    std::string detail = curl_easy_strerror(code);
    if (error_buffer[0] != '\0') detail += " (" + std::string(error_buffer) + ")";
    if (code == CURLE_PARTIAL_FILE) detail = "truncated body: " + detail;
    if (*timeout) detail = "timed out (connect timeout or low-speed limit): " + detail;
    *status = Status(ErrorCode::kFetchFailed, what + detail, IsRetryableCurlCode(code));
    return;
  }
  const long s = t.status;
  if (s >= 200 && s < 300) {
    *status = Status::Ok();
    return;
  }
  if (!t.retry_after.empty()) *retry_after = retry.ParseRetryAfter(t.retry_after);
  const std::string s3_code = XmlField(t.error_body, "Code");
  std::string detail = "status " + std::to_string(s);
  if (!s3_code.empty()) detail += " " + s3_code;
  const std::string s3_message = XmlField(t.error_body, "Message");
  if (!s3_message.empty()) detail += ": " + s3_message;
  if (s == 404) {
    *status = Status(ErrorCode::kObjectNotFound, what + detail);
  } else if (s == 401 || s == 403) {
    *status = Status(ErrorCode::kObjectForbidden, what + detail);
  } else if (s == 412 || s == 416) {
    *restart = true;
    *status = Status(ErrorCode::kFetchFailed, what + detail + " (the object changed; restarting)",
                     /*retryable=*/true);
  } else if (s == 408 || s == 429 || s == 500 || s == 502 || s == 503 || s == 504 ||
             IsRetryableS3Code(s3_code)) {
    *status = Status(ErrorCode::kFetchFailed, what + detail, /*retryable=*/true);
  } else if (s >= 300 && s < 400) {
    *status = Status(ErrorCode::kFetchFailed,
                     what + detail + " redirect" + (t.location.empty() ? "" : " to " + t.location) +
                         " (for S3, check the region and the addressing style)");
  } else {
    *status = Status(ErrorCode::kFetchFailed, what + detail);
  }
}

const char* ResultLabel(const Status& status) {
  if (status.ok()) return "ok";
  switch (status.code()) {
    case ErrorCode::kObjectNotFound:
      return "not_found";
    case ErrorCode::kObjectForbidden:
      return "forbidden";
    case ErrorCode::kContentMismatch:
      return "mismatch";
    default:
      return status.retryable() ? "retryable_error" : "error";
  }
}

}  // namespace

void HttpClient::Record(const Attempt& attempt, int64_t body_bytes) const {
  auto& registry = common::MetricsRegistry::Global();
  registry
      .GetCounter("vsieve_storage_requests_total",
                  "Requests made to storage tiers, by outcome (ok, not_found, forbidden, "
                  "retryable_error, mismatch, error).",
                  {{"tier", options_.tier_name}, {"result", ResultLabel(attempt.status)}})
      .Inc();
  if (body_bytes > 0) {
    registry
        .GetCounter("vsieve_storage_bytes_total", "Object bytes received from storage tiers.",
                    {{"tier", options_.tier_name}})
        .Inc(static_cast<double>(body_bytes));
  }
}

HttpClient::Attempt HttpClient::HeadOnce(const std::string& url, ObjectHead* head) {
  Attempt attempt;
  Transfer transfer;
  transfer.head = true;
  std::unique_ptr<CurlEasy> handle = AcquireHandle();
  if (handle->get() == nullptr) {
    attempt.status = Status(ErrorCode::kInternal, "curl_easy_init failed");
    return attempt;
  }
  CurlHeaders headers;
  char error_buffer[CURL_ERROR_SIZE] = {0};
  attempt.status = Configure(handle->get(), url, &headers, &transfer, error_buffer);
  if (attempt.status.ok()) {
    curl_easy_setopt(handle->get(), CURLOPT_NOBODY, 1L);
    const CURLcode code = curl_easy_perform(handle->get());
    bool restart = false;  // nothing to restart for a HEAD
    Classify("HEAD", url, code, error_buffer, transfer, *retry_, &attempt.status, &attempt.timeout,
             &attempt.retry_after, &restart);
    if (attempt.status.ok() && transfer.status != 200) {
      attempt.status =
          Status(ErrorCode::kFetchFailed, "HEAD " + RedactUrl(url) + ": unexpected status " +
                                              std::to_string(transfer.status));
    }
    Record(attempt, 0);
  }
  ReleaseHandle(std::move(handle));
  head->size_bytes = transfer.content_length;
  head->etag = transfer.etag;
  return attempt;
}

Status HttpClient::Retrying(const std::function<Attempt(int attempt)>& once) {
  int last_tokens = 0;
  for (int attempt = 0;; ++attempt) {
    const Attempt result = once(attempt);
    if (result.status.ok()) {
      retry_->OnSuccess(last_tokens);
      return Status::Ok();
    }
    if (!result.status.retryable()) return result.status;
    const RetryPolicy::Decision decision =
        retry_->OnRetryableFailure(attempt, result.timeout, result.retry_after);
    if (!decision.retry) {
      return Status(result.status.code(),
                    result.status.message() + " (gave up: " + decision.why_not + ")",
                    /*retryable=*/true);
    }
    common::MetricsRegistry::Global()
        .GetCounter("vsieve_storage_retries_total", "Storage requests retried.",
                    {{"tier", options_.tier_name}})
        .Inc();
    spdlog::debug("storage tier {}: {}; retry {} in {:.3f} s", options_.tier_name,
                  result.status.message(), attempt + 1, decision.delay_seconds);
    last_tokens = decision.tokens;
    retry_->Sleep(decision.delay_seconds);
  }
}

common::StatusOr<ObjectHead> HttpClient::Head(const std::string& url) {
  ObjectHead head;
  VSIEVE_RETURN_IF_ERROR(Retrying([&](int) {
    head = ObjectHead{};
    return HeadOnce(url, &head);
  }));
  return head;
}

namespace {

// The body of a SendRequest, read by libcurl through ReadBody.
struct BodySource {
  const std::string* text = nullptr;
  std::FILE* file = nullptr;
  int64_t left = 0;
  size_t text_at = 0;
  bool failed = false;
};

size_t ReadBody(char* buffer, size_t size, size_t count, void* user) {
  auto* source = static_cast<BodySource*>(user);
  const size_t want = std::min<int64_t>(static_cast<int64_t>(size * count), source->left);
  if (want == 0) return 0;
  size_t got = 0;
  if (source->file != nullptr) {
    got = std::fread(buffer, 1, want, source->file);
    if (got == 0) {
      source->failed = true;
      return CURL_READFUNC_ABORT;
    }
  } else {
    got = std::min(want, source->text->size() - source->text_at);
    std::memcpy(buffer, source->text->data() + source->text_at, got);
    source->text_at += got;
  }
  source->left -= static_cast<int64_t>(got);
  return got;
}

struct FileCloser {
  void operator()(std::FILE* file) const {
    if (file != nullptr) std::fclose(file);
  }
};

}  // namespace

HttpClient::Attempt HttpClient::SendOnce(const SendRequest& request, SendResponse* response) {
  Attempt attempt;
  Transfer transfer;
  transfer.send = true;
  BodySource source;
  std::unique_ptr<std::FILE, FileCloser> file;
  if (!request.body_file.empty()) {
    file.reset(std::fopen(request.body_file.c_str(), "rb"));
    if (file == nullptr || fseeko(file.get(), request.body_offset, SEEK_SET) != 0) {
      attempt.status = Status(ErrorCode::kInternal, "cannot read " + request.body_file);
      return attempt;
    }
    source.file = file.get();
    source.left = request.body_length;
  } else {
    source.text = &request.body;
    source.left = static_cast<int64_t>(request.body.size());
  }
  const curl_off_t length = source.left;
  std::unique_ptr<CurlEasy> handle = AcquireHandle();
  if (handle->get() == nullptr) {
    attempt.status = Status(ErrorCode::kInternal, "curl_easy_init failed");
    return attempt;
  }
  CURL* curl = handle->get();
  CurlHeaders headers;
  char error_buffer[CURL_ERROR_SIZE] = {0};
  attempt.status = Configure(curl, request.url, &headers, &transfer, error_buffer);
  // No "Expect:" line to suppress 100-continue: libcurl would sign it as a header. A short
  // wait for the 100 instead (a server that never sends one costs at most that).
  curl_easy_setopt(curl, CURLOPT_EXPECT_100_TIMEOUT_MS, 200L);
  bool ok = attempt.status.ok();
  for (const std::string& line : request.headers) ok = ok && headers.Add(line);
  if (attempt.status.ok() && !ok) {
    attempt.status = Status(ErrorCode::kInternal, "out of memory for request headers");
  }
  if (!attempt.status.ok()) {
    ReleaseHandle(std::move(handle));
    return attempt;
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(curl, CURLOPT_READFUNCTION, ReadBody);
  curl_easy_setopt(curl, CURLOPT_READDATA, &source);
  if (request.method == "PUT") {
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, length);
  } else if (request.method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, length);
  } else {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  const CURLcode code = curl_easy_perform(curl);
  if (source.failed) {
    attempt.status = Status(ErrorCode::kInternal, "cannot read " + request.body_file);
  } else {
    bool restart = false;  // nothing to restart for an upload
    Classify(request.method.c_str(), request.url, code, error_buffer, transfer, *retry_,
             &attempt.status, &attempt.timeout, &attempt.retry_after, &restart);
  }
  Record(attempt, 0);
  ReleaseHandle(std::move(handle));
  response->status = transfer.status;
  response->etag = transfer.etag;
  response->body = transfer.error_body;
  return attempt;
}

common::StatusOr<SendResponse> HttpClient::Send(const SendRequest& request) {
  SendResponse response;
  VSIEVE_RETURN_IF_ERROR(Retrying([&](int attempt) {
    response = SendResponse{};
    response.attempts = attempt + 1;
    return SendOnce(request, &response);
  }));
  return response;
}

HttpClient::Attempt HttpClient::GetOnce(const std::string& url, DownloadSink* sink, int64_t offset,
                                        const std::string& if_match, Transfer* transfer) {
  Attempt attempt;
  transfer->sink = sink;
  transfer->offset = offset;
  std::unique_ptr<CurlEasy> handle = AcquireHandle();
  if (handle->get() == nullptr) {
    attempt.status = Status(ErrorCode::kInternal, "curl_easy_init failed");
    return attempt;
  }
  CurlHeaders headers;
  char error_buffer[CURL_ERROR_SIZE] = {0};
  attempt.status = Configure(handle->get(), url, &headers, transfer, error_buffer);
  if (attempt.status.ok() && !if_match.empty() && !headers.Add("If-Match: " + if_match)) {
    attempt.status = Status(ErrorCode::kInternal, "out of memory for request headers");
  }
  if (!attempt.status.ok()) {
    ReleaseHandle(std::move(handle));
    return attempt;
  }
  curl_easy_setopt(handle->get(), CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(handle->get(), CURLOPT_HTTPGET, 1L);
  const std::string range = std::to_string(offset) + "-";
  if (offset > 0) curl_easy_setopt(handle->get(), CURLOPT_RANGE, range.c_str());
  const CURLcode code = curl_easy_perform(handle->get());
  // Bytes held back for the HTML check reach the sink even when the transfer broke off, so a
  // resume continues after them.
  if (transfer->abort.ok() && transfer->sniffing && !transfer->held.empty()) {
    transfer->abort = transfer->FlushHeld();
  }
  if (!transfer->abort.ok()) {
    attempt.status = transfer->abort;
    if (!transfer->sink_error) attempt.status = attempt.status.WithContext("GET " + RedactUrl(url));
    attempt.sink_error = transfer->sink_error;
    attempt.restart = transfer->restart;
  } else {
    Classify("GET", url, code, error_buffer, *transfer, *retry_, &attempt.status, &attempt.timeout,
             &attempt.retry_after, &attempt.restart);
  }
  Record(attempt, transfer->body_bytes);
  ReleaseHandle(std::move(handle));
  return attempt;
}

common::StatusOr<DownloadResult> HttpClient::Download(const DownloadRequest& request,
                                                      DownloadSink* sink) {
  DownloadResult result;
  std::string etag = request.expected_etag;
  int64_t size = request.expected_size;
  // The MD5 covers the sink's bytes only when every one of them passed through here.
  Md5 md5;
  bool md5_valid = sink->written() == 0;
  int64_t reserved = -1;
  auto& registry = common::MetricsRegistry::Global();
  auto restart = [&]() -> Status {
    ++result.restarts;
    registry
        .GetCounter("vsieve_storage_restarts_total",
                    "Downloads started again from byte 0 (the object changed, or a resume was "
                    "not possible).",
                    {{"tier", options_.tier_name}})
        .Inc();
    md5.Reset();
    md5_valid = true;
    reserved = -1;  // the next answer's size is reserved again
    return sink->Restart();
  };

  if (sink->written() > 0 && etag.empty()) {
    // A resume must be guarded by If-Match: learn the ETag first.
    auto head = Head(request.url);
    if (head.ok()) {
      etag = head->etag;
      if (size < 0) size = head->size_bytes;
    } else if (head.status().code() == ErrorCode::kObjectNotFound ||
               head.status().code() == ErrorCode::kObjectForbidden) {
      return head.status();
    }  // else (no HEAD support, say): no ETag, so the download starts again from byte 0
  }

  int last_tokens = 0;
  for (int attempt = 0;; ++attempt) {
    int64_t offset = sink->written();
    if (offset > 0 && (etag.empty() || (size >= 0 && offset > size))) {
      VSIEVE_RETURN_IF_ERROR(restart());
      offset = 0;
    }
    Transfer transfer;
    Attempt outcome;
    if (offset > 0 && size >= 0 && offset == size) {
      outcome.status = Status::Ok();  // the sink already holds the whole object
    } else {
      transfer.md5 = options_.verify_md5_etag ? &md5 : nullptr;
      transfer.md5_valid = &md5_valid;
      transfer.reserved = &reserved;
      transfer.expected_etag = etag;
      const bool send_if_match = !etag.empty() && (offset > 0 || request.if_match_always);
      ++result.attempts;
      outcome = GetOnce(request.url, sink, offset, send_if_match ? etag : "", &transfer);
      if (transfer.restarted_now) {
        ++result.restarts;
        registry
            .GetCounter("vsieve_storage_restarts_total",
                        "Downloads started again from byte 0 (the object changed, or a resume "
                        "was not possible).",
                        {{"tier", options_.tier_name}})
            .Inc();
      }
      // What a 2xx answer says about the object, for the checks and the next resume.
      if (transfer.headers_done && transfer.status >= 200 && transfer.status < 300 &&
          !outcome.restart) {
        if (etag.empty()) etag = transfer.etag;
        const int64_t total =
            transfer.status == 206 ? transfer.range_total : transfer.content_length;
        if (size < 0) {
          size = total;
        } else if (total >= 0 && total != size && outcome.status.ok()) {
          outcome.status =
              Status(ErrorCode::kContentMismatch, "GET " + RedactUrl(request.url) +
                                                      ": the server sent " + std::to_string(total) +
                                                      " bytes, HEAD said " + std::to_string(size));
        }
      }
    }

    if (outcome.status.ok()) {
      const int64_t written = sink->written();
      if (size >= 0 && written != size) {
        return Status(ErrorCode::kContentMismatch, "GET " + RedactUrl(request.url) + ": got " +
                                                       std::to_string(written) +
                                                       " bytes, expected " + std::to_string(size));
      }
      if (options_.verify_md5_etag && md5_valid && !transfer.sse_not_md5) {
        const std::string expected_md5 = Md5FromEtag(etag);
        if (!expected_md5.empty()) {
          const std::string actual = md5.HexDigest();
          if (!actual.empty() && actual != expected_md5) {
            return Status(ErrorCode::kContentMismatch, "GET " + RedactUrl(request.url) +
                                                           ": the MD5 of the bytes (" + actual +
                                                           ") is not the ETag " + etag);
          }
        }
      }
      retry_->OnSuccess(last_tokens);
      result.size_bytes = written;
      result.etag = etag;
      return result;
    }
    if (outcome.sink_error || !outcome.status.retryable()) return outcome.status;
    const RetryPolicy::Decision decision =
        retry_->OnRetryableFailure(attempt, outcome.timeout, outcome.retry_after);
    if (!decision.retry) {
      return Status(outcome.status.code(),
                    outcome.status.message() + " (gave up: " + decision.why_not + ")",
                    /*retryable=*/true);
    }
    registry
        .GetCounter("vsieve_storage_retries_total", "Storage requests retried.",
                    {{"tier", options_.tier_name}})
        .Inc();
    if (outcome.restart) {
      VSIEVE_RETURN_IF_ERROR(restart());
      etag.clear();
      size = -1;
    }
    spdlog::debug("storage tier {}: {}; retry {} in {:.3f} s from byte {}", options_.tier_name,
                  outcome.status.message(), attempt + 1, decision.delay_seconds, sink->written());
    last_tokens = decision.tokens;
    retry_->Sleep(decision.delay_seconds);
  }
}

}  // namespace vsieve::storage
