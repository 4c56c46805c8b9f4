#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "daemon/config/filter_config.h"
#include "daemon/tables/table_rows.h"
#include "storage/table_store.h"

namespace CLI {
class App;
}

namespace vsieve::daemon {

// Exit codes of the table commands (also in their --help):
//   0 success; 1 usage error; 2 configuration, store or file error; 3 `import` skipped some bad
//   lines (the good ones were imported).
inline constexpr int kExitSomeLinesBad = 3;

// The operator commands on input tables: `import`, `export`, `requeue` and `status`
// (DESIGN.md, "Command line"). Register() adds the subcommands and their flags to `app`;
// after app.parse(), RunParsed() runs whichever of them was given. Holds the parsed flags, so it
// must outlive the parse. Not thread-safe; use from the main thread.
class TableCommands {
 public:
  TableCommands() = default;
  TableCommands(const TableCommands&) = delete;
  TableCommands& operator=(const TableCommands&) = delete;

  // Adds the four subcommands to `app` (not owned; must outlive this object's use).
  void Register(CLI::App* app);

  // Runs the parsed subcommand and returns its exit code, or nullopt when none of the four was
  // given. Writes results to stdout (or --output) and diagnostics to stderr. Blocks on the store.
  std::optional<int> RunParsed();

 private:
  // Flags every table command takes.
  struct CommonFlags {
    std::string config_path;
    std::string store_url;  // overrides [store].url
    std::string table;
  };

  int RunImport();
  int RunExport();
  int RunRequeue();
  int RunStatus();
  // Loads the config and opens the store; prints the error and returns nullptr on failure.
  std::unique_ptr<storage::TableStore> OpenStore(const CommonFlags& flags);

  CLI::App* import_cmd_ = nullptr;
  CLI::App* export_cmd_ = nullptr;
  CLI::App* requeue_cmd_ = nullptr;
  CLI::App* status_cmd_ = nullptr;

  CommonFlags import_flags_;
  std::string import_format_;
  std::vector<std::string> import_files_;

  CommonFlags export_flags_;
  std::string export_state_ = "all";
  std::string export_output_;

  CommonFlags requeue_flags_;
  bool requeue_failed_ = false;
  std::string requeue_ids_file_;
  std::string requeue_error_code_;

  CommonFlags status_flags_;
  bool status_json_ = false;
};

}  // namespace vsieve::daemon
