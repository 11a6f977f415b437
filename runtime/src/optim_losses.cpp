// Losses and metrics of the training C ABI (fgc/runtime/optim.h) with tf.keras 2.x semantics:
// each loss reduces a row to one value (over the last axis), then takes the weighted mean over
// rows, and optionally writes the scaled gradient with respect to y_pred. Everything runs on the
// calling thread in row order, so results never depend on the thread count. Data-dependent
// checks (sparse labels) run before any output is written.
#include "fgc/runtime/optim.h"

#include "common.h"

#include <cmath>
#include <cstdint>
#include <type_traits>

using namespace fgc::runtime::detail;

namespace {

// The clip bounds as tf.keras uses them in float32, widened exactly to double.
const double ClipLow = static_cast<double>(FGC_LOSS_EPSILON);
const double ClipHigh = static_cast<double>(1.0f - FGC_LOSS_EPSILON);
const double Epsilon = static_cast<double>(FGC_LOSS_EPSILON);

double clip(double p) { return p < ClipLow ? ClipLow : (p > ClipHigh ? ClipHigh : p); }
// tf.clip_by_value passes the gradient where the value lies inside the range, bounds included.
bool insideClip(double p) { return p >= ClipLow && p <= ClipHigh; }

int checkShape(const char *name, int64_t rows, int64_t cols) {
  if (rows < 1 || cols < 1)
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: rows and cols must be >= 1, got %lld x %lld", name,
                static_cast<long long>(rows), static_cast<long long>(cols));
  return FGC_OK;
}

double rowWeight(const float *sampleWeight, int64_t r) {
  return sampleWeight ? static_cast<double>(sampleWeight[r]) : 1.0;
}

// The max and log(sum(exp(x - max))) of one row of logits.
void logSumExp(const float *x, int64_t cols, double &max, double &logSum) {
  max = x[0];
  for (int64_t i = 1; i < cols; ++i)
    max = std::fmax(max, static_cast<double>(x[i]));
  double sum = 0;
  for (int64_t i = 0; i < cols; ++i)
    sum += std::exp(x[i] - max);
  logSum = std::log(sum);
}

// Checks every label (int32 or float holding a whole number) and converts it to an index.
template <typename Label>
int labelIndex(const char *name, const Label *labels, int64_t r, int64_t cols, int64_t &index) {
  if constexpr (std::is_same_v<Label, float>) {
    double value = labels[r];
    if (!(value >= 0 && value < static_cast<double>(cols)) || value != std::floor(value))
      return fail(FGC_ERR_OUT_OF_RANGE,
                  "%s: label %g in row %lld is not a class index in [0, %lld)", name, value,
                  static_cast<long long>(r), static_cast<long long>(cols));
    index = static_cast<int64_t>(value);
  } else {
    int64_t value = labels[r];
    if (value < 0 || value >= cols)
      return fail(FGC_ERR_OUT_OF_RANGE, "%s: label %lld in row %lld is out of range [0, %lld)",
                  name, static_cast<long long>(value), static_cast<long long>(r),
                  static_cast<long long>(cols));
    index = value;
  }
  return FGC_OK;
}

template <typename Label>
int sparseCrossentropy(const char *name, const Label *labels, const float *yPred,
                       const float *sampleWeight, int64_t rows, int64_t cols, int fromLogits,
                       float scale, double *loss, float *dyPred) {
  FGC_CHECK_PTR(name, labels);
  FGC_CHECK_PTR(name, yPred);
  FGC_CHECK_PTR(name, loss);
  if (int status = checkShape(name, rows, cols))
    return status;
  for (int64_t r = 0; r < rows; ++r) {
    int64_t index;
    if (int status = labelIndex(name, labels, r, cols, index))
      return status;
  }
  double total = 0;
  for (int64_t r = 0; r < rows; ++r) {
    int64_t label = 0;
    labelIndex(name, labels, r, cols, label);
    const float *x = yPred + r * cols;
    double weight = rowWeight(sampleWeight, r);
    double factor = static_cast<double>(scale) * weight / static_cast<double>(rows);
    float *dy = dyPred ? dyPred + r * cols : nullptr;
    if (fromLogits) {
      double max, logSum;
      logSumExp(x, cols, max, logSum);
      total += weight * (max + logSum - x[label]);
      if (dy)
        for (int64_t i = 0; i < cols; ++i) {
          double softmax = std::exp(x[i] - max - logSum);
          dy[i] = static_cast<float>(factor * (softmax - (i == label ? 1.0 : 0.0)));
        }
      continue;
    }
    // TF clips the probabilities, takes their log as logits and applies a softmax
    // cross-entropy: -log(c[label]) + log(sum(c)).
    double sum = 0;
    for (int64_t i = 0; i < cols; ++i)
      sum += clip(x[i]);
    double cLabel = clip(x[label]);
    total += weight * (std::log(sum) - std::log(cLabel));
    if (dy)
      for (int64_t i = 0; i < cols; ++i) {
        double grad = 1.0 / sum - (i == label ? 1.0 / cLabel : 0.0);
        dy[i] = insideClip(x[i]) ? static_cast<float>(factor * grad) : 0.0f;
      }
  }
  *loss = total / static_cast<double>(rows);
  return FGC_OK;
}

