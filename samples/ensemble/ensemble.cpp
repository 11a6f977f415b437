// The seed's ensemble: three small models (128 -> 1) called on one input, averaged.
//
// Python (seed):
//   def get_model():
//       inputs = keras.Input(shape=(128,))
//       outputs = layers.Dense(1)(inputs)
//       return keras.Model(inputs, outputs)
//   model1, model2, model3 = get_model(), get_model(), get_model()
//   inputs = keras.Input(shape=(128,))
//   outputs = layers.average([model1(inputs), model2(inputs), model3(inputs)])
//   ensemble_model = keras.Model(inputs=inputs, outputs=outputs)
#include "../sample_main.h"

using namespace fgc::keras;

static Model getModel() {
  auto inputs = Input({128});
  auto outputs = layers::Dense(1)(inputs);
  return Model(inputs, outputs);
}

int runSample(const std::string &outDir) {
  Model model1 = getModel();
  Model model2 = getModel();
  Model model3 = getModel();

  auto inputs = Input({128});
  auto y1 = model1(inputs);
  auto y2 = model2(inputs);
  auto y3 = model3(inputs);
  auto outputs = layers::average({y1, y2, y3});
  Model ensembleModel(inputs, outputs);
  ensembleModel.summary();

  ensembleModel.save(outDir + "/model.pbtxt");
  plot_model(ensembleModel, outDir + "/model.png", {.show_shapes = true});
  return 0;
}
