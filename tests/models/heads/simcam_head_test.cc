#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <opencv2/core.hpp>
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

// A window of `frames` frames (2-4) of the clip, as seg_simcam_filter passes them, optionally
// reversed as inverse_seg_simcam_filter does.
HeadInput Window(const Clip& clip, size_t first, size_t count, bool reversed) {
  HeadInput input = clip.input;
  input.frames.clear();
  input.full_frames.clear();
  input.times_s.clear();
  for (size_t k = 0; k < count; ++k) {
    const size_t i = reversed ? first + count - 1 - k : first + k;
    input.frames.push_back(clip.input.frames[i]);
    input.full_frames.push_back(clip.input.full_frames[i]);
    input.times_s.push_back(clip.input.times_s[i]);
  }
  return input;
}

class SimcamHeadTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!testing::HaveFfmpeg()) return;
    dir_ = new TempDir();
    // A detailed still picture, larger than the clips cut from it.
    ASSERT_TRUE(Ffmpeg({"-f", "lavfi", "-i", "mandelbrot=s=1280x720:maxiter=200", "-frames:v", "1",
                        "-update", "1", dir_->File("still.png")}));
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string Make(const std::string& name, const std::vector<std::string>& args) {
    const std::string path = dir_->File(name);
    std::vector<std::string> all = args;
    all.insert(all.end(), {"-preset", "ultrafast", "-pix_fmt", "yuv420p", path});
    EXPECT_TRUE(Ffmpeg(all)) << name;
    return path;
  }
  static std::string Still() { return dir_->File("still.png"); }
  HeadOutput RunOn(const HeadInput& input) {
    auto out = head_.Run(input);
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    if (!out.ok()) return HeadOutput{};
    double total = 0.0;
    for (const auto& [label, p] : out->result) {
      EXPECT_GE(p, 0.0) << label;
      total += p;
    }
    EXPECT_NEAR(total, 1.0, 1e-9);
    return *out;
  }
  static TempDir* dir_;
  SimcamHead head_;
};

TempDir* SimcamHeadTest::dir_ = nullptr;

TEST_F(SimcamHeadTest, NameAndLabelsAreFixed) {
  EXPECT_EQ(head_.name(), "simcam_filter");
  EXPECT_EQ(head_.labels(),
            (std::vector<std::string>{"static_video", "simulated_camera_video", "normal_video"}));
}

TEST_F(SimcamHeadTest, NaturalMotionIsNormal) {
  VSIEVE_REQUIRE_FFMPEG();
  for (const std::string source :
       {"testsrc2=s=640x360:r=25", "life=seed=1:s=640x360:r=25:mold=10"}) {
    auto clip = Load(Make("normal.mp4", {"-f", "lavfi", "-i", source, "-t", "4"}));
    ASSERT_FALSE(clip->frames.empty());
    EXPECT_EQ(RunOn(clip->input).label, "normal_video") << source;
  }
}

TEST_F(SimcamHeadTest, StillPictureIsStatic) {
  VSIEVE_REQUIRE_FFMPEG();
  auto clip = Load(Make(
      "still.mp4", {"-loop", "1", "-i", Still(), "-t", "4", "-r", "25", "-vf", "scale=640:360"}));
  ASSERT_FALSE(clip->frames.empty());
  const HeadOutput out = RunOn(clip->input);
  EXPECT_EQ(out.label, "static_video");
  EXPECT_GT(out.prob, 0.8);
}

TEST_F(SimcamHeadTest, SlideshowOfStillsIsStatic) {
  VSIEVE_REQUIRE_FFMPEG();
  // A new picture every 1.5 s, each held still.
  auto clip = Load(Make("slides.mp4", {"-f", "lavfi", "-i", "testsrc2=s=640x360:r=25", "-t", "6",
                                       "-vf", "fps=1/1.5,fps=25"}));
  ASSERT_FALSE(clip->frames.empty());
  EXPECT_EQ(RunOn(clip->input).label, "static_video");
}

