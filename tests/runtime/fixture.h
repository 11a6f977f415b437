// Helpers for the runtime tests: loading a case folder written by
// tests/reference/runtime_kernels.py (its .npy arrays and params.txt) and
// comparing kernel outputs with the reference.
#ifndef FGC_TESTS_RUNTIME_FIXTURE_H
#define FGC_TESTS_RUNTIME_FIXTURE_H

#include "fgc/runtime/kernels.h"
#include "fgc/runtime/npy.h"

#include <map>
#include <string>
#include <vector>

namespace fgc::test {

// Tolerances every kernel must meet against the float64 reference: the largest
// absolute error, and the largest error relative to max(|expected|, 1).
constexpr double AbsTolerance = 1e-4;
constexpr double RelTolerance = 1e-4;

// The fixtures' root folder, tests/fixtures/runtime.
std::string fixtureRoot();

// Case folders whose name starts with `prefix`, sorted.
std::vector<std::string> casesWithPrefix(const std::string &prefix);

class Fixture {
public:
  explicit Fixture(std::string name);

  const std::string &name() const { return Name; }
  bool has(const std::string &array) const;
  runtime::NpyArray array(const std::string &array) const;
  // A float32 array's data (throws if it is another dtype).
  std::vector<float> floats(const std::string &array) const;
  std::vector<int64_t> shape(const std::string &array) const;

  std::string param(const std::string &key) const;
  int64_t intParam(const std::string &key) const;
  double floatParam(const std::string &key) const;
  fgc_activation_kind activation(const std::string &key = "activation") const;
  fgc_padding padding() const;

private:
  std::string Name;
  std::string Dir;
  std::map<std::string, std::string> Params;
};

fgc_activation_kind activationByName(const std::string &name);

// A buffer of `count` floats filled with NaN, so any element a kernel fails to
// write makes the comparison fail.
std::vector<float> sentinel(int64_t count);

// Checks `actual` against the fixture's array `expected` element by element
// (sizes must match; any NaN fails), with Catch2 CHECKs naming the case.
void checkClose(const std::vector<float> &actual, const Fixture &fixture,
                const std::string &expected);
void checkClose(const float *actual, int64_t count, const Fixture &fixture,
                const std::string &expected);

} // namespace fgc::test

#endif // FGC_TESTS_RUNTIME_FIXTURE_H
