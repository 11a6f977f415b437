// One CPU variant's dispatch table (see dispatch.h). Compiled once per variant
// with the generated renaming header, so `fgc_dense` below names this variant's
// fgc_dense__<variant> and the table function is fgc_kernel_table__<variant>.
#include "dispatch.h"

#include <Eigen/Core>

#ifndef FGC_KERNEL_VARIANT
#error "kernel_table.cpp is compiled with -DFGC_KERNEL_VARIANT=<variant>"
#endif

#define FGC_STRINGIFY_(x) #x
#define FGC_STRINGIFY(x) FGC_STRINGIFY_(x)
#define FGC_TABLE_FUNCTION_(variant) fgc_kernel_table__##variant
#define FGC_TABLE_FUNCTION(variant) FGC_TABLE_FUNCTION_(variant)

using fgc::runtime::detail::KernelTable;

extern "C" const KernelTable *FGC_TABLE_FUNCTION(FGC_KERNEL_VARIANT)(void) {
  static const KernelTable table = [] {
    // Eigen sizes its GEMM blocks from the cache sizes the CPU reports; pinned
    // (in this variant's own copy of Eigen) so that a variant sums every
    // product in the same order on every machine that runs it.
    Eigen::setCpuCacheSizes(32 * 1024, 512 * 1024, 4 * 1024 * 1024);
    return KernelTable{
        FGC_STRINGIFY(FGC_KERNEL_VARIANT),
#define FGC_KERNEL(ret, name, params, args) &name,
#include "dispatch_kernels.def"
#undef FGC_KERNEL
    };
  }();
  return &table;
}
