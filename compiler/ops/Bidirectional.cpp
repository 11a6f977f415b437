// Bidirectional: a wrapped LSTM or GRU run forwards and backwards over the sequence, the two
// outputs merged (concat, sum, mul, ave, or None: both returned).
//
// Config: `layer` is the wrapped layer as a nested object, {class_name: "LSTM", config: {...}}
// with Keras's LSTM / GRU config keys (its `name` is accepted and ignored); `merge_mode`;
// `backward_layer` must be None (Keras then derives the backward layer from `layer` with
// go_backwards flipped) or exactly that layer (Keras 3 writes it out). Weights, in Keras's order: forward_kernel, forward_recurrent_kernel,
// forward_bias, then backward_kernel, backward_recurrent_kernel, backward_bias, each in the
// wrapped class's own layout (Recurrent.h). Outputs: the merged output (or forward and backward
// outputs with merge_mode None), then with return_state the forward layer's final states and
// the backward layer's. With return_sequences the backward output is reversed back to input
// order before merging, as Keras does.
#include "compiler/ops/Recurrent.h"

#include <google/protobuf/util/message_differencer.h>

namespace fgc::ops {

namespace {

// The wrapped layer's class and its complete config.
struct Wrapped {
  const RecurrentKind *kind = nullptr;
  AttrMap config;
};

Expected<Wrapped> wrappedLayer(const Attrs &a, const std::string &layerText,
                               const std::string &key = "layer") {
  const auto &obj = a.get(key).obj();
  Wrapped w;
  w.kind = recurrentKind(obj.class_name());
  if (!w.kind)
    return Error::format("{}: Bidirectional wraps an LSTM or GRU layer, got '{}'", layerText,
                         obj.class_name());
  AttrMap given(obj.attrs().begin(), obj.attrs().end());
  given.erase("name");
  const OpDef *def = OpRegistry::global().find(w.kind->className);
  auto config = normalizeConfig(def->attrs, given,
                                layerText + ": wrapped " + w.kind->className + " layer");
  if (!config)
    return config.error();
  w.config = config.take();
  return w;
}

Expected<Wrapped> wrappedLayer(const OpContext &ctx) {
  return wrappedLayer(ctx.attrs(), ctx.layer.describe());
}
Expected<Wrapped> wrappedLayer(const LowerContext &ctx) {
  return wrappedLayer(ctx.attrs(), ctx.op().layer->describe());
}

// The runtime's fgc_merge_mode for Keras's merge_mode ("" for None).
Arg mergeMode(const LowerContext &ctx, const std::string &mode) {
  if (mode == "sum")
    return ctx.enumValue("FGC_MERGE_SUM", 1);
  if (mode == "mul")
    return ctx.enumValue("FGC_MERGE_MUL", 2);
  if (mode == "ave")
    return ctx.enumValue("FGC_MERGE_AVE", 3);
  return ctx.enumValue("FGC_MERGE_CONCAT", 0);
}

std::string mergeModeOf(const Attrs &a) { return a.isNone("merge_mode") ? "" : a.s("merge_mode"); }

const char *const Prefixes[2] = {"forward_", "backward_"};

// One direction's main output shape (the layer's outputs hold the merged one).
std::vector<Dim> directionShape(const LowerContext &ctx, const Attrs &inner) {
  const auto &in = ctx.inShape(0);
  if (inner.b("return_sequences"))
    return {in[0], in[1], inner.i("units")};
  return {in[0], inner.i("units")};
}

RecurrentBuffers directionBuffers(LowerContext &ctx, const RecurrentKind &k, const Attrs &inner,
                                  int dir, int input, int output) {
  const std::string prefix = Prefixes[dir];
  RecurrentBuffers b;
  b.input = input;
  b.kernel = ctx.param(prefix + "kernel");
  b.recurrentKernel = ctx.param(prefix + "recurrent_kernel");
  b.bias = ctx.param(prefix + "bias");
  b.output = output;
  if (inner.b("return_state")) {
    size_t first = (mergeModeOf(ctx.attrs()).empty() ? 2 : 1) + size_t(dir * k.numStates);
    for (int i = 0; i < k.numStates; ++i)
      b.finalStates.push_back(ctx.output(first + size_t(i)));
  }
  return b;
}

void callReverse(LowerContext &ctx, const char *fn, int from, int to, int64_t flags, bool withFlags) {
  const auto &shape = ctx.buffer(from).shape;
  std::vector<Arg> args = {ctx.buf(from), ctx.buf(to), ctx.size(ctx.dim(shape, 0)),
                           ctx.size(ctx.dim(shape, 1)), ctx.size(ctx.dim(shape, 2))};
  if (withFlags)
    args.push_back(ctx.i64(flags));
  ctx.call(kernel(fn, args));
}

Status lowerBidirectional(LowerContext &ctx) {
  auto w = wrappedLayer(ctx);
  if (!w)
    return w.error();
  const RecurrentKind &k = *w->kind;
  Attrs inner(w->config);
  const std::string mode = mergeModeOf(ctx.attrs());
  const bool sequences = inner.b("return_sequences");
  int merged[2] = {-1, -1}; // what the merge reads: each direction's output in input order
  for (int dir = 0; dir < 2; ++dir) {
    const std::string prefix = Prefixes[dir];
    const bool reversed = (dir == 1) != inner.b("go_backwards");
    int input = ctx.input(0);
    if (reversed) {
      input = emitReverse(ctx, ctx.input(0), prefix + "reversed");
      if (ctx.training())
        ctx.save(prefix + "reversed", input);
    }
    // The backward output of a sequence is reversed back to input order before merging.
    const bool reorder = dir == 1 && sequences;
    int out = !mode.empty() || reorder
                  ? ctx.newBuffer(prefix + "output", schema::FLOAT32, directionShape(ctx, inner))
                  : ctx.output(size_t(dir));
    RecurrentBuffers b = directionBuffers(ctx, k, inner, dir, input, out);
    FGC_TRY(emitRecurrentForward(ctx, k, inner, b, prefix + "workspace"));
    merged[dir] = out;
    if (reorder) {
      merged[dir] = mode.empty() ? ctx.output(1)
                                 : ctx.newBuffer("backward_output_in_order", schema::FLOAT32,
                                                 directionShape(ctx, inner));
      callReverse(ctx, "fgc_reverse_sequence", out, merged[dir], 0, false);
    }
    if (ctx.training())
      ctx.save(prefix + "merged", merged[dir]);
  }
  if (mode.empty())
    return Status::ok();
  const auto &shape = directionShape(ctx, inner);
  ctx.call(kernel("fgc_bidirectional_merge",
                  {ctx.buf(merged[0]), ctx.buf(merged[1]), ctx.buf(ctx.output(0)),
                   ctx.size(SymSize::product(shape, 0, shape.size() - 1)),
                   ctx.i64(inner.i("units")), mergeMode(ctx, mode)}));
  return Status::ok();
}

Status bidirectionalGradient(LowerContext &ctx) {
  auto w = wrappedLayer(ctx);
  if (!w)
    return w.error();
  const RecurrentKind &k = *w->kind;
  Attrs inner(w->config);
  FGC_TRY(checkTrainable(ctx, inner));
  const std::string mode = mergeModeOf(ctx.attrs());
  const bool sequences = inner.b("return_sequences");
  const auto shape = directionShape(ctx, inner);
  // Gradients of each direction's output in input order.
  int dMerged[2] = {-1, -1};
  if (mode.empty()) {
    dMerged[0] = ctx.dOut(0);
    dMerged[1] = ctx.dOut(1);
  } else if (ctx.dOut(0) >= 0) {
    for (int dir = 0; dir < 2; ++dir)
      dMerged[dir] = ctx.newBuffer(std::string("d_") + Prefixes[dir] + "output", schema::FLOAT32,
                                   shape);
    ctx.call(kernel("fgc_bidirectional_merge_backward",
                    {ctx.buf(ctx.saved("forward_merged")), ctx.buf(ctx.saved("backward_merged")),
                     ctx.buf(ctx.dOut(0)), ctx.buf(dMerged[0]), ctx.buf(dMerged[1]),
                     ctx.size(SymSize::product(shape, 0, shape.size() - 1)),
                     ctx.i64(inner.i("units")), mergeMode(ctx, mode)}));
  }
  const int dx = ctx.dIn(0);
  bool dxWritten = ctx.inFlag(0) != 0;
  for (int dir = 0; dir < 2; ++dir) {
    const std::string prefix = Prefixes[dir];
    const bool reversed = (dir == 1) != inner.b("go_backwards");
    RecurrentBuffers b = directionBuffers(ctx, k, inner, dir,
                                          reversed ? ctx.saved(prefix + "reversed") : ctx.input(0),
                                          -1);
    RecurrentGrads g;
    g.dOutput = dMerged[dir];
    if (dir == 1 && sequences && g.dOutput >= 0) {
      g.dOutput = ctx.newBuffer("d_backward_output_raw", schema::FLOAT32, shape);
      callReverse(ctx, "fgc_reverse_sequence_backward", dMerged[dir], g.dOutput, 0, true);
    }
    for (int out : b.finalStates) {
      size_t index = 0;
      while (ctx.output(index) != out)
        ++index;
      g.dFinalStates.push_back(ctx.dOut(index));
    }
    g.dKernel = ctx.dParam(prefix + "kernel");
    g.dRecurrentKernel = ctx.dParam(prefix + "recurrent_kernel");
    g.dBias = ctx.dParam(prefix + "bias");
    if (dx >= 0 && reversed) {
      g.dInput = ctx.newBuffer("d_" + prefix + "reversed", schema::FLOAT32, ctx.inShape(0));
    } else if (dx >= 0) {
      g.dInput = dx;
      g.accumulateInput = dxWritten;
    }
    b.output = ctx.output(0); // not read by the backward kernels
    FGC_TRY(emitRecurrentBackward(ctx, k, inner, b, prefix + "workspace", g));
    if (dx >= 0 && reversed)
      callReverse(ctx, "fgc_reverse_sequence_backward", g.dInput, dx, dxWritten ? 1 : 0, true);
    dxWritten = dxWritten || dx >= 0;
  }
  return Status::ok();
}

} // namespace

void registerBidirectional(OpRegistry &r) {
  OpDef d;
  d.className = "Bidirectional";
  d.summary = "Runs a wrapped LSTM or GRU forwards and backwards and merges the two outputs.";
  AttrSpec merge = stringAttr("merge_mode", "concat", {"concat", "sum", "mul", "ave"});
  merge.nullable = true;
  d.attrs = {objectAttr("layer", ""), merge, objectAttr("backward_layer", "")};
  d.attrs[0].required = true;
  d.inferTypes = [](const OpContext &ctx) -> Expected<std::vector<TensorType>> {
    auto w = wrappedLayer(ctx);
    if (!w)
      return w.error();
    if (!ctx.attrs().isNone("backward_layer")) {
      // Keras 3 always writes backward_layer; it is fine when it is the wrapped layer with
      // go_backwards flipped (what None means).
      auto back = wrappedLayer(ctx.attrs(), ctx.layer.describe(), "backward_layer");
      if (!back)
        return back.error();
      AttrMap mirrored = back->config;
      mirrored["go_backwards"] = makeBool(!Attrs(back->config).b("go_backwards"));
      bool same = back->kind == w->kind && mirrored.size() == w->config.size();
      for (const auto &[k, v] : w->config)
        same = same && mirrored.count(k) && google::protobuf::util::MessageDifferencer::Equals(mirrored.at(k), v);
      if (!same)
        return ctx.error("an explicit backward_layer other than the wrapped layer with "
                         "go_backwards flipped is not supported");
    }
    Attrs inner(w->config);
    FGC_TRY(checkRecurrent(ctx, *w->kind, inner, ctx.inputs, "wrapped " + w->kind->className + ": "));
    std::vector<TensorType> one = recurrentOutputs(*w->kind, inner, ctx.input());
    const std::string mode = mergeModeOf(ctx.attrs());
    TensorType main = one[0];
    if (mode == "concat")
      main.shape.back() *= 2;
    std::vector<TensorType> outs = {main};
    if (mode.empty())
      outs.push_back(main);
    for (int dir = 0; dir < 2; ++dir)
      outs.insert(outs.end(), one.begin() + 1, one.end());
    return outs;
  };
  d.params = [](const OpContext &ctx) {
    auto w = wrappedLayer(ctx);
    Attrs inner(w->config);
    auto ps = recurrentParams(*w->kind, inner, ctx.input().shape[2], "forward_");
    auto back = recurrentParams(*w->kind, inner, ctx.input().shape[2], "backward_");
    ps.insert(ps.end(), back.begin(), back.end());
    return ps;
  };
  d.lower = lowerBidirectional;
  d.gradient = bidirectionalGradient;
  r.add(std::move(d));
}

} // namespace fgc::ops
