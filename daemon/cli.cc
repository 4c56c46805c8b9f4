#include "daemon/cli.h"

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <iostream>
#include <thread>

#include "common/log.h"
#include "common/stopwatch.h"
#include "daemon/filter_config.h"
#include "daemon/probe_command.h"

namespace vsieve::daemon {
namespace {

// Flags shared by every subcommand that runs the filter. Values given here override the file.
struct FilterFlags {
  std::string config_path;
  std::vector<std::string> model_dirs;
  std::string log_level;
  int analysis_max_side = 0;
  int clip_frames = 0;
  int region_frames = 0;
  bool no_text = false;
  bool no_windows = false;
  double crop_aspect = -1.0;
};

void AddFilterFlags(CLI::App* cmd, FilterFlags* flags) {
  cmd->add_option("--config", flags->config_path, "TOML config file (see etc/vsieve.example.toml)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--models-dir", flags->model_dirs,
                  "Folder to search for model files (repeatable; default: ./vsieve-models, "
                  "../shared/assets/models, then opencv-data)");
  cmd->add_option("--log-level", flags->log_level, "trace, debug, info, warn (default), error, off");
  cmd->add_option("--analysis-max-side", flags->analysis_max_side,
                  "Scale sampled frames so the long side is at most this (default 640)")
      ->check(CLI::Range(32, 8192));
  cmd->add_option("--clip-frames", flags->clip_frames,
                  "Frames the whole-clip heads read (default 16)")
      ->check(CLI::Range(1, 512));
  cmd->add_option("--region-frames", flags->region_frames,
                  "Frames region detection reads (default 8)")
      ->check(CLI::Range(1, 512));
  cmd->add_flag("--no-text", flags->no_text, "Skip the DB text detector");
  cmd->add_flag("--no-windows", flags->no_windows,
                "Skip seg_simcam_filter and inverse_seg_simcam_filter");
  cmd->add_option("--crop-aspect", flags->crop_aspect,
                  "Keep the safe crop at this width/height ratio (0 = any)")
      ->check(CLI::Range(0.0, 100.0));
}

// Builds the config: defaults, then the file, then flags. Returns false after logging an error.
bool BuildConfig(const FilterFlags& flags, FilterConfig* config) {
  config->model_dirs = DefaultModelDirs();
  if (!flags.config_path.empty()) {
    common::Status status = LoadFilterConfig(flags.config_path, config);
    if (!status.ok()) {
      std::cerr << "vsieve: " << status.message() << "\n";
      return false;
    }
  }
  if (!flags.model_dirs.empty()) config->model_dirs = flags.model_dirs;
  if (!flags.log_level.empty()) config->log_level = flags.log_level;
  auto& opt = config->options;
  if (flags.analysis_max_side > 0) opt.limits.analysis_max_side = flags.analysis_max_side;
  if (flags.clip_frames > 0) opt.sampling.clip_frames = flags.clip_frames;
  if (flags.region_frames > 0) opt.sampling.region_frames = flags.region_frames;
  if (flags.no_text) opt.text_regions = false;
  if (flags.no_windows) opt.windows = false;
  if (flags.crop_aspect >= 0.0) opt.crop.aspect = flags.crop_aspect;
  if (common::Status status = ValidateFilterOptions(opt); !status.ok()) {
    std::cerr << "vsieve: " << status.message() << "\n";
    return false;
  }
  if (common::Status status = common::InitLogging(config->log_level); !status.ok()) {
    std::cerr << "vsieve: " << status.message() << "\n";
    return false;
  }
  ResolveModels(config);
  return true;
}

}  // namespace

int RunCli(int argc, char** argv) {
  CLI::App app{
      "vsieve: screens video datasets by quality. Finds abnormal regions (black borders, blurred "
      "fill, burned-in text, watermarks), a safe crop, and runs quality classifiers on the "
      "cropped frames."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "vsieve 0.1.0");

  ProbeOptions probe;
  FilterFlags probe_flags;
  CLI::App* probe_cmd = app.add_subcommand(
      "probe",
      "Run the whole filter on videos without a table; print one JSON output row per input, in "
      "input order. Exit 0 even when some inputs fail (each failure is a row with succeed "
      "\"false\").");
  probe_cmd->add_option("inputs", probe.inputs, "Video paths or file:// URIs")->required();
  probe_cmd->add_flag("--pretty", probe.pretty, "Indented JSON for humans");
  probe.jobs = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  probe_cmd->add_option("-j,--jobs", probe.jobs, "Videos filtered at once (default: CPU count)")
      ->check(CLI::Range(1, 256));
  AddFilterFlags(probe_cmd, &probe_flags);

  FilterFlags validate_flags;
  CLI::App* validate_cmd = app.add_subcommand(
      "validate",
      "Check the config, load every model, and print the effective settings as JSON; exit 2 "
      "naming the bad key or file otherwise.");
  AddFilterFlags(validate_cmd, &validate_flags);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  if (probe_cmd->parsed()) {
    FilterConfig config;
    if (!BuildConfig(probe_flags, &config)) return 2;
    return RunProbe(probe, config, std::cout);
  }
  if (validate_cmd->parsed()) {
    FilterConfig config;
    if (!BuildConfig(validate_flags, &config)) return 2;
    common::Stopwatch watch;
    auto filter = models::VideoFilter::Create(config.options);
    if (!filter.ok()) {
      std::cerr << "vsieve: " << filter.status().ToString() << "\n";
      return 2;
    }
    nlohmann::json json = FilterOptionsToJson(config.options);
    json["models"]["search_dirs"] = config.model_dirs;
    json["models"]["load_ms"] = std::lround(watch.ElapsedMillis());
    json["warnings"] = (*filter)->warnings();
    json["config_hash"] = ConfigHash(config.options);
    std::cout << json.dump(2) << "\n";
    return 0;
  }
  return 1;
}

}  // namespace vsieve::daemon
