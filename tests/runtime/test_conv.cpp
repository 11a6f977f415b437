// Tests of Conv2D and Conv2DTranspose: the PyTorch fixtures (odd sizes,
// strides, SAME padding with even kernels, dilation, 1x1), larger random cases
// that span several im2col/GEMM tiles checked against naive direct loops, and
// argument checks.
#include "fixture.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>

using namespace fgc::test;

namespace {

fgc_conv2d_params paramsFor(const Fixture &f, bool transpose) {
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

void runConv(const Fixture &f, bool transpose) {
  INFO("case " << f.name());
  fgc_conv2d_params p = paramsFor(f, transpose);
  std::vector<int64_t> ys = f.shape("y");
  int64_t outH = transpose ? fgc_conv_transpose_output_length(p.in_h, p.kernel_h, p.stride_h,
                                                             p.dilation_h, p.padding)
                           : fgc_conv_output_length(p.in_h, p.kernel_h, p.stride_h,
                                                    p.dilation_h, p.padding);
  int64_t outW = transpose ? fgc_conv_transpose_output_length(p.in_w, p.kernel_w, p.stride_w,
                                                             p.dilation_w, p.padding)
                           : fgc_conv_output_length(p.in_w, p.kernel_w, p.stride_w,
                                                    p.dilation_w, p.padding);
  REQUIRE(outH == ys[1]);
  REQUIRE(outW == ys[2]);
  std::vector<float> x = f.floats("x"), k = f.floats("kernel");
  std::vector<float> bias = f.has("bias") ? f.floats("bias") : std::vector<float>();
  size_t scratchSize = transpose ? fgc_conv2d_transpose_scratch_size(&p)
                                 : fgc_conv2d_scratch_size(&p);
  std::vector<float> scratch = sentinel(static_cast<int64_t>(scratchSize));
  std::vector<float> y = sentinel(p.batch * outH * outW * p.out_c);
  const float *b = bias.empty() ? nullptr : bias.data();
  int status = transpose ? fgc_conv2d_transpose(&p, x.data(), k.data(), b, y.data(),
                                                scratch.empty() ? nullptr : scratch.data())
                         : fgc_conv2d(&p, x.data(), k.data(), b, y.data(),
                                      scratch.empty() ? nullptr : scratch.data());
  INFO(fgc_last_error());
  REQUIRE(status == FGC_OK);
  checkClose(y, f, "y");
}

std::vector<float> randomVector(size_t n, unsigned seed, float scale) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float &value : v)
    value = dist(gen);
  return v;
}

// Conv2D by its definition, in double: the independent reference for shapes too
// big for committed fixtures.
std::vector<float> naiveConv(const fgc_conv2d_params &p, const std::vector<float> &x,
                             const std::vector<float> &k, const std::vector<float> &bias) {
  int64_t outH = fgc_conv_output_length(p.in_h, p.kernel_h, p.stride_h, p.dilation_h, p.padding);
  int64_t outW = fgc_conv_output_length(p.in_w, p.kernel_w, p.stride_w, p.dilation_w, p.padding);
  int64_t padTop = fgc_conv_pad_before(p.in_h, p.kernel_h, p.stride_h, p.dilation_h, p.padding);
  int64_t padLeft = fgc_conv_pad_before(p.in_w, p.kernel_w, p.stride_w, p.dilation_w, p.padding);
  std::vector<float> y(p.batch * outH * outW * p.out_c);
  for (int64_t n = 0; n < p.batch; ++n)
    for (int64_t oy = 0; oy < outH; ++oy)
      for (int64_t ox = 0; ox < outW; ++ox)
        for (int64_t co = 0; co < p.out_c; ++co) {
          double sum = bias[co];
          for (int64_t ky = 0; ky < p.kernel_h; ++ky)
            for (int64_t kx = 0; kx < p.kernel_w; ++kx) {
              int64_t iy = oy * p.stride_h + ky * p.dilation_h - padTop;
              int64_t ix = ox * p.stride_w + kx * p.dilation_w - padLeft;
              if (iy < 0 || iy >= p.in_h || ix < 0 || ix >= p.in_w)
                continue;
              for (int64_t ci = 0; ci < p.in_c; ++ci)
                sum += double(x[((n * p.in_h + iy) * p.in_w + ix) * p.in_c + ci]) *
                       k[((ky * p.kernel_w + kx) * p.in_c + ci) * p.out_c + co];
            }
          y[((n * outH + oy) * outW + ox) * p.out_c + co] = static_cast<float>(sum);
        }
  return y;
}

