// `fgc run`: a model JIT-compiled in-process (fgc/jit.h) and run on data files at once.
//
//   fgc run MODEL --input NAME=FILE ... [--output DIR]       predict; DIR/<output>.npy
//   fgc run MODEL fit --x NAME=FILE ... --y NAME=FILE ... [--epochs N] ... [-o trained.fgcm]
//   fgc run MODEL evaluate --x NAME=FILE ... --y NAME=FILE ...
//
// Files are read by the runtime's loaders, told apart by extension: .npy, .npz (one array),
// IDX (.idx, *-ubyte, optionally .gz), .csv (numbers; no label column). Float inputs given as
// integers (IDX pixels) are converted to float32 times --x-scale; a sample's values are reshaped
// to the input's shape when their count matches (MNIST's 28x28 images for a (None, 784) input);
// targets become float32 (sparse labels) the same way.
#include "tools/fgc/RunCommand.h"

#include "fgc/jit.h"
#include "fgc/runtime/data.h"
#include "fgc/runtime/npy.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>

namespace fgc {

namespace {

bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

rt::Tensor readTensor(const std::string &path) {
  if (!std::filesystem::exists(path))
    throw rt::Error(path + ": no such file");
  std::string p = path;
  if (endsWith(p, ".gz"))
    p = p.substr(0, p.size() - 3);
  if (endsWith(p, ".npy"))
    return rt::readNpyTensor(path);
  if (endsWith(p, ".npz")) {
    auto arrays = rt::readNpz(path);
    if (arrays.size() != 1)
      throw rt::Error(fmt::format("{}: holds {} arrays; give a .npz with one, or a .npy", path,
                                  arrays.size()));
    return std::move(arrays[0].second);
  }
  if (endsWith(p, ".csv"))
    return rt::readCsv(path).features;
  if (endsWith(p, ".idx") || endsWith(p, "-ubyte") || p.find("-idx") != std::string::npos)
    return rt::readIdx(path);
  throw rt::Error(path + ": unknown data format (expected .npy, .npz, .csv or IDX: .idx, "
                         "*-ubyte, optionally .gz)");
}

// "name=file" -> (name, file).
std::pair<std::string, std::string> splitBinding(const std::string &b, const char *option) {
  auto eq = b.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == b.size())
    throw rt::Error(fmt::format("{} '{}': expected NAME=FILE", option, b));
  return {b.substr(0, eq), b.substr(eq + 1)};
}

std::string shapeText(const std::vector<int64_t> &shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + (shape[i] < 0 ? std::string("None") : std::to_string(shape[i]));
  return s + (shape.size() == 1 ? ",)" : ")");
}

// `t` as the model expects a tensor of `shape` (-1: any): samples first, reshaped when one
// sample's value count matches, converted to float32 (times `scale`) unless `keepIndices`.
rt::Tensor adapt(rt::Tensor t, const std::vector<int64_t> &shape, bool keepIndices, double scale,
                 const std::string &what) {
  bool isFloat = t.dtype() == rt::DType::Float32;
  bool isIndex = t.dtype() == rt::DType::Int32 || t.dtype() == rt::DType::Int64;
  if (!(keepIndices && isIndex) && (!isFloat || scale != 1.0))
    t = rt::convertTensor(t, rt::DType::Float32, scale);
  if (t.shape().empty())
    throw rt::Error(what + ": a scalar, expected samples of shape " + shapeText(shape));
  int64_t samples = t.shape()[0];
  int64_t per = samples ? t.size() / samples : 0;
  int64_t want = 1;
  bool fixed = true;
  for (size_t i = 1; i < shape.size(); ++i)
    if (shape[i] < 0)
      fixed = false;
    else
      want *= shape[i];
  if (fixed && per == want && t.shape().size() != shape.size()) {
    std::vector<int64_t> s = shape;
    s[0] = samples;
    rt::Tensor r(t.dtype(), s);
    std::memcpy(r.raw(), t.raw(), t.bytes());
    return r;
  }
  return t;
}

// Reads NAME=FILE bindings in the order of `names`; every name must be bound exactly once.
std::vector<rt::Tensor> bindFiles(const std::vector<std::string> &bindings,
                             const std::vector<std::string> &names,
                             const std::vector<std::vector<int64_t>> &shapes,
                             const std::vector<bool> &indices, double scale, const char *option,
                             const std::string &model, const char *what) {
  std::map<std::string, std::string> files;
  for (const auto &b : bindings) {
    auto [name, file] = splitBinding(b, option);
    if (std::find(names.begin(), names.end(), name) == names.end())
      throw rt::Error(fmt::format("{}: {} '{}' is not one of the model's {}s ({})", model, option,
                                  name, what, fmt::join(names, ", ")));
    if (!files.emplace(name, file).second)
      throw rt::Error(fmt::format("{}: {} '{}' is given twice", model, option, name));
  }
  std::vector<rt::Tensor> out;
  for (size_t i = 0; i < names.size(); ++i) {
    auto it = files.find(names[i]);
    if (it == files.end())
      throw rt::Error(fmt::format("{}: no {} for {} '{}' {} ({} {}=FILE)", model, option, what,
                                  names[i], shapeText(shapes[i]), option, names[i]));
    out.push_back(adapt(readTensor(it->second), shapes[i], indices[i], scale,
                        it->second + " (" + what + " '" + names[i] + "')"));
  }
  return out;
}

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// The JIT model as the runtime's loops see it, timing the first call they make (predict,
// trainStep or testStep: the one that sizes the arena and computes what derives from the
// weights) for --time-phases.
class FirstCallTimer : public rt::Trainable {
public:
  explicit FirstCallTimer(jit::Model &model) : model_(model) {}
  std::vector<std::string> logNames() const override { return model_.logNames(); }
  void trainStep(const rt::Tensor *x, const rt::Tensor *y, double *logs) override {
    timed("trainStep", [&] { model_.trainStep(x, y, logs); });
  }
  void testStep(const rt::Tensor *x, const rt::Tensor *y, double *logs) override {
    timed("testStep", [&] { model_.testStep(x, y, logs); });
  }
  void predictBatch(const rt::Tensor *x, rt::Tensor *outputs) override {
    timed("predict", [&] { model_.predictBatch(x, outputs); });
  }
  int numOutputs() const override { return model_.numOutputs(); }
  void save(const std::string &path) const override { model_.save(path); }
  void setEpoch(int epochsCompleted) override { model_.setEpoch(epochsCompleted); }

