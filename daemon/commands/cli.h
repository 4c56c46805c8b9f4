#pragma once

namespace vsieve::daemon {

// Parses the command line and runs the chosen subcommand. Returns the process exit code:
// 0 on success, 1 on a usage error (CLI11's message on stderr), 2 on a configuration or setup
// error (a message naming the bad key or file).
int RunCli(int argc, char** argv);

}  // namespace vsieve::daemon
