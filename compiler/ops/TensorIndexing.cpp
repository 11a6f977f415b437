// Tensor operations that move values by index, for custom layers' traced bodies (fgc/keras.h,
// `fgc::keras::ops::transpose` and `gather`), beside the primitives of TensorOps.cpp.
//
//   Transpose  tf.transpose: `perm` permutes all axes (empty: reversed). A tensor whose first
//              axis is the batch keeps it first (perm[0] == 0); a weight has no batch axis and
//              may be permuted freely.
//   Gather     tf.gather(params, indices, axis, batch_dims) with int32 indices:
//                batch_dims 0, axis 0: rows of params (a weight, such as an embedding table)
//                  looked up by indices that carry the batch: indices.shape + params.shape[1:];
//                batch_dims 1, axis >= 1: per sample, along a non-batch axis of params:
//                  params.shape[:axis] + indices.shape[1:] + params.shape[axis + 1:].
//              Indices out of range make the kernel fail with FGC_ERR_OUT_OF_RANGE (a clear
//              run-time error naming the index), never a read outside params.
#include "compiler/ops/OpHelpers.h"

namespace fgc::ops {

namespace {

// --- Transpose --------------------------------------------------------------------------------

// The permutation of a rank-`rank` tensor: `perm` as given, or all axes reversed when empty.
std::vector<int64_t> permutationOf(const Attrs &a, size_t rank) {
  std::vector<int64_t> perm = a.ints("perm");
  if (perm.empty())
    for (size_t k = 0; k < rank; ++k)
      perm.push_back(int64_t(rank - 1 - k));
  return perm;
}

void registerTranspose(OpRegistry &r) {
  OpDef d;
  d.className = "Transpose";
  d.summary = "tf.transpose: output axis k is input axis perm[k] (empty perm: reversed).";
  d.attrs = {intsAttr("perm", {})};
  d.inferTypes = [](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    const auto &x = ctx.input();
    size_t rank = x.rank();
    auto perm = permutationOf(ctx.attrs(), rank);
    std::vector<bool> seen(rank, false);
    bool ok = rank >= 1 && rank <= 8 && perm.size() == rank;
    for (int64_t p : perm) {
      ok = ok && p >= 0 && p < int64_t(rank) && !seen[size_t(p)];
      if (ok)
        seen[size_t(p)] = true;
    }
    if (!ok)
      return ctx.error("perm {} must be a permutation of 0..{} (all axes) for {} (at most 8 axes)",
                       attrToString(ctx.attrs().get("perm")), int64_t(rank) - 1,
                       ctx.describeInput(0));
    if (x.shape[0] == kBatchDim && perm[0] != 0)
      return ctx.error("perm ({}){} moves the batch axis of {}: the batch stays first (perm[0] = "
                       "0)",
                       fmt::join(perm, ", "),
                       ctx.attrs().ints("perm").empty() ? ", the default (axes reversed)," : "",
                       ctx.describeInput(0));
    TensorType out = x;
    for (size_t k = 0; k < rank; ++k)
      out.shape[k] = x.shape[size_t(perm[k])];
    return std::vector<TensorType>{out};
  };
  // fgc_permute's arguments: the input's shape, its rank and the permutation.
  auto args = [](LowerContext &ctx) {
    const auto in = ctx.inShape(0);
    Arg shape, perm;
    shape.kind = perm.kind = Arg::Kind::SizeList;
    for (size_t k = 0; k < in.size(); ++k)
      shape.sizes.push_back(ctx.dim(in, int(k)));
    for (int64_t p : permutationOf(ctx.attrs(), in.size()))
      perm.sizes.push_back(SymSize::constant(p));
    return std::vector<Arg>{shape, ctx.i64(int64_t(in.size())), perm};
  };
  d.lower = [args](LowerContext &ctx) -> Status {
    auto a = args(ctx);
    ctx.call(kernel("fgc_permute", {ctx.buf(ctx.input(0)), ctx.buf(ctx.output(0)), a[0], a[1],
                                    a[2]}));
    return Status::ok();
  };
  // The gradient is dy transposed by the inverse permutation.
  d.gradient = [args](LowerContext &ctx) -> Status {
    int dx = ctx.dIn(0);
    if (dx < 0)
      return Status::ok();
    auto a = args(ctx);
    ctx.call(kernel("fgc_permute_backward", {ctx.buf(ctx.dOut(0)), ctx.buf(dx), a[0], a[1], a[2],
                                             ctx.inFlags(0)}));
    return Status::ok();
  };
  d.flops = [](const Layer &, const OpDef::Shapes &, const OpDef::Shapes &) { return 0.0; };
  r.add(std::move(d));
}

// --- Gather -----------------------------------------------------------------------------------

void registerGather(OpRegistry &r) {
  OpDef d;
  d.className = "Gather";
  d.summary = "tf.gather(params, indices, axis, batch_dims) with int32 indices (batch_dims 0 "
              "with axis 0, or 1).";
  d.attrs = {intAttr("axis", 0), intAttr("batch_dims", 0)};
  d.minInputs = d.maxInputs = 2;
  d.inferTypes = [](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    const auto &p = ctx.input(0), &i = ctx.input(1);
    int64_t batchDims = ctx.attrs().i("batch_dims");
    int64_t axis = ctx.attrs().i("axis");
    if (axis < 0)
      axis += int64_t(p.rank());
    if (p.dtype != schema::FLOAT32)
      return ctx.error("params must be float32, got {}", ctx.describeInput(0));
    if (i.dtype != schema::INT32)
      return ctx.error("indices must be int32 (an Input with dtype \"int32\"), got {} {}",
                       dtypeName(i.dtype), ctx.describeInput(1));
    if (p.rank() == 0 || i.rank() == 0)
      return ctx.error("params and indices need at least one axis, got {} and {}",
                       ctx.describeInput(0), ctx.describeInput(1));
    if (batchDims != 0 && batchDims != 1)
      return ctx.error("batch_dims must be 0 or 1, got {}", batchDims);
    if (axis < batchDims || axis >= int64_t(p.rank()))
      return ctx.error("axis {} is out of range for params {} with batch_dims {}",
                       ctx.attrs().i("axis"), ctx.describeInput(0), batchDims);
    if (batchDims == 0 && axis != 0)
      return ctx.error("gathering along axis {} of params {} needs batch_dims=1 (indices per "
                       "sample); batch_dims=0 looks up along axis 0, with the batch in the "
                       "indices",
                       axis, ctx.describeInput(0));
    if (isDynamic(p.shape[size_t(axis)]))
      return ctx.error("axis {} of params {} must have a static size", axis,
                       ctx.describeInput(0));
    if (batchDims == 1 && (i.rank() < 1 || p.shape[0] != i.shape[0]))
      return ctx.error("batch_dims=1 needs params and indices with the same first axis, got {} "
                       "and {}",
                       ctx.describeInput(0), ctx.describeInput(1));
    TensorType out{schema::FLOAT32, {}};
    out.shape.assign(p.shape.begin(), p.shape.begin() + axis);
    out.shape.insert(out.shape.end(), i.shape.begin() + batchDims, i.shape.end());
    out.shape.insert(out.shape.end(), p.shape.begin() + axis + 1, p.shape.end());
    return std::vector<TensorType>{out};
  };
  // The kernels' view: params (batch, outer, n, inner), indices (batch, count).
  auto view = [](LowerContext &ctx) {
    const auto p = ctx.inShape(0), i = ctx.inShape(1);
    size_t b = size_t(ctx.attrs().i("batch_dims"));
    size_t axis = size_t(ctx.attrs().i("axis") < 0 ? ctx.attrs().i("axis") + int64_t(p.size())
                                                   : ctx.attrs().i("axis"));
    return std::vector<Arg>{ctx.size(SymSize::product(p, 0, b)),
                            ctx.size(SymSize::product(p, b, axis)), ctx.i64(p[axis]),
                            ctx.size(SymSize::product(p, axis + 1, p.size())),
                            ctx.size(SymSize::product(i, b, i.size()))};
  };
  d.lower = [view](LowerContext &ctx) -> Status {
    std::vector<Arg> call = {ctx.buf(ctx.input(0)), ctx.buf(ctx.input(1)),
                             ctx.buf(ctx.output(0))};
    for (Arg &a : view(ctx))
      call.push_back(a);
    ctx.call(kernel("fgc_gather_i32", call));
    return Status::ok();
  };
  // params' gradient: dy scatter-added into zeros at the gathered positions; indices have none.
  d.gradient = [view](LowerContext &ctx) -> Status {
    int dp = ctx.dIn(0);
    if (dp < 0)
      return Status::ok();
    std::vector<Arg> call = {ctx.buf(ctx.input(1)), ctx.buf(ctx.dOut(0)), ctx.buf(dp)};
    for (Arg &a : view(ctx))
      call.push_back(a);
    call.push_back(ctx.inFlags(0));
    ctx.call(kernel("fgc_gather_backward_i32", call));
    return Status::ok();
  };
  d.flops = [](const Layer &, const OpDef::Shapes &, const OpDef::Shapes &) { return 0.0; };
  r.add(std::move(d));
}

} // namespace

void registerTensorIndexingOps(OpRegistry &r) {
  registerTranspose(r);
  registerGather(r);
}

} // namespace fgc::ops
