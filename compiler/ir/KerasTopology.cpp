// Port of Keras's _map_graph_network ordering rules (see KerasTopology.h).
#include "compiler/ir/KerasTopology.h"

#include <algorithm>
#include <set>

namespace fgc {

int kerasNodeIndex(const Layer &layer, int nodeIndex) {
  return layer.isModel() ? nodeIndex + 1 : nodeIndex;
}

KerasTopology kerasTopology(const Graph &graph) {
  // 1. Depth-first walk from the outputs (Keras's _build_map): ops in post-order, and the order
  //    each layer is first met.
  std::vector<Op *> decreasingDepth;
  std::map<const Layer *, int> layerIndex;
  std::set<const Op *> finished;
  for (Value *out : graph.outputs) {
    // Iterative version of the recursive helper: (op, next input to visit).
    std::vector<std::pair<Op *, size_t>> stack;
    auto enter = [&](Op *op) {
      if (finished.count(op))
        return;
      if (!layerIndex.count(op->layer))
        layerIndex.emplace(op->layer, static_cast<int>(layerIndex.size()));
      stack.push_back({op, 0});
    };
    enter(out->producer);
    while (!stack.empty()) {
      auto &[op, next] = stack.back();
      if (next < op->inputs.size()) {
        // The graph is acyclic (the frontend checked), so the producer is never on the stack.
        enter(op->inputs[next++]->producer);
        continue;
      }
      if (finished.insert(op).second)
        decreasingDepth.push_back(op);
      stack.pop_back();
    }
  }

  // 2. Depths: an op's depth is one more than the deepest op that consumes it; a layer takes the
  //    maximum depth over its ops.
  std::map<const Op *, int> nodeDepth;
  std::map<const Layer *, int> layerDepth;
  std::vector<const Op *> depthOrder; // insertion order of nodeDepth keys, as Python dicts keep
  auto setNodeDepth = [&](const Op *op, int d) {
    if (!nodeDepth.count(op))
      depthOrder.push_back(op);
    nodeDepth[op] = d;
  };
  for (auto it = decreasingDepth.rbegin(); it != decreasingDepth.rend(); ++it) {
    Op *op = *it;
    int depth = nodeDepth.count(op) ? nodeDepth[op] : 0;
    if (!nodeDepth.count(op))
      setNodeDepth(op, 0);
    int previous = layerDepth.count(op->layer) ? layerDepth[op->layer] : 0;
    depth = std::max(depth, previous);
    layerDepth[op->layer] = depth;
    setNodeDepth(op, depth);
    for (Value *in : op->inputs) {
      const Op *parent = in->producer;
      int prev = nodeDepth.count(parent) ? nodeDepth[parent] : 0;
      setNodeDepth(parent, std::max(depth + 1, prev));
    }
  }
  // Inputs that no output depends on still belong to the model, at depth 0.
  for (Value *in : graph.inputs) {
    const Layer *l = in->producer->layer;
    if (!layerDepth.count(l)) {
      layerDepth[l] = 0;
      layerIndex[l] = -1;
      setNodeDepth(in->producer, 0);
    }
  }

  KerasTopology t;
  for (const Op *op : depthOrder)
    t.nodesByDepth[nodeDepth[op]].push_back(const_cast<Op *>(op));
  std::map<int, std::vector<Layer *>> layersByDepth;
  for (const auto &l : graph.layers)
    if (layerDepth.count(l.get()))
      layersByDepth[layerDepth[l.get()]].push_back(l.get());
  for (auto it = layersByDepth.rbegin(); it != layersByDepth.rend(); ++it) {
    auto ls = it->second;
    std::stable_sort(ls.begin(), ls.end(),
                     [&](Layer *a, Layer *b) { return layerIndex[a] < layerIndex[b]; });
    t.layers.insert(t.layers.end(), ls.begin(), ls.end());
  }
  for (auto it = t.nodesByDepth.rbegin(); it != t.nodesByDepth.rend(); ++it)
    t.networkOps.insert(t.networkOps.end(), it->second.begin(), it->second.end());
  return t;
}

bool KerasTopology::isSequentialLike() const {
  for (const auto &[depth, ops] : nodesByDepth)
    if (ops.size() > 1 || (ops.size() == 1 && ops[0]->inputs.size() > 1))
      return false;
  std::set<const Op *> net(networkOps.begin(), networkOps.end());
  for (const Layer *l : layers) {
    int inNet = 0;
    for (const Op *op : l->calls)
      inNet += net.count(op) ? 1 : 0;
    if (inNet > 1)
      return false;
  }
  return true;
}

} // namespace fgc
