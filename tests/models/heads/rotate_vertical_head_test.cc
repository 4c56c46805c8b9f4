#include <gtest/gtest.h>

#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "models/heads/builtin_heads.h"
#include "models/regions/text_detector.h"
#include "models/runtime/model_paths.h"
#include "tests/models/head_clip.h"
#include "tests/support/test_env.h"
#include "tests/support/video_frames.h"

namespace vsieve::models {
namespace {

using testing::Ffmpeg;
using testing::TempDir;

// A 640x360 picture with three lines of dark text on a light gradient; `lines` receives their
// boxes.
cv::Mat TextPicture(int shift, std::vector<cv::Rect>* lines) {
  cv::Mat picture(360, 640, CV_8UC3);
  for (int y = 0; y < picture.rows; ++y) {
    picture.row(y).setTo(cv::Scalar(200 - y / 6, 210 - y / 8, 220 - y / 10));
  }
  const std::vector<std::string> text = {"Breaking news tonight", "Weather and traffic",
                                         "Sports results at nine"};
  lines->clear();
  for (size_t i = 0; i < text.size(); ++i) {
    const cv::Point origin(40 + shift, 90 + static_cast<int>(i) * 90);
    int baseline = 0;
    const cv::Size size = cv::getTextSize(text[i], cv::FONT_HERSHEY_SIMPLEX, 1.4, 3, &baseline);
    cv::putText(picture, text[i], origin, cv::FONT_HERSHEY_SIMPLEX, 1.4, cv::Scalar(20, 20, 20), 3,
                cv::LINE_AA);
    lines->push_back(cv::Rect(origin.x - 6, origin.y - size.height - 6, size.width + 12,
                              size.height + baseline + 12));
  }
  return picture;
}

// Where `box` of an image of `size` lands after cv::rotate with `code`.
cv::Rect RotateBox(const cv::Rect& box, const cv::Size& size, int code) {
  switch (code) {
    case cv::ROTATE_90_CLOCKWISE:
      return {size.height - box.y - box.height, box.x, box.height, box.width};
    case cv::ROTATE_180:
      return {size.width - box.x - box.width, size.height - box.y - box.height, box.width,
              box.height};
    default:
      return {box.y, size.width - box.x - box.width, box.height, box.width};
  }
}

// Eight frames of moving text, turned by `code` (-1: upright), with text regions.
std::unique_ptr<Clip> TextClip(int code) {
  auto clip = std::make_unique<Clip>();
  for (int i = 0; i < 8; ++i) {
    std::vector<cv::Rect> lines;
    cv::Mat picture = TextPicture(i * 4, &lines);
    const cv::Size upright = picture.size();
    if (code >= 0) {
      cv::rotate(picture, picture, code);
      for (cv::Rect& box : lines) box = RotateBox(box, upright, code);
    }
    media::Frame frame;
    frame.bgr = picture;
    frame.time_s = 0.5 * i;
    clip->frames.push_back(frame);
    if (i == 4) {
      for (const cv::Rect& box : lines) {
        clip->regions.push_back(Region{RegionKind::kText, box, 0.9F, "caption", true});
      }
    }
  }
  const cv::Mat& first = clip->frames.front().bgr;
  clip->meta.width = first.cols;
  clip->meta.height = first.rows;
  for (const media::Frame& f : clip->frames) {
    clip->input.frames.push_back(f.bgr);
    clip->input.full_frames.push_back(f.bgr);
    clip->input.times_s.push_back(f.time_s);
  }
  clip->input.meta = &clip->meta;
  clip->input.regions = &clip->regions;
  clip->input.crop = cv::Rect(0, 0, first.cols, first.rows);
  return clip;
}

class RotateVerticalHeadTest : public ::testing::Test {
 protected:
  RotateVerticalHeadTest() : paths_(ResolveModelPaths({})), head_(nullptr, paths_.face_cascade) {}

  HeadOutput RunOn(RotateVerticalHead& head, const HeadInput& input) {
    auto out = head.Run(input);
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    if (!out.ok()) return HeadOutput{};
    double total = 0.0;
    for (const auto& [label, p] : out->result) total += p;
    EXPECT_NEAR(total, 1.0, 1e-9);
    return *out;
  }
  HeadOutput RunOn(const HeadInput& input) { return RunOn(head_, input); }

