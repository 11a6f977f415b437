// Training kernels for the memory-bound layers: the merges' backward
// (Concatenate, Add, Average), BatchNormalization with batch statistics and
// its backward, inverted Dropout with a counter-based hash RNG, and the
// Embedding backward (a scatter-add into the table gradient).
#include "grad_common.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace fgc::runtime::detail {

namespace {

constexpr int64_t Chunk = 4096;

int checkMergeInputs(const char *name, int numInputs, const float *dy,
                     float *const *dinputs) {
  FGC_CHECK_POSITIVE(name, numInputs);
  FGC_CHECK_PTR(name, dy);
  FGC_CHECK_PTR(name, dinputs);
  return FGC_OK;
}

int sumBackward(const char *name, int numInputs, const float *dy, int64_t count,
                float *const *dinputs, const int *inputFlags, float scale) {
  if (int status = checkMergeInputs(name, numInputs, dy, dinputs))
    return status;
  FGC_CHECK_POSITIVE(name, count);
  const int64_t chunks = (count + Chunk - 1) / Chunk;
#pragma omp parallel for num_threads(threadsFor(count * numInputs)) schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * Chunk, len = std::min(Chunk, count - begin);
    ConstArrayMap g(dy + begin, len);
    for (int k = 0; k < numInputs; ++k) {
      if (!dinputs[k])
        continue;
      ArrayMap dst(dinputs[k] + begin, len);
      if (inputFlags && accumulateInput(inputFlags[k]))
        dst += g * scale;
      else
        dst = g * scale;
    }
  }
  return FGC_OK;
}

// Per-channel statistics over rows, threads splitting the channels into
// blocks; every channel sums its rows in order (double), so the result does
// not depend on the thread count.
template <typename Fn> void forChannelBlocks(int64_t rows, int64_t channels, Fn &&fn) {
  constexpr int64_t Block = 64;
  const int64_t blocks = (channels + Block - 1) / Block;
#pragma omp parallel for num_threads(threadsFor(rows * channels * 2)) schedule(static)
  for (int64_t b = 0; b < blocks; ++b)
    fn(b * Block, std::min(Block, channels - b * Block));
}

uint64_t mix64(uint64_t v) {
  v ^= v >> 30;
  v *= 0xBF58476D1CE4E5B9ull;
  v ^= v >> 27;
  v *= 0x94D049BB133111EBull;
  v ^= v >> 31;
  return v;
}

template <typename Index>
int embeddingBackward(const char *name, const Index *indices, int64_t count, const float *dy,
                      int64_t inputDim, int64_t outputDim, float *dtable, int flags) {
  FGC_CHECK_PTR(name, dtable);
  FGC_CHECK_POSITIVE(name, inputDim);
  FGC_CHECK_POSITIVE(name, outputDim);
  if (count < 0)
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: count must be >= 0, got %lld", name,
                static_cast<long long>(count));
  if (count > 0) {
    FGC_CHECK_PTR(name, indices);
    FGC_CHECK_PTR(name, dy);
  }
  for (int64_t i = 0; i < count; ++i) {
    const int64_t index = static_cast<int64_t>(indices[i]);
    if (index < 0 || index >= inputDim)
      return fail(FGC_ERR_OUT_OF_RANGE,
                  "%s: index %lld at position %lld is out of range [0, %lld)", name,
                  static_cast<long long>(index), static_cast<long long>(i),
                  static_cast<long long>(inputDim));
  }
  zeroUnless(accumulateParams(flags), dtable, inputDim * outputDim);
  // Threads split the columns; each adds the rows in index order.
  constexpr int64_t Block = 64;
  const int64_t blocks = (outputDim + Block - 1) / Block;
#pragma omp parallel for num_threads(threadsFor(count * outputDim)) schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t begin = b * Block, width = std::min(Block, outputDim - begin);
    for (int64_t i = 0; i < count; ++i) {
      float *dst = dtable + static_cast<int64_t>(indices[i]) * outputDim + begin;
      const float *src = dy + i * outputDim + begin;
      for (int64_t j = 0; j < width; ++j)
        dst[j] += src[j];
    }
  }
  return FGC_OK;
}

} // namespace

} // namespace fgc::runtime::detail

using namespace fgc::runtime::detail;

