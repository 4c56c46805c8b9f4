#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace vsieve::storage {

// The life of an input row: pending -> running (claimed under a lease) -> done | failed.
// A running row whose lease expires, or that its worker releases, goes back to pending.
enum class RowState { kPending, kRunning, kDone, kFailed };

// "pending", "running", "done", "failed".
std::string_view RowStateName(RowState state);
bool ParseRowState(std::string_view name, RowState* state);

// One input row (seed 001, 8.1) in a named table ("videos/ds=20250115"; default "default").
// (table, video_id) is unique; the same video_id in two tables is two rows.
struct InputRow {
  std::string table = "default";
  std::string video_id;
  std::string oss_bucket;
  std::string video_path;
  std::string video_tag;
  std::string info_json = "{}";  // the row's `info`, as a JSON text (object or string as given)
};

// A claimed row. The token fences every later write: a worker whose lease was taken over
// (expired and reclaimed) writes nothing.
struct Lease {
  int64_t row_id = 0;
  std::string lease_token;
  int attempts = 0;  // attempts so far, this one included (counted at claim)
  InputRow row;
};

// Everything known about one row, for `status`, `export` and the admin API.
struct RowRecord {
  InputRow row;
  RowState state = RowState::kPending;
  int attempts = 0;
  std::string last_error_code;  // "" when none
  std::string last_error_message;
  std::string lease_owner;                 // "" unless running
  std::string updated_at;                  // database time, ISO-8601 UTC
  std::optional<std::string> result_json;  // the output row (seed 8.2) once done or failed
};

struct ImportResult {
  int inserted = 0;   // new (table, video_id) pairs
  int unchanged = 0;  // already present: left as they are (import is idempotent)
};

// Which rows `requeue` puts back to pending. Exactly one selector is set.
struct RequeueFilter {
  std::string table;                   // "" = every table
  bool failed = false;                 // every failed row
  std::vector<std::string> video_ids;  // these ids (in `table`, or in every table)
  std::string error_code;              // failed rows with this last error code
};

struct RequeueResult {
  int requeued = 0;  // failed/done rows now pending again (earlier attempts in history)
  int already_pending = 0;
  int refused_running = 0;  // running rows are never touched
  int not_found = 0;        // ids that matched no row
};

// Counts for `vsieve status`: rows by state, completions in the last 1/5/15 minutes, and the
// most frequent error codes among failed rows.
struct StoreStats {
  std::map<std::string, int64_t> by_state;  // "pending", "running", "done", "failed"
  int64_t finished_last_1m = 0;
  int64_t finished_last_5m = 0;
  int64_t finished_last_15m = 0;
  std::vector<std::pair<std::string, int64_t>> top_errors;  // most frequent first, up to 10
};

// `url` with any password masked ("postgresql://user:***@host/db", "password=***"), for logs
// and error messages. Every other part is kept.
std::string RedactStoreUrl(const std::string& url);

// The input/output table store. Implementations: SqliteTableStore (the embedded default;
// WAL, BEGIN IMMEDIATE for writes, busy timeout) and PostgresTableStore (the shared store for
// many daemons on many hosts; SKIP LOCKED claims). Every lease
// expiry is computed in database time. A result and the row's terminal state are written in one
// transaction, fenced by the lease token.
//
// Thread-safety: one instance may be shared by the pipeline's threads (implementations
// serialise access internally); several processes may open the same store.
// Errors: kInvalidArgument (bad URL or arguments), kInternal (database errors, with the
// database's message), kFetchFailed is never returned. A lost lease is not an error of the call:
// the fenced methods return false.
class TableStore {
 public:
  virtual ~TableStore() = default;

  // Opens (and creates/migrates) the store named by `url`: "sqlite:///abs/path.db",
  // "sqlite://relative/path.db", a bare path ending in .db, or "postgresql://..." /
  // "postgres://..." (a libpq connection URI; several hosts and target_session_attrs allowed).
  static common::StatusOr<std::unique_ptr<TableStore>> Open(const std::string& url);

