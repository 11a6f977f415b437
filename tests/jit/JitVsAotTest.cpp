// The two backends agree: the JIT and the generated C++ of the same model, at the same -O level,
// on the same fixture inputs, give outputs within 1e-6 of each other (relative to the output's
// largest magnitude; both call the same runtime kernels with the same arguments, so in practice
// they are bit-identical). Built per sample beside its fixture runner (fgc_jit_twin). The JIT
// creates its weights from the seed as generated code does, except where FGC_JIT_WEIGHTS_FILE
// names the generated code's weights file (VGG19: both read the same file).
#include FGC_MODEL_HEADER

#include "fgc/jit.h"
#include "fgc/runtime/npy.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace {

fgc::rt::Tensor toTensor(const fgc::runtime::NpyArray &a) {
  std::vector<float> f = a.toFloat();
  return fgc::rt::Tensor::fromFloats(a.shape, f.data());
}

generated::Model makeAot() {
  if (std::string(FGC_WEIGHTS_MODE) == "file")
    return generated::Model(FGC_WEIGHTS_FILE);
  return generated::Model();
}

} // namespace

TEST_CASE("JIT and generated C++ agree", "[jit][aot]") {
  using Clock = std::chrono::steady_clock;
  auto ms = [](Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
  };
  fgc::jit::Options options;
  options.optLevel = FGC_OPT_LEVEL;
  options.weightsFile = FGC_JIT_WEIGHTS_FILE;
  auto start = Clock::now();
  auto jit = fgc::jit::compile(FGC_MODEL_FILE, options);
  std::printf("%s: JIT model created in %.0f ms\n", FGC_MODEL_NAME, ms(start));
  generated::Model aot = makeAot();
  REQUIRE(jit->numInputs() == generated::Model::kNumInputs);
  REQUIRE(jit->outputNames() == generated::Model::outputNames());
  std::stringstream dirs(FGC_FIXTURES);
  for (std::string dir; std::getline(dirs, dir, ',');) {
    INFO(dir);
    std::ifstream in(fs::path(dir) / "meta.json");
    nlohmann::json meta = nlohmann::json::parse(in);
    std::vector<fgc::rt::Tensor> inputs;
    for (const auto &i : meta["input_details"])
      inputs.push_back(toTensor(
          fgc::runtime::readNpy((fs::path(dir) / i["file"].get<std::string>()).string())));
    start = Clock::now();
    std::vector<fgc::rt::Tensor> a = aot.predict(inputs);
    double aotMs = ms(start);
    start = Clock::now();
    std::vector<fgc::rt::Tensor> j = jit->predict(inputs);
    std::printf("%s: predict %.0f ms generated code, %.0f ms JIT\n", FGC_MODEL_NAME, aotMs,
                ms(start));
    REQUIRE(a.size() == j.size());
    for (size_t o = 0; o < a.size(); ++o) {
      REQUIRE(a[o].shape() == j[o].shape());
      const float *x = a[o].data<float>(), *y = j[o].data<float>();
      double scale = 0, worst = 0;
      for (int64_t k = 0; k < a[o].size(); ++k)
        scale = std::max(scale, double(std::fabs(x[k])));
      for (int64_t k = 0; k < a[o].size(); ++k)
        worst = std::max(worst, std::fabs(double(x[k]) - double(y[k])));
      bool identical = std::memcmp(x, y, a[o].bytes()) == 0;
      std::printf("%s %s: max |jit - aot| = %.3g (scale %.3g)%s\n", FGC_MODEL_NAME,
                  generated::Model::outputNames()[o].c_str(), worst, scale,
                  identical ? ", bit-identical" : "");
      CHECK(worst <= 1e-6 * std::max(scale, 1.0));
    }
  }
}
