#include "daemon/filter_config.h"

#include <gtest/gtest.h>

#include "tests/support/test_env.h"

namespace vsieve::daemon {
namespace {

using common::ErrorCode;

common::Status LoadText(const std::string& text, FilterConfig* config) {
  testing::TempDir dir;
  EXPECT_TRUE(testing::WriteFile(dir.File("c.toml"), text));
  return LoadFilterConfig(dir.File("c.toml"), config);
}

TEST(FilterConfigTest, ReadsEverySection) {
  FilterConfig config;
  const auto status = LoadText(R"(
[sampling]
clip_frames = 24
window_s = 5.0
[limits]
analysis_max_side = 480
max_error_ratio = 0.1
[models]
dirs = ["a", "b"]
[filter]
text_regions = false
crop_aspect = 1.5
[log]
level = "info"
)",
                               &config);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(config.options.sampling.clip_frames, 24);
  EXPECT_DOUBLE_EQ(config.options.sampling.window_s, 5.0);
  EXPECT_EQ(config.options.limits.analysis_max_side, 480);
  EXPECT_FALSE(config.options.text_regions);
  EXPECT_DOUBLE_EQ(config.options.crop.aspect, 1.5);
  EXPECT_EQ(config.model_dirs, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(config.log_level, "info");
}

TEST(FilterConfigTest, UnknownKeysAreErrorsNamingTheKey) {
  FilterConfig config;
  auto status = LoadText("[sampling]\nclip_frame = 3\n", &config);
  EXPECT_EQ(status.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(status.message().find("sampling.clip_frame"), std::string::npos) << status.message();
  status = LoadText("[sampler]\n", &config);
  EXPECT_NE(status.message().find("'sampler'"), std::string::npos) << status.message();
}

TEST(FilterConfigTest, BadValuesAreErrorsNamingTheKey) {
  FilterConfig config;
  auto status = LoadText("[sampling]\nclip_frames = \"many\"\n", &config);
  EXPECT_NE(status.message().find("sampling.clip_frames"), std::string::npos) << status.message();
  status = LoadText("[limits]\nmax_error_ratio = 3\n", &config);
  EXPECT_NE(status.message().find("limits.max_error_ratio"), std::string::npos)
      << status.message();
  status = LoadText("[sampling]\nwindow_frames = 1\n", &config);
  EXPECT_NE(status.message().find("sampling.window_frames"), std::string::npos)
      << status.message();
}

TEST(FilterConfigTest, SyntaxErrorsGiveLineAndColumn) {
  FilterConfig config;
  auto status = LoadText("[sampling]\nclip_frames = = 3\n", &config);
  EXPECT_EQ(status.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(status.message().find(":2:"), std::string::npos) << status.message();
}

TEST(FilterConfigTest, HashChangesWithResultShapingOptionsOnly) {
  models::FilterOptions a;
  models::FilterOptions b;
  EXPECT_EQ(ConfigHash(a), ConfigHash(b));
  b.models.brisque_model = "/elsewhere/brisque_model_live.yml";
  a.models.brisque_model = "/here/brisque_model_live.yml";
  EXPECT_EQ(ConfigHash(a), ConfigHash(b));
  b.sampling.clip_frames = 32;
  EXPECT_NE(ConfigHash(a), ConfigHash(b));
}

}  // namespace
}  // namespace vsieve::daemon
