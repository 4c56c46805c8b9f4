// End-to-end tests of `vsieve probe` as a user runs it: the real binary on generated clips.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/daemon/json_lines.h"
#include "tests/support/test_env.h"

namespace vsieve::daemon {
namespace {

class ProbeCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VSIEVE_REQUIRE_FFMPEG();
    letterboxed_ = dir_.File("letterboxed.mp4");
    // testsrc2 below its burned-in timecode, with the camera drifting over it.
    ASSERT_TRUE(testing::Ffmpeg(
        {"-f", "lavfi", "-i", "testsrc2=size=704x520:rate=25,crop=320:180:x='t*40':y=300", "-t",
         "5", "-vf", "pad=320:240:0:30", "-c:v", "libx264", "-pix_fmt", "yuv420p", letterboxed_}));
    junk_ = dir_.File("junk.mp4");
    ASSERT_TRUE(testing::WriteFile(junk_, std::string(4096, 'x') + "<html>not a video</html>"));
  }

  int Probe(const std::vector<std::string>& extra, std::string* out, std::string* err) {
    std::vector<std::string> argv = {VSIEVE_BINARY, "probe", "--jobs", "2"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return testing::RunCommand(argv, out, err);
  }

  testing::TempDir dir_;
  std::string letterboxed_;
  std::string junk_;
};

TEST_F(ProbeCliTest, OneRowPerInputInOrderAndExitZeroWhenSomeFail) {
  const std::string missing = dir_.File("missing.mp4");
  std::string out;
  std::string err;
  ASSERT_EQ(Probe({junk_, letterboxed_, missing, letterboxed_}, &out, &err), 0) << err;
  const auto rows = ParseLines(out);
  ASSERT_EQ(rows.size(), 4U) << out;
  EXPECT_EQ(rows[0]["video_id"], junk_);
  EXPECT_EQ(rows[1]["video_id"], letterboxed_);
  EXPECT_EQ(rows[2]["video_id"], missing);
  EXPECT_EQ(rows[3]["video_id"], letterboxed_);

  EXPECT_EQ(rows[0]["result_info"]["succeed"], "false");
  EXPECT_EQ(rows[0]["result_info"]["error"]["code"], "CONTAINER_UNRECOGNIZED");
  EXPECT_EQ(rows[0]["result_info"]["error"]["stage"], "decode");
  EXPECT_EQ(rows[2]["result_info"]["error"]["code"], "OBJECT_NOT_FOUND");
  EXPECT_EQ(rows[2]["result_info"]["error"]["stage"], "fetch");

  const auto& good = rows[1];
  ASSERT_EQ(good["result_info"]["succeed"], "true") << good.dump(2);
  const auto& info = good["info"];
  EXPECT_EQ(info["video_meta"]["width"], 320);
  EXPECT_EQ(info["video_meta"]["height"], 240);
  EXPECT_GT(info["video_meta"]["frames_sampled"].get<int>(), 0);
  for (const char* head :
       {"vfx_filter", "simcam_filter", "rotate_vertical_filter", "low_quality_filter"}) {
    ASSERT_TRUE(info.contains(head)) << head;
    EXPECT_TRUE(info[head].contains("result"));
    EXPECT_TRUE(info[head].contains("label"));
    EXPECT_TRUE(info[head].contains("prob"));
  }
  EXPECT_TRUE(info["low_quality_filter"].contains("scores"));
  ASSERT_TRUE(info["seg_simcam_filter"].contains("0"));
  EXPECT_EQ(info["seg_simcam_filter"]["0"]["duration"], nlohmann::json({0.0, 4.0}));
  EXPECT_TRUE(info["inverse_seg_simcam_filter"].contains("0"));
  // The letterbox bars (30 px top and bottom) are cut off by the crop. What else the detectors
  // find in synthetic content is their own tests' business; most of the picture stays.
  const auto& crop = info["abnormal_region_crop"];
  EXPECT_TRUE(crop["cropped"].get<bool>());
  const auto box = crop["box"].get<std::vector<int>>();
  ASSERT_EQ(box.size(), 4U);
  EXPECT_GE(box[1], 28);
  EXPECT_LE(box[1] + box[3], 212);
  EXPECT_GE(box[2] * box[3], 320 * 180 * 6 / 10) << crop.dump();
  for (const char* stage : {"fetch", "decode", "regions", "heads"}) {
    EXPECT_TRUE(good["result_info"]["stage_ms"].contains(stage)) << stage;
  }
  EXPECT_EQ(good["result_info"]["source_tier"], "local");
  EXPECT_FALSE(good["result_info"]["config_hash"].get<std::string>().empty());
}

TEST_F(ProbeCliTest, PrettyPrintsIndentedJson) {
  std::string out;
  std::string err;
  ASSERT_EQ(Probe({"--pretty", "--no-text", junk_}, &out, &err), 0) << err;
  EXPECT_NE(out.find("\n  \"info\""), std::string::npos) << out;
}

TEST_F(ProbeCliTest, BadConfigExitsTwoNamingTheKey) {
  const std::string config = dir_.File("bad.toml");
  ASSERT_TRUE(testing::WriteFile(config, "[sampling]\nclip_frames = 0\n"));
  std::string out;
  std::string err;
  EXPECT_EQ(Probe({"--config", config, letterboxed_}, &out, &err), 2);
  EXPECT_NE(err.find("sampling.clip_frames"), std::string::npos) << err;
  EXPECT_TRUE(out.empty());
}

TEST_F(ProbeCliTest, NoInputsIsAUsageError) {
  std::string out;
  std::string err;
  EXPECT_NE(Probe({}, &out, &err), 0);
}

}  // namespace
}  // namespace vsieve::daemon
