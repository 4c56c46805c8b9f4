#include "daemon/config/filter_config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>

#include "daemon/config/core_bind.h"
#include "daemon/config/listen_address.h"
#include "media/crop_writer.h"

namespace vsieve::daemon {
namespace {

using common::ErrorCode;
using common::Status;

Status KeyError(const std::string& key, const std::string& why) {
  return Status(ErrorCode::kInvalidArgument, "config key '" + key + "': " + why);
}

// Reads one typed value; records the key as known. Range checks are the caller's.
template <typename T>
Status Read(const toml::table& table, const std::string& section, const std::string& key, T* out) {
  const toml::node* node = table.get(key);
  if (node == nullptr) return Status::Ok();
  const std::string full = section + "." + key;
  if constexpr (std::is_same_v<T, bool>) {
    if (!node->is_boolean()) return KeyError(full, "expected true or false");
    *out = node->as_boolean()->get();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!node->is_string()) return KeyError(full, "expected a string");
    *out = node->as_string()->get();
  } else if constexpr (std::is_integral_v<T>) {
    if (!node->is_integer()) return KeyError(full, "expected an integer");
    *out = static_cast<T>(node->as_integer()->get());
  } else {
    if (node->is_integer()) {
      *out = static_cast<T>(node->as_integer()->get());
    } else if (node->is_floating_point()) {
      *out = static_cast<T>(node->as_floating_point()->get());
    } else {
      return KeyError(full, "expected a number");
    }
  }
  return Status::Ok();
}

Status CheckKeys(const toml::table& table, const std::string& section,
                 std::initializer_list<std::string_view> known) {
  for (const auto& [key, value] : table) {
    bool found = false;
    for (std::string_view name : known) found = found || key.str() == name;
    if (!found) {
      const std::string name =
          section.empty() ? std::string(key.str()) : section + "." + std::string(key.str());
      return KeyError(name, "unknown key");
    }
  }
  return Status::Ok();
}

template <typename T>
Status AtLeast(const std::string& key, T value, T minimum) {
  if (value < minimum) return KeyError(key, "must be at least " + std::to_string(minimum));
  return Status::Ok();
}

// Reads an array of strings; records nothing when the key is absent.
Status ReadStrings(const toml::table& table, const std::string& section, const std::string& key,
                   std::vector<std::string>* out) {
  const toml::node* node = table.get(key);
  if (node == nullptr) return Status::Ok();
  const std::string full = section + "." + key;
  const toml::array* list = node->as_array();
  if (list == nullptr) return KeyError(full, "expected an array of strings");
  out->clear();
  for (const auto& item : *list) {
    if (!item.is_string()) return KeyError(full, "expected an array of strings");
    out->push_back(item.as_string()->get());
  }
  return Status::Ok();
}

// Reads an array of numbers, or (when `scalar_ok`) one number, which becomes a one-element list.
Status ReadNumbers(const toml::table& table, const std::string& section, const std::string& key,
                   bool scalar_ok, std::vector<double>* out) {
  const toml::node* node = table.get(key);
  if (node == nullptr) return Status::Ok();
  const std::string full = section + "." + key;
  const std::string expected =
      scalar_ok ? "expected a number or an array of numbers" : "expected an array of numbers";
  out->clear();
  if (node->is_number() && scalar_ok) {
    out->push_back(node->value<double>().value_or(0.0));
    return Status::Ok();
  }
  const toml::array* list = node->as_array();
  if (list == nullptr) return KeyError(full, expected);
  for (const auto& item : *list) {
    if (!item.is_number()) return KeyError(full, expected);
    out->push_back(item.value<double>().value_or(0.0));
  }
  return Status::Ok();
}

Status Positive(const std::string& key, double value) {
  if (!(value > 0.0)) return KeyError(key, "must be positive");
  return Status::Ok();
}

Status NotNegative(const std::string& key, double value) {
  if (!(value >= 0.0)) return KeyError(key, "must be 0 or more");
  return Status::Ok();
}

// KIND:INDEX device names (ParseDevice decides later whether this build can use them).
Status CheckDevices(const std::string& key, const std::vector<std::string>& list) {
  for (const std::string& device : list) {
    const size_t colon = device.find(':');
    const bool numbered = colon != std::string::npos && colon > 0 && colon + 1 < device.size() &&
                          device.find_first_not_of("0123456789", colon + 1) == std::string::npos;
    if (!numbered) return KeyError(key, "'" + device + "' is not KIND:INDEX (e.g. cpu:0)");
  }
  return Status::Ok();
}

// Reads an array of numbers.
Status ReadNumbers(const toml::table& table, const std::string& section, const std::string& key,
                   std::vector<double>* out) {
  const toml::node* node = table.get(key);
  if (node == nullptr) return Status::Ok();
  const std::string full = section + "." + key;
  const toml::array* list = node->as_array();
  if (list == nullptr) return KeyError(full, "expected an array of numbers");
  out->clear();
  for (const auto& item : *list) {
    if (item.is_integer()) {
      out->push_back(static_cast<double>(item.as_integer()->get()));
    } else if (item.is_floating_point()) {
      out->push_back(item.as_floating_point()->get());
    } else {
      return KeyError(full, "expected an array of numbers");
    }
  }
  return Status::Ok();
}

// Reads a picture size: one integer (a square) or [height, width], as in the input tensor.
Status ReadSize(const toml::table& table, const std::string& section, const std::string& key,
                int* height, int* width) {
  const toml::node* node = table.get(key);
  if (node == nullptr) return Status::Ok();
  const std::string full = section + "." + key;
  const auto bad = [&] {
    return KeyError(full, "expected a positive integer or [height, width] of positive integers");
  };
  if (node->is_integer()) {
    const int64_t side = node->as_integer()->get();
    if (side < 1 || side > 16384) return bad();
    *height = *width = static_cast<int>(side);
    return Status::Ok();
  }
  const toml::array* list = node->as_array();
  if (list == nullptr || list->size() != 2) return bad();
  int64_t sides[2] = {0, 0};
  for (size_t i = 0; i < 2; ++i) {
    if (!(*list)[i].is_integer()) return bad();
    sides[i] = (*list)[i].as_integer()->get();
    if (sides[i] < 1 || sides[i] > 16384) return bad();
  }
  *height = static_cast<int>(sides[0]);
  *width = static_cast<int>(sides[1]);
  return Status::Ok();
}

Status Required(const toml::table& table, const std::string& section, const std::string& key) {
  if (table.get(key) == nullptr) return KeyError(section + "." + key, "must be set");
  return Status::Ok();
}

Status InUnitRange(const std::string& key, double value, bool zero_allowed) {
  if (!(value <= 1.0) || !(zero_allowed ? value >= 0.0 : value > 0.0)) {
    return KeyError(key, zero_allowed ? "must be in [0,1]" : "must be in (0,1]");
  }
  return Status::Ok();
}

// One [[detectors]] entry.
Status LoadDetector(const toml::table& t, const std::string& section, models::DetectorConfig* d) {
  VSIEVE_RETURN_IF_ERROR(CheckKeys(
      t, section,
      {"name", "kind", "model", "cfg", "classes", "input", "letterbox", "conf", "nms",
       "class_filter", "kinds", "frames", "min_presence", "devices", "instances", "batch"}));
  VSIEVE_RETURN_IF_ERROR(Required(t, section, "kind"));
  VSIEVE_RETURN_IF_ERROR(Required(t, section, "model"));
  VSIEVE_RETURN_IF_ERROR(Read(t, section, "name", &d->name));
  std::string kind;
  VSIEVE_RETURN_IF_ERROR(Read(t, section, "kind", &kind));
  if (!models::ParseYoloKind(kind, &d->kind)) {
    return KeyError(section + ".kind",
                    "'" + kind + "' is not one of yolov5, yolov8, yolox, darknet, fastestdet");
  }
  d->letterbox = models::DefaultLetterbox(d->kind);
  VSIEVE_RETURN_IF_ERROR(Read(t, section, "model", &d->model));
  VSIEVE_RETURN_IF_ERROR(Read(t, section, "cfg", &d->cfg));
  VSIEVE_RETURN_IF_ERROR(Read(t, section, "classes", &d->classes));
  VSIEVE_RETURN_IF_ERROR(ReadSize(t, section, "input", &d->input_height, &d->input_width));
  VSIEVE_RETURN_IF_ERROR(Read(t, section, "letterbox", &d->letterbox));
  VSIEVE_RETURN_IF_ERROR(Read(t, section, "conf", &d->conf));
  VSIEVE_RETURN_IF_ERROR(Read(t, section, "nms", &d->nms));
  VSIEVE_RETURN_IF_ERROR(ReadStrings(t, section, "class_filter", &d->class_filter));
  VSIEVE_RETURN_IF_ERROR(Read(t, section, "frames", &d->frames));
  VSIEVE_RETURN_IF_ERROR(Read(t, section, "min_presence", &d->min_presence));
  VSIEVE_RETURN_IF_ERROR(ReadStrings(t, section, "devices", &d->devices));
  VSIEVE_RETURN_IF_ERROR(Read(t, section, "instances", &d->instances));
  VSIEVE_RETURN_IF_ERROR(Read(t, section, "batch", &d->batch));
  if (d->name.empty()) return KeyError(section + ".name", "must not be empty");
  if (d->model.empty()) return KeyError(section + ".model", "must not be empty");
  const bool darknet = d->kind == models::YoloKind::kDarknet;
  if (darknet && d->cfg.empty()) return KeyError(section + ".cfg", "must be set for kind darknet");
  if (!darknet && !d->cfg.empty()) return KeyError(section + ".cfg", "is only for kind darknet");
  if (d->kind == models::YoloKind::kYolox &&
      (d->input_width % 32 != 0 || d->input_height % 32 != 0)) {
    return KeyError(section + ".input", "must be a multiple of 32 for kind yolox");
  }
  VSIEVE_RETURN_IF_ERROR(InUnitRange(section + ".conf", d->conf, true));
  VSIEVE_RETURN_IF_ERROR(InUnitRange(section + ".nms", d->nms, true));
  VSIEVE_RETURN_IF_ERROR(InUnitRange(section + ".min_presence", d->min_presence, false));
  VSIEVE_RETURN_IF_ERROR(AtLeast(section + ".frames", d->frames, 1));
  VSIEVE_RETURN_IF_ERROR(AtLeast(section + ".instances", d->instances, 1));
  VSIEVE_RETURN_IF_ERROR(AtLeast(section + ".batch", d->batch, 1));
  VSIEVE_RETURN_IF_ERROR(CheckDevices(section + ".devices", d->devices));
  if (const toml::node* kinds = t.get("kinds")) {
    const toml::table* map = kinds->as_table();
    if (map == nullptr) {
      return KeyError(section + ".kinds", "expected a table of class = { kind, avoid }");
    }
    for (const auto& [label, value] : *map) {
      const std::string key = section + ".kinds." + std::string(label.str());
      const toml::table* entry = value.as_table();
      if (entry == nullptr) return KeyError(key, "expected { kind = \"...\", avoid = true|false }");
      VSIEVE_RETURN_IF_ERROR(CheckKeys(*entry, key, {"kind", "avoid"}));
      VSIEVE_RETURN_IF_ERROR(Required(*entry, key, "kind"));
      std::string region_kind;
      VSIEVE_RETURN_IF_ERROR(Read(*entry, key, "kind", &region_kind));
      models::ClassMapping mapping;
      if (!models::ParseRegionKind(region_kind, &mapping.kind)) {
        return KeyError(key + ".kind", "'" + region_kind +
                                           "' is not one of black_border, blur_fill, text, "
                                           "watermark, object");
      }
      mapping.avoid = mapping.kind != models::RegionKind::kObject;
      VSIEVE_RETURN_IF_ERROR(Read(*entry, key, "avoid", &mapping.avoid));
      d->kinds[std::string(label.str())] = mapping;
    }
  }
  return Status::Ok();
}

// One [[heads]] entry.
Status LoadHead(const toml::table& t, const std::string& section, models::OnnxHeadConfig* h) {
  VSIEVE_RETURN_IF_ERROR(
      CheckKeys(t, section,
                {"name", "kind", "model", "layout", "frames", "size", "mean", "std", "colour",
                 "labels", "activation", "mode", "devices", "instances", "batch"}));
  for (const char* key : {"name", "kind", "model", "labels"}) {
    VSIEVE_RETURN_IF_ERROR(Required(t, section, key));
  }
  std::string kind;
  VSIEVE_RETURN_IF_ERROR(Read(t, section, "kind", &kind));
  if (kind != "onnx") return KeyError(section + ".kind", "'" + kind + "' is not onnx");
  VSIEVE_RETURN_IF_ERROR(Read(t, section, "name", &h->name));
  VSIEVE_RETURN_IF_ERROR(Read(t, section, "model", &h->model));
  std::string layout = std::string(models::HeadLayoutName(h->layout));
  VSIEVE_RETURN_IF_ERROR(Read(t, section, "layout", &layout));
  if (!models::ParseHeadLayout(layout, &h->layout)) {
    return KeyError(section + ".layout", "'" + layout + "' is not one of NCTHW, NTCHW, NCHW");
  }
  VSIEVE_RETURN_IF_ERROR(Read(t, section, "frames", &h->frames));
  VSIEVE_RETURN_IF_ERROR(ReadSize(t, section, "size", &h->height, &h->width));
  for (const char* key : {"mean", "std"}) {
    std::vector<double> values;
    VSIEVE_RETURN_IF_ERROR(ReadNumbers(t, section, key, &values));
    if (t.get(key) == nullptr) continue;
    if (values.size() != 3) return KeyError(section + "." + key, "expected 3 numbers");
    auto& target = std::string_view(key) == "mean" ? h->mean : h->std;
    std::copy(values.begin(), values.end(), target.begin());
  }
  for (double v : h->std) {
    if (!(v > 0.0)) return KeyError(section + ".std", "must be positive");
  }
  std::string colour = h->rgb ? "rgb" : "bgr";
  VSIEVE_RETURN_IF_ERROR(Read(t, section, "colour", &colour));
  if (colour != "rgb" && colour != "bgr") {
    return KeyError(section + ".colour", "'" + colour + "' is not rgb or bgr");
  }
  h->rgb = colour == "rgb";
  VSIEVE_RETURN_IF_ERROR(ReadStrings(t, section, "labels", &h->labels));
  std::string activation = std::string(models::HeadActivationName(h->activation));
  VSIEVE_RETURN_IF_ERROR(Read(t, section, "activation", &activation));
  if (!models::ParseHeadActivation(activation, &h->activation)) {
    return KeyError(section + ".activation",
                    "'" + activation + "' is not one of softmax, sigmoid, none");
  }
  std::string mode = std::string(models::HeadModeName(h->mode));
  VSIEVE_RETURN_IF_ERROR(Read(t, section, "mode", &mode));
  if (!models::ParseHeadMode(mode, &h->mode)) {
    return KeyError(section + ".mode",
                    "'" + mode + "' is not one of clip, windows, reversed_windows");
  }
  VSIEVE_RETURN_IF_ERROR(ReadStrings(t, section, "devices", &h->devices));
  VSIEVE_RETURN_IF_ERROR(Read(t, section, "instances", &h->instances));
  VSIEVE_RETURN_IF_ERROR(Read(t, section, "batch", &h->batch));
  if (h->name.empty()) return KeyError(section + ".name", "must not be empty");
  if (h->model.empty()) return KeyError(section + ".model", "must not be empty");
  for (const char* taken :
       {"video_meta", "abnormal_region_info", "abnormal_region_crop", "vfx_filter", "simcam_filter",
        "rotate_vertical_filter", "low_quality_filter", "seg_simcam_filter",
        "inverse_seg_simcam_filter"}) {
    if (h->name == taken) {
      return KeyError(section + ".name", "'" + h->name + "' is a built-in key of the row's info");
    }
  }
  if (h->labels.empty()) return KeyError(section + ".labels", "must name at least one label");
  for (size_t i = 0; i < h->labels.size(); ++i) {
    if (h->labels[i].empty()) return KeyError(section + ".labels", "labels must not be empty");
    for (size_t j = 0; j < i; ++j) {
      if (h->labels[i] == h->labels[j]) {
        return KeyError(section + ".labels", "'" + h->labels[i] + "' appears twice");
      }
    }
  }
  VSIEVE_RETURN_IF_ERROR(AtLeast(section + ".frames", h->frames, 1));
  VSIEVE_RETURN_IF_ERROR(AtLeast(section + ".instances", h->instances, 1));
  VSIEVE_RETURN_IF_ERROR(AtLeast(section + ".batch", h->batch, 1));
  return CheckDevices(section + ".devices", h->devices);
}

// [[detectors]] and [[heads]]: arrays of tables.
Status LoadModelEntries(const toml::table& root, FilterConfig* config) {
  auto& opt = config->options;
  const auto tables = [&](const char* name, const auto& load) -> Status {
    const toml::node* node = root.get(name);
    if (node == nullptr) return Status::Ok();
    const toml::array* list = node->as_array();
    if (list == nullptr) {
      return KeyError(name, std::string("expected [[") + name + "]] tables");
    }
    for (size_t i = 0; i < list->size(); ++i) {
      const std::string section = std::string(name) + "[" + std::to_string(i) + "]";
      const toml::table* table = (*list)[i].as_table();
      if (table == nullptr)
        return KeyError(section, std::string("expected [[") + name + "]] tables");
      VSIEVE_RETURN_IF_ERROR(load(*table, section));
    }
    return Status::Ok();
  };
  opt.detectors.clear();
  opt.heads.clear();
  VSIEVE_RETURN_IF_ERROR(tables("detectors", [&](const toml::table& t, const std::string& section) {
    models::DetectorConfig detector;
    VSIEVE_RETURN_IF_ERROR(LoadDetector(t, section, &detector));
    for (const auto& other : opt.detectors) {
      if (other.name == detector.name) {
        return KeyError(section + ".name", "'" + detector.name + "' is used by another detector");
      }
    }
    opt.detectors.push_back(std::move(detector));
    return Status::Ok();
  }));
  return tables("heads", [&](const toml::table& t, const std::string& section) {
    models::OnnxHeadConfig head;
    VSIEVE_RETURN_IF_ERROR(LoadHead(t, section, &head));
    for (const auto& other : opt.heads) {
      if (other.name == head.name) {
        return KeyError(section + ".name", "'" + head.name + "' is used by another head");
      }
    }
    opt.heads.push_back(std::move(head));
    return Status::Ok();
  });
}

// [store], [pipeline] and [devices].
Status LoadServiceSections(const toml::table& root, FilterConfig* config) {
  if (const toml::table* t = root["store"].as_table()) {
    VSIEVE_RETURN_IF_ERROR(CheckKeys(*t, "store", {"url", "lease_seconds"}));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "store", "url", &config->store.url));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "store", "lease_seconds", &config->store.lease_seconds));
  }
  if (const toml::table* t = root["pipeline"].as_table()) {
    auto& p = config->pipeline;
    VSIEVE_RETURN_IF_ERROR(
        CheckKeys(*t, "pipeline",
                  {"tables", "download_threads", "decode_threads", "workers", "queue_depth",
                   "claim_batch", "write_batch", "write_interval_seconds", "video_deadline_seconds",
                   "max_attempts", "backoff_base_seconds", "backoff_cap_seconds", "grace_seconds",
                   "heartbeat_seconds", "log_file", "core_bind", "encode_threads"}));
    VSIEVE_RETURN_IF_ERROR(ReadStrings(*t, "pipeline", "tables", &p.tables));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "pipeline", "download_threads", &p.download_threads));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "pipeline", "decode_threads", &p.decode_threads));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "pipeline", "workers", &p.workers));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "pipeline", "queue_depth", &p.queue_depth));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "pipeline", "claim_batch", &p.claim_batch));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "pipeline", "write_batch", &p.write_batch));
    VSIEVE_RETURN_IF_ERROR(
        Read(*t, "pipeline", "write_interval_seconds", &p.write_interval_seconds));
    VSIEVE_RETURN_IF_ERROR(
        Read(*t, "pipeline", "video_deadline_seconds", &p.video_deadline_seconds));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "pipeline", "max_attempts", &p.max_attempts));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "pipeline", "backoff_base_seconds", &p.backoff_base_seconds));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "pipeline", "backoff_cap_seconds", &p.backoff_cap_seconds));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "pipeline", "grace_seconds", &p.grace_seconds));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "pipeline", "heartbeat_seconds", &p.heartbeat_seconds));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "pipeline", "log_file", &p.log_file));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "pipeline", "core_bind", &p.core_bind));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "pipeline", "encode_threads", &p.encode_threads));
  }
  if (const toml::table* t = root["devices"].as_table()) {
    auto& d = config->devices;
    VSIEVE_RETURN_IF_ERROR(CheckKeys(
        *t, "devices",
        {"list", "instances", "borrow_timeout_seconds", "weights", "budget", "costs", "isolate",
         "model_timeout_seconds", "restart_backoff_base_seconds", "restart_backoff_cap_seconds"}));
    VSIEVE_RETURN_IF_ERROR(ReadStrings(*t, "devices", "list", &d.list));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "devices", "instances", &d.instances));
    VSIEVE_RETURN_IF_ERROR(
        Read(*t, "devices", "borrow_timeout_seconds", &d.borrow_timeout_seconds));
    VSIEVE_RETURN_IF_ERROR(ReadNumbers(*t, "devices", "weights", false, &d.weights));
    VSIEVE_RETURN_IF_ERROR(ReadNumbers(*t, "devices", "budget", true, &d.budgets));
    if (const toml::node* costs = t->get("costs")) {
      const toml::table* table = costs->as_table();
      if (table == nullptr) {
        return KeyError("devices.costs", "expected a table of model name = cost");
      }
      d.costs.clear();
      for (const auto& [name, value] : *table) {
        const std::string key = "devices.costs." + std::string(name.str());
        if (!value.is_number()) return KeyError(key, "expected a number");
        d.costs[std::string(name.str())] = value.value<double>().value_or(0.0);
      }
    }
    VSIEVE_RETURN_IF_ERROR(Read(*t, "devices", "isolate", &d.isolate));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "devices", "model_timeout_seconds", &d.model_timeout_seconds));
    VSIEVE_RETURN_IF_ERROR(
        Read(*t, "devices", "restart_backoff_base_seconds", &d.restart_backoff_base_seconds));
    VSIEVE_RETURN_IF_ERROR(
        Read(*t, "devices", "restart_backoff_cap_seconds", &d.restart_backoff_cap_seconds));
  }
  if (const toml::table* t = root["batching"].as_table()) {
    VSIEVE_RETURN_IF_ERROR(CheckKeys(*t, "batching", {"max_batch", "max_delay_ms"}));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "batching", "max_batch", &config->batching.max_batch));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "batching", "max_delay_ms", &config->batching.max_delay_ms));
  }
  if (const toml::table* t = root["admin"].as_table()) {
    auto& a = config->admin;
    VSIEVE_RETURN_IF_ERROR(CheckKeys(*t, "admin", {"listen", "token_file", "address_file"}));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "admin", "listen", &a.listen));
    a.listen_set = a.listen_set || t->contains("listen");
    VSIEVE_RETURN_IF_ERROR(Read(*t, "admin", "token_file", &a.token_file));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "admin", "address_file", &a.address_file));
  }
  return Status::Ok();
}

