// Shapes, parameter shapes and counts of the layers added for Keras import, against Keras's
// formulas (worked out in the comments) and the counts Keras's model.summary() prints for the
// same layers; plus the config errors each one reports.
#include "ModelSketch.h"

using namespace fgc;
using namespace fgc::test;

namespace {

using Shape = std::vector<Dim>;
constexpr Dim N = kDynamic;

std::unique_ptr<Graph> single(const std::string &cls, const AttrMap &config, const Shape &in) {
  ModelSketch m("single");
  m.input("x", in);
  m.layer(cls, "layer", config, {"x"});
  m.output("layer");
  return m.build();
}

std::string S(const Shape &shape) { return shapeToString(shape); }

std::vector<std::string> shapes(const Graph &g) {
  std::vector<std::string> out;
  for (const auto &s : outputShapes(g, "layer"))
    out.push_back(S(s));
  return out;
}

std::string outShape(const std::string &cls, const AttrMap &config, const Shape &in) {
  return S(outputShape(*single(cls, config, in), "layer"));
}

std::vector<Shape> paramShapes(const Graph &g) {
  std::vector<Shape> out;
  for (const auto &p : g.findLayer("layer")->params)
    out.push_back(p.type.shape);
  return out;
}

// The error building a one-layer model reports.
std::string errorOf(const std::string &cls, const AttrMap &config, const Shape &in) {
  ModelSketch m("single");
  m.input("x", in);
  m.layer(cls, "layer", config, {"x"});
  m.output("layer");
  auto g = m.tryBuild();
  REQUIRE_FALSE(g);
  return g.error().message();
}

AttrValue wrapped(const std::string &cls, const AttrMap &config) {
  return makeObject(cls, config);
}

} // namespace

TEST_CASE("Conv1D output lengths and weights", "[shapes][keras_layers]") {
  auto conv = [](int64_t k, int64_t s, const std::string &padding, int64_t d = 1) {
    return AttrMap{{"filters", makeInt(4)}, {"kernel_size", makeInt(k)},
                   {"strides", makeInt(s)}, {"padding", makeString(padding)},
                   {"dilation_rate", makeInt(d)}};
  };
  // valid: floor((n - k) / s) + 1; same and causal: ceil(n / s); dilation d spans (k-1)d + 1.
  CHECK(outShape("Conv1D", conv(3, 1, "valid"), {N, 10, 2}) == S({N, 8, 4}));
  CHECK(outShape("Conv1D", conv(3, 2, "valid"), {N, 10, 2}) == S({N, 4, 4}));
  CHECK(outShape("Conv1D", conv(3, 2, "same"), {N, 11, 2}) == S({N, 6, 4}));
  CHECK(outShape("Conv1D", conv(4, 1, "causal", 2), {N, 10, 2}) == S({N, 10, 4}));
  CHECK(outShape("Conv1D", conv(3, 3, "causal"), {N, 10, 2}) == S({N, 4, 4}));
  CHECK(outShape("Conv1D", conv(3, 1, "valid", 2), {N, 10, 2}) == S({N, 6, 4}));
  CHECK(outShape("Conv1D", conv(3, 1, "causal"), {N, N, 2}) == S({N, N, 4}));
  // Keras's kernel (kernel_size, in, filters): the seizure model's conv1d (3, 1, 64) has 256.
  AttrMap k3 = {{"filters", makeInt(64)}, {"kernel_size", makeInt(3)}};
  auto g = single("Conv1D", k3, {N, 178, 1});
  CHECK(paramShapes(*g) == std::vector<Shape>{{3, 1, 64}, {64}});
  CHECK(g->countParams() == 3 * 1 * 64 + 64);
  CHECK_THAT(errorOf("Conv1D", conv(5, 1, "valid"), {N, 3, 2}),
             Catch::Contains("too small for kernel_size (5,)"));
  CHECK_THAT(errorOf("Conv1D", conv(3, 1, "full"), {N, 8, 2}),
             Catch::Contains("'padding' must be a string (one of 'valid' 'same' 'causal')"));
  CHECK_THAT(errorOf("Conv1D", conv(3, 1, "valid"), {N, 8, 2, 1}),
             Catch::Contains("expects a rank-3 input (batch, steps, channels)"));
}