// Conv2DTranspose by its definition (scatter every tap), in double.
std::vector<float> naiveConvTranspose(const fgc_conv2d_params &p, const std::vector<float> &x,
                                      const std::vector<float> &k,
                                      const std::vector<float> &bias) {
  int64_t outH = fgc_conv_transpose_output_length(p.in_h, p.kernel_h, p.stride_h, p.dilation_h,
                                                  p.padding);
  int64_t outW = fgc_conv_transpose_output_length(p.in_w, p.kernel_w, p.stride_w, p.dilation_w,
                                                  p.padding);
  int64_t padTop = 0, padLeft = 0;
  if (p.padding == FGC_PADDING_SAME) {
    padTop = std::max<int64_t>((p.kernel_h - 1) * p.dilation_h + 1 - p.stride_h, 0) / 2;
    padLeft = std::max<int64_t>((p.kernel_w - 1) * p.dilation_w + 1 - p.stride_w, 0) / 2;
  }
  std::vector<double> acc(p.batch * outH * outW * p.out_c, 0.0);
  for (int64_t n = 0; n < p.batch; ++n)
    for (int64_t iy = 0; iy < p.in_h; ++iy)
      for (int64_t ix = 0; ix < p.in_w; ++ix)
        for (int64_t ky = 0; ky < p.kernel_h; ++ky)
          for (int64_t kx = 0; kx < p.kernel_w; ++kx) {
            int64_t oy = iy * p.stride_h + ky * p.dilation_h - padTop;
            int64_t ox = ix * p.stride_w + kx * p.dilation_w - padLeft;
            if (oy < 0 || oy >= outH || ox < 0 || ox >= outW)
              continue;
            for (int64_t co = 0; co < p.out_c; ++co)
              for (int64_t ci = 0; ci < p.in_c; ++ci)
                acc[((n * outH + oy) * outW + ox) * p.out_c + co] +=
                    double(x[((n * p.in_h + iy) * p.in_w + ix) * p.in_c + ci]) *
                    k[((ky * p.kernel_w + kx) * p.out_c + co) * p.in_c + ci];
          }
  std::vector<float> y(acc.size());
  for (size_t i = 0; i < acc.size(); ++i)
    y[i] = static_cast<float>(acc[i] + bias[i % p.out_c]);
  return y;
}

void checkAgainst(const std::vector<float> &actual, const std::vector<float> &expected) {
  REQUIRE(actual.size() == expected.size());
  double maxAbs = 0;
  for (size_t i = 0; i < actual.size(); ++i)
    maxAbs = std::max(maxAbs, std::fabs(double(actual[i]) - expected[i]));
  INFO("max abs error " << maxAbs);
  CHECK(maxAbs <= AbsTolerance);
}

// Against a double-precision reference, relative to the output's largest magnitude (as the
// model fixtures are): the Winograd path's error grows with the output's scale (about 1e-5 of
// it), where the direct path's stays near rounding.
void checkAgainstScaled(const std::vector<float> &actual, const std::vector<float> &expected) {
  REQUIRE(actual.size() == expected.size());
  double maxAbs = 0, scale = 1;
  for (size_t i = 0; i < actual.size(); ++i) {
    maxAbs = std::max(maxAbs, std::fabs(double(actual[i]) - expected[i]));
    scale = std::max(scale, std::fabs(double(expected[i])));
  }
  INFO("max abs error " << maxAbs << " at output scale " << scale);
  CHECK(maxAbs <= AbsTolerance * scale);
}

} // namespace

TEST_CASE("fgc_conv2d matches PyTorch", "[runtime][conv]") {
  std::vector<std::string> cases;
  for (const std::string &name : casesWithPrefix("conv2d_"))
    if (name.rfind("conv2d_transpose_", 0) != 0)
      cases.push_back(name);
  REQUIRE(cases.size() >= 8);
  for (int threads : {1, 2}) {
    fgc_set_num_threads(threads);
    for (const std::string &name : cases)
      runConv(Fixture(name), false);
  }
  fgc_set_num_threads(0);
}

