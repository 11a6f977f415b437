// fuse-activation: a separate activation (an `Activation` layer, lowered to fgc_activation)
// whose input comes straight from a kernel with an activation epilogue left linear (Dense,
// Conv2D, Conv2DTranspose: `activation=None`) is folded into that kernel: the producer applies
// the activation and writes the activation's output directly, and the activation call goes. One
// pass over memory instead of two, and one tensor less.
//
// Only when nothing else reads the pre-activation (in training, the activation's gradient reads
// it, so training steps keep the pair unless that path needs no gradient), and never for
// softmax (not elementwise: the epilogue of a convolution would normalize the wrong axis).
#include "compiler/passes/Pass.h"

#include <map>

namespace fgc {

namespace {

// The activation-epilogue argument of a call (top level or in its parameter struct), or null.
Arg *epilogue(KernelCall &k) {
  Arg *found = nullptr;
  int count = 0;
  auto visit = [&](Arg &a, auto &self) -> void {
    if (a.kind == Arg::Kind::Enum && a.enumName.rfind("FGC_ACT_", 0) == 0) {
      found = &a;
      ++count;
    }
    for (Arg &f : a.fields)
      self(f, self);
  };
  for (Arg &a : k.args)
    visit(a, visit);
  return count == 1 ? found : nullptr;
}

class FuseActivation : public ProgramPass {
public:
  std::string name() const override { return "fuse-activation"; }

  Expected<Changes> run(KernelProgram &p, const PassOptions &) override {
    Changes changes;
    fuse(p, p.steps, "", changes);
    if (p.training)
      fuse(p, p.trainSteps, " (training)", changes);
    return changes;
  }

private:
  static void fuse(KernelProgram &p, std::vector<Step> &steps, const std::string &what,
                   Changes &changes) {
    // Every call that mentions each root buffer: (step, call).
    std::map<int, std::vector<std::pair<size_t, size_t>>> uses;
    auto index = [&]() {
      uses.clear();
      for (size_t i = 0; i < steps.size(); ++i)
        for (size_t c = 0; c < steps[i].calls.size(); ++c) {
          std::vector<int> ids;
          for (const Arg &a : steps[i].calls[c].args)
            buffersOf(a, ids);
          for (int id : ids) {
            auto &u = uses[rootOf(p, id)];
            if (u.empty() || u.back() != std::make_pair(i, c))
              u.push_back({i, c});
          }
        }
    };
    index();
    for (size_t i = 0; i < steps.size(); ++i) {
      if (steps[i].calls.size() != 1 || steps[i].calls[0].function != "fgc_activation")
        continue;
      KernelCall &act = steps[i].calls[0];
      const Arg &kind = act.args[0];
      if (kind.enumName == "FGC_ACT_SOFTMAX" || act.args[1].kind != Arg::Kind::Buffer ||
          act.args[2].kind != Arg::Kind::Buffer)
        continue;
      int x = act.args[1].buffer, y = act.args[2].buffer;
      // x: an arena tensor (not a view) that exactly two calls touch: its producer, then us.
      if (rootOf(p, x) != x || p.buffers[size_t(x)].kind != Buffer::Kind::Activation)
        continue;
      const auto &u = uses[x];
      if (u.size() != 2 || u[1] != std::make_pair(i, size_t(0)))
        continue;
      auto [ps, pc] = u[0];
      if (steps[ps].calls.size() != 1)
        continue;
      KernelCall &producer = steps[ps].calls[pc];
      Arg *epi = epilogue(producer);
      if (!epi || epi->enumName != "FGC_ACT_LINEAR")
        continue;
      *epi = kind;
      for (Arg &a : producer.args)
        replaceBuffer(a, x, y);
      changes.push_back(fmt::format("{} + {}{}: {} applied in {}'s epilogue", steps[ps].layerName,
                                    steps[i].layerName, what, kind.enumName,
                                    steps[ps].layerName));
      steps[ps].comment += fmt::format("; fused with {}", steps[i].comment);
      steps.erase(steps.begin() + long(i));
      --i;
      index();
    }
  }
};

} // namespace

std::unique_ptr<ProgramPass> createFuseActivationPass() {
  return std::make_unique<FuseActivation>();
}

} // namespace fgc
