#pragma once

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace vsieve::daemon {

// The JSON objects of a JSONL text (what `vsieve probe` and `vsieve export` print), blank lines
// skipped.
inline std::vector<nlohmann::json> ParseLines(const std::string& text) {
  std::vector<nlohmann::json> rows;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  }
  return rows;
}

}  // namespace vsieve::daemon