TEST_CASE("1D pooling", "[shapes][keras_layers]") {
  CHECK(outShape("MaxPooling1D", {}, {N, 9, 3}) == S({N, 4, 3}));
  CHECK(outShape("MaxPooling1D", {{"padding", makeString("same")}}, {N, 9, 3}) == S({N, 5, 3}));
  CHECK(outShape("AveragePooling1D", {{"pool_size", makeInt(3)}, {"strides", makeInt(1)}},
                 {N, 9, 3}) == S({N, 7, 3}));
  CHECK(outShape("GlobalMaxPooling1D", {}, {N, 9, 3}) == S({N, 3}));
  CHECK(outShape("GlobalMaxPooling1D", {{"keepdims", makeBool(true)}}, {N, 9, 3}) ==
        S({N, 1, 3}));
  CHECK_THAT(errorOf("MaxPooling1D", {{"pool_size", makeInt(4)}}, {N, 3, 2}),
             Catch::Contains("smaller than pool_size (4,)"));
}

TEST_CASE("ZeroPadding2D and Cropping2D take Keras's three argument forms",
          "[shapes][keras_layers]") {
  const Shape in = {N, 6, 7, 3};
  CHECK(outShape("ZeroPadding2D", {}, in) == S({N, 8, 9, 3}));                 // default 1
  CHECK(outShape("ZeroPadding2D", {{"padding", makeInt(2)}}, in) == S({N, 10, 11, 3}));
  CHECK(outShape("ZeroPadding2D", {{"padding", makeInts({1, 3})}}, in) == S({N, 8, 13, 3}));
  // ((top, bottom), (left, right)) = ((1, 0), (2, 1)), flat.
  CHECK(outShape("ZeroPadding2D", {{"padding", makeInts({1, 0, 2, 1})}}, in) ==
        S({N, 7, 10, 3}));
  CHECK(outShape("Cropping2D", {}, in) == S({N, 6, 7, 3}));
  CHECK(outShape("Cropping2D", {{"cropping", makeInt(1)}}, in) == S({N, 4, 5, 3}));
  CHECK(outShape("Cropping2D", {{"cropping", makeInts({2, 1})}}, in) == S({N, 2, 5, 3}));
  CHECK(outShape("Cropping2D", {{"cropping", makeInts({0, 1, 2, 3})}}, in) == S({N, 5, 2, 3}));
  CHECK(outShape("Cropping2D", {{"cropping", makeInt(1)}}, {N, N, 7, 3}) == S({N, N, 5, 3}));
  CHECK(single("ZeroPadding2D", {}, in)->countParams() == 0);
  CHECK_THAT(errorOf("Cropping2D", {{"cropping", makeInts({3, 0})}}, in),
             Catch::Contains("cropping (3, 0) leaves nothing of input (None, 6, 7, 3)"));
  CHECK_THAT(errorOf("ZeroPadding2D", {{"padding", makeInts({1, 2, 3})}}, in),
             Catch::Contains("pair of pairs"));
  CHECK_THAT(errorOf("ZeroPadding2D", {{"padding", makeInt(-1)}}, in),
             Catch::Contains("padding must be between 0"));
}

