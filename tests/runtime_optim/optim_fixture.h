// Shared helpers of the training-runtime tests: the case folders that
// tests/reference/runtime_optim.py writes under tests/fixtures/runtime_optim/,
// read through the runtime tests' Fixture class, and a comparison with an
// explicit tolerance (optimizer steps are checked tighter than fixture.h's).
#ifndef FGC_TESTS_RUNTIME_OPTIM_OPTIM_FIXTURE_H
#define FGC_TESTS_RUNTIME_OPTIM_OPTIM_FIXTURE_H

#include "../runtime/fixture.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace fgc::test {

// A case folder of tests/fixtures/runtime_optim.
inline Fixture optimCase(const std::string &name) { return Fixture("../runtime_optim/" + name); }

// Checks actual[i] against expected[i] with |error| <= tolerance * max(1, |expected|).
inline void checkNear(const float *actual, const float *expected, int64_t count,
                      double tolerance, const std::string &what) {
  double worst = 0;
  int64_t at = -1;
  for (int64_t i = 0; i < count; ++i) {
    double err = std::fabs(double(actual[i]) - double(expected[i])) /
                 std::max(1.0, std::fabs(double(expected[i])));
    if (!(err <= worst))
      worst = err, at = i;
  }
  INFO(what << ": worst relative error " << worst << " at element " << at);
  CHECK(worst <= tolerance);
}

} // namespace fgc::test

#endif // FGC_TESTS_RUNTIME_OPTIM_OPTIM_FIXTURE_H
