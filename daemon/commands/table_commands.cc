#include "daemon/commands/table_commands.h"

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/log.h"
#include "common/text.h"
#include "daemon/tables/table_rows.h"

namespace vsieve::daemon {
namespace {

using common::ErrorCode;
using common::Status;
using common::Trim;
using storage::InputRow;

constexpr size_t kImportBatch = 5000;  // rows per import transaction

// A bad input line, reported as FILE:LINE: reason.
struct BadLine {
  int line = 0;
  std::string reason;
};

bool EndsWith(const std::string& text, std::string_view suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// "jsonl" or "csv" from the file name; "" when it cannot be told.
std::string FormatFromName(const std::string& path) {
  if (EndsWith(path, ".jsonl") || EndsWith(path, ".ndjson") || EndsWith(path, ".json")) {
    return "jsonl";
  }
  if (EndsWith(path, ".csv")) return "csv";
  return "";
}

void ReadJsonl(std::istream& in, const std::string& table, std::vector<InputRow>* rows,
               std::vector<BadLine>* bad) {
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (Trim(line).empty()) continue;
    InputRow row;
    row.table = table;
    std::string reason = ParseInputRowJson(line, &row);
    if (reason.empty()) {
      rows->push_back(std::move(row));
    } else {
      bad->push_back({number, reason});
    }
  }
}

// Splits CSV text (RFC 4180: quoted fields, doubled quotes, line breaks inside quotes) into
// records, each with the line number it starts on.
struct CsvRecord {
  int line = 0;
  std::vector<std::string> fields;
  std::string error;
};

std::vector<CsvRecord> ParseCsv(std::istream& in) {
  std::vector<CsvRecord> records;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  int line = 1;
  size_t i = 0;
  while (i < text.size()) {
    CsvRecord record;
    record.line = line;
    std::string field;
    bool in_quotes = false;
    bool quoted = false;
    bool end_of_record = false;
    while (i < text.size() && !end_of_record) {
      const char c = text[i++];
      if (in_quotes) {
        if (c == '"') {
          if (i < text.size() && text[i] == '"') {
            field += '"';
            ++i;
          } else {
            in_quotes = false;
          }
        } else {
          if (c == '\n') ++line;
          field += c;
        }
      } else if (c == '"' && field.empty() && !quoted) {
        in_quotes = true;
        quoted = true;
      } else if (c == ',') {
        record.fields.push_back(std::move(field));
        field.clear();
        quoted = false;
      } else if (c == '\n') {
        ++line;
        end_of_record = true;
      } else if (c != '\r') {
        if (quoted) record.error = "text after a closing quote";
        field += c;
      }
    }
    if (in_quotes) record.error = "unterminated quoted field";
    record.fields.push_back(std::move(field));
    const bool blank = record.fields.size() == 1 && record.fields[0].empty() && !quoted;
    if (!blank) records.push_back(std::move(record));
  }
  return records;
}

// The `info` cell of a CSV row: a JSON object or string text is kept as is; anything else is
// stored as a JSON string.
std::string InfoFromCell(const std::string& cell) {
  const std::string trimmed = Trim(cell);
  if (trimmed.empty()) return "{}";
  if (trimmed.front() == '{' || trimmed.front() == '"') {
    nlohmann::json parsed = nlohmann::json::parse(trimmed, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_object() || parsed.is_string()) return parsed.dump();
  }
  return nlohmann::json(cell).dump();
}

void ReadCsv(std::istream& in, const std::string& table, std::vector<InputRow>* rows,
             std::vector<BadLine>* bad) {
  std::vector<CsvRecord> records = ParseCsv(in);
  if (records.empty()) return;
  const CsvRecord& header = records.front();
  std::map<std::string, size_t> columns;
  for (size_t c = 0; c < header.fields.size(); ++c) columns[Trim(header.fields[c])] = c;
  static const std::set<std::string> kKnown = {"video_id", "oss_bucket", "video_path", "video_tag",
                                               "info"};
  for (const auto& [name, index] : columns) {
    if (kKnown.count(name) == 0) {
      bad->push_back({header.line, "unknown column '" + name + "' in the header"});
      return;
    }
  }
  if (columns.count("video_id") == 0) {
    bad->push_back({header.line, "the header has no video_id column"});
    return;
  }
  for (size_t r = 1; r < records.size(); ++r) {
    const CsvRecord& record = records[r];
    if (!record.error.empty()) {
      bad->push_back({record.line, record.error});
      continue;
    }
    if (record.fields.size() != header.fields.size()) {
      bad->push_back({record.line, "expected " + std::to_string(header.fields.size()) +
                                       " fields, found " + std::to_string(record.fields.size())});
      continue;
    }
    InputRow row;
    row.table = table;
    auto cell = [&](const char* name) -> std::string {
      auto it = columns.find(name);
      return it == columns.end() ? std::string() : record.fields[it->second];
    };
    row.video_id = Trim(cell("video_id"));
    if (row.video_id.empty()) {
      bad->push_back({record.line, "empty video_id"});
      continue;
    }
    row.oss_bucket = cell("oss_bucket");
    row.video_path = cell("video_path");
    row.video_tag = cell("video_tag");
    row.info_json = InfoFromCell(cell("info"));
    rows->push_back(std::move(row));
  }
}

Status WriteRequeueSummary(const storage::RequeueResult& result) {
  std::cout << "requeued " << result.requeued << ", already pending " << result.already_pending
            << ", refused running " << result.refused_running << ", not found " << result.not_found
            << "\n";
  if (result.refused_running > 0) {
    std::cerr << "vsieve: " << result.refused_running
              << " row(s) are running and were left alone; requeue them again once they "
                 "finish\n";
  }
  return Status::Ok();
}

std::string FormatDuration(double seconds) {
  const long long total = std::llround(seconds);
  std::ostringstream out;
  if (total >= 3600) out << total / 3600 << "h";
  if (total >= 60) out << (total % 3600) / 60 << "m";
  out << total % 60 << "s";
  return out.str();
}

void AddCommonFlags(CLI::App* cmd, std::string* config, std::string* store, std::string* table,
                    const std::string& table_help) {
  cmd->add_option("--config", *config, "TOML config file (see etc/vsieve.example.toml)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--store", *store,
                  "Table store URL, overriding [store].url (sqlite:///abs/path.db, "
                  "sqlite://relative.db, a path ending in .db, or postgresql://...)");
  cmd->add_option("--table", *table, table_help);
}

}  // namespace

void TableCommands::Register(CLI::App* app) {
  const std::string exit_codes =
      " Exit codes: 0 success, 1 usage error, 2 configuration or store error";
  import_cmd_ = app->add_subcommand(
      "import",
      "Load input rows (seed 8.1: video_id, oss_bucket, video_path, video_tag, info) from JSONL "
      "or CSV files (a header row names the columns) into a table. Idempotent: a video_id "
      "already in the table is left unchanged. Prints 'imported N, unchanged M, bad K'; each "
      "bad line goes to stderr as FILE:LINE: reason." +
          exit_codes + ", 3 some lines were bad (the good ones were imported).");
  AddCommonFlags(import_cmd_, &import_flags_.config_path, &import_flags_.store_url,
                 &import_flags_.table, "Table to import into (default \"default\")");
  import_cmd_
      ->add_option("--format", import_format_,
                   "jsonl or csv (default: from the extension: .jsonl/.ndjson/.json, .csv)")
      ->check(CLI::IsMember({"jsonl", "csv"}));
  import_cmd_->add_option("files", import_files_, "Input files")
      ->required()
      ->check(CLI::ExistingFile);

  export_cmd_ = app->add_subcommand(
      "export",
      "Write the stored result rows (the output-row schema) as JSONL, in row order; rows without "
      "a result are skipped." +
          exit_codes + ".");
  AddCommonFlags(export_cmd_, &export_flags_.config_path, &export_flags_.store_url,
                 &export_flags_.table, "Only this table (default: every table)");
  export_cmd_->add_option("--state", export_state_, "done, failed or all (default all)")
      ->check(CLI::IsMember({"done", "failed", "all"}));
  export_cmd_->add_option("-o,--output", export_output_, "Write here instead of stdout");

  requeue_cmd_ = app->add_subcommand(
      "requeue",
      "Put finished rows back to pending, keeping their attempt history. Running rows are never "
      "touched (they are counted as refused). Idempotent. Prints the counts." +
          exit_codes + ".");
  AddCommonFlags(requeue_cmd_, &requeue_flags_.config_path, &requeue_flags_.store_url,
                 &requeue_flags_.table, "Only this table (default: every table)");
  CLI::Option* failed = requeue_cmd_->add_flag("--failed", requeue_failed_, "Every failed row");
  CLI::Option* ids = requeue_cmd_
                         ->add_option("--ids", requeue_ids_file_,
                                      "A file of video ids, one per line ('#' comments)")
                         ->check(CLI::ExistingFile);
  CLI::Option* code = requeue_cmd_->add_option("--error-code", requeue_error_code_,
                                               "Failed rows whose last error has this code");
  failed->excludes(ids)->excludes(code);
  ids->excludes(code);

  status_cmd_ = app->add_subcommand(
      "status",
      "Rows by state, throughput over the last 1/5/15 minutes (videos/min), ETA from the "
      "5-minute rate, and the most frequent error codes." +
          exit_codes + ".");
  AddCommonFlags(status_cmd_, &status_flags_.config_path, &status_flags_.store_url,
                 &status_flags_.table, "Only this table (default: every table)");
  status_cmd_->add_flag("--json", status_json_, "One JSON object (what the admin API serves)");
}

std::optional<int> TableCommands::RunParsed() {
  if (import_cmd_ != nullptr && import_cmd_->parsed()) return RunImport();
  if (export_cmd_ != nullptr && export_cmd_->parsed()) return RunExport();
  if (requeue_cmd_ != nullptr && requeue_cmd_->parsed()) return RunRequeue();
  if (status_cmd_ != nullptr && status_cmd_->parsed()) return RunStatus();
  return std::nullopt;
}

std::unique_ptr<storage::TableStore> TableCommands::OpenStore(const CommonFlags& flags) {
  FilterConfig config;
  if (!flags.config_path.empty()) {
    Status status = LoadFilterConfig(flags.config_path, &config);
    if (!status.ok()) {
      std::cerr << "vsieve: " << status.message() << "\n";
      return nullptr;
    }
  }
  if (!flags.store_url.empty()) config.store.url = flags.store_url;
  if (Status status = ValidateServiceConfig(config); !status.ok()) {
    std::cerr << "vsieve: " << status.message() << "\n";
    return nullptr;
  }
  if (Status status = common::InitLogging(config.log_level); !status.ok()) {
    std::cerr << "vsieve: " << status.message() << "\n";
    return nullptr;
  }
  auto store = OpenConfiguredStore(config);
  if (!store.ok()) {
    std::cerr << "vsieve: " << store.status().ToString() << "\n";
    return nullptr;
  }
  return std::move(*store);
}

int TableCommands::RunImport() {
  const std::string table = import_flags_.table.empty() ? "default" : import_flags_.table;
  std::unique_ptr<storage::TableStore> store = OpenStore(import_flags_);
  if (store == nullptr) return 2;
  // Check every file's format before importing any.
  std::vector<std::string> formats;
  for (const std::string& file : import_files_) {
    std::string format = import_format_.empty() ? FormatFromName(file) : import_format_;
    if (format.empty()) {
      std::cerr << "vsieve: cannot tell the format of " << file
                << " from its name; pass --format jsonl or --format csv\n";
      return 2;
    }
    formats.push_back(format);
  }
  storage::ImportResult total;
  int bad_count = 0;
  for (size_t f = 0; f < import_files_.size(); ++f) {
    const std::string& file = import_files_[f];
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      std::cerr << "vsieve: cannot read " << file << "\n";
      return 2;
    }
    std::vector<InputRow> rows;
    std::vector<BadLine> bad;
    if (formats[f] == "csv") {
      ReadCsv(in, table, &rows, &bad);
    } else {
      ReadJsonl(in, table, &rows, &bad);
    }
    for (const BadLine& line : bad) {
      std::cerr << file << ":" << line.line << ": " << line.reason << "\n";
    }
    bad_count += static_cast<int>(bad.size());
    for (size_t start = 0; start < rows.size(); start += kImportBatch) {
      const size_t end = std::min(rows.size(), start + kImportBatch);
      std::vector<InputRow> batch(rows.begin() + static_cast<std::ptrdiff_t>(start),
                                  rows.begin() + static_cast<std::ptrdiff_t>(end));
      auto result = store->Import(batch);
      if (!result.ok()) {
        std::cerr << "vsieve: importing " << file << ": " << result.status().ToString() << "\n";
        return 2;
      }
      total.inserted += result->inserted;
      total.unchanged += result->unchanged;
    }
  }
  std::cout << "imported " << total.inserted << ", unchanged " << total.unchanged << ", bad "
            << bad_count << "\n";
  return bad_count == 0 ? 0 : kExitSomeLinesBad;
}

