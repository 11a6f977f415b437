// Training kernels of the LSTM layer (Keras layout, gates i, f, c, o): a
// forward pass that keeps every step's activated gates, cell and hidden states
// in a caller workspace, and backpropagation through time over it.
//
// Workspace layout, all step-major so one step's rows are contiguous GEMM
// operands: gates (timesteps, batch, 4 units), cells (timesteps, batch,
// units), hidden (timesteps, batch, units), then a (batch, input_dim) staging
// area for one step's inputs. Batch rows are independent through time, so
// each thread owns a block of rows for every step (one fork/join per call);
// the weight gradients are then whole-sequence GEMMs over dz stored in input
// row order (batch, timesteps, 4 units).
#include "grad_common.h"

#include <algorithm>
#include <cstring>

namespace fgc::runtime::detail {

namespace {

int checkLstm(const char *name, const fgc_lstm_params *p) {
  FGC_CHECK_PTR(name, p);
  FGC_CHECK_POSITIVE(name, p->batch);
  FGC_CHECK_POSITIVE(name, p->timesteps);
  FGC_CHECK_POSITIVE(name, p->input_dim);
  FGC_CHECK_POSITIVE(name, p->units);
  FGC_CHECK_ACTIVATION(name, p->activation);
  FGC_CHECK_ACTIVATION(name, p->recurrent_activation);
  if (!derivativeFromOutput(p->activation) || !derivativeFromOutput(p->recurrent_activation))
    return fail(FGC_ERR_INVALID_ARGUMENT,
                "%s: training supports LSTM activations linear, relu, sigmoid, tanh, "
                "hard_sigmoid, elu and selu, got %d and %d",
                name, static_cast<int>(p->activation),
                static_cast<int>(p->recurrent_activation));
  return FGC_OK;
}

struct Workspace {
  float *gates, *cells, *hidden, *staging;
  Workspace(const fgc_lstm_params &p, float *base) {
    const int64_t rows = p.timesteps * p.batch;
    gates = base;
    cells = gates + rows * 4 * p.units;
    hidden = cells + rows * p.units;
    staging = hidden + rows * p.units;
  }
};

} // namespace

} // namespace fgc::runtime::detail

using namespace fgc::runtime::detail;

