#include "storage/tiered_reader.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "tests/storage/cache_files.h"
#include "tests/storage/fake_tier.h"
#include "tests/support/test_env.h"

namespace vsieve::storage {
namespace {

using common::ErrorCode;
using common::Status;
using common::StatusOr;

// Three tiers as issue 4 configures them: a mounted folder (in place), a distributed cache and
// an object store (both remote, through the disk cache).
class TieredReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto local = std::make_unique<FakeTier>("cpfs", "local");
    auto dcache = std::make_unique<FakeTier>("alluxio", "dcache");
    auto object = std::make_unique<FakeTier>("oss", "object");
    local_ = local.get();
    dcache_ = dcache.get();
    object_ = object.get();
    auto cache = DiskCache::Open(dir_.File("cache"), 1 << 20);
    ASSERT_TRUE(cache.ok()) << cache.status().ToString();
    cache_ = *cache;
    std::vector<std::unique_ptr<Tier>> tiers;
    tiers.push_back(std::move(local));
    tiers.push_back(std::move(dcache));
    tiers.push_back(std::move(object));
    reader_ = std::make_unique<TieredReader>(std::move(tiers), cache_);
  }

  static ObjectRef Ref(const std::string& key, bool use_dcache = true) {
    return ObjectRef{"videos", key, use_dcache};
  }

  testing::TempDir dir_;
  FakeTier* local_ = nullptr;
  FakeTier* dcache_ = nullptr;
  FakeTier* object_ = nullptr;
  std::shared_ptr<DiskCache> cache_;
  std::unique_ptr<TieredReader> reader_;
};

TEST(TieredReaderNoTiersTest, ReadsPathsAndFileUrisInPlaceLikeLocalReader) {
  testing::TempDir dir;
  ASSERT_TRUE(testing::WriteFile(dir.File("a.mp4"), "abc"));
  TieredReader reader({}, nullptr);
  for (const std::string& key : {dir.File("a.mp4"), "file://" + dir.File("a.mp4")}) {
    auto got = reader.Fetch(ObjectRef{"", key});
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->local_path, dir.File("a.mp4"));
    EXPECT_EQ(got->source_tier, "local");
    EXPECT_EQ(got->size_bytes, 3);
    EXPECT_FALSE(got->cache_hit);
  }
  EXPECT_EQ(reader.Fetch(ObjectRef{"", dir.File("nope.mp4")}).status().code(),
            ErrorCode::kObjectNotFound);
}

TEST_F(TieredReaderTest, AbsolutePathsWithoutABucketAreReadInPlace) {
  ASSERT_TRUE(testing::WriteFile(dir_.File("plain.mp4"), "plain"));
  auto got = reader_->Fetch(ObjectRef{"", dir_.File("plain.mp4")});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->local_path, dir_.File("plain.mp4"));
  EXPECT_EQ(got->source_tier, "local");
  EXPECT_EQ(local_->calls() + dcache_->calls() + object_->calls(), 0);
}

TEST_F(TieredReaderTest, TriesTiersInOrderAndStopsAtTheFirstThatServes) {
  dcache_->Put("videos/a.mp4", "from dcache");
  object_->Put("videos/a.mp4", "from object");
  auto got = reader_->Fetch(Ref("a.mp4"));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->source_tier, "dcache");
  EXPECT_EQ(testing::ReadFile(got->local_path), "from dcache");
  EXPECT_EQ(local_->calls(), 1);
  EXPECT_EQ(dcache_->calls(), 1);
  EXPECT_EQ(object_->calls(), 0);
}

TEST_F(TieredReaderTest, MissFallsThroughToTheObjectStore) {
  object_->Put("videos/b.mp4", "from object");
  auto got = reader_->Fetch(Ref("b.mp4"));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->source_tier, "object");
  EXPECT_EQ(local_->calls(), 1);
  EXPECT_EQ(dcache_->calls(), 1);
  EXPECT_EQ(object_->calls(), 1);
}

TEST_F(TieredReaderTest, UseDcacheFalseSkipsTheDistributedCache) {
  dcache_->Put("videos/a.mp4", "from dcache");
  object_->Put("videos/a.mp4", "from object");
  auto got = reader_->Fetch(Ref("a.mp4", /*use_dcache=*/false));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->source_tier, "object");
  EXPECT_EQ(dcache_->calls(), 0);
  EXPECT_EQ(testing::ReadFile(got->local_path), "from object");
}

TEST_F(TieredReaderTest, MissEverywhereIsObjectNotFoundNamingTheTiersTried) {
  auto got = reader_->Fetch(Ref("none.mp4"));
  ASSERT_EQ(got.status().code(), ErrorCode::kObjectNotFound);
  EXPECT_NE(got.status().message().find("cpfs, alluxio, oss"), std::string::npos)
      << got.status().message();
  auto skipped = reader_->Fetch(Ref("none.mp4", false));
  ASSERT_EQ(skipped.status().code(), ErrorCode::kObjectNotFound);
  EXPECT_NE(skipped.status().message().find("tiers cpfs, oss"), std::string::npos)
      << skipped.status().message();
  EXPECT_EQ(cache_->file_count(), 0);
  EXPECT_EQ(PartialFiles(cache_->dir()), 0);
}

