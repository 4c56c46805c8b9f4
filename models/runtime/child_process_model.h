#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "models/runtime/item_model.h"
#include "models/runtime/model_protocol.h"

namespace vsieve::models {

// How to run one model in a child process.
struct ChildProcessOptions {
  // The vsieve binary to exec with the hidden `model-worker` subcommand; the daemon passes
  // "/proc/self/exe", tests the built binary.
  std::string binary = "/proc/self/exe";
  ItemModelSpec spec;                  // sent as BUILD to every child started
  std::string label;                   // the "model" label of the metrics; empty = spec.kind
  double call_timeout_seconds = 30;    // one PREDICT, send to reply; then SIGKILL
  double build_timeout_seconds = 300;  // one BUILD (model load and warm-up)
  // Restart delay after the n-th failure in a row: min(cap, base * 2^(n-1)), no jitter. A call
  // during the delay fails fast (kModelFailed, retryable); a successful call resets n.
  double restart_backoff_base_seconds = 1;
  double restart_backoff_cap_seconds = 60;
  double exit_grace_seconds = 2;  // on destruction: time to exit after EXIT before SIGKILL
};

// An ItemModel whose model runs in a child process (seed 003: one process per device; here one
// per instance), so a model that crashes or hangs kills only its child. The child is
// `binary model-worker --fd-in 3 --fd-out 3 --parent-pid P` on one end of a socketpair, with
// stdin from /dev/null, stdout sent to stderr, every other descriptor closed, default signal
// dispositions, an empty signal mask and its own process group (a terminal's Ctrl-C goes to the
// daemon, which stops the children itself); the child exits when its parent dies.
//
// Failures: a child that dies (EOF, EPIPE), sends a bad frame or exits makes the call fail with
// kModelFailed saying how ("model child exited on signal 6 (SIGABRT)", "model child exited with
// status 3"); one that does not answer within call_timeout_seconds is SIGKILLed ("timed out after
// 30 s: killed"). Such failures are not retryable (the items may be the cause). The dead child is
// always reaped at once. The next call starts a new child, after the backoff, and re-sends
// BUILD; calls during the backoff, and a restart whose BUILD fails, are kModelFailed and
// retryable. An ERROR reply (the model refused the items) is returned as the child sent it and
// leaves the child running.
//
// Metrics (common::MetricsRegistry::Global(), labels {model, device}):
// vsieve_model_child_restarts_total, vsieve_model_child_crashes_total,
// vsieve_model_child_timeouts_total and the gauge vsieve_model_children (children alive).
//
// Ownership: owns the child and its socket. Destruction sends EXIT, waits up to
// exit_grace_seconds, then SIGKILLs, and reaps: no zombie is left. Thread-safety: none; one
// caller at a time (the instance pool lends it), including destruction. Blocking: Start() and
// RunItems() block for the child's work, bounded by the timeouts.
class ChildProcessModel : public ItemModel {
 public:
  // Starts the child and builds the model. Errors: kModelFailed when the child cannot start or
  // dies; the child's own error (e.g. kInvalidArgument "unknown model kind 'x'") when BUILD
  // fails; kInvalidArgument for bad options. Every error names the model and device.
  static common::StatusOr<std::unique_ptr<ChildProcessModel>> Start(ChildProcessOptions options);

  ~ChildProcessModel() override;
  ChildProcessModel(const ChildProcessModel&) = delete;
  ChildProcessModel& operator=(const ChildProcessModel&) = delete;

  // As reported by the last BUILD_FINISH.
  int batch_capacity() const override { return capacity_; }
  Warmup warmup() const override { return warmup_; }

  // Sends the items as one PREDICT (the child splits them into passes) and returns the reply.
  common::StatusOr<std::vector<std::vector<cv::Mat>>> RunItems(
      const std::vector<cv::Mat>& items) override;

  // The running child's pid, or -1 between a failure and the restart.
  pid_t pid() const { return pid_; }

  // This instance's counts (the metrics sum them over instances).
  struct Stats {
    int64_t starts = 0;    // children started, the first included
    int64_t restarts = 0;  // children started after a failure
    int64_t crashes = 0;   // children that died, exited or sent a bad frame
    int64_t timeouts = 0;  // children killed for not answering in time
  };
  const Stats& stats() const { return stats_; }

 private:
  using Clock = std::chrono::steady_clock;

  explicit ChildProcessModel(ChildProcessOptions options);

  // Spawns a child and sends BUILD. On failure the child is gone.
  common::Status Launch();
  common::Status Spawn();
  common::Status Build();
  // Kills (when `kill` or it does not exit within `grace`) and reaps the child; returns how it
  // ended ("exited on signal 6 (SIGABRT)").
  std::string Reap(bool kill, std::chrono::duration<double> grace);
  // Turns a failure of the child during `during` ("BUILD", "PREDICT") into the call's error
  // (kModelFailed), after killing (timeout, bad frame) and reaping it, and counts it.
  common::Status ChildFailed(const common::Status& io, ChannelError error,
                             const std::string& during, double timeout_seconds);
  void ArmBackoff();
  std::string Where() const;  // "model scale on cpu:0"

  ChildProcessOptions options_;
  pid_t pid_ = -1;
  int fd_ = -1;  // the parent's end of the socketpair, non-blocking, close-on-exec
  int capacity_ = 1;
  Warmup warmup_;
  int consecutive_failures_ = 0;
  Clock::time_point next_start_{};
  Stats stats_;
  common::Counter* restarts_metric_;
  common::Counter* crashes_metric_;
  common::Counter* timeouts_metric_;
  common::Gauge* children_metric_;
};

// A human name for how a child ended, from a waitpid() status: "exited with status 3",
// "exited on signal 6 (SIGABRT)". Pure.
std::string DescribeWaitStatus(int status);

}  // namespace vsieve::models
