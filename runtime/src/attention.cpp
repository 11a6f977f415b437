// Keras's Attention layer (Luong-style dot product, or Bahdanau-style "concat"
// scores), forward and backward, one batch element at a time with Eigen
// matrix products on the calling thread.
#include "grad_common.h"

#include <cmath>
#include <limits>

namespace {

using namespace fgc::runtime::detail;

int checkAttention(const char *name, const fgc_attention_params *p) {
  FGC_CHECK_PTR(name, p);
  FGC_CHECK_POSITIVE(name, p->batch);
  FGC_CHECK_POSITIVE(name, p->query_steps);
  FGC_CHECK_POSITIVE(name, p->value_steps);
  FGC_CHECK_POSITIVE(name, p->dim);
  FGC_CHECK_POSITIVE(name, p->value_dim);
  return FGC_OK;
}

// Raw scores s (Tq, Tv) of batch element b (before masking and softmax).
void rawScores(const fgc_attention_params &p, const float *q, const float *k, float scale,
               float csw, float *s) {
  const int64_t Tq = p.query_steps, Tv = p.value_steps, D = p.dim;
  MatrixMap S(s, Tq, Tv);
  ConstMatrixMap Q(q, Tq, D), K(k, Tv, D);
  if (!p.score_concat) {
    S.noalias() = Q * K.transpose();
    S *= scale;
    return;
  }
  for (int64_t i = 0; i < Tq; ++i)
    for (int64_t j = 0; j < Tv; ++j) {
      float sum = 0.0f;
      for (int64_t d = 0; d < D; ++d)
        sum += std::tanh(scale * (q[i * D + d] + k[j * D + d]));
      S(i, j) = csw * sum;
    }
}

} // namespace

extern "C" {

int fgc_attention(const fgc_attention_params *p, const float *query, const float *value,
                  const float *key, const float *scale, const float *concat_score_weight,
                  float *output, float *scores) {
  constexpr const char *Name = "fgc_attention";
  if (int status = checkAttention(Name, p))
    return status;
  FGC_CHECK_PTR(Name, query);
  FGC_CHECK_PTR(Name, value);
  FGC_CHECK_PTR(Name, output);
  FGC_CHECK_PTR(Name, scores);
  if (!key && p->dim != p->value_dim)
    return fail(FGC_ERR_INVALID_ARGUMENT, "%s: without a key, dim (%lld) must equal value_dim (%lld)",
                Name, static_cast<long long>(p->dim), static_cast<long long>(p->value_dim));
  const int64_t Tq = p->query_steps, Tv = p->value_steps, D = p->dim, Dv = p->value_dim;
  const float sc = scale ? *scale : 1.0f, csw = concat_score_weight ? *concat_score_weight : 1.0f;
  for (int64_t b = 0; b < p->batch; ++b) {
    const float *q = query + b * Tq * D, *v = value + b * Tv * Dv;
    const float *k = key ? key + b * Tv * D : v;
    float *s = scores + b * Tq * Tv;
    rawScores(*p, q, k, sc, csw, s);
    for (int64_t i = 0; i < Tq; ++i) {
      float *row = s + i * Tv;
      const int64_t visible = p->causal ? std::min<int64_t>(i + 1, Tv) : Tv;
      float top = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < visible; ++j)
        top = std::max(top, row[j]);
      double sum = 0.0;
      for (int64_t j = 0; j < visible; ++j) {
        row[j] = std::exp(row[j] - top);
        sum += row[j];
      }
      for (int64_t j = 0; j < visible; ++j)
        row[j] = static_cast<float>(row[j] / sum);
      for (int64_t j = visible; j < Tv; ++j)
        row[j] = 0.0f;
    }
    MatrixMap(output + b * Tq * Dv, Tq, Dv).noalias() =
        ConstMatrixMap(s, Tq, Tv) * ConstMatrixMap(v, Tv, Dv);
  }
  return FGC_OK;
}

size_t fgc_attention_backward_scratch_size(const fgc_attention_params *p) {
  if (checkAttention("fgc_attention_backward_scratch_size", p) != FGC_OK)
    return 0;
  return static_cast<size_t>(2 * p->query_steps * p->value_steps);
}

