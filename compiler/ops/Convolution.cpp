// Convolution layers: Conv2D and Conv2DTranspose (channels_last, Keras kernel layouts).
#include "compiler/ops/OpHelpers.h"

namespace fgc::ops {

static std::vector<AttrSpec> convAttrs() {
  std::vector<AttrSpec> a = {requiredInt("filters"),
                             requiredInts("kernel_size", 2),
                             intsAttr("strides", {1, 1}, 2),
                             stringAttr("padding", "valid", {"valid", "same"}),
                             stringAttr("data_format", "channels_last", {"channels_last"}),
                             intsAttr("dilation_rate", {1, 1}, 2),
                             activationAttr()};
  addKernelBiasAttrs(a);
  return a;
}

// Checks what Conv2D and Conv2DTranspose require of their config and input.
static Status checkConv(const OpContext &ctx) {
  FGC_TRY(expectRank(ctx, 0, 4, "(batch, height, width, channels)"));
  FGC_TRY(expectStaticLastDim(ctx, 0));
  auto a = ctx.attrs();
  if (a.i("filters") <= 0)
    return ctx.error("filters must be positive, got {}", a.i("filters"));
  for (const char *key : {"kernel_size", "strides", "dilation_rate"})
    for (auto v : a.ints(key))
      if (v <= 0 || v > kMaxWindow)
        return ctx.error("{} must be between 1 and {}, got {}", key, kMaxWindow,
                         attrToString(a.get(key)));
  auto s = a.ints("strides"), dr = a.ints("dilation_rate");
  if ((s[0] > 1 || s[1] > 1) && (dr[0] > 1 || dr[1] > 1))
    return ctx.error("strides > 1 together with dilation_rate > 1 is not supported (as in Keras)");
  return Status::ok();
}

static Status checkSpatial(const OpContext &ctx, const TensorType &out) {
  if ((!isDynamic(out.shape[1]) && out.shape[1] <= 0) ||
      (!isDynamic(out.shape[2]) && out.shape[2] <= 0))
    return ctx.error("input {} is too small for kernel_size {} with padding '{}': the output would "
                     "have a non-positive size",
                     ctx.describeInput(0), attrToString(ctx.attrs().get("kernel_size")),
                     ctx.attrs().s("padding"));
  return Status::ok();
}

// fgc_conv2d_params for Conv2D and Conv2DTranspose.
static Expected<Arg> convParams(LowerContext &ctx) {
  auto a = ctx.attrs();
  auto act = ctx.activation(a.s("activation"));
  if (!act)
    return act.error();
  const auto &in = ctx.inShape(0);
  auto k = a.ints("kernel_size"), s = a.ints("strides"), dr = a.ints("dilation_rate");
  Arg p;
  p.kind = Arg::Kind::Struct;
  p.structType = "fgc_conv2d_params";
  p.fields = {ctx.size(ctx.dim(in, 0)), ctx.size(ctx.dim(in, 1)), ctx.size(ctx.dim(in, 2)),
              ctx.size(ctx.dim(in, 3)), ctx.i64(k[0]), ctx.i64(k[1]), ctx.i64(a.i("filters")),
              ctx.i64(s[0]), ctx.i64(s[1]), ctx.i64(dr[0]), ctx.i64(dr[1]),
              ctx.padding(a.s("padding")), *act};
  return p;
}

static Status lowerConv(LowerContext &ctx, const char *fn) {
  auto p = convParams(ctx);
  if (!p)
    return p.error();
  int bias = ctx.param("bias");
  Arg scratch;
  scratch.kind = Arg::Kind::Scratch;
  KernelCall c = kernel(fn, {*p, ctx.buf(ctx.input(0)), ctx.buf(ctx.param("kernel")),
                             bias >= 0 ? ctx.buf(bias) : ctx.null(), ctx.buf(ctx.output(0)),
                             scratch});
  c.scratchFunction = std::string(fn) + "_scratch_size";
  ctx.call(c);
  return Status::ok();
}

// Training forward: the convolution, with the pre-activation kept when the backward needs it.
static Status lowerConvTrain(LowerContext &ctx, const char *fn) {
  return lowerWithSavedPreactivation(ctx, [&ctx, fn](const Arg &act, int out) -> Status {
    auto p = convParams(ctx);
    if (!p)
      return p.error();
    p->fields.back() = act;
    int bias = ctx.param("bias");
    KernelCall c = kernel(fn, {*p, ctx.buf(ctx.input(0)), ctx.buf(ctx.param("kernel")),
                               bias >= 0 ? ctx.buf(bias) : ctx.null(), ctx.buf(out), scratchArg()});
    c.scratchFunction = std::string(fn) + "_scratch_size";
    ctx.call(c);
    return Status::ok();
  });
}

static Status convGradient(LowerContext &ctx, const char *fn) {
  auto p = convParams(ctx);
  if (!p)
    return p.error();
  int dx = ctx.dIn(0), dk = ctx.dParam("kernel"), db = ctx.dParam("bias"), z = ctx.saved("z");
  KernelCall c = kernel(fn, {*p, ctx.buf(ctx.input(0)), ctx.buf(ctx.param("kernel")),
                             z >= 0 ? ctx.buf(z) : ctx.null(), ctx.buf(ctx.output(0)),
                             ctx.buf(ctx.dOut(0)), dx >= 0 ? ctx.buf(dx) : ctx.null(),
                             dk >= 0 ? ctx.buf(dk) : ctx.null(), db >= 0 ? ctx.buf(db) : ctx.null(),
                             scratchArg(), ctx.flags()});
  c.scratchFunction = std::string(fn) + "_scratch_size";
  ctx.call(c);
  return Status::ok();
}

// The largest transformed kernel worth keeping (25 or 36 floats per weight pair, up to 4x the
// kernel): 8 MiB.
constexpr int64_t kMaxWinogradKernelBytes = int64_t(8) << 20;

// Conv2D as a Winograd convolution with its kernel transformed ahead of time, when the runtime
// says the shape suits it and it pays at batch 1 (so at every batch size). Needs the spatial
// size and channels static (they are, in Keras's Conv2D; only the batch may vary).
static bool winogradForm(const KernelCall &call, WeightTransformForm &f) {
  if (call.function != "fgc_conv2d" || call.args.size() != 6 ||
      call.args[0].kind != Arg::Kind::Struct || call.args[2].kind != Arg::Kind::Buffer)
    return false;
  const std::vector<Arg> &fields = call.args[0].fields;
  int64_t v[11];
  for (int i = 1; i < 11; ++i) {
    const Arg &a = fields[size_t(i)];
    if (a.kind == Arg::Kind::Size && a.size.isConstant())
      v[i] = a.size.coeff;
    else if (a.kind == Arg::Kind::Int)
      v[i] = a.intValue;
    else
      return false;
  }
  fgc_conv2d_params p{1,    v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10],
                      fgc_padding(fields[11].intValue),
                      fgc_activation_kind(fields[12].intValue)};
  const int64_t points = fgc_conv2d_winograd_points(&p);
  if (!fgc_conv2d_winograd_suits(&p) || points * p.in_c * p.out_c * 4 > kMaxWinogradKernelBytes)
    return false;
  Arg oneImage = call.args[0];
  oneImage.fields[0].kind = Arg::Kind::Size;
  oneImage.fields[0].size = SymSize::constant(1);
  oneImage.fields[12].enumName = "FGC_ACT_LINEAR"; // the transform does not apply it
  oneImage.fields[12].intValue = FGC_ACT_LINEAR;
  f.weightArg = 2;
  f.shape = {points, p.in_c, p.out_c};
  f.suffix = "winograd";
  f.description = points == 25 ? "Winograd F(3x3, 3x3)" : "Winograd F(4x4, 3x3)";
  f.transform = kernel("fgc_conv2d_winograd_kernel", {oneImage, call.args[2], Arg{}});
  f.replacement = call;
  f.replacement.function = "fgc_conv2d_winograd";
  f.replacement.scratchFunction = "fgc_conv2d_winograd_scratch_size";
  return true;
}

