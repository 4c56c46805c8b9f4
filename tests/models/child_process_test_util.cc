#include "tests/models/child_process_test_util.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace vsieve::models {
namespace {

// Reads the state letter and parent pid from /proc/<pid>/stat; false when it is gone.
bool ReadStat(const std::string& pid, char* state, pid_t* ppid) {
  std::ifstream file("/proc/" + pid + "/stat");
  std::string text;
  if (!std::getline(file, text)) return false;
  const size_t close = text.rfind(')');  // the command name may hold spaces and parentheses
  if (close == std::string::npos) return false;
  std::istringstream rest(text.substr(close + 1));
  long parent = 0;
  rest >> *state >> parent;
  *ppid = static_cast<pid_t>(parent);
  return static_cast<bool>(rest);
}

std::vector<pid_t> Children(bool zombies_only) {
  std::vector<pid_t> found;
  const pid_t self = getpid();
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", error)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    char state = '?';
    pid_t ppid = 0;
    if (!ReadStat(name, &state, &ppid) || ppid != self) continue;
    if (!zombies_only || state == 'Z') found.push_back(static_cast<pid_t>(std::atol(name.c_str())));
  }
  return found;
}

}  // namespace

std::vector<pid_t> ChildrenOfThisProcess() { return Children(false); }
std::vector<pid_t> ZombieChildren() { return Children(true); }

}  // namespace vsieve::models
