#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"

namespace vsieve::models {

// A place where model instances run: "cpu:N", "cuda:N" or "npu:N" (DESIGN.md, "Models and
// devices").
struct Device {
  enum class Kind { kCpu, kCuda, kNpu };
  Kind kind = Kind::kCpu;
  int index = 0;
  std::string name = "cpu:0";  // as written in the config
};

// Parses a device string. Only "cpu:N" is usable in this build: "cuda:N" and "npu:N" are
// kInvalidArgument saying that the backend is not compiled in (never a silent CPU fallback);
// anything else is kInvalidArgument naming the string. Pure; thread-safe.
common::StatusOr<Device> ParseDevice(const std::string& text);

// Per-device resource budgets shared by several pools (Triton's rate-limiter resources): each
// busy instance of a pool holds its pool's `cost` on its device, and a borrow waits until the
// device has room for it, so two heavy models do not run at once on a device whose budget is
// smaller than their sum.
//
// Ownership: shared (std::shared_ptr) by the pools that use it. Thread-safety: every method is
// safe from any thread. Listeners are called after each Release(), without the budget lock; a
// listener must not call RemoveListener().
class DeviceBudgets {
 public:
  // Budgets by device name ("cpu:0"); a device not listed, or listed with 0, is unlimited.
  explicit DeviceBudgets(std::map<std::string, double> budgets);

  // The budget of `device`; 0 = unlimited.
  double budget(const std::string& device) const;
  // What busy instances hold on `device` now.
  double used(const std::string& device) const;

  // Takes `cost` on `device` when it fits (used + cost <= budget); a cost of 0 always fits.
  bool TryAcquire(const std::string& device, double cost);
  // Gives `cost` back and calls the listeners.
  void Release(const std::string& device, double cost);

  // A callback run after every Release() (pools wake their waiters). Returns an id.
  int AddListener(std::function<void()> listener);
  // Removes a listener; when it returns, the listener is not running and will not run again.
  void RemoveListener(int id);

 private:
  const std::map<std::string, double> budgets_;
  mutable std::mutex mutex_;
  std::map<std::string, double> used_;              // guarded by mutex_
  std::mutex listeners_mutex_;                      // held while listeners run
  std::map<int, std::function<void()>> listeners_;  // guarded by listeners_mutex_
  int next_listener_ = 1;                           // guarded by listeners_mutex_
};

// How a pool spreads instances over devices.
struct PoolOptions {
  std::string model = "model";       // the "model" label of metrics, and context in errors
  std::vector<std::string> devices;  // "cpu:0", ...
  // Relative compute per device (seed 000: uneven hardware), > 0; empty = all 1. A device gets
  // max(1, round(instances * weight / largest weight)) instances, and a borrow prefers the device
  // with the least load per unit of weight: (busy + 1) / weight.
  std::vector<double> weights;
  int instances = 1;                       // instances on the device with the largest weight
  double cost = 0;                         // budget one busy instance holds on its device; 0 = none
  std::shared_ptr<DeviceBudgets> budgets;  // null = no budgets
};

// Counters of one device's instances, for metrics. A copy; consistent at the time it was taken.
struct DeviceCounters {
  std::string device;
  int instances = 0;
  int busy = 0;                   // instances lent out now
  int64_t borrows = 0;            // successful Borrow() calls
  int64_t waits = 0;              // borrows that had to wait for a free instance
  int64_t timeouts = 0;           // Borrow() calls that gave up (counted on the first device)
  double wait_seconds_total = 0;  // time spent waiting by the borrows counted in `waits`
  double weight = 1;              // from PoolOptions::weights
  int64_t budget_waits = 0;       // borrows that waited while an instance was free but its
                                  // device's budget was not (timeouts: on the first device)
};

// A pool of exclusive model instances, Triton style: instances per device (weighted), each used
// by one thread at a time, optionally under per-device budgets shared with other pools. A worker
// borrows an instance (RAII lease, with a timeout), uses it, and the lease gives it back on
// destruction.
//
// Metrics: the pool records vsieve_model_borrow_wait_seconds{model,device}, a histogram of every
// successful borrow's wait (0 included), in common::MetricsRegistry::Global(). Instance, busy,
// borrow, wait and timeout counts are in Counters(), which the daemon exports
// (daemon/pipeline/daemon_metrics.h: vsieve_model_instances, vsieve_model_instances_busy, ...); the
// pool does not export them again.
//
// Ownership: the pool owns every instance; a Lease only lends one and must not outlive the pool.
// Thread-safety: Borrow(), Counters() and Lease destruction are safe from any number of threads;
// the instance behind a lease is used by its holder alone.
template <typename T>
class InstancePool {
 public:
  // Builds one instance for `device`; called once per instance by Create().
  using Factory = std::function<common::StatusOr<std::unique_ptr<T>>(const Device&)>;