// [cache]: max_bytes is a byte count or a size string ("50GiB").
Status LoadCacheSection(const toml::table& root, FilterConfig* config) {
  const toml::table* t = root["cache"].as_table();
  if (t == nullptr) return Status::Ok();
  VSIEVE_RETURN_IF_ERROR(CheckKeys(*t, "cache", {"dir", "max_bytes"}));
  VSIEVE_RETURN_IF_ERROR(Read(*t, "cache", "dir", &config->cache.dir));
  if (const toml::node* node = t->get("max_bytes")) {
    if (node->is_integer()) {
      config->cache.max_bytes = node->as_integer()->get();
    } else if (node->is_string()) {
      auto size = ParseByteSize(node->as_string()->get());
      if (!size.ok()) return KeyError("cache.max_bytes", size.status().message());
      config->cache.max_bytes = *size;
    } else {
      return KeyError("cache.max_bytes", "expected a size like \"50GiB\" or a byte count");
    }
  }
  return Status::Ok();
}

// A byte count or a size string ("64MiB").
Status ReadByteSize(const toml::table& table, const std::string& section, const std::string& key,
                    int64_t* out) {
  const toml::node* node = table.get(key);
  if (node == nullptr) return Status::Ok();
  const std::string full = section + "." + key;
  if (node->is_integer()) {
    *out = node->as_integer()->get();
  } else if (node->is_string()) {
    auto size = ParseByteSize(node->as_string()->get());
    if (!size.ok()) return KeyError(full, size.status().message());
    *out = *size;
  } else {
    return KeyError(full, "expected a size like \"64MiB\" or a byte count");
  }
  return Status::Ok();
}

