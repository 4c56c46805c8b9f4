#pragma once

#include <iosfwd>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "daemon/config/filter_config.h"
#include "models/regions/region.h"

namespace vsieve::daemon {

struct AnnotateOptions {
  // A video path or URI as `vsieve probe` takes it; or, with images_dir, empty.
  std::string input;
  std::string images_dir;  // --images: annotate every image of this folder instead
  std::string output;      // -o: the MP4 to write, or with images_dir the folder to write into
  int every = 1;           // run the detectors on every Nth frame (counted from each keyframe)
  int crf = -1;            // -1 = [output] crf
  bool pretty = false;
};

// What is drawn on every frame of an annotated video besides the detectors' boxes: the filter's
// output row for the video, in displayed pixels.
struct Overlay {
  std::vector<models::Region> regions;   // abnormal_region_info.regions
  cv::Rect crop;                         // abnormal_region_crop.box; empty = none
  std::vector<std::string> clip_labels;  // "vfx_filter: normal_video 0.90", one per head
  struct WindowLabel {
    double start_s = 0;
    double end_s = 0;
    std::string text;  // "seg_simcam_filter 3-7s: normal_video 0.88"
  };
  std::vector<WindowLabel> windows;  // the sliding-window heads' labels
};

// The overlay of an output row's "info" object; keys it does not know are ignored. Pure.
Overlay OverlayFromInfo(const nlohmann::json& info);

// The colour (BGR) regions of `kind` are drawn in: black_border magenta, blur_fill cyan, text
// yellow, watermark orange, object green; the safe crop is white.
cv::Scalar KindColour(models::RegionKind kind);
inline const cv::Scalar kCropColour(255, 255, 255);

// The line thickness boxes are drawn with on a frame of this size.
int BoxThickness(cv::Size frame);

// Draws on `bgr` (displayed pixels): the overlay's regions, its crop outline, the clip labels
// and the labels of the windows that contain `time_s` (top left), then `detections` (boxes in
// the same pixels). Each box is outlined in its kind's colour with "kind label score" above it;
// the crop only when it is smaller than the frame.
void DrawAnnotations(cv::Mat* bgr, const Overlay& overlay, double time_s,
                     const std::vector<models::Region>& detections);

// `vsieve annotate`. Video: filters the input once (as `vsieve probe`) for its regions, crop and
// head labels, then re-encodes it (as [output] codec, crf, preset; audio copied) with every frame
// drawn (DrawAnnotations) and the configured [[detectors]] run on every Nth frame. With several
// [devices] the video is cut at keyframes into one segment per device, each segment's length in
// proportion to the device's weight (seed 000's split), the segments run in parallel each on
// detector instances of its own device, and the parts are joined without re-encoding. Images
// (images_dir): every image of the folder (png, jpg, jpeg, bmp, webp, tif, tiff) is run through
// the detectors on the first device and written with its boxes drawn, under the same name, into
// the output folder, with detections.json beside them.
// Prints one JSON summary to `out`. Progress on stderr when it is a terminal. Returns 0 on
// success; 1 when the input cannot be annotated (a failed segment, an unreadable video; the
// partial output is removed) or, for images, when some image could not be read (the others are
// written); 2 for a setup error (models, devices, the output folder).
int RunAnnotate(const AnnotateOptions& options, const FilterConfig& config, std::ostream& out);

}  // namespace vsieve::daemon
