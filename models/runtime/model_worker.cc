#include "models/runtime/model_worker.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "models/runtime/item_model.h"
#include "models/runtime/model_protocol.h"

namespace vsieve::models {
namespace {

using common::ErrorCode;
using common::Status;

// Answers one request; returns false when the reply could not be sent.
bool Answer(FrameChannel* channel, const common::StatusOr<std::string>& reply, MessageType type) {
  const Status sent = reply.ok() ? channel->Send(type, *reply)
                                 : channel->Send(MessageType::kError, EncodeError(reply.status()));
  if (!sent.ok()) spdlog::error("model worker: sending a reply: {}", sent.message());
  return sent.ok();
}

common::StatusOr<std::string> Build(const std::string& payload, std::unique_ptr<ItemModel>* model) {
  const nlohmann::json json = nlohmann::json::parse(payload, nullptr, false);
  if (json.is_discarded()) {
    return Status(ErrorCode::kInvalidArgument, "BUILD payload is not JSON");
  }
  VSIEVE_ASSIGN_OR_RETURN(const ItemModelSpec spec, ItemModelSpecFromJson(json));
  VSIEVE_ASSIGN_OR_RETURN(*model, BuildItemModel(spec));
  const ItemModel::Warmup warmup = (*model)->warmup();
  return nlohmann::json{{"batch_capacity", (*model)->batch_capacity()},
                        {"output_shapes", warmup.output_shapes},
                        {"first_pass_ms", warmup.first_pass_ms}}
      .dump();
}

common::StatusOr<std::string> Predict(const std::string& payload, ItemModel* model) {
  if (model == nullptr) return Status(ErrorCode::kModelFailed, "PREDICT before a successful BUILD");
  VSIEVE_ASSIGN_OR_RETURN(const std::vector<cv::Mat> items, DecodeItems(payload));
  VSIEVE_ASSIGN_OR_RETURN(const auto outputs, model->RunItems(items));
  if (outputs.size() != items.size()) {
    return Status(ErrorCode::kModelFailed, "the model gave " + std::to_string(outputs.size()) +
                                               " outputs for " + std::to_string(items.size()) +
                                               " items");
  }
  return EncodeOutputs(outputs);
}

// Exits the process when it is re-parented (its parent died). Checks twice a second.
class ParentWatchdog {
 public:
  explicit ParentWatchdog(pid_t parent)
      : thread_([this, parent] {
          std::unique_lock lock(mutex_);
          while (!stop_) {
            if (getppid() != parent) _exit(0);
            wake_.wait_for(lock, std::chrono::milliseconds(500));
          }
        }) {}
  ~ParentWatchdog() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  ParentWatchdog(const ParentWatchdog&) = delete;
  ParentWatchdog& operator=(const ParentWatchdog&) = delete;

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace

int RunModelWorker(int fd_in, int fd_out, int parent_pid) {
  if (fd_in < 0 || fd_out < 0 || fcntl(fd_in, F_GETFD) < 0 || fcntl(fd_out, F_GETFD) < 0) {
    spdlog::error("model worker: --fd-in/--fd-out are not open descriptors");
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  if (parent_pid > 0 && getppid() != parent_pid) return 0;  // the parent is already gone
  // The parent going away closes the channel, which ends a child waiting for a request; a child
  // busy in (or hung by) its model is ended by this watchdog instead. (PR_SET_PDEATHSIG would
  // fire when the parent *thread* that spawned the child exits, which in the daemon is any
  // worker thread.)
  ParentWatchdog watchdog(parent_pid > 0 ? parent_pid : getppid());
  FrameChannel channel(fd_in, fd_out);
  std::unique_ptr<ItemModel> model;
  for (;;) {
    auto message = channel.Receive();
    if (!message.ok()) {
      if (channel.last_error() == ChannelError::kEof) return 0;
      spdlog::error("model worker: {}", message.status().message());
      return 3;
    }
    switch (message->type) {
      case MessageType::kBuild:
        model.reset();
        if (!Answer(&channel, Build(message->payload, &model), MessageType::kBuildFinish)) {
          return 3;
        }
        break;
      case MessageType::kPredict:
        if (!Answer(&channel, Predict(message->payload, model.get()), MessageType::kReply)) {
          return 3;
        }
        break;
      case MessageType::kExit:
        return 0;
      default:
        spdlog::error("model worker: unexpected {} message", MessageTypeName(message->type));
        return 3;
    }
  }
}

}  // namespace vsieve::models
