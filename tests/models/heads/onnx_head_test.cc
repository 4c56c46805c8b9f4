#include "models/heads/onnx_head.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "models/filter/video_filter.h"
#include "models/runtime/dnn_model.h"
#include "tests/models/test_models.h"
#include "tests/support/test_env.h"

namespace vsieve::models {
namespace {

using common::ErrorCode;

// The graphs' input: T = 4 frames of 6 x 10 (height x width; not square, so a swapped size is
// caught). See tests/models/make_test_heads.py for what each graph computes.
constexpr int kFrames = 4;
constexpr int kHeight = 6;
constexpr int kWidth = 10;

// Frame i is one flat BGR colour; every channel differs between frames and between channels,
// so a wrong frame, order or channel gives a different number. Flat frames stay exact through
// resizing, so the expected values below are exact.
cv::Scalar Colour(int i) { return {5.0 + 10 * i, 100.0 + 3 * i, 20.0 + 25 * i}; }

std::vector<cv::Mat> Frames(int count) {
  std::vector<cv::Mat> frames;
  for (int i = 0; i < count; ++i) frames.emplace_back(48, 64, CV_8UC3, Colour(i));
  return frames;
}

HeadInput Input(const std::vector<cv::Mat>& frames) {
  HeadInput input;
  input.frames = frames;
  for (size_t i = 0; i < frames.size(); ++i) input.times_s.push_back(0.5 * i);
  return input;
}

class OnnxHeadTest : public testing::TestModelsSuite {
 protected:
  static std::string Model(const std::string& name) { return dir_->File(name + ".onnx"); }

  // A head over `model` with distinctive normalisation and no activation, so the result is the
  // graph's raw output.
  static OnnxHeadConfig Config(const std::string& model, HeadLayout layout = HeadLayout::kNcthw) {
    OnnxHeadConfig config;
    config.name = "test_head";
    config.model = Model(model);
    config.layout = layout;
    config.frames = kFrames;
    config.height = kHeight;
    config.width = kWidth;
    config.mean = {0.5, 0.4, 0.3};
    config.std = {0.25, 0.2, 0.1};
    config.labels = {"c0_first", "c0_last", "c1_first", "c2_first"};
    config.activation = HeadActivation::kNone;
    return config;
  }

  static std::unique_ptr<OnnxHead> LoadOk(const OnnxHeadConfig& config) {
    auto head = OnnxHead::Load(config, Device{});
    EXPECT_TRUE(head.ok()) << head.status().ToString();
    return head.ok() ? std::move(head).value() : nullptr;
  }

  // The normalised value of channel `c` (in the model's colour order) of frame `i`.
  static double Value(const OnnxHeadConfig& config, int i, int c) {
    const cv::Scalar bgr = Colour(i);
    const double pixel = config.rgb ? bgr[2 - c] : bgr[c];
    return (pixel / 255.0 - config.mean[c]) / config.std[c];
  }

