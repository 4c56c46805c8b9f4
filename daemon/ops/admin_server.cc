#include "daemon/ops/admin_server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/text.h"
#include "daemon/config/filter_config.h"
#include "daemon/tables/table_rows.h"

namespace vsieve::daemon {
namespace {

using common::ErrorCode;
using common::Status;
using common::TrimView;
using nlohmann::json;

bool StartsWithNoCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

void SendJson(httplib::Response& res, int status, const json& body) {
  res.status = status;
  // Invalid UTF-8 (a video id from a CSV import, a raw URL byte) is replaced, never thrown.
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n",
                  "application/json");
}

void SendError(httplib::Response& res, int status, std::string_view kind, std::string message) {
  SendJson(res, status, {{"error", kind}, {"message", std::move(message)}});
}

// The error kind written for an HTTP status that httplib or a handler set without a body.
std::string_view ErrorKind(int status) {
  switch (status) {
    case 400:
      return "bad_request";
    case 401:
      return "unauthorized";
    case 403:
      return "forbidden";
    case 404:
      return "not_found";
    case 405:
      return "method_not_allowed";
    case 409:
      return "conflict";
    case 413:
      return "payload_too_large";
    case 503:
      return "unavailable";
    default:
      return status >= 500 ? "internal" : "error";
  }
}

// 500 for store errors; the message is the store's.
void SendStoreError(httplib::Response& res, const Status& status) {
  SendError(res, 500, "store", status.ToString());
}

// The `table` query parameter, or `fallback`.
std::string TableParam(const httplib::Request& req, const std::string& fallback) {
  return req.has_param("table") ? req.get_param_value("table") : fallback;
}

json RowJson(const storage::RowRecord& record) {
  json info = json::parse(record.row.info_json, nullptr, /*allow_exceptions=*/false);
  if (info.is_discarded()) info = record.row.info_json;
  json last_error = nullptr;
  if (!record.last_error_code.empty()) {
    last_error = {{"code", record.last_error_code}, {"message", record.last_error_message}};
  }
  json result = nullptr;
  const bool finished =
      record.state == storage::RowState::kDone || record.state == storage::RowState::kFailed;
  if (finished && record.result_json.has_value()) {
    result = json::parse(*record.result_json, nullptr, /*allow_exceptions=*/false);
    if (result.is_discarded()) result = *record.result_json;
  }
  return {{"video_id", record.row.video_id},
          {"table", record.row.table},
          {"state", storage::RowStateName(record.state)},
          {"attempts", record.attempts},
          {"last_error", last_error},
          {"updated_at", record.updated_at},
          {"input",
           {{"oss_bucket", record.row.oss_bucket},
            {"video_path", record.row.video_path},
            {"video_tag", record.row.video_tag},
            {"info", info}}},
          {"result", result}};
}

}  // namespace

common::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return Status(ErrorCode::kInvalidArgument,
                  "config key 'admin.token_file': cannot read '" + path + "'");
  }
  std::string line;
  std::getline(in, line);
  const std::string token(TrimView(line));
  if (token.empty()) {
    return Status(ErrorCode::kInvalidArgument,
                  "config key 'admin.token_file': '" + path + "' holds no token on its first line");
  }
  return token;
}

bool IsLoopbackAddress(std::string_view address) {
  std::string text(address);
  if (StartsWithNoCase(text, "::ffff:")) text = text.substr(7);
  in_addr v4{};
  if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (::inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    static const in6_addr kLoopback = IN6ADDR_LOOPBACK_INIT;
    return std::memcmp(&v6, &kLoopback, sizeof v6) == 0;
  }
  return false;
}

bool TokensEqual(std::string_view a, std::string_view b) {
  // Walk the longer length whatever the contents; differences are OR-ed, never branched on.
  const size_t n = std::max(a.size(), b.size());
  unsigned diff = a.size() == b.size() ? 0U : 1U;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned>(x ^ y);
  }
  return diff == 0;
}

AccessDecision CheckMutatingAccess(std::string_view remote_addr, std::string_view authorization,
                                   std::string_view token) {
  if (token.empty()) {
    if (IsLoopbackAddress(remote_addr)) return {};
    return {403, "mutating requests from " + std::string(remote_addr) +
                     " are refused: no token is configured, so only loopback clients may POST "
                     "(set [admin] token_file)"};
  }
  const std::string_view header = TrimView(authorization);
  if (header.empty()) {
    return {401, "missing Authorization header: send 'Authorization: Bearer TOKEN'"};
  }
  if (!StartsWithNoCase(header, "Bearer ")) {
    return {401, "the Authorization header must be 'Bearer TOKEN'"};
  }
  if (!TokensEqual(TrimView(header.substr(7)), token)) {
    return {401, "wrong bearer token"};
  }
  return {};
}

