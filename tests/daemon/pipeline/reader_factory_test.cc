#include "daemon/pipeline/reader_factory.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "storage/tiered_reader.h"
#include "tests/daemon/config_test_util.h"
#include "tests/storage/fake_tier.h"
#include "tests/support/test_env.h"

namespace vsieve::daemon {
namespace {

using common::ErrorCode;
using testing::LoadText;
using testing::RejectedWith;

TEST(CacheConfigTest, ReadsTheCacheSection) {
  FilterConfig config;
  ASSERT_TRUE(
      LoadText("[cache]\ndir = \"/var/cache/vsieve\"\nmax_bytes = \"512MiB\"\n", &config).ok());
  EXPECT_EQ(config.cache.dir, "/var/cache/vsieve");
  EXPECT_EQ(config.cache.max_bytes, 512LL << 20);
  ASSERT_TRUE(LoadText("[cache]\nmax_bytes = 1000000\n", &config).ok());
  EXPECT_EQ(config.cache.max_bytes, 1000000);
  const FilterConfig defaults;
  EXPECT_EQ(defaults.cache.dir, "cache");
  EXPECT_EQ(defaults.cache.max_bytes, 50LL << 30);
}

TEST(CacheConfigTest, TheExampleConfigDocumentsTheDefaults) {
  FilterConfig config;
  const auto status = LoadFilterConfig(testing::SourceDir() + "/etc/vsieve.example.toml", &config);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(config.cache.dir, FilterConfig().cache.dir);
  EXPECT_EQ(config.cache.max_bytes, FilterConfig().cache.max_bytes);
}

TEST(CacheConfigTest, BadCacheKeysAreErrorsNamingTheKey) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[cache]\nsize = 3\n", "cache.size"},
      {"[cache]\ndir = 3\n", "cache.dir"},
      {"[cache]\ndir = \"\"\n", "cache.dir"},
      {"[cache]\nmax_bytes = 0\n", "cache.max_bytes"},
      {"[cache]\nmax_bytes = -5\n", "cache.max_bytes"},
      {"[cache]\nmax_bytes = \"50 gigs\"\n", "cache.max_bytes"},
      {"[cache]\nmax_bytes = 1.5\n", "cache.max_bytes"},
      {"[cache]\nmax_bytes = \"0GiB\"\n", "cache.max_bytes"},
      {"cache = 3\n", "cache"},
  };
  for (const auto& [text, key] : cases) EXPECT_TRUE(RejectedWith(text, "'" + key + "'"));
}

TEST(ByteSizeTest, ParsesCountsAndUnits) {
  const std::vector<std::pair<std::string, int64_t>> good = {
      {"1", 1},
      {"1048576", 1 << 20},
      {"512MiB", 512LL << 20},
      {"50GiB", 50LL << 30},
      {"50 GiB", 50LL << 30},
      {"1.5GiB", 3LL << 29},
      {"2TiB", 2LL << 40},
      {"4KiB", 4096},
      {"10kb", 10000},
      {"2GB", 2000000000},
      {"3MB", 3000000},
      {"1TB", 1000000000000},
      {"100B", 100},
      {" 7 mib ", 7LL << 20},
  };
  for (const auto& [text, bytes] : good) {
    auto parsed = ParseByteSize(text);
    ASSERT_TRUE(parsed.ok()) << text << ": " << parsed.status().ToString();
    EXPECT_EQ(*parsed, bytes) << text;
  }
  for (const std::string& text :
       {"", "GiB", "-1", "1.5", "1.5B", "0", "0.1B", "1..5GiB", ".5GiB", "5.GiB", "12 parsecs",
        "1e3", "1 GiB extra", "99999999999TiB", "0x10"}) {
    auto parsed = ParseByteSize(text);
    EXPECT_FALSE(parsed.ok()) << "'" << text << "' -> " << *parsed;
    EXPECT_EQ(parsed.status().code(), ErrorCode::kInvalidArgument) << text;
  }
}

