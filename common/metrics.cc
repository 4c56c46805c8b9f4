#include "common/metrics.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>

namespace vsieve::common {
namespace {

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[40];
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    std::snprintf(buffer, sizeof(buffer), "%.0f", value);
  } else {
    std::snprintf(buffer, sizeof(buffer), "%.10g", value);
  }
  return buffer;
}

std::string EscapeHelp(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

Labels Sorted(Labels labels) {
  std::sort(labels.begin(), labels.end());
  return labels;
}

Labels With(Labels labels, const std::string& name, const std::string& value) {
  labels.emplace_back(name, value);
  return labels;
}

}  // namespace

void Counter::Inc(double amount) { value_.fetch_add(amount, std::memory_order_relaxed); }

void Gauge::Add(double amount) { value_.fetch_add(amount, std::memory_order_relaxed); }

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {
  assert(std::is_sorted(bounds_.begin(), bounds_.end()));
}

void Histogram::Observe(double value) {
  const auto bucket = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) -
                                          bounds_.begin());
  std::lock_guard lock(mutex_);
  ++counts_[bucket];
  sum_ += value;
  ++count_;
}

Histogram::Snapshot Histogram::Take() const {
  Snapshot snapshot;
  snapshot.bounds = bounds_;
  std::lock_guard lock(mutex_);
  uint64_t running = 0;
  for (uint64_t n : counts_) {
    running += n;
    snapshot.cumulative.push_back(running);
  }
  snapshot.sum = sum_;
  snapshot.count = count_;
  return snapshot;
}

std::vector<double> DurationBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
          1,     2.5,    5,     10,   30,    60,   120, 300,  600};
}

std::vector<double> ByteBuckets() {
  std::vector<double> bounds;
  for (double b = 4096; b <= 16.0 * 1024 * 1024 * 1024; b *= 4) bounds.push_back(b);
  return bounds;
}

std::string FormatLabels(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ',';
    out += labels[i].first;
    out += "=\"";
    for (char c : labels[i].second) {
      if (c == '\\') {
        out += "\\\\";
      } else if (c == '"') {
        out += "\\\"";
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out += c;
      }
    }
    out += '"';
  }
  return out + "}";
}

MetricsRegistry& MetricsRegistry::Global() {
  static MetricsRegistry* registry = new MetricsRegistry();  // never destroyed: used at exit
  return *registry;
}

MetricsRegistry::Family& MetricsRegistry::FamilyLocked(const std::string& name,
                                                       const std::string& help,
                                                       const std::string& type) {
  auto [it, inserted] = families_.try_emplace(name);
  if (inserted) {
    it->second.help = help;
    it->second.type = type;
  }
  assert(it->second.type == type && "metric family registered with two types");
  return it->second;
}

Counter& MetricsRegistry::GetCounter(const std::string& name, const std::string& help,
                                     Labels labels) {
  std::lock_guard lock(mutex_);
  auto& slot = FamilyLocked(name, help, "counter").counters[Sorted(std::move(labels))];
  if (slot == nullptr) slot = std::make_unique<Counter>();
  return *slot;
}

Gauge& MetricsRegistry::GetGauge(const std::string& name, const std::string& help, Labels labels) {
  std::lock_guard lock(mutex_);
  auto& slot = FamilyLocked(name, help, "gauge").gauges[Sorted(std::move(labels))];
  if (slot == nullptr) slot = std::make_unique<Gauge>();
  return *slot;
}

Histogram& MetricsRegistry::GetHistogram(const std::string& name, const std::string& help,
                                         const std::vector<double>& bounds, Labels labels) {
  std::lock_guard lock(mutex_);
  auto& slot = FamilyLocked(name, help, "histogram").histograms[Sorted(std::move(labels))];
  if (slot == nullptr) slot = std::make_unique<Histogram>(bounds);
  return *slot;
}

int MetricsRegistry::AddCollector(const std::string& name, const std::string& help,
                                  const std::string& type, Collector collector) {
  std::lock_guard lock(mutex_);
  const int id = next_collector_id_++;
  collectors_[id] = CollectorEntry{name, help, type, std::move(collector)};
  return id;
}

void MetricsRegistry::RemoveCollector(int id) {
  std::lock_guard lock(mutex_);
  collectors_.erase(id);
}

std::string MetricsRegistry::Render() const {
  // Families by name: help, type and their sample lines. Registered metrics are read under the
  // lock; collectors are copied out and called without it (they may take locks of their own).
  struct Out {
    std::string help;
    std::string type;
    std::string lines;
  };
  std::map<std::string, Out> out;
  std::vector<CollectorEntry> collectors;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [name, family] : families_) {
      Out& o = out[name];
      o.help = family.help;
      o.type = family.type;
      for (const auto& [labels, counter] : family.counters) {
        o.lines += name + FormatLabels(labels) + ' ' + FormatValue(counter->value()) + '\n';
      }
      for (const auto& [labels, gauge] : family.gauges) {
        o.lines += name + FormatLabels(labels) + ' ' + FormatValue(gauge->value()) + '\n';
      }
      for (const auto& [labels, histogram] : family.histograms) {
        const Histogram::Snapshot s = histogram->Take();
        for (size_t i = 0; i <= s.bounds.size(); ++i) {
          const std::string le = i < s.bounds.size() ? FormatValue(s.bounds[i]) : "+Inf";
          o.lines += name + "_bucket" + FormatLabels(Sorted(With(labels, "le", le))) + ' ' +
                     FormatValue(static_cast<double>(s.cumulative[i])) + '\n';
        }
        o.lines += name + "_sum" + FormatLabels(labels) + ' ' + FormatValue(s.sum) + '\n';
        o.lines += name + "_count" + FormatLabels(labels) + ' ' +
                   FormatValue(static_cast<double>(s.count)) + '\n';
      }
    }
    for (const auto& [id, entry] : collectors_) collectors.push_back(entry);
  }
  for (const CollectorEntry& entry : collectors) {
    Out& o = out[entry.name];
    if (o.type.empty()) {
      o.help = entry.help;
      o.type = entry.type;
    }
    for (const Sample& sample : entry.collector()) {
      o.lines +=
          entry.name + FormatLabels(Sorted(sample.labels)) + ' ' + FormatValue(sample.value) + '\n';
    }
  }
  std::string text;
  for (const auto& [name, o] : out) {
    if (o.lines.empty()) continue;
    text += "# HELP " + name + ' ' + EscapeHelp(o.help) + '\n';
    text += "# TYPE " + name + ' ' + o.type + '\n';
    text += o.lines;
  }
  return text;
}

}  // namespace vsieve::common
