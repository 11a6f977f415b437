// Custom layers' primitive tensor operations (fgc::keras::ops: matmul, the four broadcasting
// binary ops, reductions, slice / take, stack, concat, reshape, transpose, gather) against
// PyTorch (tests/reference/custom_primitives.py): each fixture case is one tiny custom layer
// (PrimitiveLayers.h), compiled with a mean-squared-error loss and input gradients; the test
// sets the fixture's weights, then checks the output, the loss of one trainStep and its
// gradients for every weight and float input. Every case runs through the JIT; the transpose
// and gather cases also through the generated C++ (`fgc --plugin` on tests/custom/models).
// Then the errors: bad perms, bad gather arguments, and indices out of range at run time.
//
// Tolerance: |fgc - torch| <= 1e-6 + 1e-5 |torch| per element (1e-5 relative; the 1e-6
// absolute floor is for entries that cancel to nearly 0). The references run in float64 on the
// same float32 values; fgc's float32 sums of at most 12 terms of magnitude <= 2 are off by a
// few 1e-7.
#include "PrimitiveLayers.h"

#include "fgc/jit.h"
#include "fgc/runtime/npy.h"

#include "primitive_gather_axis2.h"
#include "primitive_gather_rows.h"
#include "primitive_transpose.h"
#include "primitive_transpose_weight.h"

#include "CustomTestSupport.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

using namespace fgc::keras;
namespace fs = std::filesystem;
using namespace fgc::test;

namespace {

const fs::path kFixtures = fs::path(FGC_SOURCE_DIR) / "tests/fixtures/custom/primitives";

nlohmann::json meta(const fs::path &dir) {
  std::ifstream in(dir / "meta.json");
  return nlohmann::json::parse(in);
}

std::vector<fgc::rt::Tensor> readInputs(const fs::path &dir) {
  std::vector<fgc::rt::Tensor> inputs;
  for (size_t i = 0; i < meta(dir)["inputs"].size(); ++i)
    inputs.push_back(readTensor(dir / ("input_" + std::to_string(i) + ".npy")));
  return inputs;
}

void checkClose(const std::string &what, const float *actual, const fs::path &expectedFile) {
  REQUIRE(actual != nullptr);
  auto expected = fgc::runtime::readNpy(expectedFile.string()).toFloat();
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO(what << " [" << i << "]: fgc " << actual[i] << ", torch " << expected[i]);
    REQUIRE(std::fabs(double(actual[i]) - expected[i]) <= 1e-6 + 1e-5 * std::fabs(expected[i]));
  }
}

// The fixture case `dir` on a compiled model `m` (the JIT's or a generated class): weights set,
// predict, one trainStep, gradients.
template <typename M> void checkCase(M &m, const fs::path &dir) {
  auto info = meta(dir);
  const auto &weights = info["weights"];
  REQUIRE(m.numWeights() == int(weights.size()));
  for (int k = 0; k < m.numWeights(); ++k) {
    std::string name = weights[size_t(k)].get<std::string>();
    REQUIRE(m.weightName(k) == "primitive_case/" + name + "/" + name);
    auto w = fgc::runtime::readNpy((dir / "weight" / (name + ".npy")).string());
    REQUIRE(m.weightShape(k) == w.shape);
    std::memcpy(m.mutableWeightData(k), w.data<float>(), size_t(w.size()) * sizeof(float));
  }
  auto x = readInputs(dir);
  auto y = m.predict(x);
  REQUIRE(y.size() == 1);
  CHECK(y[0].shape() == info["output_shape"].template get<std::vector<int64_t>>());
  checkClose("output", y[0].template data<float>(), dir / "output.npy");

  auto target = readTensor(dir / "target.npy");
  std::vector<double> logs(m.logNames().size());
  m.trainStep(x.data(), &target, logs.data());
  double loss = info["loss"].template get<double>();
  CHECK(std::fabs(logs[0] - loss) <= 1e-5 * std::max(1.0, loss));
  for (int k = 0; k < m.numWeights(); ++k) {
    std::string name = weights[size_t(k)].get<std::string>();
    checkClose("d/d" + name, m.gradientData(k), dir / "grad" / (name + ".npy"));
  }
  for (size_t i = 0; i < info["inputs"].size(); ++i)
    if (info["inputs"][i] == "f")
      checkClose("d/dinput_" + std::to_string(i), m.inputGradientData(int(i)),
                 dir / ("dinput_" + std::to_string(i) + ".npy"));
}