TEST_CASE("fgc_conv2d_transpose matches PyTorch", "[runtime][conv]") {
  std::vector<std::string> cases = casesWithPrefix("conv2d_transpose_");
  REQUIRE(cases.size() >= 8);
  for (int threads : {1, 2}) {
    fgc_set_num_threads(threads);
    for (const std::string &name : cases)
      runConv(Fixture(name), true);
  }
  fgc_set_num_threads(0);
}

TEST_CASE("fgc_conv2d spanning several scratch tiles matches a direct convolution",
          "[runtime][conv]") {
  fgc_conv2d_params p{8, 32, 32, 16, 3, 3, 8, 1, 1, 1, 1, FGC_PADDING_SAME, FGC_ACT_LINEAR};
  std::vector<float> x = randomVector(p.batch * p.in_h * p.in_w * p.in_c, 1, 1.0f);
  std::vector<float> k = randomVector(3 * 3 * 16 * 8, 2, 0.1f);
  std::vector<float> bias = randomVector(8, 3, 1.0f);
  size_t scratchSize = fgc_conv2d_scratch_size(&p);
  // The point of this case: the im2col matrix does not fit one tile.
  REQUIRE(scratchSize < size_t(p.batch * p.in_h * p.in_w) * 3 * 3 * 16);
  std::vector<float> scratch(scratchSize);
  std::vector<float> y = sentinel(p.batch * 32 * 32 * 8);
  REQUIRE(fgc_conv2d(&p, x.data(), k.data(), bias.data(), y.data(), scratch.data()) == FGC_OK);
  checkAgainst(y, naiveConv(p, x, k, bias));
}

// The activations the direct path applies itself (ReLU) or after each row (the others).
static void activate(fgc_activation_kind act, std::vector<float> &y, int64_t channels) {
  for (size_t i = 0; i < y.size(); i += size_t(channels)) {
    double maxValue = y[i], sum = 0;
    for (int64_t c = 0; c < channels; ++c)
      maxValue = std::max<double>(maxValue, y[i + size_t(c)]);
    for (int64_t c = 0; c < channels; ++c) {
      float &v = y[i + size_t(c)];
      if (act == FGC_ACT_RELU)
        v = std::max(v, 0.0f);
      else if (act == FGC_ACT_TANH)
        v = static_cast<float>(std::tanh(double(v)));
      else if (act == FGC_ACT_SIGMOID)
        v = static_cast<float>(1.0 / (1.0 + std::exp(-double(v))));
      else if (act == FGC_ACT_SOFTMAX)
        sum += std::exp(double(v) - maxValue);
    }
    if (act == FGC_ACT_SOFTMAX)
      for (int64_t c = 0; c < channels; ++c) {
        float &v = y[i + size_t(c)];
        v = static_cast<float>(std::exp(double(v) - maxValue) / sum);
      }
  }
}

// One Conv2D of random data, with or without a bias (by the seed), against naiveConv.
static void checkConvAgainstNaive(const fgc_conv2d_params &p, unsigned &seed) {
  INFO("batch " << p.batch << ", " << p.in_h << "x" << p.in_w << "x" << p.in_c << " -> "
                << p.out_c << ", kernel " << p.kernel_h << "x" << p.kernel_w << ", stride "
                << p.stride_h << "x" << p.stride_w << ", dilation " << p.dilation_h << "x"
                << p.dilation_w << ", padding " << p.padding << ", activation " << p.activation);
  std::vector<float> x = randomVector(p.batch * p.in_h * p.in_w * p.in_c, seed++, 1.0f);
  std::vector<float> k = randomVector(p.kernel_h * p.kernel_w * p.in_c * p.out_c, seed++, 0.3f);
  std::vector<float> bias = randomVector(p.out_c, seed++, 1.0f);
  const bool withBias = seed % 2 == 0;
  if (!withBias)
    std::fill(bias.begin(), bias.end(), 0.0f);
  std::vector<float> expected = naiveConv(p, x, k, bias);
  activate(p.activation, expected, p.out_c);
  std::vector<float> scratch(fgc_conv2d_scratch_size(&p));
  std::vector<float> y = sentinel(int64_t(expected.size()));
  REQUIRE(fgc_conv2d(&p, x.data(), k.data(), withBias ? bias.data() : nullptr, y.data(),
                     scratch.data()) == FGC_OK);
  checkAgainstScaled(y, expected);
}

