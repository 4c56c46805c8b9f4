// The admin HTTP API (daemon/ops/admin_server.h) in-process, against a real SQLite store and a real
// cpp-httplib server on a free loopback port. The end-to-end tests through `vsieve run` are in
// admin_daemon_test.cc.
#include "daemon/ops/admin_server.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "daemon/config/filter_config.h"
#include "daemon/tables/table_rows.h"
#include "tests/daemon/admin_test_util.h"
#include "tests/support/test_env.h"

namespace vsieve::daemon {
namespace {

using nlohmann::json;
using testing::HttpGet;
using testing::HttpPost;
using testing::HttpReply;

class AdminServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = storage::TableStore::Open("sqlite://" + dir_.File("store.db"));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    StartServer("");
  }

  void StartServer(const std::string& token) {
    server_.reset();
    AdminOptions options;
    options.listen = "127.0.0.1:0";
    options.token = token;
    options.max_body_bytes = 1024;
    auto server = AdminServer::Start(options, store_.get(), &registry_);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
    address_ = server_->address();
  }

  void Import(const std::string& id, const std::string& table = "default") {
    storage::InputRow row;
    row.table = table;
    row.video_id = id;
    row.video_path = "/videos/" + id + ".mp4";
    ASSERT_TRUE(store_->Import({row}).ok());
  }

  // Claims every pending row (they become running) and returns the leases.
  std::vector<storage::Lease> ClaimAll() {
    auto leases = store_->Claim("test-owner", {}, 100, 60);
    EXPECT_TRUE(leases.ok());
    return leases.ok() ? *leases : std::vector<storage::Lease>{};
  }

  HttpReply Post(const std::string& body, const std::string& query = "",
                 const httplib::Headers& headers = {}) {
    return HttpPost(address_, "/v1/videos" + query, body, headers);
  }

  // A 400 whose message names `field`.
  void ExpectBadRequestNaming(const std::string& body, const std::string& field) {
    const HttpReply reply = Post(body);
    EXPECT_EQ(reply.status, 400) << body << " -> " << reply.body;
    EXPECT_EQ(reply.Json().value("error", ""), "bad_request") << reply.body;
    EXPECT_NE(reply.Json().value("message", "").find(field), std::string::npos)
        << body << " -> " << reply.body;
  }

  testing::TempDir dir_;
  std::unique_ptr<storage::TableStore> store_;
  common::MetricsRegistry registry_;
  std::unique_ptr<AdminServer> server_;
  std::string address_;
};

TEST_F(AdminServerTest, HealthzAnswersWhileTheProcessRuns) {
  const HttpReply reply = HttpGet(address_, "/healthz");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.Json()["status"], "alive");
  EXPECT_EQ(reply.Header("Content-Type"), "application/json");
}

TEST_F(AdminServerTest, ReadyzIs503StartingThen200ReadyThen503Draining) {
  HttpReply reply = HttpGet(address_, "/readyz");
  EXPECT_EQ(reply.status, 503);
  EXPECT_EQ(reply.Json()["status"], "starting");
  EXPECT_FALSE(reply.Json().value("message", "").empty());

  server_->SetReadiness(Readiness::kReady);
  reply = HttpGet(address_, "/readyz");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.Json()["status"], "ready");

  server_->SetReadiness(Readiness::kDraining);
  reply = HttpGet(address_, "/readyz");
  EXPECT_EQ(reply.status, 503);
  EXPECT_EQ(reply.Json()["status"], "draining");
  // Alive all along.
  EXPECT_EQ(HttpGet(address_, "/healthz").status, 200);
}