int TableCommands::RunExport() {
  std::unique_ptr<storage::TableStore> store = OpenStore(export_flags_);
  if (store == nullptr) return 2;
  std::optional<storage::RowState> state;
  if (export_state_ != "all") {
    storage::RowState parsed;
    if (!storage::ParseRowState(export_state_, &parsed)) {
      std::cerr << "vsieve: unknown state " << export_state_ << "\n";
      return 1;
    }
    state = parsed;
  }
  std::ofstream file;
  if (!export_output_.empty()) {
    file.open(export_output_, std::ios::binary | std::ios::trunc);
    if (!file) {
      std::cerr << "vsieve: cannot write " << export_output_ << "\n";
      return 2;
    }
  }
  std::ostream& out = export_output_.empty() ? std::cout : file;
  int64_t written = 0;
  Status status =
      store->ForEachRow(export_flags_.table, state, [&](const storage::RowRecord& record) {
        if (!record.result_json.has_value()) return;
        const std::string& json = *record.result_json;
        if (json.find('\n') == std::string::npos) {
          out << json << "\n";
        } else {
          // Keep one row per line whatever the writer stored.
          nlohmann::json parsed = nlohmann::json::parse(json, nullptr, false);
          out << (parsed.is_discarded() ? nlohmann::json(json).dump() : parsed.dump()) << "\n";
        }
        ++written;
      });
  out.flush();
  if (!status.ok()) {
    std::cerr << "vsieve: " << status.ToString() << "\n";
    return 2;
  }
  if (!out) {
    std::cerr << "vsieve: writing " << (export_output_.empty() ? "stdout" : export_output_)
              << " failed\n";
    return 2;
  }
  std::cerr << "exported " << written << " row(s)\n";
  return 0;
}

