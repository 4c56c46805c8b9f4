#include "models/runtime/child_process_model.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <thread>

extern char** environ;

namespace vsieve::models {
namespace {

using common::ErrorCode;
using common::Status;
using common::StatusOr;

FrameChannel::Deadline DeadlineIn(double seconds) {
  return FrameChannel::Clock::now() + std::chrono::duration_cast<FrameChannel::Clock::duration>(
                                          std::chrono::duration<double>(seconds));
}

std::string SecondsText(double seconds) {
  char text[32];
  std::snprintf(text, sizeof(text), "%g", seconds);
  return text;
}

// posix_spawn's attribute and file-action objects, destroyed on scope exit.
struct SpawnSetup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

}  // namespace

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* abbrev = sigabbrev_np(sig);
    return "exited on signal " + std::to_string(sig) +
           (abbrev != nullptr ? std::string(" (SIG") + abbrev + ")" : std::string());
  }
  return "ended with wait status " + std::to_string(status);
}

ChildProcessModel::ChildProcessModel(ChildProcessOptions options) : options_(std::move(options)) {
  if (options_.label.empty()) options_.label = options_.spec.kind;
  auto& registry = common::MetricsRegistry::Global();
  const common::Labels labels = {{"model", options_.label}, {"device", options_.spec.device}};
  restarts_metric_ = &registry.GetCounter(
      "vsieve_model_child_restarts_total",
      "Model child processes started again after a crash, a timeout or a failed start", labels);
  crashes_metric_ = &registry.GetCounter(
      "vsieve_model_child_crashes_total",
      "Model child processes that died, exited or sent a bad frame during a call", labels);
  timeouts_metric_ = &registry.GetCounter(
      "vsieve_model_child_timeouts_total",
      "Model child processes killed for not answering within the call timeout", labels);
  children_metric_ =
      &registry.GetGauge("vsieve_model_children", "Model child processes running", labels);
}

StatusOr<std::unique_ptr<ChildProcessModel>> ChildProcessModel::Start(ChildProcessOptions options) {
  const auto bad = [](const std::string& why) {
    return Status(ErrorCode::kInvalidArgument, "model child options: " + why);
  };
  if (options.binary.empty()) return bad("no worker binary");
  if (!(options.call_timeout_seconds > 0)) return bad("call timeout must be positive");
  if (!(options.build_timeout_seconds > 0)) return bad("build timeout must be positive");
  if (!(options.restart_backoff_base_seconds >= 0) ||
      !(options.restart_backoff_cap_seconds >= options.restart_backoff_base_seconds)) {
    return bad("restart backoff needs 0 <= base <= cap");
  }
  if (options.spec.max_batch < 1) return bad("max_batch must be at least 1");
  std::unique_ptr<ChildProcessModel> model(new ChildProcessModel(std::move(options)));
  VSIEVE_RETURN_IF_ERROR(model->Launch());
  return model;
}

ChildProcessModel::~ChildProcessModel() {
  if (pid_ <= 0) return;
  FrameChannel channel(fd_, fd_);
  const auto grace = std::max(0.0, options_.exit_grace_seconds);
  const bool sent = channel.Send(MessageType::kExit, "", DeadlineIn(grace)).ok();
  Reap(!sent, std::chrono::duration<double>(grace));
}

std::string ChildProcessModel::Where() const {
  return "model " + options_.label + " on " + options_.spec.device;
}

