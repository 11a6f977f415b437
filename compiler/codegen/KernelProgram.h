// The lowered form of a model that the backends print or JIT: buffers and kernel calls.
//
// Lowering (Lowering.h) flattens the IR — nested models inlined, views aliased — into a list of
// steps, one per layer call, each a few calls into the runtime's C ABI (runtime/include/fgc/
// runtime/kernels.h) with arguments that are buffers, sizes, enums or parameter structs. Sizes
// are products of constants and run-time symbols (the batch size, the inputs' None dimensions).
// The C++ emitter prints this program; the JIT will build the same calls in LLVM IR.
#pragma once

#include "compiler/ir/Graph.h"

#include <map>
#include <string>
#include <vector>

namespace fgc {

// coeff * product of symbols; every size in a program has this form.
struct SymSize {
  int64_t coeff = 1;
  std::vector<Dim> symbols; // sorted, symbols may repeat

  static SymSize constant(int64_t v) { return SymSize{v, {}}; }
  // The product of shape[from, to).
  static SymSize product(const std::vector<Dim> &shape, size_t from, size_t to);
  SymSize operator*(const SymSize &o) const;
  bool isConstant() const { return symbols.empty(); }
  bool operator==(const SymSize &o) const { return coeff == o.coeff && symbols == o.symbols; }
};

struct Arg {
  enum class Kind {
    Buffer, Null, Size, Int, Float, Enum, Struct, BufferList, SizeList, Scratch,
    IntList,   // `sizes` holds constants: an int array (per-input gradient flags)
    Value,     // a named run-time value of the model object (enumName: "learningRate", "step")
    LossOut,   // the address of training accumulator `intValue` (double)
    CountOut,  // the address of counter `intValue` (int64_t)
    FloatList, // `floats`: a double array (an opaque op's attributes)
    Function,  // the address of the C function `enumName`, int32_t(const void *): a custom kernel
               // the application (or, for the JIT, the process) defines
    LoopIndex, // the index of the innermost enclosing loop's current iteration (int64_t)
  };
  Kind kind = Kind::Null;
  int buffer = -1;
  SymSize size;
  int64_t intValue = 0;
  double floatValue = 0;
  std::string enumName;     // Enum: the C enumerator, e.g. FGC_ACT_RELU (intValue holds its value)
  std::string structType;   // Struct: e.g. fgc_conv2d_params
  std::vector<Arg> fields;  // Struct fields in declaration order
  std::vector<int> buffers; // BufferList
  bool mutableList = false; // BufferList of outputs (float *const[]) rather than inputs
  std::vector<SymSize> sizes; // SizeList
  std::vector<double> floats; // FloatList
};

struct Buffer {
  enum class Kind {
    Input,      // the caller's input tensor `index`
    Output,     // the caller's output tensor `index`, written in place
    Param,      // model parameter `index`
    Activation, // an intermediate in the arena
    Alias,      // the same memory as buffer `aliasOf` (Reshape, Flatten, Dropout at inference)
    Target,     // training: the caller's target tensor `index`
    State,      // training: optimizer slots kept by the model object, at float offset `index`
    Derived,    // computed from the parameters alone by KernelProgram::weightSteps (a folded
                // BatchNormalization), kept by the model object at float offset `index` and
                // recomputed whenever the weights change
  };
  Kind kind = Kind::Activation;
  int index = 0;
  int aliasOf = -1;
  DType dtype = schema::FLOAT32;
  std::vector<Dim> shape;
  std::string name;        // an identifier, unique in the program ("conv2d_1", "encoder__dense")
  std::string description; // "conv2d_1 (None, 24, 24, 32)"
  bool indexInput = false; // an input read only by Embedding: int32 indices (int64/float accepted)
  bool training = false;   // belongs to the training program (trainStep), not to predict
  // A buffer whose size only a runtime function knows (the LSTM's training workspace):
  // `sizeFunction(&sizeStruct)` floats.
  std::string sizeFunction;
  std::vector<Arg> sizeStruct;

