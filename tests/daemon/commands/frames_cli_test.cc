// End-to-end tests of `vsieve frames`: the real binary on generated clips whose frame i is
// painted with a grey level of its own, so that every image names the frame it came from.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <set>
#include <string>
#include <vector>

#include "daemon/commands/frames_command.h"
#include "media/sampling_plan.h"
#include "media/video_decoder.h"
#include "tests/daemon/json_lines.h"
#include "tests/support/test_env.h"

namespace vsieve::daemon {
namespace {

constexpr int kFrames = 100;  // 4 s at 25 fps
constexpr int kSide = 64;

// The luma frame i is painted with (limited range, lossless encode).
int PaintedLuma(int i) { return 16 + 2 * i; }

// The frame an image shows: its mean grey mapped back through the limited-range conversion.
int FrameOfImage(const cv::Mat& bgr) {
  const double grey = cv::mean(bgr)[1];
  return static_cast<int>(std::lround((grey * 219.0 / 255.0) / 2.0));
}

class FramesCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VSIEVE_REQUIRE_FFMPEG();
    // Raw yuv420p frames, frame i all at luma PaintedLuma(i), encoded losslessly with a
    // keyframe every 10 frames (so reaching a time means seeking, then decoding forward).
    std::string raw;
    for (int i = 0; i < kFrames; ++i) {
      raw += std::string(kSide * kSide, static_cast<char>(PaintedLuma(i)));
      raw += std::string(kSide * kSide / 2, static_cast<char>(128));
    }
    ASSERT_TRUE(testing::WriteFile(dir_.File("painted.yuv"), raw));
    painted_ = dir_.File("painted.mp4");
    ASSERT_TRUE(testing::Ffmpeg({"-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", "64x64", "-r", "25",
                                 "-i", dir_.File("painted.yuv"), "-c:v", "libx264", "-qp", "0",
                                 "-g", "10", "-pix_fmt", "yuv420p", painted_}));
  }

  int Frames(const std::vector<std::string>& args, std::string* out, std::string* err) {
    std::vector<std::string> argv = {VSIEVE_BINARY, "frames"};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunCommand(argv, out, err);
  }

  static nlohmann::json Manifest(const std::string& dir) {
    return nlohmann::json::parse(testing::ReadFile(dir + "/manifest.json"));
  }

  testing::TempDir dir_;
  std::string painted_;
};

TEST_F(FramesCliTest, OneFramePerSecondIsExactlyTheFramesAtThoseTimes) {
  const std::string out_dir = dir_.File("shots");
  std::string out;
  std::string err;
  ASSERT_EQ(Frames({painted_, "--out", out_dir, "--fps", "1", "--prefix", "shot_"}, &out, &err), 0)
      << err;
  const auto lines = ParseLines(out);
  ASSERT_EQ(lines.size(), 1U) << out;
  EXPECT_EQ(lines[0]["frames"], 4);
  const nlohmann::json manifest = Manifest(out_dir);
  const auto& frames = manifest["inputs"][0]["frames"];
  ASSERT_EQ(frames.size(), 4U) << manifest.dump(2);
  for (int k = 0; k < 4; ++k) {
    const auto& f = frames[k];
    EXPECT_EQ(f["index"], 25 * k);
    EXPECT_DOUBLE_EQ(f["time_s"].get<double>(), k * 1.0);
    EXPECT_DOUBLE_EQ(f["planned_s"].get<double>(), k * 1.0);
    EXPECT_EQ(f["file"], FrameFileName("shot_", "painted", 25 * k, k, "png"));
    const cv::Mat image = cv::imread(out_dir + "/" + f["file"].get<std::string>());
    ASSERT_FALSE(image.empty()) << f.dump();
    EXPECT_EQ(image.size(), cv::Size(kSide, kSide));
    EXPECT_EQ(FrameOfImage(image), 25 * k) << "image " << f["file"];
  }
  EXPECT_EQ(FrameFileName("shot_", "painted", 25, 1.0, "png"),
            "shot_painted_000025_00001000ms.png");
  // Nothing else was written.
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(out_dir)) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 5);  // 4 images and the manifest
}

TEST_F(FramesCliTest, FractionalRateAndJpeg) {
  const std::string out_dir = dir_.File("jpg");
  std::string out;
  std::string err;
  ASSERT_EQ(Frames({painted_, "-o", out_dir, "--fps", "0.5", "--format", "jpg", "--quality", "90"},
                   &out, &err),
            0)
      << err;
  const nlohmann::json manifest = Manifest(out_dir);
  const auto& frames = manifest["inputs"][0]["frames"];
  ASSERT_EQ(frames.size(), 2U);
  EXPECT_EQ(frames[0]["index"], 0);
  EXPECT_EQ(frames[1]["index"], 50);
  const cv::Mat image = cv::imread(out_dir + "/" + frames[1]["file"].get<std::string>());
  ASSERT_FALSE(image.empty());
  EXPECT_EQ(FrameOfImage(image), 50);
}

