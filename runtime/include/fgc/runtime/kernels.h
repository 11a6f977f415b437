/* The fgc runtime's stable C ABI: forward (inference) kernels for Keras layers.
 *
 * Code that fgc emits, and later its JIT, calls only these functions. The header
 * is valid C (C99) and C++17, and includes nothing but <stddef.h>/<stdint.h>.
 *
 * Conventions shared by every kernel:
 *  - Tensors are dense, C order (row-major), float32 unless stated; images are
 *    NHWC and weights keep the layout Keras stores them in.
 *  - Sizes are int64_t and must be >= 1 unless stated otherwise.
 *  - Every kernel returns an int status: FGC_OK (0) on success, otherwise an
 *    FGC_ERR_* code, and fgc_last_error() then describes the failure. Argument
 *    checks happen before anything is written, so a failing kernel leaves its
 *    outputs untouched.
 *  - Outputs must not overlap inputs unless a kernel says it may run in place.
 *  - Enums are int-sized and any int may be passed (the *_FORCE_INT32_ members
 *    exist only for that); values that name no option are rejected.
 *  - Kernels never allocate their own buffers: where temporary memory is needed
 *    the caller passes `scratch`, at least fgc_*_scratch_size() floats, which
 *    may be reused freely between calls. (Eigen's GEMM still packs its operands
 *    in buffers of its own; that is internal to the matrix product.)
 *  - Kernels are thread-safe for disjoint outputs and scratch; they use up to
 *    fgc_get_num_threads() threads internally (OpenMP; called from inside a
 *    parallel region they run serially).
 *  - The compute kernels exist in three builds, baseline x86-64 (SSE2),
 *    "avx2" (x86-64-v3: AVX2 + FMA) and "avx512" (x86-64-v4); the best one the
 *    CPU supports is chosen once per process, or the one the environment
 *    variable FGC_CPU names (baseline, avx2, avx512 or auto); see
 *    fgc_cpu_variant().
 *  - Results are deterministic: bit-identical for any thread count, and GEMM
 *    blocking is pinned rather than sized from the CPU's caches, so with the
 *    same variant matrix products sum in the same order on every x86-64
 *    machine. Different variants (vector widths, FMA) differ in the last bits.
 *  - Buffers need only float alignment.
 *
 * Linking: libfgc_runtime.a needs the C++ standard library and OpenMP's
 * runtime (link with -fopenmp, or -lgomp for GCC's).
 */
#ifndef FGC_RUNTIME_KERNELS_H
#define FGC_RUNTIME_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- status */

enum {
  FGC_OK = 0,
  FGC_ERR_INVALID_ARGUMENT = 1, /* null pointer, bad size, unsupported option */
  FGC_ERR_OUT_OF_RANGE = 2      /* a data-dependent index is out of range */
};

/* The message of the last failure on the calling thread ("" if none yet). The
 * pointer stays valid until the next failing kernel call on the same thread. */
const char *fgc_last_error(void);

/* ---------------------------------------------------------------- threads */

/* Sets how many threads kernels may use; n <= 0 restores the default
 * (OpenMP's: OMP_NUM_THREADS, else the number of cores). Not meant to be called
 * while other threads are running kernels. */
void fgc_set_num_threads(int n);
/* The number of threads kernels currently use (>= 1). */
int fgc_get_num_threads(void);

/* ---------------------------------------------------------------- CPU variant */

/* The kernel variant this process uses: "baseline", "avx2" or "avx512". */
const char *fgc_cpu_variant(void);
/* 1 if this build has the named variant and the CPU can run it, else 0. */
int fgc_cpu_variant_supported(const char *name);

/* ---------------------------------------------------------------- enums */