TEST_CASE("fgc_conv2d with channel counts a multiple of 16 (the direct path in every variant) "
          "matches a direct convolution",
          "[runtime][conv]") {
  // 16 to 80 output channels (every block size and a remainder block), output widths that
  // leave every pixel-block tail, strides, dilation, padding on every side, bias or none,
  // ReLU in the loop and other activations after it, several padded chunks (the last).
  const fgc_conv2d_params cases[] = {
      {2, 11, 13, 5, 3, 3, 64, 1, 1, 1, 1, FGC_PADDING_SAME, FGC_ACT_RELU},
      {1, 9, 9, 64, 3, 3, 64, 1, 1, 1, 1, FGC_PADDING_SAME, FGC_ACT_RELU},
      {3, 12, 17, 3, 3, 3, 32, 2, 2, 1, 1, FGC_PADDING_VALID, FGC_ACT_LINEAR},
      {2, 10, 10, 7, 3, 2, 48, 1, 1, 2, 2, FGC_PADDING_SAME, FGC_ACT_TANH},
      {2, 8, 30, 4, 1, 3, 80, 1, 2, 1, 1, FGC_PADDING_VALID, FGC_ACT_SOFTMAX},
      {1, 5, 5, 16, 5, 5, 16, 1, 1, 1, 1, FGC_PADDING_SAME, FGC_ACT_LINEAR},
      {2, 14, 23, 6, 4, 4, 16, 3, 2, 1, 1, FGC_PADDING_SAME, FGC_ACT_RELU},
      {30, 32, 32, 32, 3, 3, 16, 1, 1, 1, 1, FGC_PADDING_SAME, FGC_ACT_LINEAR},
  };
  unsigned seed = 60;
  for (const fgc_conv2d_params &p : cases)
    checkConvAgainstNaive(p, seed);
}

TEST_CASE("fgc_conv2d with 1 to 4 output channels (a dot product along the input channels) "
          "matches a direct convolution",
          "[runtime][conv]") {
  // Input channels of exactly one vector and with a remainder in every variant (16, 20, 33),
  // output widths that leave block tails, padding on every side (the border pixels), strides,
  // dilation, batches, activations in place and per pixel (softmax over the channels).
  const fgc_conv2d_params cases[] = {
      {3, 26, 26, 16, 3, 3, 1, 1, 1, 1, 1, FGC_PADDING_SAME, FGC_ACT_SIGMOID},
      {2, 9, 13, 20, 3, 3, 2, 1, 1, 1, 1, FGC_PADDING_VALID, FGC_ACT_RELU},
      {1, 11, 7, 33, 5, 3, 3, 2, 1, 1, 2, FGC_PADDING_SAME, FGC_ACT_LINEAR},
      {2, 8, 10, 16, 2, 4, 4, 1, 3, 2, 1, FGC_PADDING_SAME, FGC_ACT_SOFTMAX},
      {1, 4, 3, 24, 3, 3, 1, 1, 1, 1, 1, FGC_PADDING_SAME, FGC_ACT_TANH},
  };
  unsigned seed = 90;
  for (int threads : {1, 2}) {
    fgc_set_num_threads(threads);
    INFO(threads << " threads");
    for (const fgc_conv2d_params &p : cases)
      checkConvAgainstNaive(p, seed);
  }
  fgc_set_num_threads(0);
}

