// Conv2D and Conv2DTranspose over NHWC tensors with Keras kernel layouts.
//
// Conv2D gathers the receptive field of a tile of output pixels into the
// caller's scratch (im2col, columns ordered (ky, kx, in_c) like the Keras
// kernel's rows) and multiplies it by the kernel viewed as a (kh*kw*in_c, out_c)
// matrix, which writes the NHWC output rows directly; a 1x1 stride-1
// convolution is a single GEMM over the input. A stride-1 Conv2DTranspose is
// run as that Conv2D with a flipped kernel (see transposeAsConv). Otherwise
// Conv2DTranspose multiplies the input by the transposed kernel to get every
// tap's contribution, then each output pixel gathers the contributions that
// land on it (col2im as a gather, so output rows can be filled in parallel
// without races). When out_c is a multiple of the SIMD width, Conv2D (and so the
// stride-1 Conv2DTranspose) is instead a direct convolution (direct_conv.h):
// no im2col copy and no GEMM packing, the sums kept in registers; a 3x3
// stride-1 one with enough pixels is a Winograd F(4x4 or 3x3, 3x3) convolution
// (winograd.h) on the same register-blocked loop. With at most 4 output channels
// and at least a vector of input channels, each output is a dot product along
// the input channels (channel_dot.h).
#include "common.h"
#include "channel_dot.h"
#include "direct_conv.h"
#include "winograd.h"

#include <algorithm>
#include <cstring>