// A loss that is the mean over cols of an elementwise term: term(t, p, &dTerm/dp).
template <typename Term>
int elementwiseLoss(const char *name, const float *yTrue, const float *yPred,
                    const float *sampleWeight, int64_t rows, int64_t cols, float scale,
                    double *loss, float *dyPred, Term term) {
  FGC_CHECK_PTR(name, yTrue);
  FGC_CHECK_PTR(name, yPred);
  FGC_CHECK_PTR(name, loss);
  if (int status = checkShape(name, rows, cols))
    return status;
  double total = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float *t = yTrue + r * cols;
    const float *p = yPred + r * cols;
    double weight = rowWeight(sampleWeight, r);
    double factor = static_cast<double>(scale) * weight /
                    (static_cast<double>(rows) * static_cast<double>(cols));
    double rowSum = 0;
    for (int64_t i = 0; i < cols; ++i) {
      double grad;
      rowSum += term(static_cast<double>(t[i]), static_cast<double>(p[i]), grad);
      if (dyPred)
        dyPred[r * cols + i] = static_cast<float>(factor * grad);
    }
    total += weight * rowSum / static_cast<double>(cols);
  }
  *loss = total / static_cast<double>(rows);
  return FGC_OK;
}

double sign(double x) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0); }

double sigmoid(double x) {
  if (x >= 0)
    return 1.0 / (1.0 + std::exp(-x));
  double e = std::exp(x);
  return e / (1.0 + e);
}

// Index of the largest element, the first one on ties (as tf.argmax).
int64_t argmax(const float *x, int64_t cols) {
  int64_t best = 0;
  for (int64_t i = 1; i < cols; ++i)
    if (x[i] > x[best])
      best = i;
  return best;
}

template <typename Label>
int sparseAccuracy(const char *name, const Label *labels, const float *yPred, int64_t rows,
                   int64_t cols, int64_t *correct) {
  FGC_CHECK_PTR(name, labels);
  FGC_CHECK_PTR(name, yPred);
  FGC_CHECK_PTR(name, correct);
  if (int status = checkShape(name, rows, cols))
    return status;
  int64_t count = 0;
  for (int64_t r = 0; r < rows; ++r) {
    int64_t best = argmax(yPred + r * cols, cols);
    if constexpr (std::is_same_v<Label, float>)
      count += static_cast<float>(best) == labels[r];
    else
      count += best == static_cast<int64_t>(labels[r]);
  }
  *correct += count;
  return FGC_OK;
}

template <typename Term>
int meanMetric(const char *name, const float *yTrue, const float *yPred, int64_t rows,
               int64_t cols, double *sum, Term term) {
  FGC_CHECK_PTR(name, yTrue);
  FGC_CHECK_PTR(name, yPred);
  FGC_CHECK_PTR(name, sum);
  if (int status = checkShape(name, rows, cols))
    return status;
  double total = 0;
  for (int64_t r = 0; r < rows; ++r) {
    double rowSum = 0;
    for (int64_t i = 0; i < cols; ++i)
      rowSum += term(static_cast<double>(yPred[r * cols + i]) - yTrue[r * cols + i]);
    total += rowSum / static_cast<double>(cols);
  }
  *sum += total;
  return FGC_OK;
}

} // namespace

