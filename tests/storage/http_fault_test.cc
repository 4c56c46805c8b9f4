// Every transport fault of issue 4 against the HTTP and S3 tiers, served by FaultServer: attempt
// counts, backoff delays (deterministic through the injected sleeper and random source), retry
// budget, Range/If-Match resume, end state (code, retryable flag, sink contents), and that
// credentials never reach a message.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <chrono>
#include <ctime>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "storage/http_tier.h"
#include "storage/s3_tier.h"
#include "storage/tier_factory.h"
#include "tests/storage/fault_server.h"
#include "tests/storage/file_sink.h"
#include "tests/support/test_env.h"

namespace vsieve::storage {
namespace {

using common::ErrorCode;
using testing::FaultResponse;
using testing::FaultServer;
using testing::FileSink;

std::string RandomBytes(size_t size, unsigned seed = 7) {
  std::mt19937 engine(seed);
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>(engine() & 0xff);
  // Never starts like text, so the HTML check cannot fire by accident.
  if (!out.empty()) out[0] = '\0';
  return out;
}

std::string Md5Hex(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_md5(), nullptr);
  std::string out;
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned int i = 0; i < length; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

double Counter(const std::string& name, const common::Labels& labels) {
  return common::MetricsRegistry::Global().GetCounter(name, "", labels).value();
}

// The clock, sleeper and random source the retry policy sees.
struct FakeTime {
  std::vector<double> sleeps;
  double random = 0.5;
  std::chrono::system_clock::time_point now = std::chrono::system_clock::from_time_t(1'700'000'000);
};

class HttpFaultTest : public ::testing::Test {
 protected:
  // An http tier named after the test, against the fault server's /b prefix.
  TierConfig HttpConfig() const {
    TierConfig config;
    config.kind = "http";
    config.name = TierName();
    config.base_url = server_.Url("/b");
    config.connect_timeout_seconds = 5;
    config.low_speed_bytes_per_second = 1000;
    config.low_speed_seconds = 1;
    return config;
  }
  TierConfig S3Config() const {
    TierConfig config = HttpConfig();
    config.kind = "s3";
    config.base_url.clear();
    config.endpoint = server_.Url();
    return config;
  }
  std::string TierName() const {
    return std::string("fault_") + ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }
  TierDeps Deps(int budget_tokens = 500) {
    TierDeps deps;
    deps.hooks.random01 = [this] { return time_.random; };
    deps.hooks.sleep = [this](double seconds) { time_.sleeps.push_back(seconds); };
    deps.hooks.now = [this] { return time_.now; };
    RetryBudget::Options options;
    options.capacity = budget_tokens;
    budget_ = std::make_shared<RetryBudget>("", options);
    deps.budget = budget_;
    return deps;
  }
  std::unique_ptr<Tier> MakeHttp(const TierConfig& config, int budget_tokens = 500) {
    return std::make_unique<HttpTier>(config, Deps(budget_tokens));
  }
  std::unique_ptr<Tier> MakeS3(const TierConfig& config, const S3Credentials& credentials) {
    return std::make_unique<S3Tier>(config, credentials, Deps());
  }
  std::string SinkPath(const std::string& name = "sink") const { return dir_.File(name); }

