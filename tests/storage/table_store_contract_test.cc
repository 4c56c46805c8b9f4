// The contract every TableStore implementation keeps (storage/table_store.h), run against each
// store factory below: SQLite in a temp folder, and PostgreSQL on a real server that the test
// starts itself (initdb + pg_ctl on loopback; skipped only where the server programs are absent).
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "storage/postgres_table_store.h"
#include "storage/table_store.h"
#include "tests/support/postgres_server.h"
#include "tests/support/test_env.h"

namespace vsieve::storage {
namespace {

using common::ErrorCode;

// How to make a fresh, empty store for one test.
struct StoreFactory {
  std::string name;
  // A URL for a new store living in `dir` (or a fresh database on a test server).
  std::function<std::string(const std::string& dir)> url;
  // Checks the store's physical integrity after a test; "" when unsupported.
  std::function<std::string(const std::string& url)> integrity;
  // Why the store cannot be tested here ("" when it can); the test is then skipped.
  std::function<std::string()> unavailable;
};

void PrintTo(const StoreFactory& factory, std::ostream* out) { *out << factory.name; }

std::string SqliteIntegrity(const std::string& url) {
  const std::string path = url.substr(std::string("sqlite://").size());
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return "cannot open";
  }
  std::string result;
  sqlite3_exec(
      db, "PRAGMA integrity_check",
      [](void* out, int, char** values, char**) {
        *static_cast<std::string*>(out) += values[0] != nullptr ? values[0] : "";
        return 0;
      },
      &result, nullptr);
  sqlite3_close(db);
  return result;
}

// Every done row has its result row.
std::string PostgresIntegrity(const std::string& url) {
  bool ok = false;
  const std::string missing = testing::PostgresServer::Query(
      url,
      "SELECT count(*) FROM vsieve_rows r LEFT JOIN vsieve_results s ON s.row_id = r.id "
      "WHERE r.state = 'done' AND s.row_id IS NULL",
      &ok);
  return ok && missing == "0" ? "ok" : "done rows without results: " + missing;
}

std::string PostgresUnavailable() {
  std::string why;
  // Only missing server programs skip; a server that does not start fails the test (below).
  return testing::PostgresServer::Installed() ? "" : "PostgreSQL server programs are not installed";
}

std::string PostgresDatabaseUrl(const std::string&) {
  std::string why;
  testing::PostgresServer* server = testing::PostgresServer::Shared(&why);
  if (server == nullptr) {
    ADD_FAILURE() << "PostgreSQL did not start: " << why;
    return "";
  }
  const std::string url = server->CreateDatabase(&why);
  EXPECT_FALSE(url.empty()) << why;
  return url;
}

const std::vector<StoreFactory>& Factories() {
  static const std::vector<StoreFactory> factories = {
      {"sqlite", [](const std::string& dir) { return "sqlite://" + dir + "/store.db"; },
       SqliteIntegrity, [] { return std::string(); }},
      {"postgres", PostgresDatabaseUrl, PostgresIntegrity, PostgresUnavailable},
  };
  return factories;
}

InputRow Row(const std::string& id, const std::string& table = "default") {
  InputRow row;
  row.table = table;
  row.video_id = id;
  row.oss_bucket = "bucket";
  row.video_path = "videos/" + id + ".mp4";
  row.video_tag = "tag";
  row.info_json = R"({"use_alluxio":false})";
  return row;
}

class TableStoreContractTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override {
    if (const std::string why = GetParam().unavailable(); !why.empty()) GTEST_SKIP() << why;
    url_ = GetParam().url(dir_.path());
    ASSERT_FALSE(url_.empty());
    store_ = OpenStore();
    ASSERT_NE(store_, nullptr);
  }

  std::unique_ptr<TableStore> OpenStore() {
    auto store = TableStore::Open(url_);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(*store) : nullptr;
  }

  void ImportIds(int count, const std::string& table = "default") {
    std::vector<InputRow> rows;
    for (int i = 0; i < count; ++i) rows.push_back(Row(table + "-" + std::to_string(i), table));
    auto result = store_->Import(rows);
    ASSERT_TRUE(result.ok()) << result.status().ToString();
  }

  std::vector<Lease> ClaimN(const std::string& owner, int n, int lease_seconds = 60,
                            const std::vector<std::string>& tables = {}) {
    auto leases = store_->Claim(owner, tables, n, lease_seconds);
    EXPECT_TRUE(leases.ok()) << leases.status().ToString();
    return leases.ok() ? *leases : std::vector<Lease>{};
  }

