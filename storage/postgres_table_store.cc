#include "storage/postgres_table_store.h"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <thread>
#include <utility>

namespace vsieve::storage {
namespace {

using common::ErrorCode;
using common::Status;
using common::StatusOr;
using Clock = std::chrono::steady_clock;

constexpr int kForEachBatch = 512;
constexpr size_t kImportBatch = 1000;  // rows per INSERT statement

// Versioned migrations, applied in order inside one transaction under an advisory lock. Never
// edit one that has shipped: add the next version.
struct Migration {
  int version;
  const char* sql;
};

constexpr Migration kMigrations[] = {
    {1,
     "CREATE TABLE IF NOT EXISTS vsieve_rows ("
     " id bigserial PRIMARY KEY,"
     " table_name text NOT NULL,"
     " video_id text NOT NULL,"
     " oss_bucket text NOT NULL DEFAULT '',"
     " video_path text NOT NULL DEFAULT '',"
     " video_tag text NOT NULL DEFAULT '',"
     " info_json text NOT NULL DEFAULT '{}',"
     " state text NOT NULL DEFAULT 'pending'"
     "   CHECK (state IN ('pending', 'running', 'done', 'failed')),"
     " attempts integer NOT NULL DEFAULT 0,"
     " run_after timestamptz NOT NULL DEFAULT '-infinity',"
     " lease_owner text NOT NULL DEFAULT '',"
     " lease_token text NOT NULL DEFAULT '',"
     " lease_expires timestamptz,"
     " last_error_code text NOT NULL DEFAULT '',"
     " last_error_message text NOT NULL DEFAULT '',"
     " created_at timestamptz NOT NULL DEFAULT now(),"
     " updated_at timestamptz NOT NULL DEFAULT now(),"
     " finished_at timestamptz,"
     " UNIQUE (table_name, video_id));"
     // The claim's inner SELECT walks this partial index in id order and stops after k rows.
     "CREATE INDEX IF NOT EXISTS vsieve_rows_claimable ON vsieve_rows (id)"
     " WHERE state = 'pending';"
     "CREATE INDEX IF NOT EXISTS vsieve_rows_running ON vsieve_rows (lease_expires)"
     " WHERE state = 'running';"
     "CREATE INDEX IF NOT EXISTS vsieve_rows_finished_at ON vsieve_rows (finished_at)"
     " WHERE finished_at IS NOT NULL;"
     "CREATE TABLE IF NOT EXISTS vsieve_results ("
     " row_id bigint PRIMARY KEY REFERENCES vsieve_rows (id),"
     " video_id text NOT NULL,"
     " result_json text NOT NULL,"
     " written_at timestamptz NOT NULL);"
     "CREATE TABLE IF NOT EXISTS vsieve_attempt_history ("
     " id bigserial PRIMARY KEY,"
     " row_id bigint NOT NULL REFERENCES vsieve_rows (id),"
     " attempt integer NOT NULL,"
     " state text NOT NULL,"
     " error_code text NOT NULL,"
     " error_message text NOT NULL,"
     " at timestamptz NOT NULL);"
     "CREATE INDEX IF NOT EXISTS vsieve_attempt_history_row ON vsieve_attempt_history (row_id);"
     // Claimed rows churn: leave room for HOT updates and vacuum the table often.
     "ALTER TABLE vsieve_rows SET (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.05);"},
};
constexpr int kSchemaVersion = 1;

// Columns read into a RowRecord, in this order, from `vsieve_rows r LEFT JOIN vsieve_results s`.
constexpr const char* kRecordColumns =
    "r.id, r.table_name, r.video_id, r.oss_bucket, r.video_path, r.video_tag, r.info_json, "
    "r.state, r.attempts, r.last_error_code, r.last_error_message, r.lease_owner, "
    "to_char(r.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
    "s.result_json";

RowRecord ReadRecord(const PgResult& result, int i) {
  RowRecord record;
  record.row.table = result.Text(i, 1);
  record.row.video_id = result.Text(i, 2);
  record.row.oss_bucket = result.Text(i, 3);
  record.row.video_path = result.Text(i, 4);
  record.row.video_tag = result.Text(i, 5);
  record.row.info_json = result.Text(i, 6);
  ParseRowState(result.Text(i, 7), &record.state);
  record.attempts = static_cast<int>(result.Int(i, 8));
  record.last_error_code = result.Text(i, 9);
  record.last_error_message = result.Text(i, 10);
  record.lease_owner = result.Text(i, 11);
  record.updated_at = result.Text(i, 12);
  if (!result.IsNull(i, 13)) record.result_json = result.Text(i, 13);
  return record;
}

// The fence every write after a claim carries ($1 = row id, $2 = lease token).
constexpr const char* kFence = " WHERE id = $1 AND lease_token = $2 AND state = 'running'";

// Errors worth another try on a fresh or the same connection: the connection broke, the server
// is shutting down or starting, too many connections, a serialization failure, a deadlock, or a
// standby answered a write (after a failover).
bool TransientSqlState(const std::string& state) {
  if (state.rfind("08", 0) == 0) return true;  // connection exception
  return state == "57P01" || state == "57P02" || state == "57P03" || state == "53300" ||
         state == "40001" || state == "40P01" || state == "25006";
}

std::string Trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

std::string Num(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.6f", value);
  return buffer;
}

}  // namespace

PgConnection::~PgConnection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

PgConnection::PgConnection(PgConnection&& other) noexcept
    : conn_(std::exchange(other.conn_, nullptr)) {}

PgConnection& PgConnection::operator=(PgConnection&& other) noexcept {
  if (this != &other) {
    if (conn_ != nullptr) PQfinish(conn_);
    conn_ = std::exchange(other.conn_, nullptr);
  }
  return *this;
}

PgResult::~PgResult() {
  if (result_ != nullptr) PQclear(result_);
}

PgResult::PgResult(PgResult&& other) noexcept : result_(std::exchange(other.result_, nullptr)) {}

PgResult& PgResult::operator=(PgResult&& other) noexcept {
  if (this != &other) {
    if (result_ != nullptr) PQclear(result_);
    result_ = std::exchange(other.result_, nullptr);
  }
  return *this;
}

int PgResult::rows() const { return result_ != nullptr ? PQntuples(result_) : 0; }

std::string PgResult::Text(int row, int column) const {
  if (PQgetisnull(result_, row, column)) return std::string();
  return std::string(PQgetvalue(result_, row, column),
                     static_cast<size_t>(PQgetlength(result_, row, column)));
}

int64_t PgResult::Int(int row, int column) const {
  return std::strtoll(PQgetvalue(result_, row, column), nullptr, 10);
}

bool PgResult::IsNull(int row, int column) const { return PQgetisnull(result_, row, column) != 0; }

int PgResult::Affected() const {
  const char* text = PQcmdTuples(result_);
  return text != nullptr && *text != '\0' ? std::atoi(text) : 0;
}

namespace {

// Connects with our defaults placed before the URL, so the URL's own settings win.
PgConnection Connect(const std::string& url) {
  const char* keywords[] = {"connect_timeout", "fallback_application_name", "dbname", nullptr};
  const char* values[] = {"10", "vsieve", url.c_str(), nullptr};
  PgConnection conn(PQconnectdbParams(keywords, values, /*expand_dbname=*/1));
  if (conn.get() != nullptr) {
    // CREATE ... IF NOT EXISTS and friends send NOTICEs; libpq would print them to stderr.
    PQsetNoticeProcessor(
        conn.get(), [](void*, const char*) {}, nullptr);
  }
  return conn;
}

// Session settings: a statement never runs (or a transaction idles) forever.
Status ConfigureSession(pg_conn* conn) {
  PgResult result(PQexec(conn,
                         "SET statement_timeout = '30s';"
                         "SET idle_in_transaction_session_timeout = '30s';"
                         "SET lock_timeout = '10s';"));
  if (PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
    return Status(ErrorCode::kInternal, "postgres: " + Trim(PQerrorMessage(conn)), true);
  }
  return Status::Ok();
}

}  // namespace

PostgresTableStore::PostgresTableStore(std::string url, Options options, PgConnection conn)
    : url_(std::move(url)),
      options_(options),
      conn_(std::move(conn)),
      random_(std::random_device{}()) {}

PostgresTableStore::~PostgresTableStore() = default;

StatusOr<std::unique_ptr<PostgresTableStore>> PostgresTableStore::Open(const std::string& url,
                                                                       Options options) {
  const std::string shown = RedactStoreUrl(url);
  PgConnection conn = Connect(url);
  if (conn.get() == nullptr) {
    return Status(ErrorCode::kInternal, "connecting to " + shown + ": out of memory");
  }
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    return Status(ErrorCode::kInternal,
                  "connecting to " + shown + ": " + Trim(PQerrorMessage(conn.get())), true);
  }
  VSIEVE_RETURN_IF_ERROR(ConfigureSession(conn.get()).WithContext(shown));
  std::unique_ptr<PostgresTableStore> store(new PostgresTableStore(url, options, std::move(conn)));
  std::lock_guard<std::mutex> lock(store->mutex_);
  VSIEVE_RETURN_IF_ERROR(store->MigrateLocked().WithContext("migrating " + shown));
  return StatusOr<std::unique_ptr<PostgresTableStore>>(std::move(store));
}

