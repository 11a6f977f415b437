// Model files and exact resume, on the generated code of tests/training/models/
// mnist_mlp_dropout.pbtxt (Dropout, Adam on an ExponentialDecay schedule; class generated::Model).
//
// Training 2 epochs straight and training 1 epoch, saving, loading into a fresh object and
// training the second epoch must give bitwise identical weights: shuffling derives from the fit
// seed and the epoch, Dropout masks and the schedule from the optimizer's iteration count, and
// save() / load() carry the weights, Adam's slots, the iteration count and the epoch. The fgc
// binary must read the saved file as the model it is (FGC_EXE, MODEL_FILE). Last, a diverging
// run of the generated code stops with the step and the last finite loss.
#include FGC_MODEL_HEADER

#include "fgc/runtime/npy.h"

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace {

// 300 samples of 784 values in [0, 1) and labels 0..9 from a fixed linear congruential stream;
// the labels depend on the pixels so that training has something to learn.
fgc::rt::Dataset data() {
  const int64_t n = 300;
  std::vector<float> x(size_t(n * 784));
  std::vector<float> y(static_cast<size_t>(n));
  uint64_t s = 12345;
  for (auto &v : x) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    v = float(s >> 40) / float(1 << 24);
  }
  for (int64_t i = 0; i < n; ++i)
    y[size_t(i)] = float(int(x[size_t(i * 784)] * 10) % 10);
  fgc::rt::Dataset d;
  d.inputs.push_back(fgc::rt::Tensor::fromFloats({n, 784}, x.data()));
  d.targets.push_back(fgc::rt::Tensor::fromFloats({n}, y.data()));
  return d;
}

fgc::rt::FitOptions options(int epochs, int initialEpoch = 0) {
  fgc::rt::FitOptions o;
  o.batchSize = 32; // 300 samples: 10 steps per epoch, the last one partial
  o.epochs = epochs;
  o.initialEpoch = initialEpoch;
  o.shuffle = true;
  o.shuffleSeed = 99;
  o.validationSplit = 0.1;
  o.verbose = 0;
  return o;
}

std::vector<std::vector<float>> weightsOf(const generated::Model &m) {
  std::vector<std::vector<float>> w;
  for (int i = 0; i < generated::Model::numWeights(); ++i) {
    size_t n = 1;
    for (int64_t d : generated::Model::weightShape(i))
      n *= size_t(d);
    w.emplace_back(m.weightData(i), m.weightData(i) + n);
  }
  return w;
}

bool bitwiseEqual(const std::vector<std::vector<float>> &a,
                  const std::vector<std::vector<float>> &b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].size() != b[i].size() ||
        std::memcmp(a[i].data(), b[i].data(), a[i].size() * sizeof(float)) != 0)
      return false;
  return true;
}

std::string tempPath(const std::string &name) {
  fs::path dir = fs::temp_directory_path() / ("fgc_resume_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return (dir / name).string();
}

// Runs a command, returning its exit status and stdout.
std::pair<int, std::string> run(const std::string &cmd) {
  std::string out;
  FILE *p = ::popen((cmd + " 2>&1").c_str(), "r");
  REQUIRE(p);
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, p))
    out.append(buf, n);
  int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string readAll(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

} // namespace

TEST_CASE("1 epoch + save + load + 1 epoch equals 2 epochs, bit for bit", "[training][resume]") {
  fgc::rt::Dataset d = data();
  generated::Model straight;
  fgc::rt::History h2 = straight.fit(d, options(2));
  REQUIRE(straight.epoch() == 2);
  REQUIRE(straight.step() == 2 * 9); // 270 training samples, batch 32

  generated::Model first;
  first.fit(d, options(1));
  std::string ckpt = tempPath("epoch1.fgcm");
  first.save(ckpt);

  generated::Model resumed;
  auto initial = weightsOf(resumed);
  resumed.load(ckpt);
  CHECK(resumed.epoch() == 1);
  CHECK(resumed.step() == 9);
  CHECK(resumed.learningRate() == first.learningRate());
  CHECK(bitwiseEqual(weightsOf(resumed), weightsOf(first)));
  CHECK_FALSE(bitwiseEqual(weightsOf(resumed), initial));
  fgc::rt::History h1 = resumed.fit(d, options(2, resumed.epoch()));
  CHECK(resumed.step() == straight.step());
  CHECK(bitwiseEqual(weightsOf(resumed), weightsOf(straight)));
  // The second epoch's logs agree too (the same batches, masks and rates).
  REQUIRE(h1.values["loss"].size() == 1);
  CHECK(h1.values["loss"][0] == h2.values["loss"][1]);
  CHECK(h1.values["val_loss"][0] == h2.values["val_loss"][1]);

  SECTION("without the optimizer state the run differs") {
    // Loading the weights alone restarts Adam and the schedule: a different second epoch, which
    // shows that the bitwise equality above depends on the restored state.
    generated::Model weightsOnly;
    weightsOnly.load_weights(ckpt);
    weightsOnly.fit(d, options(2, 1));
    CHECK_FALSE(bitwiseEqual(weightsOf(weightsOnly), weightsOf(straight)));
  }
}

