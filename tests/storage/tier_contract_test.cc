// One contract for every storage tier, run against real servers on loopback: the local tier on a
// folder, the http tier on nginx, the s3 tier on s3rver (@20minutes/s3rver, which verifies
// SigV4). Each kind skips with a reason when its server cannot be started here.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "storage/http_client.h"
#include "storage/s3_tier.h"
#include "storage/tier_factory.h"
#include "tests/storage/file_sink.h"
#include "tests/storage/nginx_server.h"
#include "tests/storage/s3_server.h"
#include "tests/storage/test_bytes.h"
#include "tests/support/test_env.h"

namespace vsieve::storage {
namespace {

using common::ErrorCode;
using testing::Counter;
using testing::FileSink;
using testing::Md5Hex;
using testing::RandomBytes;

constexpr char kBucket[] = "media";
constexpr char kKey[] = "videos/a.mp4";
// A space, a '#', a '+', a '%', accents and CJK: every one must survive path mapping and
// percent-encoding (and the SigV4 canonical URI).
const std::string kOddKey = "dir with space/vid\xC3\xA9o \xE5\xAD\x97\xE5\xB9\x95 #1+%.mp4";
constexpr char kAccessKey[] = "contractkey";
constexpr char kSecretKey[] = "contractsecret";

double Requests(const std::string& tier) {
  double total = 0;
  for (const char* result :
       {"ok", "not_found", "forbidden", "retryable_error", "mismatch", "error"}) {
    total += Counter("vsieve_storage_requests_total", {{"tier", tier}, {"result", result}});
  }
  return total;
}

const std::string& VideoBytes() {
  static const std::string bytes = RandomBytes(300000, 1);
  return bytes;
}
const std::string& OddBytes() {
  static const std::string bytes = RandomBytes(5000, 2);
  return bytes;
}

// The servers, started once per test program and shared by the tests of each kind.
struct Servers {
  testing::TempDir root;  // root/<bucket>/<key>: the local tier's folder and nginx's root
  std::string credentials_file;
  std::unique_ptr<testing::NginxServer> nginx;
  std::string nginx_skip;
  bool nginx_tried = false;
  std::unique_ptr<testing::S3Server> s3;
  std::string s3_skip;
  bool s3_tried = false;

  Servers() {
    for (const char* bucket : {kBucket, "private"}) {
      const std::string dir = root.path() + "/" + bucket;
      std::filesystem::create_directories(dir + "/videos");
      std::filesystem::create_directories(dir + "/dir with space");
      testing::WriteFile(dir + "/" + kKey, VideoBytes());
      testing::WriteFile(dir + "/" + kOddKey, OddBytes());
    }
    // Readable by the nginx worker and by an unprivileged child (the local forbidden case).
    std::filesystem::permissions(
        root.path(), std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                         std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
                         std::filesystem::perms::others_exec);
    credentials_file = root.File("credentials");
    testing::WriteFile(credentials_file,
                       std::string("# test keys\n[default]\naws_access_key_id = ") + kAccessKey +
                           "\naws_secret_access_key = " + kSecretKey + "\n");
  }
};

Servers& SharedServers() {
  static Servers servers;  // the folder is removed when the program exits
  return servers;
}

class TierContractTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void TearDownTestSuite() {
    Servers& servers = SharedServers();
    servers.nginx.reset();
    servers.s3.reset();
  }

  void SetUp() override {
    Servers& servers = SharedServers();
    if (GetParam() == "http") {
      if (!servers.nginx_tried) {
        servers.nginx_tried = true;
        servers.nginx = testing::NginxServer::Start(servers.root.path(), &servers.nginx_skip);
      }
      if (servers.nginx == nullptr) GTEST_SKIP() << "nginx: " << servers.nginx_skip;
    }
    if (GetParam() == "s3") {
      if (!servers.s3_tried) {
        servers.s3_tried = true;
        servers.s3 = testing::S3Server::Start({kBucket}, kAccessKey, kSecretKey, &servers.s3_skip);
        if (servers.s3 != nullptr) {
          for (const auto& [key, bytes] :
               {std::pair{std::string(kKey), VideoBytes()}, std::pair{kOddKey, OddBytes()}}) {
            const common::Status put = servers.s3->Put(kBucket, key, bytes);
            if (!put.ok()) {
              servers.s3_skip = "upload failed: " + put.ToString();
              servers.s3.reset();
              break;
            }
          }
        }
      }
      if (servers.s3 == nullptr) GTEST_SKIP() << "s3rver: " << servers.s3_skip;
    }
  }

