#include "daemon/tables/result_row.h"

#include <cmath>
#include <ctime>

namespace vsieve::daemon {

std::string FormatTimestamp(std::chrono::system_clock::time_point when) {
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(millis / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &utc);
  char out[80];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(millis % 1000));
  return out;
}

nlohmann::json BuildOutputRow(const InputRow& input, const RowOutcome& outcome) {
  nlohmann::json stage_ms = nlohmann::json::object();
  for (const auto& [stage, ms] : outcome.stage_ms) stage_ms[stage] = std::lround(ms);
  const double cost_s =
      std::chrono::duration<double>(outcome.end_time - outcome.start_time).count();

  nlohmann::json result_info = {
      {"succeed", outcome.status.ok() ? "true" : "false"},
      {"start_time", FormatTimestamp(outcome.start_time)},
      {"end_time", FormatTimestamp(outcome.end_time)},
      {"avg_cost", std::round(cost_s * 1000.0) / 1000.0},
      {"device_name", outcome.device_name},
      {"device_info", outcome.device_info},
      {"source_tier", outcome.source_tier},
      {"stage_ms", stage_ms},
      {"attempts", outcome.attempts},
      {"config_hash", outcome.config_hash},
  };
  if (!outcome.tier_errors.empty()) {
    nlohmann::json errors = nlohmann::json::array();
    for (const storage::TierError& error : outcome.tier_errors) {
      errors.push_back({{"tier", error.tier}, {"code", error.code}, {"message", error.message}});
    }
    result_info["tier_errors"] = std::move(errors);
  }
  if (!outcome.status.ok()) {
    result_info["error"] = {
        {"code", std::string(common::ErrorCodeName(outcome.status.code()))},
        {"stage", outcome.status.stage().empty() ? "unknown" : outcome.status.stage()},
        {"message", outcome.status.message()},
        {"retryable", outcome.status.retryable()},
    };
  }
  return {{"video_id", input.video_id},
          {"oss_bucket", input.oss_bucket},
          {"video_oss_url", input.video_path},
          {"video_tag", input.video_tag},
          {"info", outcome.info},
          {"result_info", std::move(result_info)}};
}

}  // namespace vsieve::daemon
