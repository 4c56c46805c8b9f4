#include "common/memory.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

namespace vsieve::common {
namespace {

// Resident memory of this process in MiB (/proc/self/statm), or -1 where it cannot be read.
double ResidentMib() {
  std::FILE* file = std::fopen("/proc/self/statm", "r");
  if (file == nullptr) return -1.0;
  long size = 0;
  long resident = 0;
  const int read = std::fscanf(file, "%ld %ld", &size, &resident);
  std::fclose(file);
  if (read != 2) return -1.0;
  return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)) /
         (1024.0 * 1024.0);
}

// Frame-sized blocks (as decoded frames are), written so that their pages are resident.
std::vector<std::unique_ptr<unsigned char[]>> TouchBlocks(int count, size_t bytes) {
  std::vector<std::unique_ptr<unsigned char[]>> blocks;
  for (int i = 0; i < count; ++i) {
    blocks.emplace_back(new unsigned char[bytes]);
    std::memset(blocks.back().get(), i & 0xff, bytes);
  }
  return blocks;
}

TEST(MemoryTest, FreedFramesGoBackToTheSystem) {
  TuneAllocator();
  TuneAllocator();  // a second call changes nothing
  const double before = ResidentMib();
  if (before < 0.0) GTEST_SKIP() << "/proc/self/statm is not readable";
  // Two rounds: the first raises glibc's dynamic mmap threshold, so the second comes from the
  // heap, where freed blocks stay until ReleaseFreeMemory().
  for (int round = 0; round < 2; ++round) {
    auto blocks = TouchBlocks(96, 700 * 1024);  // ~66 MiB, like one video's frames
    EXPECT_GT(ResidentMib(), before + 50.0);
  }
  ReleaseFreeMemory();
  EXPECT_LT(ResidentMib(), before + 8.0);
}

TEST(MemoryTest, ReleaseFreeMemoryIsSafeAnyTime) {
  ReleaseFreeMemory();
  auto blocks = TouchBlocks(4, 4096);
  ReleaseFreeMemory();
  blocks.clear();
  ReleaseFreeMemory();
  SUCCEED();
}

}  // namespace
}  // namespace vsieve::common
