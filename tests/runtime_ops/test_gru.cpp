// The GRU kernels against Keras's equations in PyTorch (reset_after both ways,
// sequences, initial and final states, batch 1, no bias, other activations):
// inference forward, training forward, backprop through time, the
// accumulate flags and argument errors.
#include "ops_fixture.h"

#include <catch2/catch.hpp>

#include <cstring>

using namespace fgc::test;

TEST_CASE("fgc_gru, fgc_gru_forward_train and fgc_gru_backward match PyTorch",
          "[runtime][ops][gru]") {
  const char *names[] = {"gru_reset_after_last",    "gru_reset_after_seq_h0",
                         "gru_reset_before_last",   "gru_reset_before_seq_h0",
                         "gru_batch1_odd_nobias",   "gru_hard_sigmoid_relu"};
  for (const char *name : names) {
    Fixture f = opsCase(name);
    INFO("case " << name);
    auto xs = f.shape("x");
    fgc_gru_params p{xs[0],
                     xs[1],
                     xs[2],
                     f.intParam("units"),
                     f.activation("activation"),
                     f.activation("recurrent_activation"),
                     int(f.intParam("return_sequences")),
                     int(f.intParam("reset_after"))};
    const int64_t u = p.units, Bu = p.batch * u;
    std::vector<float> x = f.floats("x"), k = f.floats("kernel"), rk = f.floats("recurrent_kernel");
    std::vector<float> bias = optionalFloats(f, "bias"), h0 = optionalFloats(f, "h0");
    std::vector<float> y = sentinel(elements(f.shape("y"))), hOut = sentinel(Bu);
    std::vector<float> scratch(fgc_gru_scratch_size(&p));
    REQUIRE(fgc_gru(&p, x.data(), k.data(), rk.data(), dataOrNull(bias), dataOrNull(h0), y.data(),
                    hOut.data(), scratch.data()) == FGC_OK);
    checkClose(y, f, "y");
    checkClose(hOut, f, "h_out");

    std::vector<float> ws(fgc_gru_workspace_size(&p));
    y = sentinel(elements(f.shape("y")));
    REQUIRE(fgc_gru_forward_train(&p, x.data(), k.data(), rk.data(), dataOrNull(bias),
                                  dataOrNull(h0), y.data(), nullptr, ws.data()) == FGC_OK);
    checkClose(y, f, "y");

    std::vector<float> dy = f.floats("dy"), dhOut = optionalFloats(f, "dh_out");
    std::vector<float> dx = sentinel(int64_t(x.size())), dk = sentinel(int64_t(k.size())),
                       drk = sentinel(int64_t(rk.size())), db = sentinel(int64_t(bias.size())),
                       dh0 = sentinel(Bu);
    std::vector<float> bscratch(fgc_gru_backward_scratch_size(&p));
    REQUIRE(fgc_gru_backward(&p, x.data(), k.data(), rk.data(), dataOrNull(h0), ws.data(),
                             dy.data(), dataOrNull(dhOut), dx.data(), dk.data(), drk.data(),
                             bias.empty() ? nullptr : db.data(), h0.empty() ? nullptr : dh0.data(),
                             bscratch.data(), 0) == FGC_OK);
    checkGrad(dx, f, "dx");
    checkGrad(dk, f, "dkernel");
    checkGrad(drk, f, "drecurrent_kernel");
    if (!bias.empty())
      checkGrad(db, f, "dbias");
    if (!h0.empty())
      checkGrad(dh0, f, "dh0");

    // Accumulating twice into the same buffers doubles the gradients.
    std::vector<float> dk2 = dk, dx2 = dx;
    REQUIRE(fgc_gru_backward(&p, x.data(), k.data(), rk.data(), dataOrNull(h0), ws.data(),
                             dy.data(), dataOrNull(dhOut), dx2.data(), dk2.data(), nullptr,
                             nullptr, nullptr, bscratch.data(),
                             FGC_GRAD_ACCUMULATE_INPUT | FGC_GRAD_ACCUMULATE_PARAMS) == FGC_OK);
    for (size_t i = 0; i < dk.size(); ++i)
      CHECK(dk2[i] == Approx(2 * dk[i]).margin(1e-6));
    for (size_t i = 0; i < dx.size(); ++i)
      CHECK(dx2[i] == Approx(2 * dx[i]).margin(1e-6));
  }
}

TEST_CASE("GRU kernels reject bad arguments", "[runtime][ops][gru][errors]") {
  fgc_gru_params p{2, 3, 4, 5, FGC_ACT_TANH, FGC_ACT_SOFTMAX, 0, 1};
  std::vector<float> buf(1000);
  CHECK(fgc_gru(&p, buf.data(), buf.data(), buf.data(), nullptr, nullptr, buf.data(), nullptr,
                buf.data()) == FGC_ERR_INVALID_ARGUMENT);
  CHECK(std::strstr(fgc_last_error(), "softmax") != nullptr);
  p.recurrent_activation = FGC_ACT_SIGMOID;
  p.timesteps = 0;
  CHECK(fgc_gru_scratch_size(&p) == 0);
  CHECK(fgc_gru(&p, buf.data(), buf.data(), buf.data(), nullptr, nullptr, buf.data(), nullptr,
                buf.data()) == FGC_ERR_INVALID_ARGUMENT);
  CHECK(std::strstr(fgc_last_error(), "timesteps") != nullptr);
  p.timesteps = 3;
  p.activation = FGC_ACT_GELU; // its derivative needs the pre-activation: not trainable here
  CHECK(fgc_gru_forward_train(&p, buf.data(), buf.data(), buf.data(), nullptr, nullptr,
                              buf.data(), nullptr, buf.data()) == FGC_ERR_INVALID_ARGUMENT);
}
