// Tests of the losses and metrics in fgc/runtime/optim.h: every loss, with and without logits and
// sample weights, against torch autograd (float64, Keras clipping written out), accuracy counts
// against NumPy, and the error paths (bad shapes, out-of-range and non-integer labels) with
// outputs left untouched.
#include "optim_fixture.h"

#include "fgc/runtime/optim.h"


using namespace fgc::test;

namespace {

int runLoss(const Fixture &c, const float *yPred, const float *weights, int64_t rows, int64_t cols,
            double *loss, float *dy) {
  std::string kind = c.param("kind");
  int logits = static_cast<int>(c.intParam("from_logits"));
  float scale = static_cast<float>(c.floatParam("scale"));
  if (kind == "sparse") {
    fgc::runtime::NpyArray labels = c.array("y_true");
    return fgc_loss_sparse_categorical_crossentropy(labels.data<int32_t>(), yPred, weights, rows,
                                                    cols, logits, scale, loss, dy);
  }
  std::vector<float> t = c.floats("y_true");
  if (kind == "categorical")
    return fgc_loss_categorical_crossentropy(t.data(), yPred, weights, rows, cols, logits, scale,
                                             loss, dy);
  if (kind == "binary")
    return fgc_loss_binary_crossentropy(t.data(), yPred, weights, rows, cols, logits, scale, loss,
                                        dy);
  if (kind == "mse")
    return fgc_loss_mean_squared_error(t.data(), yPred, weights, rows, cols, scale, loss, dy);
  if (kind == "mae")
    return fgc_loss_mean_absolute_error(t.data(), yPred, weights, rows, cols, scale, loss, dy);
  if (kind == "huber")
    return fgc_loss_huber(t.data(), yPred, weights, rows, cols,
                          static_cast<float>(c.floatParam("delta")), scale, loss, dy);
  FAIL("unknown loss kind " << kind);
  return -1;
}

} // namespace

TEST_CASE("losses match the torch autograd reference", "[optim][loss]") {
  std::vector<std::string> names;
  for (const char *prefix : {"sparse", "categorical", "binary"})
    for (const char *mode : {"logits", "probs"})
      for (const char *weighted : {"", "_weighted"})
        names.push_back(std::string("loss_") + prefix + "_" + mode + weighted);
  for (const char *name : {"loss_mse", "loss_mse_weighted", "loss_mae", "loss_mae_weighted",
                           "loss_huber", "loss_huber_weighted", "loss_huber_delta"})
    names.push_back(name);
  for (const std::string &name : names) {
    Fixture c = optimCase(name);
    std::vector<float> yPred = c.floats("y_pred");
    std::vector<int64_t> shape = c.shape("y_pred");
    std::vector<float> weights = c.has("sample_weight") ? c.floats("sample_weight")
                                                        : std::vector<float>();
    const float *w = weights.empty() ? nullptr : weights.data();
    double want = *c.array("loss").data<double>();
    INFO("case " << name);

    double loss = -1;
    std::vector<float> dy = sentinel(shape[0] * shape[1]);
    REQUIRE(runLoss(c, yPred.data(), w, shape[0], shape[1], &loss, dy.data()) == FGC_OK);
    CHECK(std::fabs(loss - want) <= 1e-6 * std::max(1.0, std::fabs(want)));
    checkClose(dy, c, "dy_pred");

    double lossOnly = -1;
    REQUIRE(runLoss(c, yPred.data(), w, shape[0], shape[1], &lossOnly, nullptr) == FGC_OK);
    CHECK(lossOnly == loss);
  }
}

TEST_CASE("sparse crossentropy accepts float labels holding whole numbers", "[optim][loss]") {
  Fixture c = optimCase("loss_sparse_logits_weighted");
  std::vector<float> yPred = c.floats("y_pred");
  std::vector<float> weights = c.floats("sample_weight");
  fgc::runtime::NpyArray labels = c.array("y_true");
  std::vector<int64_t> shape = c.shape("y_pred");
  std::vector<float> floatLabels(labels.data<int32_t>(), labels.data<int32_t>() + shape[0]);
  double a = 0, b = 0;
  std::vector<float> da(yPred.size()), db(yPred.size());
  REQUIRE(fgc_loss_sparse_categorical_crossentropy(labels.data<int32_t>(), yPred.data(),
                                                   weights.data(), shape[0], shape[1], 1, 0.5f,
                                                   &a, da.data()) == FGC_OK);
  REQUIRE(fgc_loss_sparse_categorical_crossentropy_f32(floatLabels.data(), yPred.data(),
                                                       weights.data(), shape[0], shape[1], 1,
                                                       0.5f, &b, db.data()) == FGC_OK);
  CHECK(a == b);
  CHECK(da == db);
}

TEST_CASE("bad labels are reported by row and leave outputs untouched", "[optim][loss]") {
  const float yPred[6] = {0.1f, 0.2f, 0.7f, 0.3f, 0.3f, 0.4f};
  double loss = 42;
  float dy[6] = {9, 9, 9, 9, 9, 9};
  const int32_t bad[2] = {2, 3};
  CHECK(fgc_loss_sparse_categorical_crossentropy(bad, yPred, nullptr, 2, 3, 0, 1.0f, &loss, dy) ==
        FGC_ERR_OUT_OF_RANGE);
  std::string message = fgc_last_error();
  CHECK(message.find("label 3 in row 1") != std::string::npos);
  const int32_t negative[2] = {-1, 0};
  CHECK(fgc_loss_sparse_categorical_crossentropy(negative, yPred, nullptr, 2, 3, 1, 1.0f, &loss,
                                                 dy) == FGC_ERR_OUT_OF_RANGE);
  CHECK(std::string(fgc_last_error()).find("label -1 in row 0") != std::string::npos);
  const float fractional[2] = {1.0f, 1.5f};
  CHECK(fgc_loss_sparse_categorical_crossentropy_f32(fractional, yPred, nullptr, 2, 3, 1, 1.0f,
                                                     &loss, dy) == FGC_ERR_OUT_OF_RANGE);
  CHECK(std::string(fgc_last_error()).find("label 1.5 in row 1") != std::string::npos);
  CHECK(loss == 42);
  for (float v : dy)
    CHECK(v == 9);
}

