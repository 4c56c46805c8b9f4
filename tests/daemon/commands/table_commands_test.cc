// End-to-end tests of `vsieve import|export|requeue|status` as an operator runs them: the real
// binary on an SQLite store in a temp folder and on a PostgreSQL database of a server the test
// starts (skipped where the server programs are absent). Rows are finished in-process through
// the store interface.
#include "daemon/commands/table_commands.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "storage/table_store.h"
#include "tests/support/postgres_server.h"
#include "tests/support/test_env.h"

namespace vsieve::daemon {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

class TableCommandsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "sqlite") {
      store_url_ = "sqlite://" + dir_.File("rows.db");
      return;
    }
    std::string why;
    VSIEVE_REQUIRE_POSTGRES();
    testing::PostgresServer* server = testing::PostgresServer::Shared(&why);
    ASSERT_NE(server, nullptr) << why;
    store_url_ = server->CreateDatabase(&why);
    ASSERT_FALSE(store_url_.empty()) << why;
  }

  int Vsieve(const std::vector<std::string>& args, std::string* out, std::string* err) {
    out->clear();
    err->clear();
    std::vector<std::string> argv = {VSIEVE_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    if (args.size() > 0 && args[0] != "validate") {
      argv.push_back("--store");
      argv.push_back(store_url_);
    }
    return testing::RunCommand(argv, out, err);
  }

  std::unique_ptr<storage::TableStore> Store() {
    auto store = storage::TableStore::Open(store_url_);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(*store) : nullptr;
  }

  // Imports v0..v(n-1) as JSONL into `table`.
  void ImportIds(int n, const std::string& table = "default") {
    std::string text;
    for (int i = 0; i < n; ++i) {
      text += R"({"video_id":"v)" + std::to_string(i) + R"(","oss_bucket":"b","video_path":"p)" +
              std::to_string(i) + R"(.mp4","video_tag":"t","info":{}})" + "\n";
    }
    const std::string file = dir_.File(table + "-ids.jsonl");
    ASSERT_TRUE(testing::WriteFile(file, text));
    std::string out, err;
    ASSERT_EQ(Vsieve({"import", "--table", table, file}, &out, &err), 0) << err;
  }

  testing::TempDir dir_;
  std::string store_url_;
};

TEST_P(TableCommandsTest, ImportsJsonlAndCsvAndReportsBadLinesWithNumbers) {
  const std::string jsonl = dir_.File("rows.jsonl");
  ASSERT_TRUE(testing::WriteFile(
      jsonl, R"({"video_id":"a","oss_bucket":"b","video_path":"x/a.mp4","video_tag":"t",)"
             R"("info":{"use_alluxio":false}})"
             "\n\n"
             R"({"video_id":"b","info":"{\"use_alluxio\":true}"})"
             "\n"
             "{broken\n"
             R"({"video_path":"no-id.mp4"})"
             "\n"));
  const std::string csv = dir_.File("rows.csv");
  ASSERT_TRUE(testing::WriteFile(csv,
                                 "video_id,oss_bucket,video_path,video_tag,info\n"
                                 "c,b,\"x/c,1.mp4\",t,\"{\"\"use_alluxio\"\":false}\"\n"
                                 "d,b,x/d.mp4,t\n"
                                 "e,b,x/e.mp4,t,\n"));
  std::string out, err;
  EXPECT_EQ(Vsieve({"import", jsonl, csv}, &out, &err), kExitSomeLinesBad);
  EXPECT_NE(out.find("imported 4, unchanged 0, bad 3"), std::string::npos) << out;
  EXPECT_NE(err.find(jsonl + ":4: not valid JSON"), std::string::npos) << err;
  EXPECT_NE(err.find(jsonl + ":5: missing or empty video_id"), std::string::npos) << err;
  EXPECT_NE(err.find(csv + ":3: expected 5 fields, found 4"), std::string::npos) << err;

  auto store = Store();
  ASSERT_NE(store, nullptr);
  auto a = store->GetRow("default", "a");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->row.video_path, "x/a.mp4");
  EXPECT_EQ(nlohmann::json::parse(a->row.info_json)["use_alluxio"], false);
  auto b = store->GetRow("default", "b");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(nlohmann::json::parse(b->row.info_json), "{\"use_alluxio\":true}");  // a string
  auto c = store->GetRow("default", "c");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->row.video_path, "x/c,1.mp4");
  EXPECT_EQ(nlohmann::json::parse(c->row.info_json)["use_alluxio"], false);

  // Importing again changes nothing; good files exit 0.
  const std::string good = dir_.File("good.csv");
  ASSERT_TRUE(testing::WriteFile(good, "video_id,video_path\na,elsewhere.mp4\nf,x/f.mp4\n"));
  EXPECT_EQ(Vsieve({"import", good}, &out, &err), 0) << err;
  EXPECT_NE(out.find("imported 1, unchanged 1, bad 0"), std::string::npos) << out;
  EXPECT_EQ(store->GetRow("default", "a")->row.video_path, "x/a.mp4");

  // --table puts the same ids in another table; --format overrides the extension.
  const std::string odd = dir_.File("rows.txt");
  ASSERT_TRUE(testing::WriteFile(odd, R"({"video_id":"a"})"
                                      "\n"));
  EXPECT_EQ(Vsieve({"import", odd}, &out, &err), 2);
  EXPECT_NE(err.find("--format"), std::string::npos) << err;
  EXPECT_EQ(Vsieve({"import", "--format", "jsonl", "--table", "videos/ds=1", odd}, &out, &err), 0)
      << err;
  EXPECT_NE(out.find("imported 1, unchanged 0, bad 0"), std::string::npos) << out;
}

