#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/metrics.h"
#include "storage/table_store.h"

namespace vsieve::daemon {

class Pipeline;

// The daemon's metrics in common::MetricsRegistry::Global() (served by GET /metrics):
//
//   vsieve_videos_processed_total{outcome="done|failed",code}   counter (code "OK" when done)
//   vsieve_stage_duration_seconds{stage}                        histogram: fetch, decode,
//                                                               regions, heads, write
//   vsieve_queue_depth_items{queue}, vsieve_queue_capacity_items{queue}     gauges
//   vsieve_videos_in_flight                                     gauge: claimed, not yet written
//   vsieve_model_instances{device,model}, vsieve_model_instances_busy{device,model}   gauges
//   vsieve_model_borrows_total, vsieve_model_borrow_wait_seconds_total,
//   vsieve_model_borrow_timeouts_total  {device,model}          counters
//   vsieve_lease_heartbeats_total, vsieve_lease_lost_total, vsieve_retries_total   counters
//   vsieve_rows{state}                                          gauge over the daemon's tables
//   process_resident_memory_bytes, process_virtual_memory_bytes, process_cpu_seconds_total,
//   process_open_fds, process_max_fds, process_start_time_seconds        (from /proc/self)
//
// The model label is "video_filter": each pooled instance is one whole VideoFilter.

// The stages with a duration histogram, in pipeline order.
const std::vector<std::string>& MetricStages();

// Counts one result row written to the store: done, or failed with `error_code`. Safe from any
// thread; never blocks beyond the registry's short lock.
void RecordVideoWritten(bool succeeded, std::string_view error_code);

// Observes a row's stage times (milliseconds, as in result_info.stage_ms) in the stage histogram;
// keys outside MetricStages() are ignored. Safe from any thread.
void RecordStageTimes(const std::map<std::string, double>& stage_ms);

// Registers the process_* collectors on `registry` (idempotent per registry). They read /proc
// at scrape time; safe from any thread.
void RegisterProcessMetrics(common::MetricsRegistry* registry);

// Collectors over a running pipeline and its store: queue depths and capacities, in-flight
// videos, model instances, heartbeats, lost leases, retries, and rows by state. Rows by state
// are read with TableStore::Stats() at most once per `rows_cache_seconds`, so a scrape does not
// query the database each time.
//
// Ownership: `registry`, `pipeline` and `store` are borrowed; the collectors are removed and
// detached by the destructor, after which a scrape already running reports nothing for them (it
// never touches the pipeline or store again). Thread-safety: the collectors run on the scraping
// thread; construction and destruction from one thread.
class PipelineCollectors {
 public:
  PipelineCollectors(common::MetricsRegistry* registry, const Pipeline* pipeline,
                     storage::TableStore* store, std::vector<std::string> tables,
                     double rows_cache_seconds = 5.0);
  ~PipelineCollectors();
  PipelineCollectors(const PipelineCollectors&) = delete;
  PipelineCollectors& operator=(const PipelineCollectors&) = delete;

 private:
  struct State;
  common::MetricsRegistry* registry_;
  std::shared_ptr<State> state_;
  std::vector<int> ids_;
};

}  // namespace vsieve::daemon
