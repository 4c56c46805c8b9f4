#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace vsieve::daemon {

// The CPUs each pipeline pool is pinned to ([pipeline] core_bind, `vsieve run --core-bind`;
// seed 004's --core-bind). An empty list leaves that pool's threads on the process's mask. The
// claimer, writer and heartbeat threads are never pinned.
struct CoreBinding {
  std::vector<int> fetch;
  std::vector<int> decode;
  std::vector<int> workers;  // analysis workers (OpenCV's pool threads inherit their mask)

  bool enabled() const { return !fetch.empty() || !decode.empty() || !workers.empty(); }
};

// The CPUs this process may run on now (sched_getaffinity), ascending. Errors: kInternal.
common::StatusOr<std::vector<int>> AllowedCpus();

// Parses a Linux CPU list ("0-3,6", as in taskset -c and /proc/*/status), ascending and
// without duplicates. Errors: kInvalidArgument saying what is wrong.
common::StatusOr<std::vector<int>> ParseCpuList(std::string_view text);

// The CPU list form of `cpus` ("0-2,5"); "" for none.
std::string FormatCpuList(const std::vector<int>& cpus);

// Checks the syntax of a core_bind spec:
//   ""  or "off"                      nothing is pinned (the default)
//   "auto"                            decode threads and analysis workers get disjoint parts of
//                                     the allowed CPUs, in proportion to their thread counts
//                                     (at least one CPU each); one CPU: both share it
//   "decode=0-1;workers=2-5;fetch=6"  explicit lists per pool (any subset of the pools)
// Errors: kInvalidArgument naming pipeline.core_bind.
common::Status CheckCoreBindSpec(const std::string& spec);

// Resolves `spec` against the `allowed` CPUs for the pools' thread counts. Pure. Errors:
// kInvalidArgument naming pipeline.core_bind (bad syntax, a CPU outside `allowed`).
common::StatusOr<CoreBinding> PlanCoreBinding(const std::string& spec,
                                              const std::vector<int>& allowed, int decode_threads,
                                              int workers);

// Pins the calling thread to `cpus` (pthread_setaffinity_np); no-op for an empty list.
// Errors: kInternal with the system's reason.
common::Status PinThisThread(const std::vector<int>& cpus);

}  // namespace vsieve::daemon
