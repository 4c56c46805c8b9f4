// The sd_notify protocol of `vsieve run`: ServiceNotifier's decisions with an injected clock, and
// the real binary talking to a unix datagram socket given as NOTIFY_SOCKET (as systemd does).

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "daemon/ops/systemd_notify.h"
#include "storage/table_store.h"
#include "tests/daemon/daemon_process.h"
#include "tests/support/test_env.h"

extern char** environ;

namespace vsieve::daemon {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// ServiceNotifier with a fake clock.

struct Recorder {
  std::vector<std::string> sent;
  ServiceNotifier::Sender sender() {
    return [this](const std::string& state) {
      sent.push_back(state);
      return true;
    };
  }
  int Count(const std::string& prefix) const {
    int n = 0;
    for (const auto& s : sent) n += s.rfind(prefix, 0) == 0 ? 1 : 0;
    return n;
  }
};

PipelineSnapshot Snap(int64_t done, int64_t in_flight, bool stopping = false) {
  PipelineSnapshot snapshot;
  snapshot.done = done;
  snapshot.in_flight = in_flight;
  snapshot.stopping = stopping;
  return snapshot;
}

TEST(ServiceNotifierTest, ReadyOnceThenStatusAndWatchdogAtHalfTheInterval) {
  Recorder recorder;
  ServiceNotifier::Options options;
  options.watchdog = 2s;
  options.status_every = std::chrono::duration<double>(2.0);
  ServiceNotifier notifier(options, recorder.sender());
  const Clock::time_point t0{};
  EXPECT_FALSE(notifier.ready_sent());
  notifier.Tick(Snap(0, 0), t0);
  ASSERT_GE(recorder.sent.size(), 1u);
  EXPECT_EQ(recorder.sent[0],
            "READY=1\nSTATUS=ready: processed 0 (done 0, failed 0, retried 0), in flight 0, 0.00 "
            "videos/s");
  EXPECT_TRUE(notifier.ready_sent());
  // Ticks every 250 ms for 10 s, one video finishing per second.
  for (int tick = 1; tick <= 40; ++tick) {
    notifier.Tick(Snap(tick / 4, 2), t0 + tick * 250ms);
  }
  EXPECT_EQ(recorder.Count("READY=1"), 1);
  // At t0 and then every second (half of 2 s): 0, 1, ..., 10.
  EXPECT_EQ(recorder.Count("WATCHDOG=1"), 11);
  EXPECT_GE(recorder.Count("STATUS=processed"), 4);
  const std::string last = recorder.sent.back() == "WATCHDOG=1"
                               ? recorder.sent[recorder.sent.size() - 2]
                               : recorder.sent.back();
  EXPECT_NE(last.find("processed 10 (done 10"), std::string::npos) << last;
  EXPECT_NE(last.find("1.00 videos/s"), std::string::npos) << last;
  EXPECT_EQ(recorder.Count("STOPPING=1"), 0);
}

TEST(ServiceNotifierTest, NoWatchdogConfiguredMeansNoPings) {
  Recorder recorder;
  ServiceNotifier notifier({}, recorder.sender());
  for (int tick = 0; tick < 20; ++tick) notifier.Tick(Snap(0, 0), Clock::time_point{} + tick * 1s);
  EXPECT_EQ(recorder.Count("WATCHDOG=1"), 0);
  EXPECT_EQ(recorder.Count("READY=1"), 1);
}

TEST(ServiceNotifierTest, StuckPipelineWithholdsTheWatchdogUntilItMovesAgain) {
  Recorder recorder;
  ServiceNotifier::Options options;
  options.watchdog = 2s;
  options.stuck_after = std::chrono::duration<double>(10.0);
  ServiceNotifier notifier(options, recorder.sender());
  const Clock::time_point t0{};
  for (int s = 0; s <= 9; ++s) notifier.Tick(Snap(3, 2), t0 + s * 1s);
  EXPECT_FALSE(notifier.stuck());
  const int pings_before = recorder.Count("WATCHDOG=1");
  for (int s = 10; s <= 30; ++s) notifier.Tick(Snap(3, 2), t0 + s * 1s);
  EXPECT_TRUE(notifier.stuck());
  EXPECT_EQ(recorder.Count("WATCHDOG=1"), pings_before);  // systemd would now restart us
  EXPECT_GE(recorder.Count("STATUS=stuck (watchdog withheld)"), 1);
  notifier.Tick(Snap(4, 2), t0 + 31s);  // a video finished
  EXPECT_FALSE(notifier.stuck());
  EXPECT_EQ(recorder.Count("WATCHDOG=1"), pings_before + 1);

  // Idle (nothing in flight) is never stuck.
  for (int s = 32; s <= 80; ++s) notifier.Tick(Snap(4, 0), t0 + s * 1s);
  EXPECT_FALSE(notifier.stuck());
  EXPECT_EQ(ServiceNotifier::StuckAfter(600).count(), 1260.0);
}

TEST(ServiceNotifierTest, StoppingIsSentOnceAndReloadOnlyAfterReady) {
  Recorder recorder;
  ServiceNotifier notifier({}, recorder.sender());
  notifier.Reloading();  // before READY=1: a reload must not announce readiness
  notifier.Reloaded("log reopened");
  EXPECT_TRUE(recorder.sent.empty());
  notifier.Tick(Snap(0, 0), Clock::time_point{});
  notifier.Reloading();
  notifier.Reloaded("log reopened");
  ASSERT_EQ(recorder.sent.size(), 3u);
  EXPECT_EQ(recorder.sent[1], "RELOADING=1");
  EXPECT_EQ(recorder.sent[2], "READY=1\nSTATUS=log reopened");
  notifier.Stopping("stopping: draining 2 in flight, grace 30 s");
  notifier.Tick(Snap(1, 1, /*stopping=*/true), Clock::time_point{} + 1s);
  notifier.Stopping("again");
  EXPECT_EQ(recorder.Count("STOPPING=1"), 1);
  EXPECT_EQ(recorder.sent[3], "STOPPING=1\nSTATUS=stopping: draining 2 in flight, grace 30 s");
  notifier.Reloading();  // after STOPPING=1: nothing
  EXPECT_EQ(recorder.Count("RELOADING=1"), 1);
}

TEST(ServiceNotifierTest, StoppingSeenFirstByATick) {
  Recorder recorder;
  ServiceNotifier notifier({}, recorder.sender());
  notifier.Tick(Snap(0, 0), Clock::time_point{});
  notifier.Tick(Snap(5, 0, /*stopping=*/true), Clock::time_point{} + 1s);
  ASSERT_EQ(recorder.Count("STOPPING=1"), 1);
  EXPECT_NE(recorder.sent[1].find("STOPPING=1\nSTATUS=stopping: processed 5"), std::string::npos)
      << recorder.sent[1];
  EXPECT_TRUE(notifier.stopping_sent());
}

TEST(SystemdNotifierTest, WithoutNotifySocketEverythingIsANoOp) {
  const char* saved = std::getenv("NOTIFY_SOCKET");
  const std::string keep = saved != nullptr ? saved : "";
  ::unsetenv("NOTIFY_SOCKET");
  ::setenv("WATCHDOG_USEC", "2000000", 1);
  const SystemdNotifier notifier = SystemdNotifier::FromEnvironment();
  EXPECT_FALSE(notifier.enabled());
  EXPECT_EQ(notifier.watchdog().count(), 0);
  EXPECT_FALSE(notifier.Send("READY=1"));
  ::unsetenv("WATCHDOG_USEC");
  if (saved != nullptr) ::setenv("NOTIFY_SOCKET", keep.c_str(), 1);
}

// ---------------------------------------------------------------------------------------------
// The real daemon and a notification socket.

// A bound AF_UNIX datagram socket that receives sd_notify messages with the sender's pid.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      ::close(fd_);
      fd_ = -1;
      return;
    }
    const int on = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
  }
  ~NotifySocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }

  struct Message {
    std::string text;
    pid_t pid = 0;
    Clock::time_point at;
  };

  // Waits up to `timeout` for one datagram.
  std::optional<Message> Receive(std::chrono::milliseconds timeout) {
    pollfd poll_fd{fd_, POLLIN, 0};
    if (::poll(&poll_fd, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
    char buffer[4096];
    iovec iov{buffer, sizeof buffer};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
    msghdr header{};
    header.msg_iov = &iov;
    header.msg_iovlen = 1;
    header.msg_control = control;
    header.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(fd_, &header, 0);
    if (n < 0) return std::nullopt;
    Message message{std::string(buffer, static_cast<std::size_t>(n)), 0, Clock::now()};
    for (cmsghdr* c = CMSG_FIRSTHDR(&header); c != nullptr; c = CMSG_NXTHDR(&header, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
        ucred credentials;
        std::memcpy(&credentials, CMSG_DATA(c), sizeof credentials);
        message.pid = credentials.pid;
      }
    }
    return message;
  }

 private:
  std::string path_;
  int fd_ = -1;
};

// Starts VSIEVE_BINARY with `args` and extra environment entries, stdout and stderr to `log`.
// With `watchdog_pid_self` the child's environment gets WATCHDOG_PID=<its own pid>, as systemd
// sets it (filled in after fork, before exec).
class NotifiedDaemon {
 public:
  NotifiedDaemon(const std::vector<std::string>& args, std::vector<std::string> env,
                 const std::string& log, bool watchdog_pid_self) {
    std::vector<std::string> argv = {VSIEVE_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string entry = *e;
      if (entry.rfind("NOTIFY_SOCKET=", 0) == 0 || entry.rfind("WATCHDOG_", 0) == 0) continue;
      env.push_back(entry);
    }
    if (watchdog_pid_self) env.push_back("WATCHDOG_PID=" + std::string(20, '\0'));
    std::vector<char*> raw_argv;
    for (auto& arg : argv) raw_argv.push_back(arg.data());
    raw_argv.push_back(nullptr);
    std::vector<char*> raw_env;
    for (auto& entry : env) raw_env.push_back(entry.data());
    raw_env.push_back(nullptr);
    char* pid_slot =
        watchdog_pid_self ? raw_env[env.size() - 1] + std::strlen("WATCHDOG_PID=") : nullptr;
    const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    pid_ = ::fork();
    if (pid_ == 0) {
      // Only async-signal-safe calls from here to exec.
      if (pid_slot != nullptr) {
        char digits[20];
        int n = 0;
        for (pid_t pid = ::getpid(); pid > 0; pid /= 10)
          digits[n++] = static_cast<char>('0' + pid % 10);
        for (int i = 0; i < n; ++i) pid_slot[i] = digits[n - 1 - i];
        pid_slot[n] = '\0';
      }
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
      ::execve(raw_argv[0], raw_argv.data(), raw_env.data());
      ::_exit(127);
    }
    ::close(log_fd);
  }
  ~NotifiedDaemon() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  pid_t pid() const { return pid_; }
  void Signal(int signal) const { ::kill(pid_, signal); }
  // The exit code once exited, or -1 while it runs.
  int Poll() {
    if (exited_) return code_;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != pid_) return -1;
    exited_ = true;
    code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return code_;
  }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  int code_ = -1;
};

