#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <opencv2/core.hpp>
#include <string>

#include "common/status.h"

namespace vsieve::media {

// Where a frame handed to CropWriteOptions::draw lies in the input.
struct FrameStamp {
  int64_t pts = 0;        // in the input video stream's time base
  double time_s = 0;      // from the start of the stream
  bool keyframe = false;  // the decoder flagged it a keyframe
};

// How the cropped video is encoded ([output] codec, crf, preset).
struct CropWriteOptions {
  std::string codec = "libx264";  // a libavcodec H.264 encoder
  int crf = 18;                   // x264's constant rate factor (0..51)
  std::string preset = "veryfast";
  int threads = 0;          // decoder and encoder threads; 0 = libav's choice (all cores)
  double deadline_s = 600;  // the whole decode, crop and encode
  // When set and true, the write stops early with kTimeout ("cancelled"). Borrowed.
  const std::atomic<bool>* cancel = nullptr;
  // A segment: only the video frames whose timestamps (the input video stream's time base) lie
  // in [from_pts, to_pts) are written. Reading starts at the keyframe at or before from_pts (a
  // seek), and stops at the first decoded frame at or past to_pts. The defaults take them all.
  int64_t from_pts = std::numeric_limits<int64_t>::min();
  int64_t to_pts = std::numeric_limits<int64_t>::max();
  bool copy_audio = true;  // false: the output holds the video stream alone
  // When set, called on every frame before it is encoded, with the cropped frame as BGR in
  // displayed orientation (the container's rotation applied; it is turned back for storage).
  // It may paint on the picture but not resize it; an error stops the write with that error.
  std::function<common::Status(cv::Mat* bgr, const FrameStamp& stamp)> draw;
  // When set, incremented once per frame encoded (progress). Borrowed.
  std::atomic<int64_t>* frames_done = nullptr;
};

// What was written.
struct CropWriteResult {
  cv::Rect display_box;  // the crop in displayed pixels, as written (even sides)
  cv::Rect coded_box;    // the same in the stored (unrotated) picture
  int64_t frames = 0;    // video frames encoded
  double duration_s = 0;
  bool audio_copied = false;
  std::string audio_note;  // why an audio stream was left out, or ""
  int64_t bytes = 0;
};

// The crop `display_box` (displayed pixels, after the container's rotation) mapped to the stored
// picture of a `coded_width` x `coded_height` stream rotated clockwise by `rotation` degrees
// for display, then shrunk to even offsets and sides (4:2:0 chroma) so that it never grows past
// the given box. Empty when nothing of at least 2x2 is left. Pure.
cv::Rect CodedCropBox(const cv::Rect& display_box, int coded_width, int coded_height, int rotation);

// Decodes every frame of `input` and writes the region `display_box` of each as a new MP4 at
// `output`: H.264 from options.codec at options.crf and options.preset, yuv420p, the source's
// frame rate and timestamps, its rotation kept as the output's display matrix (the crop is
// taken from the stored picture, so nothing is rotated), every audio stream MP4 can hold copied
// without re-encoding (unless options.copy_audio is false), and the index at the front
// (faststart). With options.from_pts / to_pts only that segment is written; with options.draw
// each frame is painted before it is encoded. On failure the partial output is removed.
// Errors: the decoder's codes for an unreadable input (kContainerUnrecognized, kNoVideoStream,
// kUnsupportedCodec), kInvalidArgument (an empty or outside box, an unknown encoder),
// kEncodeFailed (the encoder or muxer failed, including a write error, or a failed seek to the
// segment), kTimeout (deadline or cancel), and the draw callback's own errors. Blocks;
// thread-safe (separate calls share nothing).
common::StatusOr<CropWriteResult> WriteCroppedVideo(const std::string& input,
                                                    const cv::Rect& display_box,
                                                    const std::string& output,
                                                    const CropWriteOptions& options);

// True when libavcodec has an encoder named `codec`. Pure.
bool HaveEncoder(const std::string& codec);

}  // namespace vsieve::media
