#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "common/stopwatch.h"

namespace vsieve::daemon {

// "annotate: 120/500 frames, 24.0 fps, ETA 15s" (without a known total: "annotate: 120 frames,
// 24.0 fps"). Pure.
std::string FormatProgress(const std::string& label, int64_t done, int64_t total, double elapsed_s);

// A one-line progress display for the frames and annotate commands: rewritten in place on
// stderr at most a few times a second while stderr is a terminal, silent otherwise (logs and
// pipes stay clean). Not thread-safe: one thread updates it (others count into an atomic).
class ProgressMeter {
 public:
  // `total` 0 = unknown. Shown only when stderr is a terminal.
  ProgressMeter(std::string label, int64_t total);
  // The same, shown when `enabled` (tests).
  ProgressMeter(std::string label, int64_t total, bool enabled, std::FILE* out);
  ~ProgressMeter() { Finish(); }
  ProgressMeter(const ProgressMeter&) = delete;
  ProgressMeter& operator=(const ProgressMeter&) = delete;

  // Shows `done` when the last line is old enough (always on the first call).
  void Update(int64_t done);
  // Shows the final count and ends the line; later calls do nothing.
  void Finish();
  bool enabled() const { return enabled_; }

 private:
  std::string label_;
  int64_t total_;
  bool enabled_;
  std::FILE* out_;
  common::Stopwatch watch_;
  double last_shown_s_ = -1;
  int64_t done_ = 0;
  bool finished_ = false;
};

}  // namespace vsieve::daemon
