#include "daemon/tables/table_rows.h"

#include <string>
#include <utility>

#include "common/text.h"

namespace vsieve::daemon {
namespace {

using common::Trim;
// Reads a string field; numbers are accepted for video_id-like fields as their decimal text.
std::string ReadField(const nlohmann::json& object, const char* name, std::string* out) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return "";
  if (it->is_string()) {
    *out = it->get<std::string>();
  } else if (it->is_number_integer()) {
    *out = it->dump();
  } else {
    return std::string("field '") + name + "' must be a string";
  }
  return "";
}

}  // namespace

std::string ParseInputRowJson(const std::string& line, storage::InputRow* row) {
  nlohmann::json object = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (object.is_discarded()) return "not valid JSON";
  if (!object.is_object()) return "expected a JSON object";
  std::string reason = ReadField(object, "video_id", &row->video_id);
  if (!reason.empty()) return reason;
  if (Trim(row->video_id).empty()) return "missing or empty video_id";
  for (const auto& [name, field] :
       {std::pair<const char*, std::string*>{"oss_bucket", &row->oss_bucket},
        {"video_path", &row->video_path},
        {"video_tag", &row->video_tag}}) {
    reason = ReadField(object, name, field);
    if (!reason.empty()) return reason;
  }
  auto info = object.find("info");
  if (info == object.end() || info->is_null()) {
    row->info_json = "{}";
  } else if (info->is_object() || info->is_string()) {
    row->info_json = info->dump();
  } else {
    return "field 'info' must be an object or a string";
  }
  return "";
}

nlohmann::json StatusJson(const std::string& table, const storage::StoreStats& stats) {
  nlohmann::json by_state = nlohmann::json::object();
  int64_t total = 0;
  for (const auto& [state, count] : stats.by_state) {
    by_state[state] = count;
    total += count;
  }
  auto count_of = [&](const char* state) -> int64_t {
    auto it = stats.by_state.find(state);
    return it == stats.by_state.end() ? 0 : it->second;
  };
  const double rate_1m = static_cast<double>(stats.finished_last_1m);
  const double rate_5m = static_cast<double>(stats.finished_last_5m) / 5.0;
  const double rate_15m = static_cast<double>(stats.finished_last_15m) / 15.0;
  const int64_t remaining = count_of("pending") + count_of("running");
  nlohmann::json eta = nullptr;
  if (remaining == 0) {
    eta = 0.0;
  } else if (rate_5m > 0.0) {
    eta = static_cast<double>(remaining) / rate_5m * 60.0;
  }
  nlohmann::json errors = nlohmann::json::array();
  for (const auto& [code, count] : stats.top_errors) {
    errors.push_back({{"code", code}, {"count", count}});
  }
  return {{"table", table},
          {"by_state", by_state},
          {"total", total},
          {"remaining", remaining},
          {"finished",
           {{"1m", stats.finished_last_1m},
            {"5m", stats.finished_last_5m},
            {"15m", stats.finished_last_15m}}},
          {"throughput_per_min", {{"1m", rate_1m}, {"5m", rate_5m}, {"15m", rate_15m}}},
          {"eta_seconds", eta},
          {"top_errors", errors}};
}

common::StatusOr<std::unique_ptr<storage::TableStore>> OpenConfiguredStore(
    const FilterConfig& config) {
  auto store = storage::TableStore::Open(config.store.url);
  if (!store.ok())
    return store.status().WithContext("opening store " + storage::RedactStoreUrl(config.store.url));
  return store;
}

}  // namespace vsieve::daemon
