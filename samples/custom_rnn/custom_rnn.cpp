// The seed's "mixing" example: the subclassed CustomRNN layer (units 32, timesteps 10,
// input_dim 5) wrapping a functional classifier, called on a batch of 1.
//
// Python (seed):
//   rnn_model = CustomRNN()
//   _ = rnn_model(tf.zeros((1, timesteps, input_dim)))    # prints (1, 10, 32)
//
// Writes model.pbtxt: Input (1, 10, 5) -> CustomRNN -> (1, 1), and features.pbtxt, the same
// layer with return_features=true (outputs: the features (1, 10, 32) and the classifier's (1, 1)).
// model.pbtxt is compiled with training code (SGD, mean squared error).
//
// Also scan.pbtxt: the same cell written with ops::scan (ScanRNN.h) on inputs of any length,
// Input (None, 5) -> ScanRNN -> (None, 1) (SGD, mean squared error), and scan_features.pbtxt,
// which also returns the features (None, None, 32).
#include "../sample_main.h"
#include "CustomRNN.h"
#include "ScanRNN.h"

#include <iostream>

using namespace fgc::keras;

int runSample(const std::string &outDir) {
  register_custom_layer<CustomRNN>("CustomRNN");
  const int64_t units = 32, timesteps = 10, inputDim = 5;

  auto inputs = Input({timesteps, inputDim}, {.batch_size = 1});
  auto rnn = std::make_shared<CustomRNN>(units);
  auto outputs = layers::CustomFrom(rnn)(inputs);
  std::cout << rnn->features.shapeString() << "\n"; // the seed's print(features.shape)
  Model model(inputs, outputs, "custom_rnn_model");
  model.summary();
  model.compile({.optimizer = optimizers::SGD(0.1), .loss = {{"", losses::MeanSquaredError()}}});
  model.save(outDir + "/model.pbtxt");

  auto in2 = Input({timesteps, inputDim}, {.batch_size = 1});
  auto outs = layers::Custom<CustomRNN>(units, true).callMulti({in2});
  Model features({in2}, outs, "custom_rnn_features");
  features.save(outDir + "/features.pbtxt");

  register_custom_layer<ScanRNN>("ScanRNN");
  auto seq = Input({None, inputDim});
  Model scan(seq, layers::Custom<ScanRNN>(units)(seq), "scan_rnn_model");
  scan.compile({.optimizer = optimizers::SGD(0.1), .loss = {{"", losses::MeanSquaredError()}}});
  scan.save(outDir + "/scan.pbtxt");
  auto seq2 = Input({None, inputDim});
  Model scanFeatures({seq2}, layers::Custom<ScanRNN>(units, true).callMulti({seq2}),
                     "scan_rnn_features");
  scanFeatures.save(outDir + "/scan_features.pbtxt");
  return 0;
}