  testing::TempDir dir_;
  FaultServer server_;
  FakeTime time_;
  std::shared_ptr<RetryBudget> budget_;
};

const ObjectRef kRef{"", "v.mp4"};
constexpr char kPath[] = "/b/v.mp4";

TEST_F(HttpFaultTest, FailuresThenSuccessRetryWithFullJitterDelays) {
  const std::string bytes = RandomBytes(20000);
  server_.SetObject(kPath, bytes);
  server_.Script(kPath, {FaultResponse::Plain(500), FaultResponse::Plain(502)});
  auto tier = MakeHttp(HttpConfig());
  FileSink sink(SinkPath());
  auto fetched = tier->Fetch(kRef, &sink);
  ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
  EXPECT_EQ(fetched->size_bytes, 20000);
  EXPECT_EQ(fetched->etag, "\"e1\"");
  EXPECT_TRUE(fetched->in_place_path.empty());
  EXPECT_EQ(sink.Contents(), bytes);
  EXPECT_EQ(server_.Requests(kPath).size(), 3u);
  // random = 0.5: after attempt 0, 0.5 * min(20, 1 * 2^0); after attempt 1, 0.5 * 2.
  EXPECT_EQ(time_.sleeps, (std::vector<double>{0.5, 1.0}));
  // Two retries cost 5 each; the success gives back the cost of the last one.
  EXPECT_EQ(budget_->tokens(), 500 - 5 - 5 + 5);
  EXPECT_EQ(Counter("vsieve_storage_retries_total", {{"tier", TierName()}}), 2);
  EXPECT_EQ(Counter("vsieve_storage_requests_total",
                    {{"tier", TierName()}, {"result", "retryable_error"}}),
            2);
  EXPECT_EQ(Counter("vsieve_storage_requests_total", {{"tier", TierName()}, {"result", "ok"}}), 1);
  EXPECT_EQ(Counter("vsieve_storage_bytes_total", {{"tier", TierName()}}), 20000);
}

TEST_F(HttpFaultTest, DelaysStayWithinTheJitterBoundsAndTheCap) {
  server_.SetObject(kPath, RandomBytes(100));
  server_.Script(kPath, {FaultResponse::Plain(503), FaultResponse::Plain(503),
                         FaultResponse::Plain(503), FaultResponse::Plain(503)});
  TierConfig config = HttpConfig();
  config.max_attempts = 5;
  config.backoff_base_seconds = 0.5;
  config.backoff_cap_seconds = 2.0;
  time_.random = 0.999;
  auto tier = MakeHttp(config);
  FileSink sink(SinkPath());
  ASSERT_TRUE(tier->Fetch(kRef, &sink).ok());
  ASSERT_EQ(time_.sleeps.size(), 4u);
  const double bounds[] = {0.5, 1.0, 2.0, 2.0};  // min(cap, base * 2^n)
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_GE(time_.sleeps[i], 0.0);
    EXPECT_LE(time_.sleeps[i], bounds[i]);
    EXPECT_NEAR(time_.sleeps[i], 0.999 * bounds[i], 1e-9);
  }
}

TEST_F(HttpFaultTest, GivesUpAfterMaxAttemptsWithARetryableError) {
  server_.SetObject(kPath, RandomBytes(100));
  server_.Script(kPath,
                 {FaultResponse::Plain(503), FaultResponse::Plain(503), FaultResponse::Plain(503)});
  auto tier = MakeHttp(HttpConfig());
  FileSink sink(SinkPath());
  auto fetched = tier->Fetch(kRef, &sink);
  ASSERT_FALSE(fetched.ok());
  EXPECT_EQ(fetched.status().code(), ErrorCode::kFetchFailed);
  EXPECT_TRUE(fetched.status().retryable());
  EXPECT_NE(fetched.status().message().find("status 503"), std::string::npos);
  EXPECT_NE(fetched.status().message().find("3 attempts made"), std::string::npos);
  EXPECT_EQ(server_.Requests(kPath).size(), 3u);
  EXPECT_EQ(time_.sleeps.size(), 2u);
  EXPECT_EQ(sink.written(), 0);
}

TEST_F(HttpFaultTest, EveryRetryableStatusIsRetried) {
  auto tier = MakeHttp(HttpConfig());
  for (int status : {408, 429, 500, 502, 503, 504}) {
    const std::string key = "s" + std::to_string(status) + ".mp4";
    server_.SetObject("/b/" + key, RandomBytes(64));
    server_.Script("/b/" + key, {FaultResponse::Plain(status)});
    FileSink sink(SinkPath(key));
    auto fetched = tier->Fetch(ObjectRef{"", key}, &sink);
    EXPECT_TRUE(fetched.ok()) << status << ": " << fetched.status().ToString();
    EXPECT_EQ(server_.Requests("/b/" + key).size(), 2u) << status;
  }
}

TEST_F(HttpFaultTest, S3ErrorCodesSlowDownRequestTimeoutInternalErrorAreRetried) {
  auto tier = MakeHttp(HttpConfig());
  const auto xml = [](const std::string& code) {
    return "<?xml version=\"1.0\"?><Error><Code>" + code + "</Code><Message>m</Message></Error>";
  };
  const std::vector<FaultResponse> faults = {FaultResponse::SlowDown(),
                                             FaultResponse::Plain(400, xml("RequestTimeout")),
                                             FaultResponse::Plain(500, xml("InternalError"))};
  for (size_t i = 0; i < faults.size(); ++i) {
    const std::string key = "x" + std::to_string(i) + ".mp4";
    server_.SetObject("/b/" + key, RandomBytes(64));
    server_.Script("/b/" + key, {faults[i]});
    FileSink sink(SinkPath(key));
    auto fetched = tier->Fetch(ObjectRef{"", key}, &sink);
    EXPECT_TRUE(fetched.ok()) << i << ": " << fetched.status().ToString();
    EXPECT_EQ(server_.Requests("/b/" + key).size(), 2u) << i;
  }
  // Another 400 is the client's fault: not retried.
  server_.Script("/b/bad.mp4", {FaultResponse::Plain(400, xml("InvalidArgument"))});
  FileSink sink(SinkPath("bad"));
  auto fetched = tier->Fetch(ObjectRef{"", "bad.mp4"}, &sink);
  EXPECT_EQ(fetched.status().code(), ErrorCode::kFetchFailed);
  EXPECT_FALSE(fetched.status().retryable());
  EXPECT_NE(fetched.status().message().find("InvalidArgument"), std::string::npos);
  EXPECT_EQ(server_.Requests("/b/bad.mp4").size(), 1u);
}

TEST_F(HttpFaultTest, RetryAfterIsHonouredUpToTheCap) {
  server_.SetObject(kPath, RandomBytes(100));
  // Seconds; more than the jitter (0.5 * 1) asks for.
  server_.Script(kPath, {FaultResponse::SlowDown("3")});
  auto tier = MakeHttp(HttpConfig());
  FileSink sink(SinkPath());
  ASSERT_TRUE(tier->Fetch(kRef, &sink).ok());
  EXPECT_EQ(time_.sleeps, (std::vector<double>{3.0}));

  // Above the cap (20 s): the cap.
  time_.sleeps.clear();
  server_.Script(kPath, {FaultResponse::SlowDown("100")});
  FileSink sink2(SinkPath("2"));
  ASSERT_TRUE(tier->Fetch(kRef, &sink2).ok());
  EXPECT_EQ(time_.sleeps, (std::vector<double>{20.0}));

  // An HTTP date 7 s after the (fake) now.
  time_.sleeps.clear();
  const std::time_t later = std::chrono::system_clock::to_time_t(time_.now) + 7;
  std::tm tm{};
  gmtime_r(&later, &tm);
  char date[64];
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  server_.Script(kPath, {FaultResponse::Plain(429, "", {{"Retry-After", date}})});
  FileSink sink3(SinkPath("3"));
  ASSERT_TRUE(tier->Fetch(kRef, &sink3).ok());
  EXPECT_EQ(time_.sleeps, (std::vector<double>{7.0}));

  // Shorter than the jitter: the jitter wins.
  time_.sleeps.clear();
  server_.Script(kPath, {FaultResponse::SlowDown("0")});
  FileSink sink4(SinkPath("4"));
  ASSERT_TRUE(tier->Fetch(kRef, &sink4).ok());
  EXPECT_EQ(time_.sleeps, (std::vector<double>{0.5}));
}

TEST_F(HttpFaultTest, NotFoundAndForbiddenAreNeverRetried) {
  auto tier = MakeHttp(HttpConfig());
  server_.Script("/b/missing.mp4", {FaultResponse::Plain(404)});
  FileSink sink(SinkPath());
  auto missing = tier->Fetch(ObjectRef{"", "missing.mp4"}, &sink);
  EXPECT_EQ(missing.status().code(), ErrorCode::kObjectNotFound);
  EXPECT_FALSE(missing.status().retryable());
  EXPECT_EQ(server_.Requests("/b/missing.mp4").size(), 1u);

  server_.SetObject("/b/secret.mp4", RandomBytes(10));
  server_.Script("/b/secret.mp4", {FaultResponse::Plain(403)});
  auto forbidden = tier->Fetch(ObjectRef{"", "secret.mp4"}, &sink);
  EXPECT_EQ(forbidden.status().code(), ErrorCode::kObjectForbidden);
  EXPECT_FALSE(forbidden.status().retryable());
  EXPECT_EQ(server_.Requests("/b/secret.mp4").size(), 1u);
  EXPECT_TRUE(time_.sleeps.empty());
  EXPECT_EQ(budget_->tokens(), 500);
}

TEST_F(HttpFaultTest, TruncatedBodyIsResumedWithRangeAndIfMatch) {
  const std::string bytes = RandomBytes(100000);
  server_.SetObject(kPath, bytes, "\"abc\"");
  FaultResponse truncated = FaultResponse::Object();
  truncated.send_bytes = 40000;  // Content-Length says 100000
  server_.Script(kPath, {truncated});
  auto tier = MakeHttp(HttpConfig());
  FileSink sink(SinkPath());
  auto fetched = tier->Fetch(kRef, &sink);
  ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
  EXPECT_EQ(sink.Contents(), bytes);
  EXPECT_EQ(sink.restarts(), 0);
  const auto requests = server_.Requests(kPath);
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].Header("range"), "");
  EXPECT_EQ(requests[1].Header("range"), "bytes=40000-");
  EXPECT_EQ(requests[1].Header("if-match"), "\"abc\"");
  EXPECT_EQ(sink.reserves(), (std::vector<int64_t>{100000}));
  EXPECT_EQ(Counter("vsieve_storage_bytes_total", {{"tier", TierName()}}), 100000);
}

