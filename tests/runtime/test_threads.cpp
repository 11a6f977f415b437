// Thread-count independence: GEMMs are split by output rows and elementwise
// loops by disjoint chunks, so every kernel must produce bit-identical outputs
// with 1, 2 or 3 threads (the fixture tests check the values themselves).
#include "fixture.h"

#include <catch2/catch.hpp>

#include <cstring>
#include <functional>
#include <random>

using namespace fgc::test;

namespace {

std::vector<float> randomVector(int64_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, 0.2f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float &x : v)
    x = dist(gen);
  return v;
}

// Runs `kernel` (which fills `out`) at 1, 2 and 3 threads; all runs must agree
// bit for bit.
void requireThreadIndependent(const char *name, std::vector<float> &out,
                              const std::function<int()> &kernel) {
  INFO(name);
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2, 3}) {
    fgc_set_num_threads(threads);
    std::fill(out.begin(), out.end(), 0.0f);
    REQUIRE(kernel() == FGC_OK);
    results.push_back(out);
  }
  fgc_set_num_threads(0);
  for (size_t i = 1; i < results.size(); ++i)
    CHECK(std::memcmp(results[0].data(), results[i].data(), out.size() * sizeof(float)) == 0);
}

} // namespace

TEST_CASE("kernels give bit-identical results for any thread count", "[runtime][threads]") {
  {
    auto x = randomVector(64 * 512, 1), w = randomVector(512 * 384, 2), b = randomVector(384, 3);
    std::vector<float> y(64 * 384);
    requireThreadIndependent("dense", y, [&] {
      return fgc_dense(x.data(), w.data(), b.data(), y.data(), 64, 512, 384, FGC_ACT_GELU);
    });
  }
  {
    fgc_conv2d_params p{8, 32, 32, 16, 3, 3, 24, 1, 1, 1, 1, FGC_PADDING_SAME, FGC_ACT_RELU};
    auto x = randomVector(8 * 32 * 32 * 16, 4), k = randomVector(9 * 16 * 24, 5);
    std::vector<float> y(8 * 32 * 32 * 24), scratch(fgc_conv2d_scratch_size(&p));
    requireThreadIndependent("conv2d", y, [&] {
      return fgc_conv2d(&p, x.data(), k.data(), nullptr, y.data(), scratch.data());
    });
  }
  {
    fgc_conv2d_params p{9, 16, 16, 8, 4, 4, 32, 2, 2, 1, 1, FGC_PADDING_SAME, FGC_ACT_SIGMOID};
    auto x = randomVector(9 * 16 * 16 * 8, 6), k = randomVector(16 * 32 * 8, 7);
    std::vector<float> y(9 * 32 * 32 * 32), scratch(fgc_conv2d_transpose_scratch_size(&p));
    requireThreadIndependent("conv2d_transpose", y, [&] {
      return fgc_conv2d_transpose(&p, x.data(), k.data(), nullptr, y.data(), scratch.data());
    });
  }
  {
    fgc_lstm_params p{64, 12, 24, 96, FGC_ACT_TANH, FGC_ACT_SIGMOID, 1};
    auto x = randomVector(64 * 12 * 24, 8), w = randomVector(24 * 384, 9),
         u = randomVector(96 * 384, 10), b = randomVector(384, 11);
    std::vector<float> y(64 * 12 * 96), scratch(fgc_lstm_scratch_size(&p));
    requireThreadIndependent("lstm", y, [&] {
      return fgc_lstm(&p, x.data(), w.data(), u.data(), b.data(), nullptr, nullptr, y.data(),
                      nullptr, nullptr, scratch.data());
    });
  }
  {
    // A small batch with big units: too few rows to split, whatever the work.
    fgc_lstm_params p{3, 20, 16, 256, FGC_ACT_TANH, FGC_ACT_HARD_SIGMOID, 0};
    auto x = randomVector(3 * 20 * 16, 13), w = randomVector(16 * 1024, 14),
         u = randomVector(256 * 1024, 15);
    std::vector<float> y(3 * 256), scratch(fgc_lstm_scratch_size(&p));
    requireThreadIndependent("lstm small batch", y, [&] {
      return fgc_lstm(&p, x.data(), w.data(), u.data(), nullptr, nullptr, nullptr, y.data(),
                      nullptr, nullptr, scratch.data());
    });
  }
  {
    int64_t shape[3] = {16, 300, 70};
    auto x = randomVector(16 * 300 * 70, 12);
    std::vector<float> y(x.size());
    requireThreadIndependent("softmax", y, [&] {
      return fgc_softmax(x.data(), y.data(), shape, 3, 1);
    });
  }
}
