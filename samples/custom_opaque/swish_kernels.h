/* Hand-written kernels of an opaque custom op: Swish with a slope, y = x * sigmoid(beta * x)
 * elementwise (one input, one output, attribute 0: beta). Plain C with the signature fgc
 * calls opaque kernels with (fgc/runtime/custom.h). */
#ifndef FGC_SAMPLE_SWISH_KERNELS_H
#define FGC_SAMPLE_SWISH_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* y = x * sigmoid(beta * x). */
int32_t sample_swish_forward(const void *args);
/* dx = dy * (s + beta * x * s * (1 - s)), s = sigmoid(beta * x). */
int32_t sample_swish_backward(const void *args);

#ifdef __cplusplus
}
#endif

#endif
