/* The fgc runtime's C ABI for training: backward (gradient) kernels of the
 * Keras layers in kernels.h, plus the forward variants that differ in training
 * (BatchNormalization with batch statistics, Dropout, an LSTM that keeps what
 * backprop needs). Code that fgc emits for training calls these functions.
 *
 * Everything in kernels.h's conventions holds here too (int status returns and
 * fgc_last_error(), C order, NHWC, Keras weight layouts, caller scratch, no
 * allocation, OpenMP threads, bit-identical results for any thread count).
 * Additionally:
 *  - A backward kernel takes the forward's parameters, the forward tensors it
 *    needs, `dy` (dLoss/dOutput) and writes the gradients. `dx` names the
 *    gradient of a layer input, `dkernel`, `dbias`, ... those of its weights.
 *  - `flags` is a bit set: FGC_GRAD_ACCUMULATE_INPUT adds into the input
 *    gradients instead of overwriting them (a tensor read by several layers);
 *    FGC_GRAD_ACCUMULATE_PARAMS adds into the weight gradients (a layer called
 *    several times). Without a bit the buffers are overwritten (their previous
 *    contents, even NaN, are ignored).
 *  - Gradient outputs may be NULL when not wanted: the input gradient of a
 *    model input, the weight gradients of a frozen layer. Inputs they would
 *    need may then be NULL as well.
 *  - Fused activations (Dense, Conv2D, Conv2DTranspose apply `activation` to
 *    their output): the backward applies the activation's derivative first,
 *    dz = dy * act'(.). It gets the forward output `y` and the pre-activation
 *    `z`. z is needed only when fgc_activation_needs_preactivation(act) is 1
 *    (GELU, SOFTPLUS, SWISH) and may be NULL otherwise; y is needed for every
 *    other kind except LINEAR (where both may be NULL). The derivatives from y:
 *      relu: y > 0 ? 1 : 0 (0 at 0, like TF and PyTorch)
 *      sigmoid: y (1 - y)          tanh: 1 - y^2
 *      elu: y > 0 ? 1 : y + 1      selu: y > 0 ? scale : y + scale alpha
 *      hard_sigmoid: 0 < y < 1 ? 0.2 : 0 (the kinks, measure zero, get 0)
 *      softmax (rows of the last axis): dx = y (dy - sum(dy y))
 *    and from z: gelu: Phi(z) + z phi(z); softplus: sigmoid(z);
 *    swish: s (1 + z (1 - s)) with s = sigmoid(z).
 */
#ifndef FGC_RUNTIME_GRAD_H
#define FGC_RUNTIME_GRAD_H

#include <stddef.h>
#include <stdint.h>

#include "fgc/runtime/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
  FGC_GRAD_ACCUMULATE_INPUT = 1, /* add into dx (and dh0/dc0 etc.) instead of overwriting */
  FGC_GRAD_ACCUMULATE_PARAMS = 2 /* add into dkernel, dbias, dgamma, dtable, ... */
};

/* ---------------------------------------------------------------- helpers */

/* y[i] += alpha * x[i] for i < n (n may be 0). x and y must not overlap unless equal. */
int fgc_scale_add(const float *x, float alpha, float *y, int64_t n);
/* fgc_fill (kernels.h) zeroes gradient buffers. */

/* 1 if the derivative of `act` needs the pre-activation z (GELU, SOFTPLUS,
 * SWISH), 0 if the output y (or nothing, for LINEAR) suffices, -1 if act is
 * not a valid activation. */
int fgc_activation_needs_preactivation(fgc_activation_kind act);

/* ---------------------------------------------------------------- activations */

/* dx = dy * act'(z) over a (rows, cols) array (SOFTMAX: per row). z and y as
 * described above. dx may be the same buffer as dy. Flag: ACCUMULATE_INPUT. */
int fgc_activation_backward(fgc_activation_kind act, const float *z, const float *y,
                            const float *dy, float *dx, int64_t rows, int64_t cols, int flags);

/* Backward of fgc_softmax over any axis: dx = y (dy - sum_axis(dy y)), with y
 * the forward output. dx may be the same buffer as dy. Flag: ACCUMULATE_INPUT. */
int fgc_softmax_backward(const float *y, const float *dy, float *dx, const int64_t *shape,
                         int rank, int axis, int flags);

/* ---------------------------------------------------------------- dense */

/* Floats of scratch fgc_dense_backward needs: rows * (in + out) (rows * in
 * when act is LINEAR). */
