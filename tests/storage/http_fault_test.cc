// Every transport fault of issue 4 against the HTTP and S3 tiers, served by FaultServer: attempt
// counts, backoff delays (deterministic through the injected sleeper and random source), retry
// budget, Range/If-Match resume, end state (code, retryable flag, sink contents), and that
// credentials never reach a message.
#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "storage/http_tier.h"
#include "storage/s3_tier.h"
#include "storage/tier_factory.h"
#include "tests/storage/fault_server.h"
#include "tests/storage/file_sink.h"
#include "tests/storage/test_bytes.h"
#include "tests/support/test_env.h"

namespace vsieve::storage {
namespace {

using common::ErrorCode;
using testing::Counter;
using testing::FaultResponse;
using testing::FaultServer;
using testing::FileSink;
using testing::Md5Hex;
using testing::RandomBytes;

// Whether `status` is an error with `code` and `retryable` whose message holds `text`.
::testing::AssertionResult IsError(const common::Status& status, ErrorCode code, bool retryable,
                                   const std::string& text = "") {
  if (!status.ok() && status.code() == code && status.retryable() == retryable &&
      status.message().find(text) != std::string::npos) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "got " << status.ToString() << "; expected " << common::ErrorCodeName(code)
         << (retryable ? ", retryable" : ", not retryable")
         << (text.empty() ? "" : ", with \"" + text + "\"");
}

// The object, its body cut off after `bytes` (the connection closes; with `reset`, a TCP reset).
FaultResponse CutAfter(int64_t bytes, bool reset = false) {
  FaultResponse response = FaultResponse::Object();
  response.send_bytes = bytes;
  response.reset = reset;
  return response;
}

// The clock, sleeper and random source the retry policy sees.
struct FakeTime {
  std::vector<double> sleeps;
  double random = 0.5;
  std::chrono::system_clock::time_point now = std::chrono::system_clock::from_time_t(1'700'000'000);
};

const ObjectRef kRef{"", "v.mp4"};
constexpr char kPath[] = "/b/v.mp4";

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

  // Puts `size` random bytes at kPath with `etag`, scripts `faults` (when any) for the next
  // requests to it, and returns the bytes.
  std::string Serve(size_t size, std::vector<FaultResponse> faults = {},
                    const std::string& etag = "\"e1\"") {
    std::string bytes = RandomBytes(size);
    server_.SetObject(kPath, bytes, etag);
    if (!faults.empty()) server_.Script(kPath, std::move(faults));
    return bytes;
  }

  // Fetches kRef into sink_ through an http tier with the default config.
  common::StatusOr<TierObject> FetchRef(int budget_tokens = 500) {
    return MakeHttp(HttpConfig(), budget_tokens)->Fetch(kRef, &sink_);
  }

  // FetchRef() succeeds and leaves exactly `bytes` in sink_; `fetched`, when given, gets the
  // result.
  ::testing::AssertionResult FetchesWhole(const std::string& bytes, TierObject* fetched = nullptr) {
    auto result = FetchRef();
    if (!result.ok()) return ::testing::AssertionFailure() << result.status().ToString();
    if (fetched != nullptr) *fetched = *result;
    const std::string contents = sink_.Contents();
    if (contents != bytes) {
      return ::testing::AssertionFailure()
             << "the sink holds " << contents.size() << " bytes, not the object's " << bytes.size();
    }
    return ::testing::AssertionSuccess();
  }

  // Fetches kRef with `tier` into a new sink `sink_name` past the one scripted `fault`;
  // returns the delays slept before the fetch succeeded.
  std::vector<double> SleepsPast(Tier* tier, const FaultResponse& fault,
                                 const std::string& sink_name) {
    time_.sleeps.clear();
    server_.Script(kPath, {fault});
    FileSink sink(SinkPath(sink_name));
    EXPECT_TRUE(tier->Fetch(kRef, &sink).ok());
    return time_.sleeps;
  }

  // Whether `tier` fetches the 64 bytes served at /b/<key> past the one scripted `fault`, into
  // a new sink, with exactly one retry.
  ::testing::AssertionResult RetriedOnce(Tier* tier, const std::string& key,
                                         const FaultResponse& fault) {
    server_.SetObject("/b/" + key, RandomBytes(64));
    server_.Script("/b/" + key, {fault});
    FileSink sink(SinkPath(key));
    auto fetched = tier->Fetch(ObjectRef{"", key}, &sink);
    if (!fetched.ok()) return ::testing::AssertionFailure() << fetched.status().ToString();
    const size_t requests = server_.Requests("/b/" + key).size();
    if (requests != 2) return ::testing::AssertionFailure() << requests << " requests, not 2";
    return ::testing::AssertionSuccess();
  }