extern "C" {

int fgc_concatenate_backward(int num_inputs, const float *dy, const int64_t *axis_sizes,
                             int64_t outer, int64_t inner, float *const *dinputs,
                             const int *input_flags) {
  constexpr const char *Name = "fgc_concatenate_backward";
  if (int status = checkMergeInputs(Name, num_inputs, dy, dinputs))
    return status;
  FGC_CHECK_PTR(Name, axis_sizes);
  FGC_CHECK_POSITIVE(Name, outer);
  FGC_CHECK_POSITIVE(Name, inner);
  int64_t total = 0;
  for (int k = 0; k < num_inputs; ++k) {
    if (axis_sizes[k] < 1)
      return fail(FGC_ERR_INVALID_ARGUMENT, "%s: axis_sizes[%d] must be >= 1, got %lld", Name, k,
                  static_cast<long long>(axis_sizes[k]));
    total += axis_sizes[k];
  }
  const int64_t row = total * inner;
#pragma omp parallel for num_threads(threadsFor(outer * row)) schedule(static)
  for (int64_t o = 0; o < outer; ++o) {
    const float *src = dy + o * row;
    for (int k = 0; k < num_inputs; ++k) {
      const int64_t chunk = axis_sizes[k] * inner;
      if (dinputs[k]) {
        float *dst = dinputs[k] + o * chunk;
        if (input_flags && accumulateInput(input_flags[k]))
          ArrayMap(dst, chunk) += ConstArrayMap(src, chunk);
        else
          std::memcpy(dst, src, sizeof(float) * chunk);
      }
      src += chunk;
    }
  }
  return FGC_OK;
}

int fgc_add_backward(int num_inputs, const float *dy, int64_t count, float *const *dinputs,
                     const int *input_flags) {
  return sumBackward("fgc_add_backward", num_inputs, dy, count, dinputs, input_flags, 1.0f);
}

int fgc_average_backward(int num_inputs, const float *dy, int64_t count, float *const *dinputs,
                         const int *input_flags) {
  return sumBackward("fgc_average_backward", num_inputs, dy, count, dinputs, input_flags,
                     num_inputs > 0 ? 1.0f / static_cast<float>(num_inputs) : 1.0f);
}

int fgc_batch_norm_train_forward(const float *x, float *y, int64_t rows, int64_t channels,
                                 const float *gamma, const float *beta, float *moving_mean,
                                 float *moving_variance, float momentum, float epsilon,
                                 float *save_mean, float *save_invstd, int update_moving) {
  constexpr const char *Name = "fgc_batch_norm_train_forward";
  FGC_CHECK_PTR(Name, x);
  FGC_CHECK_PTR(Name, y);
  FGC_CHECK_PTR(Name, save_mean);
  FGC_CHECK_PTR(Name, save_invstd);
  FGC_CHECK_POSITIVE(Name, rows);
  FGC_CHECK_POSITIVE(Name, channels);
  if (update_moving) {
    FGC_CHECK_PTR(Name, moving_mean);
    FGC_CHECK_PTR(Name, moving_variance);
  }
  if (!(epsilon >= 0.0f))
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: epsilon must be >= 0", Name);
  forChannelBlocks(rows, channels, [&](int64_t begin, int64_t width) {
    double mean[64], sq[64];
    std::fill(mean, mean + width, 0.0);
    std::fill(sq, sq + width, 0.0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < width; ++j)
        mean[j] += x[r * channels + begin + j];
    for (int64_t j = 0; j < width; ++j)
      mean[j] /= double(rows);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < width; ++j) {
        double d = x[r * channels + begin + j] - mean[j];
        sq[j] += d * d;
      }
    float scale[64], shift[64];
    for (int64_t j = 0; j < width; ++j) {
      const int64_t c = begin + j;
      const double var = sq[j] / double(rows);
      const double invstd = 1.0 / std::sqrt(var + double(epsilon));
      save_mean[c] = static_cast<float>(mean[j]);
      save_invstd[c] = static_cast<float>(invstd);
      const double g = gamma ? gamma[c] : 1.0;
      scale[j] = static_cast<float>(g * invstd);
      shift[j] = static_cast<float>((beta ? beta[c] : 0.0) - mean[j] * g * invstd);
      if (update_moving) {
        const double unbiased = rows > 1 ? sq[j] / double(rows - 1) : var;
        moving_mean[c] = static_cast<float>(moving_mean[c] * double(momentum) +
                                            mean[j] * (1.0 - double(momentum)));
        moving_variance[c] = static_cast<float>(moving_variance[c] * double(momentum) +
                                                unbiased * (1.0 - double(momentum)));
      }
    }
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < width; ++j)
        y[r * channels + begin + j] = x[r * channels + begin + j] * scale[j] + shift[j];
  });
  return FGC_OK;
}

