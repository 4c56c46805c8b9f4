#include "daemon/commands/cli.h"

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <iostream>
#include <map>
#include <thread>

#include "common/log.h"
#include "common/stopwatch.h"
#include "daemon/commands/annotate_command.h"
#include "daemon/commands/frames_command.h"
#include "daemon/commands/probe_command.h"
#include "daemon/commands/run_command.h"
#include "daemon/commands/table_commands.h"
#include "daemon/config/filter_config.h"
#include "daemon/pipeline/device_runtime.h"
#include "models/runtime/model_worker.h"

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
  cmd->add_option("--log-level", flags->log_level,
                  "trace, debug, info, warn (default), error, off");
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
  probe_cmd
      ->add_option("inputs", probe.inputs,
                   "Video paths or file:// URIs; with [[tiers]] in the config also "
                   "s3://BUCKET/KEY or BUCKET/KEY (local files then as /abs, ./rel or file://)")
      ->required();
  probe_cmd->add_flag("--pretty", probe.pretty, "Indented JSON for humans");
  probe.jobs = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  probe_cmd->add_option("-j,--jobs", probe.jobs, "Videos filtered at once (default: CPU count)")
      ->check(CLI::Range(1, 256));
  probe_cmd->add_option("--trace", probe.trace_path,
                        "Write a Chrome trace-event JSON of per-video stage spans (open it in "
                        "Perfetto or chrome://tracing)");
  probe_cmd->add_option("--stage-csv", probe.stage_csv_path,
                        "Write seed 004's per-step latency CSV, one line per video");
  probe_cmd
      ->add_option("--output", probe.output_dir,
                   "Write the cropped video of each input whose crop is smaller than the "
                   "frame into DIR as NAME.mp4 (NAME: the input's file name without its "
                   "extension; [output] sets codec, crf, preset, min_area); overrides "
                   "[output] url")
      ->type_name("DIR");
  AddFilterFlags(probe_cmd, &probe_flags);

  // `vsieve frames`: seed 004's frame extractor.
  FramesOptions frames;
  FilterFlags frames_flags;
  CLI::App* frames_cmd = app.add_subcommand(
      "frames",
      "Extract frames of videos as images: at a fixed rate (each the first frame at or after "
      "its time; seek to the keyframe before it, then decode forward) or exactly the frames the "
      "filter's sampling plan reads (--sampled), full size in displayed orientation, named "
      "PREFIX+NAME_INDEX_TIMEms.EXT, with DIR/manifest.json listing each frame's file, index "
      "and time. Exit 1 when some input failed (the others are extracted), 2 on bad options.");
  frames_cmd
      ->add_option("inputs", frames.inputs,
                   "Video paths or file:// URIs; with [[tiers]] in the config also "
                   "s3://BUCKET/KEY or BUCKET/KEY")
      ->required();
  frames_cmd->add_option("--out,-o", frames.out_dir, "Folder the images go into (created)")
      ->required()
      ->type_name("DIR");
  CLI::Option* fps_opt = frames_cmd->add_option("--fps", frames.fps,
                                                "Frames per second of video (default 1; 0.5 = "
                                                "one every 2 s)");
  CLI::Option* sampled_opt =
      frames_cmd->add_flag("--sampled", frames.sampled,
                           "Exactly the frames `vsieve probe` samples ([sampling] of the config)");
  fps_opt->excludes(sampled_opt);
  frames_cmd->add_flag("--crop", frames.crop,
                       "Run the filter first and cut each frame to its safe crop");
  frames_cmd->add_option("--prefix", frames.prefix, "File name prefix (default frame_)");
  frames_cmd->add_option("--format", frames.format, "png (default) or jpg");
  frames_cmd
      ->add_option("--quality", frames.quality,
                   "jpg quality 0-100 (default 95), or png compression 0-9 (default 3)")
      ->check(CLI::Range(0, 100));
  frames_cmd->add_flag("--pretty", frames.pretty, "Indented JSON for humans");
  AddFilterFlags(frames_cmd, &frames_flags);

  // `vsieve annotate`: seed 000's detection video (split across weighted devices) and seed
  // 004's image annotator.
  AnnotateOptions annotate;
  FilterFlags annotate_flags;
  CLI::App* annotate_cmd = app.add_subcommand(
      "annotate",
      "Write the video again with what the filter found drawn on every frame: regions (box, "
      "kind, label, score; a colour per kind), the safe crop, the heads' labels for the clip and "
      "for the window at each moment, and the [[detectors]]' boxes on every Nth frame. Audio is "
      "copied. With several [devices] (weights = [...]) the video is cut at keyframes into one "
      "segment per device, sized by weight, run in parallel and joined without re-encoding. "
      "Prints a JSON summary; exit 1 when it fails (nothing is left behind).");
  annotate_cmd->add_option(
      "input", annotate.input,
      "Video path or file:// URI; with [[tiers]] also s3://BUCKET/KEY or BUCKET/KEY");
  annotate_cmd
      ->add_option("-o,--output", annotate.output,
                   "The MP4 to write; with --images, the folder to write into")
      ->required();
  CLI::Option* images_opt =
      annotate_cmd
          ->add_option("--images", annotate.images_dir,
                       "Annotate every image of this folder with the [[detectors]] (first "
                       "device) instead: images under the same names and detections.json")
          ->check(CLI::ExistingDirectory)
          ->type_name("DIR");
  annotate_cmd
      ->add_option("--every", annotate.every,
                   "Run the detectors on every Nth frame, counted from each keyframe (boxes "
                   "stay until the next run; default 1)")
      ->check(CLI::Range(1, 100000));
  annotate_cmd
      ->add_option("--crf", annotate.crf,
                   "x264 constant rate factor of the output (default: [output] crf; 0 = "
                   "lossless)")
      ->check(CLI::Range(0, 51));
  annotate_cmd->add_flag("--pretty", annotate.pretty, "Indented JSON for humans");
  AddFilterFlags(annotate_cmd, &annotate_flags);
  annotate_cmd->callback([&] {
    if (annotate.input.empty() == annotate.images_dir.empty()) {
      throw CLI::ValidationError("annotate", "give either an INPUT video or --images DIR");
    }
  });
  (void)images_opt;

  FilterFlags validate_flags;
  CLI::App* validate_cmd = app.add_subcommand(
      "validate",
      "Check the config, load every model (each configured detector and head on each of its "
      "devices, with one warm-up pass: load and first-pass ms on stderr and under "
      "models.warmup), open the store, and print the effective settings as JSON; exit 2 naming "
      "the bad key, file or expected model shape otherwise.");
  AddFilterFlags(validate_cmd, &validate_flags);

  // `vsieve run`: the daemon. Flags override [store] and [pipeline] from the file.
  FilterFlags run_flags;
  RunOptions run;
  std::string run_store;
  std::vector<std::string> run_tables;
  std::map<std::string, int> run_ints;
  std::map<std::string, double> run_doubles;
  std::string run_log_file;
  CLI::App* run_cmd = app.add_subcommand(
      "run",
      "The daemon: claim input rows under leases, fetch, decode, filter, write result rows. "
      "SIGTERM/SIGINT stop claiming and drain within the grace (a second one cuts it short); "
      "SIGHUP reopens the log file.");
  AddFilterFlags(run_cmd, &run_flags);
  run_cmd->add_option("--store", run_store,
                      "Table store URL (sqlite:///path.db, or postgresql://user@host1,host2/db"
                      "?target_session_attrs=read-write for many daemons on many hosts)");
  run_cmd->add_option("--tables", run_tables, "Tables to process (default: all)")->delimiter(',');
  run_cmd->add_flag("--until-idle", run.until_idle,
                    "Exit 0 once no row is pending (retry backoff included) or running");
  run_cmd->add_option("--owner-id", run.owner_id,
                      "Lease owner suffix (default: an id kept in <db>.owner, or ./vsieve.owner "
                      "for PostgreSQL); give each daemon on one host its own");
  run_cmd->add_option("--log-file", run_log_file, "Log to this file (SIGHUP reopens it)");
  AdminConfig run_admin;
  run_cmd->add_option("--admin-listen", run_admin.listen,
                      "Admin HTTP API address HOST:PORT (default 127.0.0.1:9464; port 0 = any "
                      "free port, logged; 'off' = none)");
  run_cmd
      ->add_option("--admin-token-file", run_admin.token_file,
                   "File whose first line is the bearer token POST /v1/videos requires")
      ->check(CLI::ExistingFile);
  run_cmd->add_option("--admin-address-file", run_admin.address_file,
                      "Write the admin API's bound HOST:PORT here once listening");
  run_cmd->add_option("--trace", run.trace_path,
                      "Write a Chrome trace-event JSON of pipeline spans per video, stage and "
                      "thread (Perfetto, chrome://tracing); closed valid after the drain");
  run_cmd->add_option("--stage-csv", run.stage_csv_path,
                      "Write seed 004's per-step latency CSV (read/prep/exec ms), one line per "
                      "result row");
  std::string run_core_bind;
  run_cmd->add_flag("--core-bind{auto}", run_core_bind,
                    "Pin the decode and analysis pools to CPUs ([pipeline] core_bind): alone = "
                    "auto (disjoint shares of the allowed CPUs); --core-bind=off, or per pool "
                    "--core-bind='decode=0;workers=1-3;fetch=4'");
  bool run_isolate = false;
  run_cmd->add_flag("--isolate", run_isolate,
                    "Run model instances in child processes ([devices] isolate)");
  // Each overrides the [pipeline], [store], [devices] or [batching] key of the same name
  // (underscores for dashes); etc/vsieve.example.toml gives the defaults.
  const std::pair<const char*, const char*> int_flags[] = {
      {"workers", "Analysis threads"},
      {"instances", "Exclusive filter instances per device (default: one per worker)"},
      {"download-threads", "Fetch threads"},
      {"decode-threads", "Decode and sampling threads"},
      {"encode-threads", "With [output]: videos cropped, encoded and stored at once"},
      {"queue-depth", "Capacity of each bounded queue"},
      {"claim-batch", "Rows claimed per claim transaction"},
      {"write-batch", "Results written per transaction"},
      {"lease-seconds", "Lease length; heartbeats extend it"},
      {"max-attempts", "Attempts before a row is failed for good"},
      {"max-batch", "Micro-batching: items per forward pass at most"}};
  for (const auto& [name, help] : int_flags) {
    run_cmd->add_option(std::string("--") + name, run_ints[name], help)
        ->check(CLI::Range(1, 100000));
  }
  const std::pair<const char*, const char*> double_flags[] = {
      {"grace-seconds", "SIGTERM: time for in-flight videos to finish"},
      {"heartbeat-seconds", "Lease heartbeat interval (0 = lease / 3)"},
      {"video-deadline-seconds", "Per-video deadline, fetch to result"},
      {"backoff-base-seconds", "Retry backoff base (full jitter, doubling)"},
      {"backoff-cap-seconds", "Retry backoff cap"},
      {"write-interval-seconds", "Longest a finished result waits for its batch"},
      {"max-delay-ms", "Micro-batching: longest an item waits for company"},
      {"model-timeout-seconds", "Isolated models: one call, then the child is killed"}};
  for (const auto& [name, help] : double_flags) {
    run_cmd->add_option(std::string("--") + name, run_doubles[name], help)
        ->check(CLI::Range(0.0, 1e9));
  }

  // `vsieve model-worker`: the child side of an isolated model
  // (models/runtime/child_process_model.h). Hidden from --help: only the daemon starts it.
  int worker_fd_in = -1;
  int worker_fd_out = -1;
  int worker_parent_pid = 0;
  CLI::App* worker_cmd =
      app.add_subcommand("model-worker", "Serve one model over the child-process protocol");
  worker_cmd->group("");
  worker_cmd->add_option("--fd-in", worker_fd_in, "Descriptor to read requests from")->required();
  worker_cmd->add_option("--fd-out", worker_fd_out, "Descriptor to write replies to")->required();
  worker_cmd->add_option("--parent-pid", worker_parent_pid,
                         "Exit at once if this is not the parent");

  // import, export, requeue, status.
  TableCommands table_commands;
  table_commands.Register(&app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (std::optional<int> code = table_commands.RunParsed()) return *code;

  if (worker_cmd->parsed()) {
    return models::RunModelWorker(worker_fd_in, worker_fd_out, worker_parent_pid);
  }
  if (frames_cmd->parsed()) {
    FilterConfig config;
    if (!BuildConfig(frames_flags, &config)) return 2;
    return RunFrames(frames, config, std::cout);
  }
  if (annotate_cmd->parsed()) {
    FilterConfig config;
    if (!BuildConfig(annotate_flags, &config)) return 2;
    return RunAnnotate(annotate, config, std::cout);
  }
  if (probe_cmd->parsed()) {
    FilterConfig config;
    if (!BuildConfig(probe_flags, &config)) return 2;
    return RunProbe(probe, config, std::cout);
  }
  if (run_cmd->parsed()) {
    FilterConfig config;
    if (!BuildConfig(run_flags, &config)) return 2;
    if (!run_store.empty()) config.store.url = run_store;
    if (!run_tables.empty()) config.pipeline.tables = run_tables;
    if (!run_log_file.empty()) config.pipeline.log_file = run_log_file;
    if (run_cmd->count("--admin-listen") > 0) {
      config.admin.listen = run_admin.listen;
      config.admin.listen_set = true;
    }
    if (!run_admin.token_file.empty()) config.admin.token_file = run_admin.token_file;
    if (!run_admin.address_file.empty()) config.admin.address_file = run_admin.address_file;
    if (run_cmd->count("--core-bind") > 0) {
      config.pipeline.core_bind = run_core_bind == "off" ? "" : run_core_bind;
    }
    PipelineConfig& p = config.pipeline;
    const auto flag_int = [&](const char* name, int* field) {
      if (run_cmd->count(std::string("--") + name) > 0) *field = run_ints[name];
    };
    const auto flag_double = [&](const char* name, double* field) {
      if (run_cmd->count(std::string("--") + name) > 0) *field = run_doubles[name];
    };
    flag_int("workers", &p.workers);
    flag_int("instances", &config.devices.instances);
    flag_int("download-threads", &p.download_threads);
    flag_int("decode-threads", &p.decode_threads);
    flag_int("encode-threads", &p.encode_threads);
    flag_int("queue-depth", &p.queue_depth);
    flag_int("claim-batch", &p.claim_batch);
    flag_int("write-batch", &p.write_batch);
    flag_int("lease-seconds", &config.store.lease_seconds);
    flag_int("max-attempts", &p.max_attempts);
    flag_double("grace-seconds", &p.grace_seconds);
    flag_double("heartbeat-seconds", &p.heartbeat_seconds);
    flag_double("video-deadline-seconds", &p.video_deadline_seconds);
    flag_double("backoff-base-seconds", &p.backoff_base_seconds);
    flag_double("backoff-cap-seconds", &p.backoff_cap_seconds);
    flag_double("write-interval-seconds", &p.write_interval_seconds);
    flag_int("max-batch", &config.batching.max_batch);
    flag_double("max-delay-ms", &config.batching.max_delay_ms);
    flag_double("model-timeout-seconds", &config.devices.model_timeout_seconds);
    if (run_isolate) config.devices.isolate = true;
    // Without an explicit instance count, one exclusive filter per worker.
    if (run_cmd->count("--workers") > 0 && run_cmd->count("--instances") == 0) {
      config.devices.instances = p.workers;
    }
    if (common::Status status = ValidateServiceConfig(config); !status.ok()) {
      std::cerr << "vsieve: " << status.message() << "\n";
      return 2;
    }
    return RunDaemon(run, config);
  }
  if (validate_cmd->parsed()) {
    FilterConfig config;
    if (!BuildConfig(validate_flags, &config)) return 2;
    // Every configured model on every one of its devices: load, one warm-up pass, timings.
    common::Stopwatch watch;
    auto configured = models::ConfiguredModels::Load(
        config.options.detectors, config.options.heads, config.devices.borrow_timeout_seconds,
        ModelPolicyFor(config, MakeDeviceBudgets(config.devices)));
    if (!configured.ok()) {
      std::cerr << "vsieve: " << configured.status().ToString() << "\n";
      return 2;
    }
    nlohmann::json warmups = nlohmann::json::array();
    for (const models::ModelWarmup& w : (*configured)->warmups()) {
      warmups.push_back({{"name", w.name},
                         {"role", w.role},
                         {"file", w.file},
                         {"device", w.device},
                         {"instance", w.instance},
                         {"load_ms", std::round(w.load_ms * 10) / 10},
                         {"first_pass_ms", std::round(w.first_pass_ms * 10) / 10},
                         {"batch", w.batch}});
      std::cerr << "vsieve: " << w.role << " " << w.name << " on " << w.device << " #" << w.instance
                << ": load " << std::lround(w.load_ms) << " ms, first pass "
                << std::lround(w.first_pass_ms) << " ms, batch " << w.batch << "\n";
    }
    auto filter = models::VideoFilter::Create(config.options, *configured);
    if (!filter.ok()) {
      std::cerr << "vsieve: " << filter.status().ToString() << "\n";
      return 2;
    }
    nlohmann::json json = FilterOptionsToJson(config.options);
    json["models"]["search_dirs"] = config.model_dirs;
    json["models"]["load_ms"] = std::lround(watch.ElapsedMillis());
    json["models"]["warmup"] = std::move(warmups);
    json["warnings"] = (*filter)->warnings();
    json["config_hash"] = ConfigHash(config.options);
    auto store = OpenConfiguredStore(config);
    if (!store.ok()) {
      std::cerr << "vsieve: " << store.status().ToString() << "\n";
      return 2;
    }
    json["store"] = {{"url", storage::RedactStoreUrl(config.store.url)},
                     {"lease_seconds", config.store.lease_seconds}};
    std::cout << json.dump(2) << "\n";
    return 0;
  }
  return 1;
}

}  // namespace vsieve::daemon