TEST_F(HttpFaultTest, APartialSinkIsResumedAfterAHeadForTheEtag) {
  const std::string bytes = RandomBytes(30000);
  server_.SetObject(kPath, bytes, "\"abc\"");
  auto tier = MakeHttp(HttpConfig());
  FileSink sink(SinkPath());
  ASSERT_TRUE(sink.Write(bytes.data(), 10000).ok());
  auto fetched = tier->Fetch(kRef, &sink);
  ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
  EXPECT_EQ(sink.Contents(), bytes);
  const auto requests = server_.Requests(kPath);
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].method, "HEAD");
  EXPECT_EQ(requests[1].Header("range"), "bytes=10000-");
  EXPECT_EQ(requests[1].Header("if-match"), "\"abc\"");

  // A server without HEAD: no ETag to guard the resume, so the download starts again.
  FileSink again(SinkPath("again"));
  ASSERT_TRUE(again.Write(bytes.data(), 10000).ok());
  server_.Script(kPath, {FaultResponse::Plain(405)});
  fetched = tier->Fetch(kRef, &again);
  ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
  EXPECT_EQ(again.Contents(), bytes);
  EXPECT_EQ(again.restarts(), 1);
  EXPECT_EQ(server_.Requests(kPath).back().Header("range"), "");
}