/* Activations, shared by every kernel with a fused activation. */
typedef enum fgc_activation_kind {
  FGC_ACT_LINEAR = 0,
  FGC_ACT_RELU = 1,
  FGC_ACT_SIGMOID = 2,
  FGC_ACT_TANH = 3,
  FGC_ACT_SOFTMAX = 4,      /* over the last axis */
  FGC_ACT_ELU = 5,          /* alpha = 1 */
  FGC_ACT_SELU = 6,
  FGC_ACT_GELU = 7,         /* exact: 0.5 x (1 + erf(x / sqrt 2)) */
  FGC_ACT_SOFTPLUS = 8,     /* log(1 + exp x), computed stably */
  FGC_ACT_SWISH = 9,        /* x sigmoid(x) */
  FGC_ACT_HARD_SIGMOID = 10, /* tf.keras 2.x: clip(0.2 x + 0.5, 0, 1) */
  FGC_ACT_FORCE_INT32_ = 0x7fffffff /* not an activation: makes any int a valid value */
} fgc_activation_kind;

/* Keras padding modes. SAME follows TensorFlow: out = ceil(in / stride),
 * pad_total = max((out - 1) * stride + (k - 1) * dilation + 1 - in, 0),
 * pad_before = pad_total / 2 and the odd one extra goes after. */
typedef enum fgc_padding {
  FGC_PADDING_VALID = 0,
  FGC_PADDING_SAME = 1,
  FGC_PADDING_FORCE_INT32_ = 0x7fffffff /* not a padding: makes any int a valid value */
} fgc_padding;

/* ---------------------------------------------------------------- shape helpers */

/* Output length of a convolution or pooling window along one axis: VALID gives
 * ceil((in - (k - 1) * dilation) / stride) (0 if the window does not fit), SAME
 * gives ceil(in / stride). Returns -1 for sizes < 1 or an unknown padding. */
int64_t fgc_conv_output_length(int64_t in, int64_t kernel, int64_t stride, int64_t dilation,
                               fgc_padding padding);
/* Padding before the first element along one axis (0 for VALID). -1 on bad input. */
int64_t fgc_conv_pad_before(int64_t in, int64_t kernel, int64_t stride, int64_t dilation,
                            fgc_padding padding);
/* Output length of a transposed convolution (Keras deconv_output_length without
 * output_padding): VALID gives in * stride + max(kd - stride, 0), SAME gives
 * in * stride, where kd = (kernel - 1) * dilation + 1. -1 on bad input. */
int64_t fgc_conv_transpose_output_length(int64_t in, int64_t kernel, int64_t stride,
                                         int64_t dilation, fgc_padding padding);

/* ---------------------------------------------------------------- activations */

/* y = act(x) elementwise over a (rows, cols) array; SOFTMAX normalises each
 * row. May run in place (y == x). */
int fgc_activation(fgc_activation_kind act, const float *x, float *y, int64_t rows, int64_t cols);

/* Softmax over one axis of a tensor of the given shape (rank 1..8); axis may
 * be negative (Python style). May run in place. */
int fgc_softmax(const float *x, float *y, const int64_t *shape, int rank, int axis);

/* ---------------------------------------------------------------- fused elementwise */

/* One instruction of fgc_elementwise: the running value v of each element starts
 * as inputs[0][i]; the instructions update it in order; the result goes to
 * output[i]. An instruction is two ints, an opcode and its operand. */
typedef enum fgc_elementwise_opcode {
  FGC_EW_ADD = 0,        /* v += inputs[operand][i]                            */
  FGC_EW_DIVIDE = 1,     /* v *= 1 / operand (Average: operand = input count)  */
  FGC_EW_ACTIVATION = 2, /* v = act(v), operand an elementwise fgc_activation_kind */
  FGC_EW_FORCE_INT32_ = 0x7fffffff
} fgc_elementwise_opcode;

/* A chain of elementwise ops (merges, activations) in one pass over memory:
 * `program` holds program_length (opcode, operand) pairs, inputs are count
 * floats each. The output may be the same buffer as any input. SOFTMAX is
 * rejected (not elementwise). */
