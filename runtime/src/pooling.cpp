// Windowed and global pooling (MaxPooling2D, AveragePooling2D, the global
// pools) and UpSampling2D over NHWC tensors. Every inner loop runs over the
// contiguous channel axis, so it vectorises; rows of the output are filled in
// parallel.
#include "common.h"
#include "direct_conv.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace fgc::runtime::detail {

namespace {

int checkPoolArgs(const char *name, const fgc_pool2d_params *p, const float *input,
                  const float *output) {
  FGC_CHECK_PTR(name, input);
  FGC_CHECK_PTR(name, output);
  return checkPoolParams(name, p);
}

enum class PoolKind { Max, Average };

// The max (or mean) over the cells [y0, y1) x [x0, x1) of one window, one vector of
// channels at a time kept in a register, then the channels left over. Max as the
// vector instruction computes it (a > b ? a : b).
template <PoolKind Kind>
void poolWindow(const float *image, int64_t rowStride, int64_t c, int64_t y0, int64_t y1,
                int64_t x0, int64_t x1, float scale, float *out) {
  using direct::Vec;
  using direct::Width;
  int64_t c0 = 0;
  for (; c0 + Width <= c; c0 += Width) {
    Vec acc = direct::load(image + y0 * rowStride + x0 * c + c0);
    for (int64_t iy = y0; iy < y1; ++iy)
      for (int64_t ix = (iy == y0 ? x0 + 1 : x0); ix < x1; ++ix) {
        const Vec cell = direct::load(image + iy * rowStride + ix * c + c0);
        acc = Kind == PoolKind::Max ? direct::max(acc, cell) : acc + cell;
      }
    if (Kind == PoolKind::Average)
      acc = acc * scale;
    direct::store(out + c0, acc);
  }
  for (; c0 < c; ++c0) {
    float acc = image[y0 * rowStride + x0 * c + c0];
    for (int64_t iy = y0; iy < y1; ++iy)
      for (int64_t ix = (iy == y0 ? x0 + 1 : x0); ix < x1; ++ix) {
        const float cell = image[iy * rowStride + ix * c + c0];
        acc = Kind == PoolKind::Max ? (acc > cell ? acc : cell) : acc + cell;
      }
    out[c0] = Kind == PoolKind::Average ? acc * scale : acc;
  }
}

// Pools every window; padded cells never enter a window (TensorFlow semantics
// for both max and average pooling with SAME padding).
void pool2d(const fgc_pool2d_params &p, const float *input, float *output, PoolKind kind) {
  const int64_t outH = fgc_conv_output_length(p.in_h, p.pool_h, p.stride_h, 1, p.padding);
  const int64_t outW = fgc_conv_output_length(p.in_w, p.pool_w, p.stride_w, 1, p.padding);
  const int64_t padTop = fgc_conv_pad_before(p.in_h, p.pool_h, p.stride_h, 1, p.padding);
  const int64_t padLeft = fgc_conv_pad_before(p.in_w, p.pool_w, p.stride_w, 1, p.padding);
  const int64_t c = p.channels;
#pragma omp parallel for collapse(2) num_threads(threadsFor(p.batch * outH * outW * c * p.pool_h * p.pool_w)) schedule(static)
  for (int64_t n = 0; n < p.batch; ++n) {
    for (int64_t oy = 0; oy < outH; ++oy) {
      const float *image = input + n * p.in_h * p.in_w * c;
      int64_t y0 = std::max<int64_t>(oy * p.stride_h - padTop, 0);
      int64_t y1 = std::min<int64_t>(oy * p.stride_h - padTop + p.pool_h, p.in_h);
      for (int64_t ox = 0; ox < outW; ++ox) {
        int64_t x0 = std::max<int64_t>(ox * p.stride_w - padLeft, 0);
        int64_t x1 = std::min<int64_t>(ox * p.stride_w - padLeft + p.pool_w, p.in_w);
        float *out = output + ((n * outH + oy) * outW + ox) * c;
        const float scale = 1.0f / static_cast<float>((y1 - y0) * (x1 - x0));
        if (kind == PoolKind::Max)
          poolWindow<PoolKind::Max>(image, p.in_w * c, c, y0, y1, x0, x1, scale, out);
        else
          poolWindow<PoolKind::Average>(image, p.in_w * c, c, y0, y1, x0, x1, scale, out);
      }
    }
  }
}

// Reduces each (batch, cells, channels) slab over its cells.
void globalPool(const float *input, float *output, int64_t batch, int64_t cells, int64_t c,
                PoolKind kind) {
#pragma omp parallel for num_threads(threadsFor(batch * cells * c)) schedule(static)
  for (int64_t n = 0; n < batch; ++n) {
    const float *slab = input + n * cells * c;
    ArrayMap out(output + n * c, c);
    out = ConstArrayMap(slab, c);
    for (int64_t i = 1; i < cells; ++i) {
      if (kind == PoolKind::Max)
        out = out.max(ConstArrayMap(slab + i * c, c));
      else
        out += ConstArrayMap(slab + i * c, c);
    }
    if (kind == PoolKind::Average)
      out *= 1.0f / static_cast<float>(cells);
  }
}

int checkGlobal(const char *name, const float *input, const float *output, int64_t batch,
                int64_t cells, int64_t channels) {
  FGC_CHECK_PTR(name, input);
  FGC_CHECK_PTR(name, output);
  FGC_CHECK_POSITIVE(name, batch);
  FGC_CHECK_POSITIVE(name, cells);
  FGC_CHECK_POSITIVE(name, channels);
  return FGC_OK;
}

// One axis of a half-pixel-centre bilinear resize, as tf.image.resize computes
// it: the source coordinate, its two neighbours (clamped) and the weight of the
// upper one.
struct LerpAxis {
  int64_t lower, upper;
  float weight;
};

LerpAxis lerpAxis(int64_t out, int64_t inSize, float scale) {
  float source = (static_cast<float>(out) + 0.5f) * scale - 0.5f;
  float floorSource = std::floor(source);
  LerpAxis axis;
  axis.lower = std::max<int64_t>(static_cast<int64_t>(floorSource), 0);
  axis.upper = std::min<int64_t>(static_cast<int64_t>(std::ceil(source)), inSize - 1);
  axis.weight = source - floorSource;
  return axis;
}

void upsampleNearest(const float *input, float *output, int64_t batch, int64_t h, int64_t w,
                     int64_t c, int64_t sh, int64_t sw) {
  const int64_t outH = h * sh, outW = w * sw;
#pragma omp parallel for collapse(2) num_threads(threadsFor(batch * outH * outW * c)) schedule(static)
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t oy = 0; oy < outH; ++oy) {
      const float *src = input + (n * h + oy / sh) * w * c;
      float *dst = output + (n * outH + oy) * outW * c;
      for (int64_t ox = 0; ox < outW; ++ox)
        std::memcpy(dst + ox * c, src + (ox / sw) * c, sizeof(float) * c);
    }
  }
}

