// WriteCroppedVideo (media/crop_writer.h): the written file decoded frame by frame against the
// source's crop (PSNR), its size, frame count, duration, audio and rotation.

#include "media/crop_writer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <vector>

#include "media/video_decoder.h"
#include "tests/support/test_env.h"

namespace vsieve::media {
namespace {

using common::ErrorCode;

// Every frame of `path`, decoded by OpenCV (an independent decoder).
std::vector<cv::Mat> AllFrames(const std::string& path) {
  std::vector<cv::Mat> frames;
  cv::VideoCapture capture(path, cv::CAP_FFMPEG);
  cv::Mat frame;
  while (capture.read(frame)) frames.push_back(frame.clone());
  return frames;
}

class CropWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VSIEVE_REQUIRE_FFMPEG();
    if (!HaveEncoder("libx264")) GTEST_SKIP() << "libavcodec has no libx264";
  }

  // A 2 s, 25 fps, 320x240 testsrc2 clip (H.264, near lossless so that the reference is the
  // picture itself) with a sine tone in AAC when `audio`.
  std::string MakeClip(const std::string& name, bool audio, const std::string& rotate = "") {
    const std::string path = dir_.File(name);
    std::vector<std::string> args = {"-f", "lavfi", "-i",
                                     "testsrc2=size=320x240:rate=25:duration=2"};
    if (audio) args.insert(args.end(), {"-f", "lavfi", "-i", "sine=frequency=440:duration=2"});
    args.insert(args.end(),
                {"-c:v", "libx264", "-preset", "veryfast", "-qp", "0", "-pix_fmt", "yuv420p"});
    if (audio) args.insert(args.end(), {"-c:a", "aac", "-shortest"});
    args.push_back(rotate.empty() ? path : path + ".plain.mp4");
    EXPECT_TRUE(testing::Ffmpeg(args)) << "ffmpeg could not make " << name;
    if (!rotate.empty()) {  // the tag survives a remux (an encode drops it)
      EXPECT_TRUE(testing::Ffmpeg(
          {"-i", path + ".plain.mp4", "-c", "copy", "-metadata:s:v:0", "rotate=" + rotate, path}));
    }
    return path;
  }

  testing::TempDir dir_;
};

TEST_F(CropWriterTest, OutputMatchesTheSourceCropFrameByFrame) {
  const std::string source = MakeClip("source.mp4", /*audio=*/true);
  const std::string output = dir_.File("out.mp4");
  const cv::Rect box(40, 20, 200, 160);
  auto written = WriteCroppedVideo(source, box, output, CropWriteOptions{});
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_EQ(written->display_box, box);
  EXPECT_EQ(written->frames, 50);
  EXPECT_TRUE(written->audio_copied);
  EXPECT_EQ(written->bytes, static_cast<int64_t>(std::filesystem::file_size(output)));

  auto decoder = VideoDecoder::Open(output, DecodeLimits{});
  ASSERT_TRUE(decoder.ok()) << decoder.status().ToString();
  const VideoMeta& meta = (*decoder)->meta();
  EXPECT_EQ(meta.width, 200);
  EXPECT_EQ(meta.height, 160);
  EXPECT_EQ(meta.codec, "h264");
  EXPECT_DOUBLE_EQ(meta.fps, 25.0);
  EXPECT_NEAR(meta.duration_s, 2.0, 1.0 / 25);
  EXPECT_TRUE(meta.has_audio);

  const std::vector<cv::Mat> reference = AllFrames(source);
  const std::vector<cv::Mat> got = AllFrames(output);
  ASSERT_EQ(reference.size(), 50u);
  ASSERT_EQ(got.size(), reference.size());
  // PSNR of the luma (Y of YCrCb), as encoders report it, and of the BGR picture.
  const auto luma = [](const cv::Mat& bgr) {
    cv::Mat ycrcb;
    cv::cvtColor(bgr, ycrcb, cv::COLOR_BGR2YCrCb);
    cv::Mat y;
    cv::extractChannel(ycrcb, y, 0);
    return y;
  };
  double sum = 0;
  double sum_bgr = 0;
  double worst = 1e9;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].size(), box.size());
    const cv::Mat want = reference[i](box);
    const double psnr = cv::PSNR(luma(got[i]), luma(want));
    sum += psnr;
    sum_bgr += cv::PSNR(got[i], want);
    worst = std::min(worst, psnr);
  }
  const double mean = sum / static_cast<double>(got.size());
  std::printf(
      "crop PSNR at the default CRF %d: luma mean %.2f dB (worst frame %.2f dB), BGR "
      "mean %.2f dB\n",
      CropWriteOptions{}.crf, mean, worst, sum_bgr / static_cast<double>(got.size()));
  EXPECT_GE(mean, 40.0);
  EXPECT_GE(worst, 38.0);

  // faststart: the index (moov) comes before the media data (mdat).
  const std::string bytes = testing::ReadFile(output);
  EXPECT_LT(bytes.find("moov"), bytes.find("mdat"));
}

