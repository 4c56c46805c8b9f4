#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "storage/reader.h"

namespace vsieve::storage {

using common::ErrorCode;
using common::Status;

common::StatusOr<FetchedObject> LocalReader::Fetch(const ObjectRef& ref) {
  std::string path = ref.key;
  constexpr std::string_view kFileScheme = "file://";
  if (path.rfind(kFileScheme, 0) == 0) path = path.substr(kFileScheme.size());
  if (path.empty()) return Status(ErrorCode::kInvalidArgument, "empty path");
  if (path.find('\0') != std::string::npos) {
    return Status(ErrorCode::kInvalidArgument, "path contains a NUL byte");
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (err == EACCES) return Status(ErrorCode::kObjectForbidden, path + ": permission denied");
    if (err == ENOENT || err == ENOTDIR) {
      return Status(ErrorCode::kObjectNotFound, path + ": no such file");
    }
    return Status(ErrorCode::kFetchFailed, path + ": " + std::strerror(err), /*retryable=*/true);
  }
  if (!S_ISREG(st.st_mode)) return Status(ErrorCode::kObjectNotFound, path + ": not a file");
  if (st.st_size == 0) return Status(ErrorCode::kInputEmpty, path + ": file is empty");
  FetchedObject object;
  object.local_path = path;
  object.source_tier = "local";
  object.size_bytes = static_cast<long long>(st.st_size);
  return object;
}

}  // namespace vsieve::storage
