// daemon/progress_meter.h: the progress line's text, and that it is written only when enabled.
#include "daemon/commands/progress_meter.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace vsieve::daemon {
namespace {

TEST(ProgressMeterTest, LineShowsFramesRateAndEta) {
  EXPECT_EQ(FormatProgress("annotate", 120, 500, 5.0),
            "annotate: 120/500 frames, 24.0 fps, ETA 16s");
  EXPECT_EQ(FormatProgress("annotate", 100, 10000, 10.0),
            "annotate: 100/10000 frames, 10.0 fps, ETA 16m30s");
  EXPECT_EQ(FormatProgress("a", 10, 100000, 10.0), "a: 10/100000 frames, 1.0 fps, ETA 27h46m");
  EXPECT_EQ(FormatProgress("a", 0, 50, 0.0), "a: 0/50 frames, 0.0 fps, ETA ?");
  EXPECT_EQ(FormatProgress("a", 50, 50, 2.0), "a: 50/50 frames, 25.0 fps, done");
  EXPECT_EQ(FormatProgress("a", 7, 0, 1.0), "a: 7 frames, 7.0 fps");  // total unknown
}

TEST(ProgressMeterTest, WritesOnlyWhenEnabled) {
  std::FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  {
    ProgressMeter quiet("q", 10, /*enabled=*/false, file);
    quiet.Update(5);
  }
  EXPECT_EQ(std::ftell(file), 0L);
  {
    ProgressMeter shown("s", 10, /*enabled=*/true, file);
    shown.Update(5);
    shown.Update(6);  // too soon after the first: not shown
    shown.Update(10);
  }  // Finish(): the final count and a newline
  std::rewind(file);
  char buffer[512] = {};
  const size_t n = std::fread(buffer, 1, sizeof buffer - 1, file);
  const std::string text(buffer, n);
  EXPECT_NE(text.find("s: 5/10 frames"), std::string::npos) << text;
  EXPECT_EQ(text.find("s: 6/10"), std::string::npos) << text;
  EXPECT_NE(text.find("s: 10/10 frames"), std::string::npos) << text;
  EXPECT_EQ(text.back(), '\n');
  std::fclose(file);
}

}  // namespace
}  // namespace vsieve::daemon
