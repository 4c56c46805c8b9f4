#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <utility>

#include "daemon/pipeline/pipeline.h"

namespace vsieve::daemon {

// sd_notify(3) for this process: the service manager's notification socket (NOTIFY_SOCKET) and
// watchdog (WATCHDOG_USEC, and WATCHDOG_PID when set, which must name this process). Every call
// is a no-op returning false when NOTIFY_SOCKET is unset, so a daemon started by hand or by a
// test behaves the same. Copyable; Send() is safe from any thread and never blocks for long
// (one datagram).
class SystemdNotifier {
 public:
  // Reads the environment now (sd_watchdog_enabled).
  static SystemdNotifier FromEnvironment();

  bool enabled() const { return enabled_; }
  // The watchdog interval systemd expects pings within; 0 = no watchdog for this process.
  std::chrono::microseconds watchdog() const { return watchdog_; }

  // Sends newline-separated assignments, e.g. "READY=1\nSTATUS=...". Returns true when sent.
  bool Send(const std::string& state) const;

 private:
  bool enabled_ = false;
  std::chrono::microseconds watchdog_{0};
};

// What `vsieve run` tells its service manager, driven by the pipeline's ticks:
//
//   READY=1 + STATUS   on the first tick: store open, models loaded, leases reclaimed, before
//                      any stage starts (so before any row is claimed or written)
//   STATUS=...         every status_every: "processed N (done D, failed F, retried R), in
//                      flight K, X.XX videos/s" (rate over the last 30 s)
//   WATCHDOG=1         every watchdog / 2, from the pipeline's own loop, and only while the
//                      pipeline is not stuck: videos in flight and none finished (written,
//                      retried or released) for stuck_after. A stuck daemon then stops pinging
//                      and systemd restarts it (its leases come back at once: ReclaimOwner).
//   STOPPING=1 + STATUS on the first tick that sees the pipeline stopping (SIGTERM drain,
//                      --until-idle), or Stopping(), whichever comes first; sent once
//   RELOADING=1, READY=1 around a SIGHUP log reopen (only once READY=1 was sent)
//
// `send` receives each message (SystemdNotifier::Send in the daemon, a recorder in tests).
// Thread-safety: every member is safe from any thread (one mutex); Tick() is meant for one
// thread (Pipeline::Run's). Never blocks beyond `send`.
class ServiceNotifier {
 public:
  using Clock = std::chrono::steady_clock;
  using Sender = std::function<bool(const std::string&)>;

  struct Options {
    std::chrono::microseconds watchdog{0};  // 0 = never send WATCHDOG=1
    std::chrono::duration<double> status_every{2.0};
    std::chrono::duration<double> stuck_after{1260.0};  // see StuckAfter()
  };

  ServiceNotifier(Options options, Sender send);

  void Tick(const PipelineSnapshot& snapshot, Clock::time_point now);
  void Stopping(const std::string& status);
  void Reloading();
  void Reloaded(const std::string& status);

  bool ready_sent() const;
  bool stopping_sent() const;
  bool stuck() const;

  // "processed N (done D, failed F, retried R), in flight K, X.XX videos/s".
  static std::string ProgressText(const PipelineSnapshot& snapshot, double videos_per_s);

  // How long a pipeline with videos in flight may finish none before it counts as stuck: twice
  // the per-video deadline (one video may take that long; a worker may wait for another's
  // instance) plus a minute.
  static std::chrono::duration<double> StuckAfter(double video_deadline_seconds);

 private:
  void SendLocked(const std::string& state);
  double RateLocked(Clock::time_point now, int64_t processed);

  const Options options_;
  const Sender send_;
  mutable std::mutex mutex_;
  bool ready_ = false;                                              // guarded by mutex_
  bool stopping_ = false;                                           // guarded by mutex_
  bool stuck_ = false;                                              // guarded by mutex_
  Clock::time_point next_status_;                                   // guarded by mutex_
  Clock::time_point next_ping_;                                     // guarded by mutex_
  int64_t last_finished_ = -1;                                      // guarded by mutex_
  Clock::time_point last_finish_change_;                            // guarded by mutex_
  std::deque<std::pair<Clock::time_point, int64_t>> rate_samples_;  // guarded by mutex_
  std::string last_status_;                                         // guarded by mutex_
};

}  // namespace vsieve::daemon
