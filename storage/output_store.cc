#include "storage/output_store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <vector>

#include "storage/http_client.h"
#include "storage/s3_tier.h"
#include "storage/tier_key.h"

namespace vsieve::storage {
namespace {

using common::ErrorCode;
using common::Status;
using common::StatusOr;

constexpr int64_t kMinPartBytes = 5LL << 20;  // S3's smallest part but the last
constexpr int kMaxParts = 10000;              // S3's largest part number

Status UploadError(const std::string& why, bool retryable = false) {
  return Status(ErrorCode::kUploadFailed, why, retryable);
}

// The upload's failure as UPLOAD_FAILED, keeping whether another attempt may succeed.
Status AsUploadError(const Status& status, const std::string& context) {
  return UploadError(context + ": " + status.message(), status.retryable());
}

// Owns a file descriptor.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int Release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

// MD5 digests of a file's byte ranges (OpenSSL EVP).
struct Digest {
  unsigned char bytes[EVP_MAX_MD_SIZE];
  unsigned int size = 0;

  std::string Hex() const {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < size; ++i) {
      out += kHex[bytes[i] >> 4];
      out += kHex[bytes[i] & 15];
    }
    return out;
  }
  std::string Base64() const {
    unsigned char out[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1] = {};
    const int n = EVP_EncodeBlock(out, bytes, static_cast<int>(size));
    return std::string(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
  }
};

StatusOr<Digest> Md5(const unsigned char* data, size_t size) {
  Digest digest;
  if (EVP_Digest(data, size, digest.bytes, &digest.size, EVP_md5(), nullptr) != 1) {
    return Status(ErrorCode::kInternal, "OpenSSL MD5 failed");
  }
  return digest;
}

StatusOr<Digest> Md5OfFile(const std::string& path, int64_t offset, int64_t length) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return Status(ErrorCode::kInternal, "cannot read " + path);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx != nullptr && EVP_DigestInit_ex(ctx, EVP_md5(), nullptr) == 1 &&
            fseeko(file, offset, SEEK_SET) == 0;
  std::vector<char> buffer(1 << 20);
  while (ok && length > 0) {
    const size_t want = static_cast<size_t>(std::min<int64_t>(length, buffer.size()));
    const size_t got = std::fread(buffer.data(), 1, want, file);
    if (got == 0) ok = false;
    ok = ok && EVP_DigestUpdate(ctx, buffer.data(), got) == 1;
    length -= static_cast<int64_t>(got);
  }
  Digest digest;
  ok = ok && EVP_DigestFinal_ex(ctx, digest.bytes, &digest.size) == 1;
  EVP_MD_CTX_free(ctx);
  std::fclose(file);
  if (!ok) return Status(ErrorCode::kInternal, "cannot read " + path);
  return digest;
}

std::string Unquoted(std::string etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  for (char& c : etag) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return etag;
}

std::string XmlText(const std::string& body, const std::string& tag) {
  const std::string open = "<" + tag + ">";
  const size_t start = body.find(open);
  if (start == std::string::npos) return "";
  const size_t from = start + open.size();
  const size_t end = body.find("</" + tag + ">", from);
  return end == std::string::npos ? "" : body.substr(from, end - from);
}

std::string RandomSuffix() {
  static std::atomic<uint64_t> counter{0};
  std::random_device device;
  return std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1)) + "-" +
         std::to_string(device());
}

// ---- file:// -------------------------------------------------------------------------------

class FileOutputStore final : public OutputStore {
 public:
  explicit FileOutputStore(std::string prefix) : prefix_(std::move(prefix)) {}

  std::string UrlOf(const std::string& key) const override { return "file:///" + key; }
  const std::string& prefix() const override { return prefix_; }

