// The pipeline's encode stage ([output]): cropped rows get their video written and stored, with
// stage times; a store that keeps failing is retried like a fetch, then an UPLOAD_FAILED row.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "daemon/pipeline/pipeline.h"
#include "storage/tier_factory.h"
#include "tests/daemon/fake_table_store.h"
#include "tests/daemon/pipeline_test_util.h"
#include "tests/storage/file_sink.h"
#include "tests/storage/s3_server.h"
#include "tests/support/test_env.h"

namespace vsieve::daemon {
namespace {

using testing::FakeTableStore;

// Serves every key as the one clip.
class ClipReader : public storage::Reader {
 public:
  explicit ClipReader(std::string path) : path_(std::move(path)) {}
  common::StatusOr<storage::FetchedObject> Fetch(const storage::ObjectRef&) override {
    storage::FetchedObject object;
    object.local_path = path_;
    object.source_tier = "local";
    object.size_bytes = 1;
    return object;
  }

 private:
  std::string path_;
};

class PipelineOutputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VSIEVE_REQUIRE_FFMPEG();
    clip_ = dir_.File("clip.mp4");
    ASSERT_TRUE(vsieve::testing::Ffmpeg({"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10", "-t",
                                         "1", "-pix_fmt", "yuv420p", clip_}));
  }

  // Analysis replaced: every video is 160x120 and crops to [0, 20, 160, 80] unless its id
  // starts with "clean".
  PipelineHooks Hooks() const {
    PipelineHooks hooks = vsieve::testing::InstantHooks();
    hooks.reader = std::make_shared<ClipReader>(clip_);
    hooks.analyze = [](models::VideoFilter*, models::SampledVideo video) {
      models::FilterReport report;
      report.info["video_meta"] = {{"width", 160}, {"height", 120}};
      report.info["abnormal_region_crop"] = {{"box", {0, 20, 160, 80}}, {"cropped", true}};
      report.stage_ms["regions"] = 1;
      report.stage_ms["heads"] = 1;
      (void)video;
      return report;
    };
    return hooks;
  }

  PipelineOptions Options(const std::string& url) const {
    PipelineOptions options = vsieve::testing::TestOptions();
    options.config.output.url = url;
    options.config.output.temp_dir = dir_.File("tmp");
    options.config.pipeline.encode_threads = 2;
    return options;
  }

  vsieve::testing::TempDir dir_;
  std::string clip_;
};

TEST_F(PipelineOutputTest, CroppedRowsAreEncodedAndStoredOnce) {
  FakeTableStore store;
  for (int i = 0; i < 4; ++i) store.Add("v" + std::to_string(i), "x.mp4");
  const std::string out = dir_.File("out");
  auto pipeline = Pipeline::Create(Options("file://" + out + "/"), &store, Hooks());
  ASSERT_TRUE(pipeline.ok()) << pipeline.status().ToString();
  ASSERT_TRUE((*pipeline)->Run().ok());
  for (const auto& row : store.Rows()) {
    EXPECT_EQ(row.completions, 1);
    ASSERT_EQ(row.state, storage::RowState::kDone) << row.result_json;
    const nlohmann::json result = nlohmann::json::parse(row.result_json);
    const nlohmann::json& crop = result["info"]["abnormal_region_crop"];
    EXPECT_EQ(crop["video"]["status"], "written");
    EXPECT_EQ(crop["video"]["width"], 160);
    EXPECT_EQ(crop["video"]["height"], 80);
    EXPECT_EQ(crop["video"]["frames"], 10);
    EXPECT_EQ(crop["video_oss_url"], "file://" + out + "/" + row.input.video_id + ".mp4");
    EXPECT_TRUE(std::filesystem::exists(out + "/" + row.input.video_id + ".mp4"));
    for (const char* stage : {"encode", "upload", "write"}) {
      EXPECT_TRUE(result["result_info"]["stage_ms"].contains(stage)) << stage;
    }
  }
  const PipelineSnapshot snapshot = (*pipeline)->Snapshot();
  EXPECT_EQ(snapshot.done, 4);
  EXPECT_TRUE(snapshot.queue_depth.count("encode") == 1);
  EXPECT_GT(snapshot.stage_ms_total.at("encode"), 0.0);
  EXPECT_TRUE(std::filesystem::is_empty(dir_.File("tmp")));  // temp files removed
}

TEST_F(PipelineOutputTest, AStoreThatKeepsFailingEndsInUploadFailedAfterRetries) {
  FakeTableStore store;
  store.Add("v0", "x.mp4");
  PipelineOptions options = Options("s3://crops/v/");
  storage::TierConfig tier;
  tier.kind = "s3";
  tier.endpoint = "http://127.0.0.1:1";  // nothing listens: connection refused, retryable
  const std::string credentials = dir_.File("credentials");
  ASSERT_TRUE(vsieve::testing::WriteFile(credentials,
                                         "[default]\naws_access_key_id = k\n"
                                         "aws_secret_access_key = s\n"));
  tier.credentials = credentials;
  tier.max_attempts = 1;
  options.config.tiers = {tier};
  auto pipeline = Pipeline::Create(options, &store, Hooks());
  ASSERT_TRUE(pipeline.ok()) << pipeline.status().ToString();
  ASSERT_TRUE((*pipeline)->Run().ok());
  const auto rows = store.Rows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].state, storage::RowState::kFailed);
  EXPECT_EQ(rows[0].error_code, "UPLOAD_FAILED");
  const nlohmann::json result = nlohmann::json::parse(rows[0].result_json);
  EXPECT_EQ(result["result_info"]["error"]["stage"], "upload");
  EXPECT_EQ(result["result_info"]["attempts"], options.config.pipeline.max_attempts);
  EXPECT_EQ((*pipeline)->Snapshot().retried, options.config.pipeline.max_attempts - 1);
}

