// Tiny custom layers, one per primitive tensor operation (fgc::keras::ops), for the fixtures of
// tests/reference/custom_primitives.py: the class PrimitiveCase, whose config names the case.
// Each case's weights (add_weight order, as the fixture's meta.json lists them) and call()
// mirror the script's PyTorch function of the same name. Registered in-process by
// PrimitiveOpsTest.cpp (the JIT) and by the plugin primitive_plugin.cpp (`fgc --plugin`, for
// the generated C++).
#pragma once

#include <fgc/keras.h>

#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace primitive_cases {

using fgc::keras::Shape;
using fgc::keras::Tensor;
using Weights = std::map<std::string, Tensor>;

struct Case {
  std::vector<std::pair<std::string, Shape>> weights;
  std::function<Tensor(const std::vector<Tensor> &, const Weights &)> call;
};

inline const std::map<std::string, Case> &cases() {
  namespace ops = fgc::keras::ops;
  static const std::map<std::string, Case> c = {
      {"matmul", {{{"w", {4, 5}}}, [](auto &x, auto &w) { return ops::matmul(x[0], w.at("w")); }}},
      {"add", {{{"b", {4}}}, [](auto &x, auto &w) { return x[0] + w.at("b"); }}},
      {"subtract", {{{"w", {3, 4}}}, [](auto &x, auto &w) { return w.at("w") - x[0]; }}},
      {"multiply", {{{"s", {1}}}, [](auto &x, auto &w) { return (x[0] * w.at("s")) * x[0]; }}},
      {"divide", {{{"w", {3, 4}}}, [](auto &x, auto &w) { return x[0] / w.at("w"); }}},
      {"reduce_sum",
       {{{"w", {3, 4}}}, [](auto &x, auto &w) { return ops::reduce_sum(x[0] * w.at("w"), 1); }}},
      {"reduce_mean",
       {{{"w", {3, 4}}},
        [](auto &x, auto &w) { return ops::reduce_mean(x[0] * w.at("w"), -1, true); }}},
      {"reduce_max",
       {{{"w", {3, 4}}}, [](auto &x, auto &w) { return ops::reduce_max(x[0] * w.at("w"), 2); }}},
      {"slice",
       {{{"w", {3, 4}}}, [](auto &x, auto &w) { return ops::slice(x[0] * w.at("w"), 2, 1, 2); }}},
      {"take",
       {{{"w", {3, 4}}}, [](auto &x, auto &w) { return ops::take(x[0] * w.at("w"), 1, -1); }}},
      {"stack",
       {{{"w", {3, 4}}}, [](auto &x, auto &w) { return ops::stack({x[0], x[0] * w.at("w")}, 2); }}},
      {"concat",
       {{{"w", {3, 4}}},
        [](auto &x, auto &w) { return ops::concat({x[0], x[0] * w.at("w")}, -1); }}},
      {"reshape",
       {{{"w", {3, 4}}},
        [](auto &x, auto &w) { return ops::reshape(x[0] * w.at("w"), {2, -1}); }}},
      {"transpose",
       {{{"w", {3, 4}}},
        [](auto &x, auto &w) { return ops::transpose(x[0] * w.at("w"), {0, 2, 1}); }}},
      {"transpose_weight",
       {{{"w", {5, 4}}},
        [](auto &x, auto &w) { return ops::matmul(x[0], ops::transpose(w.at("w"))); }}},
      {"gather_rows",
       {{{"table", {6, 4}}}, [](auto &x, auto &w) { return ops::gather(w.at("table"), x[0]); }}},
      {"gather_axis1",
       {{{"w", {3, 4}}},
        [](auto &x, auto &w) { return ops::gather(x[0] * w.at("w"), x[1], 1, 1); }}},
      {"gather_axis2",
       {{{"w", {3, 4}}},
        [](auto &x, auto &w) { return ops::gather(x[0] * w.at("w"), x[1], 2, 1); }}},
  };
  return c;
}

} // namespace primitive_cases

// The case `name` of primitive_cases::cases() as a custom layer (config {"case": name}).
class PrimitiveCase : public fgc::keras::CustomLayer {
public:
  explicit PrimitiveCase(std::string name) : name_(std::move(name)) {}
  explicit PrimitiveCase(const fgc::keras::Config &config) : name_(config.at("case").s()) {}

  void build_multi(const std::vector<fgc::keras::Shape> &) override {
    auto it = primitive_cases::cases().find(name_);
    if (it == primitive_cases::cases().end())
      throw std::runtime_error("no primitive case '" + name_ + "'");
    for (const auto &[name, shape] : it->second.weights)
      weights_[name] = add_weight(name, shape, "random_normal");
  }
  std::vector<fgc::keras::Tensor> call_multi(const std::vector<fgc::keras::Tensor> &x) override {
    return {primitive_cases::cases().at(name_).call(x, weights_)};
  }
  fgc::keras::Config get_config() const override {
    return {{"case", fgc::keras::makeString(name_)}};
  }

private:
  std::string name_;
  primitive_cases::Weights weights_;
};