  StatusOr<std::string> Put(const std::string& local_path, const std::string& key) override {
    VSIEVE_RETURN_IF_ERROR(ValidateTierKey(key));
    const std::filesystem::path target = "/" + key;
    std::error_code ec;
    std::filesystem::create_directories(target.parent_path(), ec);
    if (ec)
      return UploadError("cannot create " + target.parent_path().string() + ": " + ec.message());
    // Written beside the target under a hidden name, so a crash leaves no partial object.
    const std::string temp =
        (target.parent_path() / ("." + target.filename().string() + ".part-" + RandomSuffix()))
            .string();
    Status copied = CopyDurably(local_path, temp);
    if (copied.ok() && ::rename(temp.c_str(), target.c_str()) != 0) {
      copied = UploadError("rename to " + target.string() + ": " + std::strerror(errno));
    }
    if (!copied.ok()) {
      ::unlink(temp.c_str());
      return copied;
    }
    Fd dir(::open(target.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.get() >= 0) ::fsync(dir.get());
    return UrlOf(key);
  }

 private:
  static Status CopyDurably(const std::string& from, const std::string& to) {
    Fd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
    if (in.get() < 0) return UploadError("cannot read " + from + ": " + std::strerror(errno));
    Fd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (out.get() < 0) return UploadError("cannot create " + to + ": " + std::strerror(errno));
    std::vector<char> buffer(1 << 20);
    while (true) {
      const ssize_t n = ::read(in.get(), buffer.data(), buffer.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return UploadError("reading " + from + ": " + std::strerror(errno));
      if (n == 0) break;
      for (ssize_t done = 0; done < n;) {
        const ssize_t w = ::write(out.get(), buffer.data() + done, static_cast<size_t>(n - done));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
          // A full disk may be emptied by then: worth another attempt.
          return UploadError("writing " + to + ": " + std::strerror(errno), errno == ENOSPC);
        }
        done += w;
      }
    }
    if (::fsync(out.get()) != 0) {
      return UploadError("fsync " + to + ": " + std::strerror(errno), true);
    }
    if (::close(out.Release()) != 0) {
      return UploadError("closing " + to + ": " + std::strerror(errno), true);
    }
    return Status::Ok();
  }

  const std::string prefix_;
};

// ---- s3:// ---------------------------------------------------------------------------------

class S3OutputStore final : public OutputStore {
 public:
  S3OutputStore(const OutputStoreOptions& options, std::string bucket, std::string prefix,
                const S3Credentials& credentials, const TierDeps& deps)
      : options_(options),
        bucket_(std::move(bucket)),
        prefix_(std::move(prefix)),
        endpoint_(options.s3.endpoint.substr(0, options.s3.endpoint.find_last_not_of('/') + 1)),
        virtual_host_(options.s3.addressing == "virtual") {
    HttpClientOptions http = MakeHttpClientOptions(options.s3);
    http.tier_name = "output";
    http.aws_sigv4 = "aws:amz:" + options.s3.region + ":s3";
    http.access_key_id = credentials.access_key_id;
    http.secret_access_key = credentials.secret_access_key;
    http.session_token = credentials.session_token;
    client_ = std::make_unique<HttpClient>(
        std::move(http), MakeRetryPolicy(options.s3, EndpointOf(endpoint_), deps));
  }

  std::string UrlOf(const std::string& key) const override { return "s3://" + bucket_ + "/" + key; }
  const std::string& prefix() const override { return prefix_; }

  StatusOr<std::string> Put(const std::string& local_path, const std::string& key) override {
    VSIEVE_RETURN_IF_ERROR(ValidateTierKey(key));
    struct stat st {};
    if (::stat(local_path.c_str(), &st) != 0) {
      return UploadError("cannot stat " + local_path + ": " + std::strerror(errno));
    }
    const int64_t size = st.st_size;
    const std::string url = ObjectUrl(key);
    Status status = size > options_.multipart_bytes ? PutMultipart(local_path, size, url)
                                                    : PutSingle(local_path, size, url);
    if (!status.ok()) return status;
    return UrlOf(key);
  }