// The case's layer on Inputs shaped like the fixture's inputs, compiled for training with
// input gradients (SGD, mean squared error).
std::unique_ptr<fgc::jit::Model> compileCase(const std::string &name) {
  register_custom_layer<PrimitiveCase>("PrimitiveCase");
  clear_session();
  fs::path dir = kFixtures / name;
  auto kinds = meta(dir)["inputs"];
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < kinds.size(); ++i) {
    auto shape = fgc::runtime::readNpy((dir / ("input_" + std::to_string(i) + ".npy")).string()).shape;
    InputOptions o;
    o.dtype = kinds[i] == "f" ? "float32" : "int32";
    inputs.push_back(Input(Shape(shape.begin() + 1, shape.end()), o));
  }
  Model model(inputs, {layers::Custom<PrimitiveCase>(name)(inputs)});
  model.compile({.optimizer = optimizers::SGD(0.1), .loss = {{"", losses::MeanSquaredError()}}});
  fgc::jit::Options options;
  options.inputGradients = true;
  return fgc::jit::compile(model, options);
}

// A custom layer whose call() is the function it was made with, for the error cases: only
// traced on its first call (a copy rebuilt from its empty config would have no function).
class Body : public CustomLayer {
public:
  using Fn = std::function<Tensor(Body &, const std::vector<Tensor> &)>;
  explicit Body(Fn fn) : fn_(std::move(fn)) {}
  explicit Body(const Config &) {}
  void build_multi(const std::vector<Shape> &) override {}
  std::vector<Tensor> call_multi(const std::vector<Tensor> &x) override { return {fn_(*this, x)}; }
  Tensor weight(const Shape &shape) { return add_weight(shape); }

private:
  Fn fn_;
};

} // namespace

TEST_CASE("primitive ops: every fixture case through the JIT matches PyTorch",
          "[custom][primitives][jit]") {
  size_t count = 0;
  for (const auto &entry : fs::directory_iterator(kFixtures)) {
    std::string name = entry.path().filename().string();
    INFO("case " << name);
    REQUIRE(primitive_cases::cases().count(name) == 1);
    auto m = compileCase(name);
    checkCase(*m, entry.path());
    ++count;
  }
  CHECK(count == primitive_cases::cases().size());
}

TEST_CASE("primitive ops: transpose and gather in generated C++ match PyTorch",
          "[custom][primitives]") {
  SECTION("transpose") {
    primitive_transpose::Model m;
    checkCase(m, kFixtures / "transpose");
  }
  SECTION("transpose of a weight") {
    primitive_transpose_weight::Model m;
    checkCase(m, kFixtures / "transpose_weight");
  }
  SECTION("gather rows of a weight") {
    primitive_gather_rows::Model m;
    checkCase(m, kFixtures / "gather_rows");
  }
  SECTION("gather along the last axis, per sample") {
    primitive_gather_axis2::Model m;
    checkCase(m, kFixtures / "gather_axis2");
  }
}

