// The runtime's entry points and parameter structs for the JIT (see RuntimeSymbols.h).
#include "compiler/jit/RuntimeSymbols.h"

#include "fgc/runtime/arena.h"
#include "fgc/runtime/grad.h"
#include "fgc/runtime/kernels.h"
#include "fgc/runtime/model.h"
#include "fgc/runtime/optim.h"

#include <llvm/IR/Type.h>

#include <cstring>
#include <type_traits>

namespace fgc::jit {

namespace {

template <typename> inline constexpr bool kUnsupported = false;

// The LLVM type of a C parameter or return type. All pointers become i8* (the ABI does not
// distinguish them); enums and integers keep their width.
template <typename T> llvm::Type *llvmType(llvm::LLVMContext &c) {
  if constexpr (std::is_void_v<T>)
    return llvm::Type::getVoidTy(c);
  else if constexpr (std::is_pointer_v<T>)
    return llvm::Type::getInt8PtrTy(c);
  else if constexpr (std::is_enum_v<T> || std::is_integral_v<T>) {
    static_assert(sizeof(T) >= 4, "narrow integers need extension attributes");
    return llvm::IntegerType::get(c, unsigned(8 * sizeof(T)));
  } else if constexpr (std::is_same_v<T, float>)
    return llvm::Type::getFloatTy(c);
  else if constexpr (std::is_same_v<T, double>)
    return llvm::Type::getDoubleTy(c);
  else
    static_assert(kUnsupported<T>, "a runtime function takes a type the JIT cannot pass");
}

template <typename F> struct FunctionTypeOf;
template <typename R, typename... A> struct FunctionTypeOf<R(A...)> {
  static llvm::FunctionType *get(llvm::LLVMContext &c) {
    return llvm::FunctionType::get(llvmType<R>(c), {llvmType<A>(c)...}, false);
  }
};

// Field i of struct S: its offset and type.
#define FGC_FIELD(S, f)                                                                          \
  StructField { offsetof(S, f), &llvmType<std::remove_cv_t<decltype(S::f)>> }

template <typename S> RuntimeStruct runtimeStruct(const char *name, std::vector<StructField> f) {
  return RuntimeStruct{name, sizeof(S), alignof(S), std::move(f)};
}

const std::vector<RuntimeStruct> &runtimeStructs() {
  static const std::vector<RuntimeStruct> structs = {
      runtimeStruct<fgc_conv2d_params>(
          "fgc_conv2d_params",
          {FGC_FIELD(fgc_conv2d_params, batch), FGC_FIELD(fgc_conv2d_params, in_h),
           FGC_FIELD(fgc_conv2d_params, in_w), FGC_FIELD(fgc_conv2d_params, in_c),
           FGC_FIELD(fgc_conv2d_params, kernel_h), FGC_FIELD(fgc_conv2d_params, kernel_w),
           FGC_FIELD(fgc_conv2d_params, out_c), FGC_FIELD(fgc_conv2d_params, stride_h),
           FGC_FIELD(fgc_conv2d_params, stride_w), FGC_FIELD(fgc_conv2d_params, dilation_h),
           FGC_FIELD(fgc_conv2d_params, dilation_w), FGC_FIELD(fgc_conv2d_params, padding),
           FGC_FIELD(fgc_conv2d_params, activation)}),
      runtimeStruct<fgc_pool2d_params>(
          "fgc_pool2d_params",
          {FGC_FIELD(fgc_pool2d_params, batch), FGC_FIELD(fgc_pool2d_params, in_h),
           FGC_FIELD(fgc_pool2d_params, in_w), FGC_FIELD(fgc_pool2d_params, channels),
           FGC_FIELD(fgc_pool2d_params, pool_h), FGC_FIELD(fgc_pool2d_params, pool_w),
           FGC_FIELD(fgc_pool2d_params, stride_h), FGC_FIELD(fgc_pool2d_params, stride_w),
           FGC_FIELD(fgc_pool2d_params, padding)}),
      runtimeStruct<fgc_lstm_params>(
          "fgc_lstm_params",
          {FGC_FIELD(fgc_lstm_params, batch), FGC_FIELD(fgc_lstm_params, timesteps),
           FGC_FIELD(fgc_lstm_params, input_dim), FGC_FIELD(fgc_lstm_params, units),
           FGC_FIELD(fgc_lstm_params, activation),
           FGC_FIELD(fgc_lstm_params, recurrent_activation),
           FGC_FIELD(fgc_lstm_params, return_sequences)}),
      runtimeStruct<fgc_gru_params>(
          "fgc_gru_params",
          {FGC_FIELD(fgc_gru_params, batch), FGC_FIELD(fgc_gru_params, timesteps),
           FGC_FIELD(fgc_gru_params, input_dim), FGC_FIELD(fgc_gru_params, units),
           FGC_FIELD(fgc_gru_params, activation), FGC_FIELD(fgc_gru_params, recurrent_activation),
           FGC_FIELD(fgc_gru_params, return_sequences), FGC_FIELD(fgc_gru_params, reset_after)}),
      runtimeStruct<fgc_attention_params>(
          "fgc_attention_params",
          {FGC_FIELD(fgc_attention_params, batch), FGC_FIELD(fgc_attention_params, query_steps),
           FGC_FIELD(fgc_attention_params, value_steps), FGC_FIELD(fgc_attention_params, dim),
           FGC_FIELD(fgc_attention_params, value_dim),
           FGC_FIELD(fgc_attention_params, score_concat),
           FGC_FIELD(fgc_attention_params, causal)}),
  };
  return structs;
}

#undef FGC_FIELD

} // namespace

const std::vector<RuntimeFunction> &runtimeFunctions() {
  static const std::vector<RuntimeFunction> functions = {
#define FGC_RUNTIME_FUNCTION(name)                                                               \
  RuntimeFunction{#name, reinterpret_cast<void *>(&name), &FunctionTypeOf<decltype(name)>::get},
#include "compiler/jit/RuntimeFunctions.def"
#undef FGC_RUNTIME_FUNCTION
  };
  return functions;
}

const RuntimeFunction *findRuntimeFunction(const std::string &name) {
  for (const RuntimeFunction &f : runtimeFunctions())
    if (name == f.name)
      return &f;
  return nullptr;
}

const RuntimeStruct *findRuntimeStruct(const std::string &name) {
  for (const RuntimeStruct &s : runtimeStructs())
    if (name == s.name)
      return &s;
  return nullptr;
}

} // namespace fgc::jit
