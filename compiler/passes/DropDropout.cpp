// drop-dropout: Dropout (and SpatialDropout2D) is the identity at inference. Lowering already
// makes its output a view of its input (no copy, no kernel call: OpDef::identityAtInference
// ops lower with lowerAsView), so what is left is an empty step; this pass removes it from the
// inference program and reports it, so that the schedule and --report show the model that
// actually runs. The training program keeps its Dropout (random masks, and their gradient).
#include "compiler/passes/Pass.h"

#include "compiler/ir/OpRegistry.h"

namespace fgc {

namespace {

class DropDropout : public ProgramPass {
public:
  std::string name() const override { return "drop-dropout"; }

  Expected<Changes> run(KernelProgram &p, const PassOptions &) override {
    Changes changes;
    std::vector<Step> kept;
    for (Step &st : p.steps) {
      const OpDef *def = OpRegistry::global().find(st.className);
      if (def && def->identityAtInference && st.calls.empty()) {
        changes.push_back(fmt::format("{} ({}): the identity at inference, removed", st.layerName,
                                      st.className));
        continue;
      }
      kept.push_back(std::move(st));
    }
    p.steps = std::move(kept);
    return changes;
  }
};

} // namespace

std::unique_ptr<ProgramPass> createDropDropoutPass() { return std::make_unique<DropDropout>(); }

} // namespace fgc