  RowRecord Get(const std::string& video_id, const std::string& table = "default") {
    auto record = store_->GetRow(table, video_id);
    EXPECT_TRUE(record.ok()) << record.status().ToString();
    return record.ok() ? *record : RowRecord{};
  }

  testing::TempDir dir_;
  std::string url_;
  std::unique_ptr<TableStore> store_;
};

TEST_P(TableStoreContractTest, ImportIsIdempotentByTableAndVideoId) {
  auto first = store_->Import({Row("a"), Row("b"), Row("a", "other")});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->inserted, 3);
  EXPECT_EQ(first->unchanged, 0);
  InputRow changed = Row("a");
  changed.video_path = "elsewhere.mp4";
  auto second = store_->Import({changed, Row("c")});
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->inserted, 1);
  EXPECT_EQ(second->unchanged, 1);
  RowRecord a = Get("a");
  EXPECT_EQ(a.row.video_path, "videos/a.mp4");  // left unchanged
  EXPECT_EQ(a.row.info_json, R"({"use_alluxio":false})");
  EXPECT_EQ(a.state, RowState::kPending);
  EXPECT_EQ(a.attempts, 0);
  EXPECT_FALSE(a.result_json.has_value());
  EXPECT_EQ(Get("a", "other").row.table, "other");
}

TEST_P(TableStoreContractTest, ClaimsOldestFirstUpToTheLimit) {
  ImportIds(5);
  std::vector<Lease> first = ClaimN("w1", 2);
  ASSERT_EQ(first.size(), 2U);
  EXPECT_EQ(first[0].row.video_id, "default-0");
  EXPECT_EQ(first[1].row.video_id, "default-1");
  EXPECT_EQ(first[0].attempts, 1);
  EXPECT_EQ(first[0].lease_token.size(), 32U);  // 128 random bits in hex
  EXPECT_NE(first[0].lease_token, first[1].lease_token);
  EXPECT_EQ(first[0].row.video_path, "videos/default-0.mp4");
  std::vector<Lease> rest = ClaimN("w2", 10);
  ASSERT_EQ(rest.size(), 3U);
  EXPECT_EQ(rest[0].row.video_id, "default-2");
  EXPECT_TRUE(ClaimN("w3", 10).empty());
  RowRecord record = Get("default-0");
  EXPECT_EQ(record.state, RowState::kRunning);
  EXPECT_EQ(record.lease_owner, "w1");
}

TEST_P(TableStoreContractTest, ClaimTakesOnlyTheGivenTables) {
  ImportIds(2, "a");
  ImportIds(2, "b");
  ImportIds(2, "c");
  std::vector<Lease> leases = ClaimN("w", 10, 60, {"b", "c"});
  ASSERT_EQ(leases.size(), 4U);
  for (const Lease& lease : leases) EXPECT_NE(lease.row.table, "a");
  EXPECT_EQ(ClaimN("w", 10, 60, {"b"}).size(), 0U);
  EXPECT_EQ(ClaimN("w", 10).size(), 2U);
}

TEST_P(TableStoreContractTest, EightThreadsNeverClaimARowTwice) {
  constexpr int kRows = 400;
  ImportIds(kRows);
  std::mutex mutex;
  std::map<std::string, int> claims;
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      const std::string owner = "thread-" + std::to_string(t);
      while (true) {
        auto leases = store_->Claim(owner, {}, 3, 60);
        if (!leases.ok()) {
          ++errors;
          return;
        }
        if (leases->empty()) return;
        std::vector<TableStore::Completion> done;
        for (const Lease& lease : *leases) {
          {
            std::lock_guard<std::mutex> lock(mutex);
            ++claims[lease.row.video_id];
          }
          done.push_back({lease, R"({"video_id":")" + lease.row.video_id + "\"}", true, "", ""});
        }
        auto written = store_->CompleteMany(done);
        if (!written.ok()) ++errors;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(errors.load(), 0);
  ASSERT_EQ(claims.size(), static_cast<size_t>(kRows));
  for (const auto& [id, count] : claims) EXPECT_EQ(count, 1) << id;
  auto stats = store_->Stats("");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->by_state["done"], kRows);
  if (GetParam().integrity) EXPECT_EQ(GetParam().integrity(url_), "ok");
}