namespace fgc::runtime::detail {

namespace {

// Floats of scratch the kernels aim for: big enough for efficient GEMM tiles,
// small enough to stay cache- and memory-friendly.
using direct::ScratchTarget;

struct Geometry {
  int64_t outH = 0, outW = 0, padTop = 0, padLeft = 0;
};

int checkParams(const char *name, const fgc_conv2d_params *p) { return checkConvParams(name, p); }

Geometry convGeometry(const fgc_conv2d_params &p) {
  Geometry g;
  g.outH = fgc_conv_output_length(p.in_h, p.kernel_h, p.stride_h, p.dilation_h, p.padding);
  g.outW = fgc_conv_output_length(p.in_w, p.kernel_w, p.stride_w, p.dilation_w, p.padding);
  g.padTop = fgc_conv_pad_before(p.in_h, p.kernel_h, p.stride_h, p.dilation_h, p.padding);
  g.padLeft = fgc_conv_pad_before(p.in_w, p.kernel_w, p.stride_w, p.dilation_w, p.padding);
  return g;
}

Geometry transposeGeometry(const fgc_conv2d_params &p) {
  Geometry g;
  g.outH = fgc_conv_transpose_output_length(p.in_h, p.kernel_h, p.stride_h, p.dilation_h,
                                            p.padding);
  g.outW = fgc_conv_transpose_output_length(p.in_w, p.kernel_w, p.stride_w, p.dilation_w,
                                            p.padding);
  if (p.padding == FGC_PADDING_SAME) {
    int64_t spanH = (p.kernel_h - 1) * p.dilation_h + 1;
    int64_t spanW = (p.kernel_w - 1) * p.dilation_w + 1;
    g.padTop = std::max<int64_t>(spanH - p.stride_h, 0) / 2;
    g.padLeft = std::max<int64_t>(spanW - p.stride_w, 0) / 2;
  }
  return g;
}

bool isPointwise(const fgc_conv2d_params &p) {
  return p.kernel_h == 1 && p.kernel_w == 1 && p.stride_h == 1 && p.stride_w == 1;
}

// Output pixels (rows of the im2col matrix) per GEMM tile of Conv2D.
int64_t convTileRows(const fgc_conv2d_params &p, const Geometry &g) {
  int64_t depth = p.kernel_h * p.kernel_w * p.in_c;
  int64_t total = p.batch * g.outH * g.outW;
  return std::min(total, std::max<int64_t>(ScratchTarget / depth, 32));
}

// Images per GEMM tile of Conv2DTranspose.
int64_t transposeTileImages(const fgc_conv2d_params &p) {
  int64_t perImage = p.in_h * p.in_w * p.kernel_h * p.kernel_w * p.out_c;
  return std::clamp<int64_t>(ScratchTarget / perImage, 1, p.batch);
}

// The copies of im2col are short (a few channels): inline vector code rather
// than a call to memcpy per window cell.
inline void copyFloats(float *dst, const float *src, int64_t n) {
  ArrayMap(dst, n) = ConstArrayMap(src, n);
}

// Fills `rows` im2col rows, starting at flattened output pixel `first`.
void im2col(const fgc_conv2d_params &p, const Geometry &g, const float *input, int64_t first,
            int64_t rows, float *cols) {
  const int64_t depth = p.kernel_h * p.kernel_w * p.in_c;
  const int64_t pixels = g.outH * g.outW;
#pragma omp parallel for num_threads(threadsFor(rows * depth)) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    int64_t flat = first + r;
    int64_t n = flat / pixels, oy = (flat % pixels) / g.outW, ox = flat % g.outW;
    const float *image = input + n * p.in_h * p.in_w * p.in_c;
    float *dst = cols + r * depth;
    const int64_t ix0 = ox * p.stride_w - g.padLeft;
    // With dilation 1 a window row lies contiguous in NHWC: one copy per row
    // when it is wholly inside (the common case away from the padding).
    const bool rowsContiguous =
        p.dilation_w == 1 && ix0 >= 0 && ix0 + p.kernel_w <= p.in_w;
    for (int64_t ky = 0; ky < p.kernel_h; ++ky) {
      int64_t iy = oy * p.stride_h - g.padTop + ky * p.dilation_h;
      bool rowInside = iy >= 0 && iy < p.in_h;
      if (rowInside && rowsContiguous) {
        copyFloats(dst, image + (iy * p.in_w + ix0) * p.in_c, p.kernel_w * p.in_c);
        dst += p.kernel_w * p.in_c;
        continue;
      }
      for (int64_t kx = 0; kx < p.kernel_w; ++kx, dst += p.in_c) {
        int64_t ix = ox * p.stride_w - g.padLeft + kx * p.dilation_w;
        if (rowInside && ix >= 0 && ix < p.in_w)
          copyFloats(dst, image + (iy * p.in_w + ix) * p.in_c, p.in_c);
        else
          ArrayMap(dst, p.in_c).setZero();
      }
    }
  }
}

// Sums into output row (n, oy) of one image every tap contribution in `cols`
// ((in_h*in_w, kh*kw*out_c) for that image) that lands on it.
void gatherTransposeRow(const fgc_conv2d_params &p, const Geometry &g, const float *cols,
                        int64_t oy, float *outRow) {
  const int64_t taps = p.kernel_h * p.kernel_w * p.out_c;
  std::fill(outRow, outRow + g.outW * p.out_c, 0.0f);
  for (int64_t ky = 0; ky < p.kernel_h; ++ky) {
    int64_t ty = oy + g.padTop - ky * p.dilation_h;
    if (ty < 0 || ty % p.stride_h != 0 || ty / p.stride_h >= p.in_h)
      continue;
    int64_t iy = ty / p.stride_h;
    for (int64_t ox = 0; ox < g.outW; ++ox) {
      float *dst = outRow + ox * p.out_c;
      for (int64_t kx = 0; kx < p.kernel_w; ++kx) {
        int64_t tx = ox + g.padLeft - kx * p.dilation_w;
        if (tx < 0 || tx % p.stride_w != 0 || tx / p.stride_w >= p.in_w)
          continue;
        int64_t ix = tx / p.stride_w;
        const float *src = cols + (iy * p.in_w + ix) * taps + (ky * p.kernel_w + kx) * p.out_c;
        for (int64_t c = 0; c < p.out_c; ++c)
          dst[c] += src[c];
      }
    }
  }
}

// ---------------------------------------------------------------- direct convolution

direct::Conv directConv(const fgc_conv2d_params &p, const Geometry &g) {
  return direct::fromParams(p, g.outH, g.outW, g.padTop, g.padLeft);
}

// A Conv2D's parameters as the direct and Winograd paths see them.
direct::Conv directConv(const fgc_conv2d_params &p) { return directConv(p, convGeometry(p)); }

// The scratch Conv2D asks for: im2col tiles or padded chunks, whichever is larger.
int64_t convScratch(const fgc_conv2d_params &p, const Geometry &g) {
  int64_t cols = isPointwise(p) ? 0 : convTileRows(p, g) * p.kernel_h * p.kernel_w * p.in_c;
  const direct::Conv c = directConv(p, g);
  return std::max({cols, direct::scratchFloats(c), winograd::scratchFloats(c),
                   channel_dot::scratchFloats(c)});
}

// Conv2D of `input` given the output geometry: the direct convolution when the
// channel count suits it; a 1x1 unpadded window is one
// GEMM over the input; otherwise tiles of im2col rows in `scratch`, each
// gathered, multiplied and finished by the thread that owns its rows.
void convolve(const fgc_conv2d_params &p, const Geometry &g, const float *input,
              const float *kernel, const float *bias, float *output, float *scratch) {
  const int64_t depth = p.kernel_h * p.kernel_w * p.in_c;
  const int64_t total = p.batch * g.outH * g.outW;
  const int64_t outC = p.out_c;
  if (direct::Conv c = directConv(p, g); winograd::applies(c)) {
    winograd::run(c, input, kernel, bias, output, scratch);
    return;
  } else if (direct::applies(c) && !isPointwise(p)) {
    direct::run(c, input, kernel, bias, output, scratch);
    return;
  } else if (channel_dot::applies(c) && !isPointwise(p)) {
    channel_dot::run(c, input, kernel, bias, output, scratch);
    return;
  }
  if (isPointwise(p) && g.padTop == 0 && g.padLeft == 0) {
    parallelRows(total, gemmThreads(total, depth, outC), [&](int64_t first, int64_t last) {
      gemmBias(input + first * depth, kernel, bias, output + first * outC, last - first, depth,
               outC);
      applyActivation(p.activation, output + first * outC, last - first, outC);
    });
    return;
  }
  const int64_t tile = convTileRows(p, g);
  for (int64_t begin = 0; begin < total; begin += tile) {
    int64_t rows = std::min(tile, total - begin);
    // One fork/join per tile: each thread gathers, multiplies and finishes its
    // own rows, in its own rows of the scratch.
    parallelRows(rows, gemmThreads(rows, depth, outC), [&](int64_t first, int64_t last) {
      float *cols = scratch + first * depth;
      float *dst = output + (begin + first) * outC;
      im2col(p, g, input, begin + first, last - first, cols);
      gemmBias(cols, kernel, bias, dst, last - first, depth, outC);
      applyActivation(p.activation, dst, last - first, outC);
    });
  }
}

// A stride-1 Conv2DTranspose is the Conv2D of its input with the kernel
// flipped in both spatial axes and its two channel axes swapped, padded so
// that every tap landing on an output pixel falls inside its window: no
// per-tap buffer and no gather.
bool transposeAsConv(const fgc_conv2d_params &p) { return p.stride_h == 1 && p.stride_w == 1; }

Geometry transposeAsConvGeometry(const fgc_conv2d_params &p) {
  Geometry g = transposeGeometry(p);
  g.padTop = (p.kernel_h - 1) * p.dilation_h - g.padTop;
  g.padLeft = (p.kernel_w - 1) * p.dilation_w - g.padLeft;
  return g;
}

int64_t kernelFloats(const fgc_conv2d_params &p) {
  return p.kernel_h * p.kernel_w * p.in_c * p.out_c;
}

// Keras's transposed kernel (kh, kw, out_c, in_c) as the Conv2D kernel
// (kh, kw, in_c, out_c) of transposeAsConv, spatially reversed.
void flipKernel(const fgc_conv2d_params &p, const float *kernel, float *flipped) {
  const int64_t taps = p.kernel_h * p.kernel_w, inC = p.in_c, outC = p.out_c;
  for (int64_t t = 0; t < taps; ++t) {
    const float *src = kernel + (taps - 1 - t) * outC * inC;
    float *dst = flipped + t * inC * outC;
    for (int64_t co = 0; co < outC; ++co)
      for (int64_t ci = 0; ci < inC; ++ci)
        dst[ci * outC + co] = src[co * inC + ci];
  }
}

// What `question` says of the Winograd convolution `p` describes, or 0 when the parameters are
// invalid or the shape does not suit the Winograd path (the three size queries below).
template <typename Question>
int64_t askWinograd(const char *name, const fgc_conv2d_params *p, Question question) {
  if (checkParams(name, p) != FGC_OK)
    return 0;
  direct::Conv c = directConv(*p);
  return winograd::shapeSuits(c) ? question(c) : 0;
}

} // namespace

} // namespace fgc::runtime::detail

