#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "models/video_filter.h"

namespace vsieve::daemon {

// The filter's settings: every key of the TOML sections [sampling], [limits], [models] and
// [filter] (see etc/vsieve.example.toml). Unknown keys and out-of-range values are errors that
// name the key. Flags given on the command line are applied after the file.
struct FilterConfig {
  models::FilterOptions options;
  std::vector<std::string> model_dirs;  // searched in order for model files
  std::string log_level = "warn";
};

// The model search folders used when none is configured: ./vsieve-models (what the setup script
// fetches), then ../shared/assets/models (the development assets), then opencv-data's folders.
std::vector<std::string> DefaultModelDirs();

// Reads a TOML file into `config`. Errors: kInvalidArgument naming the file, key and reason.
common::Status LoadFilterConfig(const std::string& path, FilterConfig* config);

// Range checks for every option; errors name the key.
common::Status ValidateFilterOptions(const models::FilterOptions& options);

// Fills config->options.models from config->model_dirs.
void ResolveModels(FilterConfig* config);

// The options as JSON (for config_hash and `--print-config`).
nlohmann::json FilterOptionsToJson(const models::FilterOptions& options);

// A short stable hash of the options ("fnv1a64:" + 16 hex digits).
std::string ConfigHash(const models::FilterOptions& options);

}  // namespace vsieve::daemon
