#include "storage/disk_cache.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>
#include <utility>
#include <vector>

#include "common/metrics.h"

namespace vsieve::storage {
namespace {

namespace fs = std::filesystem;
using common::ErrorCode;
using common::Status;
using common::StatusOr;

constexpr const char* kPartialDir = ".partial";
constexpr const char* kLockFile = ".lock";
constexpr size_t kWriteBuffer = 1 << 20;  // bytes buffered before a write(2)
constexpr int64_t kGrowStep = 8LL << 20;  // reservation growth for bodies of unknown size
constexpr size_t kMaxSegment = 255;       // NAME_MAX

std::string Errno(int err) { return std::strerror(err); }

Status IoError(const std::string& what, int err) {
  return Status(ErrorCode::kFetchFailed, "disk cache: " + what + ": " + Errno(err),
                /*retryable=*/true);
}

// Owns one file descriptor.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }
  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

Status WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("writing a download", errno);
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status FsyncDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return IoError("opening " + dir, errno);
  if (::fsync(fd.get()) != 0) return IoError("fsync " + dir, errno);
  return Status::Ok();
}

std::string RandomName() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string name = std::to_string(::getpid()) + "-";
  for (int i = 0; i < 16; ++i) name += kHex[random() & 15];
  return name;
}

std::string EncodeSegment(const std::string& segment) {
  if (segment.empty()) return "%";
  if (segment == ".") return "%2E";
  std::string out;
  for (char c : segment) {
    if (c == '%') {
      out += "%25";
    } else {
      out += c;
    }
  }
  return out;
}

// The inverse of EncodeSegment(); false for a name it never produces.
bool DecodeSegment(const std::string& name, std::string* segment) {
  if (name == "%") {
    segment->clear();
    return true;
  }
  if (name == "%2E") {
    *segment = ".";
    return true;
  }
  segment->clear();
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] != '%') {
      *segment += name[i];
    } else if (name.compare(i, 3, "%25") == 0) {
      *segment += '%';
      i += 2;
    } else {
      return false;
    }
  }
  return EncodeSegment(*segment) == name;
}

bool ValidTierName(const std::string& name) {
  if (name.empty() || name.size() > 32) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

std::string MapKey(const ObjectRef& ref) { return ref.bucket + '\0' + ref.key; }

struct Metrics {
  common::Gauge& bytes;
  common::Gauge& limit;
  common::Gauge& files;
  common::Counter& evictions;
  common::Counter& hits;
  common::Counter& misses;
  common::Counter& shared;
};

Metrics& CacheMetrics() {
  auto& r = common::MetricsRegistry::Global();
  static Metrics metrics{
      r.GetGauge("vsieve_cache_bytes",
                 "Bytes the local disk cache holds: committed files plus open download "
                 "reservations (never above vsieve_cache_limit_bytes)"),
      r.GetGauge("vsieve_cache_limit_bytes",
                 "The local disk cache's byte limit ([cache] max_bytes)"),
      r.GetGauge("vsieve_cache_files", "Files in the local disk cache"),
      r.GetCounter("vsieve_cache_evictions_total",
                   "Files evicted from the local disk cache (least recently used, unpinned)"),
      r.GetCounter("vsieve_cache_requests_total", "Local disk cache look-ups by result",
                   {{"result", "hit"}}),
      r.GetCounter("vsieve_cache_requests_total", "Local disk cache look-ups by result",
                   {{"result", "miss"}}),
      r.GetCounter("vsieve_cache_shared_downloads_total",
                   "Fetches that waited for an identical download already in flight instead of "
                   "starting their own"),
  };
  return metrics;
}

// Keeps one cache entry pinned while alive.
struct PinToken {
  std::function<void()> release;
  ~PinToken() { release(); }
};

}  // namespace

