#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "daemon/config/filter_config.h"

namespace vsieve::daemon {

struct ProbeOptions {
  // Paths or file:// URIs, in output order; with [[tiers]] also s3://BUCKET/KEY and BUCKET/KEY
  // (see ProbeInputRef in daemon/pipeline/reader_factory.h).
  std::vector<std::string> inputs;
  int jobs = 1;  // videos filtered at once, one VideoFilter each
  bool pretty = false;
  std::string trace_path;      // --trace: Chrome trace-event JSON (see common/trace.h); "" = off
  std::string stage_csv_path;  // --stage-csv: seed 004's per-step latency CSV; "" = off
  std::string output_dir;      // --output: cropped videos go here (as [output] url file://DIR/)
};

// `vsieve probe`: filters each input and writes one JSON output row per line to `out`, in input
// order, as soon as each row and all rows before it are done. A video that fails is a row with
// succeed "false"; only a setup error (a model that does not load) is a non-zero return.
// Progress goes to the log every few seconds. With a trace, each job thread (probe-N) records
// fetch, decode and analyze spans (regions and heads inside) per video. Returns 2 when the trace
// or CSV file cannot be created.
// Cropped videos: with --output DIR, or with [output] url and crop_video, each succeeded row's
// crop is written and stored as daemon/pipeline/crop_output.h describes, the key's {video_id} being
// the input's file name without its extension; a failed encode or store fails the row. Returns 2
// when the destination cannot be set up.
int RunProbe(const ProbeOptions& probe, const FilterConfig& config, std::ostream& out);

}  // namespace vsieve::daemon