// [output]: where the cropped videos go and how they are encoded.
Status LoadOutputSection(const toml::table& root, FilterConfig* config) {
  const toml::table* t = root["output"].as_table();
  if (t == nullptr) return Status::Ok();
  auto& o = config->output;
  VSIEVE_RETURN_IF_ERROR(
      CheckKeys(*t, "output",
                {"url", "crop_video", "codec", "crf", "preset", "min_area", "multipart_bytes",
                 "part_bytes", "key", "temp_dir", "threads"}));
  VSIEVE_RETURN_IF_ERROR(Read(*t, "output", "url", &o.url));
  VSIEVE_RETURN_IF_ERROR(Read(*t, "output", "crop_video", &o.crop_video));
  VSIEVE_RETURN_IF_ERROR(Read(*t, "output", "codec", &o.codec));
  VSIEVE_RETURN_IF_ERROR(Read(*t, "output", "crf", &o.crf));
  VSIEVE_RETURN_IF_ERROR(Read(*t, "output", "preset", &o.preset));
  VSIEVE_RETURN_IF_ERROR(Read(*t, "output", "min_area", &o.min_area));
  VSIEVE_RETURN_IF_ERROR(ReadByteSize(*t, "output", "multipart_bytes", &o.multipart_bytes));
  VSIEVE_RETURN_IF_ERROR(ReadByteSize(*t, "output", "part_bytes", &o.part_bytes));
  VSIEVE_RETURN_IF_ERROR(Read(*t, "output", "key", &o.key));
  VSIEVE_RETURN_IF_ERROR(Read(*t, "output", "temp_dir", &o.temp_dir));
  VSIEVE_RETURN_IF_ERROR(Read(*t, "output", "threads", &o.threads));
  return Status::Ok();
}

