#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "storage/table_store.h"

namespace vsieve::testing {

// An in-memory TableStore for pipeline tests: the same state machine as the real stores
// (pending -> running under a token -> done | failed), with wall-clock leases, plus counters of
// every call and a way to take a lease over. Thread-safe (one mutex).
class FakeTableStore : public storage::TableStore {
 public:
  struct Row {
    storage::InputRow input;
    storage::RowState state = storage::RowState::kPending;
    int attempts = 0;
    std::string token;
    std::string owner;
    std::chrono::steady_clock::time_point expiry;
    std::chrono::steady_clock::time_point retry_at;
    std::string error_code;
    std::string result_json;
    int completions = 0;  // successful Complete/CompleteMany writes
    int retries = 0;
    int releases = 0;
  };

  void Add(const std::string& video_id, const std::string& path) {
    storage::InputRow input;
    input.video_id = video_id;
    input.video_path = path;
    (void)Import({input});
  }

  // Sets the attempts row `video_id` has already used (claims that never finished).
  void SetAttempts(const std::string& video_id, int attempts) {
    std::lock_guard lock(mutex_);
    for (auto& [id, row] : rows_) {
      if (row.input.video_id == video_id) row.attempts = attempts;
    }
  }

  // Gives row `video_id` a new token (another daemon reclaimed it after expiry).
  void Steal(const std::string& video_id) {
    std::lock_guard lock(mutex_);
    for (auto& [id, row] : rows_) {
      if (row.input.video_id == video_id) row.token += "-stolen";
    }
  }

  std::vector<Row> Rows() {
    std::lock_guard lock(mutex_);
    std::vector<Row> rows;
    for (auto& [id, row] : rows_) rows.push_back(row);
    return rows;
  }

  int claims() {
    std::lock_guard lock(mutex_);
    return claims_;
  }

  common::StatusOr<storage::ImportResult> Import(
      const std::vector<storage::InputRow>& rows) override {
    std::lock_guard lock(mutex_);
    storage::ImportResult result;
    for (const auto& input : rows) {
      Row row;
      row.input = input;
      rows_[next_id_++] = row;
      ++result.inserted;
    }
    return result;
  }

  common::StatusOr<std::vector<storage::Lease>> Claim(const std::string& owner,
                                                      const std::vector<std::string>&, int max_rows,
                                                      int lease_seconds) override {
    std::lock_guard lock(mutex_);
    std::vector<storage::Lease> leases;
    const auto now = std::chrono::steady_clock::now();
    for (auto& [id, row] : rows_) {
      if (static_cast<int>(leases.size()) >= max_rows) break;
      if (row.state != storage::RowState::kPending || row.retry_at > now) continue;
      row.state = storage::RowState::kRunning;
      ++row.attempts;
      row.token = "t" + std::to_string(++token_serial_);
      row.owner = owner;
      row.expiry = now + std::chrono::seconds(lease_seconds);
      ++claims_;
      leases.push_back(storage::Lease{id, row.token, row.attempts, row.input});
    }
    return leases;
  }

  common::StatusOr<bool> Heartbeat(const storage::Lease& lease, int lease_seconds) override {
    std::lock_guard lock(mutex_);
    Row* row = Held(lease);
    if (row == nullptr) return false;
    row->expiry = std::chrono::steady_clock::now() + std::chrono::seconds(lease_seconds);
    return true;
  }

  common::StatusOr<bool> Complete(const storage::Lease& lease, const std::string& result_json,
                                  bool succeeded, const std::string& error_code,
                                  const std::string&) override {
    std::lock_guard lock(mutex_);
    Row* row = Held(lease);
    if (row == nullptr) return false;
    row->state = succeeded ? storage::RowState::kDone : storage::RowState::kFailed;
    row->result_json = result_json;
    row->error_code = error_code;
    row->token.clear();
    ++row->completions;
    return true;
  }

  common::StatusOr<std::vector<bool>> CompleteMany(
      const std::vector<Completion>& completions) override {
    std::vector<bool> written;
    for (const auto& c : completions) {
      auto ok = Complete(c.lease, c.result_json, c.succeeded, c.error_code, c.error_message);
      written.push_back(ok.ok() && *ok);
    }
    return written;
  }

  common::StatusOr<bool> Retry(const storage::Lease& lease, const std::string& error_code,
                               const std::string&, double delay_seconds) override {
    std::lock_guard lock(mutex_);
    Row* row = Held(lease);
    if (row == nullptr) return false;
    row->state = storage::RowState::kPending;
    row->error_code = error_code;
    row->token.clear();
    row->retry_at = std::chrono::steady_clock::now() +
                    std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                        std::chrono::duration<double>(delay_seconds));
    ++row->retries;
    return true;
  }

  common::StatusOr<bool> Release(const storage::Lease& lease) override {
    std::lock_guard lock(mutex_);
    Row* row = Held(lease);
    if (row == nullptr) return false;
    row->state = storage::RowState::kPending;
    row->token.clear();
    --row->attempts;
    ++row->releases;
    return true;
  }

  common::StatusOr<int> ReclaimExpired(int max_attempts) override {
    std::lock_guard lock(mutex_);
    int changed = 0;
    const auto now = std::chrono::steady_clock::now();
    for (auto& [id, row] : rows_) {
      if (row.state != storage::RowState::kRunning || row.expiry > now) continue;
      row.state =
          row.attempts >= max_attempts ? storage::RowState::kFailed : storage::RowState::kPending;
      row.token.clear();
      ++changed;
    }
    return changed;
  }

  common::StatusOr<int> ReclaimOwner(const std::string& owner) override {
    std::lock_guard lock(mutex_);
    int changed = 0;
    for (auto& [id, row] : rows_) {
      if (row.state == storage::RowState::kRunning && row.owner == owner) {
        row.state = storage::RowState::kPending;
        row.token.clear();
        ++changed;
      }
    }
    return changed;
  }

  common::StatusOr<storage::RequeueResult> Requeue(const storage::RequeueFilter&) override {
    return common::Status(common::ErrorCode::kInternal, "not in the fake");
  }

  common::Status ForEachRow(const std::string&, std::optional<storage::RowState>,
                            const std::function<void(const storage::RowRecord&)>&) override {
    return common::Status(common::ErrorCode::kInternal, "not in the fake");
  }

  common::StatusOr<storage::RowRecord> GetRow(const std::string&, const std::string&) override {
    return common::Status(common::ErrorCode::kInternal, "not in the fake");
  }

  common::StatusOr<storage::StoreStats> Stats(const std::string&) override {
    std::lock_guard lock(mutex_);
    storage::StoreStats stats;
    for (auto& [id, row] : rows_) ++stats.by_state[std::string(RowStateNameOf(row.state))];
    return stats;
  }

 private:
  static const char* RowStateNameOf(storage::RowState state) {
    switch (state) {
      case storage::RowState::kPending:
        return "pending";
      case storage::RowState::kRunning:
        return "running";
      case storage::RowState::kDone:
        return "done";
      case storage::RowState::kFailed:
        return "failed";
    }
    return "?";
  }

  Row* Held(const storage::Lease& lease) {
    auto it = rows_.find(lease.row_id);
    if (it == rows_.end() || it->second.state != storage::RowState::kRunning ||
        it->second.token != lease.lease_token) {
      return nullptr;
    }
    return &it->second;
  }

  std::mutex mutex_;
  std::map<int64_t, Row> rows_;
  int64_t next_id_ = 1;
  int token_serial_ = 0;
  int claims_ = 0;
};

}  // namespace vsieve::testing
