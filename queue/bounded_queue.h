#pragma once

#include <atomic>
#include <boost/lockfree/queue.hpp>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>

namespace vsieve::queue {

// A bounded multi-producer multi-consumer queue of owned elements. Elements live in a
// Boost.Lockfree queue of raw pointers; the mutex and condition variables are used only to park
// threads when the queue is full or empty, so the fast path takes no lock.
//
// Ownership: a successful Push() moves the element into the queue; a failed Push() (the queue is
// closed) leaves it with the caller. Pop() hands the element to exactly one consumer.
// Close() wakes everyone: producers fail from then on, consumers drain what is left and then get
// nullptr. Safe from any number of threads. The destructor frees elements still queued.
template <typename T>
class BoundedQueue {
 public:
  explicit BoundedQueue(std::size_t capacity) : capacity_(capacity), items_(capacity) {}
  ~BoundedQueue() {
    T* raw = nullptr;
    while (items_.pop(raw)) delete raw;  // NOLINT(cppcoreguidelines-owning-memory)
  }
  BoundedQueue(const BoundedQueue&) = delete;
  BoundedQueue& operator=(const BoundedQueue&) = delete;

  // Blocks while the queue is full. Returns false, leaving `item` untouched, once closed.
  bool Push(std::unique_ptr<T>& item) {
    {
      std::unique_lock lock(mutex_);
      not_full_.wait(lock, [&] { return closed_ || size_.load() < capacity_; });
      if (closed_) return false;
      size_.fetch_add(1);
    }
    T* raw = item.release();
    while (!items_.bounded_push(raw)) {
    }
    not_empty_.notify_one();
    return true;
  }

  // Blocks while the queue is empty and open. Returns nullptr when closed and drained.
  std::unique_ptr<T> Pop() {
    {
      std::unique_lock lock(mutex_);
      not_empty_.wait(lock, [&] { return closed_ || reserved_ < size_.load(); });
      if (reserved_ >= size_.load()) return nullptr;  // closed and drained
      ++reserved_;
    }
    T* raw = nullptr;
    while (!items_.pop(raw)) {
    }
    {
      std::lock_guard lock(mutex_);
      --reserved_;
      size_.fetch_sub(1);
    }
    not_full_.notify_one();
    return std::unique_ptr<T>(raw);
  }

  // Like Pop(), but waits at most `timeout` for an element. Returns nullptr when the timeout
  // passed with the queue empty, or when closed and drained (check closed() to tell them apart).
  template <typename Rep, typename Period>
  std::unique_ptr<T> PopFor(std::chrono::duration<Rep, Period> timeout) {
    {
      std::unique_lock lock(mutex_);
      if (!not_empty_.wait_for(lock, timeout,
                               [&] { return closed_ || reserved_ < size_.load(); })) {
        return nullptr;
      }
      if (reserved_ >= size_.load()) return nullptr;  // closed and drained
      ++reserved_;
    }
    T* raw = nullptr;
    while (!items_.pop(raw)) {
    }
    {
      std::lock_guard lock(mutex_);
      --reserved_;
      size_.fetch_sub(1);
    }
    not_full_.notify_one();
    return std::unique_ptr<T>(raw);
  }

  // True once Close() was called.
  bool closed() const {
    std::lock_guard lock(mutex_);
    return closed_;
  }

  // Stops accepting elements and wakes all waiters. Idempotent.
  void Close() {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
    }
    not_full_.notify_all();
    not_empty_.notify_all();
  }

  std::size_t size() const { return size_.load(); }
  std::size_t capacity() const { return capacity_; }

 private:
  const std::size_t capacity_;
  boost::lockfree::queue<T*> items_;
  std::atomic<std::size_t> size_{0};  // elements pushed and not yet fully popped
  mutable std::mutex mutex_;
  std::condition_variable not_full_;
  std::condition_variable not_empty_;
  bool closed_ = false;       // guarded by mutex_
  std::size_t reserved_ = 0;  // guarded by mutex_: pops in progress
};

}  // namespace vsieve::queue
