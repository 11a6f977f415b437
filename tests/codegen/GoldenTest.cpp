// The emitted C++ is pinned by golden files and is deterministic: the same model compiles to the
// same bytes every time, in every weights mode.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path &p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const fs::path kDir = fs::path(FGC_SOURCE_DIR) / "tests/codegen";
const std::string kFgc = std::string(FGC_BINARY_DIR) + "/tools/fgc/fgc";

// Runs `fgc compile MODEL -o DIR/NAME.cpp ARGS` in DIR; returns the exit status.
int compile(const fs::path &model, const fs::path &dir, const std::string &args) {
  fs::create_directories(dir);
  std::string cmd = "cd '" + dir.string() + "' && '" + kFgc + "' compile '" + model.string() +
                    "' -o tiny.cpp --header tiny.h " + args + " > /dev/null";
  return std::system(cmd.c_str());
}

fs::path scratchDir(const std::string &name) {
  fs::path d = fs::temp_directory_path() / ("fgc_codegen_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  return d;
}

} // namespace

TEST_CASE("emitted C++ matches the golden files", "[codegen][golden]") {
  fs::path out = scratchDir("golden");
  // Compile with the same relative paths as update_golden.sh, in a scratch copy.
  fs::create_directories(out);
  fs::copy_file(kDir / "tiny.pbtxt", out / "tiny.pbtxt");
  REQUIRE(compile(fs::path("..") / "tiny.pbtxt", out / "golden", "") == 0);
  for (const char *f : {"tiny.h", "tiny.cpp"}) {
    INFO(f << " differs from tests/codegen/golden: run tests/codegen/update_golden.sh and review "
              "the diff");
    CHECK(slurp(out / "golden" / f) == slurp(kDir / "golden" / f));
  }
  fs::remove_all(out);
}

TEST_CASE("compiling twice gives identical bytes in every weights mode", "[codegen][determinism]") {
  fs::path model = fs::path(FGC_SOURCE_DIR) / "samples/ticket_classifier/model.pbtxt";
  for (const std::string mode : {"inline", "blob", "file"}) {
    SECTION(mode) {
      fs::path a = scratchDir("det_a"), b = scratchDir("det_b");
      REQUIRE(compile(model, a, "--weights " + mode) == 0);
      REQUIRE(compile(model, b, "--weights " + mode) == 0);
      int files = 0;
      for (const auto &e : fs::directory_iterator(a)) {
        INFO(e.path().filename());
        CHECK(slurp(e.path()) == slurp(b / e.path().filename()));
        ++files;
      }
      CHECK(files == (mode == "inline" ? 2 : mode == "blob" ? 4 : 3));
      fs::remove_all(a);
      fs::remove_all(b);
    }
  }
}

TEST_CASE("models fgc cannot compile get one clear error", "[codegen][errors]") {
  fs::path dir = scratchDir("errors");
  fs::create_directories(dir);
  std::ofstream(dir / "grouped.pbtxt") << R"(schema_version: 1
name: "grouped"
layers { class_name: "InputLayer" name: "x"
         config { key: "batch_input_shape" value { ints { values: [-1, 8, 8, 4] } } } }
layers { class_name: "Conv2D" name: "gconv"
         config { key: "filters" value { i: 4 } }
         config { key: "kernel_size" value { i: 3 } }
         config { key: "groups" value { i: 2 } }
         nodes { inputs { layer: "x" } } }
inputs { layer: "x" }
outputs { layer: "gconv" }
)";
  std::string cmd = "cd '" + dir.string() + "' && '" + kFgc +
                    "' compile grouped.pbtxt -o g.cpp 2> err.txt > /dev/null";
  int status = std::system(cmd.c_str());
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 1);
  std::string err = slurp(dir / "err.txt");
  CHECK(err.find("grouped.pbtxt") != std::string::npos);
  CHECK(err.find("layer 'gconv' (Conv2D)") != std::string::npos);
  CHECK(err.find("groups=2") != std::string::npos);
  CHECK(!fs::exists(dir / "g.cpp"));
  fs::remove_all(dir);
}

