// Internal helpers shared by the runtime's kernel files: error reporting, the
// thread count, argument checks and the Eigen types kernels map caller buffers
// with. Never installed; only the runtime's .cpp files include it.
#ifndef FGC_RUNTIME_SRC_COMMON_H
#define FGC_RUNTIME_SRC_COMMON_H

#include "fgc/runtime/kernels.h"

#include <Eigen/Core>
#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace fgc::runtime::detail {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatrixMap = Eigen::Map<RowMatrix>;
using ConstMatrixMap = Eigen::Map<const RowMatrix>;
using ArrayMap = Eigen::Map<Eigen::ArrayXf>;
using ConstArrayMap = Eigen::Map<const Eigen::ArrayXf>;

// Records a printf-style message as the calling thread's last error and returns
// `code`, so a kernel can `return fail(FGC_ERR_..., "...", ...)`.
int fail(int code, const char *format, ...) __attribute__((format(printf, 2, 3)));

// The thread count kernels use for their own OpenMP loops.
int numThreads();

// Threads worth forking for a job: each thread must get at least twice what a
// fork/join of the OpenMP team costs (forkCostNs: ~30 us with OMP_WAIT_POLICY=passive,
// ~15 us otherwise, FGC_FORK_COST_US to override). 1 inside a caller's parallel region.
// Work is estimated in nanoseconds on one core, from counts at the rates below (one
// AVX-512 core of the benchmark machine; slower cores only fork a little later than ideal).
constexpr double NsPerOperation = 0.05;    // a cheap vectorised operation on one float
constexpr double NsPerMultiplyAdd = 0.01;  // register-blocked multiply-adds (~100 G/s)
double forkCostNs();
int threadsForNs(double ns);
// ... for `work` cheap operations (an add, max or copy of one float).
int threadsFor(int64_t work);
// ... for `macs` multiply-adds of a GEMM or convolution.
int threadsForMacs(double macs);

// Rows per unit of parallelRows' split. Eigen's GEMM computes an output row
// with a different micro-kernel (and so a different order of its sums) depending
// on the row's position in groups of up to 8 (AVX-512) or 4 rows; blocks that
// start at multiples of this keep every row's position, and so its bits,
// independent of the thread count.
constexpr int64_t RowGranule = 16;

// Splits [0, rows) into one contiguous block per thread, each starting at a
// multiple of RowGranule, and runs fn(first, last) on each block with a single
// fork/join; threads are capped by maxThreads (the caller's judgement of how many
// the work can use). Runs fn(0, rows) on the calling thread when one thread
// suffices or inside a parallel region.
template <typename Fn> void parallelRows(int64_t rows, int64_t maxThreads, Fn &&fn) {
  const int64_t granules = (rows + RowGranule - 1) / RowGranule;
  int64_t threads = std::min<int64_t>({numThreads(), granules, maxThreads});
  if (threads <= 1 || omp_in_parallel()) {
    fn(int64_t(0), rows);
    return;
  }
#pragma omp parallel num_threads(static_cast<int>(threads))
  {
    int64_t id = omp_get_thread_num(), count = omp_get_num_threads();
    fn(std::min(rows, RowGranule * (granules * id / count)),
       std::min(rows, RowGranule * (granules * (id + 1) / count)));
  }
}

// C (m, n) = A (m, k) B, or C += A B when accumulate; B is (k, n), or (n, k) read
// transposed when transposeB. All row-major. Splits rows across threads.
void gemm(const float *a, const float *b, float *c, int64_t m, int64_t k, int64_t n,
          bool transposeB = false, bool accumulate = false);

// C (m, n) = bias + A (m, k) B (bias broadcast to every row; null = none), on
// the calling thread's share of rows like gemm(). The bias initialises C, so
// the product accumulates onto it: no separate zeroing or bias pass.
void gemmBias(const float *a, const float *b, const float *bias, float *c, int64_t m, int64_t k,
              int64_t n);

// Threads worth using for a GEMM-shaped job of m output rows and m*k*n
// multiply-adds (at least 16 rows per thread, and threadsForMacs).
int64_t gemmThreads(int64_t m, int64_t k, int64_t n);

// Applies an activation in place to a (rows, cols) array; SOFTMAX normalises
// rows. The activation must already be validated.
void applyActivation(fgc_activation_kind act, float *data, int64_t rows, int64_t cols);

// Applies an elementwise activation (not SOFTMAX, which it leaves alone) to n
// contiguous floats on the calling thread only.
void applyElementwise(fgc_activation_kind act, float *data, int64_t n);

// True if `act` is one of the enum's values.
bool isValidActivation(int act);

// Adds a bias row to every row of (rows, cols) and applies the activation, the
// common epilogue of Dense and the convolutions. bias may be null.
void biasActivation(float *data, int64_t rows, int64_t cols, const float *bias,
                    fgc_activation_kind act);

// Validates a conv2d parameter struct (Conv2D, Conv2DTranspose and their gradients).
int checkConvParams(const char *name, const fgc_conv2d_params *p);
// Validates a pool2d parameter struct and that the window fits (pooling and its gradients).
int checkPoolParams(const char *name, const fgc_pool2d_params *p);

} // namespace fgc::runtime::detail

// Argument checks for the C entry points: each returns from the calling kernel
// with FGC_ERR_INVALID_ARGUMENT and a message naming the kernel.
#define FGC_CHECK_PTR(kernel, ptr)                                                              \
  do {                                                                                          \
    if (!(ptr))                                                                                 \
      return ::fgc::runtime::detail::fail(FGC_ERR_INVALID_ARGUMENT, "%s: %s is null", kernel,   \
                                          #ptr);                                                \
  } while (0)
#define FGC_CHECK_POSITIVE(kernel, value)                                                       \
  do {                                                                                          \
    if ((value) < 1)                                                                            \
      return ::fgc::runtime::detail::fail(FGC_ERR_INVALID_ARGUMENT, "%s: %s must be >= 1, got %lld", \
                                          kernel, #value, static_cast<long long>(value));       \
  } while (0)
#define FGC_CHECK_ACTIVATION(kernel, act)                                                       \
  do {                                                                                          \
    if (!::fgc::runtime::detail::isValidActivation(static_cast<int>(act)))                      \
      return ::fgc::runtime::detail::fail(FGC_ERR_INVALID_ARGUMENT, "%s: unknown activation %d", \
                                          kernel, static_cast<int>(act));                       \
  } while (0)

#endif // FGC_RUNTIME_SRC_COMMON_H
