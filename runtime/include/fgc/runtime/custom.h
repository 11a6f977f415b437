/* Opaque custom kernels: user C functions that fgc calls for a registered custom op
 * (fgc::keras::register_opaque_op), for computations that fgc's tensor operations cannot
 * express.
 *
 * A custom kernel has the fixed signature
 *
 *     int32_t my_kernel(const void *args);
 *
 * where `args` points to an fgc_custom_args (below). It returns FGC_OK (0) on success and any
 * other value on failure (the generated code then reports the layer that failed). The forward
 * kernel reads `inputs` and writes `outputs`; the backward kernel (optional) reads the same
 * inputs and outputs plus `output_grads` and overwrites `input_grads` (fgc sums gradients of
 * tensors read several times itself). Kernels must not keep the pointers after returning, must
 * not allocate per call if they care about speed, and are called from one thread at a time per
 * model object.
 *
 * Generated C++ declares each kernel `extern "C" int32_t name(const void *args);` and passes it
 * to fgc_custom_call, so the application links a definition (any C or C++ file with C linkage).
 * The JIT resolves the name from the address given at registration, or among the process's
 * symbols (a loaded plugin, an executable linked with -rdynamic).
 *
 * The header is valid C (C99) and C++17. */
#ifndef FGC_RUNTIME_CUSTOM_H
#define FGC_RUNTIME_CUSTOM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The most tensors (inputs + outputs) one custom op may have. */
#define FGC_CUSTOM_MAX_TENSORS 16

typedef struct fgc_custom_args {
  int32_t num_inputs;
  int32_t num_outputs;
  int32_t num_attrs;
  int32_t backward;            /* 0: the forward call, 1: the backward call */
  const float *const *inputs;  /* [num_inputs] float32 tensors, C order */
  float *const *outputs;       /* [num_outputs]; written by the forward, read by the backward */
  const int64_t *ranks;        /* [num_inputs + num_outputs]: inputs first, then outputs */
  const int64_t *const *shapes; /* shapes[k]: ranks[k] dimensions of tensor k, batch first,
                                   every size known (the batch size of this call) */
  const double *attrs;         /* [num_attrs] the op's attributes, in their registered order */
  /* Backward only (NULL in the forward call): */
  const float *const *output_grads; /* [num_outputs] dLoss/d output; an entry is NULL when no
                                       gradient reaches that output (treat it as zeros) */
  float *const *input_grads;        /* [num_inputs] dLoss/d input to write; an entry is NULL
                                       when that input needs none */
} fgc_custom_args;

typedef int32_t (*fgc_custom_kernel)(const void *args);

/* The number of elements of tensor k of `args`. */
static inline int64_t fgc_custom_elements(const fgc_custom_args *args, int32_t k) {
  int64_t n = 1;
  for (int64_t d = 0; d < args->ranks[k]; ++d)
    n *= args->shapes[k][d];
  return n;
}

/* What generated code calls: fills an fgc_custom_args from flat lists and calls `kernel`.
 * dims holds the dimensions of every tensor (inputs, then outputs) concatenated, ranks their
 * ranks. output_grads and input_grads are NULL for the forward call. A non-zero status from the
 * kernel becomes FGC_ERR_INVALID_ARGUMENT with a message giving the status. */
int fgc_custom_call(fgc_custom_kernel kernel, int64_t num_inputs, const float *const *inputs,
                    int64_t num_outputs, float *const *outputs, const int64_t *ranks,
                    const int64_t *dims, int64_t num_attrs, const double *attrs,
                    const float *const *output_grads, float *const *input_grads);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FGC_RUNTIME_CUSTOM_H */
