// Tests of the training-only kernels: BatchNormalization with batch
// statistics and its backward, Dropout's documented counter-based masks, the
// Embedding backward, and the LSTM's training forward and backprop through
// time, against the PyTorch autograd fixtures.
#include "grad_fixture.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

using namespace fgc::test;

namespace {

// The mask hash as grad.h documents it, written independently of the kernel.
float documentedUniform(uint64_t seed, uint64_t counter, uint64_t i) {
  auto m = [](uint64_t v) {
    v ^= v >> 30;
    v *= 0xBF58476D1CE4E5B9ull;
    v ^= v >> 27;
    v *= 0x94D049BB133111EBull;
    v ^= v >> 31;
    return v;
  };
  const uint64_t golden = 0x9E3779B97F4A7C15ull;
  uint64_t key = m(seed ^ m(counter + golden));
  return static_cast<float>(m(key + (i + 1) * golden) >> 40) / 16777216.0f;
}

void runLstm(const Fixture &f) {
  std::vector<int64_t> xs = f.shape("x"), ks = f.shape("kernel");
  fgc_lstm_params p{};
  p.batch = xs[0];
  p.timesteps = xs[1];
  p.input_dim = xs[2];
  p.units = ks[1] / 4;
  p.activation = FGC_ACT_TANH;
  p.recurrent_activation = f.activation("recurrent_activation");
  p.return_sequences = static_cast<int>(f.intParam("return_sequences"));
  const int64_t bu = p.batch * p.units;
  std::vector<float> x = f.floats("x"), k = f.floats("kernel"),
                     u = f.floats("recurrent_kernel");
  std::vector<float> b = optionalFloats(f, "bias"), h0 = optionalFloats(f, "h0"),
                     c0 = optionalFloats(f, "c0");
  std::vector<float> dout = f.floats("doutput"), dhOut = optionalFloats(f, "dh_out"),
                     dcOut = optionalFloats(f, "dc_out");
  std::vector<float> out = sentinel(static_cast<int64_t>(dout.size())), hOut = sentinel(bu),
                     cOut = sentinel(bu);
  std::vector<float> ws(fgc_lstm_workspace_size(&p)), scratch(fgc_lstm_backward_scratch_size(&p));
  REQUIRE(fgc_lstm_forward_train(&p, x.data(), k.data(), u.data(), dataOrNull(b),
                                 dataOrNull(h0), dataOrNull(c0), out.data(), hOut.data(),
                                 cOut.data(), ws.data()) == FGC_OK);
  checkGrad(out, f, "output");
  checkGrad(hOut, f, "h_out");
  checkGrad(cOut, f, "c_out");
  std::vector<float> dx = sentinel(static_cast<int64_t>(x.size())),
                     dk = sentinel(static_cast<int64_t>(k.size())),
                     du = sentinel(static_cast<int64_t>(u.size())), db = sentinel(4 * p.units),
                     dh0 = sentinel(bu), dc0 = sentinel(bu);
  REQUIRE(fgc_lstm_backward(&p, x.data(), k.data(), u.data(), dataOrNull(h0), dataOrNull(c0),
                            ws.data(), dout.data(), dataOrNull(dhOut), dataOrNull(dcOut),
                            dx.data(), dk.data(), du.data(), db.data(), dh0.data(), dc0.data(),
                            scratch.data(), 0) == FGC_OK);
  checkGrad(dx, f, "dx");
  checkGrad(dk, f, "dkernel");
  checkGrad(du, f, "drecurrent_kernel");
  if (!b.empty())
    checkGrad(db, f, "dbias");
  if (!h0.empty()) {
    checkGrad(dh0, f, "dh0");
    checkGrad(dc0, f, "dc0");
  }
}

} // namespace