static void registerConv2D(OpRegistry &r) {
  OpDef d;
  d.className = "Conv2D";
  d.flops = [](const Layer &l, const OpDef::Shapes &in, const OpDef::Shapes &out) {
    auto k = l.attrs().ints("kernel_size");
    double n = 2.0 * double(k[0] * k[1] * in[0].back() / l.attrs().i("groups"));
    for (int64_t x : out[0])
      n *= double(x);
    return n;
  };
  d.summary = "2D convolution, NHWC, kernel (kh, kw, in/groups, filters).";
  d.attrs = convAttrs();
  d.attrs.push_back(intAttr("groups", 1));
  d.inferTypes = [](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    FGC_TRY(checkConv(ctx));
    auto a = ctx.attrs();
    auto k = a.ints("kernel_size"), s = a.ints("strides"), dr = a.ints("dilation_rate");
    int64_t groups = a.i("groups");
    int64_t in = ctx.input().shape[3];
    if (groups <= 0 || in % groups != 0 || a.i("filters") % groups != 0)
      return ctx.error("groups={} must divide both the input channels ({}) and filters ({})",
                       groups, in, a.i("filters"));
    TensorType out = ctx.input();
    out.dtype = schema::FLOAT32;
    for (int i = 0; i < 2; ++i)
      out.shape[1 + i] = convOutputLength(out.shape[1 + i], k[i], a.s("padding"), s[i], dr[i]);
    out.shape[3] = a.i("filters");
    FGC_TRY(checkSpatial(ctx, out));
    return std::vector<TensorType>{out};
  };
  d.params = [](const OpContext &ctx) {
    auto a = ctx.attrs();
    auto k = a.ints("kernel_size");
    std::vector<ParamSpec> ps = {{"kernel",
                                  {k[0], k[1], ctx.input().shape[3] / a.i("groups"), a.i("filters")},
                                  a.get("kernel_initializer")}};
    if (a.b("use_bias"))
      ps.push_back({"bias", {a.i("filters")}, a.get("bias_initializer")});
    return ps;
  };
  d.lower = [](LowerContext &ctx) -> Status {
    if (ctx.attrs().i("groups") != 1)
      return ctx.error("grouped convolution (groups={}) is not supported by the runtime yet",
                       ctx.attrs().i("groups"));
    return lowerConv(ctx, "fgc_conv2d");
  };
  // fgc_conv2d(params, input, kernel, bias, output, scratch): kernel (kh, kw, in, filters),
  // the activation the last field of the parameters.
  d.linearOutput = [](KernelCall &k, LinearForm &f) {
    if (k.args[0].kind != Arg::Kind::Struct || k.args[2].kind != Arg::Kind::Buffer ||
        k.args[4].kind != Arg::Kind::Buffer)
      return false;
    f.kernel = &k.args[2];
    f.bias = &k.args[3];
    f.output = k.args[4].buffer;
    f.activation = &k.args[0].fields.back();
    return true;
  };
  d.weightTransform = winogradForm;
  d.lowerTrain = [](LowerContext &ctx) { return lowerConvTrain(ctx, "fgc_conv2d"); };
  d.gradient = [](LowerContext &ctx) { return convGradient(ctx, "fgc_conv2d_backward"); };
  r.add(std::move(d));
}