// The sink of one download: a temporary file in <dir>/.partial and its share of the byte limit.
// Destroyed without Commit(), it deletes the file and gives the reservation back (abort).
class DiskCache::Sink : public DownloadSink {
 public:
  Sink(std::shared_ptr<DiskCache> cache, std::string temp_path, UniqueFd fd)
      : cache_(std::move(cache)), temp_path_(std::move(temp_path)), fd_(std::move(fd)) {
    buffer_.reserve(kWriteBuffer);
  }
  ~Sink() override {
    if (committed_) return;
    fd_.Reset();
    ::unlink(temp_path_.c_str());
    if (reserved_ > 0) cache_->Release(reserved_);
  }
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  Status Reserve(int64_t bytes) override {
    if (bytes < 0) return Status(ErrorCode::kInvalidArgument, "negative size to reserve");
    if (bytes > cache_->max_bytes_) {
      return Status(ErrorCode::kFetchFailed, "object of " + std::to_string(bytes) +
                                                 " bytes is larger than the disk cache limit of " +
                                                 std::to_string(cache_->max_bytes_) +
                                                 " bytes ([cache] max_bytes)");
    }
    VSIEVE_RETURN_IF_ERROR(SetReservation(std::max(bytes, written_), /*explicit_size=*/true));
    explicit_size_ = true;
    return Status::Ok();
  }

  Status Write(const char* data, size_t size) override {
    const int64_t total = written_ + static_cast<int64_t>(size);
    if (explicit_size_ && total > reserved_) {
      return Status(ErrorCode::kFetchFailed,
                    "download passed its reserved size of " + std::to_string(reserved_) + " bytes");
    }
    if (total > cache_->max_bytes_) {
      return Status(ErrorCode::kFetchFailed,
                    "download of unknown size passed the disk cache limit of " +
                        std::to_string(cache_->max_bytes_) + " bytes ([cache] max_bytes)");
    }
    if (total > reserved_) {
      // Grow in steps, so a body of unknown size does not take the cache lock per chunk.
      const int64_t step = std::min(cache_->max_bytes_, std::max(total, reserved_ + kGrowStep));
      Status grown = SetReservation(step, false);
      if (!grown.ok() && step > total) grown = SetReservation(total, false);
      VSIEVE_RETURN_IF_ERROR(grown);
    }
    if (buffer_.size() + size > kWriteBuffer) VSIEVE_RETURN_IF_ERROR(Flush());
    if (size >= kWriteBuffer) {
      VSIEVE_RETURN_IF_ERROR(WriteAll(fd_.get(), data, size));
    } else {
      buffer_.insert(buffer_.end(), data, data + size);
    }
    written_ = total;
    return Status::Ok();
  }

  int64_t written() const override { return written_; }

  Status Restart() override {
    buffer_.clear();
    if (::ftruncate(fd_.get(), 0) != 0) return IoError("truncating a download", errno);
    if (::lseek(fd_.get(), 0, SEEK_SET) < 0) return IoError("rewinding a download", errno);
    written_ = 0;
    explicit_size_ = false;  // the next source reserves its own size, or grows from here
    return Status::Ok();
  }

  // fsync, rename into place, fsync the folder; the entry comes back pinned.
  StatusOr<CachedObject> Commit(const std::string& rel, const std::string& map_key,
                                const std::string& tier) {
    VSIEVE_RETURN_IF_ERROR(Flush());
    if (::fsync(fd_.get()) != 0) return IoError("fsync " + temp_path_, errno);
    fd_.Reset();
    auto committed = cache_->Commit(temp_path_, rel, map_key, tier, written_, reserved_);
    if (committed.ok()) committed_ = true;
    return committed;
  }

 private:
  Status Flush() {
    if (buffer_.empty()) return Status::Ok();
    Status status = WriteAll(fd_.get(), buffer_.data(), buffer_.size());
    buffer_.clear();
    return status;
  }

  Status SetReservation(int64_t target, bool explicit_size) {
    if (target > reserved_) {
      VSIEVE_RETURN_IF_ERROR(cache_->Reserve(target - reserved_, explicit_size, target));
    } else if (target < reserved_) {
      cache_->Release(reserved_ - target);
    }
    reserved_ = target;
    return Status::Ok();
  }