Status ChildProcessModel::Spawn() {
  int ends[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) {
    return Status(ErrorCode::kModelFailed, std::string("socketpair: ") + std::strerror(errno));
  }
  const int parent_end = ends[0];
  const int child_end = ends[1];
  // The child's end becomes descriptor 3 (dup2 clears close-on-exec); everything above it is
  // closed, so the child inherits nothing else whatever flags the daemon's descriptors carry.
  const int target = child_end == 3 ? 4 : 3;
  SpawnSetup setup;
  posix_spawn_file_actions_addopen(&setup.actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&setup.actions, 2, 1);
  posix_spawn_file_actions_adddup2(&setup.actions, child_end, target);
  posix_spawn_file_actions_addclosefrom_np(&setup.actions, target + 1);
  sigset_t none;
  sigemptyset(&none);
  sigset_t all;
  sigfillset(&all);
  posix_spawnattr_setsigmask(&setup.attr, &none);
  posix_spawnattr_setsigdefault(&setup.attr, &all);
  posix_spawnattr_setpgroup(&setup.attr, 0);
  posix_spawnattr_setflags(&setup.attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  const std::string fd_text = std::to_string(target);
  const std::string parent_text = std::to_string(getpid());
  std::vector<std::string> args = {options_.binary, "model-worker", "--fd-in",      fd_text,
                                   "--fd-out",      fd_text,        "--parent-pid", parent_text};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int error =
      posix_spawn(&pid, options_.binary.c_str(), &setup.actions, &setup.attr, argv.data(), environ);
  close(child_end);
  if (error != 0) {
    close(parent_end);
    return Status(ErrorCode::kModelFailed,
                  "cannot start model child " + options_.binary + ": " + std::strerror(error));
  }
  fcntl(parent_end, F_SETFL, fcntl(parent_end, F_GETFL) | O_NONBLOCK);
  pid_ = pid;
  fd_ = parent_end;
  ++stats_.starts;
  children_metric_->Add(1);
  return Status::Ok();
}

Status ChildProcessModel::Build() {
  FrameChannel channel(fd_, fd_);
  const double timeout = options_.build_timeout_seconds;
  const auto deadline = DeadlineIn(timeout);
  Status sent =
      channel.Send(MessageType::kBuild, ItemModelSpecToJson(options_.spec).dump(), deadline);
  if (!sent.ok()) return ChildFailed(sent, channel.last_error(), "BUILD", timeout);
  auto reply = channel.Receive(deadline);
  if (!reply.ok()) return ChildFailed(reply.status(), channel.last_error(), "BUILD", timeout);
  if (reply->type == MessageType::kError) {
    Status error = DecodeError(reply->payload);
    Reap(false, std::chrono::duration<double>(options_.exit_grace_seconds));
    return error;
  }
  const nlohmann::json finish = nlohmann::json::parse(reply->payload, nullptr, false);
  if (reply->type != MessageType::kBuildFinish || !finish.is_object() ||
      !finish.contains("batch_capacity") || !finish["batch_capacity"].is_number_integer() ||
      finish["batch_capacity"].get<int>() < 1) {
    return ChildFailed(
        Status(ErrorCode::kModelFailed, "a bad " + MessageTypeName(reply->type) + " answer"),
        ChannelError::kBadFrame, "BUILD", timeout);
  }
  capacity_ = finish["batch_capacity"].get<int>();
  warmup_ = Warmup();
  if (const auto it = finish.find("output_shapes"); it != finish.end() && it->is_array()) {
    for (const auto& shape : *it) {
      std::vector<int> dims;
      if (shape.is_array()) {
        for (const auto& dim : shape) dims.push_back(dim.is_number_integer() ? dim.get<int>() : 0);
      }
      warmup_.output_shapes.push_back(std::move(dims));
    }
  }
  if (const auto it = finish.find("first_pass_ms"); it != finish.end() && it->is_number()) {
    warmup_.first_pass_ms = it->get<double>();
  }
  return Status::Ok();
}

Status ChildProcessModel::Launch() {
  VSIEVE_RETURN_IF_ERROR(Spawn().WithContext(Where()));
  return Build().WithContext(Where());
}

std::string ChildProcessModel::Reap(bool kill, std::chrono::duration<double> grace) {
  if (pid_ <= 0) return "was not running";
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
  int status = 0;
  pid_t done = 0;
  if (!kill) {
    // A child that closed its end is exiting: give it the grace to finish.
    const auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(grace);
    for (;;) {
      done = waitpid(pid_, &status, WNOHANG);
      if (done != 0 || Clock::now() >= until) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  bool killed = false;
  if (done == 0) {
    ::kill(pid_, SIGKILL);
    killed = true;
    do {
      done = waitpid(pid_, &status, 0);
    } while (done < 0 && errno == EINTR);
  }
  pid_ = -1;
  children_metric_->Add(-1);
  if (done < 0)
    return "ended (its status is unavailable: " + std::string(std::strerror(errno)) + ")";
  if (killed) return "was killed";
  return DescribeWaitStatus(status);
}

void ChildProcessModel::ArmBackoff() {
  ++consecutive_failures_;
  const double delay = std::min(options_.restart_backoff_cap_seconds,
                                options_.restart_backoff_base_seconds *
                                    std::pow(2.0, std::min(consecutive_failures_ - 1, 60)));
  next_start_ = Clock::now() +
                std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(delay));
}

Status ChildProcessModel::ChildFailed(const Status& io, ChannelError error,
                                      const std::string& during, double timeout_seconds) {
  std::string message;
  if (error == ChannelError::kTimeout) {
    Reap(true, std::chrono::seconds(0));
    ++stats_.timeouts;
    timeouts_metric_->Inc();
    message = "timed out after " + SecondsText(timeout_seconds) + " s: killed";
    if (during != "PREDICT") message = during + " " + message;
  } else if (error == ChannelError::kBadFrame) {
    Reap(true, std::chrono::seconds(0));
    ++stats_.crashes;
    crashes_metric_->Inc();
    message = "model child sent " + io.message() + " during " + during + ": killed";
  } else {
    // EOF, EPIPE or an I/O error: the child is dying, or gone.
    const std::string how = Reap(false, std::chrono::seconds(1));
    ++stats_.crashes;
    crashes_metric_->Inc();
    message = "model child " + how + " during " + during;
    if (error == ChannelError::kIo) message += " (" + io.message() + ")";
  }
  return Status(ErrorCode::kModelFailed, message);
}

StatusOr<std::vector<std::vector<cv::Mat>>> ChildProcessModel::RunItems(
    const std::vector<cv::Mat>& items) {
  if (items.empty()) return std::vector<std::vector<cv::Mat>>();
  VSIEVE_ASSIGN_OR_RETURN(const std::string payload, EncodeItems(items));
  if (pid_ <= 0) {
    const auto now = Clock::now();
    if (now < next_start_) {
      char wait[32];
      std::snprintf(wait, sizeof(wait), "%.1f",
                    std::chrono::duration<double>(next_start_ - now).count());
      return Status(ErrorCode::kModelFailed,
                    Where() + ": model child restarting after " +
                        std::to_string(consecutive_failures_) + " failure(s); next start in " +
                        wait + " s",
                    true);
    }
    ++stats_.restarts;
    restarts_metric_->Inc();
    Status launched = Launch();
    if (!launched.ok()) {
      ArmBackoff();
      spdlog::warn("{}: restarting the model child failed: {}", Where(), launched.message());
      return Status(ErrorCode::kModelFailed, "restarting the model child: " + launched.message(),
                    true);
    }
    spdlog::info("{}: model child restarted (pid {}, restart {})", Where(), pid_, stats_.restarts);
  }
  const double timeout = options_.call_timeout_seconds;
  const auto failed = [&](const Status& io, ChannelError error) {
    Status status = ChildFailed(io, error, "PREDICT", timeout).WithContext(Where());
    ArmBackoff();
    spdlog::warn("{}; the next call starts a new child", status.message());
    return status;
  };
  FrameChannel channel(fd_, fd_);
  const auto deadline = DeadlineIn(timeout);
  Status sent = channel.Send(MessageType::kPredict, payload, deadline);
  if (!sent.ok()) return failed(sent, channel.last_error());
  auto reply = channel.Receive(deadline);
  if (!reply.ok()) return failed(reply.status(), channel.last_error());
  if (reply->type == MessageType::kError) {
    consecutive_failures_ = 0;  // the child is fine; the model refused the items
    return DecodeError(reply->payload).WithContext(Where());
  }
  if (reply->type != MessageType::kReply) {
    return failed(Status(ErrorCode::kModelFailed, "a " + MessageTypeName(reply->type) + " frame"),
                  ChannelError::kBadFrame);
  }
  auto outputs = DecodeOutputs(reply->payload);
  if (outputs.ok() && outputs->size() != items.size()) {
    outputs = Status(ErrorCode::kModelFailed, "a REPLY with " + std::to_string(outputs->size()) +
                                                  " outputs for " + std::to_string(items.size()) +
                                                  " items");
  }
  if (!outputs.ok()) return failed(outputs.status(), ChannelError::kBadFrame);
  consecutive_failures_ = 0;
  return outputs;
}

}  // namespace vsieve::models
