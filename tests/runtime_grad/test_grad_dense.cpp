// Gradient tests of the activations, softmax, Dense and the merges against the
// PyTorch autograd fixtures, plus a float64 finite-difference check of Dense
// that needs no PyTorch.
#include "grad_fixture.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

using namespace fgc::test;

namespace {

void runDenseBackward(const Fixture &f) {
  std::vector<int64_t> xs = f.shape("x"), ws = f.shape("kernel");
  const int64_t rows = xs[0], in = xs[1], out = ws[1];
  std::vector<float> x = f.floats("x"), w = f.floats("kernel"), z = f.floats("z"),
                     y = f.floats("y"), dy = f.floats("dy");
  fgc_activation_kind act = f.activation();
  std::vector<float> dx = sentinel(rows * in), dk = sentinel(in * out), db = sentinel(out);
  std::vector<float> scratch(fgc_dense_backward_scratch_size(rows, in, out, act));
  bool hasBias = f.has("dbias");
  // Pass z only when the activation needs it: y must suffice otherwise.
  const float *zArg = fgc_activation_needs_preactivation(act) ? z.data() : nullptr;
  REQUIRE(fgc_dense_backward(x.data(), w.data(), zArg, y.data(), dy.data(), dx.data(),
                             dk.data(), hasBias ? db.data() : nullptr, rows, in, out, act,
                             scratch.data(), 0) == FGC_OK);
  checkGrad(dx, f, "dx");
  checkGrad(dk, f, "dkernel");
  if (hasBias)
    checkGrad(db, f, "dbias");
}

double tanhDenseLoss(const std::vector<double> &x, const std::vector<double> &w,
                     const std::vector<double> &b, const std::vector<float> &dy, int64_t rows,
                     int64_t in, int64_t out) {
  double loss = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double z = b[o];
      for (int64_t i = 0; i < in; ++i)
        z += x[r * in + i] * w[i * out + o];
      loss += dy[r * out + o] * std::tanh(z);
    }
  return loss;
}

} // namespace

TEST_CASE("fgc_activation_backward matches autograd for every activation",
          "[runtime_grad][activation]") {
  std::vector<std::string> cases = gradCases("activation_");
  REQUIRE(cases.size() == 11);
  for (const std::string &name : cases) {
    Fixture f = gradCase(name);
    std::vector<int64_t> shape = f.shape("z");
    std::vector<float> z = f.floats("z"), y = f.floats("y"), dy = f.floats("dy");
    fgc_activation_kind act = f.activation();
    const float *zArg = fgc_activation_needs_preactivation(act) ? z.data() : nullptr;
    const float *yArg = act == FGC_ACT_LINEAR ? nullptr : y.data();
    std::vector<float> dx = sentinel(elements(shape));
    REQUIRE(fgc_activation_backward(act, zArg, yArg, dy.data(), dx.data(), shape[0], shape[1],
                                    0) == FGC_OK);
    checkGrad(dx, f, "dx");
    // In place over dy.
    REQUIRE(fgc_activation_backward(act, zArg, yArg, dy.data(), dy.data(), shape[0], shape[1],
                                    0) == FGC_OK);
    checkGrad(dy, f, "dx");
  }
}

TEST_CASE("fgc_activation_backward rejects missing forward tensors",
          "[runtime_grad][activation][errors]") {
  float v[4] = {0.1f, 0.2f, 0.3f, 0.4f}, dx[4];
  CHECK(fgc_activation_backward(FGC_ACT_GELU, nullptr, v, v, dx, 2, 2, 0) ==
        FGC_ERR_INVALID_ARGUMENT);
  CHECK(std::strstr(fgc_last_error(), "pre-activation") != nullptr);
  CHECK(fgc_activation_backward(FGC_ACT_TANH, v, nullptr, v, dx, 2, 2, 0) ==
        FGC_ERR_INVALID_ARGUMENT);
  CHECK(fgc_activation_backward(FGC_ACT_LINEAR, nullptr, nullptr, v, dx, 2, 2, 0) == FGC_OK);
  CHECK(fgc_activation_backward(static_cast<fgc_activation_kind>(99), v, v, v, dx, 2, 2, 0) ==
        FGC_ERR_INVALID_ARGUMENT);
  CHECK(fgc_activation_needs_preactivation(FGC_ACT_SWISH) == 1);
  CHECK(fgc_activation_needs_preactivation(FGC_ACT_SELU) == 0);
  CHECK(fgc_activation_needs_preactivation(static_cast<fgc_activation_kind>(-1)) == -1);
}

TEST_CASE("fgc_softmax_backward matches autograd on any axis", "[runtime_grad][softmax]") {
  std::vector<std::string> cases = gradCases("softmax_");
  REQUIRE(cases.size() == 4);
  for (const std::string &name : cases) {
    Fixture f = gradCase(name);
    std::vector<int64_t> shape = f.shape("y");
    std::vector<float> y = f.floats("y"), dy = f.floats("dy");
    std::vector<float> dx = sentinel(elements(shape));
    int axis = static_cast<int>(f.intParam("axis"));
    REQUIRE(fgc_softmax_backward(y.data(), dy.data(), dx.data(), shape.data(),
                                 static_cast<int>(shape.size()), axis, 0) == FGC_OK);
    checkGrad(dx, f, "dx");
  }
}