 private:
  std::string ObjectUrl(const std::string& key) const {
    const std::string encoded = UriEncode(key, /*keep_slash=*/true);
    if (!virtual_host_) return endpoint_ + "/" + UriEncode(bucket_, false) + "/" + encoded;
    const size_t scheme = endpoint_.find("://");
    const size_t host = scheme == std::string::npos ? 0 : scheme + 3;
    return endpoint_.substr(0, host) + bucket_ + "." + endpoint_.substr(host) + "/" + encoded;
  }

  // Sends one body with Content-MD5 and checks the ETag the store answers with: a mismatch
  // (bytes changed on the way) is sent again, up to the policy's attempts.
  StatusOr<SendResponse> SendChecked(SendRequest request, const Digest& md5,
                                     const std::string& what) {
    request.headers.push_back("Content-MD5: " + md5.Base64());
    const int attempts = std::max(1, options_.s3.max_attempts);
    for (int attempt = 1;; ++attempt) {
      auto sent = client_->Send(request);
      if (!sent.ok()) return AsUploadError(sent.status(), what);
      const std::string etag = Unquoted(sent->etag);
      if (etag.empty() || etag == md5.Hex()) return sent;
      if (attempt >= attempts) {
        return UploadError(what + ": the store's ETag " + sent->etag + " is not the MD5 " +
                           md5.Hex() + " of the bytes sent");
      }
      spdlog::warn("output: {}: ETag {} is not the MD5 {}; sending again", what, sent->etag,
                   md5.Hex());
    }
  }

  Status PutSingle(const std::string& path, int64_t size, const std::string& url) {
    VSIEVE_ASSIGN_OR_RETURN(const Digest md5, Md5OfFile(path, 0, size));
    SendRequest request;
    request.method = "PUT";
    request.url = url;
    request.headers = {"Content-Type: video/mp4"};
    request.body_file = path;
    request.body_length = size;
    auto sent = SendChecked(std::move(request), md5, "PUT " + RedactUrl(url));
    return sent.ok() ? Status::Ok() : sent.status();
  }

  Status PutMultipart(const std::string& path, int64_t size, const std::string& url) {
    int64_t part_bytes = std::max(kMinPartBytes, options_.part_bytes);
    if ((size + part_bytes - 1) / part_bytes > kMaxParts)
      part_bytes = (size + kMaxParts - 1) / kMaxParts;
    const std::string what = "multipart upload to " + RedactUrl(url);

    SendRequest initiate;
    initiate.method = "POST";
    initiate.url = url + "?" + CanonicalQueryString({{"uploads", ""}});
    initiate.headers = {"Content-Type: video/mp4"};
    auto started = client_->Send(initiate);
    if (!started.ok()) return AsUploadError(started.status(), what + " (initiate)");
    const std::string upload_id = XmlText(started->body, "UploadId");
    if (upload_id.empty()) return UploadError(what + ": the store sent no UploadId", true);

    Status status = [&]() -> Status {
      std::string parts_xml;
      std::string etag_md5s;  // the parts' binary MD5s, for the multipart ETag
      int parts = 0;
      for (int64_t offset = 0; offset < size; offset += part_bytes) {
        ++parts;
        const int64_t length = std::min(part_bytes, size - offset);
        VSIEVE_ASSIGN_OR_RETURN(const Digest md5, Md5OfFile(path, offset, length));
        SendRequest part;
        part.method = "PUT";
        part.url =
            url + "?" +
            CanonicalQueryString({{"partNumber", std::to_string(parts)}, {"uploadId", upload_id}});
        part.body_file = path;
        part.body_offset = offset;
        part.body_length = length;
        VSIEVE_ASSIGN_OR_RETURN(
            const SendResponse sent,
            SendChecked(std::move(part), md5, what + " (part " + std::to_string(parts) + ")"));
        const std::string etag = sent.etag.empty() ? "\"" + md5.Hex() + "\"" : sent.etag;
        parts_xml += "<Part><PartNumber>" + std::to_string(parts) + "</PartNumber><ETag>" + etag +
                     "</ETag></Part>";
        etag_md5s.append(reinterpret_cast<const char*>(md5.bytes), md5.size);
      }
      SendRequest complete;
      complete.method = "POST";
      complete.url = url + "?" + CanonicalQueryString({{"uploadId", upload_id}});
      complete.headers = {"Content-Type: application/xml"};
      complete.body = "<CompleteMultipartUpload>" + parts_xml + "</CompleteMultipartUpload>";
      auto done = client_->Send(complete);
      if (!done.ok()) return AsUploadError(done.status(), what + " (complete)");
      // S3 may answer 200 and put the error in the body.
      if (done->body.find("<Error>") != std::string::npos) {
        const std::string code = XmlText(done->body, "Code");
        return UploadError(what + " (complete): " + code + " " + XmlText(done->body, "Message"),
                           code == "InternalError" || code == "SlowDown");
      }
      const std::string etag = Unquoted(XmlText(done->body, "ETag"));
      VSIEVE_ASSIGN_OR_RETURN(
          const Digest whole,
          Md5(reinterpret_cast<const unsigned char*>(etag_md5s.data()), etag_md5s.size()));
      const std::string expected = whole.Hex() + "-" + std::to_string(parts);
      if (etag.find('-') != std::string::npos && Unquoted(etag) != expected) {
        return UploadError(what + ": the object's ETag " + etag + " is not " + expected +
                           " (the MD5 of the parts' MD5s)");
      }
      return Status::Ok();
    }();
    if (!status.ok()) {
      SendRequest abort;
      abort.method = "DELETE";
      abort.url = url + "?" + CanonicalQueryString({{"uploadId", upload_id}});
      auto aborted = client_->Send(abort);
      if (!aborted.ok()) {
        spdlog::warn("output: AbortMultipartUpload of {} failed: {}", RedactUrl(url),
                     aborted.status().message());
      }
    }
    return status;
  }

