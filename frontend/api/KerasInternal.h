// Internal state behind the functional API's handles (see fgc/keras.h). Not installed.
#pragma once

#include "fgc/keras.h"

#include "compiler/ir/Graph.h"
#include "compiler/ir/OpRegistry.h"

#include <map>
#include <memory>

namespace fgc::keras::detail {

struct LayerState {
  fgc::Layer ir;                     // class, name, config, parameters; subgraph for models
  int calls = 0;                     // calls made so far (Keras's len(_inbound_nodes))
  std::vector<std::weak_ptr<NodeState>> nodes; // by call index; kept alive by their tensors
  std::shared_ptr<ModelState> model; // set for models
};

struct NodeState {
  std::shared_ptr<LayerState> layer;
  int callIndex = 0;
  std::vector<Tensor> inputs;
  std::vector<TensorType> outputs;
};

struct ModelState {
  std::string name;
  std::vector<Tensor> inputs, outputs;
  uint64_t seed = 0;
  schema::TrainingConfig training;
  // The network: layers in order of discovery, each one's calls, and call renumbering.
  std::vector<std::shared_ptr<LayerState>> layers;
  std::map<std::string, std::shared_ptr<LayerState>> byName;
  std::map<const LayerState *, std::vector<NodeState *>> nodesOf;
  std::map<const NodeState *, int> localIndex;

  void discover();
  schema::Model toSchema() const;
  schema::TensorRef refTo(const Tensor &t) const;
  // Builds the model's IR graph into `ir.subgraph` (validating it like a loaded file).
  void rebuildGraph(fgc::Layer &ir) const;
};

std::string uniqueName(const std::string &base, bool zeroBased);
std::string toSnakeCase(const std::string &className);
[[noreturn]] void raise(const Error &e);
std::shared_ptr<LayerState> makeLayer(const std::string &className, Config config,
                                      const std::string &name);
std::vector<Tensor> callLayer(const std::shared_ptr<LayerState> &layer,
                              const std::vector<Tensor> &inputs);

} // namespace fgc::keras::detail