struct AdminServer::Impl {
  AdminOptions options;
  storage::TableStore* store = nullptr;
  common::MetricsRegistry* registry = nullptr;
  httplib::Server server;
  std::thread thread;
  std::atomic<Readiness> readiness{Readiness::kStarting};
  std::string host;
  int port = 0;
  bool stopped = false;  // only Stop() touches it, from one thread

  bool address_written = false;  // the address file is ours to remove

  void Install();
  Status WriteAddressFile(const std::string& address);
  void Submit(const httplib::Request& req, httplib::Response& res);
  void GetVideo(const httplib::Request& req, httplib::Response& res);
};

void AdminServer::Impl::Install() {
  // httplib's API takes a factory returning an owning raw pointer; the server deletes it.
  const int threads = std::max(1, options.threads);
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // httplib's default also sets SO_REUSEPORT, which would let a second daemon bind the same
  // port and share its connections; keep only SO_REUSEADDR (quick restarts).
  server.set_socket_options([](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  server.set_payload_max_length(options.max_body_bytes);
  server.set_keep_alive_timeout(1);
  server.set_read_timeout(5);
  server.set_write_timeout(5);
  server.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr error) {
        std::string what = "unknown exception";
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        SendError(res, 500, "internal", "internal error: " + what);
      });
  // Called for every response of status >= 400: give a JSON body to those httplib produced
  // itself (404 for unknown paths, 413 for large bodies, 400 for malformed requests).
  const std::size_t max_body = options.max_body_bytes;
  server.set_error_handler(httplib::Server::HandlerWithResponse(
      [max_body](const httplib::Request&, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        std::string message = "HTTP " + std::to_string(res.status);
        if (res.status == 404) message = "no such endpoint";
        if (res.status == 413) {
          message = "request body over " + std::to_string(max_body) + " bytes";
        }
        SendError(res, res.status, ErrorKind(res.status), message);
        return httplib::Server::HandlerResponse::Handled;
      }));

  server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    SendJson(res, 200, {{"status", "alive"}});
  });
  server.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    switch (readiness.load()) {
      case Readiness::kReady:
        SendJson(res, 200, {{"status", "ready"}});
        break;
      case Readiness::kStarting:
        SendJson(res, 503, {{"status", "starting"}, {"message", "the model pool is being built"}});
        break;
      case Readiness::kDraining:
        SendJson(res, 503,
                 {{"status", "draining"}, {"message", "the daemon is stopping; not claiming"}});
        break;
    }
  });
  server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(registry->Render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  server.Get("/v1/status", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string table = TableParam(req, "");
    auto stats = store->Stats(table);
    if (!stats.ok()) return SendStoreError(res, stats.status());
    SendJson(res, 200, StatusJson(table, *stats));
  });
  server.Post("/v1/videos",
              [this](const httplib::Request& req, httplib::Response& res) { Submit(req, res); });
  server.Get(R"(/v1/videos/(.+))",
             [this](const httplib::Request& req, httplib::Response& res) { GetVideo(req, res); });
  // The GET-only endpoints answer other methods with 405 rather than 404.
  for (const char* path : {"/healthz", "/readyz", "/metrics", "/v1/status", R"(/v1/videos/(.+))"}) {
    server.Post(path, [](const httplib::Request&, httplib::Response& res) {
      SendError(res, 405, "method_not_allowed", "use GET");
    });
  }
  server.Get("/v1/videos", [](const httplib::Request&, httplib::Response& res) {
    SendError(res, 405, "method_not_allowed", "use POST to submit, GET /v1/videos/{id} to read");
  });
}

Status AdminServer::Impl::WriteAddressFile(const std::string& address) {
  const std::string& path = options.address_file;
  if (path.empty()) return Status::Ok();
  const std::string temp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(temp, std::ios::trunc);
    out << address << "\n";
    if (!out.flush()) {
      return Status(ErrorCode::kInternal, "config key 'admin.address_file': cannot write " + temp);
    }
  }
  std::error_code ec;
  std::filesystem::rename(temp, path, ec);
  if (ec) {
    const std::string why = ec.message();
    std::filesystem::remove(temp, ec);
    return Status(ErrorCode::kInternal,
                  "config key 'admin.address_file': cannot write " + path + ": " + why);
  }
  address_written = true;
  return Status::Ok();
}

