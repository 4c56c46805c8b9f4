#pragma once

namespace vsieve::models {

// The body of the hidden `vsieve model-worker --fd-in N --fd-out M [--parent-pid P]`
// subcommand: the child side of ChildProcessModel. Serves the protocol of model_protocol.h on
// the two descriptors (which may be the same socket): BUILD builds an ItemModel through the
// registry (BuildItemModel()) and answers BUILD_FINISH {"batch_capacity": N, "output_shapes":
// [[...], ...], "first_pass_ms": M} (ItemModel::warmup()) or ERROR; PREDICT
// runs the items and answers REPLY or ERROR (the child stays up after a model error); EXIT, or
// the parent closing the channel, ends the loop.
//
// Ignores SIGPIPE; exits when the parent dies: at once when `parent_pid` > 0 is no longer the
// parent, at EOF when idle, and within half a second (a watchdog thread) when busy or hung. Blocks
// until the loop ends. Returns the process exit status: 0 after EXIT or a clean EOF, 3 after a bad
// frame or an I/O error, 2 for bad descriptors.
int RunModelWorker(int fd_in, int fd_out, int parent_pid);

}  // namespace vsieve::models
