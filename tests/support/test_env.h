#pragma once

#include <string>
#include <vector>

namespace vsieve::testing {

// The repository root (set by CMake at build time).
std::string SourceDir();

// ../shared/assets relative to the repository root, or "" when it is absent.
std::string SharedAssetsDir();

// A fresh folder under the system temp dir, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Runs a program with arguments (no shell), stdout/stderr discarded unless `output` is given,
// where both are captured. Returns the exit code, or -1 if it could not start.
int RunProgram(const std::vector<std::string>& argv, std::string* output = nullptr);

// Runs a program with arguments (no shell) and captures stdout and stderr separately.
// Returns the exit code, or -1 if it could not start.
int RunCommand(const std::vector<std::string>& argv, std::string* out, std::string* err);

// Runs `ffmpeg -hide_banner -loglevel error -y ARGS...`; returns true on exit code 0.
bool Ffmpeg(const std::vector<std::string>& args);

// True when the ffmpeg CLI is on PATH.
bool HaveFfmpeg();

// Writes `bytes` to `path`; returns false on failure.
bool WriteFile(const std::string& path, const std::string& bytes);
std::string ReadFile(const std::string& path);

}  // namespace vsieve::testing

// Skips the current test with a message when ../shared/assets is missing.
#define VSIEVE_REQUIRE_ASSETS()                                                   \
  do {                                                                            \
    if (::vsieve::testing::SharedAssetsDir().empty()) {                           \
      GTEST_SKIP() << "../shared/assets is absent; skipping a real-asset test";   \
    }                                                                             \
  } while (false)

#define VSIEVE_REQUIRE_FFMPEG()                                        \
  do {                                                                 \
    if (!::vsieve::testing::HaveFfmpeg()) GTEST_SKIP() << "no ffmpeg"; \
  } while (false)