TEST_CASE("fgc_batch_norm_train_forward and backward match autograd", "[runtime_grad][bn]") {
  std::vector<std::string> cases = gradCases("batch_norm_");
  REQUIRE(cases.size() == 3);
  for (int threads : {1, 2}) {
    fgc_set_num_threads(threads);
    for (const std::string &name : cases) {
      Fixture f = gradCase(name);
      std::vector<int64_t> s = f.shape("x");
      const int64_t channels = s.back(), rows = elements(s) / channels;
      std::vector<float> x = f.floats("x"), dy = f.floats("dy");
      std::vector<float> gamma = optionalFloats(f, "gamma"), beta = optionalFloats(f, "beta");
      std::vector<float> mm = f.floats("moving_mean"), mv = f.floats("moving_variance");
      std::vector<float> y = sentinel(rows * channels), mean = sentinel(channels),
                         invstd = sentinel(channels);
      REQUIRE(fgc_batch_norm_train_forward(
                  x.data(), y.data(), rows, channels, dataOrNull(gamma), dataOrNull(beta),
                  mm.data(), mv.data(), static_cast<float>(f.floatParam("momentum")),
                  static_cast<float>(f.floatParam("epsilon")), mean.data(), invstd.data(),
                  1) == FGC_OK);
      checkGrad(y, f, "y");
      checkGrad(mean, f, "save_mean");
      checkGrad(invstd, f, "save_invstd");
      checkGrad(mm, f, "new_moving_mean");
      checkGrad(mv, f, "new_moving_variance");
      std::vector<float> dx = sentinel(rows * channels), dg = sentinel(channels),
                         dbeta = sentinel(channels);
      REQUIRE(fgc_batch_norm_backward(x.data(), dy.data(), dataOrNull(gamma), mean.data(),
                                      invstd.data(), dx.data(), gamma.empty() ? nullptr : dg.data(),
                                      beta.empty() ? nullptr : dbeta.data(), rows, channels,
                                      0) == FGC_OK);
      checkGrad(dx, f, "dx");
      if (!gamma.empty()) {
        checkGrad(dg, f, "dgamma");
        checkGrad(dbeta, f, "dbeta");
      }
    }
  }
  fgc_set_num_threads(0);
}

TEST_CASE("fgc_batch_norm_train_forward runs in place and leaves moving stats alone on request",
          "[runtime_grad][bn]") {
  std::vector<float> x = randomFloats(40, 5), y(40), mean(4), invstd(4);
  std::vector<float> mm = {1, 2, 3, 4}, mv = {1, 1, 1, 1};
  REQUIRE(fgc_batch_norm_train_forward(x.data(), y.data(), 10, 4, nullptr, nullptr, mm.data(),
                                       mv.data(), 0.9f, 1e-3f, mean.data(), invstd.data(),
                                       0) == FGC_OK);
  CHECK(mm == std::vector<float>{1, 2, 3, 4});
  CHECK(mv == std::vector<float>{1, 1, 1, 1});
  REQUIRE(fgc_batch_norm_train_forward(x.data(), x.data(), 10, 4, nullptr, nullptr, nullptr,
                                       nullptr, 0.9f, 1e-3f, mean.data(), invstd.data(),
                                       0) == FGC_OK);
  CHECK((x == y));
}

