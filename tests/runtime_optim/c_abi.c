/* Compiled as C99 to prove optim.h is valid C: one Adam step through the C ABI,
 * which test_optimizers.cpp checks against the C++ call. */
#include "fgc/runtime/optim.h"

int fgcTestAdamFromC(float *w, const float *g, float *m, float *v, int64_t n) {
  return fgc_adam_update(w, g, m, v, NULL, n, 1, 1e-3f, 0.9f, 0.999f, FGC_LOSS_EPSILON, 0);
}