  testing::TempDir dir_;
  FaultServer server_;
  FakeTime time_;
  std::shared_ptr<RetryBudget> budget_;
  FileSink sink_{SinkPath()};
};

TEST_F(HttpFaultTest, FailuresThenSuccessRetryWithFullJitterDelays) {
  const std::string bytes = Serve(20000, {FaultResponse::Plain(500), FaultResponse::Plain(502)});
  TierObject fetched;
  ASSERT_TRUE(FetchesWhole(bytes, &fetched));
  EXPECT_EQ(fetched.size_bytes, 20000);
  EXPECT_EQ(fetched.etag, "\"e1\"");
  EXPECT_TRUE(fetched.in_place_path.empty());
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
  Serve(100, {FaultResponse::Plain(503), FaultResponse::Plain(503), FaultResponse::Plain(503),
              FaultResponse::Plain(503)});
  TierConfig config = HttpConfig();
  config.max_attempts = 5;
  config.backoff_base_seconds = 0.5;
  config.backoff_cap_seconds = 2.0;
  time_.random = 0.999;
  ASSERT_TRUE(MakeHttp(config)->Fetch(kRef, &sink_).ok());
  ASSERT_EQ(time_.sleeps.size(), 4u);
  const double bounds[] = {0.5, 1.0, 2.0, 2.0};  // min(cap, base * 2^n)
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_GE(time_.sleeps[i], 0.0);
    EXPECT_LE(time_.sleeps[i], bounds[i]);
    EXPECT_NEAR(time_.sleeps[i], 0.999 * bounds[i], 1e-9);
  }
}

TEST_F(HttpFaultTest, GivesUpAfterMaxAttemptsWithARetryableError) {
  Serve(100, {FaultResponse::Plain(503), FaultResponse::Plain(503), FaultResponse::Plain(503)});
  const common::Status status = FetchRef().status();
  ASSERT_TRUE(IsError(status, ErrorCode::kFetchFailed, /*retryable=*/true, "status 503"));
  EXPECT_NE(status.message().find("3 attempts made"), std::string::npos);
  EXPECT_EQ(server_.Requests(kPath).size(), 3u);
  EXPECT_EQ(time_.sleeps.size(), 2u);
  EXPECT_EQ(sink_.written(), 0);
}

TEST_F(HttpFaultTest, EveryRetryableStatusIsRetried) {
  auto tier = MakeHttp(HttpConfig());
  for (int status : {408, 429, 500, 502, 503, 504}) {
    const std::string key = "s" + std::to_string(status) + ".mp4";
    EXPECT_TRUE(RetriedOnce(tier.get(), key, FaultResponse::Plain(status))) << status;
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
    EXPECT_TRUE(RetriedOnce(tier.get(), key, faults[i])) << i;
  }
  // Another 400 is the client's fault: not retried.
  server_.Script("/b/bad.mp4", {FaultResponse::Plain(400, xml("InvalidArgument"))});
  EXPECT_TRUE(IsError(tier->Fetch(ObjectRef{"", "bad.mp4"}, &sink_).status(),
                      ErrorCode::kFetchFailed, /*retryable=*/false, "InvalidArgument"));
  EXPECT_EQ(server_.Requests("/b/bad.mp4").size(), 1u);
}

TEST_F(HttpFaultTest, RetryAfterIsHonouredUpToTheCap) {
  Serve(100);
  auto tier = MakeHttp(HttpConfig());
  // Seconds; more than the jitter (0.5 * 1) asks for.
  EXPECT_EQ(SleepsPast(tier.get(), FaultResponse::SlowDown("3"), "1"), (std::vector<double>{3.0}));
  // Above the cap (20 s): the cap.
  EXPECT_EQ(SleepsPast(tier.get(), FaultResponse::SlowDown("100"), "2"),
            (std::vector<double>{20.0}));
  // An HTTP date 7 s after the (fake) now.
  const std::time_t later = std::chrono::system_clock::to_time_t(time_.now) + 7;
  std::tm tm{};
  gmtime_r(&later, &tm);
  char date[64];
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  EXPECT_EQ(SleepsPast(tier.get(), FaultResponse::Plain(429, "", {{"Retry-After", date}}), "3"),
            (std::vector<double>{7.0}));
  // Shorter than the jitter: the jitter wins.
  EXPECT_EQ(SleepsPast(tier.get(), FaultResponse::SlowDown("0"), "4"), (std::vector<double>{0.5}));
}

TEST_F(HttpFaultTest, NotFoundAndForbiddenAreNeverRetried) {
  auto tier = MakeHttp(HttpConfig());
  server_.Script("/b/missing.mp4", {FaultResponse::Plain(404)});
  EXPECT_TRUE(IsError(tier->Fetch(ObjectRef{"", "missing.mp4"}, &sink_).status(),
                      ErrorCode::kObjectNotFound, /*retryable=*/false));
  EXPECT_EQ(server_.Requests("/b/missing.mp4").size(), 1u);

  server_.SetObject("/b/secret.mp4", RandomBytes(10));
  server_.Script("/b/secret.mp4", {FaultResponse::Plain(403)});
  EXPECT_TRUE(IsError(tier->Fetch(ObjectRef{"", "secret.mp4"}, &sink_).status(),
                      ErrorCode::kObjectForbidden, /*retryable=*/false));
  EXPECT_EQ(server_.Requests("/b/secret.mp4").size(), 1u);
  EXPECT_TRUE(time_.sleeps.empty());
  EXPECT_EQ(budget_->tokens(), 500);
}

TEST_F(HttpFaultTest, TruncatedBodyIsResumedWithRangeAndIfMatch) {
  // Content-Length says 100000; the connection closes after 40000.
  const std::string bytes = Serve(100000, {CutAfter(40000)}, "\"abc\"");
  ASSERT_TRUE(FetchesWhole(bytes));
  EXPECT_EQ(sink_.restarts(), 0);
  const auto requests = server_.Requests(kPath);
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].Header("range"), "");
  EXPECT_EQ(requests[1].Header("range"), "bytes=40000-");
  EXPECT_EQ(requests[1].Header("if-match"), "\"abc\"");
  EXPECT_EQ(sink_.reserves(), (std::vector<int64_t>{100000}));
  EXPECT_EQ(Counter("vsieve_storage_bytes_total", {{"tier", TierName()}}), 100000);
}

