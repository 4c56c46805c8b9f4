// `vsieve-test`: the vsieve binary with the test kinds of ItemModel registered
// (tests/support/test_item_models.h), for the tests whose model children (`model-worker`) or
// daemons must build them. The shipped `vsieve` has no test code.
#include "common/memory.h"
#include "daemon/commands/cli.h"
#include "tests/support/test_item_models.h"

int main(int argc, char** argv) {
  vsieve::common::TuneAllocator();  // as the shipped vsieve does
  vsieve::models::RegisterTestItemModelKinds();
  return vsieve::daemon::RunCli(argc, argv);
}
