// The JIT against generated C++ for one model (hand-run; bench/README.md, "JIT").
//
// Built per model by bench/CMakeLists.txt against that model's generated class (fgcbench::Model,
// FGC_BENCH_HEADER) and fgc_jit; FGC_BENCH_MODEL_FILE is the model file both come from.
//   bench_jit_<model> [--batch N] [--length L] [--threads N] [--compiles N] [--min-time S]
//                     [--llvm-opt 0-3] [--compile-only] [--input F] [--output F]
// --input: raw float32 values for the (single) input instead of the pseudo-random ones;
// --output: writes the JIT's first output there (raw float32), for a comparison with PyTorch
// (bench/run_jit.py).
// Prints JSON lines:
//   compile: the JIT's latency from model file to callable (fgc::jit::compile: load, weights,
//            passes, lowering, LLVM IR, O2, machine code), inference-only and with training,
//            median and min wall time over --compiles runs, median process CPU time, and the
//            median of each phase
//            (jit::Model::compilePhases);
//   predict / train_step: ms per call of the JIT and of the generated code, timed interleaved
//            (alternating samples of k calls each, so both see the same machine load), medians
//            and process CPU ms per call, and the JIT / AOT ratio.
// Inputs are a fixed pseudo-random sequence (Embedding inputs: indices below 1000; None
// dimensions other than the batch are --length); targets zeros (sparse labels 0).
#include FGC_BENCH_HEADER

#include "fgc/jit.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

fgc::rt::Tensor makeTensor(std::vector<int64_t> shape, int64_t batch, int64_t length,
                           fgc::rt::DType dtype, uint64_t seed, bool zero) {
  bool first = true;
  for (int64_t &d : shape) {
    if (d < 0)
      d = first ? batch : length;
    first = false;
  }
  fgc::rt::Tensor t(fgc::rt::DType::Float32, shape);
  float *x = t.data<float>();
  uint64_t s = seed;
  for (int64_t i = 0; i < t.size(); ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    double u = double(s >> 40) / double(1 << 24);
    x[i] = zero ? 0.0f : dtype == fgc::rt::DType::Int32 ? float(int(u * 1000)) : float(u);
  }
  return t;
}

struct Timing {
  std::vector<double> jit, aot; // seconds per call, per sample
  double jitCpu = 0, aotCpu = 0;
  long calls = 0;
};

// Alternates samples of `k` calls of each until both have minTime seconds.
template <typename J, typename A>
Timing interleave(J &&jitCall, A &&aotCall, double minTime) {
  for (int i = 0; i < 3; ++i) { // warm-up: arenas sized, caches and threads warm
    jitCall();
    aotCall();
  }
  auto t0 = Clock::now();
  aotCall();
  double perCall = std::max(seconds(Clock::now() - t0), 1e-7);
  long k = std::max(1L, long(2e-3 / perCall));
  Timing t;
  t.calls = k;
  double jitTotal = 0, aotTotal = 0;
  while (t.jit.size() < 15 || jitTotal < minTime || aotTotal < minTime) {
    std::clock_t c0 = std::clock();
    auto s0 = Clock::now();
    for (long i = 0; i < k; ++i)
      jitCall();
    double j = seconds(Clock::now() - s0);
    std::clock_t c1 = std::clock();
    auto s1 = Clock::now();
    for (long i = 0; i < k; ++i)
      aotCall();
    double a = seconds(Clock::now() - s1);
    std::clock_t c2 = std::clock();
    t.jit.push_back(j / double(k));
    t.aot.push_back(a / double(k));
    t.jitCpu += double(c1 - c0) / CLOCKS_PER_SEC;
    t.aotCpu += double(c2 - c1) / CLOCKS_PER_SEC;
    jitTotal += j;
    aotTotal += a;
  }
  double n = double(t.jit.size()) * double(k);
  t.jitCpu /= n;
  t.aotCpu /= n;
  return t;
}

void report(const char *what, int64_t batch, int threads, const Timing &t) {
  double j = median(t.jit), a = median(t.aot);
  std::printf("{\"model\": \"%s\", \"what\": \"%s\", \"batch\": %lld, \"threads\": %d, "
              "\"jit_ms\": %.5f, \"aot_ms\": %.5f, \"jit_cpu_ms\": %.5f, \"aot_cpu_ms\": %.5f, "
              "\"ratio\": %.4f, \"cpu_ratio\": %.4f, \"samples\": %zu}\n",
              FGC_BENCH_MODEL, what, static_cast<long long>(batch), threads, j * 1e3, a * 1e3,
              t.jitCpu * 1e3, t.aotCpu * 1e3, j / a, t.jitCpu / t.aotCpu, t.jit.size());
  std::fflush(stdout);
}

} // namespace

