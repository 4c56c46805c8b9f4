#include "media/crop_writer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <mutex>

#include "media/av_handles.h"

extern "C" {
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>
}

namespace vsieve::media {
namespace {

using common::ErrorCode;
using common::Status;
using common::StatusOr;
using Clock = std::chrono::steady_clock;

// Read errors in a row after which the input is treated as ended.
constexpr int kMaxConsecutiveReadErrors = 64;

// The deadline and cancel flag, checked by libav's interrupt callback and by the loop.
struct Stop {
  Clock::time_point deadline;
  const std::atomic<bool>* cancel = nullptr;

  bool Now() const { return Clock::now() >= deadline || (cancel != nullptr && cancel->load()); }
  static int Interrupt(void* opaque) { return static_cast<const Stop*>(opaque)->Now() ? 1 : 0; }
};

int EvenUp(int v) { return v + (v & 1); }
int EvenDown(int v) { return v - (v & 1); }

// One crop job: the input, the decoder, the encoder and the output, owned together.
class CropJob {
 public:
  CropJob(const std::string& output, const CropWriteOptions& options)
      : output_path_(output), options_(options) {}

  StatusOr<CropWriteResult> Run(const std::string& input, const cv::Rect& display_box);

 private:
  Status OpenInput(const std::string& input);
  Status OpenEncoder(const cv::Rect& coded_box);
  Status OpenOutput();
  Status Transcode();
  Status DecodeAndEncode(const AVPacket* packet);
  Status EncodeFrame(AVFrame* frame);
  // Runs options_.draw on `frame` (cropped) and leaves the painted picture in converted_.
  Status Paint(const AVFrame* frame, int64_t pts);
  Status Drain(const AVFrame* frame);
  Status StoppedStatus() const {
    return Status(ErrorCode::kTimeout, options_.cancel != nullptr && options_.cancel->load()
                                           ? "the crop encode was cancelled"
                                           : "the crop encode passed its deadline of " +
                                                 std::to_string(options_.deadline_s) + " s");
  }

