#pragma once

#include <chrono>

namespace vsieve::common {

// Measures elapsed wall time on the monotonic clock. Not thread-safe; one per measuring thread.
class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  void Reset() { start_ = std::chrono::steady_clock::now(); }
  double ElapsedSeconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  double ElapsedMillis() const { return ElapsedSeconds() * 1000.0; }

 private:
  std::chrono::steady_clock::time_point start_;
};

}  // namespace vsieve::common
