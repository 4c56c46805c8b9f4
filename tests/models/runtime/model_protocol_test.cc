#include "models/runtime/model_protocol.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "models/runtime/item_model.h"

namespace vsieve::models {
namespace {

using common::ErrorCode;
using namespace std::chrono_literals;

// A connected socketpair, both ends non-blocking, closed on destruction.
struct SocketPair {
  int a = -1;
  int b = -1;
  SocketPair() {
    int ends[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, ends), 0);
    a = ends[0];
    b = ends[1];
  }
  ~SocketPair() {
    if (a >= 0) close(a);
    if (b >= 0) close(b);
  }
};

FrameChannel::Deadline Soon() { return FrameChannel::Clock::now() + 5s; }

TEST(ModelProtocolTest, ItemsAndOutputsRoundTrip) {
  const int dims[] = {3, 2, 5};
  cv::Mat cube(3, dims, CV_32F);
  for (size_t i = 0; i < cube.total(); ++i) cube.ptr<float>()[i] = static_cast<float>(i) * 0.5f;
  const std::vector<cv::Mat> items = {cube, cv::Mat(1, 7, CV_32F, cv::Scalar(2.0f)), cv::Mat()};
  auto payload = EncodeItems(items);
  ASSERT_TRUE(payload.ok());
  auto decoded = DecodeItems(*payload);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ASSERT_EQ(decoded->size(), 3u);
  EXPECT_EQ((*decoded)[0].dims, 3);
  EXPECT_EQ((*decoded)[0].size[2], 5);
  EXPECT_EQ(std::memcmp((*decoded)[0].data, cube.data, cube.total() * sizeof(float)), 0);
  EXPECT_EQ((*decoded)[1].cols, 7);
  EXPECT_TRUE((*decoded)[2].empty());

  auto outputs = EncodeOutputs({{cube, cube}, {}});
  ASSERT_TRUE(outputs.ok());
  auto back = DecodeOutputs(*outputs);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[0].size(), 2u);
  EXPECT_TRUE((*back)[1].empty());
}

TEST(ModelProtocolTest, BadPayloadsAreErrorsNotCrashes) {
  EXPECT_EQ(EncodeItems({cv::Mat(2, 2, CV_8UC3)}).status().code(), ErrorCode::kInvalidArgument);
  auto payload = EncodeItems({cv::Mat(4, 4, CV_32F, cv::Scalar(1))});
  ASSERT_TRUE(payload.ok());
  for (size_t cut : {size_t{0}, size_t{3}, size_t{9}, payload->size() - 1}) {
    auto decoded = DecodeItems(std::string_view(*payload).substr(0, cut));
    ASSERT_FALSE(decoded.ok()) << cut;
    EXPECT_EQ(decoded.status().code(), ErrorCode::kModelFailed);
    EXPECT_NE(decoded.status().message().find("bad PREDICT payload"), std::string::npos);
  }
  auto trailing = DecodeItems(*payload + "x");
  EXPECT_NE(trailing.status().message().find("trailing bytes"), std::string::npos);
  // Huge declared sizes are refused before allocating.
  std::string huge(4, '\0');
  const uint32_t one = 1, ndims = 3, big = 1u << 30;
  std::memcpy(huge.data(), &one, 4);
  huge.append(reinterpret_cast<const char*>(&ndims), 4);
  for (int i = 0; i < 3; ++i) huge.append(reinterpret_cast<const char*>(&big), 4);
  EXPECT_FALSE(DecodeItems(huge).ok());
}

