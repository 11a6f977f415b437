// Direct NHWC convolution: no im2col, no packing. Each output pixel block of P
// pixels x NV SIMD vectors of output channels keeps its sums in registers while
// the loop runs over the window (ky, kx) and the input channels: one vector
// load of kernel row (ky, kx, ic) serves P pixels, one broadcast of an input
// value serves NV vectors. Keras's kernel layout (kh, kw, in_c, out_c) is
// already the order this loop reads.
//
// Used by Conv2D (and the stride-1 Conv2DTranspose, which runs as a Conv2D)
// when out_c is a multiple of the SIMD width of the variant being compiled;
// other shapes keep the im2col + GEMM path. Padding is applied by copying
// chunks of images into a zero-bordered buffer in the caller's scratch, so the
// inner loop never tests bounds.
//
// Every output sums its terms in the same order (bias, then ky, kx, ic) however
// the rows are split between threads, so results do not depend on the thread
// count.
//
// This header is included by conv.cpp only, which is compiled once per CPU
// variant: the vector width below follows that compilation's -march.
#ifndef FGC_RUNTIME_SRC_DIRECT_CONV_H
#define FGC_RUNTIME_SRC_DIRECT_CONV_H

#include "common.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace fgc::runtime::detail::direct {

#if defined(__AVX512F__)
using Vec = __m512;
constexpr int Width = 16;
constexpr int Registers = 32;
inline Vec load(const float *p) { return _mm512_loadu_ps(p); }
inline void store(float *p, Vec v) { _mm512_storeu_ps(p, v); }
inline Vec broadcast(float x) { return _mm512_set1_ps(x); }
inline Vec fma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
inline Vec max(Vec a, Vec b) { return _mm512_max_ps(a, b); }
inline Vec zero() { return _mm512_setzero_ps(); }
// Lanes added up (halves first). Written with vector extensions: GCC 12's 512-bit extract
// intrinsics (and _mm512_reduce_add_ps) warn of an uninitialized variable inside them.
inline float sum(Vec v) {
  using V8 = float __attribute__((vector_size(32)));
  using V4 = float __attribute__((vector_size(16)));
  V8 h = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
         __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  V4 q = __builtin_shufflevector(h, h, 0, 1, 2, 3) + __builtin_shufflevector(h, h, 4, 5, 6, 7);
  return (q[0] + q[2]) + (q[1] + q[3]);
}
#elif defined(__AVX2__) && defined(__FMA__)
using Vec = __m256;
constexpr int Width = 8;
constexpr int Registers = 16;
inline Vec load(const float *p) { return _mm256_loadu_ps(p); }
inline void store(float *p, Vec v) { _mm256_storeu_ps(p, v); }
inline Vec broadcast(float x) { return _mm256_set1_ps(x); }
inline Vec fma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
inline Vec max(Vec a, Vec b) { return _mm256_max_ps(a, b); }
inline Vec zero() { return _mm256_setzero_ps(); }
inline float sum(Vec v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
}
#else
using Vec = __m128;
constexpr int Width = 4;
constexpr int Registers = 16;
inline Vec load(const float *p) { return _mm_loadu_ps(p); }
inline void store(float *p, Vec v) { _mm_storeu_ps(p, v); }
inline Vec broadcast(float x) { return _mm_set1_ps(x); }
inline Vec fma(Vec a, Vec b, Vec c) { return _mm_add_ps(_mm_mul_ps(a, b), c); }
inline Vec max(Vec a, Vec b) { return _mm_max_ps(a, b); }
inline Vec zero() { return _mm_setzero_ps(); }
inline float sum(Vec v) {
  __m128 s = _mm_add_ps(v, _mm_movehl_ps(v, v));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
}
#endif

// Output-channel vectors per block, and output pixels per block for a given
// number of vectors: as many accumulators as the registers hold, with room for
// the kernel vectors and a broadcast.
constexpr int MaxVectors = Registers == 32 ? 4 : 2;
constexpr int pixelsFor(int vectors) {
  if (Registers == 32)
    return vectors == 4 ? 6 : vectors == 3 ? 8 : 12;
  return vectors == 2 ? 6 : 12;
}
constexpr int MaxPixels = 12;

