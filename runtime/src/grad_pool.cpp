// Backward kernels of the pooling layers (windowed max / average, the global
// pools) and UpSampling2D over NHWC tensors. Windows overlap when the stride
// is below the pool size, so the scatters run with threads owning disjoint
// (image, channel block) slices of the input gradient and visiting windows in
// a fixed order: no races, and sums that do not depend on the thread count.
#include "grad_common.h"

#include <algorithm>
#include <cmath>

namespace fgc::runtime::detail {

namespace {

constexpr int64_t Block = 64;

int checkPool(const char *name, const fgc_pool2d_params *p, const float *dy, const float *dx) {
  FGC_CHECK_PTR(name, dy);
  FGC_CHECK_PTR(name, dx);
  return checkPoolParams(name, p);
}

// Runs fn(n, begin, width) for every image n and block of channels, in
// parallel; `work` estimates the total operations.
template <typename Fn> void forImageBlocks(int64_t batch, int64_t channels, int64_t work, Fn &&fn) {
  const int64_t blocks = (channels + Block - 1) / Block;
#pragma omp parallel for collapse(2) num_threads(threadsFor(work)) schedule(static)
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t b = 0; b < blocks; ++b)
      fn(n, b * Block, std::min(Block, channels - b * Block));
}

// Zeroes a (cells, channels) slab's channel block unless accumulating.
void zeroBlock(bool accumulate, float *slab, int64_t cells, int64_t channels, int64_t begin,
               int64_t width) {
  if (accumulate)
    return;
  for (int64_t i = 0; i < cells; ++i)
    std::fill(slab + i * channels + begin, slab + i * channels + begin + width, 0.0f);
}

enum class PoolKind { Max, Average };

void poolBackward(const fgc_pool2d_params &p, const float *input, const float *dy, float *dx,
                  bool accumulate, PoolKind kind) {
  const int64_t outH = fgc_conv_output_length(p.in_h, p.pool_h, p.stride_h, 1, p.padding);
  const int64_t outW = fgc_conv_output_length(p.in_w, p.pool_w, p.stride_w, 1, p.padding);
  const int64_t padTop = fgc_conv_pad_before(p.in_h, p.pool_h, p.stride_h, 1, p.padding);
  const int64_t padLeft = fgc_conv_pad_before(p.in_w, p.pool_w, p.stride_w, 1, p.padding);
  const int64_t c = p.channels, cells = p.in_h * p.in_w;
  const int64_t work = p.batch * outH * outW * c * p.pool_h * p.pool_w;
  forImageBlocks(p.batch, c, work, [&](int64_t n, int64_t begin, int64_t width) {
    const float *image = input ? input + n * cells * c : nullptr;
    float *grad = dx + n * cells * c;
    zeroBlock(accumulate, grad, cells, c, begin, width);
    for (int64_t oy = 0; oy < outH; ++oy) {
      const int64_t y0 = std::max<int64_t>(oy * p.stride_h - padTop, 0);
      const int64_t y1 = std::min<int64_t>(oy * p.stride_h - padTop + p.pool_h, p.in_h);
      for (int64_t ox = 0; ox < outW; ++ox) {
        const int64_t x0 = std::max<int64_t>(ox * p.stride_w - padLeft, 0);
        const int64_t x1 = std::min<int64_t>(ox * p.stride_w - padLeft + p.pool_w, p.in_w);
        const float *g = dy + ((n * outH + oy) * outW + ox) * c + begin;
        if (kind == PoolKind::Average) {
          const float scale = 1.0f / static_cast<float>((y1 - y0) * (x1 - x0));
          for (int64_t iy = y0; iy < y1; ++iy)
            for (int64_t ix = x0; ix < x1; ++ix) {
              float *dst = grad + (iy * p.in_w + ix) * c + begin;
              for (int64_t j = 0; j < width; ++j)
                dst[j] += g[j] * scale;
            }
          continue;
        }
        float best[Block];
        int64_t where[Block];
        const int64_t first = y0 * p.in_w + x0;
        for (int64_t j = 0; j < width; ++j) {
          best[j] = image[first * c + begin + j];
          where[j] = first;
        }
        for (int64_t iy = y0; iy < y1; ++iy)
          for (int64_t ix = x0; ix < x1; ++ix) {
            const int64_t cell = iy * p.in_w + ix;
            const float *v = image + cell * c + begin;
            for (int64_t j = 0; j < width; ++j)
              if (v[j] > best[j]) {
                best[j] = v[j];
                where[j] = cell;
              }
          }
        for (int64_t j = 0; j < width; ++j)
          grad[where[j] * c + begin + j] += g[j];
      }
    }
  });
}

int checkGlobal(const char *name, const float *dy, const float *dx, int64_t batch, int64_t h,
                int64_t w, int64_t channels) {
  FGC_CHECK_PTR(name, dy);
  FGC_CHECK_PTR(name, dx);
  FGC_CHECK_POSITIVE(name, batch);
  FGC_CHECK_POSITIVE(name, h);
  FGC_CHECK_POSITIVE(name, w);
  FGC_CHECK_POSITIVE(name, channels);
  return FGC_OK;
}

void globalAvgBackward(const float *dy, float *dx, int64_t batch, int64_t cells, int64_t c,
                       bool accumulate) {
  const float scale = 1.0f / static_cast<float>(cells);
#pragma omp parallel for collapse(2) num_threads(threadsFor(batch * cells * c)) schedule(static)
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t i = 0; i < cells; ++i) {
      float *dst = dx + (n * cells + i) * c;
      const float *g = dy + n * c;
      for (int64_t j = 0; j < c; ++j)
        dst[j] = accumulate ? dst[j] + g[j] * scale : g[j] * scale;
    }
}

