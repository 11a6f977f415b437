// Keras's initializers: reproducible from the seed, and with the distributions Keras documents.
// Statistical checks use tolerances derived from the sample size (stated at each check), so they
// hold for any correct generator and fail for a wrong limit or variance.
#include "ModelSketch.h"

#include "frontend/Initializers.h"

#include <cmath>
#include <cstring>

using namespace fgc;
using namespace fgc::test;

namespace {

std::vector<float> init(const AttrValue &initializer, const std::vector<Dim> &shape,
                        uint64_t seed) {
  std::vector<float> out;
  Status s = initializeTensor(initializer, shape, seed, out);
  if (!s)
    FAIL(s.error().message());
  return out;
}

struct Moments {
  double mean, variance, maxAbs;
};

Moments moments(const std::vector<float> &v) {
  double sum = 0, maxAbs = 0;
  for (float x : v) {
    sum += x;
    maxAbs = std::max(maxAbs, std::fabs(double(x)));
  }
  double mean = sum / double(v.size()), sq = 0;
  for (float x : v)
    sq += (x - mean) * (x - mean);
  return {mean, sq / double(v.size()), maxAbs};
}

} // namespace

TEST_CASE("initialization is deterministic in the seed", "[initializers]") {
  const AttrValue glorot = makeObject("GlorotUniform");
  auto a = init(glorot, {64, 32}, 1), b = init(glorot, {64, 32}, 1), c = init(glorot, {64, 32}, 2);
  CHECK(a == b);
  CHECK(a != c);
  CHECK(init(makeObject("Orthogonal"), {8, 8}, 5) == init(makeObject("Orthogonal"), {8, 8}, 5));
  // An initializer's own seed overrides the stream it is given, as in Keras.
  AttrValue seeded = makeObject("RandomNormal", {{"seed", makeInt(3)}});
  CHECK(init(seeded, {100}, 1) == init(seeded, {100}, 2));

  // Each weight gets its own stream from the model seed, layer path and weight name.
  CHECK(paramSeed(1, "dense", "kernel") == paramSeed(1, "dense", "kernel"));
  CHECK(paramSeed(1, "dense", "kernel") != paramSeed(2, "dense", "kernel"));
  CHECK(paramSeed(1, "dense", "kernel") != paramSeed(1, "dense_1", "kernel"));
  CHECK(paramSeed(1, "dense", "kernel") != paramSeed(1, "dense", "bias"));
  CHECK(paramSeed(1, "a/bc", "kernel") != paramSeed(1, "a/b", "ckernel"));
}

TEST_CASE("a model's weights are the same every time it is loaded", "[initializers]") {
  auto first = buildGraph(richModelWithWeights());
  auto second = buildGraph(richModelWithWeights());
  REQUIRE(first);
  REQUIRE(second);
  for (const auto &l : (*first)->layers) {
    const Layer *other = (*second)->findLayer(l->name);
    REQUIRE(other != nullptr);
    for (size_t i = 0; i < l->params.size(); ++i)
      CHECK(l->params[i].data == other->params[i].data);
  }
}

TEST_CASE("GlorotUniform: within the limit, mean 0, variance limit^2 / 3", "[initializers]") {
  // Keras: U(-limit, limit) with limit = sqrt(6 / (fan_in + fan_out)).
  for (auto shape : std::vector<std::vector<Dim>>{{200, 300}, {3, 3, 16, 32}}) {
    double fanIn = shape.size() == 2 ? shape[0] : 3 * 3 * 16;
    double fanOut = shape.size() == 2 ? shape[1] : 3 * 3 * 32;
    double limit = std::sqrt(6.0 / (fanIn + fanOut));
    auto v = init(makeObject("GlorotUniform"), shape, 11);
    double n = double(v.size());
    Moments m = moments(v);
    INFO("shape " << shape.size() << "-D, limit " << limit);
    CHECK(m.maxAbs <= limit);
    CHECK(m.maxAbs > 0.99 * limit); // the samples fill the interval
    // Mean: standard error sqrt(limit^2/3 / n); allow 5 standard errors.
    CHECK(std::fabs(m.mean) < 5 * limit / std::sqrt(3 * n));
    // Variance: the standard error of the mean of x^2 is sqrt((E x^4 - (E x^2)^2) / n)
    // = limit^2 * sqrt(4/45 / n) for a uniform; allow 5 standard errors.
    CHECK(std::fabs(m.variance - limit * limit / 3) < 5 * limit * limit * std::sqrt(4.0 / 45 / n));
  }
}

TEST_CASE("HeNormal: truncated at two standard deviations, Keras's variance", "[initializers]") {
  // Keras: truncated normal with stddev sqrt(2 / fan_in) / 0.8796... (so the variance after
  // truncation at 2 sigma is 2 / fan_in).
  const double fanIn = 3 * 3 * 8;
  auto v = init(makeObject("HeNormal"), {3, 3, 8, 256}, 4);
  double n = double(v.size());
  double sigma = std::sqrt(2.0 / fanIn) / 0.87962566103423978;
  Moments m = moments(v);
  CHECK(m.maxAbs <= 2 * sigma * (1 + 1e-6));
  CHECK(std::fabs(m.mean) < 5 * std::sqrt(2.0 / fanIn / n));
  // The variance of a sample of n values has a relative standard error of about sqrt(2 / n)
  // (a little less for a truncated normal); allow 5 of them.
  CHECK(std::fabs(m.variance / (2.0 / fanIn) - 1) < 5 * std::sqrt(2.0 / n));
}

