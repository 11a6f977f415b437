/* The fgc runtime's training C ABI: losses, metrics, optimizers, gradient
 * clipping and learning-rate schedules, with tf.keras 2.x semantics (names,
 * defaults, formulas). Generated training code (compile/fit/evaluate) calls
 * these; layer gradients live in grad.h.
 *
 * Conventions are those of kernels.h: int status returns (FGC_OK or an
 * FGC_ERR_* code with fgc_last_error() describing the failure), argument
 * checks before anything is written, no allocation, float32 tensors in C
 * order, results bit-identical for any thread count. Valid C99 and C++17.
 *
 * Shapes. A loss or metric sees y_pred as (rows, cols): the model output with
 * all leading axes folded into rows and the last axis as cols (classes for the
 * crossentropies). Keras reduces each loss over the last axis to one value per
 * row and then takes the mean over all rows ("sum_over_batch_size"), so a
 * (batch, time, classes) output has rows = batch * time.
 *
 * Losses write the mean loss to *loss (double) and, when dy_pred is not NULL,
 * dy_pred = scale * dLoss/dy_pred (rows, cols) float32, where scale is the
 * loss weight of compile(loss_weights=...). sample_weight (rows) may be NULL
 * (all ones); with it the loss is sum(w_r * loss_r) / rows, as Keras's
 * sum_over_batch_size. Per-row losses are computed in double from the float32
 * inputs and summed in row order.
 *
 * Keras note for code generators: when y_pred comes straight out of a softmax
 * (or sigmoid) activation, tf.keras 2.x does NOT use the probabilities: it
 * takes the cached pre-activation logits and computes the loss from_logits
 * (no clipping). To match fit() exactly, pass the logits with from_logits = 1
 * and skip the activation's backward pass.
 */
#ifndef FGC_RUNTIME_OPTIM_H
#define FGC_RUNTIME_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "fgc/runtime/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- losses */

/* Keras's backend epsilon (1e-7), the clipping bound for probabilities. */
#define FGC_LOSS_EPSILON 1e-7f

/* SparseCategoricalCrossentropy. labels (rows) int32 in [0, cols), else
 * FGC_ERR_OUT_OF_RANGE naming the label and row. from_logits: loss =
 * logsumexp(x) - x[label] (stable), gradient softmax(x) - onehot.
 * Probabilities (tf.keras 2.x backend): c = clip(p, 1e-7, 1 - 1e-7), then
 * loss = -log(c[label] / sum(c)) (TF takes log(c) as logits, so the clipped
 * values are renormalised by their sum); the gradient is zero where p lies
 * outside the clip range (tf.clip_by_value's gradient). */
int fgc_loss_sparse_categorical_crossentropy(const int32_t *labels, const float *y_pred,
                                             const float *sample_weight, int64_t rows,
                                             int64_t cols, int from_logits, float scale,
                                             double *loss, float *dy_pred);
/* The same with float labels (Keras accepts them): each must hold a whole
 * number in [0, cols), else FGC_ERR_OUT_OF_RANGE naming the value and row. */
int fgc_loss_sparse_categorical_crossentropy_f32(const float *labels, const float *y_pred,
                                                 const float *sample_weight, int64_t rows,
                                                 int64_t cols, int from_logits, float scale,
                                                 double *loss, float *dy_pred);

/* CategoricalCrossentropy, y_true (rows, cols) one-hot or soft targets.
 * from_logits: loss = -sum(t * log_softmax(x)). Probabilities (tf.keras 2.x):
 * q = p / sum(p), c = clip(q, 1e-7, 1 - 1e-7), loss = -sum(t * log c); the
 * gradient flows through the normalisation and is zero where q is clipped. */
int fgc_loss_categorical_crossentropy(const float *y_true, const float *y_pred,
                                      const float *sample_weight, int64_t rows, int64_t cols,
                                      int from_logits, float scale, double *loss, float *dy_pred);

/* BinaryCrossentropy, y_true (rows, cols). Elementwise, then the mean over
 * cols, then over rows. from_logits: max(x, 0) - x z + log(1 + exp(-|x|)).
 * Probabilities: c = clip(p, 1e-7, 1 - 1e-7),
 * -(z log(c + 1e-7) + (1 - z) log(1 - c + 1e-7)); zero gradient where p is
 * clipped. */
int fgc_loss_binary_crossentropy(const float *y_true, const float *y_pred,
                                 const float *sample_weight, int64_t rows, int64_t cols,
                                 int from_logits, float scale, double *loss, float *dy_pred);

/* MeanSquaredError: mean over cols of (p - t)^2, then over rows. */
int fgc_loss_mean_squared_error(const float *y_true, const float *y_pred,
                                const float *sample_weight, int64_t rows, int64_t cols,
                                float scale, double *loss, float *dy_pred);
/* MeanAbsoluteError: mean over cols of |p - t|, then over rows; the gradient
 * uses sign(p - t) with sign(0) = 0 (as TF's). */