size_t fgc_dense_backward_scratch_size(int64_t rows, int64_t in, int64_t out,
                                       fgc_activation_kind act);

/* Dense backward for y = act(x W + b): dz = dy act'(z); dx = dz W^T (rows,
 * in); dkernel = x^T dz (in, out); dbias = column sums of dz (out). x is
 * needed only for dkernel, kernel only for dx. */
int fgc_dense_backward(const float *x, const float *kernel, const float *z, const float *y,
                       const float *dy, float *dx, float *dkernel, float *dbias, int64_t rows,
                       int64_t in, int64_t out, fgc_activation_kind act, float *scratch,
                       int flags);

/* ---------------------------------------------------------------- convolution */

/* Floats of scratch for the Conv2D / Conv2DTranspose backward (p as for the
 * forward; 0 if p is invalid). */
size_t fgc_conv2d_backward_scratch_size(const fgc_conv2d_params *p);
size_t fgc_conv2d_transpose_backward_scratch_size(const fgc_conv2d_params *p);

/* Conv2D backward: input (batch, in_h, in_w, in_c) and kernel (kh, kw, in_c,
 * out_c) as in the forward, z / y / dy (batch, out_h, out_w, out_c). Writes
 * dinput (like input), dkernel (like kernel), dbias (out_c). input is needed
 * only for dkernel, kernel only for dinput. */
int fgc_conv2d_backward(const fgc_conv2d_params *p, const float *input, const float *kernel,
                        const float *z, const float *y, const float *dy, float *dinput,
                        float *dkernel, float *dbias, float *scratch, int flags);

/* Conv2DTranspose backward: kernel (kh, kw, out_c, in_c) as in the forward;
 * z / y / dy (batch, out_h, out_w, out_c) with the transposed output sizes. */
int fgc_conv2d_transpose_backward(const fgc_conv2d_params *p, const float *input,
                                  const float *kernel, const float *z, const float *y,
                                  const float *dy, float *dinput, float *dkernel, float *dbias,
                                  float *scratch, int flags);

/* ---------------------------------------------------------------- pooling */

/* MaxPooling2D backward (TF's MaxPoolGrad): each window's dy goes to the first
 * maximal real cell of the window (row-major scan; padded cells never count).
 * Windows that overlap add up. Flag: ACCUMULATE_INPUT. */
int fgc_max_pool2d_backward(const fgc_pool2d_params *p, const float *input, const float *dy,
                            float *dinput, int flags);
/* AveragePooling2D backward: each window's dy / (number of its real cells) to
 * each of its real cells. */
int fgc_avg_pool2d_backward(const fgc_pool2d_params *p, const float *dy, float *dinput,
                            int flags);

/* GlobalMaxPooling2D backward: dy (batch, channels) split equally among the
 * cells equal to the maximum (TF's reduce_max gradient). */
int fgc_global_max_pool2d_backward(const float *input, const float *dy, float *dinput,
                                   int64_t batch, int64_t h, int64_t w, int64_t channels,
                                   int flags);
/* GlobalAveragePooling2D / 1D backward: dy / cells to every cell. */
int fgc_global_avg_pool2d_backward(const float *dy, float *dinput, int64_t batch, int64_t h,
                                   int64_t w, int64_t channels, int flags);
int fgc_global_avg_pool1d_backward(const float *dy, float *dinput, int64_t batch,
                                   int64_t steps, int64_t features, int flags);

/* UpSampling2D backward: dy (batch, h size_h, w size_w, c) -> dinput (batch,
 * h, w, c). Nearest: the sum over each size_h x size_w block; bilinear: the
 * exact adjoint of the forward's interpolation weights. */
int fgc_upsampling2d_backward(const float *dy, float *dinput, int64_t batch, int64_t h,
                              int64_t w, int64_t channels, int64_t size_h, int64_t size_w,
                              fgc_interpolation interpolation, int flags);

/* ---------------------------------------------------------------- embedding */

/* Embedding backward: dtable[indices[i], :] += dy[i, :] (dtable (input_dim,
 * output_dim), dy (count, output_dim)). Without ACCUMULATE_PARAMS dtable is
 * zeroed first. Indices are assumed valid (the forward checked them); out of
 * range ones are still rejected (FGC_ERR_OUT_OF_RANGE, nothing written). */
int fgc_embedding_backward_i32(const int32_t *indices, int64_t count, const float *dy,
                               int64_t input_dim, int64_t output_dim, float *dtable, int flags);
