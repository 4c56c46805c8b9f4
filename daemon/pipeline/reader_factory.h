#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "daemon/config/filter_config.h"
#include "storage/reader.h"
#include "storage/tier.h"

namespace vsieve::daemon {

// True when the config names tiers ([[tiers]]); without them every input is a local path.
bool HasTiers(const FilterConfig& config);

// The fetch stage's reader for `config`: a LocalReader (paths and file:// URIs read in place)
// when no tier is configured, else a TieredReader over the configured tiers behind the [cache]
// disk cache, which this opens (creating cache.dir, removing partial files, evicting down to
// cache.max_bytes). The reader is shared by the fetch threads. Blocks for the cache's start-up
// scan. Errors: kInvalidArgument (a tier that cannot be built, a cache folder that cannot be
// created or is in use by another process), kInternal (the scan fails).
common::StatusOr<std::shared_ptr<storage::Reader>> MakeReader(const FilterConfig& config);

// The same over tiers already built (tests; the seam the tier factory feeds). An empty `tiers`
// gives a LocalReader and opens no cache.
common::StatusOr<std::shared_ptr<storage::Reader>> MakeReader(
    const FilterConfig& config, std::vector<std::unique_ptr<storage::Tier>> tiers);

// What `vsieve probe` fetches for one command-line input.
// Without tiers: the input is a local path or file:// URI (bucket empty), as always; s3:// and
// oss:// inputs are refused (they need tiers).
// With tiers: "s3://bucket/key" and "oss://bucket/key" name an object; so does "bucket/key"
// (split at the first '/'); a path starting with '/', "./" or "../", or a file:// URI, is a
// local file read in place (relative ones made absolute).
// Errors: kInvalidArgument naming the input and the accepted forms.
common::StatusOr<storage::ObjectRef> ProbeInputRef(const std::string& input, bool tiers);

}  // namespace vsieve::daemon