TEST_CASE("RandomUniform, Zeros, Ones, Constant, Identity", "[initializers]") {
  auto u = init(makeObject("RandomUniform"), {1000}, 3);
  for (float x : u) {
    CHECK(x >= -0.05f);
    CHECK(x < 0.05f);
  }
  auto r = init(makeObject("RandomUniform", {{"minval", makeFloat(2)}, {"maxval", makeFloat(3)}}),
                {1000}, 3);
  CHECK(moments(r).mean > 2.4);
  CHECK(moments(r).mean < 2.6);
  CHECK(init(makeObject("Zeros"), {3, 2}, 1) == std::vector<float>(6, 0.0f));
  CHECK(init(makeObject("Ones"), {4}, 1) == std::vector<float>(4, 1.0f));
  CHECK(init(makeObject("Constant", {{"value", makeFloat(0.25)}}), {3}, 1) ==
        std::vector<float>(3, 0.25f));
  CHECK(init(makeObject("Identity"), {2, 3}, 1) == std::vector<float>{1, 0, 0, 0, 1, 0});
  std::vector<float> out;
  Status s = initializeTensor(makeObject("VeryRandom"), {2}, 1, out);
  REQUIRE_FALSE(s);
  CHECK(s.error().message().find("'VeryRandom'") != std::string::npos);
}

TEST_CASE("Orthogonal gives orthonormal columns (or rows)", "[initializers]") {
  // Keras's Orthogonal: Q of a QR decomposition of a normal matrix, transposed when it has more
  // columns than rows; so Q^T Q = I for a tall matrix and Q Q^T = I for a wide one.
  for (auto [rows, cols] : std::vector<std::pair<int, int>>{{16, 16}, {32, 8}, {8, 32}}) {
    auto q = init(makeObject("Orthogonal"), {rows, cols}, 9);
    bool tall = rows >= cols;
    int n = tall ? cols : rows, k = tall ? rows : cols;
    auto at = [&](int i, int j) { return double(q[size_t(i * cols + j)]); };
    double worst = 0;
    for (int a = 0; a < n; ++a)
      for (int b = 0; b < n; ++b) {
        double dot = 0;
        for (int t = 0; t < k; ++t)
          dot += tall ? at(t, a) * at(t, b) : at(a, t) * at(b, t);
        worst = std::max(worst, std::fabs(dot - (a == b ? 1.0 : 0.0)));
      }
    INFO(rows << "x" << cols);
    // float32 storage: each entry is rounded by ~6e-8 relative; sums of k products stay < 1e-5.
    CHECK(worst < 1e-5);
  }
  // The gain scales Q.
  auto q = init(makeObject("Orthogonal", {{"gain", makeFloat(2)}}), {4, 4}, 1);
  double norm = 0;
  for (int i = 0; i < 4; ++i)
    norm += double(q[size_t(i * 4)]) * q[size_t(i * 4)];
  CHECK(norm == Approx(4.0).epsilon(1e-5));
}

TEST_CASE("LSTM biases: ones for the forget gate, the bias initializer elsewhere",
          "[initializers]") {
  ModelSketch m("lstm");
  m.input("x", {-1, 7, 3});
  m.layer("LSTM", "lstm", {{"units", makeInt(5)}}, {"x"});
  m.layer("LSTM", "plain", {{"units", makeInt(5)}, {"unit_forget_bias", makeBool(false)}},
          {"x"});
  m.layer("Add", "sum", {}, {"lstm", "plain"});
  m.output("sum");
  auto g = m.build();
  REQUIRE(initializeWeights(*g));
  auto bias = [&](const std::string &layer) {
    const Param &p = g->findLayer(layer)->params.at(2);
    REQUIRE(p.name == "bias");
    REQUIRE(p.data.size() == 4 * 5 * sizeof(float));
    std::vector<float> v(20);
    std::memcpy(v.data(), p.data.data(), p.data.size());
    return v;
  };
  // Keras's gate order is i, f, c, o: the forget block is elements [u, 2u).
  std::vector<float> expected(20, 0.0f);
  for (int i = 5; i < 10; ++i)
    expected[size_t(i)] = 1.0f;
  CHECK(bias("lstm") == expected);
  CHECK(bias("plain") == std::vector<float>(20, 0.0f));

  // The recurrent kernel (5, 20) is orthogonal: 20 columns of 5 rows, so its rows are orthonormal.
  const Param &rk = g->findLayer("lstm")->params.at(1);
  REQUIRE(rk.type.shape == std::vector<Dim>{5, 20});
  std::vector<float> r(100);
  std::memcpy(r.data(), rk.data.data(), rk.data.size());
  for (int a = 0; a < 5; ++a)
    for (int b = 0; b < 5; ++b) {
      double dot = 0;
      for (int t = 0; t < 20; ++t)
        dot += double(r[size_t(a * 20 + t)]) * r[size_t(b * 20 + t)];
      CHECK(dot == Approx(a == b ? 1.0 : 0.0).margin(1e-5));
    }
}
