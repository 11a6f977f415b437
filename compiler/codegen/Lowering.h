// Lowering: the IR graph -> a KernelProgram for inference.
//
// Nested models are inlined (their layers keep their paths, "encoder/conv2d"), views become
// aliases, model outputs are written in place into the caller's tensors, and each op's registry
// entry (`OpDef::lower`) turns its call into runtime kernel calls through a LowerContext.
#pragma once

#include "compiler/codegen/KernelProgram.h"
#include "compiler/ir/OpRegistry.h"

#include <map>

namespace fgc {

// What an op's lowering sees and produces.
class LowerContext {
public:
  LowerContext(KernelProgram &program, const Op &op, std::vector<int> inputs,
               std::vector<int> outputs, std::vector<int> params, std::string layerPath,
               const std::map<Dim, Dim> &symbols);

  const Op &op() const { return op_; }
  Attrs attrs() const { return op_.layer->attrs(); }
  const Buffer &buffer(int id) const { return program_.buffers[size_t(id)]; }
  int input(size_t i) const { return inputs_[i]; }
  int output(size_t i) const { return outputs_[i]; }
  size_t numInputs() const { return inputs_.size(); }
  size_t numOutputs() const { return outputs_.size(); }
  // The buffer of the layer's parameter `name`, or -1 when the layer has none by that name.
  int param(const std::string &name) const;
  // The shape of input / output i with symbols in the program's numbering.
  const std::vector<Dim> &inShape(size_t i) const { return buffer(inputs_[i]).shape; }
  const std::vector<Dim> &outShape(size_t i) const { return buffer(outputs_[i]).shape; }
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

  template <typename... Args>
  Error error(fmt::format_string<Args...> f, Args &&...args) const {
    return Error(op_.layer->describe() + ": " + fmt::format(f, std::forward<Args>(args)...));
  }
  std::vector<KernelCall> takeCalls() { return std::move(calls_); }

private:
  KernelProgram &program_;
  const Op &op_;
  std::vector<int> inputs_, outputs_, params_;
  std::string layerPath_;
  std::vector<KernelCall> calls_;
};

// Lowers every op of `graph` (which must have weights or initializers; data is read later by the
// emitter). Errors name the layer that cannot be compiled and why.
Expected<KernelProgram> lowerForInference(const Graph &graph);

} // namespace fgc