TEST_F(TieredReaderTest, OnlyTheSkippedTierLeftIsObjectNotFound) {
  auto dcache = std::make_unique<FakeTier>("alluxio", "dcache");
  dcache->Put("videos/a.mp4", "x");
  std::vector<std::unique_ptr<Tier>> tiers;
  tiers.push_back(std::move(dcache));
  TieredReader reader(std::move(tiers), cache_);
  auto got = reader.Fetch(Ref("a.mp4", false));
  EXPECT_EQ(got.status().code(), ErrorCode::kObjectNotFound);
  EXPECT_NE(got.status().message().find("use_alluxio is false"), std::string::npos);
}

TEST_F(TieredReaderTest, RetryableErrorFallsThroughToTheNextTier) {
  // The distributed cache dies mid-body; the object store's bytes replace what it wrote.
  dcache_->Put("videos/a.mp4", "partial bytes that must not survive");
  dcache_->FailWith(Status(ErrorCode::kFetchFailed, "connection reset", true), 10);
  object_->Put("videos/a.mp4", "whole");
  auto got = reader_->Fetch(Ref("a.mp4"));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->source_tier, "object");
  EXPECT_EQ(testing::ReadFile(got->local_path), "whole");
  EXPECT_EQ(got->size_bytes, 5);
  EXPECT_EQ(cache_->used_bytes(), 5);
  ASSERT_EQ(got->tier_errors.size(), 1U);
  EXPECT_EQ(got->tier_errors[0].tier, "alluxio");
  EXPECT_EQ(got->tier_errors[0].code, "FETCH_FAILED");
  EXPECT_EQ(got->tier_errors[0].message, "connection reset");
}

TEST_F(TieredReaderTest, TheLastTiersErrorDecidesTheCodeWhenNoTierServes) {
  dcache_->FailWith(Status(ErrorCode::kFetchFailed, "503 SlowDown after 3 attempts", true));
  auto got = reader_->Fetch(Ref("a.mp4"));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), ErrorCode::kObjectNotFound);  // the object store's answer
  EXPECT_FALSE(got.status().retryable());
  EXPECT_NE(got.status().message().find("tier oss"), std::string::npos);
  EXPECT_NE(got.status().message().find("earlier tier alluxio: FETCH_FAILED: 503 SlowDown"),
            std::string::npos)
      << got.status().message();
  EXPECT_EQ(object_->calls(), 1);  // still tried
  EXPECT_EQ(PartialFiles(cache_->dir()), 0);

  object_->FailWith(Status(ErrorCode::kFetchFailed, "timeout", true));
  auto both = reader_->Fetch(Ref("b.mp4"));
  EXPECT_EQ(both.status().code(), ErrorCode::kFetchFailed);
  EXPECT_TRUE(both.status().retryable());
}

TEST_F(TieredReaderTest, ForbiddenCacheTierFallsThroughToTheObjectStore) {
  dcache_->FailWith(Status(ErrorCode::kObjectForbidden, "403 AccessDenied"));
  object_->Put("videos/a.mp4", "whole");
  auto got = reader_->Fetch(Ref("a.mp4"));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->source_tier, "object");
  EXPECT_EQ(testing::ReadFile(got->local_path), "whole");
  ASSERT_EQ(got->tier_errors.size(), 1U);
  EXPECT_EQ(got->tier_errors[0].code, "OBJECT_FORBIDDEN");
  EXPECT_EQ(object_->calls(), 1);
  // A hit from the cache carries no tier errors: nothing failed this time.
  auto again = reader_->Fetch(Ref("a.mp4"));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->cache_hit);
  EXPECT_TRUE(again->tier_errors.empty());
}

TEST_F(TieredReaderTest, ForbiddenLastTierIsObjectForbidden) {
  object_->FailWith(Status(ErrorCode::kObjectForbidden, "403 AccessDenied"));
  auto got = reader_->Fetch(Ref("a.mp4"));
  EXPECT_EQ(got.status().code(), ErrorCode::kObjectForbidden);
  EXPECT_FALSE(got.status().retryable());
}