  // A borrowed instance. Movable, not copyable; returns the instance to the pool when destroyed.
  class Lease {
   public:
    Lease(Lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)), slot_(other.slot_) {}
    Lease& operator=(Lease&& other) noexcept {
      if (this != &other) {
        Return();
        pool_ = std::exchange(other.pool_, nullptr);
        slot_ = other.slot_;
      }
      return *this;
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { Return(); }

    T* get() const { return pool_->slots_[slot_].instance.get(); }
    T* operator->() const { return get(); }
    T& operator*() const { return *get(); }
    // The device the instance lives on ("cpu:0").
    const Device& device() const { return pool_->slots_[slot_].device; }

   private:
    friend class InstancePool;
    Lease(InstancePool* pool, int slot) : pool_(pool), slot_(slot) {}
    void Return() {
      if (pool_ != nullptr) pool_->Give(slot_);
      pool_ = nullptr;
    }
    InstancePool* pool_;
    int slot_;
  };

  // Parses `devices` (see ParseDevice) and builds `instances_per_device` instances on each.
  // Same as the PoolOptions form with equal weights and no budget.
  static common::StatusOr<std::unique_ptr<InstancePool>> Create(
      const std::vector<std::string>& devices, int instances_per_device, const Factory& factory) {
    PoolOptions options;
    options.devices = devices;
    options.instances = instances_per_device;
    return Create(options, factory);
  }

  // Parses the devices and builds their instances (see PoolOptions). Errors: kInvalidArgument
  // for an empty device list, a bad device, instances < 1, weights that are not one positive
  // number per device, a negative cost, or a cost above a device's budget (it could never run);
  // the factory's first error otherwise, naming the device. Blocks while instances load.
  static common::StatusOr<std::unique_ptr<InstancePool>> Create(const PoolOptions& options,
                                                                const Factory& factory) {
    const auto bad = [&](const std::string& why) {
      return common::Status(common::ErrorCode::kInvalidArgument,
                            "model " + options.model + ": " + why);
    };
    if (options.devices.empty()) {
      return common::Status(common::ErrorCode::kInvalidArgument, "no device configured");
    }
    if (options.instances < 1) {
      return common::Status(common::ErrorCode::kInvalidArgument,
                            "instances per device must be at least 1");
    }
    std::vector<double> weights = options.weights;
    if (weights.empty()) weights.assign(options.devices.size(), 1.0);
    if (weights.size() != options.devices.size()) {
      return bad("expected one weight per device (" + std::to_string(options.devices.size()) +
                 "), got " + std::to_string(weights.size()));
    }
    double heaviest = 0;
    for (double weight : weights) {
      if (!(weight > 0)) return bad("device weights must be positive");
      heaviest = std::max(heaviest, weight);
    }
    if (!(options.cost >= 0)) return bad("cost must be 0 or more");
    std::unique_ptr<InstancePool> pool(new InstancePool(options));
    for (size_t d = 0; d < options.devices.size(); ++d) {
      VSIEVE_ASSIGN_OR_RETURN(Device device, ParseDevice(options.devices[d]));
      if (options.budgets != nullptr && options.cost > 0) {
        const double budget = options.budgets->budget(device.name);
        if (budget > 0 && options.cost > budget) {
          return bad("cost " + std::to_string(options.cost) + " is above the budget " +
                     std::to_string(budget) + " of device " + device.name +
                     ", so it could never run");
        }
      }
      const int count =
          std::max(1, static_cast<int>(std::lround(options.instances * weights[d] / heaviest)));
      const int device_index = static_cast<int>(pool->counters_.size());
      DeviceCounters counters;
      counters.device = device.name;
      counters.instances = count;
      counters.weight = weights[d];
      pool->counters_.push_back(counters);
      pool->wait_metrics_.push_back(&common::MetricsRegistry::Global().GetHistogram(
          "vsieve_model_borrow_wait_seconds", "Time a worker waited to borrow a model instance",
          common::DurationBuckets(), {{"model", options.model}, {"device", device.name}}));
      for (int i = 0; i < count; ++i) {
        auto instance = factory(device);
        if (!instance.ok()) return instance.status().WithContext("device " + device.name);
        pool->slots_.push_back(Slot{device, device_index, std::move(instance).value()});
        pool->free_.push_back(static_cast<int>(pool->slots_.size()) - 1);
      }
    }
    if (options.budgets != nullptr && options.cost > 0) {
      InstancePool* raw = pool.get();
      pool->listener_ = options.budgets->AddListener([raw] {
        { std::lock_guard lock(raw->mutex_); }
        raw->returned_.notify_all();
      });
    }
    return pool;
  }

