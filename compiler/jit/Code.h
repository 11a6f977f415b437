// What a JIT compilation produces: the lowered program and its memory plans, the tables the host
// side needs (input / output / weight specs, the model file's schema) and the entry points of
// the LLVM-compiled glue. Shared by every jit::Model made from it; LLVM stays behind a pointer.
#pragma once

#include "compiler/codegen/KernelProgram.h"
#include "compiler/memory/MemoryPlan.h"
#include "compiler/support/LargeBuffer.h"

#include "fgc/jit.h"
#include "fgc/runtime/schedule.h"

#include <array>
#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <vector>

namespace llvm::orc {
class LLJIT;
}

namespace fgc::jit {

// The one argument of every JIT-compiled entry point. The host fills it; the code reads it.
struct JitFrame {
  const void *const *inputs;   // input i's data (index inputs: int32, possibly staged)
  void *const *outputs;        // output i's data
  float *const *params;        // parameter i
  const float *const *targets; // target i (training)
  float *state;                // optimizer slots (training)
  float *derived;              // buffers computed from the weights (KernelProgram::weightSteps)
  const int64_t *symbols;      // symbol values: [0] the batch size, then other None dims
  char *arena;                 // the arena ...
  const size_t *offsets;       // ... and each memory-plan slot's byte offset in it
  size_t *sizes;               // sizes entries: each slot's bytes (out)
  double *acc;                 // loss accumulators (training)
  int64_t *cnt;                // metric counters (training)
  const int64_t *rows;         // test entry: rows and columns of each output's predictions
  double learningRate;         // this update's learning rate
  int64_t step;                // optimizer steps including this one
  float dropoutScale;          // 1: Dropout active, 0: disabled
  int32_t status;              // the failing kernel's status (out)
};

// Returns 0, or 1 + the index of the kernel call that failed (its status in frame->status).
using EntryFunction = int32_t (*)(JitFrame *);

// One JIT-compiled function: the code, which layer each of its calls belongs to, and (for
// predict / trainStep) the memory plan's live ranges, in slot order.
struct Entry {
  EntryFunction run = nullptr;
  EntryFunction sizes = nullptr; // fills frame->sizes for the plan's slots
  std::vector<std::string> callLayers;
  std::vector<std::array<int32_t, 2>> live;
};

// Laps of a stopwatch, one per compilation phase (Model::compilePhases).
class PhaseClock {
public:
  explicit PhaseClock(std::vector<std::pair<std::string, double>> &phases) : phases_(phases) {}
  // Ends the current phase as `name`.
  void lap(const char *name) {
    auto now = std::chrono::steady_clock::now();
    phases_.emplace_back(name, std::chrono::duration<double>(now - last_).count());
    last_ = now;
  }

private:
  std::vector<std::pair<std::string, double>> &phases_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

class Code {
public:
  ~Code();
  // Lowered program + plans -> machine code. `graph` owns the parameters the program points to;
  // their values come from `weightsFile` when it is not empty (the parameters have no data
  // then), from the parameters' data otherwise.
  static Expected<std::shared_ptr<Code>> build(std::unique_ptr<Graph> graph, KernelProgram program,
                                               std::string modelSchema, const Options &options,
                                               const std::string &weightsFile,
                                               std::vector<std::pair<std::string, double>> phases);
  // A model of this code with the initial weights.
  static std::unique_ptr<Model> makeModel(std::shared_ptr<const Code> code);

  std::unique_ptr<Graph> graph;
  KernelProgram program;
  MemoryPlan predictPlan, trainPlan;
  Entry predict, train, test;
  Entry derived; // the weight steps (folded BatchNormalization), run when the weights change
  double compileSeconds = 0; // file / model in, callable out
  double llvmSeconds = 0;    // of which LLVM: IR, optimization, machine code
  std::vector<std::pair<std::string, double>> phases; // where compileSeconds went

  // Host tables, as the generated class has them.
  std::vector<rt::TensorSpec> inputSpecs, outputSpecs, targetSpecs;
  std::vector<rt::WeightSpec> weightSpecs;
  std::vector<rt::SlotSpec> slotSpecs;
  rt::ModelFileSpec modelFile;
  rt::LearningRateSchedule schedule; // of the optimizer step, as the training config says
  std::string modelSchema;
  LargeBuffer blob; // initial weights at the weight specs' offsets (64-byte aligned)
  const float *blobData = nullptr;
  size_t blobBytes = 0;
  std::vector<int> inputSlot, trainInputSlot; // index inputs: staging slot (-1: none)
  std::vector<int> gradientSlot;              // train plan slot of each gradient (-1: none)

private:
  Code();
  std::vector<std::vector<int64_t>> shapes_;
  std::deque<std::string> strings_; // stable c_str() for the specs
  std::unique_ptr<llvm::orc::LLJIT> jit_;
  friend class Model;
  friend struct CodeBuilder;
};

} // namespace fgc::jit
