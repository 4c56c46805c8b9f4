// A failing cache tier degrades, it does not fail the video (issue 14, item 5): a distributed
// cache that answers 403, 5xx after its retries, or stalls into a timeout falls through to the
// real, SigV4-verifying S3 server behind it. The cache tier is the fault server; the object
// store is s3rver. Only the last tier's error decides a row's code.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "storage/disk_cache.h"
#include "storage/tier_factory.h"
#include "storage/tiered_reader.h"
#include "tests/storage/fault_server.h"
#include "tests/storage/s3_server.h"
#include "tests/support/test_env.h"

namespace vsieve::storage {
namespace {

using common::ErrorCode;
using testing::FaultResponse;

constexpr char kBucket[] = "videos";
constexpr char kAccessKey[] = "fallkey";
constexpr char kSecretKey[] = "fallsecret";

double TierErrors(const std::string& tier, const std::string& code) {
  return common::MetricsRegistry::Global()
      .GetCounter("vsieve_tier_errors_total", "", {{"tier", tier}, {"code", code}})
      .value();
}

class TierFallthroughTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    s3_ = testing::S3Server::Start({kBucket}, kAccessKey, kSecretKey, &skip_).release();
    if (s3_ != nullptr) {
      const common::Status put = s3_->Put(kBucket, "in-s3.mp4", "bytes from the object store");
      if (!put.ok()) {
        skip_ = "upload failed: " + put.ToString();
        delete s3_;
        s3_ = nullptr;
      }
    }
  }
  static void TearDownTestSuite() {
    delete s3_;
    s3_ = nullptr;
  }

  void SetUp() override {
    if (s3_ == nullptr) GTEST_SKIP() << "s3rver: " << skip_;
    credentials_ = dir_.File("credentials");
    ASSERT_TRUE(testing::WriteFile(credentials_,
                                   std::string("[default]\naws_access_key_id = ") + kAccessKey +
                                       "\naws_secret_access_key = " + kSecretKey + "\n"));
  }

  // The fault server as the "dcache" (http) tier, then s3rver as the "object" tier.
  std::unique_ptr<TieredReader> MakeReader(double low_speed_seconds = 5) {
    TierConfig cache;
    cache.kind = "http";
    cache.name = "flaky_cache";
    cache.base_url = faults_.Url("/{bucket}");
    cache.max_attempts = 2;
    cache.backoff_base_seconds = 0.01;
    cache.backoff_cap_seconds = 0.02;
    cache.low_speed_seconds = static_cast<int64_t>(low_speed_seconds);
    TierConfig object;
    object.kind = "s3";
    object.name = "origin";
    object.endpoint = s3_->endpoint();
    object.credentials = credentials_;
    object.max_attempts = 2;
    object.backoff_base_seconds = 0.01;
    object.backoff_cap_seconds = 0.02;
    std::vector<std::unique_ptr<Tier>> tiers;
    for (const TierConfig& config : {cache, object}) {
      auto tier = CreateTier(config);
      EXPECT_TRUE(tier.ok()) << tier.status().ToString();
      if (!tier.ok()) return nullptr;
      tiers.push_back(std::move(tier).value());
    }
    auto disk = DiskCache::Open(dir_.File("cache"), 1 << 20);
    EXPECT_TRUE(disk.ok()) << disk.status().ToString();
    if (!disk.ok()) return nullptr;
    return std::make_unique<TieredReader>(std::move(tiers), *disk);
  }

  static std::vector<FaultResponse> Repeat(const FaultResponse& response, int n) {
    return std::vector<FaultResponse>(static_cast<size_t>(n), response);
  }

  static testing::S3Server* s3_;
  static std::string skip_;
  testing::TempDir dir_;
  testing::FaultServer faults_;
  std::string credentials_;
};

testing::S3Server* TierFallthroughTest::s3_ = nullptr;
std::string TierFallthroughTest::skip_;

TEST_F(TierFallthroughTest, ForbiddenCacheFallsThroughToS3AndIsRecorded) {
  faults_.Script("/videos/in-s3.mp4", Repeat(FaultResponse::Plain(403, "AccessDenied"), 4));
  const double before = TierErrors("flaky_cache", "OBJECT_FORBIDDEN");
  auto reader = MakeReader();
  ASSERT_NE(reader, nullptr);
  auto got = reader->Fetch(ObjectRef{kBucket, "in-s3.mp4"});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->source_tier, "object");
  EXPECT_EQ(testing::ReadFile(got->local_path), "bytes from the object store");
  ASSERT_EQ(got->tier_errors.size(), 1U);
  EXPECT_EQ(got->tier_errors[0].tier, "flaky_cache");
  EXPECT_EQ(got->tier_errors[0].code, "OBJECT_FORBIDDEN");
  EXPECT_EQ(TierErrors("flaky_cache", "OBJECT_FORBIDDEN"), before + 1);
}

TEST_F(TierFallthroughTest, CacheFailingWith503AfterItsRetriesFallsThroughToS3) {
  faults_.Script("/videos/in-s3.mp4", Repeat(FaultResponse::Plain(503, "busy"), 6));
  auto reader = MakeReader();
  ASSERT_NE(reader, nullptr);
  auto got = reader->Fetch(ObjectRef{kBucket, "in-s3.mp4"});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->source_tier, "object");
  ASSERT_EQ(got->tier_errors.size(), 1U);
  EXPECT_EQ(got->tier_errors[0].code, "FETCH_FAILED");
  EXPECT_GE(faults_.Requests("/videos/in-s3.mp4").size(), 2U);  // the cache tier's own retries
}

TEST_F(TierFallthroughTest, StalledCacheTimesOutAndFallsThroughToS3) {
  FaultResponse stall = FaultResponse::Plain(200, std::string(4096, 'x'));
  stall.stall_after_headers_seconds = 30;
  faults_.Script("/videos/in-s3.mp4", Repeat(stall, 4));
  auto reader = MakeReader(/*low_speed_seconds=*/1);
  ASSERT_NE(reader, nullptr);
  auto got = reader->Fetch(ObjectRef{kBucket, "in-s3.mp4"});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(testing::ReadFile(got->local_path), "bytes from the object store");
  ASSERT_EQ(got->tier_errors.size(), 1U);
  EXPECT_EQ(got->tier_errors[0].code, "FETCH_FAILED");
}

TEST_F(TierFallthroughTest, OnlyTheOriginsErrorDecidesTheCode) {
  faults_.Script("/videos/nowhere.mp4", Repeat(FaultResponse::Plain(403, "AccessDenied"), 4));
  auto reader = MakeReader();
  ASSERT_NE(reader, nullptr);
  auto got = reader->Fetch(ObjectRef{kBucket, "nowhere.mp4"});
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), ErrorCode::kObjectNotFound);  // s3rver's 404, not the 403
  EXPECT_NE(got.status().message().find("earlier tier flaky_cache: OBJECT_FORBIDDEN"),
            std::string::npos)
      << got.status().message();
}

}  // namespace
}  // namespace vsieve::storage