  // Adds rows; rows whose (table, video_id) exists are left unchanged. One transaction.
  virtual common::StatusOr<ImportResult> Import(const std::vector<InputRow>& rows) = 0;

  // Claims up to `max_rows` pending rows whose retry time has come, from `tables` (empty = all),
  // oldest first: state -> running, attempts + 1, a new lease token, owner = `owner`,
  // expiry = now + lease_seconds (database time). Never returns a row to two claimers.
  virtual common::StatusOr<std::vector<Lease>> Claim(const std::string& owner,
                                                     const std::vector<std::string>& tables,
                                                     int max_rows, int lease_seconds) = 0;

  // Extends a lease to now + lease_seconds. Returns false when the lease was lost.
  virtual common::StatusOr<bool> Heartbeat(const Lease& lease, int lease_seconds) = 0;

  // Writes the result row and the terminal state (done when `succeeded`, else failed with the
  // error code and message) in one transaction, if the lease still holds. Returns false (and
  // writes nothing) when it does not.
  virtual common::StatusOr<bool> Complete(const Lease& lease, const std::string& result_json,
                                          bool succeeded, const std::string& error_code,
                                          const std::string& error_message) = 0;

  // One finished video for CompleteMany().
  struct Completion {
    Lease lease;
    std::string result_json;
    bool succeeded = false;
    std::string error_code;
    std::string error_message;
  };

  // Complete() for several rows in one transaction (the writer's batch). Returns, per entry,
  // whether it was written (false: its lease was lost; the others are still written).
  virtual common::StatusOr<std::vector<bool>> CompleteMany(
      const std::vector<Completion>& completions) = 0;

  // Puts the row back to pending after a retryable failure, not before `delay_seconds` from now,
  // recording the error. Returns false when the lease was lost.
  virtual common::StatusOr<bool> Retry(const Lease& lease, const std::string& error_code,
                                       const std::string& error_message, double delay_seconds) = 0;

  // Gives an unfinished row back (shutdown): pending again at once, and the attempt is not
  // charged.
  // Returns false when the lease was lost.
  virtual common::StatusOr<bool> Release(const Lease& lease) = 0;

  // Running rows whose lease expired go back to pending (or to failed with code TIMEOUT once
  // `max_attempts` is reached). Returns how many rows changed.
  virtual common::StatusOr<int> ReclaimExpired(int max_attempts) = 0;

  // At startup: rows still running under `owner` (this daemon before a crash) go back to pending
  // at once, without waiting for expiry; the attempt stays counted. Returns how many.
  virtual common::StatusOr<int> ReclaimOwner(const std::string& owner) = 0;

  // Puts the rows `filter` selects back to pending, in one transaction: done and failed rows
  // become pending (retry time cleared); their attempt count and last error are recorded in the
  // attempt history and the count restarts at 0, so a row that used up max_attempts gets a full
  // set again. Pending rows are counted as already pending; running rows are never
  // touched (counted as refused). Idempotent. Errors: kInvalidArgument unless exactly one
  // selector is set.
  virtual common::StatusOr<RequeueResult> Requeue(const RequeueFilter& filter) = 0;

  // Calls `each` for every row of `table` ("" = all) in `state` (nullopt = all), in id order.
  // Rows are read in batches; no lock is held while `each` runs, so it may call the store, and
  // rows changed meanwhile may be seen in either state.
  virtual common::Status ForEachRow(const std::string& table, std::optional<RowState> state,
                                    const std::function<void(const RowRecord&)>& each) = 0;

  // One row of `table` ("" = the first match in any table), or kObjectNotFound.
  virtual common::StatusOr<RowRecord> GetRow(const std::string& table,
                                             const std::string& video_id) = 0;

  // Counts for `table` ("" = all), read in one snapshot. "Finished" means the row reached done
  // or failed within the window (database time).
  virtual common::StatusOr<StoreStats> Stats(const std::string& table) = 0;
};

}  // namespace vsieve::storage
