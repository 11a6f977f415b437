// Tests of the optimizers, gradient clipping and learning-rate schedules in fgc/runtime/optim.h:
// six steps of every optimizer against the Keras formulas in float64 (weights after each step and
// the final slots), epsilon placement for RMSprop, thread-count independence, clipping against
// NumPy and the schedules against Keras's definitions, plus argument checks.
#include "optim_fixture.h"

#include "fgc/runtime/optim.h"

#include <cmath>

using namespace fgc::test;

extern "C" int fgcTestAdamFromC(float *w, const float *g, float *m, float *v, int64_t n);

namespace {

// Slots sized for one tensor, zero-initialised as the header requires.
struct Slots {
  explicit Slots(int64_t n) : a(n, 0.0f), b(n, 0.0f), c(n, 0.0f) {}
  std::vector<float> a, b, c;
};

int step(const Fixture &f, float *w, const float *g, Slots &s, int64_t n, int64_t t) {
  std::string kind = f.param("kind");
  float lr = static_cast<float>(f.floatParam("lr"));
  if (kind == "sgd")
    return fgc_sgd_update(w, g, s.a.data(), n, lr, static_cast<float>(f.floatParam("momentum")),
                          static_cast<int>(f.intParam("nesterov")));
  if (kind == "rmsprop")
    return fgc_rmsprop_update(w, g, s.a.data(), s.b.data(), s.c.data(), n, lr,
                              static_cast<float>(f.floatParam("rho")),
                              static_cast<float>(f.floatParam("momentum")),
                              static_cast<float>(f.floatParam("epsilon")),
                              static_cast<int>(f.intParam("centered")),
                              f.param("variant") == "tf2" ? FGC_RMSPROP_TF2 : FGC_RMSPROP_KERAS3);
  if (kind == "adam")
    return fgc_adam_update(w, g, s.a.data(), s.b.data(), s.c.data(), n, t, lr,
                           static_cast<float>(f.floatParam("beta_1")),
                           static_cast<float>(f.floatParam("beta_2")),
                           static_cast<float>(f.floatParam("epsilon")),
                           static_cast<int>(f.intParam("amsgrad")));
  if (kind == "adamw")
    return fgc_adamw_update(w, g, s.a.data(), s.b.data(), s.c.data(), n, t, lr,
                            static_cast<float>(f.floatParam("weight_decay")),
                            static_cast<float>(f.floatParam("beta_1")),
                            static_cast<float>(f.floatParam("beta_2")),
                            static_cast<float>(f.floatParam("epsilon")),
                            static_cast<int>(f.intParam("amsgrad")));
  if (kind == "adagrad")
    return fgc_adagrad_update(w, g, s.a.data(), n, lr,
                              static_cast<float>(f.floatParam("epsilon")));
  FAIL("unknown optimizer " << kind);
  return -1;
}

// The final slots' names in the fixture, in Slots order (a, b, c).
std::vector<std::string> slotNames(const std::string &kind) {
  if (kind == "sgd")
    return {"velocity"};
  if (kind == "rmsprop")
    return {"ms", "mom", "mg"};
  if (kind == "adagrad")
    return {"acc"};
  return {"m", "v", "vhat"};
}

const char *const OptimizerCases[] = {
    "opt_sgd", "opt_sgd_momentum", "opt_sgd_nesterov", "opt_rmsprop", "opt_rmsprop_small",
    "opt_rmsprop_small_keras3", "opt_rmsprop_momentum_small", "opt_rmsprop_centered",
    "opt_rmsprop_centered_momentum", "opt_adam", "opt_adam_small", "opt_adam_amsgrad",
    "opt_adamw", "opt_adamw_default", "opt_adagrad", "opt_adagrad_fast"};

} // namespace