// [[tiers]]: an array of tables; the keys a table may have depend on its kind.
Status LoadTiers(const toml::table& root, FilterConfig* config) {
  const toml::node* node = root.get("tiers");
  if (node == nullptr) return Status::Ok();
  const toml::array* list = node->as_array();
  if (list == nullptr) return KeyError("tiers", "expected an array of tables like [[tiers]]");
  config->tiers.clear();
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string section = "tiers[" + std::to_string(i) + "]";
    const toml::table* t = list->get(i)->as_table();
    if (t == nullptr) return KeyError(section, "expected a table like [[tiers]]");
    storage::TierConfig tier;
    VSIEVE_RETURN_IF_ERROR(Read(*t, section, "kind", &tier.kind));
    const std::initializer_list<std::string_view> transport = {"kind",
                                                               "name",
                                                               "connect_timeout_seconds",
                                                               "low_speed_bytes_per_second",
                                                               "low_speed_seconds",
                                                               "max_attempts",
                                                               "backoff_base_seconds",
                                                               "backoff_cap_seconds",
                                                               "retry_budget"};
    std::vector<std::string_view> known;
    if (tier.kind == "local") {
      known = {"kind", "name", "root"};
    } else if (tier.kind == "http") {
      known = transport;
      known.push_back("base_url");
    } else if (tier.kind == "s3") {
      known = transport;
      for (std::string_view key : {"endpoint", "region", "credentials", "profile", "addressing"}) {
        known.push_back(key);
      }
    } else {
      return storage::ValidateTierConfig(tier, section);  // names the bad kind
    }
    for (const auto& [key, value] : *t) {
      if (std::find(known.begin(), known.end(), key.str()) == known.end()) {
        return KeyError(section + "." + std::string(key.str()),
                        "unknown key for a tier of kind \"" + tier.kind + "\"");
      }
    }
    VSIEVE_RETURN_IF_ERROR(Read(*t, section, "name", &tier.name));
    VSIEVE_RETURN_IF_ERROR(Read(*t, section, "root", &tier.root));
    VSIEVE_RETURN_IF_ERROR(Read(*t, section, "base_url", &tier.base_url));
    VSIEVE_RETURN_IF_ERROR(Read(*t, section, "endpoint", &tier.endpoint));
    VSIEVE_RETURN_IF_ERROR(Read(*t, section, "region", &tier.region));
    VSIEVE_RETURN_IF_ERROR(Read(*t, section, "credentials", &tier.credentials));
    VSIEVE_RETURN_IF_ERROR(Read(*t, section, "profile", &tier.profile));
    VSIEVE_RETURN_IF_ERROR(Read(*t, section, "addressing", &tier.addressing));
    VSIEVE_RETURN_IF_ERROR(
        Read(*t, section, "connect_timeout_seconds", &tier.connect_timeout_seconds));
    VSIEVE_RETURN_IF_ERROR(
        Read(*t, section, "low_speed_bytes_per_second", &tier.low_speed_bytes_per_second));
    VSIEVE_RETURN_IF_ERROR(Read(*t, section, "low_speed_seconds", &tier.low_speed_seconds));
    VSIEVE_RETURN_IF_ERROR(Read(*t, section, "max_attempts", &tier.max_attempts));
    VSIEVE_RETURN_IF_ERROR(Read(*t, section, "backoff_base_seconds", &tier.backoff_base_seconds));
    VSIEVE_RETURN_IF_ERROR(Read(*t, section, "backoff_cap_seconds", &tier.backoff_cap_seconds));
    VSIEVE_RETURN_IF_ERROR(Read(*t, section, "retry_budget", &tier.retry_budget));
    config->tiers.push_back(std::move(tier));
  }
  return Status::Ok();
}

