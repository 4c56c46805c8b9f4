#include "tests/storage/s3_server.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "storage/http_client.h"
#include "storage/tier_key.h"

namespace vsieve::testing {

using common::ErrorCode;
using common::Status;

namespace {

constexpr char kPackage[] = "@20minutes/s3rver@4.0.4";

std::string CacheDir() {
  if (const char* dir = std::getenv("VSIEVE_S3RVER_DIR"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') {
    return std::string(xdg) + "/vsieve-test-s3rver";
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return std::string(home) + "/.cache/vsieve-test-s3rver";
  }
  return (std::filesystem::temp_directory_path() / "vsieve-test-s3rver").string();
}

// Installs the package into `dir` unless it is there. Holds an flock on dir/.lock meanwhile.
bool EnsureInstalled(const std::string& dir, std::string* why_not) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const int lock = ::open((dir + "/.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock < 0) {
    *why_not = "cannot create " + dir + "/.lock";
    return false;
  }
  ::flock(lock, LOCK_EX);
  const std::string marker = dir + "/node_modules/@20minutes/s3rver/lib/cli.js";
  bool ok = std::filesystem::exists(marker);
  if (!ok) {
    std::string output;
    const int rc = RunProgram(
        {"npm", "install", "--no-audit", "--no-fund", "--prefix", dir, kPackage}, &output);
    ok = rc == 0 && std::filesystem::exists(marker);
    if (!ok) {
      *why_not = "npm install " + std::string(kPackage) + " failed (exit " + std::to_string(rc) +
                 "): " + output.substr(0, 2000);
    }
  }
  ::flock(lock, LOCK_UN);
  ::close(lock);
  return ok;
}

size_t ReadFromString(char* buffer, size_t size, size_t count, void* user) {
  auto* source = static_cast<std::pair<const std::string*, size_t>*>(user);
  const size_t n = std::min(size * count, source->first->size() - source->second);
  std::copy_n(source->first->data() + source->second, n, buffer);
  source->second += n;
  return n;
}

size_t Discard(char*, size_t size, size_t count, void*) { return size * count; }

}  // namespace

std::unique_ptr<S3Server> S3Server::Start(const std::vector<std::string>& buckets,
                                          const std::string& access_key,
                                          const std::string& secret_key, std::string* why_not) {
  if (!HaveProgram("node") || !HaveProgram("npm")) {
    *why_not = "node or npm is not installed";
    return nullptr;
  }
  const std::string cache = CacheDir();
  if (!EnsureInstalled(cache, why_not)) return nullptr;

  std::unique_ptr<S3Server> server(new S3Server());
  server->access_key_ = access_key;
  server->secret_key_ = secret_key;
  const std::string script = server->dir_.File("run-s3rver.js");
  const std::string log = server->dir_.File("s3rver.log");
  WriteFile(script,
            "const [key, secret, dir, ...buckets] = process.argv.slice(2);\n"
            "require('@20minutes/s3rver/lib/models/account').DUMMY_ACCOUNT"
            ".createKeyPair(key, secret);\n"
            "const args = ['node', 's3rver', '-d', dir, '-a', '127.0.0.1', '-p', '0', "
            "'--silent'];\n"
            "for (const b of buckets) args.push('--configure-bucket', b);\n"
            "require('@20minutes/s3rver/lib/cli.js').parseAsync(args).catch((e) => {\n"
            "  console.error(e); process.exit(1);\n"
            "});\n");
  std::vector<std::string> argv = {"node", script, access_key, secret_key,
                                   server->dir_.File("data")};
  argv.insert(argv.end(), buckets.begin(), buckets.end());
  std::string why;
  if (!server->process_.Start(argv, {"NODE_PATH=" + cache + "/node_modules"}, log, &why)) {
    *why_not = why;
    return nullptr;
  }
  // The port is in the "S3rver listening on 127.0.0.1:PORT" line.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline && server->process_.Running()) {
    const std::string text = ReadFile(log);
    const std::string marker = "S3rver listening on 127.0.0.1:";
    const size_t at = text.find(marker);
    if (at != std::string::npos && text.find('\n', at) != std::string::npos) {
      server->port_ = std::atoi(text.c_str() + at + marker.size());
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (server->port_ <= 0 || !WaitForPort(server->port_, 10.0, &server->process_)) {
    *why_not = "s3rver did not start: " + ReadFile(log).substr(0, 2000);
    return nullptr;
  }
  return server;
}

S3Server::~S3Server() { process_.Stop(); }

std::string S3Server::endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

Status S3Server::Put(const std::string& bucket, const std::string& key, const std::string& bytes) {
  storage::CurlEasy curl;
  if (curl.get() == nullptr) return Status(ErrorCode::kInternal, "curl_easy_init failed");
  const std::string url = endpoint() + "/" + bucket + "/" + storage::UriEncode(key, true);
  storage::CurlHeaders headers;
  headers.Add("x-amz-content-sha256: UNSIGNED-PAYLOAD");
  std::pair<const std::string*, size_t> source{&bytes, 0};
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_READFUNCTION, ReadFromString);
  curl_easy_setopt(curl.get(), CURLOPT_READDATA, &source);
  curl_easy_setopt(curl.get(), CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(bytes.size()));
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, Discard);
  curl_easy_setopt(curl.get(), CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:s3");
  curl_easy_setopt(curl.get(), CURLOPT_USERNAME, access_key_.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_PASSWORD, secret_key_.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  const CURLcode code = curl_easy_perform(curl.get());
  long status = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
  if (code != CURLE_OK || status != 200) {
    return Status(ErrorCode::kFetchFailed, "PUT " + url + ": " + curl_easy_strerror(code) +
                                               ", status " + std::to_string(status));
  }
  return Status::Ok();
}

}  // namespace vsieve::testing
