#include <gtest/gtest.h>

#include <vector>

#include "models/filter/video_filter.h"
#include "models/regions/safe_crop.h"

namespace vsieve::models {
namespace {

Region Text(const cv::Rect& box) {
  Region r;
  r.kind = RegionKind::kText;
  r.box = box;
  r.label = "caption";
  return r;
}

// A title card: lines of text across the middle of a 480x352 frame. Avoiding the lowest one
// alone keeps the top 151 rows, 43 % of the frame: the crop must not cut through the title.
TEST(RelaxCentralTextTest, TitleAcrossTheMiddleStopsShapingACropOfLessThanHalf) {
  const cv::Size frame(480, 352);
  std::vector<Region> regions = {Text(cv::Rect(96, 151, 283, 66))};
  const cv::Rect crop(0, 0, 480, 151);
  ASSERT_LT(crop.area(), frame.area() / 2);
  EXPECT_TRUE(RelaxCentralText(frame, crop, &regions));
  EXPECT_FALSE(regions[0].avoid);
  EXPECT_EQ(SafeCrop(frame, regions, CropOptions{}), cv::Rect(cv::Point(0, 0), frame));
}

TEST(RelaxCentralTextTest, SubtitlesAndCropsOfHalfOrMoreStay) {
  const cv::Size frame(640, 360);
  // A subtitle in the bottom band: not central, whatever the crop keeps.
  std::vector<Region> bottom = {Text(cv::Rect(160, 300, 320, 40))};
  EXPECT_FALSE(RelaxCentralText(frame, cv::Rect(0, 0, 640, 100), &bottom));
  EXPECT_TRUE(bottom[0].avoid);
  // Central text, but the crop keeps more than half of the frame.
  std::vector<Region> central = {Text(cv::Rect(0, 150, 200, 40))};
  EXPECT_FALSE(RelaxCentralText(frame, cv::Rect(200, 0, 440, 360), &central));
  EXPECT_TRUE(central[0].avoid);
  // Not text: a logo in the middle keeps shaping the crop.
  Region logo = Text(cv::Rect(280, 150, 80, 60));
  logo.kind = RegionKind::kWatermark;
  logo.label = "logo";
  std::vector<Region> marks = {logo};
  EXPECT_FALSE(RelaxCentralText(frame, cv::Rect(0, 0, 280, 360), &marks));
  EXPECT_TRUE(marks[0].avoid);
}

}  // namespace
}  // namespace vsieve::models