int fgc_loss_mean_absolute_error(const float *y_true, const float *y_pred,
                                 const float *sample_weight, int64_t rows, int64_t cols,
                                 float scale, double *loss, float *dy_pred);
/* Huber (Keras default delta = 1.0; delta must be > 0): with e = p - t,
 * 0.5 e^2 where |e| <= delta, else delta |e| - 0.5 delta^2; mean over cols,
 * then over rows. */
int fgc_loss_huber(const float *y_true, const float *y_pred, const float *sample_weight,
                   int64_t rows, int64_t cols, float delta, float scale, double *loss,
                   float *dy_pred);

/* ---------------------------------------------------------------- metrics */

/* Counters a caller sums over an epoch (start them at 0; every call ADDS to
 * them). Argmax ties go to the first index, as tf.argmax. */

/* sparse_categorical_accuracy: adds to *correct the rows whose argmax equals
 * the label (any label value is allowed; one out of range never matches). The
 * metric is correct / rows seen. */
int fgc_metric_sparse_categorical_accuracy(const int32_t *labels, const float *y_pred,
                                           int64_t rows, int64_t cols, int64_t *correct);
/* The same with float labels, compared as Keras does (float(argmax) == label). */
int fgc_metric_sparse_categorical_accuracy_f32(const float *labels, const float *y_pred,
                                               int64_t rows, int64_t cols, int64_t *correct);
/* categorical_accuracy: rows where argmax(y_pred) == argmax(y_true). */
int fgc_metric_categorical_accuracy(const float *y_true, const float *y_pred, int64_t rows,
                                    int64_t cols, int64_t *correct);
/* binary_accuracy: adds the number of elements where
 * float(y_pred > threshold) == y_true (Keras threshold 0.5, applied to whatever
 * the output is). The metric is correct / (rows * cols). */
int fgc_metric_binary_accuracy(const float *y_true, const float *y_pred, int64_t rows,
                               int64_t cols, float threshold, int64_t *correct);
/* mean_absolute_error / mean_squared_error metrics: adds to *sum the per-row
 * means over cols (in double, row order); the metric is sum / rows seen. */
int fgc_metric_mean_absolute_error(const float *y_true, const float *y_pred, int64_t rows,
                                   int64_t cols, double *sum);
int fgc_metric_mean_squared_error(const float *y_true, const float *y_pred, int64_t rows,
                                  int64_t cols, double *sum);

/* ---------------------------------------------------------------- optimizers */

/* One call updates one parameter tensor w (n floats) in place from its
 * gradient g. Slot buffers (n floats each) belong to the caller, start at zero
 * (except Adagrad's accumulator: fgc_adagrad_init) and must not alias w or g.
 * Scalar coefficients are computed in double and rounded to float once; the
 * elementwise arithmetic is float32 in the order written below (the order of
 * TF's training kernels). Elementwise work is split across threads without
 * changing any result. Keras's schedule: the learning rate of an update is
 * schedule(iterations) with iterations counted from 0 before the update, and
 * Adam's step t = iterations + 1. */

/* SGD (Keras: learning_rate 0.01, momentum 0, nesterov false).
 * momentum == 0: w -= lr g (velocity may be NULL).
 * momentum > 0:  v = momentum v - lr g; then w += v, or with nesterov
 *                w += momentum v - lr g (v already updated).
 * Slots: velocity (n). */
int fgc_sgd_update(float *w, const float *g, float *velocity, int64_t n, float learning_rate,
                   float momentum, int nesterov);

/* Where RMSprop's epsilon goes. */
typedef enum fgc_rmsprop_variant {
  /* tf.keras 2.0-2.10 (optimizer_v2.RMSprop): with momentum == 0 the update is
   * Python ops with epsilon OUTSIDE the root, w -= lr g / (sqrt(ms) + eps);
   * with momentum > 0 it is TF's ApplyRMSProp kernel, epsilon INSIDE:
   * mom = momentum mom + lr g / sqrt(ms + eps); w -= mom. */
  FGC_RMSPROP_TF2 = 0,
  /* Keras >= 2.11 and Keras 3: epsilon always inside the root. */
  FGC_RMSPROP_KERAS3 = 1,
  FGC_RMSPROP_FORCE_INT32_ = 0x7fffffff
} fgc_rmsprop_variant;

/* RMSprop (Keras: lr 1e-3, rho 0.9, momentum 0, epsilon 1e-7, centered false).
 * ms = rho ms + (1 - rho) g^2; centered: mg = rho mg + (1 - rho) g,
 * d = ms - mg^2, else d = ms (TF2 with momentum > 0 runs TF's kernel, which
 * computes these as ms += (g^2 - ms) (1 - rho) and mg += (g - mg) (1 - rho))
 * then, per `variant` (see fgc_rmsprop_variant), with eps outside:
 *   w -= lr g / (sqrt(d) + eps)
 * or inside: u = lr g / sqrt(d + eps); momentum > 0: mom = momentum mom + u,
 *   w -= mom; else w -= u.
 * Slots: ms (n); mom (n, may be NULL when momentum == 0); mg (n, may be NULL
 * unless centered). */
