#include "tests/support/postgres_server.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "tests/support/test_env.h"

namespace vsieve::testing {
namespace {

std::string FindBinDir() {
  // Set, it is the only place looked at (an empty folder makes the tests skip).
  if (const char* env = std::getenv("VSIEVE_PG_BINDIR"); env != nullptr && *env != '\0') {
    return std::filesystem::exists(std::string(env) + "/initdb") ? env : "";
  }
  std::string out;
  if (RunProgram({"pg_config", "--bindir"}, &out) == 0) {
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    if (std::filesystem::exists(out + "/initdb")) return out;
  }
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    if (std::filesystem::exists(entry.path() / "bin" / "initdb")) {
      found.push_back((entry.path() / "bin").string());
    }
  }
  if (found.empty()) return "";
  std::sort(found.begin(), found.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  });
  return found.back();
}

int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t length = sizeof(addr);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

}  // namespace

std::unique_ptr<PostgresServer> PostgresServer::Start(std::string* why_not) {
  std::unique_ptr<PostgresServer> server(new PostgresServer());
  server->bindir_ = FindBinDir();
  if (server->bindir_.empty()) {
    *why_not = "no PostgreSQL server programs (initdb, pg_ctl); install the postgresql package";
    return nullptr;
  }
  if (!server->MakeDir(why_not)) return nullptr;
  std::string output;
  if (!server->RunServerProgram("initdb",
                                {"-D", server->dir_ + "/data", "-A", "trust", "-U", "postgres",
                                 "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"},
                                &output)) {
    *why_not = "initdb failed: " + output;
    return nullptr;
  }
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (server->StartOnPort(why_not)) return server;
  }
  return nullptr;
}

bool PostgresServer::MakeDir(std::string* why) {
  // Not under a TempDir: the folder must be reachable by the postgres user.
  std::string templ = (std::filesystem::temp_directory_path() / "vsieve-pg-XXXXXX").string();
  if (::mkdtemp(templ.data()) == nullptr) {
    *why = "mkdtemp failed";
    return false;
  }
  dir_ = templ;
  if (::geteuid() == 0) {
    const passwd* postgres = ::getpwnam("postgres");
    if (postgres == nullptr) {
      *why = "running as root and there is no postgres user to run the server as";
      return false;
    }
    if (::chown(dir_.c_str(), postgres->pw_uid, postgres->pw_gid) != 0) {
      *why = "cannot chown " + dir_;
      return false;
    }
  }
  return true;
}

std::unique_ptr<PostgresServer> PostgresServer::StartStandby(const PostgresServer& primary,
                                                             std::string* why_not) {
  std::unique_ptr<PostgresServer> standby(new PostgresServer());
  standby->bindir_ = primary.bindir_;
  if (!standby->MakeDir(why_not)) return nullptr;
  std::string output;
  if (!standby->RunServerProgram(
          "pg_basebackup",
          {"-h", "127.0.0.1", "-p", std::to_string(primary.port_), "-U", "postgres", "-D",
           standby->dir_ + "/data", "-R", "-X", "stream", "--no-sync", "--checkpoint=fast"},
          &output)) {
    *why_not = "pg_basebackup failed: " + output;
    return nullptr;
  }
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (standby->StartOnPort(why_not)) return standby;
  }
  return nullptr;
}

bool PostgresServer::Stop(const std::string& mode, std::string* why) {
  std::string output;
  if (!RunServerProgram("pg_ctl", {"-D", dir_ + "/data", "-m", mode, "-w", "stop"}, &output)) {
    *why = "pg_ctl stop failed: " + output;
    return false;
  }
  running_ = false;
  return true;
}

bool PostgresServer::Promote(std::string* why) {
  std::string output;
  if (!RunServerProgram("pg_ctl", {"-D", dir_ + "/data", "-w", "-t", "60", "promote"}, &output)) {
    *why = "pg_ctl promote failed: " + output;
    return false;
  }
  return true;
}

std::string PostgresServer::Url(const std::string& database) const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + database;
}

bool PostgresServer::Installed() {
  static const bool installed = !FindBinDir().empty();
  return installed;
}

PostgresServer* PostgresServer::Shared(std::string* why_not) {
  static std::string why;
  static std::unique_ptr<PostgresServer> shared = Start(&why);
  if (shared == nullptr) *why_not = why;
  return shared.get();
}

bool PostgresServer::RunServerProgram(const std::string& program,
                                      const std::vector<std::string>& args, std::string* output) {
  std::vector<std::string> argv;
  if (::geteuid() == 0) argv = {"runuser", "-u", "postgres", "--"};
  argv.push_back(bindir_ + "/" + program);
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProgram(argv, output) == 0;
}

bool PostgresServer::StartOnPort(std::string* why) {
  port_ = FreePort();
  const std::string options = "-k " + dir_ + " -p " + std::to_string(port_) +
                              " -c listen_addresses=127.0.0.1 -c fsync=off"
                              " -c full_page_writes=off -c max_connections=300";
  std::string output;
  if (!RunServerProgram("pg_ctl",
                        {"-D", dir_ + "/data", "-l", dir_ + "/server.log", "-w", "-t", "60", "-o",
                         options, "start"},
                        &output)) {
    *why = "pg_ctl start failed: " + output + ReadFile(dir_ + "/server.log");
    return false;
  }
  running_ = true;
  return true;
}

PostgresServer::~PostgresServer() {
  if (running_) {
    std::string output;
    (void)RunServerProgram("pg_ctl", {"-D", dir_ + "/data", "-m", "fast", "-w", "stop"}, &output);
  }
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string PostgresServer::CreateDatabase(std::string* why) {
  const std::string name = "vsieve_test_" + std::to_string(++databases_);
  bool ok = false;
  Query("postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/postgres",
        "CREATE DATABASE " + name, &ok);
  if (!ok) {
    *why = "CREATE DATABASE " + name + " failed";
    return "";
  }
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + name;
}

bool PostgresServer::Restart(const std::string& mode, std::string* why) {
  std::string output;
  if (!RunServerProgram("pg_ctl",
                        {"-D", dir_ + "/data", "-l", dir_ + "/server.log", "-m", mode, "-w", "-t",
                         "60", "restart"},
                        &output)) {
    *why = "pg_ctl restart failed: " + output;
    return false;
  }
  return true;
}

std::string PostgresServer::Query(const std::string& url, const std::string& sql, bool* ok) {
  if (ok != nullptr) *ok = false;
  PGconn* conn = PQconnectdb(url.c_str());
  std::string value;
  if (PQstatus(conn) == CONNECTION_OK) {
    PQsetNoticeProcessor(
        conn, [](void*, const char*) {}, nullptr);
    PGresult* result = PQexec(conn, sql.c_str());
    const ExecStatusType status = PQresultStatus(result);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
      if (ok != nullptr) *ok = true;
      if (PQntuples(result) > 0 && PQnfields(result) > 0) value = PQgetvalue(result, 0, 0);
    }
    PQclear(result);
  }
  PQfinish(conn);
  return value;
}

}  // namespace vsieve::testing
