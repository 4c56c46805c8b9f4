#include "storage/sqlite_table_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <string_view>
#include <thread>
#include <utility>

namespace vsieve::storage {
namespace {

using common::ErrorCode;
using common::Status;
using common::StatusOr;

constexpr int kSchemaVersion = 1;
constexpr int kBusyTimeoutMs = 5000;
constexpr int kBeginRetries = 20;   // on top of the busy timeout
constexpr int kForEachBatch = 512;  // rows read per lock hold in ForEachRow
constexpr int64_t kWalLimitBytes = 64LL << 20;

// Database time in seconds since the epoch, with sub-second precision. SQLite keeps 'now'
// stable within one statement.
#define VSIEVE_DB_NOW "((julianday('now') - 2440587.5) * 86400.0)"

Status SqliteError(sqlite3* db, int rc, std::string_view what) {
  const bool busy = rc == SQLITE_BUSY || rc == SQLITE_LOCKED;
  const char* message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return Status(ErrorCode::kInternal, std::string(what) + ": sqlite: " + message, busy);
}

// Owns one prepared statement; finalizes it on destruction. Binds are 1-based, columns 0-based.
class Statement {
 public:
  static StatusOr<Statement> Prepare(sqlite3* db, std::string_view sql) {
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
    if (rc != SQLITE_OK) return SqliteError(db, rc, "preparing statement");
    return Statement(db, stmt);
  }
  Statement(Statement&& other) noexcept
      : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)) {}
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() {
    if (stmt_ != nullptr) sqlite3_finalize(stmt_);
  }

  void Bind(int index, int64_t value) { sqlite3_bind_int64(stmt_, index, value); }
  void Bind(int index, int value) { sqlite3_bind_int64(stmt_, index, value); }
  void Bind(int index, double value) { sqlite3_bind_double(stmt_, index, value); }
  void Bind(int index, const std::string& value) {
    sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
  }

  // Advances; true when a row is available.
  StatusOr<bool> Step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqliteError(db_, rc, "running statement");
  }
  // Steps to the end, ignoring rows.
  Status Run() {
    while (true) {
      StatusOr<bool> row = Step();
      if (!row.ok()) return row.status();
      if (!*row) return Status::Ok();
    }
  }
  Status Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    return Status::Ok();
  }

  int64_t Int(int column) const { return sqlite3_column_int64(stmt_, column); }
  double Double(int column) const { return sqlite3_column_double(stmt_, column); }
  bool IsNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  std::string Text(int column) const {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
    if (text == nullptr) return std::string();
    return std::string(text, static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
  }
  int Changes() const { return sqlite3_changes(db_); }

 private:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

// Columns read into a RowRecord, in this order, from `rows r LEFT JOIN results s`.
constexpr const char* kRecordColumns =
    "r.id, r.table_name, r.video_id, r.oss_bucket, r.video_path, r.video_tag, r.info_json, "
    "r.state, r.attempts, r.last_error_code, r.last_error_message, r.lease_owner, "
    "strftime('%Y-%m-%dT%H:%M:%fZ', r.updated_at, 'unixepoch'), s.result_json";

RowRecord ReadRecord(const Statement& stmt) {
  RowRecord record;
  record.row.table = stmt.Text(1);
  record.row.video_id = stmt.Text(2);
  record.row.oss_bucket = stmt.Text(3);
  record.row.video_path = stmt.Text(4);
  record.row.video_tag = stmt.Text(5);
  record.row.info_json = stmt.Text(6);
  ParseRowState(stmt.Text(7), &record.state);
  record.attempts = static_cast<int>(stmt.Int(8));
  record.last_error_code = stmt.Text(9);
  record.last_error_message = stmt.Text(10);
  record.lease_owner = stmt.Text(11);
  record.updated_at = stmt.Text(12);
  if (!stmt.IsNull(13)) record.result_json = stmt.Text(13);
  return record;
}

// The fence every write after a claim carries.
constexpr const char* kFence = " WHERE id = ? AND lease_token = ? AND state = 'running'";

// Appends one history entry for `row_id`, copying its current attempts, state and error
// unless `code` is given.
Status AddHistory(sqlite3* db, int64_t row_id, const std::string* code,
                  const std::string* message) {
  VSIEVE_ASSIGN_OR_RETURN(
      Statement stmt,
      Statement::Prepare(
          db,
          "INSERT INTO attempt_history(row_id, attempt, state, error_code, error_message, at) "
          "SELECT id, attempts, state, coalesce(?2, last_error_code), "
          "coalesce(?3, last_error_message), " VSIEVE_DB_NOW " FROM rows WHERE id = ?1"));
  stmt.Bind(1, row_id);
  if (code != nullptr) stmt.Bind(2, *code);
  if (message != nullptr) stmt.Bind(3, *message);
  return stmt.Run();
}

}  // namespace

