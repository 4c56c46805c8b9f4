// ONNX heads on the model runtime: the same head in this process and in a child process gives
// the same numbers; the child's load errors read as the in-process ones; the configured heads'
// micro-batcher gives each of several threads its own results.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <mutex>
#include <thread>

#include "models/filter/configured_models.h"
#include "models/heads/onnx_head.h"
#include "tests/models/child_process_test_util.h"
#include "tests/models/test_models.h"
#include "tests/support/test_env.h"

namespace vsieve::models {
namespace {

// Frame i of a clip is one flat BGR colour that depends on `seed` and i.
HeadInput Clip(int seed, int frames = 4) {
  HeadInput input;
  for (int i = 0; i < frames; ++i) {
    input.frames.emplace_back(48, 64, CV_8UC3,
                              cv::Scalar(5 + 10 * i + seed, 100 + 3 * i, 20 + 25 * i + 2 * seed));
    input.times_s.push_back(0.5 * i);
  }
  return input;
}

class IsolatedHeadTest : public ::testing::Test {
 protected:
  void SetUp() override { VSIEVE_MAKE_TEST_MODELS(dir_.path()); }
  void TearDown() override { EXPECT_TRUE(ChildrenOfThisProcess().empty()); }

  OnnxHeadConfig Config(const std::string& model = "head_ncthw") {
    OnnxHeadConfig config;
    config.name = "isolated_head";
    config.model = dir_.File(model + ".onnx");
    config.frames = 4;
    config.height = 6;
    config.width = 10;
    config.labels = {"a", "b", "c", "d"};
    config.activation = HeadActivation::kNone;
    config.batch = 4;
    return config;
  }

  static ModelRuntimeOptions Isolated() {
    ModelRuntimeOptions runtime;
    runtime.isolate = true;
    runtime.worker_binary = VSIEVE_BINARY;
    return runtime;
  }

  testing::TempDir dir_;
};

TEST_F(IsolatedHeadTest, InAChildTheHeadGivesTheSameNumbers) {
  auto local = OnnxHead::Load(Config(), Device{});
  auto isolated = OnnxHead::Load(Config(), Device{}, Isolated());
  ASSERT_TRUE(local.ok()) << local.status().ToString();
  ASSERT_TRUE(isolated.ok()) << isolated.status().ToString();
  EXPECT_EQ((*isolated)->batch_capacity(), (*local)->batch_capacity());
  EXPECT_EQ((*isolated)->model().warmup().output_shapes, (*local)->model().warmup().output_shapes);
  const std::vector<HeadInput> inputs = {Clip(0), Clip(7), Clip(30), Clip(3), Clip(11)};
  auto expected = (*local)->RunBatch(inputs);
  auto got = (*isolated)->RunBatch(inputs);
  ASSERT_TRUE(expected.ok()) << expected.status().ToString();
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    ASSERT_EQ((*got)[i].result.size(), 4u);
    for (size_t k = 0; k < 4; ++k) {
      EXPECT_EQ((*got)[i].result[k].second, (*expected)[i].result[k].second) << i << "/" << k;
    }
  }
}

TEST_F(IsolatedHeadTest, LoadErrorsFromTheChildReadAsInProcess) {
  OnnxHeadConfig wrong = Config();
  wrong.frames = 8;  // the graph takes 4
  auto local = OnnxHead::Load(wrong, Device{});
  auto isolated = OnnxHead::Load(wrong, Device{}, Isolated());
  ASSERT_FALSE(local.ok());
  ASSERT_FALSE(isolated.ok());
  EXPECT_EQ(isolated.status().code(), local.status().code());
  for (const char* part : {"declares input [N,3,4,6,10]", "expected [N,3,8,6,10]"}) {
    EXPECT_NE(isolated.status().message().find(part), std::string::npos)
        << isolated.status().message();
  }
  OnnxHeadConfig labels = Config();
  labels.labels = {"a", "b", "c"};
  auto few = OnnxHead::Load(labels, Device{}, Isolated());
  ASSERT_FALSE(few.ok());
  EXPECT_NE(few.status().message().find("gives 4 values per clip; expected [N,3]"),
            std::string::npos)
      << few.status().message();
}

TEST_F(IsolatedHeadTest, TheMicroBatcherGivesEachThreadItsOwnResults) {
  auto reference = OnnxHead::Load(Config(), Device{});
  ASSERT_TRUE(reference.ok());
  std::mutex reference_mutex;
  for (const bool isolate : {false, true}) {
    ModelRuntimePolicy policy;
    if (isolate) policy.runtime = Isolated();
    policy.batching.max_batch = 4;
    policy.batching.max_delay_ms = 2;
    auto set = ConfiguredModels::Load({}, {Config()}, 30, policy);
    ASSERT_TRUE(set.ok()) << set.status().ToString();
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int round = 0; round < 5; ++round) {
          const std::vector<HeadInput> inputs = {Clip(t * 10 + round), Clip(t + round + 50)};
          auto got = (*set)->RunHead(0, inputs);
          std::unique_lock lock(reference_mutex);  // the reference head is single-threaded
          auto expected = (*reference)->RunBatch(inputs);
          lock.unlock();
          ASSERT_TRUE(got.ok()) << got.status().ToString();
          ASSERT_TRUE(expected.ok());
          for (size_t i = 0; i < inputs.size(); ++i) {
            for (size_t k = 0; k < 4; ++k) {
              EXPECT_EQ((*got)[i].result[k].second, (*expected)[i].result[k].second);
            }
          }
        }
      });
    }
    for (auto& thread : threads) thread.join();
  }
}

}  // namespace
}  // namespace vsieve::models
