#include "media/video_decoder.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <opencv2/core.hpp>
#include <string>
#include <utility>

#include "media/av_handles.h"

extern "C" {
#include <libavutil/display.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
}

namespace vsieve::media {
namespace {

using common::ErrorCode;
using common::Status;
using common::StatusOr;
using Clock = std::chrono::steady_clock;

// A seek that lands past its target is retried this many times, each time further back.
constexpr int kMaxSeekRetries = 6;
// Without a usable index, targets further ahead than this are reached by seeking.
constexpr double kNoIndexSeekGapS = 5.0;
// Demuxer failures in a row after which the rest of the file is treated as missing.
constexpr int kMaxConsecutiveDemuxErrors = 64;
// The most a keyframe's pts may lead its dts (frame reordering) before it is taken as broken.
constexpr double kMaxReorderS = 2.0;

// ---- libav logging: nothing is printed; the first error line of each thread is kept. ----

thread_local std::string t_first_av_error;

void CaptureAvLog(void* avcl, int level, const char* fmt, va_list args) {
  if (level > AV_LOG_ERROR || !t_first_av_error.empty()) return;
  char line[512];
  int print_prefix = 1;
  va_list copy;
  va_copy(copy, args);
  av_log_format_line2(avcl, level, fmt, copy, line, sizeof line, &print_prefix);
  va_end(copy);
  std::string text(line);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  t_first_av_error = std::move(text);
}

void InstallAvLogOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    av_log_set_level(AV_LOG_ERROR);
    av_log_set_callback(CaptureAvLog);
  });
}

// "what: libav's reason (first libav error line)".
Status AvStatus(ErrorCode code, const std::string& what, int err) {
  std::string message = what;
  if (err < 0) message += ": " + AvErrorText(err);
  if (!t_first_av_error.empty()) message += " (" + t_first_av_error + ")";
  return Status(code, message);
}

// The deadline checked by libav's interrupt callback and by the sampling loop.
struct Deadline {
  Clock::time_point at = Clock::time_point::max();

  void Set(double seconds) {
    // Clamped to a year so that the conversion to clock ticks cannot overflow.
    const double clamped = std::clamp(std::isfinite(seconds) ? seconds : 0.0, 0.0, 3.2e7);
    at = Clock::now() +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(clamped));
  }
  bool Expired() const { return Clock::now() >= at; }

  static int Interrupt(void* opaque) { return static_cast<const Deadline*>(opaque)->Expired(); }
};

bool ValidRational(AVRational r) { return r.num > 0 && r.den > 0; }

Status CheckDimensions(int width, int height, const DecodeLimits& limits) {
  const long long pixels = static_cast<long long>(width) * height;
  if (width > limits.max_dimension || height > limits.max_dimension || pixels > limits.max_pixels) {
    return Status(ErrorCode::kDimensionsExceedLimit,
                  "frame size " + std::to_string(width) + "x" + std::to_string(height) +
                      " exceeds the limits (side " + std::to_string(limits.max_dimension) +
                      ", pixels " + std::to_string(limits.max_pixels) + ")");
  }
  if (width < limits.min_dimension || height < limits.min_dimension) {
    return Status(ErrorCode::kDimensionsExceedLimit,
                  "frame size " + std::to_string(width) + "x" + std::to_string(height) +
                      " is below the minimum side " + std::to_string(limits.min_dimension));
  }
  return Status::Ok();
}

// The libavformat/libavcodec implementation of VideoDecoder.
class LibavVideoDecoder final : public VideoDecoder {
 public:
  explicit LibavVideoDecoder(const DecodeLimits& limits) : limits_(limits) {}

  Status OpenFile(const std::string& path);

  const VideoMeta& meta() const override { return meta_; }
  const DecodeStats& stats() const override { return stats_; }
  StatusOr<std::vector<Frame>> Sample(const SamplingPlan& plan) override;

