// Tests of the activation, softmax and Dense kernels against the PyTorch
// fixtures, at one and at two threads, plus their argument checks.
#include "fixture.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

using namespace fgc::test;

extern "C" int fgcTestDenseFromC(const float *x, const float *kernel, const float *bias,
                                 float *y, int64_t rows, int64_t in, int64_t out,
                                 const char **error);

namespace {

void runDense(const Fixture &f) {
  std::vector<int64_t> xs = f.shape("x"), ws = f.shape("kernel");
  std::vector<float> x = f.floats("x"), w = f.floats("kernel");
  std::vector<float> bias = f.has("bias") ? f.floats("bias") : std::vector<float>();
  std::vector<float> y = sentinel(xs[0] * ws[1]);
  REQUIRE(fgc_dense(x.data(), w.data(), bias.empty() ? nullptr : bias.data(), y.data(), xs[0],
                    xs[1], ws[1], f.activation()) == FGC_OK);
  checkClose(y, f, "y");
}

} // namespace

TEST_CASE("fgc_activation matches PyTorch for every activation", "[runtime][activation]") {
  // activation_<name> (moderate values) and activation_wide_<name> (|x| up to 30).
  std::vector<std::string> cases = casesWithPrefix("activation_");
  REQUIRE(cases.size() == 22);
  for (const std::string &name : cases) {
    Fixture f(name);
    std::vector<int64_t> shape = f.shape("x");
    std::vector<float> x = f.floats("x");
    std::vector<float> y = sentinel(shape[0] * shape[1]);
    REQUIRE(fgc_activation(f.activation(), x.data(), y.data(), shape[0], shape[1]) == FGC_OK);
    checkClose(y, f, "y");
    // In place gives the same result.
    REQUIRE(fgc_activation(f.activation(), x.data(), x.data(), shape[0], shape[1]) == FGC_OK);
    checkClose(x, f, "y");
  }
}

TEST_CASE("fgc_dense matches PyTorch", "[runtime][dense]") {
  std::vector<std::string> cases = casesWithPrefix("dense_");
  REQUIRE(cases.size() >= 4);
  for (int threads : {1, 2}) {
    fgc_set_num_threads(threads);
    REQUIRE(fgc_get_num_threads() == threads);
    for (const std::string &name : cases)
      runDense(Fixture(name));
  }
  fgc_set_num_threads(0);
  CHECK(fgc_get_num_threads() >= 1);
}

TEST_CASE("fgc_dense works through the C ABI from a C translation unit", "[runtime][dense]") {
  Fixture f("dense_relu");
  std::vector<int64_t> xs = f.shape("x"), ws = f.shape("kernel");
  std::vector<float> x = f.floats("x"), w = f.floats("kernel"), b = f.floats("bias");
  std::vector<float> y = sentinel(xs[0] * ws[1]);
  const char *error = nullptr;
  REQUIRE(fgcTestDenseFromC(x.data(), w.data(), b.data(), y.data(), xs[0], xs[1], ws[1],
                            &error) == FGC_OK);
  checkClose(y, f, "y");
}

TEST_CASE("fgc_softmax matches PyTorch on any axis", "[runtime][softmax]") {
  std::vector<std::string> cases = casesWithPrefix("softmax_");
  REQUIRE(cases.size() >= 3);
  for (const std::string &name : cases) {
    Fixture f(name);
    std::vector<int64_t> shape = f.shape("x");
    std::vector<float> x = f.floats("x");
    std::vector<float> y = sentinel(static_cast<int64_t>(x.size()));
    int axis = static_cast<int>(f.intParam("axis"));
    REQUIRE(fgc_softmax(x.data(), y.data(), shape.data(), static_cast<int>(shape.size()), axis) ==
            FGC_OK);
    checkClose(y, f, "y");
    REQUIRE(fgc_softmax(x.data(), x.data(), shape.data(), static_cast<int>(shape.size()), axis) ==
            FGC_OK);
    checkClose(x, f, "y");
  }
}

TEST_CASE("activation kernels reject bad arguments", "[runtime][activation][errors]") {
  Fixture f("dense_relu");
  std::vector<float> x = f.floats("x"), w = f.floats("kernel");
  std::vector<float> y = sentinel(64);
  CHECK(fgc_dense(nullptr, w.data(), nullptr, y.data(), 5, 7, 3, FGC_ACT_RELU) ==
        FGC_ERR_INVALID_ARGUMENT);
  CHECK(std::strstr(fgc_last_error(), "x is null") != nullptr);
  CHECK(fgc_dense(x.data(), w.data(), nullptr, y.data(), 0, 7, 3, FGC_ACT_RELU) ==
        FGC_ERR_INVALID_ARGUMENT);
  CHECK(std::strstr(fgc_last_error(), "rows") != nullptr);
  CHECK(fgc_activation(static_cast<fgc_activation_kind>(42), x.data(), y.data(), 5, 7) ==
        FGC_ERR_INVALID_ARGUMENT);
  CHECK(std::strstr(fgc_last_error(), "unknown activation 42") != nullptr);
  int64_t shape[2] = {5, 7};
  CHECK(fgc_softmax(x.data(), y.data(), shape, 2, 2) == FGC_ERR_INVALID_ARGUMENT);
  CHECK(fgc_softmax(x.data(), y.data(), shape, 2, -3) == FGC_ERR_INVALID_ARGUMENT);
  for (float v : y)
    CHECK(std::isnan(v));
}