int fgc_batch_norm_backward(const float *x, const float *dy, const float *gamma,
                            const float *save_mean, const float *save_invstd, float *dx,
                            float *dgamma, float *dbeta, int64_t rows, int64_t channels,
                            int flags) {
  constexpr const char *Name = "fgc_batch_norm_backward";
  FGC_CHECK_PTR(Name, x);
  FGC_CHECK_PTR(Name, dy);
  FGC_CHECK_PTR(Name, save_mean);
  FGC_CHECK_PTR(Name, save_invstd);
  FGC_CHECK_POSITIVE(Name, rows);
  FGC_CHECK_POSITIVE(Name, channels);
  const bool accIn = accumulateInput(flags), accParams = accumulateParams(flags);
  forChannelBlocks(rows, channels, [&](int64_t begin, int64_t width) {
    double sumDy[64], sumDyXh[64];
    std::fill(sumDy, sumDy + width, 0.0);
    std::fill(sumDyXh, sumDyXh + width, 0.0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < width; ++j) {
        const int64_t k = r * channels + begin + j;
        const double xh = (double(x[k]) - save_mean[begin + j]) * save_invstd[begin + j];
        sumDy[j] += dy[k];
        sumDyXh[j] += double(dy[k]) * xh;
      }
    for (int64_t j = 0; j < width; ++j) {
      const int64_t c = begin + j;
      if (dbeta)
        dbeta[c] = static_cast<float>(accParams ? dbeta[c] + sumDy[j] : sumDy[j]);
      if (dgamma)
        dgamma[c] = static_cast<float>(accParams ? dgamma[c] + sumDyXh[j] : sumDyXh[j]);
    }
    if (!dx)
      return;
    float scale[64], meanDy[64], meanDyXh[64];
    for (int64_t j = 0; j < width; ++j) {
      const int64_t c = begin + j;
      scale[j] = (gamma ? gamma[c] : 1.0f) * save_invstd[c];
      meanDy[j] = static_cast<float>(sumDy[j] / double(rows));
      meanDyXh[j] = static_cast<float>(sumDyXh[j] / double(rows));
    }
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < width; ++j) {
        const int64_t k = r * channels + begin + j, c = begin + j;
        const float xh = (x[k] - save_mean[c]) * save_invstd[c];
        const float g = scale[j] * (dy[k] - meanDy[j] - xh * meanDyXh[j]);
        dx[k] = accIn ? dx[k] + g : g;
      }
  });
  return FGC_OK;
}

int fgc_dropout_forward(const float *x, float *y, float *mask, int64_t n, float rate,
                        uint64_t seed, uint64_t counter) {
  constexpr const char *Name = "fgc_dropout_forward";
  if (n < 0)
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: n must be >= 0, got %lld", Name,
                static_cast<long long>(n));
  if (!(rate >= 0.0f && rate < 1.0f))
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: rate must be in [0, 1), got %g", Name,
                static_cast<double>(rate));
  if (n == 0)
    return FGC_OK;
  FGC_CHECK_PTR(Name, x);
  FGC_CHECK_PTR(Name, y);
  FGC_CHECK_PTR(Name, mask);
  constexpr uint64_t Golden = 0x9E3779B97F4A7C15ull;
  const uint64_t key = mix64(seed ^ mix64(counter + Golden));
  const float keep = 1.0f / (1.0f - rate);
#pragma omp parallel for num_threads(threadsFor(n * 4)) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t bits = mix64(key + (static_cast<uint64_t>(i) + 1) * Golden) >> 40;
    const float u = static_cast<float>(bits) * (1.0f / 16777216.0f);
    const float m = u < rate ? 0.0f : keep;
    mask[i] = m;
    y[i] = x[i] * m;
  }
  return FGC_OK;
}

int fgc_dropout_backward(const float *mask, const float *dy, float *dx, int64_t n, int flags) {
  constexpr const char *Name = "fgc_dropout_backward";
  if (n < 0)
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: n must be >= 0, got %lld", Name,
                static_cast<long long>(n));
  if (n == 0)
    return FGC_OK;
  FGC_CHECK_PTR(Name, mask);
  FGC_CHECK_PTR(Name, dy);
  FGC_CHECK_PTR(Name, dx);
  const bool accumulate = accumulateInput(flags);
  const int64_t chunks = (n + Chunk - 1) / Chunk;
#pragma omp parallel for num_threads(threadsFor(n)) schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * Chunk, len = std::min(Chunk, n - begin);
    ArrayMap out(dx + begin, len);
    if (accumulate)
      out += ConstArrayMap(dy + begin, len) * ConstArrayMap(mask + begin, len);
    else
      out = ConstArrayMap(dy + begin, len) * ConstArrayMap(mask + begin, len);
  }
  return FGC_OK;
}

int fgc_embedding_backward_i32(const int32_t *indices, int64_t count, const float *dy,
                               int64_t input_dim, int64_t output_dim, float *dtable, int flags) {
  return embeddingBackward("fgc_embedding_backward_i32", indices, count, dy, input_dim,
                           output_dim, dtable, flags);
}

int fgc_embedding_backward_i64(const int64_t *indices, int64_t count, const float *dy,
                               int64_t input_dim, int64_t output_dim, float *dtable, int flags) {
  return embeddingBackward("fgc_embedding_backward_i64", indices, count, dy, input_dim,
                           output_dim, dtable, flags);
}

} // extern "C"
