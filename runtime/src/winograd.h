// Winograd F(m x m, 3x3) convolution for 3x3 stride-1 undilated NHWC Conv2D:
// each (m + 2)^2 input tile gives an m x m output tile with (m + 2)^2 multiplies
// per (input, output) channel pair instead of 9 m^2. With U = G g G^T (the
// kernel), V = B^T d B (the input tile) and M = U . V summed over input channels
// (one independent GEMM per point of the transform), the output tile is
// A^T M A (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks").
// Two tile sizes: F(4x4, 3x3) (36 points; interpolation points 0, +-1, +-2,
// infinity) and F(3x3, 3x3) (25 points; 0, +-1, 2, infinity). formFor picks
// the one with fewer multiplies for the output size, counting partial tiles:
// a 9x9 output is 9 tiles of 3x3 (225 products per channel pair) rather than 9
// of 4x4 (324). The choice depends on the spatial size only, so a kernel
// transformed ahead of time and the convolution always agree on it.
//
// Layouts (P points): U (P, inC, outC), V (P, tiles, inC), M (P, tiles, outC); the GEMMs
// run on the direct convolution's register-blocked loop (a 1x1 convolution over
// `tiles` pixels). U is computed once per weight change when the compiler
// pre-transforms the kernel (fgc_conv2d_winograd_kernel), or in every call by
// fgc_conv2d at batch sizes that amortize it. Tiles are processed in chunks
// whose V and M stay in cache; threads split the chunks (a contiguous run each, in its own slot
// of the scratch) or, when there are fewer chunks than threads, the output
// channels (each transforming the same input tiles into its own slot). Every
// output sums the same terms in the same order either way, so results do not
// depend on the thread count.
//
// Used when the arithmetic saved outweighs the transforms and the wasted part
// of partial tiles (see worthIt). Included by conv.cpp and grad_conv.cpp,
// compiled once per CPU variant.
#ifndef FGC_RUNTIME_SRC_WINOGRAD_H
#define FGC_RUNTIME_SRC_WINOGRAD_H

#include "direct_conv.h"

namespace fgc::runtime::detail::winograd {

using direct::Conv;
using direct::Vec;
using direct::Width;

// Scratch slots (threads working at once) and the floats of V and M per slot.
constexpr int64_t Slots = 8;
constexpr int64_t SlotTarget = int64_t(96) << 10;

// ---------------------------------------------------------------- the two tile sizes
// T is a SIMD vector (channels [i, i + Width)) or a float (one channel).

// F(4x4, 3x3).
struct F4 {
  static constexpr int64_t TileSide = 4; // output pixels per tile side
  static constexpr int64_t Span = 6;     // input pixels per tile side
  static constexpr const char *Name = "F(4x4, 3x3)";

  // B^T z for a column or row z of an input tile.
  template <typename T> static void inputLine(const T z[6], T r[6]) {
    const T a = z[4] - z[2], b = z[1] - z[3];
    r[0] = 4.0f * z[0] - 5.0f * z[2] + z[4];
    r[1] = -4.0f * (z[1] + z[2]) + (z[3] + z[4]);
    r[2] = 4.0f * (z[1] - z[2]) + (z[4] - z[3]);
    r[3] = a - 2.0f * b;
    r[4] = a + 2.0f * b;
    r[5] = 4.0f * z[1] - 5.0f * z[3] + z[5];
  }
  // A^T m for a column or row m of a product tile.
  template <typename T> static void outputLine(const T m[6], T y[4]) {
    const T a = m[1] + m[2], b = m[1] - m[2], c = m[3] + m[4], d = m[3] - m[4];
    y[0] = m[0] + a + c;
    y[1] = b + 2.0f * d;
    y[2] = a + 4.0f * c;
    y[3] = b + 8.0f * d + m[5];
  }
  // G g for a column or row g of a 3x3 kernel.
  template <typename T> static void kernelLine(const T g[3], T u[6]) {
    const T t = -(g[0] + g[2]) * (1.0f / 6.0f);
    const T s = g[0] * (1.0f / 24.0f) + g[2] * (1.0f / 6.0f);
    u[0] = g[0] * 0.25f;
    u[1] = t - g[1] * (1.0f / 6.0f);
    u[2] = t + g[1] * (1.0f / 6.0f);
    u[3] = s + g[1] * (1.0f / 12.0f);
    u[4] = s - g[1] * (1.0f / 12.0f);
    u[5] = g[2];
  }
};

// F(3x3, 3x3).
struct F3 {
  static constexpr int64_t TileSide = 3;
  static constexpr int64_t Span = 5;
  static constexpr const char *Name = "F(3x3, 3x3)";

