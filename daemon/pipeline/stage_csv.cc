#include "daemon/pipeline/stage_csv.h"

#include <cerrno>
#include <cstring>
#include <optional>

#include "daemon/config/core_bind.h"

namespace vsieve::daemon {
namespace {

using common::ErrorCode;
using common::Status;

std::string CsvField(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

std::string Millis(std::optional<double> ms) {
  if (!ms.has_value()) return "";
  char text[32];
  std::snprintf(text, sizeof text, "%.3f", *ms);
  return text;
}

std::optional<double> Stage(const StageRecord& record, const char* stage) {
  const auto it = record.stage_ms.find(stage);
  if (it == record.stage_ms.end()) return std::nullopt;
  return it->second;
}

}  // namespace

common::StatusOr<std::unique_ptr<StageCsvWriter>> StageCsvWriter::Open(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "w");
  if (file == nullptr) {
    return Status(ErrorCode::kInvalidArgument,
                  "cannot create stage CSV " + path + ": " + std::strerror(errno));
  }
  std::unique_ptr<StageCsvWriter> writer(new StageCsvWriter(path, file));
  const std::string header = Header() + "\n";
  if (std::fputs(header.c_str(), file) < 0) {
    return Status(ErrorCode::kInvalidArgument,
                  "cannot write stage CSV " + path + ": " + std::strerror(errno));
  }
  return writer;
}

StageCsvWriter::~StageCsvWriter() { (void)Close(); }

std::string StageCsvWriter::Header() {
  return "step,read_latency_ms,prep_latency_ms,exec_latency_ms,total_step_latency_ms,loss,"
         "video_id,device,worker,cpus,succeed,error_code,fetch_ms,decode_ms,regions_ms,heads_ms,"
         "write_ms";
}

std::string StageCsvWriter::Line(int64_t step, const StageRecord& record) {
  const auto fetch = Stage(record, "fetch");
  const auto decode = Stage(record, "decode");
  const auto regions = Stage(record, "regions");
  const auto heads = Stage(record, "heads");
  const double read = fetch.value_or(0) + decode.value_or(0);
  const double prep = regions.value_or(0);
  const double exec = heads.value_or(0);
  std::string line = std::to_string(step);
  for (const std::string& field :
       {Millis(read), Millis(prep), Millis(exec), Millis(read + prep + exec), std::string(),
        CsvField(record.video_id), CsvField(record.device),
        record.worker >= 0 ? std::to_string(record.worker) : std::string(),
        CsvField(FormatCpuList(record.cpus)), std::string(record.succeeded ? "true" : "false"),
        CsvField(record.error_code), Millis(fetch), Millis(decode), Millis(regions), Millis(heads),
        Millis(Stage(record, "write"))}) {
    line += ',';
    line += field;
  }
  return line;
}

void StageCsvWriter::Append(const StageRecord& record) {
  std::lock_guard lock(mutex_);
  if (file_ == nullptr) return;
  const std::string line = Line(++steps_, record) + "\n";
  // Flushed per line (a few per second at most), so `tail -f` and a crash keep whole lines.
  if ((std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0) &&
      error_.ok()) {
    error_ =
        Status(ErrorCode::kInternal, "writing stage CSV " + path_ + ": " + std::strerror(errno));
  }
}

common::Status StageCsvWriter::Close() {
  std::lock_guard lock(mutex_);
  if (file_ == nullptr) return error_;
  const bool closed = std::fclose(file_) == 0;
  file_ = nullptr;
  if (!closed && error_.ok()) {
    error_ =
        Status(ErrorCode::kInternal, "writing stage CSV " + path_ + ": " + std::strerror(errno));
  }
  return error_;
}

}  // namespace vsieve::daemon