TEST_CASE("ModelCheckpoint writes model files that resume", "[training][resume]") {
  fgc::rt::Dataset d = data();
  generated::Model m;
  std::string pattern = tempPath("ckpt_{epoch}.fgcm");
  fgc::rt::ModelCheckpoint every(pattern, "val_loss", false);
  fgc::rt::FitOptions o = options(2);
  o.callbacks = {&every};
  m.fit(d, o);
  std::string second = tempPath("ckpt_02.fgcm");
  REQUIRE(fs::exists(tempPath("ckpt_01.fgcm")));
  REQUIRE(fs::exists(second));
  generated::Model r;
  r.load(second);
  CHECK(r.epoch() == 2);
  CHECK(r.step() == m.step());
  CHECK(bitwiseEqual(weightsOf(r), weightsOf(m)));
  // Saving what was loaded gives the same bytes.
  std::string again = tempPath("again.fgcm");
  r.save(again);
  CHECK(readAll(again) == readAll(second));
}

TEST_CASE("the fgc command line reads a saved model file as the model", "[training][resume]") {
  generated::Model m;
  m.fit(data(), options(1));
  // Any name: fgc tells model files by their magic bytes.
  std::string ckpt = tempPath("trained.bin");
  m.save(ckpt);
  std::string fgc = FGC_EXE;

  auto [summaryStatus, summary] = run(fgc + " summary " + ckpt);
  auto [refStatus, reference] = run(fgc + " summary " + MODEL_FILE);
  CHECK(summaryStatus == 0);
  CHECK(refStatus == 0);
  CHECK(summary == reference);

  auto [checkStatus, check] = run(fgc + " check " + ckpt);
  CHECK(checkStatus == 0);
  CHECK(check.find("weights present") != std::string::npos);

  // The trained weights come out of the file (export-weights reads it as a model).
  std::string dir = tempPath("exported");
  auto [exportStatus, exportOut] = run(fgc + " export-weights " + ckpt + " -o " + dir);
  INFO(exportOut);
  REQUIRE(exportStatus == 0);
  for (int i = 0; i < generated::Model::numWeights(); ++i) {
    auto a = fgc::runtime::readNpy(dir + "/" + generated::Model::weightName(i) + ".npy");
    std::vector<float> got = a.toFloat();
    auto want = weightsOf(m)[size_t(i)];
    INFO(generated::Model::weightName(i));
    CHECK(got == want);
  }

  // It compiles, and converts to a text model that checks.
  std::string cpp = tempPath("from_ckpt.cpp");
  auto [compileStatus, compileOut] = run(fgc + " compile " + ckpt + " -o " + cpp);
  INFO(compileOut);
  CHECK(compileStatus == 0);
  CHECK(readAll(tempPath("from_ckpt.h")).find("public fgc::rt::Trainable") != std::string::npos);
  std::string text = tempPath("converted.pbtxt");
  auto [convertStatus, convertOut] = run(fgc + " convert " + ckpt + " -o " + text);
  INFO(convertOut);
  CHECK(convertStatus == 0);
  CHECK(run(fgc + " check " + text).first == 0);
}

