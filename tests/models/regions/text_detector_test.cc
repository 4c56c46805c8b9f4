#include "models/regions/text_detector.h"

#include <gtest/gtest.h>

#include <memory>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/test_env.h"

namespace vsieve::models {
namespace {

using testing::SharedAssetsDir;

std::string ModelFile(const std::string& name) {
  return SharedAssetsDir() + "/models/paddleocr/" + name;
}

double IoU(const cv::Rect& a, const cv::Rect& b) {
  const double inter = (a & b).area();
  const double uni = a.area() + b.area() - inter;
  return uni > 0 ? inter / uni : 0.0;
}

// One line of black text on white, as a cut-out line would look.
cv::Mat TextLine(const std::string& text) {
  cv::Mat line(48, 320, CV_8UC3, cv::Scalar::all(255));
  cv::putText(line, text, cv::Point(8, 36), cv::FONT_HERSHEY_SIMPLEX, 1.1, cv::Scalar::all(0), 2,
              cv::LINE_AA);
  return line;
}

class TextDetectorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (SharedAssetsDir().empty()) return;
    auto det = TextDetector::Load(ModelFile("ch_PP-OCRv4_det_640x640_ocv46.onnx"), 640);
    if (det.ok()) detector_ = std::move(det).value().release();
    auto cls = TextAngleClassifier::Load(ModelFile("ch_ppocr_mobile_v2.0_cls_48x192_ocv46.onnx"));
    if (cls.ok()) classifier_ = std::move(cls).value().release();
  }
  static void TearDownTestSuite() {
    delete detector_;
    delete classifier_;
    detector_ = nullptr;
    classifier_ = nullptr;
  }
  void SetUp() override {
    VSIEVE_REQUIRE_ASSETS();
    ASSERT_NE(detector_, nullptr);
    ASSERT_NE(classifier_, nullptr);
  }

  static TextDetector* detector_;
  static TextAngleClassifier* classifier_;
};

TextDetector* TextDetectorTest::detector_ = nullptr;
TextAngleClassifier* TextDetectorTest::classifier_ = nullptr;

TEST_F(TextDetectorTest, FindsSceneText) {
  const cv::Mat image = cv::imread(SharedAssetsDir() + "/images/scenetext01.jpg");
  ASSERT_FALSE(image.empty());
  auto boxes = detector_->Detect(image);
  ASSERT_TRUE(boxes.ok()) << boxes.status().ToString();
  ASSERT_GE(boxes->size(), 3U);
  const cv::Rect bounds(cv::Point(0, 0), image.size());
  for (const TextBox& b : *boxes) {
    EXPECT_GE(b.score, 0.5F);
    EXPECT_EQ(b.box & bounds, b.box);
    EXPECT_FALSE(b.box.empty());
  }
}

TEST_F(TextDetectorTest, FindsDrawnLineWhereItWasDrawn) {
  cv::Mat image(360, 640, CV_8UC3, cv::Scalar(40, 90, 30));
  cv::putText(image, "BREAKING NEWS TONIGHT", cv::Point(120, 300), cv::FONT_HERSHEY_DUPLEX, 1.2,
              cv::Scalar::all(255), 2, cv::LINE_AA);
  auto boxes = detector_->Detect(image);
  ASSERT_TRUE(boxes.ok());
  ASSERT_FALSE(boxes->empty());
  cv::Rect all = (*boxes)[0].box;
  for (const TextBox& b : *boxes) all |= b.box;
  // The text spans about x = 120..530, y = 272..300.
  EXPECT_GE(IoU(all, cv::Rect(120, 272, 410, 30)), 0.5);
}

TEST_F(TextDetectorTest, HalfSizeDetectionMapsBoxesBack) {
  const cv::Mat image = cv::imread(SharedAssetsDir() + "/images/scenetext01.jpg");
  ASSERT_FALSE(image.empty());
  auto single = detector_->Detect(image);  // at the model's 640
  ASSERT_TRUE(single.ok());
  auto half = TextDetector::Load(ModelFile("ch_PP-OCRv4_det_640x640_ocv46.onnx"));  // 320
  ASSERT_TRUE(half.ok()) << half.status().ToString();
  cv::Mat blank(image.size(), CV_8UC3, cv::Scalar::all(128));
  cv::Mat flipped;
  cv::flip(image, flipped, 1);
  auto each = (*half)->DetectEach({blank, image, flipped});
  ASSERT_TRUE(each.ok()) << each.status().ToString();
  ASSERT_EQ(each->size(), 3U);
  EXPECT_TRUE((*each)[0].empty());
  // The same text found at half resolution lands on the same place in the image's pixels.
  ASSERT_FALSE((*each)[1].empty());
  int matched = 0;
  for (const TextBox& t : (*each)[1]) {
    for (const TextBox& s : *single) {
      if (IoU(t.box, s.box) >= 0.5) {
        ++matched;
        break;
      }
    }
  }
  EXPECT_GE(matched * 2, static_cast<int>((*each)[1].size()));
  // The mirrored image's boxes are mirrored.
  ASSERT_FALSE((*each)[2].empty());
  for (const TextBox& t : (*each)[2]) {
    EXPECT_GE(t.box.x + t.box.width, image.cols / 3);
  }
}