int64_t PostgresTableStore::reconnects() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return reconnects_;
}

StatusOr<PgResult> PostgresTableStore::ExecLocked(const std::string& sql,
                                                  const std::vector<std::string>& params) {
  PgResult result;
  if (params.empty()) {
    result = PgResult(PQexec(conn_.get(), sql.c_str()));
  } else {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const std::string& param : params) values.push_back(param.c_str());
    result = PgResult(PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(params.size()),
                                   nullptr, values.data(), nullptr, nullptr, 0));
  }
  const ExecStatusType status = PQresultStatus(result.get());
  if (result.get() != nullptr && (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)) {
    return result;
  }
  const char* state =
      result.get() != nullptr ? PQresultErrorField(result.get(), PG_DIAG_SQLSTATE) : nullptr;
  const bool transient =
      PQstatus(conn_.get()) != CONNECTION_OK || (state != nullptr && TransientSqlState(state));
  std::string message = Trim(PQerrorMessage(conn_.get()));
  if (message.empty()) message = "no result";
  if (state != nullptr && std::string(state) == "25006") {
    // A read-only server answered a write: after a failover this connection leads to a standby.
    // Drop it, so the retry connects again and target_session_attrs finds the new primary.
    conn_ = PgConnection();
  }
  return Status(
      ErrorCode::kInternal,
      "postgres" + (state != nullptr ? " " + std::string(state) : std::string()) + ": " + message,
      transient);
}

