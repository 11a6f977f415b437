// fold-batch-norm, constant-fold, fuse-elementwise and drop-dropout in generated code: the model
// tests/passes/models/bn_fold.pbtxt (Conv2D + BatchNormalization, Dense + BatchNormalization,
// a residual Add + ReLU, a Dropout) compiled at -O2 (folded, namespace `folded`) and at -O0
// (every layer its own kernel call, namespace `unfolded`; -O0 is checked against PyTorch for
// every layer class by tests/models) must predict the same, for the built-in weights, after
// load_weights of other weights, after a training step and after mutableWeightData writes.
#include "bn_fold_O0.h"
#include "bn_fold_O2.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <string>
#include <unistd.h>

namespace {

fgc::rt::Tensor images(int64_t batch, float phase) {
  fgc::rt::Tensor x(fgc::rt::DType::Float32, {batch, 6, 6, 3});
  float *d = x.data<float>();
  for (int64_t i = 0; i < x.size(); ++i)
    d[i] = std::sin(0.7f * float(i) + phase);
  return x;
}

// The fixtures' tolerance (tests/models): |a - b| <= 1e-4 * scale + 1e-4 * |b|, with scale the
// largest magnitude of b. Folding reorders float operations (the kernel is scaled before the
// products are summed), so the results are not bitwise equal.
void checkClose(const fgc::rt::Tensor &a, const fgc::rt::Tensor &b) {
  REQUIRE(a.shape() == b.shape());
  const float *x = a.data<float>(), *y = b.data<float>();
  float scale = 0;
  for (int64_t i = 0; i < b.size(); ++i)
    scale = std::max(scale, std::fabs(y[i]));
  REQUIRE(scale > 0.01f); // not a vacuous comparison
  for (int64_t i = 0; i < a.size(); ++i) {
    INFO("element " << i << ": folded " << x[i] << ", unfolded " << y[i]);
    CHECK(std::fabs(x[i] - y[i]) <= 1e-4f * scale + 1e-4f * std::fabs(y[i]));
  }
}

bool differ(const fgc::rt::Tensor &a, const fgc::rt::Tensor &b) {
  for (int64_t i = 0; i < a.size(); ++i)
    if (std::fabs(a.data<float>()[i] - b.data<float>()[i]) > 1e-3f)
      return true;
  return false;
}

std::string tempPath(const char *name) {
  return std::string("/tmp/fgc_bn_fold_") + std::to_string(::getpid()) + "_" + name;
}

} // namespace

TEST_CASE("folded BatchNormalization predicts as the unfolded program", "[passes][fold]") {
  folded::Model opt;
  unfolded::Model ref;
  for (int64_t batch : {int64_t(1), int64_t(4)}) {
    auto x = images(batch, 0.3f);
    checkClose(opt.predict({x})[0], ref.predict({x})[0]);
    // The arena plan of the folded, fused program is still valid and tight.
    CHECK(opt.arenaPlan().validate() == "");
    CHECK(double(opt.arenaPlan().bytes()) <= 1.10 * double(opt.arenaPlan().lowerBound()));
  }
}

TEST_CASE("the fold follows weights replaced at run time", "[passes][fold]") {
  folded::Model opt;
  unfolded::Model ref;
  auto x = images(3, 1.1f);
  auto before = opt.predict({x})[0];
  // Other weights: every BatchNormalization statistic and kernel moved, written through
  // mutableWeightData into an unfolded model and saved.
  unfolded::Model other;
  for (int i = 0; i < unfolded::Model::numWeights(); ++i) {
    float *w = other.mutableWeightData(i);
    int64_t n = 1;
    for (int64_t d : unfolded::Model::weightShape(i))
      n *= d;
    bool variance = unfolded::Model::weightName(i).find("moving_variance") != std::string::npos;
    for (int64_t k = 0; k < n; ++k)
      w[k] = variance ? w[k] * 1.7f + 0.1f : w[k] * -0.8f + 0.05f * std::cos(float(k));
  }
  const std::string path = tempPath("other.fgcw");
  other.save_weights(path);

  SECTION("load_weights") {
    opt.load_weights(path);
    ref.load_weights(path);
    auto after = opt.predict({x})[0];
    CHECK(differ(after, before)); // the fold was recomputed, not kept from the old weights
    checkClose(after, ref.predict({x})[0]);
    checkClose(after, other.predict({x})[0]);
  }
  SECTION("mutableWeightData") {
    for (int i = 0; i < folded::Model::numWeights(); ++i) {
      int64_t n = 1;
      for (int64_t d : folded::Model::weightShape(i))
        n *= d;
      std::copy(other.weightData(i), other.weightData(i) + n, opt.mutableWeightData(i));
    }
    auto after = opt.predict({x})[0];
    CHECK(differ(after, before));
    checkClose(after, other.predict({x})[0]);
  }
  SECTION("a training step, then load") {
    // Both take the same SGD step (Dropout off: no random masks); predict then reads the
    // updated weights and moving statistics.
    opt.setDropoutEnabled(false);
    ref.setDropoutEnabled(false);
    fgc::rt::Tensor y(fgc::rt::DType::Float32, {3, 5});
    for (int64_t k = 0; k < y.size(); ++k)
      y.data<float>()[k] = 0.1f * float(k % 7) - 0.3f;
    double logs[2] = {};
    opt.trainStep(&x, &y, logs);
    ref.trainStep(&x, &y, logs);
    auto after = opt.predict({x})[0];
    CHECK(differ(after, before));
    checkClose(after, ref.predict({x})[0]);
    // A model file saved by the trained reference, loaded into a fresh folded model.
    const std::string file = tempPath("trained.fgcm");
    ref.save(file);
    folded::Model loaded;
    loaded.predict({x}); // folds the built-in weights first
    loaded.load(file);
    checkClose(loaded.predict({x})[0], ref.predict({x})[0]);
    std::remove(file.c_str());
  }
  std::remove(path.c_str());
}
