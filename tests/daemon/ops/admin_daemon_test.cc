// The admin API end to end: the real `vsieve run` binary with its admin server on a free loopback
// port, driven over HTTP with httplib::Client as an operator's curl would.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "storage/table_store.h"
#include "tests/daemon/admin_test_util.h"
#include "tests/daemon/daemon_process.h"
#include "tests/support/postgres_server.h"
#include "tests/support/test_env.h"

namespace vsieve::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// Metrics the storage branches add (tiers, disk cache). The dashboard may use them before they
// exist in this build; every other name it uses must appear in a live /metrics.
const std::set<std::string> kStorageMetrics = {
    "vsieve_storage_requests_total", "vsieve_storage_bytes_total", "vsieve_cache_requests_total",
    "vsieve_cache_bytes", "vsieve_cache_evictions_total"};

class AdminDaemonTest : public SqliteStoreTest {
 protected:
  // Polls GET /v1/status until nothing is pending or running and `total` rows exist.
  bool WaitAllFinished(const std::string& address, int total,
                       std::chrono::duration<double> timeout = 90s) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      const json status = HttpGet(address, "/v1/status").Json();
      if (status.is_object() && status.value("total", -1) == total &&
          status.value("remaining", -1) == 0) {
        return true;
      }
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  // Runs the daemon over three good clips and a missing file, and returns /metrics once every
  // row is written.
  std::string MetricsAfterARun() {
    std::vector<std::string> paths = MakeTinyClips(dir_.path(), 3);
    EXPECT_EQ(paths.size(), 3U);
    paths.push_back(dir_.File("missing.mp4"));
    EXPECT_TRUE(store_->Import(RowsFor(paths, "m")).ok());
    AdminDaemon daemon(dir_, url_);
    const std::string address = daemon.WaitForAddress();
    EXPECT_FALSE(address.empty()) << daemon.Log();
    if (address.empty()) return "";
    EXPECT_TRUE(WaitAllFinished(address, 4)) << daemon.Log();
    const HttpReply metrics = HttpGet(address, "/metrics");
    EXPECT_EQ(metrics.status, 200);
    daemon.process().Signal(SIGTERM);
    EXPECT_EQ(daemon.process().Wait(20s), 0) << daemon.Log();
    return metrics.body;
  }

  // POST a video, wait for its result over GET, submit it again, requeue it (the API's round
  // trip on whichever store url_ names).
  void SubmitAndReadBack() {
    const std::vector<std::string> clips = MakeTinyClips(dir_.path(), 1);
    ASSERT_EQ(clips.size(), 1U);
    AdminDaemon daemon(dir_, url_);
    ASSERT_TRUE(daemon.WaitReady()) << daemon.Log();
    const std::string address = daemon.WaitForAddress();
    EXPECT_NE(daemon.Log().find("admin: listening on http://" + address), std::string::npos);
    EXPECT_EQ(HttpGet(address, "/healthz").status, 200);

    const json row = {{"video_id", "api-1"}, {"video_path", clips[0]}, {"video_tag", "t"}};
    HttpReply reply = HttpPost(address, "/v1/videos", row.dump());
    ASSERT_EQ(reply.status, 201) << reply.body;
    EXPECT_EQ(reply.Json()["state"], "pending");
    EXPECT_EQ(reply.Json()["table"], "default");

    json video;
    const auto until = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < until) {
      reply = HttpGet(address, "/v1/videos/api-1");
      ASSERT_EQ(reply.status, 200) << reply.body;
      video = reply.Json();
      if (video["state"] == "done" || video["state"] == "failed") break;
      std::this_thread::sleep_for(100ms);
    }
    ASSERT_EQ(video["state"], "done") << video.dump() << "\n" << daemon.Log();
    EXPECT_EQ(video["attempts"], 1);
    EXPECT_EQ(video["result"]["video_id"], "api-1");
    EXPECT_EQ(video["result"]["video_tag"], "t");
    EXPECT_EQ(video["result"]["result_info"]["succeed"], "true");
    EXPECT_EQ(video["result"]["info"]["video_meta"]["width"], 160);

