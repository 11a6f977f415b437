// Padding / cropping, Permute, time reversal, LeakyReLU, Bidirectional's merge
// and SpatialDropout2D's mask: forward and backward against PyTorch, the
// accumulate flag, and argument errors.
#include "ops_fixture.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <sstream>

using namespace fgc::test;

namespace {

// dx starts at 1 everywhere: with ACCUMULATE_INPUT the result is 1 + the reference.
void checkAccumulated(const std::vector<float> &dx, const Fixture &f, const std::string &name) {
  std::vector<float> want = f.floats(name);
  REQUIRE(dx.size() == want.size());
  for (size_t i = 0; i < dx.size(); ++i)
    CHECK(std::fabs(dx[i] - (want[i] + 1.0f)) <= 1e-5f * (1.0f + std::fabs(want[i])));
}

} // namespace

TEST_CASE("fgc_pad2d pads and crops like PyTorch's F.pad, and its backward", "[runtime][ops]") {
  for (const char *name :
       {"pad_1111", "pad_asym_batch1", "crop_1021", "crop_to_one", "pad_and_crop"}) {
    Fixture f = opsCase(name);
    INFO("case " << name);
    auto xs = f.shape("x"), ys = f.shape("y");
    int64_t t = f.intParam("top"), b = f.intParam("bottom"), l = f.intParam("left"),
            r = f.intParam("right");
    std::vector<float> x = f.floats("x"), y = sentinel(elements(ys));
    REQUIRE(fgc_pad2d(x.data(), y.data(), xs[0], xs[1], xs[2], xs[3], t, b, l, r) == FGC_OK);
    checkClose(y, f, "y");
    std::vector<float> dy = f.floats("dy"), dx = sentinel(elements(xs));
    REQUIRE(fgc_pad2d_backward(dy.data(), dx.data(), xs[0], xs[1], xs[2], xs[3], t, b, l, r, 0) ==
            FGC_OK);
    checkGrad(dx, f, "dx");
    std::vector<float> acc(dx.size(), 1.0f);
    REQUIRE(fgc_pad2d_backward(dy.data(), acc.data(), xs[0], xs[1], xs[2], xs[3], t, b, l, r,
                               FGC_GRAD_ACCUMULATE_INPUT) == FGC_OK);
    checkAccumulated(acc, f, "dx");
  }
  std::vector<float> x(8), y(8);
  CHECK(fgc_pad2d(x.data(), y.data(), 1, 2, 2, 2, -1, -1, 0, 0) == FGC_ERR_INVALID_ARGUMENT);
  CHECK(std::strstr(fgc_last_error(), "leaves nothing") != nullptr);
  CHECK(fgc_pad2d(nullptr, y.data(), 1, 2, 2, 2, 0, 0, 0, 0) == FGC_ERR_INVALID_ARGUMENT);
}

TEST_CASE("fgc_permute and its backward match PyTorch's permute", "[runtime][ops]") {
  for (const char *name : {"permute_0", "permute_1", "permute_2"}) {
    Fixture f = opsCase(name);
    INFO("case " << name);
    std::vector<int64_t> shape = f.shape("x"), perm;
    std::stringstream ss(f.param("perm"));
    for (std::string item; std::getline(ss, item, ',');)
      perm.push_back(std::stoll(item));
    int rank = static_cast<int>(shape.size());
    std::vector<float> x = f.floats("x"), y = sentinel(elements(shape));
    REQUIRE(fgc_permute(x.data(), y.data(), shape.data(), rank, perm.data()) == FGC_OK);
    checkClose(y, f, "y");
    std::vector<float> dy = f.floats("dy"), dx = sentinel(elements(shape));
    REQUIRE(fgc_permute_backward(dy.data(), dx.data(), shape.data(), rank, perm.data(), 0) ==
            FGC_OK);
    checkGrad(dx, f, "dx");
    std::vector<float> acc(dx.size(), 1.0f);
    REQUIRE(fgc_permute_backward(dy.data(), acc.data(), shape.data(), rank, perm.data(),
                                 FGC_GRAD_ACCUMULATE_INPUT) == FGC_OK);
    checkAccumulated(acc, f, "dx");
  }
  int64_t shape[] = {2, 3}, bad[] = {0, 0};
  std::vector<float> x(6), y(6);
  CHECK(fgc_permute(x.data(), y.data(), shape, 2, bad) == FGC_ERR_INVALID_ARGUMENT);
  CHECK(std::strstr(fgc_last_error(), "permutation") != nullptr);
}

TEST_CASE("fgc_reverse_sequence reverses the time axis, and its backward", "[runtime][ops]") {
  Fixture f = opsCase("reverse_sequence");
  auto s = f.shape("x");
  std::vector<float> x = f.floats("x"), y = sentinel(elements(s));
  REQUIRE(fgc_reverse_sequence(x.data(), y.data(), s[0], s[1], s[2]) == FGC_OK);
  checkClose(y, f, "y");
  std::vector<float> dy = f.floats("dy"), dx = sentinel(elements(s));
  REQUIRE(fgc_reverse_sequence_backward(dy.data(), dx.data(), s[0], s[1], s[2], 0) == FGC_OK);
  checkGrad(dx, f, "dx");
  CHECK(fgc_reverse_sequence(x.data(), x.data(), s[0], s[1], s[2]) == FGC_ERR_INVALID_ARGUMENT);
}

