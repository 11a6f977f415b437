// `fgc compile --report` / `--report-json`: what the compiler did to a model and what it costs.
//
// The passes run (and what each changed), the fused groups by layer name, the schedule, the
// arena (planned size, the lower bound - the most bytes live at once - and the naive sum of all
// intermediates) for inference and training at a stated batch size, the parameter bytes and the
// FLOPs per sample.
#pragma once

#include "compiler/memory/MemoryPlan.h"
#include "compiler/passes/PassManager.h"

#include <string>

namespace fgc {

struct ReportInput {
  const Graph *graph = nullptr; // after the graph passes
  const KernelProgram *program = nullptr; // after the program passes
  std::vector<PassRecord> passes;
  const MemoryPlan *predictPlan = nullptr;
  const MemoryPlan *trainPlan = nullptr; // null: no training code
  int optLevel = 2;
  int64_t batch = 32;      // the batch size the arena figures are for
  int64_t otherDims = 64;  // every other None dimension (sequence lengths)
};

std::string reportText(const ReportInput &in);
std::string reportJson(const ReportInput &in);

} // namespace fgc