TEST_P(TableCommandsTest, ExportRequeueAndStatus) {
  ImportIds(4);
  auto store = Store();
  ASSERT_NE(store, nullptr);
  auto leases = store->Claim("test", {}, 3, 60);
  ASSERT_TRUE(leases.ok());
  ASSERT_EQ(leases->size(), 3U);
  ASSERT_TRUE(*store->Complete(
      (*leases)[0], R"({"video_id":"v0","result_info":{"succeed":"true"}})", true, "", ""));
  ASSERT_TRUE(*store->Complete((*leases)[1],
                               R"({"video_id":"v1","result_info":{"succeed":"false"}})", false,
                               "TRUNCATED", "short file"));
  // v2 stays running, v3 pending.

  std::string out, err;
  ASSERT_EQ(Vsieve({"export"}, &out, &err), 0) << err;
  auto lines = Lines(out);
  ASSERT_EQ(lines.size(), 2U) << out;
  EXPECT_EQ(nlohmann::json::parse(lines[0])["video_id"], "v0");
  EXPECT_EQ(nlohmann::json::parse(lines[1])["video_id"], "v1");
  ASSERT_EQ(
      Vsieve({"export", "--state", "failed", "--output", dir_.File("failed.jsonl")}, &out, &err), 0)
      << err;
  lines = Lines(testing::ReadFile(dir_.File("failed.jsonl")));
  ASSERT_EQ(lines.size(), 1U);
  EXPECT_EQ(nlohmann::json::parse(lines[0])["result_info"]["succeed"], "false");

  ASSERT_EQ(Vsieve({"status", "--json"}, &out, &err), 0) << err;
  nlohmann::json status = nlohmann::json::parse(out);
  EXPECT_EQ(status["by_state"]["pending"], 1);
  EXPECT_EQ(status["by_state"]["running"], 1);
  EXPECT_EQ(status["by_state"]["done"], 1);
  EXPECT_EQ(status["by_state"]["failed"], 1);
  EXPECT_EQ(status["total"], 4);
  EXPECT_EQ(status["finished"]["1m"], 2);
  EXPECT_DOUBLE_EQ(status["throughput_per_min"]["5m"].get<double>(), 0.4);
  EXPECT_DOUBLE_EQ(status["eta_seconds"].get<double>(), 2 / 0.4 * 60.0);
  ASSERT_EQ(status["top_errors"].size(), 1U);
  EXPECT_EQ(status["top_errors"][0]["code"], "TRUNCATED");
  EXPECT_EQ(status["top_errors"][0]["count"], 1);
  ASSERT_EQ(Vsieve({"status"}, &out, &err), 0) << err;
  EXPECT_NE(out.find("TRUNCATED 1"), std::string::npos) << out;

  // Requeue by id: running rows are refused with a message, unknown ids counted.
  ASSERT_TRUE(testing::WriteFile(dir_.File("ids.txt"), "# to redo\nv0\nv2\nv3\nmissing\n"));
  ASSERT_EQ(Vsieve({"requeue", "--ids", dir_.File("ids.txt")}, &out, &err), 0) << err;
  EXPECT_NE(out.find("requeued 1, already pending 1, refused running 1, not found 1"),
            std::string::npos)
      << out;
  EXPECT_NE(err.find("running"), std::string::npos) << err;
  ASSERT_EQ(Vsieve({"requeue", "--error-code", "TRUNCATED"}, &out, &err), 0) << err;
  EXPECT_NE(out.find("requeued 1,"), std::string::npos) << out;
  ASSERT_EQ(Vsieve({"requeue", "--failed"}, &out, &err), 0) << err;  // idempotent
  EXPECT_NE(out.find("requeued 0,"), std::string::npos) << out;
  auto v1 = store->GetRow("default", "v1");
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ(v1->state, storage::RowState::kPending);
  EXPECT_EQ(v1->attempts, 0);  // the count restarts; history keeps the earlier one

  // Exactly one selector.
  EXPECT_EQ(Vsieve({"requeue"}, &out, &err), 1);
  EXPECT_NE(Vsieve({"requeue", "--failed", "--error-code", "X"}, &out, &err), 0);
}

