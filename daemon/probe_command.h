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
  std::string trace_path;      // --trace: Chrome trace-event JSON (see common/trace.h); "" = off
  std::string stage_csv_path;  // --stage-csv: seed 004's per-step latency CSV; "" = off
};

// `vsieve probe`: filters each input and writes one JSON output row per line to `out`, in input
// order, as soon as each row and all rows before it are done. A video that fails is a row with
// succeed "false"; only a setup error (a model that does not load) is a non-zero return.
// Progress goes to the log every few seconds. With a trace, each job thread (probe-N) records
// fetch, decode and analyze spans (regions and heads inside) per video. Returns 2 when the trace
// or CSV file cannot be created.
int RunProbe(const ProbeOptions& probe, const FilterConfig& config, std::ostream& out);

}  // namespace vsieve::daemon
