#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "media/sampling_plan.h"
#include "media/video_decoder.h"
#include "tests/media/bad_input_corpus.h"
#include "tests/support/test_env.h"

namespace vsieve::media {
namespace {

using common::ErrorCode;
using common::ErrorCodeName;

// Opens and samples one file with the default plan; returns kOk only with at least one frame.
// Checks what every returned frame must satisfy on the way.
common::Status OpenAndSample(const std::string& path, const DecodeLimits& limits) {
  auto decoder = VideoDecoder::Open(path, limits);
  if (!decoder.ok()) return decoder.status();
  const SamplingPlan plan = BuildSamplingPlan((*decoder)->meta(), SamplingOptions{});
  auto frames = (*decoder)->Sample(plan);
  if (!frames.ok()) return frames.status();
  EXPECT_FALSE(frames->empty());
  if (frames->empty()) return common::Status(ErrorCode::kInternal, "OK with no frames");
  double last_time = -1e9;
  for (const Frame& frame : *frames) {
    EXPECT_EQ(frame.bgr.type(), CV_8UC3);
    EXPECT_LE(std::max(frame.bgr.cols, frame.bgr.rows), limits.analysis_max_side);
    EXPECT_GT(frame.time_s, last_time) << "frames out of order or duplicated";
    last_time = frame.time_s;
  }
  EXPECT_EQ((*decoder)->stats().frames_returned, static_cast<int>(frames->size()));
  return common::Status::Ok();
}

class BadInputTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!testing::HaveFfmpeg()) return;
    dir_ = std::make_unique<testing::TempDir>();
    cases_ = testing::WriteBadInputCorpus(dir_->path());
  }
  static void TearDownTestSuite() {
    cases_.clear();
    dir_.reset();
  }

  void SetUp() override {
    VSIEVE_REQUIRE_FFMPEG();
    if (cases_.empty()) GTEST_SKIP() << "could not generate the corpus (libx264 missing?)";
  }

  const testing::BadInputCase* Find(const std::string& name) const {
    for (const auto& c : cases_) {
      if (c.name == name) return &c;
    }
    return nullptr;
  }

  static DecodeLimits Limits() {
    DecodeLimits limits;
    limits.open_deadline_s = 10.0;
    limits.decode_deadline_s = 10.0;
    return limits;
  }

  static std::unique_ptr<testing::TempDir> dir_;
  static std::vector<testing::BadInputCase> cases_;
};

std::unique_ptr<testing::TempDir> BadInputTest::dir_;
std::vector<testing::BadInputCase> BadInputTest::cases_;

TEST_F(BadInputTest, CorpusHasEveryKind) { EXPECT_GE(cases_.size(), 40u); }

// Each input ends in success with frames or in one of its allowed codes, within a time bound.
TEST_F(BadInputTest, EveryInputEndsInAnAllowedOutcome) {
  const DecodeLimits limits = Limits();
  for (const auto& c : cases_) {
    SCOPED_TRACE(c.name);
    const auto start = std::chrono::steady_clock::now();
    const common::Status status = OpenAndSample(c.path, limits);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%-34s %-26s %.3f s\n", c.name.c_str(),
                std::string(ErrorCodeName(status.code())).c_str(), seconds);
    EXPECT_TRUE(c.Allows(status.code()))
        << c.name << " ended in " << status.ToString() << " (" << seconds << " s)";
    EXPECT_LT(seconds, 15.0) << c.name;
    if (!status.ok()) EXPECT_FALSE(status.message().empty()) << c.name;
  }
}

TEST_F(BadInputTest, JunkCarriesTheFirstLibavErrorLine) {
  const auto* c = Find("text.mp4");
  ASSERT_NE(c, nullptr);
  auto decoder = VideoDecoder::Open(c->path, Limits());
  ASSERT_FALSE(decoder.ok());
  EXPECT_EQ(decoder.status().code(), ErrorCode::kContainerUnrecognized);
  EXPECT_NE(decoder.status().message().find("Invalid data"), std::string::npos)
      << decoder.status().message();
}

TEST_F(BadInputTest, AbsurdDimensionsAreRefusedAtOpen) {
  const auto* c = Find("absurd_dimensions.mp4");
  ASSERT_NE(c, nullptr);
  auto decoder = VideoDecoder::Open(c->path, Limits());
  ASSERT_FALSE(decoder.ok());
  EXPECT_EQ(decoder.status().code(), ErrorCode::kDimensionsExceedLimit)
      << decoder.status().ToString();
}

TEST_F(BadInputTest, HugeFrameIsScaledToTheAnalysisSize) {
  const auto* c = Find("huge_8k.mp4");
  ASSERT_NE(c, nullptr);
  auto decoder = VideoDecoder::Open(c->path, Limits());
  ASSERT_TRUE(decoder.ok()) << decoder.status().ToString();
  EXPECT_EQ((*decoder)->meta().width, 7680);
  EXPECT_EQ((*decoder)->meta().height, 4320);
  auto frames = (*decoder)->Sample(BuildSamplingPlan((*decoder)->meta(), SamplingOptions{}));
  ASSERT_TRUE(frames.ok()) << frames.status().ToString();
  ASSERT_FALSE(frames->empty());
  EXPECT_EQ(frames->front().bgr.cols, 640);
  EXPECT_EQ(frames->front().bgr.rows, 360);
  EXPECT_NEAR(frames->front().analysis_scale, 640.0 / 7680.0, 1e-9);
}

TEST_F(BadInputTest, SmallerThanTheMinimumIsRefused) {
  const auto* c = Find("too_small_8x8.mp4");
  ASSERT_NE(c, nullptr);
  auto decoder = VideoDecoder::Open(c->path, Limits());
  ASSERT_FALSE(decoder.ok());
  EXPECT_EQ(decoder.status().code(), ErrorCode::kDimensionsExceedLimit);
}

TEST_F(BadInputTest, TightMaxPixelsRefusesAGoodFile) {
  const auto* c = Find("good.mp4");
  ASSERT_NE(c, nullptr);
  DecodeLimits limits = Limits();
  limits.max_pixels = 100 * 100;
  auto decoder = VideoDecoder::Open(c->path, limits);
  ASSERT_FALSE(decoder.ok());
  EXPECT_EQ(decoder.status().code(), ErrorCode::kDimensionsExceedLimit);
}

TEST_F(BadInputTest, MissingFileIsNotFound) {
  auto decoder = VideoDecoder::Open(dir_->File("no-such-file.mp4"), Limits());
  ASSERT_FALSE(decoder.ok());
  EXPECT_EQ(decoder.status().code(), ErrorCode::kObjectNotFound);
}

}  // namespace
}  // namespace vsieve::media
