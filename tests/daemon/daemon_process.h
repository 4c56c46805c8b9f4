#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "storage/table_store.h"
#include "tests/support/test_env.h"

extern char** environ;

namespace vsieve::testing {

// A program run in the background with stdout and stderr appended to `log_path`, so a test can
// signal it and wait for it. argv[0] is a path, or a name looked up on PATH. The destructor
// kills (SIGKILL) and reaps a child that is still running. Not thread-safe; one test thread.
class ChildProcess {
 public:
  ChildProcess(std::vector<std::string> argv, const std::string& log_path) {
    std::vector<char*> raw;
    for (auto& arg : argv) raw.push_back(arg.data());
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
      ::kill(pid_, SIGCONT);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool started() const { return pid_ > 0; }
  void Signal(int signal) const {
    if (pid_ > 0 && !exited_) ::kill(pid_, signal);
  }

  // Waits up to `timeout` for the child to exit. Returns its exit code, 128 + signal when it was
  // killed by a signal, or -1 when it is still running.
  int Wait(std::chrono::duration<double> timeout) {
    if (exited_) return code_;
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (true) {
      int status = 0;
      const pid_t done = ::waitpid(pid_, &status, WNOHANG);
      if (done == pid_) {
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

// The `vsieve` binary under test run with `args` as a ChildProcess.
class DaemonProcess : public ChildProcess {
 public:
  DaemonProcess(const std::vector<std::string>& args, const std::string& log_path)
      : ChildProcess(WithBinary(args), log_path) {}

 private:
  static std::vector<std::string> WithBinary(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {VSIEVE_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
};

// Counts rows of `store` by state name.
inline std::map<std::string, int> CountStates(storage::TableStore* store) {
  std::map<std::string, int> counts;
  (void)store->ForEachRow("", std::nullopt, [&](const storage::RowRecord& record) {
    ++counts[std::string(storage::RowStateName(record.state))];
  });
  return counts;
}

// Makes `count` tiny clips (160x120, 1 s) in `dir` by copying one encoded clip; returns their
// paths, or an empty list when ffmpeg is missing.
inline std::vector<std::string> MakeTinyClips(const std::string& dir, int count) {
  const std::string source = dir + "/source.mp4";
  if (!Ffmpeg({"-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-t", "1", "-pix_fmt",
               "yuv420p", source})) {
    return {};
  }
  std::vector<std::string> paths;
  for (int i = 0; i < count; ++i) {
    const std::string path = dir + "/clip" + std::to_string(i) + ".mp4";
    std::filesystem::copy_file(source, path, std::filesystem::copy_options::overwrite_existing);
    paths.push_back(path);
  }
  return paths;
}

// One row per path, with the ids `prefix` + its index: "id0", "id1", ...
inline std::vector<storage::InputRow> RowsFor(const std::vector<std::string>& paths,
                                              const std::string& prefix = "id") {
  std::vector<storage::InputRow> rows;
  for (size_t i = 0; i < paths.size(); ++i) {
    storage::InputRow row;
    row.video_id = prefix + std::to_string(i);
    row.video_path = paths[i];
    rows.push_back(row);
  }
  return rows;
}

// Tests of `vsieve run` over an SQLite store in a temp folder: url_ names it (for --store) and
// store_ has it open. Skips when ffmpeg is missing (the tests make their clips with it).
class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VSIEVE_REQUIRE_FFMPEG();
    url_ = "sqlite://" + dir_.File("vsieve.db");
    auto store = storage::TableStore::Open(url_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }

  // Makes `count` tiny clips and imports them as the rows RowsFor() names; returns their ids
  // (fewer than `count` only after a test failure).
  std::vector<std::string> ImportTinyClips(int count) {
    const std::vector<std::string> clips = MakeTinyClips(dir_.path(), count);
    EXPECT_EQ(static_cast<int>(clips.size()), count);
    const std::vector<storage::InputRow> rows = RowsFor(clips);
    const auto imported = store_->Import(rows);
    if (!imported.ok()) {
      ADD_FAILURE() << imported.status().ToString();
      return {};
    }
    std::vector<std::string> ids;
    for (const auto& row : rows) ids.push_back(row.video_id);
    return ids;
  }

  TempDir dir_;
  std::string url_;
  std::unique_ptr<storage::TableStore> store_;
};

}  // namespace vsieve::testing