TEST_P(TableStoreContractTest, FourProcessesNeverClaimARowTwice) {
  // R-CONC-2: 4 processes x 2 claimer threads on one store.
  constexpr int kRows = 1000;
  constexpr int kProcesses = 4;
  constexpr int kSlots = 2;
  ImportIds(kRows);
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    const std::string log = dir_.File("claims-" + std::to_string(p));
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // The child opens its own connection; it never touches the parent's.
      std::atomic<int> errors{0};
      {
        auto store = TableStore::Open(url_);
        if (!store.ok()) _exit(10);
        std::mutex log_mutex;
        std::ofstream out(log);
        std::vector<std::thread> slots;
        for (int slot = 0; slot < kSlots; ++slot) {
          slots.emplace_back([&, slot] {
            const std::string owner = "process-" + std::to_string(p) + "-" + std::to_string(slot);
            while (true) {
              auto leases = (*store)->Claim(owner, {}, 2, 60);
              if (!leases.ok()) {
                std::cerr << leases.status().ToString() << "\n";
                ++errors;
                return;
              }
              if (leases->empty()) return;
              for (const Lease& lease : *leases) {
                {
                  std::lock_guard<std::mutex> lock(log_mutex);
                  out << lease.row.video_id << "\n";
                }
                auto done = (*store)->Complete(lease, "{}", true, "", "");
                if (!done.ok()) std::cerr << done.status().ToString() << "\n";
                if (!done.ok() || !*done) ++errors;
              }
            }
          });
        }
        for (auto& thread : slots) thread.join();
      }
      _exit(errors.load() == 0 ? 0 : 11);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "a claimer surfaced a database error (SQLITE_BUSY?)";
  }
  std::map<std::string, int> claims;
  for (int p = 0; p < kProcesses; ++p) {
    std::istringstream in(testing::ReadFile(dir_.File("claims-" + std::to_string(p))));
    std::string id;
    while (std::getline(in, id)) ++claims[id];
  }
  ASSERT_EQ(claims.size(), static_cast<size_t>(kRows));
  for (const auto& [id, count] : claims) EXPECT_EQ(count, 1) << id;
  auto stats = store_->Stats("");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->by_state["done"], kRows);
  if (GetParam().integrity) EXPECT_EQ(GetParam().integrity(url_), "ok");
}

TEST_P(TableStoreContractTest, HeartbeatExtendsAndAnExpiredLeaseIsFenced) {
  ImportIds(2);
  std::vector<Lease> leases = ClaimN("zombie", 2, /*lease_seconds=*/1);
  ASSERT_EQ(leases.size(), 2U);
  const Lease& kept = leases[0];
  const Lease& stale = leases[1];
  auto beat = store_->Heartbeat(kept, 60);
  ASSERT_TRUE(beat.ok());
  EXPECT_TRUE(*beat);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  auto reclaimed = store_->ReclaimExpired(5);
  ASSERT_TRUE(reclaimed.ok()) << reclaimed.status().ToString();
  EXPECT_EQ(*reclaimed, 1);  // the heartbeat kept the first lease alive
  EXPECT_EQ(Get("default-0").state, RowState::kRunning);
  RowRecord pending = Get("default-1");
  EXPECT_EQ(pending.state, RowState::kPending);
  EXPECT_EQ(pending.last_error_code, "TIMEOUT");

  // Another worker claims and completes the row; then the zombie wakes up.
  std::vector<Lease> fresh = ClaimN("worker", 1);
  ASSERT_EQ(fresh.size(), 1U);
  EXPECT_EQ(fresh[0].row_id, stale.row_id);
  EXPECT_EQ(fresh[0].attempts, 2);
  auto done = store_->Complete(fresh[0], R"({"by":"worker"})", true, "", "");
  ASSERT_TRUE(done.ok());
  EXPECT_TRUE(*done);
  const RowRecord before = Get("default-1");

  auto complete = store_->Complete(stale, R"({"by":"zombie"})", false, "FETCH_FAILED", "late");
  auto heartbeat = store_->Heartbeat(stale, 60);
  auto retry = store_->Retry(stale, "FETCH_FAILED", "late", 0);
  auto release = store_->Release(stale);
  auto many = store_->CompleteMany({{stale, R"({"by":"zombie"})", true, "", ""}});
  ASSERT_TRUE(complete.ok() && heartbeat.ok() && retry.ok() && release.ok() && many.ok());
  EXPECT_FALSE(*complete);
  EXPECT_FALSE(*heartbeat);
  EXPECT_FALSE(*retry);
  EXPECT_FALSE(*release);
  EXPECT_EQ(*many, std::vector<bool>{false});
  const RowRecord after = Get("default-1");
  EXPECT_EQ(after.state, RowState::kDone);
  EXPECT_EQ(after.attempts, before.attempts);
  EXPECT_EQ(after.last_error_code, "");
  EXPECT_EQ(after.updated_at, before.updated_at);
  ASSERT_TRUE(after.result_json.has_value());
  EXPECT_EQ(*after.result_json, R"({"by":"worker"})");
}