SqliteConnection::~SqliteConnection() {
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

SqliteConnection::SqliteConnection(SqliteConnection&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)) {}

SqliteConnection& SqliteConnection::operator=(SqliteConnection&& other) noexcept {
  if (this != &other) {
    if (db_ != nullptr) sqlite3_close_v2(db_);
    db_ = std::exchange(other.db_, nullptr);
  }
  return *this;
}

SqliteTableStore::SqliteTableStore(std::string path, SqliteConnection db)
    : path_(std::move(path)), db_(std::move(db)) {}

SqliteTableStore::~SqliteTableStore() = default;

StatusOr<std::unique_ptr<SqliteTableStore>> SqliteTableStore::Open(const std::string& path) {
  if (path.empty()) return Status(ErrorCode::kInvalidArgument, "empty SQLite path");
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  SqliteConnection db(raw);  // owns the handle even when open failed
  if (rc != SQLITE_OK) return SqliteError(raw, rc, "opening " + path);
  sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
  sqlite3_extended_result_codes(db.get(), 0);
  std::unique_ptr<SqliteTableStore> store(new SqliteTableStore(path, std::move(db)));
  std::lock_guard<std::mutex> lock(store->mutex_);
  // journal_mode=WAL needs a short exclusive lock the first time; another process opening the
  // same new file at once may hold it, so retry within bounds.
  Status wal;
  for (int attempt = 0; attempt < kBeginRetries; ++attempt) {
    wal = store->ExecLocked("PRAGMA journal_mode=WAL");
    if (wal.ok() || !wal.retryable()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20 * (attempt + 1)));
  }
  VSIEVE_RETURN_IF_ERROR(wal.WithContext(path));
  VSIEVE_RETURN_IF_ERROR(store->ExecLocked("PRAGMA synchronous=FULL").WithContext(path));
  VSIEVE_RETURN_IF_ERROR(store->ExecLocked("PRAGMA foreign_keys=ON").WithContext(path));
  // After a checkpoint the WAL file is truncated to this size, so it stays bounded.
  const std::string limit = "PRAGMA journal_size_limit=" + std::to_string(kWalLimitBytes);
  VSIEVE_RETURN_IF_ERROR(store->ExecLocked(limit.c_str()).WithContext(path));
  VSIEVE_RETURN_IF_ERROR(store->MigrateLocked().WithContext(path));
  return StatusOr<std::unique_ptr<SqliteTableStore>>(std::move(store));
}

Status SqliteTableStore::ExecLocked(const char* sql) {
  char* error = nullptr;
  const int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, &error);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string message = error != nullptr ? error : sqlite3_errstr(rc);
  sqlite3_free(error);
  const bool busy = rc == SQLITE_BUSY || rc == SQLITE_LOCKED;
  return Status(ErrorCode::kInternal, std::string("sqlite: ") + message, busy);
}

StatusOr<bool> SqliteTableStore::WriteTransactionLocked(
    const std::function<StatusOr<bool>()>& body) {
  Status begin;
  for (int attempt = 0; attempt < kBeginRetries; ++attempt) {
    begin = ExecLocked("BEGIN IMMEDIATE");
    if (begin.ok() || !begin.retryable()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10 * (attempt + 1)));
  }
  VSIEVE_RETURN_IF_ERROR(begin.WithContext("BEGIN IMMEDIATE"));
  StatusOr<bool> commit = body();
  if (!commit.ok() || !*commit) {
    // A failed ROLLBACK leaves nothing more to do: SQLite rolls back on its own then.
    (void)ExecLocked("ROLLBACK");
    return commit;
  }
  Status status = ExecLocked("COMMIT");
  if (!status.ok()) {
    (void)ExecLocked("ROLLBACK");
    return status.WithContext("COMMIT");
  }
  return true;
}

