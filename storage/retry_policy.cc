#include "storage/retry_policy.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>
#include <map>
#include <random>
#include <thread>

#include "common/metrics.h"

namespace vsieve::storage {

RetryBudget::RetryBudget(std::string endpoint, Options options)
    : endpoint_(std::move(endpoint)), options_(options), tokens_(options.capacity) {
  std::lock_guard lock(mutex_);
  PublishLocked();
}

std::shared_ptr<RetryBudget> RetryBudget::ForEndpoint(const std::string& endpoint,
                                                      Options options) {
  static std::mutex mutex;
  static std::map<std::string, std::shared_ptr<RetryBudget>> budgets;
  std::lock_guard lock(mutex);
  auto& slot = budgets[endpoint];
  if (slot == nullptr) slot = std::make_shared<RetryBudget>(endpoint, options);
  return slot;
}

int RetryBudget::TryAcquire(bool timeout) {
  const int cost = timeout ? options_.timeout_cost : options_.retry_cost;
  std::lock_guard lock(mutex_);
  if (tokens_ < cost) return 0;
  tokens_ -= cost;
  PublishLocked();
  return cost;
}

void RetryBudget::Release(int tokens) {
  std::lock_guard lock(mutex_);
  tokens_ = std::min(options_.capacity, tokens_ + std::max(0, tokens));
  PublishLocked();
}

int RetryBudget::tokens() const {
  std::lock_guard lock(mutex_);
  return tokens_;
}

void RetryBudget::PublishLocked() {
  if (endpoint_.empty()) return;
  common::MetricsRegistry::Global()
      .GetGauge("vsieve_storage_retry_budget_tokens",
                "Tokens left in the retry budget of a storage endpoint (AWS standard retry quota).",
                {{"endpoint", endpoint_}})
      .Set(tokens_);
}

namespace {

double DefaultRandom01() {
  thread_local std::mt19937_64 engine(std::random_device{}());
  return std::uniform_real_distribution<double>(0.0, 1.0)(engine);
}

void DefaultSleep(double seconds) {
  if (seconds > 0) std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
}

}  // namespace

RetryPolicy::RetryPolicy(Options options, std::shared_ptr<RetryBudget> budget, Hooks hooks)
    : options_(options), budget_(std::move(budget)), hooks_(std::move(hooks)) {
  if (!hooks_.random01) hooks_.random01 = DefaultRandom01;
  if (!hooks_.sleep) hooks_.sleep = DefaultSleep;
  if (!hooks_.now) hooks_.now = [] { return std::chrono::system_clock::now(); };
}

double RetryPolicy::JitterBound(int attempt) const {
  const double exp = std::ldexp(options_.base_seconds, std::min(attempt, 62));
  return std::min(options_.cap_seconds, exp);
}

RetryPolicy::Decision RetryPolicy::OnRetryableFailure(
    int attempt, bool timeout, std::optional<double> retry_after_seconds) const {
  Decision decision;
  if (attempt + 1 >= options_.max_attempts) {
    decision.why_not = std::to_string(options_.max_attempts) + " attempts made";
    return decision;
  }
  decision.tokens = budget_->TryAcquire(timeout);
  if (decision.tokens == 0) {
    decision.why_not = "retry budget exhausted";
    return decision;
  }
  decision.retry = true;
  decision.delay_seconds = hooks_.random01() * JitterBound(attempt);
  if (retry_after_seconds.has_value()) {
    decision.delay_seconds =
        std::max(decision.delay_seconds, std::min(options_.cap_seconds, *retry_after_seconds));
  }
  return decision;
}

void RetryPolicy::OnSuccess(int last_retry_tokens) const {
  budget_->Release(last_retry_tokens > 0 ? last_retry_tokens : budget_->options().success_refund);
}

void RetryPolicy::Sleep(double seconds) const { hooks_.sleep(seconds); }

std::optional<double> RetryPolicy::ParseRetryAfter(std::string_view value) const {
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front()))) {
    value.remove_prefix(1);
  }
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) {
    value.remove_suffix(1);
  }
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(),
                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    if (value.size() > 9) return options_.cap_seconds;  // absurdly long: the cap applies anyway
    return std::stod(std::string(value));
  }
  // IMF-fixdate, the form HTTP/1.1 senders must use: "Sun, 06 Nov 1994 08:49:37 GMT".
  std::tm tm{};
  const std::string text(value);
  const char* end = ::strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  const std::time_t when = ::timegm(&tm);
  const std::time_t now = std::chrono::system_clock::to_time_t(hooks_.now());
  return std::max(0.0, std::difftime(when, now));
}

}  // namespace vsieve::storage
