#pragma once

#include <memory>
#include <string>
#include <vector>

namespace vsieve::testing {

// A real PostgreSQL server for tests: `initdb` into a fresh folder under the temp dir, then
// `pg_ctl start` on 127.0.0.1 and a free port, its socket in that folder (never the shared
// /var/run/postgresql). As root the server programs run as the `postgres` user (initdb refuses
// root), through runuser. The binaries come from $VSIEVE_PG_BINDIR, `pg_config --bindir` or the
// newest /usr/lib/postgresql/*/bin. fsync is off (a test never loses power) but commits are
// synchronous, so a committed row survives `pg_ctl restart -m immediate`.
// Stopped (`pg_ctl stop -m fast`) and its folder removed on destruction. One thread at a time.
class PostgresServer {
 public:
  // Null with `why_not` set when the server programs are absent or the server does not start
  // (the caller skips).
  static std::unique_ptr<PostgresServer> Start(std::string* why_not);
  // Creates the folder (owned by postgres when we are root); false with `why` on failure.
  bool MakeDir(std::string* why);
  // A streaming standby of `primary` (pg_basebackup -R), started on its own port. Null with
  // `why_not` set on failure.
  static std::unique_ptr<PostgresServer> StartStandby(const PostgresServer& primary,
                                                      std::string* why_not);
  // True when the server programs (initdb, pg_ctl) are installed. Tests skip only when they are
  // not: with them present, a server that does not start is a test failure.
  static bool Installed();
  // One server for the whole test program, started on first use and stopped at exit.
  static PostgresServer* Shared(std::string* why_not);
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // Creates a new empty database and returns its URL
  // ("postgresql://postgres@127.0.0.1:PORT/NAME"); "" with `why` set on failure.
  std::string CreateDatabase(std::string* why);
  // `pg_ctl restart -m MODE` ("immediate" crashes the server the way a power cut of the
  // process would; "fast" is a clean restart). Returns false with `why` set on failure.
  bool Restart(const std::string& mode, std::string* why);
  // `pg_ctl stop -m MODE`; false with `why` set on failure.
  bool Stop(const std::string& mode, std::string* why);
  // `pg_ctl promote` (a standby becomes a primary); waits until it accepts writes.
  bool Promote(std::string* why);
  // "postgresql://postgres@127.0.0.1:PORT/" + `database`.
  std::string Url(const std::string& database) const;
  // Runs one SQL statement on `url` and returns the first column of the first row ("" if none);
  // `ok` false (when given) on error.
  static std::string Query(const std::string& url, const std::string& sql, bool* ok = nullptr);

  int port() const { return port_; }
  const std::string& dir() const { return dir_; }

 private:
  PostgresServer() = default;
  // Runs a server program (as postgres when we are root); true on exit code 0.
  bool RunServerProgram(const std::string& program, const std::vector<std::string>& args,
                        std::string* output);
  bool StartOnPort(std::string* why);

  std::string bindir_;
  std::string dir_;
  int port_ = 0;
  int databases_ = 0;
  bool running_ = false;
};

}  // namespace vsieve::testing

// Skips the current test when PostgreSQL's server programs are not installed.
#define VSIEVE_REQUIRE_POSTGRES()                                                       \
  do {                                                                                  \
    if (!::vsieve::testing::PostgresServer::Installed()) {                              \
      GTEST_SKIP() << "PostgreSQL server programs (initdb, pg_ctl) are not installed; " \
                      "apt-get install postgresql";                                     \
    }                                                                                   \
  } while (false)
