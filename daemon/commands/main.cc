#include "common/memory.h"
#include "daemon/commands/cli.h"

int main(int argc, char** argv) {
  vsieve::common::TuneAllocator();  // before any thread: flat memory over many videos
  return vsieve::daemon::RunCli(argc, argv);
}
