// Backward kernels of Conv2D and Conv2DTranspose (NHWC, Keras kernel layouts).
//
// Both layers relate a "grid" image and a "target" image through windows:
// grid pixel (y, x) and tap (ky, kx) meet target pixel (y * stride + ky *
// dilation - pad, ...). For Conv2D the grid is the output and the target the
// input; for Conv2DTranspose the grid is the input and the target the output.
// Gathering target pixels per grid pixel (im2col) in the caller's scratch, one
// tile of grid pixels at a time, turns every gradient into GEMMs through
// gemm(): Conv2D's dkernel = cols^T dz and dcols = dz K^T, followed by a
// race-free gather of dcols onto the input (col2im); Conv2DTranspose's
// dcols = im2col(dz), dinput = dcols K and dkernel = dcols^T input. Tiles
// depend only on the shapes and are summed in order, so results do not
// depend on the thread count.
//
// With stride 1, Conv2D's dinput is itself a Conv2D of dz (the full
// correlation with the kernel flipped in space and its channel axes swapped);
// when the input channel count suits the direct convolution (direct_conv.h) it
// runs that way instead of a GEMM into tiles plus col2im. Likewise dkernel,
// when the output channel count suits it, is summed straight from the input
// and dz (direct::kernelGrad) without gathering transposed tiles.
#include "direct_conv.h"
#include "winograd.h"
#include "grad_common.h"

#include <algorithm>
#include <cstring>

