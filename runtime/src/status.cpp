// Error reporting (fgc_last_error) and the thread count (fgc_set_num_threads)
// for the runtime's C ABI, plus the output-size helpers every windowed kernel
// shares.
#include "common.h"

#include <Eigen/Core>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdio>

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

int threadsFor(int64_t work) {
  constexpr int64_t MinWorkPerThread = 16384;
  int64_t useful = work / MinWorkPerThread;
  if (useful <= 1 || omp_in_parallel())
    return 1;
  return static_cast<int>(std::min<int64_t>(useful, numThreads()));
}

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
