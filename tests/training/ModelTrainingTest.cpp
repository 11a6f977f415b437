// Training steps of generated code against PyTorch autograd (tests/reference/models_training.py).
//
// Compiled once per model (CMakeLists.txt) with FGC_MODEL_HEADER naming the generated header
// (class generated::Model) and FGC_FIXTURES the fixture folders. Each fixture runs its steps with
// dropout off (the reference treats Dropout as the identity) and compares, in this order:
//   1. the batch loss of every step: |got - ref| <= 1e-5 + 1e-5 |ref|;
//   2. every parameter's gradient of every step (gradientData): |got - ref| <= 1e-5 * max|ref|
//      over the tensor ("within 1e-5 of its scale");
//   3. every parameter after the steps: |got - ref| <= 1e-5 + 1e-5 |ref|, except at the
//      fixture's skip mask. RMSprop's and Adam's first step moves an element by about
//      lr * sign(g) whatever |g| is, so where |g| is below 1e-6 of its tensor's largest (the
//      sign can be rounding noise, and lr / epsilon = 1e4 amplifies any gradient error) the
//      updated value is meaningless. Just above that threshold the step is still steep in g:
//      single-step cases also leave out the (rare, counted, at most 0.1% of a tensor) elements
//      where replacing fgc's gradient by the reference's moves the expected update by more than
//      5e-6. All those elements are still covered: their gradient was compared in 2, and the
//      update of every element is checked against the optimizer's formula applied to fgc's own
//      gradient (4).
//   4. single-step cases: w_after == w_before - update(gradientData) for every element, in
//      double: |got - expected| <= 1e-5 + 1e-5 |expected|.
// A fixture with `initial_optimizer_state` continues an optimizer's state: the runner first
// loads the model file FGC_LOAD_MODEL_FILE (weights, slots, step count); its update is not
// steep in g (no skip masks), and 4, which assumes fresh slots, is left to 3.
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

int weightIndex(const std::string &path) {
  for (int i = 0; i < generated::Model::numWeights(); ++i)
    if (generated::Model::weightName(i) == path)
      return i;
  return -1;
}

// A stored reference tensor: every element, or (embedding tables) the listed rows only, the
// others being `unlisted` (0 for gradients, the initial weights for `after`).
struct Reference {
  std::vector<float> values;
  std::vector<int64_t> rows; // empty: full storage
};

Reference readReference(const fs::path &dir, const nlohmann::json &prm, const std::string &key) {
  Reference r;
  std::string file = prm[key].get<std::vector<std::string>>().at(0);
  if (prm["storage"].get<std::string>() == "rows") {
    // "x.values.npy" holds the rows listed in "x.rows.npy".
    std::string rowsFile = file.substr(0, file.size() - 10) + "rows.npy";
    NpyArray rows = fgc::runtime::readNpy((dir / rowsFile).string());
    for (int64_t k = 0; k < rows.size(); ++k)
      r.rows.push_back(rows.dtype == fgc::runtime::DType::Int64 ? rows.data<int64_t>()[k]
                                                                : rows.data<int32_t>()[k]);
  }
  r.values = fgc::runtime::readNpy((dir / file).string()).toFloat();
  return r;
}

// Element k of the stored values in the full tensor's flat numbering.
size_t fullIndex(const Reference &r, size_t k, int64_t cols) {
  return r.rows.empty() ? k : size_t(r.rows[k / size_t(cols)] * cols) + k % size_t(cols);
}

