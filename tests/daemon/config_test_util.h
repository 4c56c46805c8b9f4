#pragma once

// Shared by the config tests (tests/daemon/config/filter_config_test.cc, reader_factory_test.cc):
// TOML text loaded through LoadFilterConfig.

#include <gtest/gtest.h>

#include <string>

#include "common/status.h"
#include "daemon/config/filter_config.h"
#include "tests/support/test_env.h"

namespace vsieve::testing {

// Writes `text` to a config file in a temp folder and loads it into `config` with
// daemon::LoadFilterConfig; returns what that returns.
inline common::Status LoadText(const std::string& text, daemon::FilterConfig* config) {
  TempDir dir;
  EXPECT_TRUE(WriteFile(dir.File("c.toml"), text));
  return daemon::LoadFilterConfig(dir.File("c.toml"), config);
}

// Whether loading `text` fails with kInvalidArgument and a message that holds `needle`.
inline ::testing::AssertionResult RejectedWith(const std::string& text, const std::string& needle) {
  daemon::FilterConfig config;
  const common::Status status = LoadText(text, &config);
  if (status.code() == common::ErrorCode::kInvalidArgument &&
      status.message().find(needle) != std::string::npos) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << text << " -> " << status.ToString();
}

}  // namespace vsieve::testing
