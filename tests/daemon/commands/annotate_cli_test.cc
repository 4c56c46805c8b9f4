// End-to-end tests of `vsieve annotate`: the real binary with the constant YOLOv5-layout graph
// of tests/models/make_test_heads.py, whose boxes are known, so that the drawn pixels can be
// checked; and the split across two weighted devices against one device doing it all.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>
#include <string>
#include <vector>

#include "daemon/commands/annotate_command.h"
#include "media/video_decoder.h"
#include "models/regions/yolo_detector.h"
#include "tests/daemon/json_lines.h"
#include "tests/models/test_models.h"
#include "tests/support/test_env.h"

namespace vsieve::daemon {
namespace {

std::vector<cv::Mat> AllFrames(const std::string& path) {
  std::vector<cv::Mat> frames;
  cv::VideoCapture capture(path, cv::CAP_FFMPEG);
  cv::Mat frame;
  while (capture.read(frame)) frames.push_back(frame.clone());
  return frames;
}

// True when some pixel within 2 of `at` is close to `colour` (BGR).
bool ColourNear(const cv::Mat& bgr, cv::Point at, const cv::Scalar& colour) {
  for (int dy = -2; dy <= 2; ++dy) {
    for (int dx = -2; dx <= 2; ++dx) {
      const cv::Point p(at.x + dx, at.y + dy);
      if (p.x < 0 || p.y < 0 || p.x >= bgr.cols || p.y >= bgr.rows) continue;
      const cv::Vec3b v = bgr.at<cv::Vec3b>(p);
      if (std::abs(v[0] - colour[0]) <= 40 && std::abs(v[1] - colour[1]) <= 40 &&
          std::abs(v[2] - colour[2]) <= 40) {
        return true;
      }
    }
  }
  return false;
}

class AnnotateCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VSIEVE_REQUIRE_FFMPEG();
    VSIEVE_MAKE_TEST_MODELS(dir_.path());
    ASSERT_TRUE(testing::WriteFile(dir_.File("classes.txt"), "brand_mark\ncaption_strip\n"));
    // 6 s at 25 fps, a keyframe every 25 frames exactly, with a tone.
    clip_ = dir_.File("clip.mp4");
    ASSERT_TRUE(testing::Ffmpeg({"-f",           "lavfi",
                                 "-i",           "testsrc2=size=320x240:rate=25:duration=6",
                                 "-f",           "lavfi",
                                 "-i",           "sine=frequency=440:duration=6",
                                 "-c:v",         "libx264",
                                 "-preset",      "veryfast",
                                 "-x264-params", "keyint=25:min-keyint=25:scenecut=0",
                                 "-pix_fmt",     "yuv420p",
                                 "-c:a",         "aac",
                                 "-shortest",    clip_}));
  }

  models::DetectorConfig Detector() const {
    models::DetectorConfig config;
    config.name = "const";
    config.kind = models::YoloKind::kYolov5;
    config.model = dir_.File("yolov5_const.onnx");
    config.classes = dir_.File("classes.txt");
    config.kinds["brand_mark"] = models::ClassMapping{models::RegionKind::kWatermark, true};
    return config;
  }

  // The constant detector as config: "brand_mark" is a watermark, "caption_strip" an object.
  // Without `windows`, no window labels (they would cover the top left of these small frames).
  std::string Config(const std::string& devices, const std::string& weights = "",
                     bool detector = true, bool windows = false) {
    std::string text = "[devices]\nlist = " + devices + "\n";
    if (!weights.empty()) text += "weights = " + weights + "\n";
    text += "[filter]\nrotate_vertical = false\nlow_quality = false\ntext_regions = false\n";
    text += std::string("windows = ") + (windows ? "true" : "false") + "\n";
    if (detector) {
      text += "[[detectors]]\nname = \"const\"\nkind = \"yolov5\"\n";
      text += "model = \"" + dir_.File("yolov5_const.onnx") + "\"\n";
      text += "classes = \"" + dir_.File("classes.txt") + "\"\n";
      text += "frames = 2\n[detectors.kinds]\nbrand_mark = { kind = \"watermark\" }\n";
    }
    const std::string path = dir_.File("annotate" + std::to_string(configs_++) + ".toml");
    EXPECT_TRUE(testing::WriteFile(path, text));
    return path;
  }

  int Annotate(const std::vector<std::string>& args, std::string* out, std::string* err) {
    std::vector<std::string> argv = {VSIEVE_BINARY, "annotate"};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunCommand(argv, out, err);
  }

  testing::TempDir dir_;
  std::string clip_;
  int configs_ = 0;
};

