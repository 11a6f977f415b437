// Activations (elementwise and softmax, fused into other kernels or standalone)
// and the Dense layer: bias + x W + activation over caller buffers, on the direct
// convolution's register-blocked loop (a 1x1 convolution over the rows) when the
// output width is a multiple of the vector width, otherwise an Eigen GEMM.
#include "common.h"
#include "direct_conv.h"

#include <unsupported/Eigen/SpecialFunctions>

#include <algorithm>
#include <cmath>

namespace fgc::runtime::detail {

namespace {

constexpr float SeluAlpha = 1.6732632423543772848170429916717f;
constexpr float SeluScale = 1.0507009873554804934193349852946f;

} // namespace

void applyElementwise(fgc_activation_kind act, float *data, int64_t n) {
  ArrayMap a(data, n);
  switch (act) {
  case FGC_ACT_LINEAR:
  case FGC_ACT_SOFTMAX:
  case FGC_ACT_FORCE_INT32_:
    break;
  case FGC_ACT_RELU:
    a = a.max(0.0f);
    break;
  case FGC_ACT_SIGMOID:
    a = a.logistic();
    break;
  case FGC_ACT_TANH:
    a = a.tanh();
    break;
  case FGC_ACT_ELU:
    a = (a > 0.0f).select(a, a.expm1());
    break;
  case FGC_ACT_SELU:
    a = SeluScale * (a > 0.0f).select(a, SeluAlpha * a.expm1());
    break;
  case FGC_ACT_GELU:
    a = 0.5f * a * (1.0f + (a * float(M_SQRT1_2)).erf());
    break;
  case FGC_ACT_SOFTPLUS:
    a = a.max(0.0f) + (-a.abs()).exp().log1p();
    break;
  case FGC_ACT_SWISH:
    a = a * a.logistic();
    break;
  case FGC_ACT_HARD_SIGMOID:
    a = (0.2f * a + 0.5f).max(0.0f).min(1.0f);
    break;
  }
}

namespace {

// Softmax of each row of a (rows, cols) array, in place.
void softmaxRow(float *data, int64_t cols) {
  ArrayMap row(data, cols);
  row = (row - row.maxCoeff()).exp();
  row /= row.sum();
}

void softmaxRows(float *data, int64_t rows, int64_t cols) {
  const int threads = threadsFor(rows * cols * 8);
  if (threads == 1) { // small (batch 1): no OpenMP team at all
    for (int64_t r = 0; r < rows; ++r)
      softmaxRow(data + r * cols, cols);
    return;
  }
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    softmaxRow(data + r * cols, cols);
}

// Softmax along the middle axis of an (outer, axis, inner) array with inner > 1.
// Each softmax runs down a strided column, so work on blocks of adjacent columns
// whose maxima and sums sit in small stack buffers; every loop is contiguous.
void softmaxMiddle(const float *x, float *y, int64_t outer, int64_t axis, int64_t inner) {
  constexpr int64_t Block = 256;
  int64_t blocks = (inner + Block - 1) / Block;
#pragma omp parallel for collapse(2) num_threads(threadsFor(outer * axis * inner * 8)) schedule(static)
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t b = 0; b < blocks; ++b) {
      int64_t begin = b * Block, width = std::min(Block, inner - begin);
      const float *in = x + o * axis * inner + begin;
      float *out = y + o * axis * inner + begin;
      float maxima[Block], sums[Block];
      Eigen::Map<Eigen::ArrayXf> mx(maxima, width), sum(sums, width);
      mx = ConstArrayMap(in, width);
      for (int64_t a = 1; a < axis; ++a)
        mx = mx.max(ConstArrayMap(in + a * inner, width));
      sum.setZero();
      for (int64_t a = 0; a < axis; ++a) {
        ArrayMap row(out + a * inner, width);
        row = (ConstArrayMap(in + a * inner, width) - mx).exp();
        sum += row;
      }
      mx = sum.inverse();
      for (int64_t a = 0; a < axis; ++a)
        ArrayMap(out + a * inner, width) *= mx;
    }
  }
}

} // namespace

