#pragma once

#include <string>
#include <vector>

#include "daemon/config/filter_config.h"

namespace vsieve::daemon {

// Flags of `vsieve run` that are not config keys.
struct RunOptions {
  bool until_idle = false;     // exit 0 once nothing is pending or running
  std::string owner_id;        // "" = hostname + "-" + the id in the owner state file
  std::string trace_path;      // --trace: Chrome trace-event JSON of pipeline spans; "" = off
  std::string stage_csv_path;  // --stage-csv: seed 004's per-step latency CSV; "" = off
};

// The lease owner id of this daemon. With `owner_flag` set: hostname + "-" + owner_flag (give
// each daemon sharing a host and a store its own). Otherwise hostname + "-" + a random id kept in
// a state file next to the SQLite database ("<db>.owner"; "vsieve.owner" in the working
// directory for other stores), created on first use, so a restarted daemon takes back its own
// leases at once (ReclaimOwner). Errors: kInternal when the state file cannot be written.
common::StatusOr<std::string> DaemonOwnerId(const std::string& store_url,
                                            const std::string& owner_flag);

// `vsieve run`: opens the store, builds the pipeline and runs it until SIGTERM/SIGINT (or idle
// with --until-idle). Signals are taken by a sigwait thread (they are blocked in every other
// thread): the first SIGTERM/SIGINT stops claiming and gives in-flight videos grace_seconds, a
// second one cuts the grace to zero; unfinished leases are released, results flushed, exit 0.
// SIGHUP reopens the log file. Under systemd (NOTIFY_SOCKET set) it sends READY=1 once the store
// is open and the models are loaded, STATUS= progress, WATCHDOG=1 from the pipeline's loop and
// STOPPING=1 on drain (ServiceNotifier in systemd_notify.h). The trace and stage CSV are closed
// (valid) after the drain, SIGTERM included. Returns 0, or 2 for a setup error (store, models,
// devices, core binding, an output file that cannot be created).
int RunDaemon(const RunOptions& run, const FilterConfig& config);

}  // namespace vsieve::daemon