 private:
  // What the sampling loop knows about the position of the demuxer and decoder.
  struct Cursor {
    std::vector<int64_t> targets;  // planned times as stream pts, ascending
    std::vector<bool> full;        // parallel to targets: read in full (SamplingPlan::full)
    size_t next = 0;               // first target not yet satisfied
    size_t satisfied = 0;          // targets mapped to a returned frame (duplicates included)
    int64_t max_read_pts = AV_NOPTS_VALUE;  // highest pts/dts among packets read
    int64_t last_dts = AV_NOPTS_VALUE;
    // The largest pts - dts of a keyframe read (frame reordering). Index entries go by dts, so
    // a keyframe indexed at or before a target may still be displayed after it: the seek
    // decision looks its keyframe up this much earlier.
    int64_t key_reorder = 0;
    int64_t last_frame_pts = AV_NOPTS_VALUE;
    bool last_frame_returned = false;
    // Seek state: after a seek, packets are dropped until a keyframe, and the first frame is
    // checked against the target it was made for.
    bool awaiting_keyframe = false;
    bool check_overshoot = false;
    size_t seek_target = 0;
    double seek_back_s = 0.0;
    int seek_retries = 0;
    bool reseek = false;  // set when a seek landed past its target
    int consecutive_demux_errors = 0;
    bool eof = false;
  };

  Status OpenDecoder();
  void FillMeta();

  // Seeks for target `cursor->next` when the keyframe before it lies beyond what was read.
  void MaybeSeekForward(Cursor* cursor);
  // Seeks so that decoding resumes `back_s` before target `target`; returns false on failure.
  bool SeekBefore(Cursor* cursor, size_t target, double back_s);
  // True when a seek that landed past its target may be retried further back.
  bool CanRetrySeek(const Cursor& cursor) const;
  // Seeks further back (1 s, then twice as far each time) for the target of the last seek.
  void RetrySeek(Cursor* cursor);
  // Sends one packet (nullptr to drain), then receives the frames that come out.
  void Decode(const AVPacket* packet, Cursor* cursor, std::vector<Frame>* out);
  // Receives every ready frame: counts it, checks a fresh seek's landing, and returns it for
  // each planned time it is the first to reach.
  void ReceiveFrames(Cursor* cursor, std::vector<Frame>* out);
  // Converts `frame` to a scaled, rotated BGR Frame, thin unless `full`; false when it cannot
  // be converted.
  bool Convert(const AVFrame* frame, int64_t pts, bool full, Frame* out);
  double PtsToSeconds(int64_t pts) const;
  int ErrorSum() const {
    return stats_.demux_errors + stats_.decode_errors + stats_.corrupt_frames;
  }
  bool ErrorsExceeded() const;

  DecodeLimits limits_;
  Deadline deadline_;
  FormatContextPtr format_;
  CodecContextPtr codec_;
  PacketPtr packet_;
  FramePtr frame_;
  FramePtr last_frame_;  // a reference to the most recent decoded frame
  SwsContextPtr sws_;    // reused while the frame size and format stay the same
  AVStream* stream_ = nullptr;
  int stream_index_ = -1;
  int64_t start_pts_ = 0;
  VideoMeta meta_;
  DecodeStats stats_;
};

