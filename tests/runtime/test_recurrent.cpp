// Tests of the LSTM kernel against the PyTorch fixtures: full sequences and the
// last step, final states, initial states, sigmoid and hard_sigmoid recurrent
// activations, no bias; plus argument checks.
#include "fixture.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

using namespace fgc::test;

TEST_CASE("fgc_lstm matches PyTorch", "[runtime][recurrent]") {
  std::vector<std::string> cases = casesWithPrefix("lstm_");
  REQUIRE(cases.size() >= 4);
  for (int threads : {1, 2}) {
    fgc_set_num_threads(threads);
    for (const std::string &name : cases) {
      Fixture f(name);
      std::vector<int64_t> xs = f.shape("x"), rs = f.shape("recurrent_kernel");
      fgc_lstm_params p{xs[0],
                        xs[1],
                        xs[2],
                        rs[0],
                        FGC_ACT_TANH,
                        f.activation("recurrent_activation"),
                        static_cast<int>(f.intParam("return_sequences"))};
      std::vector<float> x = f.floats("x"), w = f.floats("kernel"),
                         u = f.floats("recurrent_kernel");
      std::vector<float> bias = f.has("bias") ? f.floats("bias") : std::vector<float>();
      std::vector<float> h0 = f.has("h0") ? f.floats("h0") : std::vector<float>();
      std::vector<float> c0 = f.has("c0") ? f.floats("c0") : std::vector<float>();
      std::vector<float> scratch = sentinel(static_cast<int64_t>(fgc_lstm_scratch_size(&p)));
      std::vector<float> y = sentinel(f.array("y").size());
      std::vector<float> h = sentinel(p.batch * p.units), c = sentinel(p.batch * p.units);
      INFO("case " << name);
      REQUIRE(fgc_lstm(&p, x.data(), w.data(), u.data(), bias.empty() ? nullptr : bias.data(),
                       h0.empty() ? nullptr : h0.data(), c0.empty() ? nullptr : c0.data(),
                       y.data(), h.data(), c.data(), scratch.data()) == FGC_OK);
      checkClose(y, f, "y");
      checkClose(h, f, "h");
      checkClose(c, f, "c");
      // Without return_state outputs the sequence output is the same.
      std::vector<float> y2 = sentinel(f.array("y").size());
      REQUIRE(fgc_lstm(&p, x.data(), w.data(), u.data(), bias.empty() ? nullptr : bias.data(),
                       h0.empty() ? nullptr : h0.data(), c0.empty() ? nullptr : c0.data(),
                       y2.data(), nullptr, nullptr, scratch.data()) == FGC_OK);
      checkClose(y2, f, "y");
    }
  }
  fgc_set_num_threads(0);
}

TEST_CASE("fgc_lstm rejects bad arguments", "[runtime][recurrent][errors]") {
  std::vector<float> buf(256, 0.5f), y = sentinel(16);
  fgc_lstm_params p{1, 2, 2, 2, FGC_ACT_TANH, FGC_ACT_SOFTMAX, 1};
  CHECK(fgc_lstm(&p, buf.data(), buf.data(), buf.data(), nullptr, nullptr, nullptr, y.data(),
                 nullptr, nullptr, buf.data()) == FGC_ERR_INVALID_ARGUMENT);
  CHECK(std::strstr(fgc_last_error(), "softmax") != nullptr);
  CHECK(fgc_lstm_scratch_size(&p) == 0);
  p.recurrent_activation = FGC_ACT_SIGMOID;
  p.timesteps = 0;
  CHECK(fgc_lstm(&p, buf.data(), buf.data(), buf.data(), nullptr, nullptr, nullptr, y.data(),
                 nullptr, nullptr, buf.data()) == FGC_ERR_INVALID_ARGUMENT);
  CHECK(std::strstr(fgc_last_error(), "timesteps") != nullptr);
  p.timesteps = 2;
  CHECK(fgc_lstm(&p, buf.data(), buf.data(), buf.data(), nullptr, nullptr, nullptr, y.data(),
                 nullptr, nullptr, nullptr) == FGC_ERR_INVALID_ARGUMENT);
  for (float v : y)
    CHECK(std::isnan(v));
}
