// The GRU layer in Keras layout (gate blocks z, r, h; reset_after or not):
// inference forward, the training forward that keeps every step's gates, and
// backprop through time. Each step is a few small matrix products on the whole
// batch (Eigen, on the calling thread) plus elementwise gate arithmetic.
#include "grad_common.h"

#include <cstring>

namespace {

using namespace fgc::runtime::detail;

using StridedConstMap = Eigen::Map<const RowMatrix, 0, Eigen::OuterStride<>>;
using StridedMap = Eigen::Map<RowMatrix, 0, Eigen::OuterStride<>>;
using Array2 = Eigen::Array<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ArrayMap2 = Eigen::Map<Array2>;
using ConstArrayMap2 = Eigen::Map<const Array2>;

int checkGru(const char *name, const fgc_gru_params *p) {
  FGC_CHECK_PTR(name, p);
  FGC_CHECK_POSITIVE(name, p->batch);
  FGC_CHECK_POSITIVE(name, p->timesteps);
  FGC_CHECK_POSITIVE(name, p->input_dim);
  FGC_CHECK_POSITIVE(name, p->units);
  FGC_CHECK_ACTIVATION(name, p->activation);
  FGC_CHECK_ACTIVATION(name, p->recurrent_activation);
  if (p->activation == FGC_ACT_SOFTMAX || p->recurrent_activation == FGC_ACT_SOFTMAX)
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: softmax is not supported inside a GRU cell", name);
  return FGC_OK;
}

// Per-step buffers of the forward, each (batch, units): the gates z and r, the
// candidate hh and q (h U_h + br_h when reset_after, else r * h).
struct StepBuffers {
  float *z, *r, *hh, *q;
};

// One forward step: updates h (batch, units) in place. xp and rec are (batch,
// 3 units) temporaries.
void gruStep(const fgc_gru_params &p, const float *input, int64_t t, const float *kernel,
             const float *recurrent_kernel, const float *bias, float *h, float *xp, float *rec,
             const StepBuffers &s) {
  const int64_t B = p.batch, T = p.timesteps, in = p.input_dim, u = p.units, g = 3 * u;
  StridedConstMap x(input + t * in, B, in, Eigen::OuterStride<>(T * in));
  ConstMatrixMap W(kernel, in, g), U(recurrent_kernel, u, g);
  MatrixMap XP(xp, B, g), H(h, B, u);
  XP.noalias() = x * W;
  if (bias)
    XP.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(bias, g);
  ArrayMap2 z(s.z, B, u), r(s.r, B, u), hh(s.hh, B, u), q(s.q, B, u);
  if (p.reset_after) {
    MatrixMap R(rec, B, g);
    R.noalias() = H * U;
    if (bias)
      R.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(bias + g, g);
    z = XP.leftCols(u).array() + R.leftCols(u).array();
    r = XP.middleCols(u, u).array() + R.middleCols(u, u).array();
    applyElementwise(p.recurrent_activation, s.z, B * u);
    applyElementwise(p.recurrent_activation, s.r, B * u);
    q = R.rightCols(u).array();
    hh = XP.rightCols(u).array() + r * q;
  } else {
    MatrixMap R(rec, B, 2 * u);
    R.noalias() = H * U.leftCols(2 * u);
    z = XP.leftCols(u).array() + R.leftCols(u).array();
    r = XP.middleCols(u, u).array() + R.rightCols(u).array();
    applyElementwise(p.recurrent_activation, s.z, B * u);
    applyElementwise(p.recurrent_activation, s.r, B * u);
    q = r * H.array();
    MatrixMap candidate(s.hh, B, u);
    candidate.noalias() = Eigen::Map<const RowMatrix>(s.q, B, u) * U.rightCols(u);
    hh += XP.rightCols(u).array();
  }
  applyElementwise(p.activation, s.hh, B * u);
  H.array() = z * H.array() + (1.0f - z) * hh;
}

// The forward shared by inference and training. `steps(t)` gives step t's
// buffers; `afterStep(t, h)` sees the new state.
template <typename Steps, typename After>
int gruForward(const char *name, const fgc_gru_params *p, const float *input, const float *kernel,
               const float *recurrent_kernel, const float *bias, const float *h0, float *output,
               float *h_out, float *h, float *xp, float *rec, Steps steps, After afterStep) {
  if (int status = checkGru(name, p))
    return status;
  FGC_CHECK_PTR(name, input);
  FGC_CHECK_PTR(name, kernel);
  FGC_CHECK_PTR(name, recurrent_kernel);
  FGC_CHECK_PTR(name, output);
  const int64_t B = p->batch, T = p->timesteps, u = p->units;
  if (h0)
    std::memcpy(h, h0, sizeof(float) * B * u);
  else
    std::fill(h, h + B * u, 0.0f);
  for (int64_t t = 0; t < T; ++t) {
    gruStep(*p, input, t, kernel, recurrent_kernel, bias, h, xp, rec, steps(t));
    afterStep(t, h);
    if (p->return_sequences)
      for (int64_t b = 0; b < B; ++b)
        std::memcpy(output + (b * T + t) * u, h + b * u, sizeof(float) * u);
  }
  if (!p->return_sequences)
    std::memcpy(output, h, sizeof(float) * B * u);
  if (h_out)
    std::memcpy(h_out, h, sizeof(float) * B * u);
  return FGC_OK;
}

// Training workspace layout (floats): per step t the gates z, r, hh, q
// ((batch, units) each) at t * 4 Bu; then the states h_{-1} = h0, h_0, ...,
// h_{T-1} ((T + 1) Bu); then the forward's temporaries (7 Bu).
struct Workspace {
  float *steps, *states, *temp;
  Workspace(const fgc_gru_params &p, float *w) {
    const int64_t Bu = p.batch * p.units;
    steps = w;
    states = w + p.timesteps * 4 * Bu;
    temp = states + (p.timesteps + 1) * Bu;
  }
  StepBuffers step(const fgc_gru_params &p, int64_t t) const {
    const int64_t Bu = p.batch * p.units;
    float *base = steps + t * 4 * Bu;
    return {base, base + Bu, base + 2 * Bu, base + 3 * Bu};
  }
};

} // namespace

