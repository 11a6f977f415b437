// Tests of the merge kernels (Concatenate on any axis, Add, Average) and
// inference BatchNormalization against the PyTorch fixtures.
#include "fixture.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

using namespace fgc::test;

namespace {

std::vector<std::vector<float>> loadInputs(const Fixture &f) {
  std::vector<std::vector<float>> inputs;
  for (int64_t i = 0; i < f.intParam("inputs"); ++i)
    inputs.push_back(f.floats("x" + std::to_string(i)));
  return inputs;
}

std::vector<const float *> pointers(const std::vector<std::vector<float>> &inputs) {
  std::vector<const float *> ptrs;
  for (const auto &v : inputs)
    ptrs.push_back(v.data());
  return ptrs;
}

} // namespace

TEST_CASE("fgc_concatenate matches PyTorch on any axis", "[runtime][merge]") {
  std::vector<std::string> cases = casesWithPrefix("concat_");
  REQUIRE(cases.size() >= 3);
  for (const std::string &name : cases) {
    Fixture f(name);
    std::vector<std::vector<float>> inputs = loadInputs(f);
    std::vector<int64_t> shape = f.shape("x0");
    int rank = static_cast<int>(shape.size());
    int axis = static_cast<int>(f.intParam("axis"));
    if (axis < 0)
      axis += rank;
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; ++d)
      outer *= shape[d];
    for (int d = axis + 1; d < rank; ++d)
      inner *= shape[d];
    std::vector<int64_t> sizes;
    for (size_t i = 0; i < inputs.size(); ++i)
      sizes.push_back(f.shape("x" + std::to_string(i))[axis]);
    std::vector<float> y = sentinel(f.array("y").size());
    REQUIRE(fgc_concatenate(static_cast<int>(inputs.size()), pointers(inputs).data(),
                            sizes.data(), outer, inner, y.data()) == FGC_OK);
    checkClose(y, f, "y");
  }
}

TEST_CASE("fgc_add and fgc_average match PyTorch, also in place", "[runtime][merge]") {
  Fixture add("add3");
  std::vector<std::vector<float>> inputs = loadInputs(add);
  int64_t count = static_cast<int64_t>(inputs[0].size());
  std::vector<float> y = sentinel(count);
  REQUIRE(fgc_add(3, pointers(inputs).data(), count, y.data()) == FGC_OK);
  checkClose(y, add, "y");
  REQUIRE(fgc_add(3, pointers(inputs).data(), count, inputs[1].data()) == FGC_OK);
  checkClose(inputs[1], add, "y");

  Fixture avg("average2");
  inputs = loadInputs(avg);
  count = static_cast<int64_t>(inputs[0].size());
  y = sentinel(count);
  REQUIRE(fgc_average(2, pointers(inputs).data(), count, y.data()) == FGC_OK);
  checkClose(y, avg, "y");
}

TEST_CASE("fgc_batch_norm matches PyTorch", "[runtime][normalization]") {
  std::vector<std::string> cases = casesWithPrefix("batch_norm_");
  REQUIRE(cases.size() >= 2);
  for (const std::string &name : cases) {
    Fixture f(name);
    std::vector<float> x = f.floats("x"), mean = f.floats("mean"), var = f.floats("variance");
    std::vector<float> gamma = f.has("gamma") ? f.floats("gamma") : std::vector<float>();
    std::vector<float> beta = f.has("beta") ? f.floats("beta") : std::vector<float>();
    int64_t channels = static_cast<int64_t>(mean.size());
    int64_t rows = static_cast<int64_t>(x.size()) / channels;
    std::vector<float> y = sentinel(static_cast<int64_t>(x.size()));
    float eps = static_cast<float>(f.floatParam("epsilon"));
    REQUIRE(fgc_batch_norm(x.data(), y.data(), rows, channels,
                           gamma.empty() ? nullptr : gamma.data(),
                           beta.empty() ? nullptr : beta.data(), mean.data(), var.data(),
                           eps) == FGC_OK);
    checkClose(y, f, "y");
  }
}

TEST_CASE("merge kernels reject bad arguments", "[runtime][merge][errors]") {
  std::vector<float> a(8, 1.0f), y = sentinel(8);
  const float *inputs[2] = {a.data(), nullptr};
  int64_t sizes[2] = {2, 2};
  CHECK(fgc_add(2, inputs, 8, y.data()) == FGC_ERR_INVALID_ARGUMENT);
  CHECK(std::strstr(fgc_last_error(), "inputs[1] is null") != nullptr);
  CHECK(fgc_concatenate(2, inputs, sizes, 1, 2, y.data()) == FGC_ERR_INVALID_ARGUMENT);
  CHECK(fgc_average(0, inputs, 8, y.data()) == FGC_ERR_INVALID_ARGUMENT);
  CHECK(fgc_batch_norm(a.data(), y.data(), 2, 4, nullptr, nullptr, nullptr, a.data(), 1e-3f) ==
        FGC_ERR_INVALID_ARGUMENT);
  CHECK(std::strstr(fgc_last_error(), "mean is null") != nullptr);
  for (float v : y)
    CHECK(std::isnan(v));
}