TEST_F(TextDetectorTest, EachImageGetsItsOwnBoxes) {
  const cv::Mat image = cv::imread(SharedAssetsDir() + "/images/scenetext01.jpg");
  ASSERT_FALSE(image.empty());
  auto each = detector_->DetectEach(std::vector<cv::Mat>(5, image));
  ASSERT_TRUE(each.ok());
  ASSERT_EQ(each->size(), 5U);
  // An image's boxes do not depend on the images beside it in the call.
  const cv::Mat blank(image.size(), CV_8UC3, cv::Scalar::all(128));
  auto after_blank = detector_->DetectEach({blank, image});
  ASSERT_TRUE(after_blank.ok());
  ASSERT_EQ(after_blank->size(), 2U);
  for (const auto& boxes : {(*each)[4], (*after_blank)[1]}) {
    ASSERT_EQ(boxes.size(), (*each)[0].size());
    for (size_t i = 0; i < boxes.size(); ++i) EXPECT_EQ(boxes[i].box, (*each)[0][i].box);
  }
  EXPECT_FALSE(detector_->DetectEach({image, cv::Mat()}).ok());
}

// Wide frames share a pass two at a time (stacked; portrait ones side by side), each drawn with
// its long side over 85 % of the pass; 4:3 frames keep a pass each.
TEST(TextDetectorCells, WideFramesPairUpAndSquarerOnesDoNot) {
  constexpr int kSide = 320;
  const cv::Rect pass(0, 0, kSide, kSide);
  for (const cv::Size size : {cv::Size(640, 360), cv::Size(1920, 1080), cv::Size(360, 640)}) {
    const auto cells = TextDetector::PairCells(size, kSide);
    ASSERT_EQ(cells.size(), 2U) << size;
    for (const auto& cell : cells) {
      EXPECT_EQ(cell.rect & pass, cell.rect);
      EXPECT_GE(std::max(cell.rect.width, cell.rect.height), 0.85 * kSide);
      EXPECT_NEAR(cell.rect.width, size.width * cell.scale, 1.0);
      EXPECT_NEAR(cell.rect.height, size.height * cell.scale, 1.0);
    }
    // Apart by the gap, along the short side.
    const bool landscape = size.width > size.height;
    const int gap =
        landscape ? cells[1].rect.y - cells[0].rect.br().y : cells[1].rect.x - cells[0].rect.br().x;
    EXPECT_GE(gap, TextDetector::kPairGap) << size;
  }
  EXPECT_TRUE(TextDetector::PairCells(cv::Size(640, 480), kSide).empty());
  EXPECT_TRUE(TextDetector::PairCells(cv::Size(480, 480), kSide).empty());
  const auto single = TextDetector::SingleCell(cv::Size(640, 480), kSide);
  EXPECT_EQ(single.rect, cv::Rect(0, 0, 320, 240));
}

TEST_F(TextDetectorTest, PairedFramesEachFindTheirOwnText) {
  auto half = TextDetector::Load(ModelFile("ch_PP-OCRv4_det_640x640_ocv46.onnx"));  // 320
  ASSERT_TRUE(half.ok()) << half.status().ToString();
  // Text at the bottom of the first frame, at the top of the second: stacked in one pass, they
  // lie next to each other, and neither may take the other's text.
  cv::Mat bottom(360, 640, CV_8UC3, cv::Scalar(40, 90, 30));
  cv::putText(bottom, "BREAKING NEWS TONIGHT", cv::Point(120, 340), cv::FONT_HERSHEY_DUPLEX, 1.2,
              cv::Scalar::all(255), 2, cv::LINE_AA);
  cv::Mat top(360, 640, CV_8UC3, cv::Scalar(90, 40, 30));
  cv::putText(top, "WEATHER AT NOON", cv::Point(160, 40), cv::FONT_HERSHEY_DUPLEX, 1.2,
              cv::Scalar::all(255), 2, cv::LINE_AA);
  const int64_t before = (*half)->passes();
  auto each = (*half)->DetectEach({bottom, top});
  ASSERT_TRUE(each.ok()) << each.status().ToString();
  EXPECT_EQ((*half)->passes() - before, 1);
  ASSERT_EQ(each->size(), 2U);
  ASSERT_FALSE((*each)[0].empty());
  ASSERT_FALSE((*each)[1].empty());
  cv::Rect found_bottom = (*each)[0][0].box;
  for (const TextBox& b : (*each)[0]) found_bottom |= b.box;
  cv::Rect found_top = (*each)[1][0].box;
  for (const TextBox& b : (*each)[1]) found_top |= b.box;
  EXPECT_GE(IoU(found_bottom, cv::Rect(120, 312, 410, 30)), 0.5) << found_bottom;
  EXPECT_GE(IoU(found_top, cv::Rect(160, 12, 330, 30)), 0.5) << found_top;
  // The same frames alone find the same text.
  auto alone = (*half)->Detect(bottom);
  ASSERT_TRUE(alone.ok());
  ASSERT_FALSE(alone->empty());
  cv::Rect alone_bottom = alone->front().box;
  for (const TextBox& b : *alone) alone_bottom |= b.box;
  EXPECT_GE(IoU(alone_bottom, found_bottom), 0.8);
}