TEST_CASE("fgc_leaky_relu and its backward match PyTorch", "[runtime][ops]") {
  for (const char *name : {"leaky_relu_0", "leaky_relu_1", "leaky_relu_2"}) {
    Fixture f = opsCase(name);
    INFO("case " << name);
    float alpha = static_cast<float>(f.floatParam("alpha"));
    std::vector<float> x = f.floats("x"), y = sentinel(int64_t(x.size()));
    int64_t n = int64_t(x.size());
    REQUIRE(fgc_leaky_relu(x.data(), y.data(), n, alpha) == FGC_OK);
    checkClose(y, f, "y");
    std::vector<float> dy = f.floats("dy"), dx = sentinel(n);
    REQUIRE(fgc_leaky_relu_backward(x.data(), dy.data(), dx.data(), n, alpha, 0) == FGC_OK);
    checkGrad(dx, f, "dx");
    REQUIRE(fgc_leaky_relu(x.data(), x.data(), n, alpha) == FGC_OK); // in place
    checkClose(x, f, "y");
  }
  CHECK(fgc_leaky_relu(nullptr, nullptr, 0, 0.3f) == FGC_OK);
  CHECK(fgc_leaky_relu(nullptr, nullptr, -1, 0.3f) == FGC_ERR_INVALID_ARGUMENT);
}

TEST_CASE("fgc_bidirectional_merge and its backward match PyTorch", "[runtime][ops]") {
  const std::pair<const char *, fgc_merge_mode> modes[] = {{"concat", FGC_MERGE_CONCAT},
                                                           {"sum", FGC_MERGE_SUM},
                                                           {"mul", FGC_MERGE_MUL},
                                                           {"ave", FGC_MERGE_AVE}};
  for (const auto &[mode, kind] : modes) {
    Fixture f = opsCase(std::string("bidirectional_merge_") + mode);
    INFO("mode " << mode);
    auto s = f.shape("forward");
    std::vector<float> fw = f.floats("forward"), bw = f.floats("backward");
    std::vector<float> y = sentinel(elements(f.shape("y")));
    REQUIRE(fgc_bidirectional_merge(fw.data(), bw.data(), y.data(), s[0], s[1], kind) == FGC_OK);
    checkClose(y, f, "y");
    std::vector<float> dy = f.floats("dy"), df = sentinel(elements(s)), db = sentinel(elements(s));
    REQUIRE(fgc_bidirectional_merge_backward(fw.data(), bw.data(), dy.data(), df.data(),
                                             db.data(), s[0], s[1], kind) == FGC_OK);
    checkGrad(df, f, "dforward");
    checkGrad(db, f, "dbackward");
  }
  std::vector<float> a(4), b(4), y(8);
  CHECK(fgc_bidirectional_merge(a.data(), b.data(), y.data(), 2, 2, fgc_merge_mode(7)) ==
        FGC_ERR_INVALID_ARGUMENT);
}

TEST_CASE("fgc_spatial_dropout_forward drops whole channels with Dropout's mask",
          "[runtime][ops][dropout]") {
  const int64_t batch = 3, spatial = 10, channels = 40;
  const float rate = 0.25f;
  std::vector<float> x = randomFloats(batch * spatial * channels, 7), y(x.size()),
                     mask(batch * channels);
  REQUIRE(fgc_spatial_dropout_forward(x.data(), y.data(), mask.data(), batch, spatial, channels,
                                      rate, 1234, 5) == FGC_OK);
  // The mask is the one Dropout draws for batch * channels elements with the same seed and
  // counter (its formula is independent of this kernel: grad.h).
  std::vector<float> ones(mask.size(), 1.0f), dropY(mask.size()), dropMask(mask.size());
  REQUIRE(fgc_dropout_forward(ones.data(), dropY.data(), dropMask.data(),
                              int64_t(mask.size()), rate, 1234, 5) == FGC_OK);
  CHECK(mask == dropMask);
  int dropped = 0;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t c = 0; c < channels; ++c) {
      float m = mask[b * channels + c];
      CHECK((m == 0.0f || m == 1.0f / (1.0f - rate)));
      dropped += m == 0.0f;
      for (int64_t s = 0; s < spatial; ++s) {
        int64_t i = (b * spatial + s) * channels + c;
        CHECK(y[i] == x[i] * m);
      }
    }
  CHECK(dropped > 10); // 30 expected of 120
  CHECK(dropped < 50);
  std::vector<float> dy = randomFloats(int64_t(x.size()), 8), dx(x.size(), 1.0f);
  REQUIRE(fgc_spatial_dropout_backward(mask.data(), dy.data(), dx.data(), batch, spatial, channels,
                                       FGC_GRAD_ACCUMULATE_INPUT) == FGC_OK);
  for (size_t i = 0; i < dx.size(); ++i)
    CHECK(dx[i] == 1.0f + dy[i] * mask[(i / (spatial * channels)) * channels + i % channels]);
  CHECK(fgc_spatial_dropout_forward(x.data(), y.data(), mask.data(), batch, spatial, channels,
                                    1.0f, 1, 1) == FGC_ERR_INVALID_ARGUMENT);
}
