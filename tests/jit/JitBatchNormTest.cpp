// Folded BatchNormalization in the JIT: the model of tests/passes/models/bn_fold.pbtxt (Conv2D +
// BatchNormalization, Dense + BatchNormalization, a residual Add + ReLU, a Dropout) JIT-compiled
// at -O2 runs the weight steps of fold-batch-norm / constant-fold when the weights change, as the
// generated code at -O2 (namespace `folded`) does. Both call the same kernels with the same
// arguments, so they must be bit-identical: with the built-in weights, after load_weights, after
// mutableWeightData writes, after a training step and after loading a model file. At -O0 the JIT
// is compared with the unfolded generated code the same way.
#include "bn_fold_O0.h"
#include "bn_fold_O2.h"

#include "fgc/jit.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <unistd.h>

namespace {

const char *kModel = FGC_SOURCE_DIR "/tests/passes/models/bn_fold.pbtxt";

fgc::rt::Tensor images(int64_t batch, float phase) {
  fgc::rt::Tensor x(fgc::rt::DType::Float32, {batch, 6, 6, 3});
  float *d = x.data<float>();
  for (int64_t i = 0; i < x.size(); ++i)
    d[i] = std::sin(0.7f * float(i) + phase);
  return x;
}

void checkIdentical(const fgc::rt::Tensor &jit, const fgc::rt::Tensor &aot) {
  REQUIRE(jit.shape() == aot.shape());
  float scale = 0;
  for (int64_t i = 0; i < aot.size(); ++i)
    scale = std::max(scale, std::fabs(aot.data<float>()[i]));
  REQUIRE(scale > 0.01f); // not a vacuous comparison
  CHECK(std::memcmp(jit.raw(), aot.raw(), aot.bytes()) == 0);
}

bool differ(const fgc::rt::Tensor &a, const fgc::rt::Tensor &b) {
  for (int64_t i = 0; i < a.size(); ++i)
    if (std::fabs(a.data<float>()[i] - b.data<float>()[i]) > 1e-3f)
      return true;
  return false;
}

std::string tempPath(const char *name) {
  return std::string("/tmp/fgc_jit_bn_") + std::to_string(::getpid()) + "_" + name;
}

// Other weights: every statistic and kernel moved; saved to `path`.
void saveOtherWeights(const std::string &path) {
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
  other.save_weights(path);
}

template <typename Aot> void compareAfterChanges(int optLevel) {
  fgc::jit::Options options;
  options.optLevel = optLevel;
  auto jit = fgc::jit::compile(kModel, options);
  Aot aot;
  for (int64_t batch : {int64_t(1), int64_t(4)}) {
    auto x = images(batch, 0.3f);
    checkIdentical(jit->predict({x})[0], aot.predict({x})[0]);
  }
  auto x = images(3, 1.1f);
  auto before = jit->predict({x})[0];
  const std::string path = tempPath("other.fgcw");
  saveOtherWeights(path);

  SECTION("load_weights") {
    jit->load_weights(path);
    aot.load_weights(path);
    auto after = jit->predict({x})[0];
    CHECK(differ(after, before)); // recomputed, not kept from the old weights
    checkIdentical(after, aot.predict({x})[0]);
  }
  SECTION("mutableWeightData") {
    auto other = fgc::jit::compile(kModel, options);
    other->load_weights(path);
    for (int i = 0; i < jit->numWeights(); ++i) {
      int64_t n = 1;
      for (int64_t d : jit->weightShape(i))
        n *= d;
      std::copy(other->weightData(i), other->weightData(i) + n, jit->mutableWeightData(i));
      std::copy(other->weightData(i), other->weightData(i) + n, aot.mutableWeightData(i));
    }
    auto after = jit->predict({x})[0];
    CHECK(differ(after, before));
    checkIdentical(after, aot.predict({x})[0]);
  }
  SECTION("a training step, then a model file") {
    jit->setDropoutEnabled(false);
    aot.setDropoutEnabled(false);
    fgc::rt::Tensor y(fgc::rt::DType::Float32, {3, 5});
    for (int64_t k = 0; k < y.size(); ++k)
      y.data<float>()[k] = 0.1f * float(k % 7) - 0.3f;
    double jitLogs[2] = {}, aotLogs[2] = {};
    jit->trainStep(&x, &y, jitLogs);
    aot.trainStep(&x, &y, aotLogs);
    CHECK(jitLogs[0] == aotLogs[0]);
    auto after = jit->predict({x})[0];
    CHECK(differ(after, before));
    checkIdentical(after, aot.predict({x})[0]);
    // The AOT-trained file into a fresh JIT model that has folded its built-in weights.
    const std::string file = tempPath("trained.fgcm");
    aot.save(file);
    auto loaded = jit->fresh();
    loaded->predict({x});
    loaded->load(file);
    checkIdentical(loaded->predict({x})[0], aot.predict({x})[0]);
    std::remove(file.c_str());
  }
  std::remove(path.c_str());
}

} // namespace

TEST_CASE("JIT at -O2 folds BatchNormalization as generated code does", "[jit][fold]") {
  compareAfterChanges<folded::Model>(2);
}

TEST_CASE("JIT at -O0 runs BatchNormalization unfolded as generated code does", "[jit][fold]") {
  compareAfterChanges<unfolded::Model>(0);
}

TEST_CASE("the JIT-compiled -O2 program has weight steps", "[jit][fold]") {
  // The fold really happens in the JIT (not a pass silently skipped): the optimized module holds
  // the weight-step entry and predict no longer normalizes.
  fgc::jit::Options options;
  options.dumpLlvmIr = tempPath("module.ll");
  fgc::jit::compile(kModel, options);
  FILE *f = std::fopen(options.dumpLlvmIr.c_str(), "r");
  REQUIRE(f);
  std::string text;
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, f)) > 0;)
    text.append(buffer, n);
  std::fclose(f);
  std::remove(options.dumpLlvmIr.c_str());
  CHECK(text.find("define i32 @update_derived(") != std::string::npos);
  CHECK(text.find("@fgc_fold_batch_norm(") != std::string::npos);
  CHECK(text.find("call i32 @fgc_batch_norm(") == std::string::npos);
}
