// Large buffers that are cheap to touch for the first time: huge pages advised
// (fgc/runtime/memory.h) when large, plain allocations otherwise.
#pragma once

#include "fgc/runtime/memory.h"

#include <cstddef>
#include <memory>

namespace fgc {

using rt::adviseHugePages;

// `bytes` of uninitialized memory, 64-byte aligned; huge pages advised when large.
struct FreeDeleter {
  void operator()(void *p) const;
};
using LargeBuffer = std::unique_ptr<char[], FreeDeleter>;
LargeBuffer allocateLarge(std::size_t bytes);

} // namespace fgc