  const std::shared_ptr<DiskCache> cache_;
  const std::string temp_path_;
  UniqueFd fd_;
  std::vector<char> buffer_;
  int64_t written_ = 0;
  int64_t reserved_ = 0;
  bool explicit_size_ = false;  // Reserve() was called: the size is known
  bool committed_ = false;
};

DiskCache::DiskCache(std::string dir, int64_t max_bytes)
    : dir_(std::move(dir)), max_bytes_(max_bytes) {}

DiskCache::~DiskCache() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

StatusOr<std::shared_ptr<DiskCache>> DiskCache::Open(const std::string& dir, int64_t max_bytes) {
  if (dir.empty()) return Status(ErrorCode::kInvalidArgument, "disk cache: empty folder name");
  if (max_bytes < 1) {
    return Status(ErrorCode::kInvalidArgument, "disk cache: max_bytes must be at least 1");
  }
  std::shared_ptr<DiskCache> cache(new DiskCache(dir, max_bytes));
  VSIEVE_RETURN_IF_ERROR(cache->Start());
  return cache;
}

StatusOr<std::string> DiskCache::RelativePath(const ObjectRef& ref) {
  const auto invalid = [&](const std::string& why) {
    return Status(ErrorCode::kInvalidArgument, "cache key '" + ref.ToString() + "': " + why);
  };
  if (ref.key.empty()) return invalid("empty key");
  if (ref.key.find('\0') != std::string::npos || ref.bucket.find('\0') != std::string::npos) {
    return invalid("contains a NUL byte");
  }
  if (ref.key.front() == '/') return invalid("absolute key");
  if (ref.bucket.find('/') != std::string::npos || ref.bucket == "." || ref.bucket == "..") {
    return invalid("bucket is not a single folder name");
  }
  std::string rel = ref.bucket.empty() ? "_" : "b-" + ref.bucket;
  if (rel.size() > kMaxSegment) return invalid("bucket name too long");
  size_t start = 0;
  while (true) {
    const size_t slash = ref.key.find('/', start);
    const std::string segment =
        ref.key.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (segment == "..") return invalid("'..' segment");
    const std::string encoded = EncodeSegment(segment);
    if (encoded.size() > kMaxSegment) return invalid("path segment longer than 255 bytes");
    rel += "/" + encoded;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return rel;
}

Status DiskCache::Start() {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) {
    return Status(ErrorCode::kInvalidArgument,
                  "disk cache: cannot create folder " + dir_ + ": " + ec.message());
  }
  const std::string lock_path = dir_ + "/" + kLockFile;
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) {
    return Status(ErrorCode::kInvalidArgument,
                  "disk cache: cannot open " + lock_path + ": " + Errno(errno));
  }
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    return Status(ErrorCode::kInvalidArgument,
                  err == EWOULDBLOCK
                      ? "disk cache: folder " + dir_ + " is in use by another process"
                      : "disk cache: cannot lock " + lock_path + ": " + Errno(err));
  }

  // Partial files of a crashed process: none of them was committed.
  const fs::path partial = fs::path(dir_) / kPartialDir;
  const auto removed = fs::remove_all(partial, ec);
  if (ec) {
    return Status(ErrorCode::kInternal,
                  "disk cache: removing " + partial.string() + ": " + ec.message());
  }
  if (removed != static_cast<std::uintmax_t>(-1) && removed > 1) {
    spdlog::info("disk cache: removed {} partial download(s) left in {}", removed - 1,
                 partial.string());
  }
  fs::create_directory(partial, ec);
  if (ec) {
    return Status(ErrorCode::kInternal,
                  "disk cache: creating " + partial.string() + ": " + ec.message());
  }

  // Rebuild the index from the files present: <tier>/<bucket dir>/<encoded key>.
  struct Found {
    Entry entry;
    int64_t recency_ns = 0;
  };
  std::vector<Found> found;
  for (const fs::directory_entry& top : fs::directory_iterator(dir_, ec)) {
    const std::string tier = top.path().filename().string();
    if (tier.empty() || tier.front() == '.') continue;
    if (!top.is_directory(ec) || top.is_symlink(ec) || !ValidTierName(tier)) {
      spdlog::warn("disk cache: ignoring {} (not a cache folder)", top.path().string());
      continue;
    }
    for (auto it = fs::recursive_directory_iterator(top.path(), ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (!it->is_regular_file(ec) || it->is_symlink(ec)) continue;
      const fs::path rel_to_tier = fs::relative(it->path(), top.path(), ec);
      if (ec) break;
      // Decode: the bucket folder, then the key's segments.
      ObjectRef ref;
      bool ok = true;
      bool first = true;
      for (const fs::path& part : rel_to_tier) {
        const std::string name = part.string();
        if (first) {
          first = false;
          if (name == "_") {
            ref.bucket.clear();
          } else if (name.rfind("b-", 0) == 0 && name.size() > 2) {
            ref.bucket = name.substr(2);
          } else {
            ok = false;
            break;
          }
          continue;
        }
        std::string segment;
        if (!DecodeSegment(name, &segment)) {
          ok = false;
          break;
        }
        ref.key += segment + "/";
      }
      if (ok && !ref.key.empty()) ref.key.pop_back();  // the last '/'
      // Only what RelativePath() would produce for the decoded ref is the cache's.
      ok = ok && !ref.key.empty();
      if (ok) {
        const StatusOr<std::string> rel = RelativePath(ref);
        ok = rel.ok() && *rel == rel_to_tier.string();
      }
      if (!ok) {
        spdlog::warn("disk cache: ignoring {} (not a cache file)", it->path().string());
        continue;
      }
      struct stat st {};
      if (::stat(it->path().c_str(), &st) != 0 || st.st_size == 0) continue;
      Found f;
      f.entry.rel = tier + "/" + rel_to_tier.string();
      f.entry.map_key = MapKey(ref);
      f.entry.source_tier = tier;
      f.entry.size_bytes = st.st_size;
      const int64_t atime = st.st_atim.tv_sec * 1'000'000'000LL + st.st_atim.tv_nsec;
      const int64_t mtime = st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec;
      f.recency_ns = std::max(atime, mtime);
      found.push_back(std::move(f));
    }
    if (ec) {
      return Status(ErrorCode::kInternal,
                    "disk cache: scanning " + top.path().string() + ": " + ec.message());
    }
  }
  if (ec) return Status(ErrorCode::kInternal, "disk cache: scanning " + dir_ + ": " + ec.message());

  std::sort(found.begin(), found.end(),
            [](const Found& a, const Found& b) { return a.recency_ns > b.recency_ns; });
  std::lock_guard lock(mutex_);
  for (Found& f : found) {
    if (index_.count(f.entry.map_key) != 0) {
      // The same object under two tier folders: keep the more recent copy.
      ::unlink((dir_ + "/" + f.entry.rel).c_str());
      continue;
    }
    lru_.push_back(std::move(f.entry));
    index_[lru_.back().map_key] = std::prev(lru_.end());
    committed_bytes_ += lru_.back().size_bytes;
  }
  const size_t before = lru_.size();
  MakeRoomLocked(0);
  if (lru_.size() < before) {
    spdlog::info("disk cache: evicted {} file(s) at start to fit {} bytes", before - lru_.size(),
                 max_bytes_);
  }
  PublishLocked();
  spdlog::info("disk cache: {} holds {} file(s), {} of {} bytes", dir_, lru_.size(),
               committed_bytes_, max_bytes_);
  return Status::Ok();
}

