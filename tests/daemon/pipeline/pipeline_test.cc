#include "daemon/pipeline/pipeline.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "tests/daemon/fake_table_store.h"
#include "tests/daemon/pipeline_test_util.h"
#include "tests/support/test_env.h"

namespace vsieve::daemon {
namespace {

using namespace std::chrono_literals;
using testing::FakeTableStore;
using testing::InstantHooks;
using testing::TestOptions;

// Serves every path from a temp file, or fails every fetch with `status`.
class StubReader : public storage::Reader {
 public:
  explicit StubReader(common::Status status) : status_(std::move(status)) {}
  common::StatusOr<storage::FetchedObject> Fetch(const storage::ObjectRef& ref) override {
    if (!status_.ok()) return status_;
    storage::FetchedObject object;
    object.local_path = ref.key;
    object.source_tier = "local";
    object.size_bytes = 1;
    return object;
  }

 private:
  common::Status status_;
};

TEST(PipelineTest, BackoffIsFullJitterUnderTheCap) {
  EXPECT_DOUBLE_EQ(Pipeline::BackoffSeconds(3, 1.0, 300, 1.0), 8.0);
  EXPECT_DOUBLE_EQ(Pipeline::BackoffSeconds(3, 1.0, 300, 0.5), 4.0);
  EXPECT_DOUBLE_EQ(Pipeline::BackoffSeconds(20, 1.0, 300, 1.0), 300.0);
  EXPECT_DOUBLE_EQ(Pipeline::BackoffSeconds(1, 1.0, 300, 0.0), 0.0);
}

TEST(PipelineTest, RealClipsCompleteOnceAndMissingFileIsARow) {
  VSIEVE_REQUIRE_FFMPEG();
  vsieve::testing::TempDir dir;
  const std::string clip = dir.File("clip.mp4");
  ASSERT_TRUE(vsieve::testing::Ffmpeg({"-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-t",
                                       "1", "-pix_fmt", "yuv420p", clip}));
  FakeTableStore store;
  for (int i = 0; i < 6; ++i) store.Add("v" + std::to_string(i), i % 2 ? "file://" + clip : clip);
  store.Add("missing", dir.File("nope.mp4"));
  auto pipeline = Pipeline::Create(TestOptions(), &store);
  ASSERT_TRUE(pipeline.ok()) << pipeline.status().ToString();
  ASSERT_TRUE((*pipeline)->Run().ok());

  for (const auto& row : store.Rows()) {
    EXPECT_EQ(row.completions, 1) << row.input.video_id;
    const nlohmann::json result = nlohmann::json::parse(row.result_json);
    EXPECT_EQ(result["video_id"], row.input.video_id);
    EXPECT_EQ(result["result_info"]["attempts"], 1);
    EXPECT_EQ(result["result_info"]["device_name"], "cpu:0");
    if (row.input.video_id == "missing") {
      EXPECT_EQ(row.state, storage::RowState::kFailed);
      EXPECT_EQ(row.error_code, "OBJECT_NOT_FOUND");
      EXPECT_EQ(result["result_info"]["succeed"], "false");
    } else {
      EXPECT_EQ(row.state, storage::RowState::kDone) << row.result_json;
      EXPECT_EQ(result["result_info"]["succeed"], "true");
      EXPECT_EQ(result["info"]["video_meta"]["width"], 160);
      for (const char* stage : {"fetch", "decode", "regions", "heads", "write"}) {
        EXPECT_TRUE(result["result_info"]["stage_ms"].contains(stage)) << stage;
      }
    }
  }
  const PipelineSnapshot snapshot = (*pipeline)->Snapshot();
  EXPECT_EQ(snapshot.done, 6);
  EXPECT_EQ(snapshot.failed, 1);
  EXPECT_EQ(snapshot.in_flight, 0);
  EXPECT_EQ(snapshot.devices.at(0).busy, 0);
}

TEST(PipelineTest, ManyRowsEachWrittenExactlyOnce) {
  FakeTableStore store;
  for (int i = 0; i < 200; ++i) store.Add("v" + std::to_string(i), "/x.mp4");
  PipelineHooks hooks = InstantHooks();
  hooks.reader = std::make_shared<StubReader>(common::Status::Ok());
  auto pipeline = Pipeline::Create(TestOptions(), &store, hooks);
  ASSERT_TRUE(pipeline.ok());
  ASSERT_TRUE((*pipeline)->Run().ok());
  for (const auto& row : store.Rows()) {
    EXPECT_EQ(row.completions, 1);
    EXPECT_EQ(row.state, storage::RowState::kDone);
  }
  EXPECT_EQ(store.claims(), 200);
  EXPECT_EQ((*pipeline)->Snapshot().done, 200);
}

// Decoded frames are the pipeline's big items: however many decode threads and however deep the
// queues, no more decoded videos exist at once than one per worker and one ready.
TEST(PipelineTest, DecodedVideosAtOnceAreCapped) {
  FakeTableStore store;
  for (int i = 0; i < 60; ++i) store.Add("v" + std::to_string(i), "/x.mp4");
  PipelineOptions options = TestOptions();
  options.config.pipeline.workers = 2;
  options.config.pipeline.decode_threads = 4;
  options.config.pipeline.queue_depth = 8;
  PipelineHooks hooks = InstantHooks();
  hooks.reader = std::make_shared<StubReader>(common::Status::Ok());
  std::atomic<int> live{0};
  std::atomic<int> most{0};
  auto sample = hooks.sample;
  hooks.sample = [&](const std::string& path, const models::FilterOptions& filter_options) {
    const int now = live.fetch_add(1) + 1;
    int seen = most.load();
    while (now > seen && !most.compare_exchange_weak(seen, now)) {
    }
    return sample(path, filter_options);
  };
  auto analyze = hooks.analyze;
  hooks.analyze = [&](models::VideoFilter* filter, models::SampledVideo video) {
    std::this_thread::sleep_for(5ms);  // analysis slower than decoding: decoders run ahead
    auto report = analyze(filter, std::move(video));
    live.fetch_sub(1);
    return report;
  };
  auto pipeline = Pipeline::Create(options, &store, hooks);
  ASSERT_TRUE(pipeline.ok());
  ASSERT_TRUE((*pipeline)->Run().ok());
  EXPECT_EQ((*pipeline)->Snapshot().done, 60);
  EXPECT_LE(most.load(), 3);
  EXPECT_GE(most.load(), 2);
}

TEST(PipelineTest, LostLeaseDropsTheResult) {
  FakeTableStore store;
  store.Add("slow", "/x.mp4");
  PipelineOptions options = TestOptions();
  options.config.pipeline.heartbeat_seconds = 0.1;
  PipelineHooks hooks = InstantHooks();
  hooks.reader = std::make_shared<StubReader>(common::Status::Ok());
  auto inner = hooks.analyze;
  hooks.analyze = [&](models::VideoFilter* filter, models::SampledVideo video) {
    store.Steal("slow");  // another daemon took the row over while we analyse
    std::this_thread::sleep_for(500ms);
    return inner(filter, std::move(video));
  };
  auto pipeline = Pipeline::Create(options, &store, hooks);
  ASSERT_TRUE(pipeline.ok());
  std::thread stopper([&] {
    std::this_thread::sleep_for(1500ms);
    (*pipeline)->RequestStop(0);
  });
  ASSERT_TRUE((*pipeline)->Run().ok());
  stopper.join();
  const auto rows = store.Rows();
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0].completions, 0);
  EXPECT_EQ(rows[0].state, storage::RowState::kRunning);  // still the other daemon's
  EXPECT_EQ((*pipeline)->Snapshot().lost_leases, 1);
  EXPECT_EQ((*pipeline)->Snapshot().done, 0);
}

