// The seed's CustomDense, a custom layer written with fgc's C++ API.
//
// Python (seed):
//   class CustomDense(layers.Layer):
//       def __init__(self, units=32):
//           super(CustomDense, self).__init__()
//           self.units = units
//       def build(self, input_shape):
//           self.w = self.add_weight(shape=(input_shape[-1], self.units),
//                                    initializer="random_normal", trainable=True)
//           self.b = self.add_weight(shape=(self.units,), initializer="random_normal",
//                                    trainable=True)
//       def call(self, inputs):
//           return tf.matmul(inputs, self.w) + self.b
//       def get_config(self):
//           return {"units": self.units}
#pragma once

#include <fgc/keras.h>

class CustomDense : public fgc::keras::CustomLayer {
public:
  explicit CustomDense(int64_t units = 32) : units_(units) {}
  // from_config: the constructor's arguments from get_config().
  explicit CustomDense(const fgc::keras::Config &config) : units_(config.at("units").i()) {}

  void build(const fgc::keras::Shape &inputShape) override {
    w_ = add_weight("kernel", {inputShape.back(), units_}, "random_normal");
    b_ = add_weight("bias", {units_}, "random_normal");
  }

  fgc::keras::Tensor call(const fgc::keras::Tensor &inputs) override {
    return fgc::keras::ops::matmul(inputs, w_) + b_;
  }

  fgc::keras::Config get_config() const override {
    return {{"units", fgc::keras::makeInt(units_)}};
  }

private:
  int64_t units_;
  fgc::keras::Tensor w_, b_;
};
