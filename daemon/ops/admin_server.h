#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "common/metrics.h"
#include "common/status.h"
#include "daemon/config/listen_address.h"
#include "storage/table_store.h"

namespace vsieve::daemon {

struct FilterConfig;

// Reads a bearer token from `path`: the first line, surrounding whitespace removed.
// Errors: kInvalidArgument when the file cannot be read or holds no token.
common::StatusOr<std::string> ReadTokenFile(const std::string& path);

// True for 127.0.0.0/8, ::1 and ::ffff:127.x.x.x (IPv4-mapped). Pure.
bool IsLoopbackAddress(std::string_view address);

// Compares two tokens in time that depends only on their lengths, not on where they differ.
bool TokensEqual(std::string_view a, std::string_view b);

// Whether a mutating request (POST) may go on. `status` is 0 when it may, else 401 (a token is
// configured and the Authorization header is missing, not "Bearer ...", or carries another
// token) or 403 (no token is configured and the peer is not a loopback address), with a message
// for the response body. Pure; the server's access rule in one testable place.
struct AccessDecision {
  int status = 0;
  std::string message;
  bool allowed() const { return status == 0; }
};
AccessDecision CheckMutatingAccess(std::string_view remote_addr, std::string_view authorization,
                                   std::string_view token);

// What /readyz reports: 503 while starting (stores open, the model pool being built) and while
// draining (after SIGTERM or once the run is over), 200 only when ready.
enum class Readiness { kStarting, kReady, kDraining };

struct AdminOptions {
  std::string listen = std::string(kDefaultAdminListen);  // HOST:PORT; port 0 = any free port
  std::string token;  // bearer token for POST; "" = POST only from loopback addresses
  std::string default_table = "default";   // for POST bodies and GET without `table`
  std::size_t max_body_bytes = 64 * 1024;  // larger request bodies get 413
  int threads = 3;                         // the server's worker threads (bounded)
  std::string address_file;  // "" = none; else "HOST:PORT\n" is written there once listening
                             // (replaced atomically) and removed by Stop()
};

// The admin HTTP API (cpp-httplib) of `vsieve run` (DESIGN.md, "Operations"):
//
//   GET  /healthz              200 {"status":"alive"} while the process runs
//   GET  /readyz               200 {"status":"ready"}; 503 {"status":"starting"|"draining",...}
//   GET  /metrics              `registry` in Prometheus text format 0.0.4
//   GET  /v1/status[?table=T]  what `vsieve status --json [--table T]` prints
//   POST /v1/videos[?table=T][&requeue=1]
//        one input row (the fields of `vsieve import`, plus optional "table"); video_path is
//        required. 201 {"video_id","table","state":"pending","created":true} for a new row;
//        200 with the row's state and "created":false when it exists and is pending, done or
//        failed (fields are not updated); with requeue=1 a done or failed row is put back to
//        pending: 202 {"state":"pending","requeued":true}; 409 when it is running;
//        400 naming the bad field; 413 over max_body_bytes; 401/403 (CheckMutatingAccess).
//   GET  /v1/videos/{id}[?table=T]
//        200 {"video_id","table","state","attempts","last_error","updated_at","input",
//        "result"} ("result": the output row once done or failed, else null); 404 when unknown.
//
// Every response is JSON except /metrics; errors are {"error": "<kind>", "message": "..."}.
// Handlers catch every exception (500). Requests are served by `threads` threads.
//
// Ownership: `store` and `registry` are borrowed and must outlive the server. Thread-safety:
// SetReadiness() and the accessors are safe from any thread; Stop() (also run by the destructor)
// from one thread. Stop() blocks until the listener and every handler thread have finished
// (handlers are short; idle keep-alive connections are dropped within about a second).
class AdminServer {
 public:
  // Binds `options.listen` and starts serving on a thread of its own; returns once the listener
  // accepts connections (and the address file is written). Errors: kInvalidArgument (bad
  // address); kInternal, retryable, when the address cannot be bound (the message names it);
  // kInternal when the address file cannot be written.
  static common::StatusOr<std::unique_ptr<AdminServer>> Start(AdminOptions options,
                                                              storage::TableStore* store,
                                                              common::MetricsRegistry* registry);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  void SetReadiness(Readiness readiness);
  Readiness readiness() const;

  // The bound host and port (the real port when 0 was asked for), and "HOST:PORT".
  const std::string& host() const;
  int port() const;
  std::string address() const;

  void Stop();

 private:
  struct Impl;
  explicit AdminServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Starts the admin server `vsieve run` is configured for, or none: returns nullptr when
// [admin].listen is "off"/"" and when the built-in default address cannot be bound (a warning is
// logged: two daemons on one host with default settings both run). Reads [admin].token_file,
// passes [admin].address_file on, and logs "admin: listening on http://HOST:PORT". Errors:
// kInvalidArgument for a bad token file or address, kInternal when an address set by the file or
// a flag cannot be bound or the address file cannot be written.
common::StatusOr<std::unique_ptr<AdminServer>> StartConfiguredAdmin(const FilterConfig& config,
                                                                    storage::TableStore* store);

}  // namespace vsieve::daemon
