// KernelProgram -> LLVM IR -> machine code (see Code.h).
//
// Each entry point is one function `i32 (JitFrame *)`: it reads the symbols, arena and pointers
// from the frame, builds every kernel's arguments (sizes as products of symbols, parameter
// structs and pointer lists on the stack, buffers as arena offsets) and calls the runtime's C
// ABI kernel after kernel; a non-zero status branches to one exit that stores it and returns the
// failing call's number. A `sizes` twin computes the byte size of each memory-plan slot (kernel
// scratch through the runtime's *_scratch_size functions), which the host hands to the arena
// planner. Kernel types come from RuntimeSymbols (the runtime's headers), never from a switch.
#include "compiler/ir/OpRegistry.h"
#include "compiler/jit/Code.h"
#include "compiler/jit/RuntimeSymbols.h"

#include "compiler/support/AtomicFile.h"

#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Transforms/InstCombine/InstCombine.h>
#include <llvm/Transforms/Scalar/EarlyCSE.h>
#include <llvm/Transforms/Scalar/SROA.h>
#include <llvm/Transforms/Scalar/SimplifyCFG.h>
#include <llvm/Support/DynamicLibrary.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>

namespace fgc::jit {

Code::Code() = default;
Code::~Code() = default;

namespace {

std::string llvmMessage(llvm::Error e) { return llvm::toString(std::move(e)); }

enum class Mode { Run, Sizes, Test };

// Builds one entry function of the module.
class FunctionBuilder {
public:
  FunctionBuilder(llvm::Module &m, const KernelProgram &p, const std::vector<Step> &steps,
                  const MemoryPlan *plan, Mode mode, const std::string &name)
      : m_(m), c_(m.getContext()), b_(c_), p_(p), steps_(steps), plan_(plan), mode_(mode) {
    i8_ = llvm::Type::getInt8Ty(c_);
    i32_ = llvm::Type::getInt32Ty(c_);
    i64_ = llvm::Type::getInt64Ty(c_);
    f32_ = llvm::Type::getFloatTy(c_);
    f64_ = llvm::Type::getDoubleTy(c_);
    ptr_ = llvm::Type::getInt8PtrTy(c_);
    auto *type = llvm::FunctionType::get(i32_, {ptr_}, false);
    fn_ = llvm::Function::Create(type, llvm::Function::ExternalLinkage, name, m_);
    frame_ = fn_->getArg(0);
    frame_->setName("frame");
    entry_ = llvm::BasicBlock::Create(c_, "entry", fn_);
    b_.SetInsertPoint(entry_);
    if (plan_)
      for (size_t k = 0; k < plan_->slots.size(); ++k) {
        const ArenaSlot &s = plan_->slots[k];
        if (s.kind == ArenaSlot::Kind::Scratch)
          slotOfScratch_[{size_t(s.step), size_t(s.call)}] = k;
        else
          slotOfBuffer_[s.buffer] = k;
      }
    for (size_t i = 0; i < p_.symbolNames.size(); ++i)
      symbols_.push_back(load(i64_, elementPtr(field(offsetof(JitFrame, symbols)), i64_, i),
                              p_.symbolNames[i]));
  }

  // Calls every kernel of the steps (Run, Test) and returns 0, or the failing call's number.
  Status emitCalls(std::vector<std::string> &callLayers) {
    failBlock_ = llvm::BasicBlock::Create(c_, "failed", fn_);
    llvm::IRBuilder<> fb(failBlock_);
    failStatus_ = fb.CreatePHI(i32_, 0, "status");
    failIndex_ = fb.CreatePHI(i32_, 0, "call");
    fb.CreateStore(failStatus_, fieldPtr(fb, offsetof(JitFrame, status), i32_));
    fb.CreateRet(failIndex_);
    for (size_t i = 0; i < steps_.size(); ++i) {
      const Step &st = steps_[i];
      if (mode_ == Mode::Test && st.className != "Loss")
        continue;
      for (size_t c = 0; c < st.calls.size(); ++c) {
        const KernelCall &k = st.calls[c];
        if (k.loop != KernelCall::Loop::None) {
          FGC_TRY(emitLoopMarker(st, k));
          continue;
        }
        callLayers.push_back(mode_ == Mode::Test ? "evaluation" : st.layerName);
        current_ = {i, c};
        FGC_TRY(emitCall(st, k, int32_t(callLayers.size())));
      }
    }
    b_.CreateRet(llvm::ConstantInt::get(i32_, 0));
    if (failIndex_->getNumIncomingValues() == 0) {
      failIndex_->eraseFromParent();
      failStatus_->eraseFromParent();
      failBlock_->eraseFromParent();
    }
    return Status::ok();
  }

