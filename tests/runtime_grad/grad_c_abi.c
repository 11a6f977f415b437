/* Compiled as C99 to prove grad.h is valid C: zeroes a buffer and adds a
 * scaled one through the C ABI (checked by test_grad_flags_threads.cpp). */
#include "fgc/runtime/grad.h"

int fgcTestGradFromC(const float *x, float *y, int64_t n) {
  int status = fgc_fill(y, 0.0f, n);
  if (status != FGC_OK)
    return status;
  return fgc_scale_add(x, 2.0f, y, n);
}
