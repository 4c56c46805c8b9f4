#include "media/video_decoder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/test_env.h"

namespace vsieve::media {
namespace {

using common::ErrorCode;

constexpr int kFps = 30;
constexpr int kFrames = 300;  // 10 s
constexpr int kBits = 10;     // frame numbers up to 1023

// Frame n shows n in binary: kBits vertical stripes, stripe k white when bit k of n is set.
const char kPaintFrameNumber[] =
    "geq=lum='if(mod(floor(N/pow(2,floor(X*10/W))),2),235,16)':cb=128:cr=128";

// Reads the frame number painted by kPaintFrameNumber back from a (scaled) BGR frame.
int PaintedIndex(const cv::Mat& bgr) {
  int index = 0;
  for (int k = 0; k < kBits; ++k) {
    const int x = static_cast<int>((k + 0.5) * bgr.cols / kBits);
    const cv::Vec3b pixel = bgr.at<cv::Vec3b>(bgr.rows / 2, x);
    if (pixel[1] > 128) index |= 1 << k;
  }
  return index;
}

// The frame a plan time must give: the first frame whose time is >= t.
int ExpectedIndex(double t) { return static_cast<int>(std::ceil(t * kFps - 1e-6)); }

// Clips are generated on first use (ctest runs each test in its own process); frame i of each
// shows i. intra.mkv (lossless FFV1) is painted once and the H.264 clips are encoded from it.
class VideoDecoderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (testing::HaveFfmpeg()) dir_ = std::make_unique<testing::TempDir>();
  }
  static void TearDownTestSuite() {
    made_.clear();
    dir_.reset();
  }

  void SetUp() override { VSIEVE_REQUIRE_FFMPEG(); }

  // The path of clip `name`, generating it (and what it is made from) when first asked.
  // Returns "" when ffmpeg cannot make it (for example without libx264).
  static std::string Clip(const std::string& name) {
    const std::string path = dir_->File(name);
    if (made_.count(name) != 0) return made_[name] ? path : "";
    bool ok = false;
    if (name == "intra.mkv") {
      const std::string source = "color=c=black:s=160x120:r=" + std::to_string(kFps) +
                                 ":d=" + std::to_string(kFrames / kFps);
      ok = testing::Ffmpeg(
          {"-f", "lavfi", "-i", source, "-vf", kPaintFrameNumber, "-c:v", "ffv1", path});
    } else if (name == "long_gop.mp4" || name == "short_gop.mp4") {
      const std::string master = Clip("intra.mkv");
      const std::string gop = name == "long_gop.mp4" ? "100" : "10";
      ok = !master.empty() && testing::Ffmpeg({"-i", master, "-c:v", "libx264", "-preset",
                                               "veryfast", "-bf", "2", "-g", gop, "-sc_threshold",
                                               "0", "-crf", "12", "-pix_fmt", "yuv420p", path});
    } else {
      // long_gop.mkv, long_gop.ts, short_gop.ts: remuxed from the mp4 of the same stem.
      const std::string mp4 = Clip(name.substr(0, name.find('.')) + ".mp4");
      ok = !mp4.empty() && testing::Ffmpeg({"-i", mp4, "-c", "copy", path});
    }
    made_[name] = ok;
    return ok ? path : "";
  }

  static std::string File(const std::string& name) {
    const std::string path = Clip(name);
    EXPECT_FALSE(path.empty()) << "could not generate " << name;
    return path;
  }

  static std::unique_ptr<VideoDecoder> OpenOrDie(const std::string& path,
                                                 const DecodeLimits& limits = {}) {
    auto decoder = VideoDecoder::Open(path, limits);
    EXPECT_TRUE(decoder.ok()) << path << ": " << decoder.status().ToString();
    return decoder.ok() ? std::move(decoder).value() : nullptr;
  }

  // Samples `times` and checks every returned frame against the painted frame number.
  static void ExpectExactFrames(const std::string& name, const std::vector<double>& times,
                                const DecodeLimits& limits = {}) {
    SCOPED_TRACE(name);
    auto decoder = OpenOrDie(File(name), limits);
    ASSERT_NE(decoder, nullptr);
    SamplingPlan plan;
    plan.times_s = times;
    auto frames = decoder->Sample(plan);
    ASSERT_TRUE(frames.ok()) << frames.status().ToString();
    std::vector<int> expected;
    for (double t : times) {
      const int index = ExpectedIndex(t);
      if (expected.empty() || expected.back() != index) expected.push_back(index);
    }
    ASSERT_EQ(frames->size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      const Frame& frame = (*frames)[i];
      EXPECT_EQ(PaintedIndex(frame.bgr), expected[i]) << "planned time " << times[i];
      EXPECT_EQ(frame.index, expected[i]);
      EXPECT_NEAR(frame.time_s, static_cast<double>(expected[i]) / kFps, 1e-3);
    }
    EXPECT_EQ(decoder->stats().frames_returned, static_cast<int>(expected.size()));
    EXPECT_EQ(decoder->stats().decode_errors, 0);
    EXPECT_EQ(decoder->stats().demux_errors, 0);
  }