// Keeps `v` in a register from here on. Without it, GCC folds the kernel loads of short
// blocks (P < 4) into every FMA as a memory operand: P * NV loads per input channel instead
// of NV, which made the 3-pixel tail of a 9-tile Winograd GEMM as slow as a 6-pixel block.
template <typename T> inline void pinRegister(T &v) { asm("" : "+v"(v)); }

// The geometry of one call, in floats.
struct Plan {
  int64_t kh, kw, inC, outC;
  int64_t strideH, strideW, dilH, dilW;
  int64_t outH, outW;
  int64_t inH, inW;       // of the (possibly padded) image the loop reads
  int64_t rowStride;      // floats between input rows
  int64_t imageStride;    // floats between input images
  bool relu;
  bool accumulate; // add to the output's values (no activation) instead of writing it
};

// Sums for output pixels [0, P) of one output row (P consecutive x positions),
// channels [0, NV * Width) starting at `kernel`/`bias`/`out`. `in` is the
// input pixel under window cell (0, 0) of the first output pixel.
template <int NV, int P>
inline void block(const Plan &q, const float *in, const float *kernel, const float *bias,
                  float *out) {
  Vec acc[P][NV];
#pragma GCC unroll 16
  for (int j = 0; j < P; ++j)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      acc[j][v] = q.accumulate ? load(out + j * q.outC + v * Width) : zero();
  if (bias)
#pragma GCC unroll 16
    for (int j = 0; j < P; ++j)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v)
        acc[j][v] = q.accumulate ? acc[j][v] + load(bias + v * Width) : load(bias + v * Width);
  const int64_t pixelStep = q.strideW * q.inC;
  for (int64_t ky = 0; ky < q.kh; ++ky) {
    const float *inRow = in + ky * q.dilH * q.rowStride;
    const float *kRow = kernel + ky * q.kw * q.inC * q.outC;
    for (int64_t kx = 0; kx < q.kw; ++kx) {
      const float *src = inRow + kx * q.dilW * q.inC;
      const float *w = kRow + kx * q.inC * q.outC;
      for (int64_t ic = 0; ic < q.inC; ++ic, w += q.outC) {
        Vec k[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) {
          k[v] = load(w + v * Width);
          pinRegister(k[v]);
        }
#pragma GCC unroll 16
        for (int j = 0; j < P; ++j) {
          Vec x = broadcast(src[j * pixelStep + ic]);
#pragma GCC unroll 4
          for (int v = 0; v < NV; ++v)
            acc[j][v] = fma(x, k[v], acc[j][v]);
        }
      }
    }
  }
  if (q.relu) {
    const Vec z = zero();
#pragma GCC unroll 16
    for (int j = 0; j < P; ++j)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v)
        acc[j][v] = max(acc[j][v], z);
  }
#pragma GCC unroll 16
  for (int j = 0; j < P; ++j)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      store(out + j * q.outC + v * Width, acc[j][v]);
}

// The last `count` (< pixelsFor(NV)) pixels of a row.
template <int NV, int P = 1>
inline void tail(const Plan &q, int count, const float *in, const float *kernel,
                 const float *bias, float *out) {
  if constexpr (P < MaxPixels) {
    if (count != P) {
      tail<NV, P + 1>(q, count, in, kernel, bias, out);
      return;
    }
  }
  block<NV, P>(q, in, kernel, bias, out);
}

