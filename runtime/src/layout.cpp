// Layout kernels and their gradients: zero padding and cropping (one signed-pad
// kernel), Permute, time reversal (go_backwards), LeakyReLU, SpatialDropout2D's
// channel mask and Bidirectional's merge. All are copies or elementwise maps;
// they run on the calling thread (their cost is memory traffic).
#include "grad_common.h"

#include <cstring>

namespace {

using namespace fgc::runtime::detail;

int checkPad(const char *name, int64_t batch, int64_t h, int64_t w, int64_t channels, int64_t top,
             int64_t bottom, int64_t left, int64_t right) {
  FGC_CHECK_POSITIVE(name, batch);
  FGC_CHECK_POSITIVE(name, h);
  FGC_CHECK_POSITIVE(name, w);
  FGC_CHECK_POSITIVE(name, channels);
  if (h + top + bottom < 1 || w + left + right < 1 || top < -h || left < -w || bottom < -h ||
      right < -w)
    return fail(FGC_ERR_INVALID_ARGUMENT,
                "%s: padding (%lld, %lld), (%lld, %lld) leaves nothing of a %lld x %lld input", name,
                static_cast<long long>(top), static_cast<long long>(bottom),
                static_cast<long long>(left), static_cast<long long>(right),
                static_cast<long long>(h), static_cast<long long>(w));
  return FGC_OK;
}

// Copies the overlap of a (h, w) grid and the same grid shifted by (top, left)
// into an (oh, ow) grid: dst[y, x] (op)= src[y - top, x - left]. When
// `zeroRest`, cells outside the overlap are zeroed (the forward's padding).
void shiftCopy(const float *src, float *dst, int64_t batch, int64_t h, int64_t w, int64_t oh,
               int64_t ow, int64_t c, int64_t top, int64_t left, bool zeroRest, bool accumulate) {
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t y = 0; y < oh; ++y) {
      float *row = dst + (b * oh + y) * ow * c;
      const int64_t sy = y - top;
      if (sy < 0 || sy >= h) {
        if (zeroRest)
          std::fill(row, row + ow * c, 0.0f);
        continue;
      }
      const int64_t x0 = std::max<int64_t>(0, left), x1 = std::min<int64_t>(ow, w + left);
      if (zeroRest) {
        std::fill(row, row + std::max<int64_t>(0, x0) * c, 0.0f);
        if (x1 < ow)
          std::fill(row + std::max<int64_t>(x1, 0) * c, row + ow * c, 0.0f);
      }
      if (x1 <= x0)
        continue;
      const float *from = src + ((b * h + sy) * w + (x0 - left)) * c;
      if (accumulate)
        ArrayMap(row + x0 * c, (x1 - x0) * c) += ConstArrayMap(from, (x1 - x0) * c);
      else
        std::memcpy(row + x0 * c, from, sizeof(float) * (x1 - x0) * c);
    }
}

int checkPermutation(const char *name, const int64_t *shape, int rank, const int64_t *perm) {
  FGC_CHECK_PTR(name, shape);
  FGC_CHECK_PTR(name, perm);
  if (rank < 1 || rank > 8)
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: rank must be 1..8, got %d", name, rank);
  bool seen[8] = {};
  for (int i = 0; i < rank; ++i) {
    FGC_CHECK_POSITIVE(name, shape[i]);
    if (perm[i] < 0 || perm[i] >= rank || seen[perm[i]])
      return fail(FGC_ERR_INVALID_ARGUMENT, "%s: perm is not a permutation of 0..%d", name,
                  rank - 1);
    seen[perm[i]] = true;
  }
  return FGC_OK;
}

