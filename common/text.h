#pragma once

#include <string>
#include <string_view>

namespace vsieve::common {

// `text` without leading and trailing spaces, tabs, CRs and LFs. Pure; the view points into
// `text`.
inline std::string_view TrimView(std::string_view text) {
  const size_t begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) return {};
  const size_t end = text.find_last_not_of(" \t\r\n");
  return text.substr(begin, end - begin + 1);
}

// TrimView() as a new string.
inline std::string Trim(std::string_view text) { return std::string(TrimView(text)); }

}  // namespace vsieve::common