Status LibavVideoDecoder::OpenFile(const std::string& path) {
  struct stat st_buf {};
  if (::stat(path.c_str(), &st_buf) != 0) {
    return Status(errno == ENOENT ? ErrorCode::kObjectNotFound : ErrorCode::kInternal,
                  "cannot stat the input file");
  }
  if (st_buf.st_size == 0) return Status(ErrorCode::kInputEmpty, "the input file is empty");

  deadline_.Set(limits_.open_deadline_s);
  AVFormatContext* raw = avformat_alloc_context();
  if (raw == nullptr) return Status(ErrorCode::kInternal, "avformat_alloc_context failed");
  raw->interrupt_callback.callback = &Deadline::Interrupt;
  raw->interrupt_callback.opaque = &deadline_;
  Dictionary options;
  av_dict_set_int(options.get(), "probesize", std::max(32LL, limits_.probe_size_bytes), 0);
  av_dict_set_int(options.get(), "analyzeduration",
                  static_cast<int64_t>(std::max(0.0, limits_.analyze_duration_s) * AV_TIME_BASE),
                  0);
  // On failure avformat_open_input frees the context itself.
  int err = avformat_open_input(&raw, path.c_str(), nullptr, options.get());
  if (err < 0) {
    if (deadline_.Expired()) return AvStatus(ErrorCode::kTimeout, "opening timed out", err);
    if (err == AVERROR(ENOENT)) return AvStatus(ErrorCode::kObjectNotFound, "cannot open", err);
    return AvStatus(ErrorCode::kContainerUnrecognized, "no demuxer accepts the input", err);
  }
  format_.reset(raw);

  // Refuse absurd declared sizes before any decoder allocates a frame.
  for (unsigned i = 0; i < format_->nb_streams; ++i) {
    const AVCodecParameters* par = format_->streams[i]->codecpar;
    if (par->codec_type != AVMEDIA_TYPE_VIDEO || par->width <= 0 || par->height <= 0) continue;
    if ((format_->streams[i]->disposition & AV_DISPOSITION_ATTACHED_PIC) != 0) continue;
    if (par->width > limits_.max_dimension || par->height > limits_.max_dimension ||
        static_cast<long long>(par->width) * par->height > limits_.max_pixels) {
      return CheckDimensions(par->width, par->height, limits_);
    }
  }

  StreamOptions stream_options(format_->nb_streams);
  for (unsigned i = 0; i < format_->nb_streams; ++i) {
    av_dict_set_int(stream_options.at(i), "max_pixels", limits_.max_pixels, 0);
    av_dict_set_int(stream_options.at(i), "threads", 1, 0);
  }
  err = avformat_find_stream_info(format_.get(), stream_options.data());
  if (err < 0) {
    if (deadline_.Expired()) return AvStatus(ErrorCode::kTimeout, "probing timed out", err);
    return AvStatus(ErrorCode::kContainerUnrecognized, "cannot read the stream layout", err);
  }
  if (deadline_.Expired()) return Status(ErrorCode::kTimeout, "probing timed out");

  // The video stream: libav's best pick unless it is cover art.
  const int best = av_find_best_stream(format_.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  auto usable = [this](int i) {
    const AVStream* st = format_->streams[i];
    return st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO &&
           (st->disposition & AV_DISPOSITION_ATTACHED_PIC) == 0;
  };
  if (best >= 0 && usable(best)) {
    stream_index_ = best;
  } else {
    for (unsigned i = 0; i < format_->nb_streams && stream_index_ < 0; ++i) {
      if (usable(static_cast<int>(i))) stream_index_ = static_cast<int>(i);
    }
  }
  if (stream_index_ < 0) {
    return Status(ErrorCode::kNoVideoStream, "the container has no video stream");
  }
  stream_ = format_->streams[stream_index_];
  if (!ValidRational(stream_->time_base)) {
    return Status(ErrorCode::kContainerUnrecognized, "the video stream has no valid time base");
  }
  for (unsigned i = 0; i < format_->nb_streams; ++i) {
    AVStream* st = format_->streams[i];
    if (st->codecpar->codec_type == AVMEDIA_TYPE_AUDIO) meta_.has_audio = true;
    if (static_cast<int>(i) != stream_index_) st->discard = AVDISCARD_ALL;
  }

  VSIEVE_RETURN_IF_ERROR(OpenDecoder());
  FillMeta();
  return Status::Ok();
}

Status LibavVideoDecoder::OpenDecoder() {
  const AVCodecParameters* par = stream_->codecpar;
  meta_.codec = avcodec_get_name(par->codec_id);
  const AVCodec* decoder =
      par->codec_id == AV_CODEC_ID_NONE ? nullptr : avcodec_find_decoder(par->codec_id);
  if (decoder == nullptr) {
    std::string tag(4, ' ');
    for (int k = 0; k < 4; ++k) {
      const char c = static_cast<char>((par->codec_tag >> (8 * k)) & 0xff);
      tag[k] = (c >= 0x20 && c < 0x7f) ? c : '?';
    }
    return Status(ErrorCode::kUnsupportedCodec,
                  "no decoder for codec " + meta_.codec + " (tag '" + tag + "')");
  }
  if (par->width <= 0 || par->height <= 0) {
    return AvStatus(ErrorCode::kTruncated, "no frame size found in the stream", 0);
  }
  VSIEVE_RETURN_IF_ERROR(CheckDimensions(par->width, par->height, limits_));

  codec_.reset(avcodec_alloc_context3(decoder));
  if (!codec_) return Status(ErrorCode::kInternal, "avcodec_alloc_context3 failed");
  int err = avcodec_parameters_to_context(codec_.get(), par);
  if (err < 0) return AvStatus(ErrorCode::kUnsupportedCodec, "bad codec parameters", err);
  codec_->pkt_timebase = stream_->time_base;
  codec_->max_pixels = limits_.max_pixels;
  if (limits_.decoder_threads > 1) {
    codec_->thread_count = limits_.decoder_threads;
    codec_->thread_type = FF_THREAD_SLICE;  // frame threads drain on every flush after a seek
  } else {
    codec_->thread_count = 1;
  }
  err = avcodec_open2(codec_.get(), decoder, nullptr);
  if (err < 0) return AvStatus(ErrorCode::kUnsupportedCodec, "the decoder refused the stream", err);

  packet_.reset(av_packet_alloc());
  frame_.reset(av_frame_alloc());
  last_frame_.reset(av_frame_alloc());
  if (!packet_ || !frame_ || !last_frame_) return Status(ErrorCode::kInternal, "out of memory");
  return Status::Ok();
}

void LibavVideoDecoder::FillMeta() {
  const AVCodecParameters* par = stream_->codecpar;
  meta_.coded_width = par->width;
  meta_.coded_height = par->height;
  meta_.rotation = ReadRotation(stream_);
  const bool swap = meta_.rotation == 90 || meta_.rotation == 270;
  meta_.width = swap ? par->height : par->width;
  meta_.height = swap ? par->width : par->height;

  AVRational rate = stream_->avg_frame_rate;
  if (!ValidRational(rate)) rate = stream_->r_frame_rate;
  meta_.fps = ValidRational(rate) ? av_q2d(rate) : 0.0;
  if (!(meta_.fps > 0.0 && meta_.fps <= 1000.0)) meta_.fps = 0.0;

  // A start beyond +-2^60 ticks is nonsense; ignoring it keeps target arithmetic in range.
  constexpr int64_t kMaxStart = int64_t{1} << 60;
  start_pts_ = stream_->start_time != AV_NOPTS_VALUE && stream_->start_time > -kMaxStart &&
                       stream_->start_time < kMaxStart
                   ? stream_->start_time
                   : 0;
  if (stream_->duration != AV_NOPTS_VALUE && stream_->duration > 0 &&
      ValidRational(stream_->time_base)) {
    meta_.duration_s = static_cast<double>(stream_->duration) * av_q2d(stream_->time_base);
  } else if (format_->duration != AV_NOPTS_VALUE && format_->duration > 0) {
    meta_.duration_s = static_cast<double>(format_->duration) / AV_TIME_BASE;
  }
  if (!std::isfinite(meta_.duration_s) || meta_.duration_s < 0.0) meta_.duration_s = 0.0;

  if (stream_->nb_frames > 0) {
    meta_.frame_count = stream_->nb_frames;
  } else if (meta_.duration_s > 0.0 && meta_.fps > 0.0) {
    meta_.frame_count = std::llround(meta_.duration_s * meta_.fps);
  }
}

double LibavVideoDecoder::PtsToSeconds(int64_t pts) const {
  // In double: hostile timestamps must not overflow an integer subtraction.
  return (static_cast<double>(pts) - static_cast<double>(start_pts_)) * av_q2d(stream_->time_base);
}

bool LibavVideoDecoder::ErrorsExceeded() const {
  const int errors = ErrorSum();
  if (errors > limits_.max_errors) return true;
  return stats_.packets_read > 0 &&
         static_cast<double>(errors) / stats_.packets_read > limits_.max_error_ratio;
}

StatusOr<std::vector<Frame>> LibavVideoDecoder::Sample(const SamplingPlan& plan) {
  t_first_av_error.clear();
  deadline_.Set(limits_.decode_deadline_s);
  std::vector<Frame> out;
  if (plan.times_s.empty()) return out;

  Cursor cursor;
  const double tb = av_q2d(stream_->time_base);
  // A frame stamped within this much before a planned time counts as reaching it: container
  // timestamps are rounded (Matroska stores milliseconds).
  const double tolerance = meta_.fps > 0.0 ? std::min(1e-3, 0.25 / meta_.fps) : 1e-3;
  for (size_t i = 0; i < plan.times_s.size(); ++i) {
    cursor.full.push_back(plan.full.size() != plan.times_s.size() || plan.full[i]);
    const double t = plan.times_s[i];
    const double ticks = std::max(0.0, t - tolerance) / tb;
    const int64_t target = start_pts_ + static_cast<int64_t>(std::ceil(std::min(ticks, 9e15)));
    if (cursor.targets.empty() || target > cursor.targets.back()) {
      cursor.targets.push_back(target);
    } else {
      cursor.targets.push_back(cursor.targets.back());  // unsorted input: never go backwards
    }
  }
  const size_t max_seeks = 4 * cursor.targets.size() + 16;

  bool deciding = true;  // choose between seeking and decoding forward for cursor.next
  while (cursor.next < cursor.targets.size()) {
    if (deadline_.Expired()) break;
    if (ErrorSum() > limits_.max_errors) break;  // the result fails anyway
    if (cursor.reseek) {
      cursor.reseek = false;
      RetrySeek(&cursor);
    } else if (deciding && static_cast<size_t>(stats_.seeks) < max_seeks) {
      MaybeSeekForward(&cursor);
    }
    deciding = false;

    const size_t before = cursor.next;
    const int err = av_read_frame(format_.get(), packet_.get());
    if (err < 0) {
      if (err == AVERROR(EAGAIN)) continue;
      if (deadline_.Expired()) break;
      const bool at_end = err == AVERROR_EOF ||
                          (format_->pb != nullptr && avio_feof(format_->pb)) ||
                          ++cursor.consecutive_demux_errors > kMaxConsecutiveDemuxErrors;
      if (!at_end) {
        ++stats_.demux_errors;
        continue;
      }
      if (cursor.awaiting_keyframe && CanRetrySeek(cursor)) {
        RetrySeek(&cursor);  // the end came before any keyframe: look further back
        continue;
      }
      cursor.eof = true;
      Decode(nullptr, &cursor, &out);
      if (cursor.reseek) continue;  // the drained frame landed past a fresh seek's target
      break;
    }
    cursor.consecutive_demux_errors = 0;
    if (packet_->stream_index != stream_index_) {
      av_packet_unref(packet_.get());
      continue;
    }
    ++stats_.packets_read;
    if ((packet_->flags & AV_PKT_FLAG_CORRUPT) != 0) ++stats_.resyncs;
    if (packet_->dts != AV_NOPTS_VALUE) {
      if (cursor.last_dts != AV_NOPTS_VALUE && packet_->dts < cursor.last_dts) ++stats_.resyncs;
      cursor.last_dts = packet_->dts;
      // Bounded so that a hostile timestamp cannot make every keyframe look too late.
      if ((packet_->flags & AV_PKT_FLAG_KEY) != 0 && packet_->pts != AV_NOPTS_VALUE &&
          packet_->pts > packet_->dts &&
          PtsToSeconds(packet_->pts) - PtsToSeconds(packet_->dts) < kMaxReorderS) {
        cursor.key_reorder = std::max(cursor.key_reorder, packet_->pts - packet_->dts);
      }
    }
    const int64_t packet_pts = packet_->pts != AV_NOPTS_VALUE ? packet_->pts : packet_->dts;
    if (packet_pts != AV_NOPTS_VALUE &&
        (cursor.max_read_pts == AV_NOPTS_VALUE || packet_pts > cursor.max_read_pts)) {
      cursor.max_read_pts = packet_pts;
    }
    if (cursor.awaiting_keyframe) {
      if ((packet_->flags & AV_PKT_FLAG_KEY) == 0) {
        const bool past = packet_pts != AV_NOPTS_VALUE &&
                          packet_pts > cursor.targets[cursor.seek_target] && CanRetrySeek(cursor);
        av_packet_unref(packet_.get());
        if (past) cursor.reseek = true;
        continue;
      }
      cursor.awaiting_keyframe = false;
    }
    // Frames before the target that nothing references are never needed.
    codec_->skip_frame = (packet_pts != AV_NOPTS_VALUE && packet_pts < cursor.targets[cursor.next])
                             ? AVDISCARD_NONREF
                             : AVDISCARD_DEFAULT;
    Decode(packet_.get(), &cursor, &out);
    av_packet_unref(packet_.get());
    if (cursor.next != before) deciding = true;
  }

  // Planned times past the last frame but inside its display interval map to that frame.
  if (cursor.eof && cursor.next < cursor.targets.size() &&
      cursor.last_frame_pts != AV_NOPTS_VALUE && last_frame_->format >= 0) {
    const double frame_s = meta_.fps > 0.0 ? 1.0 / meta_.fps : 0.0;
    const double last_s = PtsToSeconds(cursor.last_frame_pts);
    bool mapped = false;
    bool full = false;
    while (cursor.next < cursor.targets.size() &&
           PtsToSeconds(cursor.targets[cursor.next]) < last_s + 1.5 * frame_s) {
      full = full || cursor.full[cursor.next];
      ++cursor.next;
      ++cursor.satisfied;
      mapped = true;
    }
    if (mapped && !cursor.last_frame_returned) {
      Frame frame;
      if (Convert(last_frame_.get(), cursor.last_frame_pts, full, &frame)) {
        out.push_back(std::move(frame));
      }
    }
  }
  stats_.frames_returned += static_cast<int>(out.size());

  if (deadline_.Expired()) {
    return Status(ErrorCode::kTimeout, "sampling passed the decode deadline of " +
                                           std::to_string(limits_.decode_deadline_s) + " s");
  }
  const std::string counts = " (packets " + std::to_string(stats_.packets_read) +
                             ", demux errors " + std::to_string(stats_.demux_errors) +
                             ", decode errors " + std::to_string(stats_.decode_errors) +
                             ", corrupt frames " + std::to_string(stats_.corrupt_frames) + ")";
  if (ErrorsExceeded()) {
    return AvStatus(ErrorCode::kDecodeErrorsExceeded, "too many errors" + counts, 0);
  }
  const double reached =
      static_cast<double>(cursor.satisfied) / static_cast<double>(cursor.targets.size());
  if (out.empty() || reached < limits_.min_returned_ratio) {
    return AvStatus(ErrorCode::kTruncated,
                    "reached " + std::to_string(cursor.satisfied) + " of " +
                        std::to_string(cursor.targets.size()) + " planned frames" + counts,
                    0);
  }
  return out;
}

void LibavVideoDecoder::MaybeSeekForward(Cursor* cursor) {
  // The keyframe to decode from is the last one displayed by the target. Seeking to a keyframe
  // displayed after it would land past the target and go back a second or more (for MP4, whose
  // seeks go by pts, to the keyframe before), decoding again what was already read.
  const int64_t target = cursor->targets[cursor->next] - cursor->key_reorder;
  const int64_t read_to =
      cursor->max_read_pts != AV_NOPTS_VALUE ? cursor->max_read_pts : start_pts_;
  const AVIndexEntry* entry =
      avformat_index_get_entry_from_timestamp(stream_, target, AVSEEK_FLAG_BACKWARD);
  const int entries = avformat_index_get_entries_count(stream_);
  const AVIndexEntry* last = entries > 0 ? avformat_index_get_entry(stream_, entries - 1) : nullptr;
  const bool index_covers = last != nullptr && last->timestamp > read_to;
  bool seek = false;
  if (entry != nullptr && entry->timestamp > read_to) {
    seek = true;  // the keyframe before the target is beyond what was read
  } else if (!index_covers) {
    seek = PtsToSeconds(target) - PtsToSeconds(read_to) > kNoIndexSeekGapS;
  }
  if (!seek) return;
  cursor->seek_retries = 0;
  SeekBefore(cursor, cursor->next, 0.0);
}

bool LibavVideoDecoder::SeekBefore(Cursor* cursor, size_t target, double back_s) {
  const double tb = av_q2d(stream_->time_base);
  int64_t seek_pts = cursor->targets[target] - static_cast<int64_t>(back_s / tb);
  if (seek_pts < start_pts_) seek_pts = start_pts_;
  if (av_seek_frame(format_.get(), stream_index_, seek_pts, AVSEEK_FLAG_BACKWARD) < 0) {
    return false;  // keep decoding forward from where we are
  }
  avcodec_flush_buffers(codec_.get());
  ++stats_.seeks;
  cursor->eof = false;
  cursor->awaiting_keyframe = true;
  cursor->check_overshoot = true;
  cursor->seek_target = target;
  cursor->seek_back_s = back_s;
  cursor->max_read_pts = AV_NOPTS_VALUE;
  cursor->last_dts = AV_NOPTS_VALUE;
  return true;
}

bool LibavVideoDecoder::CanRetrySeek(const Cursor& cursor) const {
  return cursor.seek_retries < kMaxSeekRetries &&
         PtsToSeconds(cursor.targets[cursor.seek_target]) - cursor.seek_back_s > 0.0;
}

void LibavVideoDecoder::RetrySeek(Cursor* cursor) {
  ++cursor->seek_retries;
  const double back = cursor->seek_back_s <= 0.0 ? 1.0 : 2.0 * cursor->seek_back_s;
  if (!SeekBefore(cursor, cursor->seek_target, back)) {
    cursor->check_overshoot = false;  // stay where we are and decode forward
  }
}

void LibavVideoDecoder::Decode(const AVPacket* packet, Cursor* cursor, std::vector<Frame>* out) {
  int err = avcodec_send_packet(codec_.get(), packet);
  if (err == AVERROR(EAGAIN)) {
    ReceiveFrames(cursor, out);
    err = avcodec_send_packet(codec_.get(), packet);
  }
  if (err < 0 && err != AVERROR_EOF && err != AVERROR(EAGAIN)) ++stats_.decode_errors;
  ReceiveFrames(cursor, out);
}

void LibavVideoDecoder::ReceiveFrames(Cursor* cursor, std::vector<Frame>* out) {
  while (true) {
    const int err = avcodec_receive_frame(codec_.get(), frame_.get());
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return;
    if (err < 0) {
      ++stats_.decode_errors;
      return;
    }
    ++stats_.frames_decoded;
    if (frame_->decode_error_flags != 0) ++stats_.decode_errors;
    if ((frame_->flags & AV_FRAME_FLAG_CORRUPT) != 0) ++stats_.corrupt_frames;

    int64_t pts = frame_->best_effort_timestamp;
    if (pts == AV_NOPTS_VALUE) {
      const double step = meta_.fps > 0.0 ? 1.0 / (meta_.fps * av_q2d(stream_->time_base)) : 1.0;
      const int64_t ticks = std::clamp<int64_t>(std::llround(std::min(step, 1e12)), 1, 1LL << 40);
      if (cursor->last_frame_pts == AV_NOPTS_VALUE) {
        pts = start_pts_;
      } else if (cursor->last_frame_pts < INT64_MAX - ticks) {
        pts = cursor->last_frame_pts + ticks;
      } else {
        pts = cursor->last_frame_pts;
      }
    }

    if (cursor->check_overshoot) {
      cursor->check_overshoot = false;
      if (pts > cursor->targets[cursor->seek_target] && CanRetrySeek(*cursor)) {
        cursor->reseek = true;  // landed past the target: the frame it needs is further back
        av_frame_unref(frame_.get());
        return;
      }
    }

    // Every planned time this frame reaches; it is kept in full when any of them wants it so.
    size_t reached = cursor->next;
    bool full = false;
    while (reached < cursor->targets.size() && pts >= cursor->targets[reached]) {
      full = full || cursor->full[reached];
      ++reached;
    }
    bool returned = false;
    if (reached > cursor->next) {
      Frame frame;
      if (Convert(frame_.get(), pts, full, &frame)) {
        out->push_back(std::move(frame));
        returned = true;
        cursor->satisfied += reached - cursor->next;
        cursor->next = reached;
      }
    }
    cursor->last_frame_pts = pts;
    cursor->last_frame_returned = returned;
    av_frame_unref(last_frame_.get());
    av_frame_move_ref(last_frame_.get(), frame_.get());
  }
}

bool LibavVideoDecoder::Convert(const AVFrame* frame, int64_t pts, bool full, Frame* out) {
  const int width = frame->width;
  const int height = frame->height;
  if (width <= 0 || height <= 0 || frame->format < 0 ||
      !CheckDimensions(width, height, limits_).ok()) {
    ++stats_.decode_errors;
    return false;
  }
  const int long_side = std::max(width, height);
  const double scale = limits_.analysis_max_side > 0 && long_side > limits_.analysis_max_side
                           ? static_cast<double>(limits_.analysis_max_side) / long_side
                           : 1.0;
  const int out_w = std::max(1, static_cast<int>(std::lround(width * scale)));
  const int out_h = std::max(1, static_cast<int>(std::lround(height * scale)));
  // sws_getCachedContext frees the context it is given when it cannot reuse it.
  sws_.reset(sws_getCachedContext(
      sws_.release(), width, height, static_cast<AVPixelFormat>(frame->format), out_w, out_h,
      AV_PIX_FMT_BGR24, scale < 1.0 ? SWS_AREA : SWS_POINT, nullptr, nullptr, nullptr));
  if (sws_ == nullptr) {
    ++stats_.decode_errors;
    return false;
  }
  cv::Mat padded;
  const cv::Mat view = PaddedBgr(out_w, out_h, &padded);
  uint8_t* dst_data[4] = {padded.data, nullptr, nullptr, nullptr};
  int dst_linesize[4] = {static_cast<int>(padded.step[0]), 0, 0, 0};
  if (sws_scale(sws_.get(), frame->data, frame->linesize, 0, height, dst_data, dst_linesize) <= 0) {
    ++stats_.decode_errors;
    return false;
  }
  switch (meta_.rotation) {
    case 90:
      cv::rotate(view, out->bgr, cv::ROTATE_90_CLOCKWISE);
      break;
    case 180:
      cv::rotate(view, out->bgr, cv::ROTATE_180);
      break;
    case 270:
      cv::rotate(view, out->bgr, cv::ROTATE_90_COUNTERCLOCKWISE);
      break;
    default:
      out->bgr = view;  // copied below unless a thin copy replaces it
      break;
  }
  out->analysis_scale = static_cast<double>(out_w) / width;
  out->time_s = PtsToSeconds(pts);
  const double index = out->time_s * meta_.fps;
  out->index =
      meta_.fps > 0.0 && std::fabs(index) < 9e15 ? std::llround(index) : stats_.frames_decoded - 1;
  if (!full && limits_.thin_max_side > 0) *out = ThinCopy(*out, limits_.thin_max_side);
  // A frame kept at this size owns compact rows, not the padded conversion buffer.
  if (out->bgr.datastart == padded.datastart) out->bgr = out->bgr.clone();
  return true;
}

}  // namespace

