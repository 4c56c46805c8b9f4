#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace vsieve::common {

// Label pairs of one series, e.g. {{"stage", "decode"}}. Order does not matter: the registry
// sorts them by name.
using Labels = std::vector<std::pair<std::string, std::string>>;

// A monotonically increasing value (Prometheus counter). Lock-free; safe from any thread.
class Counter {
 public:
  void Inc(double amount = 1.0);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// A value that goes up and down (Prometheus gauge). Lock-free; safe from any thread.
class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double amount);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Observations counted into cumulative buckets (Prometheus histogram). `bounds` are the upper
// bounds, ascending; +Inf is implied. Observe() takes a short lock; safe from any thread.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Take() const;

 private:
  const std::vector<double> bounds_;
  mutable std::mutex mutex_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative; guarded by mutex_
  double sum_ = 0;                // guarded by mutex_
  uint64_t count_ = 0;            // guarded by mutex_
};

// Bucket bounds for durations in seconds, 1 ms to about 10 min.
std::vector<double> DurationBuckets();
// Bucket bounds for sizes in bytes, 4 KiB to 16 GiB by powers of 4.
std::vector<double> ByteBuckets();

// One value of a collected series: its labels and value.
struct Sample {
  Labels labels;
  double value = 0;
};

// The metrics of the process, rendered as Prometheus text format 0.0.4. Families are declared by
// name, help and type; a series is one label set of a family. Names follow Prometheus rules and
// the project's `vsieve_` namespace with the unit in the name (`_seconds`, `_bytes`, `_total`).
//
// Ownership: the registry owns every metric; the references it returns stay valid for the life
// of the registry (metrics are never removed). Collectors are callbacks that report values kept
// elsewhere (queue depths, rows by state); RemoveCollector() must be called before what they read
// is destroyed. Thread-safety: every method is safe from any thread; Render() calls collectors
// with the registry lock released.
class MetricsRegistry {
 public:
  // The process-wide registry used by the daemon.
  static MetricsRegistry& Global();

  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Returns the series of family `name` with `labels`, creating the family (with `help`) and the
  // series on first use. Asking for an existing name with another type is a programming error
  // (assert).
  Counter& GetCounter(const std::string& name, const std::string& help, Labels labels = {});
  Gauge& GetGauge(const std::string& name, const std::string& help, Labels labels = {});
  Histogram& GetHistogram(const std::string& name, const std::string& help,
                          const std::vector<double>& bounds, Labels labels = {});

  // Registers a callback that reports the current series of a gauge or counter family
  // (`type` is "gauge" or "counter"). Returns an id for RemoveCollector().
  using Collector = std::function<std::vector<Sample>()>;
  int AddCollector(const std::string& name, const std::string& help, const std::string& type,
                   Collector collector);
  void RemoveCollector(int id);

  // The whole registry as Prometheus text (families sorted by name, HELP and TYPE lines,
  // label values escaped). Never fails.
  std::string Render() const;

 private:
  struct Family {
    std::string help;
    std::string type;  // "counter", "gauge", "histogram"
    std::map<Labels, std::unique_ptr<Counter>> counters;
    std::map<Labels, std::unique_ptr<Gauge>> gauges;
    std::map<Labels, std::unique_ptr<Histogram>> histograms;
  };
  struct CollectorEntry {
    std::string name;
    std::string help;
    std::string type;
    Collector collector;
  };

  Family& FamilyLocked(const std::string& name, const std::string& help, const std::string& type);

  mutable std::mutex mutex_;
  std::map<std::string, Family> families_;    // guarded by mutex_
  std::map<int, CollectorEntry> collectors_;  // guarded by mutex_
  int next_collector_id_ = 1;                 // guarded by mutex_
};

// Formats one label set as Prometheus text: {a="x",b="y\"z"}; empty when there are no labels.
std::string FormatLabels(const Labels& labels);

}  // namespace vsieve::common
