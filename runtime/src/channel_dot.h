// Conv2D with a few output channels (fewer than a vector holds, as in an autoencoder's last
// layer, 16 -> 1) over at least a vector of input channels. Each output value is a dot
// product of the window's pixels with the kernel, and in NHWC a pixel's input channels lie
// contiguous: vectors run along the input channels, several output pixels of a row are summed
// at once (independent chains for the FMA latency), and each vector is added up across its
// lanes at the end. The direct path needs outC to be a multiple of the vector width; without
// this one such a convolution ran as im2col + a matrix-vector product, which spent its time
// writing and rereading the im2col rows (and got slower on two threads).
//
// Every output sums the same terms in the same order whatever the thread count or the pixel's
// position in its block. Included by conv.cpp, compiled once per CPU variant.
#ifndef FGC_RUNTIME_SRC_CHANNEL_DOT_H
#define FGC_RUNTIME_SRC_CHANNEL_DOT_H

#include "direct_conv.h"

namespace fgc::runtime::detail::channel_dot {

using direct::Conv;
using direct::Vec;
using direct::Width;

constexpr int64_t MaxOutputs = 4;

// The shapes this path takes (any kernel size, stride, dilation and padding).
inline bool applies(const Conv &c) {
  return c.outC <= MaxOutputs && c.inC >= Width && !c.accumulate;
}

// Scratch: the kernel as (kh, kw, outC, inC), so that each output channel's weights run along
// the input channels like the pixels do (none needed for one output channel).
inline int64_t scratchFloats(const Conv &c) {
  return c.outC > 1 ? c.kh * c.kw * c.outC * c.inC : 0;
}

// Output pixels summed at once for OC output channels: 8 chains in all, enough to cover the
// FMA latency and within 16 registers with the kernel vectors.
template <int OC> constexpr int pixelsFor() { return OC == 1 ? 8 : OC == 2 ? 4 : 2; }

// The sums of output pixels ox0 .. ox0 + P - 1 of row oy (one image), channels [0, OC), into
// out (NHWC, bias added). Check: some window taps of these pixels fall outside the image in x
// (then P is 1); rows outside the image are skipped for all of them alike.
template <int OC, int P, bool Check>
inline void pixels(const Conv &c, const float *image, const float *kt, const float *bias,
                   int64_t oy, int64_t ox0, float *out) {
  Vec acc[P][OC];
  float rest[P][OC];
  for (int p = 0; p < P; ++p)
    for (int o = 0; o < OC; ++o) {
      acc[p][o] = direct::zero();
      rest[p][o] = 0.0f;
    }
  const int64_t vectorEnd = c.inC / Width * Width;
  for (int64_t ky = 0; ky < c.kh; ++ky) {
    const int64_t iy = oy * c.strideH - c.padTop + ky * c.dilH;
    if (iy < 0 || iy >= c.inH)
      continue;
    const float *inRow = image + iy * c.inW * c.inC;
    for (int64_t kx = 0; kx < c.kw; ++kx) {
      const int64_t ix0 = ox0 * c.strideW - c.padLeft + kx * c.dilW;
      if (Check && (ix0 < 0 || ix0 >= c.inW))
        continue;
      const float *w = kt + (ky * c.kw + kx) * OC * c.inC;
      const float *px[P];
      for (int p = 0; p < P; ++p)
        px[p] = inRow + (ix0 + p * c.strideW) * c.inC;
      for (int64_t ci = 0; ci < vectorEnd; ci += Width) {
        Vec wv[OC];
        for (int o = 0; o < OC; ++o)
          wv[o] = direct::load(w + o * c.inC + ci);
        for (int p = 0; p < P; ++p) {
          const Vec x = direct::load(px[p] + ci);
          for (int o = 0; o < OC; ++o)
            acc[p][o] = direct::fma(x, wv[o], acc[p][o]);
        }
      }
      for (int64_t ci = vectorEnd; ci < c.inC; ++ci)
        for (int p = 0; p < P; ++p)
          for (int o = 0; o < OC; ++o)
            rest[p][o] += px[p][ci] * w[o * c.inC + ci];
    }
  }
  for (int p = 0; p < P; ++p)
    for (int o = 0; o < OC; ++o)
      out[p * OC + o] = direct::sum(acc[p][o]) + rest[p][o] + (bias ? bias[o] : 0.0f);
}

// Output row `row` (image row / outH, output row row % outH) for OC output channels.
template <int OC>
inline void outputRow(const Conv &c, const float *input, const float *kt, const float *bias,
                      int64_t row, float *output) {
  constexpr int P = pixelsFor<OC>();
  const int64_t n = row / c.outH, oy = row % c.outH;
  const float *image = input + n * c.inH * c.inW * c.inC;
  float *out = output + row * c.outW * OC;
  // Output pixels whose every tap lies inside the image in x: [first, last).
  const int64_t span = (c.kw - 1) * c.dilW;
  int64_t first = 0, last = c.outW;
  while (first < c.outW && first * c.strideW - c.padLeft < 0)
    ++first;
  while (last > first && (last - 1) * c.strideW - c.padLeft + span >= c.inW)
    --last;
  int64_t ox = 0;
  for (; ox < first; ++ox)
    pixels<OC, 1, true>(c, image, kt, bias, oy, ox, out + ox * OC);
  for (; ox + P <= last; ox += P)
    pixels<OC, P, false>(c, image, kt, bias, oy, ox, out + ox * OC);
  for (; ox < last; ++ox)
    pixels<OC, 1, false>(c, image, kt, bias, oy, ox, out + ox * OC);
  for (; ox < c.outW; ++ox)
    pixels<OC, 1, true>(c, image, kt, bias, oy, ox, out + ox * OC);
  if (c.activation != FGC_ACT_LINEAR)
    applyActivation(c.activation, out, c.outW, OC);
}

template <int OC>
inline void runChannels(const Conv &c, const float *input, const float *kt, const float *bias,
                        float *output) {
  const int64_t rows = c.batch * c.outH;
  // Rows are independent and each sums in a fixed order: any split gives the same bits.
  // About 10 G multiply-adds per second (one vector FMA per Width of them, a lane sum per
  // output): a tenth of the blocked loop's rate that threadsForMacs assumes.
  const double macs = double(rows) * double(c.outW * OC * c.kh * c.kw * c.inC);
  const int64_t threads = std::min<int64_t>(rows, threadsForMacs(macs * 10));
  if (threads <= 1) {
    for (int64_t r = 0; r < rows; ++r)
      outputRow<OC>(c, input, kt, bias, r, output);
    return;
  }
#pragma omp parallel for num_threads(static_cast<int>(threads)) schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    outputRow<OC>(c, input, kt, bias, r, output);
}

// The convolution; requires applies(c) and scratchFloats(c) floats of scratch. `bias` may be
// null.
inline void run(const Conv &c, const float *input, const float *kernel, const float *bias,
                float *output, float *scratch) {
  const float *kt = kernel;
  if (c.outC > 1) {
    const int64_t taps = c.kh * c.kw;
    for (int64_t t = 0; t < taps; ++t)
      for (int64_t ci = 0; ci < c.inC; ++ci)
        for (int64_t o = 0; o < c.outC; ++o)
          scratch[(t * c.outC + o) * c.inC + ci] = kernel[(t * c.inC + ci) * c.outC + o];
    kt = scratch;
  }
  switch (c.outC) {
  case 1:
    runChannels<1>(c, input, kt, bias, output);
    break;
  case 2:
    runChannels<2>(c, input, kt, bias, output);
    break;
  case 3:
    runChannels<3>(c, input, kt, bias, output);
    break;
  default:
    runChannels<4>(c, input, kt, bias, output);
    break;
  }
}

} // namespace fgc::runtime::detail::channel_dot

#endif // FGC_RUNTIME_SRC_CHANNEL_DOT_H