TEST_F(HttpFaultTest, APartialSinkIsResumedAfterAHeadForTheEtag) {
  const std::string bytes = Serve(30000, {}, "\"abc\"");
  auto tier = MakeHttp(HttpConfig());
  ASSERT_TRUE(sink_.Write(bytes.data(), 10000).ok());
  auto fetched = tier->Fetch(kRef, &sink_);
  ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
  EXPECT_EQ(sink_.Contents(), bytes);
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
  const std::string bytes = Serve(200000, {CutAfter(60000, /*reset=*/true)});
  ASSERT_TRUE(FetchesWhole(bytes));
  const auto requests = server_.Requests(kPath);
  ASSERT_EQ(requests.size(), 2u);
  // A reset may drop bytes in flight; whatever arrived is kept and the rest asked for.
  if (!requests[1].Header("range").empty()) {
    EXPECT_EQ(requests[1].Header("if-match"), "\"e1\"");
  }
}

TEST_F(HttpFaultTest, StallAfterHeadersTimesOutAndCostsTheTimeoutPrice) {
  FaultResponse stall = FaultResponse::Object();
  stall.stall_after_headers_seconds = 30;
  Serve(5000, {stall, stall});
  // 14 tokens: one timeout retry (10) fits, a second does not.
  const common::Status status = FetchRef(/*budget_tokens=*/14).status();
  ASSERT_TRUE(IsError(status, ErrorCode::kFetchFailed, /*retryable=*/true, "timed out"));
  EXPECT_NE(status.message().find("retry budget exhausted"), std::string::npos);
  EXPECT_EQ(server_.Requests(kPath).size(), 2u);
  EXPECT_EQ(budget_->tokens(), 4);
}

TEST_F(HttpFaultTest, SlowBodyBelowTheLowSpeedLimitTimesOutThenResumes) {
  FaultResponse slow = FaultResponse::Object();
  slow.bytes_per_second = 200;  // limit: 1000 B/s over 1 s
  const std::string bytes = Serve(20000, {slow});
  ASSERT_TRUE(FetchesWhole(bytes));
  const auto requests = server_.Requests(kPath);
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1].Header("range").rfind("bytes=", 0), 0u);  // resumed, not restarted
  EXPECT_EQ(sink_.restarts(), 0);
}