TEST_P(TableStoreContractTest, ExpiredLeaseAtMaxAttemptsFailsWithTimeout) {
  ImportIds(2);
  ASSERT_EQ(ClaimN("w", 2, /*lease_seconds=*/1).size(), 2U);
  ASSERT_TRUE(store_->ReclaimOwner("w").ok());
  ASSERT_EQ(ClaimN("w", 1, /*lease_seconds=*/1).size(), 1U);  // default-0, attempt 2
  ASSERT_EQ(ClaimN("w", 1, /*lease_seconds=*/1).size(), 1U);  // default-1, attempt 2
  auto early = store_->ReclaimExpired(2);
  ASSERT_TRUE(early.ok());
  EXPECT_EQ(*early, 0);  // not expired yet
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  auto reclaimed = store_->ReclaimExpired(2);
  ASSERT_TRUE(reclaimed.ok());
  EXPECT_EQ(*reclaimed, 2);
  RowRecord failed = Get("default-0");
  EXPECT_EQ(failed.state, RowState::kFailed);
  EXPECT_EQ(failed.last_error_code, "TIMEOUT");
  EXPECT_EQ(failed.attempts, 2);
  auto stats = store_->Stats("");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->by_state["failed"], 2);
  EXPECT_EQ(stats->finished_last_1m, 2);
}

TEST_P(TableStoreContractTest, CompleteWritesResultAndTerminalStateTogether) {
  ImportIds(2);
  std::vector<Lease> leases = ClaimN("w", 2);
  ASSERT_EQ(leases.size(), 2U);
  auto ok = store_->Complete(leases[0], R"({"succeed":"true"})", true, "", "");
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(*ok);
  auto bad = store_->Complete(leases[1], R"({"succeed":"false"})", false, "TRUNCATED", "short");
  ASSERT_TRUE(bad.ok());
  EXPECT_TRUE(*bad);
  RowRecord done = Get("default-0");
  EXPECT_EQ(done.state, RowState::kDone);
  EXPECT_EQ(done.lease_owner, "");
  ASSERT_TRUE(done.result_json.has_value());
  EXPECT_EQ(*done.result_json, R"({"succeed":"true"})");
  RowRecord failed = Get("default-1");
  EXPECT_EQ(failed.state, RowState::kFailed);
  EXPECT_EQ(failed.last_error_code, "TRUNCATED");
  EXPECT_EQ(failed.last_error_message, "short");
  ASSERT_TRUE(failed.result_json.has_value());
  // Completing twice with the same lease is refused: the lease ended with the first.
  auto again = store_->Complete(leases[0], "{}", true, "", "");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  EXPECT_EQ(*Get("default-0").result_json, R"({"succeed":"true"})");
}

TEST_P(TableStoreContractTest, CompleteManyWritesHeldLeasesAndSkipsLostOnes) {
  ImportIds(3);
  std::vector<Lease> mine = ClaimN("crashed", 3);
  ASSERT_EQ(mine.size(), 3U);
  auto back = store_->ReclaimOwner("crashed");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, 3);
  std::vector<Lease> theirs = ClaimN("other", 3);
  ASSERT_EQ(theirs.size(), 3U);
  auto written = store_->CompleteMany({{mine[0], R"({"by":"stale"})", true, "", ""},
                                       {theirs[1], R"({"by":"other"})", true, "", ""},
                                       {theirs[2], R"({"by":"other"})", false, "TIMEOUT", "x"}});
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_EQ(*written, (std::vector<bool>{false, true, true}));
  RowRecord first = Get("default-0");
  EXPECT_EQ(first.state, RowState::kRunning);
  EXPECT_EQ(first.lease_owner, "other");
  EXPECT_FALSE(first.result_json.has_value());
  EXPECT_EQ(Get("default-1").state, RowState::kDone);
  EXPECT_EQ(Get("default-2").state, RowState::kFailed);
}

TEST_P(TableStoreContractTest, RetriedRowIsNotClaimableBeforeItsDelay) {
  ImportIds(1);
  std::vector<Lease> leases = ClaimN("w", 1);
  ASSERT_EQ(leases.size(), 1U);
  auto retried = store_->Retry(leases[0], "FETCH_FAILED", "503", 0.5);
  ASSERT_TRUE(retried.ok());
  EXPECT_TRUE(*retried);
  RowRecord record = Get("default-0");
  EXPECT_EQ(record.state, RowState::kPending);
  EXPECT_EQ(record.last_error_code, "FETCH_FAILED");
  EXPECT_EQ(record.attempts, 1);
  EXPECT_TRUE(ClaimN("w", 1).empty());
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  std::vector<Lease> again = ClaimN("w", 1);
  ASSERT_EQ(again.size(), 1U);
  EXPECT_EQ(again[0].attempts, 2);
}