  static void ExpectResult(const HeadOutput& out, const std::vector<double>& expected) {
    ASSERT_EQ(out.result.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      EXPECT_NEAR(out.result[i].second, expected[i], 1e-4) << out.result[i].first;
    }
  }
};

TEST_F(OnnxHeadTest, NcthwPicksFramesEvenlyInOrderWithMeanStdAndRgb) {
  const OnnxHeadConfig config = Config("head_ncthw");
  auto head = LoadOk(config);
  ASSERT_NE(head, nullptr);
  EXPECT_EQ(head->name(), "test_head");
  EXPECT_EQ(head->labels(), config.labels);
  // 8 frames, T = 4: the centres of four equal bins are frames 1, 3, 5 and 7.
  auto out = head->Run(Input(Frames(8)));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ExpectResult(
      *out, {Value(config, 1, 0), Value(config, 7, 0), Value(config, 1, 1), Value(config, 1, 2)});
  // Labels keep their configured order; the winner is the largest.
  EXPECT_EQ(out->result[0].first, "c0_first");
  EXPECT_EQ(out->label, "c0_last");  // the reddest frame, normalised, is the largest
}

TEST_F(OnnxHeadTest, NtchwGivesTheSameFunction) {
  const OnnxHeadConfig config = Config("head_ntchw", HeadLayout::kNtchw);
  auto head = LoadOk(config);
  ASSERT_NE(head, nullptr);
  auto out = head->Run(Input(Frames(8)));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ExpectResult(
      *out, {Value(config, 1, 0), Value(config, 7, 0), Value(config, 1, 1), Value(config, 1, 2)});
}

TEST_F(OnnxHeadTest, BgrOrderPutsBlueFirst) {
  OnnxHeadConfig config = Config("head_ncthw");
  config.rgb = false;
  auto head = LoadOk(config);
  ASSERT_NE(head, nullptr);
  auto out = head->Run(Input(Frames(8)));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ExpectResult(*out, {(Colour(1)[0] / 255.0 - 0.5) / 0.25, (Colour(7)[0] / 255.0 - 0.5) / 0.25,
                      (Colour(1)[1] / 255.0 - 0.4) / 0.2, (Colour(1)[2] / 255.0 - 0.3) / 0.1});
}

TEST_F(OnnxHeadTest, ReversedFramesAreReadLastToFirst) {
  const OnnxHeadConfig config = Config("head_ncthw");
  auto head = LoadOk(config);
  ASSERT_NE(head, nullptr);
  std::vector<cv::Mat> frames = Frames(8);
  std::reverse(frames.begin(), frames.end());  // as the filter passes a reversed window
  auto out = head->Run(Input(frames));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  // Positions 1, 3, 5, 7 of the reversed list are frames 6, 4, 2, 0.
  ExpectResult(
      *out, {Value(config, 6, 0), Value(config, 0, 0), Value(config, 6, 1), Value(config, 6, 2)});
}

TEST_F(OnnxHeadTest, FewerFramesThanTAreRepeated) {
  const OnnxHeadConfig config = Config("head_ncthw");
  auto head = LoadOk(config);
  ASSERT_NE(head, nullptr);
  auto out = head->Run(Input(Frames(2)));  // bins pick frames 0, 0, 1, 1
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ExpectResult(
      *out, {Value(config, 0, 0), Value(config, 1, 0), Value(config, 0, 1), Value(config, 0, 2)});
}

TEST_F(OnnxHeadTest, SoftmaxAndSigmoid) {
  OnnxHeadConfig config = Config("head_ncthw");
  const std::vector<double> logits = {Value(config, 1, 0), Value(config, 7, 0), Value(config, 1, 1),
                                      Value(config, 1, 2)};
  config.activation = HeadActivation::kSoftmax;
  auto softmax = LoadOk(config);
  ASSERT_NE(softmax, nullptr);
  auto out = softmax->Run(Input(Frames(8)));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  double sum = 0;
  for (double v : logits) sum += std::exp(v);
  std::vector<double> expected;
  for (double v : logits) expected.push_back(std::exp(v) / sum);
  ExpectResult(*out, expected);
  EXPECT_EQ(out->label, "c0_last");
  EXPECT_NEAR(out->prob, expected[1], 1e-4);

  config.activation = HeadActivation::kSigmoid;
  auto sigmoid = LoadOk(config);
  ASSERT_NE(sigmoid, nullptr);
  out = sigmoid->Run(Input(Frames(8)));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  expected.clear();
  for (double v : logits) expected.push_back(1.0 / (1.0 + std::exp(-v)));
  ExpectResult(*out, expected);
}

TEST_F(OnnxHeadTest, NchwAveragesPerFrameOutputs) {
  OnnxHeadConfig config = Config("head_nchw", HeadLayout::kNchw);
  config.labels = {"c0", "c2"};
  auto head = LoadOk(config);
  ASSERT_NE(head, nullptr);
  EXPECT_GT(head->batch_capacity(), 1) << "the per-frame graph's batch dimension is open";
  auto out = head->Run(Input(Frames(8)));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  double c0 = 0;
  double c2 = 0;
  for (int i : {1, 3, 5, 7}) {
    c0 += Value(config, i, 0) / 4;
    c2 += Value(config, i, 2) / 4;
  }
  ExpectResult(*out, {c0, c2});
}

TEST_F(OnnxHeadTest, BatchesGiveTheSameAnswersAsSingleRuns) {
  for (const char* model : {"head_ncthw", "head_ncthw_b1", "head_ncthw_b2"}) {
    SCOPED_TRACE(model);
    const OnnxHeadConfig config = Config(model);
    auto head = LoadOk(config);
    ASSERT_NE(head, nullptr);
    if (std::string(model) == "head_ncthw") EXPECT_EQ(head->batch_capacity(), config.batch);
    if (std::string(model) == "head_ncthw_b2") EXPECT_EQ(head->batch_capacity(), 2);
    std::vector<std::vector<cv::Mat>> clips = {Frames(8), Frames(3), Frames(5)};
    std::reverse(clips[2].begin(), clips[2].end());
    std::vector<HeadInput> inputs;
    for (const auto& clip : clips) inputs.push_back(Input(clip));
    auto batch = head->RunBatch(inputs);  // three clips: a padded pass for the fixed batch of 2
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    ASSERT_EQ(batch->size(), 3U);
    for (size_t i = 0; i < inputs.size(); ++i) {
      auto alone = head->Run(inputs[i]);
      ASSERT_TRUE(alone.ok()) << alone.status().ToString();
      std::vector<double> expected;
      for (const auto& [label, value] : alone->result) expected.push_back(value);
      ExpectResult((*batch)[i], expected);
    }
  }
}

TEST_F(OnnxHeadTest, WrongShapeIsALoadErrorNamingTheFileAndTheExpectedShape) {
  OnnxHeadConfig config = Config("head_ncthw");
  config.frames = 8;
  auto head = OnnxHead::Load(config, Device{});
  ASSERT_FALSE(head.ok());
  EXPECT_EQ(head.status().code(), ErrorCode::kModelFailed);
  EXPECT_NE(head.status().message().find(config.model), std::string::npos)
      << head.status().message();
  EXPECT_NE(head.status().message().find("declares input [N,3,4,6,10]"), std::string::npos)
      << head.status().message();
  EXPECT_NE(head.status().message().find("expected [N,3,8,6,10]"), std::string::npos)
      << head.status().message();

  config = Config("head_ncthw");
  std::swap(config.height, config.width);  // size given as [width, height] by mistake
  head = OnnxHead::Load(config, Device{});
  ASSERT_FALSE(head.ok());
  EXPECT_NE(head.status().message().find("expected [N,3,4,10,6]"), std::string::npos)
      << head.status().message();

  config = Config("head_ncthw", HeadLayout::kNtchw);  // the wrong layout
  head = OnnxHead::Load(config, Device{});
  ASSERT_FALSE(head.ok());
  EXPECT_NE(head.status().message().find("expected [N,4,3,6,10]"), std::string::npos)
      << head.status().message();

  config = Config("head_nchw", HeadLayout::kNcthw);  // a per-frame model configured as a clip
  head = OnnxHead::Load(config, Device{});
  ASSERT_FALSE(head.ok());
  EXPECT_NE(head.status().message().find("declares input [N,3,6,10]"), std::string::npos)
      << head.status().message();
}

TEST_F(OnnxHeadTest, LabelCountOtherThanTheOutputsIsALoadError) {
  OnnxHeadConfig config = Config("head_ncthw");
  config.labels = {"a", "b", "c"};
  auto head = OnnxHead::Load(config, Device{});
  ASSERT_FALSE(head.ok());
  EXPECT_EQ(head.status().code(), ErrorCode::kModelFailed);
  EXPECT_NE(head.status().message().find(config.model), std::string::npos);
  EXPECT_NE(head.status().message().find("gives 4 values per clip; expected [N,3]"),
            std::string::npos)
      << head.status().message();
}

TEST_F(OnnxHeadTest, MissingOrUnreadableModelIsALoadErrorNamingTheFile) {
  OnnxHeadConfig config = Config("head_ncthw");
  config.model = dir_->File("no_such_head.onnx");
  auto head = OnnxHead::Load(config, Device{});
  ASSERT_FALSE(head.ok());
  EXPECT_EQ(head.status().code(), ErrorCode::kModelFailed);
  EXPECT_NE(head.status().message().find(config.model + "' is missing or unreadable"),
            std::string::npos)
      << head.status().message();
  EXPECT_NE(head.status().message().find("expects input [N,3,4,6,10]"), std::string::npos)
      << head.status().message();

  config.model = dir_->File("garbage.onnx");
  ASSERT_TRUE(testing::WriteFile(config.model, "this is not protobuf \xff\xff\xff"));
  head = OnnxHead::Load(config, Device{});
  ASSERT_FALSE(head.ok());
  EXPECT_NE(head.status().message().find(config.model + "' is not an ONNX model"),
            std::string::npos)
      << head.status().message();

  config.model = dir_->path();  // a folder
  head = OnnxHead::Load(config, Device{});
  ASSERT_FALSE(head.ok());
  EXPECT_NE(head.status().message().find(dir_->path()), std::string::npos)
      << head.status().message();
}

TEST_F(OnnxHeadTest, InputWithoutFramesIsAnError) {
  auto head = LoadOk(Config("head_ncthw"));
  ASSERT_NE(head, nullptr);
  auto out = head->Run(HeadInput{});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), ErrorCode::kInvalidArgument);
}

