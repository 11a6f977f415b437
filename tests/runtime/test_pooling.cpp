// Tests of the pooling and upsampling kernels against the PyTorch fixtures:
// windowed max/average pooling (valid and SAME, where padded cells are
// excluded), the global pools and nearest/bilinear UpSampling2D.
#include "fixture.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

using namespace fgc::test;

TEST_CASE("fgc_max_pool2d and fgc_avg_pool2d match PyTorch", "[runtime][pooling]") {
  std::vector<std::string> cases = casesWithPrefix("max_pool_");
  for (const std::string &name : casesWithPrefix("avg_pool_"))
    cases.push_back(name);
  REQUIRE(cases.size() >= 6);
  for (int threads : {1, 2}) {
    fgc_set_num_threads(threads);
    for (const std::string &name : cases) {
      Fixture f(name);
      std::vector<int64_t> xs = f.shape("x"), ys = f.shape("y");
      fgc_pool2d_params p{xs[0],
                          xs[1],
                          xs[2],
                          xs[3],
                          f.intParam("pool_h"),
                          f.intParam("pool_w"),
                          f.intParam("stride_h"),
                          f.intParam("stride_w"),
                          f.padding()};
      INFO("case " << name);
      REQUIRE(fgc_conv_output_length(p.in_h, p.pool_h, p.stride_h, 1, p.padding) == ys[1]);
      REQUIRE(fgc_conv_output_length(p.in_w, p.pool_w, p.stride_w, 1, p.padding) == ys[2]);
      std::vector<float> x = f.floats("x");
      std::vector<float> y = sentinel(ys[0] * ys[1] * ys[2] * ys[3]);
      int status = f.param("kind") == "max" ? fgc_max_pool2d(&p, x.data(), y.data())
                                            : fgc_avg_pool2d(&p, x.data(), y.data());
      REQUIRE(status == FGC_OK);
      checkClose(y, f, "y");
    }
  }
  fgc_set_num_threads(0);
}

TEST_CASE("global pooling matches PyTorch", "[runtime][pooling]") {
  Fixture f("global_pool2d");
  std::vector<int64_t> xs = f.shape("x");
  std::vector<float> x = f.floats("x");
  std::vector<float> y = sentinel(xs[0] * xs[3]);
  REQUIRE(fgc_global_max_pool2d(x.data(), y.data(), xs[0], xs[1], xs[2], xs[3]) == FGC_OK);
  checkClose(y, f, "y_max");
  y = sentinel(xs[0] * xs[3]);
  REQUIRE(fgc_global_avg_pool2d(x.data(), y.data(), xs[0], xs[1], xs[2], xs[3]) == FGC_OK);
  checkClose(y, f, "y_avg");

  Fixture g("global_avg_pool1d");
  std::vector<int64_t> ts = g.shape("x");
  std::vector<float> t = g.floats("x");
  std::vector<float> z = sentinel(ts[0] * ts[2]);
  REQUIRE(fgc_global_avg_pool1d(t.data(), z.data(), ts[0], ts[1], ts[2]) == FGC_OK);
  checkClose(z, g, "y");
}

TEST_CASE("fgc_upsampling2d matches PyTorch (nearest and bilinear)", "[runtime][upsampling]") {
  std::vector<std::string> cases = casesWithPrefix("upsampling_");
  REQUIRE(cases.size() >= 3);
  for (const std::string &name : cases) {
    Fixture f(name);
    std::vector<int64_t> xs = f.shape("x"), ys = f.shape("y");
    int64_t sh = f.intParam("size_h"), sw = f.intParam("size_w");
    REQUIRE(ys[1] == xs[1] * sh);
    REQUIRE(ys[2] == xs[2] * sw);
    fgc_interpolation mode =
        f.param("interpolation") == "bilinear" ? FGC_INTERP_BILINEAR : FGC_INTERP_NEAREST;
    std::vector<float> x = f.floats("x");
    std::vector<float> y = sentinel(ys[0] * ys[1] * ys[2] * ys[3]);
    REQUIRE(fgc_upsampling2d(x.data(), y.data(), xs[0], xs[1], xs[2], xs[3], sh, sw, mode) ==
            FGC_OK);
    checkClose(y, f, "y");
  }
}

TEST_CASE("pooling kernels reject bad arguments", "[runtime][pooling][errors]") {
  std::vector<float> x(64, 1.0f), y = sentinel(64);
  fgc_pool2d_params p{1, 2, 2, 1, 3, 3, 1, 1, FGC_PADDING_VALID};
  CHECK(fgc_max_pool2d(&p, x.data(), y.data()) == FGC_ERR_INVALID_ARGUMENT);
  CHECK(std::strstr(fgc_last_error(), "does not fit") != nullptr);
  CHECK(fgc_avg_pool2d(nullptr, x.data(), y.data()) == FGC_ERR_INVALID_ARGUMENT);
  CHECK(fgc_global_avg_pool1d(x.data(), y.data(), 1, 0, 4) == FGC_ERR_INVALID_ARGUMENT);
  CHECK(fgc_upsampling2d(x.data(), y.data(), 1, 2, 2, 1, 2, 2, static_cast<fgc_interpolation>(5)) ==
        FGC_ERR_INVALID_ARGUMENT);
  CHECK(std::strstr(fgc_last_error(), "interpolation") != nullptr);
  for (float v : y)
    CHECK(std::isnan(v));
}
