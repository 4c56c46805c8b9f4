#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"
#include "daemon/config/filter_config.h"
#include "storage/output_store.h"

namespace vsieve::daemon {

// The crop-and-store step of seed 001 ("crop the video, upload the cropped video to OSS, use the
// cropped video"), after analysis: from a row's info it decides whether a cropped video is
// written, encodes it into a temporary file (media::WriteCroppedVideo), stores it at
// [output] url under the key template, removes the temporary file, and records the outcome in
// info.abnormal_region_crop:
//   "video_oss_url": the stored object's URL (only when written);
//   "video": {"status": "written", "box", "width", "height", "frames", "duration_s", "bytes",
//             "codec", "encoder", "crf", "preset", "audio"}
//          | {"status": "not_needed", "reason"}   the crop is the whole frame: no re-encode
//          | {"status": "refused", "reason"}      no clean area, or under [output] min_area
// A refused or unneeded video is not a failure. Temporary files are named after the owner and
// live in [output] temp_dir (default cache.dir/output-tmp); Create() removes the ones an
// earlier process of the same owner left behind (a kill -9 mid-encode).
// Thread-safe: Produce() may run on several threads at once.
class CropOutput {
 public:
  // `config.output` must be enabled(). The s3 destination uses the first [[tiers]] entry of
  // kind "s3" (its endpoint, region, credentials, transport and retry settings).
  // Errors: kInvalidArgument (a bad url, missing credentials, a temp folder that cannot be
  // made).
  static common::StatusOr<std::unique_ptr<CropOutput>> Create(const FilterConfig& config,
                                                              const std::string& owner,
                                                              const storage::TierDeps& deps = {});

  // Writes and stores the cropped video of `source_path` (a local file) for the row `video_id`
  // / `bucket` when `info` (an analysed row's info) asks for one. Adds stage_ms "encode" and
  // "upload" for the work done. Errors (the row fails): kEncodeFailed (stage "encode"),
  // kTimeout (the deadline `deadline_s`, or `cancel`), kUploadFailed (stage "upload", retryable
  // when the store's failure was transient), kInvalidArgument for a key the template makes
  // invalid. Blocks for the encode and the upload.
  common::Status Produce(const std::string& video_id, const std::string& bucket,
                         const std::string& source_path, nlohmann::json* info,
                         std::map<std::string, double>* stage_ms, double deadline_s,
                         const std::atomic<bool>* cancel = nullptr);

  // The key of a row under the template ({prefix}, {video_id}, {bucket}).
  std::string KeyFor(const std::string& video_id, const std::string& bucket) const;

 private:
  CropOutput(OutputConfig config, std::string temp_prefix,
             std::unique_ptr<storage::OutputStore> store)
      : config_(std::move(config)),
        temp_prefix_(std::move(temp_prefix)),
        store_(std::move(store)) {}

  const OutputConfig config_;
  const std::string temp_prefix_;  // temp_dir + "/" + owner + "-"
  std::unique_ptr<storage::OutputStore> store_;
  std::atomic<uint64_t> serial_{0};
};

}  // namespace vsieve::daemon
