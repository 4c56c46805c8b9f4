#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "storage/table_store.h"
#include "tests/daemon/daemon_process.h"
#include "tests/support/test_env.h"

namespace vsieve::testing {
namespace {

using namespace std::chrono_literals;

// True when a write transaction can start on `db` right now (no process holds the write lock).
bool WriteLockFree(const std::string& db) {
  sqlite3* handle = nullptr;
  if (sqlite3_open(db.c_str(), &handle) != SQLITE_OK) {
    sqlite3_close(handle);
    return false;
  }
  sqlite3_busy_timeout(handle, 0);
  const bool free =
      sqlite3_exec(handle, "BEGIN IMMEDIATE; ROLLBACK;", nullptr, nullptr, nullptr) == SQLITE_OK;
  sqlite3_close(handle);
  return free;
}

class RunCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VSIEVE_REQUIRE_FFMPEG();
    db_ = dir_.File("vsieve.db");
    url_ = "sqlite://" + db_;
    auto store = storage::TableStore::Open(url_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }

  void Seed(const std::vector<std::string>& paths) {
    std::vector<storage::InputRow> rows;
    for (std::size_t i = 0; i < paths.size(); ++i) {
      storage::InputRow row;
      row.video_id = "id" + std::to_string(i);
      row.video_path = paths[i];
      rows.push_back(row);
    }
    auto imported = store_->Import(rows);
    ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  }

  std::vector<std::string> RunArgs(const std::string& owner, int lease_seconds = 5,
                                   int workers = 2) const {
    return {"run",
            "--store",
            url_,
            "--no-text",
            "--log-level",
            "info",
            "--workers",
            std::to_string(workers),
            "--owner-id",
            owner,
            "--backoff-base-seconds",
            "0.05",
            "--lease-seconds",
            std::to_string(lease_seconds)};
  }

  std::map<std::string, std::string> Results() {
    std::map<std::string, std::string> results;
    (void)store_->ForEachRow("", std::nullopt, [&](const storage::RowRecord& record) {
      results[record.row.video_id] = record.result_json.value_or("");
    });
    return results;
  }