TEST_F(AdminServerTest, MetricsRendersTheRegistryAsPrometheusText) {
  registry_.GetCounter("vsieve_test_things_total", "Things.", {{"kind", "a"}}).Inc(3);
  registry_.GetHistogram("vsieve_test_seconds", "Durations.", common::DurationBuckets())
      .Observe(0.2);
  const HttpReply reply = HttpGet(address_, "/metrics");
  ASSERT_EQ(reply.status, 200);
  EXPECT_EQ(reply.Header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(testing::SampleValue(reply.body, "vsieve_test_things_total{kind=\"a\"}"), 3.0);
  EXPECT_EQ(testing::SampleValue(reply.body, "vsieve_test_seconds_count"), 1.0);
  if (!testing::HaveProgram("promtool")) GTEST_SKIP() << "promtool not installed";
  std::string output;
  EXPECT_EQ(testing::PromtoolCheckMetrics(reply.body, &output), 0) << output;
  EXPECT_EQ(output, "");
}

TEST_F(AdminServerTest, StatusIsWhatStatusJsonPrints) {
  Import("a");
  Import("b");
  Import("c", "other");
  ClaimAll();
  HttpReply reply = HttpGet(address_, "/v1/status");
  ASSERT_EQ(reply.status, 200) << reply.body;
  auto stats = store_->Stats("");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(reply.Json(), StatusJson("", *stats));
  EXPECT_EQ(reply.Json()["by_state"]["running"], 3);

  reply = HttpGet(address_, "/v1/status?table=other");
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.Json()["table"], "other");
  EXPECT_EQ(reply.Json()["total"], 1);
}

TEST_F(AdminServerTest, PostCreatesAPendingRow) {
  const HttpReply reply = Post(
      R"({"video_id": "v1", "oss_bucket": "b", "video_path": "clips/v1.mp4", "video_tag": "t",
          "info": {"use_alluxio": false}})");
  ASSERT_EQ(reply.status, 201) << reply.body;
  EXPECT_EQ(
      reply.Json(),
      (json{{"video_id", "v1"}, {"table", "default"}, {"state", "pending"}, {"created", true}}));
  EXPECT_EQ(reply.Header("Location"), "/v1/videos/v1?table=default");
  auto row = store_->GetRow("default", "v1");
  ASSERT_TRUE(row.ok());
  EXPECT_EQ(row->state, storage::RowState::kPending);
  EXPECT_EQ(row->row.oss_bucket, "b");
  EXPECT_EQ(row->row.video_path, "clips/v1.mp4");
  EXPECT_EQ(row->row.video_tag, "t");
  EXPECT_EQ(json::parse(row->row.info_json), (json{{"use_alluxio", false}}));
}

TEST_F(AdminServerTest, PostTakesTheTableFromTheBodyOrTheQuery) {
  EXPECT_EQ(Post(R"({"video_id": "v1", "video_path": "a.mp4", "table": "t1"})").status, 201);
  EXPECT_EQ(Post(R"({"video_id": "v1", "video_path": "a.mp4"})", "?table=t2").status, 201);
  EXPECT_TRUE(store_->GetRow("t1", "v1").ok());
  EXPECT_TRUE(store_->GetRow("t2", "v1").ok());
  EXPECT_FALSE(store_->GetRow("default", "v1").ok());
  ExpectBadRequestNaming(R"({"video_id": "v1", "video_path": "a.mp4", "table": 3})", "table");
  ExpectBadRequestNaming(R"({"video_id": "v1", "video_path": "a.mp4", "table": ""})", "table");
  const HttpReply reply =
      Post(R"({"video_id": "v1", "video_path": "a.mp4", "table": "t1"})", "?table=t2");
  EXPECT_EQ(reply.status, 400);
  EXPECT_NE(reply.Json().value("message", "").find("table"), std::string::npos);
}

TEST_F(AdminServerTest, PostOfAPendingRowIs200AndChangesNothing) {
  Import("v1");
  const HttpReply reply = Post(R"({"video_id": "v1", "video_path": "other.mp4"})");
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.Json()["state"], "pending");
  EXPECT_EQ(reply.Json()["created"], false);
  EXPECT_EQ(store_->GetRow("default", "v1")->row.video_path, "/videos/v1.mp4");
}

