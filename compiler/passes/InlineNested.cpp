// inline-nested: every call of a nested model becomes copies of the nested model's ops in the
// calling graph, so that the passes after it (and the memory plan) see across model boundaries.
// The copies keep their layers (and so their weights and names): an op inlined from `encoder`
// has the path "encoder/conv2d", as diagnostics, reports and weights files name it. Nested
// models inside nested models are inlined too (the pass repeats until no call is left). The
// nested model's None dimensions become the caller's (a sequence length of the caller's input).
#include "compiler/passes/Pass.h"

#include <map>

namespace fgc {

namespace {

class InlineNested : public GraphPass {
public:
  std::string name() const override { return "inline-nested"; }

  Expected<Changes> run(Graph &g, const PassOptions &) override {
    Changes changes;
    for (bool again = true; again;) {
      again = false;
      for (size_t i = 0; i < g.ops.size(); ++i)
        if (g.ops[i]->layer->subgraph) {
          changes.push_back(fmt::format("inlined {} ({} ops)", g.ops[i]->path(),
                                        g.ops[i]->layer->subgraph->ops.size()));
          inlineAt(g, i);
          again = true;
          break;
        }
    }
    return changes;
  }

private:
  static void inlineAt(Graph &g, size_t at) {
    Op &call = *g.ops[at];
    const Graph &sub = *call.layer->subgraph;
    std::map<const Value *, Value *> values;
    std::map<Dim, Dim> symbols;
    for (size_t i = 0; i < sub.inputs.size(); ++i) {
      values[sub.inputs[i]] = call.inputs[i];
      const auto &declared = sub.inputs[i]->type.shape;
      const auto &given = call.inputs[i]->type.shape;
      for (size_t k = 0; k < declared.size() && k < given.size(); ++k)
        if (isDynamic(declared[k]))
          symbols[declared[k]] = given[k];
    }
    std::vector<std::unique_ptr<Op>> copies;
    std::string scope = call.scope + call.layer->name + "/";
    for (const auto &innerPtr : sub.ops) {
      const Op &inner = *innerPtr;
      if (inner.layer->className == "InputLayer")
        continue; // bound to the caller's values above
      auto op = std::make_unique<Op>();
      op->layer = inner.layer;
      op->nodeIndex = inner.nodeIndex;
      op->kwargs = inner.kwargs;
      op->scope = scope + inner.scope;
      for (const Value *v : inner.inputs)
        op->inputs.push_back(values.at(v));
      for (const auto &out : inner.outputs) {
        auto v = std::make_unique<Value>();
        v->type = out->type;
        for (Dim &d : v->type.shape)
          if (auto it = symbols.find(d); isDynamic(d) && it != symbols.end())
            d = it->second;
        v->producer = op.get();
        v->index = out->index;
        values[out.get()] = v.get();
        op->outputs.push_back(std::move(v));
      }
      copies.push_back(std::move(op));
    }
    // Model outputs computed by the call keep its name (Keras names them after the nested model).
    g.outputNames.resize(g.outputs.size());
    for (size_t i = 0; i < g.outputs.size(); ++i)
      if (g.outputs[i]->producer == &call && g.outputNames[i].empty())
        g.outputNames[i] = call.layer->name;
    for (size_t k = 0; k < call.outputs.size(); ++k)
      replaceAllUses(g, call.outputs[k].get(), values.at(sub.outputs[k]));
    // The call leaves the schedule; its copies take its place.
    g.removedOps.push_back(std::move(g.ops[at]));
    g.ops.erase(g.ops.begin() + long(at));
    g.ops.insert(g.ops.begin() + long(at), std::make_move_iterator(copies.begin()),
                 std::make_move_iterator(copies.end()));
  }
};

} // namespace

std::unique_ptr<GraphPass> createInlineNestedPass() { return std::make_unique<InlineNested>(); }

} // namespace fgc