using namespace fgc::runtime::detail;

extern "C" {

size_t fgc_conv2d_scratch_size(const fgc_conv2d_params *p) {
  if (checkParams("fgc_conv2d_scratch_size", p) != FGC_OK || isPointwise(*p))
    return 0;
  Geometry g = convGeometry(*p);
  if (g.outH < 1 || g.outW < 1)
    return 0;
  return static_cast<size_t>(convScratch(*p, g));
}

int fgc_conv2d(const fgc_conv2d_params *p, const float *input, const float *kernel,
               const float *bias, float *output, float *scratch) {
  constexpr const char *Name = "fgc_conv2d";
  if (int status = checkParams(Name, p))
    return status;
  FGC_CHECK_PTR(Name, input);
  FGC_CHECK_PTR(Name, kernel);
  FGC_CHECK_PTR(Name, output);
  Geometry g = convGeometry(*p);
  if (g.outH < 1 || g.outW < 1)
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: the %lldx%lld window does not fit the %lldx%lld input",
                Name, static_cast<long long>(p->kernel_h), static_cast<long long>(p->kernel_w),
                static_cast<long long>(p->in_h), static_cast<long long>(p->in_w));
  if (!isPointwise(*p))
    FGC_CHECK_PTR(Name, scratch);
  convolve(*p, g, input, kernel, bias, output, scratch);
  return FGC_OK;
}