bool StartsWith(const std::string& text, const std::string& prefix) {
  return text.rfind(prefix, 0) == 0;
}

// "processed N" of a STATUS line, or -1.
int Processed(const std::string& message) {
  static const std::regex pattern("processed ([0-9]+) \\(");
  std::smatch match;
  if (!std::regex_search(message, match, pattern)) return -1;
  return std::stoi(match[1]);
}

class SdNotifyTest : public testing::SqliteStoreTest {
 protected:
  void SetUp() override {
    SqliteStoreTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_EQ(ImportTinyClips(3).size(), 3u);
    store_.reset();  // only the daemon has the database open while a test runs
  }

  std::vector<std::string> RunArgs() const {
    return {"run",       "--store", url_,         "--no-text",   "--log-level",     "info",
            "--workers", "1",       "--owner-id", "notify-test", "--grace-seconds", "20"};
  }
};

TEST_F(SdNotifyTest, ReadyStatusWatchdogReloadAndStoppingInOrder) {
  const std::string socket_path = dir_.File("notify.sock");
  NotifySocket socket(socket_path);
  ASSERT_TRUE(socket.ok()) << std::strerror(errno);
  NotifiedDaemon daemon(RunArgs(), {"NOTIFY_SOCKET=" + socket_path, "WATCHDOG_USEC=2000000"},
                        dir_.File("daemon.log"), /*watchdog_pid_self=*/true);
  ASSERT_GT(daemon.pid(), 0);

  std::vector<NotifySocket::Message> messages;
  const auto count = [&](const std::string& prefix) {
    int n = 0;
    for (const auto& m : messages) n += StartsWith(m.text, prefix) ? 1 : 0;
    return n;
  };
  // Phase 1: READY, every row processed, a few watchdog pings. Phase 2: SIGHUP until READY=1
  // comes again. Phase 3: SIGTERM until the process exits.
  int phase = 1;
  const auto give_up = Clock::now() + 180s;  // a hung daemon fails the test, not the suite
  while (daemon.Poll() < 0 && Clock::now() < give_up) {
    if (auto message = socket.Receive(200ms)) messages.push_back(*message);
    int max_processed = -1;
    for (const auto& m : messages) max_processed = std::max(max_processed, Processed(m.text));
    if (phase == 1 && max_processed == 3 && count("WATCHDOG=1") >= 3) {
      daemon.Signal(SIGHUP);
      phase = 2;
    } else if (phase == 2 && count("READY=1") == 2) {
      daemon.Signal(SIGTERM);
      phase = 3;
    }
  }
  while (auto message = socket.Receive(100ms)) messages.push_back(*message);
  ASSERT_EQ(daemon.Poll(), 0) << testing::ReadFile(dir_.File("daemon.log"));
  ASSERT_EQ(phase, 3) << testing::ReadFile(dir_.File("daemon.log"));

  ASSERT_FALSE(messages.empty());
  for (const auto& m : messages) EXPECT_EQ(m.pid, daemon.pid()) << m.text;
  // READY=1 comes first, before any video was processed.
  EXPECT_TRUE(StartsWith(messages[0].text, "READY=1\nSTATUS=ready: processed 0 ("))
      << messages[0].text;
  std::size_t reloading = 0, second_ready = 0, stopping = 0;
  int last_processed = 0;
  std::vector<Clock::time_point> pings;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const std::string& text = messages[i].text;
    if (StartsWith(text, "RELOADING=1")) reloading = i;
    if (StartsWith(text, "READY=1") && i > 0) second_ready = i;
    if (StartsWith(text, "STOPPING=1")) stopping = i;
    if (text == "WATCHDOG=1") pings.push_back(messages[i].at);
    const int processed = Processed(text);
    if (processed >= 0) {
      EXPECT_GE(processed, last_processed) << text;  // progress never goes back
      last_processed = processed;
    }
  }
  EXPECT_EQ(count("READY=1"), 2);
  EXPECT_EQ(count("RELOADING=1"), 1);
  EXPECT_EQ(count("STOPPING=1"), 1);
  EXPECT_GT(reloading, 0u);
  EXPECT_LT(reloading, second_ready);
  EXPECT_LT(second_ready, stopping);
  EXPECT_NE(messages[stopping].text.find("STATUS=stopping"), std::string::npos);
  EXPECT_GE(count("STATUS=processed"), 1);
  EXPECT_EQ(last_processed, 3);
  ASSERT_GE(pings.size(), 3u);
  // The pings' spacing is printed, not asserted (timing on a shared machine); systemd needs them
  // within WatchdogSec (2 s here) and the daemon aims at half of it.
  double widest = 0;
  for (std::size_t i = 1; i < pings.size(); ++i) {
    widest = std::max(widest, std::chrono::duration<double>(pings[i] - pings[i - 1]).count());
  }
  std::printf("[ info ] %zu WATCHDOG=1 pings, widest gap %.2f s (interval 2 s)\n", pings.size(),
              widest);
}

