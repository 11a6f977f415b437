// Finite-difference checks of the generated backward pass, for every layer class with a gradient
// rule (the models of tests/gradcheck/make_models.py, compiled by fgc with --input-gradients).
//
// For each model, one trainStep at a fixed batch gives fgc's gradients of the loss with respect
// to every weight (gradientData) and every float input (inputGradientData). They are compared
// with central differences of the loss that the same generated trainStep computes, each
// evaluation on a fresh model object: the optimizer update of one evaluation never leaks into
// the next, and the Dropout mask (seeded by the layer and the step counter) is the same in
// every evaluation. Steps are measured as the float32 values actually stored (w + h rounded),
// so the rounding of w + h adds no error.
//
// Precision. The runtime accumulates the loss in double, but the forward pass runs in float32:
// the loss (of order 1 here, MSE on outputs and targets of order 1) carries rounding errors up
// to kLossNoise = 5e-8 (a few float32 ulps). A central difference with span s = w+ - w- is
// therefore off by up to 2 kLossNoise / s, plus a truncation error ~ h^2 f''' / 6. With
// h = 2e-3 both stay below 3e-5 for these models, while a wrong gradient rule is off by O(1)
// of the gradient. Each check allows 1e-3 of the tensor's largest gradient plus that noise.
//
// Per tensor: the element with the largest gradient and four random ones, and one random
// direction over the whole tensor (every element moved by +-h / sqrt(n), a step of length h),
// whose loss change must match sum_k g_k (w+_k - w-_k) within 1e-3 of sum_k |g_k (w+_k - w-_k)|
// plus 2 kLossNoise.
//
// Kinks (ReLU, hard sigmoid and SELU at 0, max pooling) make a central difference wrong when
// [w - h, w + h] crosses one. The inputs and seeds are fixed, so whether an element sits within
// h of a kink is fixed too. An element whose differences at h and h / 4 disagree beyond noise
// and tolerance straddles one: it is judged at h / 4 only, and at most one such element per
// tensor is accepted.
#include "gc_convolution.h"
#include "gc_dense_activations.h"
#include "gc_dense_activations_O0.h"
#include "gc_merges.h"
#include "gc_sequence.h"
#ifdef FGC_GRADCHECK_CUSTOM_LAYERS
#include "gc_custom_layers.h"
#include "gc_custom_rnn.h"
#endif

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace {

// Deterministic uniform values in [lo, hi) (std::uniform_real_distribution is not portable).
struct Uniform {
  std::mt19937_64 gen;
  explicit Uniform(uint64_t seed) : gen(seed) {}
  double operator()(double lo, double hi) { return lo + (hi - lo) * double(gen() >> 11) * 0x1p-53; }
  size_t index(size_t n) { return size_t(gen() % n); }
};

constexpr int64_t kBatch = 4;
constexpr double kStep = 2e-3;       // the central difference's h (see above)
constexpr double kTolerance = 1e-3;  // of the tensor's largest gradient
constexpr double kLossNoise = 5e-8;  // the loss's rounding error (see above)

std::vector<int64_t> resolve(std::vector<int64_t> shape) {
  for (auto &d : shape)
    if (d < 0)
      d = kBatch;
  return shape;
}

size_t count(const std::vector<int64_t> &shape) {
  size_t n = 1;
  for (int64_t d : shape)
    n *= size_t(d);
  return n;
}

// One model's check. `indexRange[i]` > 0 marks input i as indices in [0, indexRange[i]).
template <typename Model> class GradCheck {
public:
  explicit GradCheck(std::vector<int> indexRange, uint64_t seed) : index_(std::move(indexRange)) {
    Uniform u(seed);
    for (int i = 0; i < Model::kNumInputs; ++i) {
      auto shape = resolve(Model::inputShape(i));
      std::vector<float> v(count(shape));
      for (float &x : v)
        x = index_[size_t(i)] > 0 ? float(u.index(size_t(index_[size_t(i)]))) : float(u(-1, 1));
      inputs_.push_back(v);
      shapes_.push_back(shape);
    }
    auto outShape = resolve(Model::outputShape(0));
    targets_.assign(count(outShape), 0.0f);
    for (float &t : targets_)
      t = float(u(-1, 1));
    targetShape_ = outShape;
    // The gradients fgc computes at the starting point.
    Model m;
    loss0_ = step(m, inputs_);
    REQUIRE(loss0_ < 2); // kLossNoise assumes a loss of order 1
    for (int i = 0; i < Model::numWeights(); ++i) {
      const float *g = m.gradientData(i);
      // Only BatchNormalization's moving statistics are not trained.
      bool trained = Model::weightName(i).find("/moving_") == std::string::npos;
      INFO(Model::weightName(i));
      REQUIRE((g != nullptr) == trained);
      weightGrads_.push_back(g ? std::vector<float>(g, g + count(Model::weightShape(i)))
                               : std::vector<float>());
    }
    for (int i = 0; i < Model::kNumInputs; ++i) {
      const float *g = m.inputGradientData(i);
      REQUIRE((g != nullptr) == (index_[size_t(i)] == 0));
      inputGrads_.push_back(g ? std::vector<float>(g, g + inputs_[size_t(i)].size())
                              : std::vector<float>());
    }
  }

  void run(uint64_t seed) {
    Uniform u(seed);
    for (int i = 0; i < Model::numWeights(); ++i) {
      if (weightGrads_[size_t(i)].empty())
        continue; // not trained
      checkTensor(Model::weightName(i), weightGrads_[size_t(i)], u,
                  [&](const std::vector<std::pair<size_t, double>> &moves) {
                    Model m;
                    float *w = m.mutableWeightData(i);
                    std::vector<double> actual;
                    for (auto [k, d] : moves) {
                      float before = w[k];
                      w[k] = float(double(w[k]) + d);
                      actual.push_back(double(w[k]) - double(before));
                    }
                    return std::make_pair(step(m, inputs_), actual);
                  });
    }
    for (int i = 0; i < Model::kNumInputs; ++i) {
      if (index_[size_t(i)] > 0)
        continue;
      checkTensor(Model::inputNames()[size_t(i)] + " (input)", inputGrads_[size_t(i)], u,
                  [&](const std::vector<std::pair<size_t, double>> &moves) {
                    auto in = inputs_;
                    std::vector<double> actual;
                    for (auto [k, d] : moves) {
                      float before = in[size_t(i)][k];
                      in[size_t(i)][k] = float(double(before) + d);
                      actual.push_back(double(in[size_t(i)][k]) - double(before));
                    }
                    Model m;
                    return std::make_pair(step(m, in), actual);
                  });
    }
  }

private:
  using Moves = std::vector<std::pair<size_t, double>>;

  double step(Model &m, const std::vector<std::vector<float>> &inputs) {
    std::vector<fgc::rt::Tensor> in, target;
    for (size_t i = 0; i < inputs.size(); ++i)
      in.push_back(fgc::rt::Tensor::fromFloats(shapes_[i], inputs[i].data()));
    target.push_back(fgc::rt::Tensor::fromFloats(targetShape_, targets_.data()));
    std::vector<double> logs(m.logNames().size());
    m.trainStep(in.data(), target.data(), logs.data());
    return logs[0];
  }

  // The central difference of the loss at element k with step h: (L+ - L-) / (w+ - w-).
  struct Difference {
    double value, span;
  };
  template <typename Eval> Difference difference(Eval &eval, size_t k, double h) {
    auto [plus, dPlus] = eval(Moves{{k, h}});
    auto [minus, dMinus] = eval(Moves{{k, -h}});
    double span = dPlus[0] - dMinus[0];
    return {(plus - minus) / span, span};
  }

  // What rounding of the float32 forward pass can move a central difference by: the loss is
  // evaluated with errors up to kLossNoise, so (L+ - L-) / (w+ - w-) is off by up to
  // 2 kLossNoise / (w+ - w-) on top of the truncation error.
  static double noise(double span) { return 2 * kLossNoise / span; }

  template <typename Eval>
  void checkTensor(const std::string &name, const std::vector<float> &g, Uniform &u, Eval eval) {
    double scale = 0;
    size_t largest = 0;
    for (size_t k = 0; k < g.size(); ++k)
      if (std::fabs(g[k]) > scale)
        scale = std::fabs(g[k]), largest = k;
    INFO(name << ": " << g.size() << " values, largest |gradient| " << scale);
    REQUIRE(scale > 1e-4); // every tensor of these models reaches the loss
    std::vector<size_t> picks = {largest};
    for (int r = 0; r < 4 && g.size() > 1; ++r)
      picks.push_back(u.index(g.size()));
    int kinks = 0;
    for (size_t k : picks) {
      Difference fd = difference(eval, k, kStep);
      Difference small = difference(eval, k, kStep / 4);
      // Disagreeing beyond their noise and truncation: a kink lies within h of the element; the
      // smaller step is kink-free more often.
      if (std::fabs(fd.value - small.value) > kTolerance * scale + noise(small.span)) {
        ++kinks;
        fd = small;
      }
      INFO("element " << k << ": fgc " << g[k] << ", finite difference " << fd.value);
      CHECK(std::fabs(fd.value - g[k]) <= kTolerance * scale + noise(fd.span));
    }
    INFO("elements within h of a kink");
    CHECK(kinks <= 1);
    // One random direction over the whole tensor, of length h.
    Moves plus, minus;
    double each = kStep / std::sqrt(double(g.size()));
    for (size_t k = 0; k < g.size(); ++k) {
      double d = u(0, 1) < 0.5 ? -each : each;
      plus.push_back({k, d});
      minus.push_back({k, -d});
    }
    auto [lPlus, aPlus] = eval(plus);
    auto [lMinus, aMinus] = eval(minus);
    double predicted = 0, magnitude = 0;
    for (size_t k = 0; k < g.size(); ++k) {
      predicted += double(g[k]) * (aPlus[k] - aMinus[k]);
      magnitude += std::fabs(double(g[k]) * (aPlus[k] - aMinus[k]));
    }
    INFO("random direction: loss change " << lPlus - lMinus << ", predicted " << predicted);
    CHECK(std::fabs((lPlus - lMinus) - predicted) <= kTolerance * magnitude + 2 * kLossNoise);
  }

  std::vector<int> index_;
  std::vector<std::vector<float>> inputs_;
  std::vector<std::vector<int64_t>> shapes_;
  std::vector<float> targets_;
  std::vector<int64_t> targetShape_;
  double loss0_ = 0;
  std::vector<std::vector<float>> weightGrads_, inputGrads_;
};

} // namespace

