#include "daemon/commands/progress_meter.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <utility>

namespace vsieve::daemon {
namespace {

constexpr double kRefreshSeconds = 0.25;

std::string Duration(double seconds) {
  const long long s = std::llround(std::max(0.0, seconds));
  char text[32];
  if (s >= 3600) {
    std::snprintf(text, sizeof text, "%lldh%02lldm", s / 3600, (s % 3600) / 60);
  } else if (s >= 60) {
    std::snprintf(text, sizeof text, "%lldm%02llds", s / 60, s % 60);
  } else {
    std::snprintf(text, sizeof text, "%llds", s);
  }
  return text;
}

}  // namespace

std::string FormatProgress(const std::string& label, int64_t done, int64_t total,
                           double elapsed_s) {
  const double fps = elapsed_s > 0 ? static_cast<double>(done) / elapsed_s : 0.0;
  char rate[32];
  std::snprintf(rate, sizeof rate, "%.1f fps", fps);
  std::string line = label + ": " + std::to_string(done);
  if (total > 0) line += "/" + std::to_string(total);
  line += std::string(" frames, ") + rate;
  if (total > 0) {
    line += done >= total ? ", done"
            : fps > 0     ? ", ETA " + Duration(static_cast<double>(total - done) / fps)
                          : ", ETA ?";
  }
  return line;
}

ProgressMeter::ProgressMeter(std::string label, int64_t total)
    : ProgressMeter(std::move(label), total, ::isatty(STDERR_FILENO) == 1, stderr) {}

ProgressMeter::ProgressMeter(std::string label, int64_t total, bool enabled, std::FILE* out)
    : label_(std::move(label)), total_(total), enabled_(enabled), out_(out) {}

void ProgressMeter::Update(int64_t done) {
  done_ = done;
  if (!enabled_ || finished_) return;
  const double now = watch_.ElapsedSeconds();
  if (last_shown_s_ >= 0 && now - last_shown_s_ < kRefreshSeconds) return;
  last_shown_s_ = now;
  std::fprintf(out_, "\r%s\033[K", FormatProgress(label_, done, total_, now).c_str());
  std::fflush(out_);
}

void ProgressMeter::Finish() {
  if (finished_) return;
  finished_ = true;
  if (!enabled_) return;
  std::fprintf(
      out_, "\r%s\033[K\n",
      FormatProgress(label_, done_, std::max(total_, done_), watch_.ElapsedSeconds()).c_str());
  std::fflush(out_);
}

}  // namespace vsieve::daemon
