// The pipeline with a model isolated in child processes (seed 003): a model that aborts on one
// video fails that video with MODEL_FAILED, its child is restarted, and the other videos go on.
// The model is a test kind of the real `vsieve model-worker` standing in for an ONNX head (the
// heads are wired to ItemModel when branch `models` lands).

#include <gtest/gtest.h>
#include <stdlib.h>

#include <nlohmann/json.hpp>

#include "common/metrics.h"
#include "daemon/pipeline/device_runtime.h"
#include "daemon/pipeline/pipeline.h"
#include "models/runtime/child_process_model.h"
#include "tests/daemon/fake_table_store.h"

namespace vsieve::daemon {
namespace {

using namespace std::chrono_literals;
using testing::FakeTableStore;

class PathReader : public storage::Reader {
 public:
  common::StatusOr<storage::FetchedObject> Fetch(const storage::ObjectRef& ref) override {
    storage::FetchedObject object;
    object.local_path = ref.key;
    object.source_tier = "local";
    object.size_bytes = 1;
    return object;
  }
};

double Series(const std::string& family, const std::string& model) {
  const std::string text = common::MetricsRegistry::Global().Render();
  const std::string series =
      family + common::FormatLabels({{"device", "cpu:0"}, {"model", model}}) + " ";
  const size_t at = text.find(series);
  return at == std::string::npos ? 0 : std::stod(text.substr(at + series.size()));
}

TEST(IsolatedModelPipelineTest, AnAbortingModelFailsOnlyItsVideoAndItsChildIsRestarted) {
  setenv("VSIEVE_TEST_MODELS", "1", 1);
  PipelineOptions options;
  options.owner = "test-owner";
  options.until_idle = true;
  options.config.options.text_regions = false;
  options.config.store.lease_seconds = 30;
  PipelineConfig& p = options.config.pipeline;
  p.download_threads = 2;
  p.decode_threads = 1;
  p.workers = 3;
  p.queue_depth = 4;
  p.claim_batch = 2;
  p.write_batch = 4;
  p.write_interval_seconds = 0.05;
  p.backoff_base_seconds = 0.01;
  p.backoff_cap_seconds = 0.05;
  p.max_attempts = 3;
  DeviceConfig& devices = options.config.devices;
  devices.instances = 3;
  devices.isolate = true;
  devices.model_timeout_seconds = 30;
  devices.restart_backoff_base_seconds = 0;
  devices.restart_backoff_cap_seconds = 0;

  // The stand-in head: one item per video, whose value is the video's number; 13 aborts.
  const std::string label = "stand_in_head";
  const double restarts_before = Series("vsieve_model_child_restarts_total", label);
  models::ModelRuntimeOptions runtime = RuntimeOptionsFor(devices);
  runtime.worker_binary = VSIEVE_TEST_BINARY;
  ASSERT_TRUE(runtime.isolate);
  auto heads = models::InstancePool<models::ItemModel>::Create(
      PoolOptionsFor(devices, label, 2, MakeDeviceBudgets(devices)),
      [&](const models::Device& device) {
        models::ItemModelSpec spec;
        spec.kind = "abort_on";
        spec.device = device.name;
        spec.item_shape = {1, 4};
        spec.params = {{"value", 13}, {"factor", 10}};
        return models::MakeItemModel(spec, runtime, label);
      });
  ASSERT_TRUE(heads.ok()) << heads.status().ToString();

  PipelineHooks hooks;
  hooks.reader = std::make_shared<PathReader>();
  hooks.sample = [](const std::string& path, const models::FilterOptions&) {
    models::SampledVideo video;
    video.info["number"] = std::stoi(path.substr(path.rfind('/') + 1));
    return video;
  };
  hooks.analyze = [&](models::VideoFilter*, models::SampledVideo video) {
    models::FilterReport report;
    auto lease = (*heads)->Borrow(30s);
    if (!lease.ok()) {
      report.status = lease.status();
      return report;
    }
    const float number = video.info["number"].get<float>();
    auto outputs = (*lease)->RunItems({cv::Mat(1, 4, CV_32F, cv::Scalar(number))});
    if (!outputs.ok()) {
      report.status = outputs.status().WithStage("heads");
      return report;
    }
    report.info["stand_in_head"] = (*outputs)[0][0].at<float>(0);
    return report;
  };

  FakeTableStore store;
  for (int i = 0; i < 30; ++i) store.Add("v" + std::to_string(i), "/clips/" + std::to_string(i));
  {
    auto pipeline = Pipeline::Create(options, &store, hooks);
    ASSERT_TRUE(pipeline.ok()) << pipeline.status().ToString();
    ASSERT_TRUE((*pipeline)->Run().ok());
    EXPECT_EQ((*pipeline)->Snapshot().done, 29);
    EXPECT_EQ((*pipeline)->Snapshot().failed, 1);
  }
  for (const auto& row : store.Rows()) {
    EXPECT_EQ(row.completions, 1) << row.input.video_id;
    const nlohmann::json result = nlohmann::json::parse(row.result_json);
    if (row.input.video_id == "v13") {
      EXPECT_EQ(row.state, storage::RowState::kFailed);
      EXPECT_EQ(row.error_code, "MODEL_FAILED");
      const std::string message = result["result_info"]["error"]["message"];
      EXPECT_NE(message.find("model child exited on signal 6 (SIGABRT)"), std::string::npos)
          << message;
      EXPECT_EQ(result["result_info"]["attempts"], 1);  // a crash is not retried
    } else {
      ASSERT_EQ(row.state, storage::RowState::kDone) << row.result_json;
      const int number = std::stoi(row.input.video_id.substr(1));
      EXPECT_EQ(result["info"]["stand_in_head"], 10 * number);
    }
  }
  // The crashed instance starts again on its next call (which may come only now, when the other
  // instances took every later video), and works: every instance answers.
  std::vector<models::InstancePool<models::ItemModel>::Lease> leases;
  for (int i = 0; i < (*heads)->size(); ++i) {
    auto lease = (*heads)->Borrow(1s);
    ASSERT_TRUE(lease.ok());
    auto* child = dynamic_cast<models::ChildProcessModel*>(lease->get());
    ASSERT_NE(child, nullptr);
    auto outputs = child->RunItems({cv::Mat(1, 4, CV_32F, cv::Scalar(1))});
    EXPECT_TRUE(outputs.ok()) << outputs.status().ToString();
    EXPECT_GT(child->pid(), 0);
    leases.push_back(std::move(lease).value());
  }
  EXPECT_EQ(Series("vsieve_model_child_restarts_total", label), restarts_before + 1);
}

}  // namespace
}  // namespace vsieve::daemon