  const char *call = nullptr; // the first call's name, once made
  double seconds = 0;
  Clock::time_point end;      // when it returned

private:
  template <typename F> void timed(const char *name, F &&f) {
    if (call) {
      f();
      return;
    }
    auto start = Clock::now();
    f();
    end = Clock::now();
    seconds = std::chrono::duration<double>(end - start).count();
    call = name;
  }
  jit::Model &model_;
};

// --time-phases: where the time to the first result went, on stderr.
void printPhases(const jit::Model &model, double readSeconds, const FirstCallTimer &first,
                 Clock::time_point start) {
  std::vector<std::pair<std::string, double>> phases = model.compilePhases();
  phases.emplace_back("read data", readSeconds);
  if (first.call)
    phases.emplace_back(fmt::format("first call ({})", first.call), first.seconds);
  double sum = 0;
  for (const auto &[name, seconds] : phases)
    sum += seconds;
  double total = first.call ? std::chrono::duration<double>(first.end - start).count()
                            : secondsSince(start);
  std::string out = fmt::format("fgc: time to the first result of '{}', by phase (wall ms):\n",
                                model.name());
  for (const auto &[name, seconds] : phases)
    out += fmt::format("  {:<24}{:>10.1f}\n", name, 1e3 * seconds);
  out += fmt::format("  {:<24}{:>10.1f}   (the phases add up to {:.1f})\n", "total", 1e3 * total,
                     1e3 * sum);
  std::fflush(stdout);
  std::fputs(out.c_str(), stderr);
}

} // namespace