  const std::string output_path_;
  const CropWriteOptions options_;
  Stop stop_;
  FormatContextPtr in_;
  CodecContextPtr decoder_;
  CodecContextPtr encoder_;
  OutputContextPtr out_;
  PacketPtr packet_;
  PacketPtr out_packet_;
  FramePtr frame_;
  FramePtr converted_;
  SwsContextPtr sws_;
  SwsContextPtr to_bgr_;       // options_.draw: the decoded picture to BGR ...
  SwsContextPtr from_bgr_;     // ... and the painted one to yuv420p
  cv::Mat bgr_rows_;           // the BGR picture, rows padded for swscale's SIMD writers
  int rotation_ = 0;           // the input's display rotation (clockwise degrees)
  bool segment_done_ = false;  // a frame at or past options_.to_pts came out of the decoder
  AVStream* in_video_ = nullptr;
  AVStream* out_video_ = nullptr;
  std::map<int, int> audio_map_;  // input stream index -> output stream index
  cv::Rect coded_box_;
  int64_t last_pts_ = AV_NOPTS_VALUE;
  int64_t first_pts_ = AV_NOPTS_VALUE;
  int64_t last_duration_ = 0;
  CropWriteResult result_;
};

Status CropJob::OpenInput(const std::string& input) {
  AVFormatContext* raw = avformat_alloc_context();
  if (raw == nullptr) return Status(ErrorCode::kInternal, "avformat_alloc_context failed");
  raw->interrupt_callback.callback = &Stop::Interrupt;
  raw->interrupt_callback.opaque = &stop_;
  int err = avformat_open_input(&raw, input.c_str(), nullptr, nullptr);  // frees raw on failure
  if (err < 0) {
    if (stop_.Now()) return StoppedStatus();
    if (err == AVERROR(ENOENT)) return AvFailure(ErrorCode::kObjectNotFound, "cannot open", err);
    return AvFailure(ErrorCode::kContainerUnrecognized, "no demuxer accepts the input", err);
  }
  in_.reset(raw);
  err = avformat_find_stream_info(in_.get(), nullptr);
  if (err < 0) {
    return AvFailure(ErrorCode::kContainerUnrecognized, "cannot read the stream layout", err);
  }
  int video = -1;
  const int best = av_find_best_stream(in_.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  for (int i = -1; i < static_cast<int>(in_->nb_streams) && video < 0; ++i) {
    const int candidate = i < 0 ? best : i;
    if (candidate < 0) continue;
    const AVStream* st = in_->streams[candidate];
    if (st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO &&
        (st->disposition & AV_DISPOSITION_ATTACHED_PIC) == 0) {
      video = candidate;
    }
  }
  if (video < 0) return Status(ErrorCode::kNoVideoStream, "the container has no video stream");
  in_video_ = in_->streams[video];
  const AVCodec* codec = avcodec_find_decoder(in_video_->codecpar->codec_id);
  if (codec == nullptr) {
    return Status(
        ErrorCode::kUnsupportedCodec,
        std::string("no decoder for codec ") + avcodec_get_name(in_video_->codecpar->codec_id));
  }
  decoder_.reset(avcodec_alloc_context3(codec));
  if (!decoder_) return Status(ErrorCode::kInternal, "avcodec_alloc_context3 failed");
  err = avcodec_parameters_to_context(decoder_.get(), in_video_->codecpar);
  if (err < 0) return AvFailure(ErrorCode::kUnsupportedCodec, "bad codec parameters", err);
  decoder_->pkt_timebase = in_video_->time_base;
  decoder_->thread_count = std::max(0, options_.threads);
  err = avcodec_open2(decoder_.get(), codec, nullptr);
  if (err < 0)
    return AvFailure(ErrorCode::kUnsupportedCodec, "the decoder refused the stream", err);
  if (options_.from_pts != std::numeric_limits<int64_t>::min()) {
    err = av_seek_frame(in_.get(), in_video_->index, options_.from_pts, AVSEEK_FLAG_BACKWARD);
    if (err < 0) return AvFailure(ErrorCode::kEncodeFailed, "cannot seek to the segment", err);
  }
  return Status::Ok();
}

Status CropJob::OpenEncoder(const cv::Rect& coded_box) {
  const AVCodec* codec = avcodec_find_encoder_by_name(options_.codec.c_str());
  if (codec == nullptr || codec->type != AVMEDIA_TYPE_VIDEO) {
    return Status(ErrorCode::kInvalidArgument,
                  "libavcodec has no video encoder named '" + options_.codec + "'");
  }
  encoder_.reset(avcodec_alloc_context3(codec));
  if (!encoder_) return Status(ErrorCode::kInternal, "avcodec_alloc_context3 failed");
  const AVCodecParameters* par = in_video_->codecpar;
  encoder_->width = coded_box.width;
  encoder_->height = coded_box.height;
  encoder_->pix_fmt = AV_PIX_FMT_YUV420P;
  encoder_->time_base = in_video_->time_base;
  encoder_->framerate = av_guess_frame_rate(in_.get(), in_video_, nullptr);
  encoder_->sample_aspect_ratio = par->sample_aspect_ratio;
  // Converted frames come out of swscale in limited range; yuv420p input keeps its own.
  encoder_->color_range = par->format == AV_PIX_FMT_YUV420P ? par->color_range : AVCOL_RANGE_MPEG;
  encoder_->color_primaries = par->color_primaries;
  encoder_->color_trc = par->color_trc;
  encoder_->colorspace = par->color_space;
  encoder_->chroma_sample_location = par->chroma_location;
  encoder_->thread_count = std::max(0, options_.threads);
  if ((out_->oformat->flags & AVFMT_GLOBALHEADER) != 0) {
    encoder_->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  }
  Dictionary codec_options;
  av_dict_set(codec_options.get(), "crf", std::to_string(options_.crf).c_str(), 0);
  av_dict_set(codec_options.get(), "preset", options_.preset.c_str(), 0);
  const int err = avcodec_open2(encoder_.get(), codec, codec_options.get());
  if (err < 0) {
    return AvFailure(ErrorCode::kInvalidArgument,
                     "the encoder " + options_.codec + " refused preset '" + options_.preset +
                         "' / crf " + std::to_string(options_.crf),
                     err);
  }
  return Status::Ok();
}

Status CropJob::OpenOutput() {
  out_video_ = avformat_new_stream(out_.get(), nullptr);
  if (out_video_ == nullptr) return Status(ErrorCode::kInternal, "avformat_new_stream failed");
  int err = avcodec_parameters_from_context(out_video_->codecpar, encoder_.get());
  if (err < 0) return AvFailure(ErrorCode::kEncodeFailed, "encoder parameters", err);
  out_video_->time_base = encoder_->time_base;
  out_video_->avg_frame_rate = encoder_->framerate;
  size_t size = 0;
  const uint8_t* matrix = av_stream_get_side_data(in_video_, AV_PKT_DATA_DISPLAYMATRIX, &size);
  if (matrix != nullptr && size > 0) {
    uint8_t* copy = av_stream_new_side_data(out_video_, AV_PKT_DATA_DISPLAYMATRIX, size);
    if (copy == nullptr) return Status(ErrorCode::kInternal, "out of memory for side data");
    std::memcpy(copy, matrix, size);
  } else if (const AVDictionaryEntry* tag =
                 av_dict_get(in_video_->metadata, "rotate", nullptr, 0)) {
    av_dict_set(&out_video_->metadata, "rotate", tag->value, 0);
  }

  for (unsigned i = 0; i < in_->nb_streams; ++i) {
    AVStream* st = in_->streams[i];
    if (st == in_video_) continue;
    if (st->codecpar->codec_type != AVMEDIA_TYPE_AUDIO || !options_.copy_audio) {
      st->discard = AVDISCARD_ALL;
      continue;
    }
    if (avformat_query_codec(out_->oformat, st->codecpar->codec_id, FF_COMPLIANCE_NORMAL) != 1) {
      st->discard = AVDISCARD_ALL;
      result_.audio_note = std::string("audio stream of codec ") +
                           avcodec_get_name(st->codecpar->codec_id) +
                           " left out: MP4 cannot hold it without re-encoding";
      continue;
    }
    AVStream* copy = avformat_new_stream(out_.get(), nullptr);
    if (copy == nullptr) return Status(ErrorCode::kInternal, "avformat_new_stream failed");
    err = avcodec_parameters_copy(copy->codecpar, st->codecpar);
    if (err < 0) return AvFailure(ErrorCode::kEncodeFailed, "audio parameters", err);
    copy->codecpar->codec_tag = 0;
    copy->time_base = st->time_base;
    av_dict_copy(&copy->metadata, st->metadata, 0);
    audio_map_[static_cast<int>(i)] = copy->index;
  }
  result_.audio_copied = !audio_map_.empty();

  err = avio_open2(&out_->pb, output_path_.c_str(), AVIO_FLAG_WRITE, &out_->interrupt_callback,
                   nullptr);
  if (err < 0) return AvFailure(ErrorCode::kEncodeFailed, "cannot create the output file", err);
  Dictionary mux_options;
  av_dict_set(mux_options.get(), "movflags", "+faststart", 0);
  err = avformat_write_header(out_.get(), mux_options.get());
  if (err < 0) return AvFailure(ErrorCode::kEncodeFailed, "writing the MP4 header", err);
  return Status::Ok();
}

Status CropJob::Drain(const AVFrame* frame) {
  int err = avcodec_send_frame(encoder_.get(), frame);
  if (err < 0 && err != AVERROR_EOF) return AvFailure(ErrorCode::kEncodeFailed, "encoding", err);
  while (true) {
    err = avcodec_receive_packet(encoder_.get(), out_packet_.get());
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return Status::Ok();
    if (err < 0) return AvFailure(ErrorCode::kEncodeFailed, "encoding", err);
    av_packet_rescale_ts(out_packet_.get(), encoder_->time_base, out_video_->time_base);
    out_packet_->stream_index = out_video_->index;
    err = av_interleaved_write_frame(out_.get(), out_packet_.get());  // takes the reference
    if (err < 0) return AvFailure(ErrorCode::kEncodeFailed, "writing the output", err);
  }
}

Status CropJob::EncodeFrame(AVFrame* frame) {
  if (frame->width < coded_box_.x + coded_box_.width ||
      frame->height < coded_box_.y + coded_box_.height) {
    return Status(ErrorCode::kEncodeFailed, "a frame of " + std::to_string(frame->width) + "x" +
                                                std::to_string(frame->height) +
                                                " is smaller than the crop (the frame " +
                                                "size changed inside the stream)");
  }
  frame->crop_left = static_cast<size_t>(coded_box_.x);
  frame->crop_top = static_cast<size_t>(coded_box_.y);
  frame->crop_right = static_cast<size_t>(frame->width - coded_box_.x - coded_box_.width);
  frame->crop_bottom = static_cast<size_t>(frame->height - coded_box_.y - coded_box_.height);
  int err = av_frame_apply_cropping(frame, AV_FRAME_CROP_UNALIGNED);
  if (err < 0) return AvFailure(ErrorCode::kEncodeFailed, "cropping a frame", err);

  int64_t pts = frame->best_effort_timestamp;
  if (pts == AV_NOPTS_VALUE) pts = frame->pts;
  const int64_t duration = frame->pkt_duration > 0 ? frame->pkt_duration : last_duration_;
  if (pts == AV_NOPTS_VALUE)
    pts = last_pts_ == AV_NOPTS_VALUE ? 0 : last_pts_ + std::max<int64_t>(1, duration);
  if (last_pts_ != AV_NOPTS_VALUE && pts <= last_pts_) pts = last_pts_ + 1;  // encoders need order
  if (first_pts_ == AV_NOPTS_VALUE) first_pts_ = pts;
  last_pts_ = pts;
  last_duration_ = duration;

  AVFrame* send = frame;
  if (options_.draw) {
    VSIEVE_RETURN_IF_ERROR(Paint(frame, pts));
    send = converted_.get();
  } else if (frame->format != AV_PIX_FMT_YUV420P) {
    sws_.reset(sws_getCachedContext(
        sws_.release(), frame->width, frame->height, static_cast<AVPixelFormat>(frame->format),
        frame->width, frame->height, AV_PIX_FMT_YUV420P, SWS_BICUBIC, nullptr, nullptr, nullptr));
    if (sws_ == nullptr) return Status(ErrorCode::kEncodeFailed, "no pixel format conversion");
    if (converted_->width != frame->width || converted_->height != frame->height) {
      av_frame_unref(converted_.get());
      converted_->format = AV_PIX_FMT_YUV420P;
      converted_->width = frame->width;
      converted_->height = frame->height;
      err = av_frame_get_buffer(converted_.get(), 0);
      if (err < 0) return AvFailure(ErrorCode::kInternal, "allocating a frame", err);
    }
    err = av_frame_make_writable(converted_.get());  // the encoder may still hold the last one
    if (err < 0) return AvFailure(ErrorCode::kInternal, "allocating a frame", err);
    sws_scale(sws_.get(), frame->data, frame->linesize, 0, frame->height, converted_->data,
              converted_->linesize);
    send = converted_.get();
  }
  send->pts = pts;
  send->pict_type = AV_PICTURE_TYPE_NONE;
  ++result_.frames;
  if (options_.frames_done != nullptr) options_.frames_done->fetch_add(1);
  return Drain(send);
}

Status CropJob::Paint(const AVFrame* frame, int64_t pts) {
  const int w = frame->width;
  const int h = frame->height;
  to_bgr_.reset(sws_getCachedContext(to_bgr_.release(), w, h,
                                     static_cast<AVPixelFormat>(frame->format), w, h,
                                     AV_PIX_FMT_BGR24, SWS_POINT, nullptr, nullptr, nullptr));
  from_bgr_.reset(sws_getCachedContext(from_bgr_.release(), w, h, AV_PIX_FMT_BGR24, w, h,
                                       AV_PIX_FMT_YUV420P, SWS_POINT, nullptr, nullptr, nullptr));
  if (to_bgr_ == nullptr || from_bgr_ == nullptr) {
    return Status(ErrorCode::kEncodeFailed, "no pixel format conversion for drawing");
  }
  cv::Mat stored = PaddedBgr(w, h, &bgr_rows_);
  uint8_t* bgr_data[4] = {bgr_rows_.data, nullptr, nullptr, nullptr};
  int bgr_linesize[4] = {static_cast<int>(bgr_rows_.step[0]), 0, 0, 0};
  if (sws_scale(to_bgr_.get(), frame->data, frame->linesize, 0, h, bgr_data, bgr_linesize) <= 0) {
    return Status(ErrorCode::kEncodeFailed, "converting a frame for drawing");
  }
  cv::Mat displayed;
  switch (rotation_) {
    case 90:
      cv::rotate(stored, displayed, cv::ROTATE_90_CLOCKWISE);
      break;
    case 180:
      cv::rotate(stored, displayed, cv::ROTATE_180);
      break;
    case 270:
      cv::rotate(stored, displayed, cv::ROTATE_90_COUNTERCLOCKWISE);
      break;
    default:
      displayed = stored;  // painted in place
      break;
  }
  const cv::Size size = displayed.size();
  FrameStamp stamp;
  stamp.pts = pts;
  const int64_t start = in_video_->start_time == AV_NOPTS_VALUE ? 0 : in_video_->start_time;
  stamp.time_s = static_cast<double>(pts - start) * av_q2d(in_video_->time_base);
  stamp.keyframe = frame->key_frame != 0;
  VSIEVE_RETURN_IF_ERROR(options_.draw(&displayed, stamp));
  if (displayed.size() != size || displayed.type() != CV_8UC3) {
    return Status(ErrorCode::kInternal, "the draw callback changed the frame's size or type");
  }
  switch (rotation_) {
    case 90:
      cv::rotate(displayed, stored, cv::ROTATE_90_COUNTERCLOCKWISE);
      break;
    case 180:
      cv::rotate(displayed, stored, cv::ROTATE_180);
      break;
    case 270:
      cv::rotate(displayed, stored, cv::ROTATE_90_CLOCKWISE);
      break;
    default:
      if (displayed.data != stored.data) displayed.copyTo(stored);
      break;
  }
  if (converted_->width != w || converted_->height != h) {
    av_frame_unref(converted_.get());
    converted_->format = AV_PIX_FMT_YUV420P;
    converted_->width = w;
    converted_->height = h;
    const int err = av_frame_get_buffer(converted_.get(), 0);
    if (err < 0) return AvFailure(ErrorCode::kInternal, "allocating a frame", err);
  }
  const int err = av_frame_make_writable(converted_.get());
  if (err < 0) return AvFailure(ErrorCode::kInternal, "allocating a frame", err);
  const uint8_t* src[4] = {bgr_rows_.data, nullptr, nullptr, nullptr};
  sws_scale(from_bgr_.get(), src, bgr_linesize, 0, h, converted_->data, converted_->linesize);
  return Status::Ok();
}

Status CropJob::DecodeAndEncode(const AVPacket* packet) {
  int err = avcodec_send_packet(decoder_.get(), packet);
  // A broken packet in a video the filter already read is skipped, as players do.
  if (err < 0 && err != AVERROR_EOF && err != AVERROR(EAGAIN) && packet == nullptr) {
    return AvFailure(ErrorCode::kEncodeFailed, "draining the decoder", err);
  }
  while (true) {
    err = avcodec_receive_frame(decoder_.get(), frame_.get());
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return Status::Ok();
    if (err < 0) return Status::Ok();  // a decode error: the frame is dropped
    const int64_t pts = frame_->best_effort_timestamp != AV_NOPTS_VALUE
                            ? frame_->best_effort_timestamp
                            : frame_->pts;
    if (pts != AV_NOPTS_VALUE && pts >= options_.to_pts) segment_done_ = true;
    if (segment_done_ || (pts != AV_NOPTS_VALUE && pts < options_.from_pts)) {
      av_frame_unref(frame_.get());  // outside the segment
      continue;
    }
    Status encoded = EncodeFrame(frame_.get());
    av_frame_unref(frame_.get());
    VSIEVE_RETURN_IF_ERROR(encoded);
  }
}

Status CropJob::Transcode() {
  int read_errors = 0;
  while (!segment_done_) {
    if (stop_.Now()) return StoppedStatus();
    const int err = av_read_frame(in_.get(), packet_.get());
    if (err < 0) {
      if (stop_.Now()) return StoppedStatus();
      if (err == AVERROR_EOF || (in_->pb != nullptr && avio_feof(in_->pb)) ||
          ++read_errors > kMaxConsecutiveReadErrors) {
        break;
      }
      continue;
    }
    read_errors = 0;
    Status status;
    if (packet_->stream_index == in_video_->index) {
      status = DecodeAndEncode(packet_.get());
    } else if (auto it = audio_map_.find(packet_->stream_index); it != audio_map_.end()) {
      AVStream* out = out_->streams[it->second];
      av_packet_rescale_ts(packet_.get(), in_->streams[packet_->stream_index]->time_base,
                           out->time_base);
      packet_->stream_index = it->second;
      packet_->pos = -1;
      const int written = av_interleaved_write_frame(out_.get(), packet_.get());
      if (written < 0) status = AvFailure(ErrorCode::kEncodeFailed, "writing audio", written);
    }
    av_packet_unref(packet_.get());
    VSIEVE_RETURN_IF_ERROR(status);
  }
  VSIEVE_RETURN_IF_ERROR(DecodeAndEncode(nullptr));
  VSIEVE_RETURN_IF_ERROR(Drain(nullptr));
  if (result_.frames == 0) return Status(ErrorCode::kEncodeFailed, "no frame could be decoded");
  const int err = av_write_trailer(out_.get());
  if (err < 0) return AvFailure(ErrorCode::kEncodeFailed, "writing the MP4 index", err);
  const int64_t size = avio_size(out_->pb);
  if (size > 0) result_.bytes = size;
  avio_closep(&out_->pb);
  result_.duration_s =
      static_cast<double>(last_pts_ - first_pts_ + std::max<int64_t>(0, last_duration_)) *
      av_q2d(in_video_->time_base);
  return Status::Ok();
}

StatusOr<CropWriteResult> CropJob::Run(const std::string& input, const cv::Rect& display_box) {
  stop_.deadline = Clock::now() +
                   std::chrono::duration_cast<Clock::duration>(
                       std::chrono::duration<double>(std::clamp(options_.deadline_s, 0.0, 3.2e7)));
  stop_.cancel = options_.cancel;
  VSIEVE_RETURN_IF_ERROR(OpenInput(input));
  const AVCodecParameters* par = in_video_->codecpar;
  const int rotation = ReadRotation(in_video_);
  rotation_ = rotation;
  coded_box_ = CodedCropBox(display_box, par->width, par->height, rotation);
  if (coded_box_.area() == 0) {
    return Status(ErrorCode::kInvalidArgument,
                  "the crop [" + std::to_string(display_box.x) + ", " +
                      std::to_string(display_box.y) + ", " + std::to_string(display_box.width) +
                      ", " + std::to_string(display_box.height) + "] leaves nothing of the frame");
  }
  result_.coded_box = coded_box_;
  // The displayed box of what is written: the coded box turned back.
  const int cw = par->width;
  const int ch = par->height;
  const cv::Rect& c = coded_box_;
  switch (rotation) {
    case 90:
      result_.display_box = cv::Rect(ch - c.y - c.height, c.x, c.height, c.width);
      break;
    case 180:
      result_.display_box = cv::Rect(cw - c.x - c.width, ch - c.y - c.height, c.width, c.height);
      break;
    case 270:
      result_.display_box = cv::Rect(c.y, cw - c.x - c.width, c.height, c.width);
      break;
    default:
      result_.display_box = c;
      break;
  }

  AVFormatContext* raw = nullptr;
  int err = avformat_alloc_output_context2(&raw, nullptr, "mp4", output_path_.c_str());
  if (err < 0 || raw == nullptr) return AvFailure(ErrorCode::kInternal, "no MP4 muxer", err);
  out_.reset(raw);
  out_->interrupt_callback.callback = &Stop::Interrupt;
  out_->interrupt_callback.opaque = &stop_;
  VSIEVE_RETURN_IF_ERROR(OpenEncoder(coded_box_));
  packet_.reset(av_packet_alloc());
  out_packet_.reset(av_packet_alloc());
  frame_.reset(av_frame_alloc());
  converted_.reset(av_frame_alloc());
  if (!packet_ || !out_packet_ || !frame_ || !converted_) {
    return Status(ErrorCode::kInternal, "out of memory");
  }
  VSIEVE_RETURN_IF_ERROR(OpenOutput());
  VSIEVE_RETURN_IF_ERROR(Transcode());
  return result_;
}

}  // namespace

cv::Rect CodedCropBox(const cv::Rect& display_box, int coded_width, int coded_height,
                      int rotation) {
  const int cw = coded_width;
  const int ch = coded_height;
  const cv::Rect& d = display_box;
  cv::Rect c;
  switch (rotation) {
    case 90:  // coded (x, y) is displayed at (ch - 1 - y, x)
      c = cv::Rect(d.y, ch - d.x - d.width, d.height, d.width);
      break;
    case 180:
      c = cv::Rect(cw - d.x - d.width, ch - d.y - d.height, d.width, d.height);
      break;
    case 270:  // coded (x, y) is displayed at (y, cw - 1 - x)
      c = cv::Rect(cw - d.y - d.height, d.x, d.height, d.width);
      break;
    default:
      c = d;
      break;
  }
  c &= cv::Rect(0, 0, cw, ch);
  if (c.area() == 0) return cv::Rect();
  const int x0 = EvenUp(c.x);
  const int y0 = EvenUp(c.y);
  const int x1 = EvenDown(c.x + c.width);
  const int y1 = EvenDown(c.y + c.height);
  if (x1 - x0 < 2 || y1 - y0 < 2) return cv::Rect();
  return cv::Rect(x0, y0, x1 - x0, y1 - y0);
}

StatusOr<CropWriteResult> WriteCroppedVideo(const std::string& input, const cv::Rect& display_box,
                                            const std::string& output,
                                            const CropWriteOptions& options) {
  // x264 and the muxer log at info level; only errors are of interest (VideoDecoder::Open
  // installs the same level, with a capturing callback).
  static std::once_flag quiet;
  std::call_once(quiet, [] {
    if (av_log_get_level() > AV_LOG_ERROR) av_log_set_level(AV_LOG_ERROR);
  });
  StatusOr<CropWriteResult> result = [&]() -> StatusOr<CropWriteResult> {
    CropJob job(output, options);
    return job.Run(input, display_box);
  }();
  if (!result.ok()) std::remove(output.c_str());
  return result;
}

bool HaveEncoder(const std::string& codec) {
  const AVCodec* found = avcodec_find_encoder_by_name(codec.c_str());
  return found != nullptr && found->type == AVMEDIA_TYPE_VIDEO;
}

}  // namespace vsieve::media
