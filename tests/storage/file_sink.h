#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "common/status.h"
#include "storage/tier.h"

namespace vsieve::testing {

// A DownloadSink test double that appends to one file, with an optional byte limit. Records
// Reserve() and Restart() calls for assertions. One thread at a time.
class FileSink : public storage::DownloadSink {
 public:
  // `limit_bytes` < 0: no limit.
  explicit FileSink(std::string path, int64_t limit_bytes = -1);

  common::Status Reserve(int64_t bytes) override;
  common::Status Write(const char* data, size_t size) override;
  int64_t written() const override { return written_; }
  common::Status Restart() override;

  // What the file holds now.
  std::string Contents() const;
  const std::string& path() const { return path_; }
  const std::vector<int64_t>& reserves() const { return reserves_; }
  int restarts() const { return restarts_; }

 private:
  std::string path_;
  int64_t limit_bytes_;
  std::ofstream out_;
  int64_t written_ = 0;
  std::vector<int64_t> reserves_;
  int restarts_ = 0;
};

}  // namespace vsieve::testing
