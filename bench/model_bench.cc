// Frames per second of the shared real models through the model runtime
// (models/runtime/dnn_model.h, models/regions/yolo_detector.h): YOLOX-nano, FastestDet,
// Yolo-Fastest-1.1 and the DB text detector.
//
//   build/release/bench/model_bench --benchmark_min_time=2
//
// Each benchmark is one model at one batch size (frames per forward pass) with 1 or 2
// instances: 2 instances are 2 threads each running its own net with one OpenCV thread, as
// the daemon runs two workers on two cores; 1 instance is one net with OpenCV's default
// threads. "fps" is frames per second over all instances together, each instance timing its
// own loop; "fps_per_instance" is the mean per instance. The YOLO figures include
// letterboxing, blob packing and decoding with NMS on real 640x480 frames of vtest.avi; the
// DB figure is the 640x640 forward pass alone (its pre/post-processing is TextDetector's).
// Batch sizes a model cannot take (its graph fixes batch 1) are skipped with a message.
#include <benchmark/benchmark.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <opencv2/core/utility.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <string>
#include <vector>

#include "models/regions/yolo_detector.h"
#include "models/runtime/dnn_model.h"
#include "tests/models/real_detectors.h"

namespace vsieve::models {
namespace {

std::string Assets() { return std::string(VSIEVE_SOURCE_DIR) + "/../shared/assets"; }

// 8 frames of vtest.avi (people, cars) at the analysis size.
const std::vector<cv::Mat>& Frames() {
  static const std::vector<cv::Mat> frames = [] {
    std::vector<cv::Mat> out;
    cv::VideoCapture capture(Assets() + "/videos/natural/vtest.avi");
    cv::Mat frame;
    for (int i = 0; i < 800 && out.size() < 8; ++i) {
      if (!capture.read(frame)) break;
      if (i % 100 != 0) continue;
      cv::Mat analysis;
      cv::resize(frame, analysis, cv::Size(640, 480), 0, 0, cv::INTER_AREA);
      out.push_back(analysis);
    }
    return out;
  }();
  return frames;
}

DetectorConfig Yolo(const std::string& which, int batch) {
  DetectorConfig config = testing::RealDetectorConfig(Assets() + "/models/", which);
  config.batch = batch;
  return config;
}

// Serialises each benchmark thread's set-up (thread count, model load and warm-up passes):
// cv::setNumThreads() must not run while another thread is inside a forward pass, and the
// threads of one benchmark start their set-up at the same time.
std::mutex& SetupMutex() {
  static std::mutex mutex;
  return mutex;
}

void SetThreads(const benchmark::State& state) {
  // One instance uses OpenCV's threads (the machine's cores); two instances one each.
  cv::setNumThreads(state.threads() == 1 ? -1 : 1);
}

// Frames per second over all instances. Each thread (instance) measures its own wall time over
// its loop; its rate is summed over the threads (Google Benchmark sums counters across threads),
// so "fps" is the total and "fps_per_instance" each instance's share.
class FpsMeter {
 public:
  FpsMeter() : start_(std::chrono::steady_clock::now()) {}
  void Report(benchmark::State& state, int64_t frames) const {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double rate = seconds > 0 ? static_cast<double>(frames) / seconds : 0.0;
    state.counters["fps"] = benchmark::Counter(rate);
    state.counters["fps_per_instance"] = benchmark::Counter(rate, benchmark::Counter::kAvgThreads);
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

void BM_Yolo(benchmark::State& state, const std::string& which) {
  const int batch = static_cast<int>(state.range(0));
  if (!std::filesystem::exists(Assets())) return state.SkipWithError("../shared/assets absent");
  std::unique_lock setup(SetupMutex());
  SetThreads(state);
  auto detector = YoloDetector::Load(Yolo(which, batch), Device{});
  setup.unlock();
  if (!detector.ok()) return state.SkipWithError(detector.status().ToString().c_str());
  if (batch > 1 && (*detector)->batch_capacity() < batch) {
    return state.SkipWithError("the graph takes one frame per pass");
  }
  const std::vector<cv::Mat>& all = Frames();
  std::vector<cv::Mat> images(all.begin(), all.begin() + batch);
  int64_t frames = 0;
  const FpsMeter meter;
  for (auto _ : state) {
    auto found = (*detector)->RunBatch(images);
    if (!found.ok()) return state.SkipWithError(found.status().ToString().c_str());
    benchmark::DoNotOptimize(found->data());
    frames += batch;
  }
  meter.Report(state, frames);
}

void BM_DbText(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  if (!std::filesystem::exists(Assets())) return state.SkipWithError("../shared/assets absent");
  std::unique_lock setup(SetupMutex());
  SetThreads(state);
  auto model = DnnModel::Load(Assets() + "/models/paddleocr/ch_PP-OCRv4_det_640x640_ocv46.onnx", "",
                              Device{});
  if (!model.ok()) return state.SkipWithError(model.status().ToString().c_str());
  if (auto status = (*model)->PrepareBatching({3, 640, 640}, batch); !status.ok()) {
    return state.SkipWithError(status.ToString().c_str());
  }
  setup.unlock();
  if (batch > 1 && (*model)->batch_capacity() < batch) {
    return state.SkipWithError("the graph takes one frame per pass");
  }
  std::vector<cv::Mat> items;
  const int shape[] = {3, 640, 640};
  for (int i = 0; i < batch; ++i) {
    cv::Mat item(3, shape, CV_32F);
    cv::Mat frame;
    cv::resize(Frames()[static_cast<size_t>(i)], frame, cv::Size(640, 640));
    frame.convertTo(frame, CV_32FC3, 1.0 / 255.0);
    std::vector<cv::Mat> planes;
    cv::split(frame, planes);
    for (int c = 0; c < 3; ++c) {
      planes[static_cast<size_t>(c)].copyTo(
          cv::Mat(640, 640, CV_32F, item.ptr<float>() + static_cast<size_t>(c) * 640 * 640));
    }
    items.push_back(item);
  }
  int64_t frames = 0;
  const FpsMeter meter;
  for (auto _ : state) {
    auto out = (*model)->RunItems(items);
    if (!out.ok()) return state.SkipWithError(out.status().ToString().c_str());
    benchmark::DoNotOptimize(out->data());
    frames += batch;
  }
  meter.Report(state, frames);
}

void Batches(benchmark::internal::Benchmark* b) {
  b->Arg(1)->Arg(2)->Arg(4)->Arg(8)->Threads(1)->Threads(2)->UseRealTime()->Unit(
      benchmark::kMillisecond);
}

BENCHMARK_CAPTURE(BM_Yolo, yolox_nano, std::string("yolox-nano"))->Apply(Batches);
BENCHMARK_CAPTURE(BM_Yolo, fastestdet, std::string("fastestdet"))->Apply(Batches);
BENCHMARK_CAPTURE(BM_Yolo, yolo_fastest_1_1, std::string("yolo-fastest-1.1"))->Apply(Batches);
BENCHMARK(BM_DbText)->Arg(1)->Arg(2)->Arg(4)->Threads(1)->Threads(2)->UseRealTime()->Unit(
    benchmark::kMillisecond);

}  // namespace
}  // namespace vsieve::models

BENCHMARK_MAIN();