int fgc_rmsprop_update(float *w, const float *g, float *ms, float *mom, float *mg, int64_t n,
                       float learning_rate, float rho, float momentum, float epsilon,
                       int centered, fgc_rmsprop_variant variant);

/* Adam (Keras: lr 1e-3, beta_1 0.9, beta_2 0.999, epsilon 1e-7, amsgrad false),
 * step t >= 1 (the update's 1-based count):
 * alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)   (double, rounded to float)
 * m += (g - m) (1 - beta_1); v += (g^2 - v) (1 - beta_2)
 * amsgrad: vhat = max(vhat, v), used instead of v below
 * w -= alpha m / (sqrt(v) + eps)
 * (TF's form: epsilon is added to sqrt(v) unscaled. torch.optim.Adam divides by
 * sqrt(v_hat_corrected) + eps, i.e. it uses eps * sqrt(1 - beta_2^t) in TF
 * terms, a slightly larger epsilon early in training.)
 * Slots: m (n), v (n), vhat (n, may be NULL unless amsgrad). */
int fgc_adam_update(float *w, const float *g, float *m, float *v, float *vhat, int64_t n,
                    int64_t t, float learning_rate, float beta_1, float beta_2, float epsilon,
                    int amsgrad);

/* AdamW (Keras >= 2.11: weight_decay 0.004, otherwise Adam's defaults):
 * decoupled decay first, w -= w (lr weight_decay) (lr weight_decay in double,
 * rounded to float), then exactly fgc_adam_update. Variables Keras excludes
 * from decay are updated with weight_decay = 0. */
int fgc_adamw_update(float *w, const float *g, float *m, float *v, float *vhat, int64_t n,
                     int64_t t, float learning_rate, float weight_decay, float beta_1,
                     float beta_2, float epsilon, int amsgrad);

/* Fills Adagrad's accumulator with initial_accumulator_value (Keras 0.1, must
 * be >= 0) before the first update. */
int fgc_adagrad_init(float *accumulator, int64_t n, float initial_accumulator_value);
/* Adagrad (Keras: lr 1e-3, initial_accumulator_value 0.1, epsilon 1e-7), TF's
 * ApplyAdagradV2: acc += g^2; w -= lr g / (sqrt(acc) + eps). Slots: acc (n). */
int fgc_adagrad_update(float *w, const float *g, float *accumulator, int64_t n,
                       float learning_rate, float epsilon);

/* ---------------------------------------------------------------- clipping */

/* sqrt of the sum of squares of every element of `count` tensors (tensors[i]
 * holds sizes[i] >= 0 floats), accumulated in double in tensor then element
 * order. A NULL tensor with size 0 is allowed. */
int fgc_global_norm(const float *const *tensors, const int64_t *sizes, int count, double *norm);
/* Keras global_clipnorm (tf.clip_by_global_norm): when the global norm exceeds
 * clip_norm (> 0), scales every tensor by clip_norm / norm (ratio in double,
 * rounded to float); otherwise leaves them unchanged. A non-finite norm makes
 * every element NaN, as TF does. *norm_out (may be NULL) receives the norm
 * before clipping. */
int fgc_clip_by_global_norm(float *const *tensors, const int64_t *sizes, int count,
                            float clip_norm, double *norm_out);
/* Keras clipnorm (tf.clip_by_norm on each gradient separately): scales the n
 * floats by clip_norm / norm when their own L2 norm exceeds clip_norm (> 0). */
int fgc_clip_by_norm(float *g, int64_t n, float clip_norm);
/* Keras clipvalue: clamps every element to [-clip_value, clip_value]
 * (clip_value >= 0; NaN stays NaN). */
int fgc_clip_by_value(float *g, int64_t n, float clip_value);

/* ---------------------------------------------------------------- schedules */

/* Learning rates as pure functions of the optimizer step (iterations, from 0),
 * in double, exactly as keras.optimizers.schedules define them. */

/* ExponentialDecay: p = step / decay_steps (floored when staircase);
 * lr = initial * decay_rate^p. decay_steps must be > 0, step >= 0. */
int fgc_lr_exponential_decay(double initial_learning_rate, double decay_steps, double decay_rate,
                             int staircase, int64_t step, double *lr);
/* CosineDecay (no warmup): s = min(step, decay_steps);
 * lr = initial * ((1 - alpha) * 0.5 (1 + cos(pi s / decay_steps)) + alpha). */
int fgc_lr_cosine_decay(double initial_learning_rate, double decay_steps, double alpha,
                        int64_t step, double *lr);
/* PiecewiseConstantDecay: values has count + 1 entries for `count` increasing
 * boundaries; lr = values[0] while step <= boundaries[0], values[i] while
 * boundaries[i-1] < step <= boundaries[i], values[count] after the last. */
int fgc_lr_piecewise_constant(const int64_t *boundaries, const double *values, int count,
                              int64_t step, double *lr);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FGC_RUNTIME_OPTIM_H */