  // Stores each memory-plan slot's byte size into frame->sizes.
  Status emitSizes() {
    llvm::Value *sizes = field(offsetof(JitFrame, sizes));
    for (size_t k = 0; k < plan_->slots.size(); ++k) {
      const ArenaSlot &slot = plan_->slots[k];
      llvm::Value *bytes = nullptr;
      if (slot.kind == ArenaSlot::Kind::Scratch) {
        const Step &st = steps_[size_t(slot.step)];
        const KernelCall &call = st.calls[size_t(slot.call)];
        current_ = {size_t(slot.step), size_t(slot.call)};
        std::vector<const Arg *> args;
        if (call.scratchArgs.empty())
          args.push_back(&call.args[0]);
        for (const Arg &a : call.scratchArgs)
          args.push_back(&a);
        auto floats = callFunction(st, call.scratchFunction, args);
        if (!floats)
          return floats.error();
        bytes = alignUp(b_.CreateMul(*floats, llvm::ConstantInt::get(i64_, sizeof(float))));
      } else {
        const Buffer &buf = p_.buffers[size_t(slot.buffer)];
        if (!slot.used) {
          bytes = llvm::ConstantInt::get(i64_, 0);
        } else if (!buf.sizeFunction.empty()) {
          Step owner; // only for error messages
          owner.layerName = buf.name;
          auto floats = callFunction(owner, buf.sizeFunction, {&buf.sizeStruct[0]});
          if (!floats)
            return floats.error();
          bytes = alignUp(b_.CreateMul(*floats, llvm::ConstantInt::get(i64_, sizeof(float))));
        } else {
          size_t element = buf.dtype == schema::INT64 ? 8 : 4;
          bytes = alignUp(
              b_.CreateMul(size(buf.elements()), llvm::ConstantInt::get(i64_, element)));
        }
      }
      b_.CreateStore(bytes, elementPtr(sizes, i64_, k));
    }
    b_.CreateRet(llvm::ConstantInt::get(i32_, 0));
    return Status::ok();
  }

private:
  llvm::Module &m_;
  llvm::LLVMContext &c_;
  llvm::IRBuilder<> b_;
  const KernelProgram &p_;
  const std::vector<Step> &steps_;
  const MemoryPlan *plan_;
  Mode mode_;
  llvm::Type *i8_, *i32_, *i64_, *f32_, *f64_, *ptr_;
  llvm::Function *fn_;
  llvm::Value *frame_;
  llvm::BasicBlock *entry_, *failBlock_ = nullptr;
  llvm::PHINode *failStatus_ = nullptr, *failIndex_ = nullptr;
  std::vector<llvm::Value *> symbols_;
  std::map<int, size_t> slotOfBuffer_;
  std::map<std::pair<size_t, size_t>, size_t> slotOfScratch_;
  std::map<int, llvm::Value *> bufferPtr_; // cached: calls form a chain, so earlier values dominate
  std::pair<size_t, size_t> current_;      // the step and call being emitted
  // Loops open at the call being emitted (KernelCall::loop), innermost last.
  struct OpenLoop {
    llvm::BasicBlock *header, *exit;
    llvm::PHINode *index;
    bool reverse;
  };
  std::vector<OpenLoop> loops_;

