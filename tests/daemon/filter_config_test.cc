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
  EXPECT_NE(status.message().find("limits.max_error_ratio"), std::string::npos) << status.message();
  status = LoadText("[sampling]\nwindow_frames = 1\n", &config);
  EXPECT_NE(status.message().find("sampling.window_frames"), std::string::npos) << status.message();
}

TEST(FilterConfigTest, ReadsStorePipelineAndDevices) {
  FilterConfig config;
  const auto status = LoadText(R"(
[store]
url = "sqlite:///var/lib/vsieve/v.db"
lease_seconds = 30
[pipeline]
tables = ["a", "b/ds=1"]
download_threads = 6
decode_threads = 3
workers = 4
queue_depth = 12
claim_batch = 2
write_batch = 32
write_interval_seconds = 0.5
video_deadline_seconds = 120
max_attempts = 3
backoff_base_seconds = 2
backoff_cap_seconds = 60
grace_seconds = 10
heartbeat_seconds = 5
log_file = "vsieve.log"
core_bind = "decode=0;workers=1-3"
[devices]
list = ["cpu:0", "cpu:1"]
instances = 3
borrow_timeout_seconds = 20
)",
                               &config);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(config.store.url, "sqlite:///var/lib/vsieve/v.db");
  EXPECT_EQ(config.store.lease_seconds, 30);
  const auto& p = config.pipeline;
  EXPECT_EQ(p.tables, (std::vector<std::string>{"a", "b/ds=1"}));
  EXPECT_EQ(p.download_threads, 6);
  EXPECT_EQ(p.decode_threads, 3);
  EXPECT_EQ(p.workers, 4);
  EXPECT_EQ(p.queue_depth, 12);
  EXPECT_EQ(p.claim_batch, 2);
  EXPECT_EQ(p.write_batch, 32);
  EXPECT_DOUBLE_EQ(p.write_interval_seconds, 0.5);
  EXPECT_DOUBLE_EQ(p.video_deadline_seconds, 120);
  EXPECT_EQ(p.max_attempts, 3);
  EXPECT_DOUBLE_EQ(p.backoff_base_seconds, 2);
  EXPECT_DOUBLE_EQ(p.backoff_cap_seconds, 60);
  EXPECT_DOUBLE_EQ(p.grace_seconds, 10);
  EXPECT_DOUBLE_EQ(p.heartbeat_seconds, 5);
  EXPECT_EQ(p.log_file, "vsieve.log");
  EXPECT_EQ(p.core_bind, "decode=0;workers=1-3");
  EXPECT_EQ(config.devices.list, (std::vector<std::string>{"cpu:0", "cpu:1"}));
  EXPECT_EQ(config.devices.instances, 3);
  EXPECT_DOUBLE_EQ(config.devices.borrow_timeout_seconds, 20);
}

TEST(FilterConfigTest, TheExampleConfigLoadsWithDefaults) {
  FilterConfig config;
  const auto status = LoadFilterConfig(testing::SourceDir() + "/etc/vsieve.example.toml", &config);
  ASSERT_TRUE(status.ok()) << status.ToString();
  const FilterConfig defaults;
  EXPECT_EQ(config.store.url, defaults.store.url);
  EXPECT_EQ(config.store.lease_seconds, defaults.store.lease_seconds);
  EXPECT_EQ(config.pipeline.workers, defaults.pipeline.workers);
  EXPECT_EQ(config.pipeline.max_attempts, defaults.pipeline.max_attempts);
  EXPECT_EQ(config.devices.list, defaults.devices.list);
  EXPECT_EQ(config.devices.instances, defaults.devices.instances);
  EXPECT_EQ(config.devices.isolate, defaults.devices.isolate);
  EXPECT_EQ(config.batching.max_batch, defaults.batching.max_batch);
  EXPECT_DOUBLE_EQ(config.batching.max_delay_ms, defaults.batching.max_delay_ms);
}

TEST(FilterConfigTest, ServiceSectionErrorsNameTheKey) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[store]\nurl = 3\n", "store.url"},
      {"[store]\nlease = 3\n", "store.lease"},
      {"[store]\nlease_seconds = 0\n", "store.lease_seconds"},
      {"[pipeline]\nworkers = 0\n", "pipeline.workers"},
      {"[pipeline]\nworker = 2\n", "pipeline.worker"},
      {"[pipeline]\ntables = \"a\"\n", "pipeline.tables"},
      {"[pipeline]\nqueue_depth = 0\n", "pipeline.queue_depth"},
      {"[pipeline]\nmax_attempts = 0\n", "pipeline.max_attempts"},
      {"[pipeline]\nvideo_deadline_seconds = 0\n", "pipeline.video_deadline_seconds"},
      {"[pipeline]\nbackoff_cap_seconds = 0.5\n", "pipeline.backoff_cap_seconds"},
      {"[pipeline]\nheartbeat_seconds = 60\n", "pipeline.heartbeat_seconds"},
      {"[pipeline]\ncore_bind = 1\n", "pipeline.core_bind"},
      {"[pipeline]\ncore_bind = \"yes\"\n", "pipeline.core_bind"},
      {"[pipeline]\ncore_bind = \"gpu=0\"\n", "pipeline.core_bind"},
      {"[devices]\nlist = []\n", "devices.list"},
      {"[devices]\nlist = [\"gpu\"]\n", "devices.list"},
      {"[devices]\ninstances = 0\n", "devices.instances"},
      {"[devices]\nborrow_timeout_seconds = -1\n", "devices.borrow_timeout_seconds"},
  };
  for (const auto& [text, key] : cases) {
    FilterConfig config;
    auto status = LoadText(text, &config);
    EXPECT_EQ(status.code(), ErrorCode::kInvalidArgument) << text;
    EXPECT_NE(status.message().find("'" + key + "'"), std::string::npos)
        << text << " -> " << status.message();
  }
  FilterConfig config;
  auto status = LoadText("[pipeline]\nworkers = 0\n", &config);
  EXPECT_NE(status.message().find("pipeline.workers': must be at least 1"), std::string::npos)
      << status.message();
}