TEST_P(TableStoreContractTest, ReleaseDoesNotChargeAnAttempt) {
  ImportIds(1);
  std::vector<Lease> leases = ClaimN("w", 1);
  ASSERT_EQ(leases.size(), 1U);
  auto released = store_->Release(leases[0]);
  ASSERT_TRUE(released.ok());
  EXPECT_TRUE(*released);
  RowRecord record = Get("default-0");
  EXPECT_EQ(record.state, RowState::kPending);
  EXPECT_EQ(record.attempts, 0);
  EXPECT_EQ(record.lease_owner, "");
  std::vector<Lease> again = ClaimN("w", 1);
  ASSERT_EQ(again.size(), 1U);
  EXPECT_EQ(again[0].attempts, 1);
}

TEST_P(TableStoreContractTest, ReclaimOwnerReturnsOnlyThatOwnersRowsAndKeepsAttempts) {
  ImportIds(3);
  ASSERT_EQ(ClaimN("old-self", 2).size(), 2U);
  ASSERT_EQ(ClaimN("someone-else", 1).size(), 1U);
  auto back = store_->ReclaimOwner("old-self");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, 2);
  EXPECT_EQ(Get("default-0").state, RowState::kPending);
  EXPECT_EQ(Get("default-0").attempts, 1);
  EXPECT_EQ(Get("default-2").state, RowState::kRunning);
}

TEST_P(TableStoreContractTest, RequeueSemantics) {
  ImportIds(5);
  std::vector<Lease> leases = ClaimN("w", 4);
  ASSERT_EQ(leases.size(), 4U);
  ASSERT_TRUE(*store_->Complete(leases[0], "{}", false, "TRUNCATED", "a"));
  ASSERT_TRUE(*store_->Complete(leases[1], "{}", false, "FETCH_FAILED", "b"));
  ASSERT_TRUE(*store_->Complete(leases[2], "{}", true, "", ""));
  // default-3 is running, default-4 pending.

  RequeueFilter none;
  EXPECT_EQ(store_->Requeue(none).status().code(), ErrorCode::kInvalidArgument);

  RequeueFilter by_code;
  by_code.error_code = "TRUNCATED";
  auto code = store_->Requeue(by_code);
  ASSERT_TRUE(code.ok()) << code.status().ToString();
  EXPECT_EQ(code->requeued, 1);
  RowRecord requeued = Get("default-0");
  EXPECT_EQ(requeued.state, RowState::kPending);
  EXPECT_EQ(requeued.attempts, 0);          // restarts; the history keeps the earlier one
  EXPECT_EQ(requeued.last_error_code, "");  // archived in the history

  RequeueFilter by_ids;
  by_ids.video_ids = {"default-0", "default-2", "default-3", "default-4", "nope"};
  auto ids = store_->Requeue(by_ids);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(ids->requeued, 1);         // default-2 (done)
  EXPECT_EQ(ids->already_pending, 2);  // default-0, default-4
  EXPECT_EQ(ids->refused_running, 1);  // default-3
  EXPECT_EQ(ids->not_found, 1);
  EXPECT_EQ(Get("default-3").state, RowState::kRunning);
  EXPECT_EQ(Get("default-2").state, RowState::kPending);

  RequeueFilter failed;
  failed.failed = true;
  auto first = store_->Requeue(failed);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->requeued, 1);  // default-1
  auto second = store_->Requeue(failed);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->requeued, 0);  // idempotent
  auto ids_again = store_->Requeue(by_ids);
  ASSERT_TRUE(ids_again.ok());
  EXPECT_EQ(ids_again->requeued, 0);
  EXPECT_EQ(ids_again->already_pending, 3);

  // Reprocessing replaces the result in place.
  std::vector<Lease> redo = ClaimN("w", 1);
  ASSERT_EQ(redo.size(), 1U);
  EXPECT_EQ(redo[0].row.video_id, "default-0");
  EXPECT_EQ(redo[0].attempts, 1);  // a requeued row starts a fresh count
  ASSERT_TRUE(*store_->Complete(redo[0], R"({"second":true})", true, "", ""));
  EXPECT_EQ(*Get("default-0").result_json, R"({"second":true})");
}

