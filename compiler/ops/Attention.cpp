// Keras's Attention layer (dot-product attention): inputs [query, value] or [query, value,
// key] of shapes (batch, Tq, dim), (batch, Tv, value_dim), (batch, Tv, dim); output (batch,
// Tq, value_dim) = softmax(scores) value.
//
// score_mode "dot": scores = query key^T (times `scale` when use_scale); "concat": scores =
// concat_score_weight * sum(tanh(scale * (query + key)), axis=-1). Weights, as Keras's build():
// `scale` (shape (), ones) when use_scale, `concat_score_weight` (shape (), ones) when
// score_mode is "concat". Causal masking: Keras 2's `causal` config key, or `use_causal_mask`
// (Keras's call argument, kept in the config). dropout only acts in training, which fgc does
// not support for it: a non-zero dropout trains as if it were 0 is refused; inference ignores it
// as Keras does. Masks (mask=[query_mask, value_mask]) and return_attention_scores are not
// supported.
#include "compiler/ops/OpHelpers.h"

namespace fgc::ops {

namespace {

Arg attentionParams(LowerContext &ctx) {
  auto a = ctx.attrs();
  const auto &q = ctx.inShape(0), &v = ctx.inShape(1);
  Arg p;
  p.kind = Arg::Kind::Struct;
  p.structType = "fgc_attention_params";
  Arg concat, causal;
  concat.kind = causal.kind = Arg::Kind::Int;
  concat.intValue = a.s("score_mode") == "concat" ? 1 : 0;
  causal.intValue = a.b("causal") || a.b("use_causal_mask") ? 1 : 0;
  p.fields = {ctx.size(ctx.dim(q, 0)), ctx.size(ctx.dim(q, 1)), ctx.size(ctx.dim(v, 1)),
              ctx.size(ctx.dim(q, 2)), ctx.size(ctx.dim(v, 2)), concat, causal};
  return p;
}

} // namespace

void registerAttentionOps(OpRegistry &r) {
  OpDef d;
  d.className = "Attention";
  d.summary = "Dot-product attention over [query, value] or [query, value, key].";
  d.attrs = {boolAttr("use_scale", false), stringAttr("score_mode", "dot", {"dot", "concat"}),
             floatAttr("dropout", 0.0),     boolAttr("causal", false),
             boolAttr("use_causal_mask", false), nullableInt("seed")};
  d.minInputs = 2;
  d.maxInputs = 3;
  d.inferTypes = [](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    for (size_t i = 0; i < ctx.inputs.size(); ++i)
      FGC_TRY(expectRank(ctx, i, 3, "(batch, steps, dim)"));
    for (size_t i = 0; i < ctx.inputs.size(); ++i)
      FGC_TRY(expectStaticLastDim(ctx, i));
    const auto &q = ctx.inputs[0].shape, &v = ctx.inputs[1].shape;
    const auto &k = ctx.inputs.size() == 3 ? ctx.inputs[2].shape : v;
    if (k.back() != q.back())
      return ctx.error("query {} and key {} must have the same last dimension",
                       ctx.describeInput(0), ctx.describeInput(ctx.inputs.size() == 3 ? 2 : 1));
    if (ctx.inputs.size() == 3 && !isDynamic(k[1]) && !isDynamic(v[1]) && k[1] != v[1])
      return ctx.error("value {} and key {} must have the same number of steps",
                       ctx.describeInput(1), ctx.describeInput(2));
    double dropout = ctx.attrs().f("dropout");
    if (dropout < 0 || dropout >= 1)
      return ctx.error("dropout must be in [0, 1), got {}", dropout);
    TensorType out = ctx.inputs[0];
    out.shape.back() = v.back();
    return std::vector<TensorType>{out};
  };
  d.params = [](const OpContext &ctx) {
    std::vector<ParamSpec> ps;
    if (ctx.attrs().b("use_scale"))
      ps.push_back({"scale", {}, makeObject("Ones")});
    if (ctx.attrs().s("score_mode") == "concat")
      ps.push_back({"concat_score_weight", {}, makeObject("Ones")});
    return ps;
  };
  d.lower = [](LowerContext &ctx) -> Status {
    const auto &q = ctx.inShape(0), &v = ctx.inShape(1);
    int scores = ctx.newBuffer("scores", schema::FLOAT32, {q[0], q[1], v[1]});
    if (ctx.training())
      ctx.save("scores", scores);
    int scale = ctx.param("scale"), csw = ctx.param("concat_score_weight");
    auto opt = [&ctx](int id) { return id >= 0 ? ctx.buf(id) : ctx.null(); };
    ctx.call(kernel("fgc_attention",
                    {attentionParams(ctx), ctx.buf(ctx.input(0)), ctx.buf(ctx.input(1)),
                     ctx.numInputs() == 3 ? ctx.buf(ctx.input(2)) : ctx.null(), opt(scale),
                     opt(csw), ctx.buf(ctx.output(0)), ctx.buf(scores)}));
    return Status::ok();
  };
  d.gradient = [](LowerContext &ctx) -> Status {
    if (ctx.attrs().f("dropout") > 0)
      return ctx.error("training with dropout {} is not supported (only dropout 0)",
                       ctx.attrs().f("dropout"));
    bool hasKey = ctx.numInputs() == 3;
    int dq = ctx.dIn(0), dv = ctx.dIn(1), dk = hasKey ? ctx.dIn(2) : -1;
    int64_t accQ = ctx.inFlag(0), accV = ctx.inFlag(1), accK = hasKey ? ctx.inFlag(2) : 0;
    // One ACCUMULATE_INPUT bit serves all three: fresh buffers are zeroed when it is set.
    bool acc = (dq >= 0 && accQ) || (dv >= 0 && accV) || (dk >= 0 && accK);
    // Without a key, the key gradient lands in dvalue; it needs dvalue even when the value's
    // gradient is otherwise unwanted... which cannot happen: value is key.
    if (acc)
      for (auto [id, f] : {std::pair{dq, accQ}, std::pair{dv, accV}, std::pair{dk, accK}})
        if (id >= 0 && !f)
          ctx.call(kernel("fgc_fill",
                          {ctx.buf(id), ctx.f32(0.0), ctx.size(ctx.buffer(id).elements())}));
    int dscale = ctx.dParam("scale"), dcsw = ctx.dParam("concat_score_weight");
    int scale = ctx.param("scale"), csw = ctx.param("concat_score_weight");
    auto opt = [&ctx](int id) { return id >= 0 ? ctx.buf(id) : ctx.null(); };
    KernelCall c = kernel(
        "fgc_attention_backward",
        {attentionParams(ctx), ctx.buf(ctx.input(0)), ctx.buf(ctx.input(1)),
         hasKey ? ctx.buf(ctx.input(2)) : ctx.null(), opt(scale), opt(csw),
         ctx.buf(ctx.saved("scores")), ctx.buf(ctx.dOut(0)), opt(dq), opt(dv), opt(dk),
         opt(dscale), opt(dcsw), scratchArg(), ctx.i64((acc ? 1 : 0) | ctx.paramFlag())});
    c.scratchFunction = "fgc_attention_backward_scratch_size";
    ctx.call(c);
    return Status::ok();
  };
  r.add(std::move(d));
}

} // namespace fgc::ops
