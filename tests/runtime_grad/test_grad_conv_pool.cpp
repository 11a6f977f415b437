// Gradient tests of Conv2D, Conv2DTranspose, the pools and UpSampling2D
// against the PyTorch autograd fixtures, plus a float64 finite-difference
// check of Conv2D that needs no PyTorch.
#include "grad_fixture.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

using namespace fgc::test;

namespace {

fgc_conv2d_params convParams(const Fixture &f, bool transpose) {
  std::vector<int64_t> xs = f.shape("x"), ks = f.shape("kernel");
  fgc_conv2d_params p{};
  p.batch = xs[0];
  p.in_h = xs[1];
  p.in_w = xs[2];
  p.in_c = xs[3];
  p.kernel_h = ks[0];
  p.kernel_w = ks[1];
  p.out_c = transpose ? ks[2] : ks[3];
  p.stride_h = f.intParam("stride_h");
  p.stride_w = f.intParam("stride_w");
  p.dilation_h = f.intParam("dilation_h");
  p.dilation_w = f.intParam("dilation_w");
  p.padding = f.padding();
  p.activation = f.activation();
  return p;
}

void runConvBackward(const Fixture &f, bool transpose) {
  fgc_conv2d_params p = convParams(f, transpose);
  std::vector<float> x = f.floats("x"), k = f.floats("kernel"), z = f.floats("z"),
                     y = f.floats("y"), dy = f.floats("dy");
  std::vector<float> dx = sentinel(static_cast<int64_t>(x.size()));
  std::vector<float> dk = sentinel(static_cast<int64_t>(k.size())), db = sentinel(p.out_c);
  bool hasBias = f.has("dbias");
  const float *zArg = fgc_activation_needs_preactivation(p.activation) ? z.data() : nullptr;
  if (transpose) {
    std::vector<float> scratch(fgc_conv2d_transpose_backward_scratch_size(&p));
    REQUIRE(fgc_conv2d_transpose_backward(&p, x.data(), k.data(), zArg, y.data(), dy.data(),
                                          dx.data(), dk.data(), hasBias ? db.data() : nullptr,
                                          scratch.data(), 0) == FGC_OK);
  } else {
    std::vector<float> scratch(fgc_conv2d_backward_scratch_size(&p));
    REQUIRE(fgc_conv2d_backward(&p, x.data(), k.data(), zArg, y.data(), dy.data(), dx.data(),
                                dk.data(), hasBias ? db.data() : nullptr, scratch.data(),
                                0) == FGC_OK);
  }
  checkGrad(dx, f, "dx");
  checkGrad(dk, f, "dkernel");
  if (hasBias)
    checkGrad(db, f, "dbias");
}

// Direct float64 Conv2D with TF's SAME rule, tanh, and the loss sum(dy * y).
double tanhConvLoss(const fgc_conv2d_params &p, const std::vector<double> &x,
                    const std::vector<double> &k, const std::vector<float> &dy) {
  auto geometry = [](int64_t in, int64_t kernel, int64_t stride, int64_t dil, bool same) {
    int64_t span = (kernel - 1) * dil + 1;
    int64_t out = same ? (in + stride - 1) / stride : (in - span) / stride + 1;
    int64_t pad = same ? std::max<int64_t>((out - 1) * stride + span - in, 0) / 2 : 0;
    return std::pair<int64_t, int64_t>(out, pad);
  };
  bool same = p.padding == FGC_PADDING_SAME;
  auto [outH, padT] = geometry(p.in_h, p.kernel_h, p.stride_h, p.dilation_h, same);
  auto [outW, padL] = geometry(p.in_w, p.kernel_w, p.stride_w, p.dilation_w, same);
  double loss = 0;
  for (int64_t n = 0; n < p.batch; ++n)
    for (int64_t oy = 0; oy < outH; ++oy)
      for (int64_t ox = 0; ox < outW; ++ox)
        for (int64_t co = 0; co < p.out_c; ++co) {
          double z = 0;
          for (int64_t ky = 0; ky < p.kernel_h; ++ky)
            for (int64_t kx = 0; kx < p.kernel_w; ++kx) {
              int64_t iy = oy * p.stride_h - padT + ky * p.dilation_h;
              int64_t ix = ox * p.stride_w - padL + kx * p.dilation_w;
              if (iy < 0 || iy >= p.in_h || ix < 0 || ix >= p.in_w)
                continue;
              for (int64_t ci = 0; ci < p.in_c; ++ci)
                z += x[((n * p.in_h + iy) * p.in_w + ix) * p.in_c + ci] *
                     k[((ky * p.kernel_w + kx) * p.in_c + ci) * p.out_c + co];
            }
          loss += dy[((n * outH + oy) * outW + ox) * p.out_c + co] * std::tanh(z);
        }
  return loss;
}

fgc_pool2d_params poolParams(const Fixture &f) {
  std::vector<int64_t> xs = f.shape("x");
  return fgc_pool2d_params{xs[0], xs[1], xs[2], xs[3], f.intParam("pool_h"),
                           f.intParam("pool_w"), f.intParam("stride_h"), f.intParam("stride_w"),
                           f.padding()};
}

} // namespace