TEST_CASE("loading a file of another model or shape is a clear error", "[training][resume]") {
  generated::Model m;
  std::string ckpt = tempPath("good.fgcm");
  m.save(ckpt); // before any training: fresh optimizer state
  generated::Model fresh;
  CHECK_NOTHROW(fresh.load(ckpt));
  CHECK(fresh.step() == 0);

  auto loadFails = [](const std::string &path, const std::string &expected) {
    generated::Model target;
    auto before = weightsOf(target);
    try {
      target.load(path);
      FAIL("load() accepted " << path);
    } catch (const fgc::rt::Error &e) {
      INFO(e.what());
      CHECK(std::string(e.what()).find(expected) != std::string::npos);
      CHECK(std::string(e.what()).find(path) != std::string::npos);
    }
    CHECK(bitwiseEqual(weightsOf(target), before)); // nothing changed
  };

  SECTION("a weights file is not a model file") {
    std::string w = tempPath("weights.fgcw");
    m.save_weights(w);
    loadFails(w, "a weights file, not a model file");
    auto [status, out] = run(std::string(FGC_EXE) + " summary " + w);
    CHECK(status == 1);
    CHECK(out.find("an fgc weights file, not a model") != std::string::npos);
  }
  SECTION("a model file of another model") {
    // The same bytes with the index's model name changed (same length).
    std::string bytes = readAll(ckpt);
    size_t at = bytes.find("mnist_dropout");
    REQUIRE(at != std::string::npos);
    bytes.replace(at, 13, "other_dropout");
    std::string other = tempPath("other.fgcm");
    std::ofstream(other, std::ios::binary) << bytes;
    loadFails(other, "a model file of model 'other_dropout', not of 'mnist_dropout'");
  }
  SECTION("a weight of another shape") {
    // dense/kernel's index entry says (784, 63): the packed shape 784, 64 with 64 -> 63.
    std::string bytes = readAll(ckpt);
    size_t at = bytes.find(std::string("\x22\x03\x90\x06\x40", 5));
    REQUIRE(at != std::string::npos);
    bytes[at + 4] = '\x3f';
    std::string w = tempPath("shapes.fgcm");
    std::ofstream(w, std::ios::binary) << bytes;
    loadFails(w, "weight 'dense/kernel' has shape (784, 63) in the file, model 'mnist_dropout' "
                 "needs float32 (784, 64)");
  }
  SECTION("a missing weight") {
    // The first entry's layer "dense" renamed "dens_": the file lacks dense/kernel.
    std::string bytes = readAll(ckpt);
    size_t at = bytes.find(std::string("\x0a\x05" "dense", 7));
    REQUIRE(at != std::string::npos);
    bytes[at + 6] = '_';
    std::string w = tempPath("missing.fgcm");
    std::ofstream(w, std::ios::binary) << bytes;
    loadFails(w, "needs weight 'dense/kernel' (784, 64), which the file does not have");
  }
  SECTION("the state of another optimizer") {
    // The TrainingState, last in the index, names the optimizer: "Adam" -> "Adax".
    std::string bytes = readAll(ckpt);
    size_t at = bytes.rfind("Adam");
    REQUIRE(at != std::string::npos);
    bytes[at + 3] = 'x';
    std::string w = tempPath("optimizer.fgcm");
    std::ofstream(w, std::ios::binary) << bytes;
    loadFails(w, "the file holds the state of optimizer Adax, model 'mnist_dropout' trains with "
                 "Adam");
  }
  SECTION("a truncated file") {
    std::string bytes = readAll(ckpt);
    std::string t = tempPath("truncated.fgcm");
    std::ofstream(t, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
    loadFails(t, "outside the file");
  }
}

TEST_CASE("a diverging generated model stops with the step and the last finite loss",
          "[training][nan]") {
  fgc::rt::Dataset d = data();
  generated::Model m;
  m.setLearningRate(1e30); // the first update overflows the weights
  try {
    m.fit(d, options(2));
    FAIL("training did not stop");
  } catch (const fgc::rt::Error &e) {
    std::string msg = e.what();
    INFO(msg);
    // Step 1 has a finite loss (computed before its update); step 2 sees the overflow.
    CHECK(msg.find("training diverged at epoch 1, step 2: the loss is ") != std::string::npos);
    CHECK(msg.find("the last finite batch loss was 2.") != std::string::npos);
  }
  CHECK(m.step() == 2);

  generated::Model t;
  t.setLearningRate(1e30);
  fgc::rt::TerminateOnNaN stop;
  fgc::rt::FitOptions o = options(2);
  o.callbacks = {&stop};
  CHECK_NOTHROW(t.fit(d, o));
  CHECK(stop.stopTraining);
  CHECK(t.step() == 2);
}
