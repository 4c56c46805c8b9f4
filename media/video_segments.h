#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace vsieve::media {

// Where the frames and keyframes of a video's main video stream lie, read from its packets
// (demuxing only, nothing decoded).
struct KeyframeIndex {
  int time_base_num = 1;  // the video stream's time base
  int time_base_den = 1;
  int64_t start_pts = 0;           // the stream's start time (0 when the container has none)
  std::vector<int64_t> frame_pts;  // every video packet's pts, ascending (display order)
  std::vector<size_t> keyframes;   // positions in frame_pts of the keyframe packets, ascending
};

// Reads the packets of `path`'s main video stream. Errors: kObjectNotFound (no such file),
// kContainerUnrecognized, kNoVideoStream, kTruncated (no packet or no keyframe). Blocks for one
// pass over the file; thread-safe.
common::StatusOr<KeyframeIndex> ScanKeyframes(const std::string& path);

// One part of a video cut at keyframes: the frames with pts in [from_pts, to_pts) (the input's
// time base; the first part starts at INT64_MIN and the last ends at INT64_MAX, so that nothing
// is left out), which are frames [first_frame, first_frame + frames) of KeyframeIndex::frame_pts.
struct Segment {
  size_t part = 0;  // index into the weights given to SplitAtKeyframes
  int64_t from_pts = 0;
  int64_t to_pts = 0;
  size_t first_frame = 0;
  size_t frames = 0;
  double start_s = 0;  // the first frame's time from the stream start
  double end_s = 0;    // the next part's first frame's time, or the end of the last frame
};

// Cuts the video into at most weights.size() parts in order, part k's share of the frames
// proportional to weights[k] (> 0): each cut is the keyframe nearest to its share's point, so
// a cut is off by at most half a GOP, and every part starts at a keyframe (the first at the
// first frame). A part whose cut would coincide with its neighbour's (fewer keyframes than
// parts) is left out: the result may hold fewer segments than weights, never an empty one.
// Pure.
std::vector<Segment> SplitAtKeyframes(const KeyframeIndex& index,
                                      const std::vector<double>& weights);

// Concatenates the video streams of `parts` (MP4 files of one encoder with the same settings,
// as WriteCroppedVideo writes the segments of one input) into one MP4 at `output`, in order,
// copying their packets (no re-encoding), and copies every audio stream of `audio_source`
// that MP4 can hold ("" = none) beside them, interleaved by time, with the index at the front.
// Timestamps are kept as they are in the parts. On failure the partial output is removed.
// Errors: kInvalidArgument (no parts, or parts whose codec parameters or headers differ: they
// cannot be joined without re-encoding), kContainerUnrecognized / kNoVideoStream (a part or the
// audio source cannot be read), kEncodeFailed (writing). Blocks; thread-safe.
common::Status ConcatSegments(const std::vector<std::string>& parts,
                              const std::string& audio_source, const std::string& output);

}  // namespace vsieve::media
