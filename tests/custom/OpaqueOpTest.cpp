// Opaque custom kernels: samples/custom_opaque's SwishDense (a dense map followed by the opaque
// op Swish, hand-written C kernels) through both backends — the generated C++ linked with the
// kernels, and the JIT calling them — against the PyTorch fixture of
// tests/reference/custom_layers.py (output, one SGD step's gradients and weights), the
// backward kernel against finite differences, the JIT through `fgc --plugin run`, and the
// errors: a model whose opaque op has no backward kernel compiles for inference but not for
// training (fgc compile, the JIT), naming the layer and the op.
#include "custom_opaque/SwishDense.h"

#include "custom_opaque.h"
#include "fgc/jit.h"
#include "fgc/runtime/npy.h"

#include "CustomTestSupport.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

using namespace fgc::keras;
namespace fs = std::filesystem;
using namespace fgc::test;

namespace {

const fs::path kDir = fs::path(FGC_SOURCE_DIR) / "tests/fixtures/custom/custom_opaque";
const std::string kModel = std::string(FGC_SOURCE_DIR) + "/samples/custom_opaque/model.pbtxt";

// Float32 results against the float64 reference, relative to the largest value.
void checkClose(const std::string &what, const float *actual, const std::vector<float> &expected,
                double tol) {
  double scale = 0;
  for (float e : expected)
    scale = std::max(scale, std::fabs(double(e)));
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO(what << " [" << i << "]: fgc " << actual[i] << ", torch " << expected[i]);
    REQUIRE(std::fabs(double(actual[i]) - expected[i]) <= tol * scale);
  }
}

// predict, then one trainStep (SGD 0.1, mean squared error) against the fixture. Works for the
// generated class and the JIT's model alike.
template <typename M> void checkAgainstFixture(M &m) {
  auto x = readTensor(kDir / "input.npy");
  auto y = m.predict(std::vector<fgc::rt::Tensor>{x});
  REQUIRE(y.size() == 1);
  CHECK(y[0].shape() == std::vector<int64_t>{5, 3});
  checkClose("output", y[0].template data<float>(), readFloats(kDir / "output_0.npy"), 1e-5);
  auto t = readTensor(kDir / "target.npy");
  std::vector<double> logs(m.logNames().size());
  m.trainStep(&x, &t, logs.data());
  CHECK(std::fabs(logs[0] - fixtureLoss(kDir)) <= 1e-5 * std::max(1.0, fixtureLoss(kDir)));
  REQUIRE(m.numWeights() == 2);
  for (int i = 0; i < m.numWeights(); ++i) {
    std::string name = m.weightName(i);
    INFO(name);
    const float *g = m.gradientData(i);
    REQUIRE(g != nullptr);
    checkClose("gradient", g, readFloats(kDir / "grad" / (name + ".npy")), 1e-5);
    checkClose("weight after the step", m.weightData(i),
               readFloats(kDir / "after" / (name + ".npy")), 1e-5);
  }
}

// z = x @ w + b read twice, by the opaque op and by the residual sum: the op's input gradient
// adds to the other one (its backward writes a buffer of its own that is then summed).
class SwishResidual : public CustomLayer {
public:
  SwishResidual() = default;
  explicit SwishResidual(const Config &) {}
  void build(const Shape &in) override {
    w_ = add_weight("kernel", {in.back(), 3}, "random_normal");
    b_ = add_weight("bias", {3}, "random_normal");
  }
  Tensor call(const Tensor &x) override {
    Tensor z = ops::matmul(x, w_) + b_;
    return ops::opaque("Swish", z, {{"beta", 1.5}}) + z;
  }

private:
  Tensor w_, b_;
};

} // namespace

