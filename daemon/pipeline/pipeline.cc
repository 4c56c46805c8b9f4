#include "daemon/pipeline/pipeline.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <random>

#include "common/memory.h"
#include "common/stopwatch.h"
#include "common/trace.h"
#include "daemon/pipeline/daemon_metrics.h"
#include "daemon/pipeline/device_runtime.h"
#include "daemon/tables/result_row.h"

namespace vsieve::daemon {

using common::ErrorCode;
using common::Status;
using Clock = std::chrono::steady_clock;

// One claimed row in the registry the heartbeat thread walks. `lost` is set once a heartbeat
// finds the lease taken over; the writer then drops the result.
struct Pipeline::InFlight {
  storage::Lease lease;
  std::atomic<bool> lost{false};
};

// A video travelling through the stages; owned by exactly one stage (or queue) at a time.
struct Pipeline::Item {
  std::shared_ptr<InFlight> flight;
  Clock::time_point deadline;
  std::chrono::system_clock::time_point start_time;
  Status status;
  bool finished = false;   // failed before the end: later stages pass it through
  bool abandoned = false;  // the grace is over: released, not processed
  std::string local_path;
  std::string source_tier;
  std::vector<storage::TierError> tier_errors;
  std::shared_ptr<const void> pin;  // keeps a cached copy in place until decoded
  std::map<std::string, double> stage_ms;
  models::SampledVideo video;
  bool holds_decoded_slot = false;  // `video` counts against Pipeline::decoded_slots_
  nlohmann::json info = nlohmann::json::object();
  std::string device_name;
  int worker = -1;               // the analysis worker's index
  std::vector<int> decode_cpus;  // the decode thread's CPUs when pinned
  Clock::time_point queued_for_write;