void upsampleBilinear(const float *input, float *output, int64_t batch, int64_t h, int64_t w,
                      int64_t c, int64_t sh, int64_t sw) {
  const int64_t outH = h * sh, outW = w * sw;
  const float scaleH = static_cast<float>(h) / static_cast<float>(outH);
  const float scaleW = static_cast<float>(w) / static_cast<float>(outW);
#pragma omp parallel for collapse(2) num_threads(threadsFor(batch * outH * outW * c * 4)) schedule(static)
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t oy = 0; oy < outH; ++oy) {
      LerpAxis y = lerpAxis(oy, h, scaleH);
      const float *top = input + (n * h + y.lower) * w * c;
      const float *bottom = input + (n * h + y.upper) * w * c;
      for (int64_t ox = 0; ox < outW; ++ox) {
        LerpAxis x = lerpAxis(ox, w, scaleW);
        ConstArrayMap tl(top + x.lower * c, c), tr(top + x.upper * c, c);
        ConstArrayMap bl(bottom + x.lower * c, c), br(bottom + x.upper * c, c);
        ArrayMap out(output + ((n * outH + oy) * outW + ox) * c, c);
        auto upper = tl + (tr - tl) * x.weight;
        auto lower = bl + (br - bl) * x.weight;
        out = upper + (lower - upper) * y.weight;
      }
    }
  }
}

} // namespace

} // namespace fgc::runtime::detail

using namespace fgc::runtime::detail;

extern "C" {

int fgc_max_pool2d(const fgc_pool2d_params *p, const float *input, float *output) {
  if (int status = checkPoolArgs("fgc_max_pool2d", p, input, output))
    return status;
  pool2d(*p, input, output, PoolKind::Max);
  return FGC_OK;
}

int fgc_avg_pool2d(const fgc_pool2d_params *p, const float *input, float *output) {
  if (int status = checkPoolArgs("fgc_avg_pool2d", p, input, output))
    return status;
  pool2d(*p, input, output, PoolKind::Average);
  return FGC_OK;
}

int fgc_global_max_pool2d(const float *input, float *output, int64_t batch, int64_t h,
                          int64_t w, int64_t channels) {
  if (int status = checkGlobal("fgc_global_max_pool2d", input, output, batch, h * w, channels))
    return status;
  FGC_CHECK_POSITIVE("fgc_global_max_pool2d", h);
  FGC_CHECK_POSITIVE("fgc_global_max_pool2d", w);
  globalPool(input, output, batch, h * w, channels, PoolKind::Max);
  return FGC_OK;
}

int fgc_global_avg_pool2d(const float *input, float *output, int64_t batch, int64_t h,
                          int64_t w, int64_t channels) {
  if (int status = checkGlobal("fgc_global_avg_pool2d", input, output, batch, h * w, channels))
    return status;
  FGC_CHECK_POSITIVE("fgc_global_avg_pool2d", h);
  FGC_CHECK_POSITIVE("fgc_global_avg_pool2d", w);
  globalPool(input, output, batch, h * w, channels, PoolKind::Average);
  return FGC_OK;
}

int fgc_global_avg_pool1d(const float *input, float *output, int64_t batch, int64_t steps,
                          int64_t features) {
  if (int status = checkGlobal("fgc_global_avg_pool1d", input, output, batch, steps, features))
    return status;
  globalPool(input, output, batch, steps, features, PoolKind::Average);
  return FGC_OK;
}

int fgc_upsampling2d(const float *input, float *output, int64_t batch, int64_t h, int64_t w,
                     int64_t channels, int64_t size_h, int64_t size_w,
                     fgc_interpolation interpolation) {
  constexpr const char *Name = "fgc_upsampling2d";
  FGC_CHECK_PTR(Name, input);
  FGC_CHECK_PTR(Name, output);
  FGC_CHECK_POSITIVE(Name, batch);
  FGC_CHECK_POSITIVE(Name, h);
  FGC_CHECK_POSITIVE(Name, w);
  FGC_CHECK_POSITIVE(Name, channels);
  FGC_CHECK_POSITIVE(Name, size_h);
  FGC_CHECK_POSITIVE(Name, size_w);
  if (interpolation == FGC_INTERP_NEAREST)
    upsampleNearest(input, output, batch, h, w, channels, size_h, size_w);
  else if (interpolation == FGC_INTERP_BILINEAR)
    upsampleBilinear(input, output, batch, h, w, channels, size_h, size_w);
  else
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: unknown interpolation %d", Name,
                static_cast<int>(interpolation));
  return FGC_OK;
}

} // extern "C"