TEST_F(HttpFaultTest, ResetMidBodyIsRetriedAndResumed) {
  const std::string bytes = RandomBytes(200000);
  server_.SetObject(kPath, bytes);
  FaultResponse reset = FaultResponse::Object();
  reset.send_bytes = 60000;
  reset.reset = true;
  server_.Script(kPath, {reset});
  auto tier = MakeHttp(HttpConfig());
  FileSink sink(SinkPath());
  auto fetched = tier->Fetch(kRef, &sink);
  ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
  EXPECT_EQ(sink.Contents(), bytes);
  const auto requests = server_.Requests(kPath);
  ASSERT_EQ(requests.size(), 2u);
  // A reset may drop bytes in flight; whatever arrived is kept and the rest asked for.
  if (!requests[1].Header("range").empty()) {
    EXPECT_EQ(requests[1].Header("if-match"), "\"e1\"");
  }
}

TEST_F(HttpFaultTest, StallAfterHeadersTimesOutAndCostsTheTimeoutPrice) {
  server_.SetObject(kPath, RandomBytes(5000));
  FaultResponse stall = FaultResponse::Object();
  stall.stall_after_headers_seconds = 30;
  server_.Script(kPath, {stall, stall});
  // 14 tokens: one timeout retry (10) fits, a second does not.
  auto tier = MakeHttp(HttpConfig(), /*budget_tokens=*/14);
  FileSink sink(SinkPath());
  auto fetched = tier->Fetch(kRef, &sink);
  ASSERT_FALSE(fetched.ok());
  EXPECT_EQ(fetched.status().code(), ErrorCode::kFetchFailed);
  EXPECT_TRUE(fetched.status().retryable());
  EXPECT_NE(fetched.status().message().find("timed out"), std::string::npos);
  EXPECT_NE(fetched.status().message().find("retry budget exhausted"), std::string::npos);
  EXPECT_EQ(server_.Requests(kPath).size(), 2u);
  EXPECT_EQ(budget_->tokens(), 4);
}

