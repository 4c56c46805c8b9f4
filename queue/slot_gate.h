#pragma once

#include <algorithm>
#include <condition_variable>
#include <mutex>

namespace vsieve::queue {

// A count of free slots that threads take and give back, to cap how many of something exist at
// once (the pipeline: decoded videos, whose frames take tens of MB each). Close() wakes every
// waiter; Acquire() fails from then on, while Release() still counts. Safe from any number of
// threads.
class SlotGate {
 public:
  // At least one slot.
  explicit SlotGate(int slots) : free_(std::max(1, slots)) {}
  SlotGate(const SlotGate&) = delete;
  SlotGate& operator=(const SlotGate&) = delete;

  // Blocks until a slot is free and takes it; returns false, taking nothing, once closed.
  bool Acquire() {
    std::unique_lock lock(mutex_);
    freed_.wait(lock, [&] { return closed_ || free_ > 0; });
    if (closed_) return false;
    --free_;
    return true;
  }

  // Gives back a slot taken by Acquire().
  void Release() {
    {
      std::lock_guard lock(mutex_);
      ++free_;
    }
    freed_.notify_one();
  }

  // Wakes every waiter; later Acquire() calls fail at once.
  void Close() {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
    }
    freed_.notify_all();
  }

  // Slots free now (a hint: it may change at once).
  int free() const {
    std::lock_guard lock(mutex_);
    return free_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable freed_;
  int free_;             // guarded by mutex_
  bool closed_ = false;  // guarded by mutex_
};

}  // namespace vsieve::queue
