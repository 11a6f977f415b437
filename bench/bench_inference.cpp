// Times the predict() of one fgc-generated model (the benchmark harness; see bench/README.md).
//
// Built once per sample model by bench/CMakeLists.txt: FGC_BENCH_HEADER names the generated
// header, whose class is fgcbench::Model. The input is the model's single input at the given
// batch size, read from a raw float32 file (--input, as bench/run_inference.py writes it) or
// filled with a fixed pseudo-random sequence. After a warm-up, predict() is timed in samples of
// k back-to-back calls (k chosen so a sample lasts at least --sample-ms) until --min-time
// seconds and --min-samples samples have passed; the per-call median and minimum over the
// samples are printed as one JSON line, with the process CPU time per call over the timed
// window (all threads; on a machine shared with other work it is the least disturbed figure).
// --output writes the last output as raw float32.
#include FGC_BENCH_HEADER

#include "fgc/runtime/kernels.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  int64_t batch = 1;
  int threads = 2;
  double minTime = 1.0;   // seconds of timed samples
  double warmup = 0.3;    // seconds of untimed calls first
  double sampleMs = 1.0;  // lower bound for one sample's duration
  int minSamples = 15;
  std::string input, output;
};

[[noreturn]] void usage(const char *argv0) {
  std::fprintf(stderr,
               "usage: %s --batch N [--threads N] [--min-time S] [--warmup S] [--sample-ms MS]\n"
               "          [--min-samples N] [--input FILE.f32] [--output FILE.f32]\n",
               argv0);
  std::exit(2);
}

Options parse(int argc, char **argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc)
      usage(argv[0]);
    const char *v = argv[++i];
    if (a == "--batch")
      o.batch = std::atoll(v);
    else if (a == "--threads")
      o.threads = std::atoi(v);
    else if (a == "--min-time")
      o.minTime = std::atof(v);
    else if (a == "--warmup")
      o.warmup = std::atof(v);
    else if (a == "--sample-ms")
      o.sampleMs = std::atof(v);
    else if (a == "--min-samples")
      o.minSamples = std::atoi(v);
    else if (a == "--input")
      o.input = v;
    else if (a == "--output")
      o.output = v;
    else
      usage(argv[0]);
  }
  if (o.batch < 1 || o.minSamples < 1)
    usage(argv[0]);
  return o;
}

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

fgc::rt::Tensor makeInput(const Options &o) {
  std::vector<int64_t> shape = fgcbench::Model::inputShape(0);
  for (int64_t &d : shape)
    if (d < 0)
      d = o.batch;
  fgc::rt::Tensor t(fgc::rt::DType::Float32, shape);
  float *x = t.data<float>();
  if (!o.input.empty()) {
    std::FILE *f = std::fopen(o.input.c_str(), "rb");
    size_t got = f ? std::fread(x, sizeof(float), size_t(t.size()), f) : 0;
    if (f)
      std::fclose(f);
    if (got != size_t(t.size())) {
      std::fprintf(stderr, "%s: expected %lld floats\n", o.input.c_str(),
                   static_cast<long long>(t.size()));
      std::exit(1);
    }
  } else {
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (int64_t i = 0; i < t.size(); ++i) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      x[i] = float(s >> 40) / float(1 << 24);
    }
  }
  return t;
}

} // namespace

int main(int argc, char **argv) {
  static_assert(fgcbench::Model::kNumInputs == 1 && fgcbench::Model::kNumOutputs == 1,
                "the harness feeds one input and reads one output");
  Options o = parse(argc, argv);
  try {
    fgcbench::Model::setNumThreads(o.threads);
    fgcbench::Model model;
    fgc::rt::Tensor input = makeInput(o);
    fgc::rt::Tensor output;

    // Warm-up: first call sizes the arena and output, later ones warm caches and threads.
    auto start = Clock::now();
    int warmCalls = 0;
    do {
      model.predict(&input, &output);
      ++warmCalls;
    } while (warmCalls < 3 || seconds(Clock::now() - start) < o.warmup);
    double perCall = seconds(Clock::now() - start) / warmCalls;
    int64_t k = std::max<int64_t>(1, int64_t(o.sampleMs * 1e-3 / perCall));

    std::vector<double> samples; // seconds per call
    start = Clock::now();
    std::clock_t cpuStart = std::clock();
    while (int(samples.size()) < o.minSamples || seconds(Clock::now() - start) < o.minTime) {
      auto t0 = Clock::now();
      for (int64_t i = 0; i < k; ++i)
        model.predict(&input, &output);
      samples.push_back(seconds(Clock::now() - t0) / double(k));
    }
    double cpuPerCall = double(std::clock() - cpuStart) / CLOCKS_PER_SEC /
                        (double(samples.size()) * double(k));
    std::vector<double> sorted = samples;
    std::sort(sorted.begin(), sorted.end());
    size_t n = sorted.size();
    double median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);

    if (!o.output.empty()) {
      std::FILE *f = std::fopen(o.output.c_str(), "wb");
      if (!f || std::fwrite(output.data<float>(), sizeof(float), size_t(output.size()), f) !=
                    size_t(output.size())) {
        std::fprintf(stderr, "cannot write %s\n", o.output.c_str());
        return 1;
      }
      std::fclose(f);
    }
    std::printf("{\"model\": \"%s\", \"batch\": %lld, \"threads\": %d, \"calls_per_sample\": %lld, "
                "\"samples\": %zu, \"median_ms\": %.6f, \"min_ms\": %.6f, \"cpu_ms\": %.6f, "
                "\"samples_per_s\": %.1f, \"cpu_variant\": \"%s\"}\n",
                FGC_BENCH_MODEL, static_cast<long long>(o.batch), o.threads,
                static_cast<long long>(k), n, median * 1e3, sorted.front() * 1e3, cpuPerCall * 1e3,
                double(o.batch) / median, fgc_cpu_variant());
  } catch (const std::exception &e) {
    std::fprintf(stderr, "%s: %s\n", FGC_BENCH_MODEL, e.what());
    return 1;
  }
  return 0;
}