TEST_CASE("optimizer steps follow the Keras formulas", "[optim][optimizer]") {
  for (const char *name : OptimizerCases) {
    Fixture f = optimCase(name);
    INFO("case " << name);
    std::vector<float> w = f.floats("w0"), grads = f.floats("grads"), want = f.floats("weights");
    int64_t n = static_cast<int64_t>(w.size());
    int64_t steps = f.shape("grads")[0];
    Slots slots(n);
    if (f.param("kind") == "adagrad")
      REQUIRE(fgc_adagrad_init(slots.a.data(), n,
                               static_cast<float>(f.floatParam("initial"))) == FGC_OK);
    for (int64_t t = 1; t <= steps; ++t) {
      REQUIRE(step(f, w.data(), grads.data() + (t - 1) * n, slots, n, t) == FGC_OK);
      checkNear(w.data(), want.data() + (t - 1) * n, n, 2e-6,
                std::string(name) + " step " + std::to_string(t));
    }
    std::vector<float> *buffers[] = {&slots.a, &slots.b, &slots.c};
    std::vector<std::string> names = slotNames(f.param("kind"));
    for (size_t k = 0; k < names.size(); ++k) {
      std::vector<float> expected = f.floats("slot_" + names[k]);
      // Slot values are far smaller than 1 for tiny gradients: compare them relative to their
      // own scale.
      double scale = 0;
      for (float e : expected)
        scale = std::max(scale, double(std::fabs(e)));
      for (float &e : expected)
        e = scale > 0 ? static_cast<float>(e / scale) : e;
      std::vector<float> actual = *buffers[k];
      for (float &a : actual)
        a = scale > 0 ? static_cast<float>(a / scale) : a;
      checkNear(actual.data(), expected.data(), n, 1e-5, std::string(name) + " slot " + names[k]);
    }
  }
}

TEST_CASE("RMSprop's epsilon placement is visible with tiny gradients", "[optim][optimizer]") {
  // The same gradients give clearly different weights with epsilon outside (tf.keras 2.x,
  // momentum 0) and inside (Keras 3) the root, so the fixtures pin the choice.
  Fixture tf2 = optimCase("opt_rmsprop_small"), keras3 = optimCase("opt_rmsprop_small_keras3");
  std::vector<float> a = tf2.floats("weights"), b = keras3.floats("weights");
  double diff = 0;
  for (size_t i = 0; i < a.size(); ++i)
    diff = std::max(diff, double(std::fabs(a[i] - b[i])));
  CHECK(diff > 1e-3);
}

TEST_CASE("optimizer updates do not depend on the thread count", "[optim][optimizer]") {
  const int64_t n = 300001;
  std::vector<float> g(n), w0(n);
  for (int64_t i = 0; i < n; ++i) {
    g[i] = std::sin(0.37f * static_cast<float>(i));
    w0[i] = std::cos(0.11f * static_cast<float>(i));
  }
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2, 3}) {
    fgc_set_num_threads(threads);
    std::vector<float> w = w0, m(n, 0.0f), v(n, 0.0f), ms(n, 0.0f), mom(n, 0.0f);
    for (int64_t t = 1; t <= 3; ++t) {
      REQUIRE(fgc_adamw_update(w.data(), g.data(), m.data(), v.data(), nullptr, n, t, 1e-3f,
                               0.004f, 0.9f, 0.999f, 1e-7f, 0) == FGC_OK);
      REQUIRE(fgc_rmsprop_update(w.data(), g.data(), ms.data(), mom.data(), nullptr, n, 1e-3f,
                                 0.9f, 0.5f, 1e-7f, 0, FGC_RMSPROP_TF2) == FGC_OK);
    }
    float *list[] = {w.data(), m.data()};
    int64_t sizes[] = {n, n};
    REQUIRE(fgc_clip_by_global_norm(list, sizes, 2, 1.0f, nullptr) == FGC_OK);
    results.push_back(w);
  }
  fgc_set_num_threads(0);
  CHECK(results[0] == results[1]);
  CHECK(results[0] == results[2]);
}

