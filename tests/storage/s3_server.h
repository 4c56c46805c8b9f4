#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "tests/storage/server_process.h"
#include "tests/support/test_env.h"

namespace vsieve::testing {

// A real S3 server that verifies SigV4: the npm package @20minutes/s3rver@4.0.4, started from
// node through its lib/cli.js on 127.0.0.1 (port 0; the port is read from its
// "S3rver listening on" line) after adding the key pair `access_key`/`secret_key`, with
// `buckets` created. The package is installed with npm once into a cache folder outside the
// repository ($VSIEVE_S3RVER_DIR, else $XDG_CACHE_HOME or $HOME/.cache, + /vsieve-test-s3rver),
// under a file lock so parallel test processes install it once. Stopped and reaped on
// destruction. One thread at a time.
class S3Server {
 public:
  // Returns null with `why_not` set when node or npm is missing, the install fails or the server
  // does not come up (the caller skips).
  static std::unique_ptr<S3Server> Start(const std::vector<std::string>& buckets,
                                         const std::string& access_key,
                                         const std::string& secret_key, std::string* why_not);
  ~S3Server();

  // "http://127.0.0.1:PORT".
  std::string endpoint() const;
  // Uploads `bytes` as bucket/key with a SigV4-signed PUT (libcurl's CURLOPT_AWS_SIGV4).
  common::Status Put(const std::string& bucket, const std::string& key, const std::string& bytes);

 private:
  S3Server() = default;

  TempDir dir_;
  ServerProcess process_;
  int port_ = 0;
  std::string access_key_;
  std::string secret_key_;
};

}  // namespace vsieve::testing
