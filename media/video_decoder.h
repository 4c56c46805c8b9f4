#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "media/frame.h"
#include "media/sampling_plan.h"

namespace vsieve::media {

// Limits that keep a hostile or broken file from taking unbounded time or memory.
struct DecodeLimits {
  long long probe_size_bytes = 5 << 20;  // avformat probesize
  double analyze_duration_s = 5.0;       // avformat max_analyze_duration
  int max_dimension = 8192;              // either side of the coded frame
  long long max_pixels = 8192LL * 4320;  // width * height
  int min_dimension = 16;                // smaller frames are refused as DIMENSIONS_EXCEED_LIMIT
  double open_deadline_s = 10.0;         // interrupt callback deadline for opening
  double decode_deadline_s = 120.0;      // and for sampling
  int analysis_max_side = 640;           // frames are scaled so their long side is at most this
  int thin_max_side = 320;  // frames only windows read (SamplingPlan::full): this long side; 0 off
  // Failure thresholds, checked after sampling:
  double max_error_ratio = 0.2;     // (demux + decode errors + corrupt) / packets read
  int max_errors = 200;             // absolute cap on the same sum
  double min_returned_ratio = 0.5;  // below this share of planned frames: TRUNCATED
  int decoder_threads = 1;
};

// Opens one video with libavformat/libavcodec and returns frames at planned times.
//
// Open() reads the header only (cheap): metadata, rotation side data, codec checks and limits.
// Sample() reaches each planned time by seeking to the keyframe before it only when that keyframe
// lies beyond what was already read, then decodes forward, discarding non-reference frames that
// are not wanted. Each returned frame is the first frame whose time is >= the planned time.
//
// Errors: kInputEmpty, kContainerUnrecognized, kNoVideoStream, kUnsupportedCodec,
// kDimensionsExceedLimit, kTruncated, kDecodeErrorsExceeded, kTimeout (kObjectNotFound when the
// path does not exist). Messages carry the first libav error line of the failing call. libav's
// own logging is silenced process-wide on the first Open(). Not thread-safe: one decoder per
// thread; separate decoders may run concurrently.
class VideoDecoder {
 public:
  // Opens `path` and reads its header and stream info (no frames beyond what libavformat's
  // probing decodes). The caller owns the returned decoder.
  static common::StatusOr<std::unique_ptr<VideoDecoder>> Open(const std::string& path,
                                                              const DecodeLimits& limits);
  virtual ~VideoDecoder() = default;

  // What Open() read; valid for the decoder's lifetime.
  virtual const VideoMeta& meta() const = 0;
  // Counters of Sample() calls on this decoder (they add up across calls).
  virtual const DecodeStats& stats() const = 0;

  // Decodes the frames of `plan` (times ascending) and returns them in time order, each once:
  // planned times that reach the same frame share it, and times after the last frame but within
  // its display interval map to it. Blocks; bounded by limits.decode_deadline_s. Fails with
  // kTruncated when fewer than min_returned_ratio of the planned times were reached and with
  // kDecodeErrorsExceeded when the error counts pass the limits; stats() is filled either way.
  virtual common::StatusOr<std::vector<Frame>> Sample(const SamplingPlan& plan) = 0;
};

}  // namespace vsieve::media