TEST_F(HttpFaultTest, SlowBodyBelowTheLowSpeedLimitTimesOutThenResumes) {
  const std::string bytes = RandomBytes(20000);
  server_.SetObject(kPath, bytes);
  FaultResponse slow = FaultResponse::Object();
  slow.bytes_per_second = 200;  // limit: 1000 B/s over 1 s
  server_.Script(kPath, {slow});
  auto tier = MakeHttp(HttpConfig());
  FileSink sink(SinkPath());
  auto fetched = tier->Fetch(kRef, &sink);
  ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
  EXPECT_EQ(sink.Contents(), bytes);
  const auto requests = server_.Requests(kPath);
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1].Header("range").rfind("bytes=", 0), 0u);  // resumed, not restarted
  EXPECT_EQ(sink.restarts(), 0);
}

TEST_F(HttpFaultTest, SlowBodyAboveTheLowSpeedLimitSucceeds) {
  const std::string bytes = RandomBytes(6000);
  server_.SetObject(kPath, bytes);
  FaultResponse slow = FaultResponse::Object();
  slow.bytes_per_second = 12000;  // limit: 1000 B/s
  server_.Script(kPath, {slow});
  auto tier = MakeHttp(HttpConfig());
  FileSink sink(SinkPath());
  auto fetched = tier->Fetch(kRef, &sink);
  ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
  EXPECT_EQ(sink.Contents(), bytes);
  EXPECT_EQ(server_.Requests(kPath).size(), 1u);
}

TEST_F(HttpFaultTest, ContentLengthLargerThanTheBodyIsATruncationThatEndsInTheRightBytes) {
  const std::string bytes = RandomBytes(3000);
  server_.SetObject(kPath, bytes);
  FaultResponse wrong = FaultResponse::Object();
  wrong.content_length = 3500;  // 3000 bytes follow, then the connection closes
  server_.Script(kPath, {wrong});
  auto tier = MakeHttp(HttpConfig());
  FileSink sink(SinkPath());
  auto fetched = tier->Fetch(kRef, &sink);
  ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
  EXPECT_EQ(sink.Contents(), bytes);
  // Resume at 3000 gets 416 (the object has 3000 bytes): restart from 0.
  const auto requests = server_.Requests(kPath);
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[1].Header("range"), "bytes=3000-");
  EXPECT_EQ(requests[2].Header("range"), "");
  EXPECT_EQ(sink.restarts(), 1);
}

TEST_F(HttpFaultTest, S3ContentLengthBelowTheHeadSizeIsContentMismatch) {
  const std::string bytes = RandomBytes(3000);
  server_.SetObject("/bk/v.mp4", bytes, "\"" + Md5Hex(bytes) + "\"");
  FaultResponse head = FaultResponse::Object();
  FaultResponse wrong = FaultResponse::Object();
  wrong.content_length = 2900;  // a consistent but short body
  server_.Script("/bk/v.mp4", {head, wrong});
  auto tier = MakeS3(S3Config(), S3Credentials{"AKID", "SECRET", ""});
  FileSink sink(SinkPath());
  auto fetched = tier->Fetch(ObjectRef{"bk", "v.mp4"}, &sink);
  ASSERT_FALSE(fetched.ok());
  EXPECT_EQ(fetched.status().code(), ErrorCode::kContentMismatch);
  EXPECT_FALSE(fetched.status().retryable());
  EXPECT_NE(fetched.status().message().find("HEAD said 3000"), std::string::npos)
      << fetched.status().message();
  EXPECT_EQ(server_.Requests("/bk/v.mp4").size(), 2u);
}

