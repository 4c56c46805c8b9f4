#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace vsieve::testing {

// A server program started by a test (nginx, node): spawned without a shell, its stdout and
// stderr appended to `log_path`, stopped with SIGTERM (then SIGKILL after a grace period) and
// reaped on Stop() or destruction. One thread at a time.
class ServerProcess {
 public:
  ServerProcess() = default;
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Starts argv[0] (searched on PATH) with `extra_env` ("NAME=value") added to the environment.
  // Returns false (with `why` set) when it cannot start.
  bool Start(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
             const std::string& log_path, std::string* why);
  // True while the process has not exited.
  bool Running();
  // SIGTERM, up to `grace_seconds` to exit, then SIGKILL; reaps it. Idempotent.
  void Stop(double grace_seconds = 5.0);
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then closed).
int FreeLoopbackPort();

// Waits until something accepts connections on 127.0.0.1:`port` or `seconds` pass, or `process`
// (when not null) exits. Returns true when the port answers.
bool WaitForPort(int port, double seconds, ServerProcess* process);

// True when `program` can be run (found on PATH or as a path).
bool HaveProgram(const std::string& program);

}  // namespace vsieve::testing
