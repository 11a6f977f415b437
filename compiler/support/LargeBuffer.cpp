#include "compiler/support/LargeBuffer.h"

#include "fgc/runtime/memory.h"

#include <cstdint>
#include <cstdlib>
#include <new>

namespace fgc {

using rt::HugePageBytes;

void FreeDeleter::operator()(void *p) const { std::free(p); }

LargeBuffer allocateLarge(std::size_t bytes) {
  std::size_t align = bytes >= HugePageBytes ? HugePageBytes : 64;
  std::size_t rounded = (bytes + align - 1) / align * align;
  void *p = std::aligned_alloc(align, rounded ? rounded : align);
  if (!p)
    throw std::bad_alloc();
  if (align == HugePageBytes)
    adviseHugePages(p, rounded);
  return LargeBuffer(static_cast<char *>(p));
}

} // namespace fgc