  template <typename T> static void inputLine(const T z[5], T r[5]) {
    const T a = z[3] - z[2];
    r[0] = 2.0f * (z[0] - z[2]) + (z[3] - z[1]);
    r[1] = a - 2.0f * z[1];
    r[2] = 2.0f * (z[1] - z[2]) + a;
    r[3] = z[3] - z[1];
    r[4] = 2.0f * (z[1] - z[3]) + (z[4] - z[2]);
  }
  template <typename T> static void outputLine(const T m[5], T y[3]) {
    const T a = m[1] + m[2];
    y[0] = m[0] + a + m[3];
    y[1] = (m[1] - m[2]) + 2.0f * m[3];
    y[2] = a + 4.0f * m[3] + m[4];
  }
  template <typename T> static void kernelLine(const T g[3], T u[5]) {
    u[0] = g[0] * 0.5f;
    u[1] = (g[0] + g[1] + g[2]) * -0.5f;
    u[2] = (g[1] - g[0] - g[2]) * (1.0f / 6.0f);
    u[3] = (g[0] + 2.0f * g[1] + 4.0f * g[2]) * (1.0f / 6.0f);
    u[4] = g[2];
  }
};

template <class F> constexpr int64_t pointsOf() { return F::Span * F::Span; }

template <class F> int64_t tilesHigh(const Conv &c) {
  return (c.outH + F::TileSide - 1) / F::TileSide;
}
template <class F> int64_t tilesWide(const Conv &c) {
  return (c.outW + F::TileSide - 1) / F::TileSide;
}
template <class F> int64_t tileCount(const Conv &c) {
  return c.batch * tilesHigh<F>(c) * tilesWide<F>(c);
}
// Products per (input, output) channel pair and image.
template <class F> int64_t productsPerImage(const Conv &c) {
  return tilesHigh<F>(c) * tilesWide<F>(c) * pointsOf<F>();
}

// The tile size for this output size: F(3x3) only where it needs fewer products.
inline bool usesF3(const Conv &c) { return productsPerImage<F3>(c) < productsPerImage<F4>(c); }

// Calls f(F4{}) or f(F3{}), as formFor chooses.
template <class Fn> decltype(auto) withForm(const Conv &c, Fn &&f) {
  if (usesF3(c))
    return f(F3{});
  return f(F4{});
}

// Points of the transform this convolution uses (36 or 25).
inline int64_t points(const Conv &c) {
  return withForm(c, [](auto f) { return pointsOf<decltype(f)>(); });
}
inline const char *formName(const Conv &c) {
  return withForm(c, [](auto f) { return decltype(f)::Name; });
}

// Multiply-adds per (input, output) channel pair: direct vs Winograd. `transformCost` is what
// transforming the kernel costs per pair in every call (0 when it was transformed ahead of
// time, fgc_conv2d_winograd): writing one float per point and pair runs at memory speed, worth
// about 60 multiply-adds each on the machines measured.
constexpr double TransformCostPerPoint = 60.0;
inline bool worthIt(const Conv &c, bool transformInCall) {
  const double direct = double(c.batch) * double(c.outH * c.outW) * 9.0;
  const double fast = double(c.batch) * double(withForm(c, [&](auto f) {
                        return productsPerImage<decltype(f)>(c);
                      })) +
                      (transformInCall ? TransformCostPerPoint * double(points(c)) : 0.0);
  return direct >= 1.6 * fast;
}

// The shapes the Winograd loops handle in every CPU variant: 3x3, stride 1, no dilation,
// out_c a multiple of 16 (the widest vector).
inline bool shapeSuits(const Conv &c) {
  return c.kh == 3 && c.kw == 3 && c.strideH == 1 && c.strideW == 1 && c.dilH == 1 &&
         c.dilW == 1 && c.inC >= 16 && c.outC % 16 == 0 && c.outH > 0 && c.outW > 0;
}

// Whether fgc_conv2d transforms the kernel itself and runs this path (it pays once the batch
// has enough tiles). Independent of the CPU variant: scratch sizes are asked of the baseline
// library.
inline bool applies(const Conv &c) { return shapeSuits(c) && worthIt(c, true); }

// Tiles per chunk: V and M of a chunk fill about SlotTarget floats.
template <class F> int64_t chunkTiles(const Conv &c) {
  return std::min(std::max<int64_t>(SlotTarget / (pointsOf<F>() * (c.inC + c.outC)), 12),
                  tileCount<F>(c));
}
template <class F> int64_t slotFloats(const Conv &c) {
  return chunkTiles<F>(c) * pointsOf<F>() * (c.inC + c.outC);
}

// Floats of the transformed kernel U.
inline int64_t kernelFloats(const Conv &c) { return points(c) * c.inC * c.outC; }

// Scratch of runTransformed, and of run (which also holds the transformed kernel).
inline int64_t transformedScratchFloats(const Conv &c) {
  return withForm(c, [&](auto f) { return Slots * slotFloats<decltype(f)>(c); });
}
inline int64_t scratchFloats(const Conv &c) {
  return winograd::applies(c) ? kernelFloats(c) + transformedScratchFloats(c) : 0;
}

// ---------------------------------------------------------------- transforms

template <typename T> inline T ld(const float *p) {
  if constexpr (std::is_same_v<T, float>)
    return *p;
  else
    return direct::load(p);
}
template <typename T> inline void st(float *p, T v) {
  if constexpr (std::is_same_v<T, float>)
    *p = v;
  else
    direct::store(p, v);
}

// U[:, ci, co .. co + width) from the Keras kernel (3, 3, inC, outC).
template <class F, typename T>
inline void transformKernel(const Conv &c, const float *kernel, int64_t ci, int64_t co,
                            float *u) {
  constexpr int S = int(F::Span);
  T g[3][3], gt[S][3];
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      g[i][j] = ld<T>(kernel + ((i * 3 + j) * c.inC + ci) * c.outC + co);
  for (int j = 0; j < 3; ++j) {
    T col[3] = {g[0][j], g[1][j], g[2][j]}, out[S];
    F::kernelLine(col, out);
    for (int i = 0; i < S; ++i)
      gt[i][j] = out[i];
  }
  const int64_t pointStride = c.inC * c.outC;
  for (int i = 0; i < S; ++i) {
    T out[S];
    F::kernelLine(gt[i], out);
    for (int j = 0; j < S; ++j)
      st(u + (i * S + j) * pointStride + ci * c.outC + co, out[j]);
  }
}

// U for output channels [co0, co1) (multiples of Width), every input channel.
template <class F>
inline void transformKernelColumns(const Conv &c, const float *kernel, int64_t ci0, int64_t ci1,
                                   int64_t co0, int64_t co1, float *u) {
  for (int64_t ci = ci0; ci < ci1; ++ci)
    for (int64_t co = co0; co < co1; co += Width)
      transformKernel<F, Vec>(c, kernel, ci, co, u);
}

// V[:, tile, ci .. ci + width) of tile (n, ty, tx); Check: the tile crosses the
// image border (zeros outside).
template <class F, typename T, bool Check>
inline void transformInput(const Conv &c, const float *image, int64_t y0, int64_t x0, int64_t ci,
                           float *v, int64_t pointStride) {
  constexpr int S = int(F::Span);
  T d[S][S];
  for (int i = 0; i < S; ++i)
    for (int j = 0; j < S; ++j) {
      const int64_t iy = y0 + i, ix = x0 + j;
      if (!Check || (iy >= 0 && iy < c.inH && ix >= 0 && ix < c.inW))
        d[i][j] = ld<T>(image + (iy * c.inW + ix) * c.inC + ci);
      else
        d[i][j] = T{};
    }
  T dt[S][S];
  for (int j = 0; j < S; ++j) {
    T col[S], out[S];
    for (int i = 0; i < S; ++i)
      col[i] = d[i][j];
    F::inputLine(col, out);
    for (int i = 0; i < S; ++i)
      dt[i][j] = out[i];
  }
  for (int i = 0; i < S; ++i) {
    T out[S];
    F::inputLine(dt[i], out);
    for (int j = 0; j < S; ++j)
      st(v + (i * S + j) * pointStride + ci, out[j]);
  }
}

template <class F, bool Check>
inline void transformInputChannels(const Conv &c, const float *image, int64_t y0, int64_t x0,
                                   float *v, int64_t pointStride) {
  int64_t ci = 0;
  for (; ci + Width <= c.inC; ci += Width)
    transformInput<F, Vec, Check>(c, image, y0, x0, ci, v, pointStride);
  for (; ci < c.inC; ++ci)
    transformInput<F, float, Check>(c, image, y0, x0, ci, v, pointStride);
}

// The input position of tile `t`'s top-left corner, and its image.
struct TilePos {
  int64_t n, y0, x0;
};
template <class F> TilePos tilePos(const Conv &c, int64_t t) {
  const int64_t wide = tilesWide<F>(c), perImage = tilesHigh<F>(c) * wide;
  const int64_t n = t / perImage, k = t % perImage;
  return {n, (k / wide) * F::TileSide - c.padTop, (k % wide) * F::TileSide - c.padLeft};
}

// V of tiles [t0, t1) (stored from row 0).
template <class F>
inline void transformInputs(const Conv &c, const float *input, int64_t t0, int64_t t1,
                            float *v) {
  const int64_t pointStride = (t1 - t0) * c.inC;
  for (int64_t t = t0; t < t1; ++t) {
    const TilePos p = tilePos<F>(c, t);
    const float *image = input + p.n * c.inH * c.inW * c.inC;
    float *dst = v + (t - t0) * c.inC;
    if (p.y0 >= 0 && p.x0 >= 0 && p.y0 + F::Span <= c.inH && p.x0 + F::Span <= c.inW)
      transformInputChannels<F, false>(c, image, p.y0, p.x0, dst, pointStride);
    else
      transformInputChannels<F, true>(c, image, p.y0, p.x0, dst, pointStride);
  }
}

// M[p] = V[p] U[p] for tiles [0, count) and output channels [co0, co1).
template <class F>
inline void multiply(const Conv &c, const float *v, const float *u, int64_t count, int64_t co0,
                     int64_t co1, float *m) {
  direct::Plan q{};
  q.kh = q.kw = 1;
  q.inC = c.inC;
  q.outC = c.outC;
  q.strideH = q.strideW = q.dilH = q.dilW = 1;
  q.outH = 1;
  q.outW = count;
  q.inH = 1;
  q.inW = count;
  q.rowStride = count * c.inC;
  q.imageStride = q.rowStride;
  for (int64_t p = 0; p < pointsOf<F>(); ++p)
    direct::row(q, v + p * count * c.inC, u + p * c.inC * c.outC, nullptr,
                m + p * count * c.outC, co0 / Width, co1 / Width);
}

// The output tiles [t0, t1) from M (tiles from row 0), channels [co0, co1):
// bias, ReLU (others: the caller), or added to the output when accumulating.
template <class F>
inline void transformOutputs(const Conv &c, const float *m, int64_t t0, int64_t t1, int64_t co0,
                             int64_t co1, const float *bias, float *output) {
  constexpr int S = int(F::Span), M = int(F::TileSide);
  const int64_t count = t1 - t0, pointStride = count * c.outC;
  const bool relu = c.activation == FGC_ACT_RELU;
  for (int64_t t = t0; t < t1; ++t) {
    const TilePos p = tilePos<F>(c, t);
    const int64_t oy0 = p.y0 + c.padTop, ox0 = p.x0 + c.padLeft;
    const int64_t rows = std::min<int64_t>(M, c.outH - oy0), cols = std::min<int64_t>(M, c.outW - ox0);
    float *out = output + ((p.n * c.outH + oy0) * c.outW + ox0) * c.outC;
    for (int64_t co = co0; co < co1; co += Width) {
      const float *src = m + (t - t0) * c.outC + co;
      Vec mt[M][S];
      for (int j = 0; j < S; ++j) {
        Vec col[S], y[M];
        for (int i = 0; i < S; ++i)
          col[i] = direct::load(src + (i * S + j) * pointStride);
        F::outputLine(col, y);
        for (int i = 0; i < M; ++i)
          mt[i][j] = y[i];
      }
      const Vec b = bias ? direct::load(bias + co) : direct::zero();
      for (int64_t i = 0; i < rows; ++i) {
        Vec y[M];
        F::outputLine(mt[i], y);
        for (int64_t j = 0; j < cols; ++j) {
          float *dst = out + (i * c.outW + j) * c.outC + co;
          Vec r = y[j] + b;
          if (c.accumulate)
            r = r + direct::load(dst);
          else if (relu)
            r = direct::max(r, direct::zero());
          direct::store(dst, r);
        }
      }
    }
    if (!relu && c.activation != FGC_ACT_LINEAR)
      for (int64_t i = 0; i < rows; ++i)
        applyActivation(c.activation, out + i * c.outW * c.outC, cols, c.outC);
  }
}

// ---------------------------------------------------------------- the convolution

// U (points, inC, outC) of the Keras kernel (3, 3, inC, outC), split by input channels.
inline void transformKernelAll(const Conv &c, const float *kernel, float *u) {
  withForm(c, [&](auto f) {
    using F = decltype(f);
    // About 8 cheap operations per transformed float (two 3-point lines, the store).
    const int64_t threads = std::min<int64_t>(c.inC, threadsFor(kernelFloats(c) * 8));
    if (threads <= 1 || omp_in_parallel()) {
      transformKernelColumns<F>(c, kernel, 0, c.inC, 0, c.outC, u);
      return;
    }
#pragma omp parallel num_threads(static_cast<int>(threads))
    {
      const int64_t id = omp_get_thread_num(), count = omp_get_num_threads();
      transformKernelColumns<F>(c, kernel, c.inC * id / count, c.inC * (id + 1) / count, 0,
                                c.outC, u);
    }
  });
}

// The convolution from the transformed kernel `u`; requires shapeSuits(c) and
// transformedScratchFloats(c) floats of scratch. `bias` may be null; with c.accumulate the
// result is added to the output (linear activation, no bias).
template <class F>
inline void runTransformedAs(const Conv &c, const float *input, const float *u, const float *bias,
                             float *output, float *scratch) {
  constexpr int64_t Points = pointsOf<F>();
  const int64_t tiles = tileCount<F>(c), chunk = chunkTiles<F>(c);
  const int64_t chunks = (tiles + chunk - 1) / chunk;
  const int64_t vectors = c.outC / Width;
  const int64_t slot = slotFloats<F>(c);
  const int64_t macs = tiles * Points * c.inC * c.outC;
  int64_t threads = std::min<int64_t>(Slots, threadsForMacs(double(macs)));
  // Split by chunks of tiles when every thread gets one; otherwise by output channels (only
  // ReLU or linear outputs: other activations need whole pixels).
  const bool activationPerPixel = c.activation != FGC_ACT_LINEAR && c.activation != FGC_ACT_RELU;
  const bool byTiles = chunks >= threads || activationPerPixel;
  threads = std::min(threads, byTiles ? chunks : vectors);
  if (omp_in_parallel())
    threads = 1;

  auto work = [&](int64_t id, int64_t count) {
    float *v = scratch + id * slot;
    // Split by tiles: each thread a contiguous run of chunks, so that it reads the images
    // (and writes the rows) that the neighbouring layers' row splits give the same thread.
    int64_t first = 0, last = chunks, co0 = 0, co1 = c.outC;
    if (byTiles) {
      first = chunks * id / count;
      last = chunks * (id + 1) / count;
    } else {
      co0 = Width * (vectors * id / count);
      co1 = Width * (vectors * (id + 1) / count);
    }
    for (int64_t k = first; k < last; ++k) {
      const int64_t t0 = k * chunk, t1 = std::min(tiles, t0 + chunk);
      float *m = v + (t1 - t0) * Points * c.inC;
      transformInputs<F>(c, input, t0, t1, v);
      multiply<F>(c, v, u, t1 - t0, co0, co1, m);
      transformOutputs<F>(c, m, t0, t1, co0, co1, bias, output);
    }
  };
  if (threads <= 1) {
    work(0, 1);
    return;
  }
#pragma omp parallel num_threads(static_cast<int>(threads))
  work(omp_get_thread_num(), omp_get_num_threads());
}

inline void runTransformed(const Conv &c, const float *input, const float *u, const float *bias,
                           float *output, float *scratch) {
  withForm(c, [&](auto f) {
    runTransformedAs<decltype(f)>(c, input, u, bias, output, scratch);
  });
}

// The convolution, transforming the kernel into the scratch first. Requires applies(c);
// scratch: scratchFloats(c).
inline void run(const Conv &c, const float *input, const float *kernel, const float *bias,
                float *output, float *scratch) {
  transformKernelAll(c, kernel, scratch);
  runTransformed(c, input, scratch, bias, output, scratch + kernelFloats(c));
}

} // namespace fgc::runtime::detail::winograd

#endif // FGC_RUNTIME_SRC_WINOGRAD_H