  static std::unique_ptr<testing::TempDir> dir_;
  static std::map<std::string, bool> made_;
};

std::unique_ptr<testing::TempDir> VideoDecoderTest::dir_;
std::map<std::string, bool> VideoDecoderTest::made_;

// Exact frame times, mid-frame times, times just past a keyframe (GOP 100: 3.33 s, 6.67 s) and
// the last frame.
const std::vector<double> kMixedTimes = {0.0,  0.52, 1.0,  2.25, 3.3,  3.34,
                                         3.36, 5.0,  6.65, 6.7,  8.95, 9.95};

TEST_F(VideoDecoderTest, ReadsMetadataWithoutDecoding) {
  auto decoder = OpenOrDie(File("long_gop.mp4"));
  ASSERT_NE(decoder, nullptr);
  const VideoMeta& meta = decoder->meta();
  EXPECT_EQ(meta.width, 160);
  EXPECT_EQ(meta.height, 120);
  EXPECT_EQ(meta.coded_width, 160);
  EXPECT_EQ(meta.rotation, 0);
  EXPECT_NEAR(meta.fps, kFps, 1e-6);
  EXPECT_NEAR(meta.duration_s, 10.0, 0.05);
  EXPECT_EQ(meta.frame_count, kFrames);
  EXPECT_EQ(meta.codec, "h264");
  EXPECT_FALSE(meta.has_audio);
  EXPECT_EQ(decoder->stats().frames_decoded, 0);
  EXPECT_EQ(decoder->stats().packets_read, 0);
}

TEST_F(VideoDecoderTest, ExactFramesLongGopMp4) { ExpectExactFrames("long_gop.mp4", kMixedTimes); }
TEST_F(VideoDecoderTest, ExactFramesShortGopMp4) {
  ExpectExactFrames("short_gop.mp4", kMixedTimes);
}
TEST_F(VideoDecoderTest, ExactFramesLongGopMkv) { ExpectExactFrames("long_gop.mkv", kMixedTimes); }
TEST_F(VideoDecoderTest, ExactFramesLongGopTs) { ExpectExactFrames("long_gop.ts", kMixedTimes); }
TEST_F(VideoDecoderTest, ExactFramesShortGopTs) { ExpectExactFrames("short_gop.ts", kMixedTimes); }
TEST_F(VideoDecoderTest, ExactFramesIntraMkv) { ExpectExactFrames("intra.mkv", kMixedTimes); }

TEST_F(VideoDecoderTest, ExactFramesWithSliceThreads) {
  DecodeLimits limits;
  limits.decoder_threads = 2;
  ExpectExactFrames("long_gop.mp4", kMixedTimes, limits);
  ExpectExactFrames("short_gop.ts", kMixedTimes, limits);
}

TEST_F(VideoDecoderTest, EveryFrameInOrder) {
  std::vector<double> times;
  for (int i = 0; i < kFrames; ++i) times.push_back((i + 0.5) / kFps);
  times.pop_back();  // the last mid-frame time has no frame at or after it
  ExpectExactFrames("short_gop.mp4", times);
}

TEST_F(VideoDecoderTest, PlanTimesOnTheSameFrameReturnItOnce) {
  // 1.0 is frame 30; 1.01 and 1.02 both map to frame 31.
  ExpectExactFrames("long_gop.mp4", {1.0, 1.01, 1.02, 1.2});
}

TEST_F(VideoDecoderTest, SparsePlanOnLongGopDoesNotDecodeTheWholeFile) {
  for (const std::string name : {"long_gop.mp4", "long_gop.mkv", "long_gop.ts"}) {
    SCOPED_TRACE(name);
    ExpectExactFrames(name, {0.5, 7.5});
    auto decoder = OpenOrDie(File(name));
    ASSERT_NE(decoder, nullptr);
    SamplingPlan plan;
    plan.times_s = {0.5, 7.5};
    ASSERT_TRUE(decoder->Sample(plan).ok());
    // 0..0.5 s, then from the keyframe at 6.67 s to 7.5 s: about 45 frames of 300.
    EXPECT_LT(decoder->stats().frames_decoded, 80);
    EXPECT_LT(decoder->stats().packets_read, 120);
    EXPECT_GE(decoder->stats().seeks, 1);
  }
}

