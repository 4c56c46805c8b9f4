#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "storage/table_store.h"

struct sqlite3;

namespace vsieve::storage {

// Owns one sqlite3 connection; closes it on destruction. Move-only.
class SqliteConnection {
 public:
  SqliteConnection() = default;
  explicit SqliteConnection(sqlite3* db) : db_(db) {}
  ~SqliteConnection();
  SqliteConnection(SqliteConnection&& other) noexcept;
  SqliteConnection& operator=(SqliteConnection&& other) noexcept;
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;

  sqlite3* get() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

// The embedded table store: one SQLite file in WAL mode (DESIGN.md, "Storage").
//
// - Durability: synchronous=FULL, so a committed claim or result survives power loss, not only a
//   process crash. NORMAL would be faster in WAL mode but may lose the last commits on power
//   loss, which this project cannot test on its build box; FULL is the setting we can argue for.
// - Concurrency: every write runs in BEGIN IMMEDIATE (the write lock is taken up front, so a
//   transaction never fails half-way with SQLITE_BUSY); busy_timeout is 5 s, and BEGIN IMMEDIATE
//   is retried a bounded number of times on top of it. Several processes may open one file.
// - Time: every lease expiry, retry time and finish time is database time,
//   (julianday('now') - 2440587.5) * 86400.0 (unixepoch('subsec') needs SQLite 3.42; Debian 12
//   has 3.40).
// - Leases: a claim sets a 128-bit random hex token (randomblob(16)); every later write is
//   fenced by `WHERE id=? AND lease_token=? AND state='running'`.
// - Schema: migrated on open, recorded in schema_version. Tables: rows, results (one per row,
//   replaced in place when a row is processed again) and attempt_history (errors of earlier
//   attempts, written on Retry, on lease expiry and on Requeue).
//
// Thread-safety: every method may be called from several threads; one mutex serialises the
// connection. ForEachRow() releases it while calling back. Methods block on the database (up to
// the busy timeout and retries when another process holds the write lock).
// Errors: kInvalidArgument for bad arguments, kInternal with SQLite's message otherwise
// (retryable when SQLite reported SQLITE_BUSY/SQLITE_LOCKED after every retry).
class SqliteTableStore final : public TableStore {
 public:
  // Opens or creates the database file at `path` (its folder must exist) and migrates the
  // schema. Errors: kInternal naming the path and SQLite's message; kInvalidArgument when the
  // file's schema is newer than this program.
  static common::StatusOr<std::unique_ptr<SqliteTableStore>> Open(const std::string& path);

  ~SqliteTableStore() override;

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

  // The file this store was opened on.
  const std::string& path() const { return path_; }

 private:
  SqliteTableStore(std::string path, SqliteConnection db);

  // Runs `body` inside BEGIN IMMEDIATE ... COMMIT. `body` returns true to commit, false to roll
  // back; an error rolls back and is returned. Requires mutex_.
  common::StatusOr<bool> WriteTransactionLocked(
      const std::function<common::StatusOr<bool>()>& body);
  common::Status ExecLocked(const char* sql);
  common::Status MigrateLocked();
  // The fenced terminal write of one completion; false when the lease was lost. Requires mutex_
  // and an open transaction.
  common::StatusOr<bool> CompleteOneLocked(const Completion& completion);

  const std::string path_;
  std::mutex mutex_;
  SqliteConnection db_;  // guarded by mutex_
};

}  // namespace vsieve::storage