int fgc_embedding_backward_i64(const int64_t *indices, int64_t count, const float *dy,
                               int64_t input_dim, int64_t output_dim, float *dtable, int flags);

/* ---------------------------------------------------------------- merge */

/* Concatenate backward: dy (outer, sum(axis_sizes), inner) is split into
 * dinputs[k] (outer, axis_sizes[k], inner). dinputs[k] may be NULL (no
 * gradient wanted); input_flags[k] (input_flags may be NULL: all 0) says
 * whether dinputs[k] is accumulated (FGC_GRAD_ACCUMULATE_INPUT). */
int fgc_concatenate_backward(int num_inputs, const float *dy, const int64_t *axis_sizes,
                             int64_t outer, int64_t inner, float *const *dinputs,
                             const int *input_flags);

/* Add backward: dinputs[k] = dy; Average backward: dinputs[k] = dy / num_inputs.
 * NULL entries and input_flags as for Concatenate. Inputs are handled in order
 * k = 0, 1, ..., so two entries may be the same buffer (x + x: overwrite with
 * the first, accumulate the second); none may overlap dy. */
int fgc_add_backward(int num_inputs, const float *dy, int64_t count, float *const *dinputs,
                     const int *input_flags);
int fgc_average_backward(int num_inputs, const float *dy, int64_t count, float *const *dinputs,
                         const int *input_flags);

/* ---------------------------------------------------------------- normalization */

/* BatchNormalization in training over the last axis of x (rows, channels):
 * mean and the biased variance var of each channel over the rows, then
 * y = gamma (x - mean) / sqrt(var + epsilon) + beta (gamma, beta nullable).
 * save_mean and save_invstd (channels) receive mean and 1 / sqrt(var + eps)
 * for fgc_batch_norm_backward. If update_moving is nonzero:
 *   moving_mean     = moving_mean * momentum + mean * (1 - momentum)
 *   moving_variance = moving_variance * momentum + var * n / (n - 1) * (1 - momentum)
 * with n = rows: the *unbiased* variance, as TF's fused kernel (what Keras
 * uses for 4D inputs) and PyTorch do; Keras' non-fused path for 2D inputs uses
 * the biased variance instead, which this kernel does not reproduce. With
 * rows == 1 the biased variance (0) is used. Statistics are summed in double.
 * y may be x (in place). */
int fgc_batch_norm_train_forward(const float *x, float *y, int64_t rows, int64_t channels,
                                 const float *gamma, const float *beta, float *moving_mean,
                                 float *moving_variance, float momentum, float epsilon,
                                 float *save_mean, float *save_invstd, int update_moving);

/* Backward of the training forward: with xh = (x - mean) invstd,
 * dbeta = sum dy, dgamma = sum dy xh, dx = gamma invstd (dy - dbeta/n - xh dgamma/n).
 * gamma NULL means 1. dx, dgamma, dbeta nullable. */
int fgc_batch_norm_backward(const float *x, const float *dy, const float *gamma,
                            const float *save_mean, const float *save_invstd, float *dx,
                            float *dgamma, float *dbeta, int64_t rows, int64_t channels,
                            int flags);

/* ---------------------------------------------------------------- dropout */

/* Inverted dropout: y = x * mask with mask[i] = 0 (dropped) or 1 / (1 - rate).
 * Element i is dropped iff u(seed, counter, i) < rate, where u is the top 24
 * bits of a 64-bit hash scaled to [0, 1):
 *   m(v) = splitmix64's finaliser: v ^= v >> 30; v *= 0xBF58476D1CE4E5B9;
 *          v ^= v >> 27; v *= 0x94D049BB133111EB; v ^= v >> 31
 *   key  = m(seed ^ m(counter + 0x9E3779B97F4A7C15))
 *   u    = (m(key + (i + 1) * 0x9E3779B97F4A7C15) >> 40) * 2^-24
 * (uint64 arithmetic mod 2^64). The mask depends only on (seed, counter, i):
 * the caller advances `counter` per step / layer call. rate in [0, 1). y may
 * be x. */
int fgc_dropout_forward(const float *x, float *y, float *mask, int64_t n, float rate,
                        uint64_t seed, uint64_t counter);
/* dx = dy * mask. dx may be dy. Flag: ACCUMULATE_INPUT. */
int fgc_dropout_backward(const float *mask, const float *dy, float *dx, int64_t n, int flags);

/* ---------------------------------------------------------------- recurrent */