TEST_F(HttpFaultTest, S3VerifiesTheMd5OfSinglePartEtagsAndSkipsMultipart) {
  const std::string bytes = RandomBytes(5000);
  auto tier = MakeS3(S3Config(), S3Credentials{"AKID", "SECRET", ""});
  server_.SetObject("/bk/good.mp4", bytes, "\"" + Md5Hex(bytes) + "\"");
  FileSink good(SinkPath("good"));
  auto fetched = tier->Fetch(ObjectRef{"bk", "good.mp4"}, &good);
  ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
  EXPECT_EQ(good.Contents(), bytes);
  const auto requests = server_.Requests("/bk/good.mp4");
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].method, "HEAD");
  EXPECT_EQ(requests[1].method, "GET");
  EXPECT_EQ(requests[1].Header("if-match"), "\"" + Md5Hex(bytes) + "\"");

  server_.SetObject("/bk/bad.mp4", bytes, "\"" + Md5Hex("other") + "\"");
  FileSink bad(SinkPath("bad"));
  auto corrupt = tier->Fetch(ObjectRef{"bk", "bad.mp4"}, &bad);
  EXPECT_EQ(corrupt.status().code(), ErrorCode::kContentMismatch);
  EXPECT_NE(corrupt.status().message().find("MD5"), std::string::npos);

  server_.SetObject("/bk/multi.mp4", bytes, "\"0123456789abcdef0123456789abcdef-3\"");
  FileSink multi(SinkPath("multi"));
  EXPECT_TRUE(tier->Fetch(ObjectRef{"bk", "multi.mp4"}, &multi).ok());
}

TEST_F(HttpFaultTest, EtagThatChangesBetweenRequestsRestartsFromZero) {
  const std::string bytes = RandomBytes(50000);
  server_.SetObject(kPath, bytes, "", /*rotate_etag=*/true);
  FaultResponse truncated = FaultResponse::Object();
  truncated.send_bytes = 5000;
  server_.Script(kPath, {truncated});
  auto tier = MakeHttp(HttpConfig());
  FileSink sink(SinkPath());
  auto fetched = tier->Fetch(kRef, &sink);
  ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
  EXPECT_EQ(sink.Contents(), bytes);
  EXPECT_EQ(sink.restarts(), 1);
  EXPECT_EQ(fetched->etag, "\"v3\"");
  const auto requests = server_.Requests(kPath);
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[1].Header("range"), "bytes=5000-");
  EXPECT_EQ(requests[1].Header("if-match"), "\"v1\"");  // answered 412
  EXPECT_EQ(requests[2].Header("range"), "");
  EXPECT_EQ(Counter("vsieve_storage_restarts_total", {{"tier", TierName()}}), 1);
}

TEST_F(HttpFaultTest, A206WithAnotherEtagRestartsFromZero) {
  const std::string bytes = RandomBytes(10000);
  server_.SetObject(kPath, bytes, "\"e1\"");
  FaultResponse truncated = FaultResponse::Object();
  truncated.send_bytes = 4000;
  // A server that ignores If-Match and serves a newer object.
  FaultResponse other = FaultResponse::Plain(
      206, bytes.substr(4000), {{"ETag", "\"e2\""}, {"Content-Range", "bytes 4000-9999/10000"}});
  server_.Script(kPath, {truncated, other});
  auto tier = MakeHttp(HttpConfig());
  FileSink sink(SinkPath());
  auto fetched = tier->Fetch(kRef, &sink);
  ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
  EXPECT_EQ(sink.Contents(), bytes);
  EXPECT_EQ(sink.restarts(), 1);
  EXPECT_EQ(server_.Requests(kPath).size(), 3u);
}

TEST_F(HttpFaultTest, HtmlPageWithStatus200IsContentMismatchAndNotRetried) {
  auto tier = MakeHttp(HttpConfig());
  const std::vector<FaultResponse> pages = {
      FaultResponse::Plain(200, "  \r\n<!DOCTYPE html><html><body>Login</body></html>"),
      FaultResponse::Plain(200, "\n\t<HTML><HEAD><TITLE>Error</TITLE></HEAD></HTML>"),
      FaultResponse::Plain(200, RandomBytes(100), {{"Content-Type", "text/html; charset=utf-8"}}),
  };
  for (size_t i = 0; i < pages.size(); ++i) {
    const std::string key = "page" + std::to_string(i) + ".mp4";
    server_.Script("/b/" + key, {pages[i]});
    FileSink sink(SinkPath(key));
    auto fetched = tier->Fetch(ObjectRef{"", key}, &sink);
    EXPECT_EQ(fetched.status().code(), ErrorCode::kContentMismatch) << i;
    EXPECT_FALSE(fetched.status().retryable()) << i;
    EXPECT_NE(fetched.status().message().find("HTML"), std::string::npos) << i;
    EXPECT_EQ(server_.Requests("/b/" + key).size(), 1u) << i;
    EXPECT_EQ(sink.written(), 0) << i;
  }
  EXPECT_EQ(
      Counter("vsieve_storage_requests_total", {{"tier", TierName()}, {"result", "mismatch"}}), 3);
  // Text that is not HTML passes (the decoder judges it).
  server_.Script("/b/text.mp4", {FaultResponse::Plain(200, "hello <html> later")});
  FileSink sink(SinkPath("text"));
  EXPECT_TRUE(tier->Fetch(ObjectRef{"", "text.mp4"}, &sink).ok());
}

