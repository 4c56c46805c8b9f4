#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/status.h"
#include "storage/reader.h"
#include "storage/tier.h"

namespace vsieve::storage {

// A file in the disk cache (or, for an in-place fill, the object where it already lives) and the
// pin that keeps it there. While any copy of `pin` is alive the file is never evicted.
struct CachedObject {
  std::string path;         // a readable file
  std::string source_tier;  // the tier that originally served the bytes ("dcache", "object")
  int64_t size_bytes = 0;
  bool cache_hit = false;           // found in the cache (false for the download that put it there)
  std::shared_ptr<const void> pin;  // null for an in-place object
  std::vector<TierError> tier_errors;  // from the fill that put it there (none on a hit)
};

// What a fill (DiskCache::Fetch's download callback) did.
struct FillOutcome {
  // The tier whose bytes these are; kept with the cached file so that a later hit can report it.
  // Lower-case letters, digits, '_' and '-' only.
  std::string source_tier;
  // Non-empty: the object is readable here as it is (a mounted folder); the sink was not used and
  // nothing is cached. Empty: the bytes written into the sink are committed into the cache.
  std::string in_place_path;
  int64_t size_bytes = 0;  // the in-place object's size (ignored when the sink was written)
  std::vector<TierError> tier_errors;  // tiers that failed before this one served
};

// The local disk cache in front of the remote tiers: a folder of files keyed by ObjectRef
// (`<dir>/<source_tier>/<bucket>/<key>`), at most `max_bytes` in total.
//
// Downloads go to `<dir>/.partial/<random>` through a DownloadSink that reserves room before the
// body (Reserve, from Content-Length) and enforces the byte cap while writing (Write grows the
// reservation as it goes when the size is unknown). Room is made by evicting the least recently
// used files that nobody has pinned. A finished download is fsynced, renamed into place and the
// folder fsynced (commit); a failed one is deleted and its reservation released (abort). The
// bytes of committed files plus every open reservation never exceed `max_bytes`.
//
// At Open: the cache folder is locked against a second process (flock on `<dir>/.lock`), partial
// files left by a crash are removed, the index is rebuilt from the files present (recency from
// their access and modification times) and the oldest are evicted down to `max_bytes`.
//
// Identical concurrent Fetch() calls share one download (single flight): the first caller runs
// the fill, the others wait for it and get the same result (each with the pin) or its error.
//
// Ownership: created by Open() as a shared_ptr; every pin holds a reference to the cache, so the
// cache outlives the last pin. Thread-safety: every method is safe from any thread.
// Metrics (process-wide registry): vsieve_cache_bytes, vsieve_cache_limit_bytes,
// vsieve_cache_files, vsieve_cache_evictions_total, vsieve_cache_requests_total{result},
// vsieve_cache_shared_downloads_total.
class DiskCache : public std::enable_shared_from_this<DiskCache> {
 public:
  // Opens (creating if needed) the cache at `dir`. Blocks for the start-up scan. Errors:
  // kInvalidArgument (max_bytes < 1, the folder cannot be created, or it is locked by another
  // process), kInternal (a scan or removal fails).
  static common::StatusOr<std::shared_ptr<DiskCache>> Open(const std::string& dir,
                                                           int64_t max_bytes);
  ~DiskCache();
  DiskCache(const DiskCache&) = delete;
  DiskCache& operator=(const DiskCache&) = delete;

  // The cache file of `ref` relative to the cache folder, without the tier folder
  // ("b-bucket/dir/key.mp4"; "_/key.mp4" without a bucket). Keys that would escape the folder
  // are refused: kInvalidArgument for an empty or absolute key, a ".." segment, a NUL byte, or
  // a bucket with '/', NUL, "." or "..". Empty and "." segments and '%' are escaped.
  static common::StatusOr<std::string> RelativePath(const ObjectRef& ref);

  // A pinned hit, or nullopt on a miss. A hit becomes the most recently used. Counts
  // vsieve_cache_requests_total. Errors: kInvalidArgument (see RelativePath()).
  common::StatusOr<std::optional<CachedObject>> Lookup(const ObjectRef& ref);

  // The download callback of Fetch(): writes the object into the sink (or finds it in place)
  // and says which tier served it. Called on the fetching thread, at most once per Fetch().
  using Fill = std::function<common::StatusOr<FillOutcome>(DownloadSink* sink)>;

  // Lookup(), and on a miss either waits for the identical download already in flight or runs
  // `fill` with a fresh sink and commits what it wrote. Blocks for the download. Errors: those of
  // `fill` (its sink is then aborted), kInvalidArgument for a bad key, kInputEmpty when nothing
  // was written, kFetchFailed when the sink refuses the bytes (larger than max_bytes: not
  // retryable; everything pinned: retryable) or a file operation fails (write, fsync, rename:
  // retryable).
  common::StatusOr<CachedObject> Fetch(const ObjectRef& ref, const Fill& fill);

  const std::string& dir() const { return dir_; }
  int64_t max_bytes() const { return max_bytes_; }

  // Committed plus reserved bytes; never more than max_bytes().
  int64_t used_bytes() const;
  // Committed files in the index.
  int64_t file_count() const;

 private:
  class Sink;
  // Entries and flights live in the containers below and are guarded by mutex_ with them.
  struct Entry {
    std::string rel;      // "<tier>/<bucket dir>/<encoded key>"
    std::string map_key;  // bucket + '\0' + key
    std::string source_tier;
    int64_t size_bytes = 0;
    int pins = 0;  // live pin tokens; never evicted while > 0
  };
  using Lru = std::list<Entry>;  // front: most recently used
  struct Flight {
    bool done = false;                                     // guarded by mutex_
    std::optional<common::StatusOr<CachedObject>> result;  // guarded by mutex_
  };

  DiskCache(std::string dir, int64_t max_bytes);

  common::Status Start();
  std::shared_ptr<const void> PinLocked(Lru::iterator entry);
  CachedObject HitLocked(Lru::iterator entry);
  static void Touch(const std::string& path);
  void Unpin(const std::string& map_key);
  // Evicts unpinned files, least recently used first, until `need` more bytes fit. True when
  // they fit.
  bool MakeRoomLocked(int64_t need);
  void EvictLocked(Lru::iterator entry);
  void PublishLocked();
  common::StatusOr<CachedObject> RunFill(const ObjectRef& ref, const std::string& rel,
                                         const std::string& map_key, const Fill& fill);

  // The sink's side of the accounting.
  common::Status Reserve(int64_t more, bool explicit_size, int64_t wanted_total);
  void Release(int64_t bytes);
  common::StatusOr<CachedObject> Commit(const std::string& temp_path, const std::string& rel,
                                        const std::string& map_key, const std::string& tier,
                                        int64_t size, int64_t reserved);

  const std::string dir_;
  const int64_t max_bytes_;
  int lock_fd_ = -1;  // flock on <dir>/.lock, held for the cache's life

  mutable std::mutex mutex_;
  std::condition_variable flight_done_;
  Lru lru_;                                     // guarded by mutex_
  std::map<std::string, Lru::iterator> index_;  // map_key -> entry; guarded by mutex_
  std::map<std::string, std::shared_ptr<Flight>>
      flights_;                  // map_key -> download; guarded by mutex_
  int64_t committed_bytes_ = 0;  // guarded by mutex_
  int64_t reserved_bytes_ = 0;   // guarded by mutex_
};

}  // namespace vsieve::storage