TEST_F(AnnotateCliTest, EveryFrameIsWrittenWithTheDetectorsBoxesWhereTheDetectorSaid) {
  const std::string output = dir_.File("annotated.mp4");
  std::string out;
  std::string err;
  ASSERT_EQ(
      Annotate({clip_, "-o", output, "--config", Config("[\"cpu:0\"]"), "--crf", "0"}, &out, &err),
      0)
      << err;
  const auto lines = ParseLines(out);
  ASSERT_EQ(lines.size(), 1U) << out;
  const auto& summary = lines[0];
  EXPECT_EQ(summary["frames"], 150) << summary.dump(2);
  ASSERT_EQ(summary["segments"].size(), 1U);
  EXPECT_EQ(summary["segments"][0]["detected_frames"], 150);

  // Same frame count and duration as the input, audio kept.
  auto in_meta = media::VideoDecoder::Open(clip_, media::DecodeLimits{});
  auto out_meta = media::VideoDecoder::Open(output, media::DecodeLimits{});
  ASSERT_TRUE(in_meta.ok() && out_meta.ok());
  EXPECT_EQ((*out_meta)->meta().frame_count, (*in_meta)->meta().frame_count);
  EXPECT_NEAR((*out_meta)->meta().duration_s, (*in_meta)->meta().duration_s, 1.0 / 25);
  EXPECT_TRUE((*out_meta)->meta().has_audio);
  const std::vector<cv::Mat> frames = AllFrames(output);
  ASSERT_EQ(frames.size(), 150U);

  // Where the detector puts its boxes on a frame of this size.
  auto detector = models::YoloDetector::Load(Detector(), models::Device{});
  ASSERT_TRUE(detector.ok()) << detector.status().ToString();
  auto found = (*detector)->Detect(AllFrames(clip_)[0]);
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->size(), 2U);
  for (const models::Detection& d : *found) {
    const cv::Rect box(d.box);
    const cv::Scalar colour = KindColour(d.label == "brand_mark" ? models::RegionKind::kWatermark
                                                                 : models::RegionKind::kObject);
    for (size_t i : {size_t{0}, size_t{37}, size_t{149}}) {
      // The middle of the left and right edges (the caption sits above the top one).
      EXPECT_TRUE(ColourNear(frames[i], cv::Point(box.x, box.y + box.height / 2), colour))
          << d.label << " left edge, frame " << i;
      EXPECT_TRUE(
          ColourNear(frames[i], cv::Point(box.x + box.width, box.y + box.height / 2), colour))
          << d.label << " right edge, frame " << i;
    }
  }
  // Inside the object box, away from its edges, the picture is the source's (nothing drawn).
  const cv::Rect object(found->front().label == "caption_strip" ? found->front().box
                                                                : found->back().box);
  const cv::Rect inner(object.x + 8, object.y + 8, object.width - 16, object.height - 16);
  ASSERT_GT(inner.area(), 0);
  const cv::Mat source = AllFrames(clip_)[10];
  EXPECT_LT(cv::norm(frames[10](inner), source(inner), cv::NORM_L1) / inner.area(), 12.0);
}

TEST_F(AnnotateCliTest, TwoToOneSplitCutsAtAKeyframeAndEqualsOneDevice) {
  const std::string one = dir_.File("one.mp4");
  const std::string two = dir_.File("two.mp4");
  std::string out;
  std::string err;
  ASSERT_EQ(Annotate({clip_, "-o", one, "--config", Config("[\"cpu:0\"]", "", true, true), "--crf",
                      "0", "--every", "3"},
                     &out, &err),
            0)
      << err;
  ASSERT_EQ(Annotate({clip_, "-o", two, "--config",
                      Config("[\"cpu:0\", \"cpu:1\"]", "[2, 1]", true, true), "--crf", "0",
                      "--every", "3"},
                     &out, &err),
            0)
      << err;
  const auto summary = ParseLines(out).back();  // RunCommand appends: the second run's
  const auto& segments = summary["segments"];
  ASSERT_EQ(segments.size(), 2U) << summary.dump(2);
  EXPECT_EQ(segments[0]["device"], "cpu:0");
  EXPECT_EQ(segments[1]["device"], "cpu:1");
  // The cut: a keyframe (every 1 s here) within one GOP of the 2:1 point (4 s of 6).
  const double cut = segments[1]["start_s"].get<double>();
  EXPECT_NEAR(cut, std::round(cut), 1e-6);
  EXPECT_LE(std::abs(cut - 4.0), 1.0);
  EXPECT_EQ(segments[0]["frames"].get<int>() + segments[1]["frames"].get<int>(), 150);

  const std::vector<cv::Mat> a = AllFrames(one);
  const std::vector<cv::Mat> b = AllFrames(two);
  ASSERT_EQ(a.size(), 150U);
  ASSERT_EQ(b.size(), a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(cv::norm(a[i], b[i], cv::NORM_INF), 0.0) << "frame " << i << " differs";
  }
  auto meta = media::VideoDecoder::Open(two, media::DecodeLimits{});
  ASSERT_TRUE(meta.ok());
  EXPECT_TRUE((*meta)->meta().has_audio);
  // No part is left beside the output.
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    EXPECT_EQ(entry.path().filename().string().find(".parts-"), std::string::npos) << entry.path();
  }
}

