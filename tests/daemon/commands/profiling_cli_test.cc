// `vsieve run|probe --trace FILE --stage-csv FILE` and `run --core-bind`, through the real
// binary: the trace is Chrome trace-event JSON with every stage of every video, one thread's
// spans nest or follow each other, the file stays valid after a SIGTERM drain, the CSV has seed
// 004's columns, and core binding shows in the rows.

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "daemon/pipeline/stage_csv.h"
#include "storage/table_store.h"
#include "tests/daemon/daemon_process.h"
#include "tests/support/test_env.h"

namespace vsieve::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

struct Span {
  std::string name;
  int64_t ts = 0;
  int64_t end = 0;
  int tid = 0;
  std::string video;
};

// Checks the trace's shape and returns its complete events.
std::vector<Span> CheckedSpans(const json& trace, std::map<int, std::string>* thread_names) {
  std::vector<Span> spans;
  EXPECT_EQ(trace.value("displayTimeUnit", ""), "ms");
  EXPECT_TRUE(trace["traceEvents"].is_array());
  EXPECT_EQ(trace["otherData"]["dropped_events"], 0);
  for (const json& event : trace["traceEvents"]) {
    EXPECT_TRUE(event.contains("pid") && event.contains("tid")) << event;
    if (event["ph"] == "M" && event["name"] == "thread_name") {
      (*thread_names)[event["tid"]] = event["args"]["name"];
    } else if (event["ph"] == "X") {
      Span span;
      span.name = event["name"];
      span.ts = event["ts"];
      span.end = span.ts + event["dur"].get<int64_t>();
      span.tid = event["tid"];
      if (event.contains("args") && event["args"].contains("video_id")) {
        span.video = event["args"]["video_id"];
      }
      EXPECT_GE(span.ts, 0) << event;
      EXPECT_GE(span.end, span.ts) << event;
      spans.push_back(span);
    }
  }
  // Per thread, sorted by start: each span either follows the previous ones or nests inside an
  // open one (a stack), never straddles one.
  std::map<int, std::vector<Span>> by_tid;
  for (const Span& span : spans) by_tid[span.tid].push_back(span);
  for (auto& [tid, list] : by_tid) {
    std::stable_sort(list.begin(), list.end(), [](const Span& a, const Span& b) {
      return a.ts != b.ts ? a.ts < b.ts : a.end > b.end;
    });
    std::vector<Span> open;
    for (const Span& span : list) {
      while (!open.empty() && open.back().end <= span.ts) open.pop_back();
      if (!open.empty()) {
        EXPECT_LE(span.end, open.back().end)
            << span.name << " straddles " << open.back().name << " on thread " << tid;
      }
      open.push_back(span);
    }
  }
  return spans;
}

std::vector<std::vector<std::string>> ReadCsv(const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream lines(ReadFile(path));
  std::string line;
  while (std::getline(lines, line)) {
    std::vector<std::string> fields;
    std::istringstream cells(line);
    std::string cell;
    while (std::getline(cells, cell, ',')) fields.push_back(cell);
    if (!line.empty() && line.back() == ',') fields.push_back("");
    rows.push_back(fields);
  }
  return rows;
}

class ProfilingCliTest : public SqliteStoreTest {
 protected:
  std::vector<std::string> RunArgs(int workers = 2) const {
    return {"run",        "--store",  url_, "--no-text", "--workers", std::to_string(workers),
            "--owner-id", "profiling"};
  }

  std::map<std::string, json> Results() {
    std::map<std::string, json> results;
    (void)store_->ForEachRow("", std::nullopt, [&](const storage::RowRecord& record) {
      if (record.result_json) results[record.row.video_id] = json::parse(*record.result_json);
    });
    return results;
  }
};