int fgc_elementwise(const int *program, int program_length, int num_inputs,
                    const float *const *inputs, int64_t count, float *output);

/* ---------------------------------------------------------------- dense */

/* Dense: y = act(x W + b). x is (rows, in), W is (in, out) as Keras stores it,
 * bias is (out) or NULL, y is (rows, out). Layers applied to rank > 2 inputs
 * fold all leading axes into rows. */
int fgc_dense(const float *x, const float *kernel, const float *bias, float *y, int64_t rows,
              int64_t in, int64_t out, fgc_activation_kind act);

/* ---------------------------------------------------------------- convolution */

typedef struct fgc_conv2d_params {
  int64_t batch, in_h, in_w, in_c;  /* input (batch, in_h, in_w, in_c) */
  int64_t kernel_h, kernel_w, out_c;
  int64_t stride_h, stride_w;
  int64_t dilation_h, dilation_w;   /* Keras dilation_rate; 1 = none */
  fgc_padding padding;
  fgc_activation_kind activation;
} fgc_conv2d_params;

/* Floats of scratch fgc_conv2d needs (0 for a 1x1, stride 1 convolution). */
size_t fgc_conv2d_scratch_size(const fgc_conv2d_params *p);

/* Conv2D: input NHWC (batch, in_h, in_w, in_c); kernel (kernel_h, kernel_w,
 * in_c, out_c) as Keras stores it; bias (out_c) or NULL; output (batch, out_h,
 * out_w, out_c) with out_h/out_w from fgc_conv_output_length. Implemented as
 * im2col into `scratch` plus one GEMM per tile of output pixels. Fails with
 * FGC_ERR_INVALID_ARGUMENT if the output would be empty. */
int fgc_conv2d(const fgc_conv2d_params *p, const float *input, const float *kernel,
               const float *bias, float *output, float *scratch);

/* Winograd form of fgc_conv2d, for 3x3 stride-1 undilated convolutions with at
 * least 16 input channels and a multiple of 16 filters: the kernel is
 * transformed once, ahead of the calls, into `transformed` by
 * fgc_conv2d_winograd_kernel, and fgc_conv2d_winograd convolves with it (same
 * input, bias, output and activation as fgc_conv2d; results agree with it to
 * about 1e-5 of the output's scale). The tile size follows the output size:
 * F(4x4, 3x3) (36 transform points) or, where it needs fewer products (a 9x9
 * output, say), F(3x3, 3x3) (25 points). The transformed kernel holds
 * fgc_conv2d_winograd_kernel_size(p) = points x in_c x out_c floats
 * (fgc_conv2d_winograd_points: 36 or 25; both 0 for shapes that do not fit);
 * it depends on the spatial size, not on the batch.
 * fgc_conv2d_winograd_suits: 1 when the shape fits and the arithmetic saved
 * outweighs the transforms at p->batch (compilers ask with batch 1).
 * fgc_conv2d itself also takes this path, transforming the kernel in its
 * scratch, when the batch is large enough to pay for that. */
int fgc_conv2d_winograd_suits(const fgc_conv2d_params *p);
size_t fgc_conv2d_winograd_scratch_size(const fgc_conv2d_params *p);
size_t fgc_conv2d_winograd_kernel_size(const fgc_conv2d_params *p);
int fgc_conv2d_winograd_points(const fgc_conv2d_params *p);
int fgc_conv2d_winograd_kernel(const fgc_conv2d_params *p, const float *kernel,
                               float *transformed);
int fgc_conv2d_winograd(const fgc_conv2d_params *p, const float *input, const float *transformed,
                        const float *bias, float *output, float *scratch);

