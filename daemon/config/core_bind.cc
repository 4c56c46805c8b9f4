#include "daemon/config/core_bind.h"

#include <pthread.h>
#include <sched.h>
#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <set>

namespace vsieve::daemon {
namespace {

using common::ErrorCode;
using common::Status;

constexpr int kMaxCpu = CPU_SETSIZE - 1;

Status SpecError(const std::string& reason) {
  return Status(ErrorCode::kInvalidArgument,
                fmt::format("config key 'pipeline.core_bind': {}", reason));
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  return text;
}

bool ParseInt(std::string_view text, int* value) {
  text = Trim(text);
  if (text.empty()) return false;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return error == std::errc() && end == text.data() + text.size();
}

std::vector<std::string_view> Split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  while (true) {
    const std::size_t at = text.find(separator);
    parts.push_back(Trim(text.substr(0, at)));
    if (at == std::string_view::npos) return parts;
    text.remove_prefix(at + 1);
  }
}

// The pools of an explicit spec, in the order given; "auto" and "off" are handled by callers.
common::StatusOr<CoreBinding> ParseExplicit(std::string_view spec) {
  CoreBinding binding;
  std::set<std::string> seen;
  for (std::string_view part : Split(spec, ';')) {
    if (part.empty()) continue;
    const std::size_t equals = part.find('=');
    if (equals == std::string_view::npos) {
      return SpecError(
          fmt::format("'{}' is not POOL=CPUS (expected \"\", \"off\", \"auto\" or e.g. "
                      "\"decode=0;workers=1-3\")",
                      part));
    }
    const std::string pool(Trim(part.substr(0, equals)));
    std::vector<int>* target = pool == "fetch"     ? &binding.fetch
                               : pool == "decode"  ? &binding.decode
                               : pool == "workers" ? &binding.workers
                                                   : nullptr;
    if (target == nullptr) {
      return SpecError(fmt::format("unknown pool '{}' (expected fetch, decode or workers)", pool));
    }
    if (!seen.insert(pool).second) return SpecError(fmt::format("pool '{}' given twice", pool));
    auto cpus = ParseCpuList(part.substr(equals + 1));
    if (!cpus.ok()) return SpecError(fmt::format("pool '{}': {}", pool, cpus.status().message()));
    *target = std::move(cpus).value();
  }
  if (!binding.enabled()) return SpecError("no pool given");
  return binding;
}

}  // namespace

common::StatusOr<std::vector<int>> AllowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) {
    return Status(ErrorCode::kInternal,
                  std::string("sched_getaffinity failed: ") + std::strerror(errno));
  }
  std::vector<int> cpus;
  for (int cpu = 0; cpu <= kMaxCpu; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

common::StatusOr<std::vector<int>> ParseCpuList(std::string_view text) {
  std::set<int> cpus;
  if (Trim(text).empty()) return Status(ErrorCode::kInvalidArgument, "empty CPU list");
  for (std::string_view item : Split(text, ',')) {
    const std::size_t dash = item.find('-');
    int first = 0;
    int last = 0;
    const bool ok = dash == std::string_view::npos ? ParseInt(item, &first) && ParseInt(item, &last)
                                                   : ParseInt(item.substr(0, dash), &first) &&
                                                         ParseInt(item.substr(dash + 1), &last);
    if (!ok || first < 0 || last < first) {
      return Status(ErrorCode::kInvalidArgument,
                    fmt::format("'{}' is not a CPU number or range like 2-5", item));
    }
    if (last > kMaxCpu) {
      return Status(ErrorCode::kInvalidArgument, fmt::format("CPU {} is above {}", last, kMaxCpu));
    }
    for (int cpu = first; cpu <= last; ++cpu) cpus.insert(cpu);
  }
  return std::vector<int>(cpus.begin(), cpus.end());
}

std::string FormatCpuList(const std::vector<int>& cpus) {
  std::string text;
  for (std::size_t i = 0; i < cpus.size();) {
    std::size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!text.empty()) text += ',';
    text += std::to_string(cpus[i]);
    if (j > i) {
      text += '-';
      text += std::to_string(cpus[j]);
    }
    i = j + 1;
  }
  return text;
}

common::Status CheckCoreBindSpec(const std::string& spec) {
  const std::string_view trimmed = Trim(spec);
  if (trimmed.empty() || trimmed == "off" || trimmed == "auto") return Status::Ok();
  auto binding = ParseExplicit(trimmed);
  return binding.ok() ? Status::Ok() : binding.status();
}

common::StatusOr<CoreBinding> PlanCoreBinding(const std::string& spec,
                                              const std::vector<int>& allowed, int decode_threads,
                                              int workers) {
  const std::string_view trimmed = Trim(spec);
  if (trimmed.empty() || trimmed == "off") return CoreBinding{};
  if (allowed.empty()) return SpecError("this process may run on no CPU");
  CoreBinding binding;
  if (trimmed == "auto") {
    const int n = static_cast<int>(allowed.size());
    if (n == 1) {
      binding.decode = binding.workers = allowed;
      return binding;
    }
    const double share = static_cast<double>(std::max(1, decode_threads)) /
                         (std::max(1, decode_threads) + std::max(1, workers));
    const int for_decode = std::clamp(static_cast<int>(std::lround(n * share)), 1, n - 1);
    binding.decode.assign(allowed.begin(), allowed.begin() + for_decode);
    binding.workers.assign(allowed.begin() + for_decode, allowed.end());
    return binding;
  }
  VSIEVE_ASSIGN_OR_RETURN(binding, ParseExplicit(trimmed));
  for (const std::vector<int>* pool : {&binding.fetch, &binding.decode, &binding.workers}) {
    for (int cpu : *pool) {
      if (!std::binary_search(allowed.begin(), allowed.end(), cpu)) {
        return SpecError(fmt::format("CPU {} is not one this process may run on (allowed: {})", cpu,
                                     FormatCpuList(allowed)));
      }
    }
  }
  return binding;
}

common::Status PinThisThread(const std::vector<int>& cpus) {
  if (cpus.empty()) return Status::Ok();
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int cpu : cpus) CPU_SET(cpu, &set);
  const int error = ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set);
  if (error != 0) {
    return Status(ErrorCode::kInternal, fmt::format("cannot pin thread to CPUs {}: {}",
                                                    FormatCpuList(cpus), std::strerror(error)));
  }
  return Status::Ok();
}

}  // namespace vsieve::daemon