void DiskCache::PublishLocked() {
  Metrics& m = CacheMetrics();
  m.bytes.Set(static_cast<double>(committed_bytes_ + reserved_bytes_));
  m.limit.Set(static_cast<double>(max_bytes_));
  m.files.Set(static_cast<double>(lru_.size()));
}

int64_t DiskCache::used_bytes() const {
  std::lock_guard lock(mutex_);
  return committed_bytes_ + reserved_bytes_;
}

int64_t DiskCache::file_count() const {
  std::lock_guard lock(mutex_);
  return static_cast<int64_t>(lru_.size());
}

std::shared_ptr<const void> DiskCache::PinLocked(Lru::iterator entry) {
  ++entry->pins;
  auto token = std::make_shared<PinToken>();
  token->release = [cache = shared_from_this(), key = entry->map_key] { cache->Unpin(key); };
  return token;
}

void DiskCache::Unpin(const std::string& map_key) {
  std::lock_guard lock(mutex_);
  const auto it = index_.find(map_key);
  if (it != index_.end() && it->second->pins > 0) --it->second->pins;
}

void DiskCache::EvictLocked(Lru::iterator entry) {
  const fs::path path = fs::path(dir_) / entry->rel;
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    spdlog::warn("disk cache: cannot remove {}: {}", path.string(), Errno(errno));
  }
  // Empty folders up to the tier folder go too (the lock keeps commits out meanwhile).
  fs::path parent = path.parent_path();
  const fs::path root = fs::path(dir_) / entry->source_tier;
  while (parent != root && parent.string().size() > root.string().size() &&
         ::rmdir(parent.c_str()) == 0) {
    parent = parent.parent_path();
  }
  committed_bytes_ -= entry->size_bytes;
  index_.erase(entry->map_key);
  lru_.erase(entry);
  CacheMetrics().evictions.Inc();
}