bool isValidActivation(int act) { return act >= FGC_ACT_LINEAR && act <= FGC_ACT_HARD_SIGMOID; }

void applyActivation(fgc_activation_kind act, float *data, int64_t rows, int64_t cols) {
  if (act == FGC_ACT_LINEAR)
    return;
  if (act == FGC_ACT_SOFTMAX) {
    softmaxRows(data, rows, cols);
    return;
  }
  int64_t n = rows * cols;
  // Fixed chunks whatever the thread count: Eigen may treat a chunk's unaligned
  // ends with scalar code, so the chunking must not depend on the threads.
  constexpr int64_t Chunk = 4096;
  int64_t chunks = (n + Chunk - 1) / Chunk;
  const int threads = threadsFor(n * 8);
  if (threads == 1) { // e.g. batch 1: no OpenMP team at all
    for (int64_t c = 0; c < chunks; ++c)
      applyElementwise(act, data + c * Chunk, std::min(Chunk, n - c * Chunk));
    return;
  }
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    int64_t begin = c * Chunk;
    applyElementwise(act, data + begin, std::min(Chunk, n - begin));
  }
}

void biasActivation(float *data, int64_t rows, int64_t cols, const float *bias,
                    fgc_activation_kind act) {
  if (bias) {
    MatrixMap y(data, rows, cols);
    Eigen::Map<const Eigen::RowVectorXf> b(bias, cols);
    y.rowwise() += b;
  }
  applyActivation(act, data, rows, cols);
}

} // namespace fgc::runtime::detail

using namespace fgc::runtime::detail;

extern "C" {

int fgc_activation(fgc_activation_kind act, const float *x, float *y, int64_t rows,
                   int64_t cols) {
  constexpr const char *Name = "fgc_activation";
  FGC_CHECK_PTR(Name, x);
  FGC_CHECK_PTR(Name, y);
  FGC_CHECK_POSITIVE(Name, rows);
  FGC_CHECK_POSITIVE(Name, cols);
  FGC_CHECK_ACTIVATION(Name, act);
  if (x != y)
    std::copy(x, x + rows * cols, y);
  applyActivation(act, y, rows, cols);
  return FGC_OK;
}

int fgc_softmax(const float *x, float *y, const int64_t *shape, int rank, int axis) {
  constexpr const char *Name = "fgc_softmax";
  FGC_CHECK_PTR(Name, x);
  FGC_CHECK_PTR(Name, y);
  FGC_CHECK_PTR(Name, shape);
  if (rank < 1 || rank > 8)
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: rank must be in [1, 8], got %d", Name, rank);
  if (axis < -rank || axis >= rank)
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: axis %d out of range for rank %d", Name, axis,
                rank);
  if (axis < 0)
    axis += rank;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < rank; ++d) {
    if (shape[d] < 1)
      return fail(FGC_ERR_INVALID_ARGUMENT, "%s: shape[%d] must be >= 1, got %lld", Name, d,
                  static_cast<long long>(shape[d]));
    if (d < axis)
      outer *= shape[d];
    else if (d > axis)
      inner *= shape[d];
  }
  int64_t length = shape[axis];
  if (inner == 1) {
    if (x != y)
      std::copy(x, x + outer * length, y);
    softmaxRows(y, outer, length);
  } else {
    softmaxMiddle(x, y, outer, length, inner);
  }
  return FGC_OK;
}

