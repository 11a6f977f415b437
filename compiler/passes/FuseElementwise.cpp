// fuse-elementwise: a chain of elementwise ops in the inference program — merges (Add,
// Average) and activations, e.g. the Add + ReLU of a residual block — becomes one call of the
// runtime's fgc_elementwise, which runs the whole chain per element in one pass over memory
// instead of one pass (and one intermediate tensor) per op.
//
// Which ops are elementwise, and how each reads as fgc_elementwise instructions, is their
// registry entry's business (OpDef::elementwise); this pass only chains them. A producer joins
// its consumer when the producer's output is an arena tensor that nothing else reads (not a
// model output, not a view's root read elsewhere) and is the consumer's first input, or any of
// its inputs when the consumer is symmetric (a sum). The fused call runs where the consumer ran.
// Inference only: in training the backward passes read the intermediates.
#include "compiler/passes/Pass.h"

#include "compiler/ir/OpRegistry.h"

#include <fgc/runtime/kernels.h>

#include <algorithm>
#include <map>

namespace fgc {

namespace {

constexpr const char *kFused = "fgc_elementwise";

// A fused call: fgc_elementwise(program, program_length, num_inputs, inputs, count, output).
KernelCall fusedCall(const KernelProgram &p, const ElementwiseForm &f) {
  Arg program, length, count, inputs, n, output;
  program.kind = Arg::Kind::IntList;
  for (auto [op, operand] : f.program) {
    program.sizes.push_back(SymSize::constant(op));
    program.sizes.push_back(SymSize::constant(operand));
  }
  length.kind = count.kind = n.kind = Arg::Kind::Size;
  length.size = SymSize::constant(int64_t(f.program.size()));
  count.size = SymSize::constant(int64_t(f.inputs.size()));
  inputs.kind = Arg::Kind::BufferList;
  inputs.buffers = f.inputs;
  n.size = p.buffers[size_t(f.output)].elements();
  output.kind = Arg::Kind::Buffer;
  output.buffer = f.output;
  KernelCall k;
  k.function = kFused;
  k.args = {program, length, count, inputs, n, output};
  k.inPlaceOutput = 5; // the output may alias any input
  return k;
}

// The elementwise form of a step (one call: a fused call, or an op whose registry entry reads
// it), or false.
bool formOf(const Step &st, ElementwiseForm &f) {
  if (st.calls.size() != 1)
    return false;
  const KernelCall &k = st.calls[0];
  if (k.function == kFused) {
    f = {};
    for (size_t i = 0; i + 1 < k.args[0].sizes.size(); i += 2)
      f.program.push_back({int(k.args[0].sizes[i].coeff), int(k.args[0].sizes[i + 1].coeff)});
    f.inputs = k.args[3].buffers;
    f.output = k.args[5].buffer;
    return true;
  }
  const OpDef *def = OpRegistry::global().find(st.className);
  if (!def || !def->elementwise)
    return false;
  f = {};
  return def->elementwise(k, f);
}

class FuseElementwise : public ProgramPass {
public:
  std::string name() const override { return "fuse-elementwise"; }

  Expected<Changes> run(KernelProgram &p, const PassOptions &) override {
    Changes changes;
    std::vector<Step> &steps = p.steps;
    std::map<std::string, std::vector<std::string>> parts; // fused step -> its layers
    bool again = true;
    while (again) {
      again = false;
      auto users = stepsUsing(p, steps);
      for (size_t j = 0; j < steps.size() && !again; ++j) {
        ElementwiseForm consumer;
        if (!formOf(steps[j], consumer))
          continue;
        for (size_t slot = 0; slot < consumer.inputs.size() && !again; ++slot) {
          int x = consumer.inputs[slot];
          if (slot != 0 && !consumer.symmetric)
            break;
          if (rootOf(p, x) != x || p.buffers[size_t(x)].kind != Buffer::Kind::Activation ||
              std::count(consumer.inputs.begin(), consumer.inputs.end(), x) != 1)
            continue;
          const auto &u = users[x];
          if (u.size() != 2 || u[1] != j)
            continue;
          size_t i = u[0];
          ElementwiseForm producer;
          if (!formOf(steps[i], producer) || producer.output != x)
            continue;
          // The consumer's value starts from x: put it first (sums only), then chain.
          std::swap(consumer.inputs[0], consumer.inputs[slot]);
          ElementwiseForm fused = producer;
          fused.output = consumer.output;
          std::vector<int> position(consumer.inputs.size(), -1);
          for (size_t k = 1; k < consumer.inputs.size(); ++k) {
            position[k] = int(fused.inputs.size());
            fused.inputs.push_back(consumer.inputs[k]);
          }
          for (auto [op, operand] : consumer.program) {
            // After the swap, "add the input at `slot`" adds the former first input: the same
            // sum (symmetric forms only add each other input once).
            if (op == FGC_EW_ADD)
              operand = position[size_t(operand)];
            fused.program.push_back({op, operand});
          }
          Step merged;
          merged.layerName = steps[i].layerName + " + " + steps[j].layerName;
          merged.className = "FusedElementwise";
          merged.comment = kPrefix + unprefixed(steps[i].comment) + "; then " +
                           unprefixed(steps[j].comment);
          merged.calls = {fusedCall(p, fused)};
          std::vector<std::string> members = membersOf(steps[i], parts);
          for (auto &m : membersOf(steps[j], parts))
            members.push_back(m);
          parts[merged.layerName] = members;
          steps[j] = std::move(merged);
          steps.erase(steps.begin() + long(i));
          again = true;
        }
      }
    }
    for (const Step &st : steps)
      if (auto it = parts.find(st.layerName); it != parts.end())
        changes.push_back(fmt::format("{}: {} in one elementwise loop", st.layerName,
                                      fmt::join(it->second, ", ")));
    return changes;
  }

private:
  static constexpr const char *kPrefix = "fused elementwise loop: ";

  static std::string unprefixed(const std::string &comment) {
    return comment.rfind(kPrefix, 0) == 0 ? comment.substr(std::string(kPrefix).size()) : comment;
  }

  // The layers a step computes, "sum (Add)", for the change lines.
  static std::vector<std::string>
  membersOf(const Step &st, const std::map<std::string, std::vector<std::string>> &parts) {
    if (auto it = parts.find(st.layerName); it != parts.end())
      return it->second;
    return {st.layerName + " (" + st.className + ")"};
  }
};

} // namespace

std::unique_ptr<ProgramPass> createFuseElementwisePass() {
  return std::make_unique<FuseElementwise>();
}

} // namespace fgc
