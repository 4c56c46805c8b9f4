#include "daemon/commands/run_command.h"

#include <pthread.h>
#include <signal.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/dist_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <opencv2/core/utility.hpp>
#include <random>
#include <thread>

#include "common/trace.h"
#include "daemon/ops/admin_server.h"
#include "daemon/ops/systemd_notify.h"
#include "daemon/pipeline/daemon_metrics.h"
#include "daemon/pipeline/pipeline.h"
#include "daemon/pipeline/reader_factory.h"
#include "daemon/pipeline/stage_csv.h"
#include "storage/table_store.h"

namespace vsieve::daemon {
namespace {

using common::ErrorCode;
using common::Status;

std::string HostName() {
  std::array<char, 256> name{};
  if (::gethostname(name.data(), name.size() - 1) != 0) return "localhost";
  return name.data();
}

// The database file of a SQLite store URL, or "" for other stores.
std::string SqlitePath(const std::string& url) {
  constexpr std::string_view kScheme = "sqlite://";
  if (url.rfind(kScheme, 0) == 0) return url.substr(kScheme.size());
  if (url.find("://") == std::string::npos) return url;
  return "";
}

std::string RandomId() {
  std::random_device device;
  std::uniform_int_distribution<int> digit(0, 15);
  std::string id;
  for (int i = 0; i < 12; ++i) id += "0123456789abcdef"[digit(device)];
  return id;
}

// Logs to `file` through a dist sink whose file sink SIGHUP replaces (logrotate's reopen).
class ReopenableLog {
 public:
  Status Open(const std::string& file, spdlog::level::level_enum level) {
    file_ = file;
    sink_ = std::make_shared<spdlog::sinks::dist_sink_mt>();
    if (Status status = Reopen(); !status.ok()) return status;
    auto logger = std::make_shared<spdlog::logger>("vsieve", sink_);
    logger->set_level(level);
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l [%t] %v");
    logger->flush_on(spdlog::level::info);  // an operator tails it; the volume is low
    spdlog::set_default_logger(logger);
    return Status::Ok();
  }

  // Safe from any thread: the dist sink swaps its children under its own lock.
  Status Reopen() {
    try {
      sink_->set_sinks({std::make_shared<spdlog::sinks::basic_file_sink_mt>(file_)});
    } catch (const spdlog::spdlog_ex& e) {
      return Status(ErrorCode::kInvalidArgument, std::string("cannot open log: ") + e.what());
    }
    return Status::Ok();
  }

  bool active() const { return sink_ != nullptr; }

 private:
  std::string file_;
  std::shared_ptr<spdlog::sinks::dist_sink_mt> sink_;
};

}  // namespace

common::StatusOr<std::string> DaemonOwnerId(const std::string& store_url,
                                            const std::string& owner_flag) {
  if (!owner_flag.empty()) return HostName() + "-" + owner_flag;
  const std::string db = SqlitePath(store_url);
  const std::string state = db.empty() ? std::string("vsieve.owner") : db + ".owner";
  {
    std::ifstream in(state);
    std::string id;
    if (in && std::getline(in, id) && !id.empty()) return HostName() + "-" + id;
  }
  const std::string id = RandomId();
  const std::string temp = state + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(temp, std::ios::trunc);
    out << id << "\n";
    if (!out.flush()) {
      return Status(ErrorCode::kInternal, "cannot write owner state file " + temp);
    }
  }
  std::error_code ec;
  std::filesystem::rename(temp, state, ec);
  if (ec) return Status(ErrorCode::kInternal, "cannot write " + state + ": " + ec.message());
  // Two daemons starting at once keep whichever id won the rename.
  std::ifstream in(state);
  std::string stored;
  if (in && std::getline(in, stored) && !stored.empty()) return HostName() + "-" + stored;
  return HostName() + "-" + id;
}

