#include "media/image_file.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "media/av_handles.h"

extern "C" {
#include <libavutil/imgutils.h>
}

namespace vsieve::media {
namespace {

using common::ErrorCode;
using common::Status;
using common::StatusOr;

// Copies `frame` (any pixel format swscale reads) into a new BGR picture of the same size.
StatusOr<cv::Mat> ToBgr(const AVFrame* frame) {
  SwsContextPtr sws(sws_getContext(
      frame->width, frame->height, static_cast<AVPixelFormat>(frame->format), frame->width,
      frame->height, AV_PIX_FMT_BGR24, SWS_POINT, nullptr, nullptr, nullptr));
  if (sws == nullptr) {
    return Status(ErrorCode::kUnsupportedCodec,
                  std::string("cannot convert pixel format ") +
                      av_get_pix_fmt_name(static_cast<AVPixelFormat>(frame->format)));
  }
  cv::Mat padded;
  const cv::Mat picture = PaddedBgr(frame->width, frame->height, &padded);
  uint8_t* dst[4] = {padded.data, nullptr, nullptr, nullptr};
  int stride[4] = {static_cast<int>(padded.step[0]), 0, 0, 0};
  if (sws_scale(sws.get(), frame->data, frame->linesize, 0, frame->height, dst, stride) <= 0) {
    return Status(ErrorCode::kDecodeErrorsExceeded, "cannot convert the picture");
  }
  return picture.clone();
}

// Fills `frame` (allocated, in `format`) from `bgr`.
Status FromBgr(const cv::Mat& bgr, AVFrame* frame) {
  SwsContextPtr sws(sws_getContext(bgr.cols, bgr.rows, AV_PIX_FMT_BGR24, frame->width,
                                   frame->height, static_cast<AVPixelFormat>(frame->format),
                                   SWS_POINT, nullptr, nullptr, nullptr));
  if (sws == nullptr) return Status(ErrorCode::kEncodeFailed, "cannot set up the conversion");
  cv::Mat padded;
  bgr.copyTo(PaddedBgr(bgr.cols, bgr.rows, &padded));  // swscale may read past a row's end
  const uint8_t* src[4] = {padded.data, nullptr, nullptr, nullptr};
  const int stride[4] = {static_cast<int>(padded.step[0]), 0, 0, 0};
  if (sws_scale(sws.get(), src, stride, 0, bgr.rows, frame->data, frame->linesize) <= 0) {
    return Status(ErrorCode::kEncodeFailed, "cannot convert the picture");
  }
  return Status::Ok();
}

struct Encoder {
  const char* name;
  AVPixelFormat format;
};

Encoder EncoderFor(ImageFormat format) {
  switch (format) {
    case ImageFormat::kPng:
      return {"png", AV_PIX_FMT_RGB24};
    case ImageFormat::kJpeg:
      return {"mjpeg", AV_PIX_FMT_YUVJ420P};
    case ImageFormat::kBmp:
      return {"bmp", AV_PIX_FMT_BGR24};
    case ImageFormat::kTiff:
      return {"tiff", AV_PIX_FMT_RGB24};
    case ImageFormat::kWebp:
      return {"libwebp", AV_PIX_FMT_YUV420P};
  }
  return {"png", AV_PIX_FMT_RGB24};
}

// Encodes one picture; returns the encoded file's bytes.
StatusOr<std::string> Encode(const cv::Mat& bgr, ImageFormat format, int quality) {
  const Encoder wanted = EncoderFor(format);
  const AVCodec* codec = avcodec_find_encoder_by_name(wanted.name);
  if (codec == nullptr) {
    return Status(ErrorCode::kUnsupportedCodec,
                  std::string("this libav has no ") + wanted.name + " encoder");
  }
  CodecContextPtr ctx(avcodec_alloc_context3(codec));
  FramePtr frame(av_frame_alloc());
  PacketPtr packet(av_packet_alloc());
  if (ctx == nullptr || frame == nullptr || packet == nullptr) {
    return Status(ErrorCode::kEncodeFailed, "out of memory");
  }
  ctx->width = bgr.cols;
  ctx->height = bgr.rows;
  ctx->pix_fmt = wanted.format;
  ctx->time_base = AVRational{1, 25};
  ctx->thread_count = 1;
  Dictionary options;
  switch (format) {
    case ImageFormat::kPng:
      ctx->compression_level = quality < 0 ? 3 : quality;
      break;
    case ImageFormat::kJpeg: {
      // Quality 100 is the encoder's finest scale (2), 0 its coarsest (31).
      const int q = quality < 0 ? 95 : quality;
      const int qscale = static_cast<int>(std::lround(2.0 + (100 - q) * 29.0 / 100.0));
      ctx->flags |= AV_CODEC_FLAG_QSCALE;
      ctx->global_quality = FF_QP2LAMBDA * qscale;
      ctx->color_range = AVCOL_RANGE_JPEG;
      break;
    }
    case ImageFormat::kWebp:
      av_dict_set_int(options.get(), "quality", quality < 0 ? 90 : quality, 0);
      break;
    case ImageFormat::kBmp:
    case ImageFormat::kTiff:
      break;
  }
  int err = avcodec_open2(ctx.get(), codec, options.get());
  if (err < 0) return AvFailure(ErrorCode::kEncodeFailed, "cannot open the encoder", err);
  frame->format = wanted.format;
  frame->width = bgr.cols;
  frame->height = bgr.rows;
  err = av_frame_get_buffer(frame.get(), 0);
  if (err < 0) return AvFailure(ErrorCode::kEncodeFailed, "cannot allocate the picture", err);
  VSIEVE_RETURN_IF_ERROR(FromBgr(bgr, frame.get()));
  frame->pts = 0;
  frame->quality = ctx->global_quality;
  std::string bytes;
  err = avcodec_send_frame(ctx.get(), frame.get());
  if (err >= 0) err = avcodec_send_frame(ctx.get(), nullptr);
  while (err >= 0) {
    err = avcodec_receive_packet(ctx.get(), packet.get());
    if (err < 0) break;
    bytes.append(reinterpret_cast<const char*>(packet->data), static_cast<size_t>(packet->size));
    av_packet_unref(packet.get());
  }
  if (err != AVERROR_EOF) return AvFailure(ErrorCode::kEncodeFailed, "cannot encode", err);
  if (bytes.empty()) return Status(ErrorCode::kEncodeFailed, "the encoder gave nothing");
  return bytes;
}

}  // namespace

StatusOr<ImageFormat> ImageFormatOf(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (ext == ".png") return ImageFormat::kPng;
  if (ext == ".jpg" || ext == ".jpeg") return ImageFormat::kJpeg;
  if (ext == ".bmp") return ImageFormat::kBmp;
  if (ext == ".tif" || ext == ".tiff") return ImageFormat::kTiff;
  if (ext == ".webp") return ImageFormat::kWebp;
  return Status(ErrorCode::kInvalidArgument, "not an image file name: " + path);
}

StatusOr<cv::Mat> ReadImage(const std::string& path, long long max_pixels) {
  SilenceAvLogging();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Status(ErrorCode::kObjectNotFound, "no such image file: " + path);
  }
  AVFormatContext* raw = nullptr;
  int err = avformat_open_input(&raw, path.c_str(), nullptr, nullptr);
  FormatContextPtr format(raw);
  if (err < 0) return AvFailure(ErrorCode::kContainerUnrecognized, "cannot read " + path, err);
  err = avformat_find_stream_info(format.get(), nullptr);
  if (err < 0) return AvFailure(ErrorCode::kContainerUnrecognized, "cannot read " + path, err);
  const AVCodec* codec = nullptr;
  const int stream = av_find_best_stream(format.get(), AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
  if (stream < 0) return Status(ErrorCode::kNoVideoStream, "no picture in " + path);
  if (codec == nullptr) return Status(ErrorCode::kUnsupportedCodec, "no decoder for " + path);
  const AVCodecParameters* params = format->streams[stream]->codecpar;
  if (params->width <= 0 || params->height <= 0 ||
      static_cast<long long>(params->width) * params->height > max_pixels) {
    return Status(ErrorCode::kDimensionsExceedLimit, path + " is " + std::to_string(params->width) +
                                                         "x" + std::to_string(params->height) +
                                                         ", above the limit of " +
                                                         std::to_string(max_pixels) + " pixels");
  }
  CodecContextPtr ctx(avcodec_alloc_context3(codec));
  FramePtr frame(av_frame_alloc());
  PacketPtr packet(av_packet_alloc());
  if (ctx == nullptr || frame == nullptr || packet == nullptr) {
    return Status(ErrorCode::kInternal, "out of memory");
  }
  err = avcodec_parameters_to_context(ctx.get(), params);
  if (err >= 0) {
    ctx->thread_count = 1;
    err = avcodec_open2(ctx.get(), codec, nullptr);
  }
  if (err < 0) return AvFailure(ErrorCode::kUnsupportedCodec, "cannot decode " + path, err);
  bool flushed = false;
  for (;;) {
    err = avcodec_receive_frame(ctx.get(), frame.get());
    if (err >= 0) return ToBgr(frame.get());
    if (err != AVERROR(EAGAIN) || flushed) break;
    err = av_read_frame(format.get(), packet.get());
    if (err < 0) {
      flushed = true;
      err = avcodec_send_packet(ctx.get(), nullptr);
    } else {
      if (packet->stream_index == stream) err = avcodec_send_packet(ctx.get(), packet.get());
      av_packet_unref(packet.get());
    }
    if (err < 0 && err != AVERROR(EAGAIN) && err != AVERROR_EOF) break;
  }
  return AvFailure(ErrorCode::kDecodeErrorsExceeded, "cannot decode the picture in " + path, err);
}

Status WriteImage(const std::string& path, const cv::Mat& bgr, ImageFormat format, int quality) {
  if (bgr.empty() || bgr.type() != CV_8UC3) {
    return Status(ErrorCode::kInvalidArgument, "an image to write must be non-empty 8-bit BGR");
  }
  const int most = format == ImageFormat::kPng ? 9 : 100;
  if (quality < -1 || quality > most) {
    return Status(ErrorCode::kInvalidArgument, "image quality " + std::to_string(quality) +
                                                   " is outside 0-" + std::to_string(most));
  }
  SilenceAvLogging();
  VSIEVE_ASSIGN_OR_RETURN(std::string bytes, Encode(bgr, format, quality));
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (out) return Status::Ok();
  }
  std::error_code ec;
  std::filesystem::remove(path, ec);
  return Status(ErrorCode::kEncodeFailed, "cannot write " + path);
}

}  // namespace vsieve::media