static void registerConv2DTranspose(OpRegistry &r) {
  OpDef d;
  d.className = "Conv2DTranspose";
  d.flops = [](const Layer &l, const OpDef::Shapes &in, const OpDef::Shapes &) {
    auto k = l.attrs().ints("kernel_size");
    double n = 2.0 * double(k[0] * k[1] * l.attrs().i("filters"));
    for (int64_t x : in[0])
      n *= double(x);
    return n;
  };
  d.summary = "Transposed 2D convolution, NHWC, kernel (kh, kw, filters, in).";
  d.attrs = convAttrs();
  d.attrs.push_back(nullableInts("output_padding"));
  d.inferTypes = [](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    FGC_TRY(checkConv(ctx));
    auto a = ctx.attrs();
    auto k = a.ints("kernel_size"), s = a.ints("strides"), dr = a.ints("dilation_rate");
    std::vector<int64_t> op = {-1, -1};
    if (!a.isNone("output_padding")) {
      op = a.ints("output_padding");
      if (op.size() == 1)
        op.push_back(op[0]);
      if (op.size() != 2)
        return ctx.error("output_padding must have 2 values, got {}",
                         attrToString(a.get("output_padding")));
      for (int i = 0; i < 2; ++i)
        if (op[i] < 0 || op[i] >= s[i])
          return ctx.error("output_padding {} must be smaller than strides {}",
                           attrToString(a.get("output_padding")), attrToString(a.get("strides")));
    }
    TensorType out = ctx.input();
    out.dtype = schema::FLOAT32;
    for (int i = 0; i < 2; ++i)
      out.shape[1 + i] =
          deconvOutputLength(out.shape[1 + i], k[i], a.s("padding"), op[i], s[i], dr[i]);
    out.shape[3] = a.i("filters");
    FGC_TRY(checkSpatial(ctx, out));
    return std::vector<TensorType>{out};
  };
  d.params = [](const OpContext &ctx) {
    auto a = ctx.attrs();
    auto k = a.ints("kernel_size");
    std::vector<ParamSpec> ps = {{"kernel",
                                  {k[0], k[1], a.i("filters"), ctx.input().shape[3]},
                                  a.get("kernel_initializer")}};
    if (a.b("use_bias"))
      ps.push_back({"bias", {a.i("filters")}, a.get("bias_initializer")});
    return ps;
  };
  d.lower = [](LowerContext &ctx) -> Status {
    if (!ctx.attrs().isNone("output_padding"))
      return ctx.error("output_padding is not supported by the runtime yet");
    return lowerConv(ctx, "fgc_conv2d_transpose");
  };
  d.lowerTrain = [](LowerContext &ctx) { return lowerConvTrain(ctx, "fgc_conv2d_transpose"); };
  d.gradient = [](LowerContext &ctx) {
    return convGradient(ctx, "fgc_conv2d_transpose_backward");
  };
  r.add(std::move(d));
}

void registerConvolutionOps(OpRegistry &r) {
  registerConv2D(r);
  registerConv2DTranspose(r);
}

} // namespace fgc::ops
