#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "daemon/config/core_bind.h"
#include "daemon/config/filter_config.h"
#include "daemon/pipeline/crop_output.h"
#include "daemon/pipeline/stage_csv.h"
#include "models/filter/video_filter.h"
#include "models/runtime/instance_pool.h"
#include "queue/bounded_queue.h"
#include "queue/slot_gate.h"
#include "storage/reader.h"
#include "storage/table_store.h"

namespace vsieve::daemon {

struct PipelineSnapshot;

// What one pipeline needs besides its store.
struct PipelineOptions {
  FilterConfig config;      // filter options, [store], [pipeline], [devices]
  std::string owner;        // lease owner id (see DaemonOwnerId in run_command.h)
  bool until_idle = false;  // stop once nothing is pending or running (backoff rows count)
  // Profiling: one seed-004 CSV line per result row, from the writer thread. Borrowed; must
  // outlive Run(); null = none.
  StageCsvWriter* stage_csv = nullptr;
  // Called on Run()'s thread (never with a pipeline lock held): once when the store is usable
  // and the models are loaded, before any stage starts; then every ~250 ms from Run()'s own
  // loop (which stops if the pipeline hangs); and once after the stages have joined. The
  // daemon's systemd notifications (READY, STATUS, WATCHDOG, STOPPING) hang off it.
  std::function<void(const PipelineSnapshot&)> on_tick;
};

// Test seams. Every member is optional; an empty one uses the real stage.
struct PipelineHooks {
  // Replaces models::SampleVideo (called on decode threads, concurrently).
  std::function<models::SampledVideo(const std::string& path, const models::FilterOptions&)> sample;
  // Replaces VideoFilter::Analyze (called on worker threads with the borrowed instance).
  std::function<models::FilterReport(models::VideoFilter*, models::SampledVideo)> analyze;
  // Replaces the fetch stage's LocalReader. Must be safe from several threads.
  std::shared_ptr<storage::Reader> reader;
};

// A point-in-time view of the pipeline for logs, `status` and metrics. A copy.
struct PipelineSnapshot {
  int64_t claimed = 0;
  int64_t done = 0;                            // rows written as succeeded
  int64_t failed = 0;                          // rows written as failed
  int64_t retried = 0;                         // rows put back with a retry delay
  int64_t released = 0;                        // rows given back unfinished at shutdown
  int64_t lost_leases = 0;                     // results dropped because the lease was lost
  int64_t in_flight = 0;                       // claimed and not yet written, retried or released
  std::map<std::string, int64_t> queue_depth;  // "fetch", "decode", "analyze", ["encode"], "write"
  std::map<std::string, double> stage_ms_total;  // "fetch", "decode", "regions", "heads",
                                                 // ["encode", "upload"], "write"
  std::vector<models::DeviceCounters> devices;
  double elapsed_s = 0;
  bool stopping = false;

  // For metrics (daemon/pipeline/daemon_metrics.h).
  std::map<std::string, int64_t> queue_capacity;  // the queues of queue_depth, their capacities
  int64_t heartbeats = 0;                         // heartbeats that extended a lease
};

// The daemon's bounded producer/consumer pipeline (DESIGN.md, "Data flow"):
//
//   claimer --> fetch pool --> [queue] --> decode threads --> [queue] --> workers (each borrows
//   an exclusive VideoFilter from an InstancePool) --> [queue] --> writer (CompleteMany batches)
//
// and, with [output] enabled, an encode stage between the workers and the writer: a bounded
// queue and [pipeline] encode_threads threads that write and store each row's cropped video
// (CropOutput), so encoding never holds a worker or a model instance. The fetched file stays
// pinned in the cache until its video is encoded. A failed upload is retryable like a fetch
// (back to pending with backoff, then an UPLOAD_FAILED row); the row commits only after the
// object is stored, so a kill -9 mid-encode or mid-upload leaves the row running (its lease
// expires or the owner reclaims it at restart) and no partial object. After the grace of a
// stop, a running encode is cancelled and its lease released.
//
// plus a heartbeat thread that extends every in-flight lease each heartbeat_seconds, independent
// of analysis work; a lease found lost marks its video, whose result is then dropped. Failures
// of a video are rows (failed + error code), except retryable ones (FETCH_FAILED, ...), which go
// back to pending with a full-jitter backoff until max_attempts. Stages are shut down by closing
// their input queue (close and drain) and joined by Run(); nothing is detached.
//
// Each result row is BuildOutputRow() with the lease's attempts, start (claim) and end (row
// built) times, the borrowed instance's device, the config hash and stage_ms for fetch, decode,
// regions, heads, encode and upload (with [output]) and write (the time the finished video
// waited for the writer). A video past
// video_deadline_seconds (fetch to result; the decode deadline is cut to what is left) is a
// TIMEOUT row. Every written row is also counted in the process's metrics, with its stage
// times (daemon/pipeline/daemon_metrics.h).
//
// Profiling: each thread is named (claimer, fetch-N, decode-N, worker-N, encode-N, writer,
// heartbeat)
// and, when a common::TraceRecorder is installed, records spans: claim, fetch, decode, borrow
// (waiting for an instance), analyze (with the filter's regions and heads inside), encode and
// upload, write (one
// per batch) and heartbeat. With [pipeline] core_bind the fetch, decode and worker pools are
// pinned to their CPUs (core_bind.h) and each row's device_info carries "cpus" (the analysis
// worker's) and "decode_cpus"; device_info.worker is the analysis worker's index.
//
// Ownership: the store is borrowed and must outlive the pipeline. Thread-safety: Run() is called
// once, from one thread; RequestStop() and Snapshot() are safe from any thread at any time.
class Pipeline {
 public:
  // Loads `instances` filters per configured device. Errors: kInvalidArgument (bad device or
  // settings, a core_bind CPU this process may not use, an [output] destination that cannot be
  // set up), kModelFailed (a model does not load).
  static common::StatusOr<std::unique_ptr<Pipeline>> Create(PipelineOptions options,
                                                            storage::TableStore* store,
                                                            PipelineHooks hooks = {});
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Reclaims this owner's leftover leases, starts every stage and blocks until the pipeline has
  // stopped (RequestStop(), or idle with until_idle) and every thread is joined. Unfinished
  // leases are released at the end (attempt not charged). Returns kInternal when the store
  // cannot be used at start; per-video errors are rows, never a return value.
  common::Status Run();