TEST_F(HttpFaultTest, SlowBodyAboveTheLowSpeedLimitSucceeds) {
  FaultResponse slow = FaultResponse::Object();
  slow.bytes_per_second = 12000;  // limit: 1000 B/s
  const std::string bytes = Serve(6000, {slow});
  ASSERT_TRUE(FetchesWhole(bytes));
  EXPECT_EQ(server_.Requests(kPath).size(), 1u);
}

TEST_F(HttpFaultTest, ContentLengthLargerThanTheBodyIsATruncationThatEndsInTheRightBytes) {
  FaultResponse wrong = FaultResponse::Object();
  wrong.content_length = 3500;  // 3000 bytes follow, then the connection closes
  const std::string bytes = Serve(3000, {wrong});
  ASSERT_TRUE(FetchesWhole(bytes));
  // Resume at 3000 gets 416 (the object has 3000 bytes): restart from 0.
  const auto requests = server_.Requests(kPath);
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[1].Header("range"), "bytes=3000-");
  EXPECT_EQ(requests[2].Header("range"), "");
  EXPECT_EQ(sink_.restarts(), 1);
}

TEST_F(HttpFaultTest, S3ContentLengthBelowTheHeadSizeIsContentMismatch) {
  const std::string bytes = RandomBytes(3000);
  server_.SetObject("/bk/v.mp4", bytes, "\"" + Md5Hex(bytes) + "\"");
  FaultResponse head = FaultResponse::Object();
  FaultResponse wrong = FaultResponse::Object();
  wrong.content_length = 2900;  // a consistent but short body
  server_.Script("/bk/v.mp4", {head, wrong});
  auto tier = MakeS3(S3Config(), S3Credentials{"AKID", "SECRET", ""});
  EXPECT_TRUE(IsError(tier->Fetch(ObjectRef{"bk", "v.mp4"}, &sink_).status(),
                      ErrorCode::kContentMismatch, /*retryable=*/false, "HEAD said 3000"));
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
  const common::Status corrupt = tier->Fetch(ObjectRef{"bk", "bad.mp4"}, &bad).status();
  EXPECT_EQ(corrupt.code(), ErrorCode::kContentMismatch);
  EXPECT_NE(corrupt.message().find("MD5"), std::string::npos);

  server_.SetObject("/bk/multi.mp4", bytes, "\"0123456789abcdef0123456789abcdef-3\"");
  FileSink multi(SinkPath("multi"));
  EXPECT_TRUE(tier->Fetch(ObjectRef{"bk", "multi.mp4"}, &multi).ok());
}

TEST_F(HttpFaultTest, EtagThatChangesBetweenRequestsRestartsFromZero) {
  const std::string bytes = RandomBytes(50000);
  server_.SetObject(kPath, bytes, "", /*rotate_etag=*/true);
  server_.Script(kPath, {CutAfter(5000)});
  TierObject fetched;
  ASSERT_TRUE(FetchesWhole(bytes, &fetched));
  EXPECT_EQ(sink_.restarts(), 1);
  EXPECT_EQ(fetched.etag, "\"v3\"");
  const auto requests = server_.Requests(kPath);
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[1].Header("range"), "bytes=5000-");
  EXPECT_EQ(requests[1].Header("if-match"), "\"v1\"");  // answered 412
  EXPECT_EQ(requests[2].Header("range"), "");
  EXPECT_EQ(Counter("vsieve_storage_restarts_total", {{"tier", TierName()}}), 1);
}

TEST_F(HttpFaultTest, A206WithAnotherEtagRestartsFromZero) {
  const std::string bytes = Serve(10000);
  // A server that ignores If-Match and serves a newer object.
  FaultResponse other = FaultResponse::Plain(
      206, bytes.substr(4000), {{"ETag", "\"e2\""}, {"Content-Range", "bytes 4000-9999/10000"}});
  server_.Script(kPath, {CutAfter(4000), other});
  ASSERT_TRUE(FetchesWhole(bytes));
  EXPECT_EQ(sink_.restarts(), 1);
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
    EXPECT_TRUE(IsError(tier->Fetch(ObjectRef{"", key}, &sink).status(),
                        ErrorCode::kContentMismatch, /*retryable=*/false, "HTML"))
        << i;
    EXPECT_EQ(server_.Requests("/b/" + key).size(), 1u) << i;
    EXPECT_EQ(sink.written(), 0) << i;
  }
  EXPECT_EQ(
      Counter("vsieve_storage_requests_total", {{"tier", TierName()}, {"result", "mismatch"}}), 3);
  // Text that is not HTML passes (the decoder judges it).
  server_.Script("/b/text.mp4", {FaultResponse::Plain(200, "hello <html> later")});
  EXPECT_TRUE(tier->Fetch(ObjectRef{"", "text.mp4"}, &sink_).ok());
}