int fgc_conv2d_winograd_suits(const fgc_conv2d_params *p) {
  if (!p || checkParams("fgc_conv2d_winograd_suits", p) != FGC_OK)
    return 0;
  direct::Conv c = directConv(*p);
  return winograd::shapeSuits(c) && winograd::worthIt(c, false) ? 1 : 0;
}

size_t fgc_conv2d_winograd_scratch_size(const fgc_conv2d_params *p) {
  return static_cast<size_t>(askWinograd("fgc_conv2d_winograd_scratch_size", p,
                                         winograd::transformedScratchFloats));
}

size_t fgc_conv2d_winograd_kernel_size(const fgc_conv2d_params *p) {
  return static_cast<size_t>(
      askWinograd("fgc_conv2d_winograd_kernel_size", p, winograd::kernelFloats));
}

int fgc_conv2d_winograd_points(const fgc_conv2d_params *p) {
  return static_cast<int>(askWinograd("fgc_conv2d_winograd_points", p, winograd::points));
}

// The shapes the Winograd entry points take, or an error naming the one that does not fit.
static int checkWinograd(const char *name, const fgc_conv2d_params *p) {
  if (int status = checkParams(name, p))
    return status;
  direct::Conv c = directConv(*p);
  if (!winograd::shapeSuits(c))
    return fail(FGC_ERR_INVALID_ARGUMENT,
                "%s: needs a 3x3 kernel, stride 1, no dilation, at least 16 input channels and "
                "a multiple of 16 filters (got %lldx%lld, stride %lldx%lld, dilation %lldx%lld, "
                "%lld -> %lld channels)",
                name, static_cast<long long>(p->kernel_h), static_cast<long long>(p->kernel_w),
                static_cast<long long>(p->stride_h), static_cast<long long>(p->stride_w),
                static_cast<long long>(p->dilation_h), static_cast<long long>(p->dilation_w),
                static_cast<long long>(p->in_c), static_cast<long long>(p->out_c));
  return FGC_OK;
}