TEST_CASE("opaque op: gradients that add up, JIT against finite differences",
          "[custom][opaque][jit]") {
  registerSwishDense();
  register_custom_layer<SwishResidual>("SwishResidual");
  clear_session();
  auto inputs = Input({4});
  Model model(inputs, layers::Custom<SwishResidual>()(inputs));
  model.compile({.optimizer = optimizers::SGD(0.1), .loss = {{"", losses::MeanSquaredError()}}});
  auto x = readTensor(kDir / "input.npy");
  auto t = readTensor(kDir / "target.npy");
  auto tv = readFloats(kDir / "target.npy");
  auto trained = fgc::jit::compile(model);
  std::vector<double> logs(trained->logNames().size());
  trained->trainStep(&x, &t, logs.data());
  fgc::jit::Options inference;
  inference.inferenceOnly = true;
  auto m = fgc::jit::compile(model, inference);
  auto loss = [&] {
    auto y = m->predict(std::vector<fgc::rt::Tensor>{x});
    const float *p = y[0].data<float>();
    double s = 0;
    for (size_t i = 0; i < tv.size(); ++i)
      s += (double(p[i]) - tv[i]) * (double(p[i]) - tv[i]);
    return s / double(tv.size());
  };
  const double eps = 1e-2; // as in the finite-difference case above
  for (int w = 0; w < m->numWeights(); ++w)
    for (size_t k = 0; k < size_t(w == 0 ? 12 : 3); ++k) {
      float *v = m->mutableWeightData(w);
      const float orig = v[k];
      v[k] = orig + float(eps);
      double up = loss();
      m->mutableWeightData(w)[k] = orig - float(eps);
      double down = loss();
      m->mutableWeightData(w)[k] = orig;
      double fd = (up - down) / (2 * eps), g = trained->gradientData(w)[k];
      INFO(m->weightName(w) << " [" << k << "]: backward " << g << ", FD " << fd);
      REQUIRE(std::fabs(g - fd) <= 2e-4 + 1e-3 * std::fabs(fd));
    }
}

TEST_CASE("opaque op: generated C++ calls the linked kernels, matches PyTorch", "[custom][opaque]") {
  custom_opaque::Model m;
  checkAgainstFixture(m);
}

TEST_CASE("opaque op: the JIT calls the registered kernels, matches PyTorch", "[custom][opaque][jit]") {
  registerSwishDense();
  auto m = fgc::jit::compile(kModel);
  checkAgainstFixture(*m);
}

TEST_CASE("opaque op: the backward kernel against finite differences", "[custom][opaque]") {
  // dLoss/dw from the backward (trainStep's gradients) against central differences of the loss
  // computed by predict, in double from float32 outputs: eps 1e-2 keeps the rounding error of
  // the difference (about 1e-7 / 1e-2) well under the tolerance, and the truncation error of the
  // smooth Swish (eps^2 * f''') is of the same small order.
  auto x = readTensor(kDir / "input.npy");
  auto t = readTensor(kDir / "target.npy");
  auto tv = readFloats(kDir / "target.npy");
  custom_opaque::Model trained;
  std::vector<double> logs(trained.logNames().size());
  trained.trainStep(&x, &t, logs.data());
  auto loss = [&](custom_opaque::Model &m) {
    auto y = m.predict(std::vector<fgc::rt::Tensor>{x});
    const float *p = y[0].data<float>();
    double s = 0;
    for (size_t i = 0; i < tv.size(); ++i)
      s += (double(p[i]) - tv[i]) * (double(p[i]) - tv[i]);
    return s / double(tv.size());
  };
  const double eps = 1e-2;
  for (int w = 0; w < custom_opaque::Model::numWeights(); ++w) {
    custom_opaque::Model m;
    size_t n = readFloats(kDir / "grad" / (custom_opaque::Model::weightName(w) + ".npy")).size();
    for (size_t k = 0; k < n; ++k) {
      float *v = m.mutableWeightData(w);
      const float orig = v[k];
      v[k] = orig + float(eps);
      double up = loss(m);
      m.mutableWeightData(w)[k] = orig - float(eps);
      double down = loss(m);
      m.mutableWeightData(w)[k] = orig;
      double fd = (up - down) / (2 * eps);
      double g = trained.gradientData(w)[k];
      INFO(custom_opaque::Model::weightName(w) << " [" << k << "]: backward " << g << ", FD "
                                               << fd);
      REQUIRE(std::fabs(g - fd) <= 2e-4 + 1e-3 * std::fabs(fd));
    }
  }
}

