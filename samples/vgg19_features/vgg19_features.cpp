// VGG19 (keras.applications.VGG19 with its classifier top) and the seed's feature-extraction
// model, whose outputs are the outputs of every VGG19 layer (as used for neural style transfer).
//
// The committed model files hold the architecture only (weights are initialized from the seed at
// load), so they stay small although VGG19 has 143,667,240 parameters.
#include "../sample_main.h"

#include <vector>

using namespace fgc::keras;

// keras.applications.VGG19(include_top=True, weights=None, classes=1000)
static Model vgg19() {
  auto imgInput = Input({224, 224, 3}, {.name = "input_1"});
  Tensor x = imgInput;
  const int64_t filters[5] = {64, 128, 256, 512, 512};
  const int convs[5] = {2, 2, 4, 4, 4};
  for (int block = 0; block < 5; ++block) {
    for (int c = 0; c < convs[block]; ++c)
      x = layers::Conv2D(filters[block], 3,
                         {.padding = "same",
                          .activation = "relu",
                          .name = "block" + std::to_string(block + 1) + "_conv" +
                                  std::to_string(c + 1)})(x);
    x = layers::MaxPooling2D(2, {.strides = 2, .name = "block" + std::to_string(block + 1) + "_pool"})(x);
  }
  x = layers::Flatten({.name = "flatten"})(x);
  x = layers::Dense(4096, {.activation = "relu", .name = "fc1"})(x);
  x = layers::Dense(4096, {.activation = "relu", .name = "fc2"})(x);
  x = layers::Dense(1000, {.activation = "softmax", .name = "predictions"})(x);
  return Model(imgInput, x, "vgg19");
}

int runSample(const std::string &outDir) {
  Model model = vgg19();
  model.summary();
  model.save(outDir + "/model.pbtxt");

  // feature_list = [layer.output for layer in vgg19.layers]
  std::vector<Tensor> featureList;
  for (const Layer &layer : model.layers())
    featureList.push_back(layer.output());
  // feat_extraction_model = keras.Model(inputs=vgg19.input, outputs=feature_list)
  Model featExtractionModel(model.inputs(), featureList, "feat_extraction_model");
  featExtractionModel.save(outDir + "/features.pbtxt");
  plot_model(model, outDir + "/model.png", {.show_shapes = true});
  return 0;
}
