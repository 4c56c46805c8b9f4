#include "common/trace.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "tests/support/test_env.h"

namespace vsieve::common {
namespace {

nlohmann::json ReadTrace(const std::string& path) {
  return nlohmann::json::parse(testing::ReadFile(path));
}

std::vector<nlohmann::json> Spans(const nlohmann::json& trace, const std::string& name) {
  std::vector<nlohmann::json> spans;
  for (const auto& event : trace["traceEvents"]) {
    if (event["ph"] == "X" && event["name"] == name) spans.push_back(event);
  }
  return spans;
}

TEST(TraceTest, WritesChromeTraceEventJson) {
  testing::TempDir dir;
  auto recorder = TraceRecorder::Open(dir.File("t.json"), "unit");
  ASSERT_TRUE(recorder.ok()) << recorder.status().ToString();
  TraceRecorder::Install(recorder->get());
  NameThisThread("tester", 7);
  {
    const std::string video = "v1";
    TraceVideoScope scope(video);
    TraceSpan outer("analyze");
    outer.AddArg("device", "cpu:0");
    { TraceSpan inner("regions"); }
    { TraceSpan inner("heads"); }
  }
  { TraceSpan no_video("write"); }
  TraceRecorder::Install(nullptr);
  { TraceSpan after("ignored"); }  // nothing installed: not recorded
  ASSERT_TRUE((*recorder)->Close().ok());
  ASSERT_TRUE((*recorder)->Close().ok());  // idempotent

  const nlohmann::json trace = ReadTrace(dir.File("t.json"));
  EXPECT_EQ(trace["displayTimeUnit"], "ms");
  ASSERT_TRUE(trace["traceEvents"].is_array());
  EXPECT_EQ(trace["otherData"]["dropped_events"], 0);
  EXPECT_EQ(trace["otherData"]["events"], trace["traceEvents"].size());

  bool named = false;
  for (const auto& event : trace["traceEvents"]) {
    if (event["ph"] == "M" && event["name"] == "thread_name" && event["args"]["name"] == "tester") {
      named = true;
    }
  }
  EXPECT_TRUE(named);
  ASSERT_EQ(Spans(trace, "analyze").size(), 1u);
  ASSERT_EQ(Spans(trace, "regions").size(), 1u);
  ASSERT_EQ(Spans(trace, "heads").size(), 1u);
  EXPECT_TRUE(Spans(trace, "ignored").empty());
  const auto analyze = Spans(trace, "analyze")[0];
  const auto regions = Spans(trace, "regions")[0];
  const auto heads = Spans(trace, "heads")[0];
  EXPECT_EQ(analyze["args"]["video_id"], "v1");
  EXPECT_EQ(analyze["args"]["device"], "cpu:0");
  EXPECT_EQ(regions["args"]["video_id"], "v1");
  EXPECT_FALSE(Spans(trace, "write")[0].contains("args"));  // the scope had ended
  // Nested and ordered on one thread.
  EXPECT_EQ(analyze["tid"], regions["tid"]);
  EXPECT_EQ(analyze["pid"], ::getpid());
  EXPECT_LE(analyze["ts"].get<int64_t>(), regions["ts"].get<int64_t>());
  EXPECT_LE(regions["ts"].get<int64_t>() + regions["dur"].get<int64_t>(),
            heads["ts"].get<int64_t>());
  EXPECT_LE(heads["ts"].get<int64_t>() + heads["dur"].get<int64_t>(),
            analyze["ts"].get<int64_t>() + analyze["dur"].get<int64_t>());
}

TEST(TraceTest, OddVideoIdsStayValidJson) {
  testing::TempDir dir;
  auto recorder = TraceRecorder::Open(dir.File("t.json"), "unit");
  ASSERT_TRUE(recorder.ok());
  const std::vector<std::string> ids = {"quote\"back\\slash", "new\nline\ttab", "bad\xff\xfe utf8",
                                        "日本語", std::string("nul\0byte", 8)};
  for (const std::string& id : ids) {
    (*recorder)->Complete("fetch", std::chrono::steady_clock::now(),
                          std::chrono::steady_clock::now(), {{"video_id", id}});
  }
  ASSERT_TRUE((*recorder)->Close().ok());
  const nlohmann::json trace = ReadTrace(dir.File("t.json"));
  const auto spans = Spans(trace, "fetch");
  ASSERT_EQ(spans.size(), ids.size());
  EXPECT_EQ(spans[0]["args"]["video_id"], ids[0]);
  EXPECT_EQ(spans[1]["args"]["video_id"], ids[1]);
  EXPECT_EQ(spans[2]["args"]["video_id"], "bad\xEF\xBF\xBD\xEF\xBF\xBD utf8");  // U+FFFD each
  EXPECT_EQ(spans[3]["args"]["video_id"], ids[3]);
  EXPECT_EQ(spans[4]["args"]["video_id"], ids[4]);
}

TEST(TraceTest, EventsPastTheCapAreCountedAsDropped) {
  testing::TempDir dir;
  auto recorder = TraceRecorder::Open(dir.File("t.json"), "unit", /*max_events=*/5);
  ASSERT_TRUE(recorder.ok());
  TraceRecorder::Install(recorder->get());
  for (int i = 0; i < 10; ++i) TraceSpan span("step");
  TraceRecorder::Install(nullptr);
  EXPECT_EQ((*recorder)->events(), 5);  // the process_name event and four spans
  EXPECT_EQ((*recorder)->dropped(), 6);
  ASSERT_TRUE((*recorder)->Close().ok());
  const nlohmann::json trace = ReadTrace(dir.File("t.json"));
  EXPECT_EQ(trace["traceEvents"].size(), 5u);
  EXPECT_EQ(trace["otherData"]["dropped_events"], 6);
}

TEST(TraceTest, ManyThreadsKeepEverySpanAndTheirOwnTid) {
  testing::TempDir dir;
  auto recorder = TraceRecorder::Open(dir.File("t.json"), "unit");
  ASSERT_TRUE(recorder.ok());
  TraceRecorder::Install(recorder->get());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      NameThisThread("worker-" + std::to_string(t), t);
      for (int i = 0; i < 500; ++i) {
        const std::string video = "t" + std::to_string(t) + "-" + std::to_string(i);
        TraceVideoScope scope(video);
        TraceSpan span("decode");
      }
    });
  }
  for (auto& thread : threads) thread.join();
  TraceRecorder::Install(nullptr);
  ASSERT_TRUE((*recorder)->Close().ok());
  const nlohmann::json trace = ReadTrace(dir.File("t.json"));
  const auto spans = Spans(trace, "decode");
  ASSERT_EQ(spans.size(), 2000u);
  std::map<int, std::set<std::string>> prefixes;  // tid -> thread prefix of its videos
  std::map<int, int64_t> last_end;
  for (const auto& span : spans) {
    const int tid = span["tid"];
    const std::string video = span["args"]["video_id"];
    prefixes[tid].insert(video.substr(0, video.find('-')));
    // One thread's spans never overlap.
    EXPECT_GE(span["ts"].get<int64_t>(), last_end[tid]);
    last_end[tid] = span["ts"].get<int64_t>() + span["dur"].get<int64_t>();
  }
  EXPECT_EQ(prefixes.size(), 4u);
  for (const auto& [tid, names] : prefixes) EXPECT_EQ(names.size(), 1u) << tid;
}

TEST(TraceTest, UnwritablePathIsAClearError) {
  auto recorder = TraceRecorder::Open("/nonexistent-dir/t.json", "unit");
  ASSERT_FALSE(recorder.ok());
  EXPECT_EQ(recorder.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(recorder.status().message().find("/nonexistent-dir/t.json"), std::string::npos);
}

TEST(TraceTest, NameThisThreadSetsThePthreadName) {
  std::string name;
  std::thread thread([&] {
    NameThisThread("a-very-long-thread-name", 0);
    char buffer[32] = {};
    pthread_getname_np(pthread_self(), buffer, sizeof buffer);
    name = buffer;
  });
  thread.join();
  EXPECT_EQ(name, "a-very-long-thr");  // 15 characters, the kernel's limit
}

}  // namespace
}  // namespace vsieve::common