// The whole way to a real SigV4-verifying S3 server (s3rver): the rows' cropped videos are
// stored under the key template and read back whole through the S3 tier.
TEST_F(PipelineOutputTest, CroppedVideosGoToS3rver) {
  std::string why_not;
  auto server = vsieve::testing::S3Server::Start({"crops"}, "pkey", "psecret", &why_not);
  if (server == nullptr) GTEST_SKIP() << "s3rver: " << why_not;
  const std::string credentials = dir_.File("credentials");
  ASSERT_TRUE(vsieve::testing::WriteFile(
      credentials, "[default]\naws_access_key_id = pkey\naws_secret_access_key = psecret\n"));
  storage::TierConfig tier;
  tier.kind = "s3";
  tier.endpoint = server->endpoint();
  tier.credentials = credentials;
  FakeTableStore store;
  for (int i = 0; i < 3; ++i) store.Add("v" + std::to_string(i), "x.mp4");
  PipelineOptions options = Options("s3://crops/runs/");
  options.config.tiers = {tier};
  options.config.output.key = "{prefix}{video_id}/crop.mp4";
  auto pipeline = Pipeline::Create(options, &store, Hooks());
  ASSERT_TRUE(pipeline.ok()) << pipeline.status().ToString();
  ASSERT_TRUE((*pipeline)->Run().ok());
  auto reader = storage::CreateTier(tier);
  ASSERT_TRUE(reader.ok());
  for (const auto& row : store.Rows()) {
    ASSERT_EQ(row.state, storage::RowState::kDone) << row.result_json;
    const nlohmann::json result = nlohmann::json::parse(row.result_json);
    const std::string key = "runs/" + row.input.video_id + "/crop.mp4";
    EXPECT_EQ(result["info"]["abnormal_region_crop"]["video_oss_url"], "s3://crops/" + key);
    vsieve::testing::FileSink sink(dir_.File(row.input.video_id + ".got"));
    auto fetched = (*reader)->Fetch(storage::ObjectRef{"crops", key}, &sink);
    ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
    EXPECT_EQ(fetched->size_bytes, result["info"]["abnormal_region_crop"]["video"]["bytes"]);
    EXPECT_EQ(sink.Contents().substr(4, 4), "ftyp");
  }
}

// The lease heartbeat covers the encode stage: a video encoding for longer than several
// heartbeat periods keeps its lease and is written once.
TEST_F(PipelineOutputTest, TheHeartbeatCoversTheEncode) {
  const std::string clip = dir_.File("five.mp4");
  ASSERT_TRUE(vsieve::testing::Ffmpeg({"-f", "lavfi", "-i", "testsrc2=size=640x480:rate=25", "-t",
                                       "5", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt",
                                       "yuv420p", clip}));
  clip_ = clip;
  FakeTableStore store;
  store.Add("v0", "x.mp4");
  PipelineOptions options = Options("file://" + dir_.File("out") + "/");
  options.config.pipeline.heartbeat_seconds = 0.05;
  auto pipeline = Pipeline::Create(options, &store, Hooks());
  ASSERT_TRUE(pipeline.ok()) << pipeline.status().ToString();
  ASSERT_TRUE((*pipeline)->Run().ok());
  const auto rows = store.Rows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].state, storage::RowState::kDone);
  EXPECT_EQ(rows[0].completions, 1);
  const nlohmann::json result = nlohmann::json::parse(rows[0].result_json);
  const double encode_ms = result["result_info"]["stage_ms"]["encode"].get<double>();
  // At least one heartbeat for every 4 periods the encode took.
  EXPECT_GE((*pipeline)->Snapshot().heartbeats, static_cast<int64_t>(encode_ms / 200)) << encode_ms;
}

// A stop whose grace ends while a video is being encoded cancels the encode and releases the
// row (not charged, not failed); no object is stored and no temporary file is left.
TEST_F(PipelineOutputTest, AStopDuringTheEncodeReleasesTheRow) {
  const std::string long_clip = dir_.File("long.mp4");
  ASSERT_TRUE(vsieve::testing::Ffmpeg({"-f", "lavfi", "-i", "testsrc2=size=640x480:rate=25", "-t",
                                       "30", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt",
                                       "yuv420p", long_clip}));
  clip_ = long_clip;
  FakeTableStore store;
  store.Add("v0", "x.mp4");
  const std::string out = dir_.File("out");
  auto pipeline = Pipeline::Create(Options("file://" + out + "/"), &store, Hooks());
  ASSERT_TRUE(pipeline.ok()) << pipeline.status().ToString();
  std::thread stopper([&] {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < end) {
      std::error_code ec;
      if (!std::filesystem::is_empty(dir_.File("tmp"), ec) && !ec) break;  // encoding
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    (*pipeline)->RequestStop(0);
  });
  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE((*pipeline)->Run().ok());
  stopper.join();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(20));
  const auto rows = store.Rows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].state, storage::RowState::kPending);
  EXPECT_EQ(rows[0].completions, 0);
  EXPECT_EQ(rows[0].releases, 1);
  EXPECT_FALSE(std::filesystem::exists(out + "/v0.mp4"));
  EXPECT_TRUE(std::filesystem::is_empty(dir_.File("tmp")));
}

}  // namespace
}  // namespace vsieve::daemon
