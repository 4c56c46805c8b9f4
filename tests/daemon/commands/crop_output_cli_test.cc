// `vsieve probe --output DIR` end to end: the cropped video of a letterboxed clip is written,
// checked against the row; a clean clip is not re-encoded; a crop under min_area is refused.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "media/video_decoder.h"
#include "tests/daemon/json_lines.h"
#include "tests/support/test_env.h"

namespace vsieve::daemon {
namespace {

class CropOutputCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VSIEVE_REQUIRE_FFMPEG();
    letterboxed_ = dir_.File("letterboxed.mp4");
    // 3 s of moving testsrc2 with 30 px bars top and bottom, and a tone.
    ASSERT_TRUE(testing::Ffmpeg(
        {"-f", "lavfi", "-i", "testsrc2=size=704x520:rate=25,crop=320:180:x='t*40':y=300", "-f",
         "lavfi", "-i", "sine=frequency=300", "-t", "3", "-vf", "pad=320:240:0:30", "-c:v",
         "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", letterboxed_}));
    clean_ = dir_.File("clean.mp4");
    ASSERT_TRUE(testing::Ffmpeg({"-f", "lavfi", "-i",
                                 "testsrc2=size=704x520:rate=25,crop=320:240:x='t*40':y=200", "-t",
                                 "3", "-c:v", "libx264", "-pix_fmt", "yuv420p", clean_}));
  }

  std::vector<nlohmann::json> Probe(const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {VSIEVE_BINARY, "probe", "--jobs", "2", "--no-text"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    std::string out;
    std::string err;
    EXPECT_EQ(testing::RunCommand(argv, &out, &err), 0) << err;
    return ParseLines(out);
  }

  testing::TempDir dir_;
  std::string letterboxed_;
  std::string clean_;
};

TEST_F(CropOutputCliTest, WritesTheCroppedVideoOfACroppedRowOnly) {
  const std::string out_dir = dir_.File("crops");
  const auto rows = Probe({"--output", out_dir, letterboxed_, clean_});
  ASSERT_EQ(rows.size(), 2u);

  const nlohmann::json& row = rows[0];
  ASSERT_EQ(row["result_info"]["succeed"], "true") << row.dump(2);
  const nlohmann::json& crop = row["info"]["abnormal_region_crop"];
  ASSERT_TRUE(crop["cropped"].get<bool>()) << crop.dump();
  ASSERT_EQ(crop["video"]["status"], "written") << crop.dump();
  EXPECT_EQ(crop["video_oss_url"], "file://" + out_dir + "/letterboxed.mp4");
  EXPECT_EQ(row["video_oss_url"], letterboxed_);  // the source stays the row's video
  EXPECT_TRUE(row["result_info"]["stage_ms"].contains("encode"));
  EXPECT_TRUE(row["result_info"]["stage_ms"].contains("upload"));
  const std::string written = out_dir + "/letterboxed.mp4";
  ASSERT_TRUE(std::filesystem::exists(written));

  auto decoder = media::VideoDecoder::Open(written, media::DecodeLimits{});
  ASSERT_TRUE(decoder.ok()) << decoder.status().ToString();
  const media::VideoMeta& meta = (*decoder)->meta();
  EXPECT_EQ(meta.width, crop["video"]["width"].get<int>());
  EXPECT_EQ(meta.height, crop["video"]["height"].get<int>());
  EXPECT_EQ(meta.width % 2, 0);
  EXPECT_EQ(meta.height % 2, 0);
  // The bars are gone: the crop is at most the picture between them.
  EXPECT_LE(meta.height, 180);
  EXPECT_EQ(meta.frame_count, 75);
  EXPECT_NEAR(meta.duration_s, 3.0, 1.0 / 25);
  EXPECT_TRUE(meta.has_audio);
  EXPECT_TRUE(crop["video"]["audio"].get<bool>());

  const nlohmann::json& clean = rows[1]["info"]["abnormal_region_crop"];
  EXPECT_FALSE(clean["cropped"].get<bool>()) << clean.dump();
  EXPECT_EQ(clean["video"]["status"], "not_needed");
  EXPECT_FALSE(clean.contains("video_oss_url"));
  EXPECT_FALSE(std::filesystem::exists(out_dir + "/clean.mp4"));
}

TEST_F(CropOutputCliTest, ACropUnderMinAreaIsRefusedNotFailed) {
  const std::string config = dir_.File("vsieve.toml");
  ASSERT_TRUE(testing::WriteFile(config, "[output]\nmin_area = 0.95\n"));
  const std::string out_dir = dir_.File("crops");
  const auto rows = Probe({"--config", config, "--output", out_dir, letterboxed_});
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["result_info"]["succeed"], "true");
  const nlohmann::json& video = rows[0]["info"]["abnormal_region_crop"]["video"];
  EXPECT_EQ(video["status"], "refused");
  EXPECT_NE(video["reason"].get<std::string>().find("min_area"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(out_dir + "/letterboxed.mp4"));
}

TEST_F(CropOutputCliTest, UnknownOutputKeysAreConfigErrors) {
  const std::string config = dir_.File("bad.toml");
  ASSERT_TRUE(testing::WriteFile(config, "[output]\ncrff = 20\n"));
  std::string out;
  std::string err;
  EXPECT_EQ(testing::RunCommand({VSIEVE_BINARY, "probe", "--config", config, clean_}, &out, &err),
            2);
  EXPECT_NE(err.find("output.crff"), std::string::npos) << err;
}

}  // namespace
}  // namespace vsieve::daemon
