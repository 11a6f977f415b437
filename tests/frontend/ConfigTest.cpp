// Config normalization against each op's declared attributes: Keras's defaults filled in,
// scalars broadcast to tuples where Keras accepts both, initializer names turned into objects,
// and unknown keys, wrong types, bad tuple lengths and bad choices rejected with the layer named.
#include "compiler/ir/OpRegistry.h"

#include <catch2/catch.hpp>

using namespace fgc;

namespace {

const std::vector<AttrSpec> &specsOf(const std::string &cls) {
  const OpDef *def = OpRegistry::global().find(cls);
  REQUIRE(def != nullptr);
  return def->attrs;
}

std::vector<int64_t> ints(const AttrValue &v) {
  REQUIRE(v.value_case() == AttrValue::kInts);
  return {v.ints().values().begin(), v.ints().values().end()};
}

const std::string kWhat = "layer 'conv' (Conv2D)";

} // namespace

TEST_CASE("Conv2D config: defaults are Keras's and kernel_size broadcasts", "[config]") {
  auto config = normalizeConfig(specsOf("Conv2D"),
                                {{"filters", makeInt(32)}, {"kernel_size", makeInt(3)}}, kWhat);
  REQUIRE(config);
  const AttrMap &c = *config;
  CHECK(c.at("filters").i() == 32);
  CHECK(ints(c.at("kernel_size")) == std::vector<int64_t>{3, 3});
  CHECK(ints(c.at("strides")) == std::vector<int64_t>{1, 1});
  CHECK(ints(c.at("dilation_rate")) == std::vector<int64_t>{1, 1});
  CHECK(c.at("padding").s() == "valid");
  CHECK(c.at("data_format").s() == "channels_last");
  CHECK(c.at("activation").s() == "linear");
  CHECK(c.at("use_bias").b());
  CHECK(c.at("groups").i() == 1);
  CHECK(c.at("trainable").b());
  CHECK(c.at("dtype").s() == "float32");
  CHECK(c.at("kernel_initializer").obj().class_name() == "GlorotUniform");
  CHECK(c.at("bias_initializer").obj().class_name() == "Zeros");
  CHECK(c.at("kernel_regularizer").value_case() == AttrValue::kNone);
  CHECK(attrToString(c.at("kernel_size")) == "(3, 3)");
}

TEST_CASE("config values convert where Keras would accept them", "[config]") {
  auto config = normalizeConfig(specsOf("Conv2D"),
                                {{"filters", makeFloat(16.0)},
                                 {"kernel_size", makeInts({5, 3})},
                                 {"strides", makeInt(2)},
                                 {"kernel_initializer", makeString("he_normal")}},
                                kWhat);
  REQUIRE(config);
  CHECK(config->at("filters").value_case() == AttrValue::kI);
  CHECK(config->at("filters").i() == 16);
  CHECK(ints(config->at("kernel_size")) == std::vector<int64_t>{5, 3});
  CHECK(ints(config->at("strides")) == std::vector<int64_t>{2, 2});
  CHECK(config->at("kernel_initializer").obj().class_name() == "HeNormal");

  auto dense = normalizeConfig(specsOf("Dense"), {{"units", makeInt(10)}}, "layer 'd' (Dense)");
  REQUIRE(dense);
  CHECK(dense->at("activation").s() == "linear");
  CHECK(dense->at("use_bias").b());
  // Keras's Dropout has a default-None noise_shape and seed.
  auto dropout =
      normalizeConfig(specsOf("Dropout"), {{"rate", makeFloat(0.25)}}, "layer 'x' (Dropout)");
  REQUIRE(dropout);
  CHECK(dropout->at("noise_shape").value_case() == AttrValue::kNone);
  CHECK(dropout->at("seed").value_case() == AttrValue::kNone);
}

TEST_CASE("config errors name the layer, the key and what was expected", "[config]") {
  auto check = [](const AttrMap &given, const std::vector<std::string> &expected) {
    auto config = normalizeConfig(specsOf("Conv2D"), given, kWhat);
    REQUIRE_FALSE(config);
    const std::string &m = config.error().message();
    INFO(m);
    CHECK(m.rfind(kWhat + ": ", 0) == 0);
    for (const auto &e : expected)
      CHECK(m.find(e) != std::string::npos);
  };
  const AttrValue filters = makeInt(8), kernel = makeInt(3);
  SECTION("unknown key") {
    check({{"filters", filters}, {"kernel_size", kernel}, {"kernal_size", kernel}},
          {"unknown config key 'kernal_size'", "kernel_size"});
  }
  SECTION("wrong type") {
    check({{"filters", makeString("eight")}, {"kernel_size", kernel}},
          {"'filters' must be an integer", "'eight'"});
  }
  SECTION("non-integral number for an integer") {
    check({{"filters", makeFloat(2.5)}, {"kernel_size", kernel}}, {"'filters'", "2.5"});
  }
  SECTION("tuple of the wrong length") {
    check({{"filters", filters}, {"kernel_size", makeInts({3, 3, 3})}},
          {"'kernel_size'", "of length 2", "(3, 3, 3)"});
  }
  SECTION("value outside the allowed choices") {
    check({{"filters", filters}, {"kernel_size", kernel}, {"padding", makeString("causal")}},
          {"'padding'", "'valid'", "'same'", "'causal'"});
  }
  SECTION("None where None is not allowed") {
    check({{"filters", filters}, {"kernel_size", makeNone()}}, {"'kernel_size'", "None"});
  }
  SECTION("missing required key") {
    check({{"kernel_size", kernel}}, {"missing required config key 'filters'"});
  }
}

TEST_CASE("nonDefaultConfig keeps exactly what differs from Keras's defaults", "[config]") {
  auto config = normalizeConfig(
      specsOf("Conv2D"),
      {{"filters", makeInt(8)}, {"kernel_size", makeInt(3)}, {"padding", makeString("same")},
       {"strides", makeInts({1, 1})}},
      kWhat);
  REQUIRE(config);
  AttrMap kept = nonDefaultConfig(specsOf("Conv2D"), *config);
  std::vector<std::string> keys;
  for (const auto &[k, v] : kept)
    keys.push_back(k);
  CHECK(keys == std::vector<std::string>{"filters", "kernel_size", "padding"});
}
