#include "storage/disk_cache.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "tests/storage/cache_files.h"
#include "tests/storage/fake_tier.h"
#include "tests/support/test_env.h"

namespace vsieve::storage {
namespace {

namespace fs = std::filesystem;
using common::ErrorCode;
using common::Status;
using common::StatusOr;

// A fill that writes `bytes` in 4 KiB chunks, reserving the size first when `known_size`.
DiskCache::Fill WriteBytes(std::string bytes, bool known_size = true, std::string tier = "object") {
  return [bytes = std::move(bytes), known_size, tier](DownloadSink* sink) -> StatusOr<FillOutcome> {
    if (known_size) VSIEVE_RETURN_IF_ERROR(sink->Reserve(static_cast<int64_t>(bytes.size())));
    for (size_t offset = 0; offset < bytes.size(); offset += 4096) {
      VSIEVE_RETURN_IF_ERROR(
          sink->Write(bytes.data() + offset, std::min<size_t>(4096, bytes.size() - offset)));
    }
    FillOutcome outcome;
    outcome.source_tier = tier;
    return outcome;
  };
}

DiskCache::Fill MustNotRun() {
  return [](DownloadSink*) -> StatusOr<FillOutcome> {
    ADD_FAILURE() << "fill ran for what should be a hit";
    return Status(ErrorCode::kInternal, "unexpected fill");
  };
}

ObjectRef Ref(const std::string& key) { return ObjectRef{"bucket", key}; }

class DiskCacheTest : public ::testing::Test {
 protected:
  std::shared_ptr<DiskCache> Open(int64_t max_bytes) {
    auto cache = DiskCache::Open(dir_.File("cache"), max_bytes);
    EXPECT_TRUE(cache.ok()) << cache.status().ToString();
    return cache.ok() ? *cache : nullptr;
  }
  std::string CacheDir() const { return dir_.File("cache"); }

  testing::TempDir dir_;
};

TEST(DiskCacheKeyTest, KeysThatWouldEscapeAreRefused) {
  const std::vector<ObjectRef> bad = {
      {"b", ""},
      {"b", "/etc/passwd"},
      {"b", "../x"},
      {"b", "a/../../x"},
      {"b", "a/.."},
      {"b", ".."},
      {"b", std::string("a\0b", 3)},
      {"a/b", "k"},
      {"..", "k"},
      {".", "k"},
      {std::string("b\0", 2), "k"},
      {"b", std::string(300, 'x')},
  };
  for (const ObjectRef& ref : bad) {
    auto rel = DiskCache::RelativePath(ref);
    EXPECT_FALSE(rel.ok()) << ref.ToString() << " -> " << *rel;
    EXPECT_EQ(rel.status().code(), ErrorCode::kInvalidArgument) << ref.ToString();
  }
}

TEST(DiskCacheKeyTest, KeysMapToDistinctSafePaths) {
  EXPECT_EQ(*DiskCache::RelativePath({"videos", "a/b.mp4"}), "b-videos/a/b.mp4");
  EXPECT_EQ(*DiskCache::RelativePath({"", "a.mp4"}), "_/a.mp4");
  // Empty and "." segments and '%' are escaped, so distinct keys stay distinct files.
  EXPECT_EQ(*DiskCache::RelativePath({"b", "a//c"}), "b-b/a/%/c");
  EXPECT_EQ(*DiskCache::RelativePath({"b", "./c"}), "b-b/%2E/c");
  EXPECT_EQ(*DiskCache::RelativePath({"b", "50%.mp4"}), "b-b/50%25.mp4");
  EXPECT_EQ(*DiskCache::RelativePath({"b", "dir/"}), "b-b/dir/%");
  EXPECT_NE(*DiskCache::RelativePath({"b", "a/c"}), *DiskCache::RelativePath({"b", "a//c"}));
}

TEST_F(DiskCacheTest, FetchCommitsThenHits) {
  auto cache = Open(1 << 20);
  ASSERT_NE(cache, nullptr);
  auto first = cache->Fetch(Ref("dir/a.mp4"), WriteBytes("hello video", true, "dcache"));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FALSE(first->cache_hit);
  EXPECT_EQ(first->source_tier, "dcache");
  EXPECT_EQ(first->size_bytes, 11);
  EXPECT_NE(first->pin, nullptr);
  EXPECT_EQ(first->path, CacheDir() + "/dcache/b-bucket/dir/a.mp4");
  EXPECT_EQ(testing::ReadFile(first->path), "hello video");
  EXPECT_EQ(PartialFiles(CacheDir()), 0);

  auto second = cache->Fetch(Ref("dir/a.mp4"), MustNotRun());
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->cache_hit);
  EXPECT_EQ(second->source_tier, "dcache");
  EXPECT_EQ(second->path, first->path);
  EXPECT_EQ(cache->used_bytes(), 11);
  EXPECT_EQ(cache->file_count(), 1);

