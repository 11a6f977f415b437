// Temporal layers over (batch, steps, channels): Conv1D, MaxPooling1D, AveragePooling1D and
// GlobalMaxPooling1D. Each runs on the 2D runtime kernels with a height of 1 — a Conv1D kernel
// (kernel_size, in, filters), Keras's layout, is a (1, kernel_size, in, filters) Conv2D kernel
// in the same memory. Conv1D's "causal" padding is zero padding of (kernel_size - 1) *
// dilation_rate steps on the left followed by a "valid" convolution.
#include "compiler/ops/OpHelpers.h"

namespace fgc::ops {

namespace {

Status checkConv1D(const OpContext &ctx) {
  FGC_TRY(expectRank(ctx, 0, 3, "(batch, steps, channels)"));
  FGC_TRY(expectStaticLastDim(ctx, 0));
  auto a = ctx.attrs();
  if (a.i("filters") <= 0)
    return ctx.error("filters must be positive, got {}", a.i("filters"));
  for (const char *key : {"kernel_size", "strides", "dilation_rate"})
    for (auto v : a.ints(key))
      if (v <= 0 || v > kMaxWindow)
        return ctx.error("{} must be between 1 and {}, got {}", key, kMaxWindow,
                         attrToString(a.get(key)));
  if (a.ints("strides")[0] > 1 && a.ints("dilation_rate")[0] > 1)
    return ctx.error("strides > 1 together with dilation_rate > 1 is not supported (as in Keras)");
  int64_t groups = a.i("groups"), in = ctx.input().shape[2];
  if (groups <= 0 || in % groups != 0 || a.i("filters") % groups != 0)
    return ctx.error("groups={} must divide both the input channels ({}) and filters ({})", groups,
                     in, a.i("filters"));
  return Status::ok();
}

int64_t causalPad(const Attrs &a) {
  return a.s("padding") == "causal" ? (a.ints("kernel_size")[0] - 1) * a.ints("dilation_rate")[0]
                                    : 0;
}

// fgc_conv2d_params of the convolution as a height-1 Conv2D over `input` (the padded copy
// for causal padding).
Expected<Arg> conv1dParams(LowerContext &ctx, int input, const Arg *activation = nullptr) {
  auto a = ctx.attrs();
  auto act = ctx.activation(a.s("activation"));
  if (!act)
    return act.error();
  const auto &in = ctx.buffer(input).shape;
  Arg p;
  p.kind = Arg::Kind::Struct;
  p.structType = "fgc_conv2d_params";
  p.fields = {ctx.size(ctx.dim(in, 0)), ctx.i64(1), ctx.size(ctx.dim(in, 1)),
              ctx.size(ctx.dim(in, 2)), ctx.i64(1), ctx.i64(a.ints("kernel_size")[0]),
              ctx.i64(a.i("filters")), ctx.i64(1), ctx.i64(a.ints("strides")[0]), ctx.i64(1),
              ctx.i64(a.ints("dilation_rate")[0]),
              ctx.padding(a.s("padding") == "same" ? "same" : "valid"),
              activation ? *activation : *act};
  return p;
}

// The convolution's input: x, or for causal padding x padded on the left (saved for training).
Expected<int> convInput(LowerContext &ctx) {
  int64_t pad = causalPad(ctx.attrs());
  if (pad == 0)
    return ctx.input(0);
  const auto &in = ctx.inShape(0);
  if (isDynamic(in[1]))
    return ctx.error("causal padding needs a known number of steps, got input {}",
                     shapeToString(in));
  int padded = ctx.newBuffer("causal_padded", schema::FLOAT32, {in[0], in[1] + pad, in[2]});
  ctx.call(kernel("fgc_pad2d", {ctx.buf(ctx.input(0)), ctx.buf(padded), ctx.size(ctx.dim(in, 0)),
                                ctx.i64(1), ctx.size(ctx.dim(in, 1)), ctx.size(ctx.dim(in, 2)),
                                ctx.i64(0), ctx.i64(0), ctx.i64(pad), ctx.i64(0)}));
  if (ctx.training())
    ctx.save("causal_padded", padded);
  return padded;
}

Status emitConv1D(LowerContext &ctx, int input, const Arg &act, int out) {
  auto p = conv1dParams(ctx, input, &act);
  if (!p)
    return p.error();
  int bias = ctx.param("bias");
  KernelCall c = kernel("fgc_conv2d", {*p, ctx.buf(input), ctx.buf(ctx.param("kernel")),
                                       bias >= 0 ? ctx.buf(bias) : ctx.null(), ctx.buf(out),
                                       scratchArg()});
  c.scratchFunction = "fgc_conv2d_scratch_size";
  ctx.call(c);
  return Status::ok();
}

Status lowerConv1D(LowerContext &ctx) {
  if (ctx.attrs().i("groups") != 1)
    return ctx.error("grouped convolution (groups={}) is not supported by the runtime yet",
                     ctx.attrs().i("groups"));
  auto input = convInput(ctx);
  if (!input)
    return input.error();
  if (!ctx.training()) {
    auto act = ctx.activation(ctx.attrs().s("activation"));
    if (!act)
      return act.error();
    return emitConv1D(ctx, *input, *act, ctx.output(0));
  }
  return lowerWithSavedPreactivation(
      ctx, [&](const Arg &act, int out) { return emitConv1D(ctx, *input, act, out); });
}

Status conv1DGradient(LowerContext &ctx) {
  int64_t pad = causalPad(ctx.attrs());
  int input = pad ? ctx.saved("causal_padded") : ctx.input(0);
  auto p = conv1dParams(ctx, input);
  if (!p)
    return p.error();
  int dx = ctx.dIn(0), dk = ctx.dParam("kernel"), db = ctx.dParam("bias"), z = ctx.saved("z");
  int dconv = dx;
  int64_t inFlag = ctx.inFlag(0);
  if (pad && dx >= 0) {
    dconv = ctx.newBuffer("d_causal_padded", schema::FLOAT32, ctx.buffer(input).shape);
    inFlag = 0;
  }
  auto opt = [&ctx](int id) { return id >= 0 ? ctx.buf(id) : ctx.null(); };
  KernelCall c = kernel("fgc_conv2d_backward",
                        {*p, ctx.buf(input), ctx.buf(ctx.param("kernel")), opt(z),
                         ctx.buf(ctx.output(0)), ctx.buf(ctx.dOut(0)), opt(dconv), opt(dk), opt(db),
                         scratchArg(), ctx.i64(inFlag | ctx.paramFlag())});
  c.scratchFunction = "fgc_conv2d_backward_scratch_size";
  ctx.call(c);
  if (pad && dx >= 0) {
    const auto &in = ctx.inShape(0);
    ctx.call(kernel("fgc_pad2d_backward",
                    {ctx.buf(dconv), ctx.buf(dx), ctx.size(ctx.dim(in, 0)), ctx.i64(1),
                     ctx.size(ctx.dim(in, 1)), ctx.size(ctx.dim(in, 2)), ctx.i64(0), ctx.i64(0),
                     ctx.i64(pad), ctx.i64(0), ctx.inFlags(0)}));
  }
  return Status::ok();
}

void registerConv1D(OpRegistry &r) {
  OpDef d;
  d.className = "Conv1D";
  d.summary = "1D convolution over (batch, steps, channels), kernel (kernel_size, in, filters); "
              "padding valid, same or causal.";
  d.attrs = {requiredInt("filters"),
             requiredInts("kernel_size", 1),
             intsAttr("strides", {1}, 1),
             stringAttr("padding", "valid", {"valid", "same", "causal"}),
             stringAttr("data_format", "channels_last", {"channels_last"}),
             intsAttr("dilation_rate", {1}, 1),
             intAttr("groups", 1),
             activationAttr()};
  addKernelBiasAttrs(d.attrs);
  d.inferTypes = [](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    FGC_TRY(checkConv1D(ctx));
    auto a = ctx.attrs();
    TensorType out = ctx.input();
    out.dtype = schema::FLOAT32;
    // Keras: "causal" keeps the length like "same" (before striding).
    const std::string padding = a.s("padding") == "causal" ? "same" : a.s("padding");
    int64_t k = a.ints("kernel_size")[0], s = a.ints("strides")[0],
            dr = a.ints("dilation_rate")[0];
    out.shape[1] = a.s("padding") == "causal" && !isDynamic(out.shape[1])
                       ? convOutputLength(out.shape[1] + causalPad(a), k, "valid", s, dr)
                       : convOutputLength(out.shape[1], k, padding, s, dr);
    out.shape[2] = a.i("filters");
    if (!isDynamic(out.shape[1]) && out.shape[1] <= 0)
      return ctx.error("input {} is too small for kernel_size {} with padding '{}': the output "
                       "would have a non-positive size",
                       ctx.describeInput(0), attrToString(a.get("kernel_size")), a.s("padding"));
    return std::vector<TensorType>{out};
  };
  d.params = [](const OpContext &ctx) {
    auto a = ctx.attrs();
    std::vector<ParamSpec> ps = {
        {"kernel",
         {a.ints("kernel_size")[0], ctx.input().shape[2] / a.i("groups"), a.i("filters")},
         a.get("kernel_initializer")}};
    if (a.b("use_bias"))
      ps.push_back({"bias", {a.i("filters")}, a.get("bias_initializer")});
    return ps;
  };
  d.lower = lowerConv1D;
  d.gradient = conv1DGradient;
  r.add(std::move(d));
}

// fgc_pool2d_params of a 1D pool as a (1, pool_size) 2D pool.
Arg pool1dParams(LowerContext &ctx) {
  auto a = ctx.attrs();
  const auto &in = ctx.inShape(0);
  int64_t p = a.ints("pool_size")[0];
  int64_t s = a.isNone("strides") ? p : a.ints("strides")[0];
  Arg params;
  params.kind = Arg::Kind::Struct;
  params.structType = "fgc_pool2d_params";
  params.fields = {ctx.size(ctx.dim(in, 0)), ctx.i64(1), ctx.size(ctx.dim(in, 1)),
                   ctx.size(ctx.dim(in, 2)), ctx.i64(1), ctx.i64(p), ctx.i64(1), ctx.i64(s),
                   ctx.padding(a.s("padding"))};
  return params;
}

void registerPool1D(OpRegistry &r, const std::string &cls, bool isMax) {
  OpDef d;
  d.className = cls;
  d.summary = std::string(isMax ? "Maximum" : "Average") +
              " over windows of pool_size steps; strides default to pool_size.";
  d.attrs = {intsAttr("pool_size", {2}, 1), nullableInts("strides"),
             stringAttr("padding", "valid", {"valid", "same"}),
             stringAttr("data_format", "channels_last", {"channels_last"})};
  d.inferTypes = [](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    FGC_TRY(expectRank(ctx, 0, 3, "(batch, steps, channels)"));
    auto a = ctx.attrs();
    int64_t p = a.ints("pool_size")[0];
    std::vector<int64_t> strides = a.isNone("strides") ? std::vector<int64_t>{p}
                                                       : a.ints("strides");
    if (strides.size() != 1)
      return ctx.error("strides must be one value, got {}", attrToString(a.get("strides")));
    int64_t s = strides[0];
    if (p <= 0 || s <= 0 || p > kMaxWindow || s > kMaxWindow)
      return ctx.error("pool_size {} and strides {} must be between 1 and {}",
                       attrToString(a.get("pool_size")), attrToString(a.get("strides")),
                       kMaxWindow);
    TensorType out = ctx.input();
    out.shape[1] = convOutputLength(out.shape[1], p, a.s("padding"), s);
    if (!isDynamic(out.shape[1]) && out.shape[1] <= 0)
      return ctx.error("input {} is smaller than pool_size {} with padding 'valid'",
                       ctx.describeInput(0), attrToString(a.get("pool_size")));
    return std::vector<TensorType>{out};
  };
  d.lower = [isMax](LowerContext &ctx) -> Status {
    ctx.call(kernel(isMax ? "fgc_max_pool2d" : "fgc_avg_pool2d",
                    {pool1dParams(ctx), ctx.buf(ctx.input(0)), ctx.buf(ctx.output(0))}));
    return Status::ok();
  };
  d.gradient = [isMax](LowerContext &ctx) -> Status {
    int dx = ctx.dIn(0);
    if (dx < 0)
      return Status::ok();
    if (isMax)
      ctx.call(kernel("fgc_max_pool2d_backward", {pool1dParams(ctx), ctx.buf(ctx.input(0)),
                                                  ctx.buf(ctx.dOut(0)), ctx.buf(dx), ctx.flags()}));
    else
      ctx.call(kernel("fgc_avg_pool2d_backward",
                      {pool1dParams(ctx), ctx.buf(ctx.dOut(0)), ctx.buf(dx), ctx.flags()}));
    return Status::ok();
  };
  r.add(std::move(d));
}

void registerGlobalMaxPooling1D(OpRegistry &r) {
  OpDef d;
  d.className = "GlobalMaxPooling1D";
  d.summary = "Maximum over the steps axis.";
  d.attrs = {stringAttr("data_format", "channels_last", {"channels_last"}),
             boolAttr("keepdims", false)};
  d.inferTypes = [](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    FGC_TRY(expectRank(ctx, 0, 3, "(batch, steps, features)"));
    TensorType out = ctx.input();
    if (ctx.attrs().b("keepdims"))
      out.shape[1] = 1;
    else
      out.shape = {out.shape[0], out.shape[2]};
    return std::vector<TensorType>{out};
  };
  auto dims = [](LowerContext &ctx, std::vector<Arg> args) {
    const auto &in = ctx.inShape(0);
    for (Arg a : {ctx.size(ctx.dim(in, 0)), ctx.i64(1), ctx.size(ctx.dim(in, 1)),
                  ctx.size(ctx.dim(in, 2))})
      args.push_back(a);
    return args;
  };
  d.lower = [dims](LowerContext &ctx) -> Status {
    ctx.call(kernel("fgc_global_max_pool2d",
                    dims(ctx, {ctx.buf(ctx.input(0)), ctx.buf(ctx.output(0))})));
    return Status::ok();
  };
  d.gradient = [dims](LowerContext &ctx) -> Status {
    int dx = ctx.dIn(0);
    if (dx < 0)
      return Status::ok();
    auto args = dims(ctx, {ctx.buf(ctx.input(0)), ctx.buf(ctx.dOut(0)), ctx.buf(dx)});
    args.push_back(ctx.flags());
    ctx.call(kernel("fgc_global_max_pool2d_backward", args));
    return Status::ok();
  };
  r.add(std::move(d));
}

} // namespace

void registerConvolution1DOps(OpRegistry &r) {
  registerConv1D(r);
  registerPool1D(r, "MaxPooling1D", true);
  registerPool1D(r, "AveragePooling1D", false);
  registerGlobalMaxPooling1D(r);
}

} // namespace fgc::ops
