// fgc_runtime_bench: times representative kernels at batch 1 and 64, to compare
// with tests/reference/runtime_bench.py (the same cases in PyTorch). Not a test;
// run it by hand on a quiet machine:  fgc_runtime_bench [threads]
// For each case it prints the median wall time per call and the CPU time per
// call summed over threads (the latter is robust to other load when threads=1).
#include "fgc/runtime/kernels.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace {

double cpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

void report(const std::string &name, const std::function<int()> &run) {
  if (run() != FGC_OK) {
    std::printf("%-28s failed: %s\n", name.c_str(), fgc_last_error());
    return;
  }
  std::vector<double> wall;
  double cpuStart = cpuSeconds();
  auto start = std::chrono::steady_clock::now();
  while (wall.size() < 5 ||
         std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < 0.5) {
    auto t0 = std::chrono::steady_clock::now();
    run();
    wall.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  double cpu = (cpuSeconds() - cpuStart) / double(wall.size());
  std::nth_element(wall.begin(), wall.begin() + wall.size() / 2, wall.end());
  std::printf("%-28s wall %9.4f ms   cpu %9.4f ms\n", name.c_str(), wall[wall.size() / 2] * 1e3,
              cpu * 1e3);
}

std::vector<float> randomVector(int64_t n) {
  std::mt19937 gen(7);
  std::normal_distribution<float> dist(0.0f, 0.1f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float &x : v)
    x = dist(gen);
  return v;
}

void benchBatch(int64_t b) {
  std::string suffix = " b=" + std::to_string(b);
  {
    auto x = randomVector(b * 512), w = randomVector(512 * 512), bias = randomVector(512);
    std::vector<float> y(b * 512);
    report("dense 512->512 relu" + suffix, [&] {
      return fgc_dense(x.data(), w.data(), bias.data(), y.data(), b, 512, 512, FGC_ACT_RELU);
    });
  }
  {
    fgc_conv2d_params p{b, 32, 32, 32, 3, 3, 64, 1, 1, 1, 1, FGC_PADDING_SAME, FGC_ACT_RELU};
    auto x = randomVector(b * 32 * 32 * 32), k = randomVector(9 * 32 * 64), bias = randomVector(64);
    std::vector<float> y(b * 32 * 32 * 64), scratch(fgc_conv2d_scratch_size(&p));
    report("conv3x3 32x32x32->64" + suffix, [&] {
      return fgc_conv2d(&p, x.data(), k.data(), bias.data(), y.data(), scratch.data());
    });
  }
  {
    fgc_conv2d_params p{b, 16, 16, 64, 4, 4, 32, 2, 2, 1, 1, FGC_PADDING_SAME, FGC_ACT_RELU};
    auto x = randomVector(b * 16 * 16 * 64), k = randomVector(16 * 32 * 64), bias = randomVector(32);
    std::vector<float> y(b * 32 * 32 * 32), scratch(fgc_conv2d_transpose_scratch_size(&p));
    report("convT4x4/2 16x16x64->32" + suffix, [&] {
      return fgc_conv2d_transpose(&p, x.data(), k.data(), bias.data(), y.data(), scratch.data());
    });
  }
  {
    fgc_pool2d_params p{b, 32, 32, 64, 2, 2, 2, 2, FGC_PADDING_VALID};
    auto x = randomVector(b * 32 * 32 * 64);
    std::vector<float> y(b * 16 * 16 * 64);
    report("maxpool2x2 32x32x64" + suffix, [&] { return fgc_max_pool2d(&p, x.data(), y.data()); });
  }
  {
    fgc_lstm_params p{b, 50, 32, 128, FGC_ACT_TANH, FGC_ACT_SIGMOID, 0};
    auto x = randomVector(b * 50 * 32), w = randomVector(32 * 512), u = randomVector(128 * 512),
         bias = randomVector(512);
    std::vector<float> y(b * 128), scratch(fgc_lstm_scratch_size(&p));
    report("lstm T50 32->128" + suffix, [&] {
      return fgc_lstm(&p, x.data(), w.data(), u.data(), bias.data(), nullptr, nullptr, y.data(),
                      nullptr, nullptr, scratch.data());
    });
  }
  {
    int64_t n = b * 32 * 32 * 64;
    auto x = randomVector(n);
    std::vector<float> y(n);
    report("gelu 32x32x64" + suffix, [&] {
      return fgc_activation(FGC_ACT_GELU, x.data(), y.data(), n / 64, 64);
    });
  }
}

} // namespace

int main(int argc, char **argv) {
  if (argc > 1)
    fgc_set_num_threads(std::atoi(argv[1]));
  std::printf("fgc runtime, %d thread(s)\n", fgc_get_num_threads());
  for (int64_t batch : {1, 64})
    benchBatch(batch);
  return 0;
}
