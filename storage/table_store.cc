#include "storage/table_store.h"

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

common::StatusOr<std::unique_ptr<TableStore>> TableStore::Open(const std::string& url) {
  if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) {
    return Status(ErrorCode::kInvalidArgument, "PostgreSQL store is not built yet: " + url);
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
