// Keras's Attention kernels (dot and concat scores, with and without a key,
// scale and concat_score_weight, causal masks, batch 1) against the plain
// matmul / softmax formulation in PyTorch, forward and backward.
#include "ops_fixture.h"

#include <catch2/catch.hpp>

#include <cstring>

using namespace fgc::test;

TEST_CASE("fgc_attention and fgc_attention_backward match PyTorch", "[runtime][ops][attention]") {
  const char *names[] = {"attention_dot_qv", "attention_dot_qvk_scale",
                         "attention_dot_causal_batch1", "attention_concat_qvk",
                         "attention_concat_scale_causal"};
  for (const char *name : names) {
    Fixture f = opsCase(name);
    INFO("case " << name);
    auto qs = f.shape("query"), vs = f.shape("value");
    fgc_attention_params p{qs[0], qs[1], vs[1], qs[2], vs[2], int(f.intParam("concat")),
                           int(f.intParam("causal"))};
    std::vector<float> q = f.floats("query"), v = f.floats("value"), k = optionalFloats(f, "key");
    std::vector<float> scale = optionalFloats(f, "scale"),
                       csw = optionalFloats(f, "concat_score_weight");
    std::vector<float> y = sentinel(elements(f.shape("y"))),
                       scores = sentinel(p.batch * p.query_steps * p.value_steps);
    REQUIRE(fgc_attention(&p, q.data(), v.data(), dataOrNull(k), dataOrNull(scale),
                          dataOrNull(csw), y.data(), scores.data()) == FGC_OK);
    checkClose(y, f, "y");
    checkClose(scores, f, "scores");

    std::vector<float> dy = f.floats("dy"), dq = sentinel(int64_t(q.size())),
                       dv = sentinel(int64_t(v.size())), dk = sentinel(int64_t(k.size()));
    float dscale = NAN, dcsw = NAN;
    std::vector<float> scratch(fgc_attention_backward_scratch_size(&p));
    REQUIRE(fgc_attention_backward(&p, q.data(), v.data(), dataOrNull(k), dataOrNull(scale),
                                   dataOrNull(csw), scores.data(), dy.data(), dq.data(),
                                   dv.data(), k.empty() ? nullptr : dk.data(),
                                   scale.empty() ? nullptr : &dscale,
                                   csw.empty() ? nullptr : &dcsw, scratch.data(), 0) == FGC_OK);
    checkGrad(dq, f, "dquery");
    checkGrad(dv, f, "dvalue");
    if (!k.empty())
      checkGrad(dk, f, "dkey");
    if (!scale.empty())
      checkGrad(&dscale, 1, f, "dscale");
    if (!csw.empty())
      checkGrad(&dcsw, 1, f, "dconcat_score_weight");
  }
}

TEST_CASE("fgc_attention rejects a missing key of the wrong width", "[runtime][ops][attention]") {
  fgc_attention_params p{1, 2, 3, 4, 5, 0, 0};
  std::vector<float> buf(100);
  CHECK(fgc_attention(&p, buf.data(), buf.data(), nullptr, nullptr, nullptr, buf.data(),
                      buf.data()) == FGC_ERR_INVALID_ARGUMENT);
  CHECK(std::strstr(fgc_last_error(), "value_dim") != nullptr);
  CHECK(fgc_attention(&p, buf.data(), buf.data(), buf.data(), nullptr, nullptr, buf.data(),
                      nullptr) == FGC_ERR_INVALID_ARGUMENT);
}