  std::string TierName() const {
    std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    return "contract_" + test.substr(0, test.find('/')) + "_" + GetParam();
  }

  TierConfig Config() const {
    Servers& servers = SharedServers();
    TierConfig config;
    config.kind = GetParam();
    config.name = TierName();
    config.backoff_base_seconds = 0.01;
    config.backoff_cap_seconds = 0.05;
    config.low_speed_seconds = 5;
    if (GetParam() == "local") config.root = servers.root.path() + "/{bucket}";
    if (GetParam() == "http") config.base_url = servers.nginx->Url("/{bucket}");
    if (GetParam() == "s3") {
      config.endpoint = servers.s3->endpoint();
      config.credentials = servers.credentials_file;
    }
    return config;
  }

  std::unique_ptr<Tier> Make(const TierConfig& config) const {
    auto tier = CreateTier(config);
    EXPECT_TRUE(tier.ok()) << tier.status().ToString();
    return tier.ok() ? std::move(tier).value() : nullptr;
  }

  // The object's bytes as the tier served them.
  static std::string Served(const TierObject& object, const FileSink& sink) {
    return object.in_place_path.empty() ? sink.Contents() : testing::ReadFile(object.in_place_path);
  }

  testing::TempDir scratch_;
};

TEST_P(TierContractTest, HitReturnsTheExactBytesWithSizeAndEtag) {
  auto tier = Make(Config());
  ASSERT_NE(tier, nullptr);
  EXPECT_EQ(tier->name(), TierName());
  FileSink sink(scratch_.File("sink"));
  auto fetched = tier->Fetch(ObjectRef{kBucket, kKey}, &sink);
  ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
  EXPECT_EQ(fetched->size_bytes, static_cast<int64_t>(VideoBytes().size()));
  EXPECT_EQ(Served(*fetched, sink), VideoBytes());
  if (GetParam() == "local") {
    EXPECT_EQ(tier->source_tier(), "local");
    EXPECT_EQ(sink.written(), 0);  // served in place
  } else {
    EXPECT_TRUE(fetched->in_place_path.empty());
    EXPECT_FALSE(fetched->etag.empty());
    EXPECT_EQ(tier->source_tier(), GetParam() == "http" ? "dcache" : "object");
  }
  if (GetParam() == "s3") EXPECT_EQ(fetched->etag, "\"" + Md5Hex(VideoBytes()) + "\"");
}

TEST_P(TierContractTest, MissIsObjectNotFound) {
  auto tier = Make(Config());
  ASSERT_NE(tier, nullptr);
  FileSink sink(scratch_.File("sink"));
  for (const ObjectRef& ref : {ObjectRef{kBucket, "videos/none.mp4"}, ObjectRef{"nobucket", kKey},
                               ObjectRef{kBucket, "videos"}}) {
    auto fetched = tier->Fetch(ref, &sink);
    EXPECT_EQ(fetched.status().code(), ErrorCode::kObjectNotFound)
        << ref.ToString() << ": " << fetched.status().ToString();
    EXPECT_FALSE(fetched.status().retryable());
  }
  EXPECT_EQ(sink.written(), 0);
  if (GetParam() != "local") {
    EXPECT_EQ(Counter("vsieve_storage_retries_total", {{"tier", TierName()}}), 0);
  }
}

TEST_P(TierContractTest, ForbiddenIsObjectForbiddenAndNotRetried) {
  FileSink sink(scratch_.File("sink"));
  if (GetParam() == "local") {
    // Root reads everything: check as an unprivileged child instead (uid 65534, nobody).
    const std::string path = SharedServers().root.path() + "/private/" + kKey;
    auto tier = Make(Config());
    ASSERT_NE(tier, nullptr);
    if (::geteuid() != 0) {
      ASSERT_EQ(::chmod(path.c_str(), 0), 0);
      auto fetched = tier->Fetch(ObjectRef{"private", kKey}, &sink);
      ::chmod(path.c_str(), 0644);
      EXPECT_EQ(fetched.status().code(), ErrorCode::kObjectForbidden);
      return;
    }
    ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
      auto fetched = tier->Fetch(ObjectRef{"private", kKey}, nullptr);
      ::_exit(fetched.status().code() == ErrorCode::kObjectForbidden ? 0 : 1);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    ::chmod(path.c_str(), 0644);
    ASSERT_TRUE(WIFEXITED(status));
    if (WEXITSTATUS(status) == 2) GTEST_SKIP() << "cannot drop privileges to uid 65534 here";
    EXPECT_EQ(WEXITSTATUS(status), 0) << "the unprivileged fetch was not OBJECT_FORBIDDEN";
    return;
  }
  TierConfig config = Config();
  ObjectRef ref{kBucket, kKey};
  if (GetParam() == "http") ref.bucket = "private";  // nginx: location /private { return 403; }
  if (GetParam() == "s3") {
    // The verifying server refuses a request signed with the wrong secret.
    const std::string wrong = scratch_.File("wrong-credentials");
    testing::WriteFile(wrong, std::string("[default]\naws_access_key_id=") + kAccessKey +
                                  "\naws_secret_access_key=not-the-secret\n");
    config.credentials = wrong;
  }
  auto tier = Make(config);
  ASSERT_NE(tier, nullptr);
  auto fetched = tier->Fetch(ref, &sink);
  EXPECT_EQ(fetched.status().code(), ErrorCode::kObjectForbidden) << fetched.status().ToString();
  EXPECT_FALSE(fetched.status().retryable());
  EXPECT_EQ(fetched.status().message().find("not-the-secret"), std::string::npos);
  EXPECT_EQ(Requests(TierName()), 1);  // one request, no retry
  EXPECT_EQ(
      Counter("vsieve_storage_requests_total", {{"tier", TierName()}, {"result", "forbidden"}}), 1);
  EXPECT_EQ(sink.written(), 0);
}

TEST_P(TierContractTest, KeysWithSpacesAndUnicodeAreMappedExactly) {
  auto tier = Make(Config());
  ASSERT_NE(tier, nullptr);
  FileSink sink(scratch_.File("sink"));
  auto fetched = tier->Fetch(ObjectRef{kBucket, kOddKey}, &sink);
  ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
  EXPECT_EQ(Served(*fetched, sink), OddBytes());
}

TEST_P(TierContractTest, KeysThatWouldEscapeAreRefusedBeforeAnyRequest) {
  auto tier = Make(Config());
  ASSERT_NE(tier, nullptr);
  FileSink sink(scratch_.File("sink"));
  const std::vector<std::string> keys = {"../media/videos/a.mp4",
                                         "/etc/passwd",
                                         "videos/../../private/videos/a.mp4",
                                         std::string("videos/a\0.mp4", 13),
                                         "",
                                         "./videos/a.mp4"};
  for (const std::string& key : keys) {
    auto fetched = tier->Fetch(ObjectRef{kBucket, key}, &sink);
    EXPECT_EQ(fetched.status().code(), ErrorCode::kInvalidArgument) << key;
  }
  for (const std::string bucket : {"..", "a/b"}) {
    auto fetched = tier->Fetch(ObjectRef{bucket, kKey}, &sink);
    EXPECT_EQ(fetched.status().code(), ErrorCode::kInvalidArgument) << bucket;
  }
  EXPECT_EQ(Requests(TierName()), 0);
  EXPECT_EQ(sink.written(), 0);
}

TEST_P(TierContractTest, ResumesAPartialSinkWithARangeRequest) {
  if (GetParam() == "local") GTEST_SKIP() << "the local tier serves in place; nothing to resume";
  auto tier = Make(Config());
  ASSERT_NE(tier, nullptr);
  FileSink sink(scratch_.File("sink"));
  constexpr size_t kHave = 100000;
  ASSERT_TRUE(sink.Write(VideoBytes().data(), kHave).ok());
  auto fetched = tier->Fetch(ObjectRef{kBucket, kKey}, &sink);
  ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
  EXPECT_EQ(sink.Contents(), VideoBytes());
  EXPECT_EQ(sink.restarts(), 0);
  // Only the missing bytes crossed the wire.
  EXPECT_EQ(Counter("vsieve_storage_bytes_total", {{"tier", TierName()}}),
            static_cast<double>(VideoBytes().size() - kHave));
  if (GetParam() == "http") {
    // nginx writes its access log line after the response; under load that can be a moment
    // after the client has the body.
    const std::string line =
        "GET /media/videos/a.mp4 206 range=\"bytes=100000-\" if_match=\"" + fetched->etag + "\"";
    std::string log = SharedServers().nginx->AccessLog();
    for (int i = 0; i < 40 && log.find(line) == std::string::npos; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      log = SharedServers().nginx->AccessLog();
    }
    EXPECT_NE(log.find(line), std::string::npos) << log;
  }
}

TEST_P(TierContractTest, AZeroByteObjectIsServedAsZeroBytes) {
  if (GetParam() == "s3") {
    ASSERT_TRUE(SharedServers().s3->Put(kBucket, "videos/empty.mp4", "").ok());
  } else {
    testing::WriteFile(SharedServers().root.path() + "/media/videos/empty.mp4", "");
  }
  auto tier = Make(Config());
  ASSERT_NE(tier, nullptr);
  FileSink sink(scratch_.File("sink"));
  auto fetched = tier->Fetch(ObjectRef{kBucket, "videos/empty.mp4"}, &sink);
  ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
  EXPECT_EQ(fetched->size_bytes, 0);
}

TEST_P(TierContractTest, ConcurrentFetchesFromOneTierAreIndependent) {
  auto tier = Make(Config());
  ASSERT_NE(tier, nullptr);
  constexpr int kThreads = 4;
  constexpr int kEach = 5;
  std::vector<std::thread> threads;
  std::vector<int> exact(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        FileSink sink(scratch_.File("sink" + std::to_string(t) + "_" + std::to_string(i)));
        const bool odd = (t + i) % 2 == 1;
        auto fetched = tier->Fetch(ObjectRef{kBucket, odd ? kOddKey : kKey}, &sink);
        if (fetched.ok() && Served(*fetched, sink) == (odd ? OddBytes() : VideoBytes())) {
          ++exact[t];
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(exact[t], kEach) << "thread " << t;
}

// libcurl 7.88 signs the query as written: only the sorted, encoded form from
// CanonicalQueryString() passes the verifying server.
TEST_P(TierContractTest, S3SignedQueryMustBeCanonical) {
  if (GetParam() != "s3") GTEST_SKIP() << "S3 only";
  const auto status_of = [](const std::string& url) {
    CurlEasy curl;
    CurlHeaders headers;
    headers.Add("x-amz-content-sha256: UNSIGNED-PAYLOAD");
    curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:s3");
    curl_easy_setopt(curl.get(), CURLOPT_USERNAME, kAccessKey);
    curl_easy_setopt(curl.get(), CURLOPT_PASSWORD, kSecretKey);
    curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(
        curl.get(), CURLOPT_WRITEFUNCTION,
        +[](char*, size_t size, size_t count, void*) { return size * count; });
    curl_easy_perform(curl.get());
    long status = 0;
    curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
    return status;
  };
  const std::string bucket_url = SharedServers().s3->endpoint() + "/" + kBucket;
  EXPECT_EQ(status_of(bucket_url + "?" +
                      CanonicalQueryString({{"prefix", "videos/"}, {"list-type", "2"}})),
            200);
  EXPECT_EQ(status_of(bucket_url + "?list-type=2&prefix=videos/"), 403);
  EXPECT_EQ(status_of(bucket_url + "?prefix=videos%2F&list-type=2"), 403);
}

INSTANTIATE_TEST_SUITE_P(Tiers, TierContractTest, ::testing::Values("local", "http", "s3"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace vsieve::storage
