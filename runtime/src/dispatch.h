// Run-time CPU dispatch of the compute kernels. The kernel sources
// (FGC_KERNEL_SOURCES in runtime/CMakeLists.txt) are compiled once per CPU
// variant: baseline x86-64 (SSE2), x86-64-v3 (AVX2 + FMA) and x86-64-v4
// (AVX-512). In each compilation the entry points listed in
// dispatch_kernels.def are renamed with the variant's suffix (fgc_dense ->
// fgc_dense__avx2, through the generated header that CMake force-includes), and
// kernel_table.cpp collects them into one KernelTable. The AVX2 and AVX-512
// objects are then linked into one relocatable object each whose only global
// symbol is its table function, so their Eigen and standard-library template
// instances can never be merged with another variant's. dispatch.cpp defines
// the public entry points, which forward to the table chosen once per process.
#ifndef FGC_RUNTIME_SRC_DISPATCH_H
#define FGC_RUNTIME_SRC_DISPATCH_H

#include "fgc/runtime/grad.h"
#include "fgc/runtime/kernels.h"

namespace fgc::runtime::detail {

struct KernelTable {
  const char *name; // "baseline", "avx2" or "avx512", as FGC_CPU spells it
#define FGC_KERNEL(ret, name, params, args) ret(*k_##name) params;
#include "dispatch_kernels.def"
#undef FGC_KERNEL
};

} // namespace fgc::runtime::detail

// Each variant's table (kernel_table.cpp); the first call also pins that
// variant's Eigen cache sizes. The AVX2 and AVX-512 ones exist only when the
// runtime is built with FGC_RUNTIME_DISPATCH.
extern "C" const fgc::runtime::detail::KernelTable *fgc_kernel_table__baseline(void);
extern "C" const fgc::runtime::detail::KernelTable *fgc_kernel_table__avx2(void);
extern "C" const fgc::runtime::detail::KernelTable *fgc_kernel_table__avx512(void);

#endif // FGC_RUNTIME_SRC_DISPATCH_H