    // Submitting it again reports the finished row; requeue=1 processes it again.
    reply = HttpPost(address, "/v1/videos", row.dump());
    EXPECT_EQ(reply.status, 200) << reply.body;
    EXPECT_EQ(reply.Json()["state"], "done");
    reply = HttpPost(address, "/v1/videos?requeue=1", row.dump());
    EXPECT_EQ(reply.status, 202) << reply.body;
    ASSERT_TRUE(WaitAllFinished(address, 1));
    EXPECT_EQ(HttpGet(address, "/v1/videos/api-1").Json()["state"], "done");

    EXPECT_EQ(HttpGet(address, "/v1/videos/unknown").status, 404);
    daemon.process().Signal(SIGTERM);
    EXPECT_EQ(daemon.process().Wait(20s), 0) << daemon.Log();
    EXPECT_FALSE(std::filesystem::exists(daemon.address_file()));
  }
};

TEST_F(AdminDaemonTest, SubmitAVideoThroughTheApiAndReadItsResult) { SubmitAndReadBack(); }

// The same API on a PostgreSQL store (a server the test starts; skipped where PostgreSQL's server
// programs are absent).
class AdminDaemonPostgresTest : public AdminDaemonTest {
 protected:
  void SetUp() override {
    VSIEVE_REQUIRE_FFMPEG();
    std::string why;
    VSIEVE_REQUIRE_POSTGRES();
    PostgresServer* server = PostgresServer::Shared(&why);
    ASSERT_NE(server, nullptr) << why;
    url_ = server->CreateDatabase(&why);
    ASSERT_FALSE(url_.empty()) << why;
    auto store = storage::TableStore::Open(url_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }
};

TEST_F(AdminDaemonPostgresTest, SubmitAVideoThroughTheApiAndReadItsResult) { SubmitAndReadBack(); }

TEST_F(AdminDaemonTest, MetricsAfterProcessingPassPromtool) {
  const std::string metrics = MetricsAfterARun();
  ASSERT_FALSE(metrics.empty());
  EXPECT_EQ(SampleValue(metrics, R"(vsieve_videos_processed_total{code="OK",outcome="done"})"), 3.0)
      << metrics;
  EXPECT_EQ(
      SampleValue(metrics,
                  R"(vsieve_videos_processed_total{code="OBJECT_NOT_FOUND",outcome="failed"})"),
      1.0)
      << metrics;
  for (const char* stage : {"fetch", "decode", "regions", "heads", "write"}) {
    const std::string series =
        std::string(R"(vsieve_stage_duration_seconds_count{stage=")") + stage + "\"}";
    ASSERT_TRUE(SampleValue(metrics, series).has_value()) << series << "\n" << metrics;
    EXPECT_GE(*SampleValue(metrics, series), 3.0) << series;
  }
  EXPECT_EQ(SampleValue(metrics, R"(vsieve_rows{state="done"})"), 3.0) << metrics;
  EXPECT_EQ(SampleValue(metrics, R"(vsieve_rows{state="failed"})"), 1.0) << metrics;
  EXPECT_EQ(SampleValue(metrics, R"(vsieve_queue_capacity_items{queue="fetch"})"), 8.0);
  EXPECT_EQ(SampleValue(metrics, R"(vsieve_model_instances{device="cpu:0",model="video_filter"})"),
            2.0);
  EXPECT_EQ(
      SampleValue(metrics, R"(vsieve_model_borrows_total{device="cpu:0",model="video_filter"})"),
      3.0);
  EXPECT_GT(SampleValue(metrics, "process_resident_memory_bytes").value_or(0), 1e6);
  EXPECT_GT(SampleValue(metrics, "process_open_fds").value_or(0), 2);
  EXPECT_GT(SampleValue(metrics, "process_start_time_seconds").value_or(0), 1.6e9);
  EXPECT_TRUE(SampleValue(metrics, "process_cpu_seconds_total").has_value());
  for (const char* name : {"vsieve_lease_heartbeats_total", "vsieve_lease_lost_total",
                           "vsieve_retries_total", "vsieve_videos_in_flight"}) {
    EXPECT_TRUE(SampleValue(metrics, name).has_value()) << name;
  }
  if (!HaveProgram("promtool")) GTEST_SKIP() << "promtool (Debian prometheus) not installed";
  std::string output;
  EXPECT_EQ(PromtoolCheckMetrics(metrics, &output), 0) << output;
  EXPECT_EQ(output, "") << metrics;
}

TEST_F(AdminDaemonTest, DashboardUsesOnlyMetricsThatExist) {
  std::ifstream in(SourceDir() + "/etc/grafana/vsieve.json");
  ASSERT_TRUE(in) << "etc/grafana/vsieve.json missing";
  const json dashboard = json::parse(in, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(dashboard.is_object()) << "etc/grafana/vsieve.json is not valid JSON";
  EXPECT_GE(dashboard.value("schemaVersion", 0), 36);
  ASSERT_TRUE(dashboard["__inputs"].is_array());
  EXPECT_EQ(dashboard["__inputs"][0]["name"], "DS_PROMETHEUS");

  // Every query of every panel and template variable.
  std::vector<std::string> exprs;
  std::set<int> ids;
  std::set<std::string> titles;
  for (const json& panel : dashboard["panels"]) {
    EXPECT_TRUE(ids.insert(panel["id"].get<int>()).second) << "duplicate panel id " << panel["id"];
    if (panel["type"] == "row") continue;
    titles.insert(panel["title"].get<std::string>());
    EXPECT_EQ(panel["datasource"]["uid"], "${DS_PROMETHEUS}") << panel["title"];
    ASSERT_TRUE(panel["targets"].is_array() && !panel["targets"].empty()) << panel["title"];
    for (const json& target : panel["targets"]) exprs.push_back(target["expr"]);
  }
  for (const json& variable : dashboard["templating"]["list"]) {
    exprs.push_back(variable["definition"]);
  }
  for (const char* title : {"Throughput (videos/min)", "Errors by code (videos/min)",
                            "Stage latency p50 / p95 / p99", "Queue depth vs capacity",
                            "Cache hit ratio", "Storage bytes by tier", "Model instances busy"}) {
    EXPECT_EQ(titles.count(title), 1U) << title;
  }

  const std::string metrics = MetricsAfterARun();
  ASSERT_FALSE(metrics.empty());
  const std::set<std::string> exported = SampleNames(metrics);
  const std::regex name(R"((^|[^A-Za-z0-9_:$])((vsieve|process)_[a-z0-9_]+))");
  std::set<std::string> used;
  for (const std::string& expr : exprs) {
    bool any = false;
    for (auto it = std::sregex_iterator(expr.begin(), expr.end(), name);
         it != std::sregex_iterator(); ++it) {
      used.insert((*it)[2]);
      any = true;
    }
    EXPECT_TRUE(any) << "no vsieve_/process_ metric in: " << expr;
  }
  for (const std::string& metric : used) {
    EXPECT_TRUE(exported.count(metric) == 1 || kStorageMetrics.count(metric) == 1)
        << metric << " is used by the dashboard but not exported";
  }
  EXPECT_GE(used.size(), 15U);
}

TEST_F(AdminDaemonTest, ReadyzIs503WhileDraining) {
  // Videos that take a while each (640x360, 8 s), so the drain lasts long enough to be seen.
  const std::string source = dir_.File("slow.mp4");
  ASSERT_TRUE(Ffmpeg({"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-t", "8", "-pix_fmt",
                      "yuv420p", source}));
  ASSERT_TRUE(store_->Import(RowsFor(std::vector<std::string>(12, source), "slow")).ok());
  AdminDaemon daemon(dir_, url_, {"--grace-seconds", "60"});
  ASSERT_TRUE(daemon.WaitReady()) << daemon.Log();
  const std::string address = daemon.WaitForAddress();
  auto until = std::chrono::steady_clock::now() + 30s;
  while (HttpGet(address, "/v1/status").Json()["by_state"].value("running", 0) < 2 &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(20ms);
  }
  daemon.process().Signal(SIGTERM);
  HttpReply reply;
  until = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < until) {
    reply = HttpGet(address, "/readyz");
    if (reply.status != 200) break;
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(reply.status, 503) << reply.body << "\n" << daemon.Log();
  EXPECT_EQ(reply.Json()["status"], "draining") << reply.body;
  EXPECT_EQ(HttpGet(address, "/healthz").status, 200);
  daemon.process().Signal(SIGTERM);  // cut the grace short
  EXPECT_EQ(daemon.process().Wait(20s), 0) << daemon.Log();
}

TEST_F(AdminDaemonTest, TokenFileFromTheConfigGuardsPost) {
  ASSERT_TRUE(WriteFile(dir_.File("token"), "t0ken-from-file\n"));
  const std::string config = dir_.File("vsieve.toml");
  ASSERT_TRUE(WriteFile(
      config, "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"" + dir_.File("token") + "\"\n"));
  AdminDaemon daemon(dir_, url_, {"--config", config});
  const std::string address = daemon.WaitForAddress();
  ASSERT_FALSE(address.empty()) << daemon.Log();
  const std::string body = R"({"video_id": "t1", "video_path": "/nonexistent.mp4"})";
  HttpReply reply = HttpPost(address, "/v1/videos", body);
  EXPECT_EQ(reply.status, 401) << reply.body;
  reply = HttpPost(address, "/v1/videos", body, {{"Authorization", "Bearer nope"}});
  EXPECT_EQ(reply.status, 401) << reply.body;
  reply = HttpPost(address, "/v1/videos", body, {{"Authorization", "Bearer t0ken-from-file"}});
  EXPECT_EQ(reply.status, 201) << reply.body;
  daemon.process().Signal(SIGTERM);
  EXPECT_EQ(daemon.process().Wait(20s), 0) << daemon.Log();
}

TEST_F(AdminDaemonTest, AnEmptyTokenFileStopsTheDaemon) {
  ASSERT_TRUE(WriteFile(dir_.File("token"), "\n"));
  AdminDaemon daemon(dir_, url_, {"--admin-token-file", dir_.File("token")});
  EXPECT_EQ(daemon.process().Wait(20s), 2) << daemon.Log();
  EXPECT_NE(daemon.Log().find("admin.token_file"), std::string::npos) << daemon.Log();
}

TEST_F(AdminDaemonTest, AnExplicitAddressInUseStopsTheDaemon) {
  // Hold a loopback port.
  const int holder = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(holder, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(holder, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(holder, 1), 0);
  socklen_t length = sizeof address;
  ASSERT_EQ(::getsockname(holder, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const std::string taken = "127.0.0.1:" + std::to_string(ntohs(address.sin_port));
  AdminDaemon daemon(dir_, url_, {"--admin-listen", taken});
  EXPECT_EQ(daemon.process().Wait(20s), 2) << daemon.Log();
  EXPECT_NE(daemon.Log().find(taken), std::string::npos) << daemon.Log();
  ::close(holder);
}

TEST_F(AdminDaemonTest, AdminOffStartsNoServer) {
  AdminDaemon daemon(dir_, url_, {"--admin-listen", "off"});
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (daemon.Log().find("run: owner") == std::string::npos &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_NE(daemon.Log().find("admin: off"), std::string::npos) << daemon.Log();
  EXPECT_FALSE(std::filesystem::exists(daemon.address_file()));
  daemon.process().Signal(SIGTERM);
  EXPECT_EQ(daemon.process().Wait(20s), 0) << daemon.Log();
}

}  // namespace
}  // namespace vsieve::testing