  SymSize elements() const { return SymSize::product(shape, 0, shape.size()); }
};

struct KernelCall {
  std::string function;
  std::vector<Arg> args;
  // When set, the call needs scratch of this many floats: `scratchFunction(&args[0])`, or
  // `scratchFunction(scratchArgs...)` when scratchArgs is not empty.
  std::string scratchFunction;
  std::vector<Arg> scratchArgs;
  // Elementwise kernels that may run in place: the index of the output argument (a Buffer)
  // that may share memory with an input of the same size whose last use is this call (memory
  // planning decides). -1: the output needs memory of its own.
  int inPlaceOutput = -1;
  // Control flow (Scan): a call with `loop` set is no kernel call. LoopBegin opens a loop of
  // args[0] (a Size) iterations over the calls up to the matching LoopEnd, in the same step;
  // the index counts up from 0, or down from args[0] - 1 when `reverse`, and the calls inside
  // read it as Arg::Kind::LoopIndex. Both markers list (args[1], a BufferList) every buffer the
  // loop's calls use, so that liveness keeps them alive over the whole loop and no pass takes a
  // use inside it for a last use.
  enum class Loop { None, Begin, End };
  Loop loop = Loop::None;
  bool reverse = false;
};

// One layer call: its calls and what to print above them.
struct Step {
  std::string layerName; // the user's layer path ("encoder/conv2d_4")
  std::string className;
  std::string comment;   // "conv2d_1 (Conv2D): (None, 26, 26, 16) -> (None, 24, 24, 32)"
  std::vector<KernelCall> calls;
};

// An elementwise kernel call read as instructions of the runtime's fgc_elementwise
// (OpDef::elementwise): the running value of each element starts as inputs[0], `program` holds
// (opcode, operand) pairs of fgc_elementwise_opcode, whose FGC_EW_ADD operands index `inputs`.
struct ElementwiseForm {
  std::vector<int> inputs; // buffers, all of the output's size
  int output = -1;
  std::vector<std::pair<int, int>> program;
  bool symmetric = false; // the inputs may come in any order (sums, means)
};

// A call ending in a linear map whose output channels are the last axis of its kernel and of
// its output (Dense, Conv2D), read by OpDef::linearOutput for folding a per-channel affine map
// into it. The pointers point into the call's arguments.
struct LinearForm {
  int output = -1;
  Arg *kernel = nullptr, *bias = nullptr, *activation = nullptr;
};

// A per-channel affine map y = x * scale + shift over the last axis (BatchNormalization at
// inference), read by OpDef::channelAffine: `foldArgs` are the arguments of the runtime's
// fgc_fold_batch_norm after kernel, bias, rows and channels (gamma, beta, mean, variance,
// epsilon).
struct ChannelAffineForm {
  int input = -1, output = -1;
  std::vector<Arg> foldArgs;
};

// A faster form of an inference call that reads one of its weights transformed ahead of time
// (a Conv2D run as a Winograd convolution), read by OpDef::weightTransform. `transform` computes
// the transformed weights, a new buffer of `shape`, from the call's argument `weightArg`; its
// last argument is left for the transform-weights pass to point at that buffer. `replacement`
// then replaces the call, its argument `weightArg` pointed at the same buffer.
struct WeightTransformForm {
  int weightArg = -1;
  std::vector<Dim> shape;
  std::string suffix;      // of the new buffer's name ("winograd")
  std::string description; // of the transform, for --report ("Winograd F(4x4, 3x3)")
  KernelCall transform, replacement;
};

struct ProgramParam {
  std::string layerPath;
  const Param *param = nullptr;
};

struct KernelProgram {
  std::string modelName;
  std::vector<Buffer> buffers;
  std::vector<int> inputs, outputs; // buffer ids (outputs: the Output buffers)
  std::vector<std::string> inputNames, outputNames;
  std::vector<ProgramParam> params;
  std::vector<Step> steps;
  // Calls that read only parameters (constant folding): they run when the weights change, not
  // in every predict, and write the Derived buffers (derivedFloats floats in all).
  std::vector<Step> weightSteps;
  int64_t derivedFloats = 0;
  // Symbol -k (k >= 1) is read from input `symbolSource[k-1].first`, axis `.second`.
  std::vector<std::pair<int, int>> symbolSources;
  std::vector<std::string> symbolNames; // C identifiers: "batch", "title_dim1"
  int64_t parameterCount = 0;

  // Training (lowerForTraining): forward in training mode, losses, backward, updates.
  bool training = false;
  std::vector<Step> trainSteps;
  std::vector<int> targets; // Target buffers, in output order (outputs with a loss only)
  std::vector<int> targetOutputs; // the output index of each target
  // Diagnostics for the user (Keras's warnings), e.g. an output without a loss.
  std::vector<std::string> warnings;
  struct Loss {
    std::string output;    // output layer name
    std::string className; // Keras class, e.g. "SparseCategoricalCrossentropy"
    double weight = 1.0;
    int accumulator = 0;   // LossOut index
  };
  std::vector<Loss> losses;
  struct Metric {
    std::string name;      // log name, e.g. "accuracy" or "department_accuracy"
    std::string kind;      // "count" (correct / rows) or "sum" (sum / elements)
    int accumulator = 0;   // CountOut or LossOut index
    int output = 0;
    SymSize rows, elements; // what the accumulated count / sum is divided by
  };
  std::vector<Metric> metrics;
  int numAccumulators = 0, numCounters = 0;
  int64_t stateFloats = 0;        // optimizer slots
  std::string optimizerClass;
  std::map<std::string, double> optimizerConfig; // learning_rate, rho, ...
  std::vector<std::string> logNames;
  std::vector<std::pair<int, double>> stateInits; // State buffers that start at a value, not 0
  // The gradient buffer trainStep leaves for parameter i / input i (-1: none; inputs have one
  // only when lowered with TrainingOptions::inputGradients).
  std::vector<int> paramGradients, inputGradients;
  // The optimizer's slots: State buffer, the parameter it belongs to, Keras's slot name ("rms").
  struct Slot {
    int buffer = -1;
    int param = 0;
    std::string name;
  };
  std::vector<Slot> slots;
  // A learning-rate schedule (keras.optimizers.schedules) of the optimizer step; className empty:
  // the constant optimizerConfig["learning_rate"].
  struct LearningRateSchedule {
    std::string className; // "ExponentialDecay", "CosineDecay"
    std::map<std::string, double> config;
  };
  LearningRateSchedule schedule;
};

// The buffer an alias finally views (the buffer itself when it is not an alias).
inline int rootOf(const KernelProgram &p, int id) {
  while (p.buffers[size_t(id)].kind == Buffer::Kind::Alias)
    id = p.buffers[size_t(id)].aliasOf;
  return id;
}

// Appends every buffer an argument mentions (structs and lists included) to `out`.
inline void buffersOf(const Arg &a, std::vector<int> &out) {
  if (a.kind == Arg::Kind::Buffer && a.buffer >= 0)
    out.push_back(a.buffer);
  for (int id : a.buffers)
    if (id >= 0)
      out.push_back(id);
  for (const Arg &f : a.fields)
    buffersOf(f, out);
}

} // namespace fgc