TEST(PipelineTest, RetryableErrorIsRetriedThenFailsAtMaxAttempts) {
  FakeTableStore store;
  store.Add("flaky", "/x.mp4");
  store.Add("gone", "/y.mp4");
  PipelineHooks hooks = InstantHooks();
  hooks.reader = std::make_shared<StubReader>(
      common::Status(common::ErrorCode::kFetchFailed, "connection reset", true));
  auto pipeline = Pipeline::Create(TestOptions(), &store, hooks);
  ASSERT_TRUE(pipeline.ok());
  ASSERT_TRUE((*pipeline)->Run().ok());
  for (const auto& row : store.Rows()) {
    EXPECT_EQ(row.state, storage::RowState::kFailed);
    EXPECT_EQ(row.error_code, "FETCH_FAILED");
    EXPECT_EQ(row.retries, 2);
    EXPECT_EQ(row.attempts, 3);
    EXPECT_EQ(row.completions, 1);
    EXPECT_EQ(nlohmann::json::parse(row.result_json)["result_info"]["attempts"], 3);
  }
  EXPECT_EQ((*pipeline)->Snapshot().retried, 4);
}

TEST(PipelineTest, NonRetryableErrorFailsAtOnce) {
  FakeTableStore store;
  store.Add("denied", "/x.mp4");
  PipelineHooks hooks = InstantHooks();
  hooks.reader =
      std::make_shared<StubReader>(common::Status(common::ErrorCode::kObjectForbidden, "403"));
  auto pipeline = Pipeline::Create(TestOptions(), &store, hooks);
  ASSERT_TRUE(pipeline.ok());
  ASSERT_TRUE((*pipeline)->Run().ok());
  const auto rows = store.Rows();
  EXPECT_EQ(rows[0].state, storage::RowState::kFailed);
  EXPECT_EQ(rows[0].retries, 0);
  EXPECT_EQ(rows[0].error_code, "OBJECT_FORBIDDEN");
}