TEST_F(AdminServerTest, PostOfARunningRowIs409) {
  Import("v1");
  ASSERT_EQ(ClaimAll().size(), 1U);
  const HttpReply reply = Post(R"({"video_id": "v1", "video_path": "a.mp4"})");
  EXPECT_EQ(reply.status, 409) << reply.body;
  EXPECT_EQ(reply.Json()["error"], "conflict");
  EXPECT_EQ(reply.Json()["state"], "running");
  EXPECT_NE(reply.Json().value("message", "").find("running"), std::string::npos);
  EXPECT_EQ(Post(R"({"video_id": "v1", "video_path": "a.mp4"})", "?requeue=1").status, 409);
}

TEST_F(AdminServerTest, PostOfAFinishedRowRequeuesOnlyWhenAsked) {
  Import("v1");
  auto leases = ClaimAll();
  ASSERT_EQ(leases.size(), 1U);
  ASSERT_TRUE(*store_->Complete(leases[0], R"({"video_id":"v1"})", false, "TIMEOUT", "slow"));

  HttpReply reply = Post(R"({"video_id": "v1", "video_path": "a.mp4"})");
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.Json()["state"], "failed");
  EXPECT_EQ(reply.Json()["created"], false);
  EXPECT_NE(reply.Json().value("message", "").find("requeue=1"), std::string::npos);
  EXPECT_EQ(store_->GetRow("default", "v1")->state, storage::RowState::kFailed);

  reply = Post(R"({"video_id": "v1", "video_path": "a.mp4"})", "?requeue=1");
  ASSERT_EQ(reply.status, 202) << reply.body;
  EXPECT_EQ(reply.Json()["state"], "pending");
  EXPECT_EQ(reply.Json()["requeued"], true);
  EXPECT_EQ(store_->GetRow("default", "v1")->state, storage::RowState::kPending);

  const HttpReply bad = Post(R"({"video_id": "v1", "video_path": "a.mp4"})", "?requeue=maybe");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.Json().value("message", "").find("requeue"), std::string::npos);
}

TEST_F(AdminServerTest, PostBadRequestsAre400NamingTheField) {
  ExpectBadRequestNaming(R"({"video_path": "a.mp4"})", "video_id");
  ExpectBadRequestNaming(R"({"video_id": "  ", "video_path": "a.mp4"})", "video_id");
  ExpectBadRequestNaming(R"({"video_id": 1.5, "video_path": "a.mp4"})", "video_id");
  ExpectBadRequestNaming(R"({"video_id": ["x"], "video_path": "a.mp4"})", "video_id");
  ExpectBadRequestNaming(R"({"video_id": "x"})", "video_path");
  ExpectBadRequestNaming(R"({"video_id": "x", "video_path": 7.5})", "video_path");
  ExpectBadRequestNaming(R"({"video_id": "x", "video_path": "a", "oss_bucket": true})",
                         "oss_bucket");
  ExpectBadRequestNaming(R"({"video_id": "x", "video_path": "a", "video_tag": {}})", "video_tag");
  ExpectBadRequestNaming(R"({"video_id": "x", "video_path": "a", "info": 3})", "info");
  ExpectBadRequestNaming(R"({"video_id": "x", "video_path": )", "JSON");
  ExpectBadRequestNaming("", "JSON");
  ExpectBadRequestNaming(R"(["x"])", "object");
  auto stats = store_->Stats("");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(StatusJson("", *stats)["total"], 0);  // nothing was inserted
}

TEST_F(AdminServerTest, PostOverTheBodyLimitIs413) {
  const std::string body = R"({"video_id": "x", "video_path": ")" + std::string(2000, 'a') + "\"}";
  const HttpReply reply = Post(body);
  EXPECT_EQ(reply.status, 413) << reply.body;
  EXPECT_EQ(reply.Json()["error"], "payload_too_large") << reply.body;
  EXPECT_NE(reply.Json().value("message", "").find("1024"), std::string::npos) << reply.body;
  EXPECT_FALSE(store_->GetRow("default", "x").ok());
}