extern "C" {

int fgc_loss_sparse_categorical_crossentropy(const int32_t *labels, const float *y_pred,
                                             const float *sample_weight, int64_t rows,
                                             int64_t cols, int from_logits, float scale,
                                             double *loss, float *dy_pred) {
  return sparseCrossentropy("fgc_loss_sparse_categorical_crossentropy", labels, y_pred,
                            sample_weight, rows, cols, from_logits, scale, loss, dy_pred);
}

int fgc_loss_sparse_categorical_crossentropy_f32(const float *labels, const float *y_pred,
                                                 const float *sample_weight, int64_t rows,
                                                 int64_t cols, int from_logits, float scale,
                                                 double *loss, float *dy_pred) {
  return sparseCrossentropy("fgc_loss_sparse_categorical_crossentropy_f32", labels, y_pred,
                            sample_weight, rows, cols, from_logits, scale, loss, dy_pred);
}

int fgc_loss_categorical_crossentropy(const float *y_true, const float *y_pred,
                                      const float *sample_weight, int64_t rows, int64_t cols,
                                      int from_logits, float scale, double *loss,
                                      float *dy_pred) {
  const char *name = "fgc_loss_categorical_crossentropy";
  FGC_CHECK_PTR(name, y_true);
  FGC_CHECK_PTR(name, y_pred);
  FGC_CHECK_PTR(name, loss);
  if (int status = checkShape(name, rows, cols))
    return status;
  double total = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float *t = y_true + r * cols;
    const float *x = y_pred + r * cols;
    double weight = rowWeight(sample_weight, r);
    double factor = static_cast<double>(scale) * weight / static_cast<double>(rows);
    float *dy = dy_pred ? dy_pred + r * cols : nullptr;
    if (from_logits) {
      double max, logSum, targetSum = 0, rowLoss = 0;
      logSumExp(x, cols, max, logSum);
      for (int64_t i = 0; i < cols; ++i) {
        targetSum += t[i];
        rowLoss -= t[i] * (x[i] - max - logSum);
      }
      total += weight * rowLoss;
      if (dy)
        for (int64_t i = 0; i < cols; ++i)
          dy[i] = static_cast<float>(factor *
                                     (std::exp(x[i] - max - logSum) * targetSum - t[i]));
      continue;
    }
    double sum = 0;
    for (int64_t i = 0; i < cols; ++i)
      sum += x[i];
    // With q = p / sum(p) and G = dLoss/dq (zero where q is clipped), the gradient through the
    // normalisation is (G_j - sum_i G_i q_i) / sum(p); G_i q_i is -t_i where q_i is not clipped.
    double rowLoss = 0, dot = 0;
    for (int64_t i = 0; i < cols; ++i) {
      double q = x[i] / sum;
      rowLoss -= t[i] * std::log(clip(q));
      if (insideClip(q))
        dot -= t[i];
    }
    total += weight * rowLoss;
    if (dy)
      for (int64_t i = 0; i < cols; ++i) {
        double q = x[i] / sum;
        double g = insideClip(q) ? -t[i] / q : 0.0;
        dy[i] = static_cast<float>(factor * (g - dot) / sum);
      }
  }
  *loss = total / static_cast<double>(rows);
  return FGC_OK;
}

int fgc_loss_binary_crossentropy(const float *y_true, const float *y_pred,
                                 const float *sample_weight, int64_t rows, int64_t cols,
                                 int from_logits, float scale, double *loss, float *dy_pred) {
  const char *name = "fgc_loss_binary_crossentropy";
  if (from_logits)
    return elementwiseLoss(name, y_true, y_pred, sample_weight, rows, cols, scale, loss, dy_pred,
                           [](double z, double x, double &grad) {
                             grad = sigmoid(x) - z;
                             return std::fmax(x, 0.0) - x * z + std::log1p(std::exp(-std::fabs(x)));
                           });
  return elementwiseLoss(name, y_true, y_pred, sample_weight, rows, cols, scale, loss, dy_pred,
                         [](double z, double p, double &grad) {
                           double c = clip(p);
                           grad = insideClip(p) ? (1 - z) / (1 - c + Epsilon) - z / (c + Epsilon)
                                                : 0.0;
                           return -(z * std::log(c + Epsilon) + (1 - z) * std::log(1 - c + Epsilon));
                         });
}

