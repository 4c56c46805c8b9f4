#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "storage/http_client.h"
#include "storage/retry_policy.h"
#include "storage/tier.h"

namespace vsieve::storage {

// One `[[tiers]]` entry of the config (etc/vsieve.example.toml documents every key). Which
// fields apply depends on `kind`:
//   local: root
//   http:  base_url, and the transport fields below
//   s3:    endpoint, region, credentials, profile, addressing, and the transport fields below
struct TierConfig {
  std::string kind;  // "local", "http" or "s3"
  std::string name;  // label in logs and metrics; "" = the kind
  // local: the folder objects are under; "{bucket}" is replaced by the row's bucket. Without
  // the placeholder the bucket is ignored and keys map directly under root.
  std::string root;
  // http: the URL objects are under, e.g. "http://alluxio:39999/api/v1/paths/{bucket}"; keys
  // are appended percent-encoded ("/" kept). Without "{bucket}" the bucket is ignored.
  std::string base_url;
  // s3: "http(s)://host[:port]", no path.
  std::string endpoint;
  std::string region = "us-east-1";
  // "env": AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and optional AWS_SESSION_TOKEN, read when
  // the tier is created. Anything else is the path of an INI file in the format of
  // ~/.aws/credentials: a [profile] section with aws_access_key_id, aws_secret_access_key and
  // optional aws_session_token.
  std::string credentials = "env";
  std::string profile = "default";  // the section read from a credentials file
  std::string addressing = "path";  // "path": endpoint/bucket/key; "virtual": bucket.host/key
  // Transport (http, s3).
  double connect_timeout_seconds = 10;
  int64_t low_speed_bytes_per_second = 1024;  // slower than this ...
  int64_t low_speed_seconds = 30;             // ... for this long: a timeout (retryable)
  int max_attempts = 3;                       // requests per object, first one included
  double backoff_base_seconds = 1.0;          // full jitter: uniform(0, min(cap, base * 2^n))
  double backoff_cap_seconds = 20.0;
  int retry_budget = 500;  // tokens per endpoint; a retry costs 5 (10 after a timeout)

  // `name`, or `kind` when the name is empty.
  std::string DisplayName() const { return name.empty() ? kind : name; }
};

// What a tier needs besides its config; tests replace these. The defaults: real time, sleep and
// randomness, and the process-wide retry budget of the tier's endpoint.
struct TierDeps {
  RetryPolicy::Hooks hooks;
  std::shared_ptr<RetryBudget> budget;  // null: RetryBudget::ForEndpoint(endpoint)
};

// Checks every field that applies to config.kind. Errors: kInvalidArgument as
// "config key '<prefix>.<field>': <why>", e.g. "config key 'tiers[1].endpoint': must start
// with http:// or https://". Credentials are not read here (see CreateTier). Pure.
common::Status ValidateTierConfig(const TierConfig& config, const std::string& prefix);

// The transport settings of an http or s3 tier (no credentials; S3Tier adds them).
HttpClientOptions MakeHttpClientOptions(const TierConfig& config);

// The retry policy of an http or s3 tier: its attempts and backoff, and deps.budget or the
// process-wide budget of `endpoint` with config.retry_budget tokens.
std::shared_ptr<RetryPolicy> MakeRetryPolicy(const TierConfig& config, const std::string& endpoint,
                                             const TierDeps& deps);

// Builds the tier `config` describes: LocalTier, HttpTier or S3Tier. Validates first (the key
// prefix is "tiers.<name>"); an s3 tier reads its credentials now (errors name the variable or
// file, never a secret). Errors: kInvalidArgument. The tier is safe to use from several threads.
common::StatusOr<std::unique_ptr<Tier>> CreateTier(const TierConfig& config,
                                                   const TierDeps& deps = {});

}  // namespace vsieve::storage
