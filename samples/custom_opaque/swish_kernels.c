/* The Swish kernels (swish_kernels.h): what an application writes for an opaque op. They read
 * the documented fgc_custom_args struct and return 0 on success. */
#include "swish_kernels.h"

#include <fgc/runtime/custom.h>

#include <math.h>

static double sigmoid(double z) { return 1.0 / (1.0 + exp(-z)); }

int32_t sample_swish_forward(const void *p) {
  const fgc_custom_args *a = (const fgc_custom_args *)p;
  if (a->num_inputs != 1 || a->num_outputs != 1 || a->num_attrs != 1)
    return 1;
  const float *x = a->inputs[0];
  float *y = a->outputs[0];
  const double beta = a->attrs[0];
  const int64_t n = fgc_custom_elements(a, 0);
  for (int64_t i = 0; i < n; ++i)
    y[i] = (float)(x[i] * sigmoid(beta * x[i]));
  return 0;
}

int32_t sample_swish_backward(const void *p) {
  const fgc_custom_args *a = (const fgc_custom_args *)p;
  if (a->num_inputs != 1 || a->num_outputs != 1 || a->num_attrs != 1 || !a->input_grads)
    return 1;
  const float *x = a->inputs[0];
  const float *dy = a->output_grads[0];
  float *dx = a->input_grads[0];
  const double beta = a->attrs[0];
  const int64_t n = fgc_custom_elements(a, 0);
  if (!dx)
    return 0;
  for (int64_t i = 0; i < n; ++i) {
    double s = sigmoid(beta * x[i]);
    double g = dy ? dy[i] : 0.0;
    dx[i] = (float)(g * (s + beta * x[i] * s * (1.0 - s)));
  }
  return 0;
}