TEST_CASE("fgc_dropout_forward follows the documented hash", "[runtime_grad][dropout]") {
  const int64_t n = 100000;
  const float rate = 0.3f;
  std::vector<float> x = randomFloats(n, 7), y(n), mask(n);
  REQUIRE(fgc_dropout_forward(x.data(), y.data(), mask.data(), n, rate, 1234, 56) == FGC_OK);
  int64_t dropped = 0, mismatches = 0;
  const float keep = 1.0f / (1.0f - rate);
  for (int64_t i = 0; i < n; ++i) {
    bool drop = documentedUniform(1234, 56, static_cast<uint64_t>(i)) < rate;
    dropped += drop;
    mismatches += mask[i] != (drop ? 0.0f : keep) || y[i] != x[i] * mask[i];
  }
  CHECK(mismatches == 0);
  CHECK(std::fabs(double(dropped) / n - rate) < 0.01);
  // Another counter gives another mask; the same one reproduces it (any thread count).
  std::vector<float> other(n), again(n), y2(n);
  REQUIRE(fgc_dropout_forward(x.data(), y2.data(), other.data(), n, rate, 1234, 57) == FGC_OK);
  CHECK((other != mask));
  fgc_set_num_threads(1);
  REQUIRE(fgc_dropout_forward(x.data(), y2.data(), again.data(), n, rate, 1234, 56) == FGC_OK);
  fgc_set_num_threads(0);
  CHECK((again == mask));
  // Backward: dx = dy * mask, accumulated on request.
  std::vector<float> dy = randomFloats(n, 8), dx(n, 1.0f);
  REQUIRE(fgc_dropout_backward(mask.data(), dy.data(), dx.data(), n,
                               FGC_GRAD_ACCUMULATE_INPUT) == FGC_OK);
  int64_t wrong = 0;
  for (int64_t i = 0; i < n; ++i)
    wrong += dx[i] != 1.0f + dy[i] * mask[i];
  CHECK(wrong == 0);
  CHECK(fgc_dropout_forward(x.data(), y.data(), mask.data(), n, 1.0f, 1, 1) ==
        FGC_ERR_INVALID_ARGUMENT);
  REQUIRE(fgc_dropout_forward(x.data(), y.data(), mask.data(), n, 0.0f, 1, 1) == FGC_OK);
  CHECK((y == x));
}

TEST_CASE("fgc_embedding_backward matches autograd", "[runtime_grad][embedding]") {
  for (const char *name : {"embedding_i32", "embedding_i64"}) {
    Fixture f = gradCase(name);
    fgc::runtime::NpyArray idx = f.array("indices");
    std::vector<int64_t> ts = f.shape("table");
    std::vector<float> dy = f.floats("dy"), dtable = sentinel(elements(ts));
    const int64_t count = static_cast<int64_t>(idx.size());
    if (std::string(name) == "embedding_i32")
      REQUIRE(fgc_embedding_backward_i32(idx.data<int32_t>(), count, dy.data(), ts[0], ts[1],
                                         dtable.data(), 0) == FGC_OK);
    else
      REQUIRE(fgc_embedding_backward_i64(idx.data<int64_t>(), count, dy.data(), ts[0], ts[1],
                                         dtable.data(), 0) == FGC_OK);
    checkGrad(dtable, f, "dtable");
  }
  int32_t bad[2] = {1, 9};
  float dy[4] = {1, 2, 3, 4}, dtable[6] = {};
  CHECK(fgc_embedding_backward_i32(bad, 2, dy, 3, 2, dtable, 0) == FGC_ERR_OUT_OF_RANGE);
  CHECK(std::strstr(fgc_last_error(), "index 9") != nullptr);
}

TEST_CASE("LSTM training forward and backprop through time match autograd",
          "[runtime_grad][lstm]") {
  std::vector<std::string> cases = gradCases("lstm_");
  REQUIRE(cases.size() == 4);
  for (int threads : {1, 2}) {
    fgc_set_num_threads(threads);
    for (const std::string &name : cases)
      runLstm(gradCase(name));
  }
  fgc_set_num_threads(0);
}

TEST_CASE("LSTM training rejects activations without output derivatives",
          "[runtime_grad][lstm][errors]") {
  fgc_lstm_params p{2, 3, 4, 5, FGC_ACT_GELU, FGC_ACT_SIGMOID, 1};
  CHECK(fgc_lstm_workspace_size(&p) == 0);
  float dummy[1];
  CHECK(fgc_lstm_forward_train(&p, dummy, dummy, dummy, nullptr, nullptr, nullptr, dummy,
                               nullptr, nullptr, dummy) == FGC_ERR_INVALID_ARGUMENT);
  CHECK(std::strstr(fgc_last_error(), "training supports") != nullptr);
}
