// fgc_custom_call: the bridge from generated code (or the JIT) to an opaque custom kernel
// (fgc/runtime/custom.h). It builds the documented argument struct on the stack and calls the
// user's function; it allocates nothing.
#include "common.h"

#include "fgc/runtime/custom.h"

using namespace fgc::runtime::detail;

extern "C" int fgc_custom_call(fgc_custom_kernel kernel, int64_t num_inputs,
                               const float *const *inputs, int64_t num_outputs,
                               float *const *outputs, const int64_t *ranks, const int64_t *dims,
                               int64_t num_attrs, const double *attrs,
                               const float *const *output_grads, float *const *input_grads) {
  if (!kernel || num_inputs < 0 || num_outputs < 1 ||
      num_inputs + num_outputs > FGC_CUSTOM_MAX_TENSORS || num_attrs < 0 ||
      (num_inputs > 0 && !inputs) || !outputs || !ranks || (num_attrs > 0 && !attrs))
    return fail(FGC_ERR_INVALID_ARGUMENT,
                "fgc_custom_call: invalid arguments (%lld inputs, %lld outputs, %lld attributes)",
                (long long)num_inputs, (long long)num_outputs, (long long)num_attrs);
  const int64_t *shapes[FGC_CUSTOM_MAX_TENSORS];
  const int64_t *at = dims;
  for (int64_t k = 0; k < num_inputs + num_outputs; ++k) {
    if (ranks[k] < 0 || (ranks[k] > 0 && !dims))
      return fail(FGC_ERR_INVALID_ARGUMENT, "fgc_custom_call: tensor %lld has rank %lld",
                  (long long)k, (long long)ranks[k]);
    shapes[k] = at;
    at += ranks[k];
  }
  fgc_custom_args args;
  args.num_inputs = int32_t(num_inputs);
  args.num_outputs = int32_t(num_outputs);
  args.num_attrs = int32_t(num_attrs);
  args.backward = input_grads != nullptr ? 1 : 0;
  args.inputs = inputs;
  args.outputs = outputs;
  args.ranks = ranks;
  args.shapes = shapes;
  args.attrs = attrs;
  args.output_grads = output_grads;
  args.input_grads = input_grads;
  int32_t status = kernel(&args);
  if (status != 0)
    return fail(FGC_ERR_INVALID_ARGUMENT, "custom %s kernel failed with status %d",
                args.backward ? "backward" : "forward", int(status));
  return FGC_OK;
}