TEST_F(AdminServerTest, WithATokenPostNeedsTheBearerToken) {
  StartServer("s3cret-token");
  const std::string body = R"({"video_id": "v1", "video_path": "a.mp4"})";
  HttpReply reply = Post(body);
  EXPECT_EQ(reply.status, 401) << reply.body;
  EXPECT_EQ(reply.Json()["error"], "unauthorized");
  EXPECT_EQ(reply.Header("WWW-Authenticate"), "Bearer");
  reply = Post(body, "", {{"Authorization", "Bearer wrong-token"}});
  EXPECT_EQ(reply.status, 401) << reply.body;
  EXPECT_NE(reply.Json().value("message", "").find("wrong"), std::string::npos);
  reply = Post(body, "", {{"Authorization", "Basic czNjcmV0LXRva2Vu"}});
  EXPECT_EQ(reply.status, 401) << reply.body;
  reply = Post(body, "", {{"Authorization", "Bearer s3cret-token-and-more"}});
  EXPECT_EQ(reply.status, 401) << reply.body;
  EXPECT_FALSE(store_->GetRow("default", "v1").ok());

  reply = Post(body, "", {{"Authorization", "Bearer s3cret-token"}});
  EXPECT_EQ(reply.status, 201) << reply.body;
  // Reads need no token.
  EXPECT_EQ(HttpGet(address_, "/v1/videos/v1").status, 200);
  EXPECT_EQ(HttpGet(address_, "/v1/status").status, 200);
}

TEST_F(AdminServerTest, GetVideoReportsPendingThenTheResultWhenDone) {
  Import("v1");
  HttpReply reply = HttpGet(address_, "/v1/videos/v1");
  ASSERT_EQ(reply.status, 200) << reply.body;
  json body = reply.Json();
  EXPECT_EQ(body["video_id"], "v1");
  EXPECT_EQ(body["table"], "default");
  EXPECT_EQ(body["state"], "pending");
  EXPECT_EQ(body["attempts"], 0);
  EXPECT_TRUE(body["last_error"].is_null());
  EXPECT_TRUE(body["result"].is_null());
  EXPECT_EQ(body["input"]["video_path"], "/videos/v1.mp4");

  auto leases = ClaimAll();
  ASSERT_EQ(leases.size(), 1U);
  EXPECT_EQ(HttpGet(address_, "/v1/videos/v1").Json()["state"], "running");
  const json result = {{"video_id", "v1"}, {"result_info", {{"succeed", "true"}}}};
  ASSERT_TRUE(*store_->Complete(leases[0], result.dump(), true, "", ""));
  reply = HttpGet(address_, "/v1/videos/v1");
  ASSERT_EQ(reply.status, 200) << reply.body;
  body = reply.Json();
  EXPECT_EQ(body["state"], "done");
  EXPECT_EQ(body["attempts"], 1);
  EXPECT_EQ(body["result"], result);
  EXPECT_FALSE(body.value("updated_at", "").empty());
}

TEST_F(AdminServerTest, GetVideoShowsTheLastErrorOfAFailedRow) {
  Import("v1");
  auto leases = ClaimAll();
  ASSERT_EQ(leases.size(), 1U);
  ASSERT_TRUE(*store_->Complete(leases[0], R"({"video_id":"v1"})", false, "OBJECT_NOT_FOUND",
                                "no such file"));
  const json body = HttpGet(address_, "/v1/videos/v1").Json();
  EXPECT_EQ(body["state"], "failed");
  EXPECT_EQ(body["last_error"], (json{{"code", "OBJECT_NOT_FOUND"}, {"message", "no such file"}}));
  EXPECT_EQ(body["result"]["video_id"], "v1");
}