void AdminServer::Impl::Submit(const httplib::Request& req, httplib::Response& res) {
  const AccessDecision access =
      CheckMutatingAccess(req.remote_addr, req.get_header_value("Authorization"), options.token);
  if (!access.allowed()) {
    if (access.status == 401) res.set_header("WWW-Authenticate", "Bearer");
    return SendError(res, access.status, ErrorKind(access.status), access.message);
  }
  if (req.body.size() > options.max_body_bytes) {
    return SendError(res, 413, "payload_too_large",
                     "request body over " + std::to_string(options.max_body_bytes) + " bytes");
  }
  bool requeue = false;
  if (req.has_param("requeue")) {
    const std::string value = req.get_param_value("requeue");
    if (value == "1" || value == "true") {
      requeue = true;
    } else if (value != "0" && value != "false") {
      return SendError(res, 400, "bad_request", "query parameter 'requeue' must be 0 or 1");
    }
  }
  const json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) {
    return SendError(res, 400, "bad_request", "the body is not valid JSON");
  }
  if (!body.is_object()) {
    return SendError(res, 400, "bad_request", "the body must be a JSON object (one input row)");
  }
  storage::InputRow row;
  row.table = TableParam(req, options.default_table);
  if (auto it = body.find("table"); it != body.end() && !it->is_null()) {
    if (!it->is_string()) {
      return SendError(res, 400, "bad_request", "field 'table' must be a string");
    }
    if (req.has_param("table") && it->get<std::string>() != row.table) {
      return SendError(res, 400, "bad_request",
                       "field 'table' and the query parameter 'table' disagree");
    }
    row.table = it->get<std::string>();
  }
  if (TrimView(row.table).empty()) {
    return SendError(res, 400, "bad_request", "field 'table' must not be empty");
  }
  if (std::string reason = ParseInputRowJson(req.body, &row); !reason.empty()) {
    return SendError(res, 400, "bad_request", reason);
  }
  if (TrimView(row.video_path).empty()) {
    return SendError(res, 400, "bad_request", "missing or empty video_path");
  }

  const std::string location = "/v1/videos/" + httplib::detail::encode_query_param(row.video_id) +
                               "?table=" + httplib::detail::encode_query_param(row.table);
  // Insert, or report the existing row. Two tries: a row inserted by a concurrent request
  // between GetRow() and Import() is found by the second GetRow().
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto existing = store->GetRow(row.table, row.video_id);
    if (existing.ok()) {
      const storage::RowState state = existing->state;
      const json id = {{"video_id", row.video_id}, {"table", row.table}};
      if (state == storage::RowState::kRunning) {
        return SendJson(res, 409,
                        {{"error", "conflict"},
                         {"message", "video '" + row.video_id + "' in table '" + row.table +
                                         "' is running; submit it again once it has finished"},
                         {"video_id", row.video_id},
                         {"table", row.table},
                         {"state", "running"}});
      }
      const bool finished =
          state == storage::RowState::kDone || state == storage::RowState::kFailed;
      if (finished && requeue) {
        storage::RequeueFilter filter;
        filter.table = row.table;
        filter.video_ids = {row.video_id};
        auto requeued = store->Requeue(filter);
        if (!requeued.ok()) return SendStoreError(res, requeued.status());
        if (requeued->refused_running > 0) {
          return SendError(res, 409, "conflict",
                           "video '" + row.video_id + "' started running meanwhile");
        }
        res.set_header("Location", location);
        return SendJson(res, 202,
                        {{"video_id", row.video_id},
                         {"table", row.table},
                         {"state", "pending"},
                         {"created", false},
                         {"requeued", true}});
      }
      json reply = {{"video_id", row.video_id},
                    {"table", row.table},
                    {"state", storage::RowStateName(state)},
                    {"created", false}};
      if (finished) {
        reply["message"] = "already processed; POST with ?requeue=1 to process it again";
      }
      res.set_header("Location", location);
      return SendJson(res, 200, reply);
    }
    if (existing.status().code() != ErrorCode::kObjectNotFound) {
      return SendStoreError(res, existing.status());
    }
    auto imported = store->Import({row});
    if (!imported.ok()) return SendStoreError(res, imported.status());
    if (imported->inserted == 1) {
      res.set_header("Location", location);
      return SendJson(res, 201,
                      {{"video_id", row.video_id},
                       {"table", row.table},
                       {"state", "pending"},
                       {"created", true}});
    }
  }
  SendError(res, 500, "internal", "the row neither exists nor could be inserted");
}

