// media/video_segments.h: the keyframe scan, the weighted split at keyframes, and the join of
// segments written by WriteCroppedVideo, checked frame for frame against one pass over the
// whole video (lossless encodes, so that equal pictures decode to equal pixels).

#include "media/video_segments.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <limits>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <vector>

#include "media/crop_writer.h"
#include "media/video_decoder.h"
#include "tests/support/test_env.h"

namespace vsieve::media {
namespace {

using common::ErrorCode;

std::vector<cv::Mat> AllFrames(const std::string& path) {
  std::vector<cv::Mat> frames;
  cv::VideoCapture capture(path, cv::CAP_FFMPEG);
  cv::Mat frame;
  while (capture.read(frame)) frames.push_back(frame.clone());
  return frames;
}

class VideoSegmentsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VSIEVE_REQUIRE_FFMPEG();
    if (!HaveEncoder("libx264")) GTEST_SKIP() << "libavcodec has no libx264";
  }

  // A 10 s, 25 fps, 320x240 clip with a keyframe every 25 frames exactly (B-frames on) and an
  // AAC tone.
  std::string MakeClip(const std::string& name) {
    const std::string path = dir_.File(name);
    EXPECT_TRUE(testing::Ffmpeg({"-f",           "lavfi",
                                 "-i",           "testsrc2=size=320x240:rate=25:duration=10",
                                 "-f",           "lavfi",
                                 "-i",           "sine=frequency=440:duration=10",
                                 "-c:v",         "libx264",
                                 "-preset",      "veryfast",
                                 "-x264-params", "keyint=25:min-keyint=25:scenecut=0",
                                 "-pix_fmt",     "yuv420p",
                                 "-c:a",         "aac",
                                 "-shortest",    path}))
        << "ffmpeg could not make " << name;
    return path;
  }

  // Lossless encodes that paint a mark moving with time, so that a frame drawn at the wrong
  // time or twice shows.
  static CropWriteOptions Lossless() {
    CropWriteOptions options;
    options.crf = 0;
    options.copy_audio = false;
    options.draw = [](cv::Mat* bgr, const FrameStamp& stamp) {
      const int x = static_cast<int>(std::lround(stamp.time_s * 25)) % (bgr->cols - 20);
      cv::rectangle(*bgr, cv::Rect(x, 10, 16, 16), cv::Scalar(0, 0, 255), cv::FILLED);
      if (stamp.keyframe) cv::circle(*bgr, cv::Point(300, 200), 8, cv::Scalar(255, 0, 0), -1);
      return common::Status::Ok();
    };
    return options;
  }

  testing::TempDir dir_;
};

TEST_F(VideoSegmentsTest, ScanFindsEveryFrameAndKeyframe) {
  const std::string clip = MakeClip("clip.mp4");
  auto index = ScanKeyframes(clip);
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  EXPECT_EQ(index->frame_pts.size(), 250U);
  ASSERT_EQ(index->keyframes.size(), 10U);
  for (size_t k = 0; k < index->keyframes.size(); ++k) EXPECT_EQ(index->keyframes[k], 25 * k);
  EXPECT_TRUE(std::is_sorted(index->frame_pts.begin(), index->frame_pts.end()));
}

TEST_F(VideoSegmentsTest, ScanErrors) {
  EXPECT_EQ(ScanKeyframes(dir_.File("missing.mp4")).status().code(), ErrorCode::kObjectNotFound);
  const std::string junk = dir_.File("junk.mp4");
  ASSERT_TRUE(testing::WriteFile(junk, std::string(4096, 'x')));
  EXPECT_EQ(ScanKeyframes(junk).status().code(), ErrorCode::kContainerUnrecognized);
}

