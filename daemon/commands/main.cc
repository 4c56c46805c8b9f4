#include "daemon/commands/cli.h"

int main(int argc, char** argv) { return vsieve::daemon::RunCli(argc, argv); }
