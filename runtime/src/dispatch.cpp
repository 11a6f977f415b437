// The public entry points of the dispatched kernels (dispatch_kernels.def):
// each forwards to the same function of the CPU variant chosen once per
// process, the best the CPU supports unless FGC_CPU names another.
#include "dispatch.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace fgc::runtime::detail {

namespace {

struct Variant {
  const char *name;
  const KernelTable *(*table)();
  bool supported;
};

// Every variant built into this library, from the most portable to the fastest.
int variants(Variant *out) {
  __builtin_cpu_init();
  int count = 0;
  out[count++] = {"baseline", fgc_kernel_table__baseline, true};
#ifdef FGC_RUNTIME_DISPATCH
  out[count++] = {"avx2", fgc_kernel_table__avx2, __builtin_cpu_supports("x86-64-v3") != 0};
  out[count++] = {"avx512", fgc_kernel_table__avx512, __builtin_cpu_supports("x86-64-v4") != 0};
#endif
  return count;
}

const KernelTable *chooseKernels() {
  Variant all[3];
  int count = variants(all);
  int best = 0;
  for (int i = 0; i < count; ++i)
    if (all[i].supported)
      best = i;
  const char *forced = std::getenv("FGC_CPU");
  if (forced && *forced && std::strcmp(forced, "auto") != 0) {
    int chosen = -1;
    for (int i = 0; i < count; ++i)
      if (std::strcmp(forced, all[i].name) == 0)
        chosen = i;
    if (chosen < 0)
      std::fprintf(stderr,
                   "fgc runtime: FGC_CPU=%s is not a kernel variant of this build "
                   "(baseline%s, or auto); using %s\n",
                   forced, count > 1 ? ", avx2, avx512" : "", all[best].name);
    else if (!all[chosen].supported)
      std::fprintf(stderr, "fgc runtime: FGC_CPU=%s: this CPU does not support it; using %s\n",
                   forced, all[best].name);
    else
      best = chosen;
  }
  return all[best].table();
}

const KernelTable &kernels() {
  static const KernelTable *const table = chooseKernels();
  return *table;
}

// Chosen at load time, so that an FGC_CPU warning appears at start-up.
[[maybe_unused]] const KernelTable &Chosen = kernels();

} // namespace

} // namespace fgc::runtime::detail

using fgc::runtime::detail::kernels;

extern "C" {

const char *fgc_cpu_variant(void) { return kernels().name; }

int fgc_cpu_variant_supported(const char *name) {
  if (!name)
    return 0;
  fgc::runtime::detail::Variant all[3];
  int count = fgc::runtime::detail::variants(all);
  for (int i = 0; i < count; ++i)
    if (std::strcmp(name, all[i].name) == 0)
      return all[i].supported ? 1 : 0;
  return 0;
}

#define FGC_KERNEL(ret, name, params, args)                                                     \
  ret name params { return kernels().k_##name args; }
#include "dispatch_kernels.def"
#undef FGC_KERNEL

} // extern "C"