TEST_CASE("fgc_dense_backward matches autograd", "[runtime_grad][dense]") {
  std::vector<std::string> cases = gradCases("dense_");
  REQUIRE(cases.size() == 6);
  for (int threads : {1, 2}) {
    fgc_set_num_threads(threads);
    for (const std::string &name : cases)
      runDenseBackward(gradCase(name));
  }
  fgc_set_num_threads(0);
}

TEST_CASE("fgc_dense_backward agrees with float64 finite differences",
          "[runtime_grad][dense][finite_difference]") {
  const int64_t rows = 4, in = 6, out = 5;
  std::vector<float> x = randomFloats(rows * in, 1), w = randomFloats(in * out, 2, 0.4f),
                     b = randomFloats(out, 3), dy = randomFloats(rows * out, 4);
  std::vector<float> y(rows * out);
  REQUIRE(fgc_dense(x.data(), w.data(), b.data(), y.data(), rows, in, out, FGC_ACT_TANH) ==
          FGC_OK);
  std::vector<float> dx(rows * in), dk(in * out), db(out);
  std::vector<float> scratch(fgc_dense_backward_scratch_size(rows, in, out, FGC_ACT_TANH));
  REQUIRE(fgc_dense_backward(x.data(), w.data(), nullptr, y.data(), dy.data(), dx.data(),
                             dk.data(), db.data(), rows, in, out, FGC_ACT_TANH, scratch.data(),
                             0) == FGC_OK);
  std::vector<double> xd(x.begin(), x.end()), wd(w.begin(), w.end()), bd(b.begin(), b.end());
  const double h = 1e-6;
  auto central = [&](std::vector<double> &v, int64_t k) {
    double saved = v[k];
    v[k] = saved + h;
    double plus = tanhDenseLoss(xd, wd, bd, dy, rows, in, out);
    v[k] = saved - h;
    double minus = tanhDenseLoss(xd, wd, bd, dy, rows, in, out);
    v[k] = saved;
    return (plus - minus) / (2 * h);
  };
  for (int64_t k : {0, 7, 29})
    CHECK(dk[k] == Approx(central(wd, k)).epsilon(1e-4).margin(1e-5));
  for (int64_t k : {0, 13, 23})
    CHECK(dx[k] == Approx(central(xd, k)).epsilon(1e-4).margin(1e-5));
  for (int64_t k : {1, 4})
    CHECK(db[k] == Approx(central(bd, k)).epsilon(1e-4).margin(1e-5));
}

TEST_CASE("merge backward kernels match autograd", "[runtime_grad][merge]") {
  {
    Fixture f = gradCase("concatenate_middle");
    std::vector<float> dy = f.floats("dy");
    int64_t sizes[3] = {1, 4, 2};
    std::vector<float> d0 = sentinel(2 * 3), d1 = sentinel(2 * 4 * 3), d2 = sentinel(2 * 2 * 3);
    float *outs[3] = {d0.data(), d1.data(), d2.data()};
    REQUIRE(fgc_concatenate_backward(3, dy.data(), sizes, 2, 3, outs, nullptr) == FGC_OK);
    checkGrad(d0, f, "dx0");
    checkGrad(d1, f, "dx1");
    checkGrad(d2, f, "dx2");
    // A NULL entry is skipped.
    float *some[3] = {nullptr, d1.data(), nullptr};
    CHECK(fgc_concatenate_backward(3, dy.data(), sizes, 2, 3, some, nullptr) == FGC_OK);
  }
  for (const char *name : {"add3", "average3"}) {
    Fixture f = gradCase(name);
    std::vector<float> dy = f.floats("dy");
    std::vector<float> d0 = sentinel(15), d1 = sentinel(15), d2 = sentinel(15);
    float *outs[3] = {d0.data(), d1.data(), d2.data()};
    auto kernel = std::string(name) == "add3" ? fgc_add_backward : fgc_average_backward;
    REQUIRE(kernel(3, dy.data(), 15, outs, nullptr) == FGC_OK);
    checkGrad(d0, f, "dx0");
    checkGrad(d1, f, "dx1");
    checkGrad(d2, f, "dx2");
    // x + x + z: the same buffer twice, overwritten then accumulated.
    float *shared[3] = {d0.data(), d0.data(), d2.data()};
    int flags[3] = {0, FGC_GRAD_ACCUMULATE_INPUT, 0};
    REQUIRE(kernel(3, dy.data(), 15, shared, flags) == FGC_OK);
    std::vector<float> twice(d1);
    for (float &v : twice)
      v *= 2;
    CHECK((d0 == twice));
  }
}