bool DiskCache::MakeRoomLocked(int64_t need) {
  auto it = lru_.end();
  while (committed_bytes_ + reserved_bytes_ + need > max_bytes_ && it != lru_.begin()) {
    --it;
    if (it->pins > 0) continue;
    auto victim = it;
    ++it;  // stays valid: list iterators survive erasing another element
    EvictLocked(victim);
  }
  return committed_bytes_ + reserved_bytes_ + need <= max_bytes_;
}

Status DiskCache::Reserve(int64_t more, bool explicit_size, int64_t wanted_total) {
  std::lock_guard lock(mutex_);
  if (!MakeRoomLocked(more)) {
    int64_t pinned = 0;
    for (const Entry& entry : lru_) pinned += entry.pins > 0 ? entry.size_bytes : 0;
    PublishLocked();
    return Status(ErrorCode::kFetchFailed,
                  "no room in the disk cache for " +
                      std::string(explicit_size ? "an object of " : "a download at ") +
                      std::to_string(wanted_total) +
                      " bytes: " + std::to_string(committed_bytes_ + reserved_bytes_) + " of " +
                      std::to_string(max_bytes_) + " bytes in use (" + std::to_string(pinned) +
                      " pinned, " + std::to_string(reserved_bytes_) + " reserved)",
                  /*retryable=*/true);
  }
  reserved_bytes_ += more;
  PublishLocked();
  return Status::Ok();
}

void DiskCache::Release(int64_t bytes) {
  std::lock_guard lock(mutex_);
  reserved_bytes_ -= bytes;
  PublishLocked();
}

StatusOr<CachedObject> DiskCache::Commit(const std::string& temp_path, const std::string& rel,
                                         const std::string& map_key, const std::string& tier,
                                         int64_t size, int64_t reserved) {
  const fs::path target = fs::path(dir_) / rel;
  CachedObject object;
  {
    std::lock_guard lock(mutex_);
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    if (ec) {
      return Status(ErrorCode::kFetchFailed,
                    "disk cache: creating " + target.parent_path().string() + ": " + ec.message(),
                    /*retryable=*/true);
    }
    if (::rename(temp_path.c_str(), target.c_str()) != 0) {
      return IoError("renaming into " + target.string(), errno);
    }
    // The reservation becomes the file; what the download did not use goes back.
    reserved_bytes_ -= reserved;
    committed_bytes_ += size;
    // Single flight: nobody else downloaded this key meanwhile.
    assert(index_.count(map_key) == 0);
    lru_.push_front(Entry{rel, map_key, tier, size, 0});
    index_[map_key] = lru_.begin();
    object.pin = PinLocked(lru_.begin());
    PublishLocked();
  }
  VSIEVE_RETURN_IF_ERROR(FsyncDir(target.parent_path().string()));
  object.path = target.string();
  object.source_tier = tier;
  object.size_bytes = size;
  return object;
}

