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
//  3. Otherwise the tiers in order, skipping "dcache" tiers when ref.use_dcache is false. A
//     tier's OBJECT_NOT_FOUND and its retryable errors fall through to the next tier (the first
//     retryable error is remembered); any other error (OBJECT_FORBIDDEN, CONTENT_MISMATCH, a
//     non-retryable FETCH_FAILED) ends the fetch with that error. An in-place tier (a mounted
//     folder) is served where it is, without a copy and without a pin; a remote tier's bytes are
//     committed into the cache and served pinned from there.
//  4. Nothing served: the remembered retryable error, else OBJECT_NOT_FOUND naming the tiers
//     tried.
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
