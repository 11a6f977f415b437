// transform-weights: an inference call with a faster form that reads one of its weights
// transformed ahead of time (OpDef::weightTransform; a 3x3 stride-1 Conv2D as a Winograd
// F(4x4, 3x3) or F(3x3, 3x3) convolution, its kernel transformed to 36 or 25 points per
// channel pair) is replaced by
// that form, and a step before it computes the transformed weights into a new buffer.
//
// The transform reads only weights (parameters, or what fold-batch-norm derived from them), so
// constant-fold then moves it out of predict: it runs when the weights change (first predict,
// load_weights, load, a training step), and predict reads the transformed buffer. Without
// constant-fold it runs in every predict (still correct, slower). Inference only: training
// updates the weights every step. Which ops have such a form, and when it pays, is their
// registry entries' business.
#include "compiler/passes/Pass.h"

#include "compiler/ir/OpRegistry.h"

#include <algorithm>

namespace fgc {

namespace {

class TransformWeights : public ProgramPass {
public:
  std::string name() const override { return "transform-weights"; }

  Expected<Changes> run(KernelProgram &p, const PassOptions &) override {
    Changes changes;
    std::vector<Step> out;
    for (Step &st : p.steps) {
      const OpDef *def = OpRegistry::global().find(st.className);
      WeightTransformForm form;
      if (!def || !def->weightTransform || st.calls.size() != 1 ||
          !def->weightTransform(st.calls[0], form)) {
        out.push_back(std::move(st));
        continue;
      }
      const Arg weight = st.calls[0].args[size_t(form.weightArg)];
      const Buffer &source = p.buffers[size_t(weight.buffer)];
      Buffer b;
      b.kind = Buffer::Kind::Activation;
      b.shape = form.shape;
      b.name = uniqueBufferName(p, source.name + "_" + form.suffix);
      std::string what = source.description.substr(0, source.description.find(' '));
      b.description = fmt::format("{} transformed for {} {}", what, form.description,
                                  shapeToString(b.shape));
      p.buffers.push_back(b);
      Arg transformed;
      transformed.kind = Arg::Kind::Buffer;
      transformed.buffer = int(p.buffers.size()) - 1;

      Step pre;
      pre.layerName = st.layerName;
      pre.className = "TransformWeights";
      pre.comment = fmt::format("{}: {}", st.layerName, b.description);
      pre.calls = {form.transform};
      pre.calls[0].args.back() = transformed;
      form.replacement.args[size_t(form.weightArg)] = transformed;
      st.calls[0] = form.replacement;
      st.comment += fmt::format("; as a {} convolution", form.description);
      changes.push_back(fmt::format("{}: {} (the transformed weights are computed when the "
                                    "weights change)",
                                    st.layerName, form.description));
      out.push_back(std::move(pre));
      out.push_back(std::move(st));
    }
    p.steps = std::move(out);
    return changes;
  }
};

} // namespace

std::unique_ptr<ProgramPass> createTransformWeightsPass() {
  return std::make_unique<TransformWeights>();
}

} // namespace fgc