TEST(PipelineTest, PoisonPillFailsOnceItsAttemptsAreUsedUp) {
  FakeTableStore store;
  store.Add("poison", "/x.mp4");
  store.Add("fresh", "/y.mp4");
  store.SetAttempts("poison", 3);  // max_attempts is 3: this claim is the fourth
  PipelineHooks hooks = InstantHooks();
  hooks.reader = std::make_shared<StubReader>(common::Status::Ok());
  auto pipeline = Pipeline::Create(TestOptions(), &store, hooks);
  ASSERT_TRUE(pipeline.ok());
  ASSERT_TRUE((*pipeline)->Run().ok());
  for (const auto& row : store.Rows()) {
    if (row.input.video_id == "poison") {
      EXPECT_EQ(row.state, storage::RowState::kFailed);
      EXPECT_EQ(row.error_code, "ATTEMPTS_EXHAUSTED");
      EXPECT_EQ(row.attempts, 4);
    } else {
      EXPECT_EQ(row.state, storage::RowState::kDone);
    }
  }
}

TEST(PipelineTest, ShutdownPastGraceReleasesLeasesWithoutCharging) {
  FakeTableStore store;
  for (int i = 0; i < 12; ++i) store.Add("v" + std::to_string(i), "/x.mp4");
  PipelineOptions options = TestOptions();
  options.until_idle = false;
  PipelineHooks hooks = InstantHooks();
  hooks.reader = std::make_shared<StubReader>(common::Status::Ok());
  auto inner = hooks.analyze;
  hooks.analyze = [&](models::VideoFilter* filter, models::SampledVideo video) {
    std::this_thread::sleep_for(300ms);
    return inner(filter, std::move(video));
  };
  auto pipeline = Pipeline::Create(options, &store, hooks);
  ASSERT_TRUE(pipeline.ok());
  std::thread stopper([&] {
    std::this_thread::sleep_for(400ms);
    (*pipeline)->RequestStop(0.2);
  });
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE((*pipeline)->Run().ok());
  stopper.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  int done = 0;
  int pending = 0;
  int released = 0;
  for (const auto& row : store.Rows()) {
    EXPECT_NE(row.state, storage::RowState::kRunning) << row.input.video_id;
    if (row.state == storage::RowState::kDone) {
      ++done;
      EXPECT_EQ(row.completions, 1);
    } else {
      ++pending;
      EXPECT_EQ(row.state, storage::RowState::kPending);
      EXPECT_EQ(row.attempts, 0) << "a released attempt is not charged";
      released += row.releases;
    }
  }
  EXPECT_GT(done, 0);
  EXPECT_GT(pending, 0);
  EXPECT_GT(released, 0);
  EXPECT_EQ((*pipeline)->Snapshot().released, released);
}

TEST(PipelineTest, StopWithGraceLetsInFlightVideosFinish) {
  FakeTableStore store;
  for (int i = 0; i < 3; ++i) store.Add("v" + std::to_string(i), "/x.mp4");
  PipelineOptions options = TestOptions();
  options.until_idle = false;
  options.config.pipeline.claim_batch = 1;
  PipelineHooks hooks = InstantHooks();
  hooks.reader = std::make_shared<StubReader>(common::Status::Ok());
  auto inner = hooks.analyze;
  hooks.analyze = [&](models::VideoFilter* filter, models::SampledVideo video) {
    std::this_thread::sleep_for(200ms);
    return inner(filter, std::move(video));
  };
  auto pipeline = Pipeline::Create(options, &store, hooks);
  ASSERT_TRUE(pipeline.ok());
  std::thread stopper([&] {
    std::this_thread::sleep_for(100ms);
    (*pipeline)->RequestStop(10);
  });
  ASSERT_TRUE((*pipeline)->Run().ok());
  stopper.join();
  for (const auto& row : store.Rows()) {
    EXPECT_NE(row.state, storage::RowState::kRunning);
    if (row.state == storage::RowState::kDone) EXPECT_EQ(row.completions, 1);
  }
  EXPECT_EQ((*pipeline)->Snapshot().released, 0);
}

