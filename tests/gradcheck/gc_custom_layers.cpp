// An `fgc --plugin` module for the gradient checks: GcPrimitives, a custom layer whose call()
// uses every tensor operation of fgc::keras::ops that the samples' custom layers do not
// (slice, divide, multiply, subtract, reductions, concat, reshape, stack, a scalar weight),
// so that their gradient rules are checked by finite differences through generated code.
#include <fgc/keras.h>

using namespace fgc::keras;

namespace {

class GcPrimitives : public CustomLayer {
public:
  GcPrimitives() = default;
  explicit GcPrimitives(const Config &) {}

  void build(const Shape &inputShape) override {
    w_ = add_weight("w", {inputShape.back(), 3});
    s_ = add_weight("s", {3}, Initializer("RandomUniform", {{"minval", makeFloat(1.0)},
                                                            {"maxval", makeFloat(2.0)}}));
    k_ = add_weight("k", {1}, "ones");
  }

  // x: (batch, 6, 4) -> (batch, 29)
  Tensor call(const Tensor &x) override {
    Tensor a = ops::slice(x, 1, 1, 4);                    // (batch, 4, 4)
    Tensor d = ops::matmul(a, w_) / s_;                   // (batch, 4, 3)
    Tensor p = d * ops::tanh(d) - d;                      // (batch, 4, 3)
    Tensor r1 = ops::reduce_sum(p, 1);                    // (batch, 3)
    Tensor r2 = ops::reduce_max(p, 2);                    // (batch, 4)
    Tensor r3 = ops::reduce_mean(p, -1);                  // (batch, 4)
    Tensor t = ops::reshape(ops::reshape(ops::take(x, 1, 0), {2, 2}), {4}); // (batch, 4)
    Tensor st = ops::reshape(ops::stack({r2, r3}, 1), {8});                 // (batch, 8)
    Tensor c = ops::concat({r1, r2, r3, t, st, ops::reduce_sum(ops::slice(x, 2, 3, 1), 2, false)});
    return c * k_ + ops::zeros(x, {29});
  }

private:
  Tensor w_, s_, k_;
};

} // namespace

extern "C" int fgc_register_plugin(void) {
  register_custom_layer<GcPrimitives>("GcPrimitives");
  return 0;
}