  ~InstancePool() {
    if (listener_ != 0) options_.budgets->RemoveListener(listener_);
  }
  InstancePool(const InstancePool&) = delete;
  InstancePool& operator=(const InstancePool&) = delete;

  // Lends a free instance whose device has room in its budget, waiting up to `timeout` for one.
  // Prefers the device with the least load per unit of weight. Errors: kTimeout (retryable)
  // when none came free in time.
  common::StatusOr<Lease> Borrow(std::chrono::duration<double> timeout) {
    const auto start = std::chrono::steady_clock::now();
    const auto deadline =
        start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(timeout);
    std::unique_lock lock(mutex_);
    bool waited = false;
    bool budget_waited = false;
    int slot = PickLocked();
    while (slot < 0) {
      waited = true;
      budget_waited = budget_waited || !free_.empty();
      const bool timed_out = returned_.wait_until(lock, deadline) == std::cv_status::timeout;
      slot = PickLocked();
      if (slot < 0 && (timed_out || std::chrono::steady_clock::now() >= deadline)) {
        ++counters_.front().timeouts;
        if (budget_waited) ++counters_.front().budget_waits;
        return common::Status(common::ErrorCode::kTimeout,
                              "no instance of model " + options_.model +
                                  " came free within the borrow timeout" +
                                  (budget_waited ? " (device budget exhausted)" : ""),
                              true);
      }
    }
    const int device_index = slots_[slot].device_index;
    DeviceCounters& counters = counters_[device_index];
    ++counters.busy;
    ++counters.borrows;
    const double wait_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (waited) {
      ++counters.waits;
      counters.wait_seconds_total += wait_seconds;
    }
    if (budget_waited) ++counters.budget_waits;
    wait_metrics_[device_index]->Observe(waited ? wait_seconds : 0.0);
    return Lease(this, slot);
  }

  // Per-device counters, in configuration order.
  std::vector<DeviceCounters> Counters() const {
    std::lock_guard lock(mutex_);
    return counters_;
  }

  // Instances in the pool (all devices).
  int size() const { return static_cast<int>(slots_.size()); }

 private:
  struct Slot {
    Device device;
    int device_index = 0;
    std::unique_ptr<T> instance;
  };
  explicit InstancePool(PoolOptions options) : options_(std::move(options)) {}

  // The free slot to lend, its device's budget taken; -1 when none fits. Requires mutex_.
  int PickLocked() {
    std::vector<size_t> order(free_.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    const auto load = [&](size_t i) {
      const DeviceCounters& c = counters_[slots_[free_[i]].device_index];
      return (c.busy + 1) / c.weight;
    };
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      const double la = load(a);
      const double lb = load(b);
      if (la != lb) return la < lb;
      return slots_[free_[a]].device_index < slots_[free_[b]].device_index;
    });
    for (size_t i : order) {
      const int slot = free_[i];
      if (options_.budgets != nullptr && options_.cost > 0 &&
          !options_.budgets->TryAcquire(slots_[slot].device.name, options_.cost)) {
        continue;
      }
      free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(i));
      return slot;
    }
    return -1;
  }

  void Give(int slot) {
    const int device_index = slots_[slot].device_index;
    {
      std::lock_guard lock(mutex_);
      free_.push_back(slot);
      --counters_[device_index].busy;
    }
    if (options_.budgets != nullptr && options_.cost > 0) {
      options_.budgets->Release(slots_[slot].device.name, options_.cost);  // wakes our waiters
    } else {
      returned_.notify_all();
    }
  }

  const PoolOptions options_;
  int listener_ = 0;
  std::vector<Slot> slots_;                       // fixed after Create(); read without the lock
  std::vector<common::Histogram*> wait_metrics_;  // per device; fixed after Create()
  mutable std::mutex mutex_;
  std::condition_variable returned_;
  std::vector<int> free_;                 // guarded by mutex_: indices into slots_
  std::vector<DeviceCounters> counters_;  // guarded by mutex_
};

}  // namespace vsieve::models