TEST_CASE("fgc_conv2d_backward matches autograd", "[runtime_grad][conv]") {
  std::vector<std::string> cases = gradCases("conv2d_");
  cases.erase(std::remove_if(cases.begin(), cases.end(),
                             [](const std::string &n) { return n.rfind("conv2d_transpose", 0) == 0; }),
              cases.end());
  REQUIRE(cases.size() == 9);
  for (int threads : {1, 2}) {
    fgc_set_num_threads(threads);
    for (const std::string &name : cases)
      runConvBackward(gradCase(name), false);
  }
  fgc_set_num_threads(0);
}

TEST_CASE("fgc_conv2d_transpose_backward matches autograd", "[runtime_grad][conv]") {
  std::vector<std::string> cases = gradCases("conv2d_transpose_");
  REQUIRE(cases.size() == 8);
  for (int threads : {1, 2}) {
    fgc_set_num_threads(threads);
    for (const std::string &name : cases)
      runConvBackward(gradCase(name), true);
  }
  fgc_set_num_threads(0);
}

TEST_CASE("fgc_conv2d_backward agrees with float64 finite differences",
          "[runtime_grad][conv][finite_difference]") {
  // Stride 2 with SAME padding and an even kernel, then dilation 2 VALID.
  for (fgc_conv2d_params p :
       {fgc_conv2d_params{2, 6, 5, 3, 4, 3, 2, 2, 2, 1, 1, FGC_PADDING_SAME, FGC_ACT_TANH},
        fgc_conv2d_params{1, 7, 7, 2, 3, 2, 3, 1, 1, 2, 2, FGC_PADDING_VALID, FGC_ACT_TANH}}) {
    int64_t outH = fgc_conv_output_length(p.in_h, p.kernel_h, p.stride_h, p.dilation_h, p.padding);
    int64_t outW = fgc_conv_output_length(p.in_w, p.kernel_w, p.stride_w, p.dilation_w, p.padding);
    int64_t xn = p.batch * p.in_h * p.in_w * p.in_c, kn = p.kernel_h * p.kernel_w * p.in_c * p.out_c;
    std::vector<float> x = randomFloats(xn, 11), k = randomFloats(kn, 12, 0.3f),
                       dy = randomFloats(p.batch * outH * outW * p.out_c, 13);
    std::vector<float> y(dy.size()), scratch(std::max(fgc_conv2d_scratch_size(&p),
                                                      fgc_conv2d_backward_scratch_size(&p)));
    REQUIRE(fgc_conv2d(&p, x.data(), k.data(), nullptr, y.data(), scratch.data()) == FGC_OK);
    std::vector<float> dx(xn), dk(kn);
    REQUIRE(fgc_conv2d_backward(&p, x.data(), k.data(), nullptr, y.data(), dy.data(), dx.data(),
                                dk.data(), nullptr, scratch.data(), 0) == FGC_OK);
    std::vector<double> xd(x.begin(), x.end()), kd(k.begin(), k.end());
    const double h = 1e-6;
    auto central = [&](std::vector<double> &v, int64_t i) {
      double saved = v[i];
      v[i] = saved + h;
      double plus = tanhConvLoss(p, xd, kd, dy);
      v[i] = saved - h;
      double minus = tanhConvLoss(p, xd, kd, dy);
      v[i] = saved;
      return (plus - minus) / (2 * h);
    };
    for (int64_t i : {int64_t(0), kn / 3, kn - 1})
      CHECK(dk[i] == Approx(central(kd, i)).epsilon(1e-4).margin(1e-5));
    for (int64_t i : {int64_t(0), xn / 2 + 1, xn - 1})
      CHECK(dx[i] == Approx(central(xd, i)).epsilon(1e-4).margin(1e-5));
  }
}