// dst (shape permuted) [i_0..i_{r-1}] (op)= src[j] with j_{perm[k]} = i_k. When
// `inverse`, src has the permuted shape and dst the original one.
void permuteCopy(const float *src, float *dst, const int64_t *shape, int rank,
                 const int64_t *perm, bool inverse, bool accumulate) {
  int64_t srcStride[8], outShape[8], strideOfOut[8];
  // Strides of the tensor laid out in `shape`.
  int64_t inStride[8];
  inStride[rank - 1] = 1;
  for (int k = rank - 2; k >= 0; --k)
    inStride[k] = inStride[k + 1] * shape[k + 1];
  int64_t permShape[8], permStride[8];
  for (int k = 0; k < rank; ++k)
    permShape[k] = shape[perm[k]];
  permStride[rank - 1] = 1;
  for (int k = rank - 2; k >= 0; --k)
    permStride[k] = permStride[k + 1] * permShape[k + 1];
  if (!inverse) {
    // Walk the output (permuted) in order; its axis k reads input axis perm[k].
    for (int k = 0; k < rank; ++k) {
      outShape[k] = permShape[k];
      strideOfOut[k] = inStride[perm[k]];
    }
  } else {
    // Walk the output (original layout) in order; its axis perm[k] is src axis k.
    for (int k = 0; k < rank; ++k) {
      outShape[perm[k]] = shape[perm[k]];
      strideOfOut[perm[k]] = permStride[k];
    }
  }
  std::copy(strideOfOut, strideOfOut + rank, srcStride);
  int64_t total = 1;
  for (int k = 0; k < rank; ++k)
    total *= outShape[k];
  int64_t index[8] = {};
  int64_t offset = 0;
  for (int64_t n = 0; n < total; ++n) {
    dst[n] = accumulate ? dst[n] + src[offset] : src[offset];
    for (int k = rank - 1; k >= 0; --k) {
      offset += srcStride[k];
      if (++index[k] < outShape[k])
        break;
      offset -= srcStride[k] * outShape[k];
      index[k] = 0;
    }
  }
}

int checkSequence(const char *name, const float *input, const float *output, int64_t batch,
                  int64_t steps, int64_t features) {
  FGC_CHECK_PTR(name, input);
  FGC_CHECK_PTR(name, output);
  FGC_CHECK_POSITIVE(name, batch);
  FGC_CHECK_POSITIVE(name, steps);
  FGC_CHECK_POSITIVE(name, features);
  if (input == output)
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: cannot run in place", name);
  return FGC_OK;
}

void reverseCopy(const float *src, float *dst, int64_t batch, int64_t steps, int64_t features,
                 bool accumulate) {
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < steps; ++t) {
      const float *from = src + (b * steps + (steps - 1 - t)) * features;
      float *to = dst + (b * steps + t) * features;
      if (accumulate)
        ArrayMap(to, features) += ConstArrayMap(from, features);
      else
        std::memcpy(to, from, sizeof(float) * features);
    }
}

// splitmix64's finaliser, the hash behind fgc_dropout_forward's masks (grad.h).
uint64_t mix64(uint64_t v) {
  v ^= v >> 30;
  v *= 0xBF58476D1CE4E5B9ull;
  v ^= v >> 27;
  v *= 0x94D049BB133111EBull;
  v ^= v >> 31;
  return v;
}

int checkMerge(const char *name, int64_t rows, int64_t units, fgc_merge_mode mode) {
  FGC_CHECK_POSITIVE(name, rows);
  FGC_CHECK_POSITIVE(name, units);
  if (mode < FGC_MERGE_CONCAT || mode > FGC_MERGE_AVE)
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: unknown merge mode %d", name, static_cast<int>(mode));
  return FGC_OK;
}

} // namespace

