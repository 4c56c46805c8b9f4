#pragma once

namespace vsieve::common {

// Settings of glibc's allocator for a process that filters many videos on a few threads.
//
// Each video allocates and frees frames of 0.5 to 1 MB (a hundred and more of them) and the
// models' buffers, on several threads. glibc keeps up to eight arenas per core, each holding on
// to what its threads freed, so resident memory creeps up with every thread and video. This caps
// the arenas at `max_arenas`; ReleaseFreeMemory() between videos hands the freed pages back.
// (A fixed, low mmap threshold would return frames at once too, but measured 3 to 4 times the
// system CPU time in page faults, for the same peak.)
//
// Call once, before the first worker thread starts. Does nothing where the allocator is not
// glibc's, or when the environment already sets the arenas (MALLOC_ARENA_MAX, GLIBC_TUNABLES).
void TuneAllocator(int max_arenas = 2);

// Gives freed heap memory back to the operating system (glibc's malloc_trim); call between
// videos. Cheap when little is free; a no-op outside glibc. Thread-safe.
void ReleaseFreeMemory();

}  // namespace vsieve::common
