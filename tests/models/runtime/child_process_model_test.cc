#include "models/runtime/child_process_model.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <thread>

#include "common/metrics.h"
#include "tests/models/child_process_test_util.h"
#include "tests/support/test_env.h"

namespace vsieve::models {
namespace {

using common::ErrorCode;
using namespace std::chrono_literals;

// A [2, 3, 4] tensor whose first value is `first` and the rest count up by 0.25.
cv::Mat Item(float first) {
  const int dims[] = {2, 3, 4};
  cv::Mat item(3, dims, CV_32F);
  float* values = item.ptr<float>();
  for (size_t i = 0; i < item.total(); ++i) values[i] = first + 0.25f * static_cast<float>(i);
  return item;
}

bool SameTensor(const cv::Mat& a, const cv::Mat& b) {
  if (a.dims != b.dims || a.type() != b.type()) return false;
  for (int i = 0; i < a.dims; ++i) {
    if (a.size[i] != b.size[i]) return false;
  }
  return std::memcmp(a.data, b.data, a.total() * a.elemSize()) == 0;
}

// The value of a {device="cpu:0", model=label} series; 0 before it exists.
double MetricValue(const std::string& family, const std::string& label) {
  const std::string text = common::MetricsRegistry::Global().Render();
  const std::string series =
      family + common::FormatLabels({{"device", "cpu:0"}, {"model", label}}) + " ";
  const size_t at = text.find(series);
  if (at == std::string::npos) return 0;
  return std::stod(text.substr(at + series.size()));
}

class ChildProcessModelTest : public ::testing::Test {
 protected:
  void SetUp() override { setenv("VSIEVE_TEST_MODELS", "1", 1); }
  void TearDown() override {
    EXPECT_TRUE(ChildrenOfThisProcess().empty()) << "a model child was left behind";
  }

