// The disk cache's hit and promote paths in MB/s (Google Benchmark).
//
//   build/release/bench/cache_bench [--benchmark_filter=...]
//
// VSIEVE_BENCH_DIR picks the folder the cache lives in (default: the system temp folder); the
// promote path includes an fsync of every file and of its folder, so the figure depends on that
// file system. Sizes: 1, 16 and 64 MiB objects.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "storage/disk_cache.h"
#include "storage/tiered_reader.h"

namespace vsieve::storage {
namespace {

// Serves every key with the same bytes through the sink, as a remote tier would after its
// transport: Reserve from the size, then 64 KiB writes.
class MemoryTier : public Tier {
 public:
  explicit MemoryTier(int64_t size) : bytes_(static_cast<size_t>(size), 'v') {}
  const std::string& name() const override { return name_; }
  std::string_view source_tier() const override { return "object"; }
  common::StatusOr<TierObject> Fetch(const ObjectRef&, DownloadSink* sink) override {
    VSIEVE_RETURN_IF_ERROR(sink->Reserve(static_cast<int64_t>(bytes_.size())));
    constexpr size_t kChunk = 64 * 1024;
    for (size_t offset = 0; offset < bytes_.size(); offset += kChunk) {
      VSIEVE_RETURN_IF_ERROR(
          sink->Write(bytes_.data() + offset, std::min(kChunk, bytes_.size() - offset)));
    }
    TierObject object;
    object.size_bytes = static_cast<int64_t>(bytes_.size());
    return object;
  }

 private:
  const std::string name_ = "memory";
  const std::string bytes_;
};

std::string BenchDir() {
  const char* base = std::getenv("VSIEVE_BENCH_DIR");
  std::string templ =
      (std::filesystem::path(base != nullptr ? base
                                             : std::filesystem::temp_directory_path().string()) /
       "vsieve-cache-bench-XXXXXX")
          .string();
  if (::mkdtemp(templ.data()) == nullptr) std::abort();
  return templ;
}

// A TieredReader over one MemoryTier behind a fresh cache of `max_bytes`.
struct Setup {
  Setup(int64_t object_size, int64_t max_bytes) : dir(BenchDir()) {
    auto opened = DiskCache::Open(dir + "/cache", max_bytes);
    if (!opened.ok()) std::abort();
    cache = *opened;
    std::vector<std::unique_ptr<Tier>> tiers;
    tiers.push_back(std::make_unique<MemoryTier>(object_size));
    reader = std::make_unique<TieredReader>(std::move(tiers), cache);
  }
  ~Setup() {
    reader.reset();
    cache.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::string dir;
  std::shared_ptr<DiskCache> cache;
  std::unique_ptr<TieredReader> reader;
};

// Fetch of a cached object: look-up, pin, recency (access time), unpin. No bytes are read, so
// MB/s here is the object's size over the time to hand out its path.
void BM_CacheHit(benchmark::State& state) {
  const int64_t size = state.range(0) << 20;
  Setup setup(size, 4 * size);
  const ObjectRef ref{"bench", "hit.mp4"};
  if (!setup.reader->Fetch(ref).ok()) std::abort();
  for (auto _ : state) {
    auto got = setup.reader->Fetch(ref);
    if (!got.ok() || !got->cache_hit) std::abort();
    benchmark::DoNotOptimize(got->pin);
  }
  state.SetBytesProcessed(state.iterations() * size);
}
BENCHMARK(BM_CacheHit)->Arg(1)->Arg(16)->Arg(64)->UseRealTime();

// A hit plus reading the whole file (from the page cache, as a decoder reading a file just
// fetched would): what a consumer of the hit path sees.
void BM_CacheHitAndRead(benchmark::State& state) {
  const int64_t size = state.range(0) << 20;
  Setup setup(size, 4 * size);
  const ObjectRef ref{"bench", "hit.mp4"};
  if (!setup.reader->Fetch(ref).ok()) std::abort();
  std::vector<char> buffer(1 << 20);
  for (auto _ : state) {
    auto got = setup.reader->Fetch(ref);
    if (!got.ok()) std::abort();
    const int fd = ::open(got->local_path.c_str(), O_RDONLY | O_CLOEXEC);
    int64_t total = 0;
    for (ssize_t n; (n = ::read(fd, buffer.data(), buffer.size())) > 0;) total += n;
    ::close(fd);
    if (total != size) std::abort();
  }
  state.SetBytesProcessed(state.iterations() * size);
}
BENCHMARK(BM_CacheHitAndRead)->Arg(1)->Arg(16)->Arg(64)->UseRealTime();

// A miss promoted from the tier: reserve, write through the sink into .partial, fsync, rename,
// fsync the folder, pin. The cache holds two objects, so each promote also evicts one.
void BM_Promote(benchmark::State& state) {
  const int64_t size = state.range(0) << 20;
  Setup setup(size, 2 * size);
  int64_t n = 0;
  for (auto _ : state) {
    auto got = setup.reader->Fetch(ObjectRef{"bench", "promote/" + std::to_string(n++)});
    if (!got.ok() || got->cache_hit) std::abort();
  }
  state.SetBytesProcessed(state.iterations() * size);
}
BENCHMARK(BM_Promote)->Arg(1)->Arg(16)->Arg(64)->UseRealTime();

}  // namespace
}  // namespace vsieve::storage

BENCHMARK_MAIN();