Status SqliteTableStore::MigrateLocked() {
  StatusOr<bool> done = WriteTransactionLocked([&]() -> StatusOr<bool> {
    VSIEVE_RETURN_IF_ERROR(
        ExecLocked("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"));
    VSIEVE_ASSIGN_OR_RETURN(
        Statement read,
        Statement::Prepare(db_.get(), "SELECT coalesce(max(version), 0) FROM schema_version"));
    VSIEVE_ASSIGN_OR_RETURN(bool has_row, read.Step());
    const int64_t version = has_row ? read.Int(0) : 0;
    if (version > kSchemaVersion) {
      return Status(ErrorCode::kInvalidArgument,
                    "the database schema is version " + std::to_string(version) +
                        ", newer than this vsieve (" + std::to_string(kSchemaVersion) + ")");
    }
    if (version < 1) {
      VSIEVE_RETURN_IF_ERROR(
          ExecLocked("CREATE TABLE rows ("
                     " id INTEGER PRIMARY KEY,"
                     " table_name TEXT NOT NULL,"
                     " video_id TEXT NOT NULL,"
                     " oss_bucket TEXT NOT NULL DEFAULT '',"
                     " video_path TEXT NOT NULL DEFAULT '',"
                     " video_tag TEXT NOT NULL DEFAULT '',"
                     " info_json TEXT NOT NULL DEFAULT '{}',"
                     " state TEXT NOT NULL DEFAULT 'pending'"
                     "   CHECK (state IN ('pending', 'running', 'done', 'failed')),"
                     " attempts INTEGER NOT NULL DEFAULT 0,"
                     " not_before REAL NOT NULL DEFAULT 0,"
                     " lease_owner TEXT NOT NULL DEFAULT '',"
                     " lease_token TEXT NOT NULL DEFAULT '',"
                     " lease_expires REAL NOT NULL DEFAULT 0,"
                     " last_error_code TEXT NOT NULL DEFAULT '',"
                     " last_error_message TEXT NOT NULL DEFAULT '',"
                     " created_at REAL NOT NULL,"
                     " updated_at REAL NOT NULL,"
                     " finished_at REAL,"
                     " UNIQUE (table_name, video_id));"
                     "CREATE INDEX rows_state_not_before ON rows (state, not_before);"
                     "CREATE INDEX rows_finished_at ON rows (finished_at);"
                     "CREATE TABLE results ("
                     " row_id INTEGER PRIMARY KEY REFERENCES rows (id),"
                     " video_id TEXT NOT NULL,"
                     " result_json TEXT NOT NULL,"
                     " written_at REAL NOT NULL);"
                     "CREATE TABLE attempt_history ("
                     " id INTEGER PRIMARY KEY,"
                     " row_id INTEGER NOT NULL REFERENCES rows (id),"
                     " attempt INTEGER NOT NULL,"
                     " state TEXT NOT NULL,"
                     " error_code TEXT NOT NULL,"
                     " error_message TEXT NOT NULL,"
                     " at REAL NOT NULL);"
                     "CREATE INDEX attempt_history_row ON attempt_history (row_id);"
                     "INSERT INTO schema_version (version) VALUES (1);"));
    }
    return true;
  });
  return done.status();
}

