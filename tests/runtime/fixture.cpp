// Fixture loading and output comparison for the runtime tests (see fixture.h).
#include "fixture.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace fs = std::filesystem;

namespace fgc::test {

std::string fixtureRoot() { return std::string(FGC_SOURCE_DIR) + "/tests/fixtures/runtime"; }

std::vector<std::string> casesWithPrefix(const std::string &prefix) {
  std::vector<std::string> names;
  for (const auto &entry : fs::directory_iterator(fixtureRoot())) {
    std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.compare(0, prefix.size(), prefix) == 0)
      names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

Fixture::Fixture(std::string name) : Name(std::move(name)), Dir(fixtureRoot() + "/" + Name) {
  std::ifstream in(Dir + "/params.txt");
  if (!in)
    throw std::runtime_error("fixture " + Name + " has no params.txt");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string key, value;
    if (fields >> key >> value)
      Params[key] = value;
  }
}

bool Fixture::has(const std::string &array) const {
  return fs::exists(Dir + "/" + array + ".npy");
}

runtime::NpyArray Fixture::array(const std::string &array) const {
  return runtime::readNpy(Dir + "/" + array + ".npy");
}

std::vector<float> Fixture::floats(const std::string &name) const {
  runtime::NpyArray a = array(name);
  const float *data = a.data<float>();
  return std::vector<float>(data, data + a.size());
}

std::vector<int64_t> Fixture::shape(const std::string &name) const { return array(name).shape; }

std::string Fixture::param(const std::string &key) const {
  auto it = Params.find(key);
  if (it == Params.end())
    throw std::runtime_error("fixture " + Name + " has no parameter " + key);
  return it->second;
}

int64_t Fixture::intParam(const std::string &key) const { return std::stoll(param(key)); }

double Fixture::floatParam(const std::string &key) const { return std::stod(param(key)); }

fgc_activation_kind Fixture::activation(const std::string &key) const {
  return activationByName(param(key));
}

fgc_padding Fixture::padding() const {
  std::string value = param("padding");
  if (value == "same")
    return FGC_PADDING_SAME;
  if (value == "valid")
    return FGC_PADDING_VALID;
  throw std::runtime_error("fixture " + Name + ": unknown padding " + value);
}

fgc_activation_kind activationByName(const std::string &name) {
  static const std::map<std::string, fgc_activation_kind> Table = {
      {"linear", FGC_ACT_LINEAR},     {"relu", FGC_ACT_RELU},
      {"sigmoid", FGC_ACT_SIGMOID},   {"tanh", FGC_ACT_TANH},
      {"softmax", FGC_ACT_SOFTMAX},   {"elu", FGC_ACT_ELU},
      {"selu", FGC_ACT_SELU},         {"gelu", FGC_ACT_GELU},
      {"softplus", FGC_ACT_SOFTPLUS}, {"swish", FGC_ACT_SWISH},
      {"hard_sigmoid", FGC_ACT_HARD_SIGMOID}};
  auto it = Table.find(name);
  if (it == Table.end())
    throw std::runtime_error("unknown activation " + name);
  return it->second;
}

std::vector<float> sentinel(int64_t count) {
  return std::vector<float>(static_cast<size_t>(count), std::numeric_limits<float>::quiet_NaN());
}

void checkClose(const std::vector<float> &actual, const Fixture &fixture,
                const std::string &expected) {
  checkClose(actual.data(), static_cast<int64_t>(actual.size()), fixture, expected);
}

void checkClose(const float *actual, int64_t count, const Fixture &fixture,
                const std::string &expected) {
  std::vector<float> want = fixture.floats(expected);
  INFO("case " << fixture.name() << ", array " << expected);
  REQUIRE(count == static_cast<int64_t>(want.size()));
  double maxAbs = 0, maxRel = 0;
  int64_t worst = -1, nonFinite = 0;
  for (int64_t i = 0; i < count; ++i) {
    if (!std::isfinite(actual[i])) {
      ++nonFinite;
      continue;
    }
    double err = std::fabs(double(actual[i]) - double(want[i]));
    double rel = err / std::max(1.0, std::fabs(double(want[i])));
    if (err > maxAbs) {
      maxAbs = err;
      worst = i;
    }
    maxRel = std::max(maxRel, rel);
  }
  INFO("max abs error " << maxAbs << " at element " << worst << ", max rel error " << maxRel);
  CHECK(nonFinite == 0);
  CHECK(maxAbs <= AbsTolerance);
  CHECK(maxRel <= RelTolerance);
}

} // namespace fgc::test
