#pragma once

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "storage/reader.h"

namespace vsieve::daemon {

// The input row of seed 001 (8.1). `info` is kept as given (object, or a JSON string).
struct InputRow {
  std::string video_id;
  std::string oss_bucket;
  std::string video_path;
  std::string video_tag;
  nlohmann::json info = nlohmann::json::object();
};

// What the pipeline knows about one finished video, to be written as an output row.
struct RowOutcome {
  common::Status status;
  nlohmann::json info = nlohmann::json::object();
  std::map<std::string, double> stage_ms;
  std::chrono::system_clock::time_point start_time;
  std::chrono::system_clock::time_point end_time;
  std::string device_name = "cpu:0";
  nlohmann::json device_info = nlohmann::json::object();
  std::string source_tier;
  // Tiers that failed before the one that served (result_info.tier_errors; absent when none).
  std::vector<storage::TierError> tier_errors;
  int attempts = 1;
  std::string config_hash;
};

// Builds the output row of seed 001 (8.2) and DESIGN.md: {"video_id", "oss_bucket",
// "video_oss_url", "video_tag", "info", "result_info"}. Pure; thread-safe.
nlohmann::json BuildOutputRow(const InputRow& input, const RowOutcome& outcome);

// ISO-8601 UTC with milliseconds, e.g. "2026-11-25T21:00:05.123Z".
std::string FormatTimestamp(std::chrono::system_clock::time_point when);

}  // namespace vsieve::daemon