extern "C" {

size_t fgc_gru_scratch_size(const fgc_gru_params *p) {
  if (checkGru("fgc_gru_scratch_size", p) != FGC_OK)
    return 0;
  return static_cast<size_t>(11 * p->batch * p->units);
}

int fgc_gru(const fgc_gru_params *p, const float *input, const float *kernel,
            const float *recurrent_kernel, const float *bias, const float *h0, float *output,
            float *h_out, float *scratch) {
  constexpr const char *Name = "fgc_gru";
  FGC_CHECK_PTR(Name, scratch);
  if (int status = checkGru(Name, p))
    return status;
  const int64_t Bu = p->batch * p->units;
  float *xp = scratch, *rec = xp + 3 * Bu, *h = rec + 3 * Bu, *gates = h + Bu;
  const StepBuffers step{gates, gates + Bu, gates + 2 * Bu, gates + 3 * Bu};
  return gruForward(Name, p, input, kernel, recurrent_kernel, bias, h0, output, h_out, h, xp, rec,
                    [&](int64_t) { return step; }, [](int64_t, const float *) {});
}

size_t fgc_gru_workspace_size(const fgc_gru_params *p) {
  if (checkGru("fgc_gru_workspace_size", p) != FGC_OK)
    return 0;
  const int64_t Bu = p->batch * p->units;
  return static_cast<size_t>(p->timesteps * 4 * Bu + (p->timesteps + 1) * Bu + 7 * Bu);
}

int fgc_gru_forward_train(const fgc_gru_params *p, const float *input, const float *kernel,
                          const float *recurrent_kernel, const float *bias, const float *h0,
                          float *output, float *h_out, float *workspace) {
  constexpr const char *Name = "fgc_gru_forward_train";
  FGC_CHECK_PTR(Name, workspace);
  if (int status = checkGru(Name, p))
    return status;
  if (!derivativeFromOutput(p->activation) || !derivativeFromOutput(p->recurrent_activation))
    return fail(FGC_ERR_INVALID_ARGUMENT,
                "%s: training supports activations whose derivative follows from their output "
                "(linear, relu, sigmoid, tanh, hard_sigmoid, elu, selu)", Name);
  const int64_t Bu = p->batch * p->units;
  Workspace ws(*p, workspace);
  float *xp = ws.temp, *rec = xp + 3 * Bu, *h = rec + 3 * Bu;
  if (h0)
    std::memcpy(ws.states, h0, sizeof(float) * Bu);
  else
    std::fill(ws.states, ws.states + Bu, 0.0f);
  return gruForward(
      Name, p, input, kernel, recurrent_kernel, bias, h0, output, h_out, h, xp, rec,
      [&](int64_t t) { return ws.step(*p, t); },
      [&](int64_t t, const float *state) {
        std::memcpy(ws.states + (t + 1) * Bu, state, sizeof(float) * Bu);
      });
}

size_t fgc_gru_backward_scratch_size(const fgc_gru_params *p) {
  if (checkGru("fgc_gru_backward_scratch_size", p) != FGC_OK)
    return 0;
  const int64_t Bu = p->batch * p->units;
  return static_cast<size_t>(p->timesteps * 3 * Bu + 9 * Bu + 3 * p->units * (p->units + 1));
}

int fgc_gru_backward(const fgc_gru_params *p, const float *input, const float *kernel,
                     const float *recurrent_kernel, const float *h0, const float *workspace,
                     const float *doutput, const float *dh_out, float *dinput, float *dkernel,
                     float *drecurrent_kernel, float *dbias, float *dh0, float *scratch,
                     int flags) {
  constexpr const char *Name = "fgc_gru_backward";
  (void)h0; // h0 is in the workspace (its first state)
  if (int status = checkGru(Name, p))
    return status;
  FGC_CHECK_PTR(Name, workspace);
  FGC_CHECK_PTR(Name, scratch);
  if (dinput)
    FGC_CHECK_PTR(Name, kernel);
  if (dkernel)
    FGC_CHECK_PTR(Name, input);
  FGC_CHECK_PTR(Name, recurrent_kernel);
  const int64_t B = p->batch, T = p->timesteps, in = p->input_dim, u = p->units, g = 3 * u;
  const int64_t Bu = B * u;
  const Workspace ws(*p, const_cast<float *>(workspace));
  ConstMatrixMap U(recurrent_kernel, u, g);

  // Scratch: dXP for every step (rows b * T + t, like the input), dRP, then
  // dH, dHp and the per-step temporaries.
  float *dxpAll = scratch, *drp = dxpAll + T * g * B, *dh = drp + 3 * Bu, *dhp = dh + Bu,
        *tmp = dhp + Bu;
  // The recurrent weight and bias gradients accumulate over the steps in
  // scratch (dU (u, 3u), dbr (3u)) and reach the caller's outputs at the end.
  MatrixMap dU(tmp + 4 * Bu, u, g);
  Eigen::Map<Eigen::RowVectorXf> dbr(tmp + 4 * Bu + u * g, g);
  dU.setZero();
  dbr.setZero();

  if (dh_out)
    std::memcpy(dh, dh_out, sizeof(float) * Bu);
  else
    std::fill(dh, dh + Bu, 0.0f);
  for (int64_t t = T - 1; t >= 0; --t) {
    if (doutput) {
      if (p->return_sequences) {
        for (int64_t b = 0; b < B; ++b)
          ArrayMap(dh + b * u, u) += ConstArrayMap(doutput + (b * T + t) * u, u);
      } else if (t == T - 1) {
        ArrayMap(dh, Bu) += ConstArrayMap(doutput, Bu);
      }
    }
    const StepBuffers s = ws.step(*p, t);
    ConstArrayMap2 z(s.z, B, u), r(s.r, B, u), hh(s.hh, B, u), q(s.q, B, u);
    ConstArrayMap2 hp(ws.states + t * Bu, B, u);
    ArrayMap2 dH(dh, B, u), dHp(dhp, B, u);
    // h = z hp + (1 - z) hh
    ArrayMap2 dzp(tmp, B, u), drpre(tmp + Bu, B, u), dah(tmp + 2 * Bu, B, u);
    dzp = dH * (hp - hh);
    dah = dH * (1.0f - z);
    dHp = dH * z;
    for (int64_t i = 0; i < Bu; ++i) {
      tmp[i] *= outputDerivative(p->recurrent_activation, s.z[i]);
      tmp[2 * Bu + i] *= outputDerivative(p->activation, s.hh[i]);
    }
    if (p->reset_after) {
      // a_h = xh + r * q, q = h U_h + br_h
      drpre = dah * q;
      for (int64_t i = 0; i < Bu; ++i)
        tmp[Bu + i] *= outputDerivative(p->recurrent_activation, s.r[i]);
      ArrayMap2 dR(drp, B, g);
      dR.leftCols(u) = dzp;
      dR.middleCols(u, u) = drpre;
      dR.rightCols(u) = dah * r;
      ConstMatrixMap dRm(drp, B, g);
      MatrixMap(dhp, B, u).noalias() += dRm * U.transpose();
      dU.noalias() += ConstMatrixMap(ws.states + t * Bu, B, u).transpose() * dRm;
      dbr += dRm.colwise().sum();
    } else {
      // a_h = xh + q U_h, q = r * hp
      MatrixMap dq(tmp + 3 * Bu, B, u);
      dq.noalias() = ConstMatrixMap(tmp + 2 * Bu, B, u) * U.rightCols(u).transpose();
      drpre = dq.array() * hp;
      dHp += dq.array() * r;
      for (int64_t i = 0; i < Bu; ++i)
        tmp[Bu + i] *= outputDerivative(p->recurrent_activation, s.r[i]);
      MatrixMap dzr(drp, B, 2 * u);
      dzr.leftCols(u) = ConstMatrixMap(tmp, B, u);
      dzr.rightCols(u) = ConstMatrixMap(tmp + Bu, B, u);
      MatrixMap(dhp, B, u).noalias() += dzr * U.leftCols(2 * u).transpose();
      ConstMatrixMap hpm(ws.states + t * Bu, B, u);
      dU.leftCols(2 * u).noalias() += hpm.transpose() * dzr;
      dU.rightCols(u).noalias() +=
          ConstMatrixMap(s.q, B, u).transpose() * ConstMatrixMap(tmp + 2 * Bu, B, u);
    }
    // dXP_t = [dz, dr, dah] into rows b * T + t.
    StridedMap dXP(dxpAll + t * g, B, g, Eigen::OuterStride<>(T * g));
    dXP.leftCols(u) = ConstMatrixMap(tmp, B, u);
    dXP.middleCols(u, u) = ConstMatrixMap(tmp + Bu, B, u);
    dXP.rightCols(u) = ConstMatrixMap(tmp + 2 * Bu, B, u);
    std::memcpy(dh, dhp, sizeof(float) * Bu);
  }

  const bool accIn = accumulateInput(flags), accParams = accumulateParams(flags);
  ConstMatrixMap dXP(dxpAll, B * T, g);
  if (dh0) {
    if (accIn)
      ArrayMap(dh0, Bu) += ConstArrayMap(dh, Bu);
    else
      std::memcpy(dh0, dh, sizeof(float) * Bu);
  }
  if (dinput) {
    MatrixMap dx(dinput, B * T, in);
    if (accIn)
      dx.noalias() += dXP * ConstMatrixMap(kernel, in, g).transpose();
    else
      dx.noalias() = dXP * ConstMatrixMap(kernel, in, g).transpose();
  }
  if (dkernel) {
    MatrixMap dW(dkernel, in, g);
    if (accParams)
      dW.noalias() += ConstMatrixMap(input, B * T, in).transpose() * dXP;
    else
      dW.noalias() = ConstMatrixMap(input, B * T, in).transpose() * dXP;
  }
  if (drecurrent_kernel) {
    MatrixMap dR(drecurrent_kernel, u, g);
    if (accParams)
      dR += dU;
    else
      dR = dU;
  }
  if (dbias) {
    Eigen::Map<Eigen::RowVectorXf> bi(dbias, g);
    if (accParams)
      bi += dXP.colwise().sum();
    else
      bi = dXP.colwise().sum();
    if (p->reset_after) {
      Eigen::Map<Eigen::RowVectorXf> br(dbias + g, g);
      if (accParams)
        br += dbr;
      else
        br = dbr;
    }
  }
  return FGC_OK;
}

} // extern "C"