TEST_F(AdminServerTest, GetVideoUsesTheTableParameterAnd404sUnknownIds) {
  Import("v1", "t1");
  Import("a/b c", "default");
  HttpReply reply = HttpGet(address_, "/v1/videos/v1");
  EXPECT_EQ(reply.status, 404) << reply.body;
  EXPECT_EQ(reply.Json()["error"], "not_found");
  EXPECT_NE(reply.Json().value("message", "").find("v1"), std::string::npos);
  EXPECT_EQ(HttpGet(address_, "/v1/videos/v1?table=t1").status, 200);
  EXPECT_EQ(HttpGet(address_, "/v1/videos/nope").status, 404);
  reply = HttpGet(address_, "/v1/videos/%FF%FE");  // not UTF-8: still a JSON 404
  EXPECT_EQ(reply.status, 404) << reply.body;
  EXPECT_EQ(reply.Json()["error"], "not_found") << reply.body;
  reply = HttpGet(address_, "/v1/videos/a%2Fb%20c");
  EXPECT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.Json()["video_id"], "a/b c");
}

TEST_F(AdminServerTest, UnknownPathsAndMethodsAnswerJson) {
  HttpReply reply = HttpGet(address_, "/nope");
  EXPECT_EQ(reply.status, 404);
  EXPECT_EQ(reply.Json()["error"], "not_found");
  reply = HttpGet(address_, "/v1/videos");
  EXPECT_EQ(reply.status, 405);
  EXPECT_EQ(reply.Json()["error"], "method_not_allowed");
  reply = HttpPost(address_, "/readyz", "{}");
  EXPECT_EQ(reply.status, 405);
  EXPECT_FALSE(reply.Json().value("message", "").empty());
}

TEST_F(AdminServerTest, ASecondServerOnTheSamePortFailsRetryably) {
  AdminOptions options;
  options.listen = address_;
  auto second = AdminServer::Start(options, store_.get(), &registry_);
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(second.status().retryable());
  EXPECT_NE(second.status().message().find(address_), std::string::npos);
}

TEST_F(AdminServerTest, AddressFileHoldsTheBoundAddressUntilStop) {
  AdminOptions options;
  options.listen = "127.0.0.1:0";
  options.address_file = dir_.File("admin.address");
  auto server = AdminServer::Start(options, store_.get(), &registry_);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  EXPECT_EQ(testing::ReadFile(options.address_file), (*server)->address() + "\n");
  EXPECT_NE((*server)->port(), 0);
  (*server)->Stop();
  EXPECT_FALSE(std::filesystem::exists(options.address_file));
}

// The access rule itself, with peers the tests cannot be (only loopback is reachable here).
TEST(AdminAccessTest, WithoutATokenOnlyLoopbackPeersMayPost) {
  EXPECT_TRUE(CheckMutatingAccess("127.0.0.1", "", "").allowed());
  EXPECT_TRUE(CheckMutatingAccess("127.8.9.10", "", "").allowed());
  EXPECT_TRUE(CheckMutatingAccess("::1", "", "").allowed());
  EXPECT_TRUE(CheckMutatingAccess("::ffff:127.0.0.1", "", "").allowed());
  for (const char* remote :
       {"10.1.2.3", "192.168.0.7", "::ffff:10.0.0.1", "2001:db8::1", "", "not-an-address"}) {
    const AccessDecision decision = CheckMutatingAccess(remote, "Bearer anything", "");
    EXPECT_EQ(decision.status, 403) << remote;
    EXPECT_NE(decision.message.find("token_file"), std::string::npos) << remote;
  }
}

TEST(AdminAccessTest, WithATokenEveryPeerNeedsIt) {
  EXPECT_TRUE(CheckMutatingAccess("10.1.2.3", "Bearer tok", "tok").allowed());
  EXPECT_TRUE(CheckMutatingAccess("10.1.2.3", "bearer  tok ", "tok").allowed());
  EXPECT_EQ(CheckMutatingAccess("127.0.0.1", "", "tok").status, 401);
  EXPECT_EQ(CheckMutatingAccess("10.1.2.3", "Bearer tok2", "tok").status, 401);
  EXPECT_EQ(CheckMutatingAccess("10.1.2.3", "Bearer to", "tok").status, 401);
  EXPECT_EQ(CheckMutatingAccess("10.1.2.3", "Bearer", "tok").status, 401);
  EXPECT_EQ(CheckMutatingAccess("10.1.2.3", "tok", "tok").status, 401);
}