int TableCommands::RunRequeue() {
  storage::RequeueFilter filter;
  filter.table = requeue_flags_.table;
  filter.failed = requeue_failed_;
  filter.error_code = requeue_error_code_;
  const int selectors = (requeue_failed_ ? 1 : 0) + (requeue_ids_file_.empty() ? 0 : 1) +
                        (requeue_error_code_.empty() ? 0 : 1);
  if (selectors != 1) {
    std::cerr << "vsieve requeue: give exactly one of --failed, --ids FILE, --error-code C\n";
    return 1;
  }
  if (!requeue_ids_file_.empty()) {
    std::ifstream in(requeue_ids_file_);
    if (!in) {
      std::cerr << "vsieve: cannot read " << requeue_ids_file_ << "\n";
      return 2;
    }
    std::string line;
    while (std::getline(in, line)) {
      line = Trim(line);
      if (!line.empty() && line[0] != '#') filter.video_ids.push_back(line);
    }
    if (filter.video_ids.empty()) {
      std::cout << "requeued 0, already pending 0, refused running 0, not found 0\n";
      return 0;
    }
  }
  if (!filter.error_code.empty()) {
    common::ErrorCode code;
    if (!common::ParseErrorCode(filter.error_code, &code)) {
      std::cerr << "vsieve: warning: " << filter.error_code
                << " is not one of the documented error codes\n";
    }
  }
  std::unique_ptr<storage::TableStore> store = OpenStore(requeue_flags_);
  if (store == nullptr) return 2;
  auto result = store->Requeue(filter);
  if (!result.ok()) {
    std::cerr << "vsieve: " << result.status().ToString() << "\n";
    return 2;
  }
  (void)WriteRequeueSummary(*result);
  return 0;
}

