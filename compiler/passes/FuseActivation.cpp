// fuse-activation: a separate activation (an `Activation` layer, lowered to fgc_activation)
// whose input comes straight from a kernel with an activation epilogue left linear (Dense,
// Conv2D, Conv2DTranspose, Conv1D: `activation=None`) is folded into that kernel: the producer
// applies the activation and writes the activation's output directly, and the activation call
// goes. One pass over memory instead of two, and one tensor less.
//
// In a training step the pair has a backward pair too: fgc_activation_backward (dz = dy act'(.))
// then the kernel's backward reading dz. There the kernel's backward takes the activation as its
// own (its backward kernels apply dy act'(y) before the GEMM, in the same call), reading the
// activation's output and output gradient; the activation's backward call goes, and so do the
// pre-activation and its gradient. Only for activations whose derivative needs the output alone
// (not GELU, softplus, swish, which need the pre-activation that fusing removes).
//
// Only when nothing else reads the pre-activation (or, in training, its gradient), and never for
// softmax (not elementwise: the epilogue of a convolution would normalize the wrong axis).
// LeakyReLU has no epilogue in the kernels: it stays a separate call.
#include "compiler/passes/Pass.h"

#include <map>
#include <tuple>
#include <vector>

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

// The activations whose derivative fgc's backward kernels compute from the forward output alone
// (grad.h: fgc_activation_needs_preactivation is 0 for them).
bool derivativeFromOutput(const std::string &kind) {
  return kind != "FGC_ACT_GELU" && kind != "FGC_ACT_SOFTPLUS" && kind != "FGC_ACT_SWISH" &&
         kind != "FGC_ACT_SOFTMAX";
}

// Sets every activation enum of `args` (structs included) to `kind`.
void setActivation(std::vector<Arg> &args, const Arg &kind) {
  auto visit = [&](Arg &a, auto &self) -> void {
    if (a.kind == Arg::Kind::Enum && a.enumName.rfind("FGC_ACT_", 0) == 0)
      a = kind;
    for (Arg &f : a.fields)
      self(f, self);
  };
  for (Arg &a : args)
    visit(a, visit);
}

using Use = std::pair<size_t, size_t>; // (step, call)

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
    std::map<int, std::vector<Use>> uses;
    auto index = [&]() {
      uses.clear();
      for (size_t i = 0; i < steps.size(); ++i)
        for (size_t c = 0; c < steps[i].calls.size(); ++c) {
          std::vector<int> ids;
          for (const Arg &a : steps[i].calls[c].args)
            buffersOf(a, ids);
          for (const Arg &a : steps[i].calls[c].scratchArgs)
            buffersOf(a, ids);
          for (int id : ids) {
            auto &u = uses[rootOf(p, id)];
            if (u.empty() || u.back() != Use{i, c})
              u.push_back({i, c});
          }
        }
    };
    // An arena tensor of its own (not a view, not the caller's).
    auto arenaTensor = [&](int id) {
      return rootOf(p, id) == id && p.buffers[size_t(id)].kind == Buffer::Kind::Activation;
    };
    index();
    for (size_t i = 0; i < steps.size(); ++i) {
      if (steps[i].calls.size() != 1 || steps[i].calls[0].function != "fgc_activation")
        continue;
      KernelCall &act = steps[i].calls[0];
      const Arg kind = act.args[0];
      if (kind.enumName == "FGC_ACT_SOFTMAX" || act.args[1].kind != Arg::Kind::Buffer ||
          act.args[2].kind != Arg::Kind::Buffer)
        continue;
      int x = act.args[1].buffer, y = act.args[2].buffer;
      // x: an arena tensor that only its producer and us touch (and, in training, the two
      // backward calls below).
      if (!arenaTensor(x))
        continue;
      const auto &u = uses[x];
      if ((u.size() != 2 && u.size() != 4) || u[1] != Use{i, 0})
        continue;
      auto [ps, pc] = u[0];
      KernelCall &producer = steps[ps].calls[pc];
      Arg *epi = epilogue(producer);
      if (!epi || epi->enumName != "FGC_ACT_LINEAR")
        continue;
      // Training: backward of the activation, then of the producer, reading its gradient dx.
      size_t bs = 0, bd = 0, bc = 0;
      int dy = -1, dx = -1;
      if (u.size() == 4) {
        if (!derivativeFromOutput(kind.enumName))
          continue;
        bs = u[2].first;
        std::tie(bd, bc) = u[3];
        if (u[2].second != 0 || steps[bs].calls.size() != 1)
          continue;
        const KernelCall &back = steps[bs].calls[0];
        // fgc_activation_backward(kind, z, y, dy, dx, rows, cols, flags)
        if (back.function != "fgc_activation_backward" || back.args[0].enumName != kind.enumName ||
            back.args[1].kind != Arg::Kind::Buffer || back.args[1].buffer != x ||
            back.args[2].kind != Arg::Kind::Buffer || back.args[2].buffer != y ||
            back.args[3].kind != Arg::Kind::Buffer || back.args[4].kind != Arg::Kind::Buffer)
          continue;
        dy = back.args[3].buffer;
        dx = back.args[4].buffer;
        KernelCall &gemm = steps[bd].calls[bc];
        Arg *backEpi = epilogue(gemm);
        if (!arenaTensor(dx) || uses[dx] != std::vector<Use>{u[2], u[3]} ||
            gemm.function.find("backward") == std::string::npos || !backEpi ||
            backEpi->enumName != "FGC_ACT_LINEAR")
          continue;
        setActivation(gemm.args, kind);
        setActivation(gemm.scratchArgs, kind);
        for (auto *args : {&gemm.args, &gemm.scratchArgs})
          for (Arg &a : *args) {
            replaceBuffer(a, x, y);
            replaceBuffer(a, dx, dy);
          }
      }
      *epi = kind;
      for (Arg &a : producer.args)
        replaceBuffer(a, x, y);
      if (u.size() == 4) {
        changes.push_back(fmt::format("{} + {}{}: {} applied in {}'s epilogue, its gradient in "
                                      "{}'s backward",
                                      steps[ps].layerName, steps[i].layerName, what,
                                      kind.enumName, steps[ps].layerName, steps[ps].layerName));
        steps[bd].comment += fmt::format("; fused with {}", steps[bs].comment);
        steps.erase(steps.begin() + long(bs));
      } else {
        changes.push_back(fmt::format("{} + {}{}: {} applied in {}'s epilogue",
                                      steps[ps].layerName, steps[i].layerName, what,
                                      kind.enumName, steps[ps].layerName));
      }
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