TEST_F(SimcamHeadTest, ZoompanOfStillIsSimulatedCamera) {
  VSIEVE_REQUIRE_FFMPEG();
  auto clip =
      Load(Make("zoompan.mp4",
                {"-loop", "1", "-i", Still(), "-vf",
                 "zoompan=z='min(zoom+0.002,1.5)':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':d=100:"
                 "s=640x360:fps=25",
                 "-frames:v", "100"}));
  ASSERT_FALSE(clip->frames.empty());
  const HeadOutput out = RunOn(clip->input);
  EXPECT_EQ(out.label, "simulated_camera_video");
  EXPECT_GT(out.prob, 0.7);
}

TEST_F(SimcamHeadTest, PannedCropOfStillIsSimulatedCamera) {
  VSIEVE_REQUIRE_FFMPEG();
  auto clip = Load(Make("pan.mp4", {"-loop", "1", "-i", Still(), "-t", "4", "-r", "25", "-vf",
                                    "crop=640:360:x='t*30':y='t*8'"}));
  ASSERT_FALSE(clip->frames.empty());
  EXPECT_EQ(RunOn(clip->input).label, "simulated_camera_video");
}

// Stills of one-pixel detail (a cellular automaton, scaled up 2x as a photo's detail would be,
// a fractal) panned or zoomed: shrunk without a low-pass filter first, the detail aliased
// differently at every position and the rigid motion left residuals like independent motion.
TEST_F(SimcamHeadTest, PanAndZoomOfFineDetailAreSimulatedCamera) {
  VSIEVE_REQUIRE_FFMPEG();
  ASSERT_TRUE(Ffmpeg({"-f", "lavfi", "-i", "cellauto=seed=1:s=640x360:rule=30", "-frames:v", "1",
                      "-update", "1", dir_->File("automaton.png")}));
  const std::string automaton = dir_->File("automaton.png");
  struct Case {
    std::string name;
    std::vector<std::string> args;
  };
  const std::vector<Case> cases = {
      {"automaton_pan.mp4",
       {"-loop", "1", "-i", automaton, "-t", "4", "-r", "25", "-vf",
        "scale=1280:720,crop=640:360:x='t*60':y='t*20'"}},
      {"automaton_zoom.mp4",
       {"-loop", "1", "-i", automaton, "-vf",
        "scale=1280:720,zoompan=z='min(zoom+0.002,1.5)':x='iw/2-(iw/zoom/2)':"
        "y='ih/2-(ih/zoom/2)':d=150:s=640x360:fps=25",
        "-frames:v", "150"}},
  };
  for (const Case& c : cases) {
    auto clip = Load(Make(c.name, c.args));
    ASSERT_FALSE(clip->frames.empty()) << c.name;
    const HeadOutput out = RunOn(clip->input);
    EXPECT_EQ(out.label, "simulated_camera_video") << c.name << " " << out.scores.dump();
  }
}

TEST_F(SimcamHeadTest, WindowsForwardAndReversed) {
  VSIEVE_REQUIRE_FFMPEG();
  struct Case {
    std::string file;
    std::vector<std::string> args;
    std::string label;
  };
  const std::vector<Case> cases = {
      {"w_still.mp4",
       {"-loop", "1", "-i", Still(), "-t", "4", "-r", "25", "-vf", "scale=640:360"},
       "static_video"},
      {"w_pan.mp4",
       {"-loop", "1", "-i", Still(), "-t", "4", "-r", "25", "-vf", "crop=640:360:x='t*30':y='t*8'"},
       "simulated_camera_video"},
      {"w_motion.mp4", {"-f", "lavfi", "-i", "testsrc2=s=640x360:r=25", "-t", "4"}, "normal_video"},
  };
  for (const Case& c : cases) {
    auto clip = Load(Make(c.file, c.args), 4);
    ASSERT_EQ(clip->frames.size(), 4U) << c.file;
    for (const size_t count : {2U, 3U, 4U}) {
      for (const bool reversed : {false, true}) {
        const HeadOutput out = RunOn(Window(*clip, 0, count, reversed));
        EXPECT_EQ(out.label, c.label) << c.file << " frames=" << count << " reversed=" << reversed;
      }
    }
  }
}