TEST_CASE("Permute, LeakyReLU and SpatialDropout2D", "[shapes][keras_layers]") {
  CHECK(outShape("Permute", {{"dims", makeInts({2, 1})}}, {N, 10, 64}) == S({N, 64, 10}));
  CHECK(outShape("Permute", {{"dims", makeInts({3, 1, 2})}}, {N, 4, 5, 6}) == S({N, 6, 4, 5}));
  CHECK_THAT(errorOf("Permute", {{"dims", makeInts({0, 1})}}, {N, 4, 5}),
             Catch::Contains("dims (0, 1) must be a permutation of 1..2"));
  CHECK_THAT(errorOf("Permute", {{"dims", makeInts({1, 1})}}, {N, 4, 5}),
             Catch::Contains("must be a permutation"));
  CHECK_THAT(errorOf("Permute", {{"dims", makeInts({1})}}, {N, 4, 5}),
             Catch::Contains("must be a permutation"));
  CHECK(outShape("LeakyReLU", {}, {N, 7}) == S({N, 7}));
  CHECK(outShape("LeakyReLU", {{"negative_slope", makeFloat(0.1)}}, {N, 7}) == S({N, 7}));
  CHECK_THAT(errorOf("LeakyReLU", {{"alpha", makeFloat(0.2)}, {"negative_slope", makeFloat(0.1)}},
                     {N, 7}),
             Catch::Contains("alpha (0.2) and negative_slope (0.1) disagree"));
  CHECK(outShape("SpatialDropout2D", {{"rate", makeFloat(0.2)}}, {N, 4, 4, 8}) ==
        S({N, 4, 4, 8}));
  CHECK_THAT(errorOf("SpatialDropout2D", {}, {N, 4, 4, 8}),
             Catch::Contains("missing required config key 'rate'"));
  CHECK_THAT(errorOf("SpatialDropout2D", {{"rate", makeFloat(0.2)}}, {N, 4, 8}),
             Catch::Contains("expects a rank-4 input"));
}

TEST_CASE("GRU outputs and Keras's weight layouts", "[shapes][keras_layers]") {
  const Shape in = {N, 10, 16};
  AttrMap cfg = {{"units", makeInt(16)}};
  auto g = single("GRU", cfg, in);
  // reset_after (TF2's default): kernel (in, 3u), recurrent (u, 3u), bias (2, 3u); the hls4ml
  // model's gru has 3 * 16 * (16 + 16 + 2) = 1632 parameters.
  CHECK(paramShapes(*g) == std::vector<Shape>{{16, 48}, {16, 48}, {2, 48}});
  CHECK(g->countParams() == 1632);
  cfg["reset_after"] = makeBool(false);
  CHECK(paramShapes(*single("GRU", cfg, in)) == std::vector<Shape>{{16, 48}, {16, 48}, {48}});
  cfg["return_sequences"] = makeBool(true);
  cfg["return_state"] = makeBool(true);
  CHECK(shapes(*single("GRU", cfg, in)) == std::vector<std::string>{S({N, 10, 16}), S({N, 16})});
  // An initial state is one tensor [h].
  ModelSketch m("gru_state");
  m.input("x", {N, 4, 3});
  m.input("h", {N, 6});
  m.input("c", {N, 6});
  m.layer("GRU", "layer", {{"units", makeInt(6)}}, {"x", "h", "c"});
  m.output("layer");
  auto bad = m.tryBuild();
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message(), Catch::Contains("takes 1 to 2 input(s), got 3"));
}