TEST_CASE("learning-rate schedules in the emitted training code", "[codegen][schedule]") {
  fs::path dir = scratchDir("schedule");
  fs::create_directories(dir);
  auto model = [&](const std::string &name, const std::string &schedule) {
    std::ofstream(dir / (name + ".pbtxt")) << R"(schema_version: 1
name: "sched"
layers { class_name: "InputLayer" name: "x"
         config { key: "batch_input_shape" value { ints { values: [-1, 3] } } } }
layers { class_name: "Dense" name: "d" config { key: "units" value { i: 2 } }
         nodes { inputs { layer: "x" } } }
inputs { layer: "x" }
outputs { layer: "d" }
training {
  optimizer { class_name: "SGD"
    attrs { key: "learning_rate" value { obj { )" << schedule << R"( } } } }
  losses { class_name: "mse" }
}
)";
  };
  auto run = [&](const std::string &name, const std::string &args) {
    std::string cmd = "cd '" + dir.string() + "' && '" + kFgc + "' compile " + name +
                      ".pbtxt -o " + name + ".cpp " + args + " 2> " + name + ".err > /dev/null";
    int status = std::system(cmd.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  const std::string decay = R"(class_name: "ExponentialDecay"
      attrs { key: "initial_learning_rate" value { f: 0.5 } }
      attrs { key: "decay_steps" value { i: 10 } }
      attrs { key: "decay_rate" value { f: 0.25 } }
      attrs { key: "staircase" value { b: true } })";
  model("decay", decay);
  REQUIRE(run("decay", "") == 0);
  // The schedule is evaluated at the steps taken before each update.
  std::string src = slurp(dir / "decay.cpp");
  CHECK(src.find("fgc::rt::LearningRateSchedule::exponentialDecay(0.5, 10, 0.25, true);") !=
        std::string::npos);
  CHECK(src.find("return fgc::rt::learningRate(kModelName, kSchedule, learningRate_, "
                 "learningRateSet_, step_);") != std::string::npos);
  CHECK(src.find("const double lr = learningRate();\n  ++step_;") != std::string::npos);
  CHECK(src.find("float(lr)") != std::string::npos);

  // --learning-rate stays a constant override.
  REQUIRE(run("decay", "--learning-rate 0.125") == 0);
  src = slurp(dir / "decay.cpp");
  CHECK(src.find("exponentialDecay") == std::string::npos);
  CHECK(slurp(dir / "decay.h").find("double learningRate_ = 0.125;") != std::string::npos);

  model("cosine", R"(class_name: "CosineDecay"
      attrs { key: "initial_learning_rate" value { f: 0.5 } }
      attrs { key: "decay_steps" value { i: 100 } })");
  REQUIRE(run("cosine", "") == 0);
  CHECK(slurp(dir / "cosine.cpp").find("LearningRateSchedule::cosineDecay(0.5, 100, 0);") !=
        std::string::npos);

  // Schedules fgc does not know, unknown or missing arguments: one clear error each.
  model("poly", R"(class_name: "PolynomialDecay"
      attrs { key: "initial_learning_rate" value { f: 0.5 } })");
  CHECK(run("poly", "") == 1);
  CHECK(slurp(dir / "poly.err").find("learning-rate schedule 'PolynomialDecay' is not supported "
                                     "(ExponentialDecay, CosineDecay)") != std::string::npos);
  model("typo", decay + R"( attrs { key: "decay_step" value { i: 3 } })");
  CHECK(run("typo", "") == 1);
  CHECK(slurp(dir / "typo.err").find("ExponentialDecay has no argument 'decay_step'") !=
        std::string::npos);
  model("missing", R"(class_name: "ExponentialDecay"
      attrs { key: "initial_learning_rate" value { f: 0.5 } }
      attrs { key: "decay_steps" value { i: 10 } })");
  CHECK(run("missing", "") == 1);
  CHECK(slurp(dir / "missing.err").find("ExponentialDecay needs 'decay_rate'") !=
        std::string::npos);
  CHECK(slurp(dir / "missing.err").find("missing.pbtxt") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("an output without a loss: Keras 2's warning, no target for it", "[codegen][losses]") {
  fs::path dir = scratchDir("noloss");
  fs::create_directories(dir);
  std::string cmd = "cd '" + dir.string() + "' && '" + kFgc + "' compile '" +
                    (fs::path(FGC_SOURCE_DIR) / "tests/training/models/two_heads_one_loss.pbtxt")
                        .string() +
                    "' -o m.cpp 2> err.txt > /dev/null";
  int status = std::system(cmd.c_str());
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(slurp(dir / "err.txt").find(
            "two_heads_one_loss.pbtxt: Output a missing from loss dictionary. We assume this was "
            "done on purpose. The fit and evaluate APIs will not be expecting any data to be "
            "passed to a.") != std::string::npos);
  std::string src = slurp(dir / "m.cpp");
  CHECK(src.find("const fgc::rt::TensorSpec kTargetSpecs[] = {\n    {\"b\",") != std::string::npos);
  CHECK(src.find("bindTargets(kModelName, kTargetSpecs, 1, targets, sym)") != std::string::npos);
  fs::remove_all(dir);
}
