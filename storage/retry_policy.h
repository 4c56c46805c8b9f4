#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace vsieve::storage {

// The retry quota shared by every request to one endpoint (AWS "standard" retry mode): a token
// bucket that starts full at `capacity`; a retry takes `retry_cost` tokens (`timeout_cost` after
// a timeout), and is refused when the bucket holds fewer; a request that succeeds gives back the
// cost of its last retry, or `success_refund` when it needed none (never above capacity). When
// an endpoint is failing everywhere, the bucket empties and requests fail fast instead of
// multiplying the load. Thread-safe; never blocks beyond a short lock.
class RetryBudget {
 public:
  struct Options {
    int capacity = 500;
    int retry_cost = 5;
    int timeout_cost = 10;
    int success_refund = 1;
  };

  // `endpoint` ("http://host:port") labels the gauge vsieve_storage_retry_budget_tokens; pass ""
  // for a budget that is not exported (tests).
  RetryBudget(std::string endpoint, Options options);
  RetryBudget(const RetryBudget&) = delete;
  RetryBudget& operator=(const RetryBudget&) = delete;

  // The process-wide budget of `endpoint`, created with `options` on first use (later callers
  // share it and their options are ignored). Thread-safe; the budget lives for the process.
  static std::shared_ptr<RetryBudget> ForEndpoint(const std::string& endpoint, Options options);

  // Takes the cost of one retry (`timeout`: the failed attempt timed out). Returns the tokens
  // taken, or 0 when the bucket holds too few (no retry).
  int TryAcquire(bool timeout);
  // Gives back `tokens` (the cost of a retry that then succeeded, or the refund of a success
  // without retry), capped at capacity.
  void Release(int tokens);

  int tokens() const;
  const Options& options() const { return options_; }
  const std::string& endpoint() const { return endpoint_; }

 private:
  void PublishLocked();

  const std::string endpoint_;
  const Options options_;
  mutable std::mutex mutex_;
  int tokens_;  // guarded by mutex_
};

// How long to wait before the next attempt, and whether to make one: AWS "standard" behaviour.
// At most `max_attempts` attempts in all; after the failed attempt number n (0-based) the delay
// is full jitter, uniform(0, min(cap, base * 2^n)); a server's Retry-After (seconds or an HTTP
// date) raises the delay to what it asks, up to the cap; every retry needs tokens from the
// endpoint's RetryBudget. Time, sleep and randomness are injectable so tests can check delays
// and budgets exactly. Thread-safe (the budget is shared; the rest is immutable).
class RetryPolicy {
 public:
  struct Options {
    int max_attempts = 3;
    double base_seconds = 1.0;
    double cap_seconds = 20.0;
  };
  // Test seams. Defaults: a thread-local Mersenne twister, std::this_thread::sleep_for and the
  // system clock.
  struct Hooks {
    std::function<double()> random01;                            // uniform in [0, 1)
    std::function<void(double seconds)> sleep;                   // blocks for that long
    std::function<std::chrono::system_clock::time_point()> now;  // for Retry-After dates
  };
  // What to do after a failed attempt.
  struct Decision {
    bool retry = false;
    double delay_seconds = 0;
    int tokens = 0;       // taken from the budget for this retry
    std::string why_not;  // when !retry: "3 attempts made", "retry budget exhausted"
  };

  // `budget` must not be null.
  RetryPolicy(Options options, std::shared_ptr<RetryBudget> budget, Hooks hooks = {});

  // Called after attempt `attempt` (0-based) failed with a retryable error. `timeout`: the attempt
  // timed out (costs more tokens). `retry_after_seconds`: the server's Retry-After, if any.
  Decision OnRetryableFailure(int attempt, bool timeout,
                              std::optional<double> retry_after_seconds) const;
  // Called once when a request succeeds; `last_retry_tokens` is Decision::tokens of the retry
  // that led to the success, 0 when the first attempt succeeded.
  void OnSuccess(int last_retry_tokens) const;
  // Blocks for `seconds` through the sleep hook.
  void Sleep(double seconds) const;

  // The upper bound of the jitter after failed attempt `attempt`: min(cap, base * 2^attempt).
  double JitterBound(int attempt) const;
  // Parses a Retry-After value: delta seconds ("120") or an HTTP date
  // ("Wed, 21 Oct 2015 07:28:00 GMT"), relative to the now hook. nullopt when unparseable;
  // a date in the past gives 0.
  std::optional<double> ParseRetryAfter(std::string_view value) const;

  const Options& options() const { return options_; }
  RetryBudget& budget() const { return *budget_; }

 private:
  const Options options_;
  const std::shared_ptr<RetryBudget> budget_;
  Hooks hooks_;
};

}  // namespace vsieve::storage