TEST_F(CropWriterTest, RotationIsKeptAndTheCropIsInDisplayedPixels) {
  const std::string source = MakeClip("rotated.mp4", /*audio=*/false, "90");
  auto in = VideoDecoder::Open(source, DecodeLimits{});
  ASSERT_TRUE(in.ok());
  ASSERT_NE((*in)->meta().rotation, 0);
  ASSERT_EQ((*in)->meta().width, 240);  // displayed: turned by a quarter
  const cv::Rect box(20, 40, 160, 200);
  const std::string output = dir_.File("rotated-out.mp4");
  auto written = WriteCroppedVideo(source, box, output, CropWriteOptions{});
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_FALSE(written->audio_copied);
  auto out = VideoDecoder::Open(output, DecodeLimits{});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ((*out)->meta().rotation, (*in)->meta().rotation);
  EXPECT_EQ((*out)->meta().width, 160);
  EXPECT_EQ((*out)->meta().height, 200);

  // The displayed output equals the displayed source's crop: sample both and compare.
  SamplingPlan plan;
  plan.times_s = {0.5, 1.5};
  auto a = (*in)->Sample(plan);
  auto b = (*out)->Sample(plan);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->size(), b->size());
  for (size_t i = 0; i < a->size(); ++i) {
    EXPECT_GE(cv::PSNR((*b)[i].bgr, (*a)[i].bgr(box)), 35.0) << "frame " << i;
  }
}

TEST_F(CropWriterTest, OddBoxesShrinkToEvenSidesInside) {
  EXPECT_EQ(CodedCropBox(cv::Rect(3, 5, 101, 51), 320, 240, 0), cv::Rect(4, 6, 100, 50));
  EXPECT_EQ(CodedCropBox(cv::Rect(0, 0, 320, 240), 320, 240, 0), cv::Rect(0, 0, 320, 240));
  // 180: the box is mirrored in both axes.
  EXPECT_EQ(CodedCropBox(cv::Rect(0, 0, 100, 50), 320, 240, 180), cv::Rect(220, 190, 100, 50));
  // 90 (displayed 240x320): displayed x runs along the stored y, from the bottom.
  EXPECT_EQ(CodedCropBox(cv::Rect(0, 0, 100, 50), 320, 240, 90), cv::Rect(0, 140, 50, 100));
  EXPECT_EQ(CodedCropBox(cv::Rect(0, 0, 1, 1), 320, 240, 0), cv::Rect());
}

TEST_F(CropWriterTest, CancelStopsTheWriteAndRemovesThePartialFile) {
  const std::string source = MakeClip("cancel.mp4", /*audio=*/false);
  const std::string output = dir_.File("cancelled.mp4");
  std::atomic<bool> cancel{true};
  CropWriteOptions options;
  options.cancel = &cancel;
  auto written = WriteCroppedVideo(source, cv::Rect(0, 0, 100, 100), output, options);
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.status().code(), ErrorCode::kTimeout);
  EXPECT_FALSE(std::filesystem::exists(output));
}

TEST_F(CropWriterTest, UnknownEncoderAndEmptyBoxAreRefused) {
  const std::string source = MakeClip("refuse.mp4", /*audio=*/false);
  CropWriteOptions options;
  options.codec = "no-such-encoder";
  auto written = WriteCroppedVideo(source, cv::Rect(0, 0, 100, 100), dir_.File("x.mp4"), options);
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.status().code(), ErrorCode::kInvalidArgument);
  written = WriteCroppedVideo(source, cv::Rect(400, 400, 10, 10), dir_.File("y.mp4"), {});
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace vsieve::media
