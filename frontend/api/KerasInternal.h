// Internal state behind the functional API's handles (see fgc/keras.h). Not installed.
#pragma once

#include "fgc/keras.h"

#include "compiler/ir/Graph.h"
#include "compiler/ir/OpRegistry.h"

#include <map>
#include <memory>
#include <set>

namespace fgc::keras::detail {

struct LayerState {
  fgc::Layer ir;                     // class, name, config, parameters; subgraph for models
  int calls = 0;                     // calls made so far (Keras's len(_inbound_nodes))
  std::vector<std::weak_ptr<NodeState>> nodes; // by call index; kept alive by their tensors
  std::shared_ptr<ModelState> model; // set for models
  std::shared_ptr<CustomLayer> custom; // set for custom layers: the user's object
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

// The automatic-name counters (Keras's per-session name uids).
std::map<std::string, int> &nameCounters();
std::string uniqueName(const std::string &base, bool zeroBased);
std::string toSnakeCase(const std::string &className);
[[noreturn]] void raise(const Error &e);
std::shared_ptr<LayerState> makeLayer(const std::string &className, Config config,
                                      const std::string &name);
std::vector<Tensor> callLayer(const std::shared_ptr<LayerState> &layer,
                              const std::vector<Tensor> &inputs);

// A scan body being traced (ops::scan, Custom.cpp): the tensors from outside the body that its
// operations read become extra inputs of the body. callLayer substitutes each such tensor with a
// placeholder Input standing for it, and notes the nodes the trace makes.
struct ScanCapture {
  std::set<const NodeState *> own;        // nodes made during this trace
  std::vector<Tensor> outer, placeholders; // captured tensors and the body inputs for them
};
// The innermost scan body being traced on this thread, or null.
ScanCapture *&activeScanCapture();

// Custom layers (Custom.cpp). The object a registered class makes from `config` (the layer's
// config without name, trainable and dtype); throws for unregistered classes.
std::shared_ptr<CustomLayer> makeCustomObject(const std::string &className, const AttrMap &config);
// Traces `object`'s build() and call() on inputs of `inputs`' types into the body of `layer`.
Expected<std::unique_ptr<Graph>> traceCustomLayer(CustomLayer &object, const fgc::Layer &layer,
                                                  const std::vector<TensorType> &inputs);

} // namespace fgc::keras::detail