TEST_F(HttpFaultTest, BudgetExhaustionStopsRetries) {
  server_.SetObject(kPath, RandomBytes(100));
  server_.Script(kPath,
                 {FaultResponse::Plain(503), FaultResponse::Plain(503), FaultResponse::Plain(503)});
  auto tier = MakeHttp(HttpConfig(), /*budget_tokens=*/5);
  FileSink sink(SinkPath());
  auto first = tier->Fetch(kRef, &sink);
  EXPECT_EQ(first.status().code(), ErrorCode::kFetchFailed);
  EXPECT_TRUE(first.status().retryable());
  EXPECT_NE(first.status().message().find("retry budget exhausted"), std::string::npos);
  EXPECT_EQ(server_.Requests(kPath).size(), 2u);  // one retry was affordable
  EXPECT_EQ(budget_->tokens(), 0);
  // The bucket is empty: the next failure is not retried at all.
  auto second = tier->Fetch(kRef, &sink);
  EXPECT_FALSE(second.ok());
  EXPECT_EQ(server_.Requests(kPath).size(), 3u);
  // A success without retries gives back one token.
  auto third = tier->Fetch(kRef, &sink);
  EXPECT_TRUE(third.ok()) << third.status().ToString();
  EXPECT_EQ(budget_->tokens(), 1);
}

TEST_F(HttpFaultTest, ConnectionRefusedIsRetryable) {
  TierConfig config = HttpConfig();
  {
    FaultServer closed;
    config.base_url = closed.Url("/b");
  }  // stopped: nothing listens there now
  auto tier = MakeHttp(config);
  FileSink sink(SinkPath());
  auto fetched = tier->Fetch(kRef, &sink);
  EXPECT_EQ(fetched.status().code(), ErrorCode::kFetchFailed);
  EXPECT_TRUE(fetched.status().retryable());
  EXPECT_EQ(time_.sleeps.size(), 2u);
}

TEST_F(HttpFaultTest, SinkRefusalAbortsTheTransferAndIsNotRetried) {
  server_.SetObject(kPath, RandomBytes(50000));
  auto tier = MakeHttp(HttpConfig());
  FileSink sink(SinkPath(), /*limit_bytes=*/1000);
  auto fetched = tier->Fetch(kRef, &sink);
  EXPECT_EQ(fetched.status().code(), ErrorCode::kFetchFailed);
  EXPECT_NE(fetched.status().message().find("sink limit"), std::string::npos);
  EXPECT_EQ(server_.Requests(kPath).size(), 1u);
  EXPECT_EQ(sink.written(), 0);
  EXPECT_EQ(sink.reserves(), (std::vector<int64_t>{50000}));
}