  // A loop's begin or end marker. The loop runs header -> body ... -> latch -> header; every
  // buffer the loop uses gets its pointer before the header, so that the cached pointers
  // dominate their uses inside and after the loop.
  Status emitLoopMarker(const Step &st, const KernelCall &k) {
    if (k.loop == KernelCall::Loop::End) {
      if (loops_.empty())
        return Error::format("layer '{}': a loop end without a loop", st.layerName);
      OpenLoop l = loops_.back();
      loops_.pop_back();
      llvm::Value *step = llvm::ConstantInt::get(i64_, l.reverse ? uint64_t(-1) : 1, true);
      l.index->addIncoming(b_.CreateAdd(l.index, step), b_.GetInsertBlock());
      b_.CreateBr(l.header);
      b_.SetInsertPoint(l.exit);
      return Status::ok();
    }
    if (k.args.size() < 2 || k.args[0].kind != Arg::Kind::Size)
      return Error::format("layer '{}': a loop without its trip count and buffers", st.layerName);
    for (int id : k.args[1].buffers) {
      auto p = bufferPtr(id);
      if (!p)
        return p.error();
    }
    llvm::Value *n = size(k.args[0].size);
    llvm::Value *start = k.reverse ? b_.CreateSub(n, llvm::ConstantInt::get(i64_, 1))
                                   : llvm::ConstantInt::get(i64_, 0);
    llvm::BasicBlock *pre = b_.GetInsertBlock();
    auto *header = llvm::BasicBlock::Create(c_, "loop", fn_);
    auto *body = llvm::BasicBlock::Create(c_, "loop_body", fn_);
    auto *exit = llvm::BasicBlock::Create(c_, "loop_exit", fn_);
    b_.CreateBr(header);
    b_.SetInsertPoint(header);
    llvm::PHINode *index = b_.CreatePHI(i64_, 2, "t");
    index->addIncoming(start, pre);
    llvm::Value *more = k.reverse ? b_.CreateICmpSGE(index, llvm::ConstantInt::get(i64_, 0))
                                  : b_.CreateICmpSLT(index, n);
    b_.CreateCondBr(more, body, exit);
    b_.SetInsertPoint(body);
    loops_.push_back({header, exit, index, k.reverse});
    return Status::ok();
  }

  // --- frame access ---------------------------------------------------------------------------

  llvm::Value *fieldPtr(llvm::IRBuilder<> &b, size_t offset, llvm::Type *t) {
    llvm::Value *at = b.CreateConstInBoundsGEP1_64(i8_, frame_, offset);
    return b.CreateBitCast(at, t->getPointerTo());
  }
  llvm::Value *field(size_t offset, llvm::Type *t = nullptr) {
    t = t ? t : ptr_;
    return b_.CreateLoad(t, fieldPtr(b_, offset, t));
  }
  llvm::Value *load(llvm::Type *t, llvm::Value *ptr, const std::string &name = "") {
    return b_.CreateLoad(t, ptr, name);
  }
  // &array[index] for an i8* array of elements of type t.
  llvm::Value *elementPtr(llvm::Value *array, llvm::Type *t, size_t index) {
    llvm::Value *typed = b_.CreateBitCast(array, t->getPointerTo());
    return b_.CreateConstInBoundsGEP1_64(t, typed, index);
  }
  llvm::Value *bytePtr(llvm::Value *base, llvm::Value *offset) {
    return b_.CreateInBoundsGEP(i8_, base, offset);
  }
  llvm::Value *alignUp(llvm::Value *n) {
    return b_.CreateAnd(b_.CreateAdd(n, llvm::ConstantInt::get(i64_, 63)),
                        llvm::ConstantInt::get(i64_, ~uint64_t(63)));
  }
  // A stack slot in the entry block (so that LLVM promotes or reuses it).
  llvm::Value *stackBytes(size_t bytes, size_t align) {
    llvm::IRBuilder<> eb(entry_, entry_->begin());
    auto *a = eb.CreateAlloca(llvm::ArrayType::get(i8_, std::max<size_t>(bytes, 1)));
    a->setAlignment(llvm::Align(align));
    return b_.CreateBitCast(a, ptr_);
  }

  // --- values ---------------------------------------------------------------------------------

  llvm::Value *size(const SymSize &s) {
    llvm::Value *v = llvm::ConstantInt::get(i64_, uint64_t(s.coeff));
    for (Dim d : s.symbols)
      v = b_.CreateMul(v, symbols_[size_t(-1 - d)]);
    return v;
  }

  llvm::Value *slotPtr(size_t slot) {
    llvm::Value *offsets = field(offsetof(JitFrame, offsets));
    llvm::Value *offset = load(i64_, elementPtr(offsets, i64_, slot));
    return bytePtr(field(offsetof(JitFrame, arena)), offset);
  }

  llvm::Value *arrayElement(size_t fieldOffset, size_t index) {
    return load(ptr_, elementPtr(field(fieldOffset), ptr_, index));
  }