Status PostgresTableStore::TransactionLocked(const std::function<Status()>& body) {
  VSIEVE_RETURN_IF_ERROR(ExecLocked("BEGIN").status());
  Status status = body();
  if (status.ok()) status = ExecLocked("COMMIT").status().WithContext("COMMIT");
  if (!status.ok() && PQstatus(conn_.get()) == CONNECTION_OK) {
    // After a failed COMMIT the server has already rolled back; this is then a no-op.
    (void)ExecLocked("ROLLBACK");
  }
  return status;
}

bool PostgresTableStore::ReconnectLocked(std::string* why) {
  PgConnection fresh = Connect(url_);
  if (fresh.get() == nullptr || PQstatus(fresh.get()) != CONNECTION_OK) {
    *why = fresh.get() != nullptr ? Trim(PQerrorMessage(fresh.get())) : "out of memory";
    return false;
  }
  if (Status status = ConfigureSession(fresh.get()); !status.ok()) {
    *why = status.message();
    return false;
  }
  conn_ = std::move(fresh);
  ++reconnects_;
  return true;
}

Status PostgresTableStore::WithRetryLocked(const std::function<Status()>& body) {
  const auto deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(std::max(0.0, options_.reconnect_seconds)));
  int attempt = 0;
  bool warned = false;
  while (true) {
    if (PQstatus(conn_.get()) == CONNECTION_OK &&
        PQtransactionStatus(conn_.get()) != PQTRANS_IDLE) {
      (void)ExecLocked("ROLLBACK");  // never start on a half-open transaction
    }
    Status status = PQstatus(conn_.get()) == CONNECTION_OK
                        ? body()
                        : Status(ErrorCode::kInternal, "postgres: connection lost", true);
    if (status.ok() || !status.retryable()) {
      if (status.ok() && warned) {
        spdlog::info("store: {} answers again after {} tries", RedactStoreUrl(url_), attempt);
      }
      return status;
    }
    // Try once more at once after a broken connection is replaced; back off otherwise.
    while (true) {
      if (Clock::now() >= deadline) {
        return status.WithContext("giving up after " + std::to_string(attempt + 1) + " tries");
      }
      if (!warned) {
        spdlog::warn("store: {}: {}; retrying with backoff", RedactStoreUrl(url_),
                     status.message());
        warned = true;
      }
      const double ceiling = std::min(options_.backoff_cap_seconds,
                                      options_.backoff_base_seconds * std::ldexp(1.0, attempt));
      const double sleep =
          std::max(0.01, std::uniform_real_distribution<double>(0.0, ceiling)(random_));
      ++attempt;
      std::this_thread::sleep_for(std::chrono::duration<double>(sleep));
      if (PQstatus(conn_.get()) == CONNECTION_OK) break;
      std::string why;
      if (ReconnectLocked(&why)) break;
      status = Status(ErrorCode::kInternal, "postgres: reconnecting: " + why, true);
    }
  }
}