TEST_CASE("Dense, Activation and Softmax gradients match finite differences", "[gradcheck]") {
  GradCheck<gc_dense_activations::Model>({0}, 1).run(11);
}

// The same model at -O0: each Activation layer a call of its own, forward and backward (at -O2
// fuse-activation folds most of them into the Dense before them, gradient included).
TEST_CASE("Dense, Activation and Softmax gradients match finite differences at -O0",
          "[gradcheck]") {
  GradCheck<gc_dense_activations_O0::Model>({0}, 1).run(11);
}

TEST_CASE("convolution, pooling, upsampling, 4-D BatchNormalization, Flatten and Reshape "
          "gradients match finite differences", "[gradcheck]") {
  GradCheck<gc_convolution::Model>({0}, 2).run(12);
}

TEST_CASE("Add, Average, Concatenate, BatchNormalization and Dropout gradients match finite "
          "differences", "[gradcheck]") {
  GradCheck<gc_merges::Model>({0, 0}, 3).run(13);
}

TEST_CASE("Embedding, LSTM and GlobalAveragePooling1D gradients match finite differences",
          "[gradcheck]") {
  GradCheck<gc_sequence::Model>({7, 0}, 4).run(14);
}

#ifdef FGC_GRADCHECK_CUSTOM_LAYERS
TEST_CASE("custom layers' tensor operations (Variable, MatMul, Binary*, Slice, Stack, Zeros, "
          "Reduce*, with Concatenate and Reshape) and CustomDense match finite differences",
          "[gradcheck]") {
  GradCheck<gc_custom_layers::Model>({0}, 5).run(15);
}

TEST_CASE("the seed's CustomRNN (unrolled, shared Dense layers, nested classifier) matches "
          "finite differences",
          "[gradcheck]") {
  GradCheck<gc_custom_rnn::Model>({0}, 6).run(16);
}
#endif