  bool Skip() const { return finished || abandoned || flight->lost.load(); }
};

namespace {

int AtLeast1(int value) { return std::max(1, value); }

double SecondsUntil(Clock::time_point when) {
  return std::chrono::duration<double>(when - Clock::now()).count();
}

nlohmann::json ParseInfo(const std::string& text) {
  nlohmann::json info = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (info.is_discarded()) return text;
  return info;
}

// What the fetch stage asks the reader for: the row's bucket and path, and whether its info
// allows the distributed cache ({"use_alluxio": false} skips it).
storage::ObjectRef RefForRow(const storage::InputRow& row) {
  storage::ObjectRef ref{row.oss_bucket, row.video_path};
  nlohmann::json info = ParseInfo(row.info_json);
  if (info.is_string()) info = ParseInfo(info.get<std::string>());  // seed rows: info as a string
  if (info.is_object()) {
    const auto it = info.find("use_alluxio");
    if (it != info.end() && it->is_boolean()) ref.use_dcache = it->get<bool>();
  }
  return ref;
}

}  // namespace

double Pipeline::BackoffSeconds(int attempt, double base, double cap, double uniform01) {
  const double ceiling = std::min(cap, base * std::pow(2.0, std::clamp(attempt, 0, 60)));
  return std::clamp(uniform01, 0.0, 1.0) * ceiling;
}

common::StatusOr<std::unique_ptr<Pipeline>> Pipeline::Create(PipelineOptions options,
                                                             storage::TableStore* store,
                                                             PipelineHooks hooks) {
  if (store == nullptr) return Status(ErrorCode::kInvalidArgument, "no table store");
  const models::FilterOptions filter_options = options.config.options;
  std::unique_ptr<Pipeline> pipeline(new Pipeline(std::move(options), store, std::move(hooks)));
  const PipelineConfig& config = pipeline->options_.config.pipeline;
  if (!config.core_bind.empty()) {
    VSIEVE_ASSIGN_OR_RETURN(const std::vector<int> allowed, AllowedCpus());
    VSIEVE_ASSIGN_OR_RETURN(pipeline->binding_, PlanCoreBinding(config.core_bind, allowed,
                                                                AtLeast1(config.decode_threads),
                                                                AtLeast1(config.workers)));
    if (pipeline->binding_.enabled()) {
      spdlog::info("run: core binding (allowed CPUs {}): fetch [{}], decode [{}], workers [{}]",
                   FormatCpuList(allowed), FormatCpuList(pipeline->binding_.fetch),
                   FormatCpuList(pipeline->binding_.decode),
                   FormatCpuList(pipeline->binding_.workers));
    }
  }
  bool warned = false;
  // The configured detectors and heads load once, in their own pools, shared by every filter.
  // Every pool shares the per-device budgets.
  const DeviceConfig& devices = pipeline->options_.config.devices;
  const std::shared_ptr<models::DeviceBudgets> budgets = MakeDeviceBudgets(devices);
  std::shared_ptr<models::ConfiguredModels> configured;
  if (!filter_options.detectors.empty() || !filter_options.heads.empty()) {
    auto loaded =
        models::ConfiguredModels::Load(filter_options.detectors, filter_options.heads,
                                       std::max(0.001, devices.borrow_timeout_seconds),
                                       ModelPolicyFor(pipeline->options_.config, budgets));
    if (!loaded.ok()) return loaded.status();
    configured = std::move(loaded).value();
  }
  auto pool = models::InstancePool<models::VideoFilter>::Create(
      PoolOptionsFor(devices, "video_filter", devices.instances, budgets),
      [&](const models::Device&) -> common::StatusOr<std::unique_ptr<models::VideoFilter>> {
        auto filter = models::VideoFilter::Create(filter_options, configured);
        if (filter.ok() && !warned) {
          for (const auto& warning : (*filter)->warnings()) spdlog::warn("{}", warning);
          warned = true;
        }
        return filter;
      });
  if (!pool.ok()) return pool.status();
  pipeline->pool_ = std::move(pool).value();
  if (pipeline->options_.config.output.enabled()) {
    auto output = CropOutput::Create(pipeline->options_.config, pipeline->options_.owner);
    if (!output.ok()) return output.status();
    pipeline->crop_output_ = std::move(output).value();
  }
  return pipeline;
}

Pipeline::Pipeline(PipelineOptions options, storage::TableStore* store, PipelineHooks hooks)
    : options_(std::move(options)),
      store_(store),
      hooks_(std::move(hooks)),
      config_hash_(ConfigHash(options_.config.options)),
      lease_seconds_(std::max(1, options_.config.store.lease_seconds)),
      fetch_queue_(AtLeast1(options_.config.pipeline.queue_depth)),
      decode_queue_(AtLeast1(options_.config.pipeline.queue_depth)),
      // Decoded frames are the big items: hold no more than one ready video per worker.
      analyze_queue_(AtLeast1(
          std::min(options_.config.pipeline.queue_depth, options_.config.pipeline.workers))),
      encode_queue_(AtLeast1(options_.config.pipeline.queue_depth)),
      write_queue_(AtLeast1(options_.config.pipeline.queue_depth)),
      decoded_slots_(AtLeast1(options_.config.pipeline.workers) + 1) {
  if (hooks_.reader == nullptr) hooks_.reader = std::make_shared<storage::LocalReader>();
}

Pipeline::~Pipeline() = default;

void Pipeline::RequestStop(double grace_seconds) {
  {
    std::lock_guard lock(mutex_);
    const auto deadline =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(
                           std::chrono::duration<double>(std::max(0.0, grace_seconds)));
    if (!stop_requested_ || deadline < grace_deadline_) grace_deadline_ = deadline;
    stop_requested_ = true;
  }
  wake_.notify_all();
}

bool Pipeline::StopRequested() const {
  std::lock_guard lock(mutex_);
  return stop_requested_;
}

PipelineSnapshot Pipeline::Snapshot() const {
  PipelineSnapshot snapshot;
  snapshot.claimed = claimed_.load();
  snapshot.done = done_.load();
  snapshot.failed = failed_.load();
  snapshot.retried = retried_.load();
  snapshot.released = released_.load();
  snapshot.lost_leases = lost_leases_.load();
  snapshot.queue_depth = {{"fetch", static_cast<int64_t>(fetch_queue_.size())},
                          {"decode", static_cast<int64_t>(decode_queue_.size())},
                          {"analyze", static_cast<int64_t>(analyze_queue_.size())},
                          {"write", static_cast<int64_t>(write_queue_.size())}};
  if (crop_output_ != nullptr) {
    snapshot.queue_depth["encode"] = static_cast<int64_t>(encode_queue_.size());
    snapshot.queue_capacity["encode"] = static_cast<int64_t>(encode_queue_.capacity());
  }
  snapshot.queue_capacity = {{"fetch", static_cast<int64_t>(fetch_queue_.capacity())},
                             {"decode", static_cast<int64_t>(decode_queue_.capacity())},
                             {"analyze", static_cast<int64_t>(analyze_queue_.capacity())},
                             {"write", static_cast<int64_t>(write_queue_.capacity())}};
  snapshot.heartbeats = heartbeats_.load();
  if (pool_ != nullptr) snapshot.devices = pool_->Counters();
  snapshot.elapsed_s = std::chrono::duration<double>(Clock::now() - started_).count();
  std::lock_guard lock(mutex_);
  snapshot.in_flight = static_cast<int64_t>(in_flight_.size());
  snapshot.stage_ms_total = stage_ms_total_;
  snapshot.stopping = stop_requested_;
  return snapshot;
}

void Pipeline::AddStageMs(const std::map<std::string, double>& stage_ms) {
  RecordStageTimes(stage_ms);
  std::lock_guard lock(mutex_);
  for (const auto& [stage, ms] : stage_ms) stage_ms_total_[stage] += ms;
}

void Pipeline::Pin(const char* pool, const std::vector<int>& cpus) {
  if (Status status = PinThisThread(cpus); !status.ok()) {
    spdlog::warn("run: {} thread left unpinned: {}", pool, status.message());
  }
}

void Pipeline::Tick() {
  if (options_.on_tick) options_.on_tick(Snapshot());
}

void Pipeline::Forget(int64_t row_id) {
  std::lock_guard lock(mutex_);
  in_flight_.erase(row_id);
}

void Pipeline::Finish(Item* item, Status status, const char* stage) {
  item->status = status.WithStage(stage);
  item->finished = true;
}

bool Pipeline::StoreIdle() {
  std::vector<std::string> tables = options_.config.pipeline.tables;
  if (tables.empty()) tables.push_back("");
  for (const std::string& table : tables) {
    auto stats = store_->Stats(table);
    if (!stats.ok()) {
      spdlog::warn("run: store stats failed: {}", stats.status().ToString());
      return false;
    }
    const auto count = [&](const char* state) {
      auto it = stats->by_state.find(state);
      return it == stats->by_state.end() ? int64_t{0} : it->second;
    };
    if (count("pending") + count("running") > 0) return false;
  }
  return true;
}

common::Status Pipeline::Run() {
  auto reclaimed = store_->ReclaimOwner(options_.owner);
  if (!reclaimed.ok()) return reclaimed.status().WithContext("reclaiming leases at start");
  if (*reclaimed > 0) {
    spdlog::info("run: {} rows left running by {} went back to pending", *reclaimed,
                 options_.owner);
  }
  const PipelineConfig& config = options_.config.pipeline;
  fetchers_left_ = AtLeast1(config.download_threads);
  decoders_left_ = AtLeast1(config.decode_threads);
  workers_left_ = AtLeast1(config.workers);
  encoders_left_ = AtLeast1(config.encode_threads);

  Tick();  // ready: the store answered, the models are loaded, nothing is claimed yet
  std::vector<std::thread> stages;
  stages.emplace_back([this] { ClaimLoop(); });
  for (int i = 0; i < AtLeast1(config.download_threads); ++i) {
    stages.emplace_back([this, i] { FetchLoop(i); });
  }
  for (int i = 0; i < AtLeast1(config.decode_threads); ++i) {
    stages.emplace_back([this, i] { DecodeLoop(i); });
  }
  for (int i = 0; i < AtLeast1(config.workers); ++i) {
    stages.emplace_back([this, i] { WorkLoop(i); });
  }
  if (crop_output_ != nullptr) {
    for (int i = 0; i < AtLeast1(config.encode_threads); ++i) {
      stages.emplace_back([this, i] { EncodeLoop(i); });
    }
  }
  stages.emplace_back([this] { WriteLoop(); });
  std::thread heartbeat([this] { HeartbeatLoop(); });

  auto next_progress = Clock::now() + std::chrono::seconds(10);
  int64_t last_finished = 0;
  auto last_progress = Clock::now();
  std::map<std::string, int64_t> peak_depth;  // sampled every tick, reported at the end
  const auto sample_depths = [&] {
    const std::pair<const char*, size_t> depths[] = {{"fetch", fetch_queue_.size()},
                                                     {"decode", decode_queue_.size()},
                                                     {"analyze", analyze_queue_.size()},
                                                     {"encode", encode_queue_.size()},
                                                     {"write", write_queue_.size()}};
    for (const auto& [name, depth] : depths) {
      peak_depth[name] = std::max(peak_depth[name], static_cast<int64_t>(depth));
    }
  };
  {
    std::unique_lock lock(mutex_);
    while (!writer_done_) {
      wake_.wait_for(lock, std::chrono::milliseconds(250));
      sample_depths();
      if (stop_requested_ && !abandon_.load() && Clock::now() >= grace_deadline_) {
        abandon_ = true;
        spdlog::info("run: grace over: releasing {} unfinished leases", in_flight_.size());
      }
      if (Clock::now() >= next_progress) {
        const int64_t finished = done_.load() + failed_.load();
        const double seconds = std::chrono::duration<double>(Clock::now() - last_progress).count();
        spdlog::info("run: {} done, {} failed, {} retried, {} in flight, {:.2f} videos/s",
                     done_.load(), failed_.load(), retried_.load(), in_flight_.size(),
                     (finished - last_finished) / std::max(1e-9, seconds));
        last_finished = finished;
        last_progress = Clock::now();
        next_progress = last_progress + std::chrono::seconds(10);
      }
      if (options_.on_tick) {
        lock.unlock();
        Tick();
        lock.lock();
      }
    }
  }
  for (auto& stage : stages) stage.join();
  {
    std::lock_guard lock(mutex_);
    heartbeat_stop_ = true;
  }
  wake_.notify_all();
  heartbeat.join();

  // Anything still registered (a store error in the writer) is given back, not charged.
  std::vector<std::shared_ptr<InFlight>> left;
  {
    std::lock_guard lock(mutex_);
    for (auto& [id, flight] : in_flight_) left.push_back(flight);
    in_flight_.clear();
  }
  for (auto& flight : left) {
    if (flight->lost.load()) continue;
    auto released = store_->Release(flight->lease);
    if (released.ok() && *released) released_.fetch_add(1);
  }
  const PipelineSnapshot end = Snapshot();
  spdlog::info(
      "run: stopped after {:.1f} s: {} done, {} failed, {} retried, {} released, {} "
      "lost leases",
      end.elapsed_s, end.done, end.failed, end.retried, end.released, end.lost_leases);
  const double finished = static_cast<double>(std::max<int64_t>(1, end.done + end.failed));
  std::string stages_text;
  for (const auto& [stage, ms] : end.stage_ms_total) {
    stages_text += fmt::format(" {}={:.1f}", stage, ms / finished);
  }
  std::string depth_text;
  for (const auto& [queue, depth] : peak_depth) depth_text += fmt::format(" {}={}", queue, depth);
  spdlog::info("run: mean ms per video:{}; peak queue depths:{}", stages_text, depth_text);
  Tick();
  return Status::Ok();
}

void Pipeline::ClaimLoop() {
  common::NameThisThread("claimer", 0);
  const PipelineConfig& config = options_.config.pipeline;
  const int max_in_flight = AtLeast1(config.queue_depth) * (crop_output_ != nullptr ? 5 : 4) +
                            AtLeast1(config.download_threads) + AtLeast1(config.decode_threads) +
                            AtLeast1(config.workers) +
                            (crop_output_ != nullptr ? AtLeast1(config.encode_threads) : 0);
  const auto reclaim_every = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(std::max(1.0, lease_seconds_ / 2.0)));
  auto next_reclaim = Clock::now();
  auto pause = std::chrono::milliseconds(0);
  while (true) {
    {
      std::unique_lock lock(mutex_);
      if (pause.count() > 0) wake_.wait_for(lock, pause, [&] { return stop_requested_; });
      if (stop_requested_) break;
    }
    pause = std::chrono::milliseconds(200);
    if (Clock::now() >= next_reclaim) {
      auto reclaimed = store_->ReclaimExpired(config.max_attempts);
      if (!reclaimed.ok()) {
        spdlog::warn("run: reclaiming expired leases failed: {}", reclaimed.status().ToString());
      } else if (*reclaimed > 0) {
        spdlog::info("run: {} expired leases reclaimed", *reclaimed);
      }
      next_reclaim = Clock::now() + reclaim_every;
    }
    std::size_t in_flight = 0;
    {
      std::lock_guard lock(mutex_);
      in_flight = in_flight_.size();
    }
    const int room = static_cast<int>(fetch_queue_.capacity() - fetch_queue_.size());
    const int want =
        std::min({AtLeast1(config.claim_batch), room, max_in_flight - static_cast<int>(in_flight)});
    if (want <= 0) {
      pause = std::chrono::milliseconds(20);  // back-pressure: poll for room soon
      continue;
    }
    common::TraceSpan span("claim");
    auto leases = store_->Claim(options_.owner, config.tables, want, lease_seconds_);
    if (leases.ok()) span.AddArg("rows", static_cast<int64_t>(leases->size()));
    if (leases.ok() && leases->empty()) span.Cancel();  // idle polls would flood the trace
    if (!leases.ok()) {
      spdlog::warn("run: claim failed: {}", leases.status().ToString());
      pause = std::chrono::milliseconds(1000);
      continue;
    }
    if (leases->empty()) {
      if (options_.until_idle && in_flight == 0 && StoreIdle()) {
        spdlog::info("run: nothing pending or running: stopping");
        RequestStop(options_.config.pipeline.grace_seconds);
        break;
      }
      continue;
    }
    pause = std::chrono::milliseconds(0);
    for (storage::Lease& lease : *leases) {
      auto item = std::make_unique<Item>();
      item->flight = std::make_shared<InFlight>();
      item->flight->lease = std::move(lease);
      item->start_time = std::chrono::system_clock::now();
      item->deadline =
          Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                             std::max(0.001, config.video_deadline_seconds)));
      {
        std::lock_guard lock(mutex_);
        in_flight_[item->flight->lease.row_id] = item->flight;
      }
      claimed_.fetch_add(1);
      if (!fetch_queue_.Push(item)) {
        Forget(item->flight->lease.row_id);
        (void)store_->Release(item->flight->lease);
      }
    }
  }
  fetch_queue_.Close();
}