Status PostgresTableStore::MigrateLocked() {
  return WithRetryLocked([&]() -> Status {
    return TransactionLocked([&]() -> Status {
      // One migrator at a time across every daemon; released at COMMIT.
      VSIEVE_RETURN_IF_ERROR(
          ExecLocked("SELECT pg_advisory_xact_lock(hashtext('vsieve_schema_version'))").status());
      VSIEVE_RETURN_IF_ERROR(ExecLocked("CREATE TABLE IF NOT EXISTS vsieve_schema_version ("
                                        " version integer PRIMARY KEY,"
                                        " applied_at timestamptz NOT NULL DEFAULT now())")
                                 .status());
      VSIEVE_ASSIGN_OR_RETURN(PgResult read, ExecLocked("SELECT coalesce(max(version), 0) FROM "
                                                        "vsieve_schema_version"));
      const int64_t version = read.Int(0, 0);
      if (version > kSchemaVersion) {
        return Status(ErrorCode::kInvalidArgument,
                      "the database schema is version " + std::to_string(version) +
                          ", newer than this vsieve (" + std::to_string(kSchemaVersion) + ")");
      }
      for (const Migration& migration : kMigrations) {
        if (migration.version <= version) continue;
        VSIEVE_RETURN_IF_ERROR(ExecLocked(migration.sql)
                                   .status()
                                   .WithContext("migration " + std::to_string(migration.version)));
        VSIEVE_RETURN_IF_ERROR(ExecLocked("INSERT INTO vsieve_schema_version (version) VALUES ($1)",
                                          {std::to_string(migration.version)})
                                   .status());
      }
      return Status::Ok();
    });
  });
}

StatusOr<ImportResult> PostgresTableStore::Import(const std::vector<InputRow>& rows) {
  for (const InputRow& row : rows) {
    if (row.video_id.empty()) return Status(ErrorCode::kInvalidArgument, "empty video_id");
    if (row.table.empty()) return Status(ErrorCode::kInvalidArgument, "empty table name");
  }
  ImportResult result;
  std::lock_guard<std::mutex> lock(mutex_);
  VSIEVE_RETURN_IF_ERROR(WithRetryLocked([&]() -> Status {
    result = ImportResult();
    return TransactionLocked([&]() -> Status {
      // Multi-row INSERTs of kImportBatch rows (6 parameters each): one round trip per batch.
      for (size_t first = 0; first < rows.size(); first += kImportBatch) {
        const size_t last = std::min(rows.size(), first + kImportBatch);
        std::string sql =
            "INSERT INTO vsieve_rows (table_name, video_id, oss_bucket, video_path, video_tag, "
            "info_json) VALUES ";
        std::vector<std::string> params;
        params.reserve((last - first) * 6);
        for (size_t i = first; i < last; ++i) {
          const InputRow& row = rows[i];
          const size_t base = params.size();
          sql += (i == first ? "(" : ", (");
          for (size_t k = 1; k <= 6; ++k) {
            sql += (k == 1 ? "$" : ", $") + std::to_string(base + k);
          }
          sql += ")";
          params.insert(params.end(),
                        {row.table, row.video_id, row.oss_bucket, row.video_path, row.video_tag,
                         row.info_json.empty() ? std::string("{}") : row.info_json});
        }
        // A (table, video_id) given twice in one import counts once, as row-by-row inserts do.
        sql += " ON CONFLICT (table_name, video_id) DO NOTHING";
        VSIEVE_ASSIGN_OR_RETURN(PgResult insert, ExecLocked(sql, params));
        result.inserted += insert.Affected();
        result.unchanged += static_cast<int>(last - first) - insert.Affected();
      }
      return Status::Ok();
    });
  }));
  return result;
}

