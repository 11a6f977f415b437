// Helpers shared by op definitions: Keras's common attribute sets and shape arithmetic.
#pragma once

#include "compiler/codegen/Lowering.h"
#include "compiler/ir/OpRegistry.h"

#include <fgc/runtime/kernels.h>

#include <functional>

namespace fgc::ops {

// The largest kernel size, stride, dilation, pool size or resampling factor fgc accepts, and the
// most units a recurrent layer may have. Keras models use far smaller values; the bounds keep every
// shape computation (e.g. n * stride + kernel extent, 4 * units) within int64.
inline constexpr int64_t kMaxWindow = int64_t(1) << 24;
inline constexpr int64_t kMaxUnits = int64_t(1) << 31;

// The activation names Keras's `activations.get` accepts that fgc implements.
const std::vector<std::string> &activationNames();
AttrSpec activationAttr(const std::string &def = "linear");

// kernel_regularizer, bias_regularizer, activity_regularizer, kernel_constraint, bias_constraint
// (None by default) and the kernel/bias initializers, as Dense and Conv layers declare them.
void addKernelBiasAttrs(std::vector<AttrSpec> &attrs, const std::string &kernelInit = "GlorotUniform");

// Keras's conv_output_length: "valid", "same" (TF SAME) and "full"; a dynamic input gives kUnknownDim.
Dim convOutputLength(Dim in, int64_t k, const std::string &padding, int64_t stride,
                     int64_t dilation = 1);
// Keras's deconv_output_length (Conv2DTranspose); outputPadding < 0 means None.
Dim deconvOutputLength(Dim in, int64_t k, const std::string &padding, int64_t outputPadding,
                       int64_t stride, int64_t dilation = 1);

// Requires the input to have rank `rank` (channels_last); returns an error otherwise.
Status expectRank(const OpContext &ctx, size_t i, size_t rank, const char *what);
// Requires a static last dimension (Dense, Conv channels).
Status expectStaticLastDim(const OpContext &ctx, size_t i);

// Activations whose derivative needs the pre-activation (the backward kernels take z).
bool needsPreactivation(const std::string &activation);
// Training forward of a layer with a fused activation: when the activation's derivative needs
// the pre-activation, the kernel runs with `linear` into a saved buffer "z" and the activation
// follows; `emit(activationArg, outputBuffer)` emits the layer's kernel.
Status lowerWithSavedPreactivation(LowerContext &ctx,
                                   const std::function<Status(const Arg &, int)> &emit);
// The scratch argument.
Arg scratchArg();

// The output types of a call of a layer with a body (`layer.subgraph`: a nested model or a
// traced custom layer): the body's outputs with its None dimensions mapped to the caller's.
Expected<std::vector<TensorType>> inferNestedCall(const OpContext &ctx);

// Lowering helpers.
// A runtime call `fn(args...)`.
KernelCall kernel(const std::string &fn, std::vector<Arg> args);
// The output is the input (Reshape, Flatten, Dropout at inference).
Status lowerAsView(LowerContext &ctx);

} // namespace fgc::ops