TEST_CASE("pooling backward kernels match autograd", "[runtime_grad][pool]") {
  std::vector<std::string> cases = gradCases("pool_");
  REQUIRE(cases.size() == 9);
  for (const std::string &name : cases) {
    Fixture f = gradCase(name);
    fgc_pool2d_params p = poolParams(f);
    std::vector<float> x = f.floats("x"), dy = f.floats("dy");
    std::vector<float> dx = sentinel(static_cast<int64_t>(x.size()));
    if (f.param("kind") == "max")
      REQUIRE(fgc_max_pool2d_backward(&p, x.data(), dy.data(), dx.data(), 0) == FGC_OK);
    else
      REQUIRE(fgc_avg_pool2d_backward(&p, dy.data(), dx.data(), 0) == FGC_OK);
    checkGrad(dx, f, "dx");
  }
}

TEST_CASE("global pooling backward kernels match autograd", "[runtime_grad][pool]") {
  for (const char *name : {"global_max2d", "global_max2d_ties", "global_avg2d"}) {
    Fixture f = gradCase(name);
    std::vector<int64_t> s = f.shape("x");
    std::vector<float> x = f.floats("x"), dy = f.floats("dy");
    std::vector<float> dx = sentinel(elements(s));
    if (std::string(name).find("max") != std::string::npos)
      REQUIRE(fgc_global_max_pool2d_backward(x.data(), dy.data(), dx.data(), s[0], s[1], s[2],
                                             s[3], 0) == FGC_OK);
    else
      REQUIRE(fgc_global_avg_pool2d_backward(dy.data(), dx.data(), s[0], s[1], s[2], s[3], 0) ==
              FGC_OK);
    checkGrad(dx, f, "dx");
  }
  Fixture f = gradCase("global_avg1d");
  std::vector<int64_t> s = f.shape("x");
  std::vector<float> dy = f.floats("dy"), dx = sentinel(elements(s));
  REQUIRE(fgc_global_avg_pool1d_backward(dy.data(), dx.data(), s[0], s[1], s[2], 0) == FGC_OK);
  checkGrad(dx, f, "dx");
}

TEST_CASE("fgc_upsampling2d_backward matches autograd", "[runtime_grad][upsampling]") {
  std::vector<std::string> cases = gradCases("upsampling_");
  REQUIRE(cases.size() == 4);
  for (const std::string &name : cases) {
    Fixture f = gradCase(name);
    std::vector<int64_t> s = f.shape("x");
    std::vector<float> dy = f.floats("dy"), dx = sentinel(elements(s));
    fgc_interpolation mode =
        f.param("interpolation") == "nearest" ? FGC_INTERP_NEAREST : FGC_INTERP_BILINEAR;
    REQUIRE(fgc_upsampling2d_backward(dy.data(), dx.data(), s[0], s[1], s[2], s[3],
                                      f.intParam("size_h"), f.intParam("size_w"), mode,
                                      0) == FGC_OK);
    checkGrad(dx, f, "dx");
  }
}