int fgc_loss_mean_squared_error(const float *y_true, const float *y_pred,
                                const float *sample_weight, int64_t rows, int64_t cols,
                                float scale, double *loss, float *dy_pred) {
  return elementwiseLoss("fgc_loss_mean_squared_error", y_true, y_pred, sample_weight, rows, cols,
                         scale, loss, dy_pred, [](double t, double p, double &grad) {
                           grad = 2 * (p - t);
                           return (p - t) * (p - t);
                         });
}

int fgc_loss_mean_absolute_error(const float *y_true, const float *y_pred,
                                 const float *sample_weight, int64_t rows, int64_t cols,
                                 float scale, double *loss, float *dy_pred) {
  return elementwiseLoss("fgc_loss_mean_absolute_error", y_true, y_pred, sample_weight, rows,
                         cols, scale, loss, dy_pred, [](double t, double p, double &grad) {
                           grad = sign(p - t);
                           return std::fabs(p - t);
                         });
}

int fgc_loss_huber(const float *y_true, const float *y_pred, const float *sample_weight,
                   int64_t rows, int64_t cols, float delta, float scale, double *loss,
                   float *dy_pred) {
  if (!(delta > 0))
    return fail(FGC_ERR_INVALID_ARGUMENT, "fgc_loss_huber: delta must be > 0, got %g",
                static_cast<double>(delta));
  double d = delta;
  return elementwiseLoss("fgc_loss_huber", y_true, y_pred, sample_weight, rows, cols, scale, loss,
                         dy_pred, [d](double t, double p, double &grad) {
                           double e = p - t;
                           if (std::fabs(e) <= d) {
                             grad = e;
                             return 0.5 * e * e;
                           }
                           grad = d * sign(e);
                           return d * std::fabs(e) - 0.5 * d * d;
                         });
}

int fgc_metric_sparse_categorical_accuracy(const int32_t *labels, const float *y_pred,
                                           int64_t rows, int64_t cols, int64_t *correct) {
  return sparseAccuracy("fgc_metric_sparse_categorical_accuracy", labels, y_pred, rows, cols,
                        correct);
}

int fgc_metric_sparse_categorical_accuracy_f32(const float *labels, const float *y_pred,
                                               int64_t rows, int64_t cols, int64_t *correct) {
  return sparseAccuracy("fgc_metric_sparse_categorical_accuracy_f32", labels, y_pred, rows, cols,
                        correct);
}

int fgc_metric_categorical_accuracy(const float *y_true, const float *y_pred, int64_t rows,
                                    int64_t cols, int64_t *correct) {
  const char *name = "fgc_metric_categorical_accuracy";
  FGC_CHECK_PTR(name, y_true);
  FGC_CHECK_PTR(name, y_pred);
  FGC_CHECK_PTR(name, correct);
  if (int status = checkShape(name, rows, cols))
    return status;
  int64_t count = 0;
  for (int64_t r = 0; r < rows; ++r)
    count += argmax(y_pred + r * cols, cols) == argmax(y_true + r * cols, cols);
  *correct += count;
  return FGC_OK;
}

int fgc_metric_binary_accuracy(const float *y_true, const float *y_pred, int64_t rows,
                               int64_t cols, float threshold, int64_t *correct) {
  const char *name = "fgc_metric_binary_accuracy";
  FGC_CHECK_PTR(name, y_true);
  FGC_CHECK_PTR(name, y_pred);
  FGC_CHECK_PTR(name, correct);
  if (int status = checkShape(name, rows, cols))
    return status;
  int64_t count = 0;
  for (int64_t i = 0; i < rows * cols; ++i)
    count += (y_pred[i] > threshold ? 1.0f : 0.0f) == y_true[i];
  *correct += count;
  return FGC_OK;
}

int fgc_metric_mean_absolute_error(const float *y_true, const float *y_pred, int64_t rows,
                                   int64_t cols, double *sum) {
  return meanMetric("fgc_metric_mean_absolute_error", y_true, y_pred, rows, cols, sum,
                    [](double e) { return std::fabs(e); });
}

int fgc_metric_mean_squared_error(const float *y_true, const float *y_pred, int64_t rows,
                                  int64_t cols, double *sum) {
  return meanMetric("fgc_metric_mean_squared_error", y_true, y_pred, rows, cols, sum,
                    [](double e) { return e * e; });
}

} // extern "C"