TEST(AdminAccessTest, TokensEqualComparesWholeTokens) {
  EXPECT_TRUE(TokensEqual("abc", "abc"));
  EXPECT_TRUE(TokensEqual("", ""));
  EXPECT_FALSE(TokensEqual("abc", "abd"));
  EXPECT_FALSE(TokensEqual("abc", "ab"));
  EXPECT_FALSE(TokensEqual("ab", "abc"));
  EXPECT_FALSE(TokensEqual(std::string("a\0b", 3), "a"));
}

TEST(AdminConfigTest, ParseListenAddress) {
  auto address = ParseListenAddress("127.0.0.1:9464");
  ASSERT_TRUE(address.ok());
  EXPECT_EQ(address->host, "127.0.0.1");
  EXPECT_EQ(address->port, 9464);
  address = ParseListenAddress("[::1]:0");
  ASSERT_TRUE(address.ok());
  EXPECT_EQ(address->host, "::1");
  EXPECT_EQ(address->port, 0);
  EXPECT_EQ(ParseListenAddress("localhost:80")->host, "localhost");
  for (const char* bad : {"9464", ":9464", "host:", "host:65536", "host:-1", "host:12a", "::1:80",
                          "[::1]", "[::1]80", "host:1234567"}) {
    auto parsed = ParseListenAddress(bad);
    EXPECT_FALSE(parsed.ok()) << bad;
    EXPECT_NE(parsed.status().message().find(bad), std::string::npos) << bad;
  }
  EXPECT_FALSE(AdminEnabled("off"));
  EXPECT_FALSE(AdminEnabled(""));
  EXPECT_TRUE(AdminEnabled("127.0.0.1:0"));
}

TEST(AdminConfigTest, ReadTokenFileTakesTheFirstLineTrimmed) {
  testing::TempDir dir;
  ASSERT_TRUE(testing::WriteFile(dir.File("token"), "  abc123 \nsecond line\n"));
  EXPECT_EQ(*ReadTokenFile(dir.File("token")), "abc123");
  ASSERT_TRUE(testing::WriteFile(dir.File("empty"), "\n"));
  auto empty = ReadTokenFile(dir.File("empty"));
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("admin.token_file"), std::string::npos);
  EXPECT_FALSE(ReadTokenFile(dir.File("missing")).ok());
}

TEST(AdminConfigTest, AdminSectionIsReadAndChecked) {
  testing::TempDir dir;
  const std::string path = dir.File("vsieve.toml");
  ASSERT_TRUE(testing::WriteFile(path, R"([admin]
listen = "127.0.0.1:0"
token_file = "/etc/vsieve/token"
address_file = "run/admin.address"
)"));
  FilterConfig config;
  EXPECT_FALSE(config.admin.listen_set);
  EXPECT_EQ(config.admin.listen, "127.0.0.1:9464");
  ASSERT_TRUE(LoadFilterConfig(path, &config).ok());
  EXPECT_EQ(config.admin.listen, "127.0.0.1:0");
  EXPECT_TRUE(config.admin.listen_set);
  EXPECT_EQ(config.admin.token_file, "/etc/vsieve/token");
  EXPECT_EQ(config.admin.address_file, "run/admin.address");

  ASSERT_TRUE(testing::WriteFile(path, "[admin]\nlisten = \"nowhere\"\n"));
  common::Status status = LoadFilterConfig(path, &config);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("admin.listen"), std::string::npos) << status.message();

  ASSERT_TRUE(testing::WriteFile(path, "[admin]\nport = 9\n"));
  status = LoadFilterConfig(path, &config);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("admin.port"), std::string::npos) << status.message();

  FilterConfig off;
  ASSERT_TRUE(testing::WriteFile(path, "[admin]\nlisten = \"off\"\n"));
  ASSERT_TRUE(LoadFilterConfig(path, &off).ok());
  EXPECT_FALSE(AdminEnabled(off.admin.listen));
}

}  // namespace
}  // namespace vsieve::daemon