TEST(FilterConfigTest, ReadsDeviceWeightsBudgetsIsolationAndBatching) {
  FilterConfig config;
  const auto status = LoadText(R"(
[devices]
list = ["cpu:0", "cpu:1"]
weights = [2, 1.5]
budget = [1, 0]
isolate = true
model_timeout_seconds = 12
restart_backoff_base_seconds = 0.5
restart_backoff_cap_seconds = 8
[devices.costs]
yolo = 1
aesthetic_filter = 0.5
[batching]
max_batch = 16
max_delay_ms = 2.5
)",
                               &config);
  ASSERT_TRUE(status.ok()) << status.ToString();
  const DeviceConfig& d = config.devices;
  EXPECT_EQ(d.weights, (std::vector<double>{2, 1.5}));
  EXPECT_EQ(d.budgets, (std::vector<double>{1, 0}));
  EXPECT_TRUE(d.isolate);
  EXPECT_DOUBLE_EQ(d.model_timeout_seconds, 12);
  EXPECT_DOUBLE_EQ(d.restart_backoff_base_seconds, 0.5);
  EXPECT_DOUBLE_EQ(d.restart_backoff_cap_seconds, 8);
  EXPECT_EQ(d.costs, (std::map<std::string, double>{{"yolo", 1}, {"aesthetic_filter", 0.5}}));
  EXPECT_EQ(config.batching.max_batch, 16);
  EXPECT_DOUBLE_EQ(config.batching.max_delay_ms, 2.5);

  // One budget number applies to every device.
  FilterConfig one;
  ASSERT_TRUE(LoadText("[devices]\nlist = [\"cpu:0\", \"cpu:1\"]\nbudget = 2\n", &one).ok());
  EXPECT_EQ(one.devices.budgets, std::vector<double>{2});
  // Defaults: no weights, no budgets, in-process, batches of 8 within 5 ms.
  const FilterConfig defaults;
  EXPECT_TRUE(defaults.devices.weights.empty());
  EXPECT_TRUE(defaults.devices.budgets.empty());
  EXPECT_FALSE(defaults.devices.isolate);
  EXPECT_EQ(defaults.batching.max_batch, 8);
}

TEST(FilterConfigTest, DeviceAndBatchingErrorsNameTheKey) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[devices]\nweights = [1, 2]\n", "devices.weights"},  // one device in the list
      {"[devices]\nweights = [0]\n", "devices.weights"},
      {"[devices]\nweights = 2\n", "devices.weights"},
      {"[devices]\nweights = [\"fast\"]\n", "devices.weights"},
      {"[devices]\nbudget = [1, 2]\n", "devices.budget"},
      {"[devices]\nbudget = -1\n", "devices.budget"},
      {"[devices]\nbudget = \"big\"\n", "devices.budget"},
      {"[devices]\ncosts = 3\n", "devices.costs"},
      {"[devices.costs]\nyolo = \"heavy\"\n", "devices.costs.yolo"},
      {"[devices.costs]\nyolo = -1\n", "devices.costs.yolo"},
      {"[devices]\nisolate = 1\n", "devices.isolate"},
      {"[devices]\nmodel_timeout_seconds = 0\n", "devices.model_timeout_seconds"},
      {"[devices]\nrestart_backoff_base_seconds = -1\n", "devices.restart_backoff_base_seconds"},
      {"[devices]\nrestart_backoff_cap_seconds = 0.1\n", "devices.restart_backoff_cap_seconds"},
      {"[devices]\nisolated = true\n", "devices.isolated"},
      {"[batching]\nmax_batch = 0\n", "batching.max_batch"},
      {"[batching]\nmax_batch = 100000\n", "batching.max_batch"},
      {"[batching]\nmax_delay_ms = -1\n", "batching.max_delay_ms"},
      {"[batching]\nmax_delay = 1\n", "batching.max_delay"},
  };
  for (const auto& [text, key] : cases) {
    FilterConfig config;
    auto status = LoadText(text, &config);
    EXPECT_EQ(status.code(), ErrorCode::kInvalidArgument) << text;
    EXPECT_NE(status.message().find("'" + key + "'"), std::string::npos)
        << text << " -> " << status.message();
  }
}