TEST_F(ProfilingCliTest, TraceHasEveryStageOfEveryVideoAndCsvMatchesTheRows) {
  const auto ids = ImportTinyClips(4);
  std::vector<std::string> args = RunArgs();
  args.insert(args.end(), {"--until-idle", "--trace", dir_.File("trace.json"), "--stage-csv",
                           dir_.File("stages.csv")});
  std::string output;
  args.insert(args.begin(), VSIEVE_BINARY);
  ASSERT_EQ(RunProgram(args, &output), 0) << output;

  const json trace = json::parse(ReadFile(dir_.File("trace.json")));
  std::map<int, std::string> threads;
  const std::vector<Span> spans = CheckedSpans(trace, &threads);
  std::set<std::string> names;
  for (const auto& [tid, name] : threads) names.insert(name);
  for (const char* thread : {"main", "claimer", "fetch-0", "fetch-1", "decode-0", "decode-1",
                             "worker-0", "worker-1", "writer", "heartbeat"}) {
    EXPECT_EQ(names.count(thread), 1u) << thread;
  }
  std::map<std::string, std::map<std::string, int>> stages;  // video -> stage -> count
  for (const Span& span : spans) {
    if (!span.video.empty()) ++stages[span.video][span.name];
    // Stages run on their own pools.
    const std::string& thread = threads[span.tid];
    if (span.name == "fetch") EXPECT_EQ(thread.rfind("fetch-", 0), 0u) << thread;
    if (span.name == "decode") EXPECT_EQ(thread.rfind("decode-", 0), 0u) << thread;
    if (span.name == "regions" || span.name == "heads" || span.name == "analyze") {
      EXPECT_EQ(thread.rfind("worker-", 0), 0u) << thread;
    }
    if (span.name == "write") EXPECT_EQ(thread, "writer");
  }
  for (const std::string& id : ids) {
    for (const char* stage : {"fetch", "decode", "borrow", "analyze", "regions", "heads"}) {
      EXPECT_EQ(stages[id][stage], 1) << id << " " << stage;
    }
  }
  EXPECT_GE(
      std::count_if(spans.begin(), spans.end(), [](const Span& s) { return s.name == "write"; }),
      1);

  // The CSV: one line per result row, seed 004's columns first, the row's stage_ms behind them.
  const auto csv = ReadCsv(dir_.File("stages.csv"));
  ASSERT_EQ(csv.size(), ids.size() + 1);
  std::vector<std::string> header;
  std::istringstream cells(daemon::StageCsvWriter::Header());
  for (std::string cell; std::getline(cells, cell, ',');) header.push_back(cell);
  ASSERT_EQ(csv[0], header);
  const auto column = [&](const std::string& name) {
    return std::find(header.begin(), header.end(), name) - header.begin();
  };
  const auto results = Results();
  std::set<std::string> seen;
  for (std::size_t i = 1; i < csv.size(); ++i) {
    const auto& line = csv[i];
    ASSERT_EQ(line.size(), header.size());
    EXPECT_EQ(line[column("step")], std::to_string(i));
    const std::string id = line[column("video_id")];
    seen.insert(id);
    const json& stage_ms = results.at(id)["result_info"]["stage_ms"];
    const auto ms = [&](const char* name) { return std::stod(line[column(name)]); };
    EXPECT_NEAR(ms("fetch_ms"), stage_ms["fetch"].get<double>(), 0.5);
    EXPECT_NEAR(ms("decode_ms"), stage_ms["decode"].get<double>(), 0.5);
    EXPECT_NEAR(ms("regions_ms"), stage_ms["regions"].get<double>(), 0.5);
    EXPECT_NEAR(ms("heads_ms"), stage_ms["heads"].get<double>(), 0.5);
    EXPECT_NEAR(ms("read_latency_ms"), ms("fetch_ms") + ms("decode_ms"), 0.002);
    EXPECT_NEAR(ms("prep_latency_ms"), ms("regions_ms"), 0.002);
    EXPECT_NEAR(ms("exec_latency_ms"), ms("heads_ms"), 0.002);
    EXPECT_NEAR(ms("total_step_latency_ms"),
                ms("read_latency_ms") + ms("prep_latency_ms") + ms("exec_latency_ms"), 0.003);
    EXPECT_EQ(line[column("loss")], "");
    EXPECT_EQ(line[column("device")], "cpu:0");
    EXPECT_EQ(line[column("succeed")], "true");
    EXPECT_EQ(line[column("worker")],
              std::to_string(results.at(id)["result_info"]["device_info"]["worker"].get<int>()));
  }
  EXPECT_EQ(seen, std::set<std::string>(ids.begin(), ids.end()));
}

TEST_F(ProfilingCliTest, TraceStaysValidAfterSigtermDrain) {
  ImportTinyClips(12);
  std::vector<std::string> args = RunArgs(/*workers=*/1);
  args.insert(args.end(),
              {"--trace", dir_.File("trace.json"), "--stage-csv", dir_.File("stages.csv")});
  DaemonProcess daemon(args, dir_.File("daemon.log"));
  ASSERT_TRUE(daemon.started());
  // Stop it mid-run: once the first result is in.
  const auto give_up = std::chrono::steady_clock::now() + 120s;
  while (CountStates(store_.get())["done"] == 0 && daemon.Wait(0s) == -1 &&
         std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(50ms);
  }
  daemon.Signal(SIGTERM);
  ASSERT_EQ(daemon.Wait(120s), 0) << ReadFile(dir_.File("daemon.log"));
  const std::string text = ReadFile(dir_.File("trace.json"));
  json trace;
  ASSERT_NO_THROW(trace = json::parse(text))
      << text.substr(text.size() > 500 ? text.size() - 500 : 0);
  std::map<int, std::string> threads;
  const std::vector<Span> spans = CheckedSpans(trace, &threads);
  const int done = CountStates(store_.get())["done"];
  EXPECT_GE(done, 1);
  int heads = 0;
  for (const Span& span : spans) heads += span.name == "heads" ? 1 : 0;
  EXPECT_GE(heads, done);
  EXPECT_EQ(static_cast<int>(ReadCsv(dir_.File("stages.csv")).size()), done + 1);
}