TEST_F(TextDetectorTest, RejectsBadInput) {
  EXPECT_FALSE(detector_->Detect(cv::Mat()).ok());
  EXPECT_FALSE(detector_->Detect(cv::Mat(10, 10, CV_8UC1)).ok());
  auto odd_side = TextDetector::Load(ModelFile("ch_PP-OCRv4_det_640x640_ocv46.onnx"), 100);
  ASSERT_FALSE(odd_side.ok());
  EXPECT_EQ(odd_side.status().code(), common::ErrorCode::kInvalidArgument);
  EXPECT_FALSE(classifier_->UpsideDownProbability(cv::Mat()).ok());
}

TEST_F(TextDetectorTest, AngleClassifierTellsUpsideDown) {
  const cv::Mat line = TextLine("Hello world 2024");
  auto upright = classifier_->UpsideDownProbability(line);
  ASSERT_TRUE(upright.ok()) << upright.status().ToString();
  cv::Mat turned;
  cv::rotate(line, turned, cv::ROTATE_180);
  auto upside_down = classifier_->UpsideDownProbability(turned);
  ASSERT_TRUE(upside_down.ok());
  EXPECT_LT(*upright, 0.5F);
  EXPECT_GT(*upside_down, 0.5F);
}

// Several workers share a net (LoadShared): concurrent calls are serialized and each gets the
// answer it would get alone.
TEST_F(TextDetectorTest, SharedNetServesConcurrentCallersAlike) {
  const std::string path = ModelFile("ch_PP-OCRv4_det_640x640_ocv46.onnx");
  std::vector<std::shared_ptr<TextDetector>> nets;
  for (int i = 0; i <= TextDetector::SharedNetCount(); ++i) {
    auto net = TextDetector::LoadShared(path);
    ASSERT_TRUE(net.ok()) << net.status().ToString();
    nets.push_back(std::move(net).value());
  }
  // Handed out in turn: the first net comes round again after SharedNetCount() others.
  EXPECT_EQ(nets.front(), nets.back());
  EXPECT_EQ(std::set<TextDetector*>({nets[0].get(), nets[nets.size() - 2].get()}).size(),
            std::min<size_t>(2, static_cast<size_t>(TextDetector::SharedNetCount())));

  cv::Mat image(360, 640, CV_8UC3, cv::Scalar(40, 90, 30));
  cv::putText(image, "SHARED NET", cv::Point(150, 300), cv::FONT_HERSHEY_DUPLEX, 1.4,
              cv::Scalar::all(255), 2, cv::LINE_AA);
  const std::vector<cv::Mat> images = {image, image, image};
  auto alone = nets.front()->DetectEach(images);
  ASSERT_TRUE(alone.ok()) << alone.status().ToString();
  ASSERT_FALSE(alone->front().empty());
  std::vector<std::vector<std::vector<TextBox>>> answers(4);
  std::vector<std::thread> callers;
  for (size_t t = 0; t < answers.size(); ++t) {
    callers.emplace_back([&, t] {
      auto found = nets.front()->DetectEach(images);
      if (found.ok()) answers[t] = std::move(found).value();
    });
  }
  for (auto& caller : callers) caller.join();
  EXPECT_FALSE(nets.front()->Busy());
  for (const auto& answer : answers) {
    ASSERT_EQ(answer.size(), alone->size());
    for (size_t k = 0; k < answer.size(); ++k) {
      ASSERT_EQ(answer[k].size(), (*alone)[k].size());
      for (size_t b = 0; b < answer[k].size(); ++b) EXPECT_EQ(answer[k][b].box, (*alone)[k][b].box);
    }
  }
}

TEST(TextDetectorLoadTest, MissingModelIsModelFailed) {
  auto det = TextDetector::Load("no/such/model.onnx");
  ASSERT_FALSE(det.ok());
  EXPECT_EQ(det.status().code(), common::ErrorCode::kModelFailed);
  auto shared = TextDetector::LoadShared("no/such/model.onnx");
  ASSERT_FALSE(shared.ok());
  EXPECT_EQ(shared.status().code(), common::ErrorCode::kModelFailed);
  auto cls = TextAngleClassifier::Load("no/such/model.onnx");
  ASSERT_FALSE(cls.ok());
  EXPECT_EQ(cls.status().code(), common::ErrorCode::kModelFailed);
}

}  // namespace
}  // namespace vsieve::models
