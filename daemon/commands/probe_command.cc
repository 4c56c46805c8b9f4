#include "daemon/commands/probe_command.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <opencv2/core/utility.hpp>
#include <optional>
#include <ostream>
#include <thread>

#include "common/memory.h"
#include "common/stopwatch.h"
#include "common/trace.h"
#include "daemon/pipeline/crop_output.h"
#include "daemon/pipeline/device_runtime.h"
#include "daemon/pipeline/reader_factory.h"
#include "daemon/pipeline/stage_csv.h"
#include "daemon/tables/result_row.h"
#include "storage/reader.h"

namespace vsieve::daemon {
namespace {

nlohmann::json DeviceInfo(int jobs, int worker) {
  return {{"kind", "cpu"},
          {"backend", "opencv-dnn"},
          {"hardware_threads", std::thread::hardware_concurrency()},
          {"jobs", jobs},
          {"worker", worker}};
}

struct ProbedRow {
  std::string line;
  bool ok = false;
};

// Filters one input into its output row (VideoFilter::Run in two traced halves). Never throws
// for a bad video.
ProbedRow ProbeOne(const std::string& input, models::VideoFilter* filter,
                   const models::FilterOptions& options, storage::Reader* reader, bool tiers,
                   const std::string& config_hash, int jobs, int worker, bool pretty,
                   StageCsvWriter* stage_csv, CropOutput* crop_output) {
  common::TraceVideoScope trace_video(input);
  RowOutcome outcome;
  outcome.start_time = std::chrono::system_clock::now();
  outcome.device_info = DeviceInfo(jobs, worker);
  outcome.config_hash = config_hash;

  common::Stopwatch watch;
  std::optional<common::TraceSpan> span(std::in_place, "fetch");
  const auto ref = ProbeInputRef(input, tiers);
  auto fetched =
      ref.ok() ? reader->Fetch(*ref) : common::StatusOr<storage::FetchedObject>(ref.status());
  outcome.stage_ms["fetch"] = watch.ElapsedMillis();
  if (!fetched.ok()) {
    outcome.status = fetched.status().WithStage("fetch");
  } else {
    outcome.source_tier = fetched->source_tier;
    outcome.tier_errors = fetched->tier_errors;
    span.emplace("decode");
    models::SampledVideo video = models::SampleVideo(fetched->local_path, options);
    span.emplace("analyze");
    models::FilterReport report = filter->Analyze(std::move(video));
    common::ReleaseFreeMemory();  // the frames are gone: keep resident memory flat
    outcome.status = report.status;
    outcome.info = std::move(report.info);
    for (const auto& [stage, ms] : report.stage_ms) outcome.stage_ms[stage] = ms;
    if (outcome.status.ok() && crop_output != nullptr) {
      span.reset();  // Produce() records its own encode and upload spans
      const std::string name = std::filesystem::path(ref->key).stem().string();
      outcome.status =
          crop_output->Produce(name.empty() ? "video" : name, ref->bucket, fetched->local_path,
                               &outcome.info, &outcome.stage_ms, options.limits.decode_deadline_s);
    }
  }
  span.reset();
  outcome.end_time = std::chrono::system_clock::now();
  if (stage_csv != nullptr) {
    StageRecord record;
    record.video_id = input;
    record.device = outcome.device_name;
    record.worker = worker;
    record.succeeded = outcome.status.ok();
    if (!record.succeeded) record.error_code = common::ErrorCodeName(outcome.status.code());
    record.stage_ms = outcome.stage_ms;
    stage_csv->Append(record);
  }

  InputRow row;
  row.video_id = input;
  row.oss_bucket = ref.ok() ? ref->bucket : "";
  row.video_path = ref.ok() ? ref->key : input;
  const nlohmann::json json = BuildOutputRow(row, outcome);
  return {pretty ? json.dump(2) : json.dump(), outcome.status.ok()};
}

}  // namespace

int RunProbe(const ProbeOptions& probe, const FilterConfig& given, std::ostream& out) {
  FilterConfig config = given;
  if (!probe.output_dir.empty()) {
    std::error_code ec;
    const std::filesystem::path dir = std::filesystem::absolute(probe.output_dir, ec);
    std::string path = dir.lexically_normal().string();
    if (path.empty() || path.back() != '/') path += '/';
    config.output.url = "file://" + path;
    config.output.crop_video = true;
  }
  std::unique_ptr<CropOutput> crop_output;
  if (config.output.enabled()) {
    if (config.output.temp_dir.empty()) {
      config.output.temp_dir =
          (std::filesystem::temp_directory_path() / "vsieve-probe-output").string();
    }
    common::Status valid = ValidateOutputConfig(config);
    auto created = valid.ok() ? CropOutput::Create(config, "probe-" + std::to_string(::getpid()))
                              : common::StatusOr<std::unique_ptr<CropOutput>>(valid);
    if (!created.ok()) {
      spdlog::error("cannot set up the cropped-video output: {}", created.status().message());
      return 2;
    }
    crop_output = std::move(created).value();
  }
  const int total = static_cast<int>(probe.inputs.size());
  const int jobs = std::max(1, std::min(probe.jobs, total));
  const std::string config_hash = ConfigHash(config.options);

  // With a video per core already, OpenCV's own worker threads only add contention.
  if (jobs >= static_cast<int>(std::max(1U, std::thread::hardware_concurrency()))) {
    cv::setNumThreads(1);
  }

  std::unique_ptr<common::TraceRecorder> trace;
  if (!probe.trace_path.empty()) {
    auto opened = common::TraceRecorder::Open(probe.trace_path, "vsieve probe");
    if (!opened.ok()) {
      spdlog::error("{}", opened.status().message());
      return 2;
    }
    trace = std::move(opened).value();
  }
  std::unique_ptr<StageCsvWriter> stage_csv;
  if (!probe.stage_csv_path.empty()) {
    auto opened = StageCsvWriter::Open(probe.stage_csv_path);
    if (!opened.ok()) {
      spdlog::error("{}", opened.status().message());
      return 2;
    }
    stage_csv = std::move(opened).value();
  }
  // The fetch tiers (a LocalReader without [[tiers]]), shared by the workers.
  auto reader = MakeReader(config);
  if (!reader.ok()) {
    spdlog::error("cannot set up the fetch tiers: {}", reader.status().ToString());
    return 2;
  }
  const bool tiers = HasTiers(config);

  // Load every worker's models before starting, so a bad model fails fast and once.
  std::vector<std::unique_ptr<models::VideoFilter>> filters;
  std::shared_ptr<models::ConfiguredModels> configured;  // shared by every job's filter
  if (!config.options.detectors.empty() || !config.options.heads.empty()) {
    auto loaded = models::ConfiguredModels::Load(
        config.options.detectors, config.options.heads, config.devices.borrow_timeout_seconds,
        ModelPolicyFor(config, MakeDeviceBudgets(config.devices)));
    if (!loaded.ok()) {
      spdlog::error("cannot load models: {}", loaded.status().ToString());
      return 2;
    }
    configured = std::move(loaded).value();
  }
  for (int i = 0; i < jobs; ++i) {
    auto filter = models::VideoFilter::Create(config.options, configured);
    if (!filter.ok()) {
      spdlog::error("cannot load models: {}", filter.status().ToString());
      return 2;
    }
    if (i == 0) {
      for (const auto& warning : (*filter)->warnings()) spdlog::warn("{}", warning);
    }
    filters.push_back(std::move(filter).value());
  }

  std::mutex mutex;
  std::condition_variable ready;
  std::vector<std::optional<std::string>> rows(total);  // guarded by mutex
  std::atomic<int> next{0};
  std::atomic<int> failed{0};

  // Largest files first: a long video started last would leave the other workers idle at the
  // end. Rows are still printed in input order.
  std::vector<int> order(total);
  std::vector<std::uintmax_t> sizes(total, 0);
  for (int i = 0; i < total; ++i) {
    order[i] = i;
    std::error_code ec;
    const std::uintmax_t size = std::filesystem::file_size(probe.inputs[i], ec);
    if (!ec) sizes[i] = size;
  }
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return sizes[a] > sizes[b]; });

  common::TraceRecorder::Install(trace.get());
  std::vector<std::thread> workers;
  for (int w = 0; w < jobs; ++w) {
    workers.emplace_back([&, w] {
      common::NameThisThread("probe-" + std::to_string(w), w);
      for (int k = next.fetch_add(1); k < total; k = next.fetch_add(1)) {
        const int i = order[k];
        ProbedRow row =
            ProbeOne(probe.inputs[i], filters[w].get(), config.options, reader->get(), tiers,
                     config_hash, jobs, w, probe.pretty, stage_csv.get(), crop_output.get());
        if (!row.ok) failed.fetch_add(1);
        {
          std::lock_guard lock(mutex);
          rows[i] = std::move(row.line);
        }
        ready.notify_all();
      }
    });
  }

  common::Stopwatch watch;
  double last_progress = 0.0;
  for (int i = 0; i < total; ++i) {
    std::string line;
    {
      std::unique_lock lock(mutex);
      ready.wait(lock, [&] { return rows[i].has_value(); });
      line = std::move(*rows[i]);
      rows[i].reset();
    }
    out << line << '\n' << std::flush;
    if (watch.ElapsedSeconds() - last_progress >= 5.0) {
      last_progress = watch.ElapsedSeconds();
      spdlog::info("probe: {}/{} done, {} failed, {:.2f} videos/s", i + 1, total, failed.load(),
                   (i + 1) / std::max(1e-9, last_progress));
    }
  }
  for (auto& worker : workers) worker.join();
  common::TraceRecorder::Install(nullptr);
  if (trace != nullptr) {
    if (common::Status closed = trace->Close(); !closed.ok()) {
      spdlog::error("probe: {}", closed.message());
    }
  }
  if (stage_csv != nullptr) {
    if (common::Status closed = stage_csv->Close(); !closed.ok()) {
      spdlog::error("probe: {}", closed.message());
    }
  }
  spdlog::info("probe: {} videos, {} failed, {:.2f} s", total, failed.load(),
               watch.ElapsedSeconds());
  return 0;
}

}  // namespace vsieve::daemon
