#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "daemon/filter_config.h"

namespace vsieve::daemon {

struct ProbeOptions {
  // Paths or file:// URIs, in output order; with [[tiers]] also s3://BUCKET/KEY and BUCKET/KEY
  // (see ProbeInputRef in daemon/reader_factory.h).
  std::vector<std::string> inputs;
  int jobs = 1;  // videos filtered at once, one VideoFilter each
  bool pretty = false;
};

// `vsieve probe`: filters each input and writes one JSON output row per line to `out`, in input
// order, as soon as each row and all rows before it are done. A video that fails is a row with
// succeed "false"; only a setup error (a model that does not load) is a non-zero return.
// Progress goes to the log every few seconds.
int RunProbe(const ProbeOptions& probe, const FilterConfig& config, std::ostream& out);

}  // namespace vsieve::daemon
