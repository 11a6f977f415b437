// Shared attribute sets and shape arithmetic for op definitions (see OpHelpers.h).
#include "compiler/ops/OpHelpers.h"

namespace fgc::ops {

const std::vector<std::string> &activationNames() {
  static const std::vector<std::string> names = {
      "linear", "relu",     "sigmoid", "tanh",        "softmax",     "elu",
      "selu",   "gelu",     "softplus", "softsign",   "swish",       "hard_sigmoid",
      "exponential", "relu6", "silu"};
  return names;
}

AttrSpec activationAttr(const std::string &def) {
  return stringAttr("activation", def, activationNames());
}

void addKernelBiasAttrs(std::vector<AttrSpec> &attrs, const std::string &kernelInit) {
  attrs.push_back(boolAttr("use_bias", true));
  attrs.push_back(objectAttr("kernel_initializer", kernelInit));
  attrs.push_back(objectAttr("bias_initializer", "Zeros"));
  for (const char *n : {"kernel_regularizer", "bias_regularizer", "activity_regularizer",
                        "kernel_constraint", "bias_constraint"})
    attrs.push_back(objectAttr(n, ""));
}

Dim convOutputLength(Dim in, int64_t k, const std::string &padding, int64_t stride,
                     int64_t dilation) {
  if (isDynamic(in))
    return kUnknownDim;
  int64_t dk = k + (k - 1) * (dilation - 1);
  int64_t out = in;
  if (padding == "valid")
    out = in - dk + 1;
  else if (padding == "full")
    out = in + dk - 1;
  if (out <= 0)
    return 0; // the caller reports the empty output (a negative length would read as dynamic)
  return (out + stride - 1) / stride;
}

Dim deconvOutputLength(Dim in, int64_t k, const std::string &padding, int64_t outputPadding,
                       int64_t stride, int64_t dilation) {
  if (isDynamic(in))
    return kUnknownDim;
  int64_t dk = k + (k - 1) * (dilation - 1);
  if (outputPadding < 0) {
    if (padding == "valid")
      return in * stride + std::max<int64_t>(dk - stride, 0);
    if (padding == "full")
      return in * stride - (stride + dk - 2);
    return in * stride;
  }
  int64_t pad = padding == "same" ? dk / 2 : padding == "full" ? dk - 1 : 0;
  return (in - 1) * stride + dk - 2 * pad + outputPadding;
}

Status expectRank(const OpContext &ctx, size_t i, size_t rank, const char *what) {
  if (ctx.inputs[i].rank() != rank)
    return ctx.error("expects a rank-{} input {}, got {}", rank, what, ctx.describeInput(i));
  return Status::ok();
}

Status expectStaticLastDim(const OpContext &ctx, size_t i) {
  const auto &t = ctx.inputs[i];
  if (t.rank() < 2 || isDynamic(t.shape.back()))
    return ctx.error("needs the last dimension of its input to be known, got {}",
                     ctx.describeInput(i));
  return Status::ok();
}

KernelCall kernel(const std::string &fn, std::vector<Arg> args) {
  KernelCall c;
  c.function = fn;
  c.args = std::move(args);
  return c;
}

bool needsPreactivation(const std::string &a) {
  return a == "gelu" || a == "softplus" || a == "swish" || a == "silu";
}

Arg scratchArg() {
  Arg a;
  a.kind = Arg::Kind::Scratch;
  return a;
}

Status lowerWithSavedPreactivation(LowerContext &ctx,
                                   const std::function<Status(const Arg &, int)> &emit) {
  const std::string &name = ctx.attrs().s("activation");
  auto act = ctx.activation(name);
  if (!act)
    return act.error();
  if (!needsPreactivation(name))
    return emit(*act, ctx.output(0));
  int z = ctx.newBuffer("z", schema::FLOAT32, ctx.outShape(0));
  ctx.save("z", z);
  FGC_TRY(emit(ctx.enumValue("FGC_ACT_LINEAR", 0), z));
  const auto &shape = ctx.outShape(0);
  ctx.call(kernel("fgc_activation", {*act, ctx.buf(z), ctx.buf(ctx.output(0)),
                                     ctx.size(SymSize::product(shape, 0, shape.size() - 1)),
                                     ctx.size(ctx.dim(shape, -1))}));
  return Status::ok();
}

Status lowerAsView(LowerContext &ctx) {
  ctx.alias(0, 0);
  return Status::ok();
}

} // namespace fgc::ops