void Pipeline::FetchLoop(int index) {
  common::NameThisThread("fetch-" + std::to_string(index), 10 + index);
  Pin("fetch", binding_.fetch);
  while (std::unique_ptr<Item> item = fetch_queue_.Pop()) {
    if (Abandoning()) item->abandoned = true;
    if (!item->Skip()) {
      common::TraceVideoScope trace_video(item->flight->lease.row.video_id);
      common::TraceSpan span("fetch");
      common::Stopwatch watch;
      const int attempts = item->flight->lease.attempts;
      const int max_attempts = options_.config.pipeline.max_attempts;
      if (attempts > max_attempts) {
        // Attempts are counted at claim, so a video on which the daemon dies (a crash, the OOM
        // killer, a hang ended by the watchdog) comes back after every restart; this ends it.
        Finish(item.get(),
               Status(ErrorCode::kAttemptsExhausted,
                      "claimed " + std::to_string(attempts) + " times without finishing (over " +
                          "max_attempts " + std::to_string(max_attempts) +
                          "): the daemon stopped while processing it each time"),
               "claim");
      } else if (SecondsUntil(item->deadline) <= 0) {
        Finish(item.get(), Status(ErrorCode::kTimeout, "per-video deadline passed"), "fetch");
      } else {
        auto fetched = hooks_.reader->Fetch(RefForRow(item->flight->lease.row));
        if (!fetched.ok()) {
          Finish(item.get(), fetched.status(), "fetch");
        } else {
          item->local_path = fetched->local_path;
          item->source_tier = fetched->source_tier;
          item->tier_errors = fetched->tier_errors;
          item->pin = std::move(fetched->pin);
          span.AddArg("tier", item->source_tier);
        }
      }
      item->stage_ms["fetch"] = watch.ElapsedMillis();
    }
    if (!decode_queue_.Push(item)) break;
  }
  if (fetchers_left_.fetch_sub(1) == 1) decode_queue_.Close();
}