TEST_F(AnnotateCliTest, AFailedSegmentFailsTheCommandAndLeavesNothing) {
  // A stream whose picture shrinks after 3 s: the segment holding the smaller frames fails.
  const std::string a = dir_.File("a.ts");
  const std::string b = dir_.File("b.ts");
  ASSERT_TRUE(testing::Ffmpeg({"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=3",
                               "-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p", a}));
  ASSERT_TRUE(testing::Ffmpeg({"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=3",
                               "-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p", b}));
  const std::string joined = dir_.File("joined.ts");
  ASSERT_TRUE(testing::Ffmpeg({"-i", "concat:" + a + "|" + b, "-c", "copy", joined}));
  const std::string output = dir_.File("failed.mp4");
  std::string out;
  std::string err;
  EXPECT_EQ(Annotate({joined, "-o", output, "--config",
                      Config("[\"cpu:0\", \"cpu:1\"]", "[1, 1]", /*detector=*/false)},
                     &out, &err),
            1)
      << out;
  EXPECT_NE(err.find("segment 1"), std::string::npos) << err;
  EXPECT_NE(err.find("nothing was written"), std::string::npos) << err;
  EXPECT_FALSE(std::filesystem::exists(output));
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    EXPECT_EQ(entry.path().filename().string().find(".parts-"), std::string::npos) << entry.path();
  }
}

TEST_F(AnnotateCliTest, SetupErrorsAreClear) {
  std::string out;
  std::string err;
  // Neither an input nor --images.
  EXPECT_NE(Annotate({"-o", dir_.File("x.mp4")}, &out, &err), 0);
  EXPECT_NE(err.find("--images"), std::string::npos) << err;
  // A device this build cannot use.
  EXPECT_EQ(Annotate({clip_, "-o", dir_.File("x.mp4"), "--config",
                      Config("[\"cpu:0\", \"cuda:0\"]", "", false)},
                     &out, &err),
            2);
  EXPECT_NE(err.find("cuda"), std::string::npos) << err;
  // The output's folder does not exist.
  EXPECT_EQ(Annotate({clip_, "-o", dir_.File("no/such/x.mp4")}, &out, &err), 2);
  EXPECT_NE(err.find("does not exist"), std::string::npos) << err;
  // An unreadable video.
  const std::string junk = dir_.File("junk.mp4");
  ASSERT_TRUE(testing::WriteFile(junk, std::string(4096, 'x')));
  EXPECT_EQ(Annotate({junk, "-o", dir_.File("x.mp4")}, &out, &err), 1);
  EXPECT_FALSE(std::filesystem::exists(dir_.File("x.mp4")));
  // --images without detectors.
  std::filesystem::create_directories(dir_.File("imgs"));
  EXPECT_EQ(Annotate({"--images", dir_.File("imgs"), "-o", dir_.File("o"), "--config",
                      Config("[\"cpu:0\"]", "", false)},
                     &out, &err),
            2);
  EXPECT_NE(err.find("[[detectors]]"), std::string::npos) << err;
  // --images writing over its own folder.
  EXPECT_EQ(Annotate({"--images", dir_.File("imgs"), "-o", dir_.File("imgs"), "--config",
                      Config("[\"cpu:0\"]")},
                     &out, &err),
            2);
  EXPECT_NE(err.find("overwritten"), std::string::npos) << err;
  // A detector whose model file is gone.
  const std::string config = Config("[\"cpu:0\"]");
  std::string text = testing::ReadFile(config);
  text.replace(text.find("yolov5_const.onnx"), 17, "gone.onnx");
  ASSERT_TRUE(testing::WriteFile(config, text));
  EXPECT_EQ(Annotate({clip_, "-o", dir_.File("x.mp4"), "--config", config}, &out, &err), 2);
  EXPECT_NE(err.find("gone.onnx"), std::string::npos) << err;
  EXPECT_FALSE(std::filesystem::exists(dir_.File("x.mp4")));
}

