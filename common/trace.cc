#include "common/trace.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vsieve::common {
namespace {

thread_local const std::string* current_video = nullptr;

int ThreadId() {
  thread_local const int tid = static_cast<int>(::syscall(SYS_gettid));
  return tid;
}

// Length of the valid UTF-8 sequence at text[i], or 0 when the bytes there are not one.
std::size_t Utf8Length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  std::size_t length = 0;
  uint32_t min = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
    min = 0x80;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    min = 0x800;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    min = 0x10000;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  uint32_t code = lead & (0xFF >> (length + 1));
  for (std::size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    code = (code << 6) | (byte(i + k) & 0x3F);
  }
  if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
  return length;
}

// Appends `text` as a JSON string; bytes that are not UTF-8 become U+FFFD.
void AppendJsonString(std::string* out, std::string_view text) {
  out->push_back('"');
  for (std::size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
      ++i;
    } else if (c < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
      out->append(escaped);
      ++i;
    } else if (c < 0x80) {
      out->push_back(static_cast<char>(c));
      ++i;
    } else if (const std::size_t length = Utf8Length(text, i); length > 0) {
      out->append(text.substr(i, length));
      i += length;
    } else {
      out->append("\\ufffd");
      ++i;
    }
  }
  out->push_back('"');
}

void AppendArgs(std::string* out, const TraceArgs& args) {
  out->append(",\"args\":{");
  bool first = true;
  for (const auto& [key, value] : args) {
    if (!first) out->push_back(',');
    first = false;
    AppendJsonString(out, key);
    out->push_back(':');
    if (const auto* text = std::get_if<std::string>(&value)) {
      AppendJsonString(out, *text);
    } else {
      out->append(std::to_string(std::get<int64_t>(value)));
    }
  }
  out->push_back('}');
}

}  // namespace

std::atomic<TraceRecorder*> TraceRecorder::active_{nullptr};

StatusOr<std::unique_ptr<TraceRecorder>> TraceRecorder::Open(const std::string& path,
                                                             const std::string& process_name,
                                                             int64_t max_events) {
  std::FILE* file = std::fopen(path.c_str(), "w");
  if (file == nullptr) {
    return Status(ErrorCode::kInvalidArgument,
                  "cannot create trace file " + path + ": " + std::strerror(errno));
  }
  std::unique_ptr<TraceRecorder> recorder(new TraceRecorder(path, file, max_events));
  {
    std::lock_guard lock(recorder->mutex_);
    std::fputs("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n", file);
    std::string json =
        "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":" + std::to_string(recorder->pid_) +
        ",\"tid\":" + std::to_string(ThreadId());
    AppendArgs(&json, {{"name", process_name}});
    json.push_back('}');
    recorder->WriteEventLocked(json);
  }
  return recorder;
}

TraceRecorder::TraceRecorder(std::string path, std::FILE* file, int64_t max_events)
    : path_(std::move(path)),
      pid_(static_cast<int>(::getpid())),
      max_events_(max_events),
      file_(file),
      buffer_(1 << 20) {
  std::setvbuf(file_, buffer_.data(), _IOFBF, buffer_.size());
}

TraceRecorder::~TraceRecorder() {
  if (Active() == this) Install(nullptr);
  (void)Close();
}

void TraceRecorder::Install(TraceRecorder* recorder) {
  active_.store(recorder, std::memory_order_release);
}

void TraceRecorder::WriteEventLocked(const std::string& json) {
  if (file_ == nullptr) return;
  if (events_ >= max_events_) {
    ++dropped_;
    return;
  }
  if (!first_) std::fputs(",\n", file_);
  first_ = false;
  if (std::fwrite(json.data(), 1, json.size(), file_) != json.size() && error_.ok()) {
    error_ =
        Status(ErrorCode::kInternal, "writing trace file " + path_ + ": " + std::strerror(errno));
  }
  ++events_;
}

void TraceRecorder::Complete(std::string_view name, std::chrono::steady_clock::time_point start,
                             std::chrono::steady_clock::time_point end, const TraceArgs& args) {
  using std::chrono::duration_cast;
  using std::chrono::microseconds;
  // Both ends are truncated to whole microseconds, so spans that did not overlap in time do not
  // overlap in the file either.
  const int64_t ts = duration_cast<microseconds>(start - origin_).count();
  const int64_t until = duration_cast<microseconds>(end - origin_).count();
  std::string json = "{\"name\":";
  json.reserve(160);
  AppendJsonString(&json, name);
  json += ",\"ph\":\"X\",\"ts\":" + std::to_string(ts) +
          ",\"dur\":" + std::to_string(std::max<int64_t>(0, until - ts)) +
          ",\"pid\":" + std::to_string(pid_) + ",\"tid\":" + std::to_string(ThreadId());
  if (!args.empty()) AppendArgs(&json, args);
  json.push_back('}');
  std::lock_guard lock(mutex_);
  WriteEventLocked(json);
}

void TraceRecorder::NameThread(std::string_view name, int sort_index) {
  const std::string head =
      ",\"ph\":\"M\",\"pid\":" + std::to_string(pid_) + ",\"tid\":" + std::to_string(ThreadId());
  std::string named = "{\"name\":\"thread_name\"" + head;
  AppendArgs(&named, {{"name", std::string(name)}});
  named.push_back('}');
  std::string sorted = "{\"name\":\"thread_sort_index\"" + head;
  AppendArgs(&sorted, {{"sort_index", int64_t{sort_index}}});
  sorted.push_back('}');
  std::lock_guard lock(mutex_);
  WriteEventLocked(named);
  WriteEventLocked(sorted);
}

Status TraceRecorder::Close() {
  std::lock_guard lock(mutex_);
  if (file_ == nullptr) return error_;
  std::fprintf(file_, "\n],\"otherData\":{\"events\":%lld,\"dropped_events\":%lld}}\n",
               static_cast<long long>(events_), static_cast<long long>(dropped_));
  const bool flushed = std::fflush(file_) == 0;
  const bool closed = std::fclose(file_) == 0;
  file_ = nullptr;
  if ((!flushed || !closed) && error_.ok()) {
    error_ =
        Status(ErrorCode::kInternal, "writing trace file " + path_ + ": " + std::strerror(errno));
  }
  return error_;
}

int64_t TraceRecorder::events() const {
  std::lock_guard lock(mutex_);
  return events_;
}

int64_t TraceRecorder::dropped() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}

TraceSpan::TraceSpan(const char* name) : recorder_(TraceRecorder::Active()), name_(name) {
  if (recorder_ != nullptr) start_ = std::chrono::steady_clock::now();
}

TraceSpan::~TraceSpan() {
  if (recorder_ == nullptr) return;
  const auto end = std::chrono::steady_clock::now();
  if (current_video != nullptr) args_.insert(args_.begin(), {"video_id", *current_video});
  recorder_->Complete(name_, start_, end, args_);
}

void TraceSpan::AddArg(std::string key, std::variant<std::string, int64_t> value) {
  if (recorder_ != nullptr) args_.emplace_back(std::move(key), std::move(value));
}

TraceVideoScope::TraceVideoScope(const std::string& video_id) : previous_(current_video) {
  current_video = &video_id;
}

TraceVideoScope::~TraceVideoScope() { current_video = previous_; }

void NameThisThread(const std::string& name, int sort_index) {
  ::pthread_setname_np(::pthread_self(), name.substr(0, 15).c_str());
  if (TraceRecorder* recorder = TraceRecorder::Active()) recorder->NameThread(name, sort_index);
}

}  // namespace vsieve::common
