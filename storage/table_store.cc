#include "storage/table_store.h"

#include "storage/postgres_table_store.h"
#include "storage/sqlite_table_store.h"

namespace vsieve::storage {

using common::ErrorCode;
using common::Status;

std::string_view RowStateName(RowState state) {
  switch (state) {
    case RowState::kPending:
      return "pending";
    case RowState::kRunning:
      return "running";
    case RowState::kDone:
      return "done";
    case RowState::kFailed:
      return "failed";
  }
  return "pending";
}

bool ParseRowState(std::string_view name, RowState* state) {
  for (RowState candidate :
       {RowState::kPending, RowState::kRunning, RowState::kDone, RowState::kFailed}) {
    if (RowStateName(candidate) == name) {
      *state = candidate;
      return true;
    }
  }
  return false;
}

std::string RedactStoreUrl(const std::string& url) {
  std::string out = url;
  // user:password@ in the authority part.
  const size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    const size_t start = scheme + 3;
    const size_t end = out.find_first_of("/?", start);
    const size_t at = out.rfind('@', end == std::string::npos ? out.size() : end);
    if (at != std::string::npos && at >= start) {
      const size_t colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  // password=... as a URI query parameter or a conninfo keyword.
  size_t from = 0;
  while (true) {
    const size_t key = out.find("password=", from);
    if (key == std::string::npos) break;
    const bool starts_word =
        key == 0 || out[key - 1] == '?' || out[key - 1] == '&' || out[key - 1] == ' ';
    const size_t value = key + 9;
    if (!starts_word) {
      from = value;
      continue;
    }
    const size_t stop = out.find_first_of("& ", value);
    out.replace(value, (stop == std::string::npos ? out.size() : stop) - value, "***");
    from = value + 3;
  }
  return out;
}

common::StatusOr<std::unique_ptr<TableStore>> TableStore::Open(const std::string& url) {
  if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) {
    auto store = PostgresTableStore::Open(url);
    if (!store.ok()) return store.status();
    return std::unique_ptr<TableStore>(std::move(*store));
  }
  std::string path;
  constexpr std::string_view kSqlite = "sqlite://";
  if (url.rfind(kSqlite, 0) == 0) {
    // sqlite:///abs/path.db keeps its leading slash; sqlite://rel/path.db is relative.
    path = url.substr(kSqlite.size());
  } else if (url.find("://") == std::string::npos && url.size() > 3 &&
             url.compare(url.size() - 3, 3, ".db") == 0) {
    path = url;
  } else {
    return Status(ErrorCode::kInvalidArgument,
                  "unrecognised store URL '" + url +
                      "' (expected sqlite:///abs/path.db, sqlite://relative/path.db, a path "
                      "ending in .db, or postgresql://...)");
  }
  if (path.empty()) return Status(ErrorCode::kInvalidArgument, "store URL without a path: " + url);
  auto store = SqliteTableStore::Open(path);
  if (!store.ok()) return store.status();
  return std::unique_ptr<TableStore>(std::move(*store));
}

}  // namespace vsieve::storage
