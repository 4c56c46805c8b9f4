#include "daemon/pipeline/daemon_metrics.h"

#include <dirent.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

#include "daemon/pipeline/pipeline.h"

namespace vsieve::daemon {
namespace {

using common::Labels;
using common::Sample;
using Clock = std::chrono::steady_clock;

constexpr const char* kModel = "video_filter";

// Fields of /proc/self/stat after the command name (which may hold spaces): field 3 (state) is
// element 0.
std::vector<std::string> ProcStatFields() {
  std::ifstream in("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  std::vector<std::string> fields;
  if (close == std::string::npos) return fields;
  std::istringstream rest(text.substr(close + 1));
  std::string field;
  while (rest >> field) fields.push_back(field);
  return fields;
}

double ProcStatField(const std::vector<std::string>& fields, int number) {
  const size_t index = static_cast<size_t>(number - 3);
  if (index >= fields.size()) return 0;
  return std::strtod(fields[index].c_str(), nullptr);
}

// Resident and virtual sizes in bytes from /proc/self/statm.
std::pair<double, double> MemoryBytes() {
  std::ifstream in("/proc/self/statm");
  double pages_virtual = 0;
  double pages_resident = 0;
  in >> pages_virtual >> pages_resident;
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  return {pages_resident * page, pages_virtual * page};
}

double OpenFds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  double count = 0;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  return count - 1;  // the descriptor opendir() holds
}

double MaxFds() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 0;
  return static_cast<double>(limit.rlim_cur);
}

// Seconds since the epoch at which this process started: boot time plus field 22.
double StartTimeSeconds() {
  std::ifstream in("/proc/stat");
  std::string key;
  double boot = 0;
  while (in >> key) {
    if (key == "btime") {
      in >> boot;
      break;
    }
  }
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  return boot + ProcStatField(ProcStatFields(), 22) / ticks;
}

std::vector<Sample> One(double value) { return {Sample{{}, value}}; }

}  // namespace

const std::vector<std::string>& MetricStages() {
  static const std::vector<std::string> kStages = {"fetch",  "decode", "regions", "heads",
                                                   "encode", "upload", "write"};
  return kStages;
}

void RecordVideoWritten(bool succeeded, std::string_view error_code) {
  std::string code = succeeded ? "OK" : std::string(error_code);
  if (code.empty()) code = "UNKNOWN";
  common::MetricsRegistry::Global()
      .GetCounter("vsieve_videos_processed_total",
                  "Result rows written, by outcome (done or failed) and error code (OK when "
                  "done).",
                  {{"outcome", succeeded ? "done" : "failed"}, {"code", code}})
      .Inc();
}

void RecordStageTimes(const std::map<std::string, double>& stage_ms) {
  for (const std::string& stage : MetricStages()) {
    const auto it = stage_ms.find(stage);
    if (it == stage_ms.end()) continue;
    common::MetricsRegistry::Global()
        .GetHistogram("vsieve_stage_duration_seconds",
                      "Time a video spent in each pipeline stage (write: waiting for the writer).",
                      common::DurationBuckets(), {{"stage", stage}})
        .Observe(std::max(0.0, it->second) / 1000.0);
  }
}

void RegisterProcessMetrics(common::MetricsRegistry* registry) {
  static std::mutex mutex;
  static std::set<common::MetricsRegistry*> done;
  {
    std::lock_guard lock(mutex);
    if (!done.insert(registry).second) return;
  }
  const double start = StartTimeSeconds();
  registry->AddCollector("process_resident_memory_bytes", "Resident memory size in bytes.", "gauge",
                         [] { return One(MemoryBytes().first); });
  registry->AddCollector("process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge",
                         [] { return One(MemoryBytes().second); });
  registry->AddCollector(
      "process_cpu_seconds_total", "User and system CPU time in seconds.", "counter", [] {
        const auto fields = ProcStatFields();
        const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
        return One((ProcStatField(fields, 14) + ProcStatField(fields, 15)) / ticks);
      });
  registry->AddCollector("process_open_fds", "Open file descriptors.", "gauge",
                         [] { return One(OpenFds()); });
  registry->AddCollector("process_max_fds", "Limit on open file descriptors.", "gauge",
                         [] { return One(MaxFds()); });
  registry->AddCollector("process_start_time_seconds",
                         "Start time of the process since the Unix epoch in seconds.", "gauge",
                         [start] { return One(start); });
}

// What the collectors read. `pipeline` and `store` are cleared by the destructor under `mutex`,
// so a scrape that copied a collector before its removal finds them gone.
struct PipelineCollectors::State {
  std::mutex mutex;
  const Pipeline* pipeline = nullptr;    // guarded by mutex
  storage::TableStore* store = nullptr;  // guarded by mutex
  std::vector<std::string> tables;
  double rows_cache_seconds = 5;
  Clock::time_point rows_read_at;       // guarded by mutex
  bool rows_valid = false;              // guarded by mutex
  std::map<std::string, int64_t> rows;  // guarded by mutex

  // Runs `read` on a snapshot of the pipeline, or returns nothing once detached.
  template <typename F>
  std::vector<Sample> FromSnapshot(F read) {
    std::lock_guard lock(mutex);
    if (pipeline == nullptr) return {};
    return read(pipeline->Snapshot());
  }

