// Gradients of the activations (elementwise, softmax on rows or on any axis),
// of the Dense layer (two GEMMs through gemm() plus a bias column sum), and the
// small helpers the gradient kernels share (grad_common.h) or export for
// generated training code (fgc_scale_add, fgc_fill).
#include "grad_common.h"

#include <unsupported/Eigen/SpecialFunctions>

#include <algorithm>
#include <cmath>

namespace fgc::runtime::detail {

namespace {

constexpr float SeluAlpha = 1.6732632423543772848170429916717f;
constexpr float SeluScale = 1.0507009873554804934193349852946f;
constexpr int64_t Chunk = 4096;

// g = dy * act'(.) for n contiguous elements of an elementwise kind.
void elementwiseGrad(fgc_activation_kind act, const float *zp, const float *yp, const float *dyp,
                     float *out, int64_t n) {
  ConstArrayMap dy(dyp, n);
  ArrayMap g(out, n);
  switch (act) {
  case FGC_ACT_LINEAR:
  case FGC_ACT_SOFTMAX:
  case FGC_ACT_FORCE_INT32_:
    g = dy;
    return;
  case FGC_ACT_GELU: {
    ConstArrayMap z(zp, n);
    const float invSqrt2Pi = 0.39894228040143267794f;
    g = dy * (0.5f * (1.0f + (z * float(M_SQRT1_2)).erf()) + z * (-0.5f * z * z).exp() * invSqrt2Pi);
    return;
  }
  case FGC_ACT_SOFTPLUS:
    g = dy * ConstArrayMap(zp, n).logistic();
    return;
  case FGC_ACT_SWISH: {
    ConstArrayMap z(zp, n);
    g = z.logistic();
    g = dy * g * (1.0f + z * (1.0f - g));
    return;
  }
  default:
    break;
  }
  ConstArrayMap y(yp, n);
  switch (act) {
  case FGC_ACT_RELU:
    g = (y > 0.0f).select(dy, 0.0f);
    break;
  case FGC_ACT_SIGMOID:
    g = dy * y * (1.0f - y);
    break;
  case FGC_ACT_TANH:
    g = dy * (1.0f - y * y);
    break;
  case FGC_ACT_ELU:
    g = (y > 0.0f).select(dy, dy * (y + 1.0f));
    break;
  case FGC_ACT_SELU:
    g = (y > 0.0f).select(dy * SeluScale, dy * (y + SeluScale * SeluAlpha));
    break;
  case FGC_ACT_HARD_SIGMOID:
    g = (y > 0.0f && y < 1.0f).select(dy * 0.2f, 0.0f);
    break;
  default:
    break;
  }
}

// Softmax gradient of one row: out = y (dy - sum(dy y)); out may equal dy.
void softmaxRowGrad(const float *yp, const float *dyp, float *out, int64_t n, bool accumulate) {
  double dot = 0.0;
  for (int64_t j = 0; j < n; ++j)
    dot += double(dyp[j]) * double(yp[j]);
  const float s = static_cast<float>(dot);
  for (int64_t j = 0; j < n; ++j) {
    float g = yp[j] * (dyp[j] - s);
    out[j] = accumulate ? out[j] + g : g;
  }
}

} // namespace

bool needsPreactivation(fgc_activation_kind act) {
  return act == FGC_ACT_GELU || act == FGC_ACT_SOFTPLUS || act == FGC_ACT_SWISH;
}

bool derivativeFromOutput(fgc_activation_kind act) {
  switch (act) {
  case FGC_ACT_LINEAR:
  case FGC_ACT_RELU:
  case FGC_ACT_SIGMOID:
  case FGC_ACT_TANH:
  case FGC_ACT_ELU:
  case FGC_ACT_SELU:
  case FGC_ACT_HARD_SIGMOID:
    return true;
  default:
    return false;
  }
}

float outputDerivative(fgc_activation_kind act, float y) {
  switch (act) {
  case FGC_ACT_RELU:
    return y > 0.0f ? 1.0f : 0.0f;
  case FGC_ACT_SIGMOID:
    return y * (1.0f - y);
  case FGC_ACT_TANH:
    return 1.0f - y * y;
  case FGC_ACT_ELU:
    return y > 0.0f ? 1.0f : y + 1.0f;
  case FGC_ACT_SELU:
    return y > 0.0f ? SeluScale : y + SeluScale * SeluAlpha;
  case FGC_ACT_HARD_SIGMOID:
    return y > 0.0f && y < 1.0f ? 0.2f : 0.0f;
  default:
    return 1.0f;
  }
}

int checkActivationInputs(const char *kernel, fgc_activation_kind act, const float *z,
                          const float *y) {
  FGC_CHECK_ACTIVATION(kernel, act);
  if (needsPreactivation(act)) {
    if (!z)
      return fail(FGC_ERR_INVALID_ARGUMENT,
                  "%s: z (the pre-activation) is null but activation %d needs it", kernel,
                  static_cast<int>(act));
  } else if (act != FGC_ACT_LINEAR && !y) {
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: y (the forward output) is null", kernel);
  }
  return FGC_OK;
}

void activationGrad(fgc_activation_kind act, const float *z, const float *y, const float *dy,
                    float *dx, int64_t rows, int64_t cols, bool accumulate) {
  if (act == FGC_ACT_SOFTMAX) {
#pragma omp parallel for num_threads(threadsFor(rows * cols * 4)) schedule(static)
    for (int64_t r = 0; r < rows; ++r)
      softmaxRowGrad(y + r * cols, dy + r * cols, dx + r * cols, cols, accumulate);
    return;
  }
  const int64_t n = rows * cols, chunks = (n + Chunk - 1) / Chunk;
#pragma omp parallel for num_threads(threadsFor(n * 4)) schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * Chunk, len = std::min(Chunk, n - begin);
    float buffer[Chunk];
    elementwiseGrad(act, z ? z + begin : nullptr, y ? y + begin : nullptr, dy + begin, buffer,
                    len);
    ArrayMap out(dx + begin, len);
    if (accumulate)
      out += ConstArrayMap(buffer, len);
    else
      out = ConstArrayMap(buffer, len);
  }
}

