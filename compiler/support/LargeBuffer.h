// Large buffers that are cheap to touch for the first time.
//
// Writing fresh memory costs a page fault per 4 KiB page, which on a virtual machine can cost
// more than the write itself (a 5 MB weight blob: ~25 ms of faults, ~1 ms of copying). These
// helpers ask Linux for transparent huge pages (one fault per 2 MiB) where the system allows it
// on request (`/sys/kernel/mm/transparent_hugepage/enabled` = madvise or always); elsewhere
// they are plain allocations.
#pragma once

#include <cstddef>
#include <memory>

namespace fgc {

// Advises huge pages for the 2 MiB-aligned part of [data, data + bytes) (nothing if none).
void adviseHugePages(void *data, std::size_t bytes);

// `bytes` of uninitialized memory, 64-byte aligned; huge pages advised when large.
struct FreeDeleter {
  void operator()(void *p) const;
};
using LargeBuffer = std::unique_ptr<char[], FreeDeleter>;
LargeBuffer allocateLarge(std::size_t bytes);

} // namespace fgc