  Expected<llvm::Value *> bufferPtr(int id) {
    if (auto it = bufferPtr_.find(id); it != bufferPtr_.end())
      return it->second;
    const Buffer &buf = p_.buffers[size_t(id)];
    llvm::Value *v = nullptr;
    switch (buf.kind) {
    case Buffer::Kind::Input: v = arrayElement(offsetof(JitFrame, inputs), size_t(buf.index)); break;
    case Buffer::Kind::Output:
      v = arrayElement(offsetof(JitFrame, outputs), size_t(buf.index));
      break;
    case Buffer::Kind::Param: v = arrayElement(offsetof(JitFrame, params), size_t(buf.index)); break;
    case Buffer::Kind::Target:
      v = arrayElement(offsetof(JitFrame, targets), size_t(buf.index));
      break;
    case Buffer::Kind::State:
      v = bytePtr(field(offsetof(JitFrame, state)),
                  llvm::ConstantInt::get(i64_, uint64_t(buf.index) * sizeof(float)));
      break;
    case Buffer::Kind::Alias: {
      auto root = bufferPtr(buf.aliasOf);
      if (!root)
        return root.error();
      v = *root;
      break;
    }
    case Buffer::Kind::Activation: {
      // A buffer computed in place shares the slot of the input it overwrites (slotOf).
      auto it = slotOfBuffer_.find(id);
      int slot = it != slotOfBuffer_.end() ? int(it->second) : plan_ ? plan_->slotOf(id) : -1;
      if (!plan_ || slot < 0)
        return Error::format("buffer '{}' has no place in the memory plan", buf.name);
      v = slotPtr(size_t(slot));
      break;
    }
    case Buffer::Kind::Derived:
      v = bytePtr(field(offsetof(JitFrame, derived)),
                  llvm::ConstantInt::get(i64_, uint64_t(buf.index) * sizeof(float)));
      break;
    }
    v->setName(buf.name);
    bufferPtr_[id] = v;
    return v;
  }

  // `v` converted to the C type `want` as C's implicit conversions would.
  llvm::Value *convert(llvm::Value *v, llvm::Type *want) {
    llvm::Type *have = v->getType();
    if (have == want)
      return v;
    if (have->isIntegerTy() && want->isIntegerTy())
      return b_.CreateSExtOrTrunc(v, want);
    if (have->isIntegerTy() && want->isFloatingPointTy())
      return b_.CreateSIToFP(v, want);
    if (have->isFloatingPointTy() && want->isFloatingPointTy())
      return b_.CreateFPCast(v, want);
    if (have->isFloatingPointTy() && want->isIntegerTy())
      return b_.CreateFPToSI(v, want);
    if (have->isPointerTy() && want->isPointerTy())
      return b_.CreateBitCast(v, want);
    return nullptr;
  }

  Expected<llvm::Value *> structValue(const Arg &a) {
    const RuntimeStruct *rs = findRuntimeStruct(a.structType);
    if (!rs)
      return Error::format("struct type '{}' is not one the JIT knows (compiler/jit/"
                           "RuntimeSymbols.cpp)",
                           a.structType);
    if (rs->fields.size() != a.fields.size())
      return Error::format("{} has {} fields, the program gives {}", a.structType,
                           rs->fields.size(), a.fields.size());
    llvm::Value *mem = stackBytes(rs->size, rs->align);
    for (size_t i = 0; i < a.fields.size(); ++i) {
      llvm::Type *t = rs->fields[i].type(c_);
      auto v = argValue(a.fields[i], t);
      if (!v)
        return v.error();
      llvm::Value *at = b_.CreateBitCast(
          b_.CreateConstInBoundsGEP1_64(i8_, mem, rs->fields[i].offset), t->getPointerTo());
      b_.CreateStore(*v, at);
    }
    return mem;
  }

