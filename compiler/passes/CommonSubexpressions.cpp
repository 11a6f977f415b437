// cse: two calls of the same layer on the same inputs (with the same call arguments) compute the
// same values, so the second is dropped and its uses read the first's outputs. Layers whose
// registry entry is not `pure` (Dropout's random masks, BatchNormalization's moving-average
// updates in training) are never merged. Calls of different layers are never merged, even with
// equal weights: the weights may change (training, load_weights).
#include "compiler/passes/Pass.h"
#include "compiler/ir/OpRegistry.h"

#include <map>
#include <set>

namespace fgc {

namespace {

class CommonSubexpressions : public GraphPass {
public:
  std::string name() const override { return "cse"; }

  Expected<Changes> run(Graph &g, const PassOptions &) override {
    Changes changes;
    std::map<std::string, const Op *> seen;
    std::set<const Op *> merged;
    for (const auto &opPtr : g.ops) {
      const Op &op = *opPtr;
      if (op.layer->className == "InputLayer" || op.layer->subgraph || !op.layer->def ||
          !op.layer->def->pure)
        continue;
      std::string key = fmt::format("{}|{}", static_cast<const void *>(op.layer), op.scope);
      for (const Value *v : op.inputs)
        key += fmt::format("|{}", static_cast<const void *>(v));
      for (const auto &[k, v] : op.kwargs)
        key += "|" + k + "=" + attrToString(v);
      auto [it, fresh] = seen.emplace(key, &op);
      if (fresh)
        continue;
      const Op &first = *it->second;
      for (size_t k = 0; k < op.outputs.size(); ++k)
        replaceAllUses(g, op.outputs[k].get(), first.outputs[k].get());
      merged.insert(&op);
      changes.push_back(fmt::format("{} call {} is call {} again: merged", op.path(),
                                    op.nodeIndex, first.nodeIndex));
    }
    removeOps(g, [&](const Op &op) { return merged.count(&op) > 0; });
    return changes;
  }
};

} // namespace

std::unique_ptr<GraphPass> createCommonSubexpressionPass() {
  return std::make_unique<CommonSubexpressions>();
}

} // namespace fgc
