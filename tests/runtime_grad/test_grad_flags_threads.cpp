// Cross-cutting properties of the gradient kernels: the accumulate flags add
// the fresh gradient to what the buffers held, and every kernel gives
// bit-identical results with 1 and 2 threads on sizes big enough to split.
#include "grad_fixture.h"

#include <catch2/catch.hpp>

#include <cstring>
#include <functional>

using namespace fgc::test;

extern "C" int fgcTestGradFromC(const float *x, float *y, int64_t n);

namespace {

using Buffers = std::vector<std::vector<float> *>;

// Runs `kernel(flags)` into `outputs` once overwriting, then again with both
// accumulate flags over random contents, which must come out as contents +
// the first result.
void requireAccumulates(const char *name, const Buffers &outputs,
                        const std::function<int(int)> &kernel) {
  INFO(name);
  for (std::vector<float> *out : outputs)
    std::fill(out->begin(), out->end(), std::nanf(""));
  REQUIRE(kernel(0) == FGC_OK);
  std::vector<std::vector<float>> fresh, before;
  unsigned seed = 100;
  for (std::vector<float> *out : outputs) {
    fresh.push_back(*out);
    *out = randomFloats(static_cast<int64_t>(out->size()), seed++);
    before.push_back(*out);
  }
  REQUIRE(kernel(FGC_GRAD_ACCUMULATE_INPUT | FGC_GRAD_ACCUMULATE_PARAMS) == FGC_OK);
  for (size_t k = 0; k < outputs.size(); ++k) {
    int64_t wrong = 0;
    for (size_t i = 0; i < fresh[k].size(); ++i) {
      double want = double(before[k][i]) + double(fresh[k][i]);
      double got = (*outputs[k])[i];
      wrong += !(std::fabs(got - want) <= 1e-5 * (1 + std::fabs(want)));
    }
    INFO("output " << k);
    CHECK(wrong == 0);
  }
}

// Runs `kernel` at 1 and 2 threads; every output must agree bit for bit.
void requireThreadIndependent(const char *name, const Buffers &outputs,
                              const std::function<int()> &kernel) {
  INFO(name);
  std::vector<std::vector<float>> first;
  for (int threads : {1, 2}) {
    fgc_set_num_threads(threads);
    for (std::vector<float> *out : outputs)
      std::fill(out->begin(), out->end(), 0.0f);
    REQUIRE(kernel() == FGC_OK);
    for (size_t k = 0; k < outputs.size(); ++k) {
      if (threads == 1) {
        first.push_back(*outputs[k]);
      } else {
        INFO("output " << k);
        CHECK(std::memcmp(first[k].data(), outputs[k]->data(), first[k].size() * 4) == 0);
      }
    }
  }
  fgc_set_num_threads(0);
}

// A Dense layer big enough to split its GEMMs.
struct DenseSetup {
  int64_t rows = 96, in = 160, out = 130;
  std::vector<float> x = randomFloats(rows * in, 1), w = randomFloats(in * out, 2, 0.1f),
                     z = randomFloats(rows * out, 3), y = z, dy = randomFloats(rows * out, 4);
  std::vector<float> dx = std::vector<float>(rows * in), dk = std::vector<float>(in * out),
                     db = std::vector<float>(out);
  std::vector<float> scratch =
      std::vector<float>(fgc_dense_backward_scratch_size(rows, in, out, FGC_ACT_SWISH));
  int run(int flags) {
    return fgc_dense_backward(x.data(), w.data(), z.data(), y.data(), dy.data(), dx.data(),
                              dk.data(), db.data(), rows, in, out, FGC_ACT_SWISH,
                              scratch.data(), flags);
  }
};

struct ConvSetup {
  fgc_conv2d_params p;
  bool transpose;
  std::vector<float> x, k, y, dy, dx, dk, db, scratch;
  ConvSetup(fgc_conv2d_params params, bool t) : p(params), transpose(t) {
    int64_t outH = t ? fgc_conv_transpose_output_length(p.in_h, p.kernel_h, p.stride_h,
                                                        p.dilation_h, p.padding)
                     : fgc_conv_output_length(p.in_h, p.kernel_h, p.stride_h, p.dilation_h,
                                              p.padding);
    int64_t outW = t ? fgc_conv_transpose_output_length(p.in_w, p.kernel_w, p.stride_w,
                                                        p.dilation_w, p.padding)
                     : fgc_conv_output_length(p.in_w, p.kernel_w, p.stride_w, p.dilation_w,
                                              p.padding);
    x = randomFloats(p.batch * p.in_h * p.in_w * p.in_c, 5);
    k = randomFloats(p.kernel_h * p.kernel_w * p.in_c * p.out_c, 6, 0.2f);
    y = randomFloats(p.batch * outH * outW * p.out_c, 7);
    for (float &v : y)
      v = std::tanh(v);
    dy = randomFloats(static_cast<int64_t>(y.size()), 8);
    dx.resize(x.size());
    dk.resize(k.size());
    db.resize(p.out_c);
    scratch.resize(t ? fgc_conv2d_transpose_backward_scratch_size(&p)
                     : fgc_conv2d_backward_scratch_size(&p));
  }
  int run(int flags) {
    auto kernel = transpose ? fgc_conv2d_transpose_backward : fgc_conv2d_backward;
    return kernel(&p, x.data(), k.data(), nullptr, y.data(), dy.data(), dx.data(), dk.data(),
                  db.data(), scratch.data(), flags);
  }
};

struct LstmSetup {
  fgc_lstm_params p{40, 7, 24, 48, FGC_ACT_TANH, FGC_ACT_SIGMOID, 1};
  std::vector<float> x = randomFloats(40 * 7 * 24, 9), k = randomFloats(24 * 192, 10, 0.2f),
                     u = randomFloats(48 * 192, 11, 0.2f), b = randomFloats(192, 12),
                     h0 = randomFloats(40 * 48, 13), c0 = randomFloats(40 * 48, 14),
                     out = std::vector<float>(40 * 7 * 48), dout = randomFloats(40 * 7 * 48, 15),
                     ws = std::vector<float>(fgc_lstm_workspace_size(&p)),
                     scratch = std::vector<float>(fgc_lstm_backward_scratch_size(&p)),
                     dx = std::vector<float>(x.size()), dk = std::vector<float>(k.size()),
                     du = std::vector<float>(u.size()), db = std::vector<float>(192),
                     dh0 = std::vector<float>(40 * 48), dc0 = std::vector<float>(40 * 48);
  int forward() {
    return fgc_lstm_forward_train(&p, x.data(), k.data(), u.data(), b.data(), h0.data(),
                                  c0.data(), out.data(), nullptr, nullptr, ws.data());
  }
  int run(int flags) {
    return fgc_lstm_backward(&p, x.data(), k.data(), u.data(), h0.data(), c0.data(), ws.data(),
                             dout.data(), nullptr, nullptr, dx.data(), dk.data(), du.data(),
                             db.data(), dh0.data(), dc0.data(), scratch.data(), flags);
  }
};

const fgc_conv2d_params BigConv{6, 20, 18, 8, 3, 3, 16, 2, 2, 1, 1, FGC_PADDING_SAME, FGC_ACT_TANH};
const fgc_conv2d_params BigTranspose{4, 9, 10, 8, 4, 4, 12, 2, 2, 1, 1, FGC_PADDING_SAME,
                                     FGC_ACT_TANH};

} // namespace

