#include "media/video_segments.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>

#include "media/av_handles.h"

namespace vsieve::media {
namespace {

using common::ErrorCode;
using common::Status;
using common::StatusOr;

// Read errors in a row after which an input is treated as ended.
constexpr int kMaxConsecutiveReadErrors = 64;

// Opens `path` and finds its main video stream (not an attached picture).
StatusOr<FormatContextPtr> OpenWithVideo(const std::string& path, int* video) {
  AVFormatContext* raw = nullptr;
  int err = avformat_open_input(&raw, path.c_str(), nullptr, nullptr);  // frees raw on failure
  if (err < 0) {
    if (err == AVERROR(ENOENT)) return AvFailure(ErrorCode::kObjectNotFound, path, err);
    return AvFailure(ErrorCode::kContainerUnrecognized, "no demuxer accepts " + path, err);
  }
  FormatContextPtr in(raw);
  err = avformat_find_stream_info(in.get(), nullptr);
  if (err < 0) {
    return AvFailure(ErrorCode::kContainerUnrecognized, "cannot read the streams of " + path, err);
  }
  *video = -1;
  const int best = av_find_best_stream(in.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  for (int i = -1; i < static_cast<int>(in->nb_streams) && *video < 0; ++i) {
    const int candidate = i < 0 ? best : i;
    if (candidate < 0) continue;
    const AVStream* st = in->streams[candidate];
    if (st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO &&
        (st->disposition & AV_DISPOSITION_ATTACHED_PIC) == 0) {
      *video = candidate;
    }
  }
  if (*video < 0) return Status(ErrorCode::kNoVideoStream, path + " has no video stream");
  return in;
}

// Reads the next packet of one of `wanted` streams (indices of `in`) into `packet`; false at
// the end of the input.
bool ReadWanted(AVFormatContext* in, AVPacket* packet, const std::vector<bool>& wanted) {
  int errors = 0;
  while (true) {
    const int err = av_read_frame(in, packet);
    if (err < 0) {
      if (err == AVERROR_EOF || (in->pb != nullptr && avio_feof(in->pb)) ||
          ++errors > kMaxConsecutiveReadErrors) {
        return false;
      }
      continue;
    }
    errors = 0;
    if (packet->stream_index < static_cast<int>(wanted.size()) && wanted[packet->stream_index]) {
      return true;
    }
    av_packet_unref(packet);
  }
}

int64_t PacketTime(const AVPacket* packet) {
  return packet->dts != AV_NOPTS_VALUE ? packet->dts : packet->pts;
}

bool SameBytes(const uint8_t* a, int a_size, const uint8_t* b, int b_size) {
  return a_size == b_size && (a_size == 0 || std::memcmp(a, b, static_cast<size_t>(a_size)) == 0);
}

// One part being read: its demuxer and its video stream.
struct Part {
  std::string path;
  FormatContextPtr in;
  int video = -1;
  std::vector<bool> wanted;
};

Status Concat(const std::vector<std::string>& paths, const std::string& audio_source,
              const std::string& output) {
  if (paths.empty()) return Status(ErrorCode::kInvalidArgument, "no segment to join");
  std::vector<Part> parts(paths.size());
  for (size_t i = 0; i < paths.size(); ++i) {
    parts[i].path = paths[i];
    VSIEVE_ASSIGN_OR_RETURN(parts[i].in, OpenWithVideo(paths[i], &parts[i].video));
    parts[i].wanted.assign(parts[i].in->nb_streams, false);
    parts[i].wanted[parts[i].video] = true;
    const AVCodecParameters* first = parts[0].in->streams[parts[0].video]->codecpar;
    const AVCodecParameters* par = parts[i].in->streams[parts[i].video]->codecpar;
    if (par->codec_id != first->codec_id || par->width != first->width ||
        par->height != first->height || par->format != first->format ||
        !SameBytes(par->extradata, par->extradata_size, first->extradata, first->extradata_size)) {
      return Status(ErrorCode::kInvalidArgument,
                    "segment " + std::to_string(i) + " (" + paths[i] +
                        ") was encoded differently from segment 0: the parts cannot be joined "
                        "without re-encoding");
    }
  }

  AVFormatContext* raw = nullptr;
  int err = avformat_alloc_output_context2(&raw, nullptr, "mp4", output.c_str());
  if (err < 0 || raw == nullptr) return AvFailure(ErrorCode::kInternal, "no MP4 muxer", err);
  OutputContextPtr out(raw);

  const AVStream* in_video = parts[0].in->streams[parts[0].video];
  AVStream* out_video = avformat_new_stream(out.get(), nullptr);
  if (out_video == nullptr) return Status(ErrorCode::kInternal, "avformat_new_stream failed");
  err = avcodec_parameters_copy(out_video->codecpar, in_video->codecpar);
  if (err < 0) return AvFailure(ErrorCode::kEncodeFailed, "video parameters", err);
  out_video->codecpar->codec_tag = 0;
  out_video->time_base = in_video->time_base;
  out_video->avg_frame_rate = in_video->avg_frame_rate;
  size_t size = 0;
  const uint8_t* matrix = av_stream_get_side_data(in_video, AV_PKT_DATA_DISPLAYMATRIX, &size);
  if (matrix != nullptr && size > 0) {
    uint8_t* copy = av_stream_new_side_data(out_video, AV_PKT_DATA_DISPLAYMATRIX, size);
    if (copy == nullptr) return Status(ErrorCode::kInternal, "out of memory for side data");
    std::memcpy(copy, matrix, size);
  }

  FormatContextPtr audio_in;
  std::vector<int> audio_map;  // audio input stream index -> output stream index, or -1
  std::vector<bool> audio_wanted;
  if (!audio_source.empty()) {
    int video = -1;
    VSIEVE_ASSIGN_OR_RETURN(audio_in, OpenWithVideo(audio_source, &video));
    audio_map.assign(audio_in->nb_streams, -1);
    audio_wanted.assign(audio_in->nb_streams, false);
    for (unsigned i = 0; i < audio_in->nb_streams; ++i) {
      AVStream* st = audio_in->streams[i];
      if (st->codecpar->codec_type != AVMEDIA_TYPE_AUDIO ||
          avformat_query_codec(out->oformat, st->codecpar->codec_id, FF_COMPLIANCE_NORMAL) != 1) {
        st->discard = AVDISCARD_ALL;
        continue;
      }
      AVStream* copy = avformat_new_stream(out.get(), nullptr);
      if (copy == nullptr) return Status(ErrorCode::kInternal, "avformat_new_stream failed");
      err = avcodec_parameters_copy(copy->codecpar, st->codecpar);
      if (err < 0) return AvFailure(ErrorCode::kEncodeFailed, "audio parameters", err);
      copy->codecpar->codec_tag = 0;
      copy->time_base = st->time_base;
      av_dict_copy(&copy->metadata, st->metadata, 0);
      audio_map[i] = copy->index;
      audio_wanted[i] = true;
    }
    if (std::none_of(audio_wanted.begin(), audio_wanted.end(), [](bool w) { return w; })) {
      audio_in.reset();
    }
  }

  err = avio_open2(&out->pb, output.c_str(), AVIO_FLAG_WRITE, nullptr, nullptr);
  if (err < 0) return AvFailure(ErrorCode::kEncodeFailed, "cannot create " + output, err);
  Dictionary mux_options;
  av_dict_set(mux_options.get(), "movflags", "+faststart", 0);
  err = avformat_write_header(out.get(), mux_options.get());
  if (err < 0) return AvFailure(ErrorCode::kEncodeFailed, "writing the MP4 header", err);

  PacketPtr video_packet(av_packet_alloc());
  PacketPtr audio_packet(av_packet_alloc());
  if (!video_packet || !audio_packet) return Status(ErrorCode::kInternal, "out of memory");
  size_t part = 0;
  const auto next_video = [&]() {
    while (part < parts.size()) {
      if (ReadWanted(parts[part].in.get(), video_packet.get(), parts[part].wanted)) return true;
      ++part;
    }
    return false;
  };
  bool have_video = next_video();
  bool have_audio =
      audio_in != nullptr && ReadWanted(audio_in.get(), audio_packet.get(), audio_wanted);
  int64_t last_dts = AV_NOPTS_VALUE;
  while (have_video || have_audio) {
    bool write_video = have_video;
    if (have_video && have_audio) {
      const AVStream* vs = parts[part].in->streams[parts[part].video];
      const AVStream* as = audio_in->streams[audio_packet->stream_index];
      write_video = av_compare_ts(PacketTime(video_packet.get()), vs->time_base,
                                  PacketTime(audio_packet.get()), as->time_base) <= 0;
    }
    if (write_video) {
      const AVStream* vs = parts[part].in->streams[parts[part].video];
      av_packet_rescale_ts(video_packet.get(), vs->time_base, out_video->time_base);
      video_packet->stream_index = out_video->index;
      video_packet->pos = -1;
      if (video_packet->dts != AV_NOPTS_VALUE) {
        if (last_dts != AV_NOPTS_VALUE && video_packet->dts <= last_dts) {
          return Status(ErrorCode::kInvalidArgument, "segment " + std::to_string(part) + " (" +
                                                         parts[part].path +
                                                         ") overlaps the one before it in time");
        }
        last_dts = video_packet->dts;
      }
      err = av_interleaved_write_frame(out.get(), video_packet.get());  // takes the reference
      if (err < 0) return AvFailure(ErrorCode::kEncodeFailed, "writing the output", err);
      have_video = next_video();
    } else {
      const AVStream* as = audio_in->streams[audio_packet->stream_index];
      AVStream* os = out->streams[audio_map[audio_packet->stream_index]];
      av_packet_rescale_ts(audio_packet.get(), as->time_base, os->time_base);
      audio_packet->stream_index = os->index;
      audio_packet->pos = -1;
      err = av_interleaved_write_frame(out.get(), audio_packet.get());
      if (err < 0) return AvFailure(ErrorCode::kEncodeFailed, "writing audio", err);
      have_audio = ReadWanted(audio_in.get(), audio_packet.get(), audio_wanted);
    }
  }
  err = av_write_trailer(out.get());
  if (err < 0) return AvFailure(ErrorCode::kEncodeFailed, "writing the MP4 index", err);
  err = avio_closep(&out->pb);
  if (err < 0) return AvFailure(ErrorCode::kEncodeFailed, "closing " + output, err);
  return Status::Ok();
}

}  // namespace

StatusOr<KeyframeIndex> ScanKeyframes(const std::string& path) {
  int video = -1;
  VSIEVE_ASSIGN_OR_RETURN(FormatContextPtr in, OpenWithVideo(path, &video));
  const AVStream* st = in->streams[video];
  KeyframeIndex index;
  index.time_base_num = st->time_base.num;
  index.time_base_den = st->time_base.den;
  index.start_pts = st->start_time == AV_NOPTS_VALUE ? 0 : st->start_time;
  std::vector<bool> wanted(in->nb_streams, false);
  wanted[video] = true;
  for (unsigned i = 0; i < in->nb_streams; ++i) {
    if (!wanted[i]) in->streams[i]->discard = AVDISCARD_ALL;
  }
  PacketPtr packet(av_packet_alloc());
  if (!packet) return Status(ErrorCode::kInternal, "out of memory");
  std::vector<int64_t> key_pts;
  while (ReadWanted(in.get(), packet.get(), wanted)) {
    const int64_t pts = packet->pts != AV_NOPTS_VALUE ? packet->pts : packet->dts;
    if (pts != AV_NOPTS_VALUE) {
      index.frame_pts.push_back(pts);
      if ((packet->flags & AV_PKT_FLAG_KEY) != 0) key_pts.push_back(pts);
    }
    av_packet_unref(packet.get());
  }
  if (index.frame_pts.empty() || key_pts.empty()) {
    return Status(ErrorCode::kTruncated, path + ": no timed video packet or no keyframe");
  }
  std::sort(index.frame_pts.begin(), index.frame_pts.end());
  index.frame_pts.erase(std::unique(index.frame_pts.begin(), index.frame_pts.end()),
                        index.frame_pts.end());
  std::sort(key_pts.begin(), key_pts.end());
  for (int64_t pts : key_pts) {
    const auto at = std::lower_bound(index.frame_pts.begin(), index.frame_pts.end(), pts);
    const size_t position = static_cast<size_t>(at - index.frame_pts.begin());
    if (index.keyframes.empty() || index.keyframes.back() != position) {
      index.keyframes.push_back(position);
    }
  }
  return index;
}

std::vector<Segment> SplitAtKeyframes(const KeyframeIndex& index,
                                      const std::vector<double>& weights) {
  std::vector<Segment> segments;
  const size_t n = index.frame_pts.size();
  if (n == 0 || weights.empty()) return segments;
  double total = 0;
  for (double w : weights) total += std::max(0.0, w);
  if (total <= 0) return segments;
  // cuts[k]: the first frame of part k; cuts[parts] = n.
  std::vector<size_t> cuts(weights.size() + 1, 0);
  cuts.back() = n;
  double cumulative = 0;
  for (size_t k = 1; k < weights.size(); ++k) {
    cumulative += std::max(0.0, weights[k - 1]);
    const double target = static_cast<double>(n) * cumulative / total;
    size_t best = cuts[k - 1];
    double best_distance = std::numeric_limits<double>::infinity();
    for (size_t key : index.keyframes) {
      if (key <= cuts[k - 1] || key >= n) continue;
      const double distance = std::abs(static_cast<double>(key) - target);
      if (distance < best_distance) {
        best = key;
        best_distance = distance;
      }
    }
    // Without a keyframe after the previous cut, this part is empty and the rest too.
    cuts[k] = best_distance == std::numeric_limits<double>::infinity() ? n : best;
  }
  const double tb = static_cast<double>(index.time_base_num) / index.time_base_den;
  const auto seconds = [&](int64_t pts) { return static_cast<double>(pts - index.start_pts) * tb; };
  const int64_t last_duration = n >= 2 ? index.frame_pts[n - 1] - index.frame_pts[n - 2] : 0;
  for (size_t k = 0; k < weights.size(); ++k) {
    if (cuts[k + 1] <= cuts[k]) continue;  // empty
    Segment s;
    s.part = k;
    s.first_frame = cuts[k];
    s.frames = cuts[k + 1] - cuts[k];
    s.from_pts = index.frame_pts[cuts[k]];
    s.to_pts = cuts[k + 1] < n ? index.frame_pts[cuts[k + 1]] : std::numeric_limits<int64_t>::max();
    s.start_s = seconds(index.frame_pts[cuts[k]]);
    s.end_s = cuts[k + 1] < n ? seconds(index.frame_pts[cuts[k + 1]])
                              : seconds(index.frame_pts[n - 1] + last_duration);
    segments.push_back(s);
  }
  if (!segments.empty()) segments.front().from_pts = std::numeric_limits<int64_t>::min();
  return segments;
}

common::Status ConcatSegments(const std::vector<std::string>& parts,
                              const std::string& audio_source, const std::string& output) {
  Status status = Concat(parts, audio_source, output);
  if (!status.ok()) std::remove(output.c_str());
  return status;
}

}  // namespace vsieve::media