Status LoadSections(const toml::table& root, FilterConfig* config) {
  VSIEVE_RETURN_IF_ERROR(
      CheckKeys(root, "",
                {"sampling", "limits", "models", "filter", "log", "store", "pipeline", "devices",
                 "batching", "admin", "cache", "output", "tiers", "detectors", "heads"}));
  VSIEVE_RETURN_IF_ERROR(LoadTiers(root, config));
  auto& opt = config->options;
  for (const auto& [name, node] : root) {
    if (name.str() == "tiers" || name.str() == "detectors" || name.str() == "heads") {
      continue;  // [[arrays]]
    }
    if (!node.is_table()) {
      return KeyError(std::string(name.str()),
                      "expected a table like [" + std::string(name.str()) + "]");
    }
  }
  if (const toml::table* t = root["sampling"].as_table()) {
    auto& s = opt.sampling;
    VSIEVE_RETURN_IF_ERROR(CheckKeys(*t, "sampling",
                                     {"region_frames", "clip_frames", "window_s", "stride_s",
                                      "window_frames", "bursts", "burst_length", "max_frames"}));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "sampling", "region_frames", &s.region_frames));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "sampling", "clip_frames", &s.clip_frames));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "sampling", "window_s", &s.window_s));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "sampling", "stride_s", &s.stride_s));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "sampling", "window_frames", &s.window_frames));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "sampling", "bursts", &s.bursts));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "sampling", "burst_length", &s.burst_length));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "sampling", "max_frames", &s.max_frames));
  }
  if (const toml::table* t = root["limits"].as_table()) {
    auto& l = opt.limits;
    VSIEVE_RETURN_IF_ERROR(CheckKeys(
        *t, "limits",
        {"probe_size_bytes", "analyze_duration_s", "max_dimension", "max_pixels", "min_dimension",
         "open_deadline_s", "decode_deadline_s", "analysis_max_side", "thin_max_side",
         "max_error_ratio", "max_errors", "min_returned_ratio", "decoder_threads"}));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "limits", "probe_size_bytes", &l.probe_size_bytes));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "limits", "analyze_duration_s", &l.analyze_duration_s));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "limits", "max_dimension", &l.max_dimension));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "limits", "max_pixels", &l.max_pixels));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "limits", "min_dimension", &l.min_dimension));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "limits", "open_deadline_s", &l.open_deadline_s));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "limits", "decode_deadline_s", &l.decode_deadline_s));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "limits", "analysis_max_side", &l.analysis_max_side));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "limits", "thin_max_side", &l.thin_max_side));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "limits", "max_error_ratio", &l.max_error_ratio));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "limits", "max_errors", &l.max_errors));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "limits", "min_returned_ratio", &l.min_returned_ratio));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "limits", "decoder_threads", &l.decoder_threads));
  }
  if (const toml::table* t = root["models"].as_table()) {
    VSIEVE_RETURN_IF_ERROR(CheckKeys(*t, "models", {"dirs"}));
    if (const toml::node* dirs = t->get("dirs")) {
      const toml::array* list = dirs->as_array();
      if (list == nullptr) return KeyError("models.dirs", "expected an array of strings");
      config->model_dirs.clear();
      for (const auto& item : *list) {
        if (!item.is_string()) return KeyError("models.dirs", "expected an array of strings");
        config->model_dirs.push_back(item.as_string()->get());
      }
    }
  }
  if (const toml::table* t = root["filter"].as_table()) {
    VSIEVE_RETURN_IF_ERROR(CheckKeys(*t, "filter",
                                     {"text_regions", "vfx", "simcam", "rotate_vertical",
                                      "low_quality", "windows", "crop_aspect"}));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "filter", "text_regions", &opt.text_regions));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "filter", "vfx", &opt.vfx));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "filter", "simcam", &opt.simcam));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "filter", "rotate_vertical", &opt.rotate_vertical));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "filter", "low_quality", &opt.low_quality));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "filter", "windows", &opt.windows));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "filter", "crop_aspect", &opt.crop.aspect));
  }
  if (const toml::table* t = root["log"].as_table()) {
    VSIEVE_RETURN_IF_ERROR(CheckKeys(*t, "log", {"level"}));
    VSIEVE_RETURN_IF_ERROR(Read(*t, "log", "level", &config->log_level));
  }
  VSIEVE_RETURN_IF_ERROR(LoadCacheSection(root, config));
  VSIEVE_RETURN_IF_ERROR(LoadOutputSection(root, config));
  VSIEVE_RETURN_IF_ERROR(LoadModelEntries(root, config));
  VSIEVE_RETURN_IF_ERROR(LoadServiceSections(root, config));
  // A model without its own devices runs where [devices] says.
  for (auto& detector : opt.detectors) {
    if (detector.devices.empty()) detector.devices = config->devices.list;
  }
  for (auto& head : opt.heads) {
    if (head.devices.empty()) head.devices = config->devices.list;
  }
  return Status::Ok();
}

}  // namespace