namespace fgc::runtime::detail {

namespace {

constexpr int64_t ScratchTarget = int64_t(1) << 20;

struct Window {
  int64_t batch = 0, gridH = 0, gridW = 0, targetH = 0, targetW = 0, channels = 0;
  int64_t kh = 0, kw = 0, sh = 1, sw = 1, dh = 1, dw = 1, padTop = 0, padLeft = 0;
  int64_t depth() const { return kh * kw * channels; }
  int64_t gridPixels() const { return batch * gridH * gridW; }
};

int checkConv(const char *name, const fgc_conv2d_params *p) { return checkConvParams(name, p); }

Window baseWindow(const fgc_conv2d_params &p) {
  Window w;
  w.batch = p.batch;
  w.kh = p.kernel_h;
  w.kw = p.kernel_w;
  w.sh = p.stride_h;
  w.sw = p.stride_w;
  w.dh = p.dilation_h;
  w.dw = p.dilation_w;
  return w;
}

// Conv2D: the grid is the output, the target the input.
Window convWindow(const fgc_conv2d_params &p) {
  Window w = baseWindow(p);
  w.gridH = fgc_conv_output_length(p.in_h, p.kernel_h, p.stride_h, p.dilation_h, p.padding);
  w.gridW = fgc_conv_output_length(p.in_w, p.kernel_w, p.stride_w, p.dilation_w, p.padding);
  w.targetH = p.in_h;
  w.targetW = p.in_w;
  w.channels = p.in_c;
  w.padTop = fgc_conv_pad_before(p.in_h, p.kernel_h, p.stride_h, p.dilation_h, p.padding);
  w.padLeft = fgc_conv_pad_before(p.in_w, p.kernel_w, p.stride_w, p.dilation_w, p.padding);
  return w;
}

// Conv2DTranspose: the grid is the input, the target the output.
Window transposeWindow(const fgc_conv2d_params &p) {
  Window w = baseWindow(p);
  w.gridH = p.in_h;
  w.gridW = p.in_w;
  w.targetH = fgc_conv_transpose_output_length(p.in_h, p.kernel_h, p.stride_h, p.dilation_h,
                                               p.padding);
  w.targetW = fgc_conv_transpose_output_length(p.in_w, p.kernel_w, p.stride_w, p.dilation_w,
                                               p.padding);
  w.channels = p.out_c;
  if (p.padding == FGC_PADDING_SAME) {
    w.padTop = std::max<int64_t>((p.kernel_h - 1) * p.dilation_h + 1 - p.stride_h, 0) / 2;
    w.padLeft = std::max<int64_t>((p.kernel_w - 1) * p.dilation_w + 1 - p.stride_w, 0) / 2;
  }
  return w;
}

int64_t tileRows(const Window &w) {
  return std::min(w.gridPixels(), std::max<int64_t>(ScratchTarget / w.depth(), 32));
}

// Gathers the target window of grid pixels [first, first + rows): row r of
// `out` (rows, depth) or, transposed, column r of `out` (depth, rows). Taps
// outside the target are zero.
void gather(const Window &w, const float *target, int64_t first, int64_t rows, float *out,
            bool transposed) {
  const int64_t depth = w.depth(), c = w.channels, pixels = w.gridH * w.gridW;
#pragma omp parallel for num_threads(threadsFor(rows * depth)) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t flat = first + r;
    const int64_t n = flat / pixels, gy = (flat % pixels) / w.gridW, gx = flat % w.gridW;
    const float *image = target + n * w.targetH * w.targetW * c;
    for (int64_t ky = 0; ky < w.kh; ++ky) {
      const int64_t ty = gy * w.sh - w.padTop + ky * w.dh;
      for (int64_t kx = 0; kx < w.kw; ++kx) {
        const int64_t tx = gx * w.sw - w.padLeft + kx * w.dw;
        const bool inside = ty >= 0 && ty < w.targetH && tx >= 0 && tx < w.targetW;
        const float *src = inside ? image + (ty * w.targetW + tx) * c : nullptr;
        const int64_t tap = (ky * w.kw + kx) * c;
        if (!transposed) {
          float *dst = out + r * depth + tap;
          if (inside)
            std::memcpy(dst, src, sizeof(float) * c);
          else
            std::fill(dst, dst + c, 0.0f);
        } else {
          for (int64_t ci = 0; ci < c; ++ci)
            out[(tap + ci) * rows + r] = inside ? src[ci] : 0.0f;
        }
      }
    }
  }
}

// The adjoint of gather() for one tile: adds every entry of cols (rows,
// depth) to the target pixel it was gathered from. Parallel over target rows
// (each gathers the taps that reach it, in tap order), so there are no races.
void scatterTile(const Window &w, const float *cols, int64_t first, int64_t rows,
                 float *target) {
  const int64_t depth = w.depth(), c = w.channels, pixels = w.gridH * w.gridW;
  const int64_t last = first + rows - 1;
  const int64_t n0 = first / pixels, n1 = last / pixels;
  const int64_t gy0 = (first % pixels) / w.gridW, gy1 = (last % pixels) / w.gridW;
  const int64_t spanH = (w.kh - 1) * w.dh + 1;
  const int64_t lo = n0 * w.targetH + std::max<int64_t>(gy0 * w.sh - w.padTop, 0);
  const int64_t hi = n1 * w.targetH + std::min<int64_t>(gy1 * w.sh - w.padTop + spanH - 1,
                                                         w.targetH - 1);
#pragma omp parallel for num_threads(threadsFor((hi - lo + 1) * w.targetW * depth)) schedule(static)
  for (int64_t q = lo; q <= hi; ++q) {
    const int64_t n = q / w.targetH, ty = q % w.targetH;
    for (int64_t ky = 0; ky < w.kh; ++ky) {
      const int64_t sy = ty + w.padTop - ky * w.dh;
      if (sy < 0 || sy % w.sh != 0 || sy / w.sh >= w.gridH)
        continue;
      const int64_t gy = sy / w.sh;
      for (int64_t tx = 0; tx < w.targetW; ++tx) {
        float *dst = target + (q * w.targetW + tx) * c;
        for (int64_t kx = 0; kx < w.kw; ++kx) {
          const int64_t sx = tx + w.padLeft - kx * w.dw;
          if (sx < 0 || sx % w.sw != 0 || sx / w.sw >= w.gridW)
            continue;
          const int64_t flat = (n * w.gridH + gy) * w.gridW + sx / w.sw;
          if (flat < first || flat > last)
            continue;
          const float *src = cols + (flat - first) * depth + (ky * w.kw + kx) * c;
          for (int64_t ci = 0; ci < c; ++ci)
            dst[ci] += src[ci];
        }
      }
    }
  }
}

// Conv2D's dinput as a stride-1 convolution of dz (see the top of the file).
direct::Conv inputGradConv(const fgc_conv2d_params &p, const Window &w, bool accumulate) {
  direct::Conv c;
  c.batch = p.batch;
  c.inH = w.gridH;
  c.inW = w.gridW;
  c.inC = p.out_c;
  c.kh = p.kernel_h;
  c.kw = p.kernel_w;
  c.outC = p.in_c;
  c.dilH = p.dilation_h;
  c.dilW = p.dilation_w;
  c.outH = p.in_h;
  c.outW = p.in_w;
  c.padTop = (p.kernel_h - 1) * p.dilation_h - w.padTop;
  c.padLeft = (p.kernel_w - 1) * p.dilation_w - w.padLeft;
  c.accumulate = accumulate;
  return c;
}

// The forward convolution, for the direct kernel gradient.
direct::Conv forwardConv(const fgc_conv2d_params &p, const Window &w) {
  direct::Conv c = direct::fromParams(p, w.gridH, w.gridW, w.padTop, w.padLeft);
  c.activation = FGC_ACT_LINEAR; // dz is already the pre-activation gradient
  return c;
}

bool stride1(const fgc_conv2d_params &p) { return p.stride_h == 1 && p.stride_w == 1; }

// The kernel (kh, kw, in_c, out_c) as inputGradConv's: (kh, kw, out_c, in_c), spatially
// reversed.
void flipForInputGrad(const fgc_conv2d_params &p, const float *kernel, float *flipped) {
  const int64_t taps = p.kernel_h * p.kernel_w, inC = p.in_c, outC = p.out_c;
  for (int64_t t = 0; t < taps; ++t) {
    const float *src = kernel + (taps - 1 - t) * inC * outC;
    float *dst = flipped + t * outC * inC;
    for (int64_t ci = 0; ci < inC; ++ci)
      for (int64_t co = 0; co < outC; ++co)
        dst[co * inC + ci] = src[ci * outC + co];
  }
}

int checkBackward(const char *name, const fgc_conv2d_params *p, const float *input,
                  const float *kernel, const float *z, const float *y, const float *dy,
                  const float *dinput, const float *dkernel, const float *scratch) {
  if (int status = checkConv(name, p))
    return status;
  FGC_CHECK_PTR(name, dy);
  FGC_CHECK_PTR(name, scratch);
  if (int status = checkActivationInputs(name, p->activation, z, y))
    return status;
  if (dinput)
    FGC_CHECK_PTR(name, kernel);
  if (dkernel)
    FGC_CHECK_PTR(name, input);
  return FGC_OK;
}

} // namespace

} // namespace fgc::runtime::detail