  auto lookup = cache->Lookup(Ref("dir/a.mp4"));
  ASSERT_TRUE(lookup.ok());
  ASSERT_TRUE(lookup->has_value());
  EXPECT_TRUE((*lookup)->cache_hit);
  auto miss = cache->Lookup(Ref("dir/b.mp4"));
  ASSERT_TRUE(miss.ok());
  EXPECT_FALSE(miss->has_value());
  EXPECT_EQ(cache->Lookup(Ref("../x")).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(cache->Fetch(Ref("/x"), MustNotRun()).status().code(), ErrorCode::kInvalidArgument);
}

TEST_F(DiskCacheTest, EvictsLeastRecentlyUsedFirst) {
  auto cache = Open(300);
  ASSERT_NE(cache, nullptr);
  for (const char* key : {"a", "b", "c"}) {
    ASSERT_TRUE(cache->Fetch(Ref(key), WriteBytes(std::string(100, key[0]))).ok());
  }
  // "a" becomes the most recent; "b" is now the least recently used.
  ASSERT_TRUE(cache->Fetch(Ref("a"), MustNotRun()).ok());
  ASSERT_TRUE(cache->Fetch(Ref("d"), WriteBytes(std::string(100, 'd'))).ok());
  EXPECT_FALSE(cache->Lookup(Ref("b"))->has_value());
  EXPECT_TRUE(cache->Lookup(Ref("a"))->has_value());
  EXPECT_TRUE(cache->Lookup(Ref("c"))->has_value());
  EXPECT_TRUE(cache->Lookup(Ref("d"))->has_value());
  EXPECT_FALSE(fs::exists(CacheDir() + "/object/b-bucket/b"));
  EXPECT_EQ(cache->used_bytes(), 300);
  // The look-ups above left the order (most recent first) d, c, a: "a" goes next.
  ASSERT_TRUE(cache->Fetch(Ref("e"), WriteBytes(std::string(100, 'e'))).ok());
  EXPECT_FALSE(cache->Lookup(Ref("a"))->has_value());
  EXPECT_TRUE(cache->Lookup(Ref("c"))->has_value());
  EXPECT_TRUE(cache->Lookup(Ref("d"))->has_value());
  EXPECT_EQ(cache->used_bytes(), 300);
}

TEST_F(DiskCacheTest, NeverEvictsPinnedFiles) {
  auto cache = Open(300);
  ASSERT_NE(cache, nullptr);
  std::vector<CachedObject> held;
  for (const char* key : {"a", "b", "c"}) {
    auto got = cache->Fetch(Ref(key), WriteBytes(std::string(100, key[0])));
    ASSERT_TRUE(got.ok());
    held.push_back(*got);
  }
  auto refused = cache->Fetch(Ref("d"), WriteBytes(std::string(100, 'd')));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kFetchFailed);
  EXPECT_TRUE(refused.status().retryable()) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("300 pinned"), std::string::npos)
      << refused.status().message();
  for (const CachedObject& object : held) EXPECT_TRUE(fs::exists(object.path));
  EXPECT_EQ(PartialFiles(CacheDir()), 0);
  EXPECT_EQ(cache->used_bytes(), 300);

  // Unpinning "b" (every copy of its pin) makes room by evicting it, though "a" is older.
  held.erase(held.begin() + 1);
  ASSERT_TRUE(cache->Fetch(Ref("d"), WriteBytes(std::string(100, 'd'))).ok());
  EXPECT_FALSE(cache->Lookup(Ref("b"))->has_value());
  EXPECT_TRUE(fs::exists(held[0].path));
  EXPECT_TRUE(fs::exists(held[1].path));
}

