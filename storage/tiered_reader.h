#pragma once

#include <memory>
#include <vector>

#include "storage/disk_cache.h"
#include "storage/reader.h"
#include "storage/tier.h"

namespace vsieve::storage {

// The configured tiers behind the local disk cache (DESIGN.md, "Storage").
//
// Fetch(ref):
//  1. A ref with no bucket whose key is a file:// URI or an absolute path is read in place, as
//     LocalReader does (and so is every ref when no tier is configured).
//  2. The disk cache: a hit is served with cache_hit = true and the source_tier of the tier that
//     first served the bytes (kept with the cached file).
//  3. Otherwise the tiers in order, skipping "dcache" tiers when ref.use_dcache is false. Every
//     error of a tier before the last one tried falls through to the next tier: a miss
//     (OBJECT_NOT_FOUND) silently, any other error (403, 5xx after the tier's retries, a
//     timeout, a size mismatch, an empty object) recorded in FetchedObject::tier_errors, logged
//     and counted in vsieve_tier_errors_total{tier,code}. A failing cache degrades; it never
//     fails a video that a later tier holds. An in-place tier (a mounted folder) is served where
//     it is, without a copy and without a pin; a remote tier's bytes are committed into the cache
//     and served pinned from there.
//  4. Nothing served: the last tier's error decides the code (its message lists the earlier
//     tiers' errors); OBJECT_NOT_FOUND naming the tiers tried when every tier missed.
// Identical concurrent fetches share one walk of the tiers (DiskCache single flight).
//
// Ownership: owns the tiers; shares the cache. Thread-safety: Fetch() is safe from several
// threads (the tiers must be too); it blocks for the transfer.
class TieredReader : public Reader {
 public:
  // `cache` must not be null when `tiers` is not empty.
  TieredReader(std::vector<std::unique_ptr<Tier>> tiers, std::shared_ptr<DiskCache> cache);

  common::StatusOr<FetchedObject> Fetch(const ObjectRef& ref) override;

  const std::shared_ptr<DiskCache>& cache() const { return cache_; }

 private:
  common::StatusOr<FillOutcome> FillFromTiers(const ObjectRef& ref, DownloadSink* sink);

  std::vector<std::unique_ptr<Tier>> tiers_;
  std::shared_ptr<DiskCache> cache_;
  LocalReader local_;
};

}  // namespace vsieve::storage