StatusOr<std::vector<Lease>> PostgresTableStore::Claim(const std::string& owner,
                                                       const std::vector<std::string>& tables,
                                                       int max_rows, int lease_seconds) {
  if (max_rows < 1) return Status(ErrorCode::kInvalidArgument, "max_rows must be at least 1");
  if (lease_seconds < 1) {
    return Status(ErrorCode::kInvalidArgument, "lease_seconds must be at least 1");
  }
  std::string sql =
      "WITH c AS MATERIALIZED (SELECT id FROM vsieve_rows WHERE state = 'pending' AND "
      "run_after <= now()";
  std::vector<std::string> params = {owner, std::to_string(lease_seconds),
                                     std::to_string(max_rows)};
  if (!tables.empty()) {
    sql += " AND table_name IN (";
    for (size_t i = 0; i < tables.size(); ++i) {
      sql += (i == 0 ? "$" : ", $") + std::to_string(4 + i);
      params.push_back(tables[i]);
    }
    sql += ")";
  }
  sql +=
      " ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) "
      "UPDATE vsieve_rows r SET state = 'running', attempts = r.attempts + 1, lease_owner = $1, "
      "lease_token = replace(gen_random_uuid()::text, '-', ''), "
      "lease_expires = now() + make_interval(secs => $2::integer), updated_at = now() "
      "FROM c WHERE r.id = c.id RETURNING r.id, r.lease_token, r.attempts, r.table_name, "
      "r.video_id, r.oss_bucket, r.video_path, r.video_tag, r.info_json";
  std::vector<Lease> leases;
  std::lock_guard<std::mutex> lock(mutex_);
  // One statement: its own short transaction. Were the reply lost after the server committed,
  // the rows stay running under this owner until their leases expire; nothing is lost.
  VSIEVE_RETURN_IF_ERROR(WithRetryLocked([&]() -> Status {
    leases.clear();
    VSIEVE_ASSIGN_OR_RETURN(PgResult claimed, ExecLocked(sql, params));
    for (int i = 0; i < claimed.rows(); ++i) {
      Lease lease;
      lease.row_id = claimed.Int(i, 0);
      lease.lease_token = claimed.Text(i, 1);
      lease.attempts = static_cast<int>(claimed.Int(i, 2));
      lease.row.table = claimed.Text(i, 3);
      lease.row.video_id = claimed.Text(i, 4);
      lease.row.oss_bucket = claimed.Text(i, 5);
      lease.row.video_path = claimed.Text(i, 6);
      lease.row.video_tag = claimed.Text(i, 7);
      lease.row.info_json = claimed.Text(i, 8);
      leases.push_back(std::move(lease));
    }
    return Status::Ok();
  }));
  std::sort(leases.begin(), leases.end(),
            [](const Lease& a, const Lease& b) { return a.row_id < b.row_id; });
  return leases;
}

StatusOr<bool> PostgresTableStore::Heartbeat(const Lease& lease, int lease_seconds) {
  if (lease.lease_token.empty()) return false;
  bool alive = false;
  std::lock_guard<std::mutex> lock(mutex_);
  VSIEVE_RETURN_IF_ERROR(WithRetryLocked([&]() -> Status {
    VSIEVE_ASSIGN_OR_RETURN(PgResult beat,
                            ExecLocked(std::string("UPDATE vsieve_rows SET lease_expires = now() + "
                                                   "make_interval(secs => $3::integer)") +
                                           kFence,
                                       {std::to_string(lease.row_id), lease.lease_token,
                                        std::to_string(lease_seconds)}));
    alive = beat.Affected() == 1;
    return Status::Ok();
  }));
  return alive;
}

namespace {

// The fenced terminal write of one completion, as one statement: the state change and the
// result row commit together or not at all. $1 row id, $2 token, $3 state, $4 code, $5 message,
// $6 result.
constexpr const char* kCompleteSql =
    "WITH u AS (UPDATE vsieve_rows SET state = $3, last_error_code = $4, "
    "last_error_message = $5, lease_owner = '', lease_token = '', lease_expires = NULL, "
    "finished_at = now(), updated_at = now() WHERE id = $1 AND lease_token = $2 AND "
    "state = 'running' RETURNING id, video_id) "
    "INSERT INTO vsieve_results (row_id, video_id, result_json, written_at) "
    "SELECT id, video_id, $6, now() FROM u "
    "ON CONFLICT (row_id) DO UPDATE SET video_id = excluded.video_id, "
    "result_json = excluded.result_json, written_at = excluded.written_at";

std::vector<std::string> CompleteParams(const TableStore::Completion& c) {
  return {std::to_string(c.lease.row_id),
          c.lease.lease_token,
          c.succeeded ? "done" : "failed",
          c.succeeded ? std::string() : c.error_code,
          c.succeeded ? std::string() : c.error_message,
          c.result_json};
}

}  // namespace

StatusOr<bool> PostgresTableStore::Complete(const Lease& lease, const std::string& result_json,
                                            bool succeeded, const std::string& error_code,
                                            const std::string& error_message) {
  auto written =
      CompleteMany({Completion{lease, result_json, succeeded, error_code, error_message}});
  if (!written.ok()) return written.status();
  return static_cast<bool>((*written)[0]);
}

