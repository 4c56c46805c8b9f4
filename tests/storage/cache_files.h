#pragma once

#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>

namespace vsieve::storage {

// Files under <cache dir>/.partial (downloads not yet committed).
inline int PartialFiles(const std::string& dir) {
  int count = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir + "/.partial", ec)) {
    (void)entry;
    ++count;
  }
  return count;
}

// Bytes of every regular file under `dir`, each inode once, so that a file renamed during the
// walk is not counted twice.
inline int64_t BytesOnDisk(const std::string& dir) {
  std::map<std::pair<dev_t, ino_t>, int64_t> sizes;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    auto& size = sizes[{st.st_dev, st.st_ino}];
    size = std::max<int64_t>(size, st.st_size);
  }
  int64_t total = 0;
  for (const auto& [inode, size] : sizes) total += size;
  return total;
}

}  // namespace vsieve::storage
