#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "models/filter/video_filter.h"
#include "storage/tier_factory.h"

namespace vsieve::daemon {

// [store]: where input rows and results live.
struct StoreConfig {
  std::string url = "sqlite://vsieve.db";  // relative to the working directory
  int lease_seconds = 60;
};

// [pipeline]: the daemon's stages (DESIGN.md, data flow).
struct PipelineConfig {
  std::vector<std::string> tables;  // tables to process; empty = all
  int download_threads = 2;
  int decode_threads = 2;
  int workers = 2;                      // analysis threads
  int queue_depth = 8;                  // capacity of each bounded queue
  int claim_batch = 4;                  // rows claimed per claim transaction
  int write_batch = 16;                 // results per write transaction ...
  double write_interval_seconds = 1.0;  // ... or whatever has waited this long
  double video_deadline_seconds = 600;  // per video, fetch to result
  int max_attempts = 5;
  double backoff_base_seconds = 1.0;  // retry delay: full jitter, base * 2^attempt, capped
  double backoff_cap_seconds = 300;
  double grace_seconds = 30;     // SIGTERM: time for in-flight videos to finish
  double heartbeat_seconds = 0;  // 0 = lease_seconds / 3
  std::string log_file;          // "" = stderr; SIGHUP reopens it
  std::string core_bind;         // "" = off, "auto", or "decode=0-1;workers=2-3" (core_bind.h)
  int encode_threads = 1;        // [output]: videos cropped, encoded and stored at once
};

// [devices]: where models run; "cpu:N" here ("cuda:N", "npu:N" are refused with a clear error
// until a backend is compiled in). Each device holds `instances` exclusive filter instances
// (scaled by `weights`, see models::PoolOptions).
struct DeviceConfig {
  std::vector<std::string> list = {"cpu:0"};
  int instances = 2;
  double borrow_timeout_seconds = 300;
  std::vector<double> weights;          // one per device, > 0; empty = equal
  std::vector<double> budgets;          // `budget`: one number for every device, or one per device;
                                        // 0 = unlimited; empty = no budgets
  std::map<std::string, double> costs;  // [devices.costs] model name -> budget a busy instance
                                        // holds ("video_filter" = the built-in filter); 0 if absent
  bool isolate = false;                 // run model instances in child processes
  double model_timeout_seconds = 30;    // isolated: one call, then the child is killed
  double restart_backoff_base_seconds = 1;  // isolated: restart delay after a failure ...
  double restart_backoff_cap_seconds = 60;  // ... doubling up to this
};

// [batching]: micro-batching of the [[heads]]' items (a clip or window, or one frame of an NCHW
// head) from several videos into one forward pass, for models that take a batch dimension.
struct BatchingConfig {
  int max_batch = 8;        // items per pass at most
  double max_delay_ms = 5;  // the oldest waiting item waits at most this long for company
};

// [admin]: the admin HTTP API of `vsieve run` (daemon/ops/admin_server.h).
struct AdminConfig {
  std::string listen = "127.0.0.1:9464";  // HOST:PORT; port 0 = any free port; "off" or "" = none
  bool listen_set = false;  // given by the file or a flag: an address that cannot be bound is fatal
  std::string token_file;   // bearer token for POST; "" = POST only from loopback addresses
  std::string address_file;  // "" = none; else the bound HOST:PORT is written there
};

// [cache]: the local disk cache in front of the remote tiers (used only when tiers are
// configured). `dir` is relative to the working directory unless absolute.
struct CacheConfig {
  std::string dir = "cache";
  int64_t max_bytes = 50LL << 30;  // "50GiB"
};

// [output]: the cropped videos (seed 001: crop the video, upload it, use it). With a `url`, each
// row whose crop is smaller than the frame gets its crop written as a new H.264 MP4 and stored
// under `key` (see daemon/pipeline/crop_output.h).
struct OutputConfig {
  std::string url;         // "file:///path/" or "s3://bucket/prefix/"; "" = no destination
  bool crop_video = true;  // write cropped videos when a url is set
  std::string codec = "libx264";
  int crf = 18;
  std::string preset = "veryfast";
  double min_area = 0.1;  // a crop keeping less of the frame than this share is refused
  int64_t multipart_bytes = 64LL << 20;  // s3: files above this go up in parts ...
  int64_t part_bytes = 16LL << 20;       // ... of this size (at least 5MiB)
  // The object key: {prefix} (the url's path), {video_id}, {bucket} (the row's oss_bucket).
  std::string key = "{prefix}{video_id}.mp4";
  std::string
      temp_dir;     // where files are encoded before they are stored; "" = cache.dir/output-tmp
  int threads = 0;  // libav threads of one video's decoder and encoder; 0 = libav's choice

