#include "tests/support/video_frames.h"

#include <algorithm>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

namespace vsieve::testing {

std::vector<media::Frame> ReadFramesEvenly(const std::string& path, int count, int max_side) {
  std::vector<media::Frame> all;
  cv::VideoCapture cap(path, cv::CAP_FFMPEG);
  if (!cap.isOpened()) return all;
  const double fps = cap.get(cv::CAP_PROP_FPS) > 0 ? cap.get(cv::CAP_PROP_FPS) : 25.0;
  cv::Mat bgr;
  int64_t index = 0;
  while (cap.read(bgr)) {
    media::Frame frame;
    frame.index = index;
    frame.time_s = static_cast<double>(index) / fps;
    const int long_side = std::max(bgr.cols, bgr.rows);
    frame.analysis_scale = long_side > max_side ? static_cast<double>(max_side) / long_side : 1.0;
    if (frame.analysis_scale < 1.0) {
      cv::resize(bgr, frame.bgr, cv::Size(), frame.analysis_scale, frame.analysis_scale,
                 cv::INTER_AREA);
    } else {
      frame.bgr = bgr.clone();
    }
    all.push_back(std::move(frame));
    ++index;
  }
  if (count <= 0 || static_cast<int>(all.size()) <= count) return all;
  std::vector<media::Frame> picked;
  const int n = static_cast<int>(all.size());
  for (int k = 0; k < count; ++k) picked.push_back(all[static_cast<size_t>((k + 0.5) * n / count)]);
  return picked;
}

}  // namespace vsieve::testing
