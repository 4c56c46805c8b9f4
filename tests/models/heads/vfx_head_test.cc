#include <gtest/gtest.h>

#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "models/heads/builtin_heads.h"
#include "tests/models/head_clip.h"
#include "tests/support/test_env.h"
#include "tests/support/video_frames.h"

namespace vsieve::models {
namespace {

using testing::Ffmpeg;
using testing::TempDir;

class VfxHeadTest : public ::testing::Test {
 protected:
  std::string Make(const std::string& name, const std::vector<std::string>& args) {
    const std::string path = dir_.File(name);
    std::vector<std::string> all = args;
    all.insert(all.end(), {"-preset", "ultrafast", "-pix_fmt", "yuv420p", path});
    EXPECT_TRUE(Ffmpeg(all)) << name;
    return path;
  }
  HeadOutput RunOn(const std::string& path) {
    auto clip = Load(path);
    EXPECT_FALSE(clip->frames.empty()) << path;
    auto out = head_.Run(clip->input);
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return out.ok() ? *out : HeadOutput{};
  }
  TempDir dir_;
  VfxHead head_;
};

TEST_F(VfxHeadTest, NameAndLabelsAreFixed) {
  EXPECT_EQ(head_.name(), "vfx_filter");
  EXPECT_EQ(head_.labels(), (std::vector<std::string>{"VFX_video", "normal_video"}));
}

TEST_F(VfxHeadTest, NaturalMotionIsNormal) {
  VSIEVE_REQUIRE_FFMPEG();
  for (const std::string source : {"testsrc2=s=640x360:r=25:d=4", "mandelbrot=s=640x360:r=25"}) {
    const HeadOutput out = RunOn(Make("normal.mp4", {"-f", "lavfi", "-i", source, "-t", "4"}));
    EXPECT_EQ(out.label, "normal_video") << source;
    EXPECT_NEAR(Prob(out, "VFX_video") + Prob(out, "normal_video"), 1.0, 1e-9);
  }
}

TEST_F(VfxHeadTest, FlashesAreVfx) {
  VSIEVE_REQUIRE_FFMPEG();
  // Two bright frames in every five.
  const HeadOutput out =
      RunOn(Make("flash.mp4", {"-f", "lavfi", "-i", "mandelbrot=s=640x360:r=25", "-t", "4", "-vf",
                               "eq=brightness='if(lt(mod(n,5),2),0.5,0)':eval=frame"}));
  EXPECT_EQ(out.label, "VFX_video");
  EXPECT_GT(out.prob, 0.8);
}

TEST_F(VfxHeadTest, InversionsAreVfx) {
  VSIEVE_REQUIRE_FFMPEG();
  const HeadOutput out =
      RunOn(Make("negate.mp4", {"-f", "lavfi", "-i", "testsrc2=s=640x360:r=25:d=4", "-vf",
                                "negate=enable='lt(mod(t,0.7),0.35)'"}));
  EXPECT_EQ(out.label, "VFX_video");
  ASSERT_TRUE(out.scores.contains("inversions"));
  EXPECT_GE(out.scores["inversions"].get<int>(), 2);
}

TEST_F(VfxHeadTest, DenseHardCutsAreVfx) {
  VSIEVE_REQUIRE_FFMPEG();
  // Twelve 0.25-s shots from six different sources: four cuts a second.
  const std::vector<std::string> sources = {"smptebars",  "mandelbrot", "testsrc",
                                            "rgbtestsrc", "life",       "testsrc2"};
  std::vector<std::string> args;
  std::string graph;
  for (int i = 0; i < 12; ++i) {
    args.insert(args.end(),
                {"-f", "lavfi", "-i", sources[static_cast<size_t>(i % 6)] + "=s=320x240:r=25"});
    graph += "[" + std::to_string(i) + ":v]trim=duration=0.25,setpts=PTS-STARTPTS,setsar=1[v" +
             std::to_string(i) + "];";
  }
  for (int i = 0; i < 12; ++i) graph += "[v" + std::to_string(i) + "]";
  graph += "concat=n=12:v=1:a=0";
  args.insert(args.end(), {"-filter_complex", graph});
  const HeadOutput out = RunOn(Make("cuts.mp4", args));
  EXPECT_EQ(out.label, "VFX_video");
  EXPECT_GT(out.scores["cuts_per_s"].get<double>(), 1.0);
}

// Frames as the sampling plan gives them: sparse samples every 0.5 s plus bursts of three
// neighbouring frames (1/25 s apart). A binary texture with half its pixels set keeps the same
// mean when inverted, so only neighbouring frames can show polarity flicker.
HeadInput BurstInput(bool invert_odd_frames, std::vector<cv::Mat>* storage,
                     media::VideoMeta* meta) {
  meta->width = 320;
  meta->height = 180;
  meta->fps = 25.0;
  meta->duration_s = 8.0;
  HeadInput input;
  input.meta = meta;
  cv::RNG rng(7);
  int n = 0;
  for (int k = 0; k < 16; ++k) {
    const bool burst = k % 3 == 1;
    cv::Mat texture(180, 320, CV_8UC1);  // one picture per sample; a burst sees it three times
    rng.fill(texture, cv::RNG::UNIFORM, 0, 2);
    texture *= 255;
    cv::GaussianBlur(texture, texture, cv::Size(5, 5), 1.5);
    for (int j = 0; j < (burst ? 3 : 1); ++j) {
      cv::Mat grey = texture.clone();
      if (invert_odd_frames && n % 2 == 1) grey = 255 - grey;
      cv::Mat bgr;
      cv::cvtColor(grey, bgr, cv::COLOR_GRAY2BGR);
      storage->push_back(bgr);
      input.frames.push_back(bgr);
      input.full_frames.push_back(bgr);
      input.times_s.push_back(0.5 * k + j / 25.0);
      ++n;
    }
  }
  return input;
}

// Every frame of a 4-s, 25-fps clip at `path`, picked as the sampling plan picks them: a sample
// every 0.48 s, every other one the first of a burst of three neighbouring frames.
HeadInput PlannedInput(const std::string& path, std::vector<media::Frame>* frames,
                       media::VideoMeta* meta) {
  *frames = testing::ReadFramesEvenly(path, 100);
  HeadInput input;
  if (frames->empty()) return input;
  meta->width = frames->front().bgr.cols;
  meta->height = frames->front().bgr.rows;
  meta->fps = 25.0;
  meta->duration_s = 4.0;
  input.meta = meta;
  for (size_t k = 0; 12 * k < frames->size(); ++k) {
    for (size_t j = 0; j < (k % 2 == 1 ? 3U : 1U) && 12 * k + j < frames->size(); ++j) {
      const media::Frame& f = (*frames)[12 * k + j];
      input.frames.push_back(f.bgr);
      input.full_frames.push_back(f.bgr);
      input.times_s.push_back(f.time_s);
    }
  }
  return input;
}

// Hue cycling over a picture of weak colour (a few levels of chroma): the sparse samples see
// random hue changes, neighbouring frames see every colour turned one way. The same picture
// without the cycling, and a fractal zoom whose palette bands drift, are normal.
TEST_F(VfxHeadTest, HueCyclingIsVfx) {
  VSIEVE_REQUIRE_FFMPEG();
  const std::string source = "testsrc2=s=640x360:r=25,hue=s=0.25";
  std::vector<media::Frame> frames;
  media::VideoMeta meta;
  auto cycling = head_.Run(PlannedInput(
      Make("cycling.mp4", {"-f", "lavfi", "-i", source, "-t", "4", "-vf", "hue=H=6*t"}), &frames,
      &meta));
  ASSERT_TRUE(cycling.ok());
  EXPECT_EQ(cycling->label, "VFX_video") << cycling->scores.dump();
  for (const std::string plain : {source, std::string("mandelbrot=s=640x360:r=25")}) {
    auto out = head_.Run(
        PlannedInput(Make("plain.mp4", {"-f", "lavfi", "-i", plain, "-t", "4"}), &frames, &meta));
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(out->label, "normal_video") << plain << " " << out->scores.dump();
  }
}

TEST_F(VfxHeadTest, PolarityFlickerBetweenNeighbourFramesIsVfx) {
  VfxHead head;
  std::vector<cv::Mat> storage;
  media::VideoMeta meta;
  auto strobe = head.Run(BurstInput(true, &storage, &meta));
  ASSERT_TRUE(strobe.ok());
  EXPECT_EQ(strobe->label, "VFX_video") << strobe->scores.dump();
  auto steady = head.Run(BurstInput(false, &storage, &meta));
  ASSERT_TRUE(steady.ok());
  EXPECT_EQ(steady->label, "normal_video") << steady->scores.dump();
}

TEST_F(VfxHeadTest, DegenerateInputsGiveNormal) {
  const std::vector<cv::Mat> kinds = DegenerateFrames();
  for (const cv::Mat& frame : kinds) {
    for (const int count : {1, 2, 16}) {
      HeadInput input = RepeatFrame(frame, count);
      auto out = head_.Run(input);
      ASSERT_TRUE(out.ok()) << out.status().ToString();
      EXPECT_EQ(out->label, "normal_video") << frame.size() << " x" << count;
    }
  }
  auto empty = head_.Run(HeadInput{});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->label, "normal_video");
}

TEST_F(VfxHeadTest, RealNaturalClipIsNormal) {
  VSIEVE_REQUIRE_ASSETS();
  const HeadOutput out = RunOn(testing::SharedAssetsDir() + "/videos/natural/flower.mp4");
  EXPECT_EQ(out.label, "normal_video");
}

}  // namespace
}  // namespace vsieve::models
