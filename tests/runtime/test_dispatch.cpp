// Run-time CPU dispatch: the variant the runtime reports is one the CPU can
// run, FGC_CPU selects it (ctest runs these suites once per forced variant),
// and the variants agree on a GEMM-heavy kernel within float rounding.
#include "fixture.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <random>
#include <string>

namespace {

bool isVariant(const std::string &name) {
  return name == "baseline" || name == "avx2" || name == "avx512";
}

} // namespace

TEST_CASE("the runtime reports the kernel variant it chose", "[runtime][dispatch]") {
  std::string chosen = fgc_cpu_variant();
  REQUIRE(isVariant(chosen));
  CHECK(fgc_cpu_variant_supported(chosen.c_str()) == 1);
  CHECK(fgc_cpu_variant_supported("baseline") == 1);
  CHECK(fgc_cpu_variant_supported("sse9") == 0);
  CHECK(fgc_cpu_variant_supported(nullptr) == 0);
  const char *forced = std::getenv("FGC_CPU");
  if (forced && isVariant(forced) && fgc_cpu_variant_supported(forced)) {
    CHECK(chosen == forced);
  } else {
    // Automatic: the most capable variant the CPU (and this build) supports.
    std::string best = "baseline";
    for (const char *v : {"avx2", "avx512"})
      if (fgc_cpu_variant_supported(v))
        best = v;
    CHECK(chosen == best);
  }
}

TEST_CASE("dense and conv2d outputs match a double-precision reference in every variant",
          "[runtime][dispatch]") {
  // Whatever the vector width or FMA use, the result must stay within float
  // rounding of the exact product; the fixture tests check the same kernels
  // against PyTorch, and ctest repeats them with each forced variant.
  std::mt19937 gen(7);
  std::normal_distribution<float> dist(0.0f, 0.5f);
  const int64_t rows = 37, in = 301, out = 45;
  std::vector<float> x(rows * in), w(in * out), b(out), y(rows * out);
  for (auto *v : {&x, &w, &b})
    for (float &e : *v)
      e = dist(gen);
  REQUIRE(fgc_dense(x.data(), w.data(), b.data(), y.data(), rows, in, out, FGC_ACT_LINEAR) ==
          FGC_OK);
  double worst = 0.0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double sum = b[o], magnitude = std::fabs(b[o]);
      for (int64_t i = 0; i < in; ++i) {
        sum += double(x[r * in + i]) * double(w[i * out + o]);
        magnitude += std::fabs(double(x[r * in + i]) * double(w[i * out + o]));
      }
      worst = std::max(worst, std::fabs(y[r * out + o] - sum) / magnitude);
    }
  INFO("variant " << fgc_cpu_variant());
  CHECK(worst < 1e-5);
}