using namespace fgc::runtime::detail;

extern "C" {

size_t fgc_conv2d_backward_scratch_size(const fgc_conv2d_params *p) {
  if (checkConv("fgc_conv2d_backward_scratch_size", p) != FGC_OK)
    return 0;
  Window w = convWindow(*p);
  if (w.gridH < 1 || w.gridW < 1)
    return 0;
  const int64_t dz = p->activation == FGC_ACT_LINEAR ? 0 : w.gridPixels() * p->out_c;
  int64_t work = std::max(tileRows(w) * w.depth(), direct::scratchFloats(forwardConv(*p, w)));
  if (stride1(*p))
    work = std::max(work, p->kernel_h * p->kernel_w * p->in_c * p->out_c +
                              std::max(direct::scratchFloats(inputGradConv(*p, w, false)),
                                       winograd::scratchFloats(inputGradConv(*p, w, false))));
  return static_cast<size_t>(dz + work);
}

int fgc_conv2d_backward(const fgc_conv2d_params *p, const float *input, const float *kernel,
                        const float *z, const float *y, const float *dy, float *dinput,
                        float *dkernel, float *dbias, float *scratch, int flags) {
  constexpr const char *Name = "fgc_conv2d_backward";
  if (int status = checkBackward(Name, p, input, kernel, z, y, dy, dinput, dkernel, scratch))
    return status;
  const Window w = convWindow(*p);
  if (w.gridH < 1 || w.gridW < 1)
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: the window does not fit the input", Name);
  const int64_t total = w.gridPixels(), depth = w.depth(), outC = p->out_c;
  const int64_t dzSize = p->activation == FGC_ACT_LINEAR ? 0 : total * outC;
  float *cols = scratch + dzSize;
  const float *dz = fusedActivationGrad(p->activation, z, y, dy, total, outC, scratch);
  const bool accParams = accumulateParams(flags);
  if (dbias)
    columnSums(dz, total, outC, dbias, accParams);
  const int64_t tile = tileRows(w);
  if (direct::Conv c = forwardConv(*p, w); dkernel && direct::applies(c)) {
    direct::kernelGrad(c, input, dz, dkernel, accParams, cols);
  } else if (dkernel) {
    for (int64_t begin = 0; begin < total; begin += tile) {
      const int64_t rows = std::min(tile, total - begin);
      gather(w, input, begin, rows, cols, /*transposed=*/true);
      gemm(cols, dz + begin * outC, dkernel, depth, rows, outC, false, accParams || begin > 0);
    }
  }
  if (direct::Conv c = inputGradConv(*p, w, accumulateInput(flags));
      dinput && stride1(*p) && direct::applies(c)) {
    flipForInputGrad(*p, kernel, cols);
    float *work = cols + p->kernel_h * p->kernel_w * p->in_c * outC;
    if (winograd::applies(c))
      winograd::run(c, dz, cols, nullptr, dinput, work);
    else
      direct::run(c, dz, cols, nullptr, dinput, work);
  } else if (dinput) {
    zeroUnless(accumulateInput(flags), dinput, p->batch * p->in_h * p->in_w * p->in_c);
    for (int64_t begin = 0; begin < total; begin += tile) {
      const int64_t rows = std::min(tile, total - begin);
      gemm(dz + begin * outC, kernel, cols, rows, outC, depth, /*transposeB=*/true);
      scatterTile(w, cols, begin, rows, dinput);
    }
  }
  return FGC_OK;
}

size_t fgc_conv2d_transpose_backward_scratch_size(const fgc_conv2d_params *p) {
  if (checkConv("fgc_conv2d_transpose_backward_scratch_size", p) != FGC_OK)
    return 0;
  Window w = transposeWindow(*p);
  const int64_t dz = p->activation == FGC_ACT_LINEAR
                         ? 0
                         : w.batch * w.targetH * w.targetW * p->out_c;
  return static_cast<size_t>(dz + tileRows(w) * w.depth());
}

int fgc_conv2d_transpose_backward(const fgc_conv2d_params *p, const float *input,
                                  const float *kernel, const float *z, const float *y,
                                  const float *dy, float *dinput, float *dkernel, float *dbias,
                                  float *scratch, int flags) {
  constexpr const char *Name = "fgc_conv2d_transpose_backward";
  if (int status = checkBackward(Name, p, input, kernel, z, y, dy, dinput, dkernel, scratch))
    return status;
  const Window w = transposeWindow(*p);
  const int64_t outPixels = w.batch * w.targetH * w.targetW, outC = p->out_c;
  const int64_t total = w.gridPixels(), taps = w.depth(), inC = p->in_c;
  const int64_t dzSize = p->activation == FGC_ACT_LINEAR ? 0 : outPixels * outC;
  float *cols = scratch + dzSize;
  const float *dz = fusedActivationGrad(p->activation, z, y, dy, outPixels, outC, scratch);
  const bool accParams = accumulateParams(flags);
  if (dbias)
    columnSums(dz, outPixels, outC, dbias, accParams);
  const int64_t tile = tileRows(w);
  for (int64_t begin = 0; begin < total && (dinput || dkernel); begin += tile) {
    const int64_t rows = std::min(tile, total - begin);
    // The Keras kernel (kh, kw, out_c, in_c) is a (taps, in_c) matrix.
    if (dinput) {
      gather(w, dz, begin, rows, cols, /*transposed=*/false);
      gemm(cols, kernel, dinput + begin * inC, rows, taps, inC, false, accumulateInput(flags));
    }
    if (dkernel) {
      gather(w, dz, begin, rows, cols, /*transposed=*/true);
      gemm(cols, input + begin * inC, dkernel, taps, rows, inC, false, accParams || begin > 0);
    }
  }
  return FGC_OK;
}

} // extern "C"
