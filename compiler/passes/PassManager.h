// The pass pipeline: which passes run, in which order, at which optimization level.
//
// `fgc compile -O0` runs no pass and plans no memory reuse; -O1 runs the passes that only remove
// work (inlining, dead nodes) and reuses memory; -O2 (the default) runs everything. Any pass can
// be switched off by name (`--disable-pass`), and the IR printed after any pass
// (`--print-ir-after NAME`, or `all`). Graph passes run before lowering, program passes on the
// lowered program (PassManager.cpp lists them with the reason for their place).
#pragma once

#include "compiler/passes/Pass.h"

#include <functional>
#include <set>

namespace fgc {

struct PipelineOptions {
  int optLevel = 2;
  std::set<std::string> disabled;
  std::set<std::string> printAfter; // pass names, or "all"
  PassOptions pass;
  // Receives the IR text after each pass named in printAfter.
  std::function<void(const std::string &pass, const std::string &ir)> print;
};

// What one pass did.
struct PassRecord {
  std::string name;
  std::string stage;  // "graph", "inference program", "training program"
  bool ran = false;   // false: below the optimization level or disabled
  std::string reason; // why it did not run
  Changes changes;
};

// Every pass name, in pipeline order (for --disable-pass checks and help).
std::vector<std::string> passNames();

// Checks names given to --disable-pass / --print-ir-after.
Status checkPassNames(const std::set<std::string> &names, bool allowAll);

// Runs the graph passes on `graph`.
Expected<std::vector<PassRecord>> runGraphPasses(Graph &graph, const PipelineOptions &options);

// Runs the program passes on the inference steps and, when the program has them, the training
// steps.
Expected<std::vector<PassRecord>> runProgramPasses(KernelProgram &program,
                                                   const PipelineOptions &options);

// The lowered program as text (for --print-ir-after on program passes): one line per kernel
// call, under its step's comment.
std::string printProgram(const KernelProgram &program, bool training);

} // namespace fgc
