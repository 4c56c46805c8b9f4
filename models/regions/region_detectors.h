#pragma once

#include <string_view>
#include <vector>

#include "models/regions/region_detector.h"
#include "models/regions/text_detector.h"

namespace vsieve::models {

// Letterbox and pillarbox bars: rows/columns at the frame edges that are near-black and flat in
// every sampled frame, while the picture inside varies (so a dark scene is not a border).
class BlackBorderDetector : public RegionDetector {
 public:
  std::string_view name() const override { return "black_border"; }
  common::StatusOr<std::vector<Region>> Detect(const std::vector<media::Frame>& frames) override;
};

// Blurred fill: the side (or top/bottom) bands around portrait video placed in a landscape
// frame, filled with a blurred, enlarged copy of the picture. Found as edge bands with far less
// high-frequency energy than the centre, and a sharp vertical (horizontal) seam between them.
class BlurFillDetector : public RegionDetector {
 public:
  std::string_view name() const override { return "blur_fill"; }
  common::StatusOr<std::vector<Region>> Detect(const std::vector<media::Frame>& frames) override;
};

// Burned-in text and subtitles through the DB text detector on a few frames. Lines that sit in
// caption bands or persist at one place are avoided (label "subtitle" / "caption"); others are
// reported as "scene_text" with avoid = false. The detector is borrowed, not owned.
// `max_frames` frames spread over the video each take a 320x320 pass (about 50 ms each on two
// CPU cores), so the default of 4 costs about 200 ms; a frame that repeats an earlier one (a
// still, a held slide) shares its pass.
class TextRegionDetector : public RegionDetector {
 public:
  explicit TextRegionDetector(TextDetector* detector, int max_frames = 4)
      : detector_(detector), max_frames_(max_frames) {}
  std::string_view name() const override { return "text"; }
  common::StatusOr<std::vector<Region>> Detect(const std::vector<media::Frame>& frames) override;

 private:
  TextDetector* detector_;
  int max_frames_;
};

// Static overlays (watermarks, logos, station bugs): pixels with structure (edges) that stay
// still across frames while the rest of the picture changes.
class StaticOverlayDetector : public RegionDetector {
 public:
  std::string_view name() const override { return "watermark"; }
  common::StatusOr<std::vector<Region>> Detect(const std::vector<media::Frame>& frames) override;
};

}  // namespace vsieve::models
