// Many daemons, one PostgreSQL (issue 14, item 3): 4 `vsieve run` processes x 2 workers over a
// few thousand tiny clips. A trigger in the test database records every change of a row's
// lease (claims, heartbeats, ends) and every result write, with clock_timestamp(); the checks
// run over that history at the end:
//  - every row is done and has exactly one result row, written exactly once (no duplicate, none
//    lost);
//  - no row was ever held by two live leases: a claim only ever follows the end of the previous
//    lease, and a lease ended by expiry really had expired (database time).
// The second test does the same while daemons are killed with SIGKILL at random and restarted,
// and PostgreSQL itself is restarted twice with `pg_ctl restart -m immediate`.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "storage/table_store.h"
#include "tests/daemon/daemon_process.h"
#include "tests/support/postgres_server.h"
#include "tests/support/test_env.h"

namespace vsieve::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kDaemons = 4;
constexpr int kRows = 2000;

// The history the checks read; installed after the store has created its tables.
constexpr char kHistorySql[] =
    "CREATE TABLE lease_events (id bigserial PRIMARY KEY, row_id bigint, old_state text, "
    " new_state text, old_token text, new_token text, old_expires timestamptz, "
    " new_expires timestamptz, owner text, error_code text, error_message text, by_expiry boolean, "
    "at timestamptz);"
    "CREATE FUNCTION log_lease() RETURNS trigger AS $$ BEGIN "
    " INSERT INTO lease_events (row_id, old_state, new_state, old_token, new_token, old_expires,"
    "  new_expires, owner, error_code, error_message, by_expiry, at) VALUES (NEW.id, OLD.state, "
    "NEW.state, "
    "OLD.lease_token,"
    "  NEW.lease_token, OLD.lease_expires, NEW.lease_expires, NEW.lease_owner,"
    "  NEW.last_error_code, NEW.last_error_message,"
    // The store's ReclaimExpired statement is the only one with this condition.
    "  current_query() LIKE '%lease_expires < now()%', clock_timestamp());"
    " RETURN NEW; END $$ LANGUAGE plpgsql;"
    "CREATE TRIGGER log_lease AFTER UPDATE ON vsieve_rows FOR EACH ROW "
    " WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.lease_token IS DISTINCT FROM "
    " NEW.lease_token OR OLD.lease_expires IS DISTINCT FROM NEW.lease_expires) "
    " EXECUTE FUNCTION log_lease();"
    "CREATE INDEX ON lease_events (row_id);"
    "CREATE TABLE result_writes (row_id bigint, at timestamptz);"
    "CREATE FUNCTION log_result() RETURNS trigger AS $$ BEGIN "
    " INSERT INTO result_writes VALUES (NEW.row_id, clock_timestamp()); RETURN NEW; END $$ "
    " LANGUAGE plpgsql;"
    "CREATE TRIGGER log_result AFTER INSERT OR UPDATE ON vsieve_results FOR EACH ROW "
    " EXECUTE FUNCTION log_result();";

class MultiDaemonSlowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VSIEVE_REQUIRE_FFMPEG();
    std::string why;
    VSIEVE_REQUIRE_POSTGRES();
    server_ = PostgresServer::Start(&why);
    ASSERT_NE(server_, nullptr) << why;
    url_ = server_->CreateDatabase(&why);
    ASSERT_FALSE(url_.empty()) << why;
    const std::vector<std::string> clips = MakeTinyClips(dir_.path(), kRows);
    ASSERT_EQ(static_cast<int>(clips.size()), kRows);
    auto store = storage::TableStore::Open(url_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto imported = (*store)->Import(RowsFor(clips));
    ASSERT_TRUE(imported.ok()) << imported.status().ToString();
    ASSERT_EQ(imported->inserted, kRows);
    bool ok = false;
    PostgresServer::Query(url_, kHistorySql, &ok);
    ASSERT_TRUE(ok) << "installing the history triggers failed";
  }

  std::vector<std::string> DaemonArgs(int index) const {
    // A cheap configuration: tiny frames, few of them, no text detector or window heads.
    return {"run",
            "--store",
            url_,
            "--no-text",
            "--no-windows",
            "--clip-frames",
            "2",
            "--region-frames",
            "2",
            "--analysis-max-side",
            "64",
            "--download-threads",
            "1",
            "--decode-threads",
            "1",
            "--workers",
            "2",
            "--log-level",
            "info",
            "--owner-id",
            "d" + std::to_string(index),
            "--lease-seconds",
            "5",
            "--max-attempts",
            "100",
            "--admin-listen",
            "off",
            "--until-idle"};
  }

  std::unique_ptr<DaemonProcess> StartDaemon(int index) {
    auto daemon = std::make_unique<DaemonProcess>(DaemonArgs(index),
                                                  dir_.File("d" + std::to_string(index) + ".log"));
    EXPECT_TRUE(daemon->started());
    return daemon;
  }

  int64_t Count(const std::string& sql) {
    bool ok = false;
    const std::string value = PostgresServer::Query(url_, sql, &ok);
    EXPECT_TRUE(ok) << sql;
    return ok ? std::stoll(value.empty() ? "0" : value) : -1;
  }

  // Runs the invariant checks and prints the counts.
  void CheckHistory(const std::string& label, int kills, int restarts) {
    const int64_t done = Count("SELECT count(*) FROM vsieve_rows WHERE state = 'done'");
    const int64_t results = Count("SELECT count(*) FROM vsieve_results");
    const int64_t claims = Count(
        "SELECT count(*) FROM lease_events WHERE new_state = 'running' AND old_state <> "
        "'running'");
    const int64_t reclaimed = Count(
        "SELECT count(*) FROM (SELECT row_id FROM lease_events WHERE new_state = 'running' AND "
        "old_state <> 'running' GROUP BY row_id HAVING count(*) > 1) x");
    const int64_t duplicates = Count(
        "SELECT count(*) FROM (SELECT row_id FROM result_writes GROUP BY row_id "
        "HAVING count(*) > 1) x");
    const int64_t lost = Count(
        "SELECT count(*) FROM vsieve_rows r LEFT JOIN vsieve_results s ON s.row_id = r.id "
        "WHERE r.state <> 'done' OR s.row_id IS NULL");
    // Two live leases on one row: each lease lives from its claim to the event that ended it
    // (complete, retry, release, reclaim); the next lease of the row must start after that end,
    // and every lease but a row's last must have ended.
    const int64_t overlapping = Count(
        "WITH leases AS (SELECT c.row_id, c.new_token AS token, c.at AS claimed_at, "
        " (SELECT min(e.at) FROM lease_events e WHERE e.row_id = c.row_id AND "
        "  e.old_token = c.new_token AND e.new_token <> c.new_token) AS ended_at "
        " FROM lease_events c WHERE c.old_state <> 'running' AND c.new_state = 'running'), "
        "ordered AS (SELECT *, lead(claimed_at) OVER (PARTITION BY row_id ORDER BY claimed_at) "
        " AS next_claim FROM leases) "
        "SELECT count(*) FROM ordered WHERE next_claim IS NOT NULL AND "
        " (ended_at IS NULL OR next_claim < ended_at)");
    // A lease ended by expiry (ReclaimExpired) before it had expired (database time). The row's
    // last_error_message alone does not tell: it keeps "lease of X expired" from an earlier
    // expiry through a later claim and a ReclaimOwner.
    const int64_t early = Count(
        "SELECT count(*) FROM lease_events WHERE old_state = 'running' AND new_state <> "
        "'running' AND by_expiry AND at < old_expires");
    const int64_t expired = Count("SELECT count(*) FROM lease_events WHERE by_expiry");
    const int64_t heartbeats = Count(
        "SELECT count(*) FROM lease_events WHERE old_state = 'running' AND new_state = "
        "'running' AND old_token = new_token");
    std::printf(
        "[ multi-daemon %s ] rows %d, done %lld, results %lld, claims %lld, rows claimed more "
        "than once %lld, heartbeats %lld, kills %d, postgres restarts %d, duplicates %lld, "
        "lost %lld, overlapping leases %lld, leases ended by expiry %lld, early expiries %lld\n",
        label.c_str(), kRows, static_cast<long long>(done), static_cast<long long>(results),
        static_cast<long long>(claims), static_cast<long long>(reclaimed),
        static_cast<long long>(heartbeats), kills, restarts, static_cast<long long>(duplicates),
        static_cast<long long>(lost), static_cast<long long>(overlapping),
        static_cast<long long>(expired), static_cast<long long>(early));
    EXPECT_EQ(done, kRows);
    EXPECT_EQ(results, kRows);
    EXPECT_EQ(duplicates, 0);
    EXPECT_EQ(lost, 0);
    EXPECT_EQ(overlapping, 0);
    EXPECT_EQ(early, 0);
    EXPECT_GE(claims, kRows);
  }

  std::string Logs() const {
    std::string text;
    for (int i = 0; i < kDaemons; ++i) {
      const std::string log = ReadFile(dir_.File("d" + std::to_string(i) + ".log"));
      text += "--- d" + std::to_string(i) + "\n" +
              log.substr(log.size() > 3000 ? log.size() - 3000 : 0);
    }
    return text;
  }

  TempDir dir_;
  std::unique_ptr<PostgresServer> server_;
  std::string url_;
};