void Pipeline::DecodeLoop(int index) {
  common::NameThisThread("decode-" + std::to_string(index), 1000 + index);
  Pin("decode", binding_.decode);
  while (std::unique_ptr<Item> item = decode_queue_.Pop()) {
    if (Abandoning()) item->abandoned = true;
    const double remaining = SecondsUntil(item->deadline);
    if (!item->Skip() && remaining <= 0) {
      Finish(item.get(), Status(ErrorCode::kTimeout, "per-video deadline passed"), "decode");
    } else if (!item->Skip() && !decoded_slots_.Acquire()) {
      item->abandoned = true;  // the workers are gone: nothing will analyse it
    } else if (!item->Skip()) {
      item->holds_decoded_slot = true;
      common::TraceVideoScope trace_video(item->flight->lease.row.video_id);
      common::TraceSpan span("decode");
      item->decode_cpus = binding_.decode;
      models::FilterOptions options = options_.config.options;
      options.limits.decode_deadline_s = std::min(options.limits.decode_deadline_s, remaining);
      options.limits.open_deadline_s = std::min(options.limits.open_deadline_s, remaining);
      models::SampledVideo video = hooks_.sample ? hooks_.sample(item->local_path, options)
                                                 : models::SampleVideo(item->local_path, options);
      // Decoded: the cache may evict the file now, unless the encode stage reads it again.
      if (crop_output_ == nullptr) item->pin.reset();
      for (const auto& [stage, ms] : video.stage_ms) item->stage_ms[stage] = ms;
      span.AddArg("frames", static_cast<int64_t>(video.frames.size()));
      if (!video.status.ok()) {
        item->info = std::move(video.info);
        Finish(item.get(), video.status, "decode");
        ReleaseDecoded(item.get());  // no frames
      } else {
        item->video = std::move(video);
      }
    }
    if (!analyze_queue_.Push(item)) {
      ReleaseDecoded(item.get());
      break;
    }
  }
  if (decoders_left_.fetch_sub(1) == 1) analyze_queue_.Close();
}

