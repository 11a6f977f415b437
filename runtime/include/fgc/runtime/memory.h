// Memory that is cheap to touch for the first time.
//
// Writing fresh memory costs a page fault per 4 KiB page, which on a virtual machine can cost
// more than the write itself (a 5 MB weight blob: ~25 ms of faults, ~1 ms of copying). Asking
// Linux for transparent huge pages (one fault per 2 MiB) helps where the system allows it on
// request (`/sys/kernel/mm/transparent_hugepage/enabled` = madvise or always); elsewhere the
// advice does nothing. Used by the runtime's weights and by the compiler's large buffers (the
// JIT's weights).
#ifndef FGC_RUNTIME_MEMORY_H
#define FGC_RUNTIME_MEMORY_H

#include <cstddef>

namespace fgc::rt {

// The size of a transparent huge page on x86-64 Linux.
constexpr std::size_t HugePageBytes = std::size_t(2) << 20;

// Advises huge pages for the 2 MiB-aligned part of [data, data + bytes) (nothing if none).
void adviseHugePages(void *data, std::size_t bytes);

} // namespace fgc::rt

#endif // FGC_RUNTIME_MEMORY_H