TEST_CASE("3x3 stride-1 convolutions through the Winograd path match a direct convolution, "
          "with the same bits at 1 and 2 threads",
          "[runtime][conv]") {
  // Output sizes that leave partial tiles on both sides, VALID and SAME, input channels not
  // a multiple of the vector width, few tiles (split by channels) and many (split by chunks
  // of tiles), ReLU in the loop and another activation after it, bias or none. Each case
  // runs fgc_conv2d (which takes the Winograd path itself for the larger batches) and the
  // pre-transformed pair fgc_conv2d_winograd_kernel + fgc_conv2d_winograd.
  const fgc_conv2d_params cases[] = {
      {1, 9, 9, 64, 3, 3, 64, 1, 1, 1, 1, FGC_PADDING_SAME, FGC_ACT_RELU},
      {1, 30, 30, 32, 3, 3, 64, 1, 1, 1, 1, FGC_PADDING_VALID, FGC_ACT_LINEAR},
      {1, 9, 9, 64, 3, 3, 64, 1, 1, 1, 1, FGC_PADDING_VALID, FGC_ACT_RELU},
      {3, 13, 11, 20, 3, 3, 32, 1, 1, 1, 1, FGC_PADDING_SAME, FGC_ACT_TANH},
      {2, 21, 18, 16, 3, 3, 48, 1, 1, 1, 1, FGC_PADDING_VALID, FGC_ACT_LINEAR},
      {16, 16, 16, 32, 3, 3, 32, 1, 1, 1, 1, FGC_PADDING_SAME, FGC_ACT_RELU},
      {64, 9, 9, 64, 3, 3, 64, 1, 1, 1, 1, FGC_PADDING_SAME, FGC_ACT_LINEAR},
      // F(3x3, 3x3) tiles: a partial last row of tiles (5 = 3 + 2), input channels not a
      // multiple of the vector width, SAME padding on 6x6, and a batch for the in-kernel path.
      {2, 7, 8, 24, 3, 3, 32, 1, 1, 1, 1, FGC_PADDING_VALID, FGC_ACT_TANH},
      {3, 6, 6, 16, 3, 3, 16, 1, 1, 1, 1, FGC_PADDING_SAME, FGC_ACT_RELU},
      {48, 11, 11, 32, 3, 3, 48, 1, 1, 1, 1, FGC_PADDING_VALID, FGC_ACT_LINEAR},
      // One chunk of 4 tiles with enough work for two threads: split by output channels.
      {1, 8, 8, 256, 3, 3, 256, 1, 1, 1, 1, FGC_PADDING_SAME, FGC_ACT_RELU},
  };
  unsigned seed = 90;
  int inKernel = 0, threeByThree = 0;
  for (const fgc_conv2d_params &p : cases) {
    INFO("batch " << p.batch << ", " << p.in_h << "x" << p.in_w << "x" << p.in_c << " -> "
                  << p.out_c << ", padding " << p.padding << ", activation " << p.activation);
    REQUIRE(fgc_conv2d_winograd_suits(&p) == 1);
    std::vector<float> x = randomVector(p.batch * p.in_h * p.in_w * p.in_c, seed++, 1.0f);
    std::vector<float> k = randomVector(9 * p.in_c * p.out_c, seed++, 0.3f);
    std::vector<float> bias = randomVector(p.out_c, seed++, 1.0f);
    const bool withBias = seed % 2 == 0;
    if (!withBias)
      std::fill(bias.begin(), bias.end(), 0.0f);
    const float *b = withBias ? bias.data() : nullptr;
    std::vector<float> expected = naiveConv(p, x, k, bias);
    activate(p.activation, expected, p.out_c);
    std::vector<float> scratch(fgc_conv2d_scratch_size(&p));
    // The tile size: F(3x3, 3x3) (25 points) where it needs fewer products than F(4x4, 3x3).
    const int64_t h = p.padding == FGC_PADDING_SAME ? p.in_h : p.in_h - 2;
    const int64_t w = p.padding == FGC_PADDING_SAME ? p.in_w : p.in_w - 2;
    const int64_t f3 = ((h + 2) / 3) * ((w + 2) / 3) * 25, f4 = ((h + 3) / 4) * ((w + 3) / 4) * 36;
    const int points = fgc_conv2d_winograd_points(&p);
    CHECK(points == (f3 < f4 ? 25 : 36));
    threeByThree += points == 25;
    const size_t kernelSize = fgc_conv2d_winograd_kernel_size(&p);
    REQUIRE(kernelSize == size_t(points * p.in_c * p.out_c));
    // The in-kernel path needs the transformed kernel in its scratch.
    if (scratch.size() >= kernelSize)
      ++inKernel;
    std::vector<float> transformed = sentinel(int64_t(kernelSize));
    std::vector<float> wscratch(fgc_conv2d_winograd_scratch_size(&p));
    REQUIRE(fgc_conv2d_winograd_kernel(&p, k.data(), transformed.data()) == FGC_OK);
    std::vector<float> first, firstPre;
    for (int threads : {1, 2}) {
      fgc_set_num_threads(threads);
      std::vector<float> y = sentinel(int64_t(expected.size()));
      REQUIRE(fgc_conv2d(&p, x.data(), k.data(), b, y.data(), scratch.data()) == FGC_OK);
      checkAgainstScaled(y, expected);
      std::vector<float> pre = sentinel(int64_t(expected.size()));
      REQUIRE(fgc_conv2d_winograd(&p, x.data(), transformed.data(), b, pre.data(),
                                  wscratch.data()) == FGC_OK);
      checkAgainstScaled(pre, expected);
      if (first.empty()) {
        first = y;
        firstPre = pre;
      } else {
        CHECK(std::memcmp(first.data(), y.data(), first.size() * sizeof(float)) == 0);
        CHECK(std::memcmp(firstPre.data(), pre.data(), pre.size() * sizeof(float)) == 0);
      }
    }
    fgc_set_num_threads(0);
  }
  CHECK(inKernel >= 3); // the larger batches took the in-kernel path, with both tile sizes
  CHECK(threeByThree >= 4);
}

