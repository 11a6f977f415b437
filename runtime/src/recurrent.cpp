// The LSTM layer's forward pass in Keras layout. The input projection x W + b
// of every time step is one GEMM into scratch; each step then adds h U (a GEMV
// at batch 1) and applies the gates in place.
#include "common.h"

#include <algorithm>
#include <cstring>

namespace {

using namespace fgc::runtime::detail;

using StridedConstMap = Eigen::Map<const RowMatrix, 0, Eigen::OuterStride<>>;

int checkLstm(const char *name, const fgc_lstm_params *p) {
  FGC_CHECK_PTR(name, p);
  FGC_CHECK_POSITIVE(name, p->batch);
  FGC_CHECK_POSITIVE(name, p->timesteps);
  FGC_CHECK_POSITIVE(name, p->input_dim);
  FGC_CHECK_POSITIVE(name, p->units);
  FGC_CHECK_ACTIVATION(name, p->activation);
  FGC_CHECK_ACTIVATION(name, p->recurrent_activation);
  if (p->activation == FGC_ACT_SOFTMAX || p->recurrent_activation == FGC_ACT_SOFTMAX)
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: softmax is not supported inside an LSTM cell", name);
  return FGC_OK;
}

// One step's cell update for batch rows [first, last), given their gate
// pre-activations (batch, 4 units) laid out i, f, c, o. Updates c and h in place.
void lstmCell(const fgc_lstm_params &p, float *gates, float *h, float *c, int64_t first,
              int64_t last) {
  const int64_t u = p.units;
  for (int64_t b = first; b < last; ++b) {
    float *z = gates + b * 4 * u;
    applyElementwise(p.recurrent_activation, z, 2 * u);
    applyElementwise(p.activation, z + 2 * u, u);
    applyElementwise(p.recurrent_activation, z + 3 * u, u);
    ArrayMap i(z, u), f(z + u, u), candidate(z + 2 * u, u), o(z + 3 * u, u);
    ArrayMap cell(c + b * u, u), hidden(h + b * u, u);
    cell = f * cell + i * candidate;
    candidate = cell;
    applyElementwise(p.activation, z + 2 * u, u);
    hidden = o * candidate;
  }
}

} // namespace

extern "C" {

size_t fgc_lstm_scratch_size(const fgc_lstm_params *p) {
  if (checkLstm("fgc_lstm_scratch_size", p) != FGC_OK)
    return 0;
  return static_cast<size_t>(p->batch * (p->timesteps + 2) * 4 * p->units);
}

int fgc_lstm(const fgc_lstm_params *p, const float *input, const float *kernel,
             const float *recurrent_kernel, const float *bias, const float *h0, const float *c0,
             float *output, float *h_out, float *c_out, float *scratch) {
  constexpr const char *Name = "fgc_lstm";
  if (int status = checkLstm(Name, p))
    return status;
  FGC_CHECK_PTR(Name, input);
  FGC_CHECK_PTR(Name, kernel);
  FGC_CHECK_PTR(Name, recurrent_kernel);
  FGC_CHECK_PTR(Name, output);
  FGC_CHECK_PTR(Name, scratch);
  const int64_t batch = p->batch, steps = p->timesteps, u = p->units, g = 4 * u;
  float *projected = scratch;                 // (batch * steps, 4u), rows b * steps + t
  float *gates = projected + batch * steps * g; // (batch, 4u)
  float *h = gates + batch * g;                 // (batch, u)
  float *c = h + batch * u;                     // (batch, u)

  gemm(input, kernel, projected, batch * steps, p->input_dim, g);
  biasActivation(projected, batch * steps, g, bias, FGC_ACT_LINEAR);

  if (h0)
    std::memcpy(h, h0, sizeof(float) * batch * u);
  else
    std::fill(h, h + batch * u, 0.0f);
  if (c0)
    std::memcpy(c, c0, sizeof(float) * batch * u);
  else
    std::fill(c, c + batch * u, 0.0f);

  // Batch rows are independent through time, so each thread runs every step
  // for its own block of rows: one fork/join per call, none per step. Blocks
  // keep >= 16 rows like gemm()'s, so h U stays a GEMM (never a GEMV) and
  // sums in the same order whatever the thread count.
  parallelRows(batch, gemmThreads(batch, u, g * steps), [&](int64_t first, int64_t last) {
    const int64_t rows = last - first;
    MatrixMap gateMatrix(gates + first * g, rows, g);
    for (int64_t t = 0; t < steps; ++t) {
      gateMatrix = StridedConstMap(projected + (first * steps + t) * g, rows, g,
                                   Eigen::OuterStride<>(steps * g));
      gemm(h + first * u, recurrent_kernel, gates + first * g, rows, u, g,
           /*transposeB=*/false, /*accumulate=*/true);
      lstmCell(*p, gates, h, c, first, last);
      if (p->return_sequences)
        for (int64_t b = first; b < last; ++b)
          std::memcpy(output + (b * steps + t) * u, h + b * u, sizeof(float) * u);
    }
  });
  if (!p->return_sequences)
    std::memcpy(output, h, sizeof(float) * batch * u);
  if (h_out)
    std::memcpy(h_out, h, sizeof(float) * batch * u);
  if (c_out)
    std::memcpy(c_out, c, sizeof(float) * batch * u);
  return FGC_OK;
}

} // extern "C"
