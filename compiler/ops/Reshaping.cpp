// Layers that move data without arithmetic: ZeroPadding2D, Cropping2D (both on the runtime's
// signed-padding kernel fgc_pad2d) and Permute.
//
// ZeroPadding2D's `padding` and Cropping2D's `cropping` take Keras's three forms: an int (all
// four sides), a pair (symmetric height, symmetric width), or a pair of pairs ((top, bottom),
// (left, right)), which the schema holds flattened as (top, bottom, left, right).
#include "compiler/ops/OpHelpers.h"

#include <array>

namespace fgc::ops {

namespace {

// (top, bottom, left, right) from the attribute `key` in any of Keras's forms.
Expected<std::array<int64_t, 4>> sides(const OpContext &ctx, const std::string &key) {
  auto a = ctx.attrs();
  auto v = a.ints(key);
  std::array<int64_t, 4> s{};
  if (v.size() == 1)
    s = {v[0], v[0], v[0], v[0]};
  else if (v.size() == 2)
    s = {v[0], v[0], v[1], v[1]};
  else if (v.size() == 4)
    s = {v[0], v[1], v[2], v[3]};
  else
    return ctx.error("{} must be an int, a pair (height, width) or a pair of pairs ((top, bottom), "
                     "(left, right)) written flat as 4 values, got {}",
                     key, attrToString(a.get(key)));
  for (int64_t x : s)
    if (x < 0 || x > kMaxWindow)
      return ctx.error("{} must be between 0 and {}, got {}", key, kMaxWindow,
                       attrToString(a.get(key)));
  return s;
}

// Signed pads of the layer: padding as is, cropping negated.
std::array<int64_t, 4> signedPads(const Attrs &a, bool crop) {
  auto v = a.ints(crop ? "cropping" : "padding");
  std::array<int64_t, 4> s = v.size() == 1   ? std::array<int64_t, 4>{v[0], v[0], v[0], v[0]}
                             : v.size() == 2 ? std::array<int64_t, 4>{v[0], v[0], v[1], v[1]}
                                             : std::array<int64_t, 4>{v[0], v[1], v[2], v[3]};
  if (crop)
    for (auto &x : s)
      x = -x;
  return s;
}

std::vector<Arg> padArgs(LowerContext &ctx, int from, int to, bool crop) {
  const auto &in = ctx.inShape(0);
  auto s = signedPads(ctx.attrs(), crop);
  return {ctx.buf(from),          ctx.buf(to),           ctx.size(ctx.dim(in, 0)),
          ctx.size(ctx.dim(in, 1)), ctx.size(ctx.dim(in, 2)), ctx.size(ctx.dim(in, 3)),
          ctx.i64(s[0]),          ctx.i64(s[1]),         ctx.i64(s[2]),
          ctx.i64(s[3])};
}

void registerPadCrop(OpRegistry &r, bool crop) {
  OpDef d;
  const std::string key = crop ? "cropping" : "padding";
  d.className = crop ? "Cropping2D" : "ZeroPadding2D";
  d.summary = crop ? "Removes rows and columns at the edges of (batch, height, width, channels)."
                   : "Adds rows and columns of zeros around (batch, height, width, channels).";
  d.attrs = {intsAttr(key, crop ? std::vector<int64_t>{0, 0} : std::vector<int64_t>{1, 1}),
             stringAttr("data_format", "channels_last", {"channels_last"})};
  d.inferTypes = [crop, key](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    FGC_TRY(expectRank(ctx, 0, 4, "(batch, height, width, channels)"));
    auto s = sides(ctx, key);
    if (!s)
      return s.error();
    TensorType out = ctx.input();
    for (int axis = 0; axis < 2; ++axis) {
      Dim &dim = out.shape[1 + axis];
      if (isDynamic(dim))
        continue;
      int64_t change = (*s)[2 * axis] + (*s)[2 * axis + 1];
      dim = crop ? dim - change : dim + change;
      if (dim <= 0)
        return ctx.error("cropping {} leaves nothing of input {}",
                         attrToString(ctx.attrs().get(key)), ctx.describeInput(0));
    }
    return std::vector<TensorType>{out};
  };
  d.lower = [crop](LowerContext &ctx) -> Status {
    ctx.call(kernel("fgc_pad2d", padArgs(ctx, ctx.input(0), ctx.output(0), crop)));
    return Status::ok();
  };
  d.gradient = [crop](LowerContext &ctx) -> Status {
    int dx = ctx.dIn(0);
    if (dx < 0)
      return Status::ok();
    auto args = padArgs(ctx, ctx.dOut(0), dx, crop);
    args.push_back(ctx.flags());
    ctx.call(kernel("fgc_pad2d_backward", args));
    return Status::ok();
  };
  r.add(std::move(d));
}

// The runtime's 0-based permutation of the whole tensor: the batch axis stays first.
Arg permutation(LowerContext &ctx) {
  Arg perm;
  perm.kind = Arg::Kind::SizeList;
  perm.sizes.push_back(SymSize::constant(0));
  for (int64_t d : ctx.attrs().ints("dims"))
    perm.sizes.push_back(SymSize::constant(d));
  return perm;
}

Arg shapeList(LowerContext &ctx) {
  const auto &in = ctx.inShape(0);
  Arg shape;
  shape.kind = Arg::Kind::SizeList;
  for (size_t k = 0; k < in.size(); ++k)
    shape.sizes.push_back(ctx.dim(in, int(k)));
  return shape;
}

void registerPermute(OpRegistry &r) {
  OpDef d;
  d.className = "Permute";
  d.summary = "Permutes the non-batch axes; dims are 1-based, as in Keras.";
  d.attrs = {requiredInts("dims")};
  d.inferTypes = [](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    auto dims = ctx.attrs().ints("dims");
    size_t rank = ctx.input().rank();
    std::vector<bool> seen(rank, false);
    bool ok = dims.size() + 1 == rank && rank <= 8;
    for (int64_t d : dims) {
      ok = ok && d >= 1 && d < int64_t(rank) && !seen[size_t(d)];
      if (ok)
        seen[size_t(d)] = true;
    }
    if (!ok)
      return ctx.error("dims {} must be a permutation of 1..{} for input {} (at most 7 axes)",
                       attrToString(ctx.attrs().get("dims")), int64_t(rank) - 1,
                       ctx.describeInput(0));
    TensorType out = ctx.input();
    for (size_t i = 0; i < dims.size(); ++i)
      out.shape[i + 1] = ctx.input().shape[size_t(dims[i])];
    return std::vector<TensorType>{out};
  };
  d.lower = [](LowerContext &ctx) -> Status {
    ctx.call(kernel("fgc_permute", {ctx.buf(ctx.input(0)), ctx.buf(ctx.output(0)), shapeList(ctx),
                                    ctx.i64(int64_t(ctx.inShape(0).size())), permutation(ctx)}));
    return Status::ok();
  };
  d.gradient = [](LowerContext &ctx) -> Status {
    int dx = ctx.dIn(0);
    if (dx < 0)
      return Status::ok();
    ctx.call(kernel("fgc_permute_backward",
                    {ctx.buf(ctx.dOut(0)), ctx.buf(dx), shapeList(ctx),
                     ctx.i64(int64_t(ctx.inShape(0).size())), permutation(ctx), ctx.flags()}));
    return Status::ok();
  };
  r.add(std::move(d));
}

} // namespace

void registerReshapingOps(OpRegistry &r) {
  registerPadCrop(r, false);
  registerPadCrop(r, true);
  registerPermute(r);
}

} // namespace fgc::ops
