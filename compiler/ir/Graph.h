// The IR: a graph of ops with static shapes.
//
//   Graph  - a model: its layers, its ops in topological order, its input and output values.
//   Layer  - a Keras layer: class, name, normalized config, parameters. It owns the weights, so
//            every call of a shared layer uses the same ones. A nested model is a Layer whose
//            `subgraph` is the model's Graph.
//   Op     - one call of a layer (Keras's "node"): input values in, output values out.
//   Value  - a tensor produced by an op, with its TensorType.
//
// The frontend builds a Graph from a schema::Model (frontend/ModelLoader.h); passes and backends
// read and rewrite it. Op semantics live in the op registry (OpRegistry.h), never in switches.
#pragma once

#include "compiler/ir/Attrs.h"
#include "compiler/ir/TensorType.h"

#include <memory>
#include <string>
#include <vector>

namespace fgc {

struct OpDef;
class Graph;
struct Op;

struct Value {
  TensorType type;
  Op *producer = nullptr;
  int index = 0; // which output of the producer
};

// A layer parameter (Keras "weight").
struct Param {
  std::string name; // Keras's weight name within the layer: "kernel", "bias", "moving_mean"
  TensorType type;
  bool trainable = true;
  AttrValue initializer; // an object attr, e.g. GlorotUniform
  std::vector<uint8_t> data; // raw little-endian values (filled by the frontend)

  int64_t numElements() const { return type.numElements(); }
};

struct Layer {
  std::string name;
  std::string className;
  const OpDef *def = nullptr;
  AttrMap config; // normalized: every declared attribute present
  bool trainable = true;
  std::vector<Param> params;
  std::vector<Dim> builtFor;       // the input shape the parameters were created for
  std::unique_ptr<Graph> subgraph; // nested models only
  // A loop body (Scan): traced once, run by the op's own lowering once per step; never inlined
  // like a nested model, and holding no weights of its own.
  std::shared_ptr<const Graph> body;
  std::vector<Op *> calls;         // this layer's ops in this graph, by node index

  Attrs attrs() const { return Attrs(config); }
  // A short description for diagnostics: "layer 'dense_1' (Dense)".
  std::string describe() const;
  bool isModel() const { return subgraph != nullptr; }
  // Parameters of this layer, nested models included (shared layers counted once).
  int64_t countParams() const;
  int64_t countTrainableParams() const;
};

struct Op {
  Layer *layer = nullptr;
  int nodeIndex = 0; // position in layer->calls
  std::vector<Value *> inputs;
  std::vector<std::unique_ptr<Value>> outputs;
  AttrMap kwargs;
  // The nested models this op was inlined from ("encoder/"; compiler/passes/InlineNested):
  // the op's full layer path is scope + layer->name. Empty for the model's own ops.
  std::string scope;

  std::string path() const { return scope + layer->name; }
};

class Graph {
public:
  std::string name;
  std::string sourceFile;        // for diagnostics; empty for graphs built in memory
  uint64_t seed = 0;             // weight initialization seed
  schema::TrainingConfig training;
  std::vector<std::unique_ptr<Layer>> layers; // in the order of the source
  std::vector<std::unique_ptr<Op>> ops;       // topological order
  std::vector<Value *> inputs;                // InputLayer op outputs, in model order
  std::vector<Value *> outputs;
  // Ops that passes took out of `ops`, kept alive so that Layer::calls stays valid.
  std::vector<std::unique_ptr<Op>> removedOps;

  Layer *findLayer(const std::string &name) const;
  // The InputLayer of input i.
  const Layer &inputLayer(size_t i) const { return *inputs[i]->producer->layer; }
  // The layer producing output i.
  const Layer &outputLayer(size_t i) const { return *outputs[i]->producer->layer; }
  // The name Keras gives output i: its producing layer's, unless a pass replaced the producer
  // (inlining a nested model makes its last inner layer the producer; the output keeps the
  // nested model's name).
  std::string outputName(size_t i) const {
    return i < outputNames.size() && !outputNames[i].empty() ? outputNames[i]
                                                             : outputLayer(i).name;
  }
  std::vector<std::string> outputNames; // per output; empty entries: the producer's name
  int64_t countParams() const;
  int64_t countTrainableParams() const;
};

} // namespace fgc
