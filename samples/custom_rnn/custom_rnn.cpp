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
#include "../sample_main.h"
#include "CustomRNN.h"

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
  return 0;
}