  // The value of argument `a` for a parameter of C type `want`.
  Expected<llvm::Value *> argValue(const Arg &a, llvm::Type *want) {
    llvm::Value *v = nullptr;
    switch (a.kind) {
    case Arg::Kind::Buffer: {
      auto p = bufferPtr(a.buffer);
      if (!p)
        return p.error();
      v = *p;
      break;
    }
    case Arg::Kind::Null: v = llvm::ConstantPointerNull::get(llvm::cast<llvm::PointerType>(ptr_)); break;
    case Arg::Kind::Size: v = size(a.size); break;
    case Arg::Kind::Int:
    case Arg::Kind::Enum: v = llvm::ConstantInt::get(i64_, uint64_t(a.intValue), true); break;
    case Arg::Kind::Float:
      // As the C++ emitter's float literal: rounded to float first.
      v = llvm::ConstantFP::get(f32_, double(float(a.floatValue)));
      break;
    case Arg::Kind::Struct: {
      auto s = structValue(a);
      if (!s)
        return s.error();
      v = *s;
      break;
    }
    case Arg::Kind::BufferList: {
      llvm::Value *mem = stackBytes(sizeof(void *) * a.buffers.size(), alignof(void *));
      for (size_t i = 0; i < a.buffers.size(); ++i) {
        llvm::Value *item = llvm::ConstantPointerNull::get(llvm::cast<llvm::PointerType>(ptr_));
        if (a.buffers[i] >= 0) {
          auto p = bufferPtr(a.buffers[i]);
          if (!p)
            return p.error();
          item = *p;
        }
        b_.CreateStore(item, elementPtr(mem, ptr_, i));
      }
      v = mem;
      break;
    }
    case Arg::Kind::SizeList:
    case Arg::Kind::IntList: {
      // int64_t[] of sizes, or int[] (C `int`) of constants.
      llvm::Type *t = a.kind == Arg::Kind::IntList ? i32_ : i64_;
      size_t width = a.kind == Arg::Kind::IntList ? sizeof(int) : sizeof(int64_t);
      llvm::Value *mem = stackBytes(width * a.sizes.size(), width);
      for (size_t i = 0; i < a.sizes.size(); ++i)
        b_.CreateStore(convert(size(a.sizes[i]), t), elementPtr(mem, t, i));
      v = mem;
      break;
    }
    case Arg::Kind::Scratch: {
      auto it = slotOfScratch_.find(current_);
      if (!plan_ || it == slotOfScratch_.end())
        return Error("a kernel's scratch has no place in the memory plan");
      v = slotPtr(it->second);
      break;
    }
    case Arg::Kind::FloatList: {
      llvm::Value *mem = stackBytes(sizeof(double) * a.floats.size(), alignof(double));
      for (size_t i = 0; i < a.floats.size(); ++i)
        b_.CreateStore(llvm::ConstantFP::get(f64_, a.floats[i]), elementPtr(mem, f64_, i));
      v = mem;
      break;
    }
    case Arg::Kind::Function: {
      // A custom kernel, int32_t(const void *), resolved when the module is linked.
      llvm::FunctionCallee f =
          m_.getOrInsertFunction(a.enumName, llvm::FunctionType::get(i32_, {ptr_}, false));
      v = b_.CreateBitCast(f.getCallee(), ptr_);
      break;
    }
    case Arg::Kind::LossOut:
      v = bytePtr(field(offsetof(JitFrame, acc)),
                  llvm::ConstantInt::get(i64_, uint64_t(a.intValue) * sizeof(double)));
      break;
    case Arg::Kind::CountOut:
      v = bytePtr(field(offsetof(JitFrame, cnt)),
                  llvm::ConstantInt::get(i64_, uint64_t(a.intValue) * sizeof(int64_t)));
      break;
    case Arg::Kind::Value:
      if (a.enumName == "step")
        v = field(offsetof(JitFrame, step), i64_);
      else if (a.enumName == "learningRate") // float(lr), as the generated code passes it
        v = b_.CreateFPTrunc(field(offsetof(JitFrame, learningRate), f64_), f32_);
      else if (a.enumName == "dropoutRate") // the rate, or 0 with Dropout disabled
        v = b_.CreateFMul(llvm::ConstantFP::get(f32_, double(float(a.floatValue))),
                          field(offsetof(JitFrame, dropoutScale), f32_));
      else
        return Error::format("unknown run-time value '{}'", a.enumName);
      break;
    case Arg::Kind::LoopIndex:
      if (loops_.empty())
        return Error("a loop index outside any loop");
      v = loops_.back().index;
      break;
    }
    llvm::Value *out = convert(v, want);
    if (!out)
      return Error("an argument's kind does not fit the parameter's C type");
    return out;
  }

