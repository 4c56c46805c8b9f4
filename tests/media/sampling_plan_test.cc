#include "media/sampling_plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

namespace vsieve::media {
namespace {

VideoMeta MetaOf(double duration_s, double fps = 30.0) {
  VideoMeta meta;
  meta.duration_s = duration_s;
  meta.fps = fps;
  meta.frame_count = static_cast<int64_t>(duration_s * fps);
  return meta;
}

void ExpectSortedDistinctInside(const SamplingPlan& plan, double duration_s) {
  ASSERT_FALSE(plan.times_s.empty());
  for (size_t i = 0; i < plan.times_s.size(); ++i) {
    EXPECT_GE(plan.times_s[i], 0.0);
    EXPECT_LT(plan.times_s[i], duration_s);
    if (i > 0) {
      EXPECT_GT(plan.times_s[i], plan.times_s[i - 1]);
    }
  }
}

TEST(SamplingPlanTest, EightSecondsGiveTwoWindows) {
  const SamplingPlan plan = BuildSamplingPlan(MetaOf(8.0), SamplingOptions{});
  ASSERT_EQ(plan.windows.size(), 2u);
  EXPECT_DOUBLE_EQ(plan.windows[0].start_s, 0.0);
  EXPECT_DOUBLE_EQ(plan.windows[0].end_s, 4.0);
  EXPECT_DOUBLE_EQ(plan.windows[1].start_s, 3.0);
  EXPECT_DOUBLE_EQ(plan.windows[1].end_s, 7.0);
  ExpectSortedDistinctInside(plan, 8.0);
}

TEST(SamplingPlanTest, TenSecondsGiveThreeWindows) {
  const SamplingPlan plan = BuildSamplingPlan(MetaOf(10.0), SamplingOptions{});
  ASSERT_EQ(plan.windows.size(), 3u);
  EXPECT_DOUBLE_EQ(plan.windows[2].start_s, 6.0);
  EXPECT_DOUBLE_EQ(plan.windows[2].end_s, 10.0);
  ExpectSortedDistinctInside(plan, 10.0);
}

TEST(SamplingPlanTest, EveryWindowHasItsFrames) {
  const SamplingOptions options;
  const SamplingPlan plan = BuildSamplingPlan(MetaOf(10.0), options);
  for (const auto& window : plan.windows) {
    int inside = 0;
    for (double t : plan.times_s) inside += (t >= window.start_s && t < window.end_s) ? 1 : 0;
    EXPECT_GE(inside, options.window_frames) << window.start_s;
  }
}

TEST(SamplingPlanTest, MaxFramesCapIsRespected) {
  SamplingOptions options;
  options.max_frames = 20;
  const SamplingPlan plan = BuildSamplingPlan(MetaOf(3600.0), options);
  EXPECT_LE(plan.times_s.size(), 20u);
  ExpectSortedDistinctInside(plan, 3600.0);

  const SamplingPlan default_cap = BuildSamplingPlan(MetaOf(3600.0), SamplingOptions{});
  EXPECT_LE(default_cap.times_s.size(), 160u);
  ExpectSortedDistinctInside(default_cap, 3600.0);
}

TEST(SamplingPlanTest, ShortClipGetsOneWindow) {
  const SamplingPlan plan = BuildSamplingPlan(MetaOf(2.0), SamplingOptions{});
  ASSERT_EQ(plan.windows.size(), 1u);
  EXPECT_DOUBLE_EQ(plan.windows[0].start_s, 0.0);
  EXPECT_DOUBLE_EQ(plan.windows[0].end_s, 2.0);
  ExpectSortedDistinctInside(plan, 2.0);
}

TEST(SamplingPlanTest, TimesCloserThanHalfAFrameAreMerged) {
  const SamplingPlan plan = BuildSamplingPlan(MetaOf(1.0 / 30.0), SamplingOptions{});
  ExpectSortedDistinctInside(plan, 1.0 / 30.0);
  for (size_t i = 1; i < plan.times_s.size(); ++i) {
    EXPECT_GE(plan.times_s[i] - plan.times_s[i - 1], 0.5 / 30.0 - 1e-12);
  }
}

TEST(SamplingPlanTest, UnknownDurationPlansTheFirstFrame) {
  const SamplingPlan plan = BuildSamplingPlan(MetaOf(0.0, 0.0), SamplingOptions{});
  ASSERT_EQ(plan.times_s.size(), 1u);
  EXPECT_DOUBLE_EQ(plan.times_s[0], 0.0);
}

TEST(SamplingPlanTest, BurstsPlanNeighbouringFrames) {
  SamplingOptions options;
  options.bursts = 3;
  options.burst_length = 3;
  const SamplingPlan plan = BuildSamplingPlan(MetaOf(9.0, 25.0), options);
  // Each burst starts at the centre of a third of the clip and takes the next two frames.
  for (const double start : {1.5, 4.5, 7.5}) {
    for (int j = 0; j < 3; ++j) {
      const double want = start + j / 25.0;
      const bool found = std::any_of(plan.times_s.begin(), plan.times_s.end(),
                                     [&](double t) { return std::abs(t - want) < 1e-9; });
      EXPECT_TRUE(found) << "no planned time at " << want;
    }
  }
  // Without a frame rate there are no neighbours to plan.
  VideoMeta no_fps = MetaOf(9.0, 25.0);
  no_fps.fps = 0.0;
  options.window_s = 100.0;  // no windows either: only region, clip and burst frames matter
  const SamplingPlan sparse = BuildSamplingPlan(no_fps, options);
  for (size_t i = 1; i < sparse.times_s.size(); ++i) {
    EXPECT_GT(sparse.times_s[i] - sparse.times_s[i - 1], 0.1);
  }
}

TEST(SamplingPlanTest, OnlyTheCentresForRegionsAndClipAreFull) {
  SamplingOptions options;
  options.region_frames = 8;
  options.clip_frames = 16;
  const SamplingPlan plan = BuildSamplingPlan(MetaOf(32.0), options);
  ASSERT_EQ(plan.full.size(), plan.times_s.size());
  std::vector<double> full;
  for (size_t i = 0; i < plan.times_s.size(); ++i) {
    if (plan.full[i]) full.push_back(plan.times_s[i]);
  }
  // The centres of 16 bins of 2 s; the windows and bursts are thin.
  ASSERT_EQ(full.size(), 16u);
  for (size_t k = 0; k < full.size(); ++k) EXPECT_NEAR(full[k], 1.0 + 2.0 * k, 1e-9);
  EXPECT_GT(plan.times_s.size(), 3 * full.size());

  // More region frames than clip frames: the region count sets the full frames.
  options.region_frames = 20;
  const SamplingPlan more = BuildSamplingPlan(MetaOf(32.0), options);
  EXPECT_EQ(std::count(more.full.begin(), more.full.end(), true), 20);

  // A thin time merged with a full one (closer than half a frame) is read in full.
  options.region_frames = 1;
  options.clip_frames = 1;
  options.bursts = 1;
  options.burst_length = 2;  // the burst starts at the clip's centre too
  const SamplingPlan merged = BuildSamplingPlan(MetaOf(8.0), options);
  const auto centre = std::find_if(merged.times_s.begin(), merged.times_s.end(),
                                   [](double t) { return std::abs(t - 4.0) < 1e-9; });
  ASSERT_NE(centre, merged.times_s.end());
  EXPECT_TRUE(merged.full[static_cast<size_t>(centre - merged.times_s.begin())]);
  EXPECT_EQ(std::count(merged.full.begin(), merged.full.end(), true), 1);
}

TEST(SamplingPlanTest, Deterministic) {
  const SamplingPlan a = BuildSamplingPlan(MetaOf(37.5, 25.0), SamplingOptions{});
  const SamplingPlan b = BuildSamplingPlan(MetaOf(37.5, 25.0), SamplingOptions{});
  EXPECT_EQ(a.times_s, b.times_s);
  EXPECT_EQ(a.full, b.full);
}

}  // namespace
}  // namespace vsieve::media