TEST_F(OnnxHeadTest, ReadsDeclaredInputsFromTheGraph) {
  auto inputs = ReadOnnxInputs(Model("head_ncthw_b2"));
  ASSERT_TRUE(inputs.ok()) << inputs.status().ToString();
  ASSERT_EQ(inputs->size(), 1U);
  EXPECT_EQ((*inputs)[0].name, "clip");
  EXPECT_EQ(DimsText((*inputs)[0].dims), "[2,3,4,6,10]");
  inputs = ReadOnnxInputs(Model("head_nchw"));
  ASSERT_TRUE(inputs.ok());
  EXPECT_EQ(DimsText((*inputs)[0].dims), "[N,3,6,10]");  // dim_param "N" is open
}

TEST(DnnTargetTest, CpuIsOpenCvOnCpuAndOtherDevicesAreClearErrors) {
  auto cpu = DnnTargetFor(Device{});
  ASSERT_TRUE(cpu.ok());
  EXPECT_EQ(cpu->backend, cv::dnn::DNN_BACKEND_OPENCV);
  EXPECT_EQ(cpu->target, cv::dnn::DNN_TARGET_CPU);
  Device npu;
  npu.kind = Device::Kind::kNpu;
  npu.name = "npu:0";
  EXPECT_EQ(DnnTargetFor(npu).status().code(), ErrorCode::kInvalidArgument);
  Device cuda;
  cuda.kind = Device::Kind::kCuda;
  cuda.index = 64;  // no machine has 65 CUDA devices
  cuda.name = "cuda:64";
  auto status = DnnTargetFor(cuda).status();
  EXPECT_EQ(status.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(status.message().find("cuda:64"), std::string::npos) << status.message();
}

// The filter runs a configured head on the clip, on every window, and on every window read
// backwards, and writes them under the configured name in the built-in heads' JSON shapes.
TEST_F(OnnxHeadTest, FilterWritesClipWindowsAndReversedWindowsUnderTheConfiguredName) {
  FilterOptions options;
  options.text_regions = options.vfx = options.simcam = options.rotate_vertical = false;
  options.low_quality = options.windows = false;
  options.sampling.clip_frames = 8;
  for (HeadMode mode : {HeadMode::kClip, HeadMode::kWindows, HeadMode::kReversedWindows}) {
    OnnxHeadConfig config = Config("head_ncthw");
    config.name = std::string("onnx_") + std::string(HeadModeName(mode));
    config.mode = mode;
    options.heads.push_back(config);
  }
  auto filter = VideoFilter::Create(options);
  ASSERT_TRUE(filter.ok()) << filter.status().ToString();

  SampledVideo video;
  video.meta.width = 64;
  video.meta.height = 48;
  video.meta.duration_s = 8;
  for (int i = 0; i < 8; ++i) {
    media::Frame frame;
    frame.index = i;
    frame.time_s = i;
    frame.bgr = cv::Mat(48, 64, CV_8UC3, Colour(i));
    video.frames.push_back(frame);
  }
  video.windows = {{0, 4}, {3, 7}, {6, 10}};
  FilterReport report = (*filter)->Analyze(std::move(video));
  ASSERT_TRUE(report.status.ok()) << report.status.ToString();
  const nlohmann::json& info = report.info;
  const OnnxHeadConfig config = Config("head_ncthw");

  const nlohmann::json& clip = info.at("onnx_clip");
  EXPECT_EQ(clip.at("result").size(), 4U);
  EXPECT_NEAR(clip.at("result").at("c0_first").get<double>(), Value(config, 1, 0), 1e-4);
  EXPECT_NEAR(clip.at("result").at("c0_last").get<double>(), Value(config, 7, 0), 1e-4);
  EXPECT_EQ(clip.at("label"), "c0_last");
  EXPECT_TRUE(clip.contains("prob"));

  // Windows [0,4) [3,7) [6,10) hold frames 0-3, 3-6 and 6-7; T = 4 picks every frame of a
  // 4-frame window, and 6, 6, 7, 7 of the last.
  const int first[] = {0, 3, 6};
  const int last[] = {3, 6, 7};
  const nlohmann::json& forward = info.at("onnx_windows");
  const nlohmann::json& backward = info.at("onnx_reversed_windows");
  ASSERT_EQ(forward.size(), 3U) << forward.dump();
  ASSERT_EQ(backward.size(), 3U);
  for (int w = 0; w < 3; ++w) {
    const std::string key = std::to_string(w);
    EXPECT_EQ(forward.at(key).at("duration"), backward.at(key).at("duration"));
    const nlohmann::json& ahead = forward.at(key).at("onnx_windows").at("result");
    const nlohmann::json& back = backward.at(key).at("onnx_reversed_windows").at("result");
    EXPECT_NEAR(ahead.at("c0_first").get<double>(), Value(config, first[w], 0), 1e-4) << key;
    EXPECT_NEAR(ahead.at("c0_last").get<double>(), Value(config, last[w], 0), 1e-4) << key;
    EXPECT_NEAR(back.at("c0_first").get<double>(), Value(config, last[w], 0), 1e-4) << key;
    EXPECT_NEAR(back.at("c0_last").get<double>(), Value(config, first[w], 0), 1e-4) << key;
  }
  EXPECT_EQ(forward.at("1").at("duration"), nlohmann::json({3.0, 7.0}));
}

}  // namespace
}  // namespace vsieve::models
