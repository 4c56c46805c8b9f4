#include "daemon/pipeline/stage_csv.h"

#include <gtest/gtest.h>

#include "tests/support/test_env.h"

namespace vsieve::daemon {
namespace {

TEST(StageCsvTest, HeaderKeepsSeed004ColumnsFirst) {
  const std::string header = StageCsvWriter::Header();
  EXPECT_EQ(header.rfind("step,read_latency_ms,prep_latency_ms,exec_latency_ms,"
                         "total_step_latency_ms,loss,",
                         0),
            0u)
      << header;
  EXPECT_NE(header.find(",video_id,device,worker,cpus,succeed,error_code,fetch_ms,decode_ms,"
                        "regions_ms,heads_ms,write_ms"),
            std::string::npos);
}

TEST(StageCsvTest, LineMapsStagesToReadPrepExec) {
  StageRecord record;
  record.video_id = "v1";
  record.device = "cpu:0";
  record.worker = 1;
  record.cpus = {2, 3};
  record.succeeded = true;
  record.stage_ms = {
      {"fetch", 1.5}, {"decode", 20.25}, {"regions", 30}, {"heads", 40.125}, {"write", 0.5}};
  EXPECT_EQ(StageCsvWriter::Line(3, record),
            "3,21.750,30.000,40.125,91.875,,v1,cpu:0,1,2-3,true,,1.500,20.250,30.000,40.125,"
            "0.500");
}

TEST(StageCsvTest, FailedRowLeavesStagesItNeverReachedEmpty) {
  StageRecord record;
  record.video_id = "has,comma \"and quotes\"";
  record.device = "cpu:0";
  record.succeeded = false;
  record.error_code = "CONTAINER_UNRECOGNIZED";
  record.stage_ms = {{"fetch", 2}, {"decode", 3}, {"write", 1}};
  EXPECT_EQ(StageCsvWriter::Line(1, record),
            "1,5.000,0.000,0.000,5.000,,\"has,comma \"\"and quotes\"\"\",cpu:0,,,false,"
            "CONTAINER_UNRECOGNIZED,2.000,3.000,,,1.000");
}

TEST(StageCsvTest, WriterNumbersStepsAndBadPathIsAnError) {
  testing::TempDir dir;
  auto writer = StageCsvWriter::Open(dir.File("s.csv"));
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  StageRecord record;
  record.video_id = "a";
  (*writer)->Append(record);
  record.video_id = "b";
  (*writer)->Append(record);
  ASSERT_TRUE((*writer)->Close().ok());
  (*writer)->Append(record);  // after Close: ignored
  const std::string text = testing::ReadFile(dir.File("s.csv"));
  EXPECT_EQ(text, StageCsvWriter::Header() + "\n" + StageCsvWriter::Line(1, {.video_id = "a"}) +
                      "\n" + StageCsvWriter::Line(2, {.video_id = "b"}) + "\n");

  auto bad = StageCsvWriter::Open("/nonexistent-dir/s.csv");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("/nonexistent-dir/s.csv"), std::string::npos);
}

}  // namespace
}  // namespace vsieve::daemon