  const OutputStoreOptions options_;
  const std::string bucket_;
  const std::string prefix_;
  const std::string endpoint_;
  const bool virtual_host_;
  std::unique_ptr<HttpClient> client_;
};

Status OptionError(const std::string& why) {
  return Status(ErrorCode::kInvalidArgument, "config key 'output.url': " + why);
}

}  // namespace

StatusOr<std::unique_ptr<OutputStore>> CreateOutputStore(const OutputStoreOptions& options,
                                                         const TierDeps& deps) {
  const std::string& url = options.url;
  if (url.rfind("file://", 0) == 0) {
    std::string path = url.substr(7);
    if (path.empty() || path.front() != '/') {
      return OptionError("a file URL needs an absolute path: file:///path/");
    }
    std::string prefix = path.substr(1);
    if (!prefix.empty() && prefix.back() != '/') prefix += '/';
    return std::unique_ptr<OutputStore>(std::make_unique<FileOutputStore>(prefix));
  }
  if (url.rfind("s3://", 0) == 0) {
    const std::string rest = url.substr(5);
    const size_t slash = rest.find('/');
    const std::string bucket = rest.substr(0, slash);
    std::string prefix = slash == std::string::npos ? "" : rest.substr(slash + 1);
    if (!prefix.empty() && prefix.back() != '/') prefix += '/';
    VSIEVE_RETURN_IF_ERROR(ValidateTierBucket(bucket));
    if (options.s3.endpoint.empty()) {
      return OptionError(
          "an s3:// destination needs an [[tiers]] entry of kind \"s3\" for its "
          "endpoint and credentials");
    }
    if (options.part_bytes < kMinPartBytes) {
      return Status(ErrorCode::kInvalidArgument,
                    "config key 'output.part_bytes': must be at least 5MiB (S3's minimum)");
    }
    VSIEVE_ASSIGN_OR_RETURN(const S3Credentials credentials, LoadS3Credentials(options.s3));
    return std::unique_ptr<OutputStore>(
        std::make_unique<S3OutputStore>(options, bucket, prefix, credentials, deps));
  }
  return OptionError("expected file:///path/ or s3://bucket/prefix/");
}

}  // namespace vsieve::storage
