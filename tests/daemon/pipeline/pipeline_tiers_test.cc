#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "daemon/pipeline/pipeline.h"
#include "daemon/pipeline/reader_factory.h"
#include "storage/tiered_reader.h"
#include "tests/daemon/fake_table_store.h"
#include "tests/daemon/pipeline_test_util.h"
#include "tests/storage/fake_tier.h"
#include "tests/support/test_env.h"

namespace vsieve::daemon {
namespace {

using namespace std::chrono_literals;
using testing::FakeTableStore;
using testing::InstantHooks;
using testing::TestOptions;

constexpr int kObjectBytes = 10'000;

// Instant decode and analysis, where decode counts in `bad_files` the fetched files that are
// not kObjectBytes long.
PipelineHooks CheckingHooks(std::atomic<int>* bad_files) {
  PipelineHooks hooks = InstantHooks();
  hooks.sample = [bad_files, sample = hooks.sample](const std::string& path,
                                                    const models::FilterOptions& options) {
    if (vsieve::testing::ReadFile(path).size() != kObjectBytes) bad_files->fetch_add(1);
    return sample(path, options);
  };
  return hooks;
}

void AddRow(FakeTableStore* store, const std::string& id, const std::string& key,
            const std::string& info) {
  storage::InputRow row;
  row.video_id = id;
  row.oss_bucket = "videos";
  row.video_path = key;
  row.info_json = info;
  ASSERT_TRUE(store->Import({row}).ok());
}

// Pipelines over a FakeTableStore that fetch through tiers behind a disk cache in a temp folder.
class PipelineTiersTest : public ::testing::Test {
 protected:
  // Options with the cache in the temp folder, holding `cache_bytes`.
  PipelineOptions Options(int64_t cache_bytes) const {
    PipelineOptions options = TestOptions();
    options.config.cache.dir = dir_.File("cache");
    options.config.cache.max_bytes = cache_bytes;
    return options;
  }

  // Builds reader_ over `tiers` and pipeline_ over store_ with CheckingHooks(&bad_files_).
  void Create(const PipelineOptions& options, std::vector<std::unique_ptr<storage::Tier>> tiers) {
    auto reader = MakeReader(options.config, std::move(tiers));
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    reader_ = *reader;
    PipelineHooks hooks = CheckingHooks(&bad_files_);
    hooks.reader = reader_;
    auto pipeline = Pipeline::Create(options, &store_, hooks);
    ASSERT_TRUE(pipeline.ok()) << pipeline.status().ToString();
    pipeline_ = std::move(pipeline).value();
  }