StatusOr<std::vector<bool>> PostgresTableStore::CompleteMany(
    const std::vector<Completion>& completions) {
  std::vector<bool> written(completions.size(), false);
  if (completions.empty()) return written;
  std::lock_guard<std::mutex> lock(mutex_);
  // A retry after a lost COMMIT reply finds the leases already ended (the fence matches no row):
  // those entries then read as lost, and nothing is written twice.
  VSIEVE_RETURN_IF_ERROR(WithRetryLocked([&]() -> Status {
    std::fill(written.begin(), written.end(), false);
    return TransactionLocked([&]() -> Status {
      for (size_t i = 0; i < completions.size(); ++i) {
        if (completions[i].lease.lease_token.empty()) continue;
        VSIEVE_ASSIGN_OR_RETURN(PgResult result,
                                ExecLocked(kCompleteSql, CompleteParams(completions[i])));
        written[i] = result.Affected() == 1;
      }
      return Status::Ok();
    });
  }));
  return written;
}

StatusOr<bool> PostgresTableStore::Retry(const Lease& lease, const std::string& error_code,
                                         const std::string& error_message, double delay_seconds) {
  if (lease.lease_token.empty()) return false;
  if (!(delay_seconds >= 0.0)) delay_seconds = 0.0;
  bool retried = false;
  std::lock_guard<std::mutex> lock(mutex_);
  VSIEVE_RETURN_IF_ERROR(WithRetryLocked([&]() -> Status {
    VSIEVE_ASSIGN_OR_RETURN(
        PgResult result,
        ExecLocked(std::string("WITH u AS (UPDATE vsieve_rows SET state = 'pending', "
                               "run_after = now() + make_interval(secs => $3::double precision), "
                               "last_error_code = $4, last_error_message = $5, lease_owner = '', "
                               "lease_token = '', lease_expires = NULL, updated_at = now()") +
                       kFence +
                       " RETURNING id, attempts, state, last_error_code, last_error_message) "
                       "INSERT INTO vsieve_attempt_history (row_id, attempt, state, error_code, "
                       "error_message, at) SELECT id, attempts, state, last_error_code, "
                       "last_error_message, now() FROM u",
                   {std::to_string(lease.row_id), lease.lease_token, Num(delay_seconds), error_code,
                    error_message}));
    retried = result.Affected() == 1;
    return Status::Ok();
  }));
  return retried;
}

StatusOr<bool> PostgresTableStore::Release(const Lease& lease) {
  if (lease.lease_token.empty()) return false;
  bool released = false;
  std::lock_guard<std::mutex> lock(mutex_);
  VSIEVE_RETURN_IF_ERROR(WithRetryLocked([&]() -> Status {
    VSIEVE_ASSIGN_OR_RETURN(
        PgResult result,
        ExecLocked(std::string("UPDATE vsieve_rows SET state = 'pending', "
                               "attempts = greatest(attempts - 1, 0), lease_owner = '', "
                               "lease_token = '', lease_expires = NULL, updated_at = now()") +
                       kFence,
                   {std::to_string(lease.row_id), lease.lease_token}));
    released = result.Affected() == 1;
    return Status::Ok();
  }));
  return released;
}

StatusOr<int> PostgresTableStore::ReclaimExpired(int max_attempts) {
  const int64_t limit = max_attempts < 1 ? INT64_MAX : max_attempts;
  int changed = 0;
  std::lock_guard<std::mutex> lock(mutex_);
  VSIEVE_RETURN_IF_ERROR(WithRetryLocked([&]() -> Status {
    // The guard is part of the UPDATE itself: a row completed a moment ago is no longer running
    // and is left alone. SKIP LOCKED: a row another daemon is writing right now is not waited on.
    VSIEVE_ASSIGN_OR_RETURN(
        PgResult result,
        ExecLocked("WITH x AS MATERIALIZED (SELECT id FROM vsieve_rows WHERE state = 'running' "
                   "AND lease_expires < now() ORDER BY id FOR UPDATE SKIP LOCKED), "
                   "u AS (UPDATE vsieve_rows r SET "
                   "state = CASE WHEN r.attempts >= $1::bigint THEN 'failed' ELSE 'pending' END, "
                   "finished_at = CASE WHEN r.attempts >= $1::bigint THEN now() ELSE NULL END, "
                   "last_error_code = 'TIMEOUT', "
                   "last_error_message = 'lease of ' || r.lease_owner || ' expired', "
                   "lease_owner = '', lease_token = '', lease_expires = NULL, updated_at = now() "
                   "FROM x WHERE r.id = x.id AND r.state = 'running' AND r.lease_expires < now() "
                   "RETURNING r.id, r.attempts, r.state, r.last_error_code, "
                   "r.last_error_message) "
                   "INSERT INTO vsieve_attempt_history (row_id, attempt, state, error_code, "
                   "error_message, at) SELECT id, attempts, state, last_error_code, "
                   "last_error_message, now() FROM u",
                   {std::to_string(limit)}));
    changed = result.Affected();
    return Status::Ok();
  }));
  return changed;
}

