#include "compiler/support/LargeBuffer.h"

#include <cstdint>
#include <cstdlib>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace fgc {

namespace {
constexpr std::size_t kHugePage = std::size_t(2) << 20;
}

void adviseHugePages(void *data, std::size_t bytes) {
#if defined(MADV_HUGEPAGE)
  auto begin = reinterpret_cast<std::uintptr_t>(data);
  std::uintptr_t first = (begin + kHugePage - 1) / kHugePage * kHugePage;
  std::uintptr_t last = (begin + bytes) / kHugePage * kHugePage;
  if (last > first)
    ::madvise(reinterpret_cast<void *>(first), last - first, MADV_HUGEPAGE); // advice only
#else
  (void)data;
  (void)bytes;
#endif
}

void FreeDeleter::operator()(void *p) const { std::free(p); }

LargeBuffer allocateLarge(std::size_t bytes) {
  std::size_t align = bytes >= kHugePage ? kHugePage : 64;
  std::size_t rounded = (bytes + align - 1) / align * align;
  void *p = std::aligned_alloc(align, rounded ? rounded : align);
  if (!p)
    throw std::bad_alloc();
  if (align == kHugePage)
    adviseHugePages(p, rounded);
  return LargeBuffer(static_cast<char *>(p));
}

} // namespace fgc