void Pipeline::ReleaseDecoded(Item* item) {
  if (!item->holds_decoded_slot) return;
  item->holds_decoded_slot = false;
  decoded_slots_.Release();
}

void Pipeline::WorkLoop(int index) {
  common::NameThisThread("worker-" + std::to_string(index), 2000 + index);
  Pin("workers", binding_.workers);
  const auto borrow_timeout = std::chrono::duration<double>(
      std::max(0.001, options_.config.devices.borrow_timeout_seconds));
  while (std::unique_ptr<Item> item = analyze_queue_.Pop()) {
    if (Abandoning()) item->abandoned = true;
    if (!item->Skip() && SecondsUntil(item->deadline) <= 0) {
      Finish(item.get(), Status(ErrorCode::kTimeout, "per-video deadline passed"), "analyze");
    } else if (!item->Skip()) {
      common::TraceVideoScope trace_video(item->flight->lease.row.video_id);
      item->worker = index;
      auto lease = [&] {
        common::TraceSpan span("borrow");
        return pool_->Borrow(borrow_timeout);
      }();
      if (!lease.ok()) {
        Finish(item.get(), lease.status(), "analyze");
      } else {
        item->device_name = lease->device().name;
        common::TraceSpan span("analyze");
        span.AddArg("device", item->device_name);
        models::FilterReport report = hooks_.analyze
                                          ? hooks_.analyze(lease->get(), std::move(item->video))
                                          : (*lease)->Analyze(std::move(item->video));
        item->video = models::SampledVideo();
        common::ReleaseFreeMemory();  // the frames are gone: keep resident memory flat
        item->info = std::move(report.info);
        for (const auto& [stage, ms] : report.stage_ms) item->stage_ms[stage] = ms;
        if (!report.status.ok()) {
          Finish(item.get(), report.status, "analyze");
        } else if (SecondsUntil(item->deadline) <= 0) {
          Finish(item.get(), Status(ErrorCode::kTimeout, "per-video deadline passed"), "analyze");
        }
      }
    }
    // Analysed, or skipped, failed or timed out before: its frames are not needed any more.
    item->video = models::SampledVideo();
    ReleaseDecoded(item.get());
    if (crop_output_ != nullptr) {
      if (!encode_queue_.Push(item)) break;
      continue;
    }
    item->queued_for_write = Clock::now();
    if (!write_queue_.Push(item)) break;
  }
  if (workers_left_.fetch_sub(1) == 1) {
    decoded_slots_.Close();  // decode threads waiting for a slot: nobody will analyse any more
    (crop_output_ != nullptr ? encode_queue_ : write_queue_).Close();
  }
}