int RunDaemon(const RunOptions& run, const FilterConfig& config) {
  // Block the signals before any thread starts, so only the sigwait thread receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  ReopenableLog log;
  if (!config.pipeline.log_file.empty()) {
    if (Status status = log.Open(config.pipeline.log_file, spdlog::get_level()); !status.ok()) {
      spdlog::error("{}", status.message());
      return 2;
    }
  }

  std::unique_ptr<common::TraceRecorder> trace;
  if (!run.trace_path.empty()) {
    auto opened = common::TraceRecorder::Open(run.trace_path, "vsieve run");
    if (!opened.ok()) {
      spdlog::error("{}", opened.status().message());
      return 2;
    }
    trace = std::move(opened).value();
  }
  std::unique_ptr<StageCsvWriter> stage_csv;
  if (!run.stage_csv_path.empty()) {
    auto opened = StageCsvWriter::Open(run.stage_csv_path);
    if (!opened.ok()) {
      spdlog::error("{}", opened.status().message());
      return 2;
    }
    stage_csv = std::move(opened).value();
  }

  const SystemdNotifier systemd = SystemdNotifier::FromEnvironment();
  ServiceNotifier::Options notify_options;
  notify_options.watchdog = systemd.watchdog();
  notify_options.stuck_after = ServiceNotifier::StuckAfter(config.pipeline.video_deadline_seconds);
  ServiceNotifier service(notify_options,
                          [systemd](const std::string& state) { return systemd.Send(state); });
  if (systemd.enabled()) {
    spdlog::info("run: systemd notification socket set; watchdog {}",
                 systemd.watchdog().count() > 0
                     ? fmt::format("every {:.1f} s", systemd.watchdog().count() / 1e6)
                     : std::string("off"));
  }

  auto store = storage::TableStore::Open(config.store.url);
  if (!store.ok()) {
    spdlog::error("cannot open store {}: {}", storage::RedactStoreUrl(config.store.url),
                  store.status().ToString());
    return 2;
  }
  auto owner = DaemonOwnerId(config.store.url, run.owner_id);
  if (!owner.ok()) {
    spdlog::error("{}", owner.status().ToString());
    return 2;
  }
  // The admin API answers /healthz at once and /readyz 503 until the pipeline is built.
  auto admin = StartConfiguredAdmin(config, store->get());
  if (!admin.ok()) {
    spdlog::error("{}", admin.status().ToString());
    return 2;
  }
  RegisterProcessMetrics(&common::MetricsRegistry::Global());
  auto reader = MakeReader(config);
  if (!reader.ok()) {
    spdlog::error("cannot set up the fetch tiers: {}", reader.status().ToString());
    return 2;
  }
  // As in probe: with a worker per core, OpenCV's own pool only adds contention.
  if (config.pipeline.workers >=
      static_cast<int>(std::max(1U, std::thread::hardware_concurrency()))) {
    cv::setNumThreads(1);
  }
  PipelineOptions options;
  options.config = config;
  options.owner = *owner;
  options.until_idle = run.until_idle;
  options.stage_csv = stage_csv.get();
  if (systemd.enabled()) {
    options.on_tick = [&service](const PipelineSnapshot& snapshot) {
      service.Tick(snapshot, std::chrono::steady_clock::now());
    };
  }
  PipelineHooks hooks;
  hooks.reader = std::move(reader).value();
  auto pipeline = Pipeline::Create(std::move(options), store->get(), std::move(hooks));
  if (!pipeline.ok()) {
    spdlog::error("cannot start the pipeline: {}", pipeline.status().ToString());
    return 2;
  }
  spdlog::info("run: owner {}, store {}, {} workers, {} instances", *owner,
               storage::RedactStoreUrl(config.store.url), config.pipeline.workers,
               config.devices.instances);
  PipelineCollectors collectors(&common::MetricsRegistry::Global(), pipeline->get(), store->get(),
                                config.pipeline.tables);
  if (*admin != nullptr) (*admin)->SetReadiness(Readiness::kReady);

  std::atomic<bool> finished{false};
  std::thread signal_thread([&] {
    int stops = 0;
    const timespec poll{0, 200'000'000};
    while (!finished.load()) {
      const int signal = sigtimedwait(&signals, nullptr, &poll);
      if (signal == SIGHUP) {
        service.Reloading();
        if (log.active()) {
          if (Status status = log.Reopen(); !status.ok()) spdlog::error("{}", status.message());
        }
        spdlog::info("run: SIGHUP: log reopened");
        service.Reloaded("log reopened; " +
                         ServiceNotifier::ProgressText((*pipeline)->Snapshot(), 0.0));
      } else if (signal == SIGTERM || signal == SIGINT) {
        ++stops;
        const double grace = stops == 1 ? config.pipeline.grace_seconds : 0.0;
        spdlog::info("run: {} received: stopping, grace {:.1f} s",
                     signal == SIGTERM ? "SIGTERM" : "SIGINT", grace);
        if (*admin != nullptr) (*admin)->SetReadiness(Readiness::kDraining);
        (*pipeline)->RequestStop(grace);
        if (systemd.enabled()) {
          service.Stopping(fmt::format("stopping: draining {} in flight, grace {:.0f} s",
                                       (*pipeline)->Snapshot().in_flight, grace));
        }
      }
    }
  });

  common::TraceRecorder::Install(trace.get());
  if (trace != nullptr) trace->NameThread("main", -1);
  const Status status = (*pipeline)->Run();
  common::TraceRecorder::Install(nullptr);
  if (trace != nullptr) {
    const int64_t events = trace->events();
    const int64_t dropped = trace->dropped();
    if (Status closed = trace->Close(); !closed.ok()) {
      spdlog::error("run: {}", closed.message());
    } else {
      spdlog::info("run: trace written to {} ({} events, {} dropped)", run.trace_path, events,
                   dropped);
    }
  }
  if (stage_csv != nullptr) {
    if (Status closed = stage_csv->Close(); !closed.ok())
      spdlog::error("run: {}", closed.message());
  }
  finished = true;
  signal_thread.join();
  if (*admin != nullptr) {
    (*admin)->SetReadiness(Readiness::kDraining);
    (*admin)->Stop();
  }
  spdlog::default_logger()->flush();
  if (!status.ok()) {
    spdlog::error("run: {}", status.ToString());
    return 2;
  }
  return 0;
}

}  // namespace vsieve::daemon