TEST_P(TableCommandsTest, TablesAreSeparate) {
  ImportIds(2, "a");
  ImportIds(3, "b");
  std::string out, err;
  ASSERT_EQ(Vsieve({"status", "--json", "--table", "b"}, &out, &err), 0) << err;
  EXPECT_EQ(nlohmann::json::parse(out)["by_state"]["pending"], 3);
  ASSERT_EQ(Vsieve({"status", "--json"}, &out, &err), 0) << err;
  EXPECT_EQ(nlohmann::json::parse(out)["by_state"]["pending"], 5);
}

TEST_P(TableCommandsTest, MalformedConfigKeyIsAnErrorNamingTheKey) {
  const std::string config = dir_.File("bad.toml");
  ASSERT_TRUE(testing::WriteFile(config, "[store]\nlease_second = 10\n"));
  std::string out, err;
  EXPECT_EQ(Vsieve({"status", "--config", config}, &out, &err), 2);
  EXPECT_NE(err.find("store.lease_second"), std::string::npos) << err;
  ASSERT_TRUE(testing::WriteFile(config, "[pipeline]\nworkers = 0\n"));
  EXPECT_EQ(Vsieve({"import", "--config", config, config}, &out, &err), 2);
  EXPECT_NE(err.find("pipeline.workers"), std::string::npos) << err;
}

TEST_P(TableCommandsTest, StoreUrlComesFromTheConfigAndAnUnreachableStoreHidesItsPassword) {
  const std::string config = dir_.File("pg.toml");
  ASSERT_TRUE(
      testing::WriteFile(config, "[store]\nurl = \"postgresql://u:s3cret@127.0.0.1:1/db\"\n"));
  std::string out, err;
  EXPECT_EQ(testing::RunCommand({VSIEVE_BINARY, "status", "--config", config}, &out, &err), 2);
  EXPECT_NE(err.find("opening store postgresql://u:***@127.0.0.1:1/db"), std::string::npos) << err;
  EXPECT_EQ(err.find("s3cret"), std::string::npos) << err;
  out.clear();
  err.clear();
  ASSERT_TRUE(
      testing::WriteFile(config, "[store]\nurl = \"sqlite://" + dir_.File("c.db") + "\"\n"));
  EXPECT_EQ(
      testing::RunCommand({VSIEVE_BINARY, "status", "--json", "--config", config}, &out, &err), 0)
      << err;
  EXPECT_TRUE(testing::ReadFile(dir_.File("c.db")).size() > 0);
}

TEST_P(TableCommandsTest, ValidateOpensTheStore) {
  const std::string config = dir_.File("v.toml");
  ASSERT_TRUE(testing::WriteFile(config, "[store]\nurl = \"" + store_url_ + "\"\n"));
  std::string out, err;
  ASSERT_EQ(Vsieve({"validate", "--config", config}, &out, &err), 0) << err;
  EXPECT_EQ(nlohmann::json::parse(out)["store"]["url"], store_url_);
  EXPECT_TRUE(Store() != nullptr);
  ASSERT_TRUE(
      testing::WriteFile(config, "[store]\nurl = \"" + dir_.File("no/such/dir.db") + "\"\n"));
  EXPECT_EQ(Vsieve({"validate", "--config", config}, &out, &err), 2);
  EXPECT_NE(err.find("opening store"), std::string::npos) << err;
}

INSTANTIATE_TEST_SUITE_P(Stores, TableCommandsTest, ::testing::Values("sqlite", "postgres"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

TEST(StatusJsonTest, EtaIsNullWithoutRecentThroughputAndZeroWhenNothingRemains) {
  storage::StoreStats stats;
  stats.by_state = {{"pending", 5}, {"running", 0}, {"done", 0}, {"failed", 0}};
  EXPECT_TRUE(StatusJson("", stats)["eta_seconds"].is_null());
  stats.by_state["pending"] = 0;
  EXPECT_EQ(StatusJson("", stats)["eta_seconds"], 0.0);
}

TEST(ParseInputRowJsonTest, AcceptsObjectOrStringInfoAndRejectsOthers) {
  storage::InputRow row;
  EXPECT_EQ(ParseInputRowJson(R"({"video_id":"x","info":{"a":1}})", &row), "");
  EXPECT_EQ(row.info_json, R"({"a":1})");
  EXPECT_EQ(ParseInputRowJson(R"({"video_id":"x"})", &row), "");
  EXPECT_EQ(row.info_json, "{}");
  EXPECT_NE(ParseInputRowJson(R"({"video_id":"x","info":[1]})", &row), "");
  EXPECT_NE(ParseInputRowJson(R"({"video_id":"x","video_path":3.5})", &row), "");
  EXPECT_NE(ParseInputRowJson(R"([1,2])", &row), "");
}

}  // namespace
}  // namespace vsieve::daemon