TEST_F(MultiDaemonSlowTest, FourDaemonsShareTheTableWithoutOverlap) {
  std::vector<std::unique_ptr<DaemonProcess>> daemons;
  for (int i = 0; i < kDaemons; ++i) daemons.push_back(StartDaemon(i));
  for (auto& daemon : daemons) ASSERT_EQ(daemon->Wait(300s), 0) << Logs();
  CheckHistory("clean", 0, 0);
  // Every daemon took part.
  EXPECT_EQ(Count("SELECT count(DISTINCT owner) FROM lease_events WHERE new_state = 'running' "
                  "AND old_state <> 'running'"),
            kDaemons);
}

TEST_F(MultiDaemonSlowTest, KillsAndImmediatePostgresRestartsLoseAndDuplicateNothing) {
  std::vector<std::unique_ptr<DaemonProcess>> daemons;
  for (int i = 0; i < kDaemons; ++i) daemons.push_back(StartDaemon(i));
  std::mt19937 random(20261203);
  std::uniform_int_distribution<int> pick(0, kDaemons - 1);
  std::uniform_int_distribution<int> pause_ms(300, 1500);
  int kills = 0;
  int restarts = 0;
  const auto started = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - started < 240s) {
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(random)));
    const int64_t done = Count("SELECT count(*) FROM vsieve_rows WHERE state = 'done'");
    if ((restarts == 0 && done >= kRows / 3) || (restarts == 1 && done >= 2 * kRows / 3)) {
      std::string why;
      ASSERT_TRUE(server_->Restart("immediate", &why)) << why;
      ++restarts;
      continue;
    }
    if (done >= kRows * 9 / 10 && restarts == 2) break;  // let them finish undisturbed
    const int victim = pick(random);
    if (daemons[victim]->Wait(0s) == -1) {
      daemons[victim]->Signal(SIGKILL);
      daemons[victim]->Wait(10s);
      ++kills;
    }
    daemons[victim] = StartDaemon(victim);  // the same owner id: it takes its rows back
  }
  // Until idle: a daemon that exited early while another's leases were still out is run again.
  for (int round = 0; round < 5; ++round) {
    for (auto& daemon : daemons) ASSERT_NE(daemon->Wait(300s), -1) << Logs();
    if (Count("SELECT count(*) FROM vsieve_rows WHERE state <> 'done'") == 0) break;
    for (int i = 0; i < kDaemons; ++i) daemons[i] = StartDaemon(i);
  }
  EXPECT_EQ(restarts, 2);
  EXPECT_GE(kills, 5);
  CheckHistory("kills+restarts", kills, restarts);
}

}  // namespace
}  // namespace vsieve::testing