TEST_F(HttpFaultTest, CredentialsNeverAppearInMessages) {
  const S3Credentials credentials{"AKIDVISIBLEKEY", "wJalrXUtnFEMI/K7MDENG/SECRETKEY",
                                  "SESSIONTOKENSECRET"};
  auto tier = MakeS3(S3Config(), credentials);
  server_.SetObject("/bk/v.mp4", RandomBytes(100), "\"e1\"");
  // Every kind of failure. The 403 body is what S3 sends for a bad signature: only its Code and
  // Message may reach the message.
  server_.Script("/bk/v.mp4",
                 {FaultResponse::Object(),  // the HEAD
                  FaultResponse::Plain(403,
                                       "<Error><Code>SignatureDoesNotMatch</Code><Message>The "
                                       "request signature we calculated does not match the "
                                       "signature you provided.</Message><AWSAccessKeyId>"
                                       "AKIDVISIBLEKEY</AWSAccessKeyId><StringToSign>"
                                       "AWS4-HMAC-SHA256 STRINGTOSIGN</StringToSign></Error>")});
  FileSink sink(SinkPath());
  std::vector<common::Status> failures;
  failures.push_back(tier->Fetch(ObjectRef{"bk", "v.mp4"}, &sink).status());
  server_.Script("/bk/v.mp4",
                 {FaultResponse::Plain(500), FaultResponse::Plain(500), FaultResponse::Plain(500)});
  failures.push_back(tier->Fetch(ObjectRef{"bk", "v.mp4"}, &sink).status());
  server_.Script("/bk/v.mp4",
                 {FaultResponse::Object(), FaultResponse::Plain(200, "<html>denied</html>")});
  failures.push_back(tier->Fetch(ObjectRef{"bk", "v.mp4"}, &sink).status());
  failures.push_back(tier->Fetch(ObjectRef{"bk", "none.mp4"}, &sink).status());
  EXPECT_EQ(failures[0].code(), ErrorCode::kObjectForbidden);
  EXPECT_NE(failures[0].message().find("SignatureDoesNotMatch"), std::string::npos);
  for (const auto& status : failures) {
    ASSERT_FALSE(status.ok());
    const std::string text = status.ToString();
    EXPECT_EQ(text.find(credentials.secret_access_key), std::string::npos) << text;
    EXPECT_EQ(text.find("SECRETKEY"), std::string::npos) << text;
    EXPECT_EQ(text.find(credentials.session_token), std::string::npos) << text;
    EXPECT_EQ(text.find("Authorization"), std::string::npos) << text;
    EXPECT_EQ(text.find("Signature="), std::string::npos) << text;
    EXPECT_EQ(text.find("STRINGTOSIGN"), std::string::npos) << text;
  }
  // The requests were signed, and carried the payload hash and token headers.
  const auto requests = server_.Requests("/bk/v.mp4");
  ASSERT_FALSE(requests.empty());
  EXPECT_EQ(
      requests[0].Header("authorization").rfind("AWS4-HMAC-SHA256 Credential=AKIDVISIBLEKEY/", 0),
      0u);
  EXPECT_EQ(requests[0].Header("x-amz-content-sha256"), "UNSIGNED-PAYLOAD");
  EXPECT_EQ(requests[0].Header("x-amz-security-token"), credentials.session_token);

  // A base URL with a password: the URL in messages loses it.
  TierConfig config = HttpConfig();
  config.base_url = "http://user:hunter2@127.0.0.1:" + std::to_string(server_.port()) + "/b";
  auto http = MakeHttp(config);
  server_.Script(kPath, {FaultResponse::Plain(404)});
  const common::Status missing = http->Fetch(kRef, &sink).status();
  EXPECT_EQ(missing.code(), ErrorCode::kObjectNotFound);
  EXPECT_EQ(missing.message().find("hunter2"), std::string::npos) << missing.message();
}

// One check with real time: the delay after a Retry-After of 1 s is at least 1 s (the upper
// bound is only there to catch a runaway sleep).
TEST_F(HttpFaultTest, RealTimeRetryAfterDelayIsWaited) {
  server_.SetObject(kPath, RandomBytes(100));
  server_.Script(kPath, {FaultResponse::SlowDown("1")});
  TierConfig config = HttpConfig();
  config.backoff_base_seconds = 0.01;
  config.backoff_cap_seconds = 5;
  TierDeps deps;  // real clock, sleep and random
  deps.budget = std::make_shared<RetryBudget>("", RetryBudget::Options{});
  HttpTier tier(config, deps);
  FileSink sink(SinkPath());
  ASSERT_TRUE(tier.Fetch(kRef, &sink).ok());
  const auto requests = server_.Requests(kPath);
  ASSERT_EQ(requests.size(), 2u);
  const double gap = std::chrono::duration<double>(requests[1].time - requests[0].time).count();
  EXPECT_GE(gap, 1.0);
  EXPECT_LT(gap, 30.0);
}

}  // namespace
}  // namespace vsieve::storage
