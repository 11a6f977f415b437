// The Embedding layer: a bounds-checked row gather from the table, for int32
// and int64 indices. All indices are validated before any output is written.
#include "common.h"

#include <cstring>

namespace {

using namespace fgc::runtime::detail;

template <typename Index>
int embedding(const char *name, const Index *indices, int64_t count, const float *table,
              int64_t inputDim, int64_t outputDim, float *output) {
  FGC_CHECK_PTR(name, table);
  FGC_CHECK_POSITIVE(name, inputDim);
  FGC_CHECK_POSITIVE(name, outputDim);
  if (count < 0)
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: count must be >= 0, got %lld", name,
                static_cast<long long>(count));
  if (count == 0)
    return FGC_OK;
  FGC_CHECK_PTR(name, indices);
  FGC_CHECK_PTR(name, output);
  for (int64_t i = 0; i < count; ++i) {
    int64_t index = static_cast<int64_t>(indices[i]);
    if (index < 0 || index >= inputDim)
      return fail(FGC_ERR_OUT_OF_RANGE,
                  "%s: index %lld at position %lld is out of range [0, %lld)", name,
                  static_cast<long long>(index), static_cast<long long>(i),
                  static_cast<long long>(inputDim));
  }
#pragma omp parallel for num_threads(threadsFor(count * outputDim)) schedule(static)
  for (int64_t i = 0; i < count; ++i)
    std::memcpy(output + i * outputDim, table + static_cast<int64_t>(indices[i]) * outputDim,
                sizeof(float) * outputDim);
  return FGC_OK;
}

} // namespace

extern "C" {

int fgc_embedding_i32(const int32_t *indices, int64_t count, const float *table,
                      int64_t input_dim, int64_t output_dim, float *output) {
  return embedding("fgc_embedding_i32", indices, count, table, input_dim, output_dim, output);
}

int fgc_embedding_i64(const int64_t *indices, int64_t count, const float *table,
                      int64_t input_dim, int64_t output_dim, float *output) {
  return embedding("fgc_embedding_i64", indices, count, table, input_dim, output_dim, output);
}

} // extern "C"
