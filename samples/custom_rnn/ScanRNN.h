// The seed's CustomRNN with a dynamic number of time steps: the same cell (two tanh projections
// of the step and of the state, added) run by ops::scan over the input's time axis, which may
// be None, instead of a C++ loop unrolled over a fixed 10 steps; the same classifier model on
// the stacked states.
//
//   state = zeros((batch, units))
//   def cell(state, x_t):
//       y = tanh(x_t @ kernel + bias) + tanh(state @ recurrent_kernel + recurrent_bias)
//       return y, y
//   _, features = keras.ops.scan(cell, state, inputs)   # (batch, T, units)
//   return classifier(features)
//
// The projections are weights of the layer (add_weight), which the scan body reads: a body
// shares them over the steps, and the gradients of all steps add up in them.
#pragma once

#include <fgc/keras.h>

class ScanRNN : public fgc::keras::CustomLayer {
public:
  explicit ScanRNN(int64_t units = 32, bool returnFeatures = false)
      : units_(units), returnFeatures_(returnFeatures) {
    makeClassifier();
  }
  explicit ScanRNN(const fgc::keras::Config &config)
      : units_(config.at("units").i()),
        returnFeatures_(config.count("return_features") && config.at("return_features").b()) {
    makeClassifier();
  }

  void build(const fgc::keras::Shape &input_shape) override {
    kernel_ = add_weight("kernel", {input_shape.back(), units_});
    bias_ = add_weight("bias", {units_}, "random_normal");
    recurrentKernel_ = add_weight("recurrent_kernel", {units_, units_});
    recurrentBias_ = add_weight("recurrent_bias", {units_}, "random_normal");
  }

  std::vector<fgc::keras::Tensor> call_multi(const std::vector<fgc::keras::Tensor> &inputs) override {
    using namespace fgc::keras;
    Tensor state = ops::zeros(inputs.at(0), {units_});
    auto cell = [this](const Tensor &h, const Tensor &x) {
      Tensor y = ops::tanh(ops::matmul(x, kernel_) + bias_) +
                 ops::tanh(ops::matmul(h, recurrentKernel_) + recurrentBias_);
      return std::pair{y, y};
    };
    auto [last, features] = ops::scan(cell, state, inputs.at(0));
    Tensor out = classifier_(features);
    if (returnFeatures_)
      return {features, out};
    return {out};
  }

  fgc::keras::Config get_config() const override {
    return {{"units", fgc::keras::makeInt(units_)},
            {"return_features", fgc::keras::makeBool(returnFeatures_)}};
  }

private:
  void makeClassifier() {
    using namespace fgc::keras;
    auto in = Input({None, units_});
    auto x = layers::GlobalAveragePooling1D()(in);
    auto out = layers::Dense(1)(x);
    classifier_ = Model(in, out);
  }

  int64_t units_;
  bool returnFeatures_;
  fgc::keras::Tensor kernel_, bias_, recurrentKernel_, recurrentBias_;
  fgc::keras::Layer classifier_;
};
