// `fgc run` end to end: predictions written as .npy against the PyTorch fixtures, a small fit /
// evaluate / save cycle whose model file fgc reads back, and bad input (unknown input name,
// wrong shape, missing file) giving one `fgc: error:` line and exit code 1.
#include "fgc/runtime/npy.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace fs = std::filesystem;
using fgc::runtime::NpyArray;

namespace {

struct Result {
  int status = 0;
  std::string out, err;
};

// Runs fgc with `args`, capturing stdout and stderr.
Result runFgc(const std::string &args, const fs::path &dir) {
  std::string out = (dir / "stdout.txt").string(), err = (dir / "stderr.txt").string();
  std::string cmd = std::string(FGC_EXE) + " " + args + " >" + out + " 2>" + err;
  int rc = std::system(cmd.c_str());
  auto slurp = [](const std::string &p) {
    std::ifstream in(p);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, slurp(out), slurp(err)};
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("fgc_run_test_" + std::to_string(::getpid()) + "_" +
                                        std::to_string(counter()++));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  static int &counter() {
    static int n = 0;
    return n;
  }
};

const std::string kSource = FGC_SOURCE_DIR;

// Compares `got` with a fixture output with the fixture runners' tolerance.
void compareWithFixture(const fs::path &file, const fs::path &fixtureDir, const nlohmann::json &od) {
  NpyArray got = fgc::runtime::readNpy(file.string());
  NpyArray ref = fgc::runtime::readNpy((fixtureDir / od["files"][0].get<std::string>()).string());
  REQUIRE(got.shape == od["shape"].get<std::vector<int64_t>>());
  std::vector<float> g = got.toFloat(), r = ref.toFloat();
  double scale = std::max(od["max_abs"].get<double>(), 1e-30);
  for (size_t k = 0; k < r.size(); ++k) {
    INFO(file << " element " << k);
    CHECK(std::fabs(g[k] - r[k]) <= 1e-4 * scale + 1e-4 * std::fabs(r[k]));
  }
}

void predictFixture(const std::string &model, const std::string &fixture) {
  TempDir t;
  fs::path dir = kSource + "/tests/fixtures/models/" + fixture;
  std::ifstream in(dir / "meta.json");
  nlohmann::json meta = nlohmann::json::parse(in);
  std::string args = "run " + kSource + "/" + model;
  for (const auto &i : meta["input_details"])
    args += " --input " + i["name"].get<std::string>() + "=" +
            (dir / i["file"].get<std::string>()).string();
  args += " --output " + (t.path / "out").string();
  Result r = runFgc(args, t.path);
  INFO(r.err);
  REQUIRE(r.status == 0);
  for (const auto &od : meta["output_details"])
    compareWithFixture(t.path / "out" / (od["name"].get<std::string>() + ".npy"), dir, od);
}

} // namespace

TEST_CASE("fgc run predicts the fixtures", "[jit][run]") {
  SECTION("mnist_mlp") { predictFixture("samples/mnist_mlp/model.pbtxt", "mnist_mlp"); }
  SECTION("ticket_classifier (index inputs, two outputs)") {
    predictFixture("samples/ticket_classifier/model.pbtxt", "ticket_classifier");
  }
  SECTION("conv_autoencoder (nested models)") {
    predictFixture("samples/conv_autoencoder/model.pbtxt", "conv_autoencoder");
  }
}

