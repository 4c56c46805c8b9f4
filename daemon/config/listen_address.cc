#include "daemon/config/listen_address.h"

#include <string>

#include "common/text.h"

namespace vsieve::daemon {
namespace {

using common::ErrorCode;
using common::Status;
using common::TrimView;

}  // namespace

bool AdminEnabled(std::string_view listen) {
  const std::string_view trimmed = TrimView(listen);
  return !trimmed.empty() && trimmed != "off";
}

common::StatusOr<ListenAddress> ParseListenAddress(std::string_view text) {
  const std::string quoted = "'" + std::string(text) + "'";
  ListenAddress address;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Status(ErrorCode::kInvalidArgument, quoted + ": expected [IPV6]:PORT");
    }
    address.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return Status(ErrorCode::kInvalidArgument, quoted + ": expected HOST:PORT");
    }
    address.host = std::string(text.substr(0, colon));
    if (address.host.find(':') != std::string::npos) {
      return Status(ErrorCode::kInvalidArgument,
                    quoted + ": write IPv6 hosts in brackets, e.g. [::1]:9464");
    }
    port_text = text.substr(colon + 1);
  }
  if (address.host.empty()) {
    return Status(ErrorCode::kInvalidArgument, quoted + ": expected HOST:PORT (empty host)");
  }
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string_view::npos) {
    return Status(ErrorCode::kInvalidArgument, quoted + ": port must be a number 0..65535");
  }
  address.port = std::stoi(std::string(port_text));
  if (address.port > 65535) {
    return Status(ErrorCode::kInvalidArgument, quoted + ": port must be a number 0..65535");
  }
  return address;
}

}  // namespace vsieve::daemon