TEST_P(TableStoreContractTest, StatsCountStatesThroughputAndTopErrors) {
  ImportIds(6);
  ImportIds(1, "other");
  std::vector<Lease> leases = ClaimN("w", 5, 60, {"default"});
  ASSERT_EQ(leases.size(), 5U);
  ASSERT_TRUE(*store_->Complete(leases[0], "{}", false, "TRUNCATED", ""));
  ASSERT_TRUE(*store_->Complete(leases[1], "{}", false, "TRUNCATED", ""));
  ASSERT_TRUE(*store_->Complete(leases[2], "{}", false, "FETCH_FAILED", ""));
  ASSERT_TRUE(*store_->Complete(leases[3], "{}", true, "", ""));
  auto stats = store_->Stats("default");
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->by_state["pending"], 1);
  EXPECT_EQ(stats->by_state["running"], 1);
  EXPECT_EQ(stats->by_state["done"], 1);
  EXPECT_EQ(stats->by_state["failed"], 3);
  EXPECT_EQ(stats->finished_last_1m, 4);
  EXPECT_EQ(stats->finished_last_5m, 4);
  EXPECT_EQ(stats->finished_last_15m, 4);
  ASSERT_EQ(stats->top_errors.size(), 2U);
  EXPECT_EQ(stats->top_errors[0], (std::pair<std::string, int64_t>{"TRUNCATED", 2}));
  EXPECT_EQ(stats->top_errors[1], (std::pair<std::string, int64_t>{"FETCH_FAILED", 1}));
  auto all = store_->Stats("");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->by_state["pending"], 2);
}

TEST_P(TableStoreContractTest, GetRowAndForEachRow) {
  ImportIds(3);
  ImportIds(1, "other");
  EXPECT_EQ(store_->GetRow("default", "missing").status().code(), ErrorCode::kObjectNotFound);
  EXPECT_EQ(store_->GetRow("other", "default-0").status().code(), ErrorCode::kObjectNotFound);
  std::vector<Lease> leases = ClaimN("w", 1);
  ASSERT_EQ(leases.size(), 1U);
  ASSERT_TRUE(*store_->Complete(leases[0], R"({"x":1})", true, "", ""));
  std::vector<std::string> seen;
  ASSERT_TRUE(store_
                  ->ForEachRow("default", RowState::kPending,
                               [&](const RowRecord& r) { seen.push_back(r.row.video_id); })
                  .ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"default-1", "default-2"}));
  seen.clear();
  ASSERT_TRUE(store_
                  ->ForEachRow("", std::nullopt,
                               [&](const RowRecord& r) { seen.push_back(r.row.video_id); })
                  .ok());
  EXPECT_EQ(seen.size(), 4U);
  std::optional<std::string> result;
  ASSERT_TRUE(
      store_->ForEachRow("", RowState::kDone, [&](const RowRecord& r) { result = r.result_json; })
          .ok());
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(*result, R"({"x":1})");
}

TEST_P(TableStoreContractTest, ReopenKeepsEverything) {
  ImportIds(2);
  std::vector<Lease> leases = ClaimN("w", 1);
  ASSERT_TRUE(*store_->Complete(leases[0], "{}", true, "", ""));
  store_.reset();
  store_ = OpenStore();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(Get("default-0").state, RowState::kDone);
  EXPECT_EQ(Get("default-1").state, RowState::kPending);
}

INSTANTIATE_TEST_SUITE_P(Stores, TableStoreContractTest, ::testing::ValuesIn(Factories()),
                         [](const ::testing::TestParamInfo<StoreFactory>& info) {
                           return info.param.name;
                         });