TEST(PipelineTest, TickComesBeforeAnyClaimAndSeesTheStop) {
  FakeTableStore store;
  for (int i = 0; i < 20; ++i) store.Add("v" + std::to_string(i), "/x.mp4");
  PipelineHooks hooks = InstantHooks();
  hooks.reader = std::make_shared<StubReader>(common::Status::Ok());
  PipelineOptions options = TestOptions();
  std::vector<std::pair<int, PipelineSnapshot>> ticks;  // claims seen, snapshot
  options.on_tick = [&](const PipelineSnapshot& snapshot) {
    ticks.emplace_back(store.claims(), snapshot);
  };
  auto pipeline = Pipeline::Create(options, &store, hooks);
  ASSERT_TRUE(pipeline.ok());
  ASSERT_TRUE((*pipeline)->Run().ok());
  ASSERT_GE(ticks.size(), 2u);
  EXPECT_EQ(ticks.front().first, 0);  // READY=1 hangs off this one
  EXPECT_EQ(ticks.front().second.done, 0);
  EXPECT_FALSE(ticks.front().second.stopping);
  EXPECT_TRUE(ticks.back().second.stopping);  // the final tick, after the stages joined
  EXPECT_EQ(ticks.back().second.done, 20);
  EXPECT_EQ(ticks.back().second.in_flight, 0);
}

// sched_getaffinity of the calling thread, as a list.
std::vector<int> ThreadCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return {};
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

TEST(PipelineTest, CoreBindPinsDecodeAndWorkerThreadsAndRowsSayWhere) {
  auto allowed = AllowedCpus();
  ASSERT_TRUE(allowed.ok());
  auto plan = PlanCoreBinding("auto", *allowed, 1, 2);
  ASSERT_TRUE(plan.ok());
  FakeTableStore store;
  for (int i = 0; i < 8; ++i) store.Add("v" + std::to_string(i), "/x.mp4");
  std::mutex mutex;
  std::set<std::vector<int>> decode_masks;
  std::set<std::vector<int>> worker_masks;
  PipelineHooks hooks = InstantHooks();
  hooks.reader = std::make_shared<StubReader>(common::Status::Ok());
  hooks.sample = [&](const std::string&, const models::FilterOptions&) {
    {
      std::lock_guard lock(mutex);
      decode_masks.insert(ThreadCpus());
    }
    models::SampledVideo video;
    video.stage_ms["decode"] = 1;
    return video;
  };
  const auto analyze = InstantHooks().analyze;
  hooks.analyze = [&](models::VideoFilter* filter, models::SampledVideo video) {
    {
      std::lock_guard lock(mutex);
      worker_masks.insert(ThreadCpus());
    }
    return analyze(filter, std::move(video));
  };
  PipelineOptions options = TestOptions();
  options.config.pipeline.core_bind = "auto";
  auto pipeline = Pipeline::Create(options, &store, hooks);
  ASSERT_TRUE(pipeline.ok()) << pipeline.status().ToString();
  ASSERT_TRUE((*pipeline)->Run().ok());
  EXPECT_EQ(decode_masks, (std::set<std::vector<int>>{plan->decode}));
  EXPECT_EQ(worker_masks, (std::set<std::vector<int>>{plan->workers}));
  for (const auto& row : store.Rows()) {
    const nlohmann::json info =
        nlohmann::json::parse(row.result_json)["result_info"]["device_info"];
    EXPECT_EQ(info["cpus"].get<std::vector<int>>(), plan->workers) << info;
    EXPECT_EQ(info["decode_cpus"].get<std::vector<int>>(), plan->decode) << info;
    EXPECT_TRUE(info["worker"] == 0 || info["worker"] == 1) << info;
  }
  EXPECT_EQ(ThreadCpus(), *allowed);  // Run()'s own thread is not pinned

  options.config.pipeline.core_bind = "workers=1000";
  auto refused = Pipeline::Create(options, &store, hooks);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("CPU 1000 is not one this process may run on"),
            std::string::npos)
      << refused.status().message();
}

TEST(PipelineTest, BadDeviceIsASetupError) {
  FakeTableStore store;
  PipelineOptions options = TestOptions();
  options.config.devices.list = {"cuda:0"};
  auto pipeline = Pipeline::Create(options, &store);
  ASSERT_FALSE(pipeline.ok());
  EXPECT_NE(pipeline.status().message().find("no CUDA backend"), std::string::npos);
}

}  // namespace
}  // namespace vsieve::daemon