  // The callee for `name`: a runtime function (its declared type) or, failing that, a symbol of
  // the process taking one pointer (a custom kernel).
  Expected<llvm::FunctionCallee> callee(const Step &st, const std::string &name, size_t numArgs) {
    llvm::FunctionType *type = nullptr;
    if (const RuntimeFunction *f = findRuntimeFunction(name)) {
      type = f->type(c_);
    } else {
      if (!llvm::sys::DynamicLibrary::SearchForAddressOfSymbol(name))
        return Error::format("layer '{}': kernel function '{}' is neither a runtime function "
                             "(compiler/jit/RuntimeFunctions.def) nor a symbol of this process "
                             "(is the plugin defining it loaded?)",
                             st.layerName, name);
      type = llvm::FunctionType::get(i32_, {ptr_}, false);
    }
    if (type->getNumParams() != numArgs)
      return Error::format("layer '{}': kernel function '{}' takes {} arguments, the program "
                           "passes {}",
                           st.layerName, name, type->getNumParams(), numArgs);
    return m_.getOrInsertFunction(name, type);
  }

  // A custom kernel argument must resolve when the module is linked: say which layer's does not
  // (LLVM's own message would name only the entry function).
  static Status checkCustomKernel(const Step &st, const Arg &a) {
    if (a.kind != Arg::Kind::Function ||
        OpRegistry::global().kernelAddresses().count(a.enumName) ||
        llvm::sys::DynamicLibrary::SearchForAddressOfSymbol(a.enumName))
      return Status::ok();
    return Error::format("layer '{}' ({}): custom kernel '{}' is neither registered with its "
                         "address nor a symbol of this process (link it into the program, or "
                         "load the plugin defining it)",
                         st.layerName, st.className, a.enumName);
  }

  Expected<llvm::Value *> callFunction(const Step &st, const std::string &name,
                                       const std::vector<const Arg *> &args) {
    auto f = callee(st, name, args.size());
    if (!f)
      return f.error();
    for (const Arg *a : args)
      FGC_TRY(checkCustomKernel(st, *a));
    std::vector<llvm::Value *> values;
    for (size_t i = 0; i < args.size(); ++i) {
      auto v = argValue(*args[i], f->getFunctionType()->getParamType(unsigned(i)));
      if (!v)
        return Error::format("layer '{}': argument {} of {}: {}", st.layerName, i, name,
                             v.error().message());
      values.push_back(*v);
    }
    llvm::Value *r = b_.CreateCall(*f, values);
    return convert(r, i64_) ? convert(r, i64_) : r;
  }

  // The argument list of call k of the loss step for testStep: the predictions stand for the
  // model's outputs, their rows and columns for the sizes, and the losses write no gradient.
  std::vector<Arg> testArgs(const KernelCall &k, std::vector<Arg> &storage) {
    storage = k.args;
    int target = k.args[0].buffer;
    int output = p_.targetOutputs[size_t(p_.buffers[size_t(target)].index)];
    int sizesSeen = 0;
    bool loss = k.function.rfind("fgc_loss_", 0) == 0;
    for (size_t a = 0; a < storage.size(); ++a) {
      Arg &arg = storage[a];
      if (loss && a + 1 == storage.size()) {
        arg = Arg{}; // no gradient
      } else if (arg.kind == Arg::Kind::Buffer &&
                 p_.buffers[size_t(arg.buffer)].kind != Buffer::Kind::Target) {
        arg.buffer = -2 - output; // the prediction of `output` (see testValue)
      } else if (arg.kind == Arg::Kind::Size) {
        arg.kind = Arg::Kind::Value;
        arg.enumName = sizesSeen++ == 0 ? "rows" : "cols";
        arg.intValue = output;
      }
    }
    return storage;
  }

  Status emitCall(const Step &st, const KernelCall &k, int32_t number) {
    std::vector<Arg> storage;
    const std::vector<Arg> &args = mode_ == Mode::Test ? testArgs(k, storage) : k.args;
    auto f = callee(st, k.function, args.size());
    if (!f)
      return f.error();
    for (const Arg &a : args)
      FGC_TRY(checkCustomKernel(st, a));
    std::vector<llvm::Value *> values;
    for (size_t i = 0; i < args.size(); ++i) {
      llvm::Type *want = f->getFunctionType()->getParamType(unsigned(i));
      Expected<llvm::Value *> v = mode_ == Mode::Test ? testValue(args[i], want)
                                                      : argValue(args[i], want);
      if (!v)
        return Error::format("layer '{}': argument {} of {}: {}", st.layerName, i, k.function,
                             v.error().message());
      values.push_back(*v);
    }
    llvm::Value *status = b_.CreateCall(*f, values);
    if (!status->getType()->isIntegerTy())
      return Status::ok();
    status = convert(status, i32_);
    auto *next = llvm::BasicBlock::Create(c_, "", fn_);
    b_.CreateCondBr(b_.CreateICmpNE(status, llvm::ConstantInt::get(i32_, 0)), failBlock_, next);
    failStatus_->addIncoming(status, b_.GetInsertBlock());
    failIndex_->addIncoming(llvm::ConstantInt::get(i32_, uint64_t(number)), b_.GetInsertBlock());
    b_.SetInsertPoint(next);
    return Status::ok();
  }

