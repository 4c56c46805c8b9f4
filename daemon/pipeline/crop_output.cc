#include "daemon/pipeline/crop_output.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "common/stopwatch.h"
#include "common/trace.h"
#include "media/crop_writer.h"

namespace vsieve::daemon {

using common::ErrorCode;
using common::Status;

namespace {

// The smallest side worth encoding (the decoder refuses smaller frames too).
constexpr int kMinSide = 16;

std::string ReplaceAll(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// `owner` as a file-name prefix: anything but [A-Za-z0-9._-] becomes '_'.
std::string FileSafe(const std::string& owner) {
  std::string out = owner.empty() ? "vsieve" : owner;
  for (char& c : out) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
    if (!ok) c = '_';
  }
  return out;
}

nlohmann::json BoxJson(const cv::Rect& box) { return {box.x, box.y, box.width, box.height}; }

std::string Percent(double share) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", share * 100.0);
  return buf;
}

}  // namespace

common::StatusOr<std::unique_ptr<CropOutput>> CropOutput::Create(const FilterConfig& config,
                                                                 const std::string& owner,
                                                                 const storage::TierDeps& deps) {
  storage::OutputStoreOptions options;
  options.url = config.output.url;
  options.multipart_bytes = config.output.multipart_bytes;
  options.part_bytes = config.output.part_bytes;
  for (const storage::TierConfig& tier : config.tiers) {
    if (tier.kind == "s3") {
      options.s3 = tier;
      break;
    }
  }
  VSIEVE_ASSIGN_OR_RETURN(std::unique_ptr<storage::OutputStore> store,
                          storage::CreateOutputStore(options, deps));

  const std::string dir =
      config.output.temp_dir.empty() ? config.cache.dir + "/output-tmp" : config.output.temp_dir;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return Status(ErrorCode::kInvalidArgument,
                  "config key 'output.temp_dir': cannot create " + dir + ": " + ec.message());
  }
  // What an earlier process of this owner left mid-encode (kill -9) is never needed again.
  const std::string mine = FileSafe(owner) + "-";
  int removed = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(mine, 0) == 0 && name.size() > 5 && name.ends_with(".part")) {
      removed += std::filesystem::remove(entry.path(), ec) ? 1 : 0;
    }
  }
  if (removed > 0) spdlog::info("output: removed {} unfinished encodes in {}", removed, dir);
  return std::unique_ptr<CropOutput>(
      new CropOutput(config.output, dir + "/" + mine, std::move(store)));
}

std::string CropOutput::KeyFor(const std::string& video_id, const std::string& bucket) const {
  std::string key = ReplaceAll(config_.key, "{prefix}", store_->prefix());
  key = ReplaceAll(key, "{video_id}", video_id);
  return ReplaceAll(key, "{bucket}", bucket);
}

Status CropOutput::Produce(const std::string& video_id, const std::string& bucket,
                           const std::string& source_path, nlohmann::json* info,
                           std::map<std::string, double>* stage_ms, double deadline_s,
                           const std::atomic<bool>* cancel) {
  if (!info->is_object() || !info->contains("abnormal_region_crop")) return Status::Ok();
  nlohmann::json& crop = (*info)["abnormal_region_crop"];
  const auto say = [&](const char* status, const std::string& reason) {
    crop["video"] = {{"status", status}, {"reason", reason}};
    return Status::Ok();
  };
  if (!crop.value("cropped", false)) return say("not_needed", "the safe crop is the whole frame");
  const nlohmann::json box_json = crop.value("box", nlohmann::json::array());
  if (!box_json.is_array() || box_json.size() != 4) {
    return say("refused", "no clean area is left to crop to");
  }
  const cv::Rect box(box_json[0].get<int>(), box_json[1].get<int>(), box_json[2].get<int>(),
                     box_json[3].get<int>());
  const nlohmann::json meta = info->value("video_meta", nlohmann::json::object());
  const double frame_area =
      static_cast<double>(meta.value("width", 0)) * static_cast<double>(meta.value("height", 0));
  if (box.area() <= 0) return say("refused", "no clean area is left to crop to");
  const double share = frame_area > 0 ? box.area() / frame_area : 1.0;
  if (share < config_.min_area) {
    return say("refused", "the crop keeps " + Percent(share) + " of the frame, under " +
                              "output.min_area (" + Percent(config_.min_area) + ")");
  }
  if (box.width < kMinSide || box.height < kMinSide) {
    return say("refused", "the crop is smaller than " + std::to_string(kMinSide) + " pixels");
  }

  const std::string key = KeyFor(video_id, bucket);
  const std::string temp = temp_prefix_ + std::to_string(::getpid()) + "-" +
                           std::to_string(serial_.fetch_add(1)) + ".mp4.part";
  media::CropWriteOptions options;
  options.codec = config_.codec;
  options.crf = config_.crf;
  options.preset = config_.preset;
  options.threads = config_.threads;
  options.deadline_s = deadline_s;
  options.cancel = cancel;
  common::Stopwatch watch;
  auto written = [&] {
    common::TraceSpan span("encode");
    return media::WriteCroppedVideo(source_path, box, temp, options);
  }();
  (*stage_ms)["encode"] = watch.ElapsedMillis();
  if (!written.ok()) {
    std::error_code ec;
    std::filesystem::remove(temp, ec);
    const Status& failed = written.status();
    if (failed.code() == ErrorCode::kTimeout) return failed.WithStage("encode");
    return Status(ErrorCode::kEncodeFailed, "cropping the video: " + failed.message())
        .WithStage("encode");
  }

  watch.Reset();
  auto stored = [&] {
    common::TraceSpan span("upload");
    span.AddArg("bytes", written->bytes);
    return store_->Put(temp, key);
  }();
  (*stage_ms)["upload"] = watch.ElapsedMillis();
  std::error_code ec;
  std::filesystem::remove(temp, ec);
  if (!stored.ok()) {
    const Status& failed = stored.status();
    if (failed.code() == ErrorCode::kUploadFailed) return failed.WithStage("upload");
    return Status(ErrorCode::kUploadFailed, failed.message(), failed.retryable())
        .WithStage("upload");
  }
  crop["video_oss_url"] = *stored;
  crop["video"] = {{"status", "written"},
                   {"box", BoxJson(written->display_box)},
                   {"width", written->display_box.width},
                   {"height", written->display_box.height},
                   {"frames", written->frames},
                   {"duration_s", std::round(written->duration_s * 1000.0) / 1000.0},
                   {"bytes", written->bytes},
                   {"codec", "h264"},
                   {"encoder", config_.codec},
                   {"crf", config_.crf},
                   {"preset", config_.preset},
                   {"audio", written->audio_copied}};
  if (!written->audio_note.empty()) crop["video"]["audio_note"] = written->audio_note;
  return Status::Ok();
}

}  // namespace vsieve::daemon
