// The op registry: everything fgc knows about a layer class, defined once.
//
// Each op file (compiler/ops/<Class>.cpp) fills one OpDef: the config it accepts, how many inputs
// it takes, its shape function and the parameters Keras's `build()` creates. Later stages add
// their hooks (kernel, gradient, emitter) to the same entry. Passes and backends look ops up here
// and never switch on the class name.
#pragma once

#include "compiler/ir/Attrs.h"
#include "compiler/ir/Graph.h"
#include "compiler/ir/TensorType.h"

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace fgc {

class LowerContext;     // compiler/codegen/Lowering.h
struct KernelCall;      // compiler/codegen/KernelProgram.h
struct ElementwiseForm; // compiler/codegen/KernelProgram.h
struct LinearForm;
struct ChannelAffineForm;
struct WeightTransformForm;

// What a shape or parameter function sees of one call.
struct OpContext {
  const Layer &layer;
  std::vector<TensorType> inputs;
  std::vector<std::string> inputSources; // producing layer of each input, for messages

  // "(None, 32) from 'dense_1'"
  std::string describeInput(size_t i) const;

  Attrs attrs() const { return layer.attrs(); }
  // An error naming the layer: "layer 'dense_2' (Dense): <message>".
  template <typename... Args>
  Error error(fmt::format_string<Args...> f, Args &&...args) const {
    return Error(layer.describe() + ": " + fmt::format(f, std::forward<Args>(args)...));
  }
  const TensorType &input(size_t i = 0) const { return inputs[i]; }
};

// A weight as a Keras file stores it, handed to an op's `importWeights` hook.
struct ImportedWeight {
  // Where the file keeps it, relative to the layer: "kernel:0", "lstm_cell/kernel:0",
  // "forward_lstm/kernel:0" (legacy HDF5), "vars/0", "cell/vars/1" (Keras 3 archives).
  std::string path;
  // Keras's weight name when the file says it ("kernel", "moving_mean"); empty otherwise.
  std::string name;
  // Keras's variable name in a legacy HDF5 file ("conv2d/kernel", "lstm/lstm_cell/kernel"),
  // which the optimizer's slot variables are named after; empty otherwise.
  std::string variable;
  std::vector<int64_t> shape;
  std::vector<float> data; // C order
};

// A parameter as `build()` creates it, before any data exists.
struct ParamSpec {
  std::string name;
  std::vector<Dim> shape;
  AttrValue initializer;
  bool trainable = true;
};

struct OpDef {
  std::string className;
  std::string summary; // one line, for `fgc ops` and docs
  std::vector<AttrSpec> attrs;
  int minInputs = 1;
  int maxInputs = 1; // -1: any number
  // Output types of one call, or an error naming the layer and the shapes.
  std::function<Expected<std::vector<TensorType>>(const OpContext &)> inferTypes;
  // Parameters created on the first call (Keras's build). Empty function: no parameters.
  std::function<std::vector<ParamSpec>(const OpContext &)> params;
  // Inference: the runtime kernel calls of one call of the layer (Lowering.h). Empty function:
  // the op cannot be compiled yet, and lowering says so.
  std::function<Status(LowerContext &)> lower;
  // Training forward, where it differs from `lower` (Dropout, BatchNormalization, LSTM, fused
  // activations whose derivative needs the pre-activation). Empty: `lower` is used.
  std::function<Status(LowerContext &)> lowerTrain;
  // The gradient rule: kernel calls from the output gradients to the input and parameter
  // gradients (LowerContext::dOut / dIn / dParam). Empty: the layer cannot be trained (a view
  // passes gradients through without one: see `view`).
  std::function<Status(LowerContext &)> gradient;
  // The output is a view of the input (Reshape, Flatten): gradients flow through unchanged.
  bool view = false;
  // Elementwise ops (Add, Average, Activation): reads one inference kernel call of the op as
  // fgc_elementwise instructions, so that chains of such ops run as one loop (the
  // fuse-elementwise pass). False: this call is not elementwise (an Activation with softmax).
  // Empty function: the op is never fused that way.
  std::function<bool(const KernelCall &, ElementwiseForm &)> elementwise;
  // Ops ending in a linear map with the output channels last in kernel and output (Dense,
  // Conv2D): finds the kernel, bias and activation arguments of an inference call, so that a
  // following BatchNormalization folds into them (the fold-batch-norm pass). False: not
  // foldable (e.g. the kernel is not a plain parameter).
  std::function<bool(KernelCall &, LinearForm &)> linearOutput;
  // Per-channel affine maps at inference (BatchNormalization): reads the call as the arguments
  // of fgc_fold_batch_norm.
  std::function<bool(const KernelCall &, ChannelAffineForm &)> channelAffine;
  // Ops with a faster inference form that reads a weight transformed ahead of time (Conv2D:
  // Winograd, kernel pre-transformed): fills the form for this call when it applies and pays
  // for the call's shapes (the transform-weights pass). False: keep the call.
  std::function<bool(const KernelCall &, WeightTransformForm &)> weightTransform;
  // An op whose inference lowering is the identity (Dropout): the drop-dropout pass removes its
  // (call-free) inference step and reports it.
  bool identityAtInference = false;
  // Keras import: turns the layer's weights as the file stores them (in the file's order) into
  // fgc's parameters, in `layer.params` order, converting layouts where fgc's differ from
  // Keras's (gate orders, fused biases, wrapped layers). Empty function: fgc's parameters have
  // Keras's names and layouts, and the importer matches them by name, or by position when the
  // file has no names (Keras 3 archives).
  std::function<Expected<std::vector<ImportedWeight>>(const Layer &layer,
                                                      std::vector<ImportedWeight> weights)>
      importWeights;
  // False when two calls on the same inputs may differ (Dropout's random masks) or update state
  // (BatchNormalization's moving averages in training): such calls are never merged by CSE.
  bool pure = true;
  // Floating-point operations of one call for one sample (a multiply-add counts 2), from the
  // per-sample shapes of the inputs and outputs (batch axis dropped, other None dimensions
  // resolved), for `fgc compile --report`. Empty: one per output element.
  using Shapes = std::vector<std::vector<int64_t>>;
  std::function<double(const Layer &, const Shapes &inputs, const Shapes &outputs)> flops;

  // Custom layers (frontend/api/Custom.cpp): the class is user code registered at run time. Its
  // config is free-form (whatever the layer's get_config() returns), a model file stores it as
  // class name + config + weights (never its body), and `trace` builds the layer's body on its
  // first call: `build` and `call` run on symbolic tensors of the given input types and the
  // result becomes `layer.subgraph`, a graph of primitive ops that later stages treat like a
  // nested model. Errors name the layer.
  bool custom = false;
  std::function<Expected<std::unique_ptr<Graph>>(const Layer &layer,
                                                 const std::vector<TensorType> &inputs)>
      trace;
  // Loop ops (Scan): finds the graph the op runs once per step (`layer.body`) on the first
  // call, before the shape function, which reads it. Errors name the layer.
  std::function<Expected<std::shared_ptr<const Graph>>(const Layer &layer)> loopBody;
};

// Infers one call of `layer` (ctx.layer): checks the number of inputs, runs the shape function,
// and on the first call creates the layer's parameters (Keras's build); later calls of a shared
// layer must fit the parameters of the first. `callName` names the call in messages.
Expected<std::vector<TensorType>> inferLayerCall(Layer &layer, const OpContext &ctx,
                                                 const std::string &callName);

class OpRegistry {
public:
  // The registry holding every built-in op (and later, registered custom layers).
  static OpRegistry &global();

  // Adds an op; the attributes every layer has (trainable, dtype) are added to its specs.
  // Adding a class that exists replaces it (re-registering a custom layer).
  void add(OpDef def);
  const OpDef *find(const std::string &className) const;
  std::vector<std::string> classNames() const;

  // Opaque custom kernels (compiler/ops/OpaqueOp.h) registered with their address: the JIT
  // calls them there; names without one are looked up among the process's symbols.
  void addKernelAddress(const std::string &symbol, void *address);
  const std::map<std::string, void *> &kernelAddresses() const { return kernels_; }

private:
  std::map<std::string, OpDef> defs_;
  std::map<std::string, void *> kernels_;
};

} // namespace fgc