TEST_F(DiskCacheTest, ObjectLargerThanTheLimitIsRefusedBeforeItsBody) {
  auto cache = Open(1000);
  ASSERT_NE(cache, nullptr);
  ASSERT_TRUE(cache->Fetch(Ref("small"), WriteBytes(std::string(500, 's'))).ok());
  bool wrote = false;
  auto got = cache->Fetch(Ref("big"), [&](DownloadSink* sink) -> StatusOr<FillOutcome> {
    VSIEVE_RETURN_IF_ERROR(sink->Reserve(1001));
    wrote = true;
    return FillOutcome{"object", "", 0};
  });
  ASSERT_FALSE(got.ok());
  EXPECT_FALSE(wrote);
  EXPECT_EQ(got.status().code(), ErrorCode::kFetchFailed);
  EXPECT_FALSE(got.status().retryable());
  EXPECT_NE(got.status().message().find("1001 bytes"), std::string::npos);
  EXPECT_NE(got.status().message().find("1000 bytes"), std::string::npos);
  // Refused without evicting anything.
  EXPECT_TRUE(cache->Lookup(Ref("small"))->has_value());
  EXPECT_EQ(cache->used_bytes(), 500);
}

TEST_F(DiskCacheTest, ByteCapStopsABodyOfUnknownSize) {
  auto cache = Open(64 * 1024);
  ASSERT_NE(cache, nullptr);
  int64_t accepted = 0;
  auto got = cache->Fetch(Ref("endless"), [&](DownloadSink* sink) -> StatusOr<FillOutcome> {
    const std::string chunk(1000, 'z');
    while (true) {  // a server that never stops
      VSIEVE_RETURN_IF_ERROR(sink->Write(chunk.data(), chunk.size()));
      accepted = sink->written();
      EXPECT_LE(cache->used_bytes(), 64 * 1024);
    }
  });
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), ErrorCode::kFetchFailed);
  EXPECT_FALSE(got.status().retryable());
  EXPECT_NE(got.status().message().find("limit of 65536 bytes"), std::string::npos)
      << got.status().message();
  EXPECT_EQ(accepted, 65000);
  EXPECT_EQ(cache->used_bytes(), 0);
  EXPECT_EQ(PartialFiles(CacheDir()), 0);

  // Unknown size that fits: reserved as it grows, committed at its real size.
  auto fits = cache->Fetch(Ref("fits"), WriteBytes(std::string(40000, 'f'), false));
  ASSERT_TRUE(fits.ok()) << fits.status().ToString();
  EXPECT_EQ(cache->used_bytes(), 40000);
}

TEST_F(DiskCacheTest, WritePastTheReservedSizeIsRefused) {
  auto cache = Open(1 << 20);
  ASSERT_NE(cache, nullptr);
  auto got = cache->Fetch(Ref("liar"), [](DownloadSink* sink) -> StatusOr<FillOutcome> {
    VSIEVE_RETURN_IF_ERROR(sink->Reserve(10));
    VSIEVE_RETURN_IF_ERROR(sink->Write("0123456789", 10));
    VSIEVE_RETURN_IF_ERROR(sink->Write("x", 1));
    return FillOutcome{"object", "", 0};
  });
  EXPECT_EQ(got.status().code(), ErrorCode::kFetchFailed);
  EXPECT_NE(got.status().message().find("reserved size of 10"), std::string::npos);
  EXPECT_EQ(cache->used_bytes(), 0);
}

TEST_F(DiskCacheTest, FailedOrEmptyFillLeavesNothing) {
  auto cache = Open(1 << 20);
  ASSERT_NE(cache, nullptr);
  auto failed = cache->Fetch(Ref("a"), [](DownloadSink* sink) -> StatusOr<FillOutcome> {
    VSIEVE_RETURN_IF_ERROR(sink->Reserve(100));
    VSIEVE_RETURN_IF_ERROR(sink->Write("partial", 7));
    return Status(ErrorCode::kFetchFailed, "connection reset", true);
  });
  EXPECT_EQ(failed.status().code(), ErrorCode::kFetchFailed);
  EXPECT_TRUE(failed.status().retryable());
  auto empty = cache->Fetch(Ref("b"), WriteBytes(""));
  EXPECT_EQ(empty.status().code(), ErrorCode::kInputEmpty);
  EXPECT_EQ(cache->used_bytes(), 0);
  EXPECT_EQ(cache->file_count(), 0);
  EXPECT_EQ(PartialFiles(CacheDir()), 0);
  EXPECT_EQ(BytesOnDisk(CacheDir()), 0);
  // A failure is not cached: the next fetch downloads again.
  EXPECT_TRUE(cache->Fetch(Ref("a"), WriteBytes("whole")).ok());
}