std::vector<std::string> DefaultModelDirs() { return {"vsieve-models", "../shared/assets/models"}; }

common::Status ValidateFilterOptions(const models::FilterOptions& opt) {
  const auto& s = opt.sampling;
  VSIEVE_RETURN_IF_ERROR(AtLeast("sampling.region_frames", s.region_frames, 1));
  VSIEVE_RETURN_IF_ERROR(AtLeast("sampling.clip_frames", s.clip_frames, 1));
  VSIEVE_RETURN_IF_ERROR(AtLeast("sampling.window_frames", s.window_frames, 2));
  VSIEVE_RETURN_IF_ERROR(AtLeast("sampling.max_frames", s.max_frames, 2));
  VSIEVE_RETURN_IF_ERROR(AtLeast("sampling.bursts", s.bursts, 0));
  VSIEVE_RETURN_IF_ERROR(AtLeast("sampling.burst_length", s.burst_length, 1));
  if (!(s.window_s > 0.0)) return KeyError("sampling.window_s", "must be positive");
  if (!(s.stride_s > 0.0)) return KeyError("sampling.stride_s", "must be positive");
  const auto& l = opt.limits;
  VSIEVE_RETURN_IF_ERROR(AtLeast("limits.analysis_max_side", l.analysis_max_side, 32));
  if (l.thin_max_side != 0 && l.thin_max_side < 32) {
    return KeyError("limits.thin_max_side", "must be 0 (off) or at least 32");
  }
  VSIEVE_RETURN_IF_ERROR(AtLeast("limits.max_dimension", l.max_dimension, 16));
  VSIEVE_RETURN_IF_ERROR(AtLeast("limits.min_dimension", l.min_dimension, 1));
  VSIEVE_RETURN_IF_ERROR(AtLeast("limits.decoder_threads", l.decoder_threads, 1));
  VSIEVE_RETURN_IF_ERROR(AtLeast("limits.probe_size_bytes", l.probe_size_bytes, 32LL));
  if (!(l.open_deadline_s > 0.0)) return KeyError("limits.open_deadline_s", "must be positive");
  if (!(l.decode_deadline_s > 0.0)) {
    return KeyError("limits.decode_deadline_s", "must be positive");
  }
  if (l.max_error_ratio < 0.0 || l.max_error_ratio > 1.0) {
    return KeyError("limits.max_error_ratio", "must be between 0 and 1");
  }
  if (l.min_returned_ratio < 0.0 || l.min_returned_ratio > 1.0) {
    return KeyError("limits.min_returned_ratio", "must be between 0 and 1");
  }
  if (opt.crop.aspect < 0.0) return KeyError("filter.crop_aspect", "must be 0 (any) or positive");
  return Status::Ok();
}

common::Status ValidateOutputConfig(const FilterConfig& config) {
  const OutputConfig& o = config.output;
  if (!o.url.empty() && o.url.rfind("file:///", 0) != 0 && o.url.rfind("s3://", 0) != 0) {
    return KeyError("output.url", "expected file:///path/ or s3://bucket/prefix/");
  }
  if (o.url.rfind("s3://", 0) == 0) {
    const bool have_s3 = std::any_of(config.tiers.begin(), config.tiers.end(),
                                     [](const storage::TierConfig& t) { return t.kind == "s3"; });
    if (!have_s3) {
      return KeyError("output.url",
                      "an s3:// destination uses the endpoint and credentials of "
                      "an [[tiers]] entry of kind \"s3\"; there is none");
    }
  }
  if (o.crf < 0 || o.crf > 51) return KeyError("output.crf", "must be between 0 and 51");
  if (o.preset.empty()) return KeyError("output.preset", "must not be empty");
  VSIEVE_RETURN_IF_ERROR(InUnitRange("output.min_area", o.min_area, /*zero_allowed=*/true));
  VSIEVE_RETURN_IF_ERROR(AtLeast("output.multipart_bytes", o.multipart_bytes, int64_t{1}));
  if (o.part_bytes < (5LL << 20)) {
    return KeyError("output.part_bytes", "must be at least 5MiB (S3's smallest part)");
  }
  if (o.key.find("{video_id}") == std::string::npos) {
    return KeyError("output.key", "must contain {video_id}, or every video gets the same key");
  }
  VSIEVE_RETURN_IF_ERROR(AtLeast("output.threads", o.threads, 0));
  if (o.enabled() && !media::HaveEncoder(o.codec)) {
    return KeyError("output.codec", "libavcodec has no video encoder named '" + o.codec + "'");
  }
  return Status::Ok();
}

