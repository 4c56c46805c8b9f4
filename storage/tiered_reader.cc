#include "storage/tiered_reader.h"

#include <spdlog/spdlog.h>

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/metrics.h"

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
  object.tier_errors = std::move(cached.tier_errors);
  return object;
}

StatusOr<FillOutcome> TieredReader::FillFromTiers(const ObjectRef& ref, DownloadSink* sink) {
  std::vector<Tier*> eligible;
  for (const std::unique_ptr<Tier>& tier : tiers_) {
    if (tier->source_tier() == "dcache" && !ref.use_dcache) continue;
    eligible.push_back(tier.get());
  }
  if (eligible.empty()) {
    return Status(ErrorCode::kObjectNotFound,
                  ref.ToString() +
                      ": no tier to try (the distributed cache is skipped for this "
                      "row: use_alluxio is false)");
  }
  std::string tried;
  std::vector<TierError> errors;
  for (size_t i = 0; i < eligible.size(); ++i) {
    Tier& tier = *eligible[i];
    const bool last = i + 1 == eligible.size();
    tried += (tried.empty() ? "" : ", ") + tier.name();
    if (i > 0) VSIEVE_RETURN_IF_ERROR(sink->Restart());  // drop what a failed tier wrote
    StatusOr<TierObject> got = tier.Fetch(ref, sink);
    Status status;
    FillOutcome outcome;
    if (got.ok()) {
      outcome.source_tier = std::string(tier.source_tier());
      if (!got->in_place_path.empty()) {
        if (got->size_bytes == 0) {
          status = Status(ErrorCode::kInputEmpty,
                          ref.ToString() + ": object is empty (tier " + tier.name() + ")");
        } else {
          outcome.in_place_path = got->in_place_path;
          outcome.size_bytes = got->size_bytes;
        }
      } else if (got->size_bytes > 0 && got->size_bytes != sink->written()) {
        status =
            Status(ErrorCode::kContentMismatch, ref.ToString() + ": tier " + tier.name() +
                                                    " served " + std::to_string(sink->written()) +
                                                    " bytes of " + std::to_string(got->size_bytes));
      }
      if (status.ok()) {
        outcome.tier_errors = std::move(errors);
        return outcome;
      }
    } else {
      status = got.status();
    }
    if (last) {
      // Only the last tier's error decides the row's code; the earlier ones are context.
      if (status.code() == ErrorCode::kObjectNotFound && errors.empty()) {
        return Status(ErrorCode::kObjectNotFound, ref.ToString() + ": not found in tiers " + tried);
      }
      std::string earlier;
      for (const TierError& error : errors) {
        earlier += "; earlier tier " + error.tier + ": " + error.code + ": " + error.message;
      }
      Status final_status(status.code(), "tier " + tier.name() + ": " + status.message() + earlier,
                          status.retryable());
      return final_status;
    }
    if (status.code() == ErrorCode::kObjectNotFound) continue;  // a plain miss
    const std::string code(common::ErrorCodeName(status.code()));
    spdlog::warn("fetch {}: tier {} failed, trying the next: {}", ref.ToString(), tier.name(),
                 status.ToString());
    common::MetricsRegistry::Global()
        .GetCounter("vsieve_tier_errors_total",
                    "Tier errors that fell through to the next tier (a cache tier that is down, "
                    "refusing or timing out), by tier and error code.",
                    {{"tier", tier.name()}, {"code", code}})
        .Inc();
    errors.push_back(TierError{tier.name(), code, status.message()});
  }
  return Status(ErrorCode::kInternal, "unreachable: no tier answered");
}

}  // namespace vsieve::storage
