// ops::scan end to end: samples/custom_rnn/ScanRNN.h (the seed's CustomRNN cell run by a scan
// over a None time axis) traced, compiled to C++ (`fgc --plugin ... compile` at build time) and
// JIT-compiled, against the PyTorch fixtures of tests/reference/custom_layers.py at two sequence
// lengths (outputs, one SGD step's gradients and weights), the gradients against finite
// differences, training over batches of different lengths, and the errors of misuse.
//
// Tolerances are the project's (CustomLayersTest.cpp): outputs within 1e-4 of the largest
// magnitude plus 1e-4 relative; gradients within 1e-5 of the tensor's largest; weights after
// the step within 1e-5 + 1e-5 |w|. References run in float64, fgc in float32.
#include "custom_rnn/ScanRNN.h"

#include "compiler/ir/Graph.h"
#include "fgc/jit.h"
#include "fgc/runtime/npy.h"
#include "scan_rnn.h"
#include "scan_rnn_features.h"

#include "CustomTestSupport.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

using namespace fgc::keras;
namespace fs = std::filesystem;
using namespace fgc::test;

namespace {

const fs::path kFixtures = fs::path(FGC_SOURCE_DIR) / "tests/fixtures/custom";
const std::string kModel = std::string(FGC_SOURCE_DIR) + "/samples/custom_rnn/scan.pbtxt";
const std::string kFeatures =
    std::string(FGC_SOURCE_DIR) + "/samples/custom_rnn/scan_features.pbtxt";

double largest(const std::vector<float> &v) {
  double m = 0;
  for (float x : v)
    m = std::max(m, std::fabs(double(x)));
  return m;
}

void checkClose(const std::string &what, const fgc::rt::Tensor &actual, const fs::path &npy) {
  auto expected = readFloats(npy);
  REQUIRE(actual.shape() == fgc::runtime::readNpy(npy.string()).shape);
  const float *a = actual.data<float>();
  double scale = largest(expected);
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO(what << " [" << i << "]: fgc " << a[i] << ", torch " << expected[i]);
    REQUIRE(std::fabs(double(a[i]) - expected[i]) <=
            1e-4 * scale + 1e-4 * std::fabs(double(expected[i])));
  }
}

// Predict and one SGD step of `m` (generated or JIT) against fixture `dir`.
template <typename M> void checkFixture(M &m, const fs::path &dir) {
  auto x = readTensor(dir / "input.npy"), t = readTensor(dir / "target.npy");
  auto y = m.predict(std::vector<fgc::rt::Tensor>{x});
  checkClose("output", y[0], dir / "output_0.npy");
  std::vector<double> logs(m.logNames().size());
  m.trainStep(&x, &t, logs.data());
  double loss = fixtureLoss(dir);
  CHECK(std::fabs(logs[0] - loss) <= 1e-5 * std::max(1.0, std::fabs(loss)));
  REQUIRE(m.numWeights() == 6);
  for (int i = 0; i < m.numWeights(); ++i) {
    std::string name = m.weightName(i);
    INFO(name);
    auto grad = readFloats(dir / "grad" / (name + ".npy"));
    auto after = readFloats(dir / "after" / (name + ".npy"));
    const float *g = m.gradientData(i);
    REQUIRE(g != nullptr);
    double scale = largest(grad);
    REQUIRE(scale > 0);
    for (size_t k = 0; k < grad.size(); ++k) {
      INFO("gradient [" << k << "]: fgc " << g[k] << ", torch " << grad[k]);
      REQUIRE(std::fabs(double(g[k]) - grad[k]) <= 1e-5 * scale);
    }
    const float *w = m.weightData(i);
    for (size_t k = 0; k < after.size(); ++k) {
      INFO("weight after the step [" << k << "]: fgc " << w[k] << ", torch " << after[k]);
      REQUIRE(std::fabs(double(w[k]) - after[k]) <= 1e-5 + 1e-5 * std::fabs(double(after[k])));
    }
  }
}

void registerScanRNN() { register_custom_layer<ScanRNN>("ScanRNN"); }