// One output row (all x positions) for channels [c0, c0 + NV * Width).
template <int NV>
void rowChannels(const Plan &q, const float *inRow, const float *kernel, const float *bias,
                 float *outRow, int64_t c0) {
  constexpr int P = pixelsFor(NV);
  const float *k = kernel + c0;
  const float *b = bias ? bias + c0 : nullptr;
  int64_t ox = 0;
  for (; ox + P <= q.outW; ox += P)
    block<NV, P>(q, inRow + ox * q.strideW * q.inC, k, b, outRow + ox * q.outC + c0);
  if (ox < q.outW)
    tail<NV>(q, static_cast<int>(q.outW - ox), inRow + ox * q.strideW * q.inC, k, b,
             outRow + ox * q.outC + c0);
}

// One output row for the channel vectors [v0, v1) (all of them by default).
inline void row(const Plan &q, const float *inRow, const float *kernel, const float *bias,
                float *outRow, int64_t v0 = 0, int64_t v1 = -1) {
  const int64_t vectors = v1 < 0 ? q.outC / Width : v1;
  int64_t v = v0;
  for (; v + MaxVectors <= vectors; v += MaxVectors)
    rowChannels<MaxVectors>(q, inRow, kernel, bias, outRow, v * Width);
  switch (vectors - v) {
  case 0:
    break;
  case 1:
    rowChannels<1>(q, inRow, kernel, bias, outRow, v * Width);
    break;
  case 2:
    if constexpr (MaxVectors > 2)
      rowChannels<2>(q, inRow, kernel, bias, outRow, v * Width);
    break;
  default:
    if constexpr (MaxVectors > 3)
      rowChannels<3>(q, inRow, kernel, bias, outRow, v * Width);
    break;
  }
}

// One convolution as the direct path sees it (Conv2D's terms: it reads `input`
// (batch, inH, inW, inC) and writes (batch, outH, outW, outC)).
struct Conv {
  int64_t batch = 0, inH = 0, inW = 0, inC = 0;
  int64_t kh = 0, kw = 0, outC = 0;
  int64_t strideH = 1, strideW = 1, dilH = 1, dilW = 1;
  int64_t outH = 0, outW = 0, padTop = 0, padLeft = 0;
  fgc_activation_kind activation = FGC_ACT_LINEAR;
  bool accumulate = false; // add to the output (activation must be linear)
};

// Floats of scratch the kernels aim for (a chunk of padded images).
constexpr int64_t ScratchTarget = int64_t(1) << 20;

inline bool applies(const Conv &c) { return c.outC % Width == 0; }

// The input region the loop reads, (h, w) from the window's top-left corner at
// output (0, 0); `copy`: it is not simply the input (padding on some side), so
// chunks of images are copied into a zero-bordered buffer first.
struct Region {
  int64_t h = 0, w = 0;
  bool copy = false;
};

inline Region region(const Conv &c) {
  Region r;
  r.h = (c.outH - 1) * c.strideH + (c.kh - 1) * c.dilH + 1;
  r.w = (c.outW - 1) * c.strideW + (c.kw - 1) * c.dilW + 1;
  r.copy = c.padTop != 0 || c.padLeft != 0 || r.h > c.inH || r.w > c.inW;
  return r;
}

// Images per padded chunk.
inline int64_t chunkImages(const Conv &c, const Region &r) {
  return std::clamp<int64_t>(ScratchTarget / (r.h * r.w * c.inC), 1, c.batch);
}

// Floats of scratch run() needs. It does not depend on the variant: scratch
// sizes are asked of the baseline library, the kernel may be another variant's.
inline int64_t scratchFloats(const Conv &c) {
  Region r = region(c);
  return r.copy ? chunkImages(c, r) * r.h * r.w * c.inC : 0;
}

