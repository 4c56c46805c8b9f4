// A real Prometheus (Debian `prometheus`) on loopback scrapes the daemon's /metrics, and a series
// is read back through its query API. Slow: Prometheus takes about 6 s to send its first scrape.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include "storage/table_store.h"
#include "tests/daemon/admin_test_util.h"
#include "tests/daemon/daemon_process.h"
#include "tests/support/test_env.h"

namespace vsieve::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// The value of the first sample of an instant query, or nullopt (no result yet, or no server).
std::optional<double> QueryScalar(const std::string& prometheus, const std::string& query) {
  auto client = MakeClient(prometheus);
  auto result = client->Get("/api/v1/query", httplib::Params{{"query", query}}, {});
  if (!result || result->status != 200) return std::nullopt;
  const json body = json::parse(result->body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object() || body.value("status", "") != "success") return std::nullopt;
  const json& samples = body["data"]["result"];
  if (!samples.is_array() || samples.empty()) return std::nullopt;
  return std::stod(samples[0]["value"][1].get<std::string>());
}

TEST(PrometheusSlowTest, ARealPrometheusScrapesTheDaemon) {
  VSIEVE_REQUIRE_FFMPEG();
  if (!HaveProgram("prometheus")) GTEST_SKIP() << "prometheus (Debian package) not installed";
  TempDir dir;
  const std::string url = "sqlite://" + dir.File("vsieve.db");
  {
    auto store = storage::TableStore::Open(url);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    const std::vector<storage::InputRow> rows = RowsFor(MakeTinyClips(dir.path(), 3), "p");
    ASSERT_EQ(rows.size(), 3U);
    ASSERT_TRUE((*store)->Import(rows).ok());
  }
  AdminDaemon daemon(dir, url);
  const std::string target = daemon.WaitForAddress();
  ASSERT_FALSE(target.empty()) << daemon.Log();
  // Every row written before the first scrape, so vsieve_rows (cached for 5 s) is final too.
  const auto written = std::chrono::steady_clock::now() + 60s;
  while (HttpGet(target, "/v1/status").Json().value("remaining", -1) != 0 &&
         std::chrono::steady_clock::now() < written) {
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(HttpGet(target, "/v1/status").Json().value("remaining", -1), 0) << daemon.Log();

  const int port = FreeLoopbackPort();
  ASSERT_GT(port, 0);
  const std::string prometheus = "127.0.0.1:" + std::to_string(port);
  const std::string config = dir.File("prometheus.yml");
  ASSERT_TRUE(WriteFile(config,
                        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                        "scrape_configs: [{job_name: vsieve, static_configs: [{targets: ['" +
                            target + "']}]}]\n"));
  ChildProcess server(
      {"prometheus", "--config.file=" + config, "--web.listen-address=" + prometheus,
       "--storage.tsdb.path=" + dir.File("tsdb"), "--web.enable-lifecycle", "--log.level=warn"},
      dir.File("prometheus.log"));
  ASSERT_TRUE(server.started());

  // The first sample arrives about 6 s after start (service discovery's first update).
  std::optional<double> processed;
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < until) {
    processed = QueryScalar(prometheus, "sum(vsieve_videos_processed_total)");
    if (processed.has_value() && *processed >= 3) break;
    std::this_thread::sleep_for(250ms);
  }
  ASSERT_TRUE(processed.has_value()) << ReadFile(dir.File("prometheus.log")) << daemon.Log();
  EXPECT_EQ(*processed, 3.0);
  EXPECT_EQ(QueryScalar(prometheus, R"(up{job="vsieve"})"), 1.0);
  EXPECT_EQ(QueryScalar(prometheus, R"(vsieve_rows{state="done"})"), 3.0);
  EXPECT_TRUE(QueryScalar(prometheus, R"(vsieve_stage_duration_seconds_count{stage="decode"})")
                  .has_value());

  auto quit = MakeClient(prometheus)->Post("/-/quit");
  ASSERT_TRUE(quit);
  EXPECT_EQ(quit->status, 200);
  EXPECT_EQ(server.Wait(30s), 0) << ReadFile(dir.File("prometheus.log"));
  daemon.process().Signal(SIGTERM);
  EXPECT_EQ(daemon.process().Wait(20s), 0) << daemon.Log();
}

}  // namespace
}  // namespace vsieve::testing
