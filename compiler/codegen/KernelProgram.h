// The lowered form of a model that the backends print or JIT: buffers and kernel calls.
//
// Lowering (Lowering.h) flattens the IR — nested models inlined, views aliased — into a list of
// steps, one per layer call, each a few calls into the runtime's C ABI (runtime/include/fgc/
// runtime/kernels.h) with arguments that are buffers, sizes, enums or parameter structs. Sizes
// are products of constants and run-time symbols (the batch size, the inputs' None dimensions).
// The C++ emitter prints this program; the JIT will build the same calls in LLVM IR.
#pragma once

#include "compiler/ir/Graph.h"

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

struct Buffer {
  enum class Kind {
    Input,      // the caller's input tensor `index`
    Output,     // the caller's output tensor `index`, written in place
    Param,      // model parameter `index`
    Activation, // an intermediate in the arena
    Alias,      // the same memory as buffer `aliasOf` (Reshape, Flatten, Dropout at inference)
  };
  Kind kind = Kind::Activation;
  int index = 0;
  int aliasOf = -1;
  DType dtype = schema::FLOAT32;
  std::vector<Dim> shape;
  std::string name;        // an identifier, unique in the program ("conv2d_1", "encoder__dense")
  std::string description; // "conv2d_1 (None, 24, 24, 32)"
  bool indexInput = false; // an input read only by Embedding: int32 indices (int64/float accepted)

  SymSize elements() const { return SymSize::product(shape, 0, shape.size()); }
};

struct Arg {
  enum class Kind { Buffer, Null, Size, Int, Float, Enum, Struct, BufferList, SizeList, Scratch };
  Kind kind = Kind::Null;
  int buffer = -1;
  SymSize size;
  int64_t intValue = 0;
  double floatValue = 0;
  std::string enumName;     // Enum: the C enumerator, e.g. FGC_ACT_RELU (intValue holds its value)
  std::string structType;   // Struct: e.g. fgc_conv2d_params
  std::vector<Arg> fields;  // Struct fields in declaration order
  std::vector<int> buffers; // BufferList
  std::vector<SymSize> sizes; // SizeList
};

struct KernelCall {
  std::string function;
  std::vector<Arg> args;
  // When set, the call needs scratch of this many floats: `scratchFunction(&args[0])`.
  std::string scratchFunction;
};

// One layer call: its calls and what to print above them.
struct Step {
  std::string layerName; // the user's layer path ("encoder/conv2d_4")
  std::string className;
  std::string comment;   // "conv2d_1 (Conv2D): (None, 26, 26, 16) -> (None, 24, 24, 32)"
  std::vector<KernelCall> calls;
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
  // Symbol -k (k >= 1) is read from input `symbolSource[k-1].first`, axis `.second`.
  std::vector<std::pair<int, int>> symbolSources;
  std::vector<std::string> symbolNames; // C identifiers: "batch", "title_dim1"
  int64_t parameterCount = 0;
};

} // namespace fgc
