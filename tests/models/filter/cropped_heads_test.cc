// Seed 001's "use the cropped video": every head reads the frames cropped to the safe crop.
// The same picture with and without letterbox bars gives the same head answers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "models/filter/video_filter.h"
#include "tests/models/test_models.h"
#include "tests/support/test_env.h"

namespace vsieve::models {
namespace {

class CroppedHeadsTest : public testing::TestModelsSuite {
 protected:
  void SetUp() override {
    TestModelsSuite::SetUp();
    if (IsSkipped()) return;
    VSIEVE_REQUIRE_FFMPEG();
    // A moving 320x180 picture; the letterboxed clip adds 30 px black bars top and bottom.
    // Lossless 4:4:4, so that the picture between the bars is the clean clip's, pixel for pixel.
    const std::string source = "testsrc2=size=704x520:rate=25,crop=320:180:x='t*40':y=300";
    clean_ = dir_->File("clean.mkv");
    letterboxed_ = dir_->File("letterboxed.mkv");
    ASSERT_TRUE(vsieve::testing::Ffmpeg({"-f", "lavfi", "-i", source, "-t", "4", "-c:v", "libx264",
                                         "-qp", "0", "-pix_fmt", "yuv444p", clean_}));
    ASSERT_TRUE(vsieve::testing::Ffmpeg({"-f", "lavfi", "-i", source, "-t", "4", "-vf",
                                         "pad=320:240:0:30", "-c:v", "libx264", "-qp", "0",
                                         "-pix_fmt", "yuv444p", letterboxed_}));
  }

  static FilterOptions Options() {
    FilterOptions options;
    options.text_regions = false;
    OnnxHeadConfig head;  // per frame: the mean of two colour planes
    head.name = "plane_means";
    head.model = dir_->File("head_nchw.onnx");
    head.layout = HeadLayout::kNchw;
    head.frames = 4;
    head.height = 6;
    head.width = 10;
    head.mean = {0, 0, 0};
    head.std = {1, 1, 1};
    head.labels = {"c0", "c2"};
    head.activation = HeadActivation::kNone;
    options.heads.push_back(head);
    return options;
  }

  std::string clean_;
  std::string letterboxed_;
};

TEST_F(CroppedHeadsTest, EveryHeadAnswersTheLetterboxedClipAsTheCleanOne) {
  auto filter = VideoFilter::Create(Options());
  ASSERT_TRUE(filter.ok()) << filter.status().ToString();
  const FilterReport clean = (*filter)->Run(clean_);
  const FilterReport boxed = (*filter)->Run(letterboxed_);
  ASSERT_TRUE(clean.status.ok()) << clean.status.ToString();
  ASSERT_TRUE(boxed.status.ok()) << boxed.status.ToString();
  EXPECT_FALSE(clean.info["abnormal_region_crop"]["cropped"].get<bool>());
  ASSERT_EQ(boxed.info["abnormal_region_crop"]["box"], nlohmann::json({0, 30, 320, 180}))
      << boxed.info["abnormal_region_crop"].dump();

  // The configured head's raw outputs. Bars would darken both means by a quarter if the head
  // saw them; what is left is rounding in ffmpeg's RGB-to-YUV conversion of the two clips.
  for (const char* label : {"c0", "c2"}) {
    EXPECT_NEAR(boxed.info["plane_means"]["result"][label].get<double>(),
                clean.info["plane_means"]["result"][label].get<double>(), 5e-3)
        << label;
  }
  // The built-in heads: the same label and the same probability.
  for (const char* head : {"vfx_filter", "simcam_filter", "rotate_vertical_filter"}) {
    ASSERT_TRUE(clean.info.contains(head) && boxed.info.contains(head)) << head;
    EXPECT_EQ(boxed.info[head]["label"], clean.info[head]["label"]) << head;
    EXPECT_NEAR(boxed.info[head]["prob"].get<double>(), clean.info[head]["prob"].get<double>(),
                1e-3)
        << head << ": " << boxed.info[head].dump() << " vs " << clean.info[head].dump();
  }
  // low_quality_filter: the same label and the same picture scores. Its resolution cue is the
  // displayed frame's short side (video_meta), not the crop's, so its probability moves a little
  // with the bars (240 against 180 here).
  const nlohmann::json& lq_clean = clean.info["low_quality_filter"];
  const nlohmann::json& lq_boxed = boxed.info["low_quality_filter"];
  EXPECT_EQ(lq_boxed["label"], lq_clean["label"]);
  for (const char* score :
       {"blockiness", "blur_px", "sharpness", "noise", "exposure", "mean_luma"}) {
    const double a = lq_boxed["scores"][score].get<double>();
    const double b = lq_clean["scores"][score].get<double>();
    EXPECT_NEAR(a, b, 0.02 * std::max(std::abs(b), 1e-3)) << score;
  }
  // Windows read the cropped frames too.
  EXPECT_EQ(boxed.info["seg_simcam_filter"]["0"]["simcam_filter"]["label"],
            clean.info["seg_simcam_filter"]["0"]["simcam_filter"]["label"]);
}

}  // namespace
}  // namespace vsieve::models