TEST_CASE("the C ABI is callable from C", "[optim][optimizer]") {
  float w[3] = {1, 2, 3}, g[3] = {0.5f, -1, 2}, m[3] = {}, v[3] = {};
  float w2[3] = {1, 2, 3}, m2[3] = {}, v2[3] = {};
  REQUIRE(fgcTestAdamFromC(w, g, m, v, 3) == FGC_OK);
  REQUIRE(fgc_adam_update(w2, g, m2, v2, nullptr, 3, 1, 1e-3f, 0.9f, 0.999f, 1e-7f, 0) == FGC_OK);
  for (int i = 0; i < 3; ++i)
    CHECK(w[i] == w2[i]);
  // The first Adam step moves every weight by about lr against its gradient's sign.
  CHECK(w[0] == Approx(1 - 1e-3).epsilon(1e-5));
}

TEST_CASE("optimizer argument checks", "[optim][optimizer]") {
  float w[2] = {1, 2}, g[2] = {1, 1}, s[2] = {0, 0}, s2[2] = {0, 0};
  CHECK(fgc_sgd_update(w, g, nullptr, 2, 0.01f, 0.9f, 0) == FGC_ERR_INVALID_ARGUMENT);
  CHECK(std::string(fgc_last_error()).find("velocity is null") != std::string::npos);
  CHECK(fgc_sgd_update(w, g, nullptr, 0, 0.01f, 0.0f, 0) == FGC_ERR_INVALID_ARGUMENT);
  CHECK(fgc_adam_update(w, g, s, s2, nullptr, 2, 0, 1e-3f, 0.9f, 0.999f, 1e-7f, 0) ==
        FGC_ERR_INVALID_ARGUMENT);
  CHECK(std::string(fgc_last_error()).find("t must be >= 1") != std::string::npos);
  CHECK(fgc_adam_update(w, g, s, s2, nullptr, 2, 1, 1e-3f, 0.9f, 0.999f, 1e-7f, 1) ==
        FGC_ERR_INVALID_ARGUMENT);
  CHECK(fgc_adam_update(w, g, s, s2, nullptr, 2, 1, 1e-3f, 1.0f, 0.999f, 1e-7f, 0) ==
        FGC_ERR_INVALID_ARGUMENT);
  CHECK(fgc_rmsprop_update(w, g, s, nullptr, nullptr, 2, 1e-3f, 0.9f, 0.0f, 1e-7f, 1,
                           FGC_RMSPROP_TF2) == FGC_ERR_INVALID_ARGUMENT);
  CHECK(fgc_rmsprop_update(w, g, s, nullptr, nullptr, 2, 1e-3f, 0.9f, 0.0f, 1e-7f, 0,
                           static_cast<fgc_rmsprop_variant>(7)) == FGC_ERR_INVALID_ARGUMENT);
  CHECK(std::string(fgc_last_error()).find("unknown variant 7") != std::string::npos);
  CHECK(fgc_adagrad_init(s, 2, -1.0f) == FGC_ERR_INVALID_ARGUMENT);
  CHECK(w[0] == 1);
  CHECK(w[1] == 2);
}

