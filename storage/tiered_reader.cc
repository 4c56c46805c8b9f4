#include "storage/tiered_reader.h"

#include <spdlog/spdlog.h>

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace vsieve::storage {
namespace {

using common::ErrorCode;
using common::Status;
using common::StatusOr;

// file:// URIs and absolute paths without a bucket are files on this machine.
bool IsLocalPath(const ObjectRef& ref) {
  return ref.bucket.empty() && (ref.key.rfind("file://", 0) == 0 || ref.key.rfind('/', 0) == 0);
}

}  // namespace

TieredReader::TieredReader(std::vector<std::unique_ptr<Tier>> tiers,
                           std::shared_ptr<DiskCache> cache)
    : tiers_(std::move(tiers)), cache_(std::move(cache)) {
  assert(tiers_.empty() || cache_ != nullptr);
}

StatusOr<FetchedObject> TieredReader::Fetch(const ObjectRef& ref) {
  if (tiers_.empty() || IsLocalPath(ref)) return local_.Fetch(ref);
  VSIEVE_ASSIGN_OR_RETURN(CachedObject cached, cache_->Fetch(ref, [&](DownloadSink* sink) {
    return FillFromTiers(ref, sink);
  }));
  FetchedObject object;
  object.local_path = std::move(cached.path);
  object.source_tier = std::move(cached.source_tier);
  object.size_bytes = cached.size_bytes;
  object.cache_hit = cached.cache_hit;
  object.pin = std::move(cached.pin);
  return object;
}

StatusOr<FillOutcome> TieredReader::FillFromTiers(const ObjectRef& ref, DownloadSink* sink) {
  std::string tried;
  std::optional<Status> retryable;
  bool used = false;
  for (const std::unique_ptr<Tier>& tier : tiers_) {
    if (tier->source_tier() == "dcache" && !ref.use_dcache) continue;
    tried += (tried.empty() ? "" : ", ") + tier->name();
    if (used) VSIEVE_RETURN_IF_ERROR(sink->Restart());  // drop what a failed tier wrote
    used = true;
    StatusOr<TierObject> got = tier->Fetch(ref, sink);
    if (got.ok()) {
      FillOutcome outcome;
      outcome.source_tier = std::string(tier->source_tier());
      if (!got->in_place_path.empty()) {
        if (got->size_bytes == 0) {
          return Status(ErrorCode::kInputEmpty,
                        ref.ToString() + ": object is empty (tier " + tier->name() + ")");
        }
        outcome.in_place_path = got->in_place_path;
        outcome.size_bytes = got->size_bytes;
        return outcome;
      }
      if (got->size_bytes > 0 && got->size_bytes != sink->written()) {
        return Status(ErrorCode::kContentMismatch,
                      ref.ToString() + ": tier " + tier->name() + " served " +
                          std::to_string(sink->written()) + " bytes of " +
                          std::to_string(got->size_bytes));
      }
      return outcome;
    }
    const Status& status = got.status();
    if (status.code() == ErrorCode::kObjectNotFound) continue;
    if (!status.retryable()) return status.WithContext("tier " + tier->name());
    spdlog::warn("fetch {}: tier {} failed, trying the next: {}", ref.ToString(), tier->name(),
                 status.ToString());
    if (!retryable.has_value()) retryable = status.WithContext("tier " + tier->name());
  }
  if (retryable.has_value()) return *retryable;
  if (tried.empty()) {
    return Status(ErrorCode::kObjectNotFound,
                  ref.ToString() +
                      ": no tier to try (the distributed cache is skipped for this "
                      "row: use_alluxio is false)");
  }
  return Status(ErrorCode::kObjectNotFound, ref.ToString() + ": not found in tiers " + tried);
}

}  // namespace vsieve::storage