// Copies images [n0, n0 + images) into `dst` as (images, r.h, r.w, inC), zeros
// outside the input.
inline void padImages(const Conv &c, const Region &r, const float *input, int64_t n0,
                      int64_t images, float *dst) {
  const int64_t ch = c.inC;
  const int64_t x0 = std::clamp<int64_t>(c.padLeft, 0, r.w);
  const int64_t x1 = std::clamp<int64_t>(c.padLeft + c.inW, x0, r.w);
#pragma omp parallel for num_threads(threadsFor(images * r.h * r.w * ch)) schedule(static)
  for (int64_t k = 0; k < images * r.h; ++k) {
    int64_t n = k / r.h, y = k % r.h, iy = y - c.padTop;
    float *dst_row = dst + k * r.w * ch;
    if (iy < 0 || iy >= c.inH) {
      std::fill(dst_row, dst_row + r.w * ch, 0.0f);
      continue;
    }
    const float *src = input + ((n0 + n) * c.inH + iy) * c.inW * ch;
    std::fill(dst_row, dst_row + x0 * ch, 0.0f);
    std::memcpy(dst_row + x0 * ch, src + (x0 - c.padLeft) * ch, sizeof(float) * (x1 - x0) * ch);
    std::fill(dst_row + x1 * ch, dst_row + r.w * ch, 0.0f);
  }
}

// The loop's geometry for `c` reading region `r` (the padded copy, or the input itself).
inline Plan planOf(const Conv &c, const Region &r) {
  Plan q{};
  q.kh = c.kh;
  q.kw = c.kw;
  q.inC = c.inC;
  q.outC = c.outC;
  q.strideH = c.strideH;
  q.strideW = c.strideW;
  q.dilH = c.dilH;
  q.dilW = c.dilW;
  q.outH = c.outH;
  q.outW = c.outW;
  q.inH = r.copy ? r.h : c.inH;
  q.inW = r.copy ? r.w : c.inW;
  q.rowStride = q.inW * c.inC;
  q.imageStride = q.inH * q.rowStride;
  return q;
}

// A Conv2D's parameters with its output geometry, as the direct path sees them.
inline Conv fromParams(const fgc_conv2d_params &p, int64_t outH, int64_t outW, int64_t padTop,
                       int64_t padLeft) {
  Conv c;
  c.batch = p.batch;
  c.inH = p.in_h;
  c.inW = p.in_w;
  c.inC = p.in_c;
  c.kh = p.kernel_h;
  c.kw = p.kernel_w;
  c.outC = p.out_c;
  c.strideH = p.stride_h;
  c.strideW = p.stride_w;
  c.dilH = p.dilation_h;
  c.dilW = p.dilation_w;
  c.outH = outH;
  c.outW = outW;
  c.padTop = padTop;
  c.padLeft = padLeft;
  c.activation = p.activation;
  return c;
}

// The convolution; `kernel` is (kh, kw, inC, outC), `bias` (outC) or null.
// Requires applies(c).
inline void run(const Conv &c, const float *input, const float *kernel, const float *bias,
                float *output, float *scratch) {
  const Region r = region(c);
  Plan q = planOf(c, r);
  q.relu = c.activation == FGC_ACT_RELU;
  q.accumulate = c.accumulate;
  const bool otherActivation = !q.relu && c.activation != FGC_ACT_LINEAR;
  const int64_t outImage = c.outH * c.outW * c.outC;
  const int64_t chunk = r.copy ? chunkImages(c, r) : c.batch;
  const int64_t macsPerRow = c.outW * c.outC * c.kh * c.kw * c.inC;
  for (int64_t n0 = 0; n0 < c.batch; n0 += chunk) {
    const int64_t images = std::min(chunk, c.batch - n0);
    const float *src = input + n0 * c.inH * c.inW * c.inC;
    if (r.copy) {
      padImages(c, r, input, n0, images, scratch);
      src = scratch;
    }
    const int64_t rows = images * c.outH;
    auto runRow = [&](int64_t k) {
      int64_t n = k / c.outH, oy = k % c.outH;
      float *outRow = output + (n0 + n) * outImage + oy * c.outW * c.outC;
      row(q, src + n * q.imageStride + oy * c.strideH * q.rowStride, kernel, bias, outRow);
      if (otherActivation)
        applyActivation(c.activation, outRow, c.outW, c.outC);
    };
    // Rows are independent and each sums in a fixed order: any split gives the same bits.
    // With few input channels the loop runs well below its peak (a 1-channel image: ~35
    // G multiply-adds per second against ~100 from 16 channels on), so the work is
    // counted up accordingly.
    const double slowdown = 1.0 + 2.0 / double(c.inC);
    const int64_t threads = std::min<int64_t>(
        rows, threadsForMacs(double(rows) * double(macsPerRow) * slowdown));
    if (threads <= 1 || omp_in_parallel()) {
      for (int64_t k = 0; k < rows; ++k)
        runRow(k);
      continue;
    }
#pragma omp parallel for num_threads(static_cast<int>(threads)) schedule(static)
    for (int64_t k = 0; k < rows; ++k)
      runRow(k);
  }
}

