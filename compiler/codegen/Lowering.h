// Lowering: the IR graph -> a KernelProgram for inference.
//
// Nested models are inlined (their layers keep their paths, "encoder/conv2d"), views become
// aliases, model outputs are written in place into the caller's tensors, and each op's registry
// entry (`OpDef::lower`) turns its call into runtime kernel calls through a LowerContext.
#pragma once

#include "compiler/codegen/KernelProgram.h"
#include "compiler/ir/OpRegistry.h"

#include <map>
#include <set>

namespace fgc {

// Gradient bookkeeping of a training program, shared by the backward lowering of every op.
struct GradState {
  std::map<int, int> gradOf;   // forward root buffer -> its gradient buffer
  std::set<int> written;       // gradient buffers that already hold a value
  std::set<int> needsGrad;     // forward root buffers that depend on trainable weights
  std::map<const Param *, int> paramGrad;
};

// Lowering a graph inside one op's calls: a Scan's body, run once per loop iteration. The
// lowering driver implements it and hands it to ops through LowerContext::bodies().
class BodyLowering {
public:
  struct Forward {
    std::vector<KernelCall> calls;
    // The buffers holding the body's outputs after the calls: distinct buffers of the body's
    // own, never one of its inputs.
    std::vector<int> outputs;
    int id = -1; // a training forward's number, for backward()
  };
  struct Backward {
    // The forward's calls again, to run before `calls` in each iteration: they recompute the
    // values the backward reads from the step's saved inputs.
    std::vector<KernelCall> forward;
    std::vector<KernelCall> calls;
    std::vector<bool> written; // per input: whether the calls write its gradient
  };
  virtual ~BodyLowering() = default;
  // The calls of `body` (its layers under `path`/) with its inputs bound to `inputs`. In a
  // training program the body runs in training mode, and `needsGrad[i]` says whether input i
  // needs a gradient.
  virtual Expected<Forward> forward(const Graph &body, const std::string &path,
                                    const std::vector<int> &inputs,
                                    const std::vector<bool> &needsGrad) = 0;
  // The backward of training forward `id`, reading the values its calls left: from the output
  // gradients (-1: none) to the input gradients (-1: not wanted), each overwritten or, where
  // `accumulate[i]`, added to.
  virtual Expected<Backward> backward(int id, const std::vector<int> &outputGrads,
                                      const std::vector<int> &inputGrads,
                                      const std::vector<bool> &accumulate) = 0;
};

// What an op's lowering sees and produces.
class LowerContext {
public:
  LowerContext(KernelProgram &program, const Op &op, std::vector<int> inputs,
               std::vector<int> outputs, std::vector<int> params, std::string layerPath,
               const std::map<Dim, Dim> &symbols);

  const Op &op() const { return op_; }
  // The layer's path in the model ("swish_dense/swish" inside a custom layer), for messages.
  const std::string &layerPath() const { return layerPath_; }
  Attrs attrs() const { return op_.layer->attrs(); }
  // Valid until the next call that adds a buffer (dIn, dParam, newBuffer, workspace, ...).
  const Buffer &buffer(int id) const { return program_.buffers[size_t(id)]; }
  int input(size_t i) const { return inputs_[i]; }
  int output(size_t i) const { return outputs_[i]; }
  size_t numInputs() const { return inputs_.size(); }
  size_t numOutputs() const { return outputs_.size(); }
  // The buffer of the layer's parameter `name`, or -1 when the layer has none by that name.
  int param(const std::string &name) const;
  // The shape of input / output i with symbols in the program's numbering. Copies: a reference
  // into the program's buffers would dangle once a gradient rule adds a buffer (dIn, dParam,
  // newBuffer grow the buffer list).
  std::vector<Dim> inShape(size_t i) const { return buffer(inputs_[i]).shape; }
  std::vector<Dim> outShape(size_t i) const { return buffer(outputs_[i]).shape; }
  SymSize dim(const std::vector<Dim> &shape, int axis) const;

  // Argument builders.
  Arg buf(int id) const;
  Arg null() const;
  Arg size(const SymSize &s) const;
  Arg i64(int64_t v) const;
  Arg f32(double v) const;
  Arg enumValue(const std::string &name, int64_t value) const;
  // The runtime enumerator for a Keras activation name, or an error naming the layer.
  Expected<Arg> activation(const std::string &name) const;
  Arg padding(const std::string &keras) const;

