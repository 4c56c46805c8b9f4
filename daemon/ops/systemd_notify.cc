#include "daemon/ops/systemd_notify.h"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <algorithm>
#include <cstdlib>

namespace vsieve::daemon {

SystemdNotifier SystemdNotifier::FromEnvironment() {
  SystemdNotifier notifier;
  const char* socket = std::getenv("NOTIFY_SOCKET");
  notifier.enabled_ = socket != nullptr && socket[0] != '\0';
  uint64_t usec = 0;
  // 1 only when WATCHDOG_USEC is set and WATCHDOG_PID is unset or names this process.
  if (notifier.enabled_ && sd_watchdog_enabled(0, &usec) > 0) {
    notifier.watchdog_ = std::chrono::microseconds(usec);
  }
  return notifier;
}

bool SystemdNotifier::Send(const std::string& state) const {
  if (!enabled_) return false;
  const int sent = sd_notify(0, state.c_str());
  if (sent < 0) spdlog::debug("sd_notify failed: {}", sent);
  return sent > 0;
}

ServiceNotifier::ServiceNotifier(Options options, Sender send)
    : options_(options), send_(std::move(send)) {}

std::string ServiceNotifier::ProgressText(const PipelineSnapshot& snapshot, double videos_per_s) {
  return fmt::format("processed {} (done {}, failed {}, retried {}), in flight {}, {:.2f} videos/s",
                     snapshot.done + snapshot.failed, snapshot.done, snapshot.failed,
                     snapshot.retried, snapshot.in_flight, videos_per_s);
}

std::chrono::duration<double> ServiceNotifier::StuckAfter(double video_deadline_seconds) {
  return std::chrono::duration<double>(2.0 * std::max(0.0, video_deadline_seconds) + 60.0);
}

void ServiceNotifier::SendLocked(const std::string& state) {
  if (send_) send_(state);
}

double ServiceNotifier::RateLocked(Clock::time_point now, int64_t processed) {
  rate_samples_.emplace_back(now, processed);
  while (rate_samples_.size() > 2 && now - rate_samples_[1].first >= std::chrono::seconds(30)) {
    rate_samples_.pop_front();
  }
  const auto& [since, base] = rate_samples_.front();
  const double seconds = std::chrono::duration<double>(now - since).count();
  return seconds > 0 ? static_cast<double>(processed - base) / seconds : 0.0;
}

void ServiceNotifier::Tick(const PipelineSnapshot& snapshot, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  const int64_t processed = snapshot.done + snapshot.failed;
  const int64_t finished = processed + snapshot.retried + snapshot.released + snapshot.lost_leases;
  if (finished != last_finished_) {
    last_finished_ = finished;
    last_finish_change_ = now;
  }
  const double rate = RateLocked(now, processed);
  if (!ready_) {
    ready_ = true;
    last_finish_change_ = now;
    next_status_ = now + std::chrono::duration_cast<Clock::duration>(options_.status_every);
    next_ping_ = now;
    last_status_ = "ready: " + ProgressText(snapshot, 0.0);
    SendLocked("READY=1\nSTATUS=" + last_status_);
  }
  if (snapshot.stopping && !stopping_) {
    stopping_ = true;
    last_status_ = "stopping: " + ProgressText(snapshot, rate);
    SendLocked("STOPPING=1\nSTATUS=" + last_status_);
    next_status_ = now + std::chrono::duration_cast<Clock::duration>(options_.status_every);
  }

  const bool stuck_now = snapshot.in_flight > 0 && !snapshot.stopping &&
                         now - last_finish_change_ >= options_.stuck_after;
  if (stuck_now != stuck_) {
    stuck_ = stuck_now;
    if (stuck_) {
      spdlog::error(
          "run: pipeline stuck: no video finished for {:.0f} s with {} in flight; withholding "
          "the systemd watchdog ping so the service is restarted",
          std::chrono::duration<double>(now - last_finish_change_).count(), snapshot.in_flight);
    } else {
      spdlog::info("run: pipeline moving again; watchdog pings resumed");
    }
    next_status_ = now;  // say so at once
  }
  if (now >= next_status_) {
    const std::string text = (stuck_      ? std::string("stuck (watchdog withheld): ")
                              : stopping_ ? std::string("stopping: ")
                                          : std::string()) +
                             ProgressText(snapshot, rate);
    if (text != last_status_) {
      last_status_ = text;
      SendLocked("STATUS=" + text);
    }
    next_status_ = now + std::chrono::duration_cast<Clock::duration>(options_.status_every);
  }
  if (options_.watchdog.count() > 0 && !stuck_ && now >= next_ping_) {
    SendLocked("WATCHDOG=1");
    next_ping_ = now + std::chrono::duration_cast<Clock::duration>(options_.watchdog / 2);
  }
}

void ServiceNotifier::Stopping(const std::string& status) {
  std::lock_guard lock(mutex_);
  if (stopping_) return;
  stopping_ = true;
  last_status_ = status;
  SendLocked("STOPPING=1\nSTATUS=" + status);
}

void ServiceNotifier::Reloading() {
  std::lock_guard lock(mutex_);
  if (ready_ && !stopping_) SendLocked("RELOADING=1");
}

void ServiceNotifier::Reloaded(const std::string& status) {
  std::lock_guard lock(mutex_);
  if (ready_ && !stopping_) SendLocked("READY=1\nSTATUS=" + status);
}

bool ServiceNotifier::ready_sent() const {
  std::lock_guard lock(mutex_);
  return ready_;
}

bool ServiceNotifier::stopping_sent() const {
  std::lock_guard lock(mutex_);
  return stopping_;
}

bool ServiceNotifier::stuck() const {
  std::lock_guard lock(mutex_);
  return stuck_;
}

}  // namespace vsieve::daemon
