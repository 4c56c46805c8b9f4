#pragma once

#include <string>

#include "common/status.h"

namespace vsieve::common {

// Configures the process-wide spdlog logger: level ("trace".."off") and an optional log file
// (stderr when empty). Call once from main before starting threads. Returns kInvalidArgument for
// an unknown level and an I/O error when the file cannot be opened.
Status InitLogging(const std::string& level, const std::string& file = "");

}  // namespace vsieve::common
