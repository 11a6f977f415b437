// Nested models: a Functional model called like a layer (its ops live in Layer::subgraph).
#include "compiler/ops/OpHelpers.h"

namespace fgc::ops {

// A caller's tensor fits a model input when ranks match and every static dimension agrees.
static bool compatible(const TensorType &given, const TensorType &declared) {
  if (given.rank() != declared.rank())
    return false;
  for (size_t i = 0; i < given.rank(); ++i)
    if (given.shape[i] != declared.shape[i] && !isDynamic(given.shape[i]) &&
        !isDynamic(declared.shape[i]))
      return false;
  return true;
}

Expected<std::vector<TensorType>> inferNestedCall(const OpContext &ctx) {
  const Graph *g = ctx.layer.subgraph.get();
  if (!g)
    return ctx.error("has no nested model");
  if (ctx.inputs.size() != g->inputs.size())
    return ctx.error("model takes {} input(s), called on {}", g->inputs.size(),
                     ctx.inputs.size());
  for (size_t i = 0; i < ctx.inputs.size(); ++i)
    if (!compatible(ctx.inputs[i], g->inputs[i]->type))
      return ctx.error("input '{}' expects shape {}, got {}", g->inputLayer(i).name,
                       shapeToString(g->inputs[i]->type.shape), ctx.describeInput(i));
  // The nested model's symbolic dimensions are the caller's: map each None dimension of the
  // nested inputs to the dimension the caller passes.
  std::map<Dim, Dim> symbols = {{kBatchDim, ctx.input().shape.empty() ? kBatchDim
                                                                      : ctx.input().shape[0]}};
  for (size_t i = 0; i < ctx.inputs.size(); ++i)
    for (size_t k = 0; k < ctx.inputs[i].rank(); ++k)
      if (isDynamic(g->inputs[i]->type.shape[k]))
        symbols[g->inputs[i]->type.shape[k]] = ctx.inputs[i].shape[k];
  std::vector<TensorType> outs;
  for (const Value *v : g->outputs) {
    TensorType t = v->type;
    for (Dim &d : t.shape)
      if (isDynamic(d))
        d = symbols.count(d) ? symbols[d] : kUnknownDim;
    outs.push_back(t);
  }
  return outs;
}

static void registerModel(OpRegistry &r, const std::string &cls) {
  OpDef d;
  d.className = cls;
  d.summary = "A nested model, called on tensors like a layer.";
  d.minInputs = 1;
  d.maxInputs = -1;
  d.inferTypes = inferNestedCall;
  r.add(std::move(d));
}

void registerModelOps(OpRegistry &r) {
  registerModel(r, "Functional");
  registerModel(r, "Sequential");
}

} // namespace fgc::ops
