#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/status.h"
#include "storage/tier.h"

namespace vsieve::storage {

// A latch the test opens; threads calling Wait() block until then.
class Gate {
 public:
  void Open() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
};

// A Tier test double: serves bytes from a map keyed by ObjectRef::ToString(), counts calls, and
// can hold a download open (gate), slow it down (delay per chunk), fail it (after writing part of
// the body), or serve in place (a path instead of bytes). Thread-safe.
class FakeTier : public Tier {
 public:
  FakeTier(std::string name, std::string source_tier)
      : name_(std::move(name)), source_tier_(std::move(source_tier)) {}

  // Objects: bytes served through the sink.
  void Put(const std::string& key, std::string bytes) {
    std::lock_guard lock(mutex_);
    objects_[key] = std::move(bytes);
  }
  // Objects served in place: Fetch returns `path` with `size`, the sink untouched.
  void PutInPlace(const std::string& key, std::string path, int64_t size) {
    std::lock_guard lock(mutex_);
    in_place_[key] = {std::move(path), size};
  }
  // Every Fetch fails with `status` after writing `bytes_first` bytes of the object.
  void FailWith(common::Status status, size_t bytes_first = 0) {
    std::lock_guard lock(mutex_);
    fail_ = std::move(status);
    fail_after_ = bytes_first;
  }
  // Whether Fetch reserves the size before the body (a Content-Length), default true.
  void set_known_size(bool known) { known_size_ = known; }
  // Reports this size in TierObject instead of the real one (a size check that fails).
  void set_reported_size(int64_t size) { reported_size_ = size; }
  // Fetch waits on `gate` after writing its first chunk (nullptr: never).
  void set_gate(Gate* gate) { gate_ = gate; }
  void set_chunk(size_t bytes) { chunk_ = bytes; }
  void set_chunk_delay(std::chrono::microseconds delay) { chunk_delay_ = delay; }

  int calls() const { return calls_.load(); }
  // Blocks until at least `n` Fetch calls have started.
  void WaitForCalls(int n) {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return calls_.load() >= n; });
  }

  const std::string& name() const override { return name_; }
  std::string_view source_tier() const override { return source_tier_; }

  common::StatusOr<TierObject> Fetch(const ObjectRef& ref, DownloadSink* sink) override {
    std::string bytes;
    std::optional<common::Status> fail;
    size_t fail_after = 0;
    {
      std::lock_guard lock(mutex_);
      calls_.fetch_add(1);
      fail = fail_;
      fail_after = fail_after_;
      const auto place = in_place_.find(ref.ToString());
      if (place != in_place_.end() && !fail.has_value()) {
        cv_.notify_all();
        TierObject object;
        object.in_place_path = place->second.first;
        object.size_bytes = place->second.second;
        return object;
      }
      const auto it = objects_.find(ref.ToString());
      if (it == objects_.end() && !fail.has_value()) {
        cv_.notify_all();
        return common::Status(common::ErrorCode::kObjectNotFound,
                              ref.ToString() + ": not in " + name_);
      }
      if (it != objects_.end()) bytes = it->second;
    }
    cv_.notify_all();
    if (fail.has_value()) bytes.resize(std::max(bytes.size(), fail_after), 'x');
    if (known_size_ && !fail.has_value()) {
      VSIEVE_RETURN_IF_ERROR(sink->Reserve(static_cast<int64_t>(bytes.size())));
    }
    const size_t limit = fail.has_value() ? fail_after : bytes.size();
    size_t offset = 0;
    bool gated = false;
    while (offset < limit) {
      const size_t n = std::min(chunk_, limit - offset);
      VSIEVE_RETURN_IF_ERROR(sink->Write(bytes.data() + offset, n));
      offset += n;
      if (!gated && gate_ != nullptr) {
        gated = true;
        gate_->Wait();
      }
      if (chunk_delay_.count() > 0) std::this_thread::sleep_for(chunk_delay_);
    }
    if (fail.has_value()) return *fail;
    TierObject object;
    object.size_bytes = reported_size_ >= 0 ? reported_size_ : static_cast<int64_t>(bytes.size());
    return object;
  }

 private:
  const std::string name_;
  const std::string source_tier_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::map<std::string, std::string> objects_;                       // guarded by mutex_
  std::map<std::string, std::pair<std::string, int64_t>> in_place_;  // guarded by mutex_
  std::optional<common::Status> fail_;                               // guarded by mutex_
  size_t fail_after_ = 0;                                            // guarded by mutex_
  std::atomic<int> calls_{0};
  // Set before the first Fetch.
  bool known_size_ = true;
  int64_t reported_size_ = -1;
  Gate* gate_ = nullptr;
  size_t chunk_ = 64 * 1024;
  std::chrono::microseconds chunk_delay_{0};
};

}  // namespace vsieve::storage
