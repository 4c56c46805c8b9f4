#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"

namespace vsieve::daemon {

// What one finished video contributes to the stage CSV.
struct StageRecord {
  std::string video_id;
  std::string device;     // device_name of the row
  int worker = -1;        // analysis worker (run) or job (probe) index; -1 when none ran
  std::vector<int> cpus;  // the worker's CPUs when --core-bind pinned it
  bool succeeded = false;
  std::string error_code;                  // "" when succeeded
  std::map<std::string, double> stage_ms;  // result_info.stage_ms before rounding
};

// Seed 004's per-step latency CSV (`vsieve run|probe --stage-csv FILE`), one line per result
// row, in the order rows are built. The first six columns keep the seed's names and order; a
// "step" is one video:
//
//   step                   1, 2, ... in the order rows were built
//   read_latency_ms        fetch + decode (fetch, container open, decoding and scaling the
//                          sampled frames to the analysis size)
//   prep_latency_ms        regions (abnormal-region detection and the safe crop: what the heads'
//                          input is cut from)
//   exec_latency_ms        heads (the classifier heads on the cropped frames)
//   total_step_latency_ms  read + prep + exec
//   loss                   always empty (vsieve does not train)
//
// then video_id, device, worker, cpus, succeed, error_code and the raw stage_ms values
// fetch_ms, decode_ms, regions_ms, heads_ms, write_ms (a stage the video did not reach is
// empty; write_ms is how long the finished video waited for the writer). Milliseconds have
// three decimals. Fields are quoted as RFC 4180 requires.
//
// Thread-safety: Append() is safe from any thread (one short lock per line). Errors: Open()
// returns kInvalidArgument when the file cannot be created; a write error is kept for Close().
class StageCsvWriter {
 public:
  static common::StatusOr<std::unique_ptr<StageCsvWriter>> Open(const std::string& path);
  ~StageCsvWriter();  // Close(), ignoring its status
  StageCsvWriter(const StageCsvWriter&) = delete;
  StageCsvWriter& operator=(const StageCsvWriter&) = delete;

  void Append(const StageRecord& record);

  // Flushes and closes; later Append() calls are ignored. Idempotent.
  common::Status Close();

  // The header line and the line of one record (without the newline). Pure.
  static std::string Header();
  static std::string Line(int64_t step, const StageRecord& record);

 private:
  StageCsvWriter(std::string path, std::FILE* file) : path_(std::move(path)), file_(file) {}

  const std::string path_;
  std::mutex mutex_;
  std::FILE* file_;       // guarded by mutex_; nullptr once closed
  int64_t steps_ = 0;     // guarded by mutex_
  common::Status error_;  // guarded by mutex_
};

}  // namespace vsieve::daemon