  // testArgs' stand-ins: predictions (buffer -2 - output) and their rows / columns.
  Expected<llvm::Value *> testValue(const Arg &a, llvm::Type *want) {
    if (a.kind == Arg::Kind::Buffer && a.buffer <= -2)
      return convert(arrayElement(offsetof(JitFrame, outputs), size_t(-2 - a.buffer)), want);
    if (a.kind == Arg::Kind::Value && (a.enumName == "rows" || a.enumName == "cols")) {
      size_t index = size_t(2 * a.intValue + (a.enumName == "cols" ? 1 : 0));
      return convert(load(i64_, elementPtr(field(offsetof(JitFrame, rows)), i64_, index)), want);
    }
    return argValue(a, want);
  }
};

// LLVM's native target, once per process.
void initializeLlvm() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    llvm::sys::DynamicLibrary::LoadLibraryPermanently(nullptr);
  });
}

Status optimize(llvm::Module &m, llvm::TargetMachine &tm, int level) {
  if (level <= 0)
    return Status::ok();
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PassBuilder pb(&tm);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  if (level == 1) {
    // The glue pipeline: the entry functions are long straight chains of calls whose arguments
    // are stack structs, products of symbols and arena offsets. Promoting the stack slots,
    // folding the arithmetic and sharing repeated loads is all that changes their speed;
    // O2's loop, inlining and vectorizing passes find nothing and cost ~3x the time.
    llvm::FunctionPassManager fpm;
    fpm.addPass(llvm::SROAPass());
    fpm.addPass(llvm::EarlyCSEPass(/*UseMemorySSA=*/false));
    fpm.addPass(llvm::InstCombinePass());
    fpm.addPass(llvm::SimplifyCFGPass());
    llvm::ModulePassManager mpm;
    mpm.addPass(llvm::createModuleToFunctionPassAdaptor(std::move(fpm)));
    mpm.run(m, mam);
    return Status::ok();
  }
  llvm::OptimizationLevel o = level == 2 ? llvm::OptimizationLevel::O2
                                         : llvm::OptimizationLevel::O3;
  llvm::ModulePassManager mpm = pb.buildPerModuleDefaultPipeline(o);
  mpm.run(m, mam);
  return Status::ok();
}

} // namespace