int fgc_conv2d_winograd_kernel(const fgc_conv2d_params *p, const float *kernel,
                               float *transformed) {
  constexpr const char *Name = "fgc_conv2d_winograd_kernel";
  if (int status = checkWinograd(Name, p))
    return status;
  FGC_CHECK_PTR(Name, kernel);
  FGC_CHECK_PTR(Name, transformed);
  winograd::transformKernelAll(directConv(*p), kernel, transformed);
  return FGC_OK;
}

int fgc_conv2d_winograd(const fgc_conv2d_params *p, const float *input, const float *transformed,
                        const float *bias, float *output, float *scratch) {
  constexpr const char *Name = "fgc_conv2d_winograd";
  if (int status = checkWinograd(Name, p))
    return status;
  FGC_CHECK_PTR(Name, input);
  FGC_CHECK_PTR(Name, transformed);
  FGC_CHECK_PTR(Name, output);
  FGC_CHECK_PTR(Name, scratch);
  winograd::runTransformed(directConv(*p), input, transformed, bias, output, scratch);
  return FGC_OK;
}

size_t fgc_conv2d_transpose_scratch_size(const fgc_conv2d_params *p) {
  if (checkParams("fgc_conv2d_transpose_scratch_size", p) != FGC_OK)
    return 0;
  if (transposeAsConv(*p)) {
    return static_cast<size_t>(kernelFloats(*p) + convScratch(*p, transposeAsConvGeometry(*p)));
  }
  return static_cast<size_t>(transposeTileImages(*p) * p->in_h * p->in_w * p->kernel_h *
                             p->kernel_w * p->out_c);
}

int fgc_conv2d_transpose(const fgc_conv2d_params *p, const float *input, const float *kernel,
                         const float *bias, float *output, float *scratch) {
  constexpr const char *Name = "fgc_conv2d_transpose";
  if (int status = checkParams(Name, p))
    return status;
  FGC_CHECK_PTR(Name, input);
  FGC_CHECK_PTR(Name, kernel);
  FGC_CHECK_PTR(Name, output);
  FGC_CHECK_PTR(Name, scratch);
  if (transposeAsConv(*p)) {
    flipKernel(*p, kernel, scratch);
    convolve(*p, transposeAsConvGeometry(*p), input, scratch, bias, output,
             scratch + kernelFloats(*p));
    return FGC_OK;
  }
  Geometry g = transposeGeometry(*p);
  const int64_t taps = p->kernel_h * p->kernel_w * p->out_c;
  const int64_t inPixels = p->in_h * p->in_w;
  const int64_t outImage = g.outH * g.outW * p->out_c;
  const int64_t tile = transposeTileImages(*p);
  // The Keras kernel (kh, kw, out_c, in_c) is a (taps, in_c) matrix, used transposed.
  for (int64_t first = 0; first < p->batch; first += tile) {
    int64_t images = std::min(tile, p->batch - first);
    gemm(input + first * inPixels * p->in_c, kernel, scratch, images * inPixels, p->in_c, taps,
         /*transposeB=*/true);
    float *dst = output + first * outImage;
#pragma omp parallel for collapse(2) num_threads(threadsFor(images * outImage * p->kernel_h)) schedule(static)
    for (int64_t n = 0; n < images; ++n) {
      for (int64_t oy = 0; oy < g.outH; ++oy) {
        float *row = dst + n * outImage + oy * g.outW * p->out_c;
        gatherTransposeRow(*p, g, scratch + n * inPixels * taps, oy, row);
        biasActivation(row, g.outW, p->out_c, bias, p->activation);
      }
    }
  }
  return FGC_OK;
}

} // extern "C"