// ---------------------------------------------------------------- kernel gradient

// dkernel[ky, kx, ci, co] = sum over output pixels of input[pixel's tap (ky, kx), ci] *
// dz[pixel, co]. One work item is a tap, a block of P input channels and a block of NV
// output-channel vectors; its sums stay in registers over a tile of output rows, read
// from dkernel before the tile and written back after it (so a tile of dz, small enough
// for the cache, serves every item before the next one is read).
struct KernelGradPlan {
  const Plan *q;
  const float *input; // the (padded) images of the chunk
  const float *dz;    // dz of the chunk's first image
};

template <int NV, int P>
inline void kernelGradBlock(const KernelGradPlan &k, int64_t r0, int64_t r1, int64_t tap,
                            int64_t ci0, int64_t c0, float *dkernel, bool first) {
  const Plan &q = *k.q;
  const int64_t ky = tap / q.kw, kx = tap % q.kw;
  float *out = dkernel + (tap * q.inC + ci0) * q.outC + c0;
  Vec acc[P][NV];
#pragma GCC unroll 16
  for (int j = 0; j < P; ++j)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      acc[j][v] = first ? zero() : load(out + j * q.outC + v * Width);
  const int64_t pixelStep = q.strideW * q.inC;
  const int64_t tapOffset = ky * q.dilH * q.rowStride + kx * q.dilW * q.inC + ci0;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / q.outH, oy = r % q.outH;
    const float *x = k.input + n * q.imageStride + oy * q.strideH * q.rowStride + tapOffset;
    const float *g = k.dz + r * q.outW * q.outC + c0;
    for (int64_t ox = 0; ox < q.outW; ++ox, x += pixelStep, g += q.outC) {
      Vec d[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v)
        d[v] = load(g + v * Width);
#pragma GCC unroll 16
      for (int j = 0; j < P; ++j) {
        Vec b = broadcast(x[j]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v)
          acc[j][v] = fma(b, d[v], acc[j][v]);
      }
    }
  }
#pragma GCC unroll 16
  for (int j = 0; j < P; ++j)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      store(out + j * q.outC + v * Width, acc[j][v]);
}

// A block of `count` (<= MaxPixels) input channels.
template <int NV, int P = 1>
inline void kernelGradChannels(const KernelGradPlan &k, int count, int64_t r0, int64_t r1,
                               int64_t tap, int64_t ci0, int64_t c0, float *dkernel,
                               bool first) {
  if constexpr (P < MaxPixels) {
    if (count != P) {
      kernelGradChannels<NV, P + 1>(k, count, r0, r1, tap, ci0, c0, dkernel, first);
      return;
    }
  }
  kernelGradBlock<NV, P>(k, r0, r1, tap, ci0, c0, dkernel, first);
}

// Input channels per work item: as many as the registers hold next to the widest
// channel block (a narrower last block needs fewer).
inline int64_t kernelGradChannelBlock(const Plan &q) {
  return pixelsFor(static_cast<int>(std::min<int64_t>(MaxVectors, q.outC / Width)));
}

