// Sequence layers: Embedding and LSTM (Keras gate order i, f, c, o).
#include "compiler/ops/OpHelpers.h"

namespace fgc::ops {

static void registerEmbedding(OpRegistry &r) {
  OpDef d;
  d.className = "Embedding";
  d.summary = "Looks up rows of an (input_dim, output_dim) table by integer index.";
  d.attrs = {requiredInt("input_dim"),
             requiredInt("output_dim"),
             objectAttr("embeddings_initializer", "RandomUniform"),
             objectAttr("embeddings_regularizer", ""),
             objectAttr("activity_regularizer", ""),
             objectAttr("embeddings_constraint", ""),
             boolAttr("mask_zero", false),
             nullableInt("input_length")};
  d.inferTypes = [](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    auto a = ctx.attrs();
    if (a.i("input_dim") <= 0 || a.i("output_dim") <= 0)
      return ctx.error("input_dim and output_dim must be positive, got {} and {}", a.i("input_dim"),
                       a.i("output_dim"));
    if (ctx.input().dtype == schema::BOOL)
      return ctx.error("expects integer indices, got a bool input {}", ctx.describeInput(0));
    TensorType out = ctx.input();
    out.dtype = schema::FLOAT32;
    out.shape.push_back(a.i("output_dim"));
    return std::vector<TensorType>{out};
  };
  d.lower = [](LowerContext &ctx) -> Status {
    const Buffer &in = ctx.buffer(ctx.input(0));
    SymSize count = in.elements();
    int indices = ctx.input(0);
    if (in.dtype == schema::FLOAT32 && !in.indexInput) {
      // Keras casts float indices to integers first.
      indices = ctx.training() ? ctx.newBuffer("indices", schema::INT32, in.shape)
                               : ctx.indexBuffer(count, in.shape);
      if (ctx.training())
        ctx.save("indices", indices);
      ctx.call(kernel("fgc_cast_f32_to_i32",
                      {ctx.buf(ctx.input(0)), ctx.buf(indices), ctx.size(count)}));
    }
    bool wide = ctx.buffer(indices).dtype == schema::INT64;
    ctx.call(kernel(wide ? "fgc_embedding_i64" : "fgc_embedding_i32",
                    {ctx.buf(indices), ctx.size(count), ctx.buf(ctx.param("embeddings")),
                     ctx.i64(ctx.attrs().i("input_dim")), ctx.i64(ctx.attrs().i("output_dim")),
                     ctx.buf(ctx.output(0))}));
    return Status::ok();
  };
  d.gradient = [](LowerContext &ctx) -> Status {
    int dt = ctx.dParam("embeddings");
    if (dt < 0)
      return Status::ok();
    int indices = ctx.saved("indices") >= 0 ? ctx.saved("indices") : ctx.input(0);
    bool wide = ctx.buffer(indices).dtype == schema::INT64;
    ctx.call(kernel(wide ? "fgc_embedding_backward_i64" : "fgc_embedding_backward_i32",
                    {ctx.buf(indices), ctx.size(ctx.buffer(ctx.input(0)).elements()),
                     ctx.buf(ctx.dOut(0)), ctx.i64(ctx.attrs().i("input_dim")),
                     ctx.i64(ctx.attrs().i("output_dim")), ctx.buf(dt), ctx.paramFlags()}));
    return Status::ok();
  };
  d.params = [](const OpContext &ctx) {
    auto a = ctx.attrs();
    return std::vector<ParamSpec>{{"embeddings",
                                   {a.i("input_dim"), a.i("output_dim")},
                                   a.get("embeddings_initializer")}};
  };
  r.add(std::move(d));
}

static void registerLSTM(OpRegistry &r) {
  OpDef d;
  d.className = "LSTM";
  // Per step: the four gates' GEMMs on [x, h], then about ten elementwise operations per unit.
  d.flops = [](const Layer &l, const OpDef::Shapes &in, const OpDef::Shapes &) {
    double units = double(l.attrs().i("units"));
    double steps = double(in[0][0]), features = double(in[0][1]);
    return steps * (2.0 * 4 * units * (features + units) + 10 * units);
  };
  d.summary = "Long short-term memory over (batch, steps, features); optional initial [h, c].";
  d.attrs = {requiredInt("units"),
             stringAttr("activation", "tanh", activationNames()),
             stringAttr("recurrent_activation", "sigmoid", activationNames()),
             boolAttr("use_bias", true),
             objectAttr("kernel_initializer", "GlorotUniform"),
             objectAttr("recurrent_initializer", "Orthogonal"),
             objectAttr("bias_initializer", "Zeros"),
             boolAttr("unit_forget_bias", true),
             floatAttr("dropout", 0.0),
             floatAttr("recurrent_dropout", 0.0),
             boolAttr("return_sequences", false),
             boolAttr("return_state", false),
             boolAttr("go_backwards", false),
             boolAttr("stateful", false),
             boolAttr("time_major", false),
             boolAttr("unroll", false),
             intAttr("implementation", 2)};
  for (const char *n : {"kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
                        "activity_regularizer", "kernel_constraint", "recurrent_constraint",
                        "bias_constraint"})
    d.attrs.push_back(objectAttr(n, ""));
  d.minInputs = 1;
  d.maxInputs = 3;
  d.lower = [](LowerContext &ctx) -> Status {
    auto a = ctx.attrs();
    if (a.b("go_backwards"))
      return ctx.error("go_backwards is not supported by the runtime yet");
    auto act = ctx.activation(a.s("activation"));
    if (!act)
      return act.error();
    auto rec = ctx.activation(a.s("recurrent_activation"));
    if (!rec)
      return rec.error();
    const auto &in = ctx.inShape(0);
    Arg p;
    p.kind = Arg::Kind::Struct;
    p.structType = "fgc_lstm_params";
    Arg returnSequences;
    returnSequences.kind = Arg::Kind::Int;
    returnSequences.intValue = a.b("return_sequences") ? 1 : 0;
    p.fields = {ctx.size(ctx.dim(in, 0)), ctx.size(ctx.dim(in, 1)), ctx.size(ctx.dim(in, 2)),
                ctx.i64(a.i("units")), *act, *rec, returnSequences};
    int bias = ctx.param("bias");
    bool states = ctx.numInputs() == 3;
    bool returnState = ctx.numOutputs() == 3;
    Arg scratch;
    scratch.kind = Arg::Kind::Scratch;
    KernelCall c = kernel(
        "fgc_lstm",
        {p, ctx.buf(ctx.input(0)), ctx.buf(ctx.param("kernel")),
         ctx.buf(ctx.param("recurrent_kernel")), bias >= 0 ? ctx.buf(bias) : ctx.null(),
         states ? ctx.buf(ctx.input(1)) : ctx.null(), states ? ctx.buf(ctx.input(2)) : ctx.null(),
         ctx.buf(ctx.output(0)), returnState ? ctx.buf(ctx.output(1)) : ctx.null(),
         returnState ? ctx.buf(ctx.output(2)) : ctx.null(), scratch});
    c.scratchFunction = "fgc_lstm_scratch_size";
    ctx.call(c);
    return Status::ok();
  };
  d.lowerTrain = [](LowerContext &ctx) -> Status {
    FGC_TRY(ctx.op().layer->def->lower(ctx));
    // The same call, to the training forward that keeps every step's gates for the backward.
    std::vector<KernelCall> calls = ctx.takeCalls();
    KernelCall c = calls.back();
    int ws = ctx.workspace("workspace", "fgc_lstm_workspace_size", c.args[0]);
    ctx.save("workspace", ws);
    c.function = "fgc_lstm_forward_train";
    c.args.back() = ctx.buf(ws);
    c.scratchFunction.clear();
    ctx.call(c);
    return Status::ok();
  };
  d.gradient = [](LowerContext &ctx) -> Status {
    FGC_TRY(ctx.op().layer->def->lower(ctx)); // rebuilds the parameter struct
    Arg p = ctx.takeCalls().back().args[0];
    bool states = ctx.numInputs() == 3;
    bool returnState = ctx.numOutputs() == 3;
    int dx = ctx.dIn(0);
    int dh0 = states ? ctx.dIn(1) : -1, dc0 = states ? ctx.dIn(2) : -1;
    int dk = ctx.dParam("kernel"), dr = ctx.dParam("recurrent_kernel"), db = ctx.dParam("bias");
    auto opt = [&ctx](int id) { return id >= 0 ? ctx.buf(id) : ctx.null(); };
    int dOut = ctx.dOut(0), dh = returnState ? ctx.dOut(1) : -1, dc = returnState ? ctx.dOut(2) : -1;
    KernelCall c = kernel(
        "fgc_lstm_backward",
        {p, ctx.buf(ctx.input(0)), ctx.buf(ctx.param("kernel")),
         ctx.buf(ctx.param("recurrent_kernel")), states ? ctx.buf(ctx.input(1)) : ctx.null(),
         states ? ctx.buf(ctx.input(2)) : ctx.null(), ctx.buf(ctx.saved("workspace")), opt(dOut),
         opt(dh), opt(dc), opt(dx), opt(dk), opt(dr), opt(db), opt(dh0), opt(dc0), scratchArg(),
         ctx.flags()});
    c.scratchFunction = "fgc_lstm_backward_scratch_size";
    ctx.call(c);
    return Status::ok();
  };
  d.inferTypes = [](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    auto a = ctx.attrs();
    FGC_TRY(expectRank(ctx, 0, 3, "(batch, steps, features)"));
    FGC_TRY(expectStaticLastDim(ctx, 0));
    int64_t units = a.i("units");
    if (units <= 0 || units > kMaxUnits)
      return ctx.error("units must be between 1 and {}, got {}", kMaxUnits, units);
    if (a.b("stateful") || a.b("time_major"))
      return ctx.error("stateful and time_major LSTMs are not supported");
    if (ctx.inputs.size() == 2)
      return ctx.error("initial state must be [h, c] (2 tensors), got 1");
    Dim batch = ctx.input().shape[0];
    for (size_t i = 1; i < ctx.inputs.size(); ++i) {
      const auto &s = ctx.inputs[i].shape;
      if (s.size() != 2 || s[1] != units)
        return ctx.error("initial state {} must have shape (batch, {}), got {}", i - 1, units,
                         ctx.describeInput(i));
    }
    TensorType state{schema::FLOAT32, {batch, units}};
    TensorType main = state;
    if (a.b("return_sequences"))
      main.shape = {batch, ctx.input().shape[1], units};
    std::vector<TensorType> outs = {main};
    if (a.b("return_state")) {
      outs.push_back(state);
      outs.push_back(state);
    }
    return outs;
  };
  d.params = [](const OpContext &ctx) {
    auto a = ctx.attrs();
    int64_t u = a.i("units");
    std::vector<ParamSpec> ps = {
        {"kernel", {ctx.input().shape[2], 4 * u}, a.get("kernel_initializer")},
        {"recurrent_kernel", {u, 4 * u}, a.get("recurrent_initializer")}};
    if (a.b("use_bias")) {
      // unit_forget_bias: Keras initializes the f block to ones, the rest with bias_initializer.
      AttrValue init = a.get("bias_initializer");
      if (a.b("unit_forget_bias"))
        init = makeObject("LSTMBias", {{"units", makeInt(u)}, {"base", init}});
      ps.push_back({"bias", {4 * u}, init});
    }
    return ps;
  };
  r.add(std::move(d));
}

void registerRecurrentOps(OpRegistry &r) {
  registerEmbedding(r);
  registerLSTM(r);
}

} // namespace fgc::ops