TEST_F(DiskCacheTest, RestartDropsWhatWasWritten) {
  auto cache = Open(1 << 20);
  ASSERT_NE(cache, nullptr);
  auto got = cache->Fetch(Ref("a"), [](DownloadSink* sink) -> StatusOr<FillOutcome> {
    VSIEVE_RETURN_IF_ERROR(sink->Reserve(5));
    VSIEVE_RETURN_IF_ERROR(sink->Write("wrong", 5));
    VSIEVE_RETURN_IF_ERROR(sink->Restart());
    EXPECT_EQ(sink->written(), 0);
    VSIEVE_RETURN_IF_ERROR(sink->Write("right!", 6));  // no size: grows past the old 5
    return FillOutcome{"object", "", 0};
  });
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(testing::ReadFile(got->path), "right!");
  EXPECT_EQ(cache->used_bytes(), 6);
}

TEST_F(DiskCacheTest, InPlaceFillIsNotCached) {
  auto cache = Open(1 << 20);
  ASSERT_NE(cache, nullptr);
  auto got = cache->Fetch(Ref("a"), [](DownloadSink*) -> StatusOr<FillOutcome> {
    return FillOutcome{"local", "/mnt/somewhere/a", 42};
  });
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->path, "/mnt/somewhere/a");
  EXPECT_EQ(got->source_tier, "local");
  EXPECT_EQ(got->pin, nullptr);
  EXPECT_EQ(cache->file_count(), 0);
  EXPECT_EQ(cache->used_bytes(), 0);
}

TEST_F(DiskCacheTest, StartRemovesPartialsAndRebuildsTheIndex) {
  {
    auto cache = Open(1 << 20);
    ASSERT_NE(cache, nullptr);
    ASSERT_TRUE(
        cache->Fetch(Ref("x/a.mp4"), WriteBytes(std::string(300, 'a'), true, "dcache")).ok());
    ASSERT_TRUE(
        cache->Fetch(ObjectRef{"", "odd//50%.mp4"}, WriteBytes(std::string(200, 'b'))).ok());
  }
  // What a crash leaves: a partial download, and a stray file that is not the cache's.
  ASSERT_TRUE(testing::WriteFile(CacheDir() + "/.partial/123-deadbeef", std::string(999, 'p')));
  ASSERT_TRUE(testing::WriteFile(CacheDir() + "/object/notabucket", "stray"));
  auto cache = Open(1 << 20);
  ASSERT_NE(cache, nullptr);
  EXPECT_EQ(PartialFiles(CacheDir()), 0);
  EXPECT_EQ(cache->file_count(), 2);
  EXPECT_EQ(cache->used_bytes(), 500);
  auto a = cache->Fetch(Ref("x/a.mp4"), MustNotRun());
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->cache_hit);
  EXPECT_EQ(a->source_tier, "dcache");
  EXPECT_EQ(a->size_bytes, 300);
  auto b = cache->Fetch(ObjectRef{"", "odd//50%.mp4"}, MustNotRun());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->source_tier, "object");
  EXPECT_EQ(testing::ReadFile(b->path), std::string(200, 'b'));
}

TEST_F(DiskCacheTest, StartEvictsTheOldestDownToTheLimit) {
  {
    auto cache = Open(1 << 20);
    ASSERT_NE(cache, nullptr);
    for (const char* key : {"a", "b", "c"}) {
      ASSERT_TRUE(cache->Fetch(Ref(key), WriteBytes(std::string(100, key[0]))).ok());
    }
  }
  // Recency from the files' times: b oldest, then c, a newest.
  const auto set_times = [&](const char* key, time_t when) {
    const timespec times[2] = {{when, 0}, {when, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, (CacheDir() + "/object/b-bucket/" + key).c_str(), times, 0), 0);
  };
  set_times("b", 1'000'000);
  set_times("c", 2'000'000);
  set_times("a", 3'000'000);
  auto cache = Open(150);
  ASSERT_NE(cache, nullptr);
  EXPECT_EQ(cache->file_count(), 1);
  EXPECT_EQ(cache->used_bytes(), 100);
  EXPECT_TRUE(cache->Lookup(Ref("a"))->has_value());
  EXPECT_FALSE(fs::exists(CacheDir() + "/object/b-bucket/b"));
  EXPECT_FALSE(fs::exists(CacheDir() + "/object/b-bucket/c"));
}