TEST_CASE("Bidirectional wraps LSTM and GRU", "[shapes][keras_layers]") {
  const Shape in = {N, 10, 4};
  AttrMap lstm = {{"units", makeInt(8)}, {"return_sequences", makeBool(true)}};
  auto g = single("Bidirectional", {{"layer", wrapped("LSTM", lstm)}}, in);
  CHECK(shapes(*g) == std::vector<std::string>{S({N, 10, 16})});
  // Two LSTMs of 4u(in + u + 1) = 416 each, forward weights first (the dl4j file's
  // bidirectional_1: forward_lstm_4 then backward_lstm_4, kernel (4, 16)).
  CHECK(g->countParams() == 2 * 4 * 8 * (4 + 8 + 1));
  std::vector<std::string> names;
  for (const auto &p : g->findLayer("layer")->params)
    names.push_back(p.name);
  CHECK(names == std::vector<std::string>{"forward_kernel", "forward_recurrent_kernel",
                                          "forward_bias", "backward_kernel",
                                          "backward_recurrent_kernel", "backward_bias"});
  for (const char *mode : {"sum", "mul", "ave"})
    CHECK(shapes(*single("Bidirectional",
                         {{"layer", wrapped("LSTM", lstm)}, {"merge_mode", makeString(mode)}},
                         in)) == std::vector<std::string>{S({N, 10, 8})});
  CHECK(shapes(*single("Bidirectional", {{"layer", wrapped("LSTM", lstm)}, {"merge_mode", makeNone()}},
                       in)) == std::vector<std::string>{S({N, 10, 8}), S({N, 10, 8})});
  // return_state: the merged output, then forward (h, c), then backward (h, c).
  AttrMap states = {{"units", makeInt(8)}, {"return_state", makeBool(true)},
                    {"name", makeString("lstm_4")}};
  CHECK(shapes(*single("Bidirectional", {{"layer", wrapped("LSTM", states)}}, in)) ==
        std::vector<std::string>{S({N, 16}), S({N, 8}), S({N, 8}), S({N, 8}), S({N, 8})});
  AttrMap gru = {{"units", makeInt(5)}, {"return_state", makeBool(true)}};
  auto bg = single("Bidirectional", {{"layer", wrapped("GRU", gru)}}, in);
  CHECK(shapes(*bg) == std::vector<std::string>{S({N, 10}), S({N, 5}), S({N, 5})});
  CHECK(bg->countParams() == 2 * 3 * 5 * (4 + 5 + 2));

  CHECK_THAT(errorOf("Bidirectional", {{"layer", wrapped("SimpleRNN", {{"units", makeInt(3)}})}},
                     in),
             Catch::Contains("Bidirectional wraps an LSTM or GRU layer, got 'SimpleRNN'"));
  CHECK_THAT(errorOf("Bidirectional", {{"layer", wrapped("LSTM", {{"unitz", makeInt(3)}})}}, in),
             Catch::Contains("wrapped LSTM layer: unknown config key 'unitz'"));
  CHECK_THAT(errorOf("Bidirectional", {{"layer", wrapped("LSTM", lstm)},
                                       {"merge_mode", makeString("max")}},
                     in),
             Catch::Contains("'merge_mode' must be a string"));
  CHECK_THAT(errorOf("Bidirectional", {{"layer", wrapped("GRU", gru)},
                                       {"backward_layer", wrapped("GRU", gru)}},
                     in),
             Catch::Contains("an explicit backward_layer other than the wrapped layer with "
                             "go_backwards flipped is not supported"));
  // Keras 3 writes the derived backward layer out: accepted, same shapes as without it.
  AttrMap mirrored = gru;
  mirrored["go_backwards"] = makeBool(true);
  CHECK(shapes(*single("Bidirectional", {{"layer", wrapped("GRU", gru)},
                                         {"backward_layer", wrapped("GRU", mirrored)}},
                       in)) ==
        shapes(*single("Bidirectional", {{"layer", wrapped("GRU", gru)}}, in)));
  CHECK_THAT(errorOf("Bidirectional", {{"layer", wrapped("GRU", gru)}}, {N, 4}),
             Catch::Contains("wrapped GRU: expects a rank-3 input"));
}

TEST_CASE("Attention shapes and weights", "[shapes][keras_layers]") {
  auto attention = [](const AttrMap &config, const std::vector<Shape> &ins) {
    ModelSketch m("attention");
    std::vector<std::string> names;
    for (size_t i = 0; i < ins.size(); ++i) {
      names.push_back("in" + std::to_string(i));
      m.input(names.back(), ins[i]);
    }
    m.layer("Attention", "layer", config, names);
    m.output("layer");
    return m.tryBuild();
  };
  auto g = attention({}, {{N, 3, 8}, {N, 5, 8}});
  REQUIRE(g);
  CHECK(S(outputShape(**g, "layer")) == S({N, 3, 8}));
  CHECK((*g)->countParams() == 0);
  g = attention({{"use_scale", makeBool(true)}, {"score_mode", makeString("concat")}},
                {{N, 3, 8}, {N, 5, 6}, {N, 5, 8}});
  REQUIRE(g);
  CHECK(S(outputShape(**g, "layer")) == S({N, 3, 6}));
  CHECK((*g)->countParams() == 2); // scale and concat_score_weight, both scalars
  auto bad = attention({}, {{N, 3, 8}, {N, 5, 6}});
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message(), Catch::Contains("must have the same last dimension"));
  bad = attention({}, {{N, 3, 8}, {N, 5, 6}, {N, 4, 8}});
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message(), Catch::Contains("same number of steps"));
  bad = attention({}, {{N, 3, 8}});
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message(), Catch::Contains("takes 2 to 3 input(s), got 1"));
}
