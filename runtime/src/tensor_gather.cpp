// tf.gather for custom layers' traced bodies (compiler/ops/TensorIndexing.cpp), forward and
// backward: rows of params picked by int32 indices. Every index is checked before anything is
// written, so an index out of range is an FGC_ERR_OUT_OF_RANGE status naming it, never a read
// or write outside the buffers. Serial plain loops (memory-bound); the backward's sums run in
// index order, so results do not depend on the thread count.
#include "common.h"
#include "fgc/runtime/grad.h"

#include <cstring>

using namespace fgc::runtime::detail;

namespace {

// Checks the (batch, outer, n, inner) x (batch, count) view and every index.
int checkGather(const char *name, const int32_t *indices, int64_t batch, int64_t outer, int64_t n,
                int64_t inner, int64_t count) {
  FGC_CHECK_PTR(name, indices);
  FGC_CHECK_POSITIVE(name, batch);
  FGC_CHECK_POSITIVE(name, outer);
  FGC_CHECK_POSITIVE(name, n);
  FGC_CHECK_POSITIVE(name, inner);
  FGC_CHECK_POSITIVE(name, count);
  for (int64_t i = 0; i < batch * count; ++i)
    if (indices[i] < 0 || indices[i] >= n)
      return fail(FGC_ERR_OUT_OF_RANGE,
                  "%s: index %lld at position %lld is out of range [0, %lld)", name,
                  static_cast<long long>(indices[i]), static_cast<long long>(i),
                  static_cast<long long>(n));
  return FGC_OK;
}

} // namespace

extern "C" {

int fgc_gather_i32(const float *params, const int32_t *indices, float *output, int64_t batch,
                   int64_t outer, int64_t n, int64_t inner, int64_t count) {
  constexpr const char *Name = "fgc_gather_i32";
  FGC_CHECK_PTR(Name, params);
  FGC_CHECK_PTR(Name, output);
  if (int s = checkGather(Name, indices, batch, outer, n, inner, count); s != FGC_OK)
    return s;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t o = 0; o < outer; ++o) {
      const float *src = params + (b * outer + o) * n * inner;
      float *dst = output + (b * outer + o) * count * inner;
      const int32_t *idx = indices + b * count;
      for (int64_t j = 0; j < count; ++j)
        std::memcpy(dst + j * inner, src + int64_t(idx[j]) * inner, sizeof(float) * size_t(inner));
    }
  return FGC_OK;
}

int fgc_gather_backward_i32(const int32_t *indices, const float *dy, float *dparams,
                            int64_t batch, int64_t outer, int64_t n, int64_t inner, int64_t count,
                            int flags) {
  constexpr const char *Name = "fgc_gather_backward_i32";
  FGC_CHECK_PTR(Name, dy);
  FGC_CHECK_PTR(Name, dparams);
  if (int s = checkGather(Name, indices, batch, outer, n, inner, count); s != FGC_OK)
    return s;
  if (!(flags & FGC_GRAD_ACCUMULATE_INPUT))
    std::fill(dparams, dparams + batch * outer * n * inner, 0.0f);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t o = 0; o < outer; ++o) {
      float *dst = dparams + (b * outer + o) * n * inner;
      const float *src = dy + (b * outer + o) * count * inner;
      const int32_t *idx = indices + b * count;
      for (int64_t j = 0; j < count; ++j) {
        float *row = dst + int64_t(idx[j]) * inner;
        for (int64_t k = 0; k < inner; ++k)
          row[k] += src[j * inner + k];
      }
    }
  return FGC_OK;
}

} // extern "C"
