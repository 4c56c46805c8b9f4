#pragma once

// Shared by the pipeline tests (tests/daemon/pipeline/pipeline_test.cc, pipeline_tiers_test.cc):
// small, fast settings and stand-ins for decode and analysis.

#include <string>
#include <utility>

#include "daemon/pipeline/pipeline.h"

namespace vsieve::testing {

// Pipeline options with small, fast settings: short backoff and write interval, two workers on
// two device instances, a queue of 4; the filter loads no model file (no text regions).
inline daemon::PipelineOptions TestOptions() {
  daemon::PipelineOptions options;
  options.owner = "test-owner";
  options.until_idle = true;
  options.config.options.text_regions = false;
  options.config.store.lease_seconds = 5;
  daemon::PipelineConfig& p = options.config.pipeline;
  p.download_threads = 2;
  p.decode_threads = 1;
  p.workers = 2;
  p.queue_depth = 4;
  p.claim_batch = 2;
  p.write_batch = 4;
  p.write_interval_seconds = 0.05;
  p.backoff_base_seconds = 0.01;
  p.backoff_cap_seconds = 0.05;
  p.max_attempts = 3;
  p.grace_seconds = 5;
  options.config.devices.instances = 2;
  return options;
}

// Decode and analysis replaced by stand-ins that succeed at once: every video is 160 pixels
// wide and each stand-in stage takes 1 ms.
inline daemon::PipelineHooks InstantHooks() {
  daemon::PipelineHooks hooks;
  hooks.sample = [](const std::string&, const models::FilterOptions&) {
    models::SampledVideo video;
    video.info["video_meta"] = {{"width", 160}};
    video.stage_ms["decode"] = 1;
    return video;
  };
  hooks.analyze = [](models::VideoFilter*, models::SampledVideo video) {
    models::FilterReport report;
    report.info = std::move(video.info);
    report.stage_ms["regions"] = 1;
    report.stage_ms["heads"] = 1;
    return report;
  };
  return hooks;
}

}  // namespace vsieve::testing
