#include "daemon/tables/result_row.h"

#include <gtest/gtest.h>

namespace vsieve::daemon {
namespace {

TEST(ResultRowTest, SuccessRowFollowsTheSchema) {
  InputRow input{"v1", "bucket", "videos/v1.mp4", "tag", nlohmann::json::object()};
  RowOutcome outcome;
  outcome.start_time = std::chrono::system_clock::time_point(std::chrono::milliseconds(1000));
  outcome.end_time = std::chrono::system_clock::time_point(std::chrono::milliseconds(3500));
  outcome.stage_ms = {{"decode", 12.4}, {"heads", 7.6}};
  outcome.source_tier = "local";
  outcome.info = {{"video_meta", {{"width", 64}}}};
  const nlohmann::json row = BuildOutputRow(input, outcome);
  EXPECT_EQ(row["video_id"], "v1");
  EXPECT_EQ(row["oss_bucket"], "bucket");
  EXPECT_EQ(row["video_oss_url"], "videos/v1.mp4");
  EXPECT_EQ(row["video_tag"], "tag");
  EXPECT_EQ(row["info"]["video_meta"]["width"], 64);
  const auto& ri = row["result_info"];
  EXPECT_EQ(ri["succeed"], "true");
  EXPECT_EQ(ri["start_time"], "1970-01-01T00:00:01.000Z");
  EXPECT_EQ(ri["end_time"], "1970-01-01T00:00:03.500Z");
  EXPECT_DOUBLE_EQ(ri["avg_cost"].get<double>(), 2.5);
  EXPECT_EQ(ri["stage_ms"]["decode"], 12);
  EXPECT_EQ(ri["stage_ms"]["heads"], 8);
  EXPECT_EQ(ri["source_tier"], "local");
  EXPECT_EQ(ri["device_name"], "cpu:0");
  EXPECT_FALSE(ri.contains("error"));
  EXPECT_FALSE(ri.contains("tier_errors"));  // only when a tier failed
}

TEST(ResultRowTest, TierErrorsOfTheTiersThatFellThroughAreRecorded) {
  RowOutcome outcome;
  outcome.source_tier = "object";
  outcome.tier_errors = {{"alluxio", "OBJECT_FORBIDDEN", "GET ...: status 403"}};
  const nlohmann::json row = BuildOutputRow(InputRow{"v3"}, outcome);
  const auto& errors = row["result_info"]["tier_errors"];
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0]["tier"], "alluxio");
  EXPECT_EQ(errors[0]["code"], "OBJECT_FORBIDDEN");
  EXPECT_EQ(errors[0]["message"], "GET ...: status 403");
  EXPECT_EQ(row["result_info"]["succeed"], "true");
}

TEST(ResultRowTest, FailedRowCarriesCodeStageAndMessage) {
  RowOutcome outcome;
  outcome.status =
      common::Status(common::ErrorCode::kTruncated, "file ends early").WithStage("decode");
  const nlohmann::json row = BuildOutputRow(InputRow{"v2"}, outcome);
  const auto& ri = row["result_info"];
  EXPECT_EQ(ri["succeed"], "false");
  EXPECT_EQ(ri["error"]["code"], "TRUNCATED");
  EXPECT_EQ(ri["error"]["stage"], "decode");
  EXPECT_EQ(ri["error"]["message"], "file ends early");
}

}  // namespace
}  // namespace vsieve::daemon
