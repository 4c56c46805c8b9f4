#include "common/metrics.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/test_env.h"

namespace vsieve::common {
namespace {

TEST(MetricsRegistryTest, RendersCountersGaugesAndHelpSortedByName) {
  MetricsRegistry registry;
  registry.GetCounter("vsieve_videos_total", "Videos finished.", {{"outcome", "done"}}).Inc(3);
  registry.GetGauge("vsieve_queue_depth", "Items waiting.", {{"queue", "fetch"}}).Set(7);
  EXPECT_EQ(registry.Render(),
            "# HELP vsieve_queue_depth Items waiting.\n"
            "# TYPE vsieve_queue_depth gauge\n"
            "vsieve_queue_depth{queue=\"fetch\"} 7\n"
            "# HELP vsieve_videos_total Videos finished.\n"
            "# TYPE vsieve_videos_total counter\n"
            "vsieve_videos_total{outcome=\"done\"} 3\n");
}

TEST(MetricsRegistryTest, SameLabelsInAnyOrderAreOneSeries) {
  MetricsRegistry registry;
  registry.GetCounter("vsieve_x_total", "x", {{"b", "2"}, {"a", "1"}}).Inc();
  registry.GetCounter("vsieve_x_total", "x", {{"a", "1"}, {"b", "2"}}).Inc();
  EXPECT_NE(registry.Render().find("vsieve_x_total{a=\"1\",b=\"2\"} 2\n"), std::string::npos);
}

TEST(MetricsRegistryTest, HistogramBucketsAreCumulativeWithSumAndCount) {
  MetricsRegistry registry;
  Histogram& h = registry.GetHistogram("vsieve_stage_duration_seconds", "Stage time.", {0.1, 1},
                                       {{"stage", "decode"}});
  h.Observe(0.05);
  h.Observe(0.1);  // on a bound: counted in that bucket (le = less or equal)
  h.Observe(0.5);
  h.Observe(5);
  const std::string text = registry.Render();
  EXPECT_NE(text.find("vsieve_stage_duration_seconds_bucket{le=\"0.1\",stage=\"decode\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("vsieve_stage_duration_seconds_bucket{le=\"1\",stage=\"decode\"} 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("vsieve_stage_duration_seconds_bucket{le=\"+Inf\",stage=\"decode\"} 4\n"),
            std::string::npos);
  EXPECT_NE(text.find("vsieve_stage_duration_seconds_sum{stage=\"decode\"} 5.65\n"),
            std::string::npos);
  EXPECT_NE(text.find("vsieve_stage_duration_seconds_count{stage=\"decode\"} 4\n"),
            std::string::npos);
}

TEST(MetricsRegistryTest, EscapesLabelValues) {
  EXPECT_EQ(FormatLabels({{"path", "a\"b\\c\nd"}}), "{path=\"a\\\"b\\\\c\\nd\"}");
}

TEST(MetricsRegistryTest, CollectorsReportLiveValuesUntilRemoved) {
  MetricsRegistry registry;
  int depth = 4;
  const int id = registry.AddCollector("vsieve_rows", "Rows by state.", "gauge", [&] {
    return std::vector<Sample>{{{{"state", "pending"}}, static_cast<double>(depth)}};
  });
  EXPECT_NE(registry.Render().find("vsieve_rows{state=\"pending\"} 4\n"), std::string::npos);
  depth = 9;
  EXPECT_NE(registry.Render().find("vsieve_rows{state=\"pending\"} 9\n"), std::string::npos);
  registry.RemoveCollector(id);
  EXPECT_EQ(registry.Render().find("vsieve_rows"), std::string::npos);
}

TEST(MetricsRegistryTest, CountsFromManyThreadsAddUp) {
  MetricsRegistry registry;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        registry.GetCounter("vsieve_n_total", "n").Inc();
        registry.GetHistogram("vsieve_d_seconds", "d", DurationBuckets()).Observe(0.01);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(registry.GetCounter("vsieve_n_total", "n").value(), 80000);
  EXPECT_EQ(registry.GetHistogram("vsieve_d_seconds", "d", DurationBuckets()).Take().count, 80000u);
}

TEST(MetricsRegistryTest, PassesPromtoolCheckMetrics) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "promtool not installed (Debian package prometheus)";
  }
  MetricsRegistry registry;
  registry
      .GetCounter("vsieve_videos_processed_total", "Videos finished, by outcome.",
                  {{"outcome", "failed"}, {"code", "TIMEOUT"}})
      .Inc();
  registry.GetGauge("vsieve_queue_depth_items", "Items waiting.", {{"queue", "decode"}}).Set(2);
  registry
      .GetHistogram("vsieve_stage_duration_seconds", "Stage time.", DurationBuckets(),
                    {{"stage", "fetch"}})
      .Observe(0.2);
  testing::TempDir dir;
  const std::string file = dir.path() + "/metrics.prom";
  testing::WriteFile(file, registry.Render());
  std::string out, err;
  const int rc = testing::RunCommand({"sh", "-c", "promtool check metrics < " + file}, &out, &err);
  EXPECT_EQ(rc, 0) << out << err;
  EXPECT_EQ(out + err, "");
}

}  // namespace
}  // namespace vsieve::common