/* Floats of the workspace fgc_lstm_forward_train fills and fgc_lstm_backward
 * reads: timesteps * batch * 6 * units (gates after activation, cell and
 * hidden states of every step) + batch * input_dim (a staging area). */
size_t fgc_lstm_workspace_size(const fgc_lstm_params *p);

/* LSTM forward for training: the same computation and outputs as fgc_lstm
 * (gate order i, f, c, o), also storing every step's activated gates, cell
 * and hidden states in `workspace`, which must stay untouched until
 * fgc_lstm_backward. For training, activation and recurrent_activation must
 * be LINEAR, RELU, SIGMOID, TANH, HARD_SIGMOID, ELU or SELU (derivatives from
 * outputs); Keras' defaults are TANH and SIGMOID. */
int fgc_lstm_forward_train(const fgc_lstm_params *p, const float *input, const float *kernel,
                           const float *recurrent_kernel, const float *bias, const float *h0,
                           const float *c0, float *output, float *h_out, float *c_out,
                           float *workspace);

/* Floats of scratch fgc_lstm_backward needs. */
size_t fgc_lstm_backward_scratch_size(const fgc_lstm_params *p);

/* Backprop through time. doutput is (batch, timesteps, units) when
 * return_sequences, else (batch, units) (the last h); it may be NULL (zero),
 * as may dh_out and dc_out (the final states' gradients, return_state).
 * input, kernel, recurrent_kernel, h0, c0 (nullable: zeros) and workspace as
 * given to fgc_lstm_forward_train. Writes dinput (like input), dkernel,
 * drecurrent_kernel, dbias (4 units) and dh0, dc0 (batch, units); all
 * nullable. dinput/dh0/dc0 follow ACCUMULATE_INPUT, the weights
 * ACCUMULATE_PARAMS. */
int fgc_lstm_backward(const fgc_lstm_params *p, const float *input, const float *kernel,
                      const float *recurrent_kernel, const float *h0, const float *c0,
                      const float *workspace, const float *doutput, const float *dh_out,
                      const float *dc_out, float *dinput, float *dkernel,
                      float *drecurrent_kernel, float *dbias, float *dh0, float *dc0,
                      float *scratch, int flags);

/* ---------------------------------------------------------------- layout */

/* fgc_pad2d backward: dinput (batch, h, w, channels) receives the cells of dy
 * (the padded / cropped shape) that the forward copied; cropped-away cells get
 * 0. Flag: ACCUMULATE_INPUT. */
int fgc_pad2d_backward(const float *dy, float *dinput, int64_t batch, int64_t h, int64_t w,
                       int64_t channels, int64_t top, int64_t bottom, int64_t left,
                       int64_t right, int flags);
/* fgc_permute backward: dinput (shape) = dy transposed back. Flag: ACCUMULATE_INPUT. */
int fgc_permute_backward(const float *dy, float *dinput, const int64_t *shape, int rank,
                         const int64_t *perm, int flags);
/* fgc_reverse_sequence backward: dinput = dy reversed in time. Flag: ACCUMULATE_INPUT. */
int fgc_reverse_sequence_backward(const float *dy, float *dinput, int64_t batch, int64_t steps,
                                  int64_t features, int flags);
/* LeakyReLU backward: dx = dy * (x >= 0 ? 1 : alpha) (the derivative at 0 is
 * 1, as TensorFlow's). dx may be dy. Flag: ACCUMULATE_INPUT. */
int fgc_leaky_relu_backward(const float *x, const float *dy, float *dx, int64_t n, float alpha,
                            int flags);

/* ---------------------------------------------------------------- spatial dropout */

/* SpatialDropout2D in training: x and y (batch, spatial, channels) with
 * spatial = h * w; whole channels are dropped: mask (batch, channels) holds 0
 * or 1 / (1 - rate), drawn exactly like fgc_dropout_forward's mask for
 * element i = b * channels + c, and y[b, s, c] = x[b, s, c] mask[b, c].
 * y may be x. */
int fgc_spatial_dropout_forward(const float *x, float *y, float *mask, int64_t batch,
                                int64_t spatial, int64_t channels, float rate, uint64_t seed,
                                uint64_t counter);
/* dx[b, s, c] = dy[b, s, c] mask[b, c]. dx may be dy. Flag: ACCUMULATE_INPUT. */
int fgc_spatial_dropout_backward(const float *mask, const float *dy, float *dx, int64_t batch,
                                 int64_t spatial, int64_t channels, int flags);

/* ---------------------------------------------------------------- GRU */