  // Stops claiming (within a second) and gives in-flight videos `grace_seconds` to finish before
  // their leases are released. A later call can only shorten the grace. Never blocks long;
  // safe from any thread (not from an async signal handler).
  void RequestStop(double grace_seconds);

  // Counters, queue depths and stage times now.
  PipelineSnapshot Snapshot() const;

  // Full-jitter backoff: a uniform draw in [0, min(cap, base * 2^attempt)] seconds.
  static double BackoffSeconds(int attempt, double base, double cap, double uniform01);

 private:
  struct Item;
  struct InFlight;

  Pipeline(PipelineOptions options, storage::TableStore* store, PipelineHooks hooks);

  void ClaimLoop();
  void FetchLoop(int index);
  void DecodeLoop(int index);
  void WorkLoop(int index);
  void ReleaseDecoded(Item* item);  // gives back the item's decoded_slots_ slot, if it holds one
  void EncodeLoop(int index);
  void WriteLoop();
  void HeartbeatLoop();

  bool StopRequested() const;
  bool Abandoning() const { return abandon_.load(); }
  bool StoreIdle();
  void Finish(Item* item, common::Status status, const char* stage);
  void Forget(int64_t row_id);
  void AddStageMs(const std::map<std::string, double>& stage_ms);
  std::string BuildRow(Item& item);
  void Pin(const char* pool, const std::vector<int>& cpus);
  void Tick();

  PipelineOptions options_;
  storage::TableStore* store_;
  PipelineHooks hooks_;
  std::string config_hash_;
  int lease_seconds_;
  std::unique_ptr<models::InstancePool<models::VideoFilter>> pool_;
  CoreBinding binding_;

  queue::BoundedQueue<Item> fetch_queue_;
  queue::BoundedQueue<Item> decode_queue_;
  queue::BoundedQueue<Item> analyze_queue_;
  queue::BoundedQueue<Item> encode_queue_;  // used only with crop_output_
  queue::BoundedQueue<Item> write_queue_;
  // Decoded videos (their frames) in existence at once: one per worker and one ready. Without it
  // a full analyze queue and every decode thread each held one more, twice the memory.
  queue::SlotGate decoded_slots_;
  std::unique_ptr<CropOutput> crop_output_;  // null: [output] is off
  std::atomic<int> fetchers_left_{0};
  std::atomic<int> decoders_left_{0};
  std::atomic<int> workers_left_{0};
  std::atomic<int> encoders_left_{0};

  mutable std::mutex mutex_;
  std::condition_variable wake_;  // stop requests, writer done, heartbeat/claimer sleeps
  bool stop_requested_ = false;   // guarded by mutex_
  std::chrono::steady_clock::time_point grace_deadline_;    // guarded by mutex_
  bool writer_done_ = false;                                // guarded by mutex_
  bool heartbeat_stop_ = false;                             // guarded by mutex_
  std::map<int64_t, std::shared_ptr<InFlight>> in_flight_;  // guarded by mutex_
  std::map<std::string, double> stage_ms_total_;            // guarded by mutex_
  std::atomic<bool> abandon_{false};  // grace over: remaining items are released, not processed

  std::atomic<int64_t> claimed_{0}, done_{0}, failed_{0}, retried_{0}, released_{0},
      lost_leases_{0};
  std::atomic<int64_t> heartbeats_{0};
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace vsieve::daemon
