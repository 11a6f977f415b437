// The matrix product every GEMM-based kernel uses. Eigen's own OpenMP GEMM is
// disabled (EIGEN_DONT_PARALLELIZE): its threads busy-wait on each other's
// packed panels, so one descheduled thread on a loaded machine stalls all of
// them. Instead the output rows are split into one contiguous block per thread,
// each computed by a single-threaded Eigen GEMM, with only the final join as
// synchronisation. Each output element is then summed in the same order
// whatever the thread count.
#include "common.h"

#include <cstring>

namespace fgc::runtime::detail {

namespace {

// Below this many rows each row is a matrix-vector product: a GEMM would
// first copy (pack) all of B, which at batch 1 costs more than the product.
constexpr int64_t GemvRows = 4;

void gemmRows(const float *a, const float *b, float *c, int64_t rows, int64_t k, int64_t n,
              bool transposeB, bool accumulate) {
  ConstMatrixMap lhs(a, rows, k);
  MatrixMap out(c, rows, n);
  if (rows < GemvRows) {
    for (int64_t r = 0; r < rows; ++r) {
      if (!accumulate)
        out.row(r).setZero();
      if (transposeB)
        out.row(r).noalias() += lhs.row(r) * ConstMatrixMap(b, n, k).transpose();
      else
        out.row(r).noalias() += lhs.row(r) * ConstMatrixMap(b, k, n);
    }
    return;
  }
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

int64_t gemmThreads(int64_t m, int64_t k, int64_t n) {
  constexpr int64_t MinRowsPerThread = 16;
  return std::min<int64_t>(m / MinRowsPerThread,
                           threadsForMacs(double(m) * double(k) * double(n)));
}

void gemm(const float *a, const float *b, float *c, int64_t m, int64_t k, int64_t n,
          bool transposeB, bool accumulate) {
  // Enough multiply-adds and rows per thread that the fork/join and each
  // thread's own packing of B stay small next to the work.
  parallelRows(m, gemmThreads(m, k, n), [&](int64_t first, int64_t last) {
    gemmRows(a + first * k, b, c + first * n, last - first, k, n, transposeB, accumulate);
  });
}

} // namespace fgc::runtime::detail

namespace fgc::runtime::detail {

void gemmBias(const float *a, const float *b, const float *bias, float *c, int64_t m, int64_t k,
              int64_t n) {
  if (!bias) {
    gemm(a, b, c, m, k, n);
    return;
  }
  for (int64_t r = 0; r < m; ++r)
    std::memcpy(c + r * n, bias, sizeof(float) * n);
  gemm(a, b, c, m, k, n, /*transposeB=*/false, /*accumulate=*/true);
}

} // namespace fgc::runtime::detail