TEST_CASE("accumulate flags add into the gradient buffers", "[runtime_grad][flags]") {
  DenseSetup d;
  requireAccumulates("dense", {&d.dx, &d.dk, &d.db}, [&](int f) { return d.run(f); });
  ConvSetup c(BigConv, false);
  requireAccumulates("conv2d", {&c.dx, &c.dk, &c.db}, [&](int f) { return c.run(f); });
  ConvSetup t(BigTranspose, true);
  requireAccumulates("conv2d_transpose", {&t.dx, &t.dk, &t.db}, [&](int f) { return t.run(f); });
  LstmSetup l;
  REQUIRE(l.forward() == FGC_OK);
  requireAccumulates("lstm", {&l.dx, &l.dk, &l.du, &l.db, &l.dh0, &l.dc0},
                     [&](int f) { return l.run(f); });

  std::vector<float> x = randomFloats(3 * 7 * 6 * 5, 20), dy = randomFloats(3 * 4 * 3 * 5, 21);
  std::vector<float> dx(x.size());
  fgc_pool2d_params pool{3, 7, 6, 5, 3, 3, 2, 2, FGC_PADDING_SAME};
  requireAccumulates("max_pool2d", {&dx}, [&](int f) {
    return fgc_max_pool2d_backward(&pool, x.data(), dy.data(), dx.data(), f);
  });
  requireAccumulates("avg_pool2d", {&dx}, [&](int f) {
    return fgc_avg_pool2d_backward(&pool, dy.data(), dx.data(), f);
  });
  std::vector<float> up = randomFloats(3 * 14 * 12 * 5, 22);
  requireAccumulates("upsampling2d", {&dx}, [&](int f) {
    return fgc_upsampling2d_backward(up.data(), dx.data(), 3, 7, 6, 5, 2, 2,
                                     FGC_INTERP_BILINEAR, f);
  });
  std::vector<float> gdy = randomFloats(3 * 5, 23);
  requireAccumulates("global_max_pool2d", {&dx}, [&](int f) {
    return fgc_global_max_pool2d_backward(x.data(), gdy.data(), dx.data(), 3, 7, 6, 5, f);
  });
  std::vector<float> bdy = randomFloats(x.size(), 24), mean(5), invstd(5), gamma = randomFloats(5, 25);
  std::vector<float> dgamma(5), dbeta(5), y(x.size());
  REQUIRE(fgc_batch_norm_train_forward(x.data(), y.data(), 3 * 7 * 6, 5, gamma.data(), nullptr,
                                       nullptr, nullptr, 0.9f, 1e-3f, mean.data(), invstd.data(),
                                       0) == FGC_OK);
  requireAccumulates("batch_norm", {&dx, &dgamma, &dbeta}, [&](int f) {
    return fgc_batch_norm_backward(x.data(), bdy.data(), gamma.data(), mean.data(),
                                   invstd.data(), dx.data(), dgamma.data(), dbeta.data(),
                                   3 * 7 * 6, 5, f);
  });
  std::vector<int64_t> idx = {3, 1, 3, 0, 3};
  std::vector<float> edy = randomFloats(5 * 4, 26), dtable(6 * 4);
  requireAccumulates("embedding", {&dtable}, [&](int f) {
    return fgc_embedding_backward_i64(idx.data(), 5, edy.data(), 6, 4, dtable.data(), f);
  });
  std::vector<float> sm = randomFloats(6 * 7, 27), sdy = randomFloats(6 * 7, 28), sdx(6 * 7);
  requireAccumulates("activation softmax", {&sdx}, [&](int f) {
    return fgc_activation_backward(FGC_ACT_SOFTMAX, nullptr, sm.data(), sdy.data(), sdx.data(),
                                   6, 7, f);
  });
  // Accumulating with only the other flag overwrites.
  REQUIRE(d.run(0) == FGC_OK);
  std::vector<float> once(d.dx);
  std::fill(d.dx.begin(), d.dx.end(), 1e6f);
  REQUIRE(d.run(FGC_GRAD_ACCUMULATE_PARAMS) == FGC_OK);
  CHECK((d.dx == once));
}