int main(int argc, char **argv) {
  int64_t batch = 64, length = 64;
  int threads = 2, compiles = 7;
  double minTime = 1.0;
  bool compileOnly = false;
  std::string inputFile, outputFile;
  int llvmOpt = fgc::jit::Options().llvmOptLevel;
  for (int i = 1; i < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--compile-only") {
      compileOnly = true;
      --i;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%s: %s needs a value\n", argv[0], a.c_str());
      return 2;
    } else if (a == "--batch")
      batch = std::atoll(argv[i + 1]);
    else if (a == "--length")
      length = std::atoll(argv[i + 1]);
    else if (a == "--threads")
      threads = std::atoi(argv[i + 1]);
    else if (a == "--compiles")
      compiles = std::atoi(argv[i + 1]);
    else if (a == "--input")
      inputFile = argv[i + 1];
    else if (a == "--output")
      outputFile = argv[i + 1];
    else if (a == "--llvm-opt")
      llvmOpt = std::atoi(argv[i + 1]);
    else if (a == "--min-time")
      minTime = std::atof(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: %s [--batch N] [--length L] [--threads N] [--compiles N] "
                           "[--min-time S] [--llvm-opt 0-3] [--compile-only] [--input F] [--output F]\n", argv[0]);
      return 2;
    }
  }
  try {
    fgcbench::Model::setNumThreads(threads);
    // Compile latency: file in, callable out.
    for (bool inference : {true, false}) {
      if (compiles <= 0)
        break;
      std::vector<double> times, cpu, llvm;
      std::vector<std::string> phaseNames;
      std::vector<std::vector<double>> phaseTimes;
      for (int i = 0; i < compiles; ++i) {
        fgc::jit::Options o;
        o.inferenceOnly = inference;
        o.llvmOptLevel = llvmOpt;
        auto start = Clock::now();
        std::clock_t c0 = std::clock();
        auto m = fgc::jit::compile(FGC_BENCH_MODEL_FILE, o);
        cpu.push_back(double(std::clock() - c0) / CLOCKS_PER_SEC);
        times.push_back(seconds(Clock::now() - start));
        llvm.push_back(m->llvmSeconds());
        const auto &phases = m->compilePhases();
        phaseTimes.resize(phases.size());
        for (size_t k = 0; k < phases.size(); ++k) {
          if (phaseNames.size() <= k)
            phaseNames.push_back(phases[k].first);
          phaseTimes[k].push_back(phases[k].second);
        }
      }
      std::string phaseJson;
      for (size_t k = 0; k < phaseNames.size(); ++k) {
        char item[128];
        std::snprintf(item, sizeof item, "%s\"%s\": %.1f", k ? ", " : "", phaseNames[k].c_str(),
                      median(phaseTimes[k]) * 1e3);
        phaseJson += item;
      }
      std::printf("{\"model\": \"%s\", \"what\": \"compile %s\", \"median_ms\": %.1f, "
                  "\"min_ms\": %.1f, \"cpu_median_ms\": %.1f, \"llvm_median_ms\": %.1f, \"runs\": %d, "
                  "\"phases_median_ms\": {%s}}\n",
                  FGC_BENCH_MODEL, inference ? "inference" : "training", median(times) * 1e3,
                  *std::min_element(times.begin(), times.end()) * 1e3, median(cpu) * 1e3,
                  median(llvm) * 1e3,
                  compiles, phaseJson.c_str());
      std::fflush(stdout);
    }
    if (compileOnly)
      return 0;

    fgc::jit::Options options;
    options.llvmOptLevel = llvmOpt;
    auto jit = fgc::jit::compile(FGC_BENCH_MODEL_FILE, options);
    fgcbench::Model aot;
    std::vector<fgc::rt::Tensor> inputs, targets;
    for (int i = 0; i < jit->numInputs(); ++i)
      inputs.push_back(makeTensor(jit->inputShape(i), batch, length, jit->inputDType(i),
                                  0x9E3779B97F4A7C15ull + uint64_t(i), false));
    if (!inputFile.empty()) {
      fgc::rt::Tensor &x = inputs.at(0);
      std::FILE *f = std::fopen(inputFile.c_str(), "rb");
      if (!f || std::fread(x.data<float>(), sizeof(float), size_t(x.size()), f) !=
                    size_t(x.size()))
        throw std::runtime_error(inputFile + ": cannot read " + std::to_string(x.size()) +
                                 " float32 values");
      std::fclose(f);
    }
    std::vector<fgc::rt::Tensor> jo(size_t(jit->numOutputs())), ao(size_t(jit->numOutputs()));
    if (!outputFile.empty()) {
      jit->predict(inputs.data(), jo.data());
      std::FILE *f = std::fopen(outputFile.c_str(), "wb");
      if (!f || std::fwrite(jo[0].data<float>(), sizeof(float), size_t(jo[0].size()), f) !=
                    size_t(jo[0].size()))
        throw std::runtime_error(outputFile + ": cannot write the output");
      std::fclose(f);
    }
    report("predict", batch, threads,
           interleave([&] { jit->predict(inputs.data(), jo.data()); },
                      [&] { aot.predict(inputs.data(), ao.data()); }, minTime));
    if (jit->hasTraining()) {
      for (int i = 0; i < jit->numOutputs(); ++i)
        if (jit->hasLoss(i)) {
          std::vector<int64_t> shape = jit->outputShape(i);
          if (FGC_BENCH_SPARSE_LABELS) // sparse labels for a class output
            shape = {-1};
          targets.push_back(makeTensor(shape, batch, length, fgc::rt::DType::Float32, 0, true));
        }
      std::vector<double> logs(jit->logNames().size());
      jit->setDropoutEnabled(false);
      aot.setDropoutEnabled(false);
      report("train_step", batch, threads,
             interleave([&] { jit->trainStep(inputs.data(), targets.data(), logs.data()); },
                        [&] { aot.trainStep(inputs.data(), targets.data(), logs.data()); },
                        minTime));
    }
  } catch (const std::exception &e) {
    std::fprintf(stderr, "%s: %s\n", FGC_BENCH_MODEL, e.what());
    return 1;
  }
  return 0;
}
