#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/status.h"

namespace vsieve::common {

// Arguments of one trace event: string or integer values, shown by the trace viewer.
using TraceArgs = std::vector<std::pair<std::string, std::variant<std::string, int64_t>>>;

// Writes Chrome trace-event JSON (the format chrome://tracing and Perfetto open):
//
//   {"displayTimeUnit":"ms","traceEvents":[ {"name":"decode","ph":"X","ts":..,"dur":..,
//    "pid":..,"tid":..,"args":{"video_id":"a"}}, {"name":"thread_name","ph":"M",...}, ...],
//    "otherData":{"events":N,"dropped_events":M}}
//
// Complete events ("ph":"X") carry `ts` and `dur` in whole microseconds on the monotonic clock,
// counted from the recorder's creation; `tid` is the Linux thread id. Events are streamed to the
// file through a buffer as they are recorded (no event is held in memory); after `max_events`
// further events are counted as dropped. Close() ends the JSON; a file whose recorder was not
// closed (the process was killed) lacks only the closing brackets, which both viewers tolerate.
//
// Thread-safety: every member is safe from any thread; each event takes a short lock. Blocking:
// only on the buffered file write. Errors: Open() returns kInvalidArgument when the file cannot
// be created; a later write error is kept and returned by Close().
class TraceRecorder {
 public:
  static constexpr int64_t kDefaultMaxEvents = 2'000'000;  // about 250 MB of JSON

  // Creates (truncates) `path` and writes the header and a process_name event naming
  // `process_name`.
  static StatusOr<std::unique_ptr<TraceRecorder>> Open(const std::string& path,
                                                       const std::string& process_name,
                                                       int64_t max_events = kDefaultMaxEvents);
  ~TraceRecorder();  // Close(), ignoring its status
  TraceRecorder(const TraceRecorder&) = delete;
  TraceRecorder& operator=(const TraceRecorder&) = delete;

  // The recorder that TraceSpan and NameThisThread() use, or nullptr (tracing off). Install()
  // before starting the threads that trace and uninstall (nullptr) after joining them: a span
  // keeps the pointer it saw at construction.
  static void Install(TraceRecorder* recorder);
  static TraceRecorder* Active() { return active_.load(std::memory_order_acquire); }

  // Records a complete event on the calling thread.
  void Complete(std::string_view name, std::chrono::steady_clock::time_point start,
                std::chrono::steady_clock::time_point end, const TraceArgs& args);

  // Records thread_name and thread_sort_index metadata for the calling thread.
  void NameThread(std::string_view name, int sort_index);

  // Writes the closing brackets and flushes. Later events are dropped. Idempotent; returns the
  // first write error, if any.
  Status Close();

  const std::string& path() const { return path_; }
  int64_t events() const;
  int64_t dropped() const;

 private:
  TraceRecorder(std::string path, std::FILE* file, int64_t max_events);
  void WriteEventLocked(const std::string& json);

  static std::atomic<TraceRecorder*> active_;

  const std::string path_;
  const std::chrono::steady_clock::time_point origin_ = std::chrono::steady_clock::now();
  const int pid_;
  const int64_t max_events_;
  mutable std::mutex mutex_;
  std::FILE* file_;           // guarded by mutex_; nullptr once closed
  std::vector<char> buffer_;  // setvbuf buffer of file_
  bool first_ = true;         // guarded by mutex_
  int64_t events_ = 0;        // guarded by mutex_
  int64_t dropped_ = 0;       // guarded by mutex_
  Status error_;              // guarded by mutex_
};

// Times a scope and records it as a complete event on the active recorder (if one was installed
// when the span was created). Adds the thread's current video (TraceVideoScope) as
// args.video_id. Cheap when tracing is off: one atomic load. One thread; not copyable.
class TraceSpan {
 public:
  explicit TraceSpan(const char* name);
  ~TraceSpan();
  TraceSpan(const TraceSpan&) = delete;
  TraceSpan& operator=(const TraceSpan&) = delete;

  // Adds an argument (ignored when tracing is off).
  void AddArg(std::string key, std::variant<std::string, int64_t> value);

  // Records nothing for this span (e.g. an idle poll).
  void Cancel() { recorder_ = nullptr; }

 private:
  TraceRecorder* recorder_;
  const char* name_;
  std::chrono::steady_clock::time_point start_;
  TraceArgs args_;
};

// Sets the video that spans on this thread belong to, until the scope ends (then the previous
// one is restored). `video_id` must outlive the scope.
class TraceVideoScope {
 public:
  explicit TraceVideoScope(const std::string& video_id);
  ~TraceVideoScope();
  TraceVideoScope(const TraceVideoScope&) = delete;
  TraceVideoScope& operator=(const TraceVideoScope&) = delete;

 private:
  const std::string* previous_;
};

// Names the calling thread for `top -H`, gdb and perf (pthread name, cut to 15 characters) and,
// when a recorder is active, in the trace (`sort_index` orders the rows in the viewer).
void NameThisThread(const std::string& name, int sort_index);

}  // namespace vsieve::common