  TempDir dir_;
  ModelPaths paths_;
  RotateVerticalHead head_;
};

TEST_F(RotateVerticalHeadTest, NameAndLabelsAreFixed) {
  EXPECT_EQ(head_.name(), "rotate_vertical_filter");
  EXPECT_EQ(head_.labels(),
            (std::vector<std::string>{"rotated_video", "vertical_screen_video", "normal_video"}));
}

TEST_F(RotateVerticalHeadTest, UprightTextIsNormal) {
  auto clip = TextClip(-1);
  EXPECT_EQ(RunOn(clip->input).label, "normal_video");
}

TEST_F(RotateVerticalHeadTest, TextOnItsSideIsRotated) {
  for (const int code : {cv::ROTATE_90_CLOCKWISE, cv::ROTATE_90_COUNTERCLOCKWISE}) {
    auto clip = TextClip(code);
    const HeadOutput out = RunOn(clip->input);
    EXPECT_EQ(out.label, "rotated_video") << code;
    EXPECT_EQ(out.scores["text_tall"].get<int>(), 3);
  }
}

TEST_F(RotateVerticalHeadTest, TransposedVideoWithTextRegionsIsRotated) {
  VSIEVE_REQUIRE_FFMPEG();
  // A landscape clip turned on its side by transpose=1, as a phone clip stored without its
  // rotation tag; the text detector would report the caption lines as tall boxes.
  const std::string path = dir_.File("transposed.mp4");
  ASSERT_TRUE(
      testing::Ffmpeg({"-f", "lavfi", "-i", "testsrc2=s=640x360:r=25", "-t", "2", "-vf",
                       "transpose=1", "-preset", "ultrafast", "-pix_fmt", "yuv420p", path}));
  auto clip = Load(path, 8);
  ASSERT_FALSE(clip->frames.empty());
  EXPECT_EQ(clip->meta.width, 360);
  clip->regions = {
      Region{RegionKind::kText, cv::Rect(300, 40, 30, 200), 0.9F, "caption", true},
      Region{RegionKind::kText, cv::Rect(250, 60, 28, 160), 0.9F, "scene_text", false}};
  EXPECT_EQ(RunOn(clip->input).label, "rotated_video");
}

TEST_F(RotateVerticalHeadTest, UpsideDownTextIsRotatedWithTheAngleClassifier) {
  VSIEVE_REQUIRE_ASSETS();
  const ModelPaths paths = ResolveModelPaths({testing::SharedAssetsDir() + "/models"});
  if (paths.text_angle.empty()) GTEST_SKIP() << "no text angle classifier";
  auto angle = TextAngleClassifier::Load(paths.text_angle);
  ASSERT_TRUE(angle.ok()) << angle.status().ToString();
  RotateVerticalHead head(angle->get(), "");
  auto upright = TextClip(-1);
  EXPECT_EQ(RunOn(head, upright->input).label, "normal_video");
  auto flipped = TextClip(cv::ROTATE_180);
  const HeadOutput out = RunOn(head, flipped->input);
  EXPECT_EQ(out.label, "rotated_video");
  EXPECT_GT(out.scores["text_upside_down"].get<double>(), 0.5);
}

TEST_F(RotateVerticalHeadTest, PillarboxedPortraitIsVerticalScreen) {
  VSIEVE_REQUIRE_FFMPEG();
  const std::string path = dir_.File("pillarbox.mp4");
  ASSERT_TRUE(testing::Ffmpeg({"-f", "lavfi", "-i", "testsrc2=s=360x640:r=25", "-t", "2", "-vf",
                               "scale=-2:360,pad=640:360:(ow-iw)/2:0", "-preset", "ultrafast",
                               "-pix_fmt", "yuv420p", path}));
  auto clip = Load(path, 8);
  ASSERT_FALSE(clip->frames.empty());
  // What the border detector reports, and the crop between the bars.
  clip->regions = {Region{RegionKind::kBlackBorder, cv::Rect(0, 0, 218, 360), 1.0F, "pillarbox"},
                   Region{RegionKind::kBlackBorder, cv::Rect(422, 0, 218, 360), 1.0F, "pillarbox"}};
  clip->input.crop = cv::Rect(218, 0, 204, 360);
  std::vector<cv::Mat> cropped;
  for (const cv::Mat& f : clip->input.full_frames) cropped.push_back(f(clip->input.crop));
  clip->input.frames = cropped;
  EXPECT_EQ(RunOn(clip->input).label, "vertical_screen_video");

  // The same with blurred fill at the sides.
  for (Region& r : clip->regions) r.kind = RegionKind::kBlurFill;
  EXPECT_EQ(RunOn(clip->input).label, "vertical_screen_video");

  // Without the side regions a narrow crop alone is weak evidence.
  clip->regions.clear();
  EXPECT_EQ(RunOn(clip->input).label, "normal_video");
}

TEST_F(RotateVerticalHeadTest, PortraitFrameIsNotVerticalScreen) {
  VSIEVE_REQUIRE_FFMPEG();
  const std::string path = dir_.File("portrait.mp4");
  ASSERT_TRUE(testing::Ffmpeg({"-f", "lavfi", "-i", "testsrc2=s=360x640:r=25", "-t", "2", "-preset",
                               "ultrafast", "-pix_fmt", "yuv420p", path}));
  auto clip = Load(path, 8);
  ASSERT_FALSE(clip->frames.empty());
  EXPECT_EQ(RunOn(clip->input).label, "normal_video");
}

TEST_F(RotateVerticalHeadTest, DegenerateInputsAreSane) {
  media::VideoMeta meta;
  meta.width = 640;
  meta.height = 360;
  const std::vector<Region> none;
  const std::vector<cv::Mat> kinds = DegenerateFrames();
  for (const cv::Mat& frame : kinds) {
    for (const int count : {1, 2, 16}) {
      HeadInput input = RepeatFrame(frame, count);
      input.meta = &meta;
      input.regions = &none;
      EXPECT_EQ(RunOn(input).label, "normal_video") << frame.size() << " x" << count;
    }
  }
  EXPECT_EQ(RunOn(HeadInput{}).label, "normal_video");
  RotateVerticalHead no_models(nullptr, "no_such_cascade.xml");
  EXPECT_EQ(RunOn(no_models, HeadInput{}).label, "normal_video");
}

TEST_F(RotateVerticalHeadTest, RealPortraitPhoneClipIsNormal) {
  VSIEVE_REQUIRE_ASSETS();
  // Stored 568x320 with a rotation tag; displayed (and decoded) upright as 320x568.
  auto clip = Load(testing::SharedAssetsDir() + "/videos/vertical_phone/iphone_rotated.mov");
  ASSERT_FALSE(clip->frames.empty());
  EXPECT_LT(clip->meta.width, clip->meta.height);
  EXPECT_EQ(RunOn(clip->input).label, "normal_video");
}

}  // namespace
}  // namespace vsieve::models
