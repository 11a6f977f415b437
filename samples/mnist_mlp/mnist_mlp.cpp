// The seed's first example: a 784-64-64-10 MLP for MNIST digits ("mnist_model"), compiled with
// SparseCategoricalCrossentropy(from_logits=True), RMSprop and accuracy.
//
// Python (seed):
//   inputs = keras.Input(shape=(784,))
//   dense = layers.Dense(64, activation="relu")
//   x = dense(inputs)
//   x = layers.Dense(64, activation="relu")(x)
//   outputs = layers.Dense(10)(x)
//   model = keras.Model(inputs=inputs, outputs=outputs, name="mnist_model")
#include "../sample_main.h"

using namespace fgc::keras;

int runSample(const std::string &outDir) {
  auto inputs = Input({784});
  auto dense = layers::Dense(64, {.activation = "relu"});
  auto x = dense(inputs);
  x = layers::Dense(64, {.activation = "relu"})(x);
  auto outputs = layers::Dense(10)(x);
  Model model(inputs, outputs, "mnist_model");
  model.summary();

  model.compile({.optimizer = optimizers::RMSprop(),
                 .loss = {{"", losses::SparseCategoricalCrossentropy({.from_logits = true})}},
                 .metrics = {"accuracy"}});
  model.save(outDir + "/model.pbtxt");
  plot_model(model, outDir + "/model.png", {.show_shapes = true});
  return 0;
}
