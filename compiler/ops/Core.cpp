// Core layers: InputLayer, Dense, Activation, Softmax, Dropout, Flatten, Reshape.
#include "compiler/ops/OpHelpers.h"

namespace fgc::ops {

static void registerInputLayer(OpRegistry &r) {
  OpDef d;
  d.className = "InputLayer";
  d.summary = "A model input: `keras.Input(shape, dtype, name)`.";
  d.attrs = {requiredInts("batch_input_shape"), boolAttr("sparse", false),
             boolAttr("ragged", false)};
  d.minInputs = d.maxInputs = 0;
  d.inferTypes = [](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    auto a = ctx.attrs();
    if (a.b("sparse") || a.b("ragged"))
      return ctx.error("sparse and ragged inputs are not supported");
    auto shape = a.ints("batch_input_shape");
    if (shape.empty())
      return ctx.error("batch_input_shape must include the batch dimension, got ()");
    for (auto d : shape)
      if (d < kDynamic || d == 0)
        return ctx.error("batch_input_shape has an invalid dimension {} (use None / -1 for "
                         "unknown sizes)", d);
    DType dt = dtypeFromName(a.s("dtype"));
    if (dt == schema::DTYPE_UNSPECIFIED)
      return ctx.error("unknown dtype '{}'", a.s("dtype"));
    return std::vector<TensorType>{TensorType{dt, shape}};
  };
  r.add(std::move(d));
}

static void registerDense(OpRegistry &r) {
  OpDef d;
  d.className = "Dense";
  d.flops = [](const Layer &, const OpDef::Shapes &in, const OpDef::Shapes &out) {
    double n = 2.0 * double(in[0].back());
    for (int64_t x : out[0])
      n *= double(x);
    return n;
  };
  d.summary = "Densely connected layer: activation(x @ kernel + bias) on the last axis.";
  d.attrs = {requiredInt("units"), activationAttr()};
  addKernelBiasAttrs(d.attrs);
  d.inferTypes = [](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    FGC_TRY(expectStaticLastDim(ctx, 0));
    if (ctx.attrs().i("units") <= 0)
      return ctx.error("units must be positive, got {}", ctx.attrs().i("units"));
    TensorType out = ctx.input();
    out.dtype = schema::FLOAT32;
    out.shape.back() = ctx.attrs().i("units");
    return std::vector<TensorType>{out};
  };
  d.params = [](const OpContext &ctx) {
    auto a = ctx.attrs();
    std::vector<ParamSpec> ps = {
        {"kernel", {ctx.input().shape.back(), a.i("units")}, a.get("kernel_initializer")}};
    if (a.b("use_bias"))
      ps.push_back({"bias", {a.i("units")}, a.get("bias_initializer")});
    return ps;
  };
  d.lowerTrain = [](LowerContext &ctx) -> Status {
    return lowerWithSavedPreactivation(ctx, [&ctx](const Arg &act, int out) {
      const auto &in = ctx.inShape(0);
      int bias = ctx.param("bias");
      ctx.call(kernel("fgc_dense", {ctx.buf(ctx.input(0)), ctx.buf(ctx.param("kernel")),
                                    bias >= 0 ? ctx.buf(bias) : ctx.null(), ctx.buf(out),
                                    ctx.size(SymSize::product(in, 0, in.size() - 1)),
                                    ctx.size(ctx.dim(in, -1)),
                                    ctx.size(ctx.dim(ctx.outShape(0), -1)), act}));
      return Status::ok();
    });
  };
  d.gradient = [](LowerContext &ctx) -> Status {
    auto act = ctx.activation(ctx.attrs().s("activation"));
    if (!act)
      return act.error();
    const auto &in = ctx.inShape(0);
    SymSize rows = SymSize::product(in, 0, in.size() - 1);
    int dx = ctx.dIn(0), dk = ctx.dParam("kernel"), db = ctx.dParam("bias");
    int z = ctx.saved("z");
    KernelCall c = kernel(
        "fgc_dense_backward",
        {ctx.buf(ctx.input(0)), ctx.buf(ctx.param("kernel")), z >= 0 ? ctx.buf(z) : ctx.null(),
         ctx.buf(ctx.output(0)), ctx.buf(ctx.dOut(0)), dx >= 0 ? ctx.buf(dx) : ctx.null(),
         dk >= 0 ? ctx.buf(dk) : ctx.null(), db >= 0 ? ctx.buf(db) : ctx.null(), ctx.size(rows),
         ctx.size(ctx.dim(in, -1)), ctx.size(ctx.dim(ctx.outShape(0), -1)), *act, scratchArg(),
         ctx.flags()});
    c.scratchFunction = "fgc_dense_backward_scratch_size";
    c.scratchArgs = {ctx.size(rows), ctx.size(ctx.dim(in, -1)),
                     ctx.size(ctx.dim(ctx.outShape(0), -1)), *act};
    ctx.call(c);
    return Status::ok();
  };
  d.lower = [](LowerContext &ctx) -> Status {
    auto act = ctx.activation(ctx.attrs().s("activation"));
    if (!act)
      return act.error();
    const auto &in = ctx.inShape(0);
    int bias = ctx.param("bias");
    ctx.call(kernel("fgc_dense",
                    {ctx.buf(ctx.input(0)), ctx.buf(ctx.param("kernel")),
                     bias >= 0 ? ctx.buf(bias) : ctx.null(), ctx.buf(ctx.output(0)),
                     ctx.size(SymSize::product(in, 0, in.size() - 1)), ctx.size(ctx.dim(in, -1)),
                     ctx.size(ctx.dim(ctx.outShape(0), -1)), *act}));
    return Status::ok();
  };
  // fgc_dense(x, kernel, bias, y, rows, in, out, act): kernel (in, units).
  d.linearOutput = [](KernelCall &k, LinearForm &f) {
    if (k.args[1].kind != Arg::Kind::Buffer || k.args[3].kind != Arg::Kind::Buffer)
      return false;
    f.kernel = &k.args[1];
    f.bias = &k.args[2];
    f.output = k.args[3].buffer;
    f.activation = &k.args[7];
    return true;
  };
  r.add(std::move(d));
}

// Ops whose output has the input's type.
static Expected<std::vector<TensorType>> sameAsInput(const OpContext &ctx) {
  return std::vector<TensorType>{ctx.input()};
}

static void registerActivation(OpRegistry &r) {
  OpDef d;
  d.className = "Activation";
  d.summary = "Applies an activation function elementwise.";
  d.attrs = {activationAttr("linear")};
  d.attrs[0].required = true;
  d.inferTypes = sameAsInput;
  d.lower = [](LowerContext &ctx) -> Status {
    auto act = ctx.activation(ctx.attrs().s("activation"));
    if (!act)
      return act.error();
    const auto &in = ctx.inShape(0);
    KernelCall c = kernel("fgc_activation", {*act, ctx.buf(ctx.input(0)), ctx.buf(ctx.output(0)),
                                             ctx.size(SymSize::product(in, 0, in.size() - 1)),
                                             ctx.size(ctx.dim(in, -1))});
    c.inPlaceOutput = 2; // fgc_activation may run in place
    ctx.call(c);
    return Status::ok();
  };
  // fgc_activation(kind, x, y, rows, cols): y = act(x), unless act is softmax.
  d.elementwise = [](const KernelCall &k, ElementwiseForm &f) {
    if (k.args[0].enumName == "FGC_ACT_SOFTMAX" || k.args[1].kind != Arg::Kind::Buffer ||
        k.args[2].kind != Arg::Kind::Buffer)
      return false;
    f.inputs = {k.args[1].buffer};
    f.output = k.args[2].buffer;
    if (k.args[0].enumName != "FGC_ACT_LINEAR")
      f.program = {{FGC_EW_ACTIVATION, int(k.args[0].intValue)}};
    return true;
  };
  d.gradient = [](LowerContext &ctx) -> Status {
    auto act = ctx.activation(ctx.attrs().s("activation"));
    if (!act)
      return act.error();
    int dx = ctx.dIn(0);
    if (dx < 0)
      return Status::ok();
    const auto &in = ctx.inShape(0);
    ctx.call(kernel("fgc_activation_backward",
                    {*act, ctx.buf(ctx.input(0)), ctx.buf(ctx.output(0)), ctx.buf(ctx.dOut(0)),
                     ctx.buf(dx), ctx.size(SymSize::product(in, 0, in.size() - 1)),
                     ctx.size(ctx.dim(in, -1)), ctx.flags()}));
    return Status::ok();
  };
  r.add(std::move(d));

  OpDef s;
  s.className = "Softmax";
  s.summary = "Softmax along an axis (default the last).";
  s.attrs = {intAttr("axis", -1)};
  s.inferTypes = [](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    int64_t rank = static_cast<int64_t>(ctx.input().rank());
    int64_t axis = ctx.attrs().i("axis");
    if (axis < -rank || axis >= rank || axis == 0 || axis == -rank)
      return ctx.error("axis {} is out of range for input {}", axis, ctx.describeInput(0));
    return std::vector<TensorType>{ctx.input()};
  };
  s.lower = [](LowerContext &ctx) -> Status {
    const auto &in = ctx.inShape(0);
    Arg shape;
    shape.kind = Arg::Kind::SizeList;
    for (size_t k = 0; k < in.size(); ++k)
      shape.sizes.push_back(ctx.dim(in, int(k)));
    KernelCall c = kernel("fgc_softmax", {ctx.buf(ctx.input(0)), ctx.buf(ctx.output(0)), shape,
                                          ctx.i64(int64_t(in.size())),
                                          ctx.i64(ctx.attrs().i("axis"))});
    c.inPlaceOutput = 1; // fgc_softmax may run in place
    ctx.call(c);
    return Status::ok();
  };
  s.gradient = [](LowerContext &ctx) -> Status {
    int dx = ctx.dIn(0);
    if (dx < 0)
      return Status::ok();
    const auto &in = ctx.inShape(0);
    Arg shape;
    shape.kind = Arg::Kind::SizeList;
    for (size_t k = 0; k < in.size(); ++k)
      shape.sizes.push_back(ctx.dim(in, int(k)));
    ctx.call(kernel("fgc_softmax_backward",
                    {ctx.buf(ctx.output(0)), ctx.buf(ctx.dOut(0)), ctx.buf(dx), shape,
                     ctx.i64(int64_t(in.size())), ctx.i64(ctx.attrs().i("axis")), ctx.flags()}));
    return Status::ok();
  };
  r.add(std::move(s));
}

static void registerDropout(OpRegistry &r) {
  OpDef d;
  d.className = "Dropout";
  d.pure = false; // a random mask per call
  d.summary = "Inverted dropout: zeroes a fraction `rate` in training, identity at inference.";
  d.attrs = {floatAttr("rate", 0.0), nullableInts("noise_shape"), nullableInt("seed")};
  d.attrs[0].required = true;
  d.inferTypes = [](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    double rate = ctx.attrs().f("rate");
    if (rate < 0 || rate >= 1)
      return ctx.error("rate must be in [0, 1), got {}", rate);
    return std::vector<TensorType>{ctx.input()};
  };
  d.lower = lowerAsView; // identity at inference
  d.identityAtInference = true;
  d.lowerTrain = [](LowerContext &ctx) -> Status {
    int mask = ctx.newBuffer("mask", schema::FLOAT32, ctx.outShape(0));
    ctx.save("mask", mask);
    Arg rate = ctx.value("dropoutRate");
    rate.floatValue = ctx.attrs().f("rate");
    // The mask's seed: the layer's own seed if it has one, else one derived from its name;
    // the counter is the training step, so every step draws a new mask.
    uint64_t seed = ctx.attrs().isNone("seed") ? ctx.layerHash() >> 1
                                               : uint64_t(ctx.attrs().i("seed"));
    ctx.call(kernel("fgc_dropout_forward",
                    {ctx.buf(ctx.input(0)), ctx.buf(ctx.output(0)), ctx.buf(mask),
                     ctx.size(ctx.buffer(ctx.output(0)).elements()), rate,
                     ctx.i64(int64_t(seed)), ctx.value("step")}));
    return Status::ok();
  };
  d.gradient = [](LowerContext &ctx) -> Status {
    int dx = ctx.dIn(0);
    if (dx < 0)
      return Status::ok();
    ctx.call(kernel("fgc_dropout_backward",
                    {ctx.buf(ctx.saved("mask")), ctx.buf(ctx.dOut(0)), ctx.buf(dx),
                     ctx.size(ctx.buffer(ctx.output(0)).elements()), ctx.flags()}));
    return Status::ok();
  };
  r.add(std::move(d));
}

static void registerFlattenReshape(OpRegistry &r) {
  OpDef f;
  f.className = "Flatten";
  f.summary = "Flattens every dimension but the batch.";
  f.attrs = {stringAttr("data_format", "channels_last", {"channels_last"})};
  f.inferTypes = [](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    TensorType out = ctx.input();
    int64_t n = out.elementsPerSample();
    out.shape = {out.shape.empty() ? kBatchDim : out.shape[0], n};
    return std::vector<TensorType>{out};
  };
  f.lower = lowerAsView; // C order: the same data
  f.view = true;
  r.add(std::move(f));

  OpDef d;
  d.className = "Reshape";
  d.summary = "Reshapes every sample to target_shape (one dimension may be -1).";
  d.attrs = {requiredInts("target_shape")};
  d.inferTypes = [](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    auto target = ctx.attrs().ints("target_shape");
    int64_t in = ctx.input().elementsPerSample();
    int64_t known = 1;
    int unknown = -1;
    for (size_t i = 0; i < target.size(); ++i) {
      if (target[i] == -1) {
        if (unknown >= 0)
          return ctx.error("target_shape {} may contain -1 only once",
                           attrToString(ctx.attrs().get("target_shape")));
        unknown = static_cast<int>(i);
      } else if (target[i] <= 0) {
        return ctx.error("target_shape has an invalid dimension {}", target[i]);
      } else if (__builtin_mul_overflow(known, target[i], &known)) {
        return ctx.error("cannot reshape input {} into target_shape {}: too many values per sample",
                         ctx.describeInput(0), attrToString(ctx.attrs().get("target_shape")));
      }
    }
    TensorType out = ctx.input();
    out.shape = {ctx.input().shape.empty() ? kBatchDim : ctx.input().shape[0]};
    if (unknown >= 0) {
      if (!isDynamic(in)) {
        if (in % known != 0)
          return ctx.error("cannot reshape input {} ({} values per sample) into target_shape {}",
                           ctx.describeInput(0), in, attrToString(ctx.attrs().get("target_shape")));
        target[unknown] = in / known;
      }
    } else if (!isDynamic(in) && in != known) {
      return ctx.error("cannot reshape input {} ({} values per sample) into target_shape {} ({} "
                       "values)",
                       ctx.describeInput(0), in, attrToString(ctx.attrs().get("target_shape")),
                       known);
    }
    for (auto t : target)
      out.shape.push_back(t == -1 ? kUnknownDim : t);
    return std::vector<TensorType>{out};
  };
  d.lower = lowerAsView;
  d.view = true;
  r.add(std::move(d));
}

void registerCoreOps(OpRegistry &r) {
  registerInputLayer(r);
  registerDense(r);
  registerActivation(r);
  registerDropout(r);
  registerFlattenReshape(r);
}

} // namespace fgc::ops
