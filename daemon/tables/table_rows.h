#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"
#include "daemon/config/filter_config.h"
#include "storage/table_store.h"

namespace vsieve::daemon {

// Opens config.store.url (creating and migrating the store when needed). The caller owns the
// store. Errors: those of storage::TableStore::Open(), with the URL as context.
common::StatusOr<std::unique_ptr<storage::TableStore>> OpenConfiguredStore(
    const FilterConfig& config);

// Parses one input-row object (seed 8.1) into `row` (its table left as is). `info` may be an
// object or a string; it is kept as JSON text. Returns a reason ("" when the row is good).
// Exposed for tests.
std::string ParseInputRowJson(const std::string& line, storage::InputRow* row);

// The JSON form of `vsieve status --json` (what the admin API serves): counts by state, total,
// finished and throughput (videos/min) over 1/5/15 minutes, ETA in seconds from the 5-minute
// rate (null when unknown) and the top error codes.
nlohmann::json StatusJson(const std::string& table, const storage::StoreStats& stats);

}  // namespace vsieve::daemon