const float *fusedActivationGrad(fgc_activation_kind act, const float *z, const float *y,
                                 const float *dy, int64_t rows, int64_t cols, float *buffer) {
  if (act == FGC_ACT_LINEAR)
    return dy;
  activationGrad(act, z, y, dy, buffer, rows, cols, false);
  return buffer;
}

void columnSums(const float *a, int64_t rows, int64_t cols, float *out, bool accumulate) {
  constexpr int64_t Block = 256;
  const int64_t blocks = (cols + Block - 1) / Block;
  // Each block of columns sums its rows in order: the result is independent
  // of how blocks are spread over threads.
#pragma omp parallel for num_threads(threadsFor(rows * cols)) schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t begin = b * Block, width = std::min(Block, cols - begin);
    double sums[Block];
    std::fill(sums, sums + width, 0.0);
    for (int64_t r = 0; r < rows; ++r) {
      const float *row = a + r * cols + begin;
      for (int64_t j = 0; j < width; ++j)
        sums[j] += row[j];
    }
    for (int64_t j = 0; j < width; ++j)
      out[begin + j] = static_cast<float>(accumulate ? out[begin + j] + sums[j] : sums[j]);
  }
}

void transpose(const float *a, int64_t rows, int64_t cols, float *out) {
  constexpr int64_t Tile = 32;
  const int64_t tilesR = (rows + Tile - 1) / Tile, tilesC = (cols + Tile - 1) / Tile;
#pragma omp parallel for collapse(2) num_threads(threadsFor(rows * cols)) schedule(static)
  for (int64_t tc = 0; tc < tilesC; ++tc)
    for (int64_t tr = 0; tr < tilesR; ++tr) {
      const int64_t r1 = std::min(rows, (tr + 1) * Tile), c1 = std::min(cols, (tc + 1) * Tile);
      for (int64_t c = tc * Tile; c < c1; ++c)
        for (int64_t r = tr * Tile; r < r1; ++r)
          out[c * rows + r] = a[r * cols + c];
    }
}

void zeroUnless(bool accumulate, float *data, int64_t n) {
  if (accumulate)
    return;
  const int64_t chunks = (n + Chunk - 1) / Chunk;
#pragma omp parallel for num_threads(threadsFor(n)) schedule(static)
  for (int64_t c = 0; c < chunks; ++c)
    std::fill(data + c * Chunk, data + std::min(n, (c + 1) * Chunk), 0.0f);
}

} // namespace fgc::runtime::detail

using namespace fgc::runtime::detail;

extern "C" {

int fgc_scale_add(const float *x, float alpha, float *y, int64_t n) {
  constexpr const char *Name = "fgc_scale_add";
  if (n < 0)
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: n must be >= 0, got %lld", Name,
                static_cast<long long>(n));
  if (n == 0)
    return FGC_OK;
  FGC_CHECK_PTR(Name, x);
  FGC_CHECK_PTR(Name, y);
  const int64_t chunks = (n + Chunk - 1) / Chunk;
#pragma omp parallel for num_threads(threadsFor(n)) schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * Chunk, len = std::min(Chunk, n - begin);
    ArrayMap(y + begin, len) += alpha * ConstArrayMap(x + begin, len);
  }
  return FGC_OK;
}

int fgc_fill(float *y, float value, int64_t n) {
  constexpr const char *Name = "fgc_fill";
  if (n < 0)
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: n must be >= 0, got %lld", Name,
                static_cast<long long>(n));
  if (n == 0)
    return FGC_OK;
  FGC_CHECK_PTR(Name, y);
  const int64_t chunks = (n + Chunk - 1) / Chunk;
