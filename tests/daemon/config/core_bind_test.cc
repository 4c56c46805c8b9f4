#include "daemon/config/core_bind.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <thread>

namespace vsieve::daemon {
namespace {

using common::ErrorCode;

TEST(CoreBindTest, ParsesAndFormatsCpuLists) {
  auto cpus = ParseCpuList("0-3,6, 8-9,2");
  ASSERT_TRUE(cpus.ok()) << cpus.status().ToString();
  EXPECT_EQ(*cpus, (std::vector<int>{0, 1, 2, 3, 6, 8, 9}));
  EXPECT_EQ(FormatCpuList(*cpus), "0-3,6,8-9");
  EXPECT_EQ(FormatCpuList({}), "");
  EXPECT_EQ(FormatCpuList({5}), "5");
  for (const char* bad : {"", "a", "3-1", "-1", "1-", "1,,2", "1.5", "99999"}) {
    auto parsed = ParseCpuList(bad);
    EXPECT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), ErrorCode::kInvalidArgument) << bad;
  }
}

TEST(CoreBindTest, SpecErrorsNameTheKey) {
  for (const char* good : {"", "off", "auto", " auto ", "decode=0", "decode=0-1;workers=2-3",
                           "workers=1;fetch=0;decode=0"}) {
    EXPECT_TRUE(CheckCoreBindSpec(good).ok()) << good;
  }
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"on", "is not POOL=CPUS"},           {"gpu=0", "unknown pool 'gpu'"},
      {"decode=0;decode=1", "given twice"}, {"decode=x", "pool 'decode'"},
      {"decode=", "empty CPU list"},        {";", "no pool given"},
  };
  for (const auto& [spec, words] : bad) {
    const common::Status status = CheckCoreBindSpec(spec);
    EXPECT_EQ(status.code(), ErrorCode::kInvalidArgument) << spec;
    EXPECT_NE(status.message().find("'pipeline.core_bind'"), std::string::npos) << spec;
    EXPECT_NE(status.message().find(words), std::string::npos) << spec << ": " << status.message();
  }
}

TEST(CoreBindTest, AutoSplitsTheAllowedCpusBetweenDecodeAndWorkers) {
  auto plan = PlanCoreBinding("auto", {0, 1}, 2, 2);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->decode, (std::vector<int>{0}));
  EXPECT_EQ(plan->workers, (std::vector<int>{1}));
  EXPECT_TRUE(plan->fetch.empty());

  plan = PlanCoreBinding("auto", {2, 3, 5, 7, 8, 9, 10, 11}, 2, 6);  // a taskset-restricted mask
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->decode, (std::vector<int>{2, 3}));
  EXPECT_EQ(plan->workers, (std::vector<int>{5, 7, 8, 9, 10, 11}));

  plan = PlanCoreBinding("auto", {0, 1, 2, 3}, 8, 1);  // never leaves a pool without a CPU
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->decode, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(plan->workers, (std::vector<int>{3}));

  plan = PlanCoreBinding("auto", {4}, 2, 2);  // one CPU: both pools share it
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->decode, (std::vector<int>{4}));
  EXPECT_EQ(plan->workers, (std::vector<int>{4}));

  plan = PlanCoreBinding("off", {0, 1}, 2, 2);
  ASSERT_TRUE(plan.ok());
  EXPECT_FALSE(plan->enabled());
}

TEST(CoreBindTest, ExplicitListsMustBeAllowed) {
  auto plan = PlanCoreBinding("decode=1;workers=0,2", {0, 1, 2}, 1, 1);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->decode, (std::vector<int>{1}));
  EXPECT_EQ(plan->workers, (std::vector<int>{0, 2}));
  plan = PlanCoreBinding("decode=0;workers=5", {0, 1}, 1, 1);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("CPU 5 is not one this process may run on (allowed: 0-1)"),
            std::string::npos)
      << plan.status().message();
}

TEST(CoreBindTest, PinThisThreadSetsTheThreadsMask) {
  auto allowed = AllowedCpus();
  ASSERT_TRUE(allowed.ok()) << allowed.status().ToString();
  ASSERT_FALSE(allowed->empty());
  const int target = allowed->back();
  std::vector<int> seen;
  std::thread thread([&] {
    ASSERT_TRUE(PinThisThread({target}).ok());
    cpu_set_t set;
    CPU_ZERO(&set);
    ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &set)) seen.push_back(cpu);
    }
  });
  thread.join();
  EXPECT_EQ(seen, (std::vector<int>{target}));
  // The calling thread's own mask is untouched.
  auto after = AllowedCpus();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, *allowed);
  EXPECT_TRUE(PinThisThread({}).ok());  // empty: nothing to do
}

}  // namespace
}  // namespace vsieve::daemon