void AdminServer::Impl::GetVideo(const httplib::Request& req, httplib::Response& res) {
  const std::string video_id = req.matches[1];
  const std::string table = TableParam(req, options.default_table);
  auto record = store->GetRow(table, video_id);
  if (!record.ok()) {
    if (record.status().code() == ErrorCode::kObjectNotFound) {
      return SendError(res, 404, "not_found",
                       "no video '" + video_id + "' in table '" + table + "'");
    }
    return SendStoreError(res, record.status());
  }
  SendJson(res, 200, RowJson(*record));
}

common::StatusOr<std::unique_ptr<AdminServer>> AdminServer::Start(
    AdminOptions options, storage::TableStore* store, common::MetricsRegistry* registry) {
  if (store == nullptr || registry == nullptr) {
    return Status(ErrorCode::kInvalidArgument, "admin server: no store or registry");
  }
  VSIEVE_ASSIGN_OR_RETURN(ListenAddress address, ParseListenAddress(options.listen));
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->store = store;
  impl->registry = registry;
  impl->host = address.host;
  impl->Install();
  if (address.port == 0) {
    impl->port = impl->server.bind_to_any_port(address.host);
  } else if (impl->server.bind_to_port(address.host, address.port)) {
    impl->port = address.port;
  } else {
    impl->port = -1;
  }
  if (impl->port <= 0) {
    return Status(ErrorCode::kInternal,
                  "admin server: cannot listen on " + impl->options.listen +
                      " (address in use or not local?)",
                  /*retryable=*/true);
  }
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->server.listen_after_bind(); });
  // cpp-httplib 0.11 has no wait_until_ready(): wait for the accept loop to run.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!impl->server.is_running() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::unique_ptr<AdminServer> server(new AdminServer(std::move(impl)));
  if (!server->impl_->server.is_running()) {
    server->Stop();
    return Status(ErrorCode::kInternal, "admin server: the listener did not start");
  }
  if (Status written = server->impl_->WriteAddressFile(server->address()); !written.ok()) {
    server->Stop();
    return written;
  }
  return server;
}

AdminServer::AdminServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AdminServer::~AdminServer() { Stop(); }

void AdminServer::Stop() {
  if (impl_ == nullptr || impl_->stopped) return;
  impl_->stopped = true;
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  if (impl_->address_written) {
    std::error_code ignored;
    std::filesystem::remove(impl_->options.address_file, ignored);
  }
}

void AdminServer::SetReadiness(Readiness readiness) { impl_->readiness.store(readiness); }

Readiness AdminServer::readiness() const { return impl_->readiness.load(); }

const std::string& AdminServer::host() const { return impl_->host; }

int AdminServer::port() const { return impl_->port; }

std::string AdminServer::address() const {
  const bool v6 = impl_->host.find(':') != std::string::npos;
  return (v6 ? "[" + impl_->host + "]" : impl_->host) + ":" + std::to_string(impl_->port);
}

common::StatusOr<std::unique_ptr<AdminServer>> StartConfiguredAdmin(const FilterConfig& config,
                                                                    storage::TableStore* store) {
  const AdminConfig& admin = config.admin;
  if (!AdminEnabled(admin.listen)) {
    spdlog::info("admin: off");
    return std::unique_ptr<AdminServer>();
  }
  AdminOptions options;
  options.listen = std::string(TrimView(admin.listen));
  if (!admin.token_file.empty()) {
    VSIEVE_ASSIGN_OR_RETURN(options.token, ReadTokenFile(admin.token_file));
  }
  if (!config.pipeline.tables.empty()) options.default_table = config.pipeline.tables.front();
  options.address_file = admin.address_file;
  auto server = AdminServer::Start(options, store, &common::MetricsRegistry::Global());
  if (!server.ok()) {
    if (server.status().retryable() && !admin.listen_set) {
      spdlog::warn("{}; running without the admin API (set [admin] listen or --admin-listen)",
                   server.status().message());
      return std::unique_ptr<AdminServer>();
    }
    return server.status();
  }
  spdlog::info("admin: listening on http://{} (token {})", (*server)->address(),
               options.token.empty() ? "none: POST from loopback only" : "required for POST");
  return server;
}

}  // namespace vsieve::daemon
