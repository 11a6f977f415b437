// Fixture access and the gradient tolerance check for the gradient tests (see
// grad_fixture.h).
#include "grad_fixture.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

namespace fs = std::filesystem;

namespace fgc::test {

namespace {
// The Fixture class resolves names under tests/fixtures/runtime.
const std::string GradFolder = "../runtime_grad/";
} // namespace

Fixture gradCase(const std::string &name) { return Fixture(GradFolder + name); }

std::vector<std::string> gradCases(const std::string &prefix) {
  std::vector<std::string> names;
  for (const auto &entry : fs::directory_iterator(fixtureRoot() + "/" + GradFolder)) {
    std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.compare(0, prefix.size(), prefix) == 0)
      names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<float> optionalFloats(const Fixture &f, const std::string &name) {
  return f.has(name) ? f.floats(name) : std::vector<float>();
}

void checkGrad(const float *actual, int64_t count, const Fixture &f,
               const std::string &expected) {
  std::vector<float> want = f.floats(expected);
  INFO("case " << f.name() << ", array " << expected);
  REQUIRE(count == static_cast<int64_t>(want.size()));
  double maxRef = 0;
  for (float v : want)
    maxRef = std::max(maxRef, std::fabs(double(v)));
  int64_t bad = 0, worst = -1, nonFinite = 0;
  double worstRatio = 0;
  for (int64_t i = 0; i < count; ++i) {
    if (!std::isfinite(actual[i])) {
      ++nonFinite;
      continue;
    }
    double err = std::fabs(double(actual[i]) - double(want[i]));
    double allowed = GradTolerance * (maxRef + std::fabs(double(want[i])));
    double ratio = allowed > 0 ? err / allowed : (err > 0 ? 1e30 : 0);
    if (ratio > 1)
      ++bad;
    if (ratio > worstRatio) {
      worstRatio = ratio;
      worst = i;
    }
  }
  INFO("worst element " << worst << " at " << worstRatio << " x the tolerance, max |ref| "
                        << maxRef);
  CHECK(nonFinite == 0);
  CHECK(bad == 0);
}

int64_t elements(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

std::vector<float> randomFloats(int64_t n, unsigned seed, float scale) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (float &x : v)
    x = dist(gen);
  return v;
}

} // namespace fgc::test
