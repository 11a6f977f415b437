// `fgc compile`'s pass options end to end (the fgc executable): --print-ir-after for every pass,
// --disable-pass, -O levels, --report / --report-json naming the fused groups by the user's
// layers, and an unknown pass name as one `fgc: error:` line with exit code 1.
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

struct Result {
  int status = 0;
  std::string out, err;
};

std::string slurp(const fs::path &p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("fgc_compile_test_" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
};

Result compile(const TempDir &dir, const std::string &options) {
  std::string model = std::string(FGC_SOURCE_DIR) +
                      "/tests/training/models/separate_activations.pbtxt";
  fs::path out = dir.path / "stdout.txt", err = dir.path / "stderr.txt";
  std::string cmd = std::string(FGC_EXE) + " compile " + model + " -o " +
                    (dir.path / "model.cpp").string() + " " + options + " >" + out.string() +
                    " 2>" + err.string();
  int rc = std::system(cmd.c_str());
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, slurp(out), slurp(err)};
}

bool has(const std::string &text, const std::string &what) {
  return text.find(what) != std::string::npos;
}

} // namespace

TEST_CASE("fgc compile --print-ir-after prints the IR after each pass", "[passes][cli]") {
  TempDir dir;
  auto all = compile(dir, "--print-ir-after all");
  REQUIRE(all.status == 0);
  for (const char *pass : {"input", "inline-nested", "dead-node-elimination", "cse"})
    CHECK(has(all.out, fmt::format("// ----- IR after {} -----\n", pass)));
  for (const char *pass : {"drop-dropout", "fold-batch-norm", "fuse-activation",
                           "fuse-elementwise", "constant-fold"})
    for (const char *program : {"inference", "training"})
      CHECK(has(all.out, fmt::format("// ----- IR after {} ({}) -----\n", pass, program)));
  // One pass: only its dumps, showing the fused training step.
  auto one = compile(dir, "--print-ir-after fuse-activation");
  REQUIRE(one.status == 0);
  CHECK(!has(one.out, "IR after cse"));
  CHECK(has(one.out, "// backward of conv (Conv2D); fused with backward of conv_relu "
                     "(Activation)\n"));
  CHECK(has(one.out, "FGC_ACT_RELU}, %in_image, %w_conv_kernel, null, %conv_relu, "
                     "%d_conv_relu, null,"));
  CHECK(!has(one.out, "fgc_activation_backward(FGC_ACT_RELU, %conv,"));
  // hidden's pre-activation is also read by `skip`: its ReLU stays a call of its own.
  CHECK(has(one.out, "fgc_activation_backward(FGC_ACT_RELU, %hidden, %hidden_relu,"));
}

// The calls of fgc_activation_backward in the generated trainStep.
size_t activationBackwards(const TempDir &dir) {
  std::string code = slurp(dir.path / "model.cpp");
  size_t n = 0;
  for (size_t at = code.find("check(fgc_activation_backward("); at != std::string::npos;
       at = code.find("check(fgc_activation_backward(", at + 1))
    ++n;
  return n;
}

TEST_CASE("fgc compile --disable-pass and -O0 keep the activation separate", "[passes][cli]") {
  TempDir dir;
  // -O2: only hidden_relu's backward is left (its pre-activation has a second reader).
  REQUIRE(compile(dir, "").status == 0);
  CHECK(activationBackwards(dir) == 1);
  for (const char *options : {"--disable-pass fuse-activation --print-ir-after all", "-O0"}) {
    INFO(options);
    auto r = compile(dir, options);
    REQUIRE(r.status == 0);
    CHECK(!has(r.out, "IR after fuse-activation"));
    CHECK(activationBackwards(dir) == 4);
  }
}

TEST_CASE("fgc compile --report-json names fused groups by the user's layers", "[passes][cli]") {
  TempDir dir;
  auto r = compile(dir, "--report --report-json " + (dir.path / "report.json").string());
  REQUIRE(r.status == 0);
  CHECK(has(r.out, "conv + conv_relu (training): FGC_ACT_RELU applied in conv's epilogue, its "
                   "gradient in conv's backward"));
  auto report = nlohmann::json::parse(slurp(dir.path / "report.json"));
  std::vector<std::string> groups;
  for (const auto &g : report["fused_groups"])
    groups.push_back(g["layers"].get<std::string>());
  for (const char *g : {"conv + conv_relu", "conv + conv_relu (training)",
                        "conv1d + conv1d_tanh (training)", "head + head_sigmoid (training)"})
    CHECK(std::find(groups.begin(), groups.end(), g) != groups.end());
  CHECK(std::find(groups.begin(), groups.end(), "hidden + hidden_relu (training)") ==
        groups.end());
  for (const auto &p : report["passes"])
    if (p["name"] == "fuse-activation") {
      CHECK(p["ran"] == true);
      CHECK(p["changes"].size() == 6); // three pairs, inference and training
    }
}

TEST_CASE("fgc compile: an unknown pass is one error line, exit 1", "[passes][cli][errors]") {
  TempDir dir;
  for (const char *options : {"--disable-pass fuse", "--print-ir-after fuse"}) {
    INFO(options);
    auto r = compile(dir, options);
    CHECK(r.status == 1);
    CHECK(r.err.rfind("fgc: error: unknown pass 'fuse' (passes: inline-nested, ", 0) == 0);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(!fs::exists(dir.path / "model.cpp"));
  }
}