TEST(TableStoreOpenTest, ParsesUrls) {
  testing::TempDir dir;
  EXPECT_TRUE(TableStore::Open("sqlite://" + dir.File("abs.db")).ok());  // sqlite:///tmp/...
  EXPECT_TRUE(std::filesystem::exists(dir.File("abs.db")));
  EXPECT_TRUE(TableStore::Open(dir.File("bare.db")).ok());
  EXPECT_TRUE(std::filesystem::exists(dir.File("bare.db")));
  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir.path());
  EXPECT_TRUE(TableStore::Open("sqlite://rel.db").ok());
  EXPECT_TRUE(TableStore::Open("sub-missing/x.db").status().code() == ErrorCode::kInternal);
  std::filesystem::current_path(cwd);
  EXPECT_TRUE(std::filesystem::exists(dir.File("rel.db")));

  // Nothing listens on port 1: the PostgreSQL store is tried, and its error hides the password.
  auto pg = TableStore::Open("postgresql://user:s3cret@127.0.0.1:1/db");
  EXPECT_EQ(pg.status().code(), ErrorCode::kInternal);
  EXPECT_NE(pg.status().message().find("connecting to postgresql://user:***@127.0.0.1:1/db"),
            std::string::npos)
      << pg.status().message();
  EXPECT_EQ(pg.status().message().find("s3cret"), std::string::npos);
  EXPECT_EQ(TableStore::Open("mysql://x/y").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(TableStore::Open("notes.txt").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(TableStore::Open("sqlite://").status().code(), ErrorCode::kInvalidArgument);
}

TEST(TableStoreOpenTest, RedactsPasswords) {
  EXPECT_EQ(RedactStoreUrl("postgresql://u:pw@h1:5432,h2/db?target_session_attrs=read-write"),
            "postgresql://u:***@h1:5432,h2/db?target_session_attrs=read-write");
  EXPECT_EQ(RedactStoreUrl("postgresql://u@h/db?sslmode=require&password=pw&x=1"),
            "postgresql://u@h/db?sslmode=require&password=***&x=1");
  EXPECT_EQ(RedactStoreUrl("postgresql://h/db"), "postgresql://h/db");
  EXPECT_EQ(RedactStoreUrl("sqlite:///tmp/a@b.db"), "sqlite:///tmp/a@b.db");
  EXPECT_EQ(RedactStoreUrl("vsieve.db"), "vsieve.db");
}

// PostgreSQL-only behaviour: multi-host URLs, migrations, the claim's plan, reconnecting.
class PostgresTableStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    VSIEVE_REQUIRE_POSTGRES();
    server_ = testing::PostgresServer::Shared(&why);
    ASSERT_NE(server_, nullptr) << why;
    url_ = server_->CreateDatabase(&why);
    ASSERT_FALSE(url_.empty()) << why;
  }

  testing::PostgresServer* server_ = nullptr;
  std::string url_;
};

TEST_F(PostgresTableStoreTest, MultiHostUrlSkipsADeadHostAndMigrationsRunOnce) {
  // The first host refuses; libpq moves on to the second, a read-write server.
  const std::string port = std::to_string(server_->port());
  const std::string db = url_.substr(url_.rfind('/') + 1);
  const std::string multi = "postgresql://postgres@127.0.0.1:1,127.0.0.1:" + port + "/" + db +
                            "?target_session_attrs=read-write";
  std::vector<std::unique_ptr<TableStore>> stores;
  std::vector<std::thread> openers;
  std::mutex mutex;
  for (int i = 0; i < 4; ++i) {
    openers.emplace_back([&] {
      auto store = TableStore::Open(multi);
      std::lock_guard<std::mutex> lock(mutex);
      EXPECT_TRUE(store.ok()) << store.status().ToString();
      if (store.ok()) stores.push_back(std::move(*store));
    });
  }
  for (auto& thread : openers) thread.join();
  ASSERT_EQ(stores.size(), 4U);
  EXPECT_EQ(testing::PostgresServer::Query(url_, "SELECT count(*) FROM vsieve_schema_version"),
            "1");
  ASSERT_TRUE(stores[0]->Import({Row("a")}).ok());
  auto leases = stores[1]->Claim("w", {}, 1, 60);
  ASSERT_TRUE(leases.ok());
  EXPECT_EQ(leases->size(), 1U);
}

TEST_F(PostgresTableStoreTest, ClaimUsesThePartialIndexOnPendingRows) {
  auto store = TableStore::Open(url_);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  std::vector<InputRow> rows;
  for (int i = 0; i < 5000; ++i) rows.push_back(Row("v" + std::to_string(i)));
  ASSERT_TRUE((*store)->Import(rows).ok());
  // Most rows finished: the claimable ones are few, as in a long-running table.
  bool ok = false;
  testing::PostgresServer::Query(url_, "UPDATE vsieve_rows SET state = 'done' WHERE id > 100", &ok);
  ASSERT_TRUE(ok);
  testing::PostgresServer::Query(url_, "ANALYZE vsieve_rows", &ok);
  ASSERT_TRUE(ok);
  PGconn* conn = PQconnectdb(url_.c_str());
  ASSERT_EQ(PQstatus(conn), CONNECTION_OK);
  PGresult* explain =
      PQexec(conn,
             "EXPLAIN SELECT id FROM vsieve_rows WHERE state = 'pending' AND run_after <= now() "
             "ORDER BY id LIMIT 8 FOR UPDATE SKIP LOCKED");
  std::string text;
  for (int i = 0; i < PQntuples(explain); ++i)
    text += std::string(PQgetvalue(explain, i, 0)) + "\n";
  PQclear(explain);
  PQfinish(conn);
  EXPECT_NE(text.find("vsieve_rows_claimable"), std::string::npos) << text;
}