void Pipeline::EncodeLoop(int index) {
  common::NameThisThread("encode-" + std::to_string(index), 2500 + index);
  while (std::unique_ptr<Item> item = encode_queue_.Pop()) {
    if (Abandoning()) item->abandoned = true;
    const double remaining = SecondsUntil(item->deadline);
    if (!item->Skip() && remaining <= 0) {
      Finish(item.get(), Status(ErrorCode::kTimeout, "per-video deadline passed"), "encode");
    } else if (!item->Skip()) {
      common::TraceVideoScope trace_video(item->flight->lease.row.video_id);
      const storage::InputRow& row = item->flight->lease.row;
      // abandon_ cancels the encode once the grace of a stop is over.
      Status produced = crop_output_->Produce(row.video_id, row.oss_bucket, item->local_path,
                                              &item->info, &item->stage_ms, remaining, &abandon_);
      if (Abandoning()) {
        item->abandoned = true;  // released by the writer, not failed
      } else if (!produced.ok()) {
        Finish(item.get(), produced, produced.stage().empty() ? "encode" : "upload");
      }
    }
    item->pin.reset();  // encoded: the cache may evict the file now
    item->queued_for_write = Clock::now();
    if (!write_queue_.Push(item)) break;
  }
  if (encoders_left_.fetch_sub(1) == 1) write_queue_.Close();
}

