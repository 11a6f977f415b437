/* Compiled as C99 to prove kernels.h is valid C: a Dense call through the C ABI
 * that test_dense_activation.cpp checks against the PyTorch fixture. */
#include "fgc/runtime/kernels.h"

int fgcTestDenseFromC(const float *x, const float *kernel, const float *bias, float *y,
                      int64_t rows, int64_t in, int64_t out, const char **error) {
  fgc_activation_kind act = FGC_ACT_RELU;
  int status = fgc_dense(x, kernel, bias, y, rows, in, out, act);
  *error = fgc_last_error();
  return status;
}
