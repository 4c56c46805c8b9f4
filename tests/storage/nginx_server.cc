#include "tests/storage/nginx_server.h"

#include <unistd.h>

#include <filesystem>

namespace vsieve::testing {

namespace {
constexpr char kNginx[] = "/usr/sbin/nginx";
}  // namespace

std::unique_ptr<NginxServer> NginxServer::Start(const std::string& root, std::string* why_not) {
  if (::access(kNginx, X_OK) != 0) {
    *why_not = std::string(kNginx) + " is missing (Debian package nginx-light)";
    return nullptr;
  }
  std::unique_ptr<NginxServer> server(new NginxServer());
  const std::string prefix = server->prefix_.path();
  std::filesystem::create_directories(prefix + "/logs");
  std::filesystem::create_directories(prefix + "/tmp");
  for (int attempt = 0; attempt < 3; ++attempt) {
    server->port_ = FreeLoopbackPort();
    const std::string conf = prefix + "/nginx.conf";
    std::string text;
    text += "daemon off;\nmaster_process on;\nworker_processes 1;\n";
    if (::geteuid() == 0) text += "user root root;\n";
    text += "pid " + prefix + "/nginx.pid;\n";
    text += "error_log " + prefix + "/logs/error.log warn;\n";
    text += "events { worker_connections 64; }\n";
    text += "http {\n";
    text +=
        "  log_format vsieve escape=none '$request_method $request_uri $status "
        "range=\"$http_range\" "
        "if_match=\"$http_if_match\" bytes=$body_bytes_sent';\n";
    text += "  access_log " + prefix + "/logs/access.log vsieve;\n";
    for (const char* temp : {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"}) {
      text += "  " + std::string(temp) + "_temp_path " + prefix + "/tmp/" + temp + ";\n";
    }
    text += "  default_type application/octet-stream;\n";
    text += "  server {\n";
    text += "    listen 127.0.0.1:" + std::to_string(server->port_) + ";\n";
    text += "    root " + root + ";\n";
    text += "    location /private { return 403; }\n";
    text += "    location / { try_files $uri =404; }\n";
    text += "  }\n}\n";
    if (!WriteFile(conf, text)) {
      *why_not = "cannot write " + conf;
      return nullptr;
    }
    std::string why;
    if (!server->process_.Start({kNginx, "-p", prefix, "-c", conf, "-e", "logs/error.log"}, {},
                                prefix + "/logs/stdout.log", &why)) {
      *why_not = why;
      return nullptr;
    }
    if (WaitForPort(server->port_, 10.0, &server->process_)) return server;
    server->process_.Stop();  // most likely the port was taken meanwhile: try another
  }
  *why_not = "nginx did not start: " + ReadFile(prefix + "/logs/error.log");
  return nullptr;
}

NginxServer::~NginxServer() { process_.Stop(); }

std::string NginxServer::Url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

std::string NginxServer::AccessLog() const { return ReadFile(prefix_.path() + "/logs/access.log"); }

}  // namespace vsieve::testing