/* Conv2DTranspose takes the same parameters, with out_c the number of filters.
 * Its kernel is (kernel_h, kernel_w, out_c, in_c) as Keras stores it (the same
 * taps as PyTorch's ConvTranspose2d weight (in_c, out_c, kh, kw), not flipped).
 * Output (batch, out_h, out_w, out_c) with sizes from
 * fgc_conv_transpose_output_length; input pixel (y, x) and tap (ky, kx) land on
 * output (y * stride_h + ky * dilation_h - pad_top, ...), where pad_top is
 * max(kd - stride, 0) / 2 for SAME and 0 for VALID (TensorFlow semantics). */
size_t fgc_conv2d_transpose_scratch_size(const fgc_conv2d_params *p);
int fgc_conv2d_transpose(const fgc_conv2d_params *p, const float *input, const float *kernel,
                         const float *bias, float *output, float *scratch);

/* ---------------------------------------------------------------- pooling */

typedef struct fgc_pool2d_params {
  int64_t batch, in_h, in_w, channels; /* input (batch, in_h, in_w, channels) */
  int64_t pool_h, pool_w;
  int64_t stride_h, stride_w;
  fgc_padding padding;
} fgc_pool2d_params;

/* MaxPooling2D / AveragePooling2D over NHWC input; output (batch, out_h, out_w,
 * channels) with out_h = fgc_conv_output_length(in_h, pool_h, stride_h, 1,
 * padding). With SAME padding, padded cells are ignored: max takes the
 * maximum of the real cells, average divides by the number of real cells (as
 * TensorFlow does). */
int fgc_max_pool2d(const fgc_pool2d_params *p, const float *input, float *output);
int fgc_avg_pool2d(const fgc_pool2d_params *p, const float *input, float *output);

/* GlobalMaxPooling2D / GlobalAveragePooling2D: (batch, h, w, c) -> (batch, c). */
int fgc_global_max_pool2d(const float *input, float *output, int64_t batch, int64_t h,
                          int64_t w, int64_t channels);
int fgc_global_avg_pool2d(const float *input, float *output, int64_t batch, int64_t h,
                          int64_t w, int64_t channels);
/* GlobalAveragePooling1D over the time axis: (batch, steps, features) ->
 * (batch, features). Masks are not supported. */
int fgc_global_avg_pool1d(const float *input, float *output, int64_t batch, int64_t steps,
                          int64_t features);

/* ---------------------------------------------------------------- upsampling */

typedef enum fgc_interpolation {
  FGC_INTERP_NEAREST = 0,
  FGC_INTERP_BILINEAR = 1, /* tf.image.resize, half-pixel centres (= PyTorch
                              align_corners=False) */
  FGC_INTERP_FORCE_INT32_ = 0x7fffffff /* not a mode: makes any int a valid value */
} fgc_interpolation;

/* UpSampling2D: (batch, h, w, c) -> (batch, h * size_h, w * size_w, c). */
int fgc_upsampling2d(const float *input, float *output, int64_t batch, int64_t h, int64_t w,
                     int64_t channels, int64_t size_h, int64_t size_w,
                     fgc_interpolation interpolation);

/* ---------------------------------------------------------------- embedding */

/* Embedding: output[i, :] = table[indices[i], :] for i < count; table is
 * (input_dim, output_dim), output (count, output_dim). Every index is checked
 * first: one outside [0, input_dim) gives FGC_ERR_OUT_OF_RANGE, a message
 * naming the index and its position, and no output written. count may be 0. */
int fgc_embedding_i32(const int32_t *indices, int64_t count, const float *table,
                      int64_t input_dim, int64_t output_dim, float *output);
int fgc_embedding_i64(const int64_t *indices, int64_t count, const float *table,
                      int64_t input_dim, int64_t output_dim, float *output);

/* ---------------------------------------------------------------- recurrent */

typedef struct fgc_lstm_params {
  int64_t batch, timesteps, input_dim, units; /* timesteps may change per call */
  fgc_activation_kind activation;           /* Keras `activation`: TANH by default */
  fgc_activation_kind recurrent_activation; /* SIGMOID (Keras 2 default) or HARD_SIGMOID */
  int return_sequences;                /* nonzero: output is (batch, timesteps, units) */
} fgc_lstm_params;

