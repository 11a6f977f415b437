// The shared definition of LSTM and GRU (see Recurrent.h): config specs, shape rules, weights
// and kernel emission, parameterized by the class.
#include "compiler/ops/Recurrent.h"

namespace fgc::ops {

const RecurrentKind *recurrentKind(const std::string &className) {
  static const RecurrentKind lstm{"LSTM", 2, "fgc_lstm", 4};
  static const RecurrentKind gru{"GRU", 1, "fgc_gru", 3};
  if (className == "LSTM")
    return &lstm;
  if (className == "GRU")
    return &gru;
  return nullptr;
}

std::vector<AttrSpec> recurrentAttrs(const RecurrentKind &k) {
  std::vector<AttrSpec> attrs = {requiredInt("units"),
                                 stringAttr("activation", "tanh", activationNames()),
                                 stringAttr("recurrent_activation", "sigmoid", activationNames()),
                                 boolAttr("use_bias", true),
                                 objectAttr("kernel_initializer", "GlorotUniform"),
                                 objectAttr("recurrent_initializer", "Orthogonal"),
                                 objectAttr("bias_initializer", "Zeros"),
                                 floatAttr("dropout", 0.0),
                                 floatAttr("recurrent_dropout", 0.0),
                                 boolAttr("return_sequences", false),
                                 boolAttr("return_state", false),
                                 boolAttr("go_backwards", false),
                                 boolAttr("stateful", false),
                                 boolAttr("time_major", false),
                                 boolAttr("unroll", false),
                                 intAttr("implementation", 2),
                                 boolAttr("zero_output_for_mask", false), // masks: unsupported
                                 nullableInt("seed")};                   // Keras 3 (dropout)
  if (k.className == "LSTM")
    attrs.push_back(boolAttr("unit_forget_bias", true));
  else
    attrs.push_back(boolAttr("reset_after", true));
  for (const char *n : {"kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
                        "activity_regularizer", "kernel_constraint", "recurrent_constraint",
                        "bias_constraint"})
    attrs.push_back(objectAttr(n, ""));
  return attrs;
}

Status checkRecurrent(const OpContext &ctx, const RecurrentKind &k, const Attrs &a,
                      const std::vector<TensorType> &inputs, const std::string &what) {
  const TensorType &x = inputs[0];
  if (x.rank() != 3)
    return ctx.error("{}expects a rank-3 input (batch, steps, features), got {}", what,
                     ctx.describeInput(0));
  if (isDynamic(x.shape[2]))
    return ctx.error("{}needs the last dimension of its input to be known, got {}", what,
                     ctx.describeInput(0));
  int64_t units = a.i("units");
  if (units <= 0 || units > kMaxUnits)
    return ctx.error("{}units must be between 1 and {}, got {}", what, kMaxUnits, units);
  if (a.b("stateful") || a.b("time_major"))
    return ctx.error("{}stateful and time_major {}s are not supported", what, k.className);
  for (const char *key : {"dropout", "recurrent_dropout"})
    if (a.f(key) < 0 || a.f(key) >= 1)
      return ctx.error("{}{} must be in [0, 1), got {}", what, key, a.f(key));
  size_t states = inputs.size() - 1;
  if (states != 0 && states != size_t(k.numStates))
    return ctx.error("{}initial state must be {} ({} tensor{}), got {}", what,
                     k.numStates == 2 ? "[h, c]" : "[h]", k.numStates,
                     k.numStates == 1 ? "" : "s", states);
  for (size_t i = 1; i < inputs.size(); ++i) {
    const auto &s = inputs[i].shape;
    if (s.size() != 2 || s[1] != units)
      return ctx.error("{}initial state {} must have shape (batch, {}), got {}", what, i - 1,
                       units, ctx.describeInput(i));
  }
  return Status::ok();
}

std::vector<TensorType> recurrentOutputs(const RecurrentKind &k, const Attrs &a,
                                         const TensorType &input) {
  Dim batch = input.shape[0];
  int64_t units = a.i("units");
  TensorType state{schema::FLOAT32, {batch, units}};
  TensorType main = state;
  if (a.b("return_sequences"))
    main.shape = {batch, input.shape[1], units};
  std::vector<TensorType> outs = {main};
  if (a.b("return_state"))
    for (int i = 0; i < k.numStates; ++i)
      outs.push_back(state);
  return outs;
}

std::vector<ParamSpec> recurrentParams(const RecurrentKind &k, const Attrs &a, int64_t inputDim,
                                       const std::string &prefix) {
  int64_t u = a.i("units"), g = k.gates * u;
  std::vector<ParamSpec> ps = {
      {prefix + "kernel", {inputDim, g}, a.get("kernel_initializer")},
      {prefix + "recurrent_kernel", {u, g}, a.get("recurrent_initializer")}};
  if (!a.b("use_bias"))
    return ps;
  AttrValue init = a.get("bias_initializer");
  if (k.className == "LSTM") {
    // unit_forget_bias: Keras initializes the f block to ones, the rest with bias_initializer.
    if (a.b("unit_forget_bias"))
      init = makeObject("LSTMBias", {{"units", makeInt(u)}, {"base", init}});
    ps.push_back({prefix + "bias", {g}, init});
  } else if (a.b("reset_after")) {
    ps.push_back({prefix + "bias", {2, g}, init}); // row 0: input bias, row 1: recurrent bias
  } else {
    ps.push_back({prefix + "bias", {g}, init});
  }
  return ps;
}

Arg intField(int64_t v) {
  Arg a;
  a.kind = Arg::Kind::Int;
  a.intValue = v;
  return a;
}

// fgc_lstm_params / fgc_gru_params for input buffer `input`.
static Expected<Arg> paramStruct(LowerContext &ctx, const RecurrentKind &k, const Attrs &a,
                                 int input) {
  auto act = ctx.activation(a.s("activation"));
  if (!act)
    return act.error();
  auto rec = ctx.activation(a.s("recurrent_activation"));
  if (!rec)
    return rec.error();
  const auto &in = ctx.buffer(input).shape;
  Arg p;
  p.kind = Arg::Kind::Struct;
  p.structType = k.kernelPrefix + "_params";
  p.fields = {ctx.size(ctx.dim(in, 0)), ctx.size(ctx.dim(in, 1)), ctx.size(ctx.dim(in, 2)),
              ctx.i64(a.i("units")), *act, *rec, intField(a.b("return_sequences") ? 1 : 0)};
  if (k.className == "GRU")
    p.fields.push_back(intField(a.b("reset_after") ? 1 : 0));
  return p;
}

static Arg optional(LowerContext &ctx, int id) { return id >= 0 ? ctx.buf(id) : ctx.null(); }

static void pushStates(LowerContext &ctx, std::vector<Arg> &args, const std::vector<int> &ids,
                       int n) {
  for (int i = 0; i < n; ++i)
    args.push_back(optional(ctx, ids.empty() ? -1 : ids[size_t(i)]));
}

Status emitRecurrentForward(LowerContext &ctx, const RecurrentKind &k, const Attrs &a,
                            const RecurrentBuffers &b, const std::string &workspaceKey) {
  auto p = paramStruct(ctx, k, a, b.input);
  if (!p)
    return p.error();
  std::vector<Arg> args = {*p, ctx.buf(b.input), ctx.buf(b.kernel), ctx.buf(b.recurrentKernel),
                           optional(ctx, b.bias)};
  pushStates(ctx, args, b.initialStates, k.numStates);
  args.push_back(ctx.buf(b.output));
  pushStates(ctx, args, b.finalStates, k.numStates);
  if (!ctx.training()) {
    args.push_back(scratchArg());
    KernelCall c = kernel(k.kernelPrefix, args);
    c.scratchFunction = k.kernelPrefix + "_scratch_size";
    ctx.call(c);
    return Status::ok();
  }
  int ws = ctx.workspace(workspaceKey, k.kernelPrefix + "_workspace_size", *p);
  ctx.save(workspaceKey, ws);
  args.push_back(ctx.buf(ws));
  ctx.call(kernel(k.kernelPrefix + "_forward_train", args));
  return Status::ok();
}

Status emitRecurrentBackward(LowerContext &ctx, const RecurrentKind &k, const Attrs &a,
                             const RecurrentBuffers &b, const std::string &workspaceKey,
                             const RecurrentGrads &g) {
  auto p = paramStruct(ctx, k, a, b.input);
  if (!p)
    return p.error();
  std::vector<Arg> args = {*p, ctx.buf(b.input), ctx.buf(b.kernel), ctx.buf(b.recurrentKernel)};
  pushStates(ctx, args, b.initialStates, k.numStates);
  args.push_back(ctx.buf(ctx.saved(workspaceKey)));
  args.push_back(optional(ctx, g.dOutput));
  pushStates(ctx, args, g.dFinalStates, k.numStates);
  for (int id : {g.dInput, g.dKernel, g.dRecurrentKernel, g.dBias})
    args.push_back(optional(ctx, id));
  pushStates(ctx, args, g.dInitialStates, k.numStates);
  args.push_back(scratchArg());
  args.push_back(ctx.i64((g.accumulateInput ? 1 : 0) | ctx.paramFlag()));
  KernelCall c = kernel(k.kernelPrefix + "_backward", args);
  c.scratchFunction = k.kernelPrefix + "_backward_scratch_size";
  ctx.call(c);
  return Status::ok();
}

Status checkTrainable(const LowerContext &ctx, const Attrs &a) {
  if (a.f("dropout") > 0 || a.f("recurrent_dropout") > 0)
    return ctx.error("training with dropout {} / recurrent_dropout {} is not supported yet",
                     a.f("dropout"), a.f("recurrent_dropout"));
  return Status::ok();
}

int emitReverse(LowerContext &ctx, int from, const std::string &suffix) {
  const std::vector<Dim> shape = ctx.buffer(from).shape; // a copy: newBuffer may move buffers
  int to = ctx.newBuffer(suffix, schema::FLOAT32, shape);
  ctx.call(kernel("fgc_reverse_sequence", {ctx.buf(from), ctx.buf(to), ctx.size(ctx.dim(shape, 0)),
                                           ctx.size(ctx.dim(shape, 1)),
                                           ctx.size(ctx.dim(shape, 2))}));
  return to;
}

} // namespace fgc::ops