int fgc_attention_backward(const fgc_attention_params *p, const float *query, const float *value,
                           const float *key, const float *scale,
                           const float *concat_score_weight, const float *scores,
                           const float *dy, float *dquery, float *dvalue, float *dkey,
                           float *dscale, float *dconcat_score_weight, float *scratch,
                           int flags) {
  constexpr const char *Name = "fgc_attention_backward";
  if (int status = checkAttention(Name, p))
    return status;
  FGC_CHECK_PTR(Name, query);
  FGC_CHECK_PTR(Name, value);
  FGC_CHECK_PTR(Name, scores);
  FGC_CHECK_PTR(Name, dy);
  FGC_CHECK_PTR(Name, scratch);
  const int64_t Tq = p->query_steps, Tv = p->value_steps, D = p->dim, Dv = p->value_dim;
  const float sc = scale ? *scale : 1.0f, csw = concat_score_weight ? *concat_score_weight : 1.0f;
  const bool accIn = accumulateInput(flags), accParams = accumulateParams(flags);
  // Without a key the key's gradient goes to dvalue, after dvalue's own part.
  float *dk = key ? dkey : dvalue;
  const bool accKey = key ? accIn : true;
  double dScale = 0.0, dCsw = 0.0;
  for (int64_t b = 0; b < p->batch; ++b) {
    const float *q = query + b * Tq * D, *v = value + b * Tv * Dv;
    const float *k = key ? key + b * Tv * D : v;
    ConstMatrixMap W(scores + b * Tq * Tv, Tq, Tv), dY(dy + b * Tq * Dv, Tq, Dv);
    MatrixMap dS(scratch, Tq, Tv), G(scratch + Tq * Tv, Tq, Tv);
    // output = W v: dW = dY v^T, dv = W^T dY.
    dS.noalias() = dY * ConstMatrixMap(v, Tv, Dv).transpose();
    if (dvalue) {
      MatrixMap dV(dvalue + b * Tv * Dv, Tv, Dv);
      if (accIn)
        dV.noalias() += W.transpose() * dY;
      else
        dV.noalias() = W.transpose() * dY;
    }
    // Softmax: dS = W (dW - sum_j dW W); masked cells have W = 0 and get 0.
    for (int64_t i = 0; i < Tq; ++i) {
      double dot = 0.0;
      for (int64_t j = 0; j < Tv; ++j)
        dot += double(dS(i, j)) * W(i, j);
      for (int64_t j = 0; j < Tv; ++j)
        dS(i, j) = W(i, j) * (dS(i, j) - static_cast<float>(dot));
    }
    ConstMatrixMap Q(q, Tq, D), K(k, Tv, D);
    if (!p->score_concat) {
      // s = scale q k^T
      if (dscale) {
        G.noalias() = Q * K.transpose();
        dScale += (dS.array() * G.array()).cast<double>().sum();
      }
      if (dquery) {
        MatrixMap dQ(dquery + b * Tq * D, Tq, D);
        if (accIn)
          dQ.noalias() += sc * (dS * K);
        else
          dQ.noalias() = sc * (dS * K);
      }
      if (dk) {
        MatrixMap dK(dk + b * Tv * D, Tv, D);
        if (accKey)
          dK.noalias() += sc * (dS.transpose() * Q);
        else
          dK.noalias() = sc * (dS.transpose() * Q);
      }
      continue;
    }
    // s = csw sum_d tanh(scale (q + k))
    float *dQ = dquery ? dquery + b * Tq * D : nullptr;
    float *dK = dk ? dk + b * Tv * D : nullptr;
    if (dQ && !accIn)
      std::fill(dQ, dQ + Tq * D, 0.0f);
    if (dK && !accKey)
      std::fill(dK, dK + Tv * D, 0.0f);
    for (int64_t i = 0; i < Tq; ++i)
      for (int64_t j = 0; j < Tv; ++j) {
        const float g = dS(i, j);
        for (int64_t d = 0; d < D; ++d) {
          const float sum = q[i * D + d] + k[j * D + d];
          const float th = std::tanh(sc * sum);
          dCsw += double(g) * th;
          const float da = g * csw * (1.0f - th * th);
          dScale += double(da) * sum;
          if (dQ)
            dQ[i * D + d] += sc * da;
          if (dK)
            dK[j * D + d] += sc * da;
        }
      }
  }
  if (dscale)
    *dscale = static_cast<float>(accParams ? *dscale + dScale : dScale);
  if (dconcat_score_weight)
    *dconcat_score_weight = static_cast<float>(accParams ? *dconcat_score_weight + dCsw : dCsw);
  return FGC_OK;
}

} // extern "C"