// Builds the module, optimizes it and compiles it with ORC's LLJIT.
struct CodeBuilder {
  static Status compile(Code &code, const Options &options) {
    auto start = std::chrono::steady_clock::now();
    PhaseClock clock(code.phases);
    initializeLlvm();
    const KernelProgram &p = code.program;
    auto context = std::make_unique<llvm::LLVMContext>();
    auto module = std::make_unique<llvm::Module>(p.modelName, *context);

    std::vector<std::pair<std::string, Entry *>> names;
    auto add = [&](const std::string &name, const std::vector<Step> &steps, const MemoryPlan *plan,
                   Mode mode, Entry &entry) -> Status {
      FunctionBuilder run(*module, p, steps, plan, mode, name);
      FGC_TRY(run.emitCalls(entry.callLayers));
      if (plan) {
        FunctionBuilder sizes(*module, p, steps, plan, Mode::Sizes, name + "_sizes");
        FGC_TRY(sizes.emitSizes());
        for (const ArenaSlot &s : plan->slots)
          entry.live.push_back({int32_t(s.first), int32_t(s.last)});
      }
      return Status::ok();
    };
    FGC_TRY(add("predict", p.steps, &code.predictPlan, Mode::Run, code.predict));
    if (!p.weightSteps.empty()) // they read parameters and write Derived buffers only
      FGC_TRY(add("update_derived", p.weightSteps, nullptr, Mode::Run, code.derived));
    if (p.training) {
      FGC_TRY(add("train_step", p.trainSteps, &code.trainPlan, Mode::Run, code.train));
      FGC_TRY(add("test_step", p.trainSteps, nullptr, Mode::Test, code.test));
    }
    std::string verify;
    llvm::raw_string_ostream vs(verify);
    if (llvm::verifyModule(*module, &vs))
      return Error::format("model '{}': the JIT built invalid LLVM IR: {}", p.modelName,
                           vs.str());
    clock.lap("LLVM IR");

    auto jtmb = llvm::orc::JITTargetMachineBuilder::detectHost();
    if (!jtmb)
      return Error("LLVM: " + llvmMessage(jtmb.takeError()));
    // Up to level 1, fast instruction selection and register allocation: the glue's time is
    // in the kernels it calls, not in its own instructions.
    jtmb->setCodeGenOptLevel(options.llvmOptLevel <= 1   ? llvm::CodeGenOpt::None
                             : options.llvmOptLevel == 2 ? llvm::CodeGenOpt::Default
                                                         : llvm::CodeGenOpt::Aggressive);
    auto tm = jtmb->createTargetMachine();
    if (!tm)
      return Error("LLVM: " + llvmMessage(tm.takeError()));
    module->setDataLayout((*tm)->createDataLayout());
    module->setTargetTriple((*tm)->getTargetTriple().str());
    clock.lap("LLVM target");
    FGC_TRY(optimize(*module, **tm, options.llvmOptLevel));
    clock.lap("LLVM optimization");
    if (!options.dumpLlvmIr.empty()) {
      std::string text;
      llvm::raw_string_ostream os(text);
      module->print(os, nullptr);
      FGC_TRY(writeFileAtomic(options.dumpLlvmIr, os.str()));
    }

    auto jit = llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(std::move(*jtmb)).create();
    if (!jit)
      return Error("LLVM: " + llvmMessage(jit.takeError()));
    llvm::orc::JITDylib &dylib = (*jit)->getMainJITDylib();
    llvm::orc::SymbolMap symbols;
    for (const RuntimeFunction &f : runtimeFunctions())
      symbols[(*jit)->mangleAndIntern(f.name)] = llvm::JITEvaluatedSymbol(
          llvm::pointerToJITTargetAddress(f.address),
          llvm::JITSymbolFlags::Exported | llvm::JITSymbolFlags::Callable);
    // Custom kernels registered with their address (the others resolve below).
    for (const auto &[name, address] : OpRegistry::global().kernelAddresses())
      if (!findRuntimeFunction(name))
        symbols[(*jit)->mangleAndIntern(name)] = llvm::JITEvaluatedSymbol(
            llvm::pointerToJITTargetAddress(address),
            llvm::JITSymbolFlags::Exported | llvm::JITSymbolFlags::Callable);
    if (auto e = dylib.define(llvm::orc::absoluteSymbols(std::move(symbols))))
      return Error("LLVM: " + llvmMessage(std::move(e)));
    // Custom kernels (plugins) resolve among the process's symbols.
    auto generator = llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(
        (*jit)->getDataLayout().getGlobalPrefix());
    if (!generator)
      return Error("LLVM: " + llvmMessage(generator.takeError()));
    dylib.addGenerator(std::move(*generator));
    if (auto e = (*jit)->addIRModule(
            llvm::orc::ThreadSafeModule(std::move(module), std::move(context))))
      return Error("LLVM: " + llvmMessage(std::move(e)));

    auto lookup = [&](const std::string &name, EntryFunction &out) -> Status {
      auto sym = (*jit)->lookup(name);
      if (!sym)
        return Error::format("model '{}': LLVM: {}", p.modelName, llvmMessage(sym.takeError()));
      out = reinterpret_cast<EntryFunction>(sym->getAddress());
      return Status::ok();
    };
    FGC_TRY(lookup("predict", code.predict.run));
    FGC_TRY(lookup("predict_sizes", code.predict.sizes));
    if (!p.weightSteps.empty())
      FGC_TRY(lookup("update_derived", code.derived.run));
    if (p.training) {
      FGC_TRY(lookup("train_step", code.train.run));
      FGC_TRY(lookup("train_step_sizes", code.train.sizes));
      FGC_TRY(lookup("test_step", code.test.run));
    }
    code.jit_ = std::move(*jit);
    clock.lap("machine code");
    code.llvmSeconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return Status::ok();
  }
};

Status compileCode(Code &code, const Options &options) { return CodeBuilder::compile(code, options); }

} // namespace fgc::jit