TEST_CASE("the Winograd entry points reject the shapes they do not handle", "[runtime][conv]") {
  std::vector<float> x(4096, 1.0f), k(4096, 1.0f), y(4096), scratch(4096);
  fgc_conv2d_params p{1, 8, 8, 16, 3, 3, 16, 2, 2, 1, 1, FGC_PADDING_SAME, FGC_ACT_LINEAR};
  CHECK(fgc_conv2d_winograd_suits(&p) == 0);
  CHECK(fgc_conv2d_winograd_kernel(&p, k.data(), scratch.data()) == FGC_ERR_INVALID_ARGUMENT);
  CHECK(std::string(fgc_last_error()).find("stride 2x2") != std::string::npos);
  p.stride_h = p.stride_w = 1;
  p.out_c = 24;
  CHECK(fgc_conv2d_winograd(&p, x.data(), k.data(), nullptr, y.data(), scratch.data()) ==
        FGC_ERR_INVALID_ARGUMENT);
  CHECK(std::string(fgc_last_error()).find("16 -> 24 channels") != std::string::npos);
  // A 2x2 output is one partial tile: it does not pay.
  fgc_conv2d_params small{1, 4, 4, 64, 3, 3, 64, 1, 1, 1, 1, FGC_PADDING_VALID, FGC_ACT_LINEAR};
  CHECK(fgc_conv2d_winograd_suits(&small) == 0);
}

TEST_CASE("fgc_conv2d_transpose spanning several scratch tiles matches a direct scatter",
          "[runtime][conv]") {
  fgc_conv2d_params p{9, 16, 16, 4, 3, 3, 64, 2, 2, 1, 1, FGC_PADDING_SAME, FGC_ACT_LINEAR};
  std::vector<float> x = randomVector(p.batch * p.in_h * p.in_w * p.in_c, 4, 1.0f);
  std::vector<float> k = randomVector(3 * 3 * 64 * 4, 5, 0.3f);
  std::vector<float> bias = randomVector(64, 6, 1.0f);
  size_t scratchSize = fgc_conv2d_transpose_scratch_size(&p);
  REQUIRE(scratchSize < size_t(p.batch * p.in_h * p.in_w) * 3 * 3 * 64);
  std::vector<float> scratch(scratchSize);
  std::vector<float> y = sentinel(p.batch * 32 * 32 * 64);
  REQUIRE(fgc_conv2d_transpose(&p, x.data(), k.data(), bias.data(), y.data(), scratch.data()) ==
          FGC_OK);
  checkAgainst(y, naiveConvTranspose(p, x, k, bias));
}

