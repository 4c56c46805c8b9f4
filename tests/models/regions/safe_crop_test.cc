#include "models/regions/safe_crop.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <opencv2/imgproc.hpp>
#include <vector>

namespace vsieve::models {
namespace {

Region Avoid(const cv::Rect& box) { return Region{RegionKind::kText, box, 1.0F, "subtitle", true}; }

TEST(SafeCropTest, WholeFrameWhenNothingIsAvoided) {
  EXPECT_EQ(SafeCrop(cv::Size(640, 360), {}), cv::Rect(0, 0, 640, 360));
  const Region object{RegionKind::kObject, cv::Rect(100, 100, 200, 200), 0.9F, "person", false};
  EXPECT_EQ(SafeCrop(cv::Size(640, 360), {object}), cv::Rect(0, 0, 640, 360));
}

TEST(SafeCropTest, LetterboxLeavesThePicture) {
  const std::vector<Region> bars{Avoid(cv::Rect(0, 0, 640, 60)), Avoid(cv::Rect(0, 300, 640, 60))};
  EXPECT_EQ(SafeCrop(cv::Size(640, 360), bars), cv::Rect(0, 60, 640, 240));
}

TEST(SafeCropTest, SubtitleAndLogo) {
  // Subtitle across the bottom middle, logo top right.
  const std::vector<Region> regions{Avoid(cv::Rect(100, 300, 440, 40)),
                                    Avoid(cv::Rect(560, 10, 70, 50))};
  const cv::Rect crop = SafeCrop(cv::Size(640, 360), regions);
  EXPECT_EQ(crop, cv::Rect(0, 0, 560, 300));
  for (const Region& r : regions) EXPECT_TRUE((crop & r.box).empty());
}

TEST(SafeCropTest, RegionsOutsideTheFrameAreClipped) {
  const std::vector<Region> regions{Avoid(cv::Rect(-50, -50, 100, 460))};
  EXPECT_EQ(SafeCrop(cv::Size(640, 360), regions), cv::Rect(50, 0, 590, 360));
}

TEST(SafeCropTest, EmptyWhenEverythingIsAvoided) {
  EXPECT_TRUE(SafeCrop(cv::Size(640, 360), {Avoid(cv::Rect(0, 0, 640, 360))}).empty());
  EXPECT_TRUE(SafeCrop(cv::Size(0, 0), {}).empty());
}

TEST(SafeCropTest, KeepsAspect) {
  // Free area is 640x240 (letterbox); the largest 1:1 square is 240x240, centred.
  const std::vector<Region> bars{Avoid(cv::Rect(0, 0, 640, 60)), Avoid(cv::Rect(0, 300, 640, 60))};
  CropOptions options;
  options.aspect = 1.0;
  const cv::Rect crop = SafeCrop(cv::Size(640, 360), bars, options);
  EXPECT_EQ(crop.width, 240);
  EXPECT_EQ(crop.height, 240);
  EXPECT_EQ(crop.y, 60);
  EXPECT_EQ(crop.x, 200);
  // With nothing avoided, 16:9 in a 4:3 frame.
  options.aspect = 16.0 / 9.0;
  EXPECT_EQ(SafeCrop(cv::Size(640, 480), {}, options), cv::Rect(0, 60, 640, 360));
}

TEST(SafeCropTest, AspectPicksTheBestShapedHole) {
  // A tall free strip on the left (100x360) and a wide one at the bottom (640x100): a 16:9 crop
  // fits best in the wide one.
  const std::vector<Region> regions{Avoid(cv::Rect(100, 0, 540, 260))};
  CropOptions options;
  options.aspect = 16.0 / 9.0;
  const cv::Rect crop = SafeCrop(cv::Size(640, 360), regions, options);
  EXPECT_EQ(crop.height, 100);
  EXPECT_EQ(crop.y, 260);
  EXPECT_NEAR(crop.width, 177, 1);
}

TEST(SafeCropTest, MatchesBruteForceOnRandomBoxes) {
  cv::RNG rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    const cv::Size size(64, 48);
    std::vector<Region> regions;
    cv::Mat blocked = cv::Mat::zeros(size, CV_8U);
    const int count = rng.uniform(1, 6);
    for (int i = 0; i < count; ++i) {
      const cv::Rect box(rng.uniform(0, 60), rng.uniform(0, 44), rng.uniform(1, 20),
                         rng.uniform(1, 20));
      regions.push_back(Avoid(box));
      blocked(box & cv::Rect(cv::Point(0, 0), size)).setTo(1);
    }
    // Brute force: the largest all-free rectangle by area.
    cv::Mat integral;
    cv::integral(blocked, integral, CV_32S);
    int best = 0;
    for (int y0 = 0; y0 < size.height; ++y0) {
      for (int y1 = y0 + 1; y1 <= size.height; ++y1) {
        for (int x0 = 0; x0 < size.width; ++x0) {
          for (int x1 = x0 + 1; x1 <= size.width; ++x1) {
            const int sum = integral.at<int>(y1, x1) - integral.at<int>(y0, x1) -
                            integral.at<int>(y1, x0) + integral.at<int>(y0, x0);
            if (sum > 0) break;
            best = std::max(best, (x1 - x0) * (y1 - y0));
          }
        }
      }
    }
    const cv::Rect crop = SafeCrop(size, regions);
    EXPECT_EQ(crop.area(), best) << "trial " << trial;
    EXPECT_EQ(cv::countNonZero(blocked(crop)), 0) << "trial " << trial;
  }
}

TEST(SafeCropTest, CostDoesNotDependOnFrameSize) {
  // An 8K frame with a few boxes returns at once (the grid is cut by box edges).
  const std::vector<Region> regions{Avoid(cv::Rect(0, 0, 7680, 200)),
                                    Avoid(cv::Rect(7000, 300, 400, 300))};
  EXPECT_EQ(SafeCrop(cv::Size(7680, 4320), regions), cv::Rect(0, 200, 7000, 4120));
}

}  // namespace
}  // namespace vsieve::models