  // Whether cropped videos are written at all: a url and crop_video.
  bool enabled() const { return crop_video && !url.empty(); }
};

// The settings of every subcommand: the TOML sections [sampling], [limits], [models], [filter],
// [log], [store], [pipeline], [devices], [batching], [admin], [cache], [output] and the [[tiers]]
// array (see etc/vsieve.example.toml). Unknown keys and out-of-range values are errors that name
// the key. Flags are applied after the file.
struct FilterConfig {
  models::FilterOptions options;
  std::vector<std::string> model_dirs;  // searched in order for model files
  std::string log_level = "warn";
  StoreConfig store;
  PipelineConfig pipeline;
  DeviceConfig devices;
  BatchingConfig batching;
  AdminConfig admin;
  CacheConfig cache;
  OutputConfig output;
  // [[tiers]]: where videos are fetched from, tried in order. Empty: rows name plain local
  // paths (LocalReader).
  std::vector<storage::TierConfig> tiers;
};

// The model search folders used when none is configured: ./vsieve-models (what the setup script
// fetches), then ../shared/assets/models (the development assets), then opencv-data's folders.
std::vector<std::string> DefaultModelDirs();

// Reads a TOML file into `config`. Errors: kInvalidArgument naming the file, key and reason.
common::Status LoadFilterConfig(const std::string& path, FilterConfig* config);

// Parses a byte size: a plain count ("1048576") or a number with a unit, binary (KiB, MiB, GiB,
// TiB) or decimal (B, KB, MB, GB, TB), case-insensitive, optional space ("512MiB", "1.5 GB").
// Errors: kInvalidArgument for anything else, a size under 1 byte, or one past 2^63-1.
common::StatusOr<int64_t> ParseByteSize(std::string_view text);

// Range checks for every option; errors name the key.
common::Status ValidateFilterOptions(const models::FilterOptions& options);

// Range checks for [store], [pipeline], [devices], [batching], [admin], [cache] and [[tiers]]
// (LoadFilterConfig() runs them; call again after applying flags). Errors: kInvalidArgument
// naming the key, e.g. "config key 'pipeline.workers': must be at least 1", "config key
// 'tiers[1].endpoint': ..." (tiers are counted from 0).
common::Status ValidateServiceConfig(const FilterConfig& config);

// Range checks for [output] and pipeline.encode_threads' stage (part of ValidateServiceConfig()):
// the url's scheme (an s3:// url needs an s3 tier), crf, min_area, part sizes, the key template
// (it must hold {video_id}) and, when cropped videos are enabled, that the encoder exists.
common::Status ValidateOutputConfig(const FilterConfig& config);

// Fills config->options.models from config->model_dirs.
void ResolveModels(FilterConfig* config);

// The options as JSON (for config_hash and `--print-config`).
nlohmann::json FilterOptionsToJson(const models::FilterOptions& options);

// A short stable hash of the options ("fnv1a64:" + 16 hex digits).
std::string ConfigHash(const models::FilterOptions& options);

}  // namespace vsieve::daemon
