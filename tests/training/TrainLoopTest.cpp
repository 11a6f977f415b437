// fit / evaluate / predict against a model whose every step is known in closed form: a scalar
// linear regression y = w x + b trained by plain gradient descent on the mean squared error. The
// expected weights, epoch means and printed lines are computed here independently of the loop.
#include "fgc/runtime/train.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <unistd.h>

using namespace fgc::rt;
namespace fs = std::filesystem;

namespace {

class Linear : public Trainable {
public:
  double w = 0, b = 0, lr = 0.1;
  std::vector<std::vector<float>> seenBatches; // inputs of each train step
  int saves = 0;
  std::string lastSave;

  std::vector<std::string> logNames() const override { return {"loss", "mae"}; }
  void trainStep(const Tensor *in, const Tensor *tg, double *logs) override {
    int64_t n = in[0].shape()[0];
    const float *x = in[0].data<float>(), *y = tg[0].data<float>();
    seenBatches.emplace_back(x, x + n);
    double gw = 0, gb = 0, loss = 0, mae = 0;
    for (int64_t i = 0; i < n; ++i) {
      double e = w * x[i] + b - y[i];
      loss += e * e;
      mae += std::fabs(e);
      gw += 2 * e * x[i];
      gb += 2 * e;
    }
    logs[0] = loss / double(n);
    logs[1] = mae / double(n);
    w -= lr * gw / double(n);
    b -= lr * gb / double(n);
  }
  void testStep(const Tensor *in, const Tensor *tg, double *logs) override {
    int64_t n = in[0].shape()[0];
    const float *x = in[0].data<float>(), *y = tg[0].data<float>();
    double loss = 0, mae = 0;
    for (int64_t i = 0; i < n; ++i) {
      double e = w * x[i] + b - y[i];
      loss += e * e;
      mae += std::fabs(e);
    }
    logs[0] = loss / double(n);
    logs[1] = mae / double(n);
  }
  void predictBatch(const Tensor *in, Tensor *out) override {
    out[0].resize(DType::Float32, in[0].shape());
    for (int64_t i = 0; i < in[0].size(); ++i)
      out[0].data<float>()[i] = float(w * in[0].data<float>()[i] + b);
  }
  int numOutputs() const override { return 1; }
  void save(const std::string &path) const override {
    const_cast<Linear *>(this)->saves++;
    const_cast<Linear *>(this)->lastSave = path;
  }
};

// y = 3x + 1 on x = 0, 0.1, ..., (n-1)/10.
Dataset line(int64_t n) {
  std::vector<float> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    x[size_t(i)] = float(i) / 10.0f;
    y[size_t(i)] = 3.0f * x[size_t(i)] + 1.0f;
  }
  Dataset d;
  d.inputs.push_back(Tensor::fromFloats({n, 1}, x.data()));
  d.targets.push_back(Tensor::fromFloats({n, 1}, y.data()));
  return d;
}

} // namespace

TEST_CASE("fit runs Keras's batches and weights epoch means by batch size", "[training]") {
  Linear m;
  Dataset d = line(10);
  FitOptions o;
  o.batchSize = 4;
  o.epochs = 1;
  o.shuffle = false;
  o.verbose = 0;
  History h = fit(m, d, o);
  REQUIRE(m.seenBatches.size() == 3); // 4 + 4 + 2
  CHECK(m.seenBatches[2].size() == 2);
  // Replay the same updates by hand to get the expected epoch mean loss.
  double w = 0, b = 0, weighted = 0;
  for (int step = 0; step < 3; ++step) {
    int begin = step * 4, end = std::min(10, begin + 4);
    double gw = 0, gb = 0, loss = 0;
    for (int i = begin; i < end; ++i) {
      double x = i / 10.0, e = w * x + b - (3 * x + 1);
      loss += e * e;
      gw += 2 * e * x;
      gb += 2 * e;
    }
    weighted += loss; // batch mean * batch size
    w -= 0.1 * gw / (end - begin);
    b -= 0.1 * gb / (end - begin);
  }
  REQUIRE(h.values["loss"].size() == 1);
  CHECK(h.values["loss"][0] == Approx(weighted / 10).epsilon(1e-6));
  CHECK(m.w == Approx(w).epsilon(1e-6)); // the data are float32, the replay double
  CHECK(m.b == Approx(b).epsilon(1e-6));
}

TEST_CASE("validation_split takes the last fraction before shuffling", "[training]") {
  Linear m;
  Dataset d = line(10);
  FitOptions o;
  o.batchSize = 100;
  o.validationSplit = 0.2;
  o.verbose = 0;
  o.shuffleSeed = 5;
  History h = fit(m, d, o);
  REQUIRE(m.seenBatches.size() == 1);
  std::multiset<float> seen(m.seenBatches[0].begin(), m.seenBatches[0].end());
  CHECK(seen.size() == 8);
  CHECK(!seen.count(0.8f));
  CHECK(!seen.count(0.9f));
  CHECK(h.names == std::vector<std::string>{"loss", "mae", "val_loss", "val_mae"});
  // val_loss is the loss of the updated model on x = 0.8, 0.9.
  double expected = 0;
  for (double x : {0.8, 0.9}) {
    double e = m.w * float(x) + m.b - (3 * double(float(x)) + 1);
    expected += e * e / 2;
  }
  CHECK(h.values["val_loss"][0] == Approx(expected).epsilon(1e-5));
}

TEST_CASE("shuffling is a seeded permutation", "[training]") {
  auto a = shuffledOrder(100, 42), b = shuffledOrder(100, 42), c = shuffledOrder(100, 43);
  CHECK(a == b);
  CHECK(a != c);
  std::vector<int64_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 100; ++i)
    CHECK(sorted[size_t(i)] == i);
}

