// dead-node-elimination: removes the ops that no model output needs. With `fgc compile
// --outputs a,b` the model keeps only those outputs (in that order) first, so a feature
// extractor compiled for a few of its outputs computes only what they need; the training config's
// losses and metrics for the dropped outputs go with them. The model's inputs always stay (the
// generated class keeps its signature), even when no remaining output reads them.
#include "compiler/passes/Pass.h"

#include <set>

namespace fgc {

namespace {

class DeadNodeElimination : public GraphPass {
public:
  std::string name() const override { return "dead-node-elimination"; }

  Expected<Changes> run(Graph &g, const PassOptions &options) override {
    Changes changes;
    if (!options.outputs.empty())
      FGC_TRY(selectOutputs(g, options.outputs, changes));
    std::set<const Value *> needed(g.outputs.begin(), g.outputs.end());
    std::set<const Op *> dead;
    for (auto it = g.ops.rbegin(); it != g.ops.rend(); ++it) {
      const Op &op = **it;
      bool used = op.layer->className == "InputLayer";
      for (const auto &v : op.outputs)
        used |= needed.count(v.get()) > 0;
      if (!used) {
        dead.insert(&op);
        continue;
      }
      needed.insert(op.inputs.begin(), op.inputs.end());
    }
    for (const auto &op : g.ops)
      if (dead.count(op.get()))
        changes.push_back("removed " + op->path() +
                          (op->nodeIndex ? fmt::format(" (call {})", op->nodeIndex) : ""));
    removeOps(g, [&](const Op &op) { return dead.count(&op) > 0; });
    return changes;
  }

private:
  static Status selectOutputs(Graph &g, const std::vector<std::string> &names, Changes &changes) {
    std::vector<std::string> all;
    for (size_t i = 0; i < g.outputs.size(); ++i)
      all.push_back(g.outputName(i));
    std::vector<Value *> kept;
    std::vector<std::string> keptNames;
    for (const std::string &n : names) {
      auto it = std::find(all.begin(), all.end(), n);
      if (it == all.end())
        return Error::format("model '{}' has no output '{}' (outputs: {})", g.name, n,
                             fmt::join(all, ", "));
      kept.push_back(g.outputs[size_t(it - all.begin())]);
      keptNames.push_back(n);
    }
    for (const std::string &n : all)
      if (std::find(names.begin(), names.end(), n) == names.end())
        changes.push_back("dropped output " + n);
    g.outputs = kept;
    g.outputNames = keptNames;
    // Losses and metrics of the dropped outputs.
    auto keep = [&](const std::string &output) {
      return output.empty() || std::find(names.begin(), names.end(), output) != names.end();
    };
    schema::TrainingConfig t = g.training;
    t.clear_losses();
    t.clear_metrics();
    for (const auto &l : g.training.losses())
      if (keep(l.output()))
        *t.add_losses() = l;
    for (const auto &m : g.training.metrics())
      if (keep(m.output()))
        *t.add_metrics() = m;
    g.training = t;
    return Status::ok();
  }
};

} // namespace

std::unique_ptr<GraphPass> createDeadNodeEliminationPass() {
  return std::make_unique<DeadNodeElimination>();
}

} // namespace fgc