TEST_CASE("primitive ops: an index out of range is a clear run-time error", "[custom][primitives]") {
  auto bad = readTensor(kFixtures / "gather_axis2" / "input_1.npy");
  bad.data<int32_t>()[3] = 4; // axis 2 has 4 entries
  auto x = readTensor(kFixtures / "gather_axis2" / "input_0.npy");
  std::vector<fgc::rt::Tensor> in = {x, bad};
  const std::string message = "fgc_gather_i32: index 4 at position 3 is out of range [0, 4)";
  primitive_gather_axis2::Model generated;
  CHECK_THROWS_WITH(generated.predict(in), Catch::Contains(message));
  auto jit = compileCase("gather_axis2");
  CHECK_THROWS_WITH(jit->predict(in), Catch::Contains(message));
  in[1].data<int32_t>()[3] = -1;
  CHECK_THROWS_WITH(jit->predict(in), Catch::Contains("index -1 at position 3"));
  // The backward checks too (the forward of trainStep fails first, with the same message).
  auto target = readTensor(kFixtures / "gather_axis2" / "target.npy");
  std::vector<double> logs(jit->logNames().size());
  CHECK_THROWS_WITH(jit->trainStep(in.data(), &target, logs.data()),
                    Catch::Contains("index -1 at position 3"));
}

TEST_CASE("primitive ops: transpose and gather reject bad arguments, naming the layer and shapes",
          "[custom][primitives][errors]") {
  register_custom_layer<Body>("Body");
  auto make = [](std::vector<Tensor> inputs, Body::Fn fn) {
    clear_session();
    return layers::Custom<Body>(std::move(fn))(inputs);
  };
  auto x = [] { return Input({3, 4}); };
  auto idx = [](Shape s = {2}) { return Input(s, {.dtype = "int32"}); };
  CHECK_THROWS_WITH(make({x()}, [](Body &, auto &v) { return ops::transpose(v[0], {0, 2}); }),
                    Catch::Contains("layer 'body' (Body): shape mismatch when calling layer "
                                    "'transpose' (Transpose) on (None, 3, 4) from 'input_1': "
                                    "perm (0, 2) must be a permutation of 0..2 (all axes)"));
  CHECK_THROWS_WITH(make({x()}, [](Body &, auto &v) { return ops::transpose(v[0], {1, 0, 2}); }),
                    Catch::Contains("perm (1, 0, 2) moves the batch axis of (None, 3, 4)"));
  CHECK_THROWS_WITH(make({x()}, [](Body &, auto &v) { return ops::transpose(v[0]); }),
                    Catch::Contains("perm (2, 1, 0), the default (axes reversed), moves the batch axis"));
  CHECK_THROWS_WITH(make({x(), x()}, [](Body &, auto &v) { return ops::gather(v[0], v[1], 1, 1); }),
                    Catch::Contains("'gather' (Gather) on (None, 3, 4) from 'input_1', (None, 3, "
                                    "4) from 'input_2': indices must be int32 (an Input with "
                                    "dtype \"int32\"), got float32 (None, 3, 4)"));
  CHECK_THROWS_WITH(make({x(), idx()}, [](Body &, auto &v) { return ops::gather(v[0], v[1], 1); }),
                    Catch::Contains("gathering along axis 1 of params (None, 3, 4)") &&
                        Catch::Contains("needs batch_dims=1"));
  CHECK_THROWS_WITH(make({x(), idx()}, [](Body &, auto &v) { return ops::gather(v[0], v[1], 3, 1); }),
                    Catch::Contains("axis 3 is out of range for params (None, 3, 4)"));
  CHECK_THROWS_WITH(make({x(), idx()},
                         [](Body &, auto &v) { return ops::gather(v[0], v[1], 1, 2); }),
                    Catch::Contains("batch_dims must be 0 or 1, got 2"));
  // batch_dims=1 with a weight: its first axis is not the batch.
  CHECK_THROWS_WITH(make({idx()},
                         [](Body &b, auto &v) { return ops::gather(b.weight({4, 3}), v[0], 1, 1); }),
                    Catch::Contains("batch_dims=1 needs params and indices with the same first "
                                    "axis, got (4, 3)"));
  // What works: negative axes, a weight transposed by its default perm, shapes of the result.
  CHECK(make({x(), idx({5, 2})}, [](Body &, auto &v) { return ops::gather(v[0], v[1], -1, 1); })
            .shapeString() == "(None, 3, 5, 2)");
  CHECK(make({x()},
             [](Body &b, auto &v) { return ops::matmul(v[0], ops::transpose(b.weight({7, 4}))); })
            .shapeString() == "(None, 3, 7)");
}
