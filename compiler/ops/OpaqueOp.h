// Opaque custom ops: an op whose computation is a user's C kernel (fgc/runtime/custom.h)
// rather than fgc's tensor operations. The frontend registers one per op the user declares
// (fgc::keras::register_opaque_op); this file makes its registry entry, so that shape
// inference, lowering (a call of fgc_custom_call with the kernel), the gradient rule and every
// backend treat it like any other op.
#pragma once

#include "compiler/ir/OpRegistry.h"

namespace fgc::ops {

struct OpaqueOpSpec {
  std::string className;
  // The C symbols of the kernels, int32_t fn(const void *args). backward empty: the op has no
  // gradient, and training a model that needs one fails naming the layer and the op.
  std::string forward, backward;
  int numInputs = 1, numOutputs = 1;
  // Numeric attributes with their defaults, passed to the kernels in this order.
  std::vector<std::pair<std::string, double>> attrs;
  // The outputs' shapes (batch first; None dimensions are negative symbols that must be copied
  // from an input) from the inputs' shapes and the attribute values; an error message when the
  // inputs do not fit. Empty function: every output has the first input's shape.
  using ShapeFn = std::function<Expected<std::vector<std::vector<Dim>>>(
      const std::vector<std::vector<Dim>> &inputs, const std::vector<double> &attrs)>;
  ShapeFn shape;
  // Not a function of its inputs and attributes alone: never merged by cse.
  bool stateful = false;
};

// The registry entry of an opaque op, or an error saying what is wrong with the spec.
Expected<OpDef> opaqueOpDef(OpaqueOpSpec spec);

} // namespace fgc::ops