// Step 2 of the comparison: every parameter's gradient after step `step` against the fixture.
void compareGradients(const generated::Model &model, const fs::path &dir,
                      const nlohmann::json &meta, int step) {
  bool rmsprop = meta["optimizer"]["class_name"].get<std::string>() == "RMSprop";
  std::string key = step == 1 ? "grad" : rmsprop ? "grad_step2_tf2" : "grad_step2";
  // Fixtures of several SGD steps on a schedule (lr_schedules.py) store no gradients: SGD is
  // linear in the gradient, so their weights after each step already pin it.
  if (!fs::exists(dir / key))
    return;
  for (const auto &prm : meta["params"]) {
    std::string path = prm["path"].get<std::string>();
    INFO("step " << step << ", gradient of " << path);
    int index = weightIndex(path);
    REQUIRE(index >= 0);
    const float *got = model.gradientData(index);
    REQUIRE(got != nullptr);
    Reference ref = readReference(dir, prm, key);
    auto shape = generated::Model::weightShape(index);
    int64_t cols = shape.empty() ? 1 : shape.back(); // scalar weights: Attention's scale
    double scale = 0;
    for (float v : ref.values)
      scale = std::max(scale, double(std::fabs(v)));
    double allowed = 1e-5 * scale;
    std::vector<bool> listed;
    size_t total = 1;
    for (int64_t d : generated::Model::weightShape(index))
      total *= size_t(d);
    if (!ref.rows.empty())
      listed.assign(total, false);
    size_t bad = 0;
    double worst = 0;
    for (size_t k = 0; k < ref.values.size(); ++k) {
      size_t at = fullIndex(ref, k, cols);
      if (!listed.empty())
        listed[at] = true;
      double err = std::fabs(double(got[at]) - ref.values[k]);
      worst = std::max(worst, err / allowed);
      bad += err > allowed;
    }
    for (size_t at = 0; at < listed.size(); ++at)
      if (!listed[at]) { // a row whose reference gradient is exactly 0
        worst = std::max(worst, std::fabs(double(got[at])) / allowed);
        bad += std::fabs(double(got[at])) > allowed;
      }
    INFO("scale " << scale << ", worst error at " << worst << " of the tolerance");
    CHECK(bad == 0);
  }
}