TEST_CASE("gradient kernels give bit-identical results with 1 and 2 threads",
          "[runtime_grad][threads]") {
  DenseSetup d;
  requireThreadIndependent("dense", {&d.dx, &d.dk, &d.db}, [&] { return d.run(0); });
  ConvSetup c(BigConv, false);
  requireThreadIndependent("conv2d", {&c.dx, &c.dk, &c.db}, [&] { return c.run(0); });
  ConvSetup t(BigTranspose, true);
  requireThreadIndependent("conv2d_transpose", {&t.dx, &t.dk, &t.db}, [&] { return t.run(0); });
  LstmSetup l;
  requireThreadIndependent("lstm forward", {&l.out, &l.ws}, [&] { return l.forward(); });
  requireThreadIndependent("lstm backward", {&l.dx, &l.dk, &l.du, &l.db, &l.dh0, &l.dc0},
                           [&] { return l.run(0); });

  const int64_t n = 8, h = 24, w = 22, ch = 70;
  std::vector<float> x = randomFloats(n * h * w * ch, 30), dx(x.size());
  fgc_pool2d_params pool{n, h, w, ch, 3, 3, 2, 2, FGC_PADDING_SAME};
  std::vector<float> pdy = randomFloats(n * 12 * 11 * ch, 31);
  requireThreadIndependent("max_pool2d", {&dx}, [&] {
    return fgc_max_pool2d_backward(&pool, x.data(), pdy.data(), dx.data(), 0);
  });
  requireThreadIndependent("avg_pool2d", {&dx}, [&] {
    return fgc_avg_pool2d_backward(&pool, pdy.data(), dx.data(), 0);
  });
  std::vector<float> up = randomFloats(n * h * 2 * w * 2 * ch, 32);
  for (fgc_interpolation mode : {FGC_INTERP_NEAREST, FGC_INTERP_BILINEAR})
    requireThreadIndependent("upsampling2d", {&dx}, [&] {
      return fgc_upsampling2d_backward(up.data(), dx.data(), n, h, w, ch, 2, 2, mode, 0);
    });
  std::vector<float> gdy = randomFloats(n * ch, 33);
  requireThreadIndependent("global_max_pool2d", {&dx}, [&] {
    return fgc_global_max_pool2d_backward(x.data(), gdy.data(), dx.data(), n, h, w, ch, 0);
  });
  std::vector<float> y(x.size()), mean(ch), invstd(ch), dg(ch), db(ch);
  requireThreadIndependent("batch_norm_train_forward", {&y, &mean, &invstd}, [&] {
    return fgc_batch_norm_train_forward(x.data(), y.data(), n * h * w, ch, nullptr, nullptr,
                                        nullptr, nullptr, 0.9f, 1e-3f, mean.data(),
                                        invstd.data(), 0);
  });
  requireThreadIndependent("batch_norm_backward", {&dx, &dg, &db}, [&] {
    return fgc_batch_norm_backward(x.data(), up.data(), nullptr, mean.data(), invstd.data(),
                                   dx.data(), dg.data(), db.data(), n * h * w, ch, 0);
  });
  int64_t shape[3] = {n * h, w, ch};
  requireThreadIndependent("softmax_backward", {&dx}, [&] {
    return fgc_softmax_backward(y.data(), x.data(), dx.data(), shape, 3, 1, 0);
  });
  requireThreadIndependent("activation_backward", {&dx}, [&] {
    return fgc_activation_backward(FGC_ACT_GELU, x.data(), nullptr, up.data(), dx.data(),
                                   n * h * w, ch, 0);
  });
  std::vector<int32_t> idx(5000);
  for (size_t i = 0; i < idx.size(); ++i)
    idx[i] = static_cast<int32_t>((i * 7919) % 300);
  std::vector<float> edy = randomFloats(5000 * 64, 34), dtable(300 * 64);
  requireThreadIndependent("embedding", {&dtable}, [&] {
    return fgc_embedding_backward_i32(idx.data(), 5000, edy.data(), 300, 64, dtable.data(), 0);
  });
}

TEST_CASE("grad.h works from C", "[runtime_grad][c_abi]") {
  std::vector<float> x = {1, 2, 3}, y = {9, 9, 9};
  REQUIRE(fgcTestGradFromC(x.data(), y.data(), 3) == FGC_OK);
  CHECK(y == std::vector<float>{2, 4, 6});
}
