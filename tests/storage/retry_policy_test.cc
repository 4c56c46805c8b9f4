#include "storage/retry_policy.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "common/metrics.h"

namespace vsieve::storage {
namespace {

RetryPolicy::Hooks FixedRandom(double value) {
  RetryPolicy::Hooks hooks;
  hooks.random01 = [value] { return value; };
  hooks.sleep = [](double) {};
  hooks.now = [] { return std::chrono::system_clock::from_time_t(1'700'000'000); };
  return hooks;
}

std::shared_ptr<RetryBudget> Budget(int capacity = 500) {
  RetryBudget::Options options;
  options.capacity = capacity;
  return std::make_shared<RetryBudget>("", options);
}

TEST(RetryPolicyTest, FullJitterIsUniformUpToTheCappedExponential) {
  RetryPolicy::Options options;
  options.max_attempts = 10;
  options.base_seconds = 0.25;
  options.cap_seconds = 3.0;
  RetryPolicy top(options, Budget(), FixedRandom(0.999999));
  RetryPolicy bottom(options, Budget(), FixedRandom(0.0));
  const double bounds[] = {0.25, 0.5, 1.0, 2.0, 3.0, 3.0};
  for (int attempt = 0; attempt < 6; ++attempt) {
    EXPECT_DOUBLE_EQ(top.JitterBound(attempt), bounds[attempt]);
    const auto high = top.OnRetryableFailure(attempt, false, std::nullopt);
    ASSERT_TRUE(high.retry);
    EXPECT_LT(high.delay_seconds, bounds[attempt]);
    EXPECT_GT(high.delay_seconds, 0.99 * bounds[attempt]);
    EXPECT_EQ(bottom.OnRetryableFailure(attempt, false, std::nullopt).delay_seconds, 0.0);
  }
  EXPECT_DOUBLE_EQ(top.JitterBound(1000), 3.0);  // no overflow
}

TEST(RetryPolicyTest, DefaultRandomDelaysStayWithinBounds) {
  RetryPolicy::Options options;
  options.max_attempts = 4;
  RetryPolicy policy(options, Budget(100000));
  for (int i = 0; i < 1000; ++i) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      const auto decision = policy.OnRetryableFailure(attempt, false, std::nullopt);
      ASSERT_TRUE(decision.retry);
      EXPECT_GE(decision.delay_seconds, 0.0);
      EXPECT_LE(decision.delay_seconds, policy.JitterBound(attempt));
    }
  }
}

TEST(RetryPolicyTest, StopsAtMaxAttempts) {
  RetryPolicy policy(RetryPolicy::Options{}, Budget(), FixedRandom(0.5));  // 3 attempts
  EXPECT_TRUE(policy.OnRetryableFailure(0, false, std::nullopt).retry);
  EXPECT_TRUE(policy.OnRetryableFailure(1, false, std::nullopt).retry);
  const auto last = policy.OnRetryableFailure(2, false, std::nullopt);
  EXPECT_FALSE(last.retry);
  EXPECT_EQ(last.why_not, "3 attempts made");
  RetryPolicy::Options once;
  once.max_attempts = 1;
  EXPECT_FALSE(RetryPolicy(once, Budget(), FixedRandom(0.5))
                   .OnRetryableFailure(0, false, std::nullopt)
                   .retry);
}

TEST(RetryPolicyTest, BudgetChargesRetriesAndTimeoutsAndRefundsSuccesses) {
  auto budget = Budget(500);
  RetryPolicy::Options options;
  options.max_attempts = 100;
  RetryPolicy policy(options, budget, FixedRandom(0.5));
  auto retry = policy.OnRetryableFailure(0, /*timeout=*/false, std::nullopt);
  EXPECT_EQ(retry.tokens, 5);
  EXPECT_EQ(budget->tokens(), 495);
  auto timeout = policy.OnRetryableFailure(1, /*timeout=*/true, std::nullopt);
  EXPECT_EQ(timeout.tokens, 10);
  EXPECT_EQ(budget->tokens(), 485);
  policy.OnSuccess(timeout.tokens);  // a retried request that succeeded: its last cost back
  EXPECT_EQ(budget->tokens(), 495);
  policy.OnSuccess(0);  // a first-attempt success: one token
  EXPECT_EQ(budget->tokens(), 496);
  for (int i = 0; i < 10; ++i) policy.OnSuccess(0);
  EXPECT_EQ(budget->tokens(), 500);  // never above capacity
}

TEST(RetryPolicyTest, AnEmptyBudgetRefusesRetries) {
  auto budget = Budget(12);
  RetryPolicy::Options options;
  options.max_attempts = 100;
  RetryPolicy policy(options, budget, FixedRandom(0.5));
  EXPECT_TRUE(policy.OnRetryableFailure(0, false, std::nullopt).retry);  // 7 left
  EXPECT_FALSE(policy.OnRetryableFailure(1, true, std::nullopt).retry);  // a timeout costs 10
  EXPECT_TRUE(policy.OnRetryableFailure(1, false, std::nullopt).retry);  // 2 left
  const auto refused = policy.OnRetryableFailure(2, false, std::nullopt);
  EXPECT_FALSE(refused.retry);
  EXPECT_EQ(refused.why_not, "retry budget exhausted");
  EXPECT_EQ(budget->tokens(), 2);
}

TEST(RetryPolicyTest, RetryAfterRaisesTheDelayUpToTheCap) {
  RetryPolicy::Options options;
  options.cap_seconds = 20;
  RetryPolicy policy(options, Budget(), FixedRandom(0.5));
  EXPECT_EQ(policy.OnRetryableFailure(0, false, 4.0).delay_seconds, 4.0);
  EXPECT_EQ(policy.OnRetryableFailure(0, false, 90.0).delay_seconds, 20.0);
  EXPECT_EQ(policy.OnRetryableFailure(0, false, 0.0).delay_seconds, 0.5);  // jitter wins
}

TEST(RetryPolicyTest, ParsesRetryAfterSecondsAndHttpDates) {
  RetryPolicy policy(RetryPolicy::Options{}, Budget(), FixedRandom(0.5));
  EXPECT_EQ(policy.ParseRetryAfter("120"), 120.0);
  EXPECT_EQ(policy.ParseRetryAfter(" 3 "), 3.0);
  // 1'700'000'000 is Tue, 14 Nov 2023 22:13:20 GMT.
  EXPECT_EQ(policy.ParseRetryAfter("Tue, 14 Nov 2023 22:13:30 GMT"), 10.0);
  EXPECT_EQ(policy.ParseRetryAfter("Tue, 14 Nov 2023 22:00:00 GMT"), 0.0);  // in the past
  EXPECT_EQ(policy.ParseRetryAfter(""), std::nullopt);
  EXPECT_EQ(policy.ParseRetryAfter("soon"), std::nullopt);
  EXPECT_EQ(policy.ParseRetryAfter("-5"), std::nullopt);
  EXPECT_EQ(policy.ParseRetryAfter("99999999999999"), 20.0);  // absurd: the cap
}

TEST(RetryPolicyTest, BudgetIsSharedPerEndpointAndExported) {
  auto a = RetryBudget::ForEndpoint("http://budget-test:1", RetryBudget::Options{});
  auto b = RetryBudget::ForEndpoint("http://budget-test:1", RetryBudget::Options{});
  auto c = RetryBudget::ForEndpoint("http://budget-test:2", RetryBudget::Options{});
  EXPECT_EQ(a.get(), b.get());
  EXPECT_NE(a.get(), c.get());
  a->TryAcquire(false);
  EXPECT_EQ(common::MetricsRegistry::Global()
                .GetGauge("vsieve_storage_retry_budget_tokens", "",
                          {{"endpoint", "http://budget-test:1"}})
                .value(),
            495);
}

TEST(RetryPolicyTest, BudgetIsThreadSafe) {
  auto budget = Budget(100000);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        const int taken = budget->TryAcquire(false);
        budget->Release(taken);
        budget->TryAcquire(false);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(budget->tokens(), 100000 - 4 * 1000 * 5);
}

}  // namespace
}  // namespace vsieve::storage