// Work item `item` of kernelGrad: a tap, an input-channel block and a channel block.
inline void kernelGradItem(const KernelGradPlan &k, int64_t item, int64_t r0, int64_t r1,
                           float *dkernel, bool first) {
  const Plan &q = *k.q;
  const int64_t vectors = q.outC / Width;
  const int64_t coBlocks = (vectors + MaxVectors - 1) / MaxVectors;
  const int64_t ciBlock = kernelGradChannelBlock(q);
  const int64_t ciBlocks = (q.inC + ciBlock - 1) / ciBlock;
  const int64_t cb = item % coBlocks, rest = item / coBlocks;
  const int64_t ib = rest % ciBlocks, tap = rest / ciBlocks;
  const int64_t c0 = cb * MaxVectors * Width;
  const int nv = static_cast<int>(std::min<int64_t>(MaxVectors, vectors - cb * MaxVectors));
  const int64_t ci0 = ib * ciBlock;
  const int count = static_cast<int>(std::min<int64_t>(ciBlock, q.inC - ci0));
  switch (nv) {
  case 1:
    kernelGradChannels<1>(k, count, r0, r1, tap, ci0, c0, dkernel, first);
    break;
  case 2:
    if constexpr (MaxVectors >= 2)
      kernelGradChannels<2>(k, count, r0, r1, tap, ci0, c0, dkernel, first);
    break;
  case 3:
    if constexpr (MaxVectors >= 3)
      kernelGradChannels<3>(k, count, r0, r1, tap, ci0, c0, dkernel, first);
    break;
  default:
    if constexpr (MaxVectors >= 4)
      kernelGradChannels<4>(k, count, r0, r1, tap, ci0, c0, dkernel, first);
    break;
  }
}

// dkernel (kh, kw, inC, outC) of the convolution `c` (its forward geometry) from its
// input and dz (batch, outH, outW, outC); added to dkernel's values when `accumulate`.
// Requires applies(c). Scratch: scratchFloats(c).
inline void kernelGrad(const Conv &c, const float *input, const float *dz, float *dkernel,
                       bool accumulate, float *scratch) {
  const Region r = region(c);
  Plan q = planOf(c, r);
  const int64_t vectors = c.outC / Width;
  const int64_t ciBlock = kernelGradChannelBlock(q);
  const int64_t items = c.kh * c.kw * ((c.inC + ciBlock - 1) / ciBlock) *
                        ((vectors + MaxVectors - 1) / MaxVectors);
  // Output rows per tile: about 32K floats of dz.
  const int64_t tileRows = std::max<int64_t>(1, (int64_t(1) << 15) / (c.outW * c.outC));
  const int64_t chunk = r.copy ? chunkImages(c, r) : c.batch;
  const int64_t macs = c.batch * c.outH * c.outW * c.outC * c.kh * c.kw * c.inC;
  const int64_t threads = std::min<int64_t>(items, threadsForMacs(double(macs)));
  for (int64_t n0 = 0; n0 < c.batch; n0 += chunk) {
    const int64_t images = std::min(chunk, c.batch - n0);
    KernelGradPlan k{&q, input + n0 * c.inH * c.inW * c.inC, dz + n0 * c.outH * c.outW * c.outC};
    if (r.copy) {
      padImages(c, r, input, n0, images, scratch);
      k.input = scratch;
    }
    const int64_t rows = images * c.outH;
    auto sweep = [&](int64_t item0, int64_t item1) {
      for (int64_t r0 = 0; r0 < rows; r0 += tileRows) {
        const int64_t r1 = std::min(rows, r0 + tileRows);
        const bool first = !accumulate && n0 == 0 && r0 == 0;
        for (int64_t item = item0; item < item1; ++item)
          kernelGradItem(k, item, r0, r1, dkernel, first);
      }
    };
    // Items are disjoint parts of dkernel, each summed in pixel order: any split gives the
    // same bits.
    if (threads <= 1 || omp_in_parallel()) {
      sweep(0, items);
      continue;
    }
#pragma omp parallel num_threads(static_cast<int>(threads))
    {
      const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
      sweep(items * t / nt, items * (t + 1) / nt);
    }
  }
}

} // namespace fgc::runtime::detail::direct

#endif // FGC_RUNTIME_SRC_DIRECT_CONV_H
