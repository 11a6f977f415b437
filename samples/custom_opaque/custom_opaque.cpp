// A custom layer whose activation is an opaque op with hand-written C kernels (SwishDense.h,
// swish_kernels.c): SwishDense(3, beta=1.5) on a (4,) input.
//
// Writes model.pbtxt (compiled with training code: SGD, mean squared error). Generated C++ of
// the model declares the kernels extern "C" and the application links swish_kernels.c; the JIT
// calls them at the addresses registerSwishDense() gives.
#include "../sample_main.h"
#include "SwishDense.h"

using namespace fgc::keras;

int runSample(const std::string &outDir) {
  registerSwishDense();
  auto inputs = Input({4});
  auto outputs = layers::Custom<SwishDense>(3, 1.5)(inputs);
  Model model(inputs, outputs);
  model.summary();
  model.compile({.optimizer = optimizers::SGD(0.1), .loss = {{"", losses::MeanSquaredError()}}});
  model.save(outDir + "/model.pbtxt");
  return 0;
}
