#include "daemon/pipeline/reader_factory.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <utility>

#include "storage/disk_cache.h"
#include "storage/tier_factory.h"
#include "storage/tiered_reader.h"

namespace vsieve::daemon {

using common::ErrorCode;
using common::Status;
using common::StatusOr;

bool HasTiers(const FilterConfig& config) { return !config.tiers.empty(); }

StatusOr<std::shared_ptr<storage::Reader>> MakeReader(const FilterConfig& config) {
  std::vector<std::unique_ptr<storage::Tier>> tiers;
  for (size_t i = 0; i < config.tiers.size(); ++i) {
    auto built = storage::CreateTier(config.tiers[i]);
    if (!built.ok()) return built.status().WithContext("tiers[" + std::to_string(i) + "]");
    tiers.push_back(std::move(built).value());
  }
  return MakeReader(config, std::move(tiers));
}

StatusOr<std::shared_ptr<storage::Reader>> MakeReader(
    const FilterConfig& config, std::vector<std::unique_ptr<storage::Tier>> tiers) {
  if (tiers.empty())
    return std::shared_ptr<storage::Reader>(std::make_shared<storage::LocalReader>());
  auto cache = storage::DiskCache::Open(config.cache.dir, config.cache.max_bytes);
  if (!cache.ok()) return cache.status().WithContext("[cache]");
  std::string names;
  for (const auto& tier : tiers) names += (names.empty() ? "" : ", ") + tier->name();
  spdlog::info("fetch: tiers {} behind the disk cache {} ({} bytes)", names, config.cache.dir,
               config.cache.max_bytes);
  return std::shared_ptr<storage::Reader>(
      std::make_shared<storage::TieredReader>(std::move(tiers), std::move(*cache)));
}

StatusOr<storage::ObjectRef> ProbeInputRef(const std::string& input, bool tiers) {
  const auto refused = [&](const std::string& why) {
    return Status(ErrorCode::kInvalidArgument, "input '" + input + "': " + why);
  };
  for (std::string_view scheme : {"s3://", "oss://"}) {
    if (input.rfind(scheme, 0) != 0) continue;
    if (!tiers) return refused("object URIs need [[tiers]] in the config");
    const std::string rest = input.substr(scheme.size());
    const size_t slash = rest.find('/');
    if (slash == 0 || slash == std::string::npos || slash + 1 == rest.size()) {
      return refused("expected " + std::string(scheme) + "BUCKET/KEY");
    }
    return storage::ObjectRef{rest.substr(0, slash), rest.substr(slash + 1)};
  }
  if (!tiers || input.rfind("file://", 0) == 0 || input.rfind('/', 0) == 0) {
    return storage::ObjectRef{"", input};
  }
  if (input.rfind("./", 0) == 0 || input.rfind("../", 0) == 0) {
    std::error_code ec;
    const std::filesystem::path absolute = std::filesystem::absolute(input, ec);
    if (ec) return refused(ec.message());
    return storage::ObjectRef{"", absolute.string()};
  }
  const size_t slash = input.find('/');
  if (slash == 0 || slash == std::string::npos || slash + 1 == input.size()) {
    return refused(
        "with [[tiers]] configured, give s3://BUCKET/KEY, BUCKET/KEY, or a local file as "
        "/abs/path, ./rel/path or file://PATH");
  }
  return storage::ObjectRef{input.substr(0, slash), input.substr(slash + 1)};
}

}  // namespace vsieve::daemon
