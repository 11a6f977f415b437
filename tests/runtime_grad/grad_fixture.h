// Helpers for the gradient tests: cases of tests/fixtures/runtime_grad/
// (loaded through the forward tests' Fixture class) and the per-tensor
// tolerance every gradient must meet against the float64 PyTorch reference.
#ifndef FGC_TESTS_RUNTIME_GRAD_GRAD_FIXTURE_H
#define FGC_TESTS_RUNTIME_GRAD_GRAD_FIXTURE_H

#include "fixture.h"
#include "fgc/runtime/grad.h"

#include <string>
#include <vector>

namespace fgc::test {

// Tolerance per tensor: |got - ref| <= GradTolerance * (max |ref| + |ref|)
// for every element.
constexpr double GradTolerance = 1e-4;

// The case `name` of tests/fixtures/runtime_grad.
Fixture gradCase(const std::string &name);

// Names of the runtime_grad cases starting with `prefix`, sorted.
std::vector<std::string> gradCases(const std::string &prefix);

// The fixture's float array, or an empty vector if it has none.
std::vector<float> optionalFloats(const Fixture &f, const std::string &name);

// Pointer to v's data, or null if v is empty.
inline const float *dataOrNull(const std::vector<float> &v) {
  return v.empty() ? nullptr : v.data();
}

// Checks `actual` (count floats) against the fixture's array `expected` with
// the tolerance above (any non-finite value fails).
void checkGrad(const float *actual, int64_t count, const Fixture &f, const std::string &expected);
inline void checkGrad(const std::vector<float> &actual, const Fixture &f,
                      const std::string &expected) {
  checkGrad(actual.data(), static_cast<int64_t>(actual.size()), f, expected);
}

// Product of a shape's dimensions.
int64_t elements(const std::vector<int64_t> &shape);

// Deterministic pseudo-random floats (normal, standard deviation `scale`).
std::vector<float> randomFloats(int64_t n, unsigned seed, float scale = 1.0f);

} // namespace fgc::test

#endif // FGC_TESTS_RUNTIME_GRAD_GRAD_FIXTURE_H