TEST_F(SdNotifyTest, WatchdogPidOfAnotherProcessMeansNoPings) {
  const std::string socket_path = dir_.File("notify.sock");
  NotifySocket socket(socket_path);
  ASSERT_TRUE(socket.ok());
  std::vector<std::string> args = RunArgs();
  args.push_back("--until-idle");
  // sd_watchdog_enabled() ignores a watchdog meant for another process (here: pid 1).
  NotifiedDaemon daemon(args,
                        {"NOTIFY_SOCKET=" + socket_path, "WATCHDOG_USEC=2000000", "WATCHDOG_PID=1"},
                        dir_.File("daemon.log"), /*watchdog_pid_self=*/false);
  std::vector<std::string> texts;
  const auto give_up = Clock::now() + 180s;
  while (daemon.Poll() < 0 && Clock::now() < give_up) {
    if (auto message = socket.Receive(200ms)) texts.push_back(message->text);
  }
  while (auto message = socket.Receive(100ms)) texts.push_back(message->text);
  ASSERT_EQ(daemon.Poll(), 0) << testing::ReadFile(dir_.File("daemon.log"));
  ASSERT_GE(texts.size(), 2u);
  EXPECT_TRUE(StartsWith(texts.front(), "READY=1\n")) << texts.front();
  int stopping = 0;
  for (const auto& text : texts) {
    EXPECT_NE(text, "WATCHDOG=1");
    if (StartsWith(text, "STOPPING=1")) {
      ++stopping;
      EXPECT_NE(text.find("STATUS=stopping: processed"), std::string::npos) << text;
    }
  }
  EXPECT_EQ(stopping, 1);
}

TEST_F(SdNotifyTest, WithoutNotifySocketTheDaemonRunsAsBefore) {
  testing::DaemonProcess daemon(
      [&] {
        auto args = RunArgs();
        args.push_back("--until-idle");
        return args;
      }(),
      dir_.File("daemon.log"));
  ASSERT_TRUE(daemon.started());
  EXPECT_EQ(daemon.Wait(180s), 0) << testing::ReadFile(dir_.File("daemon.log"));
  EXPECT_EQ(testing::ReadFile(dir_.File("daemon.log")).find("systemd"), std::string::npos);
}

}  // namespace
}  // namespace vsieve::daemon