/* Floats of the workspace fgc_gru_forward_train fills and fgc_gru_backward
 * reads: batch * (timesteps * 4 units + (timesteps + 1) units + 6 units). */
size_t fgc_gru_workspace_size(const fgc_gru_params *p);
/* GRU forward for training: fgc_gru's outputs, plus every step's gates and
 * states in `workspace` (untouched until fgc_gru_backward). Activations as for
 * the LSTM's training forward (derivatives from outputs). */
int fgc_gru_forward_train(const fgc_gru_params *p, const float *input, const float *kernel,
                          const float *recurrent_kernel, const float *bias, const float *h0,
                          float *output, float *h_out, float *workspace);
/* Floats of scratch fgc_gru_backward needs. */
size_t fgc_gru_backward_scratch_size(const fgc_gru_params *p);
/* GRU backprop through time. doutput as for the LSTM (nullable), dh_out the
 * final state's gradient (nullable). Writes dinput, dkernel,
 * drecurrent_kernel, dbias (the bias's shape) and dh0, all nullable; dinput /
 * dh0 follow ACCUMULATE_INPUT, the weights ACCUMULATE_PARAMS. */
int fgc_gru_backward(const fgc_gru_params *p, const float *input, const float *kernel,
                     const float *recurrent_kernel, const float *h0, const float *workspace,
                     const float *doutput, const float *dh_out, float *dinput, float *dkernel,
                     float *drecurrent_kernel, float *dbias, float *dh0, float *scratch,
                     int flags);

/* ---------------------------------------------------------------- Bidirectional merge */

/* Backward of fgc_bidirectional_merge: dforward and dbackward (rows, units)
 * are overwritten (forward / backward are needed for MUL only). */
int fgc_bidirectional_merge_backward(const float *forward, const float *backward, const float *dy,
                                     float *dforward, float *dbackward, int64_t rows,
                                     int64_t units, fgc_merge_mode mode);

/* ---------------------------------------------------------------- attention */

/* Floats of scratch fgc_attention_backward needs: 2 Tq Tv. */
size_t fgc_attention_backward_scratch_size(const fgc_attention_params *p);
/* Attention backward from the forward's inputs and its `scores` (the softmax
 * weights). Writes dquery, dvalue, dkey (key NULL: the key gradient is added
 * to dvalue), dscale and dconcat_score_weight (scalars); all nullable.
 * dquery / dvalue / dkey follow ACCUMULATE_INPUT (dkey == dvalue when key is
 * NULL), the scalars ACCUMULATE_PARAMS. */
int fgc_attention_backward(const fgc_attention_params *p, const float *query, const float *value,
                           const float *key, const float *scale,
                           const float *concat_score_weight, const float *scores,
                           const float *dy, float *dquery, float *dvalue, float *dkey,
                           float *dscale, float *dconcat_score_weight, float *scratch,
                           int flags);

/* ---------------------------------------------------------------- tensor operations */

/* fgc_binary backward: da (a_count) and db (b_count) sum the gradient over
 * every output their entry reached. NULL da / db: not wanted. input_flags[k]
 * (input_flags may be NULL: all 0) says whether da / db is accumulated. */
int fgc_binary_backward(fgc_binary_op op, const float *a, int64_t a_count, const float *b,
                        int64_t b_count, const float *dy, int64_t count, float *da, float *db,
                        const int *input_flags);
/* fgc_slice backward: dx (outer, n, inner) gets dy in [start, start + size)
 * and zeros elsewhere (or adds dy there with ACCUMULATE_INPUT). */
int fgc_slice_backward(const float *dy, float *dx, int64_t outer, int64_t n, int64_t inner,
                       int64_t start, int64_t size, int flags);
/* fgc_reduce backward. Sum: dx = dy; mean: dy / n; max: dy to the first
 * maximum along n (x and y are read only for max). Flag: ACCUMULATE_INPUT. */
int fgc_reduce_backward(fgc_reduce_op op, const float *x, const float *y, const float *dy,
                        float *dx, int64_t outer, int64_t n, int64_t inner, int flags);
/* fgc_gather_i32 backward: dparams (batch, outer, n, inner) is zero except
 * where indices picked it, which sum the dy entries they produced (or adds
 * them with ACCUMULATE_INPUT). Indices out of range fail as in the forward. */
int fgc_gather_backward_i32(const int32_t *indices, const float *dy, float *dparams,
                            int64_t batch, int64_t outer, int64_t n, int64_t inner, int64_t count,
                            int flags);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FGC_RUNTIME_GRAD_H */