TEST_F(TieredReaderTest, RemoteHitIsPromotedIntoTheCacheThenServedFromIt) {
  object_->Put("videos/dir/c.mp4", std::string(100'000, 'c'));
  auto first = reader_->Fetch(Ref("dir/c.mp4"));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FALSE(first->cache_hit);
  EXPECT_EQ(first->source_tier, "object");
  EXPECT_NE(first->pin, nullptr);
  EXPECT_EQ(first->local_path.rfind(cache_->dir() + "/", 0), 0u) << first->local_path;
  EXPECT_EQ(cache_->file_count(), 1);

  auto second = reader_->Fetch(Ref("dir/c.mp4"));
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_TRUE(second->cache_hit);
  EXPECT_EQ(second->source_tier, "object");  // the tier that served it first, never "cache"
  EXPECT_EQ(second->local_path, first->local_path);
  EXPECT_EQ(second->size_bytes, 100'000);
  EXPECT_EQ(testing::ReadFile(second->local_path), std::string(100'000, 'c'));
  EXPECT_EQ(object_->calls(), 1);
  EXPECT_EQ(local_->calls(), 1);  // the cache is in front of every tier
}

TEST_F(TieredReaderTest, InPlaceTierIsServedWithoutACopy) {
  ASSERT_TRUE(testing::WriteFile(dir_.File("mounted.mp4"), "on the mount"));
  local_->PutInPlace("videos/m.mp4", dir_.File("mounted.mp4"), 12);
  object_->Put("videos/m.mp4", "from object");
  auto got = reader_->Fetch(Ref("m.mp4"));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->local_path, dir_.File("mounted.mp4"));
  EXPECT_EQ(got->source_tier, "local");
  EXPECT_FALSE(got->cache_hit);
  EXPECT_EQ(got->size_bytes, 12);
  EXPECT_EQ(cache_->file_count(), 0);
  EXPECT_EQ(cache_->used_bytes(), 0);
  EXPECT_EQ(object_->calls(), 0);
}

TEST_F(TieredReaderTest, SizeOtherThanTheTierReportedIsContentMismatch) {
  object_->Put("videos/a.mp4", "12345");
  object_->set_known_size(false);
  object_->set_reported_size(9);
  auto got = reader_->Fetch(Ref("a.mp4"));
  EXPECT_EQ(got.status().code(), ErrorCode::kContentMismatch);
  EXPECT_NE(got.status().message().find("served 5 bytes of 9"), std::string::npos);
  EXPECT_EQ(cache_->file_count(), 0);
}

TEST_F(TieredReaderTest, EmptyObjectIsInputEmpty) {
  object_->Put("videos/empty.mp4", "");
  EXPECT_EQ(reader_->Fetch(Ref("empty.mp4")).status().code(), ErrorCode::kInputEmpty);
  // An empty copy on the mount is that tier's error: the next tiers are tried, and the last
  // one's answer decides.
  local_->PutInPlace("videos/empty2.mp4", dir_.File("e"), 0);
  auto empty2 = reader_->Fetch(Ref("empty2.mp4"));
  EXPECT_EQ(empty2.status().code(), ErrorCode::kObjectNotFound);
  EXPECT_NE(empty2.status().message().find("INPUT_EMPTY"), std::string::npos);
  object_->Put("videos/empty2.mp4", "");
  EXPECT_EQ(reader_->Fetch(Ref("empty2.mp4")).status().code(), ErrorCode::kInputEmpty);
}

TEST_F(TieredReaderTest, ObjectLargerThanTheCacheIsAClearFailure) {
  object_->Put("videos/huge.mp4", std::string((1 << 20) + 1, 'h'));
  auto got = reader_->Fetch(Ref("huge.mp4"));
  EXPECT_EQ(got.status().code(), ErrorCode::kFetchFailed);
  EXPECT_FALSE(got.status().retryable());
  EXPECT_NE(got.status().message().find("larger than the disk cache limit"), std::string::npos);
}

TEST_F(TieredReaderTest, KeysThatWouldEscapeTheCacheAreRefused) {
  object_->Put("videos/../etc/passwd", "x");
  EXPECT_EQ(reader_->Fetch(Ref("../etc/passwd")).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(reader_->Fetch(ObjectRef{"videos", ""}).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(object_->calls(), 0);
}

TEST_F(TieredReaderTest, IdenticalConcurrentFetchesShareOneDownload) {
  object_->Put("videos/s.mp4", std::string(300'000, 's'));
  Gate gate;
  object_->set_gate(&gate);
  std::vector<StatusOr<FetchedObject>> results(6, Status(ErrorCode::kInternal, "unset"));
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] { results[i] = reader_->Fetch(Ref("s.mp4")); });
  }
  object_->WaitForCalls(1);
  gate.Open();
  for (auto& thread : threads) thread.join();
  // Six fetches, one walk of the tiers (a latecomer may find the committed file: a hit).
  EXPECT_EQ(object_->calls(), 1);
  EXPECT_EQ(local_->calls(), 1);
  for (const auto& result : results) {
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    EXPECT_EQ(result->source_tier, "object");
    EXPECT_EQ(result->local_path, results[0]->local_path);
  }
}

}  // namespace
}  // namespace vsieve::storage
