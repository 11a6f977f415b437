// The runtime's C ABI as the JIT sees it: every entry point's address and LLVM function type,
// and the layout of the parameter structs kernels take by pointer.
//
// Both tables come from the runtime's own headers: the functions from the one-line-per-function
// list RuntimeFunctions.def (types through decltype), the structs from offsetof / decltype of
// their fields. Nothing here switches on a particular kernel.
#pragma once

#include <llvm/IR/DerivedTypes.h>
#include <llvm/IR/LLVMContext.h>

#include <cstddef>
#include <string>
#include <vector>

namespace fgc::jit {

struct RuntimeFunction {
  const char *name;
  void *address;
  // Builds the function's type in `context`; pointers of every kind are i8*.
  llvm::FunctionType *(*type)(llvm::LLVMContext &context);
};

// Every function of RuntimeFunctions.def, in its order.
const std::vector<RuntimeFunction> &runtimeFunctions();
// The entry for `name`, or nullptr.
const RuntimeFunction *findRuntimeFunction(const std::string &name);

// One field of a runtime parameter struct.
struct StructField {
  size_t offset;
  llvm::Type *(*type)(llvm::LLVMContext &context);
};
struct RuntimeStruct {
  const char *name; // the C typedef, e.g. "fgc_conv2d_params"
  size_t size, align;
  std::vector<StructField> fields; // in declaration order
};
// The struct `name` (KernelProgram's Arg::structType), or nullptr.
const RuntimeStruct *findRuntimeStruct(const std::string &name);

} // namespace fgc::jit
