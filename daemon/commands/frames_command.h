#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "daemon/config/filter_config.h"

namespace vsieve::daemon {

struct FramesOptions {
  // Paths or URIs as `vsieve probe` takes them.
  std::vector<std::string> inputs;
  std::string out_dir;   // --out: created when missing
  double fps = 1.0;      // frames per second of video (0.5 = one every 2 s)
  bool sampled = false;  // the filter's sampling plan instead of a fixed rate
  bool crop = false;     // crop each frame to the filter's safe crop
  std::string prefix = "frame_";
  std::string format = "png";  // png or jpg
  int quality = -1;            // jpg 0-100 (default 95); png compression 0-9 (default 3)
  bool pretty = false;
};

// The file name of one extracted frame: PREFIX + STEM + "_" + index (6 digits) + "_" + the
// frame's time in milliseconds (8 digits) + "ms." + format, e.g. "shot_clip_000025_00001000ms.png".
std::string FrameFileName(const std::string& prefix, const std::string& stem, int64_t index,
                          double time_s, const std::string& format);

// The times a fixed rate asks for in a video of `duration_s`: 0, 1/fps, 2/fps, ... below the
// duration. Pure.
std::vector<double> FixedRateTimes(double fps, double duration_s);

// `vsieve frames`: for each input (fetched as `vsieve probe` fetches it), decodes the frames at
// a fixed rate (each the first frame at or after its planned time; the decoder seeks to the
// keyframe before a time when it lies ahead and decodes forward) or, with --sampled, exactly
// the frames of the filter's sampling plan ([sampling] of the config), at full resolution in
// displayed orientation, and writes each with OpenCV (png or jpg) into out_dir. With --crop the
// filter runs first and the frames are cut to its safe crop. Writes out_dir/manifest.json (per
// input: its meta, the mode, the crop, and every frame's file, index, time and planned time; or
// its error) and prints one JSON line per input to `out`. A failing input does not stop the
// others. Progress on stderr when it is a terminal. Returns 0 when every input succeeded, 1
// when some failed, 2 for a setup error (bad options, an output folder that cannot be made,
// models that do not load).
int RunFrames(const FramesOptions& options, const FilterConfig& config, std::ostream& out);

}  // namespace vsieve::daemon
