#include "models/heads/head.h"

namespace vsieve::models {

nlohmann::json HeadOutputToJson(const HeadOutput& output) {
  nlohmann::json result = nlohmann::json::object();
  for (const auto& [label, prob] : output.result) result[label] = prob;
  nlohmann::json out = {{"result", result}, {"label", output.label}, {"prob", output.prob}};
  if (!output.scores.is_null()) out["scores"] = output.scores;
  return out;
}

HeadOutput MakeHeadOutput(std::vector<std::pair<std::string, double>> result,
                          nlohmann::json scores) {
  HeadOutput out;
  out.result = std::move(result);
  for (const auto& [label, prob] : out.result) {
    if (out.label.empty() || prob > out.prob) {
      out.label = label;
      out.prob = prob;
    }
  }
  out.scores = std::move(scores);
  return out;
}

}  // namespace vsieve::models