  TempDir dir_;
  std::string db_;
  std::string url_;
  std::unique_ptr<storage::TableStore> store_;
};

TEST_F(RunCliTest, UntilIdleFinishesEveryRowOnce) {
  std::vector<std::string> paths = MakeTinyClips(dir_.path(), 20);
  ASSERT_EQ(paths.size(), 20U);
  paths.push_back(dir_.File("missing.mp4"));
  ASSERT_TRUE(WriteFile(dir_.File("junk.mp4"), std::string(4096, 'j')));
  paths.push_back(dir_.File("junk.mp4"));
  Seed(paths);

  std::vector<std::string> args = RunArgs("a");
  args.push_back("--until-idle");
  std::string out;
  std::string err;
  std::vector<std::string> argv = {VSIEVE_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  ASSERT_EQ(RunCommand(argv, &out, &err), 0) << err;

  int done = 0;
  ASSERT_TRUE(store_
                  ->ForEachRow("", std::nullopt,
                               [&](const storage::RowRecord& record) {
                                 ASSERT_TRUE(record.result_json.has_value());
                                 const auto result = nlohmann::json::parse(*record.result_json);
                                 EXPECT_EQ(result["video_id"], record.row.video_id);
                                 EXPECT_EQ(result["result_info"]["attempts"], 1);
                                 EXPECT_EQ(record.attempts, 1);
                                 if (record.row.video_path.find("missing") != std::string::npos) {
                                   EXPECT_EQ(record.state, storage::RowState::kFailed);
                                   EXPECT_EQ(record.last_error_code, "OBJECT_NOT_FOUND");
                                 } else if (record.row.video_path.find("junk") !=
                                            std::string::npos) {
                                   EXPECT_EQ(record.state, storage::RowState::kFailed);
                                   EXPECT_FALSE(record.last_error_code.empty());
                                 } else {
                                   EXPECT_EQ(record.state, storage::RowState::kDone);
                                   ++done;
                                 }
                               })
                  .ok());
  EXPECT_EQ(done, 20);
  const auto counts = CountStates(store_.get());
  EXPECT_EQ(counts.count("running"), 0U);
  EXPECT_EQ(counts.count("pending"), 0U);
}

TEST_F(RunCliTest, SigtermExitsZeroWithinGraceAndLeavesNothingRunning) {
  std::vector<std::string> paths = MakeTinyClips(dir_.path(), 60);
  ASSERT_EQ(paths.size(), 60U);
  Seed(paths);
  std::vector<std::string> args = RunArgs("a");
  args.insert(args.end(), {"--grace-seconds", "3"});
  DaemonProcess daemon(args, dir_.File("a.log"));
  ASSERT_TRUE(daemon.started());
  const auto until = std::chrono::steady_clock::now() + 20s;
  while (CountStates(store_.get())["done"] < 3 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(50ms);
  }
  daemon.Signal(SIGTERM);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(daemon.Wait(8s), 0) << ReadFile(dir_.File("a.log"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 8s);
  const auto counts = CountStates(store_.get());
  EXPECT_EQ(counts.count("running"), 0U) << ReadFile(dir_.File("a.log"));
  EXPECT_GT(counts.at("done"), 0);
  // A released row is not charged an attempt.
  (void)store_->ForEachRow("", std::nullopt, [&](const storage::RowRecord& record) {
    if (record.state == storage::RowState::kPending) EXPECT_EQ(record.attempts, 0);
  });
}

TEST_F(RunCliTest, SecondSigtermCutsTheGraceShort) {
  // Videos that take a while each (640x360, 8 s), so a 60 s grace would be felt.
  const std::string source = dir_.File("slow.mp4");
  ASSERT_TRUE(Ffmpeg({"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-t", "8", "-pix_fmt",
                      "yuv420p", source}));
  std::vector<std::string> paths;
  for (int i = 0; i < 40; ++i) {
    paths.push_back(dir_.File("slow" + std::to_string(i) + ".mp4"));
    std::filesystem::copy_file(source, paths.back());
  }
  Seed(paths);
  std::vector<std::string> args = RunArgs("a");
  args.insert(args.end(), {"--grace-seconds", "60"});
  DaemonProcess daemon(args, dir_.File("a.log"));
  ASSERT_TRUE(daemon.started());
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (CountStates(store_.get())["running"] < 4 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(20ms);
  }
  daemon.Signal(SIGTERM);
  std::this_thread::sleep_for(200ms);
  daemon.Signal(SIGTERM);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(daemon.Wait(20s), 0) << ReadFile(dir_.File("a.log"));
  // Far inside the 60 s grace: the second signal released what was left.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s) << ReadFile(dir_.File("a.log"));
  EXPECT_NE(ReadFile(dir_.File("a.log")).find("grace 0.0 s"), std::string::npos);
  const auto counts = CountStates(store_.get());
  EXPECT_EQ(counts.count("running"), 0U) << ReadFile(dir_.File("a.log"));
  EXPECT_GT(counts.count("pending") ? counts.at("pending") : 0, 0);  // claiming had stopped
}

TEST_F(RunCliTest, StoppedDaemonPastItsLeaseIsFenced) {
  std::vector<std::string> paths = MakeTinyClips(dir_.path(), 30);
  ASSERT_EQ(paths.size(), 30U);
  Seed(paths);
  std::vector<std::string> a_args = RunArgs("a", 2, 1);
  DaemonProcess a(a_args, dir_.File("a.log"));
  ASSERT_TRUE(a.started());
  const auto until = std::chrono::steady_clock::now() + 20s;
  while (CountStates(store_.get())["running"] == 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(10ms);
  }
  // SQLite has one write lock per file: a process stopped inside a write transaction blocks
  // every writer until it resumes (a limit of the embedded store, not of fencing). Stop A at a
  // moment it holds no transaction.
  bool stopped_outside_transaction = false;
  for (int tries = 0; tries < 50 && !stopped_outside_transaction; ++tries) {
    a.Signal(SIGSTOP);
    std::this_thread::sleep_for(20ms);
    stopped_outside_transaction = WriteLockFree(db_);
    if (!stopped_outside_transaction) {
      a.Signal(SIGCONT);
      std::this_thread::sleep_for(7ms);
    }
  }
  ASSERT_TRUE(stopped_outside_transaction);
  ASSERT_GT(CountStates(store_.get())["running"], 0);
  std::this_thread::sleep_for(3s);  // past A's lease

  std::vector<std::string> b_args = RunArgs("b", 2);
  b_args.push_back("--until-idle");
  DaemonProcess b(b_args, dir_.File("b.log"));
  const int b_code = b.Wait(30s);
  ASSERT_EQ(b_code, 0) << "B:\n" << ReadFile(dir_.File("b.log")).substr(0, 3000);
  const auto after_b = Results();
  auto counts = CountStates(store_.get());
  EXPECT_EQ(counts["done"], 30) << ReadFile(dir_.File("b.log"));

  a.Signal(SIGCONT);
  std::this_thread::sleep_for(2s);  // A heartbeats, finishes what it held, tries to write
  a.Signal(SIGTERM);
  EXPECT_EQ(a.Wait(10s), 0) << ReadFile(dir_.File("a.log"));
  EXPECT_EQ(Results(), after_b) << "A's late writes changed rows";
  EXPECT_NE(ReadFile(dir_.File("a.log")).find("lease_lost"), std::string::npos)
      << ReadFile(dir_.File("a.log"));
  counts = CountStates(store_.get());
  EXPECT_EQ(counts["done"], 30);
  EXPECT_EQ(counts.count("running"), 0U);
}

TEST_F(RunCliTest, SighupReopensTheLogFile) {
  Seed({});
  const std::string log = dir_.File("daemon.log");
  std::vector<std::string> args = RunArgs("a");
  args.insert(args.end(), {"--log-file", log});
  DaemonProcess daemon(args, dir_.File("stderr.log"));
  ASSERT_TRUE(daemon.started());
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (ReadFile(log).find("run: owner") == std::string::npos &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_NE(ReadFile(log).find("run: owner"), std::string::npos)
      << ReadFile(dir_.File("stderr.log"));
  std::filesystem::rename(log, log + ".1");  // logrotate
  daemon.Signal(SIGHUP);
  while (ReadFile(log).find("log reopened") == std::string::npos &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_NE(ReadFile(log).find("log reopened"), std::string::npos);
  daemon.Signal(SIGTERM);
  EXPECT_EQ(daemon.Wait(5s), 0);
  EXPECT_NE(ReadFile(log).find("stopped after"), std::string::npos);
}

}  // namespace
}  // namespace vsieve::testing
