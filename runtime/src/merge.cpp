// Merge layers (Concatenate, Add, Average) and inference-time
// BatchNormalization: memory-bound kernels, written as contiguous, vectorised
// passes over caller buffers.
#include "common.h"

#include <algorithm>
#include <cmath>
#include <cstring>

using namespace fgc::runtime::detail;

extern "C" {

int fgc_concatenate(int num_inputs, const float *const *inputs, const int64_t *axis_sizes,
                    int64_t outer, int64_t inner, float *output) {
  constexpr const char *Name = "fgc_concatenate";
  FGC_CHECK_POSITIVE(Name, num_inputs);
  FGC_CHECK_PTR(Name, inputs);
  FGC_CHECK_PTR(Name, axis_sizes);
  FGC_CHECK_PTR(Name, output);
  FGC_CHECK_POSITIVE(Name, outer);
  FGC_CHECK_POSITIVE(Name, inner);
  int64_t total = 0;
  for (int k = 0; k < num_inputs; ++k) {
    if (!inputs[k])
      return fail(FGC_ERR_INVALID_ARGUMENT, "%s: inputs[%d] is null", Name, k);
    if (axis_sizes[k] < 1)
      return fail(FGC_ERR_INVALID_ARGUMENT, "%s: axis_sizes[%d] must be >= 1, got %lld", Name, k,
                  static_cast<long long>(axis_sizes[k]));
    total += axis_sizes[k];
  }
  const int64_t outRow = total * inner;
#pragma omp parallel for num_threads(threadsFor(outer * outRow)) schedule(static)
  for (int64_t o = 0; o < outer; ++o) {
    float *dst = output + o * outRow;
    for (int k = 0; k < num_inputs; ++k) {
      int64_t chunk = axis_sizes[k] * inner;
      std::memcpy(dst, inputs[k] + o * chunk, sizeof(float) * chunk);
      dst += chunk;
    }
  }
  return FGC_OK;
}

namespace {

int sumInputs(const char *name, int num_inputs, const float *const *inputs, int64_t count,
              float *output, float scale) {
  FGC_CHECK_POSITIVE(name, num_inputs);
  FGC_CHECK_PTR(name, inputs);
  FGC_CHECK_PTR(name, output);
  FGC_CHECK_POSITIVE(name, count);
  for (int k = 0; k < num_inputs; ++k)
    if (!inputs[k])
      return fail(FGC_ERR_INVALID_ARGUMENT, "%s: inputs[%d] is null", name, k);
  constexpr int64_t Chunk = 4096;
  const int64_t chunks = (count + Chunk - 1) / Chunk;
#pragma omp parallel for num_threads(threadsFor(count * num_inputs)) schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    int64_t begin = c * Chunk, n = std::min(Chunk, count - begin);
    // Accumulate in a local buffer so the output may alias any input.
    float sum[Chunk];
    ArrayMap acc(sum, n);
    acc = ConstArrayMap(inputs[0] + begin, n);
    for (int k = 1; k < num_inputs; ++k)
      acc += ConstArrayMap(inputs[k] + begin, n);
    ArrayMap(output + begin, n) = acc * scale;
  }
  return FGC_OK;
}

} // namespace

int fgc_add(int num_inputs, const float *const *inputs, int64_t count, float *output) {
  return sumInputs("fgc_add", num_inputs, inputs, count, output, 1.0f);
}

int fgc_average(int num_inputs, const float *const *inputs, int64_t count, float *output) {
  return sumInputs("fgc_average", num_inputs, inputs, count, output,
                   num_inputs > 0 ? 1.0f / static_cast<float>(num_inputs) : 1.0f);
}

int fgc_batch_norm(const float *x, float *y, int64_t rows, int64_t channels, const float *gamma,
                   const float *beta, const float *mean, const float *variance, float epsilon) {
  constexpr const char *Name = "fgc_batch_norm";
  FGC_CHECK_PTR(Name, x);
  FGC_CHECK_PTR(Name, y);
  FGC_CHECK_PTR(Name, mean);
  FGC_CHECK_PTR(Name, variance);
  FGC_CHECK_POSITIVE(Name, rows);
  FGC_CHECK_POSITIVE(Name, channels);
  // Folds the statistics into y = x * scale + shift per channel, a block of
  // channels at a time so scale and shift live on the stack.
  constexpr int64_t Block = 512;
  const int64_t blocks = (channels + Block - 1) / Block;
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t begin = b * Block, width = std::min(Block, channels - begin);
    float scaleData[Block], shiftData[Block];
    ArrayMap scale(scaleData, width), shift(shiftData, width);
    scale = (ConstArrayMap(variance + begin, width) + epsilon).rsqrt();
    if (gamma)
      scale *= ConstArrayMap(gamma + begin, width);
    shift = -ConstArrayMap(mean + begin, width) * scale;
    if (beta)
      shift += ConstArrayMap(beta + begin, width);
#pragma omp parallel for num_threads(threadsFor(rows * width)) schedule(static)
    for (int64_t r = 0; r < rows; ++r)
      ArrayMap(y + r * channels + begin, width) =
          ConstArrayMap(x + r * channels + begin, width) * scale + shift;
  }
  return FGC_OK;
}

int fgc_fold_batch_norm(const float *kernel, const float *bias, int64_t rows, int64_t channels,
                        const float *gamma, const float *beta, const float *mean,
                        const float *variance, float epsilon, float *folded_kernel,
                        float *folded_bias) {
  constexpr const char *Name = "fgc_fold_batch_norm";
  FGC_CHECK_PTR(Name, kernel);
  FGC_CHECK_PTR(Name, mean);
  FGC_CHECK_PTR(Name, variance);
  FGC_CHECK_PTR(Name, folded_kernel);
  FGC_CHECK_PTR(Name, folded_bias);
  FGC_CHECK_POSITIVE(Name, rows);
  FGC_CHECK_POSITIVE(Name, channels);
  // The same scale and shift as fgc_batch_norm. The scale is kept in folded_bias while the
  // kernel's columns are scaled, then turned into the bias.
  for (int64_t c = 0; c < channels; ++c)
    folded_bias[c] = (gamma ? gamma[c] : 1.0f) / std::sqrt(variance[c] + epsilon);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < channels; ++c)
      folded_kernel[r * channels + c] = kernel[r * channels + c] * folded_bias[c];
  for (int64_t c = 0; c < channels; ++c) {
    const float scale = folded_bias[c];
    float shift = -mean[c] * scale;
    if (beta)
      shift += beta[c];
    folded_bias[c] = (bias ? bias[c] * scale : 0.0f) + shift;
  }
  return FGC_OK;
}

} // extern "C"