/* Floats of scratch fgc_lstm needs: batch * (timesteps + 2) * 4 * units. */
size_t fgc_lstm_scratch_size(const fgc_lstm_params *p);

/* LSTM forward, Keras layout: input (batch, timesteps, input_dim), kernel
 * (input_dim, 4 units), recurrent_kernel (units, 4 units), bias (4 units) or
 * NULL, gate blocks in the order i, f, c, o:
 *   z = x W + h U + b,  i = ra(z_i), f = ra(z_f), o = ra(z_o),
 *   c = f * c + i * act(z_c),  h = o * act(c).
 * h0/c0 are the initial states (batch, units), NULL for zeros. output is the
 * full sequence (batch, timesteps, units) if return_sequences, else the last h
 * (batch, units). h_out / c_out (batch, units) receive the final states when
 * not NULL (return_state). x W for all steps is one GEMM into `scratch`.
 * Both activations may be any elementwise kind (SOFTMAX is rejected).
 * Not covered: go_backwards, masking, stateful layers and dropout (inference
 * ignores it); the compiler must lower or reject those. */
int fgc_lstm(const fgc_lstm_params *p, const float *input, const float *kernel,
             const float *recurrent_kernel, const float *bias, const float *h0, const float *c0,
             float *output, float *h_out, float *c_out, float *scratch);

/* ---------------------------------------------------------------- merge */

/* Concatenate along one axis. View every tensor as (outer, axis, inner), where
 * outer is the product of the dims before the axis and inner the product of
 * those after it (the same for all inputs); input k has axis_sizes[k] entries
 * on the axis and the output sum(axis_sizes). */
int fgc_concatenate(int num_inputs, const float *const *inputs, const int64_t *axis_sizes,
                    int64_t outer, int64_t inner, float *output);

/* Add / Average of num_inputs >= 1 tensors of `count` floats each (same shape,
 * no broadcasting). The output may alias any input. */
int fgc_add(int num_inputs, const float *const *inputs, int64_t count, float *output);
int fgc_average(int num_inputs, const float *const *inputs, int64_t count, float *output);

/* ---------------------------------------------------------------- normalization */

/* BatchNormalization (inference) over the last axis: x and y are (rows,
 * channels); y = gamma (x - mean) / sqrt(var + epsilon) + beta, with gamma
 * (scale=False) and beta (center=False) nullable. May run in place. */
int fgc_batch_norm(const float *x, float *y, int64_t rows, int64_t channels, const float *gamma,
                   const float *beta, const float *mean, const float *variance, float epsilon);

/* BatchNormalization folded into the linear map before it (Dense, Conv2D:
 * kernel (rows, channels) with the output channels last, bias (channels) or
 * NULL): with scale = gamma / sqrt(variance + epsilon) (gamma NULL: 1),
 * folded_kernel = kernel * scale per column and folded_bias = bias * scale +
 * beta - mean * scale (beta NULL: 0), so that x folded_kernel + folded_bias is
 * fgc_batch_norm of x kernel + bias. Generated code runs it whenever the
 * weights change. */
int fgc_fold_batch_norm(const float *kernel, const float *bias, int64_t rows, int64_t channels,
                        const float *gamma, const float *beta, const float *mean,
                        const float *variance, float epsilon, float *folded_kernel,
                        float *folded_bias);

/* ---------------------------------------------------------------- copies */

/* Reshape and Flatten need no kernel: in C order they keep the data as is, so
 * generated code aliases the buffer (or, when the buffer must differ, calls
 * fgc_copy). fgc_copy copies `count` floats between non-overlapping buffers. */
int fgc_copy(const float *x, float *y, int64_t count);

/* ---------------------------------------------------------------- layout (layout.cpp) */