TEST_F(VideoDecoderTest, NonReferenceFramesBeforeTheTargetAreSkipped) {
  auto decoder = OpenOrDie(File("long_gop.mp4"));
  ASSERT_NE(decoder, nullptr);
  SamplingPlan plan;
  plan.times_s = {3.2};  // keyframe at 0; 96 frames to decode forward, a third of them B-frames
  auto frames = decoder->Sample(plan);
  ASSERT_TRUE(frames.ok());
  ASSERT_EQ(frames->size(), 1u);
  EXPECT_EQ(PaintedIndex(frames->front().bgr), 96);
  EXPECT_LT(decoder->stats().frames_decoded, decoder->stats().packets_read);
}

TEST_F(VideoDecoderTest, RotationIsAppliedClockwise) {
  const std::string plain = dir_->File("marker.mp4");
  const std::string rotated = dir_->File("marker_rot90.mp4");
  // A white box in the top-left corner of a 320x240 coded picture.
  ASSERT_TRUE(testing::Ffmpeg({"-f", "lavfi", "-i", "color=c=black:s=320x240:r=30:d=1", "-vf",
                               "drawbox=x=0:y=0:w=80:h=60:c=white:t=fill", "-c:v", "libx264",
                               "-preset", "ultrafast", "-pix_fmt", "yuv420p", plain}));
  // ffmpeg 5.1 writes the negated tag into the display matrix: rotate=270 displays the picture
  // turned 90 degrees clockwise, as ffmpeg's own autorotate shows it.
  ASSERT_TRUE(
      testing::Ffmpeg({"-i", plain, "-c", "copy", "-metadata:s:v:0", "rotate=270", rotated}));
  auto decoder = OpenOrDie(rotated);
  ASSERT_NE(decoder, nullptr);
  const VideoMeta& meta = decoder->meta();
  EXPECT_EQ(meta.rotation, 90);
  EXPECT_EQ(meta.width, 240);
  EXPECT_EQ(meta.height, 320);
  EXPECT_EQ(meta.coded_width, 320);
  EXPECT_EQ(meta.coded_height, 240);
  SamplingPlan plan;
  plan.times_s = {0.0};
  auto frames = decoder->Sample(plan);
  ASSERT_TRUE(frames.ok()) << frames.status().ToString();
  ASSERT_EQ(frames->size(), 1u);
  const cv::Mat& bgr = frames->front().bgr;
  ASSERT_EQ(bgr.cols, 240);
  ASSERT_EQ(bgr.rows, 320);
  EXPECT_GT(bgr.at<cv::Vec3b>(10, 230)[1], 200);  // top-right: the marker
  EXPECT_LT(bgr.at<cv::Vec3b>(10, 10)[1], 50);
  EXPECT_LT(bgr.at<cv::Vec3b>(310, 10)[1], 50);
  EXPECT_LT(bgr.at<cv::Vec3b>(310, 230)[1], 50);
}

TEST_F(VideoDecoderTest, TinyFramesDecode) {
  const std::string path = dir_->File("tiny.mp4");
  ASSERT_TRUE(
      testing::Ffmpeg({"-f", "lavfi", "-i", "testsrc2=size=16x16:rate=30:duration=1", "-c:v",
                       "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", path}));
  auto decoder = OpenOrDie(path);
  ASSERT_NE(decoder, nullptr);
  auto frames = decoder->Sample(BuildSamplingPlan(decoder->meta(), SamplingOptions{}));
  ASSERT_TRUE(frames.ok()) << frames.status().ToString();
  ASSERT_FALSE(frames->empty());
  EXPECT_EQ(frames->front().bgr.cols, 16);
  EXPECT_EQ(frames->front().bgr.rows, 16);
  EXPECT_DOUBLE_EQ(frames->front().analysis_scale, 1.0);
}

TEST_F(VideoDecoderTest, FramesAreScaledToTheAnalysisSize) {
  const std::string path = dir_->File("wide.mp4");
  ASSERT_TRUE(
      testing::Ffmpeg({"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=1", "-c:v",
                       "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", path}));
  DecodeLimits limits;
  limits.analysis_max_side = 320;
  auto decoder = OpenOrDie(path, limits);
  ASSERT_NE(decoder, nullptr);
  SamplingPlan plan;
  plan.times_s = {0.5};
  auto frames = decoder->Sample(plan);
  ASSERT_TRUE(frames.ok()) << frames.status().ToString();
  ASSERT_EQ(frames->size(), 1u);
  EXPECT_EQ(frames->front().bgr.cols, 320);
  EXPECT_EQ(frames->front().bgr.rows, 180);
  EXPECT_DOUBLE_EQ(frames->front().analysis_scale, 0.5);
  EXPECT_EQ(decoder->meta().width, 640);  // meta stays in displayed pixels
}