TEST_CASE("gradient clipping matches NumPy", "[optim][clip]") {
  Fixture f = optimCase("clipping");
  int count = static_cast<int>(f.intParam("count"));
  std::vector<std::vector<float>> tensors;
  std::vector<int64_t> sizes;
  for (int k = 0; k < count; ++k) {
    tensors.push_back(f.floats("t" + std::to_string(k)));
    sizes.push_back(static_cast<int64_t>(tensors.back().size()));
  }
  std::vector<const float *> in;
  for (auto &t : tensors)
    in.push_back(t.data());
  double norm = 0;
  REQUIRE(fgc_global_norm(in.data(), sizes.data(), count, &norm) == FGC_OK);
  CHECK(norm == Approx(f.floatParam("global_norm")).epsilon(1e-12));

  float clip = static_cast<float>(f.floatParam("clip_norm"));
  std::vector<std::vector<float>> global = tensors, each = tensors, value = tensors;
  std::vector<float *> out;
  for (auto &t : global)
    out.push_back(t.data());
  double before = 0;
  REQUIRE(fgc_clip_by_global_norm(out.data(), sizes.data(), count, clip, &before) == FGC_OK);
  CHECK(before == norm);
  for (int k = 0; k < count; ++k) {
    std::string id = std::to_string(k);
    if (sizes[k] == 0)
      continue;
    checkNear(global[k].data(), f.floats("global" + id).data(), sizes[k], 1e-6, "global " + id);
    REQUIRE(fgc_clip_by_norm(each[k].data(), sizes[k], clip) == FGC_OK);
    checkNear(each[k].data(), f.floats("each" + id).data(), sizes[k], 1e-6, "each " + id);
    REQUIRE(fgc_clip_by_value(value[k].data(), sizes[k],
                              static_cast<float>(f.floatParam("clip_value"))) == FGC_OK);
    checkNear(value[k].data(), f.floats("value" + id).data(), sizes[k], 0, "value " + id);
  }
  // Below the threshold nothing changes, bit for bit.
  std::vector<std::vector<float>> small = tensors;
  std::vector<float *> smallOut;
  for (auto &t : small)
    smallOut.push_back(t.data());
  REQUIRE(fgc_clip_by_global_norm(smallOut.data(), sizes.data(), count, 1e6f, nullptr) == FGC_OK);
  CHECK(small == tensors);
  // A non-finite norm poisons every gradient, as tf.clip_by_global_norm does.
  float inf[2] = {INFINITY, 1.0f};
  float *infList[] = {inf};
  int64_t two[] = {2};
  REQUIRE(fgc_clip_by_global_norm(infList, two, 1, 1.0f, nullptr) == FGC_OK);
  CHECK(std::isnan(inf[1]));
  CHECK(fgc_clip_by_norm(inf, 2, 0.0f) == FGC_ERR_INVALID_ARGUMENT);
  CHECK(fgc_clip_by_value(inf, 2, -1.0f) == FGC_ERR_INVALID_ARGUMENT);
  CHECK(fgc_global_norm(in.data(), sizes.data(), count, nullptr) == FGC_ERR_INVALID_ARGUMENT);
}

TEST_CASE("learning-rate schedules match Keras's definitions", "[optim][schedule]") {
  Fixture f = optimCase("schedules");
  fgc::runtime::NpyArray steps = f.array("steps");
  fgc::runtime::NpyArray exp0 = f.array("exponential0"), exp1 = f.array("exponential1"),
                         cosine = f.array("cosine"), piecewise = f.array("piecewise");
  const int64_t boundaries[2] = {10, 25};
  const double values[3] = {1.0, 0.5, 0.1};
  for (int64_t i = 0; i < steps.size(); ++i) {
    int64_t s = steps.data<int64_t>()[i];
    INFO("step " << s);
    double lr = 0;
    REQUIRE(fgc_lr_exponential_decay(0.1, 7, 0.5, 0, s, &lr) == FGC_OK);
    CHECK(lr == Approx(exp0.data<double>()[i]).epsilon(1e-14));
    REQUIRE(fgc_lr_exponential_decay(0.1, 7, 0.5, 1, s, &lr) == FGC_OK);
    CHECK(lr == Approx(exp1.data<double>()[i]).epsilon(1e-14));
    REQUIRE(fgc_lr_cosine_decay(0.2, 40, 0.1, s, &lr) == FGC_OK);
    CHECK(lr == Approx(cosine.data<double>()[i]).epsilon(1e-14));
    REQUIRE(fgc_lr_piecewise_constant(boundaries, values, 2, s, &lr) == FGC_OK);
    CHECK(lr == piecewise.data<double>()[i]);
  }
  double lr = 0;
  CHECK(fgc_lr_exponential_decay(0.1, 0, 0.5, 0, 1, &lr) == FGC_ERR_INVALID_ARGUMENT);
  CHECK(fgc_lr_cosine_decay(0.1, 10, 0.0, -1, &lr) == FGC_ERR_INVALID_ARGUMENT);
  const int64_t unordered[2] = {5, 5};
  CHECK(fgc_lr_piecewise_constant(unordered, values, 2, 0, &lr) == FGC_ERR_INVALID_ARGUMENT);
  CHECK(std::string(fgc_last_error()).find("boundaries must increase") != std::string::npos);
}
