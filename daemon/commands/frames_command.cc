#include "daemon/commands/frames_command.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>

#include "daemon/commands/progress_meter.h"
#include "daemon/pipeline/reader_factory.h"
#include "media/image_file.h"
#include "media/sampling_plan.h"
#include "media/video_decoder.h"
#include "models/filter/video_filter.h"

namespace vsieve::daemon {
namespace {

using common::ErrorCode;
using common::Status;
using common::StatusOr;
namespace fs = std::filesystem;

// Planned times decoded per Sample() call, so that memory stays bounded on long videos.
constexpr size_t kChunk = 16;

int Fail(const std::string& message, int code) {
  std::cerr << "vsieve frames: " << message << "\n";
  return code;
}

double Round3(double v) { return std::round(v * 1000) / 1000; }

nlohmann::json ErrorJson(const Status& status) {
  return {{"code", std::string(common::ErrorCodeName(status.code()))},
          {"message", status.message()}};
}

// Extracts the frames of one input; fills `entry` (the manifest's) and returns the status.
Status ExtractOne(const std::string& input, const FramesOptions& options,
                  const FilterConfig& config, storage::Reader* reader, bool tiers,
                  models::VideoFilter* filter, media::ImageFormat image_format, int quality,
                  nlohmann::json* entry) {
  VSIEVE_ASSIGN_OR_RETURN(storage::ObjectRef ref, ProbeInputRef(input, tiers));
  auto fetched = reader->Fetch(ref);
  if (!fetched.ok()) return fetched.status().WithStage("fetch");
  const std::string local = fetched->local_path;
  std::string stem = fs::path(ref.key).stem().string();
  if (stem.empty()) stem = "video";

  media::DecodeLimits limits = config.options.limits;
  limits.analysis_max_side = 0;  // full resolution
  VSIEVE_ASSIGN_OR_RETURN(auto decoder, media::VideoDecoder::Open(local, limits));
  const media::VideoMeta& meta = decoder->meta();
  (*entry)["video_meta"] = {{"width", meta.width},
                            {"height", meta.height},
                            {"fps", meta.fps},
                            {"duration_s", meta.duration_s},
                            {"codec", meta.codec},
                            {"rotation", meta.rotation},
                            {"frame_count", meta.frame_count}};

  cv::Rect crop(0, 0, meta.width, meta.height);
  if (options.crop) {
    models::FilterReport report = filter->Analyze(models::SampleVideo(local, config.options));
    if (!report.status.ok()) return report.status;
    const auto& box = report.info["abnormal_region_crop"]["box"];
    if (box.is_array() && box.size() == 4) {
      crop = cv::Rect(box[0].get<int>(), box[1].get<int>(), box[2].get<int>(), box[3].get<int>()) &
             crop;
    }
    if (crop.area() == 0) return Status(ErrorCode::kInternal, "the filter gave an empty crop");
    (*entry)["crop"] = {crop.x, crop.y, crop.width, crop.height};
  }

  std::vector<double> times;
  if (options.sampled) {
    times = media::BuildSamplingPlan(meta, config.options.sampling).times_s;
    (*entry)["mode"] = "sampled";
  } else {
    if (meta.duration_s <= 0) {
      return Status(ErrorCode::kTruncated, "the container does not say how long the video is");
    }
    times = FixedRateTimes(options.fps, meta.duration_s);
    (*entry)["mode"] = "fps";
    (*entry)["fps"] = options.fps;
  }

  nlohmann::json frames = nlohmann::json::array();
  ProgressMeter progress("frames " + stem, static_cast<int64_t>(times.size()));
  int64_t last_index = -1;
  size_t done = 0;
  for (size_t begin = 0; begin < times.size(); begin += kChunk) {
    media::SamplingPlan plan;
    plan.times_s.assign(
        times.begin() + static_cast<std::ptrdiff_t>(begin),
        times.begin() + static_cast<std::ptrdiff_t>(std::min(times.size(), begin + kChunk)));
    VSIEVE_ASSIGN_OR_RETURN(std::vector<media::Frame> got, decoder->Sample(plan));
    size_t next = 0;  // the first planned time not yet reached
    for (const media::Frame& frame : got) {
      const size_t planned = std::min(next, plan.times_s.size() - 1);
      while (next < plan.times_s.size() && plan.times_s[next] <= frame.time_s + 1e-3) ++next;
      if (frame.index <= last_index) continue;  // reached again from the next chunk
      last_index = frame.index;
      const std::string name =
          FrameFileName(options.prefix, stem, frame.index, frame.time_s, options.format);
      const fs::path path = fs::path(options.out_dir) / name;
      const cv::Rect inside = crop & cv::Rect(0, 0, frame.bgr.cols, frame.bgr.rows);
      if (inside.empty()) return Status(ErrorCode::kInternal, "empty crop for " + path.string());
      VSIEVE_RETURN_IF_ERROR(
          media::WriteImage(path.string(), frame.bgr(inside), image_format, quality));
      frames.push_back({{"file", name},
                        {"index", frame.index},
                        {"time_s", Round3(frame.time_s)},
                        {"planned_s", Round3(plan.times_s[planned])}});
    }
    done += plan.times_s.size();
    progress.Update(static_cast<int64_t>(done));
  }
  progress.Finish();
  (*entry)["frames"] = std::move(frames);
  return Status::Ok();
}

}  // namespace

std::string FrameFileName(const std::string& prefix, const std::string& stem, int64_t index,
                          double time_s, const std::string& format) {
  char tail[64];
  std::snprintf(tail, sizeof tail, "_%06lld_%08lldms.", static_cast<long long>(index),
                static_cast<long long>(std::llround(std::max(0.0, time_s) * 1000)));
  return prefix + stem + tail + format;
}

std::vector<double> FixedRateTimes(double fps, double duration_s) {
  std::vector<double> times;
  if (fps <= 0 || duration_s <= 0) return times;
  for (int64_t k = 0;; ++k) {
    const double t = static_cast<double>(k) / fps;
    if (t >= duration_s - 1e-9) break;
    times.push_back(t);
  }
  return times;
}

int RunFrames(const FramesOptions& options, const FilterConfig& config, std::ostream& out) {
  std::string format = options.format;
  std::transform(format.begin(), format.end(), format.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (format == "jpeg") format = "jpg";
  if (format != "png" && format != "jpg") {
    return Fail("--format must be png or jpg, not '" + options.format + "'", 2);
  }
  const media::ImageFormat image_format =
      format == "jpg" ? media::ImageFormat::kJpeg : media::ImageFormat::kPng;
  int quality = options.quality;
  if (format == "jpg") {
    if (quality < 0) quality = 95;
    if (quality > 100) return Fail("--quality for jpg is 0-100", 2);
  } else {
    if (quality < 0) quality = 3;
    if (quality > 9) return Fail("--quality for png is its compression level, 0-9", 2);
  }
  if (!options.sampled && !(options.fps > 0)) return Fail("--fps must be above 0", 2);
  if (options.prefix.find('/') != std::string::npos) {
    return Fail("--prefix must not contain '/'", 2);
  }
  std::error_code ec;
  fs::create_directories(options.out_dir, ec);
  if (!fs::is_directory(options.out_dir, ec)) {
    return Fail("cannot create the output folder " + options.out_dir, 2);
  }
  auto reader = MakeReader(config);
  if (!reader.ok()) return Fail("cannot set up the fetch tiers: " + reader.status().ToString(), 2);
  const bool tiers = HasTiers(config);
  std::unique_ptr<models::VideoFilter> filter;
  if (options.crop) {
    auto created = models::VideoFilter::Create(config.options);
    if (!created.ok()) return Fail("cannot load models: " + created.status().ToString(), 2);
    for (const auto& warning : (*created)->warnings()) spdlog::warn("{}", warning);
    filter = std::move(created).value();
  }

  FramesOptions effective = options;
  effective.format = format;
  nlohmann::json inputs = nlohmann::json::array();
  int failed = 0;
  for (const std::string& input : options.inputs) {
    nlohmann::json entry = {{"input", input}};
    Status status = ExtractOne(input, effective, config, reader->get(), tiers, filter.get(),
                               image_format, quality, &entry);
    nlohmann::json line = {{"input", input}};
    if (status.ok()) {
      line["frames"] = entry["frames"].size();
    } else {
      ++failed;
      entry["error"] = ErrorJson(status);
      line["error"] = entry["error"];
      std::cerr << "vsieve frames: " << input << ": " << status.ToString() << "\n";
    }
    inputs.push_back(std::move(entry));
    out << (options.pretty ? line.dump(2) : line.dump()) << "\n" << std::flush;
  }
  const fs::path manifest = fs::path(options.out_dir) / "manifest.json";
  const std::string text =
      nlohmann::json{{"prefix", options.prefix}, {"format", format}, {"inputs", inputs}}.dump(2) +
      "\n";
  std::ofstream file(manifest, std::ios::binary | std::ios::trunc);
  file << text;
  file.close();
  if (!file) return Fail("cannot write " + manifest.string(), 2);
  return failed > 0 ? 1 : 0;
}

}  // namespace vsieve::daemon