int TableCommands::RunStatus() {
  std::unique_ptr<storage::TableStore> store = OpenStore(status_flags_);
  if (store == nullptr) return 2;
  auto stats = store->Stats(status_flags_.table);
  if (!stats.ok()) {
    std::cerr << "vsieve: " << stats.status().ToString() << "\n";
    return 2;
  }
  const nlohmann::json json = StatusJson(status_flags_.table, *stats);
  if (status_json_) {
    std::cout << json.dump() << "\n";
    return 0;
  }
  std::ostringstream out;
  out << "table: " << (status_flags_.table.empty() ? "(all)" : status_flags_.table) << "\n";
  out << "rows:";
  for (const char* state : {"pending", "running", "done", "failed"}) {
    out << " " << state << " " << json["by_state"].value(state, int64_t{0});
  }
  out << " (total " << json["total"].get<int64_t>() << ")\n";
  out << "throughput (videos/min):";
  for (const char* window : {"1m", "5m", "15m"}) {
    char rate[32];
    std::snprintf(rate, sizeof rate, "%.1f", json["throughput_per_min"][window].get<double>());
    out << " " << window << " " << rate;
  }
  out << "\n";
  out << "eta: ";
  if (json["eta_seconds"].is_null()) {
    out << "unknown (nothing finished in the last 5 minutes)";
  } else {
    out << FormatDuration(json["eta_seconds"].get<double>());
  }
  out << " for " << json["remaining"].get<int64_t>() << " pending or running\n";
  out << "top errors:";
  if (stats->top_errors.empty()) out << " none";
  for (const auto& [code, count] : stats->top_errors) out << " " << code << " " << count;
  out << "\n";
  std::cout << out.str();
  return 0;
}

}  // namespace vsieve::daemon
