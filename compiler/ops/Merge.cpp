// Merge layers: Concatenate, Add, Average (Keras's `concatenate`, `add`, `average`).
#include "compiler/ops/OpHelpers.h"

namespace fgc::ops {

static std::string describeAll(const OpContext &ctx) {
  std::string s;
  for (size_t i = 0; i < ctx.inputs.size(); ++i)
    s += (i ? ", " : "") + ctx.describeInput(i);
  return s;
}

static void registerConcatenate(OpRegistry &r) {
  OpDef d;
  d.className = "Concatenate";
  d.summary = "Joins its inputs along `axis` (default the last).";
  d.attrs = {intAttr("axis", -1)};
  d.minInputs = 1;
  d.maxInputs = -1;
  d.lower = [](LowerContext &ctx) -> Status {
    const auto &out = ctx.outShape(0);
    int64_t axis = ctx.attrs().i("axis");
    size_t ax = size_t(axis < 0 ? axis + int64_t(out.size()) : axis);
    Arg inputs, sizes;
    inputs.kind = Arg::Kind::BufferList;
    sizes.kind = Arg::Kind::SizeList;
    for (size_t i = 0; i < ctx.numInputs(); ++i) {
      inputs.buffers.push_back(ctx.input(i));
      sizes.sizes.push_back(ctx.dim(ctx.inShape(i), int(ax)));
    }
    ctx.call(kernel("fgc_concatenate",
                    {ctx.i64(int64_t(ctx.numInputs())), inputs, sizes,
                     ctx.size(SymSize::product(out, 0, ax)),
                     ctx.size(SymSize::product(out, ax + 1, out.size())), ctx.buf(ctx.output(0))}));
    return Status::ok();
  };
  d.gradient = [](LowerContext &ctx) -> Status {
    const auto &out = ctx.outShape(0);
    int64_t axis = ctx.attrs().i("axis");
    size_t ax = size_t(axis < 0 ? axis + int64_t(out.size()) : axis);
    Arg dins, sizes;
    dins.kind = Arg::Kind::BufferList;
    dins.mutableList = true;
    sizes.kind = Arg::Kind::SizeList;
    std::vector<int64_t> flags;
    for (size_t i = 0; i < ctx.numInputs(); ++i) {
      dins.buffers.push_back(ctx.dIn(i));
      flags.push_back(ctx.inFlag(i));
      sizes.sizes.push_back(ctx.dim(ctx.inShape(i), int(ax)));
    }
    ctx.call(kernel("fgc_concatenate_backward",
                    {ctx.i64(int64_t(ctx.numInputs())), ctx.buf(ctx.dOut(0)), sizes,
                     ctx.size(SymSize::product(out, 0, ax)),
                     ctx.size(SymSize::product(out, ax + 1, out.size())), dins,
                     ctx.intList(flags)}));
    return Status::ok();
  };
  d.inferTypes = [](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    size_t rank = ctx.input().rank();
    int64_t axis = ctx.attrs().i("axis");
    int64_t ax = axis < 0 ? axis + static_cast<int64_t>(rank) : axis;
    if (ax <= 0 || ax >= static_cast<int64_t>(rank))
      return ctx.error("axis {} is out of range for inputs {}", axis, describeAll(ctx));
    TensorType out = ctx.input();
    for (size_t i = 1; i < ctx.inputs.size(); ++i) {
      const auto &t = ctx.inputs[i];
      bool ok = t.rank() == rank;
      for (size_t k = 0; ok && k < rank; ++k)
        if (static_cast<int64_t>(k) != ax && t.shape[k] != out.shape[k] && !isDynamic(t.shape[k]) &&
            !isDynamic(out.shape[k]))
          ok = false;
      if (!ok)
        return ctx.error("requires inputs with matching shapes except for the concatenation axis "
                         "{}, got {}",
                         axis, describeAll(ctx));
      out.shape[ax] = (isDynamic(out.shape[ax]) || isDynamic(t.shape[ax]))
                          ? kUnknownDim
                          : out.shape[ax] + t.shape[ax];
      if (t.dtype != out.dtype)
        return ctx.error("inputs have different dtypes: {} and {}", dtypeName(out.dtype),
                         dtypeName(t.dtype));
    }
    return std::vector<TensorType>{out};
  };
  r.add(std::move(d));
}

// Add and Average: elementwise over inputs of one shape, where a dimension of 1 broadcasts.
static Expected<std::vector<TensorType>> elementwiseMerge(const OpContext &ctx) {
  TensorType out = ctx.input();
  for (size_t i = 1; i < ctx.inputs.size(); ++i) {
    const auto &t = ctx.inputs[i];
    bool ok = t.rank() == out.rank() && t.dtype == out.dtype;
    for (size_t k = 1; ok && k < out.rank(); ++k) {
      Dim a = out.shape[k], b = t.shape[k];
      if (a == b || b == 1)
        continue;
      if (a == 1 || (isDynamic(a) && !isDynamic(b)))
        out.shape[k] = b;
      else if (!isDynamic(b) && !isDynamic(a))
        ok = false;
    }
    if (!ok)
      return ctx.error("inputs must have the same shape, got {}", describeAll(ctx));
  }
  return std::vector<TensorType>{out};
}

static void registerElementwiseMerge(OpRegistry &r, const std::string &cls,
                                     const std::string &what) {
  OpDef d;
  d.className = cls;
  d.summary = what;
  d.minInputs = 2;
  d.maxInputs = -1;
  d.inferTypes = elementwiseMerge;
  std::string fn = cls == "Add" ? "fgc_add" : "fgc_average";
  d.gradient = [fn](LowerContext &ctx) -> Status {
    Arg dins;
    dins.kind = Arg::Kind::BufferList;
    dins.mutableList = true;
    std::vector<int64_t> flags;
    for (size_t i = 0; i < ctx.numInputs(); ++i) {
      dins.buffers.push_back(ctx.dIn(i));
      flags.push_back(ctx.inFlag(i));
    }
    ctx.call(kernel(fn + "_backward", {ctx.i64(int64_t(ctx.numInputs())), ctx.buf(ctx.dOut(0)),
                                       ctx.size(ctx.buffer(ctx.output(0)).elements()), dins,
                                       ctx.intList(flags)}));
    return Status::ok();
  };
  d.lower = [fn](LowerContext &ctx) -> Status {
    Arg inputs;
    inputs.kind = Arg::Kind::BufferList;
    for (size_t i = 0; i < ctx.numInputs(); ++i) {
      if (ctx.inShape(i) != ctx.outShape(0))
        return ctx.error("broadcasting inputs {} to {} is not supported by the runtime yet",
                         shapeToString(ctx.inShape(i)), shapeToString(ctx.outShape(0)));
      inputs.buffers.push_back(ctx.input(i));
    }
    KernelCall c = kernel(fn, {ctx.i64(int64_t(ctx.numInputs())), inputs,
                               ctx.size(ctx.buffer(ctx.output(0)).elements()),
                               ctx.buf(ctx.output(0))});
    c.inPlaceOutput = 3; // the output may alias any input
    ctx.call(c);
    return Status::ok();
  };
  // fn(n, inputs[], count, output): the sum of the inputs (divided by n for Average).
  bool mean = cls == "Average";
  d.elementwise = [mean](const KernelCall &k, ElementwiseForm &f) {
    f.inputs = k.args[1].buffers;
    f.output = k.args[3].buffer;
    f.symmetric = true;
    for (size_t i = 1; i < f.inputs.size(); ++i)
      f.program.push_back({FGC_EW_ADD, int(i)});
    if (mean)
      f.program.push_back({FGC_EW_DIVIDE, int(f.inputs.size())});
    return true;
  };
  r.add(std::move(d));
}

void registerMergeOps(OpRegistry &r) {
  registerConcatenate(r);
  registerElementwiseMerge(r, "Add", "Elementwise sum of its inputs.");
  registerElementwiseMerge(r, "Average", "Elementwise mean of its inputs.");
}

} // namespace fgc::ops