TEST_F(AnnotateCliTest, ImagesAreAnnotatedWithADetectionsFile) {
  const std::string in = dir_.File("images");
  std::filesystem::create_directories(in);
  const std::vector<cv::Mat> frames = AllFrames(clip_);
  ASSERT_TRUE(cv::imwrite(in + "/a.png", frames[0]));
  ASSERT_TRUE(cv::imwrite(in + "/b.jpg", frames[50]));
  ASSERT_TRUE(testing::WriteFile(in + "/broken.png", "not a png"));
  ASSERT_TRUE(testing::WriteFile(in + "/notes.txt", "ignored"));
  const std::string out_dir = dir_.File("annotated");
  std::string out;
  std::string err;
  EXPECT_EQ(
      Annotate({"--images", in, "-o", out_dir, "--config", Config("[\"cpu:0\"]")}, &out, &err), 1);
  EXPECT_NE(err.find("broken.png"), std::string::npos) << err;
  const auto manifest = nlohmann::json::parse(testing::ReadFile(out_dir + "/detections.json"));
  const auto& images = manifest["images"];
  ASSERT_EQ(images.size(), 3U) << manifest.dump(2);
  EXPECT_EQ(images[0]["file"], "a.png");
  EXPECT_EQ(images[1]["file"], "b.jpg");
  EXPECT_EQ(images[2]["file"], "broken.png");
  EXPECT_TRUE(images[2].contains("error"));
  ASSERT_EQ(images[0]["detections"].size(), 2U);

  auto detector = models::YoloDetector::Load(Detector(), models::Device{});
  ASSERT_TRUE(detector.ok());
  auto found = (*detector)->Detect(frames[0]);
  ASSERT_TRUE(found.ok());
  const cv::Mat drawn = cv::imread(out_dir + "/a.png");
  ASSERT_FALSE(drawn.empty());
  for (const models::Detection& d : *found) {
    const cv::Rect box(d.box);
    EXPECT_TRUE(ColourNear(drawn, cv::Point(box.x, box.y + box.height / 2),
                           KindColour(d.label == "brand_mark" ? models::RegionKind::kWatermark
                                                              : models::RegionKind::kObject)))
        << d.label;
  }
  EXPECT_FALSE(std::filesystem::exists(out_dir + "/notes.txt"));
}

TEST(AnnotateOverlayTest, OverlayReadsTheRowsRegionsCropAndLabels) {
  const nlohmann::json info = nlohmann::json::parse(R"({
    "video_meta": {"width": 320, "height": 240},
    "abnormal_region_info": {"regions": [
      {"kind": "black_border", "box": [0, 0, 320, 30], "score": 1.0, "label": "letterbox"},
      {"kind": "bogus", "box": [0, 0, 1, 1]},
      {"kind": "text", "box": [10, 200, 100, 20], "score": 0.8, "label": "subtitle"}]},
    "abnormal_region_crop": {"box": [0, 30, 320, 180], "cropped": true},
    "vfx_filter": {"result": {"VFX_video": 0.1, "normal_video": 0.9}, "label": "normal_video",
                   "prob": 0.9},
    "seg_simcam_filter": {"0": {"duration": [0, 4], "simcam_filter": {"label": "static_video",
                                                                       "prob": 0.7}},
                          "1": {"duration": [3, 7], "simcam_filter": {"label": "normal_video",
                                                                       "prob": 0.6}}}})");
  const Overlay overlay = OverlayFromInfo(info);
  ASSERT_EQ(overlay.regions.size(), 2U);
  EXPECT_EQ(overlay.regions[0].kind, models::RegionKind::kBlackBorder);
  EXPECT_EQ(overlay.regions[1].box, cv::Rect(10, 200, 100, 20));
  EXPECT_EQ(overlay.crop, cv::Rect(0, 30, 320, 180));
  ASSERT_EQ(overlay.clip_labels.size(), 1U);
  EXPECT_EQ(overlay.clip_labels[0], "vfx_filter: normal_video 0.90");
  ASSERT_EQ(overlay.windows.size(), 2U);
  EXPECT_EQ(overlay.windows[1].text, "seg_simcam_filter 3-7s: normal_video 0.60");
  EXPECT_TRUE(OverlayFromInfo(nlohmann::json::array()).regions.empty());

  // Drawn: the crop outline in white, the black border's box in magenta.
  cv::Mat frame(240, 320, CV_8UC3, cv::Scalar(60, 60, 60));
  DrawAnnotations(&frame, overlay, 5.0, {});
  EXPECT_TRUE(ColourNear(frame, cv::Point(0, 120), kCropColour));
  EXPECT_TRUE(ColourNear(frame, cv::Point(319, 15), KindColour(models::RegionKind::kBlackBorder)));
}

}  // namespace
}  // namespace vsieve::daemon
