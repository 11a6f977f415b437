// Sequence layers: Embedding, LSTM (Keras gate order i, f, c, o) and GRU (z, r, h). What LSTM
// and GRU share with Bidirectional is in Recurrent.h.
#include "compiler/ops/Recurrent.h"

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
    const Buffer in = ctx.buffer(ctx.input(0)); // a copy: newBuffer below may move the list
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

// Lowering of an LSTM or GRU layer call: inputs [x] or [x, initial states...], outputs [y] or
// [y, final states...]. go_backwards reads the sequence reversed (a reversed copy of x), and
// returns the outputs in that order, as Keras does.
static Status lowerRecurrentLayer(LowerContext &ctx, const RecurrentKind &k) {
  auto a = ctx.attrs();
  RecurrentBuffers b;
  b.input = ctx.input(0);
  if (a.b("go_backwards")) {
    b.input = emitReverse(ctx, ctx.input(0), "reversed");
    if (ctx.training())
      ctx.save("reversed", b.input);
  }
  b.kernel = ctx.param("kernel");
  b.recurrentKernel = ctx.param("recurrent_kernel");
  b.bias = ctx.param("bias");
  for (size_t i = 1; i < ctx.numInputs(); ++i)
    b.initialStates.push_back(ctx.input(i));
  b.output = ctx.output(0);
  for (size_t i = 1; i < ctx.numOutputs(); ++i)
    b.finalStates.push_back(ctx.output(i));
  return emitRecurrentForward(ctx, k, a, b, "workspace");
}

// Makes one ACCUMULATE_INPUT bit serve several input gradients (the kernels take one): when
// some must accumulate, the fresh ones are zeroed first. Returns the bit.
static bool unifyInputFlags(LowerContext &ctx, const std::vector<std::pair<int, bool>> &grads) {
  bool any = false;
  for (const auto &[id, acc] : grads)
    any |= id >= 0 && acc;
  if (any)
    for (const auto &[id, acc] : grads)
      if (id >= 0 && !acc)
        ctx.call(kernel("fgc_fill", {ctx.buf(id), ctx.f32(0.0),
                                     ctx.size(ctx.buffer(id).elements())}));
  return any;
}

static Status recurrentLayerGradient(LowerContext &ctx, const RecurrentKind &k) {
  auto a = ctx.attrs();
  FGC_TRY(checkTrainable(ctx, a));
  bool reversed = a.b("go_backwards");
  RecurrentBuffers b;
  b.input = reversed ? ctx.saved("reversed") : ctx.input(0);
  b.kernel = ctx.param("kernel");
  b.recurrentKernel = ctx.param("recurrent_kernel");
  b.bias = ctx.param("bias");
  for (size_t i = 1; i < ctx.numInputs(); ++i)
    b.initialStates.push_back(ctx.input(i));
  b.output = ctx.output(0);
  for (size_t i = 1; i < ctx.numOutputs(); ++i)
    b.finalStates.push_back(ctx.output(i));

  RecurrentGrads g;
  g.dOutput = ctx.dOut(0);
  for (size_t i = 1; i < ctx.numOutputs(); ++i)
    g.dFinalStates.push_back(ctx.dOut(i));
  g.dKernel = ctx.dParam("kernel");
  g.dRecurrentKernel = ctx.dParam("recurrent_kernel");
  g.dBias = ctx.dParam("bias");
  int dx = ctx.dIn(0);
  std::vector<std::pair<int, bool>> inputGrads;
  if (reversed && dx >= 0) {
    g.dInput = ctx.newBuffer("d_reversed", schema::FLOAT32, ctx.buffer(b.input).shape);
    inputGrads.push_back({g.dInput, false});
  } else {
    g.dInput = dx;
    inputGrads.push_back({dx, ctx.inFlag(0) != 0});
  }
  for (size_t i = 1; i < ctx.numInputs(); ++i) {
    g.dInitialStates.push_back(ctx.dIn(i));
    inputGrads.push_back({g.dInitialStates.back(), ctx.inFlag(i) != 0});
  }
  g.accumulateInput = unifyInputFlags(ctx, inputGrads);
  FGC_TRY(emitRecurrentBackward(ctx, k, a, b, "workspace", g));
  if (reversed && dx >= 0) {
    const auto &in = ctx.inShape(0);
    ctx.call(kernel("fgc_reverse_sequence_backward",
                    {ctx.buf(g.dInput), ctx.buf(dx), ctx.size(ctx.dim(in, 0)),
                     ctx.size(ctx.dim(in, 1)), ctx.size(ctx.dim(in, 2)), ctx.inFlags(0)}));
  }
  return Status::ok();
}

// The registry entry of LSTM or GRU.
static OpDef recurrentLayer(const RecurrentKind &k, const std::string &summary) {
  OpDef d;
  d.className = k.className;
  d.summary = summary;
  d.attrs = recurrentAttrs(k);
  // Per step: the gates' GEMMs on [x, h], then about ten elementwise operations per unit.
  d.flops = [&k](const Layer &l, const OpDef::Shapes &in, const OpDef::Shapes &) {
    double units = double(l.attrs().i("units"));
    double steps = double(in[0][0]), features = double(in[0][1]);
    return steps * (2.0 * k.gates * units * (features + units) + 10 * units);
  };
  d.minInputs = 1;
  d.maxInputs = 1 + k.numStates;
  d.inferTypes = [&k](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    auto a = ctx.attrs();
    FGC_TRY(checkRecurrent(ctx, k, a, ctx.inputs));
    return recurrentOutputs(k, a, ctx.input());
  };
  d.params = [&k](const OpContext &ctx) {
    return recurrentParams(k, ctx.attrs(), ctx.input().shape[2]);
  };
  d.lower = [&k](LowerContext &ctx) { return lowerRecurrentLayer(ctx, k); };
  d.gradient = [&k](LowerContext &ctx) { return recurrentLayerGradient(ctx, k); };
  return d;
}

// LSTM: kernel (features, 4 units), recurrent_kernel (units, 4 units), bias (4 units), gate
// blocks i, f, c, o — Keras's layout, so imported weights copy as they are.
static void registerLSTM(OpRegistry &r) {
  r.add(recurrentLayer(*recurrentKind("LSTM"),
                       "Long short-term memory over (batch, steps, features); optional initial "
                       "[h, c]."));
}

// GRU: kernel (features, 3 units), recurrent_kernel (units, 3 units), gate blocks z, r, h;
// bias (2, 3 units) with reset_after (row 0 the input bias, row 1 the recurrent bias, TF2's
// default) or (3 units) without — Keras's layouts, copied as they are on import.
static void registerGRU(OpRegistry &r) {
  r.add(recurrentLayer(*recurrentKind("GRU"),
                       "Gated recurrent unit over (batch, steps, features) (gates z, r, h; "
                       "reset_after); optional initial [h]."));
}

void registerRecurrentOps(OpRegistry &r) {
  registerEmbedding(r);
  registerLSTM(r);
  registerGRU(r);
}

} // namespace fgc::ops