TEST(SplitAtKeyframesTest, WeightsPlaceCutsAtTheNearestKeyframe) {
  KeyframeIndex index;
  index.time_base_den = 25;
  for (int i = 0; i < 250; ++i) index.frame_pts.push_back(i);
  for (size_t k = 0; k < 250; k += 25) index.keyframes.push_back(k);
  // 2:1 -> the point is frame 166.7; keyframe 175 is nearer than 150.
  std::vector<Segment> parts = SplitAtKeyframes(index, {2, 1});
  ASSERT_EQ(parts.size(), 2U);
  EXPECT_EQ(parts[0].first_frame, 0U);
  EXPECT_EQ(parts[0].frames, 175U);
  EXPECT_EQ(parts[0].from_pts, std::numeric_limits<int64_t>::min());
  EXPECT_EQ(parts[0].to_pts, 175);
  EXPECT_EQ(parts[1].from_pts, 175);
  EXPECT_EQ(parts[1].to_pts, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(parts[1].frames, 75U);
  EXPECT_DOUBLE_EQ(parts[1].start_s, 7.0);
  EXPECT_DOUBLE_EQ(parts[1].end_s, 10.0);
  // 1:1:1:1 over four keyframes a GOP apart.
  parts = SplitAtKeyframes(index, {1, 1, 1, 1});
  ASSERT_EQ(parts.size(), 4U);
  EXPECT_EQ(parts[1].first_frame, 50U);  // 62.5 -> 50 (12.5 away) ties 75: the first wins
  EXPECT_EQ(parts[2].first_frame, 125U);
  EXPECT_EQ(parts[3].first_frame, 175U);  // 187.5 -> 175 or 200: the first
  // More parts than keyframes: parts are left out, none is empty, every frame is covered.
  index.keyframes = {0, 100};
  parts = SplitAtKeyframes(index, {1, 1, 1, 1, 1});
  ASSERT_EQ(parts.size(), 2U);
  EXPECT_EQ(parts[0].frames + parts[1].frames, 250U);
  EXPECT_EQ(parts[1].first_frame, 100U);
  EXPECT_TRUE(SplitAtKeyframes(index, {}).empty());
}

TEST_F(VideoSegmentsTest, TwoToOneSplitJoinsToTheSameFramesAsOnePass) {
  const std::string clip = MakeClip("clip.mp4");
  auto index = ScanKeyframes(clip);
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  const std::vector<Segment> segments = SplitAtKeyframes(*index, {2, 1});
  ASSERT_EQ(segments.size(), 2U);
  // The cut is a keyframe within one GOP (25 frames) of the 2:1 point.
  const size_t cut = segments[1].first_frame;
  EXPECT_NE(std::find(index->keyframes.begin(), index->keyframes.end(), cut),
            index->keyframes.end());
  EXPECT_LE(std::abs(static_cast<double>(cut) - 250.0 * 2 / 3), 25.0);

  const cv::Rect whole(0, 0, 320, 240);
  std::vector<std::string> parts;
  for (const Segment& s : segments) {
    CropWriteOptions options = Lossless();
    options.from_pts = s.from_pts;
    options.to_pts = s.to_pts;
    std::atomic<int64_t> done{0};
    options.frames_done = &done;
    parts.push_back(dir_.File("part" + std::to_string(s.part) + ".mp4"));
    auto written = WriteCroppedVideo(clip, whole, parts.back(), options);
    ASSERT_TRUE(written.ok()) << written.status().ToString();
    EXPECT_EQ(written->frames, static_cast<int64_t>(s.frames));
    EXPECT_EQ(done.load(), written->frames);
    EXPECT_FALSE(written->audio_copied);
  }
  const std::string merged = dir_.File("merged.mp4");
  ASSERT_TRUE(ConcatSegments(parts, clip, merged).ok());

  const std::string one_part = dir_.File("one.mp4");
  ASSERT_TRUE(WriteCroppedVideo(clip, whole, one_part, Lossless()).ok());
  const std::string single = dir_.File("single.mp4");
  ASSERT_TRUE(ConcatSegments({one_part}, clip, single).ok());

  auto merged_meta = VideoDecoder::Open(merged, DecodeLimits{});
  ASSERT_TRUE(merged_meta.ok()) << merged_meta.status().ToString();
  EXPECT_TRUE((*merged_meta)->meta().has_audio);
  EXPECT_NEAR((*merged_meta)->meta().duration_s, 10.0, 0.1);

  const std::vector<cv::Mat> a = AllFrames(merged);
  const std::vector<cv::Mat> b = AllFrames(single);
  ASSERT_EQ(a.size(), 250U);
  ASSERT_EQ(b.size(), a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(cv::norm(a[i], b[i], cv::NORM_INF), 0.0) << "frame " << i << " differs";
  }
  // The joined timestamps are the source's.
  auto merged_index = ScanKeyframes(merged);
  ASSERT_TRUE(merged_index.ok());
  EXPECT_EQ(merged_index->frame_pts.size(), 250U);
  const double tb = static_cast<double>(merged_index->time_base_num) / merged_index->time_base_den;
  EXPECT_NEAR((merged_index->frame_pts[cut] - merged_index->start_pts) * tb, cut / 25.0, 1e-3);
}

TEST_F(VideoSegmentsTest, PartsEncodedDifferentlyAreRefusedAndNothingIsLeft) {
  const std::string clip = MakeClip("clip.mp4");
  const std::string a = dir_.File("a.mp4");
  const std::string b = dir_.File("b.mp4");
  CropWriteOptions options;
  options.copy_audio = false;
  ASSERT_TRUE(WriteCroppedVideo(clip, cv::Rect(0, 0, 320, 240), a, options).ok());
  ASSERT_TRUE(WriteCroppedVideo(clip, cv::Rect(0, 0, 160, 120), b, options).ok());
  const std::string out = dir_.File("out.mp4");
  common::Status joined = ConcatSegments({a, b}, "", out);
  EXPECT_EQ(joined.code(), ErrorCode::kInvalidArgument) << joined.ToString();
  EXPECT_NE(joined.message().find("segment 1"), std::string::npos) << joined.message();
  EXPECT_FALSE(std::filesystem::exists(out));
  EXPECT_EQ(ConcatSegments({}, "", out).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ConcatSegments({a, dir_.File("missing.mp4")}, "", out).code(),
            ErrorCode::kObjectNotFound);
  EXPECT_FALSE(std::filesystem::exists(out));
}

TEST_F(VideoSegmentsTest, DrawPaintsTheDisplayedPictureOfARotatedVideo) {
  const std::string plain = dir_.File("plain.mp4");
  ASSERT_TRUE(testing::Ffmpeg({"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=1",
                               "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv420p", plain}));
  const std::string rotated = dir_.File("rotated.mp4");
  ASSERT_TRUE(
      testing::Ffmpeg({"-i", plain, "-c", "copy", "-metadata:s:v:0", "rotate=90", rotated}));
  CropWriteOptions options;
  options.crf = 0;
  cv::Size seen;
  options.draw = [&seen](cv::Mat* bgr, const FrameStamp&) {
    seen = bgr->size();
    cv::rectangle(*bgr, cv::Rect(0, 0, 40, 40), cv::Scalar(0, 0, 255), cv::FILLED);
    return common::Status::Ok();
  };
  const std::string out = dir_.File("out.mp4");
  // The displayed frame is 240 x 320; the box is in displayed pixels.
  auto written = WriteCroppedVideo(rotated, cv::Rect(0, 0, 240, 320), out, options);
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_EQ(seen, cv::Size(240, 320));
  DecodeLimits limits;
  limits.analysis_max_side = 0;
  auto decoder = VideoDecoder::Open(out, limits);
  ASSERT_TRUE(decoder.ok());
  auto source = VideoDecoder::Open(rotated, limits);
  ASSERT_TRUE(source.ok());
  EXPECT_NE((*source)->meta().rotation, 0);
  EXPECT_EQ((*decoder)->meta().rotation, (*source)->meta().rotation);  // kept
  SamplingPlan plan;
  plan.times_s = {0.5};
  auto frames = (*decoder)->Sample(plan);
  ASSERT_TRUE(frames.ok()) << frames.status().ToString();
  const cv::Mat& shown = frames->front().bgr;
  ASSERT_EQ(shown.size(), cv::Size(240, 320));
  const cv::Vec3b corner = shown.at<cv::Vec3b>(20, 20);  // inside the square, as displayed
  EXPECT_LT(corner[0], 40);
  EXPECT_LT(corner[1], 40);
  EXPECT_GT(corner[2], 200);
}

TEST_F(VideoSegmentsTest, DrawErrorStopsTheWriteAndRemovesTheOutput) {
  const std::string clip = MakeClip("clip.mp4");
  CropWriteOptions options;
  options.draw = [](cv::Mat*, const FrameStamp& stamp) {
    if (stamp.time_s >= 1.0) return common::Status(ErrorCode::kModelFailed, "detector broke");
    return common::Status::Ok();
  };
  const std::string out = dir_.File("out.mp4");
  auto written = WriteCroppedVideo(clip, cv::Rect(0, 0, 320, 240), out, options);
  EXPECT_EQ(written.status().code(), ErrorCode::kModelFailed);
  EXPECT_FALSE(std::filesystem::exists(out));
}

}  // namespace
}  // namespace vsieve::media