// Within one video (a serial and frame keys given), a pair is measured once, from the earlier
// frame to the later: the reversed window reads exactly as the forward one, as the daemon's
// inverse_seg_simcam_filter does.
TEST_F(SimcamHeadTest, ReversedWindowOfAVideoReusesItsPairs) {
  VSIEVE_REQUIRE_FFMPEG();
  auto clip = Load(Make("r_pan.mp4", {"-loop", "1", "-i", Still(), "-t", "4", "-r", "25", "-vf",
                                      "crop=640:360:x='t*30':y='t*8'"}),
                   4);
  ASSERT_EQ(clip->frames.size(), 4U);
  const auto keyed = [&](bool reversed) {
    HeadInput input = Window(*clip, 0, 4, reversed);
    input.video_serial = 7;
    for (size_t k = 0; k < 4; ++k) input.frame_keys.push_back(reversed ? 30 - 10 * k : 10 * k);
    return input;
  };
  const HeadOutput forward = RunOn(keyed(false));
  const HeadOutput reversed = RunOn(keyed(true));
  EXPECT_EQ(forward.label, "simulated_camera_video");
  EXPECT_EQ(reversed.label, forward.label);
  ASSERT_EQ(reversed.result.size(), forward.result.size());
  for (size_t k = 0; k < forward.result.size(); ++k) {
    EXPECT_EQ(reversed.result[k].first, forward.result[k].first);
    EXPECT_DOUBLE_EQ(reversed.result[k].second, forward.result[k].second);
  }
  EXPECT_EQ(reversed.scores.dump(), forward.scores.dump());
}

TEST_F(SimcamHeadTest, DegenerateInputsAreSane) {
  const std::vector<cv::Mat> kinds = DegenerateFrames();
  for (const cv::Mat& frame : kinds) {
    for (const int count : {1, 2, 16}) {
      HeadInput input = RepeatFrame(frame, count);
      const HeadOutput out = RunOn(input);
      // One frame: nothing to compare; several identical frames: still.
      EXPECT_EQ(out.label, count == 1 ? "normal_video" : "static_video")
          << frame.size() << " x" << count;
    }
  }
  // A textured 16x16 frame moved by a pixel must not crash the motion fit.
  cv::Mat noise(16, 16, CV_8UC3);
  cv::randu(noise, 0, 255);
  cv::Mat shifted;
  cv::copyMakeBorder(noise(cv::Rect(1, 0, 15, 16)), shifted, 0, 0, 0, 1, cv::BORDER_REPLICATE);
  HeadInput input;
  input.frames = {noise, shifted};
  input.times_s = {0.0, 1.0};
  EXPECT_TRUE(head_.Run(input).ok());
  EXPECT_EQ(RunOn(HeadInput{}).label, "normal_video");
}

TEST_F(SimcamHeadTest, RealNearStaticClipIsStatic) {
  VSIEVE_REQUIRE_ASSETS();
  auto clip = Load(testing::SharedAssetsDir() + "/videos/static_slideshow/example-movie.mp4");
  ASSERT_FALSE(clip->frames.empty());
  EXPECT_EQ(RunOn(clip->input).label, "static_video");
}

TEST_F(SimcamHeadTest, RealHandheldClipIsNormal) {
  VSIEVE_REQUIRE_ASSETS();
  auto clip = Load(testing::SharedAssetsDir() + "/videos/natural/phone_bear_horizontal.mp4");
  ASSERT_FALSE(clip->frames.empty());
  EXPECT_EQ(RunOn(clip->input).label, "normal_video");
}

}  // namespace
}  // namespace vsieve::models