#pragma omp parallel for num_threads(threadsFor(n)) schedule(static)
  for (int64_t c = 0; c < chunks; ++c)
    std::fill(y + c * Chunk, y + std::min(n, (c + 1) * Chunk), value);
  return FGC_OK;
}

int fgc_activation_needs_preactivation(fgc_activation_kind act) {
  if (!isValidActivation(static_cast<int>(act)))
    return -1;
  return needsPreactivation(act) ? 1 : 0;
}

int fgc_activation_backward(fgc_activation_kind act, const float *z, const float *y,
                            const float *dy, float *dx, int64_t rows, int64_t cols, int flags) {
  constexpr const char *Name = "fgc_activation_backward";
  FGC_CHECK_PTR(Name, dy);
  FGC_CHECK_PTR(Name, dx);
  FGC_CHECK_POSITIVE(Name, rows);
  FGC_CHECK_POSITIVE(Name, cols);
  if (int status = checkActivationInputs(Name, act, z, y))
    return status;
  activationGrad(act, z, y, dy, dx, rows, cols, accumulateInput(flags));
  return FGC_OK;
}

int fgc_softmax_backward(const float *y, const float *dy, float *dx, const int64_t *shape,
                         int rank, int axis, int flags) {
  constexpr const char *Name = "fgc_softmax_backward";
  FGC_CHECK_PTR(Name, y);
  FGC_CHECK_PTR(Name, dy);
  FGC_CHECK_PTR(Name, dx);
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
  const int64_t length = shape[axis];
  const bool accumulate = accumulateInput(flags);
  if (inner == 1) {
    activationGrad(FGC_ACT_SOFTMAX, nullptr, y, dy, dx, outer, length, accumulate);
    return FGC_OK;
  }
  // Softmax down strided columns: blocks of adjacent columns keep their dot
  // products in a stack buffer, so every loop stays contiguous.
  constexpr int64_t Block = 256;
  const int64_t blocks = (inner + Block - 1) / Block;
#pragma omp parallel for collapse(2) num_threads(threadsFor(outer * length * inner * 4)) schedule(static)
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t begin = b * Block, width = std::min(Block, inner - begin);
      const int64_t base = o * length * inner + begin;
      double dots[Block];
      std::fill(dots, dots + width, 0.0);
      for (int64_t a = 0; a < length; ++a)
        for (int64_t j = 0; j < width; ++j)
          dots[j] += double(dy[base + a * inner + j]) * double(y[base + a * inner + j]);
      for (int64_t a = 0; a < length; ++a)
        for (int64_t j = 0; j < width; ++j) {
          const int64_t k = base + a * inner + j;
          float g = y[k] * (dy[k] - static_cast<float>(dots[j]));
          dx[k] = accumulate ? dx[k] + g : g;
        }
    }
  }
  return FGC_OK;
}

size_t fgc_dense_backward_scratch_size(int64_t rows, int64_t in, int64_t out,
                                       fgc_activation_kind act) {
  if (rows < 1 || in < 1 || out < 1 || !isValidActivation(static_cast<int>(act)))
    return 0;
  return static_cast<size_t>(rows * in + (act == FGC_ACT_LINEAR ? 0 : rows * out));
}

int fgc_dense_backward(const float *x, const float *kernel, const float *z, const float *y,
                       const float *dy, float *dx, float *dkernel, float *dbias, int64_t rows,
                       int64_t in, int64_t out, fgc_activation_kind act, float *scratch,
                       int flags) {
  constexpr const char *Name = "fgc_dense_backward";
  FGC_CHECK_PTR(Name, dy);
  FGC_CHECK_POSITIVE(Name, rows);
  FGC_CHECK_POSITIVE(Name, in);
  FGC_CHECK_POSITIVE(Name, out);
  if (int status = checkActivationInputs(Name, act, z, y))
    return status;
  if (dx)
    FGC_CHECK_PTR(Name, kernel);
  if (dkernel)
    FGC_CHECK_PTR(Name, x);
  if (act != FGC_ACT_LINEAR || dkernel)
    FGC_CHECK_PTR(Name, scratch);
  float *xT = scratch;                                   // (in, rows) for dkernel
  const float *dz = fusedActivationGrad(act, z, y, dy, rows, out, scratch + rows * in);
  if (dbias)
    columnSums(dz, rows, out, dbias, accumulateParams(flags));
  if (dkernel) {
    transpose(x, rows, in, xT);
    gemm(xT, dz, dkernel, in, rows, out, /*transposeB=*/false, accumulateParams(flags));
  }
  if (dx)
    gemm(dz, kernel, dx, rows, out, in, /*transposeB=*/true, accumulateInput(flags));
  return FGC_OK;
}

} // extern "C"
