#include "common/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace vsieve::common {

Status InitLogging(const std::string& level, const std::string& file) {
  const auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") {
    return Status(ErrorCode::kInvalidArgument, "unknown log level '" + level +
                                                   "' (use trace, debug, info, warn, error, off)");
  }
  try {
    std::shared_ptr<spdlog::logger> logger;
    if (file.empty()) {
      logger = spdlog::stderr_color_mt("vsieve");
    } else {
      logger = spdlog::basic_logger_mt("vsieve", file);
    }
    spdlog::set_default_logger(logger);
  } catch (const spdlog::spdlog_ex& e) {
    return Status(ErrorCode::kInvalidArgument, std::string("cannot open log: ") + e.what());
  }
  spdlog::set_level(parsed);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%t] %v");
  return Status::Ok();
}

}  // namespace vsieve::common