/* ZeroPadding2D and Cropping2D: output (batch, h + top + bottom, w + left +
 * right, channels) with output[b, y, x, c] = input[b, y - top, x - left, c]
 * where that cell exists and 0 elsewhere. Negative amounts crop (Cropping2D
 * passes -cropping); the output must keep at least one row and column. */
int fgc_pad2d(const float *input, float *output, int64_t batch, int64_t h, int64_t w,
              int64_t channels, int64_t top, int64_t bottom, int64_t left, int64_t right);

/* Permute: output = input transposed by `perm` (0-based axes of the whole
 * tensor, the batch axis included and kept first by Keras's Permute), rank
 * 1..8; shape is the input's. */
int fgc_permute(const float *input, float *output, const int64_t *shape, int rank,
                const int64_t *perm);

/* Reverses the time axis of (batch, steps, features): output[b, t] =
 * input[b, steps - 1 - t] (go_backwards and Bidirectional's backward layer). */
int fgc_reverse_sequence(const float *input, float *output, int64_t batch, int64_t steps,
                         int64_t features);

/* LeakyReLU: y = x >= 0 ? x : alpha x over n floats (n may be 0). May run in place. */
int fgc_leaky_relu(const float *x, float *y, int64_t n, float alpha);

/* ---------------------------------------------------------------- GRU (gru.cpp) */

typedef struct fgc_gru_params {
  int64_t batch, timesteps, input_dim, units;
  fgc_activation_kind activation;           /* Keras `activation`: TANH */
  fgc_activation_kind recurrent_activation; /* SIGMOID (Keras 2.3+) or HARD_SIGMOID */
  int return_sequences;                     /* nonzero: output (batch, timesteps, units) */
  int reset_after;                          /* nonzero: TF2's default (CuDNN-compatible) */
} fgc_gru_params;

/* Floats of scratch fgc_gru needs: 8 batch units. */
size_t fgc_gru_scratch_size(const fgc_gru_params *p);

/* GRU forward, Keras layout: kernel (input_dim, 3 units), recurrent_kernel
 * (units, 3 units), gate blocks in the order z, r, h. bias (nullable):
 * reset_after: (2, 3 units), row 0 the input bias bi, row 1 the recurrent bias br:
 *   xz, xr, xh = x W + bi;  rz, rr, rh = h U + br
 *   z = ra(xz + rz), r = ra(xr + rr), hh = act(xh + r * rh)
 * not reset_after: (3 units) added to x W only, and
 *   z = ra(xz + h Uz), r = ra(xr + h Ur), hh = act(xh + (r * h) Uh)
 * then h = z * h + (1 - z) * hh. h0 (batch, units) is the initial state (NULL:
 * zeros); output the whole sequence or the last h; h_out (nullable) the final
 * state. Both activations may be any elementwise kind (SOFTMAX is rejected). */
int fgc_gru(const fgc_gru_params *p, const float *input, const float *kernel,
            const float *recurrent_kernel, const float *bias, const float *h0, float *output,
            float *h_out, float *scratch);

/* ---------------------------------------------------------------- Bidirectional merge */

typedef enum fgc_merge_mode {
  FGC_MERGE_CONCAT = 0, /* output (rows, 2 units): forward then backward */
  FGC_MERGE_SUM = 1,
  FGC_MERGE_MUL = 2,
  FGC_MERGE_AVE = 3,
  FGC_MERGE_FORCE_INT32_ = 0x7fffffff /* not a mode: makes any int a valid value */
} fgc_merge_mode;

/* Bidirectional's merge of the forward and backward outputs, both (rows,
 * units): concat writes (rows, 2 units), the others (rows, units). */
int fgc_bidirectional_merge(const float *forward, const float *backward, float *output,
                            int64_t rows, int64_t units, fgc_merge_mode mode);

/* ---------------------------------------------------------------- attention (attention.cpp) */

