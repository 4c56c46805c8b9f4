#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace vsieve::daemon {

// The default [admin] listen address (DESIGN.md, "Operations").
inline constexpr std::string_view kDefaultAdminListen = "127.0.0.1:9464";

// A parsed HOST:PORT. IPv6 hosts are written in brackets: "[::1]:9464".
struct ListenAddress {
  std::string host;
  int port = 0;  // 0 = any free port
};

// False for "off" and "": the admin server is not started.
bool AdminEnabled(std::string_view listen);

// Parses "HOST:PORT" (port 0..65535; "[v6]:PORT" for IPv6). Pure. Errors: kInvalidArgument saying
// what is wrong ("expected HOST:PORT", "port must be 0..65535").
common::StatusOr<ListenAddress> ParseListenAddress(std::string_view text);

}  // namespace vsieve::daemon