TEST(ModelProtocolTest, ErrorsCarryCodeAndRetryable) {
  const common::Status sent(ErrorCode::kInvalidArgument, "no such kind", true);
  const common::Status got = DecodeError(EncodeError(sent));
  EXPECT_EQ(got.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(got.message(), "no such kind");
  EXPECT_TRUE(got.retryable());
  EXPECT_EQ(DecodeError("plain text").code(), ErrorCode::kModelFailed);
  EXPECT_EQ(DecodeError("plain text").message(), "plain text");
}

TEST(ModelProtocolTest, FramesCrossASocketAndFailuresAreClassified) {
  SocketPair pair;
  FrameChannel left(pair.a, pair.a);
  FrameChannel right(pair.b, pair.b);
  // Bigger than a socket buffer: the writer waits for the reader.
  const std::string big(8 << 20, 'x');
  std::thread reader([&] {
    auto message = right.Receive(Soon());
    ASSERT_TRUE(message.ok()) << message.status().ToString();
    EXPECT_EQ(message->type, MessageType::kPredict);
    EXPECT_EQ(message->payload.size(), big.size());
  });
  ASSERT_TRUE(left.Send(MessageType::kPredict, big, Soon()).ok());
  reader.join();

  // Nothing to read: a timeout.
  auto nothing = right.Receive(FrameChannel::Clock::now() + 50ms);
  ASSERT_FALSE(nothing.ok());
  EXPECT_EQ(nothing.status().code(), ErrorCode::kTimeout);
  EXPECT_EQ(right.last_error(), ChannelError::kTimeout);

  // Garbage: a bad frame.
  const char junk[16] = "not a frame....";
  ASSERT_EQ(write(pair.a, junk, sizeof(junk)), static_cast<ssize_t>(sizeof(junk)));
  auto bad = right.Receive(Soon());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(right.last_error(), ChannelError::kBadFrame);

  // The peer goes away: EOF between frames, then EPIPE on write (no SIGPIPE).
  close(pair.a);
  pair.a = -1;
  auto eof = right.Receive(Soon());
  ASSERT_FALSE(eof.ok());
  EXPECT_EQ(right.last_error(), ChannelError::kEof);
  EXPECT_FALSE(right.Send(MessageType::kReply, "x", Soon()).ok());
  EXPECT_EQ(right.last_error(), ChannelError::kClosed);
}

TEST(ModelProtocolTest, SpecRoundTripsAndBadFieldsAreNamed) {
  ItemModelSpec spec;
  spec.kind = "scale";
  spec.model = "m.onnx";
  spec.device = "cpu:1";
  spec.item_shape = {3, 16, 224, 224};
  spec.max_batch = 8;
  spec.params = {{"factor", 2}};
  auto back = ItemModelSpecFromJson(ItemModelSpecToJson(spec));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->kind, "scale");
  EXPECT_EQ(back->model, "m.onnx");
  EXPECT_EQ(back->device, "cpu:1");
  EXPECT_EQ(back->item_shape, spec.item_shape);
  EXPECT_EQ(back->max_batch, 8);
  EXPECT_EQ(back->params["factor"], 2);
  auto missing = ItemModelSpecFromJson({{"device", "cpu:0"}});
  EXPECT_NE(missing.status().message().find("'kind': missing"), std::string::npos)
      << missing.status().message();
  auto shape = ItemModelSpecFromJson({{"kind", "x"}, {"device", "cpu:0"}, {"item_shape", "3"}});
  EXPECT_NE(shape.status().message().find("'item_shape'"), std::string::npos);
}

TEST(ModelProtocolTest, TestKindsNeedTheEnvironment) {
  ItemModelSpec spec;
  spec.kind = "scale";
  unsetenv("VSIEVE_TEST_MODELS");
  auto refused = BuildItemModel(spec);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kInvalidArgument);
  setenv("VSIEVE_TEST_MODELS", "1", 1);
  auto built = BuildItemModel(spec);
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  EXPECT_EQ((*built)->batch_capacity(), 1);
  spec.max_batch = 0;
  EXPECT_FALSE(BuildItemModel(spec).ok());
  const auto kinds = ItemModelKinds();
  for (const char* kind : {"scale", "abort_on", "hang_on", "slow"}) {
    EXPECT_NE(std::find(kinds.begin(), kinds.end(), kind), kinds.end()) << kind;
  }
}

}  // namespace
}  // namespace vsieve::models
