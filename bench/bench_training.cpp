// Times the training code of one fgc-generated model (the training benchmark harness; see
// bench/README.md, "Training").
//
// Built once per sample model by bench/CMakeLists.txt: FGC_BENCH_HEADER names the generated
// header, whose class is fgcbench::Model. Two modes, each printing one JSON line:
//   --epochs N --data DIR   the seed's MNIST recipe: fit() on Fashion-MNIST's 60,000 training
//                           images (DIR: the IDX files), batch 64, validation_split 0.2,
//                           verbose 0, one epoch per fit() call, N calls; each epoch's wall and
//                           process CPU seconds (the validation pass included, as in Keras).
//   --batch B               trainStep() at batch B on fixed pseudo-random inputs (indices in
//                           [0, 1000) for inputs that only feed Embedding layers, --dims for
//                           their None lengths) and one-hot targets; after a warm-up, samples
//                           of k back-to-back steps until --min-time seconds and --min-samples
//                           samples: median and min ms per step, process CPU ms per step.
// Dropout is active (training mode), as it is in the PyTorch side of the benchmark.
// Memory: the process's resident set (/proc/self/status) just before the first step or epoch
// (`rss_before_mib`: code, weights, data, inputs) and its peak at the end (`peak_rss_mib`,
// VmHWM), in MiB; the difference is what training itself added (arena, gradients, slots).
#include FGC_BENCH_HEADER

#include <fgc/runtime/data.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using Model = fgcbench::Model;

struct Options {
  int64_t batch = 0;
  int epochs = 0;
  std::string data;
  int threads = 2;
  double minTime = 2.0, warmup = 0.5;
  int minSamples = 10;
  std::map<std::string, int64_t> dims; // input name -> its None sequence length
};

[[noreturn]] void usage(const char *argv0) {
  std::fprintf(stderr,
               "usage: %s (--batch B [--dims NAME=LEN,...] | --epochs N --data DIR)\n"
               "          [--threads N] [--min-time S] [--warmup S] [--min-samples N]\n",
               argv0);
  std::exit(2);
}

Options parse(int argc, char **argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc)
      usage(argv[0]);
    std::string v = argv[++i];
    if (a == "--batch")
      o.batch = std::atoll(v.c_str());
    else if (a == "--epochs")
      o.epochs = std::atoi(v.c_str());
    else if (a == "--data")
      o.data = v;
    else if (a == "--threads")
      o.threads = std::atoi(v.c_str());
    else if (a == "--min-time")
      o.minTime = std::atof(v.c_str());
    else if (a == "--warmup")
      o.warmup = std::atof(v.c_str());
    else if (a == "--min-samples")
      o.minSamples = std::atoi(v.c_str());
    else if (a == "--dims") {
      for (size_t at = 0; at < v.size();) {
        size_t end = v.find(',', at), eq = v.find('=', at);
        if (end == std::string::npos)
          end = v.size();
        if (eq == std::string::npos || eq > end)
          usage(argv[0]);
        o.dims[v.substr(at, eq - at)] = std::atoll(v.substr(eq + 1, end - eq - 1).c_str());
        at = end + 1;
      }
    } else
      usage(argv[0]);
  }
  if ((o.batch < 1) == (o.epochs < 1) || (o.epochs > 0 && o.data.empty()) || o.minSamples < 1)
    usage(argv[0]);
  return o;
}

// A /proc/self/status field in MiB ("VmRSS", "VmHWM"); -1 when it cannot be read.
double statusMiB(const char *field) {
  std::FILE *f = std::fopen("/proc/self/status", "r");
  if (!f)
    return -1;
  char line[256];
  double kib = -1;
  size_t n = std::strlen(field);
  while (std::fgets(line, sizeof line, f))
    if (std::strncmp(line, field, n) == 0 && line[n] == ':')
      kib = std::atof(line + n + 1);
  std::fclose(f);
  return kib < 0 ? -1 : kib / 1024;
}

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
double cpuSeconds() { return double(std::clock()) / CLOCKS_PER_SEC; }

uint64_t nextRandom(uint64_t &s) {
  s = s * 6364136223846793005ull + 1442695040888963407ull;
  return s >> 33;
}