extern "C" {

size_t fgc_lstm_workspace_size(const fgc_lstm_params *p) {
  if (checkLstm("fgc_lstm_workspace_size", p) != FGC_OK)
    return 0;
  return static_cast<size_t>(p->timesteps * p->batch * 6 * p->units + p->batch * p->input_dim);
}

int fgc_lstm_forward_train(const fgc_lstm_params *p, const float *input, const float *kernel,
                           const float *recurrent_kernel, const float *bias, const float *h0,
                           const float *c0, float *output, float *h_out, float *c_out,
                           float *workspace) {
  constexpr const char *Name = "fgc_lstm_forward_train";
  if (int status = checkLstm(Name, p))
    return status;
  FGC_CHECK_PTR(Name, input);
  FGC_CHECK_PTR(Name, kernel);
  FGC_CHECK_PTR(Name, recurrent_kernel);
  FGC_CHECK_PTR(Name, output);
  FGC_CHECK_PTR(Name, workspace);
  const int64_t batch = p->batch, steps = p->timesteps, in = p->input_dim, u = p->units;
  const int64_t g = 4 * u;
  Workspace ws(*p, workspace);
  parallelRows(batch, gemmThreads(batch, u, g * steps), [&](int64_t first, int64_t last) {
    const int64_t rows = last - first;
    for (int64_t t = 0; t < steps; ++t) {
      for (int64_t b = first; b < last; ++b)
        std::memcpy(ws.staging + b * in, input + (b * steps + t) * in, sizeof(float) * in);
      float *gates = ws.gates + (t * batch + first) * g;
      gemm(ws.staging + first * in, kernel, gates, rows, in, g);
      biasActivation(gates, rows, g, bias, FGC_ACT_LINEAR);
      const float *hPrev = t > 0 ? ws.hidden + ((t - 1) * batch + first) * u
                                 : (h0 ? h0 + first * u : nullptr);
      if (hPrev)
        gemm(hPrev, recurrent_kernel, gates, rows, u, g, /*transposeB=*/false,
             /*accumulate=*/true);
      for (int64_t b = first; b < last; ++b) {
        float *z = ws.gates + (t * batch + b) * g;
        applyElementwise(p->recurrent_activation, z, 2 * u);
        applyElementwise(p->activation, z + 2 * u, u);
        applyElementwise(p->recurrent_activation, z + 3 * u, u);
        const float *cPrev = t > 0 ? ws.cells + ((t - 1) * batch + b) * u
                                   : (c0 ? c0 + b * u : nullptr);
        float *c = ws.cells + (t * batch + b) * u;
        float *h = ws.hidden + (t * batch + b) * u;
        for (int64_t j = 0; j < u; ++j)
          c[j] = (cPrev ? z[u + j] * cPrev[j] : 0.0f) + z[j] * z[2 * u + j];
        std::memcpy(h, c, sizeof(float) * u);
        applyElementwise(p->activation, h, u);
        for (int64_t j = 0; j < u; ++j)
          h[j] *= z[3 * u + j];
        if (p->return_sequences)
          std::memcpy(output + (b * steps + t) * u, h, sizeof(float) * u);
      }
    }
  });
  const float *hLast = ws.hidden + (steps - 1) * batch * u;
  const float *cLast = ws.cells + (steps - 1) * batch * u;
  if (!p->return_sequences)
    std::memcpy(output, hLast, sizeof(float) * batch * u);
  if (h_out)
    std::memcpy(h_out, hLast, sizeof(float) * batch * u);
  if (c_out)
    std::memcpy(c_out, cLast, sizeof(float) * batch * u);
  return FGC_OK;
}

size_t fgc_lstm_backward_scratch_size(const fgc_lstm_params *p) {
  if (checkLstm("fgc_lstm_backward_scratch_size", p) != FGC_OK)
    return 0;
  const int64_t rows = p->batch * p->timesteps, u = p->units;
  return static_cast<size_t>(rows * 4 * u + p->batch * (4 * u + 3 * u) +
                             std::max(p->input_dim, u) * rows);
}

int fgc_lstm_backward(const fgc_lstm_params *p, const float *input, const float *kernel,
                      const float *recurrent_kernel, const float *h0, const float *c0,
                      const float *workspace, const float *doutput, const float *dh_out,
                      const float *dc_out, float *dinput, float *dkernel,
                      float *drecurrent_kernel, float *dbias, float *dh0, float *dc0,
                      float *scratch, int flags) {
  constexpr const char *Name = "fgc_lstm_backward";
  if (int status = checkLstm(Name, p))
    return status;
  FGC_CHECK_PTR(Name, recurrent_kernel);
  FGC_CHECK_PTR(Name, workspace);
  FGC_CHECK_PTR(Name, scratch);
  if (dinput)
    FGC_CHECK_PTR(Name, kernel);
  if (dkernel)
    FGC_CHECK_PTR(Name, input);
  const int64_t batch = p->batch, steps = p->timesteps, in = p->input_dim, u = p->units;
  const int64_t g = 4 * u, rowsAll = batch * steps;
  const fgc_activation_kind act = p->activation, ra = p->recurrent_activation;
  Workspace ws(*p, const_cast<float *>(workspace));
  float *dzAll = scratch;              // (batch, steps, 4u), input row order
  float *dzStep = dzAll + rowsAll * g; // (batch, 4u)
  float *dh = dzStep + batch * g;      // (batch, u): dLoss/dh_t
  float *dc = dh + batch * u;          // (batch, u): dLoss/dc_t
  float *actC = dc + batch * u;        // (batch, u): act(c_t)
  float *trans = actC + batch * u;     // (max(in, u), batch * steps)

  parallelRows(batch, gemmThreads(batch, g, u * steps), [&](int64_t first, int64_t last) {
    const int64_t rows = last - first;
    for (int64_t b = first; b < last; ++b)
      for (int64_t j = 0; j < u; ++j) {
        float v = dh_out ? dh_out[b * u + j] : 0.0f;
        if (!p->return_sequences && doutput)
          v += doutput[b * u + j];
        dh[b * u + j] = v;
        dc[b * u + j] = dc_out ? dc_out[b * u + j] : 0.0f;
      }
    for (int64_t t = steps - 1; t >= 0; --t) {
      for (int64_t b = first; b < last; ++b) {
        float *dhRow = dh + b * u, *dcRow = dc + b * u, *a = actC + b * u;
        if (p->return_sequences && doutput)
          for (int64_t j = 0; j < u; ++j)
            dhRow[j] += doutput[(b * steps + t) * u + j];
        const float *gate = ws.gates + (t * batch + b) * g;
        const float *c = ws.cells + (t * batch + b) * u;
        const float *cPrev = t > 0 ? ws.cells + ((t - 1) * batch + b) * u
                                   : (c0 ? c0 + b * u : nullptr);
        std::memcpy(a, c, sizeof(float) * u);
        applyElementwise(act, a, u);
        float *dz = dzStep + b * g;
        for (int64_t j = 0; j < u; ++j) {
          const float i = gate[j], f = gate[u + j], cand = gate[2 * u + j], o = gate[3 * u + j];
          const float dhj = dhRow[j];
          const float dcj = dcRow[j] + dhj * o * outputDerivative(act, a[j]);
          dz[j] = dcj * cand * outputDerivative(ra, i);
          dz[u + j] = cPrev ? dcj * cPrev[j] * outputDerivative(ra, f) : 0.0f;
          dz[2 * u + j] = dcj * i * outputDerivative(act, cand);
          dz[3 * u + j] = dhj * a[j] * outputDerivative(ra, o);
          dcRow[j] = dcj * f;
        }
        std::memcpy(dzAll + (b * steps + t) * g, dz, sizeof(float) * g);
      }
      // dh_{t-1} = dz_t U^T (U is (units, 4 units)).
      gemm(dzStep + first * g, recurrent_kernel, dh + first * u, rows, g, u,
           /*transposeB=*/true);
    }
  });

  const bool accIn = accumulateInput(flags), accParams = accumulateParams(flags);
  for (int64_t k = 0; k < batch * u; ++k) {
    if (dh0)
      dh0[k] = accIn ? dh0[k] + dh[k] : dh[k];
    if (dc0)
      dc0[k] = accIn ? dc0[k] + dc[k] : dc[k];
  }
  if (dbias)
    columnSums(dzAll, rowsAll, g, dbias, accParams);
  if (dinput)
    gemm(dzAll, kernel, dinput, rowsAll, g, in, /*transposeB=*/true, accIn);
  if (dkernel) {
    transpose(input, rowsAll, in, trans);
    gemm(trans, dzAll, dkernel, in, rowsAll, g, false, accParams);
  }
  if (drecurrent_kernel) {
    // trans (units, batch * steps): column b * steps + t holds h_{t-1}.
#pragma omp parallel for num_threads(threadsFor(rowsAll * u)) schedule(static)
    for (int64_t j = 0; j < u; ++j)
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t t = 0; t < steps; ++t) {
          const float *hPrev = t > 0 ? ws.hidden + ((t - 1) * batch + b) * u
                                     : (h0 ? h0 + b * u : nullptr);
          trans[j * rowsAll + b * steps + t] = hPrev ? hPrev[j] : 0.0f;
        }
    gemm(trans, dzAll, drecurrent_kernel, u, rowsAll, g, false, accParams);
  }
  return FGC_OK;
}

} // extern "C"