StatusOr<int> PostgresTableStore::ReclaimOwner(const std::string& owner) {
  int changed = 0;
  std::lock_guard<std::mutex> lock(mutex_);
  VSIEVE_RETURN_IF_ERROR(WithRetryLocked([&]() -> Status {
    VSIEVE_ASSIGN_OR_RETURN(
        PgResult result,
        ExecLocked("UPDATE vsieve_rows SET state = 'pending', lease_owner = '', lease_token = '', "
                   "lease_expires = NULL, updated_at = now() "
                   "WHERE state = 'running' AND lease_owner = $1",
                   {owner}));
    changed = result.Affected();
    return Status::Ok();
  }));
  return changed;
}

StatusOr<RequeueResult> PostgresTableStore::Requeue(const RequeueFilter& filter) {
  const int selectors = (filter.failed ? 1 : 0) + (filter.video_ids.empty() ? 0 : 1) +
                        (filter.error_code.empty() ? 0 : 1);
  if (selectors != 1) {
    return Status(ErrorCode::kInvalidArgument,
                  "requeue needs exactly one of: failed, video ids, error code");
  }
  // $1 = table ("" = all), $2 = the id or error code when the selector has one.
  std::string where = "($1 = '' OR table_name = $1) AND ";
  if (!filter.video_ids.empty()) {
    where += "video_id = $2";
  } else if (filter.failed) {
    where += "state = 'failed'";
  } else {
    where += "state = 'failed' AND last_error_code = $2";
  }
  const std::string find = "SELECT state, count(*) FROM (SELECT state FROM vsieve_rows WHERE " +
                           where + " FOR UPDATE) m GROUP BY state";
  const std::string requeue =
      "WITH m AS (SELECT id, attempts, state, last_error_code, last_error_message FROM "
      "vsieve_rows WHERE " +
      where +
      " AND state IN ('done', 'failed')), "
      "h AS (INSERT INTO vsieve_attempt_history (row_id, attempt, state, error_code, "
      "error_message, at) SELECT id, attempts, state, last_error_code, last_error_message, now() "
      "FROM m) "
      "UPDATE vsieve_rows r SET state = 'pending', run_after = '-infinity', attempts = 0, "
      "last_error_code = '', last_error_message = '', finished_at = NULL, updated_at = now() "
      "FROM m WHERE r.id = m.id";
  RequeueResult result;
  std::lock_guard<std::mutex> lock(mutex_);
  VSIEVE_RETURN_IF_ERROR(WithRetryLocked([&]() -> Status {
    result = RequeueResult();
    return TransactionLocked([&]() -> Status {
      auto visit = [&](const std::string* key) -> Status {
        std::vector<std::string> params = {filter.table};
        if (key != nullptr) params.push_back(*key);
        // The matching rows are locked first, so the counts and the update agree.
        VSIEVE_ASSIGN_OR_RETURN(PgResult states, ExecLocked(find, params));
        if (states.rows() == 0 && !filter.video_ids.empty()) ++result.not_found;
        for (int i = 0; i < states.rows(); ++i) {
          const std::string state = states.Text(i, 0);
          const int count = static_cast<int>(states.Int(i, 1));
          if (state == "pending") result.already_pending += count;
          if (state == "running") result.refused_running += count;
        }
        VSIEVE_ASSIGN_OR_RETURN(PgResult updated, ExecLocked(requeue, params));
        result.requeued += updated.Affected();
        return Status::Ok();
      };
      if (!filter.video_ids.empty()) {
        for (const std::string& id : filter.video_ids) VSIEVE_RETURN_IF_ERROR(visit(&id));
        return Status::Ok();
      }
      if (filter.failed) return visit(nullptr);
      return visit(&filter.error_code);
    });
  }));
  return result;
}

