// Scan: a loop over the time axis of a sequence that runs a traced body once per step, carrying
// a state (keras.ops.scan / tf.scan in the form of an RNN cell: (state, x_t) -> (state, y_t)).
//
//   inputs   the initial state (batch, ...), the sequence (batch, T, ...) with T possibly None,
//            then the tensors the body captured from around it (weights), read by every step
//   outputs  the final state, and the per-step y_t stacked into (batch, T, ...)
//
// The body (Layer::body) is a graph with inputs (state, x_t, captures...) and outputs
// (new_state, y_t), traced once by the frontend (fgc::keras::ops::scan) and found by the key in
// the layer's config. It has no weights of its own: the weights it uses are captures, so they
// are shared by every step and their gradients add up over the steps.
//
// Lowering: a loop over the run-time T (KernelCall::loop) around the body's own calls, which
// read the step's x_t (a slice of the sequence) and the state, and write y_t into its slot of
// the output. Training keeps the state entering each step (T x the state's size); the backward
// runs the steps in reverse, recomputing each step's body from its saved state (so the body's
// intermediate values are kept for one step only) and running the body's backward (the
// ordinary autodiff of its ops), carrying the state's gradient to the step before and adding
// up the captures' gradients.
#include "compiler/ops/Scan.h"

#include "compiler/ops/OpHelpers.h"

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <set>