TEST_F(PostgresTableStoreTest, SurvivesAnImmediateServerRestartWithoutLosingWork) {
  auto opened = PostgresTableStore::Open(url_);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  PostgresTableStore& store = **opened;
  std::vector<InputRow> rows;
  for (int i = 0; i < 20; ++i) rows.push_back(Row("r" + std::to_string(i)));
  ASSERT_TRUE(store.Import(rows).ok());
  auto first = store.Claim("w", {}, 10, 60);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), 10U);
  std::string why;
  ASSERT_TRUE(server_->Restart("immediate", &why)) << why;
  // The held leases survive the crash; the broken connection is replaced under the hood.
  std::vector<TableStore::Completion> done;
  for (const Lease& lease : *first) done.push_back({lease, "{}", true, "", ""});
  auto written = store.CompleteMany(done);
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_EQ(*written, std::vector<bool>(10, true));
  EXPECT_GE(store.reconnects(), 1);
  auto rest = store.Claim("w", {}, 100, 60);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->size(), 10U);
  auto stats = store.Stats("");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->by_state["done"], 10);
  EXPECT_EQ(stats->by_state["running"], 10);
}

TEST_F(PostgresTableStoreTest, ReconnectsWhenItsBackendIsTerminated) {
  auto opened = PostgresTableStore::Open(url_);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  // Terminate this store's backend: the next call finds the connection broken and reconnects.
  bool ok = false;
  testing::PostgresServer::Query(
      url_,
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'vsieve'",
      &ok);
  ASSERT_TRUE(ok);
  auto stats = (*opened)->Stats("");
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ((*opened)->reconnects(), 1);
}

// Failover: a primary and its streaming standby behind one multi-host URL with
// target_session_attrs=read-write. The primary crashes, the standby is promoted, and the store
// carries on with the leases it holds.
TEST(PostgresFailoverTest, LeasesSurviveAFailoverToThePromotedStandby) {
  std::string why;
  VSIEVE_REQUIRE_POSTGRES();
  auto primary = testing::PostgresServer::Start(&why);
  ASSERT_NE(primary, nullptr) << why;
  const std::string db_url = primary->CreateDatabase(&why);
  ASSERT_FALSE(db_url.empty()) << why;
  const std::string db = db_url.substr(db_url.rfind('/') + 1);
  auto standby = testing::PostgresServer::StartStandby(*primary, &why);
  ASSERT_NE(standby, nullptr) << why;
  const std::string url = "postgresql://postgres@127.0.0.1:" + std::to_string(primary->port()) +
                          ",127.0.0.1:" + std::to_string(standby->port()) + "/" + db +
                          "?target_session_attrs=read-write";
  auto opened = PostgresTableStore::Open(url);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  PostgresTableStore& store = **opened;
  std::vector<InputRow> rows;
  for (int i = 0; i < 10; ++i) rows.push_back(Row("f" + std::to_string(i)));
  ASSERT_TRUE(store.Import(rows).ok());
  auto leases = store.Claim("w", {}, 5, 60);
  ASSERT_TRUE(leases.ok());
  ASSERT_EQ(leases->size(), 5U);
  // Asynchronous replication: wait until the standby has replayed the claims.
  const std::string lsn = testing::PostgresServer::Query(db_url, "SELECT pg_current_wal_lsn()");
  bool caught_up = false;
  for (int i = 0; i < 200 && !caught_up; ++i) {
    caught_up = testing::PostgresServer::Query(
                    standby->Url(db), "SELECT pg_last_wal_replay_lsn() >= '" + lsn + "'") == "t";
    if (!caught_up) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(caught_up);
  ASSERT_TRUE(primary->Stop("immediate", &why)) << why;
  ASSERT_TRUE(standby->Promote(&why)) << why;
  std::vector<TableStore::Completion> done;
  for (const Lease& lease : *leases) done.push_back({lease, "{}", true, "", ""});
  auto written = store.CompleteMany(done);
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_EQ(*written, std::vector<bool>(5, true));
  EXPECT_GE(store.reconnects(), 1);
  auto stats = store.Stats("");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->by_state["done"], 5);
  EXPECT_EQ(stats->by_state["pending"], 5);
  EXPECT_EQ(testing::PostgresServer::Query(standby->Url(db), "SELECT pg_is_in_recovery()"), "f");
}

TEST(RowStateTest, NamesRoundTrip) {
  for (RowState state :
       {RowState::kPending, RowState::kRunning, RowState::kDone, RowState::kFailed}) {
    RowState parsed;
    ASSERT_TRUE(ParseRowState(RowStateName(state), &parsed));
    EXPECT_EQ(parsed, state);
  }
  RowState unused;
  EXPECT_FALSE(ParseRowState("finished", &unused));
}

}  // namespace
}  // namespace vsieve::storage
