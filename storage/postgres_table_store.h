#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "common/status.h"
#include "storage/table_store.h"

struct pg_conn;
struct pg_result;

namespace vsieve::storage {

// Owns one libpq connection; PQfinish on destruction. Move-only.
class PgConnection {
 public:
  PgConnection() = default;
  explicit PgConnection(pg_conn* conn) : conn_(conn) {}
  ~PgConnection();
  PgConnection(PgConnection&& other) noexcept;
  PgConnection& operator=(PgConnection&& other) noexcept;
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  pg_conn* get() const { return conn_; }

 private:
  pg_conn* conn_ = nullptr;
};

// Owns one libpq result; PQclear on destruction. Move-only.
class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(pg_result* result) : result_(result) {}
  ~PgResult();
  PgResult(PgResult&& other) noexcept;
  PgResult& operator=(PgResult&& other) noexcept;
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;

  pg_result* get() const { return result_; }
  int rows() const;
  // The text of a cell ("" for NULL).
  std::string Text(int row, int column) const;
  int64_t Int(int row, int column) const;
  bool IsNull(int row, int column) const;
  // Rows changed by an INSERT/UPDATE/DELETE.
  int Affected() const;

 private:
  pg_result* result_ = nullptr;
};

// The shared table store for many daemons on many hosts: PostgreSQL through libpq
// (DESIGN.md, "Storage"; README, "Many hosts, one database").
//
// - Claims: one statement, so one short transaction:
//   WITH c AS MATERIALIZED (SELECT id ... WHERE state = 'pending' AND run_after <= now()
//   ORDER BY id LIMIT k FOR UPDATE SKIP LOCKED) UPDATE ... RETURNING ...; attempts are counted
//   at claim, the lease token is 128 random bits (gen_random_uuid) and the expiry is database
//   time. A partial index on pending rows serves the inner SELECT.
// - Fencing: every later write carries `WHERE id = $1 AND lease_token = $2 AND
//   state = 'running'`; the result row and the terminal state are one statement (a CTE), so they
//   commit together. No transaction is ever held open across a download or analysis.
// - Schema: versioned migrations in vsieve_schema_version, applied under a transaction-scoped
//   advisory lock, so several daemons starting at once migrate once. Tables are prefixed
//   `vsieve_` so the store can share a database.
// - Connection: the URL goes to libpq as given (multi-host `host1,host2` and
//   target_session_attrs=read-write work; the password from the URL, PGPASSWORD or PGPASSFILE).
//   connect_timeout defaults to 10 s, statement_timeout and idle_in_transaction_session_timeout
//   to 30 s. When the connection breaks (server restart, failover) the operation is retried on
//   a new connection with jittered exponential backoff for up to `reconnect_seconds`; a write
//   whose COMMIT reply was lost is retried under its fence, so it is applied at most once.
//
// Thread-safety: every method may be called from several threads; one mutex serialises the
// connection (open one store per claimer for parallel claims). Methods block on the database and,
// while it is away, on the reconnect backoff. Errors: kInvalidArgument for bad arguments or a
// newer schema, kInternal with the server's message otherwise (retryable for connection loss,
// serialization failures and deadlocks).
class PostgresTableStore final : public TableStore {
 public:
  struct Options {
    double reconnect_seconds = 60.0;  // give up on a broken connection after this long
    double backoff_base_seconds = 0.05;
    double backoff_cap_seconds = 2.0;
  };

  // Connects to `url` (postgresql://...) and migrates the schema. One connection attempt (per
  // host); errors: kInternal with libpq's message (the URL's password masked).
  static common::StatusOr<std::unique_ptr<PostgresTableStore>> Open(const std::string& url,
                                                                    Options options);
  static common::StatusOr<std::unique_ptr<PostgresTableStore>> Open(const std::string& url) {
    return Open(url, Options());
  }

  ~PostgresTableStore() override;

  common::StatusOr<ImportResult> Import(const std::vector<InputRow>& rows) override;
  common::StatusOr<std::vector<Lease>> Claim(const std::string& owner,
                                             const std::vector<std::string>& tables, int max_rows,
                                             int lease_seconds) override;
  common::StatusOr<bool> Heartbeat(const Lease& lease, int lease_seconds) override;
  common::StatusOr<bool> Complete(const Lease& lease, const std::string& result_json,
                                  bool succeeded, const std::string& error_code,
                                  const std::string& error_message) override;
  common::StatusOr<std::vector<bool>> CompleteMany(
      const std::vector<Completion>& completions) override;
  common::StatusOr<bool> Retry(const Lease& lease, const std::string& error_code,
                               const std::string& error_message, double delay_seconds) override;
  common::StatusOr<bool> Release(const Lease& lease) override;
  // `max_attempts` < 1 means no limit: every expired row goes back to pending.
  common::StatusOr<int> ReclaimExpired(int max_attempts) override;
  common::StatusOr<int> ReclaimOwner(const std::string& owner) override;
  common::StatusOr<RequeueResult> Requeue(const RequeueFilter& filter) override;
  common::Status ForEachRow(const std::string& table, std::optional<RowState> state,
                            const std::function<void(const RowRecord&)>& each) override;
  common::StatusOr<RowRecord> GetRow(const std::string& table,
                                     const std::string& video_id) override;
  common::StatusOr<StoreStats> Stats(const std::string& table) override;

  // How many times a broken connection was replaced (for tests and metrics).
  int64_t reconnects() const;

 private:
  PostgresTableStore(std::string url, Options options, PgConnection conn);

  // Runs `body` on the connection; when it fails because the connection broke (or with a
  // serialization failure or deadlock), reconnects with backoff and runs it again, until
  // options_.reconnect_seconds pass. `body` must be safe to repeat (each run is its own
  // transaction). Requires mutex_.
  common::Status WithRetryLocked(const std::function<common::Status()>& body);
  // Replaces the connection; false (with `why`) when the server cannot be reached.
  bool ReconnectLocked(std::string* why);
  // One statement with text parameters; kInternal on failure. Requires mutex_.
  common::StatusOr<PgResult> ExecLocked(const std::string& sql,
                                        const std::vector<std::string>& params = {});
  // BEGIN; body; COMMIT (ROLLBACK when body fails). Requires mutex_.
  common::Status TransactionLocked(const std::function<common::Status()>& body);
  common::Status MigrateLocked();

  const std::string url_;
  const Options options_;
  mutable std::mutex mutex_;
  PgConnection conn_;       // guarded by mutex_
  std::mt19937_64 random_;  // guarded by mutex_
  int64_t reconnects_ = 0;  // guarded by mutex_
};

}  // namespace vsieve::storage
