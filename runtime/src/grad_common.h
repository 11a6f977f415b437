// Internal helpers shared by the gradient kernels (grad_*.cpp): flag tests,
// activation derivatives, column sums and transposes over caller buffers.
// Never installed; only the runtime's grad_*.cpp files include it.
#ifndef FGC_RUNTIME_SRC_GRAD_COMMON_H
#define FGC_RUNTIME_SRC_GRAD_COMMON_H

#include "common.h"
#include "fgc/runtime/grad.h"

namespace fgc::runtime::detail {

inline bool accumulateInput(int flags) { return (flags & FGC_GRAD_ACCUMULATE_INPUT) != 0; }
inline bool accumulateParams(int flags) { return (flags & FGC_GRAD_ACCUMULATE_PARAMS) != 0; }

// True for the kinds whose derivative needs the pre-activation z.
bool needsPreactivation(fgc_activation_kind act);

// True for the elementwise kinds whose derivative is a function of the output.
bool derivativeFromOutput(fgc_activation_kind act);

// act'(z) given y = act(z), for a kind with derivativeFromOutput(act).
float outputDerivative(fgc_activation_kind act, float y);

// Checks that z (or y) is present when `act` needs it; fails naming `kernel`.
int checkActivationInputs(const char *kernel, fgc_activation_kind act, const float *z,
                          const float *y);

// dx = dy * act'(z) (or dx += ... when accumulate) over a (rows, cols) array,
// SOFTMAX per row. dx may equal dy. Parallel over disjoint chunks or rows.
void activationGrad(fgc_activation_kind act, const float *z, const float *y, const float *dy,
                    float *dx, int64_t rows, int64_t cols, bool accumulate);

// The gradient before a fused activation: dy itself for LINEAR, otherwise
// dy * act' written to `buffer` (rows * cols floats), which is returned.
const float *fusedActivationGrad(fgc_activation_kind act, const float *z, const float *y,
                                 const float *dy, int64_t rows, int64_t cols, float *buffer);

// out[j] (+)= sum over rows of a[r, j], summed in row order (double) for every
// j; threads split the columns.
void columnSums(const float *a, int64_t rows, int64_t cols, float *out, bool accumulate);

// out (cols, rows) = a (rows, cols) transposed.
void transpose(const float *a, int64_t rows, int64_t cols, float *out);

// Sets n floats to zero unless accumulate (parallel for large n).
void zeroUnless(bool accumulate, float *data, int64_t n);

} // namespace fgc::runtime::detail

#endif // FGC_RUNTIME_SRC_GRAD_COMMON_H