common::Status ValidateServiceConfig(const FilterConfig& config) {
  if (config.store.url.empty()) return KeyError("store.url", "must not be empty");
  VSIEVE_RETURN_IF_ERROR(AtLeast("store.lease_seconds", config.store.lease_seconds, 1));
  const auto& p = config.pipeline;
  for (const std::string& table : p.tables) {
    if (table.empty()) return KeyError("pipeline.tables", "table names must not be empty");
  }
  VSIEVE_RETURN_IF_ERROR(AtLeast("pipeline.download_threads", p.download_threads, 1));
  VSIEVE_RETURN_IF_ERROR(AtLeast("pipeline.decode_threads", p.decode_threads, 1));
  VSIEVE_RETURN_IF_ERROR(AtLeast("pipeline.workers", p.workers, 1));
  VSIEVE_RETURN_IF_ERROR(AtLeast("pipeline.queue_depth", p.queue_depth, 1));
  VSIEVE_RETURN_IF_ERROR(AtLeast("pipeline.claim_batch", p.claim_batch, 1));
  VSIEVE_RETURN_IF_ERROR(AtLeast("pipeline.write_batch", p.write_batch, 1));
  VSIEVE_RETURN_IF_ERROR(AtLeast("pipeline.max_attempts", p.max_attempts, 1));
  VSIEVE_RETURN_IF_ERROR(Positive("pipeline.write_interval_seconds", p.write_interval_seconds));
  VSIEVE_RETURN_IF_ERROR(Positive("pipeline.video_deadline_seconds", p.video_deadline_seconds));
  VSIEVE_RETURN_IF_ERROR(NotNegative("pipeline.backoff_base_seconds", p.backoff_base_seconds));
  VSIEVE_RETURN_IF_ERROR(NotNegative("pipeline.grace_seconds", p.grace_seconds));
  VSIEVE_RETURN_IF_ERROR(NotNegative("pipeline.heartbeat_seconds", p.heartbeat_seconds));
  if (!(p.backoff_cap_seconds >= p.backoff_base_seconds)) {
    return KeyError("pipeline.backoff_cap_seconds", "must be at least backoff_base_seconds");
  }
  if (p.heartbeat_seconds >= config.store.lease_seconds) {
    return KeyError("pipeline.heartbeat_seconds", "must be less than store.lease_seconds");
  }
  VSIEVE_RETURN_IF_ERROR(CheckCoreBindSpec(p.core_bind));
  VSIEVE_RETURN_IF_ERROR(AtLeast("pipeline.encode_threads", p.encode_threads, 1));
  VSIEVE_RETURN_IF_ERROR(ValidateOutputConfig(config));
  const auto& d = config.devices;
  if (d.list.empty()) return KeyError("devices.list", "must name at least one device");
  VSIEVE_RETURN_IF_ERROR(CheckDevices("devices.list", d.list));
  VSIEVE_RETURN_IF_ERROR(AtLeast("devices.instances", d.instances, 1));
  VSIEVE_RETURN_IF_ERROR(Positive("devices.borrow_timeout_seconds", d.borrow_timeout_seconds));
  if (!d.weights.empty() && d.weights.size() != d.list.size()) {
    return KeyError("devices.weights", "expected one weight per device in devices.list (" +
                                           std::to_string(d.list.size()) + "), got " +
                                           std::to_string(d.weights.size()));
  }
  for (double weight : d.weights) VSIEVE_RETURN_IF_ERROR(Positive("devices.weights", weight));
  if (d.budgets.size() > 1 && d.budgets.size() != d.list.size()) {
    return KeyError("devices.budget", "expected one number, or one per device in devices.list (" +
                                          std::to_string(d.list.size()) + "), got " +
                                          std::to_string(d.budgets.size()));
  }
  for (double budget : d.budgets) VSIEVE_RETURN_IF_ERROR(NotNegative("devices.budget", budget));
  for (const auto& [name, cost] : d.costs) {
    VSIEVE_RETURN_IF_ERROR(NotNegative("devices.costs." + name, cost));
  }
  VSIEVE_RETURN_IF_ERROR(Positive("devices.model_timeout_seconds", d.model_timeout_seconds));
  VSIEVE_RETURN_IF_ERROR(
      NotNegative("devices.restart_backoff_base_seconds", d.restart_backoff_base_seconds));
  if (!(d.restart_backoff_cap_seconds >= d.restart_backoff_base_seconds)) {
    return KeyError("devices.restart_backoff_cap_seconds",
                    "must be at least restart_backoff_base_seconds");
  }
  VSIEVE_RETURN_IF_ERROR(AtLeast("batching.max_batch", config.batching.max_batch, 1));
  if (config.batching.max_batch > 4096) {
    return KeyError("batching.max_batch", "must be at most 4096");
  }
  VSIEVE_RETURN_IF_ERROR(NotNegative("batching.max_delay_ms", config.batching.max_delay_ms));
  if (AdminEnabled(config.admin.listen)) {
    auto listen = ParseListenAddress(config.admin.listen);
    if (!listen.ok()) return KeyError("admin.listen", listen.status().message());
  }
  if (config.cache.dir.empty()) return KeyError("cache.dir", "must not be empty");
  VSIEVE_RETURN_IF_ERROR(AtLeast("cache.max_bytes", config.cache.max_bytes, int64_t{1}));
  for (size_t i = 0; i < config.tiers.size(); ++i) {
    const std::string section = "tiers[" + std::to_string(i) + "]";
    VSIEVE_RETURN_IF_ERROR(storage::ValidateTierConfig(config.tiers[i], section));
    for (size_t j = 0; j < i; ++j) {
      if (config.tiers[j].DisplayName() == config.tiers[i].DisplayName()) {
        return KeyError(section + ".name", "'" + config.tiers[i].DisplayName() +
                                               "' is already the name of tiers[" +
                                               std::to_string(j) + "]; give each tier a name");
      }
    }
  }
  return Status::Ok();
}