  std::vector<Sample> Rows() {
    std::lock_guard lock(mutex);
    if (store == nullptr) return {};
    const auto now = Clock::now();
    if (!rows_valid || now - rows_read_at >= std::chrono::duration<double>(rows_cache_seconds)) {
      std::map<std::string, int64_t> counts = {
          {"pending", 0}, {"running", 0}, {"done", 0}, {"failed", 0}};
      bool ok = true;
      const std::vector<std::string> which = tables.empty() ? std::vector<std::string>{""} : tables;
      for (const std::string& table : which) {
        auto stats = store->Stats(table);
        if (!stats.ok()) {
          spdlog::warn("metrics: store stats failed: {}", stats.status().ToString());
          ok = false;
          break;
        }
        for (const auto& [state, count] : stats->by_state) counts[state] += count;
      }
      if (ok) {
        rows = std::move(counts);
        rows_valid = true;
        rows_read_at = now;
      }
    }
    std::vector<Sample> samples;
    for (const auto& [state, count] : rows) {
      samples.push_back({{{"state", state}}, static_cast<double>(count)});
    }
    return samples;
  }
};

PipelineCollectors::PipelineCollectors(common::MetricsRegistry* registry, const Pipeline* pipeline,
                                       storage::TableStore* store, std::vector<std::string> tables,
                                       double rows_cache_seconds)
    : registry_(registry), state_(std::make_shared<State>()) {
  state_->pipeline = pipeline;
  state_->store = store;
  state_->tables = std::move(tables);
  state_->rows_cache_seconds = rows_cache_seconds;
  std::shared_ptr<State> state = state_;

  const auto per_queue = [state](bool capacity) {
    return [state, capacity] {
      return state->FromSnapshot([capacity](const PipelineSnapshot& s) {
        std::vector<Sample> samples;
        for (const auto& [queue, n] : capacity ? s.queue_capacity : s.queue_depth) {
          samples.push_back({{{"queue", queue}}, static_cast<double>(n)});
        }
        return samples;
      });
    };
  };
  ids_.push_back(registry_->AddCollector("vsieve_queue_depth_items",
                                         "Items waiting in each bounded queue between stages.",
                                         "gauge", per_queue(false)));
  ids_.push_back(registry_->AddCollector("vsieve_queue_capacity_items",
                                         "Capacity of each bounded queue between stages.", "gauge",
                                         per_queue(true)));

  const auto scalar = [state](auto field) {
    return [state, field] {
      return state->FromSnapshot(
          [field](const PipelineSnapshot& s) { return One(static_cast<double>(field(s))); });
    };
  };
  ids_.push_back(registry_->AddCollector(
      "vsieve_videos_in_flight", "Videos claimed and not yet written, retried or released.",
      "gauge", scalar([](const PipelineSnapshot& s) { return s.in_flight; })));
  ids_.push_back(registry_->AddCollector(
      "vsieve_lease_heartbeats_total", "Lease heartbeats that extended a lease.", "counter",
      scalar([](const PipelineSnapshot& s) { return s.heartbeats; })));
  ids_.push_back(registry_->AddCollector(
      "vsieve_lease_lost_total",
      "Results dropped because their lease had been taken over (expired and reclaimed).", "counter",
      scalar([](const PipelineSnapshot& s) { return s.lost_leases; })));
  ids_.push_back(registry_->AddCollector(
      "vsieve_retries_total", "Rows put back to pending after a retryable failure.", "counter",
      scalar([](const PipelineSnapshot& s) { return s.retried; })));

  const auto per_device = [state](auto field) {
    return [state, field] {
      return state->FromSnapshot([field](const PipelineSnapshot& s) {
        std::vector<Sample> samples;
        for (const models::DeviceCounters& device : s.devices) {
          samples.push_back(
              {{{"device", device.device}, {"model", kModel}}, static_cast<double>(field(device))});
        }
        return samples;
      });
    };
  };
  using D = models::DeviceCounters;
  ids_.push_back(registry_->AddCollector("vsieve_model_instances",
                                         "Exclusive model instances per device.", "gauge",
                                         per_device([](const D& d) { return d.instances; })));
  ids_.push_back(registry_->AddCollector("vsieve_model_instances_busy",
                                         "Model instances lent to a worker now.", "gauge",
                                         per_device([](const D& d) { return d.busy; })));
  ids_.push_back(registry_->AddCollector("vsieve_model_borrows_total",
                                         "Model instances borrowed by workers.", "counter",
                                         per_device([](const D& d) { return d.borrows; })));
  ids_.push_back(registry_->AddCollector(
      "vsieve_model_borrow_wait_seconds_total",
      "Time workers waited for a free model instance, in seconds.", "counter",
      per_device([](const D& d) { return d.wait_seconds_total; })));
  ids_.push_back(registry_->AddCollector("vsieve_model_borrow_timeouts_total",
                                         "Borrows that gave up waiting for a free model instance.",
                                         "counter",
                                         per_device([](const D& d) { return d.timeouts; })));

  ids_.push_back(registry_->AddCollector(
      "vsieve_rows", "Rows of the daemon's tables by state (read at most every few seconds).",
      "gauge", [state] { return state->Rows(); }));
}

PipelineCollectors::~PipelineCollectors() {
  for (int id : ids_) registry_->RemoveCollector(id);
  std::lock_guard lock(state_->mutex);
  state_->pipeline = nullptr;
  state_->store = nullptr;
}

}  // namespace vsieve::daemon