TEST_CASE("stride-1 fgc_conv2d_transpose (run as a flipped Conv2D) matches a direct scatter",
          "[runtime][conv]") {
  // VALID and SAME, non-square and 1x1 kernels, dilation, several im2col tiles (the first).
  const fgc_conv2d_params cases[] = {
      {8, 24, 24, 32, 3, 3, 16, 1, 1, 1, 1, FGC_PADDING_VALID, FGC_ACT_LINEAR},
      {3, 26, 26, 16, 3, 3, 1, 1, 1, 1, 1, FGC_PADDING_VALID, FGC_ACT_LINEAR},
      {2, 9, 7, 5, 4, 3, 6, 1, 1, 2, 1, FGC_PADDING_SAME, FGC_ACT_LINEAR},
      {2, 6, 5, 3, 2, 5, 4, 1, 1, 1, 2, FGC_PADDING_VALID, FGC_ACT_LINEAR},
      {2, 5, 4, 7, 1, 1, 3, 1, 1, 1, 1, FGC_PADDING_SAME, FGC_ACT_LINEAR},
  };
  unsigned seed = 40;
  for (const fgc_conv2d_params &p : cases) {
    INFO("kernel " << p.kernel_h << "x" << p.kernel_w << ", padding " << p.padding);
    std::vector<float> x = randomVector(p.batch * p.in_h * p.in_w * p.in_c, seed++, 1.0f);
    std::vector<float> k = randomVector(p.kernel_h * p.kernel_w * p.out_c * p.in_c, seed++, 0.3f);
    std::vector<float> bias = randomVector(p.out_c, seed++, 1.0f);
    int64_t outH = fgc_conv_transpose_output_length(p.in_h, p.kernel_h, 1, p.dilation_h, p.padding);
    int64_t outW = fgc_conv_transpose_output_length(p.in_w, p.kernel_w, 1, p.dilation_w, p.padding);
    std::vector<float> scratch(fgc_conv2d_transpose_scratch_size(&p));
    std::vector<float> y = sentinel(p.batch * outH * outW * p.out_c);
    REQUIRE(fgc_conv2d_transpose(&p, x.data(), k.data(), bias.data(), y.data(), scratch.data()) ==
            FGC_OK);
    // (The first case runs as a Winograd convolution: scaled tolerance.)
    checkAgainstScaled(y, naiveConvTranspose(p, x, k, bias));
  }
}

TEST_CASE("convolution kernels reject bad arguments", "[runtime][conv][errors]") {
  std::vector<float> x(64, 1.0f), k(64, 1.0f), y = sentinel(64), scratch(256);
  fgc_conv2d_params p{1, 2, 2, 1, 3, 3, 1, 1, 1, 1, 1, FGC_PADDING_VALID, FGC_ACT_LINEAR};
  CHECK(fgc_conv2d(&p, x.data(), k.data(), nullptr, y.data(), scratch.data()) ==
        FGC_ERR_INVALID_ARGUMENT);
  CHECK(std::strstr(fgc_last_error(), "does not fit") != nullptr);
  p.padding = FGC_PADDING_SAME;
  p.stride_w = 0;
  CHECK(fgc_conv2d(&p, x.data(), k.data(), nullptr, y.data(), scratch.data()) ==
        FGC_ERR_INVALID_ARGUMENT);
  CHECK(std::strstr(fgc_last_error(), "stride_w") != nullptr);
  p.stride_w = 1;
  CHECK(fgc_conv2d(&p, x.data(), k.data(), nullptr, y.data(), nullptr) ==
        FGC_ERR_INVALID_ARGUMENT);
  CHECK(std::strstr(fgc_last_error(), "scratch is null") != nullptr);
  p.padding = static_cast<fgc_padding>(7);
  CHECK(fgc_conv2d_transpose(&p, x.data(), k.data(), nullptr, y.data(), scratch.data()) ==
        FGC_ERR_INVALID_ARGUMENT);
  CHECK(fgc_conv_output_length(0, 3, 1, 1, FGC_PADDING_SAME) == -1);
  for (float v : y)
    CHECK(std::isnan(v));
}