Status PostgresTableStore::ForEachRow(const std::string& table, std::optional<RowState> state,
                                      const std::function<void(const RowRecord&)>& each) {
  const std::string state_name = state ? std::string(RowStateName(*state)) : std::string();
  const std::string sql = std::string("SELECT ") + kRecordColumns +
                          " FROM vsieve_rows r LEFT JOIN vsieve_results s ON s.row_id = r.id "
                          "WHERE r.id > $1 AND ($2 = '' OR r.table_name = $2) "
                          "AND ($3 = '' OR r.state = $3) ORDER BY r.id LIMIT $4";
  int64_t after = 0;
  while (true) {
    std::vector<RowRecord> batch;
    int64_t last = after;
    {
      // The lock is held per batch, never while calling back.
      std::lock_guard<std::mutex> lock(mutex_);
      VSIEVE_RETURN_IF_ERROR(WithRetryLocked([&]() -> Status {
        batch.clear();
        VSIEVE_ASSIGN_OR_RETURN(PgResult rows,
                                ExecLocked(sql, {std::to_string(after), table, state_name,
                                                 std::to_string(kForEachBatch)}));
        for (int i = 0; i < rows.rows(); ++i) {
          last = rows.Int(i, 0);
          batch.push_back(ReadRecord(rows, i));
        }
        return Status::Ok();
      }));
    }
    after = last;
    for (const RowRecord& record : batch) each(record);
    if (static_cast<int>(batch.size()) < kForEachBatch) return Status::Ok();
  }
}

StatusOr<RowRecord> PostgresTableStore::GetRow(const std::string& table,
                                               const std::string& video_id) {
  std::optional<RowRecord> record;
  std::lock_guard<std::mutex> lock(mutex_);
  VSIEVE_RETURN_IF_ERROR(WithRetryLocked([&]() -> Status {
    VSIEVE_ASSIGN_OR_RETURN(
        PgResult rows,
        ExecLocked(std::string("SELECT ") + kRecordColumns +
                       " FROM vsieve_rows r LEFT JOIN vsieve_results s ON s.row_id = r.id "
                       "WHERE ($1 = '' OR r.table_name = $1) AND r.video_id = $2 "
                       "ORDER BY r.id LIMIT 1",
                   {table, video_id}));
    record.reset();
    if (rows.rows() > 0) record = ReadRecord(rows, 0);
    return Status::Ok();
  }));
  if (!record) {
    return Status(ErrorCode::kObjectNotFound,
                  "no row " + video_id + (table.empty() ? "" : " in table " + table));
  }
  return *record;
}

StatusOr<StoreStats> PostgresTableStore::Stats(const std::string& table) {
  StoreStats stats;
  std::lock_guard<std::mutex> lock(mutex_);
  VSIEVE_RETURN_IF_ERROR(WithRetryLocked([&]() -> Status {
    stats = StoreStats();
    for (const char* name : {"pending", "running", "done", "failed"}) stats.by_state[name] = 0;
    // One snapshot, so the counts agree with each other.
    VSIEVE_RETURN_IF_ERROR(ExecLocked("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").status());
    auto read = [&]() -> Status {
      VSIEVE_ASSIGN_OR_RETURN(PgResult by_state,
                              ExecLocked("SELECT state, count(*) FROM vsieve_rows WHERE "
                                         "($1 = '' OR table_name = $1) GROUP BY state",
                                         {table}));
      for (int i = 0; i < by_state.rows(); ++i) {
        stats.by_state[by_state.Text(i, 0)] = by_state.Int(i, 1);
      }
      VSIEVE_ASSIGN_OR_RETURN(
          PgResult finished,
          ExecLocked("SELECT count(*) FILTER (WHERE finished_at >= now() - interval '60 s'), "
                     "count(*) FILTER (WHERE finished_at >= now() - interval '300 s'), "
                     "count(*) FROM vsieve_rows WHERE ($1 = '' OR table_name = $1) AND "
                     "state IN ('done', 'failed') AND finished_at >= now() - interval '900 s'",
                     {table}));
      if (finished.rows() > 0) {
        stats.finished_last_1m = finished.Int(0, 0);
        stats.finished_last_5m = finished.Int(0, 1);
        stats.finished_last_15m = finished.Int(0, 2);
      }
      VSIEVE_ASSIGN_OR_RETURN(
          PgResult errors,
          ExecLocked("SELECT last_error_code, count(*) AS n FROM vsieve_rows WHERE "
                     "($1 = '' OR table_name = $1) AND state = 'failed' AND "
                     "last_error_code != '' GROUP BY last_error_code "
                     "ORDER BY n DESC, last_error_code LIMIT 10",
                     {table}));
      for (int i = 0; i < errors.rows(); ++i) {
        stats.top_errors.emplace_back(errors.Text(i, 0), errors.Int(i, 1));
      }
      return Status::Ok();
    };
    Status status = read();
    if (status.ok()) status = ExecLocked("COMMIT").status();
    if (!status.ok() && PQstatus(conn_.get()) == CONNECTION_OK) (void)ExecLocked("ROLLBACK");
    return status;
  }));
  return stats;
}

}  // namespace vsieve::storage