// A cell whose state changes shape: the body returns (batch, 16) for a (batch, 32) state.
class ShrinkingCell : public CustomLayer {
public:
  ShrinkingCell() = default;
  explicit ShrinkingCell(const Config &) {}
  void build(const Shape &in) override { w_ = add_weight("kernel", {in.back(), 16}); }
  Tensor call(const Tensor &x) override {
    auto [last, ys] = ops::scan(
        [this](const Tensor &, const Tensor &xt) {
          Tensor h = ops::tanh(ops::matmul(xt, w_));
          return std::pair{h, h};
        },
        ops::zeros(x, {32}), x);
    return ys;
  }

private:
  Tensor w_;
};

// A cell calling a Dense layer (weights of its own) inside the body.
class DenseCell : public CustomLayer {
public:
  DenseCell() : dense_(layers::Dense(8)) {}
  explicit DenseCell(const Config &) : DenseCell() {}
  Tensor call(const Tensor &x) override {
    auto [last, ys] = ops::scan(
        [this](const Tensor &s, const Tensor &xt) {
          Tensor h = dense_(xt) + s;
          return std::pair{h, h};
        },
        ops::zeros(x, {8}), x);
    return ys;
  }

private:
  Layer dense_;
};

} // namespace

TEST_CASE("ops::scan traces its body once: one Scan op over a None time axis", "[custom][scan]") {
  registerScanRNN();
  clear_session();
  auto inputs = Input({None, 5});
  auto outputs = layers::Custom<ScanRNN>(32)(inputs);
  CHECK(outputs.shapeString() == "(None, 1)");
  Model model(inputs, outputs);
  CHECK(model.count_params() == 5 * 32 + 32 + 32 * 32 + 32 + 33);
  const auto &body = *model.graph().findLayer("scan_rnn")->subgraph;
  int scans = 0;
  for (const auto &op : body.ops) {
    if (op->layer->className != "Scan")
      continue;
    ++scans;
    // (state, x_t, and the four weights it captured) -> (new state, y_t), traced once.
    CHECK(op->inputs.size() == 6);
    CHECK(fgc::shapeToString(op->outputs[1]->type.shape) == "(None, None, 32)");
    const fgc::Graph &cell = *op->layer->body;
    REQUIRE(cell.inputs.size() == 6);
    std::map<std::string, int> classes;
    for (const auto &inner : cell.ops)
      ++classes[inner->layer->className];
    CHECK(classes["MatMul"] == 2);
    CHECK(classes["BinaryAdd"] == 3);
    CHECK(classes["Activation"] == 2);
  }
  CHECK(scans == 1);
  // The model file round-trips: loading retraces the layer from its config.
  auto path = (fs::temp_directory_path() / "fgc_scan_roundtrip.pbtxt").string();
  model.save(path);
  auto loaded = load_model(path, {{"ScanRNN", custom_object<ScanRNN>()}});
  CHECK(loaded.count_params() == model.count_params());
  fs::remove(path);
}

TEST_CASE("generated ScanRNN matches PyTorch at two sequence lengths: predict, SGD step",
          "[custom][scan][generated]") {
  for (const char *c : {"scan_rnn_t3", "scan_rnn_t7"}) {
    INFO(c);
    scan_rnn::Model m;
    checkFixture(m, kFixtures / c);
  }
  const fs::path dir = kFixtures / "scan_rnn_features";
  scan_rnn_features::Model m;
  auto y = m.predict({readTensor(dir / "input.npy")});
  REQUIRE(y.size() == 2);
  checkClose("features", y[0], dir / "output_0.npy");
  checkClose("classifier", y[1], dir / "output_1.npy");
}