std::string Pipeline::BuildRow(Item& item) {
  const storage::InputRow& input = item.flight->lease.row;
  InputRow row;
  row.video_id = input.video_id;
  row.oss_bucket = input.oss_bucket;
  row.video_path = input.video_path;
  row.video_tag = input.video_tag;
  row.info = ParseInfo(input.info_json);

  RowOutcome outcome;
  outcome.status = item.status;
  outcome.info = std::move(item.info);
  outcome.stage_ms = item.stage_ms;
  outcome.stage_ms["write"] =
      std::chrono::duration<double, std::milli>(Clock::now() - item.queued_for_write).count();
  outcome.start_time = item.start_time;
  outcome.end_time = std::chrono::system_clock::now();
  outcome.device_name =
      item.device_name.empty() ? options_.config.devices.list.front() : item.device_name;
  outcome.device_info = {{"kind", "cpu"},
                         {"backend", "opencv-dnn"},
                         {"hardware_threads", std::thread::hardware_concurrency()},
                         {"workers", options_.config.pipeline.workers},
                         {"instances", pool_->size()}};
  if (item.worker >= 0) outcome.device_info["worker"] = item.worker;
  if (item.worker >= 0 && !binding_.workers.empty()) outcome.device_info["cpus"] = binding_.workers;
  if (!item.decode_cpus.empty()) outcome.device_info["decode_cpus"] = item.decode_cpus;
  outcome.source_tier = item.source_tier;
  outcome.tier_errors = item.tier_errors;
  outcome.attempts = item.flight->lease.attempts;
  outcome.config_hash = config_hash_;
  AddStageMs(outcome.stage_ms);
  if (options_.stage_csv != nullptr) {
    StageRecord record;
    record.video_id = input.video_id;
    record.device = outcome.device_name;
    record.worker = item.worker;
    if (item.worker >= 0) record.cpus = binding_.workers;
    record.succeeded = outcome.status.ok();
    if (!record.succeeded) record.error_code = common::ErrorCodeName(outcome.status.code());
    record.stage_ms = outcome.stage_ms;
    options_.stage_csv->Append(record);
  }
  return BuildOutputRow(row, outcome).dump();
}

