// Error reporting (fgc_last_error) and the thread count (fgc_set_num_threads)
// for the runtime's C ABI, plus the output-size helpers every windowed kernel
// shares.
#include "common.h"

#include <Eigen/Core>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace fgc::runtime::detail {

namespace {
thread_local char LastError[512] = "";
std::atomic<int> ThreadCount{0}; // 0 = not set: use OpenMP's default.

int defaultThreads() { return std::max(1, omp_get_max_threads()); }

// Eigen sizes its GEMM blocks from the cache sizes the CPU reports, so the
// order of the sums (and so the last bits of every product) would depend on the
// machine. Pinning them makes every matrix product sum in the same order on
// every x86-64 machine. Set once, before main, by static
// initialisation of this file (always linked: every kernel reports errors here).
const bool CacheSizesPinned = [] {
  Eigen::setCpuCacheSizes(32 * 1024, 512 * 1024, 4 * 1024 * 1024);
  return true;
}();
} // namespace

int fail(int code, const char *format, ...) {
  va_list args;
  va_start(args, format);
  std::vsnprintf(LastError, sizeof(LastError), format, args);
  va_end(args);
  return code;
}

int numThreads() {
  int n = ThreadCount.load(std::memory_order_relaxed);
  return n > 0 ? n : defaultThreads();
}

namespace {
// What one fork/join of the OpenMP team costs, in nanoseconds. Measured on the benchmark
// machine (bench/README.md): about 30 us when idle workers sleep (OMP_WAIT_POLICY=passive:
// each is woken through the kernel). When they still spin (libgomp's default for a while
// after each region, or OMP_WAIT_POLICY=active) the fork and join take 4-8 us, but the next
// layer then reads the split output from the other core's cache: toy_resnet at batch 1 ran
// slower on two threads until its 28x28 convolution (36 us) stopped splitting, so 15 us.
// FGC_FORK_COST_US overrides it; 0 makes every loop that can split do so (the kernel tests
// use that to cover the splits on small shapes).
double readForkCostNs() {
  if (const char *text = std::getenv("FGC_FORK_COST_US")) {
    char *end = nullptr;
    const double us = std::strtod(text, &end);
    if (end != text && us >= 0 && std::isfinite(us))
      return us * 1000;
  }
  std::string policy;
  if (const char *text = std::getenv("OMP_WAIT_POLICY"))
    for (const char *c = text; *c; ++c)
      if (!std::isspace(static_cast<unsigned char>(*c)))
        policy += static_cast<char>(std::tolower(static_cast<unsigned char>(*c)));
  return policy == "passive" ? 30000 : 15000;
}
} // namespace

double forkCostNs() {
  static const double cost = readForkCostNs();
  return cost;
}

int threadsForNs(double ns) {
  if (omp_in_parallel())
    return 1;
  const int threads = numThreads();
  const double cost = forkCostNs();
  if (cost <= 0)
    return threads;
  // Each thread gets at least twice the fork's cost in work; with less, a fork costs more
  // than it saves.
  const double useful = std::floor(ns / (2 * cost));
  return useful <= 1 ? 1 : static_cast<int>(std::min<double>(useful, threads));
}

int threadsFor(int64_t work) { return threadsForNs(double(work) * NsPerOperation); }

int threadsForMacs(double macs) { return threadsForNs(macs * NsPerMultiplyAdd); }

} // namespace fgc::runtime::detail

using namespace fgc::runtime::detail;

extern "C" {

const char *fgc_last_error(void) { return LastError; }

void fgc_set_num_threads(int n) {
  ThreadCount.store(n > 0 ? n : 0, std::memory_order_relaxed);
}

int fgc_get_num_threads(void) { return numThreads(); }

int64_t fgc_conv_output_length(int64_t in, int64_t kernel, int64_t stride, int64_t dilation,
                               fgc_padding padding) {
  if (in < 1 || kernel < 1 || stride < 1 || dilation < 1)
    return -1;
  if (padding == FGC_PADDING_SAME)
    return (in + stride - 1) / stride;
  if (padding != FGC_PADDING_VALID)
    return -1;
  int64_t span = (kernel - 1) * dilation + 1;
  if (span > in)
    return 0;
  return (in - span) / stride + 1;
}

int64_t fgc_conv_pad_before(int64_t in, int64_t kernel, int64_t stride, int64_t dilation,
                            fgc_padding padding) {
  int64_t out = fgc_conv_output_length(in, kernel, stride, dilation, padding);
  if (out < 0)
    return -1;
  if (padding == FGC_PADDING_VALID)
    return 0;
  int64_t span = (kernel - 1) * dilation + 1;
  int64_t total = std::max<int64_t>((out - 1) * stride + span - in, 0);
  return total / 2;
}

int64_t fgc_conv_transpose_output_length(int64_t in, int64_t kernel, int64_t stride,
                                         int64_t dilation, fgc_padding padding) {
  if (in < 1 || kernel < 1 || stride < 1 || dilation < 1)
    return -1;
  int64_t span = (kernel - 1) * dilation + 1;
  if (padding == FGC_PADDING_SAME)
    return in * stride;
  if (padding != FGC_PADDING_VALID)
    return -1;
  return in * stride + std::max<int64_t>(span - stride, 0);
}

int fgc_copy(const float *x, float *y, int64_t count) {
  FGC_CHECK_PTR("fgc_copy", x);
  FGC_CHECK_PTR("fgc_copy", y);
  if (count < 0)
    return fail(FGC_ERR_INVALID_ARGUMENT, "fgc_copy: count must be >= 0, got %lld",
                static_cast<long long>(count));
  std::copy(x, x + count, y);
  return FGC_OK;
}

} // extern "C"