TEST_CASE("fgc run fit, evaluate and the saved model", "[jit][run]") {
  TempDir t;
  // 96 samples of a learnable rule: the label is the brightest of the first 10 pixels.
  std::vector<float> x(96 * 784), y(96);
  uint32_t state = 12345;
  for (size_t i = 0; i < x.size(); ++i) {
    state = state * 1664525u + 1013904223u;
    x[i] = float(state >> 8) / float(1 << 24);
  }
  for (size_t n = 0; n < 96; ++n)
    y[n] = float(std::max_element(&x[n * 784], &x[n * 784 + 10]) - &x[n * 784]);
  std::string xs = (t.path / "x.npy").string(), ys = (t.path / "y.npy").string();
  fgc::runtime::writeNpy(xs, x.data(), {96, 784});
  fgc::runtime::writeNpy(ys, y.data(), {96});
  std::string model = kSource + "/samples/mnist_mlp/model.pbtxt";
  std::string data = " --x input_1=" + xs + " --y dense_2=" + ys;

  auto lossOf = [](const std::string &out) {
    auto at = out.find("loss: ");
    REQUIRE(at != std::string::npos);
    return std::stod(out.substr(at + 6));
  };
  Result before = runFgc("run " + model + " evaluate" + data + " --verbose 0", t.path);
  INFO(before.err);
  REQUIRE(before.status == 0);
  std::string saved = (t.path / "trained.fgcm").string();
  Result fit = runFgc("run " + model + " fit" + data +
                       " --epochs 3 --batch-size 16 --validation-split 0.25 --verbose 2 -o " + saved,
                   t.path);
  INFO(fit.out << fit.err);
  REQUIRE(fit.status == 0);
  CHECK(fit.out.find("Epoch 3/3") != std::string::npos);
  CHECK(fit.out.find("val_accuracy") != std::string::npos);
  REQUIRE(fs::exists(saved));
  // The trained model: fgc reads it, and its loss on the data went down.
  Result summary = runFgc("summary " + saved, t.path);
  CHECK(summary.status == 0);
  CHECK(summary.out.find("55,050") != std::string::npos);
  Result after = runFgc("run " + saved + " evaluate" + data + " --verbose 0", t.path);
  INFO(after.err);
  REQUIRE(after.status == 0);
  CHECK(lossOf(after.out) < lossOf(before.out));
  // The trained weights under the original model file: --weights-file reads them instead of
  // creating the seed's.
  Result viaWeights =
      runFgc("run " + model + " evaluate" + data + " --verbose 0 --weights-file " + saved, t.path);
  INFO(viaWeights.err);
  REQUIRE(viaWeights.status == 0);
  CHECK(viaWeights.out == after.out);
}

namespace {

// --time-phases' report: the phases in order with their ms, the total and the phases' sum.
struct PhaseReport {
  std::vector<std::pair<std::string, double>> phases;
  double total = -1, sum = -1;
  bool has(const std::string &name) const {
    return std::any_of(phases.begin(), phases.end(), [&](const auto &p) { return p.first == name; });
  }
};

PhaseReport parsePhases(const std::string &err) {
  PhaseReport r;
  std::istringstream in(err);
  std::string line;
  std::getline(in, line);
  REQUIRE(line.find("by phase (wall ms)") != std::string::npos);
  while (std::getline(in, line)) {
    // "  name with spaces      12.3"; the total adds "   (the phases add up to 12.0)".
    auto note = line.find("   (the phases add up to ");
    std::string row = line.substr(0, note);
    auto cut = row.find_last_of(' ');
    REQUIRE(cut != std::string::npos);
    std::string name = row.substr(0, cut);
    name = name.substr(name.find_first_not_of(' '));
    name = name.substr(0, name.find_last_not_of(' ') + 1);
    double ms = std::stod(row.substr(cut + 1));
    if (name == "total") {
      REQUIRE(note != std::string::npos);
      r.total = ms;
      r.sum = std::stod(line.substr(note + 25));
    } else {
      r.phases.emplace_back(name, ms);
    }
  }
  return r;
}

void checkPhases(const PhaseReport &r, const std::vector<std::string> &expected) {
  for (const auto &name : expected) {
    INFO(name);
    CHECK(r.has(name));
  }
  REQUIRE(r.total >= 0);
  double sum = 0;
  for (const auto &[name, ms] : r.phases) {
    CHECK(ms >= 0);
    sum += ms;
  }
  // The rows add up to the stated sum (each rounded to 0.1 ms) ...
  CHECK(std::fabs(sum - r.sum) <= 0.05 * double(r.phases.size()) + 0.1);
  // ... and the phases cover the total but for the moments between them (generously: on a
  // loaded machine the process can be descheduled between two phases; a phase left unmeasured
  // would still show).
  CHECK(r.sum <= r.total + 0.1);
  CHECK(r.total - r.sum <= std::max(0.25 * r.total, 50.0));
}

} // namespace