typedef struct fgc_attention_params {
  int64_t batch, query_steps, value_steps, dim, value_dim;
  int score_concat; /* 0: scores = q k^T (score_mode "dot"); 1: "concat" */
  int causal;       /* nonzero: query step i sees value steps j <= i only */
} fgc_attention_params;

/* Keras's dot-product Attention (inference, dropout 0): query (batch, Tq,
 * dim), value (batch, Tv, value_dim), key (batch, Tv, dim; NULL: value, which
 * then needs value_dim == dim).
 *   dot:    s[i, j] = scale * sum_d q[i, d] k[j, d]
 *   concat: s[i, j] = concat_score_weight * sum_d tanh(scale * (q[i, d] + k[j, d]))
 * scale and concat_score_weight point to scalars (NULL: 1; Keras's use_scale
 * makes `scale` a weight). Causal: s[i, j] for j > i gets weight 0.
 * weights = softmax_j(s), output (batch, Tq, value_dim) = weights v.
 * `scores` (batch * Tq * Tv floats, required) receives the weights; the
 * backward needs them. */
int fgc_attention(const fgc_attention_params *p, const float *query, const float *value,
                  const float *key, const float *scale, const float *concat_score_weight,
                  float *output, float *scores);

/* ---------------------------------------------------------------- tensor operations (tensor_ops.cpp) */
/* What custom layers' traced bodies are made of, besides the layer kernels. */

/* fgc_copy (above) reads weights as values (add_weight's Variable op). */
/* y[i] = value for i < n (n may be 0): zeros, gradient buffers. */
int fgc_fill(float *y, float value, int64_t n);

typedef enum fgc_binary_op {
  FGC_BINARY_ADD = 0,
  FGC_BINARY_SUBTRACT = 1,
  FGC_BINARY_MULTIPLY = 2,
  FGC_BINARY_DIVIDE = 3,
  FGC_BINARY_FORCE_INT32 = 0x7fffffff
} fgc_binary_op;

/* y[i] = a[i % a_count] op b[i % b_count] for i < count: each operand is the
 * whole output or a trailing block of it repeated (a bias over rows, a scalar:
 * count 1). a_count and b_count must divide count. */
int fgc_binary(fgc_binary_op op, const float *a, int64_t a_count, const float *b, int64_t b_count,
               float *y, int64_t count);

/* x viewed as (outer, n, inner): y (outer, size, inner) = x[:, start:start + size, :]. */
int fgc_slice(const float *x, float *y, int64_t outer, int64_t n, int64_t inner, int64_t start,
              int64_t size);

typedef enum fgc_reduce_op {
  FGC_REDUCE_SUM = 0,
  FGC_REDUCE_MEAN = 1,
  FGC_REDUCE_MAX = 2,
  FGC_REDUCE_FORCE_INT32 = 0x7fffffff
} fgc_reduce_op;

/* x viewed as (outer, n, inner): y (outer, inner) = sum / mean / max over n. */
int fgc_reduce(fgc_reduce_op op, const float *x, float *y, int64_t outer, int64_t n,
               int64_t inner);

/* tf.gather (tensor_gather.cpp): params viewed as (batch, outer, n, inner) and
 * int32 indices as (batch, count); output (batch, outer, count, inner) with
 * output[b, o, j, :] = params[b, o, indices[b, j], :]. batch 1 is a lookup
 * shared by all indices (an embedding table), batch > 1 one per sample
 * (tf.gather's batch_dims=1). Transposes use fgc_permute. Every index must be
 * in [0, n): otherwise FGC_ERR_OUT_OF_RANGE, naming it, and nothing written. */
int fgc_gather_i32(const float *params, const int32_t *indices, float *output, int64_t batch,
                   int64_t outer, int64_t n, int64_t inner, int64_t count);

#ifdef __cplusplus
} /* extern "C" */
#endif

/* Opaque custom kernels (fgc_custom_call and the argument struct user kernels receive). */
#include "custom.h"

#endif /* FGC_RUNTIME_KERNELS_H */