// Step 4: one step's update against the optimizer's formula applied to fgc's own gradient.
double expectedAfter(const nlohmann::json &opt, double w, double g) {
  std::string cls = opt["class_name"].get<std::string>();
  double lr = opt["learning_rate"].get<double>();
  if (cls == "SGD")
    return w - lr * g;
  if (cls == "RMSprop") { // tf.keras 2.x, momentum 0: epsilon outside the root
    double ms = (1 - opt["rho"].get<double>()) * g * g;
    return w - lr * g / (std::sqrt(ms) + opt["epsilon"].get<double>());
  }
  // Adam, t = 1.
  double b1 = opt["beta_1"].get<double>(), b2 = opt["beta_2"].get<double>();
  double lrT = lr * std::sqrt(1 - b2) / (1 - b1);
  double m = (1 - b1) * g, v = (1 - b2) * g * g;
  return w - lrT * m / (std::sqrt(v) + opt["epsilon"].get<double>());
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
      // Fixtures continuing an optimizer's state (Keras's, imported by `fgc import -o
      // model.fgcm`) start from that model file: weights, slots and step count.
      int64_t startStep = 0;
      bool resumed = meta.contains("initial_optimizer_state");
      if (resumed) {
#ifdef FGC_LOAD_MODEL_FILE
        model.load(FGC_LOAD_MODEL_FILE);
        startStep = meta["initial_optimizer_state"]["iterations"].get<int64_t>();
        REQUIRE(model.step() == startStep);
#else
        FAIL("the fixture continues an optimizer state: build the runner with "
             "FGC_LOAD_MODEL_FILE");
#endif
      }
      int steps = meta["steps"].get<int>();
      bool rmsprop = meta["optimizer"]["class_name"].get<std::string>() == "RMSprop";
      REQUIRE((!rmsprop || meta["optimizer"]["momentum"].get<double>() == 0));
      std::vector<std::vector<float>> before(size_t(generated::Model::numWeights()));
      for (int i = 0; i < generated::Model::numWeights(); ++i) {
        size_t n = 1;
        for (int64_t d : generated::Model::weightShape(i))
          n *= size_t(d);
        before[size_t(i)].assign(model.weightData(i), model.weightData(i) + n);
      }
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
        // fgc runs tf.keras 2.x's epsilon-outside RMSprop: later steps' losses are the
        // fixture's tf2 ones.
        const auto &losses = step > 1 && rmsprop ? meta["loss_values_tf2"] : meta["loss_values"];
        double ref = losses[size_t(step - 1)]["total"].get<double>();
        INFO("step " << step << " loss " << logs[0] << ", PyTorch " << ref);
        CHECK(std::fabs(logs[0] - ref) <= 1e-5 + 1e-5 * std::fabs(ref));
        compareGradients(model, dir, meta, step);
        if (steps == 1 && !resumed) {
          // Step 4: every element's update from fgc's own gradient (a fresh optimizer's).
          for (int i = 0; i < generated::Model::numWeights(); ++i) {
            const float *g = model.gradientData(i);
            const float *w = model.weightData(i);
            size_t bad = 0;
            for (size_t k = 0; k < before[size_t(i)].size(); ++k) {
              double want = expectedAfter(meta["optimizer"], before[size_t(i)][k], g[k]);
              bad += std::fabs(w[k] - want) > 1e-5 + 1e-5 * std::fabs(want);
            }
            INFO("update of " << generated::Model::weightName(i));
            CHECK(bad == 0);
          }
        }
      }
      CHECK(model.step() == startStep + steps);

      // Step 3: the weights after the steps, outside the skip mask.
      std::string key = rmsprop ? "after_tf2" : "after";
      int compared = 0;
      for (const auto &prm : meta["params"]) {
        std::string path = prm["path"].get<std::string>();
        REQUIRE(prm.contains(key));
        int index = weightIndex(path);
        INFO(path);
        REQUIRE(index >= 0);
        const float *got = model.weightData(index);
        auto shape = generated::Model::weightShape(index);
        int64_t cols = shape.empty() ? 1 : shape.back(); // scalar weights: Attention's scale
        std::vector<uint8_t> skip;
        if (prm["skip_count"].get<int>() > 0) {
          NpyArray bits = fgc::runtime::readNpy((dir / prm["skip"].get<std::string>()).string());
          skip.assign(bits.bytes.begin(), bits.bytes.end());
        }
        Reference ref = readReference(dir, prm, key);
        // Single steps of RMSprop / Adam: where the update is so steep in g (|g| near epsilon)
        // that the float32 rounding of the gradient, already compared in step 2, moves the
        // updated weight by more than half the tolerance, the element is counted as steep and
        // left out; they must be rare.
        bool steepRule = steps == 1 && !resumed &&
                         meta["optimizer"]["class_name"].get<std::string>() != "SGD";
        Reference refGrad = steepRule ? readReference(dir, prm, "grad") : Reference{};
        const float *gradient = model.gradientData(index);
        size_t bad = 0, checked = 0, steep = 0;
        double worst = 0;
        for (size_t k = 0; k < ref.values.size(); ++k) {
          if (skipped(skip, k))
            continue;
          size_t at = fullIndex(ref, k, cols);
          if (steepRule) {
            double w0 = before[size_t(index)][at];
            double moved = expectedAfter(meta["optimizer"], w0, gradient[at]) -
                           expectedAfter(meta["optimizer"], w0, refGrad.values[k]);
            if (std::fabs(moved) > 5e-6) {
              ++steep;
              continue;
            }
          }
          double err = std::fabs(double(got[at]) - ref.values[k]);
          double allowed = 1e-5 + 1e-5 * std::fabs(ref.values[k]);
          worst = std::max(worst, err / allowed);
          bad += err > allowed;
          ++checked;
        }
        INFO(path << ": " << checked << " values, worst at " << worst << " of the tolerance, "
                  << steep << " steep");
        CHECK(bad == 0);
        CHECK(steep <= std::max<size_t>(1, ref.values.size() / 1000));
        ++compared;
      }
      CHECK(compared == int(meta["params"].size()));
    }
  }
}