int mnistEpochs(const Options &o) {
  fgc::rt::LoadOptions pixels;
  pixels.toFloat = true;
  pixels.scale = 1.0 / 255.0;
  pixels.reshape = {-1, 784};
  auto train = fgc::rt::loadFashionMnist(o.data, true, pixels);
  fgc::rt::Dataset data;
  data.inputs.push_back(std::move(train.images));
  data.targets.push_back(fgc::rt::convertTensor(train.labels, fgc::rt::DType::Float32));
  Model model;
  double rssBefore = statusMiB("VmRSS");
  std::vector<double> wall, cpu;
  double lastLoss = 0, lastAccuracy = 0;
  for (int e = 0; e < o.epochs; ++e) {
    fgc::rt::FitOptions options;
    options.batchSize = 64;
    options.epochs = 1;
    options.validationSplit = 0.2;
    options.shuffleSeed = uint64_t(e + 1);
    options.verbose = 0;
    double c0 = cpuSeconds();
    auto t0 = Clock::now();
    fgc::rt::History h = model.fit(data, options);
    wall.push_back(seconds(Clock::now() - t0));
    cpu.push_back(cpuSeconds() - c0);
    lastLoss = h.values.at("val_loss").back();
    lastAccuracy = h.values.at("val_accuracy").back();
  }
  auto sorted = wall;
  std::sort(sorted.begin(), sorted.end());
  std::printf("{\"mode\": \"epoch\", \"epochs\": %d, \"median_s\": %.6g, \"min_s\": %.6g, "
              "\"cpu_s\": %.6g, \"val_loss\": %.6g, \"val_accuracy\": %.6g, "
              "\"rss_before_mib\": %.1f, \"peak_rss_mib\": %.1f}\n",
              o.epochs, sorted[sorted.size() / 2], sorted.front(),
              *std::min_element(cpu.begin(), cpu.end()), lastLoss, lastAccuracy, rssBefore,
              statusMiB("VmHWM"));
  return 0;
}

int trainSteps(const Options &o) {
  uint64_t s = 0x9E3779B97F4A7C15ull;
  std::vector<fgc::rt::Tensor> inputs, targets;
  for (int i = 0; i < Model::kNumInputs; ++i) {
    std::vector<int64_t> shape = Model::inputShape(i);
    const std::string &name = Model::inputNames()[size_t(i)];
    for (size_t k = 0; k < shape.size(); ++k)
      if (shape[k] < 0) {
        if (k == 0)
          shape[k] = o.batch;
        else if (o.dims.count(name))
          shape[k] = o.dims.at(name);
        else {
          std::fprintf(stderr, "input '%s' has a None length: pass --dims %s=N\n", name.c_str(),
                       name.c_str());
          return 2;
        }
      }
    fgc::rt::Tensor t(fgc::rt::DType::Float32, shape);
    bool indices = o.dims.count(name) > 0;
    for (int64_t k = 0; k < t.size(); ++k)
      t.data<float>()[k] = indices ? float(nextRandom(s) % 1000) : float(nextRandom(s) % 65536) / 65536;
    inputs.push_back(std::move(t));
  }
  for (int i = 0; i < Model::kNumOutputs; ++i) {
    std::vector<int64_t> shape = Model::outputShape(i);
    shape[0] = o.batch;
    fgc::rt::Tensor t(fgc::rt::DType::Float32, shape);
    int64_t cols = shape.back();
    std::fill(t.data<float>(), t.data<float>() + t.size(), 0.0f);
    for (int64_t r = 0; r < t.size() / cols; ++r)
      t.data<float>()[r * cols + int64_t(nextRandom(s) % uint64_t(cols))] = 1.0f;
    targets.push_back(std::move(t));
  }
  Model model;
  std::vector<double> logs(model.logNames().size());
  double rssBefore = statusMiB("VmRSS");
  auto step = [&] { model.trainStep(inputs.data(), targets.data(), logs.data()); };
  auto start = Clock::now();
  int calls = 0;
  while (calls < 3 || seconds(Clock::now() - start) < o.warmup) {
    step();
    ++calls;
  }
  double perCall = seconds(Clock::now() - start) / calls;
  int k = std::max(1, int(1e-3 / perCall));
  std::vector<double> samples;
  double c0 = cpuSeconds();
  start = Clock::now();
  while (int(samples.size()) < o.minSamples || seconds(Clock::now() - start) < o.minTime) {
    auto t0 = Clock::now();
    for (int j = 0; j < k; ++j)
      step();
    samples.push_back(seconds(Clock::now() - t0) / k);
  }
  double cpu = (cpuSeconds() - c0) / double(samples.size() * size_t(k));
  std::sort(samples.begin(), samples.end());
  std::printf("{\"mode\": \"step\", \"batch\": %lld, \"median_ms\": %.6g, \"min_ms\": %.6g, "
              "\"cpu_ms\": %.6g, \"loss\": %.6g, \"rss_before_mib\": %.1f, "
              "\"peak_rss_mib\": %.1f}\n",
              static_cast<long long>(o.batch), samples[samples.size() / 2] * 1e3,
              samples.front() * 1e3, cpu * 1e3, logs[0], rssBefore, statusMiB("VmHWM"));
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  Options o = parse(argc, argv);
  Model::setNumThreads(o.threads);
  try {
    return o.epochs > 0 ? mnistEpochs(o) : trainSteps(o);
  } catch (const std::exception &e) {
    std::fprintf(stderr, "%s: error: %s\n", argv[0], e.what());
    return 1;
  }
}