extern "C" {

int fgc_pad2d(const float *input, float *output, int64_t batch, int64_t h, int64_t w,
              int64_t channels, int64_t top, int64_t bottom, int64_t left, int64_t right) {
  constexpr const char *Name = "fgc_pad2d";
  FGC_CHECK_PTR(Name, input);
  FGC_CHECK_PTR(Name, output);
  if (int status = checkPad(Name, batch, h, w, channels, top, bottom, left, right))
    return status;
  shiftCopy(input, output, batch, h, w, h + top + bottom, w + left + right, channels, top, left,
            /*zeroRest=*/true, /*accumulate=*/false);
  return FGC_OK;
}

int fgc_pad2d_backward(const float *dy, float *dinput, int64_t batch, int64_t h, int64_t w,
                       int64_t channels, int64_t top, int64_t bottom, int64_t left,
                       int64_t right, int flags) {
  constexpr const char *Name = "fgc_pad2d_backward";
  FGC_CHECK_PTR(Name, dy);
  FGC_CHECK_PTR(Name, dinput);
  if (int status = checkPad(Name, batch, h, w, channels, top, bottom, left, right))
    return status;
  // The adjoint of a shift by (top, left) is the shift by (-top, -left) from the padded grid.
  const bool accumulate = accumulateInput(flags);
  shiftCopy(dy, dinput, batch, h + top + bottom, w + left + right, h, w, channels, -top, -left,
            /*zeroRest=*/!accumulate, accumulate);
  return FGC_OK;
}

int fgc_permute(const float *input, float *output, const int64_t *shape, int rank,
                const int64_t *perm) {
  constexpr const char *Name = "fgc_permute";
  FGC_CHECK_PTR(Name, input);
  FGC_CHECK_PTR(Name, output);
  if (int status = checkPermutation(Name, shape, rank, perm))
    return status;
  permuteCopy(input, output, shape, rank, perm, false, false);
  return FGC_OK;
}

int fgc_permute_backward(const float *dy, float *dinput, const int64_t *shape, int rank,
                         const int64_t *perm, int flags) {
  constexpr const char *Name = "fgc_permute_backward";
  FGC_CHECK_PTR(Name, dy);
  FGC_CHECK_PTR(Name, dinput);
  if (int status = checkPermutation(Name, shape, rank, perm))
    return status;
  permuteCopy(dy, dinput, shape, rank, perm, true, accumulateInput(flags));
  return FGC_OK;
}

int fgc_reverse_sequence(const float *input, float *output, int64_t batch, int64_t steps,
                         int64_t features) {
  if (int status = checkSequence("fgc_reverse_sequence", input, output, batch, steps, features))
    return status;
  reverseCopy(input, output, batch, steps, features, false);
  return FGC_OK;
}

int fgc_reverse_sequence_backward(const float *dy, float *dinput, int64_t batch, int64_t steps,
                                  int64_t features, int flags) {
  if (int status =
          checkSequence("fgc_reverse_sequence_backward", dy, dinput, batch, steps, features))
    return status;
  reverseCopy(dy, dinput, batch, steps, features, accumulateInput(flags));
  return FGC_OK;
}

int fgc_leaky_relu(const float *x, float *y, int64_t n, float alpha) {
  constexpr const char *Name = "fgc_leaky_relu";
  if (n < 0)
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: n must be >= 0, got %lld", Name,
                static_cast<long long>(n));
  if (n == 0)
    return FGC_OK;
  FGC_CHECK_PTR(Name, x);
  FGC_CHECK_PTR(Name, y);
  for (int64_t i = 0; i < n; ++i)
    y[i] = x[i] >= 0.0f ? x[i] : alpha * x[i];
  return FGC_OK;
}

int fgc_leaky_relu_backward(const float *x, const float *dy, float *dx, int64_t n, float alpha,
                            int flags) {
  constexpr const char *Name = "fgc_leaky_relu_backward";
  if (n < 0)
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: n must be >= 0, got %lld", Name,
                static_cast<long long>(n));
  if (n == 0)
    return FGC_OK;
  FGC_CHECK_PTR(Name, x);
  FGC_CHECK_PTR(Name, dy);
  FGC_CHECK_PTR(Name, dx);
  const bool accumulate = accumulateInput(flags);
  for (int64_t i = 0; i < n; ++i) {
    const float g = x[i] >= 0.0f ? dy[i] : alpha * dy[i];
    dx[i] = accumulate ? dx[i] + g : g;
  }
  return FGC_OK;
}

int fgc_spatial_dropout_forward(const float *x, float *y, float *mask, int64_t batch,
                                int64_t spatial, int64_t channels, float rate, uint64_t seed,
                                uint64_t counter) {
  constexpr const char *Name = "fgc_spatial_dropout_forward";
  FGC_CHECK_PTR(Name, x);
  FGC_CHECK_PTR(Name, y);
  FGC_CHECK_PTR(Name, mask);
  FGC_CHECK_POSITIVE(Name, batch);
  FGC_CHECK_POSITIVE(Name, spatial);
  FGC_CHECK_POSITIVE(Name, channels);
  if (!(rate >= 0.0f && rate < 1.0f))
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: rate must be in [0, 1), got %g", Name,
                static_cast<double>(rate));
  constexpr uint64_t Golden = 0x9E3779B97F4A7C15ull;
  const uint64_t key = mix64(seed ^ mix64(counter + Golden));
  const float keep = 1.0f / (1.0f - rate);
  for (int64_t i = 0; i < batch * channels; ++i) {
    const uint64_t bits = mix64(key + (static_cast<uint64_t>(i) + 1) * Golden) >> 40;
    const float u = static_cast<float>(bits) * (1.0f / 16777216.0f);
    mask[i] = u < rate ? 0.0f : keep;
  }
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t s = 0; s < spatial; ++s) {
      const int64_t row = (b * spatial + s) * channels;
      ArrayMap(y + row, channels) = ConstArrayMap(x + row, channels) *
                                    ConstArrayMap(mask + b * channels, channels);
    }
  return FGC_OK;
}

