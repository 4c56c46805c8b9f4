#include "models/model_worker.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <csignal>
#include <memory>
#include <nlohmann/json.hpp>

#include "models/item_model.h"
#include "models/model_protocol.h"

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
  return nlohmann::json{{"batch_capacity", (*model)->batch_capacity()}}.dump();
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

}  // namespace

int RunModelWorker(int fd_in, int fd_out, int parent_pid) {
  if (fd_in < 0 || fd_out < 0 || fcntl(fd_in, F_GETFD) < 0 || fcntl(fd_out, F_GETFD) < 0) {
    spdlog::error("model worker: --fd-in/--fd-out are not open descriptors");
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (parent_pid > 0 && getppid() != parent_pid) return 0;  // the parent died before prctl
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