TEST_F(ProfilingCliTest, ProbeWritesTraceAndCsvToo) {
  const auto clips = MakeTinyClips(dir_.path(), 2);
  ASSERT_EQ(clips.size(), 2u);
  std::string output;
  ASSERT_EQ(RunProgram({VSIEVE_BINARY, "probe", "--no-text", "--jobs", "2", "--trace",
                        dir_.File("trace.json"), "--stage-csv", dir_.File("stages.csv"), clips[0],
                        clips[1], dir_.File("missing.mp4")},
                       &output),
            0)
      << output;
  const json trace = json::parse(ReadFile(dir_.File("trace.json")));
  std::map<int, std::string> threads;
  std::map<std::string, std::set<std::string>> stages;
  std::map<std::string, std::set<std::string>> cues;  // region:<detector>, head:<head>
  for (const Span& span : CheckedSpans(trace, &threads)) {
    (span.name.find(':') == std::string::npos ? stages : cues)[span.video].insert(span.name);
  }
  for (const std::string& clip : clips) {
    EXPECT_EQ(stages[clip],
              (std::set<std::string>{"fetch", "decode", "analyze", "regions", "heads"}))
        << clip;
    EXPECT_EQ(cues[clip].count("region:black_border"), 1u) << clip;
    EXPECT_EQ(cues[clip].count("head:vfx_filter"), 1u) << clip;
  }
  EXPECT_EQ(stages[dir_.File("missing.mp4")], std::set<std::string>{"fetch"});
  std::set<std::string> names;
  for (const auto& [tid, name] : threads) names.insert(name);
  EXPECT_TRUE(names.count("probe-0") == 1 && names.count("probe-1") == 1);
  const auto csv = ReadCsv(dir_.File("stages.csv"));
  ASSERT_EQ(csv.size(), 4u);
  int failed = 0;
  for (std::size_t i = 1; i < csv.size(); ++i) {
    if (csv[i][10] == "false") {
      ++failed;
      EXPECT_EQ(csv[i][11], "OBJECT_NOT_FOUND");
      EXPECT_EQ(csv[i][14], "");  // regions_ms: never reached
    }
  }
  EXPECT_EQ(failed, 1);
}

TEST_F(ProfilingCliTest, UnwritableOutputFilesAreSetupErrors) {
  ImportTinyClips(1);
  for (const char* flag : {"--trace", "--stage-csv"}) {
    std::vector<std::string> args = {VSIEVE_BINARY};
    const auto run = RunArgs();
    args.insert(args.end(), run.begin(), run.end());
    args.insert(args.end(), {"--until-idle", flag, "/nonexistent-dir/out"});
    std::string output;
    EXPECT_EQ(RunProgram(args, &output), 2) << flag;
    EXPECT_NE(output.find("/nonexistent-dir/out"), std::string::npos) << output;
    std::string probe_output;
    EXPECT_EQ(
        RunProgram({VSIEVE_BINARY, "probe", "--no-text", flag, "/nonexistent-dir/out", "x.mp4"},
                   &probe_output),
        2)
        << flag;
  }
  EXPECT_EQ(CountStates(store_.get())["pending"], 1);  // nothing was claimed
}

TEST_F(ProfilingCliTest, CoreBindShowsInEveryRow) {
  const auto ids = ImportTinyClips(3);
  std::vector<std::string> args = {VSIEVE_BINARY};
  const auto run = RunArgs();
  args.insert(args.end(), run.begin(), run.end());
  args.insert(args.end(), {"--until-idle", "--core-bind", "--log-level", "info"});
  std::string output;
  ASSERT_EQ(RunProgram(args, &output), 0) << output;
  EXPECT_NE(output.find("run: core binding (allowed CPUs"), std::string::npos) << output;
  for (const auto& [id, row] : Results()) {
    const json& info = row["result_info"]["device_info"];
    ASSERT_TRUE(info.contains("cpus")) << info;
    ASSERT_TRUE(info.contains("decode_cpus")) << info;
    EXPECT_FALSE(info["cpus"].empty());
    EXPECT_FALSE(info["decode_cpus"].empty());
    if (std::thread::hardware_concurrency() >= 2) {
      // auto gives decode and analysis disjoint CPUs when there are two or more.
      for (const auto& cpu : info["cpus"]) {
        EXPECT_EQ(std::count(info["decode_cpus"].begin(), info["decode_cpus"].end(), cpu), 0)
            << info;
      }
    }
  }
  // A CPU the process may not use is refused before anything is claimed.
  args = {VSIEVE_BINARY};
  args.insert(args.end(), run.begin(), run.end());
  args.insert(args.end(), {"--until-idle", "--core-bind=decode=1000"});
  output.clear();
  EXPECT_EQ(RunProgram(args, &output), 2);
  EXPECT_NE(output.find("'pipeline.core_bind': CPU 1000 is not one this process may run on"),
            std::string::npos)
      << output;
  args.back() = "--core-bind=decoders=0";
  output.clear();
  EXPECT_EQ(RunProgram(args, &output), 2);
  EXPECT_NE(output.find("unknown pool 'decoders'"), std::string::npos) << output;
}

}  // namespace
}  // namespace vsieve::testing
