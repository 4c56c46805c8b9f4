#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

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

// Counters of one device's instances, for metrics. A copy; consistent at the time it was taken.
struct DeviceCounters {
  std::string device;
  int instances = 0;
  int busy = 0;                   // instances lent out now
  int64_t borrows = 0;            // successful Borrow() calls
  int64_t waits = 0;              // borrows that had to wait for a free instance
  int64_t timeouts = 0;           // Borrow() calls that gave up (counted on the first device)
  double wait_seconds_total = 0;  // time spent waiting by the borrows counted in `waits`
};

// A pool of exclusive model instances, Triton style: `instances` per device, each used by one
// thread at a time. A worker borrows an instance (RAII lease, with a timeout), uses it, and the
// lease gives it back on destruction.
//
// Ownership: the pool owns every instance; a Lease only lends one and must not outlive the pool.
// Thread-safety: Borrow(), Counters() and Lease destruction are safe from any number of threads;
// the instance behind a lease is used by its holder alone.
template <typename T>
class InstancePool {
 public:
  // Builds one instance for `device`; called `instances` times per device by Create().
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
  // Errors: kInvalidArgument for an empty list, a bad device or instances < 1; the factory's
  // first error otherwise. Blocks while instances load.
  static common::StatusOr<std::unique_ptr<InstancePool>> Create(
      const std::vector<std::string>& devices, int instances_per_device, const Factory& factory) {
    if (devices.empty()) {
      return common::Status(common::ErrorCode::kInvalidArgument, "no device configured");
    }
    if (instances_per_device < 1) {
      return common::Status(common::ErrorCode::kInvalidArgument,
                            "instances per device must be at least 1");
    }
    std::unique_ptr<InstancePool> pool(new InstancePool());
    for (const std::string& text : devices) {
      VSIEVE_ASSIGN_OR_RETURN(Device device, ParseDevice(text));
      const int device_index = static_cast<int>(pool->counters_.size());
      DeviceCounters counters;
      counters.device = device.name;
      counters.instances = instances_per_device;
      pool->counters_.push_back(counters);
      for (int i = 0; i < instances_per_device; ++i) {
        auto instance = factory(device);
        if (!instance.ok()) return instance.status().WithContext("device " + device.name);
        pool->slots_.push_back(Slot{device, device_index, std::move(instance).value()});
        pool->free_.push_back(static_cast<int>(pool->slots_.size()) - 1);
      }
    }
    return pool;
  }

  // Lends a free instance, waiting up to `timeout` for one. Prefers the device with the fewest
  // busy instances. Errors: kTimeout (retryable) when none came free in time.
  common::StatusOr<Lease> Borrow(std::chrono::duration<double> timeout) {
    const auto start = std::chrono::steady_clock::now();
    std::unique_lock lock(mutex_);
    const bool waited = free_.empty();
    if (!returned_.wait_for(lock, timeout, [&] { return !free_.empty(); })) {
      ++counters_.front().timeouts;
      return common::Status(common::ErrorCode::kTimeout,
                            "no model instance came free within the borrow timeout", true);
    }
    std::size_t best = 0;
    for (std::size_t i = 1; i < free_.size(); ++i) {
      if (counters_[slots_[free_[i]].device_index].busy <
          counters_[slots_[free_[best]].device_index].busy) {
        best = i;
      }
    }
    const int slot = free_[best];
    free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(best));
    DeviceCounters& counters = counters_[slots_[slot].device_index];
    ++counters.busy;
    ++counters.borrows;
    if (waited) {
      ++counters.waits;
      counters.wait_seconds_total +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
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

  InstancePool() = default;

  void Give(int slot) {
    {
      std::lock_guard lock(mutex_);
      free_.push_back(slot);
      --counters_[slots_[slot].device_index].busy;
    }
    returned_.notify_one();
  }

  std::vector<Slot> slots_;  // fixed after Create(); read without the lock
  mutable std::mutex mutex_;
  std::condition_variable returned_;
  std::vector<int> free_;                 // guarded by mutex_: indices into slots_
  std::vector<DeviceCounters> counters_;  // guarded by mutex_
};

}  // namespace vsieve::models