TEST_CASE("loss argument checks", "[optim][loss]") {
  const float a[4] = {0, 1, 0, 1};
  double loss = 0;
  CHECK(fgc_loss_mean_squared_error(a, a, nullptr, 0, 4, 1.0f, &loss, nullptr) ==
        FGC_ERR_INVALID_ARGUMENT);
  CHECK(std::string(fgc_last_error()).find("fgc_loss_mean_squared_error") != std::string::npos);
  CHECK(fgc_loss_binary_crossentropy(nullptr, a, nullptr, 1, 4, 0, 1.0f, &loss, nullptr) ==
        FGC_ERR_INVALID_ARGUMENT);
  CHECK(fgc_loss_categorical_crossentropy(a, a, nullptr, 1, 4, 0, 1.0f, nullptr, nullptr) ==
        FGC_ERR_INVALID_ARGUMENT);
  CHECK(fgc_loss_huber(a, a, nullptr, 1, 4, 0.0f, 1.0f, &loss, nullptr) ==
        FGC_ERR_INVALID_ARGUMENT);
  CHECK(std::string(fgc_last_error()).find("delta") != std::string::npos);
}

TEST_CASE("accuracy counters match NumPy, ties going to the first index", "[optim][metric]") {
  Fixture c = optimCase("metrics");
  std::vector<int64_t> shape = c.shape("y_pred");
  int64_t rows = shape[0], cols = shape[1];
  std::vector<float> yPred = c.floats("y_pred");
  fgc::runtime::NpyArray labels = c.array("labels");
  std::vector<float> onehot = c.floats("onehot");

  int64_t correct = 0;
  REQUIRE(fgc_metric_sparse_categorical_accuracy(labels.data<int32_t>(), yPred.data(), rows, cols,
                                                 &correct) == FGC_OK);
  CHECK(correct == c.intParam("sparse_correct"));
  // Counters accumulate: a second half-batch call adds to the first.
  correct = 0;
  REQUIRE(fgc_metric_sparse_categorical_accuracy(labels.data<int32_t>(), yPred.data(), rows / 2,
                                                 cols, &correct) == FGC_OK);
  REQUIRE(fgc_metric_sparse_categorical_accuracy(labels.data<int32_t>() + rows / 2,
                                                 yPred.data() + rows / 2 * cols, rows - rows / 2,
                                                 cols, &correct) == FGC_OK);
  CHECK(correct == c.intParam("sparse_correct"));

  std::vector<float> floatLabels(labels.data<int32_t>(), labels.data<int32_t>() + rows);
  correct = 0;
  REQUIRE(fgc_metric_sparse_categorical_accuracy_f32(floatLabels.data(), yPred.data(), rows, cols,
                                                     &correct) == FGC_OK);
  CHECK(correct == c.intParam("sparse_correct"));

  correct = 0;
  REQUIRE(fgc_metric_categorical_accuracy(onehot.data(), yPred.data(), rows, cols, &correct) ==
          FGC_OK);
  CHECK(correct == c.intParam("categorical_correct"));

  std::vector<float> probs = c.floats("probs"), binary = c.floats("binary");
  correct = 0;
  REQUIRE(fgc_metric_binary_accuracy(binary.data(), probs.data(), rows, cols, 0.5f, &correct) ==
          FGC_OK);
  CHECK(correct == c.intParam("binary_correct"));

  std::vector<float> target = c.floats("target");
  double mae = 0, mse = 0;
  REQUIRE(fgc_metric_mean_absolute_error(target.data(), probs.data(), rows, cols, &mae) == FGC_OK);
  REQUIRE(fgc_metric_mean_squared_error(target.data(), probs.data(), rows, cols, &mse) == FGC_OK);
  CHECK(mae == Approx(c.floatParam("mae_sum")).epsilon(1e-12));
  CHECK(mse == Approx(c.floatParam("mse_sum")).epsilon(1e-12));
}

TEST_CASE("accuracy on a hand-made batch", "[optim][metric]") {
  // Row 0 ties between classes 1 and 2 (first wins); row 1's label is out of range.
  const float yPred[6] = {0.0f, 0.5f, 0.5f, 0.9f, 0.05f, 0.05f};
  const int32_t labels[2] = {1, 7};
  int64_t correct = 0;
  REQUIRE(fgc_metric_sparse_categorical_accuracy(labels, yPred, 2, 3, &correct) == FGC_OK);
  CHECK(correct == 1);
  const float truth[2] = {1.0f, 0.0f}, out[2] = {0.5f, 0.2f};
  correct = 0;
  REQUIRE(fgc_metric_binary_accuracy(truth, out, 1, 2, 0.5f, &correct) == FGC_OK);
  CHECK(correct == 1);
  CHECK(fgc_metric_binary_accuracy(truth, out, 1, 2, 0.5f, nullptr) == FGC_ERR_INVALID_ARGUMENT);
}
