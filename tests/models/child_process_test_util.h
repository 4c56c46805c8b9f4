#pragma once

#include <sys/types.h>

#include <vector>

namespace vsieve::models {

// The pids of this process's children, from /proc, zombies included.
std::vector<pid_t> ChildrenOfThisProcess();

// The children of this process that are zombies (state Z).
std::vector<pid_t> ZombieChildren();

}  // namespace vsieve::models