TEST_CASE("JIT ScanRNN matches PyTorch at two sequence lengths: predict, SGD step",
          "[custom][scan][jit]") {
  registerScanRNN();
  for (const char *c : {"scan_rnn_t3", "scan_rnn_t7"}) {
    INFO(c);
    for (int level : {2, 0}) {
      INFO("-O" << level);
      fgc::jit::Options o;
      o.optLevel = level;
      auto m = fgc::jit::compile(kModel, o);
      checkFixture(*m, kFixtures / c);
    }
  }
  const fs::path dir = kFixtures / "scan_rnn_features";
  auto m = fgc::jit::compile(kFeatures);
  auto y = m->predict(std::vector<fgc::rt::Tensor>{readTensor(dir / "input.npy")});
  REQUIRE(y.size() == 2);
  checkClose("features", y[0], dir / "output_0.npy");
  checkClose("classifier", y[1], dir / "output_1.npy");
}

TEST_CASE("ScanRNN's gradients (backpropagation through time) against finite differences",
          "[custom][scan]") {
  // trainStep's gradients against central differences of the loss computed by predict (in
  // double from float32 outputs), at 7 steps: eps 1e-2 keeps the rounding error of the
  // difference (about 1e-7 / 1e-2) far below the tolerance, and tanh's truncation error
  // (eps^2 f''' / 6, f''' of order 1 here) is of the order 1e-5.
  const fs::path dir = kFixtures / "scan_rnn_t7";
  auto x = readTensor(dir / "input.npy"), t = readTensor(dir / "target.npy");
  auto tv = readFloats(dir / "target.npy");
  scan_rnn::Model trained;
  std::vector<double> logs(trained.logNames().size());
  trained.trainStep(&x, &t, logs.data());
  scan_rnn::Model m;
  auto loss = [&] {
    auto y = m.predict(std::vector<fgc::rt::Tensor>{x});
    const float *p = y[0].data<float>();
    double s = 0;
    for (size_t i = 0; i < tv.size(); ++i)
      s += (double(p[i]) - tv[i]) * (double(p[i]) - tv[i]);
    return s / double(tv.size());
  };
  const double eps = 1e-2;
  int checked = 0;
  for (int w = 0; w < m.numWeights(); ++w) {
    size_t n = 1;
    for (int64_t d : m.weightShape(w))
      n *= size_t(d);
    const float *g = trained.gradientData(w);
    double scale = 0;
    for (size_t k = 0; k < n; ++k)
      scale = std::max(scale, std::fabs(double(g[k])));
    for (size_t k = 0; k < n; k += 7) { // every 7th element: all four weights, each position kind
      float *v = m.mutableWeightData(w);
      const float orig = v[k];
      v[k] = orig + float(eps);
      double up = loss();
      m.mutableWeightData(w)[k] = orig - float(eps);
      double down = loss();
      m.mutableWeightData(w)[k] = orig;
      double numeric = (up - down) / (2 * eps);
      INFO(m.weightName(w) << " [" << k << "]: backward " << g[k] << ", numeric " << numeric);
      REQUIRE(std::fabs(numeric - g[k]) <= 1e-3 * scale + 1e-4);
      ++checked;
    }
  }
  CHECK(checked > 150);
}

TEST_CASE("ScanRNN's gradient with respect to the sequence (JIT) against finite differences",
          "[custom][scan][jit]") {
  // dLoss/dx through every step's slice of the sequence; eps and tolerance as above.
  registerScanRNN();
  const fs::path dir = kFixtures / "scan_rnn_t7";
  auto x = readTensor(dir / "input.npy"), t = readTensor(dir / "target.npy");
  auto tv = readFloats(dir / "target.npy");
  fgc::jit::Options o;
  o.inputGradients = true;
  auto trained = fgc::jit::compile(kModel, o);
  std::vector<double> logs(trained->logNames().size());
  trained->trainStep(&x, &t, logs.data());
  const float *g = trained->inputGradientData(0);
  REQUIRE(g != nullptr);
  fgc::jit::Options inference;
  inference.inferenceOnly = true;
  auto m = fgc::jit::compile(kModel, inference);
  auto loss = [&](const fgc::rt::Tensor &in) {
    auto y = m->predict(std::vector<fgc::rt::Tensor>{in});
    const float *p = y[0].data<float>();
    double s = 0;
    for (size_t i = 0; i < tv.size(); ++i)
      s += (double(p[i]) - tv[i]) * (double(p[i]) - tv[i]);
    return s / double(tv.size());
  };
  double scale = 0;
  for (int64_t k = 0; k < x.size(); ++k)
    scale = std::max(scale, std::fabs(double(g[k])));
  REQUIRE(scale > 0);
  const double eps = 1e-2;
  for (int64_t k = 0; k < x.size(); ++k) {
    fgc::rt::Tensor up = x, down = x;
    up.data<float>()[k] += float(eps);
    down.data<float>()[k] -= float(eps);
    double numeric = (loss(up) - loss(down)) / (2 * eps);
    INFO("input [" << k << "]: backward " << g[k] << ", numeric " << numeric);
    REQUIRE(std::fabs(numeric - g[k]) <= 1e-3 * scale + 1e-4);
  }
}