TEST_F(DiskCacheTest, ASecondOpenOfTheSameFolderIsRefused) {
  auto cache = Open(1000);
  ASSERT_NE(cache, nullptr);
  auto second = DiskCache::Open(CacheDir(), 1000);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(second.status().message().find("in use by another process"), std::string::npos);
  cache.reset();
  EXPECT_TRUE(DiskCache::Open(CacheDir(), 1000).ok());
}

TEST_F(DiskCacheTest, BadSettingsAreRefused) {
  EXPECT_EQ(DiskCache::Open(CacheDir(), 0).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(DiskCache::Open("", 10).status().code(), ErrorCode::kInvalidArgument);
  ASSERT_TRUE(testing::WriteFile(dir_.File("file"), "x"));
  EXPECT_EQ(DiskCache::Open(dir_.File("file") + "/cache", 10).status().code(),
            ErrorCode::kInvalidArgument);
}

TEST_F(DiskCacheTest, IdenticalConcurrentFetchesShareOneDownload) {
  auto cache = Open(1 << 20);
  ASSERT_NE(cache, nullptr);
  auto& shared =
      common::MetricsRegistry::Global().GetCounter("vsieve_cache_shared_downloads_total", "");
  const double shared_before = shared.value();
  FakeTier tier("origin", "object");
  tier.Put("bucket/v.mp4", std::string(200'000, 'v'));
  Gate gate;
  tier.set_gate(&gate);
  constexpr int kThreads = 8;
  std::vector<StatusOr<CachedObject>> results(kThreads, Status(ErrorCode::kInternal, "unset"));
  std::vector<std::thread> threads;
  std::atomic<int> fill_calls{0};
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      results[i] = cache->Fetch(Ref("v.mp4"), [&](DownloadSink* sink) -> StatusOr<FillOutcome> {
        fill_calls.fetch_add(1);
        VSIEVE_ASSIGN_OR_RETURN(TierObject object, tier.Fetch(Ref("v.mp4"), sink));
        (void)object;
        return FillOutcome{"object", "", 0};
      });
    });
  }
  tier.WaitForCalls(1);
  // Wait until the other seven are waiting on the flight (each counted as a shared download).
  while (shared.value() - shared_before < kThreads - 1) std::this_thread::yield();
  gate.Open();
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(fill_calls.load(), 1);
  EXPECT_EQ(tier.calls(), 1);
  for (const auto& result : results) {
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    EXPECT_EQ(result->path, results[0]->path);
    EXPECT_NE(result->pin, nullptr);
  }
  EXPECT_EQ(cache->file_count(), 1);
}

TEST_F(DiskCacheTest, WaitersGetTheSharedDownloadsError) {
  auto cache = Open(1 << 20);
  ASSERT_NE(cache, nullptr);
  auto& shared =
      common::MetricsRegistry::Global().GetCounter("vsieve_cache_shared_downloads_total", "");
  const double shared_before = shared.value();
  Gate gate;
  std::atomic<int> fill_calls{0};
  const auto fill = [&](DownloadSink* sink) -> StatusOr<FillOutcome> {
    fill_calls.fetch_add(1);
    VSIEVE_RETURN_IF_ERROR(sink->Write("abc", 3));
    gate.Wait();
    return Status(ErrorCode::kObjectForbidden, "403 from origin");
  };
  std::vector<Status> errors(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] { errors[i] = cache->Fetch(Ref("x"), fill).status(); });
  }
  while (shared.value() - shared_before < 3) std::this_thread::yield();
  gate.Open();
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(fill_calls.load(), 1);
  for (const Status& error : errors) EXPECT_EQ(error.code(), ErrorCode::kObjectForbidden);
  EXPECT_EQ(PartialFiles(CacheDir()), 0);
}