void Pipeline::WriteLoop() {
  common::NameThisThread("writer", 3000);
  const PipelineConfig& config = options_.config.pipeline;
  const auto interval = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(std::max(0.01, config.write_interval_seconds)));
  std::mt19937_64 random(std::random_device{}());
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::vector<storage::TableStore::Completion> batch;
  Clock::time_point first_pending;

  const auto flush = [&] {
    if (batch.empty()) return;
    common::TraceSpan span("write");
    span.AddArg("rows", static_cast<int64_t>(batch.size()));
    common::StatusOr<std::vector<bool>> written = store_->CompleteMany(batch);
    for (int attempt = 1; !written.ok() && attempt < 3; ++attempt) {
      spdlog::warn("run: writing {} results failed: {}", batch.size(), written.status().ToString());
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      written = store_->CompleteMany(batch);
    }
    if (!written.ok()) {
      // The rows stay running; their leases expire and they are retried.
      spdlog::error("run: dropping {} results: {}", batch.size(), written.status().ToString());
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (written.ok() && i < written->size() && (*written)[i]) {
        (batch[i].succeeded ? done_ : failed_).fetch_add(1);
        RecordVideoWritten(batch[i].succeeded, batch[i].error_code);
      } else if (written.ok()) {
        lost_leases_.fetch_add(1);
        spdlog::warn("run: lease_lost: result of {} dropped", batch[i].lease.row.video_id);
      }
      Forget(batch[i].lease.row_id);
    }
    batch.clear();
  };

  while (true) {
    const auto wait = batch.empty()
                          ? std::chrono::milliseconds(200)
                          : std::chrono::duration_cast<std::chrono::milliseconds>(std::max(
                                Clock::duration::zero(), first_pending + interval - Clock::now()));
    std::unique_ptr<Item> item = write_queue_.PopFor(wait);
    if (item == nullptr) {
      if (write_queue_.closed() && write_queue_.size() == 0) break;
      if (!batch.empty() && Clock::now() >= first_pending + interval) flush();
      continue;
    }
    const storage::Lease& lease = item->flight->lease;
    if (item->flight->lost.load()) {
      lost_leases_.fetch_add(1);
      spdlog::warn("run: lease_lost: result of {} dropped", lease.row.video_id);
      Forget(lease.row_id);
      continue;
    }
    if (item->abandoned) {
      auto released = store_->Release(lease);
      if (released.ok() && *released) released_.fetch_add(1);
      Forget(lease.row_id);
      continue;
    }
    if (!item->status.ok() && item->status.retryable() && lease.attempts < config.max_attempts) {
      const double delay = BackoffSeconds(lease.attempts, config.backoff_base_seconds,
                                          config.backoff_cap_seconds, uniform(random));
      auto retried = store_->Retry(lease, std::string(common::ErrorCodeName(item->status.code())),
                                   item->status.message(), delay);
      if (!retried.ok()) {
        spdlog::warn("run: retry of {} failed: {}", lease.row.video_id,
                     retried.status().ToString());
      } else if (*retried) {
        retried_.fetch_add(1);
      } else {
        lost_leases_.fetch_add(1);
      }
      Forget(lease.row_id);
      continue;
    }
    storage::TableStore::Completion completion;
    completion.lease = lease;
    completion.succeeded = item->status.ok();
    if (!completion.succeeded) {
      completion.error_code = std::string(common::ErrorCodeName(item->status.code()));
      completion.error_message = item->status.message();
    }
    completion.result_json = BuildRow(*item);
    if (batch.empty()) first_pending = Clock::now();
    batch.push_back(std::move(completion));
    std::size_t in_flight = 0;
    {
      std::lock_guard lock(mutex_);
      in_flight = in_flight_.size();
    }
    // Flush a full batch, or one that holds every claimed row (nothing else is coming soon).
    if (static_cast<int>(batch.size()) >= AtLeast1(config.write_batch) ||
        batch.size() >= in_flight) {
      flush();
    }
  }
  flush();
  {
    std::lock_guard lock(mutex_);
    writer_done_ = true;
  }
  wake_.notify_all();
}

void Pipeline::HeartbeatLoop() {
  common::NameThisThread("heartbeat", 3001);
  const double configured = options_.config.pipeline.heartbeat_seconds;
  const auto every = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
      configured > 0 ? configured : std::max(0.1, lease_seconds_ / 3.0)));
  while (true) {
    std::vector<std::shared_ptr<InFlight>> flights;
    {
      std::unique_lock lock(mutex_);
      if (wake_.wait_for(lock, every, [&] { return heartbeat_stop_; })) return;
      for (auto& [id, flight] : in_flight_) flights.push_back(flight);
    }
    std::optional<common::TraceSpan> span;
    if (!flights.empty()) {
      span.emplace("heartbeat");
      span->AddArg("leases", static_cast<int64_t>(flights.size()));
    }
    for (auto& flight : flights) {
      if (flight->lost.load()) continue;
      auto alive = store_->Heartbeat(flight->lease, lease_seconds_);
      if (!alive.ok()) {
        spdlog::warn("run: heartbeat failed: {}", alive.status().ToString());
      } else if (*alive) {
        heartbeats_.fetch_add(1);
      } else {
        std::lock_guard lock(mutex_);
        // A row written since the copy was taken is not lost, only finished.
        if (in_flight_.count(flight->lease.row_id) != 0) {
          flight->lost = true;
          spdlog::warn("run: lease_lost: {} was taken over", flight->lease.row.video_id);
        }
      }
    }
  }
}

}  // namespace vsieve::daemon