TEST_CASE("opaque op without a backward kernel: inference only, training fails clearly",
          "[custom][opaque][errors]") {
  registerSwishDense();
  clear_session();
  auto inputs = Input({4});
  auto outputs = layers::NamedCustom<SwishDense>("swish_dense", 3, 1.5, "SwishInference")(inputs);
  Model model(inputs, outputs);
  model.compile({.optimizer = optimizers::SGD(0.1), .loss = {{"", losses::MeanSquaredError()}}});
  const std::string message = "layer 'swish_dense/swish_inference' (SwishInference): opaque op "
                              "'SwishInference' has no backward kernel";
  // The JIT: training is refused, inference compiles and predicts what Swish predicts.
  CHECK_THROWS_WITH(fgc::jit::compile(model), Catch::Contains(message));
  fgc::jit::Options inference;
  inference.inferenceOnly = true;
  auto m = fgc::jit::compile(model, inference);
  CHECK_FALSE(m->hasTraining());
  // Same layer names and seed as the sample: the same weights, so the fixture's output.
  auto y = m->predict(std::vector<fgc::rt::Tensor>{readTensor(kDir / "input.npy")});
  checkClose("output", y[0].data<float>(), readFloats(kDir / "output_0.npy"), 1e-5);
  // fgc compile through the plugin: the same message, exit code 1; --inference-only compiles.
  fs::path dir = fs::temp_directory_path() / ("fgc_opaque_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  model.save((dir / "model.pbtxt").string());
  const std::string fgc = std::string(FGC_EXE) + " --plugin " + FGC_SAMPLE_PLUGIN;
  CHECK(runCommand(fgc + " compile " + (dir / "model.pbtxt").string() + " -o " +
            (dir / "model.cpp").string()) == 1);
  CHECK(lastStderr().find(message) != std::string::npos);
  CHECK(runCommand(fgc + " compile " + (dir / "model.pbtxt").string() + " --inference-only -o " +
            (dir / "model.cpp").string()) == 0);
  CHECK(slurp((dir / "model.cpp").string())
            .find("extern \"C\" int32_t sample_swish_forward(const void *args);") !=
        std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("opaque op: a kernel the JIT cannot find, and bad registrations", "[custom][opaque][errors]") {
  registerSwishDense();
  register_opaque_op({.name = "SwishMissing", .forward = "fgc_test_no_such_kernel",
                      .attributes = {{"beta", 1.0}}});
  clear_session();
  auto inputs = Input({4});
  Model model(inputs, layers::Custom<SwishDense>(3, 1.5, "SwishMissing")(inputs));
  fgc::jit::Options inference;
  inference.inferenceOnly = true;
  CHECK_THROWS_WITH(fgc::jit::compile(model, inference),
                    Catch::Contains("layer 'swish_dense/swish_missing' (SwishMissing): custom "
                                    "kernel 'fgc_test_no_such_kernel' is neither registered"));
  CHECK_THROWS_WITH(register_opaque_op({.name = "Dense", .forward = "f"}),
                    Catch::Contains("cannot register opaque op 'Dense': fgc has a built-in layer"));
  CHECK_THROWS_WITH(register_opaque_op({.name = "Bad", .forward = "not a symbol"}),
                    Catch::Contains("the forward kernel must be a C function name"));
  // A shape function that rejects its input: the message names the layer and the shapes.
  register_opaque_op({.name = "SwishSquareOnly",
                      .forward = "sample_swish_forward",
                      .attributes = {{"beta", 1.0}},
                      .shape = [](const std::vector<Shape> &in, const std::vector<double> &) {
                        if (in[0].back() != 4)
                          throw std::runtime_error("needs 4 features");
                        return in;
                      }});
  CHECK_THROWS_WITH(layers::Custom<SwishDense>(3, 1.5, "SwishSquareOnly")(Input({4})),
                    Catch::Contains("shape function: needs 4 features (inputs (None, 3)"));
}

TEST_CASE("opaque op: fgc --plugin run (JIT, kernels found in the plugin)", "[custom][opaque][jit]") {
  fs::path dir = fs::temp_directory_path() / ("fgc_opaque_run_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string fgc = std::string(FGC_EXE) + " --plugin " + FGC_SAMPLE_PLUGIN;
  REQUIRE(runCommand(fgc + " run " + kModel + " --input input_1=" + (kDir / "input.npy").string() +
              " --output " + dir.string()) == 0);
  auto y = readFloats(dir / "swish_dense.npy");
  checkClose("output", y.data(), readFloats(kDir / "output_0.npy"), 1e-5);
  fs::remove_all(dir);
}
