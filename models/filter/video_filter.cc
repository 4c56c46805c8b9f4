#include "models/filter/video_filter.h"

#include <algorithm>
#include <opencv2/imgproc.hpp>
#include <optional>

#include "common/stopwatch.h"
#include "common/trace.h"

namespace vsieve::models {
namespace {

using common::ErrorCode;
using common::Status;

nlohmann::json BoxJson(const cv::Rect& box) { return {box.x, box.y, box.width, box.height}; }

nlohmann::json MetaJson(const media::VideoMeta& meta) {
  return {{"width", meta.width},
          {"height", meta.height},
          {"fps", meta.fps},
          {"duration_s", meta.duration_s},
          {"codec", meta.codec},
          {"rotation", meta.rotation},
          {"frame_count", meta.frame_count}};
}

nlohmann::json StatsJson(const media::DecodeStats& stats) {
  return {{"packets_read", stats.packets_read},
          {"frames_decoded", stats.frames_decoded},
          {"seeks", stats.seeks},
          {"demux_errors", stats.demux_errors},
          {"resyncs", stats.resyncs},
          {"decode_errors", stats.decode_errors},
          {"corrupt_frames", stats.corrupt_frames}};
}

// Builds head input from frames in the order given, cropped to `crop` (views, no copies).
HeadInput MakeInput(const std::vector<const media::Frame*>& frames, const media::VideoMeta& meta,
                    const std::vector<Region>& regions, const cv::Rect& crop,
                    uint64_t video_serial) {
  HeadInput input;
  input.video_serial = video_serial;
  input.meta = &meta;
  input.regions = &regions;
  input.crop = crop;
  for (const media::Frame* frame : frames) {
    const cv::Rect bounds = crop & cv::Rect(0, 0, frame->bgr.cols, frame->bgr.rows);
    input.frames.push_back(bounds.area() > 0 ? frame->bgr(bounds) : frame->bgr);
    input.full_frames.push_back(frame->bgr);
    input.times_s.push_back(frame->time_s);
    input.frame_keys.push_back(frame->index);
    input.analysis_scale = frame->analysis_scale;
  }
  return input;
}

// A frame at the analysis size (all of them share it); `frames` must not be empty.
const media::Frame& FullFrame(const std::vector<media::Frame>& frames) {
  return *media::SelectEven(frames, 1).front();
}

// Every frame of `frames` as its thin copy (media::ThinCopy; a frame decoded thin is shared):
// the pictures the windows, vfx_filter and simcam_filter read, all of one size.
std::vector<media::Frame> ThinFrames(const std::vector<media::Frame>& frames, int max_side) {
  std::vector<media::Frame> thin;
  thin.reserve(frames.size());
  for (const media::Frame& frame : frames) {
    thin.push_back(frame.thin ? frame : media::ThinCopy(frame, max_side));
  }
  return thin;
}

// The thin copies of `picked` (pointers into `frames`), in the same order.
std::vector<const media::Frame*> ThinOf(const std::vector<const media::Frame*>& picked,
                                        const std::vector<media::Frame>& frames,
                                        const std::vector<media::Frame>& thin) {
  std::vector<const media::Frame*> out;
  out.reserve(picked.size());
  for (const media::Frame* frame : picked) out.push_back(&thin[frame - frames.data()]);
  return out;
}

// `rect`, in the pixels of a `from` picture, in those of the same picture at `to`.
cv::Rect ScaleRect(const cv::Rect& rect, const cv::Size& from, const cv::Size& to) {
  if (from == to || from.width <= 0 || from.height <= 0) return rect;
  const double fx = static_cast<double>(to.width) / from.width;
  const double fy = static_cast<double>(to.height) / from.height;
  const int x0 = static_cast<int>(std::lround(rect.x * fx));
  const int y0 = static_cast<int>(std::lround(rect.y * fy));
  const int x1 = static_cast<int>(std::lround((rect.x + rect.width) * fx));
  const int y1 = static_cast<int>(std::lround((rect.y + rect.height) * fy));
  return cv::Rect(x0, y0, std::max(1, x1 - x0), std::max(1, y1 - y0)) &
         cv::Rect(cv::Point(0, 0), to);
}

// A static overlay found on the same text by its still edges (half its box or more inside a
// text region's) is that text, and is relaxed with it.
bool CoveredByText(const Region& region, const std::vector<Region>& regions) {
  if (region.kind != RegionKind::kWatermark) return false;
  for (const Region& text : regions) {
    if (&text != &region && IsTextRegion(text) &&
        (text.box & region.box).area() * 2 >= region.box.area()) {
      return true;
    }
  }
  return false;
}

}  // namespace

// A crop keeping less than this share of the frame is not trusted to be a safe crop when
// central text drove it (see RelaxCentralText in the header).
constexpr double kMinCropShare = 0.5;

bool RelaxCentralText(const cv::Size& frame, const cv::Rect& crop, std::vector<Region>* regions) {
  if (crop.area() >= kMinCropShare * frame.area()) return false;
  std::vector<char> text_like;
  for (const Region& region : *regions) {
    text_like.push_back(IsTextRegion(region) || CoveredByText(region, *regions));
  }
  bool changed = false;
  for (size_t i = 0; i < regions->size(); ++i) {
    Region& region = (*regions)[i];
    const double centre_y = region.box.y + region.box.height / 2.0;
    const bool central = centre_y > 0.25 * frame.height && centre_y < 0.75 * frame.height;
    if (text_like[i] && region.avoid && central) {
      region.avoid = false;
      changed = true;
    }
  }
  return changed;
}

common::StatusOr<std::unique_ptr<VideoFilter>> VideoFilter::Create(
    const FilterOptions& options, std::shared_ptr<ConfiguredModels> configured) {
  std::unique_ptr<VideoFilter> filter(new VideoFilter(options));
  const ModelPaths& paths = options.models;

  filter->detectors_.push_back(std::make_unique<BlackBorderDetector>());
  filter->detectors_.push_back(std::make_unique<BlurFillDetector>());
  if (options.text_regions) {
    if (paths.text_detector.empty()) {
      filter->warnings_.push_back(
          "text detector model not found: text and subtitle regions are not detected");
    } else {
      VSIEVE_ASSIGN_OR_RETURN(filter->text_detector_,
                              TextDetector::LoadShared(paths.text_detector));
      filter->text_index_ = filter->detectors_.size();
      filter->detectors_.push_back(
          std::make_unique<TextRegionDetector>(filter->text_detector_.get()));
    }
  }
  filter->detectors_.push_back(std::make_unique<StaticOverlayDetector>());
  if (configured == nullptr && (!options.detectors.empty() || !options.heads.empty())) {
    VSIEVE_ASSIGN_OR_RETURN(configured, ConfiguredModels::Load(options.detectors, options.heads));
  }
  if (configured != nullptr) {
    for (auto& detector : configured->MakeRegionDetectors()) {
      filter->detectors_.push_back(std::move(detector));
    }
    filter->configured_ = std::move(configured);
  }

  if (options.vfx) filter->vfx_ = std::make_unique<VfxHead>();
  if (options.simcam || options.windows) filter->simcam_ = std::make_unique<SimcamHead>();
  if (options.rotate_vertical) {
    if (!paths.text_angle.empty()) {
      VSIEVE_ASSIGN_OR_RETURN(filter->text_angle_, TextAngleClassifier::Load(paths.text_angle));
    } else {
      filter->warnings_.push_back("text angle classifier not found: upside-down text not checked");
    }
    if (paths.face_cascade.empty()) {
      filter->warnings_.push_back("face cascade not found: face orientation not checked");
    }
    filter->rotate_ =
        std::make_unique<RotateVerticalHead>(filter->text_angle_.get(), paths.face_cascade);
  }
  if (options.low_quality) {
    if (paths.brisque_model.empty() || paths.brisque_range.empty()) {
      filter->warnings_.push_back("BRISQUE models not found (Debian opencv-data): not scored");
    }
    filter->low_quality_ =
        std::make_unique<LowQualityHead>(paths.brisque_model, paths.brisque_range);
  }
  return filter;
}

Status VideoFilter::DetectRegions(const std::vector<media::Frame>& frames,
                                  std::vector<Region>* regions) {
  // The text detector's net is shared with other workers: when another holds it, the other
  // detectors run first. Regions are kept in detector order either way.
  std::vector<size_t> order;
  for (size_t i = 0; i < detectors_.size(); ++i) order.push_back(i);
  if (text_index_ < order.size() && text_detector_ != nullptr && text_detector_->Busy()) {
    order.erase(order.begin() + static_cast<std::ptrdiff_t>(text_index_));
    order.push_back(text_index_);
  }
  std::vector<std::vector<Region>> found_by(detectors_.size());
  for (const size_t i : order) {
    RegionDetector* detector = detectors_[i].get();
    // One span per cue (a no-op unless tracing): where the regions stage spends its time.
    const std::string span_name = "region:" + std::string(detector->name());
    common::TraceSpan span(span_name.c_str());
    auto found = detector->Detect(frames);
    if (!found.ok()) {
      return found.status().WithContext(std::string(detector->name()) + " detector");
    }
    found_by[i] = std::move(found).value();
  }
  for (const auto& found : found_by) regions->insert(regions->end(), found.begin(), found.end());
  return Status::Ok();
}

Status VideoFilter::RunHeads(const std::vector<media::Frame>& frames,
                             const std::vector<media::SamplingPlan::Window>& windows,
                             const media::VideoMeta& meta, const std::vector<Region>& regions,
                             const cv::Rect& crop, nlohmann::json* info) {
  const uint64_t serial = ++video_serial_;
  const std::vector<const media::Frame*> clip_frames =
      media::SelectEven(frames, options_.sampling.clip_frames);
  const HeadInput clip = MakeInput(clip_frames, meta, regions, crop, serial);
  // The heads that read motion and effects over time see every frame thin, so that a frame
  // decoded in full and one decoded thin compare as equals.
  const std::vector<media::Frame> thin = ThinFrames(frames, options_.limits.thin_max_side);
  const cv::Rect thin_crop = ScaleRect(crop, FullFrame(frames).bgr.size(), thin.front().bgr.size());
  const auto run = [&](Head* head, const HeadInput& input) -> common::StatusOr<nlohmann::json> {
    const std::string span_name = "head:" + head->name();  // per cue, as in DetectRegions
    common::TraceSpan span(span_name.c_str());
    auto output = head->Run(input);
    if (!output.ok()) return output.status().WithContext(head->name());
    return HeadOutputToJson(*output);
  };
  if (vfx_ != nullptr) {
    // vfx_filter reads every sampled frame: the plan's bursts of neighbouring frames are how it
    // sees flicker at frame rate.
    std::vector<const media::Frame*> all;
    for (const media::Frame& frame : thin) all.push_back(&frame);
    VSIEVE_ASSIGN_OR_RETURN((*info)[vfx_->name()],
                            run(vfx_.get(), MakeInput(all, meta, regions, thin_crop, serial)));
  }
  if (options_.simcam && simcam_ != nullptr) {
    VSIEVE_ASSIGN_OR_RETURN((*info)[simcam_->name()],
                            run(simcam_.get(), MakeInput(ThinOf(clip_frames, frames, thin), meta,
                                                         regions, thin_crop, serial)));
  }
  for (Head* head : std::initializer_list<Head*>{rotate_.get(), low_quality_.get()}) {
    if (head == nullptr) continue;
    VSIEVE_ASSIGN_OR_RETURN((*info)[head->name()], run(head, clip));
  }
  VSIEVE_RETURN_IF_ERROR(
      RunConfiguredHeads(frames, thin, windows, meta, regions, crop, thin_crop, serial, info));

  if (!options_.windows || simcam_ == nullptr) return Status::Ok();
  nlohmann::json forward = nlohmann::json::object();
  nlohmann::json reversed = nlohmann::json::object();
  int index = 0;
  for (const auto& window : windows) {
    std::vector<const media::Frame*> in_window =
        media::FramesIn(thin, window.start_s, window.end_s);
    if (in_window.empty()) continue;
    const nlohmann::json duration = {window.start_s, window.end_s};
    const std::string key = std::to_string(index++);
    VSIEVE_ASSIGN_OR_RETURN(
        nlohmann::json ahead,
        run(simcam_.get(), MakeInput(in_window, meta, regions, thin_crop, serial)));
    forward[key] = {{"duration", duration}, {simcam_->name(), std::move(ahead)}};
    std::reverse(in_window.begin(), in_window.end());
    VSIEVE_ASSIGN_OR_RETURN(
        nlohmann::json back,
        run(simcam_.get(), MakeInput(in_window, meta, regions, thin_crop, serial)));
    reversed[key] = {{"duration", duration}, {simcam_->name(), std::move(back)}};
  }
  (*info)["seg_simcam_filter"] = std::move(forward);
  (*info)["inverse_seg_simcam_filter"] = std::move(reversed);
  return Status::Ok();
}

Status VideoFilter::RunConfiguredHeads(const std::vector<media::Frame>& frames,
                                       const std::vector<media::Frame>& thin,
                                       const std::vector<media::SamplingPlan::Window>& windows,
                                       const media::VideoMeta& meta,
                                       const std::vector<Region>& regions, const cv::Rect& crop,
                                       const cv::Rect& thin_crop, uint64_t serial,
                                       nlohmann::json* info) {
  if (configured_ == nullptr) return Status::Ok();
  for (size_t i = 0; i < configured_->head_count(); ++i) {
    const OnnxHeadConfig& config = configured_->head_config(i);
    // One input per clip or window; they share passes with each other and with other videos
    // as far as the model's batch and [batching] allow.
    std::vector<HeadInput> inputs;
    std::vector<nlohmann::json> durations;
    if (config.mode == HeadMode::kClip) {
      inputs.push_back(MakeInput(media::SelectEven(frames, options_.sampling.clip_frames), meta,
                                 regions, crop, serial));
    } else {
      for (const auto& window : windows) {
        std::vector<const media::Frame*> in_window =
            media::FramesIn(thin, window.start_s, window.end_s);
        if (in_window.empty()) continue;
        if (config.mode == HeadMode::kReversedWindows) {
          std::reverse(in_window.begin(), in_window.end());
        }
        inputs.push_back(MakeInput(in_window, meta, regions, thin_crop, serial));
        durations.push_back({window.start_s, window.end_s});
      }
    }
    std::vector<HeadOutput> outputs;
    if (!inputs.empty()) {
      auto ran = configured_->RunHead(i, inputs);
      if (!ran.ok()) return ran.status().WithContext(config.name);
      outputs = std::move(ran).value();
    }
    if (config.mode == HeadMode::kClip) {
      (*info)[config.name] = HeadOutputToJson(outputs.front());
      continue;
    }
    // As seg_simcam_filter: {"0": {"duration": [a, b], "<name>": {...}}, ...}.
    nlohmann::json segments = nlohmann::json::object();
    for (size_t k = 0; k < outputs.size(); ++k) {
      segments[std::to_string(k)] = {{"duration", durations[k]},
                                     {config.name, HeadOutputToJson(outputs[k])}};
    }
    (*info)[config.name] = std::move(segments);
  }
  return Status::Ok();
}

namespace {

SampledVideo SampleVideoUnchecked(const std::string& path, const FilterOptions& options) {
  SampledVideo video;
  common::Stopwatch watch;

  // Decode: cheap metadata first, then one sampling pass for every consumer.
  auto decoder = media::VideoDecoder::Open(path, options.limits);
  if (!decoder.ok()) {
    video.status = decoder.status().WithStage("decode");
    video.stage_ms["decode"] = watch.ElapsedMillis();
    return video;
  }
  video.meta = (*decoder)->meta();
  video.info["video_meta"] = MetaJson(video.meta);
  const media::SamplingPlan plan = media::BuildSamplingPlan(video.meta, options.sampling);
  video.windows = plan.windows;
  auto sampled = (*decoder)->Sample(plan);
  video.stats = (*decoder)->stats();
  video.info["video_meta"]["decode_stats"] = StatsJson(video.stats);
  video.stage_ms["decode"] = watch.ElapsedMillis();
  if (!sampled.ok()) {
    video.status = sampled.status().WithStage("decode");
    return video;
  }
  video.frames = std::move(sampled).value();
  video.info["video_meta"]["frames_sampled"] = video.frames.size();
  if (video.frames.empty()) {
    video.status = Status(ErrorCode::kTruncated, "no frame could be decoded").WithStage("decode");
  }
  return video;
}

}  // namespace

SampledVideo SampleVideo(const std::string& path, const FilterOptions& options) {
  // Adapters turn library exceptions into a Status; this is the last line so that no input can
  // take the process down.
  try {
    return SampleVideoUnchecked(path, options);
  } catch (const cv::Exception& e) {
    SampledVideo video;
    video.status = Status(ErrorCode::kModelFailed, std::string("OpenCV: ") + e.what());
    return video;
  } catch (const std::exception& e) {
    SampledVideo video;
    video.status = Status(ErrorCode::kInternal, e.what());
    return video;
  }
}

FilterReport VideoFilter::Run(const std::string& path) {
  return Analyze(SampleVideo(path, options_));
}

FilterReport VideoFilter::Analyze(SampledVideo video) {
  FilterReport report;
  report.status = video.status;
  report.info = std::move(video.info);
  report.stats = video.stats;
  report.stage_ms = std::move(video.stage_ms);
  if (!report.status.ok()) return report;
  // The same safety net as SampleVideo(): an exception ends the video with a bare report.
  FilterReport failed;
  try {
    return AnalyzeUnchecked(video, report);
  } catch (const cv::Exception& e) {
    failed.status = Status(ErrorCode::kModelFailed, std::string("OpenCV: ") + e.what());
  } catch (const std::exception& e) {
    failed.status = Status(ErrorCode::kInternal, e.what());
  }
  if (simcam_ != nullptr) simcam_->ForgetFrames();
  return failed;
}

FilterReport VideoFilter::AnalyzeUnchecked(SampledVideo& video, FilterReport& report) {
  common::Stopwatch watch;
  std::optional<common::TraceSpan> span(std::in_place, "regions");  // a no-op unless tracing
  const media::VideoMeta& meta = video.meta;
  const std::vector<media::Frame>& frames = video.frames;

  // Regions and the safe crop, in analysis pixels; reported in displayed pixels.
  std::vector<Region> regions;
  if (Status status = DetectRegions(frames, &regions); !status.ok()) {
    report.status = status.WithStage("regions");
    report.stage_ms["regions"] = watch.ElapsedMillis();
    return std::move(report);
  }
  const media::Frame& full = FullFrame(frames);
  const cv::Size analysis_size = full.bgr.size();
  const double to_display = 1.0 / full.analysis_scale;
  const cv::Size display_size(meta.width, meta.height);
  cv::Rect crop = SafeCrop(analysis_size, regions, options_.crop);
  if (RelaxCentralText(analysis_size, crop, &regions)) {
    crop = SafeCrop(analysis_size, regions, options_.crop);
  }
  const bool clean_area_left = crop.area() > 0;
  if (!clean_area_left) crop = cv::Rect(cv::Point(0, 0), analysis_size);
  const bool cropped = crop != cv::Rect(cv::Point(0, 0), analysis_size);

  nlohmann::json region_list = nlohmann::json::array();
  for (const Region& region : regions) {
    nlohmann::json item = {{"kind", RegionKindName(region.kind)},
                           {"box", BoxJson(ScaleBox(region.box, to_display, display_size))},
                           {"score", region.score},
                           {"avoid", region.avoid}};
    if (!region.label.empty()) item["label"] = region.label;
    region_list.push_back(std::move(item));
  }
  report.info["abnormal_region_info"] = {{"regions", std::move(region_list)}};
  cv::Rect display_crop =
      cropped ? ScaleBox(crop, to_display, display_size) : cv::Rect(cv::Point(0, 0), display_size);
  if (!clean_area_left) display_crop = cv::Rect();
  report.info["abnormal_region_crop"] = {{"box", BoxJson(display_crop)},
                                         {"cropped", cropped || !clean_area_left}};
  if (!clean_area_left) report.info["abnormal_region_crop"]["clean_area"] = false;
  report.stage_ms["regions"] = watch.ElapsedMillis();

  // Heads on the cropped frames.
  watch.Reset();
  span.emplace("heads");
  Status status = RunHeads(frames, video.windows, meta, regions, crop, &report.info);
  if (simcam_ != nullptr) simcam_->ForgetFrames();  // `frames` are released on return
  report.stage_ms["heads"] = watch.ElapsedMillis();
  if (!status.ok()) report.status = status.WithStage("heads");
  return std::move(report);
}

}  // namespace vsieve::models
