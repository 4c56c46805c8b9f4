#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "storage/disk_cache.h"
#include "tests/storage/cache_files.h"
#include "tests/support/test_env.h"

namespace vsieve::storage {
namespace {

using common::ErrorCode;
using common::Status;
using common::StatusOr;

constexpr int kDownloads = 4;
constexpr size_t kWritten = 3 << 20;  // past the sink's 1 MiB buffer: bytes reach the file

// The helper process: opens the cache, pins a committed file, starts kDownloads downloads that
// each write kWritten bytes of a larger object, reports on `ready` and waits to be killed.
[[noreturn]] void DownloadUntilKilled(const std::string& cache_dir, int ready) {
  auto cache = DiskCache::Open(cache_dir, 64 << 20);
  if (!cache.ok()) _exit(3);
  auto pinned = (*cache)->Lookup(ObjectRef{"b", "kept/a.mp4"});
  if (!pinned.ok() || !pinned->has_value()) _exit(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < kDownloads; ++i) {
    threads.emplace_back([&, i] {
      auto got =
          (*cache)->Fetch(ObjectRef{"b", "killed/" + std::to_string(i) + ".mp4"},
                          [&](DownloadSink* sink) -> StatusOr<FillOutcome> {
                            VSIEVE_RETURN_IF_ERROR(sink->Reserve(8 << 20));
                            const std::string chunk(64 * 1024, static_cast<char>('0' + i));
                            while (sink->written() < static_cast<int64_t>(kWritten)) {
                              VSIEVE_RETURN_IF_ERROR(sink->Write(chunk.data(), chunk.size()));
                            }
                            if (::write(ready, "r", 1) != 1) _exit(5);
                            while (true) ::pause();  // mid-download until SIGKILL
                          });
      (void)got;
    });
  }
  for (auto& thread : threads) thread.join();
  _exit(6);
}

TEST(DiskCacheKillTest, KillDuringDownloadsLeavesNoPartialFileAfterRestart) {
  testing::TempDir dir;
  const std::string cache_dir = dir.File("cache");
  const std::string kept_a(300'000, 'a');
  const std::string kept_b(200'000, 'b');
  {
    auto cache = DiskCache::Open(cache_dir, 64 << 20);
    ASSERT_TRUE(cache.ok()) << cache.status().ToString();
    for (const auto& [key, bytes] : {std::pair{"kept/a.mp4", &kept_a}, {"kept/b.mp4", &kept_b}}) {
      auto got =
          (*cache)->Fetch(ObjectRef{"b", key}, [&](DownloadSink* sink) -> StatusOr<FillOutcome> {
            VSIEVE_RETURN_IF_ERROR(sink->Write(bytes->data(), bytes->size()));
            return FillOutcome{"dcache", "", 0};
          });
      ASSERT_TRUE(got.ok()) << got.status().ToString();
    }
  }

  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(ready[0]);
    DownloadUntilKilled(cache_dir, ready[1]);
  }
  ::close(ready[1]);
  int reported = 0;
  char byte = 0;
  while (reported < kDownloads && ::read(ready[0], &byte, 1) == 1) ++reported;
  ::close(ready[0]);
  // The downloads are mid-write: partial files with bytes in them.
  EXPECT_EQ(reported, kDownloads);
  EXPECT_EQ(PartialFiles(cache_dir), kDownloads);
  EXPECT_GE(BytesOnDisk(cache_dir + "/.partial"), static_cast<int64_t>(kDownloads * (1 << 20)));
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "helper exited with " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGKILL);

  // Restart: no partial file, the committed files indexed, nothing of the killed downloads.
  auto cache = DiskCache::Open(cache_dir, 64 << 20);
  ASSERT_TRUE(cache.ok()) << cache.status().ToString();
  EXPECT_EQ(PartialFiles(cache_dir), 0);
  EXPECT_EQ((*cache)->file_count(), 2);
  EXPECT_EQ((*cache)->used_bytes(), static_cast<int64_t>(kept_a.size() + kept_b.size()));
  EXPECT_EQ(BytesOnDisk(cache_dir), (*cache)->used_bytes());
  for (int i = 0; i < kDownloads; ++i) {
    auto miss = (*cache)->Lookup(ObjectRef{"b", "killed/" + std::to_string(i) + ".mp4"});
    ASSERT_TRUE(miss.ok());
    EXPECT_FALSE(miss->has_value());
  }
  auto a = (*cache)->Lookup(ObjectRef{"b", "kept/a.mp4"});
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_EQ((*a)->source_tier, "dcache");
  EXPECT_EQ(testing::ReadFile((*a)->path), kept_a);
  // The cache works after the restart.
  auto again = (*cache)->Fetch(ObjectRef{"b", "killed/0.mp4"},
                               [](DownloadSink* sink) -> StatusOr<FillOutcome> {
                                 VSIEVE_RETURN_IF_ERROR(sink->Write("whole", 5));
                                 return FillOutcome{"object", "", 0};
                               });
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(testing::ReadFile(again->path), "whole");
}

}  // namespace
}  // namespace vsieve::storage