int fgc_spatial_dropout_backward(const float *mask, const float *dy, float *dx, int64_t batch,
                                 int64_t spatial, int64_t channels, int flags) {
  constexpr const char *Name = "fgc_spatial_dropout_backward";
  FGC_CHECK_PTR(Name, mask);
  FGC_CHECK_PTR(Name, dy);
  FGC_CHECK_PTR(Name, dx);
  FGC_CHECK_POSITIVE(Name, batch);
  FGC_CHECK_POSITIVE(Name, spatial);
  FGC_CHECK_POSITIVE(Name, channels);
  const bool accumulate = accumulateInput(flags);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t s = 0; s < spatial; ++s) {
      const int64_t row = (b * spatial + s) * channels;
      ConstArrayMap m(mask + b * channels, channels);
      if (accumulate)
        ArrayMap(dx + row, channels) += ConstArrayMap(dy + row, channels) * m;
      else
        ArrayMap(dx + row, channels) = ConstArrayMap(dy + row, channels) * m;
    }
  return FGC_OK;
}

int fgc_bidirectional_merge(const float *forward, const float *backward, float *output,
                            int64_t rows, int64_t units, fgc_merge_mode mode) {
  constexpr const char *Name = "fgc_bidirectional_merge";
  FGC_CHECK_PTR(Name, forward);
  FGC_CHECK_PTR(Name, backward);
  FGC_CHECK_PTR(Name, output);
  if (int status = checkMerge(Name, rows, units, mode))
    return status;
  const int64_t n = rows * units;
  ConstArrayMap f(forward, n), b(backward, n);
  switch (mode) {
  case FGC_MERGE_CONCAT:
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(output + r * 2 * units, forward + r * units, sizeof(float) * units);
      std::memcpy(output + (r * 2 + 1) * units, backward + r * units, sizeof(float) * units);
    }
    break;
  case FGC_MERGE_SUM: ArrayMap(output, n) = f + b; break;
  case FGC_MERGE_MUL: ArrayMap(output, n) = f * b; break;
  default: ArrayMap(output, n) = (f + b) * 0.5f; break;
  }
  return FGC_OK;
}

int fgc_bidirectional_merge_backward(const float *forward, const float *backward, const float *dy,
                                     float *dforward, float *dbackward, int64_t rows,
                                     int64_t units, fgc_merge_mode mode) {
  constexpr const char *Name = "fgc_bidirectional_merge_backward";
  FGC_CHECK_PTR(Name, dy);
  FGC_CHECK_PTR(Name, dforward);
  FGC_CHECK_PTR(Name, dbackward);
  if (int status = checkMerge(Name, rows, units, mode))
    return status;
  if (mode == FGC_MERGE_MUL) {
    FGC_CHECK_PTR(Name, forward);
    FGC_CHECK_PTR(Name, backward);
  }
  const int64_t n = rows * units;
  ConstArrayMap g(dy, n);
  switch (mode) {
  case FGC_MERGE_CONCAT:
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(dforward + r * units, dy + r * 2 * units, sizeof(float) * units);
      std::memcpy(dbackward + r * units, dy + (r * 2 + 1) * units, sizeof(float) * units);
    }
    break;
  case FGC_MERGE_SUM:
    ArrayMap(dforward, n) = g;
    ArrayMap(dbackward, n) = g;
    break;
  case FGC_MERGE_MUL:
    ArrayMap(dforward, n) = g * ConstArrayMap(backward, n);
    ArrayMap(dbackward, n) = g * ConstArrayMap(forward, n);
    break;
  default:
    ArrayMap(dforward, n) = g * 0.5f;
    ArrayMap(dbackward, n) = g * 0.5f;
    break;
  }
  return FGC_OK;
}

} // extern "C"
