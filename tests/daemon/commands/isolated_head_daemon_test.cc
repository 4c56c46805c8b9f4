// Issue 6, item 5, end to end: `vsieve run` with a configured ONNX head isolated in a child
// process ([devices] isolate = true). The head is the real head_ncthw.onnx wrapped by the test
// kind abort_on (VSIEVE_TEST_MODEL_OVERRIDE), which calls abort() in the child when a clip's
// first value (red channel of the first frame's top-left pixel, normalised) is above 1.5: a
// white video. That video becomes a failed row with MODEL_FAILED naming SIGABRT, the child is
// restarted, the other videos are done, and the daemon runs to the end and exits 0.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "storage/table_store.h"
#include "tests/models/test_models.h"
#include "tests/support/test_env.h"

namespace vsieve::daemon {
namespace {

class IsolatedHeadDaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VSIEVE_REQUIRE_FFMPEG();
    VSIEVE_MAKE_TEST_MODELS(dir_.path());
    // White aborts the head; teal (red 0) does not. Mid-grey luma, so no border is found.
    for (const auto& [name, colour] : std::vector<std::pair<std::string, std::string>>{
             {"white", "white"}, {"teal", "0x00A0A0"}}) {
      ASSERT_TRUE(testing::Ffmpeg({"-f", "lavfi", "-i",
                                   "color=c=" + colour + ":size=320x240:rate=10", "-t", "3", "-c:v",
                                   "libx264", "-pix_fmt", "yuv420p", dir_.File(name + ".mp4")}));
    }
    url_ = "sqlite://" + dir_.File("v.db");
    auto store = storage::TableStore::Open(url_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }

  void TearDown() override {
    unsetenv("VSIEVE_TEST_MODELS");
    unsetenv("VSIEVE_TEST_MODEL_OVERRIDE");
  }

  std::string Config(int max_batch) {
    std::string text = "[store]\nurl = \"" + url_ + "\"\n";
    text += "[pipeline]\nworkers = 2\nmax_attempts = 3\nbackoff_base_seconds = 0.05\n";
    text += "backoff_cap_seconds = 0.1\n";
    text += "[devices]\nlist = [\"cpu:0\"]\ninstances = 2\nisolate = true\n";
    text += "model_timeout_seconds = 60\n";
    text += "restart_backoff_base_seconds = 0\nrestart_backoff_cap_seconds = 0\n";
    text += "[batching]\nmax_batch = " + std::to_string(max_batch) + "\nmax_delay_ms = 5\n";
    text += "[filter]\ntext_regions = false\nrotate_vertical = false\nlow_quality = false\n";
    text += "windows = false\n";
    text += "[admin]\nlisten = \"off\"\n";
    text += "[[heads]]\nname = \"aesthetic_filter\"\nkind = \"onnx\"\n";
    text += "model = \"" + dir_.File("head_ncthw.onnx") + "\"\n";
    text += "layout = \"NCTHW\"\nframes = 4\nsize = [6, 10]\ninstances = 1\nbatch = 4\n";
    text += "labels = [\"low_aesthetic\", \"normal_video\", \"green\", \"blue\"]\n";
    const std::string path = dir_.File("isolated.toml");
    EXPECT_TRUE(testing::WriteFile(path, text));
    return path;
  }

  // Rows v0..v(n-1): teal videos, except `poison` (white).
  void Seed(int n, int poison) {
    std::vector<storage::InputRow> rows;
    for (int i = 0; i < n; ++i) {
      storage::InputRow row;
      row.video_id = "v" + std::to_string(i);
      row.video_path = dir_.File(i == poison ? "white.mp4" : "teal.mp4");
      rows.push_back(row);
    }
    ASSERT_TRUE(store_->Import(rows).ok());
  }

  std::map<std::string, storage::RowRecord> Rows() {
    std::map<std::string, storage::RowRecord> rows;
    (void)store_->ForEachRow("", std::nullopt, [&](const storage::RowRecord& record) {
      rows[record.row.video_id] = record;
    });
    return rows;
  }

  // Runs the daemon until no row is left; returns its exit code, with its log in `log`.
  int RunDaemon(const std::string& config, std::string* log) {
    setenv("VSIEVE_TEST_MODELS", "1", 1);
    setenv("VSIEVE_TEST_MODEL_OVERRIDE",
           R"({"aesthetic_filter": {"kind": "abort_on", "params": {"above": 1.5}}})", 1);
    std::string out;
    const int rc = testing::RunCommand({VSIEVE_TEST_BINARY, "run", "--config", config,
                                        "--until-idle", "--log-level", "info", "--owner-id", "e2e"},
                                       &out, log);
    *log += out;
    return rc;
  }

  testing::TempDir dir_;
  std::string url_;
  std::unique_ptr<storage::TableStore> store_;
};

TEST_F(IsolatedHeadDaemonTest, AnAbortingHeadFailsItsVideoAndTheDaemonGoesOn) {
  Seed(8, 2);
  std::string log;
  ASSERT_EQ(RunDaemon(Config(1), &log), 0) << log;
  const auto rows = Rows();
  ASSERT_EQ(rows.size(), 8u);
  for (const auto& [id, record] : rows) {
    ASSERT_TRUE(record.result_json.has_value()) << id;
    const nlohmann::json result = nlohmann::json::parse(*record.result_json);
    if (id == "v2") {
      EXPECT_EQ(record.state, storage::RowState::kFailed);
      EXPECT_EQ(record.last_error_code, "MODEL_FAILED");
      const std::string message = result["result_info"]["error"]["message"];
      EXPECT_NE(message.find("model child exited on signal 6 (SIGABRT)"), std::string::npos)
          << message;
      EXPECT_NE(message.find("aesthetic_filter"), std::string::npos) << message;
      EXPECT_EQ(record.attempts, 1);  // alone in its pass: a crash is not retried
    } else {
      EXPECT_EQ(record.state, storage::RowState::kDone) << id << ": " << *record.result_json;
      EXPECT_EQ(result["info"]["aesthetic_filter"]["result"].size(), 4u) << *record.result_json;
    }
  }
  // The child was restarted (the rows after the crash ran on the new one).
  EXPECT_NE(log.find("model child restarted"), std::string::npos) << log;
}

// With micro-batching, the videos that shared the crashing pass are run again alone by the
// batcher: only the white video fails, the others are done.
TEST_F(IsolatedHeadDaemonTest, VideosSharingTheCrashedPassAreRunAgainAlone) {
  Seed(8, 5);
  std::string log;
  ASSERT_EQ(RunDaemon(Config(8), &log), 0) << log;
  int done = 0;
  for (const auto& [id, record] : Rows()) {
    if (id == "v5") {
      EXPECT_EQ(record.state, storage::RowState::kFailed);
      EXPECT_EQ(record.last_error_code, "MODEL_FAILED");
      EXPECT_NE(record.last_error_message.find("SIGABRT"), std::string::npos)
          << record.last_error_message;
    } else {
      done += record.state == storage::RowState::kDone;
    }
  }
  EXPECT_EQ(done, 7) << log;
}

}  // namespace
}  // namespace vsieve::daemon
