#include "storage/tier_factory.h"

#include <cctype>

#include "storage/http_tier.h"
#include "storage/local_tier.h"
#include "storage/s3_tier.h"

namespace vsieve::storage {

using common::ErrorCode;
using common::Status;

namespace {

Status FieldError(const std::string& prefix, const std::string& field, const std::string& why) {
  return Status(ErrorCode::kInvalidArgument, "config key '" + prefix + "." + field + "': " + why);
}

bool IsHttpUrl(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return false;
  const std::string name = url.substr(0, scheme);
  return (name == "http" || name == "https") && url.size() > scheme + 3 && url[scheme + 3] != '/';
}

Status ValidateTransport(const TierConfig& c, const std::string& prefix) {
  if (!(c.connect_timeout_seconds > 0)) {
    return FieldError(prefix, "connect_timeout_seconds", "must be positive");
  }
  if (c.low_speed_bytes_per_second < 1) {
    return FieldError(prefix, "low_speed_bytes_per_second", "must be at least 1");
  }
  if (c.low_speed_seconds < 1) return FieldError(prefix, "low_speed_seconds", "must be at least 1");
  if (c.max_attempts < 1) return FieldError(prefix, "max_attempts", "must be at least 1");
  if (!(c.backoff_base_seconds >= 0)) {
    return FieldError(prefix, "backoff_base_seconds", "must be 0 or more");
  }
  if (!(c.backoff_cap_seconds >= c.backoff_base_seconds)) {
    return FieldError(prefix, "backoff_cap_seconds", "must be at least backoff_base_seconds");
  }
  if (c.retry_budget < 0) return FieldError(prefix, "retry_budget", "must be 0 or more");
  return Status::Ok();
}

}  // namespace

Status ValidateTierConfig(const TierConfig& c, const std::string& prefix) {
  if (c.kind != "local" && c.kind != "http" && c.kind != "s3") {
    return FieldError(prefix, "kind",
                      c.kind.empty() ? "missing; expected \"local\", \"http\" or \"s3\""
                                     : "'" + c.kind + "' is not \"local\", \"http\" or \"s3\"");
  }
  for (char ch : c.name) {
    const auto byte = static_cast<unsigned char>(ch);
    if (!std::isalnum(byte) && ch != '_' && ch != '-' && ch != '.') {
      return FieldError(prefix, "name", "'" + c.name + "' may use only letters, digits, _ - .");
    }
  }
  if (c.kind == "local") {
    if (c.root.empty()) return FieldError(prefix, "root", "missing; a local tier needs a folder");
    return Status::Ok();
  }
  if (c.kind == "http") {
    if (c.base_url.empty()) return FieldError(prefix, "base_url", "missing");
    if (!IsHttpUrl(c.base_url)) {
      return FieldError(prefix, "base_url",
                        "'" + c.base_url + "' must start with http:// or https://");
    }
    if (c.base_url.find_first_of("?#") != std::string::npos) {
      return FieldError(prefix, "base_url", "must not have a query or fragment");
    }
    return ValidateTransport(c, prefix);
  }
  if (c.endpoint.empty()) return FieldError(prefix, "endpoint", "missing");
  if (!IsHttpUrl(c.endpoint)) {
    return FieldError(prefix, "endpoint",
                      "'" + c.endpoint + "' must start with http:// or https://");
  }
  const size_t path = c.endpoint.find('/', c.endpoint.find("://") + 3);
  if (path != std::string::npos && path + 1 != c.endpoint.size()) {
    return FieldError(prefix, "endpoint", "must be scheme://host[:port] without a path");
  }
  if (c.endpoint.find_first_of("?#@") != std::string::npos) {
    return FieldError(prefix, "endpoint", "must be scheme://host[:port] (no query, no userinfo)");
  }
  if (c.region.empty()) return FieldError(prefix, "region", "must not be empty");
  for (char ch : c.region) {
    const auto byte = static_cast<unsigned char>(ch);
    if (!std::islower(byte) && !std::isdigit(byte) && ch != '-') {
      return FieldError(prefix, "region", "'" + c.region + "' is not a region name like us-east-1");
    }
  }
  if (c.credentials.empty()) {
    return FieldError(prefix, "credentials", "must be \"env\" or the path of a credentials file");
  }
  if (c.profile.empty()) return FieldError(prefix, "profile", "must not be empty");
  if (c.addressing != "path" && c.addressing != "virtual") {
    return FieldError(prefix, "addressing",
                      "'" + c.addressing + "' is not \"path\" or \"virtual\"");
  }
  return ValidateTransport(c, prefix);
}

HttpClientOptions MakeHttpClientOptions(const TierConfig& config) {
  HttpClientOptions options;
  options.tier_name = config.DisplayName();
  options.connect_timeout_seconds = config.connect_timeout_seconds;
  options.low_speed_bytes_per_second = static_cast<long>(config.low_speed_bytes_per_second);
  options.low_speed_seconds = static_cast<long>(config.low_speed_seconds);
  return options;
}

std::shared_ptr<RetryPolicy> MakeRetryPolicy(const TierConfig& config, const std::string& endpoint,
                                             const TierDeps& deps) {
  RetryPolicy::Options options;
  options.max_attempts = config.max_attempts;
  options.base_seconds = config.backoff_base_seconds;
  options.cap_seconds = config.backoff_cap_seconds;
  std::shared_ptr<RetryBudget> budget = deps.budget;
  if (budget == nullptr) {
    RetryBudget::Options budget_options;
    budget_options.capacity = config.retry_budget;
    budget = RetryBudget::ForEndpoint(endpoint, budget_options);
  }
  return std::make_shared<RetryPolicy>(options, std::move(budget), deps.hooks);
}

common::StatusOr<std::unique_ptr<Tier>> CreateTier(const TierConfig& config, const TierDeps& deps) {
  VSIEVE_RETURN_IF_ERROR(ValidateTierConfig(config, "tiers." + config.DisplayName()));
  if (config.kind == "local") {
    return std::unique_ptr<Tier>(std::make_unique<LocalTier>(config.DisplayName(), config.root));
  }
  if (config.kind == "http") {
    return std::unique_ptr<Tier>(std::make_unique<HttpTier>(config, deps));
  }
  auto credentials = LoadS3Credentials(config);
  if (!credentials.ok()) {
    return Status(ErrorCode::kInvalidArgument,
                  "config key 'tiers." + config.DisplayName() +
                      ".credentials': " + credentials.status().message());
  }
  return std::unique_ptr<Tier>(std::make_unique<S3Tier>(config, *credentials, deps));
}

}  // namespace vsieve::storage