  vsieve::testing::TempDir dir_;
  FakeTableStore store_;
  std::atomic<int> bad_files_{0};
  std::shared_ptr<storage::Reader> reader_;
  std::unique_ptr<Pipeline> pipeline_;
};

// Rows fetched through a distributed cache and an object store behind a disk cache holding 8
// objects: 20 distinct objects (so files are evicted), each twice (the second a cache hit),
// half with {"use_alluxio": false}. Every row succeeds only if the fetch stage's pins are
// dropped after decode: at most download_threads + queue_depth + decode_threads = 7 videos are
// pinned at once.
TEST_F(PipelineTiersTest, RowsAreFetchedThroughTheTiersAndTheCache) {
  auto dcache = std::make_unique<storage::FakeTier>("alluxio", "dcache");
  auto object = std::make_unique<storage::FakeTier>("oss", "object");
  for (int i = 0; i < 20; ++i) {
    const std::string key = "v" + std::to_string(i) + ".mp4";
    dcache->Put("videos/" + key, std::string(kObjectBytes, 'd'));
    object->Put("videos/" + key, std::string(kObjectBytes, 'o'));
    const std::string info = i % 2 ? R"({"use_alluxio": false})" : R"("{\"use_alluxio\": true}")";
    AddRow(&store_, "first-" + std::to_string(i), key, info);
  }
  for (int i = 0; i < 20; ++i) {
    AddRow(&store_, "second-" + std::to_string(i), "v" + std::to_string(i) + ".mp4", "{}");
  }
  std::vector<std::unique_ptr<storage::Tier>> tiers;
  tiers.push_back(std::move(dcache));
  tiers.push_back(std::move(object));
  ASSERT_NO_FATAL_FAILURE(Create(Options(8 * kObjectBytes), std::move(tiers)));
  ASSERT_TRUE(pipeline_->Run().ok());

  EXPECT_EQ(bad_files_.load(), 0);
  std::map<std::string, int> tiers_seen;
  for (const auto& row : store_.Rows()) {
    ASSERT_EQ(row.state, storage::RowState::kDone) << row.input.video_id << " " << row.error_code;
    EXPECT_EQ(row.completions, 1);
    const nlohmann::json result = nlohmann::json::parse(row.result_json);
    const std::string tier = result["result_info"]["source_tier"];
    ++tiers_seen[tier];
    if (row.input.video_id.rfind("first-", 0) == 0) {
      const int i = std::stoi(row.input.video_id.substr(6));
      EXPECT_EQ(tier, i % 2 ? "object" : "dcache") << row.input.video_id;
    }
  }
  EXPECT_EQ(tiers_seen["dcache"] + tiers_seen["object"], 40);
  auto* tiered = dynamic_cast<storage::TieredReader*>(reader_.get());
  ASSERT_NE(tiered, nullptr);
  EXPECT_LE(tiered->cache()->used_bytes(), 8 * kObjectBytes);
  EXPECT_EQ(tiered->cache()->file_count(), 8);
}

// A tier that holds one key until the test lets it go and serves the others at once.
class HoldOneTier : public storage::Tier {
 public:
  explicit HoldOneTier(storage::Gate* gate) : gate_(gate) {}
  const std::string& name() const override { return name_; }
  std::string_view source_tier() const override { return "object"; }
  common::StatusOr<storage::TierObject> Fetch(const storage::ObjectRef& ref,
                                              storage::DownloadSink* sink) override {
    if (ref.key == "slow.mp4") gate_->Wait();
    const std::string bytes(kObjectBytes, 'x');
    VSIEVE_RETURN_IF_ERROR(sink->Reserve(kObjectBytes));
    VSIEVE_RETURN_IF_ERROR(sink->Write(bytes.data(), bytes.size()));
    storage::TierObject object;
    object.size_bytes = kObjectBytes;
    return object;
  }

 private:
  const std::string name_ = "oss";
  storage::Gate* gate_;
};

// Download/compute overlap: a download that does not finish holds one download thread, never a
// decode thread or a worker; the other rows are decoded, analysed and written meanwhile.
TEST_F(PipelineTiersTest, AHeldDownloadDoesNotHoldUpTheOtherRows) {
  storage::Gate gate;
  AddRow(&store_, "slow", "slow.mp4", "{}");
  for (int i = 0; i < 12; ++i)
    AddRow(&store_, "fast-" + std::to_string(i), "f" + std::to_string(i), "{}");
  std::vector<std::unique_ptr<storage::Tier>> tiers;
  tiers.push_back(std::make_unique<HoldOneTier>(&gate));
  ASSERT_NO_FATAL_FAILURE(Create(Options(1 << 20), std::move(tiers)));
  std::thread run([&] { EXPECT_TRUE(pipeline_->Run().ok()); });
  // Hang guard only (not a timing assertion): the 12 fast rows finish while "slow" is held.
  const auto give_up = std::chrono::steady_clock::now() + 120s;
  while (pipeline_->Snapshot().done < 12 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(10ms);
  }
  const PipelineSnapshot held = pipeline_->Snapshot();
  gate.Open();
  run.join();
  EXPECT_EQ(held.done, 12);
  EXPECT_EQ(held.in_flight, 1);
  for (const auto& row : store_.Rows()) {
    EXPECT_EQ(row.state, storage::RowState::kDone) << row.input.video_id;
  }
  EXPECT_EQ(pipeline_->Snapshot().done, 13);
  EXPECT_EQ(bad_files_.load(), 0);
}

}  // namespace
}  // namespace vsieve::daemon
