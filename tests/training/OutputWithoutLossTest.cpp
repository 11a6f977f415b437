// An output without a loss (tests/training/models/two_heads_one_loss.pbtxt: outputs a and b, a
// loss for b only), as Keras 2 treats it: the output takes no target, is not trained, and has no
// loss or metric in the logs. The update of what b depends on is checked against central
// finite differences of the loss that testStep computes, through SGD's w -= lr * g.
#include FGC_MODEL_HEADER

#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

namespace {

constexpr double kLearningRate = 0.1; // the model file's SGD learning rate

struct Batch {
  fgc::rt::Tensor x, target;
};

Batch batch() {
  std::vector<float> x = {0.5f, -1.0f, 0.25f, 1.5f, 0.75f, -0.5f, -0.2f, 0.1f, 0.9f};
  std::vector<float> t = {0.3f, -0.7f, 1.1f, 0.2f, -0.4f, 0.6f};
  return {fgc::rt::Tensor::fromFloats({3, 3}, x.data()),
          fgc::rt::Tensor::fromFloats({3, 2}, t.data())};
}

int weightIndex(const std::string &name) {
  for (int i = 0; i < generated::Model::numWeights(); ++i)
    if (generated::Model::weightName(i) == name)
      return i;
  FAIL("no weight " << name);
  return -1;
}

size_t sizeOf(int i) {
  size_t n = 1;
  for (int64_t d : generated::Model::weightShape(i))
    n *= size_t(d);
  return n;
}

} // namespace

TEST_CASE("an output without a loss takes no target and gets no training", "[training]") {
  // Logs: the total loss and b's (Keras names per-output losses when a model has several
  // outputs), and b's metric; nothing for a.
  CHECK(generated::Model().logNames() ==
        std::vector<std::string>{"loss", "b_loss", "b_mae"});

  Batch d = batch();
  generated::Model model;
  std::vector<std::vector<float>> before;
  for (int i = 0; i < generated::Model::numWeights(); ++i)
    before.emplace_back(model.weightData(i), model.weightData(i) + sizeOf(i));

  std::vector<double> logs(model.logNames().size());
  model.trainStep(&d.x, &d.target, logs.data()); // one target: b's
  CHECK(logs[0] == logs[1]);

  // a's kernel and bias are untouched; everything b's loss reaches moved.
  for (const char *name : {"a/kernel", "a/bias"}) {
    int i = weightIndex(name);
    INFO(name);
    CHECK(std::vector<float>(model.weightData(i), model.weightData(i) + sizeOf(i)) ==
          before[size_t(i)]);
  }
  for (const char *name : {"b/kernel", "b/bias", "shared/kernel", "shared/bias"}) {
    int i = weightIndex(name);
    INFO(name);
    CHECK(std::vector<float>(model.weightData(i), model.weightData(i) + sizeOf(i)) !=
          before[size_t(i)]);
  }

  // The gradient SGD applied, g = (before - after) / lr, against central differences of the
  // loss that testStep computes (the inference path). The probe's weights are made writable by
  // a step with learning rate 0, which copies them into memory the model owns and leaves them
  // unchanged. h = 1e-2: the truncation error (h^2 / 6 times the third derivative, with tanh in
  // the path) stays below 1e-5 here, and float32 rounding of a loss near 1 adds about
  // 1e-7 / h = 1e-5; the tolerance 1e-4 + 1e-3 |g| covers both with room.
  generated::Model probe;
  probe.setLearningRate(0.0);
  std::vector<double> probeLogs(probe.logNames().size());
  probe.trainStep(&d.x, &d.target, probeLogs.data());
  auto loss = [&] {
    probe.testStep(&d.x, &d.target, probeLogs.data());
    return probeLogs[0];
  };
  const double h = 1e-2;
  int checked = 0;
  for (const char *name : {"b/kernel", "b/bias", "shared/kernel", "shared/bias", "a/kernel"}) {
    int i = weightIndex(name);
    float *w = const_cast<float *>(probe.weightData(i));
    for (size_t k = 0; k < sizeOf(i); ++k) {
      float saved = w[k];
      w[k] = saved + float(h);
      double up = loss();
      w[k] = saved - float(h);
      double down = loss();
      w[k] = saved;
      double fd = (up - down) / (double(saved + float(h)) - double(saved - float(h)));
      double g = (double(before[size_t(i)][k]) - double(model.weightData(i)[k])) / kLearningRate;
      INFO(name << "[" << k << "]: update gives " << g << ", finite differences " << fd);
      CHECK(std::fabs(g - fd) <= 1e-4 + 1e-3 * std::fabs(g));
      ++checked;
    }
  }
  CHECK(checked == 8 + 2 + 12 + 4 + 8); // b, shared, a's kernel
}
