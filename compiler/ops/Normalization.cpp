// BatchNormalization (channels on the last axis; moving statistics are non-trainable).
#include "compiler/ops/OpHelpers.h"

namespace fgc::ops {

void registerNormalizationOps(OpRegistry &r) {
  OpDef d;
  d.className = "BatchNormalization";
  d.pure = false; // training updates the moving averages per call
  d.summary = "Normalizes with batch statistics in training, moving averages at inference.";
  d.attrs = {intAttr("axis", -1),
             floatAttr("momentum", 0.99),
             floatAttr("epsilon", 1e-3),
             boolAttr("center", true),
             boolAttr("scale", true),
             objectAttr("beta_initializer", "Zeros"),
             objectAttr("gamma_initializer", "Ones"),
             objectAttr("moving_mean_initializer", "Zeros"),
             objectAttr("moving_variance_initializer", "Ones")};
  for (const char *n : {"beta_regularizer", "gamma_regularizer", "beta_constraint",
                        "gamma_constraint"})
    d.attrs.push_back(objectAttr(n, ""));
  d.inferTypes = [](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    int64_t rank = static_cast<int64_t>(ctx.input().rank());
    int64_t axis = ctx.attrs().i("axis");
    if (axis != -1 && axis != rank - 1)
      return ctx.error("only axis=-1 (channels last) is supported, got axis={} for input {}", axis,
                       ctx.describeInput(0));
    FGC_TRY(expectStaticLastDim(ctx, 0));
    if (ctx.attrs().f("epsilon") <= 0)
      return ctx.error("epsilon must be positive, got {}", ctx.attrs().f("epsilon"));
    return std::vector<TensorType>{ctx.input()};
  };
  d.lower = [](LowerContext &ctx) -> Status {
    const auto &in = ctx.inShape(0);
    int gamma = ctx.param("gamma"), beta = ctx.param("beta");
    KernelCall c = kernel(
        "fgc_batch_norm",
        {ctx.buf(ctx.input(0)), ctx.buf(ctx.output(0)),
         ctx.size(SymSize::product(in, 0, in.size() - 1)), ctx.size(ctx.dim(in, -1)),
         gamma >= 0 ? ctx.buf(gamma) : ctx.null(), beta >= 0 ? ctx.buf(beta) : ctx.null(),
         ctx.buf(ctx.param("moving_mean")), ctx.buf(ctx.param("moving_variance")),
         ctx.f32(ctx.attrs().f("epsilon"))});
    c.inPlaceOutput = 1; // fgc_batch_norm may run in place
    ctx.call(c);
    return Status::ok();
  };
  // fgc_batch_norm(x, y, rows, channels, gamma, beta, mean, variance, epsilon).
  d.channelAffine = [](const KernelCall &k, ChannelAffineForm &f) {
    if (k.args[0].kind != Arg::Kind::Buffer || k.args[1].kind != Arg::Kind::Buffer)
      return false;
    f.input = k.args[0].buffer;
    f.output = k.args[1].buffer;
    f.foldArgs.assign(k.args.begin() + 4, k.args.end());
    return true;
  };
  d.lowerTrain = [](LowerContext &ctx) -> Status {
    const auto &in = ctx.inShape(0);
    std::vector<Dim> channels = {in.back()};
    int mean = ctx.newBuffer("mean", schema::FLOAT32, channels);
    int invstd = ctx.newBuffer("invstd", schema::FLOAT32, channels);
    ctx.save("mean", mean);
    ctx.save("invstd", invstd);
    int gamma = ctx.param("gamma"), beta = ctx.param("beta");
    Arg update;
    update.kind = Arg::Kind::Int;
    update.intValue = 1;
    ctx.call(kernel("fgc_batch_norm_train_forward",
                    {ctx.buf(ctx.input(0)), ctx.buf(ctx.output(0)),
                     ctx.size(SymSize::product(in, 0, in.size() - 1)), ctx.size(ctx.dim(in, -1)),
                     gamma >= 0 ? ctx.buf(gamma) : ctx.null(),
                     beta >= 0 ? ctx.buf(beta) : ctx.null(), ctx.buf(ctx.param("moving_mean")),
                     ctx.buf(ctx.param("moving_variance")), ctx.f32(ctx.attrs().f("momentum")),
                     ctx.f32(ctx.attrs().f("epsilon")), ctx.buf(mean), ctx.buf(invstd), update}));
    return Status::ok();
  };
  d.gradient = [](LowerContext &ctx) -> Status {
    const auto &in = ctx.inShape(0);
    int dx = ctx.dIn(0), dg = ctx.dParam("gamma"), db = ctx.dParam("beta");
    int gamma = ctx.param("gamma");
    auto opt = [&ctx](int id) { return id >= 0 ? ctx.buf(id) : ctx.null(); };
    ctx.call(kernel("fgc_batch_norm_backward",
                    {ctx.buf(ctx.input(0)), ctx.buf(ctx.dOut(0)), opt(gamma),
                     ctx.buf(ctx.saved("mean")), ctx.buf(ctx.saved("invstd")), opt(dx), opt(dg),
                     opt(db), ctx.size(SymSize::product(in, 0, in.size() - 1)),
                     ctx.size(ctx.dim(in, -1)), ctx.flags()}));
    return Status::ok();
  };
  d.params = [](const OpContext &ctx) {
    auto a = ctx.attrs();
    Dim c = ctx.input().shape.back();
    std::vector<ParamSpec> ps;
    if (a.b("scale"))
      ps.push_back({"gamma", {c}, a.get("gamma_initializer")});
    if (a.b("center"))
      ps.push_back({"beta", {c}, a.get("beta_initializer")});
    ps.push_back({"moving_mean", {c}, a.get("moving_mean_initializer"), false});
    ps.push_back({"moving_variance", {c}, a.get("moving_variance_initializer"), false});
    return ps;
  };
  r.add(std::move(d));
}

} // namespace fgc::ops