TEST_F(HttpFaultTest, BudgetExhaustionStopsRetries) {
  Serve(100, {FaultResponse::Plain(503), FaultResponse::Plain(503), FaultResponse::Plain(503)});
  auto tier = MakeHttp(HttpConfig(), /*budget_tokens=*/5);
  EXPECT_TRUE(IsError(tier->Fetch(kRef, &sink_).status(), ErrorCode::kFetchFailed,
                      /*retryable=*/true, "retry budget exhausted"));
  EXPECT_EQ(server_.Requests(kPath).size(), 2u);  // one retry was affordable
  EXPECT_EQ(budget_->tokens(), 0);
  // The bucket is empty: the next failure is not retried at all.
  auto second = tier->Fetch(kRef, &sink_);
  EXPECT_FALSE(second.ok());
  EXPECT_EQ(server_.Requests(kPath).size(), 3u);
  // A success without retries gives back one token.
  auto third = tier->Fetch(kRef, &sink_);
  EXPECT_TRUE(third.ok()) << third.status().ToString();
  EXPECT_EQ(budget_->tokens(), 1);
}

TEST_F(HttpFaultTest, ConnectionRefusedIsRetryable) {
  TierConfig config = HttpConfig();
  {
    FaultServer closed;
    config.base_url = closed.Url("/b");
  }  // stopped: nothing listens there now
  EXPECT_TRUE(IsError(MakeHttp(config)->Fetch(kRef, &sink_).status(), ErrorCode::kFetchFailed,
                      /*retryable=*/true));
  EXPECT_EQ(time_.sleeps.size(), 2u);
}

TEST_F(HttpFaultTest, SinkRefusalAbortsTheTransferAndIsNotRetried) {
  Serve(50000);
  FileSink sink(SinkPath("limited"), /*limit_bytes=*/1000);
  const common::Status status = MakeHttp(HttpConfig())->Fetch(kRef, &sink).status();
  EXPECT_EQ(status.code(), ErrorCode::kFetchFailed);
  EXPECT_NE(status.message().find("sink limit"), std::string::npos);
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
  std::vector<common::Status> failures;
  failures.push_back(tier->Fetch(ObjectRef{"bk", "v.mp4"}, &sink_).status());
  server_.Script("/bk/v.mp4",
                 {FaultResponse::Plain(500), FaultResponse::Plain(500), FaultResponse::Plain(500)});
  failures.push_back(tier->Fetch(ObjectRef{"bk", "v.mp4"}, &sink_).status());
  server_.Script("/bk/v.mp4",
                 {FaultResponse::Object(), FaultResponse::Plain(200, "<html>denied</html>")});
  failures.push_back(tier->Fetch(ObjectRef{"bk", "v.mp4"}, &sink_).status());
  failures.push_back(tier->Fetch(ObjectRef{"bk", "none.mp4"}, &sink_).status());
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
  const common::Status missing = http->Fetch(kRef, &sink_).status();
  EXPECT_EQ(missing.code(), ErrorCode::kObjectNotFound);
  EXPECT_EQ(missing.message().find("hunter2"), std::string::npos) << missing.message();
}

// One check with real time: the delay after a Retry-After of 1 s is at least 1 s (the upper
// bound is only there to catch a runaway sleep).
TEST_F(HttpFaultTest, RealTimeRetryAfterDelayIsWaited) {
  Serve(100, {FaultResponse::SlowDown("1")});
  TierConfig config = HttpConfig();
  config.backoff_base_seconds = 0.01;
  config.backoff_cap_seconds = 5;
  TierDeps deps;  // real clock, sleep and random
  deps.budget = std::make_shared<RetryBudget>("", RetryBudget::Options{});
  HttpTier tier(config, deps);
  ASSERT_TRUE(tier.Fetch(kRef, &sink_).ok());
  const auto requests = server_.Requests(kPath);
  ASSERT_EQ(requests.size(), 2u);
  const double gap = std::chrono::duration<double>(requests[1].time - requests[0].time).count();
  EXPECT_GE(gap, 1.0);
  EXPECT_LT(gap, 30.0);
}

}  // namespace
}  // namespace vsieve::storage
