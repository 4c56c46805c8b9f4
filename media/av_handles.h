#pragma once

// One RAII owner per libav handle used by the decoder. Private to media/.

#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "common/status.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/error.h>
#include <libswscale/swscale.h>
}

namespace vsieve::media {

// libav's text for an AVERROR code.
inline std::string AvErrorText(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(err, buf, sizeof buf);
  return buf;
}

struct FormatContextDeleter {
  void operator()(AVFormatContext* ctx) const {
    // Frees contexts that were opened with avformat_open_input and ones that were only allocated.
    if (ctx != nullptr && ctx->iformat != nullptr) {
      avformat_close_input(&ctx);
    } else {
      avformat_free_context(ctx);
    }
  }
};
// Owns an AVFormatContext, opened or merely allocated.
using FormatContextPtr = std::unique_ptr<AVFormatContext, FormatContextDeleter>;

struct CodecContextDeleter {
  void operator()(AVCodecContext* ctx) const { avcodec_free_context(&ctx); }
};
// Owns an AVCodecContext.
using CodecContextPtr = std::unique_ptr<AVCodecContext, CodecContextDeleter>;

struct PacketDeleter {
  void operator()(AVPacket* packet) const { av_packet_free(&packet); }
};
// Owns an AVPacket (and its reference to the payload).
using PacketPtr = std::unique_ptr<AVPacket, PacketDeleter>;

struct FrameDeleter {
  void operator()(AVFrame* frame) const { av_frame_free(&frame); }
};
// Owns an AVFrame (and its references to the picture buffers).
using FramePtr = std::unique_ptr<AVFrame, FrameDeleter>;

struct SwsContextDeleter {
  void operator()(SwsContext* ctx) const { sws_freeContext(ctx); }
};
// Owns a SwsContext.
using SwsContextPtr = std::unique_ptr<SwsContext, SwsContextDeleter>;

// An output AVFormatContext with its AVIOContext (closed before the context is freed).
struct OutputContextDeleter {
  void operator()(AVFormatContext* ctx) const {
    if (ctx == nullptr) return;
    if (ctx->pb != nullptr && (ctx->oformat->flags & AVFMT_NOFILE) == 0) avio_closep(&ctx->pb);
    avformat_free_context(ctx);
  }
};
// Owns an output AVFormatContext and its AVIOContext.
using OutputContextPtr = std::unique_ptr<AVFormatContext, OutputContextDeleter>;

// swscale's SIMD code may read or write past the end of a row, so the BGR pictures it touches are
// held in rows padded to 32 pixels with one spare row. Returns the `width` x `height` picture at
// the top left of `*rows`, which is (re)allocated only when its size differs.
inline cv::Mat PaddedBgr(int width, int height, cv::Mat* rows) {
  const int padded_width = (width + 31) / 32 * 32;
  if (rows->rows != height + 1 || rows->cols != padded_width || rows->type() != CV_8UC3) {
    rows->create(height + 1, padded_width, CV_8UC3);
  }
  return (*rows)(cv::Rect(0, 0, width, height));
}

// A Status of `code` saying `what` failed, with libav's text for `err`.
inline common::Status AvFailure(common::ErrorCode code, const std::string& what, int err) {
  return common::Status(code, what + ": " + AvErrorText(err));
}

// Owns an array of per-stream option dictionaries, as avformat_find_stream_info takes them.
class StreamOptions {
 public:
  explicit StreamOptions(unsigned count) : dicts_(count, nullptr) {}
  ~StreamOptions() {
    for (AVDictionary*& dict : dicts_) av_dict_free(&dict);
  }
  StreamOptions(const StreamOptions&) = delete;
  StreamOptions& operator=(const StreamOptions&) = delete;

  AVDictionary** data() { return dicts_.empty() ? nullptr : dicts_.data(); }
  AVDictionary** at(unsigned i) { return &dicts_[i]; }

 private:
  std::vector<AVDictionary*> dicts_;
};

// Owns one AVDictionary.
class Dictionary {
 public:
  Dictionary() = default;
  ~Dictionary() { av_dict_free(&dict_); }
  Dictionary(const Dictionary&) = delete;
  Dictionary& operator=(const Dictionary&) = delete;

  AVDictionary** get() { return &dict_; }

 private:
  AVDictionary* dict_ = nullptr;
};

// Silences libav's own logging process-wide (once; later calls do nothing). Errors are kept per
// thread for the decoder's messages (video_decoder.cc).
void SilenceAvLogging();

// Clockwise degrees (0, 90, 180 or 270) the player turns the stream's picture for display, from
// its display matrix side data or its "rotate" tag, as ffmpeg's autorotate reads them. Pure.
int ReadRotation(const AVStream* st);

}  // namespace vsieve::media