TEST_F(DiskCacheTest, MetricsFollowTheCache) {
  auto cache = Open(250);
  ASSERT_NE(cache, nullptr);
  auto& registry = common::MetricsRegistry::Global();
  auto& evictions = registry.GetCounter("vsieve_cache_evictions_total", "");
  auto& hits = registry.GetCounter("vsieve_cache_requests_total", "", {{"result", "hit"}});
  auto& misses = registry.GetCounter("vsieve_cache_requests_total", "", {{"result", "miss"}});
  const double evictions_before = evictions.value();
  const double hits_before = hits.value();
  const double misses_before = misses.value();
  for (const char* key : {"a", "b", "c"}) {
    ASSERT_TRUE(cache->Fetch(Ref(key), WriteBytes(std::string(100, key[0]))).ok());
  }
  ASSERT_TRUE(cache->Fetch(Ref("c"), MustNotRun()).ok());
  EXPECT_EQ(evictions.value() - evictions_before, 1);
  EXPECT_EQ(hits.value() - hits_before, 1);
  EXPECT_EQ(misses.value() - misses_before, 3);
  EXPECT_EQ(registry.GetGauge("vsieve_cache_bytes", "").value(), 200);
  EXPECT_EQ(registry.GetGauge("vsieve_cache_limit_bytes", "").value(), 250);
  EXPECT_EQ(registry.GetGauge("vsieve_cache_files", "").value(), 2);
  const std::string text = registry.Render();
  EXPECT_NE(text.find("vsieve_cache_requests_total{result=\"hit\"}"), std::string::npos);
  EXPECT_NE(text.find("# TYPE vsieve_cache_shared_downloads_total counter"), std::string::npos);
}

// Eight threads fetch, hold and drop 40 objects of 20-200 KiB (some of unknown size) through a
// 1 MiB cache while a sampler reads the cache's total (committed files plus open reservations,
// taken under its lock) and the vsieve_cache_bytes gauge the whole time. Bytes reach a file only
// inside a reservation and leave the total only after the file is unlinked, so the total bounds
// the disk; a walk of the folder is not atomic (it can count a file before its eviction and the
// download that replaced it after), so the disk is compared when the run is over.
TEST_F(DiskCacheTest, ConcurrentRunNeverPassesTheLimit) {
  constexpr int64_t kLimit = 1 << 20;
  auto cache = Open(kLimit);
  ASSERT_NE(cache, nullptr);
  auto& gauge = common::MetricsRegistry::Global().GetGauge("vsieve_cache_bytes", "");
  std::vector<std::string> bodies;
  std::mt19937 random(7);
  for (int i = 0; i < 40; ++i) {
    bodies.emplace_back(std::uniform_int_distribution<int>(20, 200)(random) * 1024,
                        static_cast<char>('a' + i % 26));
  }
  std::atomic<bool> done{false};
  std::atomic<int64_t> samples{0}, over{0}, worst{0};
  std::thread sampler([&] {
    while (!done.load()) {
      const int64_t high = std::max(cache->used_bytes(), static_cast<int64_t>(gauge.value()));
      if (high > kLimit) over.fetch_add(1);
      if (high > worst.load()) worst = high;
      samples.fetch_add(1);
    }
  });
  std::atomic<int> ok{0}, no_room{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 mine(t);
      for (int n = 0; n < 150; ++n) {
        const int i = std::uniform_int_distribution<int>(0, 39)(mine);
        auto got = cache->Fetch(Ref("v" + std::to_string(i)), WriteBytes(bodies[i], i % 3 != 0));
        if (got.ok()) {
          ok.fetch_add(1);
          if (got->size_bytes != static_cast<int64_t>(bodies[i].size())) other.fetch_add(1);
          std::this_thread::sleep_for(std::chrono::microseconds(200));  // "decoding"
        } else if (got.status().retryable()) {
          no_room.fetch_add(1);
        } else {
          other.fetch_add(1);
          ADD_FAILURE() << got.status().ToString();
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  done = true;
  sampler.join();
  EXPECT_EQ(over.load(), 0) << "worst " << worst.load() << " > " << kLimit;
  EXPECT_EQ(other.load(), 0);
  EXPECT_GT(ok.load(), 600);
  EXPECT_GT(samples.load(), 100);
  EXPECT_EQ(PartialFiles(CacheDir()), 0);
  // The index agrees with the disk once everything is released.
  EXPECT_EQ(BytesOnDisk(CacheDir()), cache->used_bytes());
  std::printf(
      "concurrent run: %d fetches served, %d refused for room (retryable), %lld samples, "
      "worst %lld of %lld bytes\n",
      ok.load(), no_room.load(), static_cast<long long>(samples.load()),
      static_cast<long long>(worst.load()), static_cast<long long>(kLimit));
}

}  // namespace
}  // namespace vsieve::storage