CachedObject DiskCache::HitLocked(Lru::iterator entry) {
  CacheMetrics().hits.Inc();
  lru_.splice(lru_.begin(), lru_, entry);
  CachedObject object;
  object.path = (fs::path(dir_) / entry->rel).string();
  object.source_tier = entry->source_tier;
  object.size_bytes = entry->size_bytes;
  object.cache_hit = true;
  object.pin = PinLocked(entry);
  return object;
}

void DiskCache::Touch(const std::string& path) {
  // Recency survives a restart through the access time (the file is pinned meanwhile).
  const timespec times[2] = {{0, UTIME_NOW}, {0, UTIME_OMIT}};
  ::utimensat(AT_FDCWD, path.c_str(), times, 0);
}

StatusOr<std::optional<CachedObject>> DiskCache::Lookup(const ObjectRef& ref) {
  VSIEVE_RETURN_IF_ERROR(RelativePath(ref).status());
  std::optional<CachedObject> object;
  {
    std::lock_guard lock(mutex_);
    const auto it = index_.find(MapKey(ref));
    if (it == index_.end()) {
      CacheMetrics().misses.Inc();
      return object;
    }
    object = HitLocked(it->second);
  }
  Touch(object->path);
  return object;
}

StatusOr<CachedObject> DiskCache::Fetch(const ObjectRef& ref, const Fill& fill) {
  VSIEVE_ASSIGN_OR_RETURN(const std::string rel, RelativePath(ref));
  const std::string map_key = MapKey(ref);
  std::shared_ptr<Flight> flight;
  {
    std::unique_lock lock(mutex_);
    const auto hit = index_.find(map_key);
    if (hit != index_.end()) {
      CachedObject object = HitLocked(hit->second);
      lock.unlock();
      Touch(object.path);
      return object;
    }
    CacheMetrics().misses.Inc();
    const auto running = flights_.find(map_key);
    if (running != flights_.end()) {
      CacheMetrics().shared.Inc();
      std::shared_ptr<Flight> shared = running->second;
      flight_done_.wait(lock, [&] { return shared->done; });
      StatusOr<CachedObject> result = *shared->result;
      lock.unlock();
      shared.reset();  // outside the lock: dropping a pin takes it
      return result;
    }
    flight = std::make_shared<Flight>();
    flights_[map_key] = flight;
  }
  StatusOr<CachedObject> result = RunFill(ref, rel, map_key, fill);
  {
    std::lock_guard lock(mutex_);
    flight->result = result;
    flight->done = true;
    flights_.erase(map_key);
  }
  flight_done_.notify_all();
  return result;
}

StatusOr<CachedObject> DiskCache::RunFill(const ObjectRef& ref, const std::string& rel,
                                          const std::string& map_key, const Fill& fill) {
  const std::string temp = dir_ + "/" + kPartialDir + "/" + RandomName();
  UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (fd.get() < 0) return IoError("creating " + temp, errno);
  Sink sink(shared_from_this(), temp, std::move(fd));
  VSIEVE_ASSIGN_OR_RETURN(FillOutcome outcome, fill(&sink));
  CachedObject object;
  object.source_tier = outcome.source_tier;
  object.tier_errors = outcome.tier_errors;
  if (!outcome.in_place_path.empty()) {
    object.path = outcome.in_place_path;
    object.size_bytes = outcome.size_bytes;
    return object;  // the sink is aborted: nothing to cache
  }
  if (!ValidTierName(outcome.source_tier)) {
    return Status(ErrorCode::kInternal,
                  "disk cache: bad source tier name '" + outcome.source_tier + "'");
  }
  if (sink.written() == 0) {
    return Status(ErrorCode::kInputEmpty, ref.ToString() + ": object is empty");
  }
  StatusOr<CachedObject> committed =
      sink.Commit(outcome.source_tier + "/" + rel, map_key, outcome.source_tier);
  if (committed.ok()) committed->tier_errors = std::move(outcome.tier_errors);
  return committed;
}

}  // namespace vsieve::storage
