// kill -9 of `vsieve run` while it encodes a cropped video and while it uploads one: nothing is
// stored half-written, the row is not committed, and after a restart it finishes once.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "storage/table_store.h"
#include "tests/daemon/daemon_process.h"
#include "tests/storage/fault_server.h"
#include "tests/support/test_env.h"

namespace vsieve::testing {
namespace {

using namespace std::chrono_literals;

bool AnyPartFile(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".part") return true;
  }
  return false;
}

int Puts(const FaultServer& faults) {
  int puts = 0;
  for (const auto& request : faults.Requests("/crops/v/letterboxed.mp4")) {
    puts += request.method == "PUT" ? 1 : 0;
  }
  return puts;
}

TEST(CropOutputKillTest, KillNineDuringEncodeAndUploadStoresNothingAndFinishesOnce) {
  VSIEVE_REQUIRE_FFMPEG();
  TempDir dir;
  // 12 s of 640x480 with 60 px bars top and bottom: the encode takes a while.
  ASSERT_TRUE(
      Ffmpeg({"-f", "lavfi", "-i", "testsrc2=size=1408x1000:rate=25,crop=640:360:x='t*40':y=300",
              "-t", "12", "-vf", "pad=640:480:0:60", "-c:v", "libx264", "-preset", "ultrafast",
              "-pix_fmt", "yuv420p", dir.File("letterboxed.mp4")}));
  FaultServer faults;
  const std::string credentials = dir.File("credentials");
  ASSERT_TRUE(
      WriteFile(credentials, "[default]\naws_access_key_id = k\naws_secret_access_key = s\n"));
  const std::string temp = dir.File("output-tmp");
  const std::string config = dir.File("vsieve.toml");
  ASSERT_TRUE(WriteFile(config, "[[tiers]]\nkind = \"local\"\nroot = \"" + dir.path() +
                                    "\"\n[[tiers]]\nkind = \"s3\"\nendpoint = \"" + faults.Url() +
                                    "\"\ncredentials = \"" + credentials +
                                    "\"\nlow_speed_seconds = 60\n[cache]\ndir = \"" +
                                    dir.File("cache") + "\"\n[output]\nurl = \"s3://crops/v/\"\n" +
                                    "temp_dir = \"" + temp + "\"\n"));
  const std::string url = "sqlite://" + dir.File("vsieve.db");
  {
    auto store = storage::TableStore::Open(url);
    ASSERT_TRUE(store.ok());
    storage::InputRow row;
    row.video_id = "letterboxed";
    row.video_path = "letterboxed.mp4";
    ASSERT_TRUE((*store)->Import({row}).ok());
  }
  const std::vector<std::string> args = {
      "run",  "--config",        config, "--store",        url,  "--no-text",   "--log-level",
      "info", "--lease-seconds", "5",    "--max-attempts", "10", "--until-idle"};
  const auto row_state = [&] {
    auto store = storage::TableStore::Open(url);
    storage::RowState state = storage::RowState::kPending;
    int rows = 0;
    EXPECT_TRUE((*store)
                    ->ForEachRow("", std::nullopt,
                                 [&](const storage::RowRecord& record) {
                                   ++rows;
                                   state = record.state;
                                 })
                    .ok());
    EXPECT_EQ(rows, 1);
    return state;
  };

  // 1. Killed while encoding: the temporary file exists, nothing was sent.
  {
    DaemonProcess daemon(args, dir.File("run1.log"));
    ASSERT_TRUE(daemon.started());
    const auto end = std::chrono::steady_clock::now() + 120s;
    while (!AnyPartFile(temp) && std::chrono::steady_clock::now() < end &&
           daemon.Wait(20ms) == -1) {
    }
    ASSERT_TRUE(AnyPartFile(temp)) << ReadFile(dir.File("run1.log")).substr(0, 4000);
    daemon.Signal(SIGKILL);
    daemon.Wait(10s);
  }
  EXPECT_EQ(Puts(faults), 0);
  EXPECT_EQ(row_state(), storage::RowState::kRunning);

  // 2. Killed while the upload waits for the store's answer.
  FaultResponse stalled = FaultResponse::Plain(200, "late");
  stalled.stall_after_headers_seconds = 120;
  faults.Script("/crops/v/letterboxed.mp4", {stalled, FaultResponse::Plain(200)});
  {
    DaemonProcess daemon(args, dir.File("run2.log"));
    ASSERT_TRUE(daemon.started());
    const auto end = std::chrono::steady_clock::now() + 120s;
    while (Puts(faults) == 0 && std::chrono::steady_clock::now() < end && daemon.Wait(20ms) == -1) {
    }
    ASSERT_EQ(Puts(faults), 1) << ReadFile(dir.File("run2.log")).substr(0, 4000);
    std::this_thread::sleep_for(200ms);
    daemon.Signal(SIGKILL);
    daemon.Wait(10s);
  }
  EXPECT_EQ(row_state(), storage::RowState::kRunning);  // not committed

  // 3. A restart reclaims the row, encodes again, stores it and commits once.
  {
    DaemonProcess daemon(args, dir.File("run3.log"));
    ASSERT_TRUE(daemon.started());
    ASSERT_EQ(daemon.Wait(180s), 0) << ReadFile(dir.File("run3.log")).substr(0, 4000);
  }
  EXPECT_EQ(row_state(), storage::RowState::kDone);
  ASSERT_EQ(Puts(faults), 2);
  const RecordedRequest last = faults.Requests("/crops/v/letterboxed.mp4").back();
  EXPECT_EQ(last.body.substr(4, 4), "ftyp");  // a whole MP4, index first
  EXPECT_FALSE(AnyPartFile(temp));            // the killed encode's file was removed at restart
  auto store = storage::TableStore::Open(url);
  int results = 0;
  ASSERT_TRUE((*store)
                  ->ForEachRow("", std::nullopt,
                               [&](const storage::RowRecord& record) {
                                 ASSERT_TRUE(record.result_json.has_value());
                                 const auto row = nlohmann::json::parse(*record.result_json);
                                 EXPECT_EQ(row["info"]["abnormal_region_crop"]["video_oss_url"],
                                           "s3://crops/v/letterboxed.mp4");
                                 EXPECT_EQ(row["result_info"]["attempts"], 3);
                                 ++results;
                               })
                  .ok());
  EXPECT_EQ(results, 1);
}

}  // namespace
}  // namespace vsieve::testing