StatusOr<ImportResult> SqliteTableStore::Import(const std::vector<InputRow>& rows) {
  for (const InputRow& row : rows) {
    if (row.video_id.empty()) return Status(ErrorCode::kInvalidArgument, "empty video_id");
    if (row.table.empty()) return Status(ErrorCode::kInvalidArgument, "empty table name");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  ImportResult result;
  VSIEVE_ASSIGN_OR_RETURN(
      bool committed, WriteTransactionLocked([&]() -> StatusOr<bool> {
        VSIEVE_ASSIGN_OR_RETURN(
            Statement insert,
            Statement::Prepare(db_.get(),
                               "INSERT INTO rows (table_name, video_id, oss_bucket, video_path, "
                               "video_tag, info_json, created_at, updated_at) VALUES "
                               "(?, ?, ?, ?, ?, ?, " VSIEVE_DB_NOW ", " VSIEVE_DB_NOW ") "
                               "ON CONFLICT (table_name, video_id) DO NOTHING"));
        for (const InputRow& row : rows) {
          VSIEVE_RETURN_IF_ERROR(insert.Reset());
          insert.Bind(1, row.table);
          insert.Bind(2, row.video_id);
          insert.Bind(3, row.oss_bucket);
          insert.Bind(4, row.video_path);
          insert.Bind(5, row.video_tag);
          insert.Bind(6, row.info_json.empty() ? std::string("{}") : row.info_json);
          VSIEVE_RETURN_IF_ERROR(insert.Run());
          if (insert.Changes() > 0) {
            ++result.inserted;
          } else {
            ++result.unchanged;
          }
        }
        return true;
      }));
  (void)committed;
  return result;
}

StatusOr<std::vector<Lease>> SqliteTableStore::Claim(const std::string& owner,
                                                     const std::vector<std::string>& tables,
                                                     int max_rows, int lease_seconds) {
  if (max_rows < 1) return Status(ErrorCode::kInvalidArgument, "max_rows must be at least 1");
  if (lease_seconds < 1) {
    return Status(ErrorCode::kInvalidArgument, "lease_seconds must be at least 1");
  }
  std::string sql =
      "UPDATE rows SET state = 'running', attempts = attempts + 1, lease_owner = ?1, "
      "lease_token = lower(hex(randomblob(16))), lease_expires = " VSIEVE_DB_NOW
      " + ?2, updated_at = " VSIEVE_DB_NOW
      " WHERE id IN (SELECT id FROM rows WHERE state = 'pending' AND not_before <= " VSIEVE_DB_NOW;
  if (!tables.empty()) {
    sql += " AND table_name IN (";
    for (size_t i = 0; i < tables.size(); ++i) {
      sql += (i == 0 ? "?" : ", ?") + std::to_string(4 + i);
    }
    sql += ")";
  }
  sql +=
      " ORDER BY id LIMIT ?3) RETURNING id, lease_token, attempts, table_name, video_id, "
      "oss_bucket, video_path, video_tag, info_json";
  std::vector<Lease> leases;
  std::lock_guard<std::mutex> lock(mutex_);
  VSIEVE_ASSIGN_OR_RETURN(bool committed, WriteTransactionLocked([&]() -> StatusOr<bool> {
                            leases.clear();
                            VSIEVE_ASSIGN_OR_RETURN(Statement claim,
                                                    Statement::Prepare(db_.get(), sql));
                            claim.Bind(1, owner);
                            claim.Bind(2, static_cast<double>(lease_seconds));
                            claim.Bind(3, max_rows);
                            for (size_t i = 0; i < tables.size(); ++i)
                              claim.Bind(static_cast<int>(4 + i), tables[i]);
                            while (true) {
                              VSIEVE_ASSIGN_OR_RETURN(bool has_row, claim.Step());
                              if (!has_row) break;
                              Lease lease;
                              lease.row_id = claim.Int(0);
                              lease.lease_token = claim.Text(1);
                              lease.attempts = static_cast<int>(claim.Int(2));
                              lease.row.table = claim.Text(3);
                              lease.row.video_id = claim.Text(4);
                              lease.row.oss_bucket = claim.Text(5);
                              lease.row.video_path = claim.Text(6);
                              lease.row.video_tag = claim.Text(7);
                              lease.row.info_json = claim.Text(8);
                              leases.push_back(std::move(lease));
                            }
                            return true;
                          }));
  (void)committed;
  std::sort(leases.begin(), leases.end(),
            [](const Lease& a, const Lease& b) { return a.row_id < b.row_id; });
  return leases;
}

StatusOr<bool> SqliteTableStore::Heartbeat(const Lease& lease, int lease_seconds) {
  if (lease.lease_token.empty()) return false;
  std::lock_guard<std::mutex> lock(mutex_);
  return WriteTransactionLocked([&]() -> StatusOr<bool> {
    VSIEVE_ASSIGN_OR_RETURN(
        Statement stmt,
        Statement::Prepare(db_.get(), std::string("UPDATE rows SET lease_expires = " VSIEVE_DB_NOW
                                                  " + ?3, updated_at = " VSIEVE_DB_NOW) +
                                          " WHERE id = ?1 AND lease_token = ?2 AND "
                                          "state = 'running'"));
    stmt.Bind(1, lease.row_id);
    stmt.Bind(2, lease.lease_token);
    stmt.Bind(3, static_cast<double>(lease_seconds));
    VSIEVE_RETURN_IF_ERROR(stmt.Run());
    return stmt.Changes() == 1;
  });
}

StatusOr<bool> SqliteTableStore::CompleteOneLocked(const Completion& c) {
  if (c.lease.lease_token.empty()) return false;
  VSIEVE_ASSIGN_OR_RETURN(
      Statement update,
      Statement::Prepare(db_.get(),
                         std::string("UPDATE rows SET state = ?, last_error_code = ?, "
                                     "last_error_message = ?, lease_owner = '', lease_token = '', "
                                     "lease_expires = 0, finished_at = " VSIEVE_DB_NOW
                                     ", updated_at = " VSIEVE_DB_NOW) +
                             kFence));
  update.Bind(1, std::string(c.succeeded ? "done" : "failed"));
  update.Bind(2, c.succeeded ? std::string() : c.error_code);
  update.Bind(3, c.succeeded ? std::string() : c.error_message);
  update.Bind(4, c.lease.row_id);
  update.Bind(5, c.lease.lease_token);
  VSIEVE_RETURN_IF_ERROR(update.Run());
  if (update.Changes() != 1) return false;
  VSIEVE_ASSIGN_OR_RETURN(
      Statement result,
      Statement::Prepare(db_.get(),
                         "INSERT INTO results (row_id, video_id, result_json, written_at) "
                         "SELECT id, video_id, ?2, " VSIEVE_DB_NOW " FROM rows WHERE id = ?1 "
                         "ON CONFLICT (row_id) DO UPDATE SET video_id = excluded.video_id, "
                         "result_json = excluded.result_json, written_at = excluded.written_at"));
  result.Bind(1, c.lease.row_id);
  result.Bind(2, c.result_json);
  VSIEVE_RETURN_IF_ERROR(result.Run());
  return true;
}

StatusOr<bool> SqliteTableStore::Complete(const Lease& lease, const std::string& result_json,
                                          bool succeeded, const std::string& error_code,
                                          const std::string& error_message) {
  Completion completion{lease, result_json, succeeded, error_code, error_message};
  std::lock_guard<std::mutex> lock(mutex_);
  // A lost lease rolls back: nothing was written.
  return WriteTransactionLocked([&]() { return CompleteOneLocked(completion); });
}

StatusOr<std::vector<bool>> SqliteTableStore::CompleteMany(
    const std::vector<Completion>& completions) {
  std::vector<bool> written(completions.size(), false);
  if (completions.empty()) return written;
  std::lock_guard<std::mutex> lock(mutex_);
  VSIEVE_ASSIGN_OR_RETURN(bool committed, WriteTransactionLocked([&]() -> StatusOr<bool> {
                            for (size_t i = 0; i < completions.size(); ++i) {
                              // Each entry's UPDATE is fenced before its INSERT, so a lost lease
                              // writes nothing.
                              VSIEVE_ASSIGN_OR_RETURN(bool ok, CompleteOneLocked(completions[i]));
                              written[i] = ok;
                            }
                            return true;
                          }));
  (void)committed;
  return written;
}

StatusOr<bool> SqliteTableStore::Retry(const Lease& lease, const std::string& error_code,
                                       const std::string& error_message, double delay_seconds) {
  if (lease.lease_token.empty()) return false;
  if (!(delay_seconds >= 0.0)) delay_seconds = 0.0;
  std::lock_guard<std::mutex> lock(mutex_);
  return WriteTransactionLocked([&]() -> StatusOr<bool> {
    VSIEVE_ASSIGN_OR_RETURN(
        Statement stmt,
        Statement::Prepare(
            db_.get(),
            std::string("UPDATE rows SET state = 'pending', not_before = " VSIEVE_DB_NOW
                        " + ?3, last_error_code = ?4, "
                        "last_error_message = ?5, lease_owner = '', "
                        "lease_token = '', lease_expires = 0, updated_at = " VSIEVE_DB_NOW) +
                " WHERE id = ?1 AND lease_token = ?2 AND state = 'running'"));
    stmt.Bind(1, lease.row_id);
    stmt.Bind(2, lease.lease_token);
    stmt.Bind(3, delay_seconds);
    stmt.Bind(4, error_code);
    stmt.Bind(5, error_message);
    VSIEVE_RETURN_IF_ERROR(stmt.Run());
    if (stmt.Changes() != 1) return false;
    VSIEVE_RETURN_IF_ERROR(AddHistory(db_.get(), lease.row_id, nullptr, nullptr));
    return true;
  });
}

StatusOr<bool> SqliteTableStore::Release(const Lease& lease) {
  if (lease.lease_token.empty()) return false;
  std::lock_guard<std::mutex> lock(mutex_);
  return WriteTransactionLocked([&]() -> StatusOr<bool> {
    VSIEVE_ASSIGN_OR_RETURN(
        Statement stmt,
        Statement::Prepare(
            db_.get(),
            std::string("UPDATE rows SET state = 'pending', "
                        "attempts = max(attempts - 1, 0), lease_owner = '', "
                        "lease_token = '', lease_expires = 0, updated_at = " VSIEVE_DB_NOW) +
                kFence));
    stmt.Bind(1, lease.row_id);
    stmt.Bind(2, lease.lease_token);
    VSIEVE_RETURN_IF_ERROR(stmt.Run());
    return stmt.Changes() == 1;
  });
}

StatusOr<int> SqliteTableStore::ReclaimExpired(int max_attempts) {
  const int64_t limit = max_attempts < 1 ? INT64_MAX : max_attempts;
  int changed = 0;
  std::lock_guard<std::mutex> lock(mutex_);
  VSIEVE_ASSIGN_OR_RETURN(
      bool committed, WriteTransactionLocked([&]() -> StatusOr<bool> {
        changed = 0;
        // The guard is re-checked by the UPDATE itself: a row completed a moment ago is no longer
        // running and is left alone.
        VSIEVE_ASSIGN_OR_RETURN(
            Statement stmt,
            Statement::Prepare(
                db_.get(),
                "UPDATE rows SET state = CASE WHEN attempts >= ?1 THEN 'failed' ELSE 'pending' "
                "END, "
                "finished_at = CASE WHEN attempts >= ?1 THEN " VSIEVE_DB_NOW " ELSE NULL END, "
                "last_error_code = 'TIMEOUT', "
                "last_error_message = 'lease of ' || lease_owner || ' expired', "
                "lease_owner = '', lease_token = '', lease_expires = 0, updated_at = " VSIEVE_DB_NOW
                " WHERE state = 'running' AND lease_expires < " VSIEVE_DB_NOW " RETURNING id"));
        stmt.Bind(1, limit);
        std::vector<int64_t> ids;
        while (true) {
          VSIEVE_ASSIGN_OR_RETURN(bool has_row, stmt.Step());
          if (!has_row) break;
          ids.push_back(stmt.Int(0));
        }
        for (int64_t id : ids) VSIEVE_RETURN_IF_ERROR(AddHistory(db_.get(), id, nullptr, nullptr));
        changed = static_cast<int>(ids.size());
        return true;
      }));
  (void)committed;
  return changed;
}

StatusOr<int> SqliteTableStore::ReclaimOwner(const std::string& owner) {
  int changed = 0;
  std::lock_guard<std::mutex> lock(mutex_);
  VSIEVE_ASSIGN_OR_RETURN(
      bool committed, WriteTransactionLocked([&]() -> StatusOr<bool> {
        VSIEVE_ASSIGN_OR_RETURN(
            Statement stmt,
            Statement::Prepare(db_.get(),
                               "UPDATE rows SET state = 'pending', lease_owner = '', "
                               "lease_token = '', lease_expires = 0, updated_at = " VSIEVE_DB_NOW
                               " WHERE state = 'running' AND lease_owner = ?1"));
        stmt.Bind(1, owner);
        VSIEVE_RETURN_IF_ERROR(stmt.Run());
        changed = stmt.Changes();
        return true;
      }));
  (void)committed;
  return changed;
}

StatusOr<RequeueResult> SqliteTableStore::Requeue(const RequeueFilter& filter) {
  const int selectors = (filter.failed ? 1 : 0) + (filter.video_ids.empty() ? 0 : 1) +
                        (filter.error_code.empty() ? 0 : 1);
  if (selectors != 1) {
    return Status(ErrorCode::kInvalidArgument,
                  "requeue needs exactly one of: failed, video ids, error code");
  }
  RequeueResult result;
  std::lock_guard<std::mutex> lock(mutex_);
  VSIEVE_ASSIGN_OR_RETURN(
      bool committed, WriteTransactionLocked([&]() -> StatusOr<bool> {
        result = RequeueResult();
        // Matching rows with their states; each is then counted or requeued.
        std::string select = "SELECT id, state FROM rows WHERE (?1 = '' OR table_name = ?1) AND ";
        if (!filter.video_ids.empty()) {
          select += "video_id = ?2";
        } else if (filter.failed) {
          select += "state = 'failed'";
        } else {
          select += "state = 'failed' AND last_error_code = ?2";
        }
        VSIEVE_ASSIGN_OR_RETURN(Statement find, Statement::Prepare(db_.get(), select));
        VSIEVE_ASSIGN_OR_RETURN(
            Statement update,
            Statement::Prepare(db_.get(),
                               "UPDATE rows SET state = 'pending', not_before = 0, attempts = 0, "
                               "last_error_code = '', last_error_message = '', finished_at = NULL, "
                               "updated_at = " VSIEVE_DB_NOW
                               " WHERE id = ?1 AND state IN ('done', 'failed')"));
        auto visit = [&](const std::string* key) -> Status {
          VSIEVE_RETURN_IF_ERROR(find.Reset());
          find.Bind(1, filter.table);
          if (key != nullptr) find.Bind(2, *key);
          std::vector<std::pair<int64_t, std::string>> matches;
          while (true) {
            VSIEVE_ASSIGN_OR_RETURN(bool has_row, find.Step());
            if (!has_row) break;
            matches.emplace_back(find.Int(0), find.Text(1));
          }
          if (matches.empty() && !filter.video_ids.empty()) ++result.not_found;
          for (const auto& [id, state] : matches) {
            if (state == "pending") {
              ++result.already_pending;
            } else if (state == "running") {
              ++result.refused_running;
            } else {
              VSIEVE_RETURN_IF_ERROR(AddHistory(db_.get(), id, nullptr, nullptr));
              VSIEVE_RETURN_IF_ERROR(update.Reset());
              update.Bind(1, id);
              VSIEVE_RETURN_IF_ERROR(update.Run());
              result.requeued += update.Changes();
            }
          }
          return Status::Ok();
        };
        if (!filter.video_ids.empty()) {
          for (const std::string& id : filter.video_ids) VSIEVE_RETURN_IF_ERROR(visit(&id));
        } else if (filter.failed) {
          VSIEVE_RETURN_IF_ERROR(visit(nullptr));
        } else {
          VSIEVE_RETURN_IF_ERROR(visit(&filter.error_code));
        }
        return true;
      }));
  (void)committed;
  return result;
}

Status SqliteTableStore::ForEachRow(const std::string& table, std::optional<RowState> state,
                                    const std::function<void(const RowRecord&)>& each) {
  const std::string state_name = state ? std::string(RowStateName(*state)) : std::string();
  const std::string sql = std::string("SELECT ") + kRecordColumns +
                          " FROM rows r LEFT JOIN results s ON s.row_id = r.id "
                          "WHERE r.id > ?1 AND (?2 = '' OR r.table_name = ?2) "
                          "AND (?3 = '' OR r.state = ?3) ORDER BY r.id LIMIT ?4";
  int64_t after = 0;
  while (true) {
    std::vector<RowRecord> batch;
    {
      // The lock is held per batch, never while calling back.
      std::lock_guard<std::mutex> lock(mutex_);
      VSIEVE_ASSIGN_OR_RETURN(Statement stmt, Statement::Prepare(db_.get(), sql));
      stmt.Bind(1, after);
      stmt.Bind(2, table);
      stmt.Bind(3, state_name);
      stmt.Bind(4, kForEachBatch);
      while (true) {
        VSIEVE_ASSIGN_OR_RETURN(bool has_row, stmt.Step());
        if (!has_row) break;
        after = stmt.Int(0);
        batch.push_back(ReadRecord(stmt));
      }
    }
    for (const RowRecord& record : batch) each(record);
    if (static_cast<int>(batch.size()) < kForEachBatch) return Status::Ok();
  }
}

StatusOr<RowRecord> SqliteTableStore::GetRow(const std::string& table,
                                             const std::string& video_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  VSIEVE_ASSIGN_OR_RETURN(
      Statement stmt,
      Statement::Prepare(db_.get(), std::string("SELECT ") + kRecordColumns +
                                        " FROM rows r LEFT JOIN results s ON s.row_id = r.id "
                                        "WHERE (?1 = '' OR r.table_name = ?1) AND "
                                        "r.video_id = ?2 ORDER BY r.id LIMIT 1"));
  stmt.Bind(1, table);
  stmt.Bind(2, video_id);
  VSIEVE_ASSIGN_OR_RETURN(bool has_row, stmt.Step());
  if (!has_row) {
    return Status(ErrorCode::kObjectNotFound,
                  "no row " + video_id + (table.empty() ? "" : " in table " + table));
  }
  return ReadRecord(stmt);
}

StatusOr<StoreStats> SqliteTableStore::Stats(const std::string& table) {
  StoreStats stats;
  for (const char* name : {"pending", "running", "done", "failed"}) stats.by_state[name] = 0;
  std::lock_guard<std::mutex> lock(mutex_);
  // One read transaction, so the counts agree with each other.
  VSIEVE_RETURN_IF_ERROR(ExecLocked("BEGIN"));
  auto read = [&]() -> Status {
    VSIEVE_ASSIGN_OR_RETURN(Statement by_state,
                            Statement::Prepare(db_.get(),
                                               "SELECT state, count(*) FROM rows WHERE "
                                               "(?1 = '' OR table_name = ?1) GROUP BY state"));
    by_state.Bind(1, table);
    while (true) {
      VSIEVE_ASSIGN_OR_RETURN(bool has_row, by_state.Step());
      if (!has_row) break;
      stats.by_state[by_state.Text(0)] = by_state.Int(1);
    }
    VSIEVE_ASSIGN_OR_RETURN(
        Statement finished,
        Statement::Prepare(
            db_.get(), "SELECT coalesce(sum(finished_at >= " VSIEVE_DB_NOW " - 60), 0), "
                       "coalesce(sum(finished_at >= " VSIEVE_DB_NOW " - 300), 0), "
                       "count(*) FROM rows WHERE (?1 = '' OR table_name = ?1) AND "
                       "state IN ('done', 'failed') AND finished_at >= " VSIEVE_DB_NOW " - 900"));
    finished.Bind(1, table);
    VSIEVE_ASSIGN_OR_RETURN(bool has_row, finished.Step());
    if (has_row) {
      stats.finished_last_1m = finished.Int(0);
      stats.finished_last_5m = finished.Int(1);
      stats.finished_last_15m = finished.Int(2);
    }
    VSIEVE_ASSIGN_OR_RETURN(
        Statement errors,
        Statement::Prepare(db_.get(),
                           "SELECT last_error_code, count(*) AS n FROM rows WHERE "
                           "(?1 = '' OR table_name = ?1) AND state = 'failed' AND "
                           "last_error_code != '' GROUP BY last_error_code "
                           "ORDER BY n DESC, last_error_code LIMIT 10"));
    errors.Bind(1, table);
    while (true) {
      VSIEVE_ASSIGN_OR_RETURN(bool row, errors.Step());
      if (!row) break;
      stats.top_errors.emplace_back(errors.Text(0), errors.Int(1));
    }
    return Status::Ok();
  };
  Status status = read();
  (void)ExecLocked(status.ok() ? "COMMIT" : "ROLLBACK");
  if (!status.ok()) return status;
  return stats;
}

}  // namespace vsieve::storage
