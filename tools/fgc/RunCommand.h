// `fgc run`: JIT-compile a model and predict, fit or evaluate on data files (RunCommand.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fgc {

struct RunOptions {
  std::string model;
  std::string action = "predict"; // predict, fit, evaluate
  std::vector<std::string> inputs, targets; // NAME=FILE
  std::string outputDir = ".";
  double xScale = 1.0;
  // The compiler's options (as `fgc compile`).
  int optLevel = 2;
  std::vector<std::string> disabledPasses, outputs;
  std::string dumpLlvmIr, optimizer;
  std::string weightsFile; // .fgcw or model file read straight into the weights (no seed init)
  double learningRate = 0;
  // Keras's fit / evaluate arguments (fgc::rt::FitOptions).
  int64_t batchSize = 32;
  int epochs = 1;
  double validationSplit = 0;
  bool noShuffle = false;
  uint64_t shuffleSeed = 0;
  int initialEpoch = 0;
  int verbose = 1;
  std::string saveTo, resume, historyCsv;
  // Print the time to the first result by phase (compilation, reading the data, the first
  // call) to stderr.
  bool timePhases = false;
};

// Runs the command; throws fgc::rt::Error (the caller prints `fgc: error: ...`).
int runModel(const RunOptions &options);

} // namespace fgc
