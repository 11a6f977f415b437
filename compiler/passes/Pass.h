// The pass interfaces.
//
// A pass is one rewrite with one purpose, in one file, named in kebab-case. Graph passes rewrite
// the IR (compiler/ir/Graph.h) before lowering; the same optimized graph is lowered for inference
// and for training, so a graph pass must preserve both (Dropout and BatchNormalization behave
// differently in training: graph passes never remove them). Program passes rewrite a lowered
// KernelProgram, where inference and training are separate step lists. Each pass returns what it
// changed, one line per change naming the user's layers (empty: nothing changed), or an error.
// The pipeline (PassManager.cpp) lists them in order.
#pragma once

#include "compiler/codegen/KernelProgram.h"
#include "compiler/ir/Graph.h"

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace fgc {

// What passes may be told by the driver.
struct PassOptions {
  // Outputs to keep, by output layer name (`fgc compile --outputs`); empty: all.
  std::vector<std::string> outputs;
};

using Changes = std::vector<std::string>;

class GraphPass {
public:
  virtual ~GraphPass() = default;
  virtual std::string name() const = 0;
  virtual Expected<Changes> run(Graph &graph, const PassOptions &options) = 0;
};

class ProgramPass {
public:
  virtual ~ProgramPass() = default;
  virtual std::string name() const = 0;
  virtual Expected<Changes> run(KernelProgram &program, const PassOptions &options) = 0;
};

// The passes (one file each).
std::unique_ptr<GraphPass> createInlineNestedPass();
std::unique_ptr<GraphPass> createDeadNodeEliminationPass();
std::unique_ptr<GraphPass> createCommonSubexpressionPass();
std::unique_ptr<ProgramPass> createDropDropoutPass();
std::unique_ptr<ProgramPass> createFoldBatchNormPass();
std::unique_ptr<ProgramPass> createConstantFoldPass();
std::unique_ptr<ProgramPass> createFuseActivationPass();
std::unique_ptr<ProgramPass> createFuseElementwisePass();
std::unique_ptr<ProgramPass> createTransformWeightsPass();

// Program editing shared by the program passes: for every root buffer, the steps whose calls
// (arguments or scratch arguments) mention it, in order, each step once.
std::map<int, std::vector<size_t>> stepsUsing(const KernelProgram &program,
                                              const std::vector<Step> &steps);
// `base`, or `base_1`, `base_2`, ...: the first name no buffer of `p` has yet (for buffers a
// pass adds).
inline std::string uniqueBufferName(const KernelProgram &p, const std::string &base) {
  std::string n = base;
  for (int k = 1; std::any_of(p.buffers.begin(), p.buffers.end(),
                              [&](const Buffer &b) { return b.name == n; });
       ++k)
    n = base + "_" + std::to_string(k);
  return n;
}

// Every mention of buffer `from` in an argument (structs and lists included) becomes `to`.
void replaceBuffer(Arg &arg, int from, int to);

// Graph editing shared by the passes.
// Every use of `from` (op inputs, model outputs) becomes a use of `to`.
void replaceAllUses(Graph &graph, const Value *from, Value *to);
// Moves the ops for which `remove` is true out of graph.ops (into graph.removedOps).
template <typename Pred> size_t removeOps(Graph &graph, Pred remove) {
  size_t n = 0;
  std::vector<std::unique_ptr<Op>> kept;
  for (auto &op : graph.ops) {
    if (remove(*op)) {
      graph.removedOps.push_back(std::move(op));
      ++n;
    } else {
      kept.push_back(std::move(op));
    }
  }
  graph.ops = std::move(kept);
  return n;
}

} // namespace fgc