TEST_F(FramesCliTest, SampledGivesTheFramesTheProbeSamples) {
  const std::string out_dir = dir_.File("sampled");
  std::string out;
  std::string err;
  ASSERT_EQ(Frames({painted_, "--out", out_dir, "--sampled"}, &out, &err), 0) << err;
  const nlohmann::json manifest = Manifest(out_dir);
  const auto& frames = manifest["inputs"][0]["frames"];
  EXPECT_EQ(manifest["inputs"][0]["mode"], "sampled");

  // The filter's own decode of its plan (default [sampling], as `vsieve probe` runs it).
  auto decoder = media::VideoDecoder::Open(painted_, media::DecodeLimits{});
  ASSERT_TRUE(decoder.ok()) << decoder.status().ToString();
  const media::SamplingPlan plan =
      media::BuildSamplingPlan((*decoder)->meta(), media::SamplingOptions{});
  auto sampled = (*decoder)->Sample(plan);
  ASSERT_TRUE(sampled.ok()) << sampled.status().ToString();
  ASSERT_EQ(frames.size(), sampled->size());
  for (size_t i = 0; i < frames.size(); ++i) {
    EXPECT_EQ(frames[i]["index"], (*sampled)[i].index);
    const cv::Mat image = cv::imread(out_dir + "/" + frames[i]["file"].get<std::string>());
    ASSERT_FALSE(image.empty());
    EXPECT_EQ(FrameOfImage(image), (*sampled)[i].index);
  }
  // And the probe's row counts as many.
  std::string probe_out;
  ASSERT_EQ(testing::RunCommand({VSIEVE_BINARY, "probe", painted_}, &probe_out, &err), 0) << err;
  const auto rows = ParseLines(probe_out);
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0]["info"]["video_meta"]["frames_sampled"], frames.size()) << rows[0].dump(2);
}

TEST_F(FramesCliTest, CropCutsToTheFiltersSafeCrop) {
  const std::string letterboxed = dir_.File("letterboxed.mp4");
  ASSERT_TRUE(testing::Ffmpeg(
      {"-f", "lavfi", "-i", "testsrc2=size=704x520:rate=25,crop=320:180:x='t*40':y=300", "-t", "3",
       "-vf", "pad=320:240:0:30", "-c:v", "libx264", "-pix_fmt", "yuv420p", letterboxed}));
  const std::string out_dir = dir_.File("cropped");
  std::string out;
  std::string err;
  ASSERT_EQ(Frames({letterboxed, "--out", out_dir, "--crop", "--no-text"}, &out, &err), 0) << err;
  const nlohmann::json manifest = Manifest(out_dir);
  const auto& entry = manifest["inputs"][0];
  ASSERT_TRUE(entry.contains("crop")) << entry.dump(2);
  const auto& crop = entry["crop"];
  EXPECT_LE(crop[3].get<int>(), 184);  // the 30-pixel bars are gone
  ASSERT_EQ(entry["frames"].size(), 3U);
  const cv::Mat image = cv::imread(out_dir + "/" + entry["frames"][1]["file"].get<std::string>());
  EXPECT_EQ(image.cols, crop[2].get<int>());
  EXPECT_EQ(image.rows, crop[3].get<int>());
}

TEST_F(FramesCliTest, ABadInputFailsAloneAndBadOptionsAreRefused) {
  const std::string out_dir = dir_.File("mixed");
  const std::string missing = dir_.File("missing.mp4");
  const std::string junk = dir_.File("junk.mp4");
  ASSERT_TRUE(testing::WriteFile(junk, std::string(4096, 'x')));
  std::string out;
  std::string err;
  EXPECT_EQ(Frames({missing, junk, painted_, "--out", out_dir}, &out, &err), 1);
  EXPECT_NE(err.find(missing), std::string::npos) << err;
  const auto lines = ParseLines(out);
  ASSERT_EQ(lines.size(), 3U) << out;
  EXPECT_EQ(lines[0]["error"]["code"], "OBJECT_NOT_FOUND");
  EXPECT_EQ(lines[1]["error"]["code"], "CONTAINER_UNRECOGNIZED");
  EXPECT_EQ(lines[2]["frames"], 4);
  const auto manifest = Manifest(out_dir);
  EXPECT_EQ(manifest["inputs"][0]["error"]["code"], "OBJECT_NOT_FOUND");
  EXPECT_EQ(manifest["inputs"][2]["frames"].size(), 4U);

  EXPECT_EQ(Frames({painted_, "--out", dir_.File("x"), "--format", "gif"}, &out, &err), 2);
  EXPECT_NE(err.find("png or jpg"), std::string::npos) << err;
  EXPECT_EQ(Frames({painted_, "--out", dir_.File("x"), "--quality", "50"}, &out, &err), 2);
  EXPECT_NE(err.find("0-9"), std::string::npos) << err;
  EXPECT_EQ(Frames({painted_, "--out", dir_.File("x"), "--fps", "0"}, &out, &err), 2);
  EXPECT_NE(Frames({painted_, "--out", dir_.File("x"), "--fps", "1", "--sampled"}, &out, &err), 0);
  EXPECT_EQ(Frames({painted_, "--out", dir_.File("x"), "--prefix", "a/b"}, &out, &err), 2);
  EXPECT_NE(err.find("must not contain"), std::string::npos) << err;
  ASSERT_TRUE(testing::WriteFile(dir_.File("file"), "x"));
  EXPECT_EQ(Frames({painted_, "--out", dir_.File("file") + "/sub"}, &out, &err), 2);
  EXPECT_NE(err.find("cannot create"), std::string::npos) << err;
}

TEST(FramesTimesTest, FixedRateTimesStopBeforeTheEnd) {
  EXPECT_EQ(FixedRateTimes(1, 4.0), (std::vector<double>{0, 1, 2, 3}));
  EXPECT_EQ(FixedRateTimes(0.5, 4.0), (std::vector<double>{0, 2}));
  EXPECT_EQ(FixedRateTimes(2, 1.2), (std::vector<double>{0, 0.5, 1.0}));
  EXPECT_TRUE(FixedRateTimes(0, 4.0).empty());
  EXPECT_TRUE(FixedRateTimes(1, 0).empty());
}

}  // namespace
}  // namespace vsieve::daemon