  // Options for a test kind; `label` keeps each test's metrics apart.
  static ChildProcessOptions Options(const std::string& kind, nlohmann::json params,
                                     const std::string& label) {
    ChildProcessOptions options;
    options.binary = VSIEVE_TEST_BINARY;
    options.spec.kind = kind;
    options.spec.device = "cpu:0";
    options.spec.item_shape = {2, 3, 4};
    options.spec.max_batch = 4;
    options.spec.params = std::move(params);
    options.label = label;
    options.call_timeout_seconds = 30;
    options.restart_backoff_base_seconds = 0;
    options.restart_backoff_cap_seconds = 0;
    return options;
  }
};

TEST_F(ChildProcessModelTest, RoundTripGivesExactValues) {
  auto model = ChildProcessModel::Start(Options("scale", {{"factor", 2.5}}, "roundtrip"));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_GT((*model)->pid(), 0);
  EXPECT_EQ((*model)->batch_capacity(), 4);
  const std::vector<cv::Mat> items = {Item(1.0f), Item(-3.5f), Item(1e6f)};
  auto outputs = (*model)->RunItems(items);
  ASSERT_TRUE(outputs.ok()) << outputs.status().ToString();
  ASSERT_EQ(outputs->size(), items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    ASSERT_EQ((*outputs)[i].size(), 1u);
    cv::Mat expected;
    items[i].convertTo(expected, CV_32F, 2.5);
    EXPECT_TRUE(SameTensor((*outputs)[i][0], expected)) << "item " << i;
  }
  // A 2-D item and a non-continuous view go through too.
  cv::Mat wide(4, 6, CV_32F, cv::Scalar(0.5f));
  const std::vector<cv::Mat> more = {wide.colRange(1, 4)};
  auto second = (*model)->RunItems(more);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ((*second)[0][0].rows, 4);
  EXPECT_EQ((*second)[0][0].cols, 3);
  EXPECT_EQ((*second)[0][0].at<float>(3, 2), 1.25f);
  EXPECT_EQ((*model)->stats().starts, 1);
  EXPECT_EQ((*model)->stats().restarts, 0);
}

TEST_F(ChildProcessModelTest, ManyItemsInOneCall) {
  auto model = ChildProcessModel::Start(Options("scale", {{"factor", -1}}, "batch"));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  std::vector<cv::Mat> items;
  for (int i = 0; i < 10; ++i) items.push_back(Item(static_cast<float>(i)));
  auto outputs = (*model)->RunItems(items);
  ASSERT_TRUE(outputs.ok()) << outputs.status().ToString();
  ASSERT_EQ(outputs->size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ((*outputs)[i][0].ptr<float>()[0], -i);
  auto none = (*model)->RunItems({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(ChildProcessModelTest, AbortFailsTheCallAndTheNextCallRestartsTheChild) {
  const std::string label = "abort";
  const double restarts_before = MetricValue("vsieve_model_child_restarts_total", label);
  const double crashes_before = MetricValue("vsieve_model_child_crashes_total", label);
  auto model = ChildProcessModel::Start(Options("abort_on", {{"value", 13}}, label));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const pid_t first = (*model)->pid();
  ASSERT_TRUE((*model)->RunItems({Item(1)}).ok());

  auto crashed = (*model)->RunItems({Item(2), Item(13)});
  ASSERT_FALSE(crashed.ok());
  EXPECT_EQ(crashed.status().code(), ErrorCode::kModelFailed);
  EXPECT_FALSE(crashed.status().retryable());
  EXPECT_NE(crashed.status().message().find("model child exited on signal 6 (SIGABRT)"),
            std::string::npos)
      << crashed.status().message();
  EXPECT_NE(crashed.status().message().find("model abort on cpu:0"), std::string::npos)
      << crashed.status().message();
  EXPECT_EQ((*model)->pid(), -1);
  EXPECT_TRUE(ChildrenOfThisProcess().empty()) << "the crashed child was not reaped";
  EXPECT_EQ(kill(first, 0), -1);

  auto again = (*model)->RunItems({Item(3)});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ((*again)[0][0].ptr<float>()[0], 3.0f);
  EXPECT_GT((*model)->pid(), 0);
  EXPECT_NE((*model)->pid(), first);
  EXPECT_EQ((*model)->stats().crashes, 1);
  EXPECT_EQ((*model)->stats().restarts, 1);
  EXPECT_EQ((*model)->stats().starts, 2);
  EXPECT_EQ(MetricValue("vsieve_model_child_restarts_total", label), restarts_before + 1);
  EXPECT_EQ(MetricValue("vsieve_model_child_crashes_total", label), crashes_before + 1);
  EXPECT_EQ(MetricValue("vsieve_model_children", label), 1);
  EXPECT_TRUE(ZombieChildren().empty());
}

TEST_F(ChildProcessModelTest, CallsDuringTheBackoffFailFastAndAreRetryable) {
  ChildProcessOptions options = Options("abort_on", {{"value", 13}}, "backoff");
  options.restart_backoff_base_seconds = 600;  // never over during this test
  options.restart_backoff_cap_seconds = 3600;
  auto model = ChildProcessModel::Start(options);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  ASSERT_FALSE((*model)->RunItems({Item(13)}).ok());
  auto waiting = (*model)->RunItems({Item(1)});
  ASSERT_FALSE(waiting.ok());
  EXPECT_EQ(waiting.status().code(), ErrorCode::kModelFailed);
  EXPECT_TRUE(waiting.status().retryable());
  EXPECT_NE(waiting.status().message().find("restarting after 1 failure(s); next start in"),
            std::string::npos)
      << waiting.status().message();
  EXPECT_EQ((*model)->stats().restarts, 0);
  EXPECT_EQ((*model)->pid(), -1);
}

TEST_F(ChildProcessModelTest, HangIsKilledAtTheTimeoutAndRestarted) {
  const double timeouts_before = MetricValue("vsieve_model_child_timeouts_total", "hang");
  ChildProcessOptions options = Options("hang_on", {{"value", 7}}, "hang");
  options.call_timeout_seconds = 0.5;
  auto model = ChildProcessModel::Start(options);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const pid_t first = (*model)->pid();
  auto hung = (*model)->RunItems({Item(7)});
  ASSERT_FALSE(hung.ok());
  EXPECT_EQ(hung.status().code(), ErrorCode::kModelFailed);
  EXPECT_NE(hung.status().message().find("timed out after 0.5 s: killed"), std::string::npos)
      << hung.status().message();
  EXPECT_EQ(kill(first, 0), -1);
  EXPECT_TRUE(ChildrenOfThisProcess().empty());
  EXPECT_EQ((*model)->stats().timeouts, 1);
  EXPECT_EQ(MetricValue("vsieve_model_child_timeouts_total", "hang"), timeouts_before + 1);

  auto again = (*model)->RunItems({Item(8)});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ((*model)->stats().restarts, 1);
}

TEST_F(ChildProcessModelTest, NonZeroExitIsReported) {
  auto model = ChildProcessModel::Start(Options("exit_on", {{"value", 5}, {"code", 7}}, "exit"));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  auto exited = (*model)->RunItems({Item(5)});
  ASSERT_FALSE(exited.ok());
  EXPECT_NE(exited.status().message().find("model child exited with status 7"), std::string::npos)
      << exited.status().message();
  EXPECT_TRUE(ChildrenOfThisProcess().empty());
}

TEST_F(ChildProcessModelTest, ModelErrorsLeaveTheChildRunning) {
  auto model = ChildProcessModel::Start(Options("fail_on", {{"value", 4}}, "fail"));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const pid_t pid = (*model)->pid();
  auto refused = (*model)->RunItems({Item(4)});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kModelFailed);
  EXPECT_NE(refused.status().message().find("test model refused an item"), std::string::npos);
  EXPECT_EQ((*model)->pid(), pid);
  ASSERT_TRUE((*model)->RunItems({Item(1)}).ok());
  EXPECT_EQ((*model)->stats().crashes, 0);
  // Items the protocol cannot carry are refused before anything is sent.
  auto wrong = (*model)->RunItems({cv::Mat(2, 2, CV_8U, cv::Scalar(1))});
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ((*model)->pid(), pid);
}

TEST_F(ChildProcessModelTest, BuildErrorsAreClear) {
  auto unknown = ChildProcessModel::Start(Options("no_such_kind", {}, "bad"));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("unknown model kind 'no_such_kind'"), std::string::npos)
      << unknown.status().message();
  EXPECT_NE(unknown.status().message().find("model bad on cpu:0"), std::string::npos);

  auto bad_param = ChildProcessModel::Start(Options("scale", {{"factor", "x"}}, "bad"));
  ASSERT_FALSE(bad_param.ok());
  EXPECT_NE(bad_param.status().message().find("params.factor must be a number"), std::string::npos)
      << bad_param.status().message();

  ChildProcessOptions device = Options("scale", {}, "bad");
  device.spec.device = "npu:0";
  auto bad_device = ChildProcessModel::Start(device);
  ASSERT_FALSE(bad_device.ok());
  EXPECT_NE(bad_device.status().message().find("device npu:0"), std::string::npos)
      << bad_device.status().message();

  unsetenv("VSIEVE_TEST_MODELS");
  auto test_kind = ChildProcessModel::Start(Options("scale", {}, "bad"));
  setenv("VSIEVE_TEST_MODELS", "1", 1);
  ASSERT_FALSE(test_kind.ok());
  EXPECT_NE(test_kind.status().message().find("is a test kind; set VSIEVE_TEST_MODELS=1"),
            std::string::npos)
      << test_kind.status().message();

  ChildProcessOptions missing = Options("scale", {}, "bad");
  missing.binary = "/nonexistent/vsieve";
  auto no_binary = ChildProcessModel::Start(missing);
  ASSERT_FALSE(no_binary.ok());
  EXPECT_EQ(no_binary.status().code(), ErrorCode::kModelFailed);
  EXPECT_NE(no_binary.status().message().find("cannot start model child /nonexistent/vsieve"),
            std::string::npos)
      << no_binary.status().message();

  ChildProcessOptions timeout = Options("scale", {}, "bad");
  timeout.call_timeout_seconds = 0;
  EXPECT_EQ(ChildProcessModel::Start(timeout).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(ChildrenOfThisProcess().empty());
}

TEST_F(ChildProcessModelTest, DestructionStopsAndReapsTheChild) {
  pid_t pid = -1;
  {
    auto model = ChildProcessModel::Start(Options("scale", {}, "destroy"));
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    pid = (*model)->pid();
    EXPECT_EQ(ChildrenOfThisProcess(), std::vector<pid_t>{pid});
  }
  EXPECT_EQ(kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  // A child that hangs is killed after the grace.
  {
    ChildProcessOptions options = Options("slow", {{"ms", 0}}, "destroy");
    options.exit_grace_seconds = 0.2;
    auto model = ChildProcessModel::Start(options);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    pid = (*model)->pid();
    ASSERT_EQ(kill(pid, SIGSTOP), 0);  // it cannot read EXIT now
  }
  EXPECT_EQ(kill(pid, 0), -1);
}

TEST_F(ChildProcessModelTest, AChildKilledFromOutsideIsRestarted) {
  auto model = ChildProcessModel::Start(Options("scale", {}, "outside"));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  ASSERT_EQ(kill((*model)->pid(), SIGKILL), 0);
  auto lost = (*model)->RunItems({Item(1)});
  ASSERT_FALSE(lost.ok());
  EXPECT_NE(lost.status().message().find("exited on signal 9 (SIGKILL)"), std::string::npos)
      << lost.status().message();
  ASSERT_TRUE((*model)->RunItems({Item(1)}).ok());
}

TEST_F(ChildProcessModelTest, TheChildInheritsOnlyItsChannel) {
  // A descriptor of ours without close-on-exec must not reach the child.
  const int leak = open("/dev/null", O_RDONLY);
  ASSERT_GE(leak, 0);
  auto model = ChildProcessModel::Start(Options("scale", {}, "fds"));
  close(leak);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  std::vector<std::string> fds;
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc/" + std::to_string((*model)->pid()) + "/fd")) {
    fds.push_back(entry.path().filename().string());
  }
  std::sort(fds.begin(), fds.end());
  EXPECT_EQ(fds, (std::vector<std::string>{"0", "1", "2", "3"}));
}

TEST_F(ChildProcessModelTest, TheChildOutlivesTheThreadThatStartedIt) {
  std::unique_ptr<ChildProcessModel> model;
  std::thread starter([&] {
    auto started = ChildProcessModel::Start(Options("scale", {}, "thread"));
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    model = std::move(started).value();
  });
  starter.join();
  ASSERT_NE(model, nullptr);
  std::this_thread::sleep_for(100ms);
  auto outputs = model->RunItems({Item(1)});
  EXPECT_TRUE(outputs.ok()) << outputs.status().ToString();
  EXPECT_EQ(model->stats().crashes, 0);
}

TEST_F(ChildProcessModelTest, TheWorkerRefusesBadDescriptorsAndAForeignParent) {
  EXPECT_EQ(testing::RunProgram({VSIEVE_BINARY, "model-worker", "--fd-in", "77", "--fd-out", "77"}),
            2);
  // Started by this test, not by pid 1: it exits at once without reading.
  EXPECT_EQ(testing::RunProgram({VSIEVE_BINARY, "model-worker", "--fd-in", "0", "--fd-out", "1",
                                 "--parent-pid", "1"}),
            0);
  std::string help;
  testing::RunProgram({VSIEVE_BINARY, "--help"}, &help);
  EXPECT_EQ(help.find("model-worker"), std::string::npos) << "the worker is hidden from --help";
}

}  // namespace
}  // namespace vsieve::models
