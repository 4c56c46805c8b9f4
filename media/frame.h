#pragma once

#include <cstdint>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace vsieve::media {

// What the container and stream say about a video, before any pixel is decoded.
// width/height are of the displayed frame: the container's rotation is already applied.
struct VideoMeta {
  int width = 0;
  int height = 0;
  int coded_width = 0;  // as stored, before rotation
  int coded_height = 0;
  double fps = 0.0;
  double duration_s = 0.0;
  int64_t frame_count = 0;  // declared or estimated (duration * fps)
  std::string codec;        // libavcodec short name, e.g. "h264"
  int rotation = 0;         // clockwise degrees applied for display: 0, 90, 180 or 270
  bool has_audio = false;
};

// One decoded, displayed-orientation frame. `bgr` is scaled by analysis_scale
// (analysis pixels = displayed pixels * scale) so that memory stays bounded for 8K input.
// A thin frame is one only the windows read (SamplingPlan::full): it is kept smaller still,
// as ThinCopy() makes it, and whole-clip consumers (SelectEven) pass it over.
struct Frame {
  int64_t index = 0;    // display-order frame number, from the timestamp and fps
  double time_s = 0.0;  // presentation time from the start of the stream
  double analysis_scale = 1.0;
  bool thin = false;
  cv::Mat bgr;  // CV_8UC3
};

// `frame` with its long side brought down to `max_side` (INTER_AREA), marked thin. A frame
// already that small is shared, not copied. Every thin picture of a video comes from here, so
// a thin copy of a full frame matches a frame decoded thin.
Frame ThinCopy(const Frame& frame, int max_side);

// Counters of everything that went wrong while reading; written into the result row.
struct DecodeStats {
  int packets_read = 0;
  int frames_decoded = 0;   // frames that came out of the decoder (wanted or not)
  int frames_returned = 0;  // frames handed to the caller
  int seeks = 0;
  int demux_errors = 0;    // av_read_frame failures other than EOF
  int resyncs = 0;         // packets flagged corrupt or timestamps going backwards
  int decode_errors = 0;   // send/receive failures and frames with decode_error_flags
  int corrupt_frames = 0;  // AV_FRAME_FLAG_CORRUPT
};

// The first frames whose time lies in [start_s, end_s), in order.
std::vector<const Frame*> FramesIn(const std::vector<Frame>& frames, double start_s, double end_s);

// `count` frames spread evenly over the full (not thin) frames of `frames` (all of them when
// there are fewer; over every frame when none is full).
std::vector<const Frame*> SelectEven(const std::vector<Frame>& frames, int count);

}  // namespace vsieve::media