TEST_CASE("progress lines follow Keras's format", "[training][progress]") {
  Linear m;
  Dataset d = line(10);
  std::ostringstream out;
  FitOptions o;
  o.batchSize = 4;
  o.epochs = 2;
  o.out = &out;
  o.liveProgress = 0;
  o.validationSplit = 0.2;
  fit(m, d, o);
  std::string text = out.str();
  std::regex epochLine(R"(Epoch 1/2\n2/2 \[==============================\] - \d+s \d+(s|ms|us)/step - loss: \d+\.\d{4} - mae: \d+\.\d{4} - val_loss: \d+\.\d{4}(e[-+]\d+)? - val_mae: \d+\.\d{4}(e[-+]\d+)?\nEpoch 2/2\n)");
  INFO(text);
  CHECK(std::regex_search(text, epochLine));

  std::ostringstream ev;
  Logs logs = evaluate(m, d, 4, 2, &ev);
  INFO(ev.str());
  CHECK(std::regex_match(ev.str(), std::regex(R"(3/3 - \d+s - loss: \d+\.\d{4}(e[-+]\d+)? - mae: \d+\.\d{4}(e[-+]\d+)?\n)")));
  CHECK(logs.count("loss"));

  std::ostringstream single;
  FitOptions one;
  one.batchSize = 64;
  one.out = &single;
  one.liveProgress = 0;
  fit(m, d, one);
  CHECK(single.str().rfind("1/1 [==============================]", 0) == 0); // no "Epoch 1/1"
  CHECK(formatLogValue(0.34375) == "0.3438");
  CHECK(formatLogValue(0.0001234) == "1.2340e-04");
}

TEST_CASE("the live bar redraws one line", "[training][progress]") {
  Linear m;
  Dataset d = line(64);
  std::ostringstream out;
  FitOptions o;
  o.batchSize = 1;
  o.out = &out;
  o.liveProgress = 1;
  fit(m, d, o);
  std::string text = out.str();
  CHECK(text.find('\r') != std::string::npos);
  CHECK(std::count(text.begin(), text.end(), '\n') == 1);
  CHECK(text.find("64/64 [==============================]") != std::string::npos);
}

TEST_CASE("callbacks: EarlyStopping, ModelCheckpoint, CSVLogger, history files", "[training]") {
  fs::path dir = fs::temp_directory_path() / ("fgc_train_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  Linear m;
  m.lr = 0.0; // no progress at all: val_loss never improves after the first epoch
  Dataset d = line(10);
  EarlyStopping stop("val_loss", 2);
  ModelCheckpoint every((dir / "ckpt_{epoch}.fgc").string());
  ModelCheckpoint best((dir / "best.fgc").string(), "val_loss", true);
  CSVLogger csv((dir / "log.csv").string());
  FitOptions o;
  o.epochs = 10;
  o.verbose = 0;
  o.validationSplit = 0.2;
  o.callbacks = {&stop, &every, &best, &csv};
  History h = fit(m, d, o);
  CHECK(h.epochs.size() == 3); // epoch 0 sets the best, 1 and 2 do not improve
  CHECK(stop.stoppedEpoch() == 2);
  CHECK(m.saves == 3 + 1); // every epoch, and best-only once
  CHECK(m.lastSave == (dir / "ckpt_03.fgc").string());
  std::ifstream in(dir / "log.csv");
  std::string header;
  std::getline(in, header);
  CHECK(header == "epoch,loss,mae,val_loss,val_mae");
  h.writeCsv((dir / "h.csv").string());
  h.writeJson((dir / "h.json").string());
  std::ifstream js(dir / "h.json");
  std::string json((std::istreambuf_iterator<char>(js)), std::istreambuf_iterator<char>());
  CHECK(json.rfind("{\"loss\": [", 0) == 0);
  fs::remove_all(dir);
}

TEST_CASE("a diverging loss stops with the step and the last finite loss", "[training]") {
  Linear m;
  m.lr = 100.0; // explodes
  Dataset d = line(100);
  FitOptions o;
  o.batchSize = 10;
  o.epochs = 50;
  o.verbose = 0;
  try {
    fit(m, d, o);
    FAIL("training did not stop");
  } catch (const Error &e) {
    std::string msg = e.what();
    CHECK(msg.find("training diverged at epoch") != std::string::npos);
    CHECK(msg.find("last finite batch loss") != std::string::npos);
  }
  Linear m2;
  m2.lr = 100.0;
  TerminateOnNaN nan;
  o.callbacks = {&nan};
  CHECK_NOTHROW(fit(m2, d, o));
  CHECK(nan.stopTraining);
}

TEST_CASE("predict runs in batches and keeps sample order", "[training]") {
  Linear m;
  m.w = 2;
  m.b = -1;
  Dataset d = line(7);
  auto out = predict(m, d.inputs, 3);
  REQUIRE(out.size() == 1);
  REQUIRE(out[0].shape() == std::vector<int64_t>{7, 1});
  for (int i = 0; i < 7; ++i)
    CHECK(out[0].data<float>()[i] == Approx(2 * (float(i) / 10.0f) - 1));
}

TEST_CASE("inconsistent data is reported with sizes", "[training]") {
  Linear m;
  Dataset d = line(10);
  d.targets[0] = Tensor(DType::Float32, {9, 1});
  FitOptions o;
  o.verbose = 0;
  CHECK_THROWS_WITH(fit(m, d, o), Catch::Contains("has 9 samples, but the first array has 10"));
}
