// The seed's toy ResNet for CIFAR-10: three blocks with two residual connections.
//
// Layer names are the seed's own: in the tutorial notebook, eight Conv2D layers, two pooling
// layers and six Dense layers were made before this model, so Keras named its layers conv2d_8,
// max_pooling2d_2, dense_6 and so on. The names are given explicitly so the summary matches the
// seed's line for line.
#include "../sample_main.h"

using namespace fgc::keras;

int runSample(const std::string &outDir) {
  auto conv = [](int64_t filters, const std::string &name, const std::string &padding = "valid") {
    return layers::Conv2D(filters, 3, {.padding = padding, .activation = "relu", .name = name});
  };
  auto inputs = Input({32, 32, 3}, {.name = "img"});
  auto x = conv(32, "conv2d_8")(inputs);
  x = conv(64, "conv2d_9")(x);
  auto block1Output = layers::MaxPooling2D(3, {.name = "max_pooling2d_2"})(x);

  x = conv(64, "conv2d_10", "same")(block1Output);
  x = conv(64, "conv2d_11", "same")(x);
  auto block2Output = layers::add({x, block1Output}, {.name = "add"});

  x = conv(64, "conv2d_12", "same")(block2Output);
  x = conv(64, "conv2d_13", "same")(x);
  auto block3Output = layers::add({x, block2Output}, {.name = "add_1"});

  x = conv(64, "conv2d_14")(block3Output);
  x = layers::GlobalAveragePooling2D({.name = "global_average_pooling2d"})(x);
  x = layers::Dense(256, {.activation = "relu", .name = "dense_6"})(x);
  x = layers::Dropout(0.5, {.name = "dropout"})(x);
  auto outputs = layers::Dense(10, {.name = "dense_7"})(x);

  Model model(inputs, outputs, "toy_resnet");
  model.summary();

  model.compile({.optimizer = optimizers::RMSprop(1e-3),
                 .loss = {{"", losses::CategoricalCrossentropy({.from_logits = true})}},
                 .metrics = {"acc"}});
  model.save(outDir + "/model.pbtxt");
  plot_model(model, outDir + "/model.png", {.show_shapes = true});
  return 0;
}
