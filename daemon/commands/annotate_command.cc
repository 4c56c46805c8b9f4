#include "daemon/commands/annotate_command.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <opencv2/core/utility.hpp>
#include <opencv2/imgproc.hpp>
#include <ostream>
#include <thread>

#include "common/stopwatch.h"
#include "daemon/commands/progress_meter.h"
#include "daemon/pipeline/reader_factory.h"
#include "media/crop_writer.h"
#include "media/image_file.h"
#include "media/video_decoder.h"
#include "media/video_segments.h"
#include "models/filter/video_filter.h"
#include "models/regions/yolo_detector.h"

namespace vsieve::daemon {
namespace {

using common::ErrorCode;
using common::Status;
using common::StatusOr;
namespace fs = std::filesystem;

// The configured detectors loaded on one device, used by one thread at a time.
struct DeviceDetectors {
  std::string device;
  std::vector<std::unique_ptr<models::YoloDetector>> detectors;
};

StatusOr<DeviceDetectors> LoadDetectors(const std::vector<models::DetectorConfig>& configs,
                                        const std::string& device_name) {
  DeviceDetectors set;
  set.device = device_name;
  VSIEVE_ASSIGN_OR_RETURN(models::Device device, models::ParseDevice(device_name));
  for (size_t i = 0; i < configs.size(); ++i) {
    auto loaded = models::YoloDetector::Load(configs[i], device);
    if (!loaded.ok()) {
      return loaded.status().WithContext("detectors[" + std::to_string(i) + "] (" +
                                         configs[i].name + ") on " + device_name);
    }
    set.detectors.push_back(std::move(loaded).value());
  }
  return set;
}

// One detection as a region to draw: its class mapped to a kind as the filter maps it.
models::Region ToRegion(const models::DetectorConfig& config, const models::Detection& d) {
  models::Region region;
  region.box = cv::Rect(d.box);
  region.score = d.score;
  region.label = d.label;
  region.avoid = false;
  if (auto it = config.kinds.find(d.label); it != config.kinds.end()) {
    region.kind = it->second.kind;
    region.avoid = it->second.avoid;
  } else if (auto def = config.kinds.find("default"); def != config.kinds.end()) {
    region.kind = def->second.kind;
    region.avoid = def->second.avoid;
  }
  return region;
}

// Runs every detector of `set` on `bgr`; the kept classes as regions.
StatusOr<std::vector<models::Region>> Detect(DeviceDetectors* set, const cv::Mat& bgr) {
  std::vector<models::Region> regions;
  for (auto& detector : set->detectors) {
    const models::DetectorConfig& config = detector->config();
    auto found = detector->Detect(bgr);
    if (!found.ok()) {
      return found.status().WithContext("detector " + config.name + " on " + set->device);
    }
    for (const models::Detection& d : *found) {
      if (!config.class_filter.empty() &&
          std::find(config.class_filter.begin(), config.class_filter.end(), d.label) ==
              config.class_filter.end()) {
        continue;
      }
      regions.push_back(ToRegion(config, d));
    }
  }
  return regions;
}

nlohmann::json RegionsJson(const std::vector<models::Region>& regions) {
  nlohmann::json list = nlohmann::json::array();
  for (const models::Region& r : regions) {
    list.push_back({{"kind", std::string(models::RegionKindName(r.kind))},
                    {"label", r.label},
                    {"score", std::round(r.score * 1000) / 1000},
                    {"box", {r.box.x, r.box.y, r.box.width, r.box.height}}});
  }
  return list;
}

std::string Score(double score) {
  char text[16];
  std::snprintf(text, sizeof text, "%.2f", score);
  return text;
}

std::string Seconds(double s) {
  char text[16];
  std::snprintf(text, sizeof text, "%g", std::round(s * 100) / 100);
  return text;
}

// "label 0.90" of a head's result object, or "" when it has none.
std::string HeadLabel(const nlohmann::json& result) {
  if (!result.is_object() || !result.contains("label") || !result["label"].is_string()) return "";
  std::string text = result["label"].get<std::string>();
  if (result.contains("prob") && result["prob"].is_number()) {
    text += " " + Score(result["prob"].get<double>());
  }
  return text;
}

// Draws `text` lines from the top left, white on a dark band.
void DrawLines(cv::Mat* bgr, const std::vector<std::string>& lines) {
  const double scale = std::max(0.35, bgr->rows / 720.0 * 0.6);
  const int thickness = std::max(1, static_cast<int>(std::lround(scale * 1.5)));
  int y = 4;
  for (const std::string& line : lines) {
    int baseline = 0;
    const cv::Size size =
        cv::getTextSize(line, cv::FONT_HERSHEY_SIMPLEX, scale, thickness, &baseline);
    const cv::Rect band(2, y, size.width + 6, size.height + baseline + 6);
    cv::rectangle(*bgr, band & cv::Rect(0, 0, bgr->cols, bgr->rows), cv::Scalar(32, 32, 32),
                  cv::FILLED);
    cv::putText(*bgr, line, cv::Point(5, y + 3 + size.height), cv::FONT_HERSHEY_SIMPLEX, scale,
                cv::Scalar(255, 255, 255), thickness, cv::LINE_AA);
    y += band.height + 2;
    if (y >= bgr->rows) break;
  }
}

// Outlines `box` with its caption above it (inside it when there is no room above).
void DrawBox(cv::Mat* bgr, const cv::Rect& box, const cv::Scalar& colour,
             const std::string& caption, int thickness) {
  cv::rectangle(*bgr, box, colour, thickness);
  if (caption.empty()) return;
  const double scale = std::max(0.3, bgr->rows / 720.0 * 0.5);
  int baseline = 0;
  const cv::Size size = cv::getTextSize(caption, cv::FONT_HERSHEY_SIMPLEX, scale, 1, &baseline);
  const int height = size.height + baseline + 2;
  const int top = box.y - thickness - height >= 0 ? box.y - thickness - height : box.y + thickness;
  const int left = std::max(0, box.x);
  const cv::Rect band(left, top, size.width + 4, height);
  cv::rectangle(*bgr, band & cv::Rect(0, 0, bgr->cols, bgr->rows), colour, cv::FILLED);
  cv::putText(*bgr, caption, cv::Point(left + 2, top + size.height + 1), cv::FONT_HERSHEY_SIMPLEX,
              scale, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
}

std::string Caption(const models::Region& r) {
  std::string text(models::RegionKindName(r.kind));
  if (!r.label.empty() && r.label != text) text += " " + r.label;
  if (r.score > 0) text += " " + Score(r.score);
  return text;
}

bool IsImage(const fs::path& path) { return media::ImageFormatOf(path.string()).ok(); }

int Fail(const std::string& message, int code) {
  std::cerr << "vsieve annotate: " << message << "\n";
  return code;
}

// `--images`: the detectors over a folder of images.
int AnnotateImages(const AnnotateOptions& options, const FilterConfig& config, std::ostream& out) {
  if (config.options.detectors.empty()) {
    return Fail("--images needs at least one [[detectors]] entry in the config", 2);
  }
  std::error_code ec;
  if (!fs::is_directory(options.images_dir, ec)) {
    return Fail("--images " + options.images_dir + " is not a folder", 2);
  }
  const fs::path out_dir(options.output);
  fs::create_directories(out_dir, ec);
  if (!fs::is_directory(out_dir, ec)) {
    return Fail("cannot create the output folder " + options.output, 2);
  }
  if (fs::equivalent(out_dir, options.images_dir, ec)) {
    return Fail("the output folder is the input folder: the images would be overwritten", 2);
  }
  std::vector<fs::path> images;
  for (const auto& entry : fs::directory_iterator(options.images_dir, ec)) {
    if (entry.is_regular_file() && IsImage(entry.path())) images.push_back(entry.path());
  }
  std::sort(images.begin(), images.end());
  auto detectors = LoadDetectors(config.options.detectors, config.devices.list.front());
  if (!detectors.ok()) return Fail("cannot load models: " + detectors.status().ToString(), 2);

  nlohmann::json list = nlohmann::json::array();
  int failed = 0;
  ProgressMeter progress("annotate", static_cast<int64_t>(images.size()));
  for (size_t i = 0; i < images.size(); ++i) {
    const fs::path& path = images[i];
    nlohmann::json entry = {{"file", path.filename().string()}};
    auto read = media::ReadImage(path.string());
    cv::Mat bgr;
    if (read.ok()) bgr = std::move(read).value();
    if (bgr.empty()) {
      entry["error"] = "cannot read the image: " + read.status().message();
      std::cerr << "vsieve annotate: cannot read " << path.string() << ": "
                << read.status().message() << "\n";
      ++failed;
    } else {
      auto found = Detect(&*detectors, bgr);
      if (!found.ok()) {
        entry["error"] = found.status().ToString();
        std::cerr << "vsieve annotate: " << path.string() << ": " << found.status().ToString()
                  << "\n";
        ++failed;
      } else {
        entry["width"] = bgr.cols;
        entry["height"] = bgr.rows;
        entry["detections"] = RegionsJson(*found);
        DrawAnnotations(&bgr, Overlay{}, 0, *found);
        const fs::path target = out_dir / path.filename();
        auto target_format = media::ImageFormatOf(target.string());
        const common::Status written = target_format.ok()
                                           ? media::WriteImage(target.string(), bgr, *target_format)
                                           : target_format.status();
        if (!written.ok()) {
          entry["error"] = written.message();
          std::cerr << "vsieve annotate: " << written.message() << "\n";
          ++failed;
        }
      }
    }
    list.push_back(std::move(entry));
    progress.Update(static_cast<int64_t>(i + 1));
  }
  progress.Finish();
  nlohmann::json names = nlohmann::json::array();
  for (const auto& d : config.options.detectors) names.push_back(d.name);
  const nlohmann::json manifest = {
      {"device", detectors->device}, {"detectors", names}, {"images", list}};
  const fs::path manifest_path = out_dir / "detections.json";
  {
    std::ofstream file(manifest_path, std::ios::binary | std::ios::trunc);
    file << manifest.dump(2) << "\n";
    file.close();
    if (!file) return Fail("cannot write " + manifest_path.string(), 2);
  }
  const nlohmann::json summary = {{"images", images.size()},
                                  {"failed", failed},
                                  {"output", out_dir.string()},
                                  {"detections", manifest_path.string()}};
  out << (options.pretty ? summary.dump(2) : summary.dump()) << "\n";
  return failed > 0 ? 1 : 0;
}

// One segment of the video and the device it runs on.
struct SegmentJob {
  media::Segment segment;
  std::string device;
  double weight = 1;
  std::string part_path;
  DeviceDetectors detectors;
  Status status;
  media::CropWriteResult result;
  double seconds = 0;
  int64_t detected_frames = 0;
};

}  // namespace

cv::Scalar KindColour(models::RegionKind kind) {
  switch (kind) {
    case models::RegionKind::kBlackBorder:
      return cv::Scalar(255, 0, 255);
    case models::RegionKind::kBlurFill:
      return cv::Scalar(255, 255, 0);
    case models::RegionKind::kText:
      return cv::Scalar(0, 255, 255);
    case models::RegionKind::kWatermark:
      return cv::Scalar(0, 165, 255);
    case models::RegionKind::kObject:
      break;
  }
  return cv::Scalar(0, 255, 0);
}

int BoxThickness(cv::Size frame) {
  return std::max(3, static_cast<int>(std::lround(std::min(frame.width, frame.height) / 160.0)));
}

Overlay OverlayFromInfo(const nlohmann::json& info) {
  Overlay overlay;
  if (!info.is_object()) return overlay;
  const auto box_of = [](const nlohmann::json& box) {
    if (!box.is_array() || box.size() != 4) return cv::Rect();
    for (const auto& v : box) {
      if (!v.is_number()) return cv::Rect();
    }
    return cv::Rect(box[0].get<int>(), box[1].get<int>(), box[2].get<int>(), box[3].get<int>());
  };
  if (auto regions = info.find("abnormal_region_info");
      regions != info.end() && regions->is_object() && regions->contains("regions") &&
      (*regions)["regions"].is_array()) {
    for (const auto& r : (*regions)["regions"]) {
      models::Region region;
      if (!r.is_object() || !r.contains("kind") || !r["kind"].is_string() ||
          !models::ParseRegionKind(r["kind"].get<std::string>(), &region.kind)) {
        continue;
      }
      region.box = box_of(r.value("box", nlohmann::json()));
      if (region.box.area() <= 0) continue;
      if (r.contains("score") && r["score"].is_number()) region.score = r["score"].get<float>();
      if (r.contains("label") && r["label"].is_string())
        region.label = r["label"].get<std::string>();
      overlay.regions.push_back(region);
    }
  }
  if (auto crop = info.find("abnormal_region_crop"); crop != info.end() && crop->is_object()) {
    overlay.crop = box_of(crop->value("box", nlohmann::json()));
  }
  for (const auto& [name, value] : info.items()) {
    if (!value.is_object()) continue;
    if (const std::string label = HeadLabel(value); !label.empty()) {
      overlay.clip_labels.push_back(name + ": " + label);
      continue;
    }
    // Sliding windows: {"0": {"duration": [0, 4], "<head>": {"label": ...}}, ...}.
    for (const auto& [key, window] : value.items()) {
      if (!window.is_object() || !window.contains("duration")) continue;
      const auto& duration = window["duration"];
      if (!duration.is_array() || duration.size() != 2 || !duration[0].is_number() ||
          !duration[1].is_number()) {
        continue;
      }
      for (const auto& [head, result] : window.items()) {
        const std::string label = HeadLabel(result);
        if (label.empty()) continue;
        Overlay::WindowLabel w;
        w.start_s = duration[0].get<double>();
        w.end_s = duration[1].get<double>();
        w.text = name + " " + Seconds(w.start_s) + "-" + Seconds(w.end_s) + "s: " + label;
        overlay.windows.push_back(std::move(w));
      }
    }
  }
  return overlay;
}

void DrawAnnotations(cv::Mat* bgr, const Overlay& overlay, double time_s,
                     const std::vector<models::Region>& detections) {
  const int thickness = BoxThickness(bgr->size());
  const cv::Rect frame(0, 0, bgr->cols, bgr->rows);
  if (overlay.crop.area() > 0 && (overlay.crop & frame) != frame) {  // a crop that cuts something
    DrawBox(bgr, overlay.crop & frame, kCropColour, "crop", thickness);
  }
  for (const models::Region& r : overlay.regions) {
    DrawBox(bgr, r.box & frame, KindColour(r.kind), Caption(r), thickness);
  }
  for (const models::Region& r : detections) {
    const cv::Rect box = r.box & frame;
    if (box.area() > 0) DrawBox(bgr, box, KindColour(r.kind), Caption(r), thickness);
  }
  std::vector<std::string> lines = overlay.clip_labels;
  for (const auto& w : overlay.windows) {
    if (time_s >= w.start_s && time_s < w.end_s) lines.push_back(w.text);
  }
  if (!lines.empty()) DrawLines(bgr, lines);
}

int RunAnnotate(const AnnotateOptions& options, const FilterConfig& config, std::ostream& out) {
  if (!options.images_dir.empty()) return AnnotateImages(options, config, out);
  if (options.every < 1) return Fail("--every must be at least 1", 2);
  const fs::path output = fs::absolute(options.output);
  std::error_code ec;
  if (!fs::is_directory(output.parent_path(), ec)) {
    return Fail("the output's folder " + output.parent_path().string() + " does not exist", 2);
  }
  const std::vector<std::string>& devices = config.devices.list;
  if (devices.empty()) return Fail("[devices] list is empty", 2);
  for (const std::string& device : devices) {
    if (auto parsed = models::ParseDevice(device); !parsed.ok()) {
      return Fail(parsed.status().message(), 2);
    }
  }

  // The input as a local file.
  auto reader = MakeReader(config);
  if (!reader.ok()) return Fail("cannot set up the fetch tiers: " + reader.status().ToString(), 2);
  const auto ref = ProbeInputRef(options.input, HasTiers(config));
  if (!ref.ok()) return Fail(ref.status().message(), 1);
  auto fetched = (*reader)->Fetch(*ref);
  if (!fetched.ok()) return Fail(options.input + ": " + fetched.status().ToString(), 1);
  const std::string local = fetched->local_path;
  auto decoder = media::VideoDecoder::Open(local, config.options.limits);
  if (!decoder.ok()) return Fail(options.input + ": " + decoder.status().ToString(), 1);
  const media::VideoMeta meta = (*decoder)->meta();
  decoder->reset();

  // The filter's row: regions, crop, head labels.
  common::Stopwatch filter_watch;
  auto filter = models::VideoFilter::Create(config.options);
  if (!filter.ok()) return Fail("cannot load models: " + filter.status().ToString(), 2);
  for (const auto& warning : (*filter)->warnings()) spdlog::warn("{}", warning);
  models::FilterReport report = (*filter)->Analyze(models::SampleVideo(local, config.options));
  if (!report.status.ok()) {
    return Fail(options.input + ": the filter failed: " + report.status.ToString(), 1);
  }
  filter->reset();
  const double filter_seconds = filter_watch.ElapsedSeconds();
  const Overlay overlay = OverlayFromInfo(report.info);

  // The segments, one per device (fewer when the video has too few keyframes).
  std::vector<double> weights = config.devices.weights;
  if (weights.size() != devices.size()) weights.assign(devices.size(), 1.0);
  std::vector<media::Segment> segments;
  if (devices.size() == 1) {
    media::Segment whole;
    whole.from_pts = std::numeric_limits<int64_t>::min();
    whole.to_pts = std::numeric_limits<int64_t>::max();
    whole.frames = static_cast<size_t>(std::max<int64_t>(0, meta.frame_count));
    whole.end_s = meta.duration_s;
    segments.push_back(whole);
  } else {
    auto index = media::ScanKeyframes(local);
    if (!index.ok()) return Fail(options.input + ": " + index.status().ToString(), 1);
    segments = media::SplitAtKeyframes(*index, weights);
  }

  std::vector<SegmentJob> jobs(segments.size());
  const fs::path parts_dir =
      output.parent_path() / (output.filename().string() + ".parts-" + std::to_string(::getpid()));
  for (size_t i = 0; i < segments.size(); ++i) {
    SegmentJob& job = jobs[i];
    job.segment = segments[i];
    job.device = devices[segments[i].part];
    job.weight = weights[segments[i].part];
    job.part_path = (parts_dir / ("part-" + std::to_string(i) + ".mp4")).string();
    auto loaded = LoadDetectors(config.options.detectors, job.device);
    if (!loaded.ok()) return Fail("cannot load models: " + loaded.status().ToString(), 2);
    job.detectors = std::move(loaded).value();
  }
  fs::create_directories(parts_dir, ec);
  if (ec) return Fail("cannot create " + parts_dir.string() + ": " + ec.message(), 2);
  struct RemoveParts {
    fs::path dir;
    ~RemoveParts() {
      std::error_code ignored;
      fs::remove_all(dir, ignored);
    }
  } remove_parts{parts_dir};

  // With a segment per core already, OpenCV's own worker threads only add contention (as in
  // `vsieve probe` with a job per core).
  if (jobs.size() >= std::max(1U, std::thread::hardware_concurrency())) cv::setNumThreads(1);

  std::atomic<int64_t> frames_done{0};
  std::atomic<bool> cancel{false};
  std::atomic<size_t> finished{0};
  const int every = options.every;
  common::Stopwatch watch;
  std::vector<std::thread> threads;
  for (SegmentJob& job : jobs) {
    threads.emplace_back([&, job_ptr = &job] {
      SegmentJob& j = *job_ptr;
      common::Stopwatch segment_watch;
      media::CropWriteOptions write;
      write.codec = config.output.codec;
      write.crf = options.crf >= 0 ? options.crf : config.output.crf;
      write.preset = config.output.preset;
      write.threads = config.output.threads;
      write.deadline_s = 3.0e7;  // long videos on slow devices: no deadline of its own
      write.cancel = &cancel;
      write.from_pts = j.segment.from_pts;
      write.to_pts = j.segment.to_pts;
      write.copy_audio = false;  // the join copies the audio once, from the input
      write.frames_done = &frames_done;
      int64_t since_keyframe = 0;
      std::vector<models::Region> detections;
      write.draw = [&](cv::Mat* bgr, const media::FrameStamp& stamp) -> Status {
        if (stamp.keyframe) since_keyframe = 0;
        if (since_keyframe++ % every == 0 && !j.detectors.detectors.empty()) {
          VSIEVE_ASSIGN_OR_RETURN(detections, Detect(&j.detectors, *bgr));
          ++j.detected_frames;
        }
        DrawAnnotations(bgr, overlay, stamp.time_s, detections);
        return Status::Ok();
      };
      auto written = media::WriteCroppedVideo(local, cv::Rect(0, 0, meta.width, meta.height),
                                              j.part_path, write);
      j.seconds = segment_watch.ElapsedSeconds();
      if (written.ok()) {
        j.result = *written;
      } else {
        j.status = written.status();
        cancel.store(true);
      }
      finished.fetch_add(1);
    });
  }
  {
    ProgressMeter progress("annotate", meta.frame_count);
    while (finished.load() < jobs.size()) {
      progress.Update(frames_done.load());
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    for (auto& thread : threads) thread.join();
    progress.Update(frames_done.load());
  }
  // The first real failure (the others stopped because of it, as kTimeout "cancelled").
  const SegmentJob* failed = nullptr;
  for (const SegmentJob& job : jobs) {
    if (job.status.ok()) continue;
    if (failed == nullptr || (failed->status.code() == ErrorCode::kTimeout &&
                              job.status.code() != ErrorCode::kTimeout)) {
      failed = &job;
    }
  }
  if (failed != nullptr) {
    const size_t k = static_cast<size_t>(failed - jobs.data());
    return Fail(options.input + ": segment " + std::to_string(k) + " (" +
                    Seconds(failed->segment.start_s) + "-" + Seconds(failed->segment.end_s) +
                    " s on " + failed->device + ") failed: " + failed->status.ToString() +
                    "; nothing was written",
                1);
  }
  std::vector<std::string> parts;
  for (const SegmentJob& job : jobs) parts.push_back(job.part_path);
  if (Status joined = media::ConcatSegments(parts, local, output.string()); !joined.ok()) {
    return Fail(options.input + ": joining the segments: " + joined.ToString(), 1);
  }
  const double seconds = watch.ElapsedSeconds();

  int64_t frames = 0;
  double duration = 0;
  nlohmann::json segment_list = nlohmann::json::array();
  for (const SegmentJob& job : jobs) {
    frames += job.result.frames;
    duration += job.result.duration_s;
    segment_list.push_back({{"device", job.device},
                            {"weight", job.weight},
                            {"start_s", std::round(job.segment.start_s * 1000) / 1000},
                            {"end_s", std::round(job.segment.end_s * 1000) / 1000},
                            {"frames", job.result.frames},
                            {"detected_frames", job.detected_frames},
                            {"seconds", std::round(job.seconds * 1000) / 1000}});
  }
  nlohmann::json summary = {
      {"input", options.input},
      {"output", output.string()},
      {"frames", frames},
      {"duration_s", std::round(duration * 1000) / 1000},
      {"every", every},
      {"annotate_seconds", std::round(seconds * 1000) / 1000},
      {"fps", std::round(static_cast<double>(frames) / std::max(1e-9, seconds) * 100) / 100},
      {"filter_seconds", std::round(filter_seconds * 1000) / 1000},
      {"segments", segment_list},
      {"regions", RegionsJson(overlay.regions)},
      {"crop", overlay.crop.area() > 0 ? nlohmann::json{overlay.crop.x, overlay.crop.y,
                                                        overlay.crop.width, overlay.crop.height}
                                       : nlohmann::json()},
      {"labels", overlay.clip_labels}};
  out << (options.pretty ? summary.dump(2) : summary.dump()) << "\n";
  return 0;
}

}  // namespace vsieve::daemon