int fgc_elementwise(const int *program, int program_length, int num_inputs,
                    const float *const *inputs, int64_t count, float *output) {
  constexpr const char *Name = "fgc_elementwise";
  FGC_CHECK_PTR(Name, program);
  FGC_CHECK_POSITIVE(Name, num_inputs);
  FGC_CHECK_PTR(Name, inputs);
  FGC_CHECK_PTR(Name, output);
  FGC_CHECK_POSITIVE(Name, count);
  if (program_length < 0)
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: program_length must be >= 0, got %d", Name,
                program_length);
  for (int k = 0; k < num_inputs; ++k)
    if (!inputs[k])
      return fail(FGC_ERR_INVALID_ARGUMENT, "%s: inputs[%d] is null", Name, k);
  for (int i = 0; i < program_length; ++i) {
    const int op = program[2 * i], operand = program[2 * i + 1];
    bool ok = (op == FGC_EW_ADD && operand >= 0 && operand < num_inputs) ||
              (op == FGC_EW_DIVIDE && operand > 0) ||
              (op == FGC_EW_ACTIVATION && isValidActivation(operand) &&
               operand != FGC_ACT_SOFTMAX);
    if (!ok)
      return fail(FGC_ERR_INVALID_ARGUMENT,
                  "%s: instruction %d (opcode %d, operand %d) is invalid for %d inputs", Name, i,
                  op, operand, num_inputs);
  }
  // Fixed chunks whatever the thread count (determinism); each chunk runs the whole program on
  // a stack buffer, so the output may alias any input.
  constexpr int64_t Chunk = 4096;
  const int64_t chunks = (count + Chunk - 1) / Chunk;
  const int threads = threadsFor(count * (num_inputs + program_length) * 2);
  auto run = [&](int64_t c) {
    const int64_t begin = c * Chunk, n = std::min(Chunk, count - begin);
    float value[Chunk];
    ArrayMap v(value, n);
    v = ConstArrayMap(inputs[0] + begin, n);
    for (int i = 0; i < program_length; ++i) {
      const int operand = program[2 * i + 1];
      switch (program[2 * i]) {
      case FGC_EW_ADD: v += ConstArrayMap(inputs[operand] + begin, n); break;
      case FGC_EW_DIVIDE: v *= 1.0f / static_cast<float>(operand); break;
      default: applyElementwise(static_cast<fgc_activation_kind>(operand), value, n); break;
      }
    }
    std::copy(value, value + n, output + begin);
  };
  if (threads == 1) {
    for (int64_t c = 0; c < chunks; ++c)
      run(c);
    return FGC_OK;
  }
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t c = 0; c < chunks; ++c)
    run(c);
  return FGC_OK;
}

int fgc_dense(const float *x, const float *kernel, const float *bias, float *y, int64_t rows,
              int64_t in, int64_t out, fgc_activation_kind act) {
  constexpr const char *Name = "fgc_dense";
  FGC_CHECK_PTR(Name, x);
  FGC_CHECK_PTR(Name, kernel);
  FGC_CHECK_PTR(Name, y);
  FGC_CHECK_POSITIVE(Name, rows);
  FGC_CHECK_POSITIVE(Name, in);
  FGC_CHECK_POSITIVE(Name, out);
  FGC_CHECK_ACTIVATION(Name, act);
  // One fork/join: each thread multiplies its rows and finishes them. The register-blocked
  // loop keeps 6 rows x 64 outputs (AVX-512) in registers over the whole of `in`, reading
  // the kernel straight from Keras's (in, out) layout: no packing, so it also serves a
  // single row; it runs 1.3-1.6x faster than Eigen's GEMM on the MLP shapes measured.
  const bool blocked = out % direct::Width == 0;
  parallelRows(rows, gemmThreads(rows, in, out), [&](int64_t first, int64_t last) {
    if (blocked) {
      direct::Plan q{};
      q.kh = q.kw = 1;
      q.inC = in;
      q.outC = out;
      q.strideH = q.strideW = q.dilH = q.dilW = 1;
      q.outH = q.inH = 1;
      q.outW = q.inW = last - first;
      q.rowStride = q.imageStride = (last - first) * in;
      q.relu = act == FGC_ACT_RELU;
      direct::row(q, x + first * in, kernel, bias, y + first * out);
      if (!q.relu)
        applyActivation(act, y + first * out, last - first, out);
      return;
    }
    gemmBias(x + first * in, kernel, bias, y + first * out, last - first, in, out);
    applyActivation(act, y + first * out, last - first, out);
  });
  return FGC_OK;
}

} // extern "C"
