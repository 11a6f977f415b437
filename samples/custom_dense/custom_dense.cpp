// The seed's custom layer example: CustomDense(10) on a (4,) input, the model's config, and a
// new model from that config with CustomDense as a custom object.
//
// Python (seed):
//   inputs = keras.Input((4,))
//   outputs = CustomDense(10)(inputs)
//   model = keras.Model(inputs, outputs)
//   config = model.get_config()
//   new_model = keras.Model.from_config(config, custom_objects={"CustomDense": CustomDense})
//
// Writes model.pbtxt (the model, compiled with training code: SGD, mean squared error).
#include "../sample_main.h"
#include "CustomDense.h"

#include <iostream>

using namespace fgc::keras;

int runSample(const std::string &outDir) {
  register_custom_layer<CustomDense>("CustomDense");

  auto inputs = Input({4});
  auto outputs = layers::Custom<CustomDense>(10)(inputs);
  Model model(inputs, outputs);
  auto config = model.get_config();

  Model newModel = Model::from_config(config, {{"CustomDense", custom_object<CustomDense>()}});
  newModel.summary();
  if (newModel.count_params() != model.count_params())
    throw std::runtime_error("from_config changed the parameter count");

  model.compile({.optimizer = optimizers::SGD(0.1), .loss = {{"", losses::MeanSquaredError()}}});
  model.save(outDir + "/model.pbtxt");
  return 0;
}
