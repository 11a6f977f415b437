// LeakyReLU (Keras 2's `alpha`, Keras 3's `negative_slope`, both 0.3 by default) and
// SpatialDropout2D (identity at inference; in training whole channels are dropped per sample,
// with Dropout's seeding).
#include "compiler/ops/OpHelpers.h"

namespace fgc::ops {

namespace {

// The slope for negative inputs: negative_slope when given (Keras 3), else alpha (Keras 2).
double leakySlope(const Attrs &a) {
  return a.isNone("negative_slope") ? a.f("alpha") : a.f("negative_slope");
}

void registerLeakyReLU(OpRegistry &r) {
  OpDef d;
  d.className = "LeakyReLU";
  d.summary = "x for x >= 0, negative_slope * x otherwise (Keras 2: alpha; default 0.3).";
  AttrSpec slope = floatAttr("negative_slope", 0.3);
  slope.nullable = true;
  slope.defaultValue = makeNone();
  d.attrs = {floatAttr("alpha", 0.3), slope};
  d.inferTypes = [](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    auto a = ctx.attrs();
    if (!a.isNone("negative_slope") && a.f("alpha") != 0.3 && a.f("alpha") != a.f("negative_slope"))
      return ctx.error("alpha ({}) and negative_slope ({}) disagree: give one of them", a.f("alpha"),
                       a.f("negative_slope"));
    if (!std::isfinite(leakySlope(a)))
      return ctx.error("negative_slope must be a finite number, got {}", leakySlope(a));
    return std::vector<TensorType>{ctx.input()};
  };
  d.lower = [](LowerContext &ctx) -> Status {
    ctx.call(kernel("fgc_leaky_relu", {ctx.buf(ctx.input(0)), ctx.buf(ctx.output(0)),
                                       ctx.size(ctx.buffer(ctx.input(0)).elements()),
                                       ctx.f32(leakySlope(ctx.attrs()))}));
    return Status::ok();
  };
  d.gradient = [](LowerContext &ctx) -> Status {
    int dx = ctx.dIn(0);
    if (dx < 0)
      return Status::ok();
    ctx.call(kernel("fgc_leaky_relu_backward",
                    {ctx.buf(ctx.input(0)), ctx.buf(ctx.dOut(0)), ctx.buf(dx),
                     ctx.size(ctx.buffer(ctx.input(0)).elements()),
                     ctx.f32(leakySlope(ctx.attrs())), ctx.flags()}));
    return Status::ok();
  };
  r.add(std::move(d));
}

void registerSpatialDropout2D(OpRegistry &r) {
  OpDef d;
  d.className = "SpatialDropout2D";
  d.summary = "Dropout of whole channels of (batch, height, width, channels) in training; "
              "identity at inference.";
  d.attrs = {floatAttr("rate", 0.0), stringAttr("data_format", "channels_last", {"channels_last"}),
             nullableInts("noise_shape"), nullableInt("seed")};
  d.attrs[0].required = true;
  d.inferTypes = [](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    FGC_TRY(expectRank(ctx, 0, 4, "(batch, height, width, channels)"));
    double rate = ctx.attrs().f("rate");
    if (rate < 0 || rate >= 1)
      return ctx.error("rate must be in [0, 1), got {}", rate);
    return std::vector<TensorType>{ctx.input()};
  };
  d.lower = lowerAsView;
  d.identityAtInference = true;
  d.lowerTrain = [](LowerContext &ctx) -> Status {
    const auto &in = ctx.inShape(0);
    int mask = ctx.newBuffer("mask", schema::FLOAT32, {in[0], in[3]});
    ctx.save("mask", mask);
    Arg rate = ctx.value("dropoutRate");
    rate.floatValue = ctx.attrs().f("rate");
    uint64_t seed = ctx.attrs().isNone("seed") ? ctx.layerHash() >> 1
                                               : uint64_t(ctx.attrs().i("seed"));
    ctx.call(kernel("fgc_spatial_dropout_forward",
                    {ctx.buf(ctx.input(0)), ctx.buf(ctx.output(0)), ctx.buf(mask),
                     ctx.size(ctx.dim(in, 0)), ctx.size(ctx.dim(in, 1) * ctx.dim(in, 2)),
                     ctx.size(ctx.dim(in, 3)), rate, ctx.i64(int64_t(seed)), ctx.value("step")}));
    return Status::ok();
  };
  d.gradient = [](LowerContext &ctx) -> Status {
    int dx = ctx.dIn(0);
    if (dx < 0)
      return Status::ok();
    const auto &in = ctx.inShape(0);
    ctx.call(kernel("fgc_spatial_dropout_backward",
                    {ctx.buf(ctx.saved("mask")), ctx.buf(ctx.dOut(0)), ctx.buf(dx),
                     ctx.size(ctx.dim(in, 0)), ctx.size(ctx.dim(in, 1) * ctx.dim(in, 2)),
                     ctx.size(ctx.dim(in, 3)), ctx.flags()}));
    return Status::ok();
  };
  r.add(std::move(d));
}

} // namespace

void registerAdvancedOps(OpRegistry &r) {
  registerLeakyReLU(r);
  registerSpatialDropout2D(r);
}

} // namespace fgc::ops