  void call(KernelCall c) { calls_.push_back(std::move(c)); }
  // The output is the same memory as the input (a view: Reshape, Flatten, Dropout).
  void alias(size_t out, size_t in);
  // A new int32 buffer of `elements` values, for index conversions.
  int indexBuffer(const SymSize &elements, const std::vector<Dim> &shape);

  // --- training ---
  bool training() const { return grad_ != nullptr; }
  // A new arena buffer (training forward: masks, saved statistics, pre-activations).
  int newBuffer(const std::string &suffix, DType dtype, const std::vector<Dim> &shape);
  // A buffer of `sizeFunction(&structArg)` floats (the LSTM's workspace).
  int workspace(const std::string &suffix, const std::string &sizeFunction, const Arg &structArg);
  // Buffers the training forward keeps for the backward, by name.
  void save(const std::string &key, int buffer) { (*saved_)[key] = buffer; }
  int saved(const std::string &key) const;
  // The named value `name` of the model object at run time ("step", "dropoutSeed").
  Arg value(const std::string &name) const;
  Arg intList(const std::vector<int64_t> &values) const;
  // Backward: the gradient of output i (-1 when none reaches it), the gradient buffer to write
  // for input i (-1 when the input needs none), and the flags to pass for it.
  int dOut(size_t i) const;
  // Training forward: whether input i depends on trainable weights (or the program wants its
  // gradient), i.e. whether the backward will ask for it.
  bool inputNeedsGrad(size_t i) const;
  int dIn(size_t i);
  int64_t inFlag(size_t i) const;
  Arg inFlags(size_t i) const { return i64(inFlag(i)); }
  // The gradient of parameter `name` (-1 when the layer is frozen), and the params flag.
  int dParam(const std::string &name);
  Arg paramFlags() const;
  int64_t paramFlag() const { return paramFlags_; }
  // inFlag(0) | paramFlag(): the flags of kernels with one input and parameters.
  Arg flags() const { return i64(inFlag(0) | paramFlags_); }
  // A stable per-layer number for seeding (Dropout).
  uint64_t layerHash() const;

  template <typename... Args>
  Error error(fmt::format_string<Args...> f, Args &&...args) const {
    return Error(op_.layer->describe() + ": " + fmt::format(f, std::forward<Args>(args)...));
  }
  std::vector<KernelCall> takeCalls() { return std::move(calls_); }
  // Lowering of sub-graphs (loop bodies); set by the driver.
  BodyLowering *bodies() const { return bodies_; }
  void setBodies(BodyLowering *b) { bodies_ = b; }
  // Set up by the training lowering.
  void setTraining(GradState *grad, std::map<std::string, int> *saved) {
    grad_ = grad;
    saved_ = saved;
  }

private:
  int gradFor(int forwardBuffer);
  GradState *grad_ = nullptr;
  BodyLowering *bodies_ = nullptr;
  std::map<std::string, int> *saved_ = nullptr;
  std::map<size_t, int64_t> inputFlags_;
  int64_t paramFlags_ = 0;
  bool paramFlagsKnown_ = false;
  KernelProgram &program_;
  const Op &op_;
  std::vector<int> inputs_, outputs_, params_;
  std::string layerPath_;
  std::vector<KernelCall> calls_;
};

// Lowers every op of `graph` (which must have weights or initializers; data is read later by the
// emitter). Errors name the layer that cannot be compiled and why.
Expected<KernelProgram> lowerForInference(const Graph &graph);

struct TrainingOptions {
  // Also compute dLoss/dInput for every float input (gradient checks of the backward pass).
  bool inputGradients = false;
};

// Adds the training program to an inference program of the same graph: the forward in training
// mode, the losses of the graph's training config, the backward (each op's `OpDef::gradient`),
// metrics and the optimizer's updates. Errors name what cannot be trained and why.
Status lowerForTraining(const Graph &graph, KernelProgram &program,
                        const TrainingOptions &options = {});

// Whether the training code computes the Keras metric `name` ("accuracy", "acc", "mae", ...).
bool isSupportedMetric(const std::string &name);

} // namespace fgc
