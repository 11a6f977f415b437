// Tensor operations that custom layers' traced bodies lower to (compiler/ops/TensorOps.cpp):
// broadcasting binary arithmetic, axis slices and reductions, forward and backward.
// Memory-bound, written as plain loops over caller buffers; serial, so results do not depend
// on the thread count.
#include "common.h"
#include "fgc/runtime/grad.h"

#include <cmath>
#include <cstring>
#include <limits>

using namespace fgc::runtime::detail;

namespace {

bool validBinaryOp(int op) { return op >= FGC_BINARY_ADD && op <= FGC_BINARY_DIVIDE; }

// Checks the (outer, n, inner) view of an axis operation.
int checkAxisView(const char *name, int64_t outer, int64_t n, int64_t inner) {
  FGC_CHECK_POSITIVE(name, outer);
  FGC_CHECK_POSITIVE(name, n);
  FGC_CHECK_POSITIVE(name, inner);
  return FGC_OK;
}

} // namespace

extern "C" {

int fgc_binary(fgc_binary_op op, const float *a, int64_t a_count, const float *b, int64_t b_count,
               float *y, int64_t count) {
  constexpr const char *Name = "fgc_binary";
  if (!validBinaryOp(op))
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: unknown operation %d", Name, int(op));
  FGC_CHECK_PTR(Name, a);
  FGC_CHECK_PTR(Name, b);
  FGC_CHECK_PTR(Name, y);
  FGC_CHECK_POSITIVE(Name, a_count);
  FGC_CHECK_POSITIVE(Name, b_count);
  FGC_CHECK_POSITIVE(Name, count);
  if (count % a_count != 0 || count % b_count != 0)
    return fail(FGC_ERR_INVALID_ARGUMENT,
                "%s: operand sizes %lld and %lld must divide the output size %lld", Name,
                static_cast<long long>(a_count), static_cast<long long>(b_count),
                static_cast<long long>(count));
  for (int64_t i = 0; i < count; ++i) {
    float u = a[i % a_count], v = b[i % b_count];
    switch (op) {
    case FGC_BINARY_ADD: y[i] = u + v; break;
    case FGC_BINARY_SUBTRACT: y[i] = u - v; break;
    case FGC_BINARY_MULTIPLY: y[i] = u * v; break;
    default: y[i] = u / v; break;
    }
  }
  return FGC_OK;
}

int fgc_slice(const float *x, float *y, int64_t outer, int64_t n, int64_t inner, int64_t start,
              int64_t size) {
  constexpr const char *Name = "fgc_slice";
  FGC_CHECK_PTR(Name, x);
  FGC_CHECK_PTR(Name, y);
  if (int s = checkAxisView(Name, outer, n, inner); s != FGC_OK)
    return s;
  if (start < 0 || size < 1 || start + size > n)
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: [%lld, %lld) is not within an axis of %lld", Name,
                static_cast<long long>(start), static_cast<long long>(start + size),
                static_cast<long long>(n));
  for (int64_t o = 0; o < outer; ++o)
    std::memcpy(y + o * size * inner, x + (o * n + start) * inner,
                sizeof(float) * size_t(size * inner));
  return FGC_OK;
}

int fgc_reduce(fgc_reduce_op op, const float *x, float *y, int64_t outer, int64_t n,
               int64_t inner) {
  constexpr const char *Name = "fgc_reduce";
  if (op < FGC_REDUCE_SUM || op > FGC_REDUCE_MAX)
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: unknown operation %d", Name, int(op));
  FGC_CHECK_PTR(Name, x);
  FGC_CHECK_PTR(Name, y);
  if (int s = checkAxisView(Name, outer, n, inner); s != FGC_OK)
    return s;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = 0; k < inner; ++k) {
      const float *p = x + o * n * inner + k;
      float acc = op == FGC_REDUCE_MAX ? -std::numeric_limits<float>::infinity() : 0.0f;
      for (int64_t j = 0; j < n; ++j)
        acc = op == FGC_REDUCE_MAX ? std::max(acc, p[j * inner]) : acc + p[j * inner];
      y[o * inner + k] = op == FGC_REDUCE_MEAN ? acc / float(n) : acc;
    }
  return FGC_OK;
}

