#include "storage/local_tier.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "common/metrics.h"
#include "common/stopwatch.h"
#include "storage/http_client.h"
#include "storage/tier_key.h"

namespace vsieve::storage {

using common::ErrorCode;
using common::Status;

LocalTier::LocalTier(std::string name, std::string root)
    : name_(std::move(name)), root_(std::move(root)) {}

common::StatusOr<std::string> LocalTier::PathOf(const ObjectRef& ref) const {
  VSIEVE_RETURN_IF_ERROR(ValidateTierKey(ref.key));
  std::string root = root_;
  if (root.find("{bucket}") != std::string::npos) {
    VSIEVE_RETURN_IF_ERROR(
        ValidateTierBucket(ref.bucket).WithContext("tier '" + name_ + "' root uses {bucket}"));
    root = SubstituteBucket(root, ref.bucket);
  }
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  return root + "/" + ref.key;
}

namespace {

Status Classify(int err, const std::string& path) {
  if (err == EACCES || err == EPERM) {
    return Status(ErrorCode::kObjectForbidden, path + ": permission denied");
  }
  if (err == ENOENT || err == ENOTDIR || err == ENAMETOOLONG) {
    return Status(ErrorCode::kObjectNotFound, path + ": no such file");
  }
  return Status(ErrorCode::kFetchFailed,
                path + ": " + std::error_code(err, std::generic_category()).message(),
                /*retryable=*/true);
}

}  // namespace

common::StatusOr<TierObject> LocalTier::Fetch(const ObjectRef& ref, DownloadSink* /*sink*/) {
  common::Stopwatch watch;
  VSIEVE_ASSIGN_OR_RETURN(const std::string path, PathOf(ref));  // no request for a bad key
  auto result = [&]() -> common::StatusOr<TierObject> {
    // Opening proves the file is readable by this process (stat alone does not).
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) return Classify(errno, path);
    struct stat st {};
    const int rc = ::fstat(fd, &st);
    const int err = errno;
    ::close(fd);
    if (rc != 0) return Classify(err, path);
    if (!S_ISREG(st.st_mode)) return Status(ErrorCode::kObjectNotFound, path + ": not a file");
    TierObject object;
    object.in_place_path = path;
    object.size_bytes = static_cast<int64_t>(st.st_size);
    return object;
  }();
  auto& registry = common::MetricsRegistry::Global();
  const char* label = "ok";
  if (!result.ok()) {
    switch (result.status().code()) {
      case ErrorCode::kObjectNotFound:
        label = "not_found";
        break;
      case ErrorCode::kObjectForbidden:
        label = "forbidden";
        break;
      default:
        label = result.status().retryable() ? "retryable_error" : "error";
    }
  }
  registry
      .GetCounter("vsieve_storage_requests_total",
                  "Requests made to storage tiers, by outcome (ok, not_found, forbidden, "
                  "retryable_error, mismatch, error).",
                  {{"tier", name_}, {"result", label}})
      .Inc();
  RecordFetchDuration(name_, watch.ElapsedSeconds());
  return result;
}

}  // namespace vsieve::storage
