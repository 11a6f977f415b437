// fold-batch-norm: at inference, a BatchNormalization right after a Dense or Conv2D whose
// activation is linear is a per-channel affine map of the kernel's output, so it folds into the
// kernel and bias: x (W * scale) + (b * scale + shift). The BatchNormalization's pass over
// memory and its tensor go.
//
// The folded kernel and bias are not computed here: weights may be replaced at run time
// (load_weights, load, training updates), so the pass adds a call of the runtime's
// fgc_fold_batch_norm that computes them from the current parameters, in a step before the
// kernel. It reads only parameters, so constant-fold then moves it out of predict into the code
// run when the weights change; without constant-fold it runs in every predict (still correct).
//
// Which ops are linear maps with the channels last (OpDef::linearOutput) and which are
// per-channel affine maps (OpDef::channelAffine) is their registry entries' business. Inference
// only: training normalizes with batch statistics.
#include "compiler/passes/Pass.h"

#include "compiler/ir/OpRegistry.h"

#include <algorithm>

namespace fgc {

namespace {

class FoldBatchNorm : public ProgramPass {
public:
  std::string name() const override { return "fold-batch-norm"; }

  Expected<Changes> run(KernelProgram &p, const PassOptions &) override {
    Changes changes;
    std::vector<Step> &steps = p.steps;
    for (size_t j = 0; j < steps.size(); ++j) {
      if (steps[j].calls.size() != 1)
        continue;
      const OpDef *bnDef = OpRegistry::global().find(steps[j].className);
      ChannelAffineForm bn;
      if (!bnDef || !bnDef->channelAffine || !bnDef->channelAffine(steps[j].calls[0], bn))
        continue;
      int x = bn.input;
      if (rootOf(p, x) != x || p.buffers[size_t(x)].kind != Buffer::Kind::Activation)
        continue;
      auto uses = stepsUsing(p, steps);
      const auto &u = uses[x];
      if (u.size() != 2 || u[1] != j || steps[u[0]].calls.size() != 1)
        continue;
      size_t i = u[0];
      const OpDef *def = OpRegistry::global().find(steps[i].className);
      LinearForm lin;
      KernelCall &producer = steps[i].calls[0];
      if (!def || !def->linearOutput || !def->linearOutput(producer, lin) || lin.output != x ||
          lin.activation->enumName != "FGC_ACT_LINEAR" ||
          p.buffers[size_t(lin.kernel->buffer)].kind != Buffer::Kind::Param)
        continue;
      // The folded kernel and bias: buffers shaped like the kernel and its last axis.
      const Buffer kernel = p.buffers[size_t(lin.kernel->buffer)];
      Dim channels = kernel.shape.back();
      // Buffer names are C identifiers in generated code: unique (a shared Conv2D called twice,
      // each call followed by a BatchNormalization, folds twice).
      auto add = [&](const std::string &suffix, std::vector<Dim> shape) {
        Buffer b;
        b.kind = Buffer::Kind::Activation;
        b.shape = std::move(shape);
        b.name = uniqueBufferName(p, kernel.name + "_" + suffix);
        b.description = fmt::format("{} {}", suffix, shapeToString(b.shape));
        p.buffers.push_back(b);
        return int(p.buffers.size()) - 1;
      };
      int foldedKernel = add("bn_folded", kernel.shape);
      std::string kernelPath = kernel.description.substr(0, kernel.description.find(' '));
      p.buffers[size_t(foldedKernel)].description = fmt::format(
          "{} with {} folded in {}", kernelPath, steps[j].layerName, shapeToString(kernel.shape));
      int foldedBias = add("bn_folded_bias", {channels});
      p.buffers[size_t(foldedBias)].name = uniqueBufferName(
          p, kernel.name.substr(0, kernel.name.rfind("_kernel")) + "_bias_bn_folded");
      p.buffers[size_t(foldedBias)].description = fmt::format(
          "bias of {} with {} folded in ({})", steps[i].layerName, steps[j].layerName, channels);
      auto buf = [](int id) {
        Arg a;
        a.kind = Arg::Kind::Buffer;
        a.buffer = id;
        return a;
      };
      auto size = [](int64_t v) {
        Arg a;
        a.kind = Arg::Kind::Size;
        a.size = SymSize::constant(v);
        return a;
      };
      KernelCall fold;
      fold.function = "fgc_fold_batch_norm";
      fold.args = {*lin.kernel, *lin.bias, size(kernel.elements().coeff / channels),
                   size(channels)};
      fold.args.insert(fold.args.end(), bn.foldArgs.begin(), bn.foldArgs.end());
      fold.args.push_back(buf(foldedKernel));
      fold.args.push_back(buf(foldedBias));
      Step foldStep;
      foldStep.layerName = steps[j].layerName;
      foldStep.className = "FoldBatchNorm";
      foldStep.comment = fmt::format("{} folded into the kernel and bias of {}", steps[j].layerName,
                                     steps[i].layerName);
      foldStep.calls = {fold};
      // The producer now reads the folded weights and writes the BatchNormalization's output.
      *lin.kernel = buf(foldedKernel);
      *lin.bias = buf(foldedBias);
      for (Arg &a : producer.args)
        replaceBuffer(a, x, bn.output);
      steps[i].comment += "; with " + steps[j].comment + " folded in";
      changes.push_back(fmt::format("{} + {}: {} folded into {}'s kernel and bias",
                                    steps[i].layerName, steps[j].layerName, steps[j].layerName,
                                    steps[i].layerName));
      steps.erase(steps.begin() + long(j));
      steps.insert(steps.begin() + long(i), std::move(foldStep));
    }
    return changes;
  }
};

} // namespace

std::unique_ptr<ProgramPass> createFoldBatchNormPass() { return std::make_unique<FoldBatchNorm>(); }

} // namespace fgc
