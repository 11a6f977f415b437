// Keras's view of a graph's topology: the layer order of `model.layers` and the nodes by depth.
//
// Keras orders a functional model's layers by decreasing depth from the outputs, ties broken by
// the order a depth-first walk from the outputs first meets each layer; `model.summary()`,
// `plot_model` and saved configs all follow it, and so does fgc, so its output matches Keras's.
#pragma once

#include "compiler/ir/Graph.h"

#include <map>
#include <vector>

namespace fgc {

struct KerasTopology {
  std::vector<Layer *> layers;                // model.layers
  std::map<int, std::vector<Op *>> nodesByDepth; // depth -> ops (Keras's _nodes_by_depth)
  std::vector<Op *> networkOps;               // every op of the network

  // Keras's sequential-like test used by summary(): one node per depth with one input, and no
  // layer called twice.
  bool isSequentialLike() const;
};

KerasTopology kerasTopology(const Graph &graph);

// The node index Keras shows for call `nodeIndex` of `layer` ("encoder[1][0]"): a nested model
// has an internal node 0 of its own, so its calls count from 1.
int kerasNodeIndex(const Layer &layer, int nodeIndex);

} // namespace fgc
