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

// The geometry of one call, in floats.
struct Plan {
  int64_t kh, kw, inC, outC;
  int64_t strideH, strideW, dilH, dilW;
  int64_t outH, outW;
  int64_t inH, inW;       // of the (possibly padded) image the loop reads
  int64_t rowStride;      // floats between input rows
  int64_t imageStride;    // floats between input images
  bool relu;
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
      acc[j][v] = bias ? load(bias + v * Width) : zero();
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
        for (int v = 0; v < NV; ++v)
          k[v] = load(w + v * Width);
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

inline void row(const Plan &q, const float *inRow, const float *kernel, const float *bias,
                float *outRow) {
  const int64_t vectors = q.outC / Width;
  int64_t v = 0;
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

} // namespace fgc::runtime::detail::direct

#endif // FGC_RUNTIME_SRC_DIRECT_CONV_H
