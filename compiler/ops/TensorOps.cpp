// Tensor operations: the primitives a custom layer's `call` is traced into (fgc/keras.h,
// `fgc::keras::ops`). Each is an ordinary op (shape function, lowering, gradient), so a traced
// body gets shape inference, passes, memory planning and autodiff like any model.
//
//   Variable            a weight created by add_weight(): no inputs, the weight as its output
//   MatMul              x (..., k) @ w (k, n)
//   BinaryAdd, BinarySubtract, BinaryMultiply, BinaryDivide
//                       elementwise, broadcasting an operand over leading axes (a bias, a scalar)
//   Slice               x[..., start:start + size, ...] on one axis, keeping it or (an index,
//                       size 1) dropping it
//   Stack               joins same-shaped tensors along a new axis
//   Zeros               zeros of a per-sample shape, with the batch size of its input
//   ReduceSum, ReduceMean, ReduceMax
//                       over one axis, keeping it or not
//
// The batch axis (0) is never sliced, stacked or reduced: every value of a traced body keeps
// the model's batch first, except weights, which have none.
#include "compiler/ops/OpHelpers.h"

namespace fgc::ops {

namespace {

// `axis` of a rank-`rank` tensor (negative: from the end), or -1 when out of range.
int64_t normalizeAxis(int64_t axis, size_t rank) {
  int64_t r = static_cast<int64_t>(rank);
  int64_t a = axis < 0 ? axis + r : axis;
  return a < 0 || a >= r ? -1 : a;
}

// --- Variable ---------------------------------------------------------------------------------

void registerVariable(OpRegistry &r) {
  OpDef d;
  d.className = "Variable";
  d.summary = "A custom layer's weight (add_weight): its value, with the weight's shape.";
  d.attrs = {requiredInts("shape"), objectAttr("initializer", "GlorotUniform")};
  d.minInputs = d.maxInputs = 0;
  d.inferTypes = [](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    auto shape = ctx.attrs().ints("shape");
    for (auto s : shape)
      if (s <= 0)
        return ctx.error("weight shape {} has a dimension that is not positive",
                         attrToString(ctx.attrs().get("shape")));
    return std::vector<TensorType>{TensorType{schema::FLOAT32, shape}};
  };
  d.params = [](const OpContext &ctx) {
    auto a = ctx.attrs();
    return std::vector<ParamSpec>{
        {ctx.layer.name, a.ints("shape"), a.get("initializer"), a.b("trainable")}};
  };
  d.lower = [](LowerContext &ctx) -> Status {
    ctx.call(kernel("fgc_copy", {ctx.buf(ctx.param(ctx.op().layer->name)), ctx.buf(ctx.output(0)),
                                 ctx.size(ctx.buffer(ctx.output(0)).elements())}));
    return Status::ok();
  };
  d.gradient = [](LowerContext &ctx) -> Status {
    int dw = ctx.dParam(ctx.op().layer->name);
    int dy = ctx.dOut(0);
    if (dw < 0 || dy < 0)
      return Status::ok();
    Arg n = ctx.size(ctx.buffer(ctx.output(0)).elements());
    if (ctx.paramFlag() & 2) // the weight is read several times: gradients add up
      ctx.call(kernel("fgc_scale_add", {ctx.buf(dy), ctx.f32(1.0), ctx.buf(dw), n}));
    else
      ctx.call(kernel("fgc_copy", {ctx.buf(dy), ctx.buf(dw), n}));
    return Status::ok();
  };
  d.flops = [](const Layer &, const OpDef::Shapes &, const OpDef::Shapes &) { return 0.0; };
  r.add(std::move(d));
}

// --- MatMul -----------------------------------------------------------------------------------

void registerMatMul(OpRegistry &r) {
  OpDef d;
  d.className = "MatMul";
  d.summary = "Matrix product x @ w of x (..., k) and a matrix w (k, n) (a weight).";
  d.minInputs = d.maxInputs = 2;
  d.inferTypes = [](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    const auto &x = ctx.input(0), &w = ctx.input(1);
    if (x.rank() < 2)
      return ctx.error("x must have rank 2 or more, got {}", ctx.describeInput(0));
    if (w.rank() != 2 || isDynamic(w.shape[0]) || isDynamic(w.shape[1]))
      return ctx.error("w must be a matrix of static shape (k, n), such as a weight; got {}",
                       ctx.describeInput(1));
    if (isDynamic(x.shape.back()) || x.shape.back() != w.shape[0])
      return ctx.error("inner dimensions differ: x {} @ w {}", ctx.describeInput(0),
                       ctx.describeInput(1));
    TensorType out = x;
    out.shape.back() = w.shape[1];
    return std::vector<TensorType>{out};
  };
  d.lower = [](LowerContext &ctx) -> Status {
    const auto &x = ctx.inShape(0), &w = ctx.inShape(1);
    ctx.call(kernel("fgc_dense", {ctx.buf(ctx.input(0)), ctx.buf(ctx.input(1)), ctx.null(),
                                  ctx.buf(ctx.output(0)),
                                  ctx.size(SymSize::product(x, 0, x.size() - 1)),
                                  ctx.i64(w[0]), ctx.i64(w[1]),
                                  ctx.enumValue("FGC_ACT_LINEAR", 0)}));
    return Status::ok();
  };
  d.gradient = [](LowerContext &ctx) -> Status {
    const auto &x = ctx.inShape(0), &w = ctx.inShape(1);
    SymSize rows = SymSize::product(x, 0, x.size() - 1);
    int dx = ctx.dIn(0), dw = ctx.dIn(1);
    if (dx < 0 && dw < 0)
      return Status::ok();
    // The Dense kernel's backward with no bias and a linear activation; w's gradient plays
    // the kernel's, so its accumulate flag is the parameters' one.
    int64_t flags = ctx.inFlag(0) | (ctx.inFlag(1) ? 2 : 0);
    Arg act = ctx.enumValue("FGC_ACT_LINEAR", 0);
    KernelCall c = kernel(
        "fgc_dense_backward",
        {ctx.buf(ctx.input(0)), ctx.buf(ctx.input(1)), ctx.null(), ctx.buf(ctx.output(0)),
         ctx.buf(ctx.dOut(0)), dx >= 0 ? ctx.buf(dx) : ctx.null(),
         dw >= 0 ? ctx.buf(dw) : ctx.null(), ctx.null(), ctx.size(rows), ctx.i64(w[0]),
         ctx.i64(w[1]), act, scratchArg(), ctx.i64(flags)});
    c.scratchFunction = "fgc_dense_backward_scratch_size";
    c.scratchArgs = {ctx.size(rows), ctx.i64(w[0]), ctx.i64(w[1]), act};
    ctx.call(c);
    return Status::ok();
  };
  d.flops = [](const Layer &, const OpDef::Shapes &in, const OpDef::Shapes &out) {
    double n = 2.0 * double(in[0].back());
    for (int64_t x : out[0])
      n *= double(x);
    return n;
  };
  r.add(std::move(d));
}

// --- Binary arithmetic ------------------------------------------------------------------------

// The element count of operand `t` in the output `out`: each operand is the whole output or a
// trailing block of it (shapes aligned from the right; leading axes of size 1 or absent), so
// the kernel repeats it. Returns an empty optional for other broadcasts.
std::optional<SymSize> trailingBlock(const std::vector<Dim> &t, const std::vector<Dim> &out) {
  size_t off = out.size() - t.size();
  size_t first = 0; // the operand's axes before `first` are 1
  while (first < t.size() && t[first] == 1 && out[off + first] != 1)
    ++first;
  for (size_t k = first; k < t.size(); ++k)
    if (t[k] != out[off + k])
      return std::nullopt;
  return SymSize::product(t, first, t.size());
}

void registerBinary(OpRegistry &r, const std::string &cls, const char *op, int code,
                    const std::string &what) {
  OpDef d;
  d.className = cls;
  d.summary = what;
  d.minInputs = d.maxInputs = 2;
  d.inferTypes = [](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    const auto &a = ctx.input(0), &b = ctx.input(1);
    if (a.dtype != schema::FLOAT32 || b.dtype != schema::FLOAT32)
      return ctx.error("operands must be float32, got {} and {}", dtypeName(a.dtype),
                       dtypeName(b.dtype));
    size_t rank = std::max(a.rank(), b.rank());
    std::vector<Dim> out(rank, 1);
    for (size_t k = 0; k < rank; ++k) {
      Dim x = k + a.rank() >= rank ? a.shape[k + a.rank() - rank] : 1;
      Dim y = k + b.rank() >= rank ? b.shape[k + b.rank() - rank] : 1;
      if (x == y || y == 1)
        out[k] = x;
      else if (x == 1)
        out[k] = y;
      else
        return ctx.error("shapes {} and {} cannot be broadcast together", ctx.describeInput(0),
                         ctx.describeInput(1));
    }
    if (!trailingBlock(a.shape, out) || !trailingBlock(b.shape, out))
      return ctx.error("shapes {} and {}: only broadcasting over leading axes is supported (a "
                       "bias over rows, a scalar)",
                       ctx.describeInput(0), ctx.describeInput(1));
    return std::vector<TensorType>{TensorType{schema::FLOAT32, out}};
  };
  auto opArg = [op, code](LowerContext &ctx) { return ctx.enumValue(op, code); };
  d.lower = [opArg](LowerContext &ctx) -> Status {
    const auto out = ctx.outShape(0);
    ctx.call(kernel("fgc_binary",
                    {opArg(ctx), ctx.buf(ctx.input(0)),
                     ctx.size(*trailingBlock(ctx.inShape(0), out)), ctx.buf(ctx.input(1)),
                     ctx.size(*trailingBlock(ctx.inShape(1), out)), ctx.buf(ctx.output(0)),
                     ctx.size(ctx.buffer(ctx.output(0)).elements())}));
    return Status::ok();
  };
  d.gradient = [opArg](LowerContext &ctx) -> Status {
    int da = ctx.dIn(0), db = ctx.dIn(1);
    if (da < 0 && db < 0)
      return Status::ok();
    const auto out = ctx.outShape(0);
    ctx.call(kernel("fgc_binary_backward",
                    {opArg(ctx), ctx.buf(ctx.input(0)),
                     ctx.size(*trailingBlock(ctx.inShape(0), out)), ctx.buf(ctx.input(1)),
                     ctx.size(*trailingBlock(ctx.inShape(1), out)), ctx.buf(ctx.dOut(0)),
                     ctx.size(ctx.buffer(ctx.output(0)).elements()),
                     da >= 0 ? ctx.buf(da) : ctx.null(), db >= 0 ? ctx.buf(db) : ctx.null(),
                     ctx.intList({ctx.inFlag(0), ctx.inFlag(1)})}));
    return Status::ok();
  };
  r.add(std::move(d));
}

// --- Slice ------------------------------------------------------------------------------------

// The (outer, n, inner) sizes of `shape` around `axis`.
struct AxisView {
  SymSize outer, inner;
  int64_t n;
};
AxisView axisView(const std::vector<Dim> &shape, size_t axis) {
  return {SymSize::product(shape, 0, axis), SymSize::product(shape, axis + 1, shape.size()),
          shape[axis]};
}

void registerSlice(OpRegistry &r) {
  OpDef d;
  d.className = "Slice";
  d.summary = "x[..., start:start + size, ...] along `axis`; keepdims=False (size 1) drops it.";
  d.attrs = {requiredInt("axis"), requiredInt("start"), intAttr("size", 1),
             boolAttr("keepdims", true)};
  d.inferTypes = [](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    auto a = ctx.attrs();
    const auto &x = ctx.input();
    int64_t axis = normalizeAxis(a.i("axis"), x.rank());
    if (axis <= 0)
      return ctx.error("axis {} is out of range for {} (the batch axis cannot be sliced)",
                       a.i("axis"), ctx.describeInput(0));
    Dim n = x.shape[size_t(axis)];
    if (isDynamic(n))
      return ctx.error("axis {} of {} must have a static size", a.i("axis"), ctx.describeInput(0));
    int64_t start = a.i("start"), size = a.i("size");
    if (start < 0)
      start += n;
    if (start < 0 || size < 1 || start + size > n)
      return ctx.error("[{}, {}) is out of range for axis {} of {}", a.i("start"),
                       a.i("start") + size, a.i("axis"), ctx.describeInput(0));
    if (!a.b("keepdims") && size != 1)
      return ctx.error("keepdims=False needs size 1, got {}", size);
    TensorType out = x;
    if (a.b("keepdims"))
      out.shape[size_t(axis)] = size;
    else
      out.shape.erase(out.shape.begin() + axis);
    return std::vector<TensorType>{out};
  };
  // The lowering's view of the input: (outer, n, inner), start, size.
  auto args = [](LowerContext &ctx) {
    auto a = ctx.attrs();
    const auto in = ctx.inShape(0);
    size_t axis = size_t(normalizeAxis(a.i("axis"), in.size()));
    AxisView v = axisView(in, axis);
    int64_t start = a.i("start") < 0 ? a.i("start") + v.n : a.i("start");
    return std::vector<Arg>{ctx.size(v.outer), ctx.i64(v.n), ctx.size(v.inner), ctx.i64(start),
                            ctx.i64(a.i("size"))};
  };
  d.lower = [args](LowerContext &ctx) -> Status {
    std::vector<Arg> call = {ctx.buf(ctx.input(0)), ctx.buf(ctx.output(0))};
    for (Arg &x : args(ctx))
      call.push_back(x);
    ctx.call(kernel("fgc_slice", call));
    return Status::ok();
  };
  d.gradient = [args](LowerContext &ctx) -> Status {
    int dx = ctx.dIn(0);
    if (dx < 0)
      return Status::ok();
    std::vector<Arg> call = {ctx.buf(ctx.dOut(0)), ctx.buf(dx)};
    for (Arg &x : args(ctx))
      call.push_back(x);
    call.push_back(ctx.inFlags(0));
    ctx.call(kernel("fgc_slice_backward", call));
    return Status::ok();
  };
  d.flops = [](const Layer &, const OpDef::Shapes &, const OpDef::Shapes &) { return 0.0; };
  r.add(std::move(d));
}

// --- Stack ------------------------------------------------------------------------------------

void registerStack(OpRegistry &r) {
  OpDef d;
  d.className = "Stack";
  d.summary = "Joins same-shaped inputs along a new axis `axis` (tf.stack).";
  d.attrs = {intAttr("axis", 1)};
  d.minInputs = 1;
  d.maxInputs = -1;
  d.inferTypes = [](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    const auto &x = ctx.input();
    int64_t axis = normalizeAxis(ctx.attrs().i("axis"), x.rank() + 1);
    if (axis <= 0)
      return ctx.error("axis {} is out of range for inputs of rank {} (the batch axis stays "
                       "first)",
                       ctx.attrs().i("axis"), x.rank());
    for (size_t i = 1; i < ctx.inputs.size(); ++i)
      if (ctx.inputs[i].shape != x.shape || ctx.inputs[i].dtype != x.dtype)
        return ctx.error("inputs must have the same shape, got {} and {}", ctx.describeInput(0),
                         ctx.describeInput(i));
    TensorType out = x;
    out.shape.insert(out.shape.begin() + axis, Dim(ctx.inputs.size()));
    return std::vector<TensorType>{out};
  };
  // Stacking along `axis` is concatenating slices of size 1 there.
  auto view = [](LowerContext &ctx) {
    const auto out = ctx.outShape(0);
    size_t axis = size_t(normalizeAxis(ctx.attrs().i("axis"), out.size()));
    Arg sizes;
    sizes.kind = Arg::Kind::SizeList;
    for (size_t i = 0; i < ctx.numInputs(); ++i)
      sizes.sizes.push_back(SymSize::constant(1));
    return std::vector<Arg>{sizes, ctx.size(SymSize::product(out, 0, axis)),
                            ctx.size(SymSize::product(out, axis + 1, out.size()))};
  };
  d.lower = [view](LowerContext &ctx) -> Status {
    Arg inputs;
    inputs.kind = Arg::Kind::BufferList;
    for (size_t i = 0; i < ctx.numInputs(); ++i)
      inputs.buffers.push_back(ctx.input(i));
    auto v = view(ctx);
    ctx.call(kernel("fgc_concatenate", {ctx.i64(int64_t(ctx.numInputs())), inputs, v[0], v[1],
                                        v[2], ctx.buf(ctx.output(0))}));
    return Status::ok();
  };
  d.gradient = [view](LowerContext &ctx) -> Status {
    Arg dins;
    dins.kind = Arg::Kind::BufferList;
    dins.mutableList = true;
    std::vector<int64_t> flags;
    bool any = false;
    for (size_t i = 0; i < ctx.numInputs(); ++i) {
      dins.buffers.push_back(ctx.dIn(i));
      any |= dins.buffers.back() >= 0;
      flags.push_back(ctx.inFlag(i));
    }
    if (!any)
      return Status::ok();
    auto v = view(ctx);
    ctx.call(kernel("fgc_concatenate_backward", {ctx.i64(int64_t(ctx.numInputs())),
                                                 ctx.buf(ctx.dOut(0)), v[0], v[1], v[2], dins,
                                                 ctx.intList(flags)}));
    return Status::ok();
  };
  d.flops = [](const Layer &, const OpDef::Shapes &, const OpDef::Shapes &) { return 0.0; };
  r.add(std::move(d));
}

// --- Zeros ------------------------------------------------------------------------------------

void registerZeros(OpRegistry &r) {
  OpDef d;
  d.className = "Zeros";
  d.summary = "Zeros of shape (batch,) + shape, the batch size taken from its input.";
  d.attrs = {requiredInts("shape")};
  d.inferTypes = [](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    if (ctx.input().rank() == 0)
      return ctx.error("the input gives the batch size and needs a batch axis");
    TensorType out{schema::FLOAT32, {ctx.input().shape[0]}};
    for (auto s : ctx.attrs().ints("shape")) {
      if (s <= 0)
        return ctx.error("shape {} has a dimension that is not positive",
                         attrToString(ctx.attrs().get("shape")));
      out.shape.push_back(s);
    }
    return std::vector<TensorType>{out};
  };
  d.lower = [](LowerContext &ctx) -> Status {
    ctx.call(kernel("fgc_fill", {ctx.buf(ctx.output(0)), ctx.f32(0.0),
                                 ctx.size(ctx.buffer(ctx.output(0)).elements())}));
    return Status::ok();
  };
  // Constant in its input's values: no gradient reaches the input.
  d.gradient = [](LowerContext &) -> Status { return Status::ok(); };
  d.flops = [](const Layer &, const OpDef::Shapes &, const OpDef::Shapes &) { return 0.0; };
  r.add(std::move(d));
}

// --- Reductions -------------------------------------------------------------------------------

void registerReduce(OpRegistry &r, const std::string &cls, const char *op, int code,
                    const std::string &what) {
  OpDef d;
  d.className = cls;
  d.summary = what;
  d.attrs = {intAttr("axis", -1), boolAttr("keepdims", false)};
  d.inferTypes = [](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    const auto &x = ctx.input();
    int64_t axis = normalizeAxis(ctx.attrs().i("axis"), x.rank());
    if (axis <= 0)
      return ctx.error("axis {} is out of range for {} (the batch axis cannot be reduced)",
                       ctx.attrs().i("axis"), ctx.describeInput(0));
    if (isDynamic(x.shape[size_t(axis)]))
      return ctx.error("axis {} of {} must have a static size", ctx.attrs().i("axis"),
                       ctx.describeInput(0));
    if (x.dtype != schema::FLOAT32)
      return ctx.error("needs float32, got {}", dtypeName(x.dtype));
    TensorType out = x;
    if (ctx.attrs().b("keepdims"))
      out.shape[size_t(axis)] = 1;
    else
      out.shape.erase(out.shape.begin() + axis);
    return std::vector<TensorType>{out};
  };
  auto view = [op, code](LowerContext &ctx) {
    const auto in = ctx.inShape(0);
    AxisView v = axisView(in, size_t(normalizeAxis(ctx.attrs().i("axis"), in.size())));
    return std::vector<Arg>{ctx.enumValue(op, code), ctx.size(v.outer), ctx.i64(v.n),
                            ctx.size(v.inner)};
  };
  d.lower = [view](LowerContext &ctx) -> Status {
    auto v = view(ctx);
    ctx.call(kernel("fgc_reduce", {v[0], ctx.buf(ctx.input(0)), ctx.buf(ctx.output(0)), v[1],
                                   v[2], v[3]}));
    return Status::ok();
  };
  d.gradient = [view](LowerContext &ctx) -> Status {
    int dx = ctx.dIn(0);
    if (dx < 0)
      return Status::ok();
    auto v = view(ctx);
    ctx.call(kernel("fgc_reduce_backward",
                    {v[0], ctx.buf(ctx.input(0)), ctx.buf(ctx.output(0)), ctx.buf(ctx.dOut(0)),
                     ctx.buf(dx), v[1], v[2], v[3], ctx.inFlags(0)}));
    return Status::ok();
  };
  r.add(std::move(d));
}

} // namespace

void registerTensorOps(OpRegistry &r) {
  registerVariable(r);
  registerMatMul(r);
  registerBinary(r, "BinaryAdd", "FGC_BINARY_ADD", 0, "Elementwise a + b (tf.add).");
  registerBinary(r, "BinarySubtract", "FGC_BINARY_SUBTRACT", 1, "Elementwise a - b.");
  registerBinary(r, "BinaryMultiply", "FGC_BINARY_MULTIPLY", 2, "Elementwise a * b.");
  registerBinary(r, "BinaryDivide", "FGC_BINARY_DIVIDE", 3, "Elementwise a / b.");
  registerSlice(r);
  registerStack(r);
  registerZeros(r);
  registerReduce(r, "ReduceSum", "FGC_REDUCE_SUM", 0, "Sum over `axis` (tf.reduce_sum).");
  registerReduce(r, "ReduceMean", "FGC_REDUCE_MEAN", 1, "Mean over `axis` (tf.reduce_mean).");
  registerReduce(r, "ReduceMax", "FGC_REDUCE_MAX", 2, "Maximum over `axis` (tf.reduce_max).");
}

} // namespace fgc::ops