namespace fgc::ops {

namespace {

struct BodyTable {
  std::mutex mutex;
  std::map<std::string, std::shared_ptr<const Graph>> bodies;
  uint64_t nonce = std::random_device{}() * 0x9E3779B97F4A7C15ULL ^ std::random_device{}();
  uint64_t next = 0;
};

BodyTable &table() {
  static BodyTable t;
  return t;
}

// Whether `given` fits `declared` (None in either matches any size).
bool fits(const std::vector<Dim> &given, const std::vector<Dim> &declared) {
  if (given.size() != declared.size())
    return false;
  for (size_t k = 0; k < given.size(); ++k)
    if (!isDynamic(given[k]) && !isDynamic(declared[k]) && given[k] != declared[k])
      return false;
  return true;
}

std::vector<Dim> withoutAxis1(std::vector<Dim> s) {
  s.erase(s.begin() + 1);
  return s;
}

Expected<std::vector<TensorType>> inferScan(const OpContext &ctx) {
  const Graph *body = ctx.layer.body.get();
  if (!body)
    return ctx.error("has no body");
  if (ctx.inputs.size() != body->inputs.size() || body->outputs.size() != 2)
    return ctx.error("its body takes {} input(s) and returns {} output(s); the call passes {} "
                     "(a body takes (state, x_t, captured tensors...) and returns "
                     "(new_state, y_t))",
                     body->inputs.size(), body->outputs.size(), ctx.inputs.size());
  const TensorType &seq = ctx.input(1);
  if (seq.rank() < 3)
    return ctx.error("the sequence must have rank 3 or more (batch, steps, ...), got {}",
                     ctx.describeInput(1));
  const auto &state = ctx.input(0).shape;
  if (state.empty())
    return ctx.error("the initial state must have a batch axis, got {}", ctx.describeInput(0));
  std::vector<Dim> xt = withoutAxis1(seq.shape);
  const char *what[] = {"the initial state", "a step of the sequence"};
  for (size_t i = 0; i < ctx.inputs.size(); ++i) {
    std::vector<Dim> given = i == 1 ? xt : ctx.inputs[i].shape;
    if (!fits(given, body->inputs[i]->type.shape))
      return ctx.error("its body takes {} for {}, got {}", shapeToString(body->inputs[i]->type.shape),
                       i < 2 ? what[i] : "a captured tensor",
                       i == 1 ? shapeToString(xt) + " (the sequence " + ctx.describeInput(1) + ")"
                              : ctx.describeInput(i));
  }
  const auto &newState = body->outputs[0]->type.shape;
  if (!fits(newState, body->inputs[0]->type.shape))
    return ctx.error("its body returns a state of shape {}, but takes a state of shape {} (the "
                     "initial state is {}): the state must keep its shape from step to step",
                     shapeToString(newState), shapeToString(body->inputs[0]->type.shape),
                     ctx.describeInput(0));
  // The body's None dimensions are the caller's.
  std::map<Dim, Dim> symbols = {{kBatchDim, state[0]}};
  for (size_t i = 0; i < ctx.inputs.size(); ++i) {
    std::vector<Dim> given = i == 1 ? xt : ctx.inputs[i].shape;
    for (size_t k = 0; k < given.size(); ++k)
      if (isDynamic(body->inputs[i]->type.shape[k]))
        symbols[body->inputs[i]->type.shape[k]] = given[k];
  }
  TensorType y = body->outputs[1]->type;
  if (y.shape.empty())
    return ctx.error("its body returns a y_t without a batch axis");
  for (Dim &d : y.shape)
    if (isDynamic(d))
      d = symbols.count(d) ? symbols[d] : kUnknownDim;
  y.shape.insert(y.shape.begin() + 1, seq.shape[1]);
  return std::vector<TensorType>{ctx.input(0), y};
}

Arg loopIndex() {
  Arg a;
  a.kind = Arg::Kind::LoopIndex;
  return a;
}

// `calls` wrapped in a loop of `trips` iterations.
std::vector<KernelCall> loop(const LowerContext &ctx, const SymSize &trips, bool reverse,
                             std::vector<KernelCall> calls) {
  Arg list;
  list.kind = Arg::Kind::BufferList;
  std::set<int> seen;
  for (const KernelCall &c : calls) {
    std::vector<int> ids;
    for (const Arg &a : c.args)
      buffersOf(a, ids);
    for (const Arg &a : c.scratchArgs)
      buffersOf(a, ids);
    for (int id : ids)
      if (seen.insert(id).second)
        list.buffers.push_back(id);
  }
  KernelCall begin, end;
  begin.function = "loop";
  begin.loop = KernelCall::Loop::Begin;
  begin.reverse = reverse;
  begin.args = {ctx.size(trips), list};
  end.function = "end_loop";
  end.loop = KernelCall::Loop::End;
  end.args = {ctx.size(trips), list};
  calls.insert(calls.begin(), begin);
  calls.push_back(end);
  return calls;
}

// The shapes of one call, in the program's symbols.
struct Geometry {
  SymSize batch, steps, xInner, yInner, stateSize;
  std::vector<Dim> state, xt, yt;
};

Geometry geometry(const LowerContext &ctx) {
  Geometry g;
  auto seq = ctx.inShape(1), ys = ctx.outShape(1);
  g.state = ctx.inShape(0);
  g.xt = withoutAxis1(seq);
  g.yt = withoutAxis1(ys);
  g.batch = SymSize::product(seq, 0, 1);
  g.steps = SymSize::product(seq, 1, 2);
  g.xInner = SymSize::product(seq, 2, seq.size());
  g.yInner = SymSize::product(ys, 2, ys.size());
  g.stateSize = SymSize::product(g.state, 0, g.state.size());
  return g;
}

KernelCall copy(const LowerContext &ctx, int from, int to, const SymSize &n) {
  return kernel("fgc_copy", {ctx.buf(from), ctx.buf(to), ctx.size(n)});
}
KernelCall fill(const LowerContext &ctx, int to, const SymSize &n) {
  return kernel("fgc_fill", {ctx.buf(to), ctx.f32(0.0), ctx.size(n)});
}
// x[:, t] of x (outer, steps, inner) into `to`.
KernelCall take(const LowerContext &ctx, int from, int to, const SymSize &outer,
                const SymSize &steps, const SymSize &inner) {
  return kernel("fgc_slice", {ctx.buf(from), ctx.buf(to), ctx.size(outer), ctx.size(steps),
                              ctx.size(inner), loopIndex(), ctx.i64(1)});
}
// `from` added into x[:, t] of x (outer, steps, inner): the slice's gradient kernel, accumulating
// (the runtime has no other strided write); writing every step this way needs x zeroed first.
KernelCall put(const LowerContext &ctx, int from, int to, const SymSize &outer,
               const SymSize &steps, const SymSize &inner) {
  return kernel("fgc_slice_backward", {ctx.buf(from), ctx.buf(to), ctx.size(outer),
                                       ctx.size(steps), ctx.size(inner), loopIndex(), ctx.i64(1),
                                       ctx.i64(1 /* FGC_GRAD_ACCUMULATE_INPUT */)});
}

// The forward loop; in training it also keeps the state entering each step.
Status lowerScan(LowerContext &ctx) {
  if (!ctx.bodies())
    return ctx.error("cannot be lowered here (no body lowering)");
  const Graph &body = *ctx.op().layer->body;
  Geometry g = geometry(ctx);
  int state = ctx.newBuffer("state", schema::FLOAT32, g.state);
  int x = ctx.newBuffer("x", schema::FLOAT32, g.xt);
  std::vector<int> ins = {state, x};
  std::vector<bool> needs = {false, false};
  bool any = false;
  for (size_t i = 0; i < ctx.numInputs(); ++i)
    any |= ctx.inputNeedsGrad(i);
  needs[0] = any; // earlier steps' gradients flow through the state
  needs[1] = ctx.inputNeedsGrad(1);
  for (size_t i = 2; i < ctx.numInputs(); ++i) {
    ins.push_back(ctx.input(i));
    needs.push_back(ctx.inputNeedsGrad(i));
  }
  auto f = ctx.bodies()->forward(body, ctx.layerPath(), ins, needs);
  if (!f)
    return f.error();
  int newState = f->outputs[0], y = f->outputs[1];
  std::vector<KernelCall> step;
  int states = -1;
  if (ctx.training()) {
    std::vector<Dim> shape = g.state;
    shape.insert(shape.begin(), ctx.inShape(1)[1]);
    states = ctx.newBuffer("states", schema::FLOAT32, shape);
    ctx.call(fill(ctx, states, g.steps * g.stateSize));
    step.push_back(put(ctx, state, states, SymSize::constant(1), g.steps, g.stateSize));
  }
  step.push_back(take(ctx, ctx.input(1), x, g.batch, g.steps, g.xInner));
  for (KernelCall &c : f->calls)
    step.push_back(std::move(c));
  step.push_back(put(ctx, y, ctx.output(1), g.batch, g.steps, g.yInner));
  step.push_back(copy(ctx, newState, state, g.stateSize));
  ctx.call(fill(ctx, ctx.output(1), g.batch * g.steps * g.yInner));
  ctx.call(copy(ctx, ctx.input(0), state, g.stateSize));
  for (KernelCall &c : loop(ctx, g.steps, false, std::move(step)))
    ctx.call(std::move(c));
  ctx.call(copy(ctx, state, ctx.output(0), g.stateSize));
  if (ctx.training()) {
    ctx.save("body", f->id);
    ctx.save("state", state);
    ctx.save("x", x);
    ctx.save("states", states);
  }
  return Status::ok();
}

// Backpropagation through time: the steps in reverse, each recomputing its body from the saved
// state and running the body's backward.
Status scanGradient(LowerContext &ctx) {
  Geometry g = geometry(ctx);
  int state = ctx.saved("state"), x = ctx.saved("x"), states = ctx.saved("states");
  int dFinal = ctx.dOut(0), dYs = ctx.dOut(1);
  int dState = ctx.newBuffer("d_state", schema::FLOAT32, g.state);
  int dStateIn = ctx.newBuffer("d_state_in", schema::FLOAT32, g.state);
  int dY = dYs >= 0 ? ctx.newBuffer("d_y", schema::FLOAT32, g.yt) : -1;
  int dInit = ctx.dIn(0), dSeq = ctx.dIn(1);
  int dX = dSeq >= 0 ? ctx.newBuffer("d_x", schema::FLOAT32, g.xt) : -1;
  std::vector<int> inputGrads = {dStateIn, dX};
  std::vector<bool> accumulate = {false, false};
  for (size_t i = 2; i < ctx.numInputs(); ++i) {
    int d = ctx.dIn(i);
    // Every step adds its share: start from zero unless the gradient already holds a value.
    if (d >= 0 && ctx.inFlag(i) == 0)
      ctx.call(fill(ctx, d, ctx.buffer(d).elements()));
    inputGrads.push_back(d);
    accumulate.push_back(true);
  }
  auto b = ctx.bodies()->backward(ctx.saved("body"), {dState, dY}, inputGrads, accumulate);
  if (!b)
    return b.error();
  ctx.call(dFinal >= 0 ? copy(ctx, dFinal, dState, g.stateSize) : fill(ctx, dState, g.stateSize));
  if (dX >= 0 && !b->written[1])
    ctx.call(fill(ctx, dX, SymSize::product(g.xt, 0, g.xt.size())));
  if (dSeq >= 0 && ctx.inFlag(1) == 0)
    ctx.call(fill(ctx, dSeq, g.batch * g.steps * g.xInner));
  std::vector<KernelCall> step;
  step.push_back(take(ctx, states, state, SymSize::constant(1), g.steps, g.stateSize));
  step.push_back(take(ctx, ctx.input(1), x, g.batch, g.steps, g.xInner));
  if (dY >= 0)
    step.push_back(take(ctx, dYs, dY, g.batch, g.steps, g.yInner));
  for (KernelCall &c : b->forward)
    step.push_back(std::move(c));
  for (KernelCall &c : b->calls)
    step.push_back(std::move(c));
  if (dSeq >= 0)
    step.push_back(put(ctx, dX, dSeq, g.batch, g.steps, g.xInner));
  step.push_back(b->written[0] ? copy(ctx, dStateIn, dState, g.stateSize)
                               : fill(ctx, dState, g.stateSize));
  for (KernelCall &c : loop(ctx, g.steps, true, std::move(step)))
    ctx.call(std::move(c));
  if (dInit >= 0)
    ctx.call(ctx.inFlag(0) ? kernel("fgc_scale_add", {ctx.buf(dState), ctx.f32(1.0),
                                                      ctx.buf(dInit), ctx.size(g.stateSize)})
                           : copy(ctx, dState, dInit, g.stateSize));
  return Status::ok();
}

} // namespace

std::string registerScanBody(std::shared_ptr<const Graph> body) {
  BodyTable &t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  std::string key = fmt::format("{:016x}-{}", t.nonce, t.next++);
  t.bodies[key] = std::move(body);
  return key;
}

void registerScan(OpRegistry &r) {
  OpDef d;
  d.className = "Scan";
  d.summary = "A loop over a sequence's time axis running a traced body per step "
              "(ops::scan inside a custom layer).";
  d.attrs = {stringAttr("body", "")};
  d.minInputs = 2;
  d.maxInputs = -1;
  d.loopBody = [](const Layer &layer) -> Expected<std::shared_ptr<const Graph>> {
    std::string key = layer.attrs().s("body");
    BodyTable &t = table();
    std::lock_guard<std::mutex> lock(t.mutex);
    auto it = t.bodies.find(key);
    if (it == t.bodies.end())
      return Error::format("{}: its body '{}' is not known in this process: Scan layers exist "
                           "only inside the traced body of a custom layer (ops::scan in call())",
                           layer.describe(), key);
    return it->second;
  };
  d.inferTypes = inferScan;
  d.lower = lowerScan;
  d.gradient = scanGradient;
  r.add(std::move(d));
}

} // namespace fgc::ops