TEST(ReaderFactoryTest, NoTiersGivesALocalReaderAndNoCache) {
  testing::TempDir dir;
  FilterConfig config;
  config.cache.dir = dir.File("cache");
  EXPECT_FALSE(HasTiers(config));
  auto reader = MakeReader(config);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_NE(dynamic_cast<storage::LocalReader*>(reader->get()), nullptr);
  EXPECT_FALSE(std::filesystem::exists(config.cache.dir));
}

TEST(ReaderFactoryTest, TiersGiveATieredReaderBehindTheConfiguredCache) {
  testing::TempDir dir;
  FilterConfig config;
  config.cache.dir = dir.File("cache");
  config.cache.max_bytes = 1000;
  auto tier = std::make_unique<storage::FakeTier>("oss", "object");
  tier->Put("b/k.mp4", "bytes");
  std::vector<std::unique_ptr<storage::Tier>> tiers;
  tiers.push_back(std::move(tier));
  auto reader = MakeReader(config, std::move(tiers));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  auto* tiered = dynamic_cast<storage::TieredReader*>(reader->get());
  ASSERT_NE(tiered, nullptr);
  EXPECT_EQ(tiered->cache()->max_bytes(), 1000);
  auto got = (*reader)->Fetch(storage::ObjectRef{"b", "k.mp4"});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->local_path.rfind(config.cache.dir + "/", 0), 0u);

  // A second reader on the same folder (another process, in practice) is refused clearly.
  std::vector<std::unique_ptr<storage::Tier>> more;
  more.push_back(std::make_unique<storage::FakeTier>("oss", "object"));
  auto second = MakeReader(config, std::move(more));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(second.status().message().find("in use"), std::string::npos);
}

TEST(ProbeInputRefTest, WithoutTiersEveryInputIsALocalPath) {
  EXPECT_EQ(ProbeInputRef("videos/a.mp4", false)->key, "videos/a.mp4");
  EXPECT_EQ(ProbeInputRef("videos/a.mp4", false)->bucket, "");
  EXPECT_EQ(ProbeInputRef("file:///x.mp4", false)->key, "file:///x.mp4");
  auto s3 = ProbeInputRef("s3://b/k.mp4", false);
  EXPECT_EQ(s3.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(s3.status().message().find("need [[tiers]]"), std::string::npos);
}

TEST(ProbeInputRefTest, WithTiersObjectsAndLocalFilesAreTold) {
  auto s3 = ProbeInputRef("s3://bucket/dir/a.mp4", true);
  ASSERT_TRUE(s3.ok());
  EXPECT_EQ(s3->bucket, "bucket");
  EXPECT_EQ(s3->key, "dir/a.mp4");
  auto oss = ProbeInputRef("oss://bucket/a.mp4", true);
  ASSERT_TRUE(oss.ok());
  EXPECT_EQ(oss->bucket, "bucket");
  auto bare = ProbeInputRef("bucket/dir/a.mp4", true);
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->bucket, "bucket");
  EXPECT_EQ(bare->key, "dir/a.mp4");
  EXPECT_EQ(ProbeInputRef("/abs/a.mp4", true)->bucket, "");
  EXPECT_EQ(ProbeInputRef("/abs/a.mp4", true)->key, "/abs/a.mp4");
  EXPECT_EQ(ProbeInputRef("file:///abs/a.mp4", true)->key, "file:///abs/a.mp4");
  auto relative = ProbeInputRef("./rel/a.mp4", true);
  ASSERT_TRUE(relative.ok());
  EXPECT_EQ(relative->bucket, "");
  EXPECT_EQ(relative->key.front(), '/');
  for (const std::string& bad : {"a.mp4", "s3://bucket", "s3://bucket/", "s3:///key", "/"}) {
    auto ref = ProbeInputRef(bad, true);
    if (bad == "/") {
      EXPECT_TRUE(ref.ok());  // a local path; the reader reports what is wrong with it
      continue;
    }
    EXPECT_EQ(ref.status().code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_NE(ref.status().message().find(bad), std::string::npos) << ref.status().message();
  }
}

}  // namespace
}  // namespace vsieve::daemon
