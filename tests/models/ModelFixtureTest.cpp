// Runs one generated model class on its PyTorch fixtures and compares every output.
//
// Compiled once per model (tests/models/CMakeLists.txt) with FGC_MODEL_HEADER naming the
// generated header (class generated::Model) and FGC_FIXTURES the fixture folders. Tolerance, per
// element: |got - ref| <= t * scale + t * |ref| (t = 1e-4, or the fixture's
// "relative_tolerance", given with its reason), where scale is the output's largest
// magnitude (so outputs of small scale are held to the same relative accuracy as large ones).
#include FGC_MODEL_HEADER

#include "fgc/runtime/npy.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using fgc::runtime::NpyArray;

namespace {

std::vector<std::string> fixtureDirs() {
  std::vector<std::string> dirs;
  std::stringstream ss(FGC_FIXTURES);
  for (std::string d; std::getline(ss, d, ',');)
    dirs.push_back(d);
  return dirs;
}

nlohmann::json readMeta(const fs::path &dir) {
  std::ifstream in(dir / "meta.json");
  REQUIRE(in);
  return nlohmann::json::parse(in);
}

fgc::rt::Tensor toTensor(const NpyArray &a) {
  using fgc::runtime::DType;
  switch (a.dtype) {
  case DType::Int32: return fgc::rt::Tensor::fromInts(a.shape, a.data<int32_t>());
  case DType::Int64: {
    fgc::rt::Tensor t(fgc::rt::DType::Int64, a.shape);
    std::memcpy(t.raw(), a.bytes.data(), a.bytes.size());
    return t;
  }
  default: {
    std::vector<float> f = a.toFloat();
    return fgc::rt::Tensor::fromFloats(a.shape, f.data());
  }
  }
}

generated::Model makeModel() {
  if (std::string(FGC_WEIGHTS_MODE) == "file")
    return generated::Model(FGC_WEIGHTS_FILE);
  return generated::Model();
}

struct Comparison {
  size_t checked = 0;
  double worst = 0; // largest error / allowed error
};

void compareValue(double got, double ref, double scale, double tol, Comparison &c,
                  const std::string &what, int64_t index) {
  double allowed = tol * scale + tol * std::fabs(ref);
  double err = std::fabs(got - ref);
  c.checked++;
  c.worst = std::max(c.worst, err / allowed);
  if (!(err <= allowed)) {
    INFO(what << " element " << index << ": got " << got << ", PyTorch " << ref << " (allowed "
              << allowed << ")");
    CHECK(err <= allowed);
  }
}

} // namespace

// The memory plan of the last run: no two tensors live at the same time share a byte (brute
// force over every pair), and with reuse the arena is within 10% of the most bytes live at once.
static void checkArena(const fgc::rt::ArenaPlan &plan) {
  INFO("arena " << plan.bytes() << " bytes, lower bound " << plan.lowerBound() << ", naive "
                << plan.naiveBytes());
  CHECK(plan.validate() == "");
  CHECK(plan.bytes() >= plan.lowerBound());
#if !defined(FGC_OPT_LEVEL) || FGC_OPT_LEVEL > 0
  CHECK(double(plan.bytes()) <= 1.10 * double(plan.lowerBound()));
#else
  CHECK(plan.bytes() == plan.naiveBytes());
#endif
}

TEST_CASE("generated code matches the PyTorch reference", "[models]") {
  generated::Model model = makeModel();
  for (const auto &dirName : fixtureDirs()) {
    fs::path dir(dirName);
    SECTION(dir.filename().string()) {
      nlohmann::json meta = readMeta(dir);
      std::vector<fgc::rt::Tensor> inputs;
      for (const auto &in : meta["input_details"])
        inputs.push_back(toTensor(fgc::runtime::readNpy((dir / in["file"].get<std::string>()).string())));
      REQUIRE(inputs.size() == size_t(generated::Model::kNumInputs));
      std::vector<fgc::rt::Tensor> outputs(generated::Model::kNumOutputs);
      model.predict(inputs.data(), outputs.data());
      // A second run reuses the output tensors and the arena: results must not change.
      std::vector<fgc::rt::Tensor> first = outputs;
      model.predict(inputs.data(), outputs.data());
      checkArena(model.arenaPlan());

      for (const auto &od : meta["output_details"]) {
        size_t i = od["index"].get<size_t>();
        std::string name = od["name"].get<std::string>();
        REQUIRE(i < outputs.size());
        CHECK(generated::Model::outputNames()[i] == name);
        std::vector<int64_t> shape = od["shape"].get<std::vector<int64_t>>();
        REQUIRE(outputs[i].shape() == shape);
        REQUIRE(std::memcmp(first[i].raw(), outputs[i].raw(), outputs[i].bytes()) == 0);
        double scale = std::max(od["max_abs"].get<double>(), 1e-30);
        // A fixture may widen the tolerance, with its reason beside it in meta.json.
        double tol = meta.value("relative_tolerance", 1e-4);
        const float *got = outputs[i].data<float>();
        Comparison c;
        auto files = od["files"].get<std::vector<std::string>>();
        if (files.size() == 1) {
          NpyArray ref = fgc::runtime::readNpy((dir / files[0]).string());
          REQUIRE(ref.size() == outputs[i].size());
          std::vector<float> r = ref.toFloat();
          for (int64_t k = 0; k < ref.size(); ++k)
            compareValue(got[k], r[size_t(k)], scale, tol, c, name, k);
        } else {
          NpyArray idx = fgc::runtime::readNpy((dir / files[0]).string());
          NpyArray val = fgc::runtime::readNpy((dir / files[1]).string());
          std::vector<float> v = val.toFloat();
          const int64_t *ix = idx.data<int64_t>();
          for (int64_t k = 0; k < idx.size(); ++k) {
            REQUIRE(ix[k] < outputs[i].size());
            compareValue(got[ix[k]], v[size_t(k)], scale, tol, c, name, ix[k]);
          }
          // The whole tensor, through its sum of magnitudes.
          double sumAbs = 0;
          for (int64_t k = 0; k < outputs[i].size(); ++k)
            sumAbs += std::fabs(got[k]);
          double refSumAbs = od["sum_abs"].get<double>();
          CHECK(std::fabs(sumAbs - refSumAbs) <= 1e-4 * refSumAbs + 1e-6);
        }
        CHECK(c.checked > 0);
        INFO(name << ": " << c.checked << " values, worst error at " << c.worst
                  << " of the tolerance");
        CHECK(c.worst <= 1.0);
      }
    }
  }
}

TEST_CASE("inputs of the wrong shape are rejected with their name", "[models][errors]") {
  generated::Model model = makeModel();
  std::vector<fgc::rt::Tensor> inputs;
  for (int i = 0; i < generated::Model::kNumInputs; ++i) {
    auto shape = generated::Model::inputShape(i);
    shape.push_back(2); // one dimension too many
    for (auto &d : shape)
      d = d < 0 ? 2 : d;
    inputs.emplace_back(fgc::rt::DType::Float32, shape);
  }
  try {
    model.predict(inputs);
    FAIL("predict accepted inputs of the wrong rank");
  } catch (const fgc::rt::Error &e) {
    std::string msg = e.what();
    CHECK(msg.find(generated::Model::inputNames()[0]) != std::string::npos);
    CHECK(msg.find("expects shape") != std::string::npos);
  }
}