// One axis of the forward's half-pixel bilinear resize (pooling.cpp computes
// the same in float): the two source cells and the upper one's weight.
struct LerpAxis {
  int64_t lower, upper;
  float weight;
};

LerpAxis lerpAxis(int64_t out, int64_t inSize, float scale) {
  const float source = (static_cast<float>(out) + 0.5f) * scale - 0.5f;
  const float floorSource = std::floor(source);
  LerpAxis axis;
  axis.lower = std::max<int64_t>(static_cast<int64_t>(floorSource), 0);
  axis.upper = std::min<int64_t>(static_cast<int64_t>(std::ceil(source)), inSize - 1);
  axis.weight = source - floorSource;
  return axis;
}

} // namespace

} // namespace fgc::runtime::detail

using namespace fgc::runtime::detail;

extern "C" {

int fgc_max_pool2d_backward(const fgc_pool2d_params *p, const float *input, const float *dy,
                            float *dinput, int flags) {
  constexpr const char *Name = "fgc_max_pool2d_backward";
  if (int status = checkPool(Name, p, dy, dinput))
    return status;
  FGC_CHECK_PTR(Name, input);
  poolBackward(*p, input, dy, dinput, accumulateInput(flags), PoolKind::Max);
  return FGC_OK;
}

int fgc_avg_pool2d_backward(const fgc_pool2d_params *p, const float *dy, float *dinput,
                            int flags) {
  if (int status = checkPool("fgc_avg_pool2d_backward", p, dy, dinput))
    return status;
  poolBackward(*p, nullptr, dy, dinput, accumulateInput(flags), PoolKind::Average);
  return FGC_OK;
}

int fgc_global_max_pool2d_backward(const float *input, const float *dy, float *dinput,
                                   int64_t batch, int64_t h, int64_t w, int64_t channels,
                                   int flags) {
  constexpr const char *Name = "fgc_global_max_pool2d_backward";
  if (int status = checkGlobal(Name, dy, dinput, batch, h, w, channels))
    return status;
  FGC_CHECK_PTR(Name, input);
  const int64_t cells = h * w, c = channels;
  const bool accumulate = accumulateInput(flags);
  forImageBlocks(batch, c, batch * cells * c * 2, [&](int64_t n, int64_t begin, int64_t width) {
    const float *slab = input + n * cells * c + begin;
    float *grad = dinput + n * cells * c + begin;
    float best[Block], share[Block];
    int64_t ties[Block];
    for (int64_t j = 0; j < width; ++j) {
      best[j] = slab[j];
      ties[j] = 0;
    }
    for (int64_t i = 1; i < cells; ++i)
      for (int64_t j = 0; j < width; ++j)
        best[j] = std::max(best[j], slab[i * c + j]);
    for (int64_t i = 0; i < cells; ++i)
      for (int64_t j = 0; j < width; ++j)
        ties[j] += slab[i * c + j] == best[j];
    for (int64_t j = 0; j < width; ++j)
      share[j] = dy[n * c + begin + j] / static_cast<float>(std::max<int64_t>(ties[j], 1));
    for (int64_t i = 0; i < cells; ++i)
      for (int64_t j = 0; j < width; ++j) {
        const float g = slab[i * c + j] == best[j] ? share[j] : 0.0f;
        grad[i * c + j] = accumulate ? grad[i * c + j] + g : g;
      }
  });
  return FGC_OK;
}

int fgc_global_avg_pool2d_backward(const float *dy, float *dinput, int64_t batch, int64_t h,
                                   int64_t w, int64_t channels, int flags) {
  if (int status = checkGlobal("fgc_global_avg_pool2d_backward", dy, dinput, batch, h, w,
                               channels))
    return status;
  globalAvgBackward(dy, dinput, batch, h * w, channels, accumulateInput(flags));
  return FGC_OK;
}

int fgc_global_avg_pool1d_backward(const float *dy, float *dinput, int64_t batch,
                                   int64_t steps, int64_t features, int flags) {
  if (int status = checkGlobal("fgc_global_avg_pool1d_backward", dy, dinput, batch, steps, 1,
                               features))
    return status;
  globalAvgBackward(dy, dinput, batch, steps, features, accumulateInput(flags));
  return FGC_OK;
}

int fgc_upsampling2d_backward(const float *dy, float *dinput, int64_t batch, int64_t h,
                              int64_t w, int64_t channels, int64_t size_h, int64_t size_w,
                              fgc_interpolation interpolation, int flags) {
  constexpr const char *Name = "fgc_upsampling2d_backward";
  if (int status = checkGlobal(Name, dy, dinput, batch, h, w, channels))
    return status;
  FGC_CHECK_POSITIVE(Name, size_h);
  FGC_CHECK_POSITIVE(Name, size_w);
  if (interpolation != FGC_INTERP_NEAREST && interpolation != FGC_INTERP_BILINEAR)
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: unknown interpolation %d", Name,
                static_cast<int>(interpolation));
  const bool accumulate = accumulateInput(flags);
  const int64_t c = channels, outH = h * size_h, outW = w * size_w;
  if (interpolation == FGC_INTERP_NEAREST) {
    // A gather: every input cell sums its own block of the output gradient.
#pragma omp parallel for collapse(2) num_threads(threadsFor(batch * outH * outW * c)) schedule(static)
    for (int64_t n = 0; n < batch; ++n)
      for (int64_t iy = 0; iy < h; ++iy)
        for (int64_t ix = 0; ix < w; ++ix) {
          float *dst = dinput + ((n * h + iy) * w + ix) * c;
          for (int64_t j = 0; j < c; ++j) {
            float sum = 0.0f;
            for (int64_t a = 0; a < size_h; ++a)
              for (int64_t b = 0; b < size_w; ++b)
                sum += dy[((n * outH + iy * size_h + a) * outW + ix * size_w + b) * c + j];
            dst[j] = accumulate ? dst[j] + sum : sum;
          }
        }
    return FGC_OK;
  }
  const float scaleH = static_cast<float>(h) / static_cast<float>(outH);
  const float scaleW = static_cast<float>(w) / static_cast<float>(outW);
  forImageBlocks(batch, c, batch * outH * outW * c * 4, [&](int64_t n, int64_t begin,
                                                             int64_t width) {
    float *grad = dinput + n * h * w * c;
    zeroBlock(accumulate, grad, h * w, c, begin, width);
    for (int64_t oy = 0; oy < outH; ++oy) {
      const LerpAxis y = lerpAxis(oy, h, scaleH);
      for (int64_t ox = 0; ox < outW; ++ox) {
        const LerpAxis x = lerpAxis(ox, w, scaleW);
        const float *g = dy + ((n * outH + oy) * outW + ox) * c + begin;
        const float wTop = 1.0f - y.weight, wLeft = 1.0f - x.weight;
        float *tl = grad + (y.lower * w + x.lower) * c + begin;
        float *tr = grad + (y.lower * w + x.upper) * c + begin;
        float *bl = grad + (y.upper * w + x.lower) * c + begin;
        float *br = grad + (y.upper * w + x.upper) * c + begin;
        for (int64_t j = 0; j < width; ++j) {
          tl[j] += g[j] * (wTop * wLeft);
          tr[j] += g[j] * (wTop * x.weight);
          bl[j] += g[j] * (y.weight * wLeft);
          br[j] += g[j] * (y.weight * x.weight);
        }
      }
    }
  });
  return FGC_OK;
}

} // extern "C"
