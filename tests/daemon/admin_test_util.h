#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/daemon/daemon_process.h"
#include "tests/support/test_env.h"

namespace vsieve::testing {

// An HTTP reply reduced to what the admin tests read. status -1: no connection.
struct HttpReply {
  int status = -1;
  std::string body;
  httplib::Headers headers;

  nlohmann::json Json() const {
    return nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  }
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// A client for a loopback "HOST:PORT". Short timeouts: everything here is local.
inline std::unique_ptr<httplib::Client> MakeClient(const std::string& address) {
  auto client = std::make_unique<httplib::Client>("http://" + address);
  client->set_connection_timeout(2);
  client->set_read_timeout(20);
  client->set_write_timeout(5);
  return client;
}

inline HttpReply ToReply(const httplib::Result& result) {
  HttpReply reply;
  if (result) {
    reply.status = result->status;
    reply.body = result->body;
    reply.headers = result->headers;
  }
  return reply;
}

inline HttpReply HttpGet(const std::string& address, const std::string& path) {
  return ToReply(MakeClient(address)->Get(path.c_str()));
}

inline HttpReply HttpPost(const std::string& address, const std::string& path,
                          const std::string& body, const httplib::Headers& headers = {}) {
  return ToReply(MakeClient(address)->Post(path.c_str(), headers, body, "application/json"));
}

// Waits up to `timeout` for `path` to exist and hold a line; returns the line ("" on timeout).
inline std::string WaitForLine(const std::string& path, std::chrono::duration<double> timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    std::string text = ReadFile(path);
    const size_t newline = text.find('\n');
    if (newline != std::string::npos && newline > 0) return text.substr(0, newline);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return "";
}

// True when `program` can be found on PATH.
inline bool HaveProgram(const std::string& program) {
  std::string out;
  std::string err;
  return RunCommand({"/bin/sh", "-c", "command -v " + program}, &out, &err) == 0;
}

// Runs `promtool check metrics` on `text`; returns its exit code and sets `output` to what it
// printed (stdout and stderr).
inline int PromtoolCheckMetrics(const std::string& text, std::string* output) {
  TempDir dir;
  const std::string file = dir.File("metrics.prom");
  WriteFile(file, text);
  std::string out;
  std::string err;
  const int code = RunCommand({"/bin/sh", "-c", "promtool check metrics < " + file}, &out, &err);
  *output = out + err;
  return code;
}

// The metric names of the sample lines in Prometheus text (histograms appear as their _bucket,
// _sum and _count series).
inline std::set<std::string> SampleNames(const std::string& text) {
  std::set<std::string> names;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty() || line[0] == '#') continue;
    const size_t stop = line.find_first_of("{ ");
    names.insert(line.substr(0, stop));
  }
  return names;
}

// The value of the sample `series` (name and labels exactly as rendered) or nullopt.
inline std::optional<double> SampleValue(const std::string& text, const std::string& series) {
  const std::string prefix = series + " ";
  size_t at = 0;
  while ((at = text.find(prefix, at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') {
      return std::strtod(text.c_str() + at + prefix.size(), nullptr);
    }
    at += prefix.size();
  }
  return std::nullopt;
}

// A program (found on PATH) run in the background with stdout and stderr to `log_path`; killed
// (SIGKILL) and reaped by the destructor if still running. One test thread.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const std::string& log_path) {
    std::vector<std::string> args = argv;
    std::vector<char*> raw;
    for (auto& arg : args) raw.push_back(arg.data());
    raw.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                     0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    if (posix_spawnp(&pid_, raw[0], &actions, nullptr, raw.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~ChildProcess() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool started() const { return pid_ > 0; }

  // The exit code within `timeout`, 128 + signal, or -1 while still running.
  int Wait(std::chrono::duration<double> timeout) {
    if (exited_) return code_;
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (true) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return code_;
      }
      if (std::chrono::steady_clock::now() >= end) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  int code_ = -1;
};

// A loopback TCP port that was free a moment ago (for servers that cannot pick their own).
inline int FreeLoopbackPort() {
  const int sock = ::socket(AF_INET, SOCK_STREAM, 0);
  if (sock < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  int port = -1;
  if (::bind(sock, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      ::getsockname(sock, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(sock);
  return port;
}

// `vsieve run` with its admin API on a free loopback port (unless `extra` gives --admin-listen or
// --config), over the store `url`. The address is read from the --admin-address-file. Stops
// (SIGKILL) with the DaemonProcess at the end.
class AdminDaemon {
 public:
  AdminDaemon(const TempDir& dir, const std::string& url, std::vector<std::string> extra = {})
      : address_file_(dir.File("admin.address")), log_(dir.File("daemon.log")) {
    std::vector<std::string> args = {"run",
                                     "--store",
                                     url,
                                     "--no-text",
                                     "--log-level",
                                     "info",
                                     "--workers",
                                     "2",
                                     "--owner-id",
                                     "admin-test",
                                     "--lease-seconds",
                                     "5",
                                     "--write-interval-seconds",
                                     "0.1",
                                     "--admin-address-file",
                                     address_file_};
    const bool listen_given =
        std::find(extra.begin(), extra.end(), "--admin-listen") != extra.end() ||
        std::find(extra.begin(), extra.end(), "--config") != extra.end();
    if (!listen_given) args.insert(args.end(), {"--admin-listen", "127.0.0.1:0"});
    args.insert(args.end(), extra.begin(), extra.end());
    process_ = std::make_unique<DaemonProcess>(args, log_);
  }

  // Waits for the address file; "" when the daemon did not start listening within `timeout`.
  std::string WaitForAddress(std::chrono::duration<double> timeout = std::chrono::seconds(30)) {
    if (address_.empty()) address_ = WaitForLine(address_file_, timeout);
    return address_;
  }

  // Waits until GET /readyz answers 200; false on timeout.
  bool WaitReady(std::chrono::duration<double> timeout = std::chrono::seconds(60)) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      if (!WaitForAddress(timeout).empty() && HttpGet(address_, "/readyz").status == 200) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  DaemonProcess& process() { return *process_; }
  const std::string& address_file() const { return address_file_; }
  std::string Log() const { return ReadFile(log_); }

 private:
  std::string address_file_;
  std::string log_;
  std::string address_;
  std::unique_ptr<DaemonProcess> process_;
};

}  // namespace vsieve::testing