TEST_F(VideoDecoderTest, FramesOnlyWindowsReadAreDecodedThin) {
  const std::string path = dir_->File("wide_thin.mp4");
  ASSERT_TRUE(
      testing::Ffmpeg({"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=1", "-c:v",
                       "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", path}));
  auto decoder = OpenOrDie(path);  // analysis 640, thin 320
  ASSERT_NE(decoder, nullptr);
  SamplingPlan plan;
  plan.times_s = {0.1, 0.2, 0.29, 0.3, 0.5};
  plan.full = {false, true, false, true, false};  // 0.29 and 0.3 reach one frame: full
  auto frames = decoder->Sample(plan);
  ASSERT_TRUE(frames.ok()) << frames.status().ToString();
  ASSERT_EQ(frames->size(), 4u);
  const std::vector<bool> thin = {true, false, false, true};
  for (size_t i = 0; i < frames->size(); ++i) {
    const Frame& frame = (*frames)[i];
    SCOPED_TRACE(frame.time_s);
    EXPECT_EQ(frame.thin, thin[i]);
    EXPECT_EQ(frame.bgr.cols, thin[i] ? 320 : 640);
    EXPECT_EQ(frame.bgr.rows, thin[i] ? 180 : 360);
    EXPECT_DOUBLE_EQ(frame.analysis_scale, thin[i] ? 0.25 : 0.5);
  }
  // A thin frame is the thin copy of the full frame it would have been.
  DecodeLimits all_full;
  all_full.thin_max_side = 0;
  auto full_decoder = OpenOrDie(path, all_full);
  ASSERT_NE(full_decoder, nullptr);
  SamplingPlan first;
  first.times_s = {0.1};
  auto full = full_decoder->Sample(first);
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  ASSERT_EQ(full->size(), 1u);
  EXPECT_FALSE(full->front().thin);
  EXPECT_EQ(cv::norm(ThinCopy(full->front(), 320).bgr, frames->front().bgr, cv::NORM_INF), 0.0);
  // Whole-clip consumers pick among the full frames only.
  const std::vector<const Frame*> picked = SelectEven(*frames, 4);
  ASSERT_EQ(picked.size(), 2u);
  EXPECT_FALSE(picked[0]->thin);
  EXPECT_FALSE(picked[1]->thin);
}

TEST_F(VideoDecoderTest, ThinCopySharesSmallFrames) {
  Frame small;
  small.bgr = cv::Mat(120, 160, CV_8UC3, cv::Scalar(1, 2, 3));
  const Frame thin = ThinCopy(small, 320);
  EXPECT_TRUE(thin.thin);
  EXPECT_EQ(thin.bgr.data, small.bgr.data);  // no copy
  EXPECT_DOUBLE_EQ(thin.analysis_scale, 1.0);
  Frame tall;
  tall.analysis_scale = 0.5;
  tall.bgr = cv::Mat(640, 360, CV_8UC3, cv::Scalar(1, 2, 3));
  const Frame shrunk = ThinCopy(tall, 320);
  EXPECT_EQ(shrunk.bgr.rows, 320);
  EXPECT_EQ(shrunk.bgr.cols, 180);
  EXPECT_DOUBLE_EQ(shrunk.analysis_scale, 0.25);
  // With no full frame at all, SelectEven falls back to every frame.
  const std::vector<Frame> only_thin = {thin, shrunk};
  EXPECT_EQ(SelectEven(only_thin, 5).size(), 2u);
}

TEST_F(VideoDecoderTest, PastDeadlinesAreTimeouts) {
  DecodeLimits limits;
  limits.open_deadline_s = 0.0;
  auto refused = VideoDecoder::Open(File("long_gop.mp4"), limits);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kTimeout);

  limits.open_deadline_s = 10.0;
  limits.decode_deadline_s = 0.0;
  auto decoder = OpenOrDie(File("long_gop.mp4"), limits);
  ASSERT_NE(decoder, nullptr);
  SamplingPlan plan;
  plan.times_s = {1.0, 5.0};
  auto frames = decoder->Sample(plan);
  ASSERT_FALSE(frames.ok());
  EXPECT_EQ(frames.status().code(), ErrorCode::kTimeout);
}

TEST_F(VideoDecoderTest, TruncatedWhenPlannedTimesAreMissing) {
  auto decoder = OpenOrDie(File("short_gop.mp4"));
  ASSERT_NE(decoder, nullptr);
  SamplingPlan plan;
  plan.times_s = {1.0, 20.0, 30.0, 40.0};  // three of four lie after the end
  auto frames = decoder->Sample(plan);
  ASSERT_FALSE(frames.ok());
  EXPECT_EQ(frames.status().code(), ErrorCode::kTruncated) << frames.status().ToString();
}

TEST_F(VideoDecoderTest, EmptyPlanReturnsNothing) {
  auto decoder = OpenOrDie(File("short_gop.mp4"));
  ASSERT_NE(decoder, nullptr);
  auto frames = decoder->Sample(SamplingPlan{});
  ASSERT_TRUE(frames.ok());
  EXPECT_TRUE(frames->empty());
}

}  // namespace
}  // namespace vsieve::media
