#pragma once

#include <string>
#include <vector>

#include "media/frame.h"

namespace vsieve::testing {

// Reads `count` frames spread evenly over a video with cv::VideoCapture (an independent decoder,
// so model tests do not depend on media/), scaled so the long side is at most `max_side`.
// Returns an empty vector when the file cannot be read.
std::vector<media::Frame> ReadFramesEvenly(const std::string& path, int count, int max_side = 640);

}  // namespace vsieve::testing