int runModel(const RunOptions &o) {
  auto start = Clock::now();
  jit::Options jo;
  jo.optLevel = o.optLevel;
  jo.disabledPasses = o.disabledPasses;
  jo.outputs = o.outputs;
  jo.dumpLlvmIr = o.dumpLlvmIr;
  jo.weightsFile = o.weightsFile;
  jo.optimizer = o.optimizer;
  jo.learningRate = o.learningRate;
  jo.inferenceOnly = o.action == "predict";
  auto model = jit::compile(o.model, jo);
  FirstCallTimer timed(*model);
  auto readStart = Clock::now();
  if (!o.dumpLlvmIr.empty())
    fmt::print("wrote {}\n", o.dumpLlvmIr);
  if (o.verbose > 0)
    fmt::print("compiled '{}' in {:.0f} ms\n", model->name(),
               1e3 * model->compileSeconds());

  std::vector<std::vector<int64_t>> inShapes;
  std::vector<bool> indexInput; // inputs read only by Embedding keep int32 / int64 indices
  for (int i = 0; i < model->numInputs(); ++i) {
    inShapes.push_back(model->inputShape(i));
    indexInput.push_back(model->inputDType(i) == rt::DType::Int32);
  }
  auto x = bindFiles(o.inputs, model->inputNames(), inShapes, indexInput, o.xScale,
                o.action == "predict" ? "--input" : "--x", o.model, "input");

  double readSeconds = secondsSince(readStart);
  // After the run: the progress bar and the phases would interleave.
  auto report = [&] {
    if (o.timePhases)
      printPhases(*model, readSeconds, timed, start);
  };

  if (o.action == "predict") {
    std::vector<rt::Tensor> y = rt::predict(timed, x, o.batchSize);
    report();
    std::filesystem::create_directories(o.outputDir);
    for (size_t i = 0; i < y.size(); ++i) {
      std::string path = (std::filesystem::path(o.outputDir) /
                          (model->outputNames()[i] + ".npy")).string();
      runtime::writeNpy(path, y[i].data<float>(), y[i].shape());
      fmt::print("wrote {} {}\n", path, shapeText(y[i].shape()));
    }
    return 0;
  }

  if (!model->hasTraining())
    throw rt::Error(o.model + ": the model has no training config (a loss): nothing to " +
                    o.action);
  // Targets: the outputs with a loss, in output order (the model's targetSpecs).
  std::vector<std::string> targetNames;
  std::vector<std::vector<int64_t>> targetShapes;
  for (int i = 0; i < model->numOutputs(); ++i) {
    targetNames.push_back(model->outputNames()[size_t(i)]);
    targetShapes.push_back(model->outputShape(i));
  }
  std::vector<std::string> lossNames;
  std::vector<std::vector<int64_t>> lossShapes;
  for (size_t i = 0; i < targetNames.size(); ++i)
    if (model->hasLoss(int(i))) {
      lossNames.push_back(targetNames[i]);
      lossShapes.push_back(targetShapes[i]);
    }
  rt::Dataset data;
  data.inputs = std::move(x);
  std::vector<bool> noIndices(lossNames.size(), false);
  data.targets = bindFiles(o.targets, lossNames, lossShapes, noIndices, 1.0, "--y", o.model, "output");
  readSeconds = secondsSince(readStart);
  // Sparse labels: (N,) or (N, 1) for a (None, classes) output; the model checks the shapes.
  for (rt::Tensor &t : data.targets)
    if (t.shape().size() == 2 && t.shape()[1] == 1)
      t = adapt(std::move(t), {-1}, false, 1.0, "");

  if (o.action == "evaluate") {
    rt::Logs logs = rt::evaluate(timed, data, o.batchSize, o.verbose);
    report();
    for (const auto &name : model->logNames())
      fmt::print("{}: {:.6f}\n", name, logs.at(name));
    return 0;
  }
  rt::FitOptions fo;
  fo.batchSize = o.batchSize;
  fo.epochs = o.epochs;
  fo.validationSplit = o.validationSplit;
  fo.shuffle = !o.noShuffle;
  fo.shuffleSeed = o.shuffleSeed;
  fo.initialEpoch = o.initialEpoch;
  fo.verbose = o.verbose;
  if (!o.resume.empty()) {
    model->load(o.resume);
    if (o.initialEpoch == 0)
      fo.initialEpoch = model->epoch();
  }
  rt::History history = rt::fit(timed, data, fo);
  report();
  if (!o.historyCsv.empty())
    history.writeCsv(o.historyCsv);
  if (!o.saveTo.empty()) {
    model->save(o.saveTo);
    fmt::print("wrote {}\n", o.saveTo);
  }
  return 0;
}

} // namespace fgc