void SilenceAvLogging() { InstallAvLogOnce(); }

int ReadRotation(const AVStream* st) {
  double theta = 0.0;
  size_t size = 0;
  const uint8_t* matrix = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size);
  if (matrix != nullptr && size >= 9 * sizeof(int32_t)) {
    theta = -av_display_rotation_get(reinterpret_cast<const int32_t*>(matrix));
  } else if (const AVDictionaryEntry* tag = av_dict_get(st->metadata, "rotate", nullptr, 0)) {
    theta = std::strtod(tag->value, nullptr);
  }
  if (!std::isfinite(theta)) return 0;
  theta -= 360.0 * std::floor(theta / 360.0 + 0.9 / 360.0);
  const int quarter = static_cast<int>(std::lround(theta / 90.0)) % 4;
  return quarter * 90;
}

StatusOr<std::unique_ptr<VideoDecoder>> VideoDecoder::Open(const std::string& path,
                                                           const DecodeLimits& limits) {
  InstallAvLogOnce();
  t_first_av_error.clear();
  auto decoder = std::make_unique<LibavVideoDecoder>(limits);
  VSIEVE_RETURN_IF_ERROR(decoder->OpenFile(path));
  return std::unique_ptr<VideoDecoder>(std::move(decoder));
}

}  // namespace vsieve::media
