// Training steps of generated code against PyTorch autograd (tests/reference/models_training.py).
//
// Compiled once per model (CMakeLists.txt) with FGC_MODEL_HEADER naming the generated header
// (class generated::Model) and FGC_FIXTURES the fixture folders. Each fixture runs its steps with
// dropout off and compares the batch loss and every weight after the steps. Tolerances are the
// fixture's own (meta.json): RMSprop's first steps turn gradients of any size into updates of
// about lr, so elements whose gradient is below 1e-6 of the tensor's largest (their sign can be
// rounding noise) are listed in a skip mask and not compared after the update.
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

fgc::rt::Tensor toFloatTensor(const NpyArray &a) {
  std::vector<float> f = a.toFloat();
  return fgc::rt::Tensor::fromFloats(a.shape, f.data());
}

generated::Model makeModel() {
  if (std::string(FGC_WEIGHTS_MODE) == "file")
    return generated::Model(FGC_WEIGHTS_FILE);
  return generated::Model();
}

bool skipped(const std::vector<uint8_t> &bits, size_t i) {
  return !bits.empty() && (bits[i / 8] >> (i % 8)) & 1;
}

} // namespace

// The memory plan of the last training step: no two tensors live at the same time share a byte
// (brute force over every pair), and with reuse the arena is within 10% of the most bytes live
// at once.
static void checkArena(const fgc::rt::ArenaPlan &plan) {
  INFO("training arena " << plan.bytes() << " bytes, lower bound " << plan.lowerBound()
                         << ", naive " << plan.naiveBytes());
  CHECK(plan.validate() == "");
  CHECK(plan.bytes() >= plan.lowerBound());
#if !defined(FGC_OPT_LEVEL) || FGC_OPT_LEVEL > 0
  CHECK(double(plan.bytes()) <= 1.10 * double(plan.lowerBound()));
#else
  CHECK(plan.bytes() == plan.naiveBytes());
#endif
}

TEST_CASE("training steps match PyTorch autograd", "[training][models]") {
  for (const auto &dirName : fixtureDirs()) {
    fs::path dir(dirName);
    SECTION(dir.filename().string()) {
      std::ifstream metaFile(dir / "meta.json");
      REQUIRE(metaFile);
      nlohmann::json meta = nlohmann::json::parse(metaFile);
      generated::Model model = makeModel();
      model.setDropoutEnabled(false);
      int steps = meta["steps"].get<int>();
      std::vector<double> logs(model.logNames().size());
      for (int step = 1; step <= steps; ++step) {
        std::vector<fgc::rt::Tensor> inputs, targets;
        for (const auto &in : meta["input_details"])
          if (in["step"].get<int>() == step)
            inputs.push_back(toFloatTensor(fgc::runtime::readNpy((dir / in["file"].get<std::string>()).string())));
        for (const auto &t : meta["target_details"])
          if (t["step"].get<int>() == step)
            targets.push_back(toFloatTensor(fgc::runtime::readNpy((dir / t["file"].get<std::string>()).string())));
        REQUIRE(inputs.size() == size_t(generated::Model::kNumInputs));
        model.trainStep(inputs.data(), targets.data(), logs.data());
        checkArena(model.trainArenaPlan());
        // The fixture's later-step losses follow the epsilon-inside RMSprop; fgc runs tf.keras
        // 2.x's epsilon-outside form (checked through the weights below), so for RMSprop only
        // the first step's loss is comparable.
        bool rmsprop = meta["optimizer"]["class_name"].get<std::string>() == "RMSprop";
        if (step == 1 || !rmsprop) {
          double ref = meta["loss_values"][size_t(step - 1)]["total"].get<double>();
          INFO("step " << step << " loss " << logs[0] << ", PyTorch " << ref);
          CHECK(std::fabs(logs[0] - ref) <= 1e-5 + 1e-5 * std::fabs(ref));
        }
      }
      CHECK(model.step() == steps);

      bool tf2 = meta["optimizer"]["class_name"].get<std::string>() == "RMSprop";
      const auto &tol = meta["tolerance"][tf2 ? "after_tf2" : "after"];
      double absTol = tol["abs"].get<double>(), relTol = tol["rel"].get<double>();
      int compared = 0;
      for (const auto &prm : meta["params"]) {
        std::string path = prm["path"].get<std::string>();
        std::string key = tf2 ? "after_tf2" : "after";
        REQUIRE(prm.contains(key));
        int index = -1;
        for (int i = 0; i < generated::Model::numWeights(); ++i)
          if (generated::Model::weightName(i) == path)
            index = i;
        INFO(path);
        REQUIRE(index >= 0);
        const float *got = model.weightData(index);
        auto shape = generated::Model::weightShape(index);
        int64_t cols = shape.back();
        std::vector<uint8_t> skip;
        if (prm["skip_count"].get<int>() > 0) {
          NpyArray bits = fgc::runtime::readNpy((dir / prm["skip"].get<std::string>()).string());
          skip.assign(bits.bytes.begin(), bits.bytes.end());
        }
        auto files = prm[key].get<std::vector<std::string>>();
        std::vector<int64_t> rows; // rows storage: which rows the values are
        std::vector<float> ref;
        if (prm["storage"].get<std::string>() == "rows") {
          // "x.values.npy" holds the rows listed in "x.rows.npy" (the others did not change).
          std::string values = files[0];
          std::string rowsFile = values.substr(0, values.size() - 10) + "rows.npy";
          NpyArray r = fgc::runtime::readNpy((dir / rowsFile).string());
          NpyArray v = fgc::runtime::readNpy((dir / values).string());
          for (int64_t k = 0; k < r.size(); ++k)
            rows.push_back(r.dtype == fgc::runtime::DType::Int64 ? r.data<int64_t>()[k]
                                                                 : r.data<int32_t>()[k]);
          ref = v.toFloat();
        } else {
          ref = fgc::runtime::readNpy((dir / files[0]).string()).toFloat();
        }
        size_t bad = 0, checked = 0;
        double worst = 0;
        for (size_t k = 0; k < ref.size(); ++k) {
          if (skipped(skip, k))
            continue;
          size_t at = rows.empty() ? k : size_t(rows[k / size_t(cols)] * cols) + k % size_t(cols);
          double err = std::fabs(double(got[at]) - ref[k]);
          double allowed = absTol + relTol * std::fabs(ref[k]);
          worst = std::max(worst, err / allowed);
          bad += err > allowed;
          ++checked;
        }
        INFO(path << ": " << checked << " values, worst at " << worst << " of the tolerance");
        CHECK(bad == 0);
        ++compared;
      }
      CHECK(compared == int(meta["params"].size()));
    }
  }
}
