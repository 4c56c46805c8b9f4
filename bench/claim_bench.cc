// Claims per second and claim latency (p50, p99) of the table stores, side by side: SQLite (one
// file in a temp folder) and PostgreSQL (a server started on loopback with initdb + pg_ctl, or
// --pg-url). A table of --rows rows (default 100,000) is imported once per store; then for each
// claimer count (default 1, 4, 16) that many threads, each with its own store connection (as
// separate daemons would have), claim one row at a time and complete it at once (a no-op
// analysis) for --seconds. Latency is the Claim() call alone.
//
//   build/release/bench/claim_bench [--rows 100000] [--seconds 3] [--claimers 1,4,16]
//                                   [--pg-url postgresql://...] [--only sqlite|postgres]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "storage/table_store.h"
#include "tests/support/postgres_server.h"
#include "tests/support/test_env.h"

namespace {

using Clock = std::chrono::steady_clock;
using vsieve::storage::InputRow;
using vsieve::storage::Lease;
using vsieve::storage::TableStore;

struct Result {
  int claimers = 0;
  int64_t claims = 0;
  double seconds = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  int errors = 0;
};

double Percentile(std::vector<double>& values, double p) {
  if (values.empty()) return 0;
  const size_t index = std::min(values.size() - 1, static_cast<size_t>(p * values.size()));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(index),
                   values.end());
  return values[index];
}

Result RunClaimers(const std::string& url, int claimers, double seconds) {
  std::vector<std::unique_ptr<TableStore>> stores;
  for (int i = 0; i < claimers; ++i) {
    auto store = TableStore::Open(url);
    if (!store.ok()) {
      std::fprintf(stderr, "open %s: %s\n", url.c_str(), store.status().ToString().c_str());
      std::exit(1);
    }
    stores.push_back(std::move(*store));
  }
  std::mutex mutex;
  std::vector<double> latencies;
  std::atomic<int64_t> claims{0};
  std::atomic<int> errors{0};
  const auto start = Clock::now();
  const auto deadline =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::thread> threads;
  for (int i = 0; i < claimers; ++i) {
    threads.emplace_back([&, i] {
      std::vector<double> mine;
      const std::string owner = "bench-" + std::to_string(i);
      while (Clock::now() < deadline) {
        const auto before = Clock::now();
        auto leases = stores[i]->Claim(owner, {}, 1, 60);
        const auto after = Clock::now();
        if (!leases.ok()) {
          ++errors;
          continue;
        }
        mine.push_back(std::chrono::duration<double, std::milli>(after - before).count());
        for (const Lease& lease : *leases) {
          ++claims;
          auto done = stores[i]->Complete(lease, "{}", true, "", "");
          if (!done.ok() || !*done) ++errors;
        }
      }
      std::lock_guard<std::mutex> lock(mutex);
      latencies.insert(latencies.end(), mine.begin(), mine.end());
    });
  }
  for (auto& thread : threads) thread.join();
  Result result;
  result.claimers = claimers;
  result.claims = claims.load();
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  result.p50_ms = Percentile(latencies, 0.50);
  result.p99_ms = Percentile(latencies, 0.99);
  result.errors = errors.load();
  return result;
}

void Import(const std::string& url, int rows) {
  auto store = TableStore::Open(url);
  if (!store.ok()) {
    std::fprintf(stderr, "open %s: %s\n", url.c_str(), store.status().ToString().c_str());
    std::exit(1);
  }
  const auto start = Clock::now();
  std::vector<InputRow> batch;
  for (int i = 0; i < rows; ++i) {
    InputRow row;
    row.video_id = "v" + std::to_string(i);
    row.oss_bucket = "bucket";
    row.video_path = "videos/v" + std::to_string(i) + ".mp4";
    batch.push_back(std::move(row));
    if (batch.size() == 10000 || i + 1 == rows) {
      auto imported = (*store)->Import(batch);
      if (!imported.ok()) {
        std::fprintf(stderr, "import: %s\n", imported.status().ToString().c_str());
        std::exit(1);
      }
      batch.clear();
    }
  }
  std::printf("  imported %d rows in %.1f s\n", rows,
              std::chrono::duration<double>(Clock::now() - start).count());
}

std::vector<int> ParseList(const std::string& text) {
  std::vector<int> values;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) values.push_back(std::atoi(item.c_str()));
  return values;
}

}  // namespace

int main(int argc, char** argv) {
  int rows = 100000;
  double seconds = 3.0;
  std::vector<int> claimers = {1, 4, 16};
  std::string pg_url;
  std::string only;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--rows") {
      rows = std::atoi(value.c_str());
    } else if (flag == "--seconds") {
      seconds = std::atof(value.c_str());
    } else if (flag == "--claimers") {
      claimers = ParseList(value);
    } else if (flag == "--pg-url") {
      pg_url = value;
    } else if (flag == "--only") {
      only = value;
    } else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  vsieve::testing::TempDir dir;
  std::unique_ptr<vsieve::testing::PostgresServer> server;
  std::vector<std::pair<std::string, std::string>> stores;
  if (only.empty() || only == "sqlite")
    stores.emplace_back("sqlite", "sqlite://" + dir.File("b.db"));
  if (only.empty() || only == "postgres") {
    if (pg_url.empty()) {
      std::string why;
      server = vsieve::testing::PostgresServer::Start(&why);
      if (server != nullptr) pg_url = server->CreateDatabase(&why);
      if (pg_url.empty()) std::fprintf(stderr, "postgres skipped: %s\n", why.c_str());
    }
    if (!pg_url.empty()) stores.emplace_back("postgres", pg_url);
  }
  std::printf("claim_bench: %d rows, %.1f s per run, one row per claim, no-op analysis\n", rows,
              seconds);
  std::vector<std::pair<std::string, Result>> results;
  for (const auto& [name, url] : stores) {
    std::printf("%s:\n", name.c_str());
    Import(url, rows);
    for (int k : claimers) {
      Result result = RunClaimers(url, k, seconds);
      std::printf(
          "  %2d claimers: %8.0f claims/s  p50 %7.2f ms  p99 %7.2f ms  (%lld claims, %d "
          "errors)\n",
          k, result.claims / result.seconds, result.p50_ms, result.p99_ms,
          static_cast<long long>(result.claims), result.errors);
      std::fflush(stdout);
      results.emplace_back(name, result);
    }
  }
  std::printf("\n| store | claimers | claims/s | p50 ms | p99 ms |\n|---|---|---|---|---|\n");
  for (const auto& [name, r] : results) {
    std::printf("| %s | %d | %.0f | %.2f | %.2f |\n", name.c_str(), r.claimers,
                r.claims / r.seconds, r.p50_ms, r.p99_ms);
  }
  for (const auto& [name, r] : results) {
    if (r.errors > 0 || r.claims == 0) return 1;
  }
  return 0;
}
