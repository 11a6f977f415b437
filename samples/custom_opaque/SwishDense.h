// A custom layer that uses an opaque custom op: a dense map followed by Swish with a slope,
// y = z * sigmoid(beta * z), z = x @ kernel + bias, where Swish is computed by hand-written C
// kernels (swish_kernels.c) rather than by fgc's tensor operations.
//
// Python equivalent (a layer whose activation is a custom TensorFlow op):
//   class SwishDense(layers.Layer):
//       def __init__(self, units=32, beta=1.0): ...
//       def build(self, input_shape):
//           self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal")
//           self.b = self.add_weight(shape=(self.units,), initializer="random_normal")
//       def call(self, inputs):
//           return swish_op(tf.matmul(inputs, self.w) + self.b, beta=self.beta)
#pragma once

#include "swish_kernels.h"

#include <fgc/keras.h>

class SwishDense : public fgc::keras::CustomLayer {
public:
  // `op`: the opaque op computing Swish ("SwishInference" has no backward kernel).
  explicit SwishDense(int64_t units = 32, double beta = 1.0, std::string op = "Swish")
      : units_(units), beta_(beta), op_(std::move(op)) {}
  explicit SwishDense(const fgc::keras::Config &config)
      : units_(config.at("units").i()), beta_(config.at("beta").f()), op_(config.at("op").s()) {}

  void build(const fgc::keras::Shape &inputShape) override {
    w_ = add_weight("kernel", {inputShape.back(), units_}, "random_normal");
    b_ = add_weight("bias", {units_}, "random_normal");
  }
  fgc::keras::Tensor call(const fgc::keras::Tensor &inputs) override {
    using namespace fgc::keras;
    return ops::opaque(op_, ops::matmul(inputs, w_) + b_, {{"beta", beta_}});
  }
  fgc::keras::Config get_config() const override {
    return {{"units", fgc::keras::makeInt(units_)},
            {"beta", fgc::keras::makeFloat(beta_)},
            {"op", fgc::keras::makeString(op_)}};
  }

private:
  int64_t units_;
  double beta_;
  std::string op_;
  fgc::keras::Tensor w_, b_;
};

// Registers the opaque op Swish (forward and backward kernels, attribute beta; the output has
// the input's shape), SwishInference (the same forward kernel, no backward: such a model
// compiles for inference only) and the layer class. `withAddresses`: give the JIT the kernels'
// addresses; a plugin may leave them out, since fgc loads plugins with their symbols global
// and the JIT then finds the kernels by name.
inline void registerSwishDense(bool withAddresses = true) {
  fgc::keras::register_opaque_op({.name = "Swish",
                                  .forward = "sample_swish_forward",
                                  .backward = "sample_swish_backward",
                                  .attributes = {{"beta", 1.0}},
                                  .forward_address = withAddresses ? sample_swish_forward : nullptr,
                                  .backward_address =
                                      withAddresses ? sample_swish_backward : nullptr});
  fgc::keras::register_opaque_op({.name = "SwishInference",
                                  .forward = "sample_swish_forward",
                                  .attributes = {{"beta", 1.0}}});
  fgc::keras::register_custom_layer<SwishDense>("SwishDense");
}