TEST_CASE("fgc_conv2d_backward with 16k channels (the direct paths in every variant) matches "
          "its definition",
          "[runtime_grad][conv]") {
  // dinput[n, iy, ix, ci] = sum of dz[n, oy, ox, co] * kernel[ky, kx, ci, co] over the taps
  // that read (iy, ix) (direct with stride 1 and 16k input channels), dkernel[ky, kx, ci, co]
  // = sum of input[n, iy, ix, ci] * dz[n, oy, ox, co] (direct with 16k output channels), in
  // double; overwritten, then accumulated onto existing values. The last case's dinput runs
  // as a Winograd convolution (3x3, stride 1, a batch large enough).
  const fgc_conv2d_params cases[] = {
      {2, 9, 9, 64, 3, 3, 64, 1, 1, 1, 1, FGC_PADDING_SAME, FGC_ACT_LINEAR},
      {2, 8, 11, 32, 3, 2, 16, 1, 1, 2, 1, FGC_PADDING_VALID, FGC_ACT_LINEAR},
      {1, 7, 13, 16, 5, 5, 8, 1, 1, 1, 1, FGC_PADDING_SAME, FGC_ACT_LINEAR},
      {3, 6, 6, 48, 4, 4, 24, 1, 1, 1, 1, FGC_PADDING_SAME, FGC_ACT_LINEAR},
      {2, 11, 10, 3, 3, 3, 32, 2, 2, 1, 1, FGC_PADDING_SAME, FGC_ACT_LINEAR},
      {2, 9, 12, 13, 3, 2, 80, 1, 2, 1, 2, FGC_PADDING_VALID, FGC_ACT_LINEAR},
      {40, 30, 30, 32, 3, 3, 64, 1, 1, 1, 1, FGC_PADDING_VALID, FGC_ACT_LINEAR},
  };
  unsigned seed = 70;
  for (const fgc_conv2d_params &p : cases) {
    INFO(p.in_h << "x" << p.in_w << "x" << p.in_c << " -> " << p.out_c << ", kernel "
                << p.kernel_h << "x" << p.kernel_w << ", padding " << p.padding);
    const int64_t sh = p.stride_h, sw = p.stride_w;
    const int64_t outH =
        fgc_conv_output_length(p.in_h, p.kernel_h, sh, p.dilation_h, p.padding);
    const int64_t outW =
        fgc_conv_output_length(p.in_w, p.kernel_w, sw, p.dilation_w, p.padding);
    const int64_t padT = fgc_conv_pad_before(p.in_h, p.kernel_h, sh, p.dilation_h, p.padding);
    const int64_t padL = fgc_conv_pad_before(p.in_w, p.kernel_w, sw, p.dilation_w, p.padding);
    const int64_t kn = p.kernel_h * p.kernel_w * p.in_c * p.out_c;
    const int64_t xn = p.batch * p.in_h * p.in_w * p.in_c;
    std::vector<float> x = randomFloats(xn, seed++),
                       k = randomFloats(p.kernel_h * p.kernel_w * p.in_c * p.out_c, seed++, 0.3f),
                       dy = randomFloats(p.batch * outH * outW * p.out_c, seed++),
                       before = randomFloats(xn, seed++), kBefore = randomFloats(kn, seed++);
    std::vector<double> expected(size_t(xn), 0.0), expectedK(size_t(kn), 0.0);
    // Sums of |terms|: float rounding grows with them (dkernel sums batch * pixels terms).
    std::vector<double> scale(size_t(xn), 0.0), scaleK(size_t(kn), 0.0);
    for (int64_t n = 0; n < p.batch; ++n)
      for (int64_t oy = 0; oy < outH; ++oy)
        for (int64_t ox = 0; ox < outW; ++ox)
          for (int64_t ky = 0; ky < p.kernel_h; ++ky)
            for (int64_t kx = 0; kx < p.kernel_w; ++kx) {
              int64_t iy = oy * sh - padT + ky * p.dilation_h;
              int64_t ix = ox * sw - padL + kx * p.dilation_w;
              if (iy < 0 || iy >= p.in_h || ix < 0 || ix >= p.in_w)
                continue;
              for (int64_t ci = 0; ci < p.in_c; ++ci)
                for (int64_t co = 0; co < p.out_c; ++co) {
                  size_t xi = size_t(((n * p.in_h + iy) * p.in_w + ix) * p.in_c + ci);
                  size_t ki = size_t(((ky * p.kernel_w + kx) * p.in_c + ci) * p.out_c + co);
                  double g = dy[size_t(((n * outH + oy) * outW + ox) * p.out_c + co)];
                  expected[xi] += g * k[ki];
                  expectedK[ki] += g * x[xi];
                  scale[xi] += std::abs(g * k[ki]);
                  scaleK[ki] += std::abs(g * x[xi]);
                }
            }
    std::vector<float> scratch(fgc_conv2d_backward_scratch_size(&p));
    for (int threads : {1, 2}) {
      fgc_set_num_threads(threads);
      for (bool accumulate : {false, true}) {
        std::vector<float> dx =
            accumulate ? before : std::vector<float>(size_t(xn), std::nanf(""));
        std::vector<float> dk =
            accumulate ? kBefore : std::vector<float>(size_t(kn), std::nanf(""));
        REQUIRE(fgc_conv2d_backward(
                    &p, x.data(), k.data(), nullptr, dy.data(), dy.data(), dx.data(), dk.data(),
                    nullptr, scratch.data(),
                    accumulate ? FGC_GRAD_ACCUMULATE_INPUT | FGC_GRAD_ACCUMULATE_PARAMS : 0) ==
                FGC_OK);
        for (int64_t i = 0; i < xn; ++i) {
          double want = expected[size_t(i)] + (accumulate ? double(before[size_t(i)]) : 0.0);
          REQUIRE(dx[size_t(i)] == Approx(want).margin(1e-5 + 5e-5 * scale[size_t(i)]));
        }
        for (int64_t i = 0; i < kn; ++i) {
          double want = expectedK[size_t(i)] + (accumulate ? double(kBefore[size_t(i)]) : 0.0);
          REQUIRE(dk[size_t(i)] == Approx(want).margin(1e-5 + 5e-5 * scaleK[size_t(i)]));
        }
      }
    }
    fgc_set_num_threads(0);
  }
}