int fgc_binary_backward(fgc_binary_op op, const float *a, int64_t a_count, const float *b,
                        int64_t b_count, const float *dy, int64_t count, float *da, float *db,
                        const int *input_flags) {
  constexpr const char *Name = "fgc_binary_backward";
  if (!validBinaryOp(op))
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: unknown operation %d", Name, int(op));
  FGC_CHECK_PTR(Name, a);
  FGC_CHECK_PTR(Name, b);
  FGC_CHECK_PTR(Name, dy);
  FGC_CHECK_POSITIVE(Name, a_count);
  FGC_CHECK_POSITIVE(Name, b_count);
  FGC_CHECK_POSITIVE(Name, count);
  if (count % a_count != 0 || count % b_count != 0)
    return fail(FGC_ERR_INVALID_ARGUMENT,
                "%s: operand sizes %lld and %lld must divide the output size %lld", Name,
                static_cast<long long>(a_count), static_cast<long long>(b_count),
                static_cast<long long>(count));
  bool accA = input_flags && (input_flags[0] & FGC_GRAD_ACCUMULATE_INPUT);
  bool accB = input_flags && (input_flags[1] & FGC_GRAD_ACCUMULATE_INPUT);
  if (da && !accA)
    std::fill(da, da + a_count, 0.0f);
  if (db && !accB)
    std::fill(db, db + b_count, 0.0f);
  // Operand entries that broadcast over several outputs sum their gradients, in output order.
  for (int64_t i = 0; i < count; ++i) {
    float u = a[i % a_count], v = b[i % b_count], g = dy[i];
    float gu, gv;
    switch (op) {
    case FGC_BINARY_ADD: gu = g; gv = g; break;
    case FGC_BINARY_SUBTRACT: gu = g; gv = -g; break;
    case FGC_BINARY_MULTIPLY: gu = g * v; gv = g * u; break;
    default: gu = g / v; gv = -g * u / (v * v); break;
    }
    if (da)
      da[i % a_count] += gu;
    if (db)
      db[i % b_count] += gv;
  }
  return FGC_OK;
}

int fgc_slice_backward(const float *dy, float *dx, int64_t outer, int64_t n, int64_t inner,
                       int64_t start, int64_t size, int flags) {
  constexpr const char *Name = "fgc_slice_backward";
  FGC_CHECK_PTR(Name, dy);
  FGC_CHECK_PTR(Name, dx);
  if (int s = checkAxisView(Name, outer, n, inner); s != FGC_OK)
    return s;
  if (start < 0 || size < 1 || start + size > n)
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: [%lld, %lld) is not within an axis of %lld", Name,
                static_cast<long long>(start), static_cast<long long>(start + size),
                static_cast<long long>(n));
  if (!(flags & FGC_GRAD_ACCUMULATE_INPUT))
    std::fill(dx, dx + outer * n * inner, 0.0f);
  for (int64_t o = 0; o < outer; ++o) {
    float *d = dx + (o * n + start) * inner;
    const float *g = dy + o * size * inner;
    for (int64_t i = 0; i < size * inner; ++i)
      d[i] += g[i];
  }
  return FGC_OK;
}

int fgc_reduce_backward(fgc_reduce_op op, const float *x, const float *y, const float *dy,
                        float *dx, int64_t outer, int64_t n, int64_t inner, int flags) {
  constexpr const char *Name = "fgc_reduce_backward";
  if (op < FGC_REDUCE_SUM || op > FGC_REDUCE_MAX)
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: unknown operation %d", Name, int(op));
  FGC_CHECK_PTR(Name, dy);
  FGC_CHECK_PTR(Name, dx);
  if (op == FGC_REDUCE_MAX) {
    FGC_CHECK_PTR(Name, x);
    FGC_CHECK_PTR(Name, y);
  }
  if (int s = checkAxisView(Name, outer, n, inner); s != FGC_OK)
    return s;
  bool acc = flags & FGC_GRAD_ACCUMULATE_INPUT;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = 0; k < inner; ++k) {
      float g = dy[o * inner + k];
      float *d = dx + o * n * inner + k;
      // Max: the whole gradient goes to the first maximum, as TensorFlow's argmax picks it.
      int64_t first = -1;
      if (op == FGC_REDUCE_MAX)
        for (int64_t j = 0; j < n && first < 0; ++j)
          if (x[o * n * inner + j * inner + k] == y[o * inner + k])
            first = j;
      for (int64_t j = 0; j < n; ++j) {
        float v = op == FGC_REDUCE_SUM    ? g
                  : op == FGC_REDUCE_MEAN ? g / float(n)
                  : j == first            ? g
                                          : 0.0f;
        d[j * inner] = acc ? d[j * inner] + v : v;
      }
    }
  return FGC_OK;
}

} // extern "C"