common::StatusOr<int64_t> ParseByteSize(std::string_view text) {
  const std::string original(text);
  const auto bad = [&]() {
    return Status(ErrorCode::kInvalidArgument,
                  "'" + original +
                      "' is not a size (a byte count, or a number with B, KB, MB, GB, TB, KiB, "
                      "MiB, GiB or TiB, e.g. \"512MiB\" or \"50GiB\")");
  };
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  size_t digits = 0;
  bool dot = false;
  while (digits < text.size() &&
         ((text[digits] >= '0' && text[digits] <= '9') || (text[digits] == '.' && !dot))) {
    dot = dot || text[digits] == '.';
    ++digits;
  }
  const std::string number(text.substr(0, digits));
  if (number.empty() || number == "." || number.front() == '.' || number.back() == '.') {
    return bad();
  }
  std::string unit(text.substr(digits));
  while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const std::pair<const char*, long double> kUnits[] = {
      {"", 1},
      {"b", 1},
      {"kb", 1e3},
      {"mb", 1e6},
      {"gb", 1e9},
      {"tb", 1e12},
      {"kib", 1024.0L},
      {"mib", 1048576.0L},
      {"gib", 1073741824.0L},
      {"tib", 1099511627776.0L},
  };
  const long double* multiplier = nullptr;
  for (const auto& [name, value] : kUnits) {
    if (unit == name) multiplier = &value;
  }
  if (multiplier == nullptr || (dot && *multiplier == 1)) return bad();
  const long double bytes = std::strtold(number.c_str(), nullptr) * *multiplier;
  if (bytes >= 9223372036854775807.0L) {
    return Status(ErrorCode::kInvalidArgument, "'" + original + "' is too large");
  }
  if (bytes < 1) return Status(ErrorCode::kInvalidArgument, "'" + original + "' is under 1 byte");
  return static_cast<int64_t>(bytes);
}

common::Status LoadFilterConfig(const std::string& path, FilterConfig* config) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    return Status(ErrorCode::kInvalidArgument, path + ":" + std::to_string(where.line) + ":" +
                                                   std::to_string(where.column) + ": " +
                                                   std::string(e.description()));
  }
  VSIEVE_RETURN_IF_ERROR(LoadSections(root, config).WithContext(path));
  VSIEVE_RETURN_IF_ERROR(ValidateServiceConfig(*config).WithContext(path));
  return ValidateFilterOptions(config->options).WithContext(path);
}

void ResolveModels(FilterConfig* config) {
  config->options.models = models::ResolveModelPaths(config->model_dirs);
}

namespace {

nlohmann::json DetectorJson(const models::DetectorConfig& d) {
  nlohmann::json kinds = nlohmann::json::object();
  for (const auto& [label, mapping] : d.kinds) {
    kinds[label] = {{"kind", models::RegionKindName(mapping.kind)}, {"avoid", mapping.avoid}};
  }
  return {{"name", d.name},
          {"kind", models::YoloKindName(d.kind)},
          {"model", d.model},
          {"cfg", d.cfg},
          {"classes", d.classes},
          {"input", {d.input_height, d.input_width}},
          {"letterbox", d.letterbox},
          {"conf", d.conf},
          {"nms", d.nms},
          {"class_filter", d.class_filter},
          {"kinds", kinds},
          {"frames", d.frames},
          {"min_presence", d.min_presence},
          {"devices", d.devices},
          {"instances", d.instances},
          {"batch", d.batch}};
}

nlohmann::json HeadJson(const models::OnnxHeadConfig& h) {
  return {{"name", h.name},
          {"kind", "onnx"},
          {"model", h.model},
          {"layout", models::HeadLayoutName(h.layout)},
          {"frames", h.frames},
          {"size", {h.height, h.width}},
          {"mean", h.mean},
          {"std", h.std},
          {"colour", h.rgb ? "rgb" : "bgr"},
          {"labels", h.labels},
          {"activation", models::HeadActivationName(h.activation)},
          {"mode", models::HeadModeName(h.mode)},
          {"devices", h.devices},
          {"instances", h.instances},
          {"batch", h.batch}};
}

}  // namespace

nlohmann::json FilterOptionsToJson(const models::FilterOptions& o) {
  nlohmann::json detectors = nlohmann::json::array();
  for (const auto& d : o.detectors) detectors.push_back(DetectorJson(d));
  nlohmann::json heads = nlohmann::json::array();
  for (const auto& h : o.heads) heads.push_back(HeadJson(h));
  return {
      {"sampling",
       {{"region_frames", o.sampling.region_frames},
        {"clip_frames", o.sampling.clip_frames},
        {"window_s", o.sampling.window_s},
        {"stride_s", o.sampling.stride_s},
        {"window_frames", o.sampling.window_frames},
        {"bursts", o.sampling.bursts},
        {"burst_length", o.sampling.burst_length},
        {"max_frames", o.sampling.max_frames}}},
      {"limits",
       {{"probe_size_bytes", o.limits.probe_size_bytes},
        {"analyze_duration_s", o.limits.analyze_duration_s},
        {"max_dimension", o.limits.max_dimension},
        {"max_pixels", o.limits.max_pixels},
        {"min_dimension", o.limits.min_dimension},
        {"open_deadline_s", o.limits.open_deadline_s},
        {"decode_deadline_s", o.limits.decode_deadline_s},
        {"analysis_max_side", o.limits.analysis_max_side},
        {"thin_max_side", o.limits.thin_max_side},
        {"max_error_ratio", o.limits.max_error_ratio},
        {"max_errors", o.limits.max_errors},
        {"min_returned_ratio", o.limits.min_returned_ratio},
        {"decoder_threads", o.limits.decoder_threads}}},
      {"filter",
       {{"text_regions", o.text_regions},
        {"vfx", o.vfx},
        {"simcam", o.simcam},
        {"rotate_vertical", o.rotate_vertical},
        {"low_quality", o.low_quality},
        {"windows", o.windows},
        {"crop_aspect", o.crop.aspect}}},
      {"models",
       {{"text_detector", o.models.text_detector},
        {"text_angle", o.models.text_angle},
        {"face_cascade", o.models.face_cascade},
        {"brisque_model", o.models.brisque_model},
        {"brisque_range", o.models.brisque_range}}},
      {"detectors", std::move(detectors)},
      {"heads", std::move(heads)},
  };
}

std::string ConfigHash(const models::FilterOptions& options) {
  nlohmann::json json = FilterOptionsToJson(options);
  // Hash what changes results, not where the files happen to live.
  for (auto& [name, path] : json["models"].items()) path = !path.get<std::string>().empty();
  // Configured models: the file names count, not their folders; where and how many instances
  // run, and how they batch, do not change results.
  for (const char* list : {"detectors", "heads"}) {
    for (auto& entry : json[list]) {
      for (const char* key : {"model", "cfg", "classes"}) {
        if (!entry.contains(key)) continue;
        const std::string path = entry[key].get<std::string>();
        entry[key] = path.substr(path.find_last_of('/') + 1);
      }
      for (const char* key : {"devices", "instances", "batch"}) entry.erase(key);
    }
  }
  const std::string text = json.dump();
  uint64_t hash = 1469598103934665603ULL;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  char out[32];
  std::snprintf(out, sizeof out, "fnv1a64:%016" PRIx64, hash);
  return out;
}

}  // namespace vsieve::daemon