TEST_CASE("fgc run --time-phases: where the time to the first result went", "[jit][run]") {
  TempDir t;
  std::string model = kSource + "/samples/mnist_mlp/model.pbtxt";
  std::string input = " --input input_1=" + kSource + "/tests/fixtures/models/mnist_mlp/input_input_1.npy";
  const std::vector<std::string> compile = {"load",         "schema",          "graph passes",
                                            "lowering",     "program passes",  "memory plan",
                                            "tables",       "LLVM IR",         "LLVM optimization",
                                            "machine code", "read data"};
  SECTION("predict, weights from the seed") {
    Result r = runFgc("run " + model + input + " --output " + t.path.string() + " --time-phases",
                      t.path);
    INFO(r.err);
    REQUIRE(r.status == 0);
    PhaseReport p = parsePhases(r.err);
    checkPhases(p, compile);
    CHECK(p.has("weights"));
    CHECK(p.has("weight buffer"));
    CHECK(p.has("first call (predict)"));
    CHECK(p.phases.back().first == "first call (predict)");
  }
  SECTION("predict, weights from a file") {
    std::string weights = (t.path / "w.fgcw").string();
    REQUIRE(runFgc("convert " + model + " -o " + (t.path / "m.pbtxt").string() +
                       " --weights-file " + weights,
                   t.path)
                .status == 0);
    Result r = runFgc("run " + model + input + " --output " + t.path.string() +
                          " --time-phases --weights-file " + weights,
                      t.path);
    INFO(r.err);
    REQUIRE(r.status == 0);
    PhaseReport p = parsePhases(r.err);
    checkPhases(p, compile);
    CHECK(p.has("weights file"));
    CHECK_FALSE(p.has("weights")); // no initializers ran
    CHECK(p.has("first call (predict)"));
  }
  SECTION("fit: the first training step") {
    std::vector<float> x(8 * 784, 0.5f), y(8, 3.0f);
    std::string xs = (t.path / "x.npy").string(), ys = (t.path / "y.npy").string();
    fgc::runtime::writeNpy(xs, x.data(), {8, 784});
    fgc::runtime::writeNpy(ys, y.data(), {8});
    Result r = runFgc("run " + model + " fit --x input_1=" + xs + " --y dense_2=" + ys +
                          " --verbose 0 --time-phases",
                      t.path);
    INFO(r.err);
    REQUIRE(r.status == 0);
    PhaseReport p = parsePhases(r.err);
    checkPhases(p, {"training lowering", "LLVM IR", "machine code", "read data"});
    CHECK(p.has("first call (trainStep)"));
  }
}

TEST_CASE("fgc run: bad input is one error line, exit 1", "[jit][run][errors]") {
  TempDir t;
  std::string model = kSource + "/samples/mnist_mlp/model.pbtxt";
  std::string input = kSource + "/tests/fixtures/models/mnist_mlp/input_input_1.npy";
  auto expectError = [&](const std::string &args, const std::vector<std::string> &words) {
    Result r = runFgc("run " + model + " " + args, t.path);
    INFO(args << "\n" << r.err);
    CHECK(r.status == 1);
    CHECK(r.err.rfind("fgc: error: ", 0) == 0);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    for (const auto &w : words)
      CHECK(r.err.find(w) != std::string::npos);
  };
  expectError("--input image=" + input, {"image", "input_1"});
  expectError("--input input_1=" + t.path.string() + "/missing.npy", {"missing.npy", "no such file"});
  std::vector<float> wrong(3 * 100, 0.5f);
  std::string wrongFile = (t.path / "wrong.npy").string();
  fgc::runtime::writeNpy(wrongFile, wrong.data(), {3, 100});
  expectError("--input input_1=" + wrongFile, {"input_1", "(None, 784)", "(3, 100)"});
  expectError("", {"input_1"}); // no input given
}