TEST(FilterConfigTest, ReadsTiersInOrder) {
  FilterConfig config;
  const auto status = LoadText(R"(
[[tiers]]
kind = "local"
name = "cpfs"
root = "/mnt/cpfs/{bucket}"

[[tiers]]
kind = "http"
name = "alluxio"
base_url = "http://dcache:39999/{bucket}"
max_attempts = 2
low_speed_seconds = 5

[[tiers]]
kind = "s3"
endpoint = "http://objects:9000"
region = "eu-west-1"
credentials = "/etc/vsieve/credentials"
profile = "media"
addressing = "virtual"
connect_timeout_seconds = 2.5
low_speed_bytes_per_second = 4096
backoff_base_seconds = 0.5
backoff_cap_seconds = 10
retry_budget = 100
)",
                               &config);
  ASSERT_TRUE(status.ok()) << status.ToString();
  ASSERT_EQ(config.tiers.size(), 3u);
  EXPECT_EQ(config.tiers[0].kind, "local");
  EXPECT_EQ(config.tiers[0].name, "cpfs");
  EXPECT_EQ(config.tiers[0].root, "/mnt/cpfs/{bucket}");
  EXPECT_EQ(config.tiers[1].base_url, "http://dcache:39999/{bucket}");
  EXPECT_EQ(config.tiers[1].max_attempts, 2);
  EXPECT_EQ(config.tiers[1].low_speed_seconds, 5);
  const storage::TierConfig& s3 = config.tiers[2];
  EXPECT_EQ(s3.DisplayName(), "s3");
  EXPECT_EQ(s3.endpoint, "http://objects:9000");
  EXPECT_EQ(s3.region, "eu-west-1");
  EXPECT_EQ(s3.credentials, "/etc/vsieve/credentials");
  EXPECT_EQ(s3.profile, "media");
  EXPECT_EQ(s3.addressing, "virtual");
  EXPECT_DOUBLE_EQ(s3.connect_timeout_seconds, 2.5);
  EXPECT_EQ(s3.low_speed_bytes_per_second, 4096);
  EXPECT_DOUBLE_EQ(s3.backoff_base_seconds, 0.5);
  EXPECT_DOUBLE_EQ(s3.backoff_cap_seconds, 10);
  EXPECT_EQ(s3.retry_budget, 100);
  FilterConfig none;
  ASSERT_TRUE(LoadText("[store]\nlease_seconds = 30\n", &none).ok());
  EXPECT_TRUE(none.tiers.empty());  // the default: plain local paths
}

TEST(FilterConfigTest, TierErrorsNameTheKey) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"tiers = 3\n", "config key 'tiers': expected an array of tables like [[tiers]]"},
      {"tiers = [1]\n", "config key 'tiers[0]': expected a table like [[tiers]]"},
      {"[[tiers]]\nroot = \"/x\"\n",
       "config key 'tiers[0].kind': missing; expected \"local\", \"http\" or \"s3\""},
      {"[[tiers]]\nkind = \"ftp\"\n",
       "config key 'tiers[0].kind': 'ftp' is not \"local\", \"http\" or \"s3\""},
      {"[[tiers]]\nkind = 3\n", "config key 'tiers[0].kind': expected a string"},
      {"[[tiers]]\nkind = \"local\"\nroot = \"/x\"\n[[tiers]]\nkind = \"s3\"\n"
       "endpoint = \"objects:9000\"\n",
       "config key 'tiers[1].endpoint': 'objects:9000' must start with http:// or https://"},
      {"[[tiers]]\nkind = \"local\"\nroot = \"/x\"\nendpoint = \"http://x\"\n",
       "config key 'tiers[0].endpoint': unknown key for a tier of kind \"local\""},
      {"[[tiers]]\nkind = \"http\"\nbase_url = \"http://x\"\nregion = \"us-east-1\"\n",
       "config key 'tiers[0].region': unknown key for a tier of kind \"http\""},
      {"[[tiers]]\nkind = \"http\"\nbase_url = \"http://x\"\nmax_attempts = 0\n",
       "config key 'tiers[0].max_attempts': must be at least 1"},
      {"[[tiers]]\nkind = \"http\"\nbase_url = \"http://x\"\nmax_attempts = \"3\"\n",
       "config key 'tiers[0].max_attempts': expected an integer"},
      {"[[tiers]]\nkind = \"local\"\n",
       "config key 'tiers[0].root': missing; a local tier "
       "needs a folder"},
      {"[[tiers]]\nkind = \"local\"\nroot = \"/a\"\n[[tiers]]\nkind = \"local\"\n"
       "root = \"/b\"\n",
       "config key 'tiers[1].name': 'local' is already the name of tiers[0]; give each tier a "
       "name"},
  };
  for (const auto& [text, message] : cases) {
    FilterConfig config;
    auto status = LoadText(text, &config);
    EXPECT_EQ(status.code(), ErrorCode::kInvalidArgument) << text;
    EXPECT_NE(status.message().find(message), std::string::npos)
        << text << " -> " << status.message();
  }
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