TEST_CASE("ScanRNN trains on batches of different lengths (SGD, generated and JIT)",
          "[custom][scan][jit]") {
  registerScanRNN();
  scan_rnn::Model gen;
  auto jit = fgc::jit::compile(kModel);
  std::vector<fgc::rt::Tensor> xs, ts;
  for (const char *c : {"scan_rnn_t3", "scan_rnn_t7"}) {
    xs.push_back(readTensor(kFixtures / c / "input.npy"));
    ts.push_back(readTensor(kFixtures / c / "target.npy"));
  }
  auto total = [&](auto &m) {
    double s = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      auto y = m.predict(std::vector<fgc::rt::Tensor>{xs[i]});
      const float *p = y[0].template data<float>();
      const float *q = ts[i].template data<float>();
      for (int64_t k = 0; k < y[0].size(); ++k)
        s += (double(p[k]) - q[k]) * (double(p[k]) - q[k]);
    }
    return s;
  };
  double before = total(gen);
  std::vector<double> logs(gen.logNames().size());
  for (int epoch = 0; epoch < 30; ++epoch)
    for (size_t i = 0; i < xs.size(); ++i) {
      gen.trainStep(&xs[i], &ts[i], logs.data());
      jit->trainStep(&xs[i], &ts[i], logs.data());
    }
  double after = total(gen);
  CHECK(after < 0.5 * before);
  // Both backends took the same steps.
  for (int w = 0; w < gen.numWeights(); ++w) {
    INFO(gen.weightName(w));
    size_t n = 1;
    for (int64_t d : gen.weightShape(w))
      n *= size_t(d);
    for (size_t k = 0; k < n; ++k)
      REQUIRE(std::fabs(gen.weightData(w)[k] - jit->weightData(w)[k]) <= 1e-5);
  }
}

TEST_CASE("ops::scan misuse: clear errors naming the layer and the shapes", "[custom][scan]") {
  registerScanRNN();
  register_custom_layer<ShrinkingCell>("ShrinkingCell");
  register_custom_layer<DenseCell>("DenseCell");
  clear_session();
  {
    auto inputs = Input({None, 5});
    try {
      layers::Custom<ShrinkingCell>()(inputs);
      FAIL("no error");
    } catch (const fgc::Exception &e) {
      std::string msg = e.what();
      INFO(msg);
      CHECK(msg.find("layer 'shrinking_cell' (ShrinkingCell)") != std::string::npos);
      CHECK(msg.find("layer 'scan' (Scan)") != std::string::npos);
      CHECK(msg.find("returns a state of shape (None, 16)") != std::string::npos);
      CHECK(msg.find("initial state is (None, 32)") != std::string::npos);
    }
  }
  {
    auto inputs = Input({None, 5});
    CHECK_THROWS_WITH(layers::Custom<DenseCell>()(inputs),
                      Catch::Contains("layer 'dense' (Dense) in its body has weights of its own"));
  }
  {
    // Outside a custom layer's call().
    auto seq = Input({None, 5});
    CHECK_THROWS_WITH(ops::scan([](const Tensor &s, const Tensor &) { return std::pair{s, s}; },
                                ops::zeros(seq, {5}), seq),
                      Catch::Contains("only valid inside a custom layer's call()"));
  }
}
