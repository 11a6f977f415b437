// The matrix product every GEMM-based kernel uses. Eigen's own OpenMP GEMM is
// disabled (EIGEN_DONT_PARALLELIZE): its threads busy-wait on each other's
// packed panels, so one descheduled thread on a loaded machine stalls all of
// them. Instead the output rows are split into one contiguous block per thread,
// each computed by a single-threaded Eigen GEMM, with only the final join as
// synchronisation. Each output element is then summed in the same order
// whatever the thread count.
#include "common.h"

#include <omp.h>

#include <algorithm>

namespace fgc::runtime::detail {

namespace {

void gemmRows(const float *a, const float *b, float *c, int64_t rows, int64_t k, int64_t n,
              bool transposeB, bool accumulate) {
  ConstMatrixMap lhs(a, rows, k);
  MatrixMap out(c, rows, n);
  if (transposeB) {
    ConstMatrixMap rhs(b, n, k);
    if (accumulate)
      out.noalias() += lhs * rhs.transpose();
    else
      out.noalias() = lhs * rhs.transpose();
  } else {
    ConstMatrixMap rhs(b, k, n);
    if (accumulate)
      out.noalias() += lhs * rhs;
    else
      out.noalias() = lhs * rhs;
  }
}

} // namespace

void gemm(const float *a, const float *b, float *c, int64_t m, int64_t k, int64_t n,
          bool transposeB, bool accumulate) {
  // Each thread gets at least this many multiply-adds and output rows, so the
  // fork/join and the per-thread packing of B stay small next to the work.
  constexpr double MinWorkPerThread = 1 << 18;
  constexpr int64_t MinRowsPerThread = 16;
  double work = double(m) * double(k) * double(n);
  int64_t threads = std::min<int64_t>({numThreads(), m / MinRowsPerThread,
                                       static_cast<int64_t>(work / MinWorkPerThread)});
  if (threads <= 1 || omp_in_parallel()) {
    gemmRows(a, b, c, m, k, n, transposeB, accumulate);
    return;
  }
#pragma omp parallel num_threads(static_cast<int>(threads))
  {
    int64_t id = omp_get_thread_num(), count = omp_get_num_threads();
    int64_t first = m * id / count, last = m * (id + 1) / count;
    gemmRows(a + first * k, b, c + first * n, last - first, k, n, transposeB, accumulate);
  }
}

} // namespace fgc::runtime::detail
