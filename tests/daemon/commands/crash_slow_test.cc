#include <gtest/gtest.h>
#include <signal.h>

#include <random>
#include <set>
#include <thread>

#include "storage/table_store.h"
#include "tests/daemon/daemon_process.h"
#include "tests/support/test_env.h"

namespace vsieve::testing {
namespace {

using namespace std::chrono_literals;

// R-CRASH-1 on one daemon: `vsieve run` killed with SIGKILL at random moments and restarted
// (same owner id, from the state file next to the database) until idle. At the end every input
// row has exactly one result, none is running, and the database passes integrity_check.
TEST(CrashSlowTest, KillNineStormLosesAndDuplicatesNothing) {
  VSIEVE_REQUIRE_FFMPEG();
  TempDir dir;
  const std::vector<std::string> paths = MakeTinyClips(dir.path(), 300);
  ASSERT_EQ(paths.size(), 300U);
  const std::string db = dir.File("vsieve.db");
  const std::string url = "sqlite://" + db;
  {
    auto store = storage::TableStore::Open(url);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    std::vector<storage::InputRow> rows;
    for (std::size_t i = 0; i < paths.size(); ++i) {
      storage::InputRow row;
      row.video_id = "id" + std::to_string(i);
      row.video_path = paths[i];
      rows.push_back(row);
    }
    ASSERT_TRUE((*store)->Import(rows).ok());
  }
  const std::vector<std::string> args = {
      "run", "--store",         url, "--no-text",      "--log-level", "info",        "--workers",
      "2",   "--lease-seconds", "5", "--max-attempts", "100",         "--until-idle"};
  std::mt19937 random(20261125);
  std::uniform_int_distribution<int> delay_ms(100, 900);
  int kills = 0;
  bool finished = false;
  for (int run = 0; run < 200 && !finished; ++run) {
    DaemonProcess daemon(args, dir.File("run.log"));
    ASSERT_TRUE(daemon.started());
    if (kills < 25) {
      const int code = daemon.Wait(std::chrono::milliseconds(delay_ms(random)));
      if (code == -1) {
        daemon.Signal(SIGKILL);
        daemon.Wait(10s);
        ++kills;
        continue;
      }
      ASSERT_EQ(code, 0) << ReadFile(dir.File("run.log")).substr(0, 4000);
      finished = true;
    } else {
      ASSERT_EQ(daemon.Wait(120s), 0) << ReadFile(dir.File("run.log")).substr(0, 4000);
      finished = true;
    }
  }
  ASSERT_TRUE(finished);
  EXPECT_GE(kills, 20);

  auto store = storage::TableStore::Open(url);
  ASSERT_TRUE(store.ok());
  std::set<std::string> seen;
  int rows = 0;
  ASSERT_TRUE((*store)
                  ->ForEachRow("", std::nullopt,
                               [&](const storage::RowRecord& record) {
                                 ++rows;
                                 seen.insert(record.row.video_id);
                                 EXPECT_EQ(record.state, storage::RowState::kDone)
                                     << record.row.video_id;
                                 EXPECT_TRUE(record.result_json.has_value());
                               })
                  .ok());
  EXPECT_EQ(rows, 300);
  EXPECT_EQ(seen.size(), 300U);
  std::string out;
  std::string err;
  ASSERT_EQ(RunCommand({"sqlite3", db, "PRAGMA integrity_check;"}, &out, &err), 0) << err;
  EXPECT_EQ(out, "ok\n");
}

}  // namespace
}  // namespace vsieve::testing
