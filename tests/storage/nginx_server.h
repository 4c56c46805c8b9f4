#pragma once

#include <memory>
#include <string>

#include "tests/storage/server_process.h"
#include "tests/support/test_env.h"

namespace vsieve::testing {

// nginx (Debian's nginx-light, /usr/sbin/nginx) serving a folder on 127.0.0.1 as the distributed
// cache tier does: static files with Range, ETag and If-Match; `/private/...` answers 403. Its
// prefix (config, pid, logs, temp paths) is a fresh temporary folder; the access log records
// method, URI, status, Range, If-Match and bytes sent. Stopped and reaped on destruction.
// One thread at a time.
class NginxServer {
 public:
  // Starts nginx serving `root`. Returns null with `why_not` set when nginx is missing or does
  // not come up (the caller skips).
  static std::unique_ptr<NginxServer> Start(const std::string& root, std::string* why_not);
  ~NginxServer();

  int port() const { return port_; }
  // "http://127.0.0.1:PORT" + path.
  std::string Url(const std::string& path = "") const;
  // The access log so far: one line per request,
  // `METHOD URI STATUS range="..." if_match="..." bytes=N`.
  std::string AccessLog() const;

 private:
  NginxServer() = default;

  TempDir prefix_;
  ServerProcess process_;
  int port_ = 0;
};

}  // namespace vsieve::testing
