// The C++ backend: a KernelProgram -> a model class in standalone C++17.
//
// The generated header declares one class (namespace and name from the model, overridable) with
// `predict` over named inputs and outputs, shapes, the parameter count, thread control and
// weights I/O; the source calls the runtime's kernels (fgc/runtime/kernels.h) step by step, one
// commented block per layer call. Output is deterministic: the same program and options give the
// same bytes.
#pragma once

#include "compiler/codegen/KernelProgram.h"

#include <string>

namespace fgc {

enum class WeightsEmbedding {
  Inline, // C++ arrays in the source (small models)
  Blob,   // a binary blob linked through an assembler `.incbin` file
  File,   // a separate .fgcw file loaded (memory-mapped) at run time
};

struct CppOptions {
  std::string ns;         // C++ namespace (default: the model name as an identifier)
  std::string className;  // default: the model name in UpperCamelCase
  std::string headerName; // how the source includes the header ("model.h")
  std::string sourceName; // the model file, for the banner comment
  WeightsEmbedding weights = WeightsEmbedding::Inline;
  std::string weightsFileName; // Blob: the .bin name .incbin reads; File: the default .fgcw path
  // The model as a binary schema::Model without weights (architecture and training config):
  // generated code embeds it so that save() writes a model file fgc can read back.
  std::string modelSchema;
};

struct CppOutput {
  std::string header;
  std::string source;
  std::string assembly; // Blob mode: the .S file
  std::string blob;     // Blob mode: the raw weights
};

// Inline weights beyond this many bytes are refused (use Blob or File).
inline constexpr size_t kMaxInlineWeightBytes = size_t(64) << 20;

// The arena follows the memory plans given (compiler/memory/MemoryPlan.h); without them, the
// default plans (with reuse) of the program's functions.
struct MemoryPlan;
Expected<CppOutput> emitCpp(const KernelProgram &program, const CppOptions &options,
                            const MemoryPlan *predictPlan = nullptr,
                            const MemoryPlan *trainPlan = nullptr);

// Defaults for CppOptions from the model name: "mnist_model" -> namespace mnist_model, class
// MnistModel.
std::string defaultNamespace(const std::string &modelName);
std::string defaultClassName(const std::string &modelName);

} // namespace fgc
