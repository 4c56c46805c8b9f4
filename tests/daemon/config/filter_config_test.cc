#include "daemon/config/filter_config.h"

#include <gtest/gtest.h>

#include <sstream>

#include "tests/daemon/config_test_util.h"
#include "tests/support/test_env.h"

namespace vsieve::daemon {
namespace {

using common::ErrorCode;
using testing::LoadText;
using testing::RejectedWith;

TEST(FilterConfigTest, ReadsEverySection) {
  FilterConfig config;
  const auto status = LoadText(R"(
[sampling]
clip_frames = 24
window_s = 5.0
[limits]
analysis_max_side = 480
thin_max_side = 240
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
  EXPECT_EQ(config.options.limits.thin_max_side, 240);
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
  FilterConfig thin;
  status = LoadText("[limits]\nthin_max_side = 16\n", &thin);
  EXPECT_NE(status.message().find("limits.thin_max_side"), std::string::npos) << status.message();
  FilterConfig off;
  EXPECT_TRUE(LoadText("[limits]\nthin_max_side = 0\n", &off).ok());
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
  EXPECT_EQ(config.output.url, defaults.output.url);
  EXPECT_EQ(config.output.crf, defaults.output.crf);
  EXPECT_EQ(config.output.preset, defaults.output.preset);
  EXPECT_EQ(config.output.key, defaults.output.key);
  EXPECT_EQ(config.output.multipart_bytes, defaults.output.multipart_bytes);
  EXPECT_EQ(config.output.part_bytes, defaults.output.part_bytes);
  EXPECT_DOUBLE_EQ(config.output.min_area, defaults.output.min_area);
  EXPECT_EQ(config.pipeline.encode_threads, defaults.pipeline.encode_threads);
}

TEST(FilterConfigTest, ReadsAndChecksTheOutputSection) {
  FilterConfig config;
  ASSERT_TRUE(LoadText("[pipeline]\nencode_threads = 3\n[output]\nurl = \"file:///data/crops/\"\n"
                       "crf = 20\npreset = \"fast\"\nmin_area = 0.2\nmultipart_bytes = \"8MiB\"\n"
                       "part_bytes = \"5MiB\"\nkey = \"{prefix}{bucket}/{video_id}.mp4\"\n",
                       &config)
                  .ok());
  EXPECT_TRUE(config.output.enabled());
  EXPECT_EQ(config.output.url, "file:///data/crops/");
  EXPECT_EQ(config.output.crf, 20);
  EXPECT_EQ(config.output.preset, "fast");
  EXPECT_DOUBLE_EQ(config.output.min_area, 0.2);
  EXPECT_EQ(config.output.multipart_bytes, 8 << 20);
  EXPECT_EQ(config.output.part_bytes, 5 << 20);
  EXPECT_EQ(config.pipeline.encode_threads, 3);
  EXPECT_TRUE(RejectedWith("[output]\ncrff = 1\n", "output.crff"));
  EXPECT_TRUE(RejectedWith("[output]\ncrf = 60\n", "output.crf"));
  EXPECT_TRUE(RejectedWith("[output]\nmin_area = 2\n", "output.min_area"));
  EXPECT_TRUE(RejectedWith("[output]\npart_bytes = \"1MiB\"\n", "output.part_bytes"));
  EXPECT_TRUE(RejectedWith("[output]\nkey = \"same.mp4\"\n", "output.key"));
  EXPECT_TRUE(RejectedWith("[output]\nurl = \"http://x/\"\n", "output.url"));
  EXPECT_TRUE(RejectedWith("[output]\nurl = \"s3://b/p/\"\n", "output.url"));  // no s3 tier
  EXPECT_TRUE(RejectedWith("[output]\nurl = \"file:///x/\"\ncodec = \"nope\"\n", "output.codec"));
  EXPECT_TRUE(RejectedWith("[pipeline]\nencode_threads = 0\n", "pipeline.encode_threads"));
}

// The commented-out [[detectors]] and [[heads]] examples ("#key = ..." lines, no space after the
// '#') are valid when uncommented.
TEST(FilterConfigTest, TheExampleModelBlocksLoadWhenUncommented) {
  std::istringstream in(testing::ReadFile(testing::SourceDir() + "/etc/vsieve.example.toml"));
  std::string text;
  std::string line;
  int uncommented = 0;
  while (std::getline(in, line)) {
    if (line.size() > 1 && line[0] == '#' && line[1] != ' ' && line[1] != '#' && line[1] != '-') {
      line = line.substr(1);
      ++uncommented;
    }
    text += line + "\n";
  }
  ASSERT_GT(uncommented, 20);
  FilterConfig config;
  const auto status = LoadText(text, &config);
  ASSERT_TRUE(status.ok()) << status.ToString();
  ASSERT_EQ(config.options.detectors.size(), 3U);
  EXPECT_EQ(config.options.detectors[0].kind, models::YoloKind::kYolox);
  EXPECT_EQ(config.options.detectors[0].kinds.at("tvmonitor").kind, models::RegionKind::kWatermark);
  EXPECT_EQ(config.options.detectors[1].kind, models::YoloKind::kDarknet);
  EXPECT_FALSE(config.options.detectors[1].letterbox);
  EXPECT_EQ(config.options.detectors[2].kind, models::YoloKind::kFastestDet);
  ASSERT_EQ(config.options.heads.size(), 1U);
  EXPECT_EQ(config.options.heads[0].name, "aesthetic_filter");
  EXPECT_EQ(config.options.heads[0].labels,
            (std::vector<std::string>{"low_aesthetic", "normal_video"}));
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
  for (const auto& [text, key] : cases) EXPECT_TRUE(RejectedWith(text, "'" + key + "'"));
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
  for (const auto& [text, message] : cases) EXPECT_TRUE(RejectedWith(text, message));
}

TEST(FilterConfigTest, ReadsDetectorsAndHeads) {
  FilterConfig config;
  const auto status = LoadText(R"(
[devices]
list = ["cpu:0", "cpu:1"]

[[detectors]]
name = "yolo"
kind = "yolox"
model = "m/yolox_nano.onnx"
classes = "m/coco_classes.txt"
input = 416
conf = 0.25
nms = 0.5
class_filter = ["person", "car"]
frames = 6
min_presence = 0.4
instances = 2
batch = 4
[detectors.kinds]
default = { kind = "object" }
watermark = { kind = "watermark" }
subtitle = { kind = "text", avoid = false }

[[detectors]]
name = "fast"
kind = "darknet"
model = "m/yolo-fastest.weights"
cfg = "m/yolo-fastest.cfg"
input = [256, 320]
letterbox = true
devices = ["cpu:1"]

[[heads]]
name = "aesthetic_filter"
kind = "onnx"
model = "m/aesthetic.onnx"
layout = "NTCHW"
frames = 8
size = [112, 160]
mean = [0.5, 0.5, 0.5]
std = [0.25, 0.25, 0.5]
colour = "bgr"
labels = ["low_aesthetic", "normal_video"]
activation = "sigmoid"
mode = "reversed_windows"
instances = 3
batch = 2

[[heads]]
name = "per_frame"
kind = "onnx"
model = "m/frame.onnx"
layout = "NCHW"
labels = ["a", "b", "c"]
)",
                               &config);
  ASSERT_TRUE(status.ok()) << status.ToString();
  const auto& detectors = config.options.detectors;
  ASSERT_EQ(detectors.size(), 2U);
  const models::DetectorConfig& yolo = detectors[0];
  EXPECT_EQ(yolo.name, "yolo");
  EXPECT_EQ(yolo.kind, models::YoloKind::kYolox);
  EXPECT_EQ(yolo.model, "m/yolox_nano.onnx");
  EXPECT_EQ(yolo.classes, "m/coco_classes.txt");
  EXPECT_EQ(yolo.input_width, 416);
  EXPECT_EQ(yolo.input_height, 416);
  EXPECT_TRUE(yolo.letterbox);  // YOLOX's default
  EXPECT_FLOAT_EQ(yolo.conf, 0.25F);
  EXPECT_FLOAT_EQ(yolo.nms, 0.5F);
  EXPECT_EQ(yolo.class_filter, (std::vector<std::string>{"person", "car"}));
  EXPECT_EQ(yolo.frames, 6);
  EXPECT_DOUBLE_EQ(yolo.min_presence, 0.4);
  EXPECT_EQ(yolo.instances, 2);
  EXPECT_EQ(yolo.batch, 4);
  EXPECT_EQ(yolo.devices, config.devices.list);  // [devices] when not given
  ASSERT_EQ(yolo.kinds.size(), 3U);
  EXPECT_EQ(yolo.kinds.at("default").kind, models::RegionKind::kObject);
  EXPECT_FALSE(yolo.kinds.at("default").avoid);  // objects are not avoided by default
  EXPECT_EQ(yolo.kinds.at("watermark").kind, models::RegionKind::kWatermark);
  EXPECT_TRUE(yolo.kinds.at("watermark").avoid);  // other kinds are
  EXPECT_EQ(yolo.kinds.at("subtitle").kind, models::RegionKind::kText);
  EXPECT_FALSE(yolo.kinds.at("subtitle").avoid);
  const models::DetectorConfig& fast = detectors[1];
  EXPECT_EQ(fast.kind, models::YoloKind::kDarknet);
  EXPECT_EQ(fast.cfg, "m/yolo-fastest.cfg");
  EXPECT_EQ(fast.input_height, 256);  // [height, width]
  EXPECT_EQ(fast.input_width, 320);
  EXPECT_TRUE(fast.letterbox);  // as configured (darknet's default is to stretch)
  EXPECT_EQ(fast.devices, (std::vector<std::string>{"cpu:1"}));

  const auto& heads = config.options.heads;
  ASSERT_EQ(heads.size(), 2U);
  const models::OnnxHeadConfig& head = heads[0];
  EXPECT_EQ(head.name, "aesthetic_filter");
  EXPECT_EQ(head.model, "m/aesthetic.onnx");
  EXPECT_EQ(head.layout, models::HeadLayout::kNtchw);
  EXPECT_EQ(head.frames, 8);
  EXPECT_EQ(head.height, 112);
  EXPECT_EQ(head.width, 160);
  EXPECT_EQ(head.mean, (std::array<double, 3>{0.5, 0.5, 0.5}));
  EXPECT_EQ(head.std, (std::array<double, 3>{0.25, 0.25, 0.5}));
  EXPECT_FALSE(head.rgb);
  EXPECT_EQ(head.labels, (std::vector<std::string>{"low_aesthetic", "normal_video"}));
  EXPECT_EQ(head.activation, models::HeadActivation::kSigmoid);
  EXPECT_EQ(head.mode, models::HeadMode::kReversedWindows);
  EXPECT_EQ(head.instances, 3);
  EXPECT_EQ(head.batch, 2);
  const models::OnnxHeadConfig& frame = heads[1];
  EXPECT_EQ(frame.layout, models::HeadLayout::kNchw);
  EXPECT_EQ(frame.frames, 16);  // defaults
  EXPECT_EQ(frame.height, 224);
  EXPECT_TRUE(frame.rgb);
  EXPECT_EQ(frame.activation, models::HeadActivation::kSoftmax);
  EXPECT_EQ(frame.mode, models::HeadMode::kClip);

  // Both appear in the effective config, and change the hash.
  const nlohmann::json json = FilterOptionsToJson(config.options);
  EXPECT_EQ(json["detectors"][0]["kinds"]["watermark"]["kind"], "watermark");
  EXPECT_EQ(json["heads"][0]["labels"][1], "normal_video");
  EXPECT_NE(ConfigHash(config.options), ConfigHash(models::FilterOptions{}));
}

TEST(FilterConfigTest, DetectorAndHeadErrorsNameTheKey) {
  const std::string detector = "[[detectors]]\nkind = \"yolox\"\nmodel = \"m.onnx\"\n";
  const std::string head =
      "[[heads]]\nname = \"h\"\nkind = \"onnx\"\nmodel = \"h.onnx\"\nlabels = [\"a\", \"b\"]\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {detector + "conf = 1.5\n", "detectors[0].conf': must be in [0,1]"},
      {detector + "nms = -0.1\n", "detectors[0].nms': must be in [0,1]"},
      {detector + "min_presence = 0\n", "detectors[0].min_presence': must be in (0,1]"},
      {detector + "confidence = 0.3\n", "detectors[0].confidence': unknown key"},
      {"[[detectors]]\nmodel = \"m.onnx\"\n", "detectors[0].kind': must be set"},
      {"[[detectors]]\nkind = \"yolox\"\n", "detectors[0].model': must be set"},
      {"[[detectors]]\nkind = \"yolov7\"\nmodel = \"m\"\n", "detectors[0].kind': 'yolov7'"},
      {"[[detectors]]\nkind = \"darknet\"\nmodel = \"m\"\n", "detectors[0].cfg': must be set"},
      {detector + "cfg = \"x.cfg\"\n", "detectors[0].cfg': is only for kind darknet"},
      {detector + "input = 100\n", "detectors[0].input': must be a multiple of 32"},
      {detector + "input = [1, 2, 3]\n", "detectors[0].input': expected a positive integer"},
      {detector + "input = 0\n", "detectors[0].input'"},
      {detector + "frames = 0\n", "detectors[0].frames': must be at least 1"},
      {detector + "instances = 0\n", "detectors[0].instances': must be at least 1"},
      {detector + "batch = 0\n", "detectors[0].batch': must be at least 1"},
      {detector + "devices = [\"gpu\"]\n", "detectors[0].devices': 'gpu' is not KIND:INDEX"},
      {detector + "class_filter = \"person\"\n", "detectors[0].class_filter'"},
      {detector + "[detectors.kinds]\nlogo = \"watermark\"\n", "detectors[0].kinds.logo'"},
      {detector + "[detectors.kinds]\nlogo = { kind = \"logo\" }\n",
       "detectors[0].kinds.logo.kind': 'logo' is not one of"},
      {detector + "[detectors.kinds]\nlogo = { kind = \"watermark\", avoids = true }\n",
       "detectors[0].kinds.logo.avoids': unknown key"},
      {detector + detector, "detectors[1].name': 'yolo' is used by another detector"},
      {"detectors = 3\n", "detectors': expected [[detectors]] tables"},
      {head + "layout = \"NHWC\"\n", "heads[0].layout': 'NHWC' is not one of"},
      {head + "frames = 0\n", "heads[0].frames': must be at least 1"},
      {head + "size = [224]\n", "heads[0].size'"},
      {head + "mean = [0.5, 0.5]\n", "heads[0].mean': expected 3 numbers"},
      {head + "std = [0.5, 0, 0.5]\n", "heads[0].std': must be positive"},
      {head + "colour = \"rgba\"\n", "heads[0].colour': 'rgba' is not rgb or bgr"},
      {head + "activation = \"relu\"\n", "heads[0].activation': 'relu' is not one of"},
      {head + "mode = \"window\"\n", "heads[0].mode': 'window' is not one of"},
      {head + "window = 4\n", "heads[0].window': unknown key"},
      {"[[heads]]\nname = \"h\"\nkind = \"torch\"\nmodel = \"h.pt\"\nlabels = [\"a\"]\n",
       "heads[0].kind': 'torch' is not onnx"},
      {"[[heads]]\nkind = \"onnx\"\nmodel = \"h.onnx\"\nlabels = [\"a\"]\n",
       "heads[0].name': must be set"},
      {"[[heads]]\nname = \"h\"\nkind = \"onnx\"\nmodel = \"h.onnx\"\nlabels = []\n",
       "heads[0].labels': must name at least one label"},
      {"[[heads]]\nname = \"h\"\nkind = \"onnx\"\nmodel = \"h.onnx\"\nlabels = [\"a\", \"a\"]\n",
       "heads[0].labels': 'a' appears twice"},
      {"[[heads]]\nname = \"vfx_filter\"\nkind = \"onnx\"\nmodel = \"h.onnx\"\nlabels = [\"a\"]\n",
       "heads[0].name': 'vfx_filter' is a built-in key"},
      {head + head, "heads[1].name': 'h' is used by another head"},
  };
  for (const auto& [text, expected] : cases) {
    EXPECT_TRUE(RejectedWith(text, "config key '" + expected));
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

  // A configured model's folder, devices, instances and batch do not change results.
  models::FilterOptions c;
  models::FilterOptions d;
  c.heads.emplace_back();
  c.heads[0].model = "/here/aesthetic.onnx";
  d.heads = c.heads;
  d.heads[0].model = "/elsewhere/aesthetic.onnx";
  d.heads[0].devices = {"cpu:1"};
  d.heads[0].instances = 4;
  d.heads[0].batch = 1;
  EXPECT_EQ(ConfigHash(c), ConfigHash(d));
  d.heads[0].frames = 8;
  EXPECT_NE(ConfigHash(c), ConfigHash(d));
}

}  // namespace
}  // namespace vsieve::daemon
