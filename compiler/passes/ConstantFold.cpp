// constant-fold: a kernel call of the inference program that reads nothing but parameters (and
// what other such calls computed) gives the same result in every predict. Such calls move out of
// predict into KernelProgram::weightSteps, which generated code runs only when the weights
// change (on the first predict, after load_weights / load / a training step); the tensors they
// write become Derived buffers, kept by the model object instead of the arena.
//
// In Keras functional graphs every layer depends on an input, so what folds is what other
// passes create from parameters alone: fold-batch-norm's folded kernels and biases. A call
// qualifies when its arguments are parameters, derived buffers, tensors it is the first to
// touch (its outputs), or constants, and it needs no scratch. Inference only.
#include "compiler/passes/Pass.h"

#include <algorithm>

namespace fgc {

namespace {

class ConstantFold : public ProgramPass {
public:
  std::string name() const override { return "constant-fold"; }

  Expected<Changes> run(KernelProgram &p, const PassOptions &) override {
    Changes changes;
    auto uses = stepsUsing(p, p.steps);
    std::vector<Step> kept;
    for (size_t i = 0; i < p.steps.size(); ++i) {
      Step &st = p.steps[i];
      std::vector<int> outputs;
      if (!st.calls.empty() && foldable(p, st, i, uses, outputs)) {
        for (int id : outputs) {
          Buffer &b = p.buffers[size_t(id)];
          b.kind = Buffer::Kind::Derived;
          b.index = int(p.derivedFloats);
          p.derivedFloats += (b.elements().coeff + 15) / 16 * 16; // 64-byte aligned
        }
        changes.push_back(fmt::format("{}: {} reads only weights: runs when they change, not "
                                      "in every predict",
                                      st.layerName, st.calls[0].function));
        p.weightSteps.push_back(std::move(st));
        continue;
      }
      kept.push_back(std::move(st));
    }
    p.steps = std::move(kept);
    return changes;
  }

private:
  static bool constantArg(const KernelProgram &p, const Arg &a, size_t step,
                          std::map<int, std::vector<size_t>> &uses, std::vector<int> &outputs) {
    switch (a.kind) {
    case Arg::Kind::Null:
    case Arg::Kind::Int:
    case Arg::Kind::Float:
    case Arg::Kind::Enum: return true;
    case Arg::Kind::Size: return a.size.isConstant();
    case Arg::Kind::Buffer: {
      const Buffer &b = p.buffers[size_t(a.buffer)];
      if (b.kind == Buffer::Kind::Param || b.kind == Buffer::Kind::Derived)
        return true;
      // A tensor of constant size that this step is the first to touch: its output.
      if (b.kind != Buffer::Kind::Activation || !b.elements().isConstant() ||
          !b.sizeFunction.empty() || b.dtype != schema::FLOAT32 || uses[a.buffer].empty() ||
          uses[a.buffer][0] != step)
        return false;
      outputs.push_back(a.buffer);
      return true;
    }
    case Arg::Kind::Struct: // parameter structs: constant when every field is
      return std::all_of(a.fields.begin(), a.fields.end(), [&](const Arg &f) {
        return f.kind != Arg::Kind::Buffer && constantArg(p, f, step, uses, outputs);
      });
    default: return false; // lists, scratch, run-time values: left alone
    }
  }

  static bool foldable(const KernelProgram &p, const Step &st, size_t step,
                       std::map<int, std::vector<size_t>> &uses, std::vector<int> &outputs) {
    for (const KernelCall &k : st.calls) {
      if (!k.scratchFunction.empty())
        return false;
      for (const Arg &a : k.args)
        if (!constantArg(p, a, step, uses, outputs))
          return false;
    }
    std::sort(outputs.begin(), outputs.end());
    outputs.erase(std::unique(outputs.begin(), outputs.end()), outputs.end());
    return !outputs.empty();
  }
};

} // namespace

std::unique_ptr<ProgramPass> createConstantFoldPass() { return std::make_unique<ConstantFold>(); }

} // namespace fgc
