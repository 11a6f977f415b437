// The seed's CustomRNN: a custom layer holding two Dense projections and a functional
// classifier model, unrolled over a static number of time steps in call().
//
// Python (seed):
//   units = 32; timesteps = 10; input_dim = 5
//   inputs = keras.Input((None, units))
//   x = layers.GlobalAveragePooling1D()(inputs)
//   outputs = layers.Dense(1)(x)
//   model = keras.Model(inputs, outputs)
//
//   class CustomRNN(layers.Layer):
//       def __init__(self):
//           super(CustomRNN, self).__init__()
//           self.units = units
//           self.projection_1 = layers.Dense(units=units, activation="tanh")
//           self.projection_2 = layers.Dense(units=units, activation="tanh")
//           self.classifier = model
//       def call(self, inputs):
//           outputs = []
//           state = tf.zeros(shape=(inputs.shape[0], self.units))
//           for t in range(inputs.shape[1]):
//               x = inputs[:, t, :]
//               h = self.projection_1(x)
//               y = h + self.projection_2(state)
//               state = y
//               outputs.append(y)
//           features = tf.stack(outputs, axis=1)
//           print(features.shape)
//           return self.classifier(features)
//
// The classifier is built in the constructor (the seed uses a global model), so that the layer
// can be rebuilt from its config. With return_features=true (not in the seed) the layer also
// returns the stacked states, (batch, timesteps, units), as its first output.
#pragma once

#include <fgc/keras.h>

#include <string>

class CustomRNN : public fgc::keras::CustomLayer {
public:
  explicit CustomRNN(int64_t units = 32, bool returnFeatures = false)
      : units_(units), returnFeatures_(returnFeatures) {
    makeLayers();
  }
  explicit CustomRNN(const fgc::keras::Config &config)
      : units_(config.at("units").i()),
        returnFeatures_(config.count("return_features") && config.at("return_features").b()) {
    makeLayers();
  }

  std::vector<fgc::keras::Tensor> call_multi(const std::vector<fgc::keras::Tensor> &inputs) override {
    auto y = call(inputs.at(0));
    if (returnFeatures_)
      return {features, y};
    return {y};
  }

  fgc::keras::Tensor call(const fgc::keras::Tensor &inputs) override {
    using namespace fgc::keras;
    std::vector<Tensor> outputs;
    Tensor state = ops::zeros(inputs, {units_});
    for (int64_t t = 0; t < inputs.shape()[1]; ++t) {
      Tensor x = ops::take(inputs, 1, t);
      Tensor h = projection1_(x);
      Tensor y = h + projection2_(state);
      state = y;
      outputs.push_back(y);
    }
    features = ops::stack(outputs, 1);
    return classifier_(features);
  }

  fgc::keras::Config get_config() const override {
    return {{"units", fgc::keras::makeInt(units_)},
            {"return_features", fgc::keras::makeBool(returnFeatures_)}};
  }

  fgc::keras::Tensor features; // the last trace's stacked states

private:
  void makeLayers() {
    using namespace fgc::keras;
    projection1_ = layers::Dense(units_, {.activation = "tanh"});
    projection2_ = layers::Dense(units_, {.activation = "tanh"});
    auto in = Input({None, units_});
    auto x = layers::GlobalAveragePooling1D()(in);
    auto out = layers::Dense(1)(x);
    classifier_ = Model(in, out);
  }

  int64_t units_;
  bool returnFeatures_;
  fgc::keras::Layer projection1_, projection2_, classifier_;
};
