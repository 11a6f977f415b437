// Shape inference and parameter shapes of each op, against results Keras documents or that follow
// from Keras's formulas (worked out in the comments, not taken from fgc's output): conv output
// lengths, pooling, transposed convolutions, resampling, reshapes, recurrent and embedding
// layers, merges and normalization, and the parameter counts `model.summary()` prints.
#include "ModelSketch.h"

using namespace fgc;
using namespace fgc::test;

namespace {

using Shape = std::vector<Dim>;
constexpr Dim N = kDynamic;

// One layer of class `cls` applied to an input of `inputShape`; returns the built graph.
std::unique_ptr<Graph> single(const std::string &cls, const AttrMap &config,
                              const Shape &inputShape,
                              const std::string &dtype = "float32") {
  ModelSketch m("single");
  m.input("x", inputShape, dtype);
  m.layer(cls, "layer", config, {"x"});
  m.output("layer");
  return m.build();
}

// Shapes are compared as Keras prints them, so every run-time dimension reads None whatever
// symbol the IR gives it.
std::string S(const Shape &shape) { return shapeToString(shape); }
std::vector<std::string> SS(const std::vector<Shape> &shapes) {
  std::vector<std::string> out;
  for (const auto &s : shapes)
    out.push_back(shapeToString(s));
  return out;
}

std::string outShape(const std::string &cls, const AttrMap &config, const Shape &inputShape) {
  return S(outputShape(*single(cls, config, inputShape), "layer"));
}

AttrMap conv(int64_t filters, int64_t k, int64_t stride, const std::string &padding) {
  return {{"filters", makeInt(filters)},
          {"kernel_size", makeInt(k)},
          {"strides", makeInt(stride)},
          {"padding", makeString(padding)}};
}

std::vector<Shape> paramShapes(const Graph &g, const std::string &layer) {
  std::vector<Shape> out;
  for (const auto &p : g.findLayer(layer)->params)
    out.push_back(p.type.shape);
  return out;
}

} // namespace

TEST_CASE("Conv2D output sizes follow Keras's conv_output_length", "[shapes]") {
  // valid: floor((n - k) / s) + 1; same: ceil(n / s).
  CHECK(outShape("Conv2D", conv(32, 3, 1, "valid"), {N, 28, 28, 1}) == S({N, 26, 26, 32}));
  CHECK(outShape("Conv2D", conv(8, 3, 2, "valid"), {N, 28, 28, 1}) == S({N, 13, 13, 8}));
  CHECK(outShape("Conv2D", conv(8, 3, 2, "same"), {N, 28, 28, 1}) == S({N, 14, 14, 8}));
  CHECK(outShape("Conv2D", conv(8, 4, 2, "valid"), {N, 28, 28, 1}) == S({N, 13, 13, 8}));
  CHECK(outShape("Conv2D", conv(8, 4, 2, "same"), {N, 7, 7, 3}) == S({N, 4, 4, 8}));
  CHECK(outShape("Conv2D", conv(8, 4, 1, "same"), {N, 7, 7, 3}) == S({N, 7, 7, 8}));
  CHECK(outShape("Conv2D", conv(8, 3, 1, "valid"), {N, N, 9, 3}) == S({N, N, 7, 8}));
  // A rectangular kernel and strides: h = 10 - 5 + 1 = 6, w = floor((9 - 3) / 2) + 1 = 4.
  CHECK(outShape("Conv2D",
                 {{"filters", makeInt(2)},
                  {"kernel_size", makeInts({5, 3})},
                  {"strides", makeInts({1, 2})}},
                 {N, 10, 9, 3}) == S({N, 6, 4, 2}));
  // Dilation 2 makes a 3x3 kernel span 5: 10 - 5 + 1 = 6.
  CHECK(outShape("Conv2D",
                 {{"filters", makeInt(2)},
                  {"kernel_size", makeInt(3)},
                  {"dilation_rate", makeInt(2)}},
                 {N, 10, 10, 1}) == S({N, 6, 6, 2}));

  auto g = single("Conv2D", conv(32, 3, 1, "valid"), {N, 28, 28, 1});
  CHECK(paramShapes(*g, "layer") == std::vector<Shape>{{3, 3, 1, 32}, {32}});
  CHECK(g->countParams() == 3 * 3 * 1 * 32 + 32);
}

TEST_CASE("pooling and global pooling", "[shapes]") {
  CHECK(outShape("MaxPooling2D", {{"pool_size", makeInt(3)}}, {N, 24, 24, 16}) ==
        S({N, 8, 8, 16}));
  CHECK(outShape("MaxPooling2D", {}, {N, 7, 7, 4}) == S({N, 3, 3, 4}));
  CHECK(outShape("MaxPooling2D", {{"padding", makeString("same")}}, {N, 7, 7, 4}) ==
        S({N, 4, 4, 4}));
  CHECK(outShape("AveragePooling2D", {{"pool_size", makeInt(3)}, {"strides", makeInt(2)}},
                 {N, 7, 7, 4}) == S({N, 3, 3, 4}));
  CHECK(outShape("GlobalAveragePooling2D", {}, {N, 7, 7, 32}) == S({N, 32}));
  CHECK(outShape("GlobalMaxPooling2D", {{"keepdims", makeBool(true)}}, {N, 7, 7, 32}) ==
        S({N, 1, 1, 32}));
  CHECK(outShape("GlobalAveragePooling1D", {}, {N, 10, 6}) == S({N, 6}));
}

TEST_CASE("Conv2DTranspose output sizes follow Keras's deconv_output_length", "[shapes]") {
  // No output_padding: valid n*s + max(k - s, 0), same n*s.
  CHECK(outShape("Conv2DTranspose", conv(16, 3, 2, "valid"), {N, 7, 7, 8}) ==
        S({N, 15, 15, 16}));
  CHECK(outShape("Conv2DTranspose", conv(16, 3, 2, "same"), {N, 7, 7, 8}) == S({N, 14, 14, 16}));
  CHECK(outShape("Conv2DTranspose", conv(16, 4, 2, "valid"), {N, 7, 7, 8}) ==
        S({N, 16, 16, 16}));
  CHECK(outShape("Conv2DTranspose", conv(16, 3, 1, "valid"), {N, 7, 7, 8}) == S({N, 9, 9, 16}));
  // With output_padding p: (n - 1)*s + k - 2*pad + p, pad = k // 2 for same and 0 for valid.
  AttrMap same = conv(16, 3, 2, "same");
  same["output_padding"] = makeInt(1);
  CHECK(outShape("Conv2DTranspose", same, {N, 7, 7, 8}) == S({N, 14, 14, 16}));
  AttrMap valid = conv(16, 3, 2, "valid");
  valid["output_padding"] = makeInts({1, 0});
  CHECK(outShape("Conv2DTranspose", valid, {N, 7, 7, 8}) == S({N, 16, 15, 16}));

  auto g = single("Conv2DTranspose", conv(16, 3, 2, "same"), {N, 7, 7, 8});
  // Keras's transposed kernel is (kh, kw, filters, in_channels).
  CHECK(paramShapes(*g, "layer") == std::vector<Shape>{{3, 3, 16, 8}, {16}});
  CHECK(g->countParams() == 3 * 3 * 16 * 8 + 16);
}

TEST_CASE("resampling and reshaping", "[shapes]") {
  CHECK(outShape("UpSampling2D", {}, {N, 5, 4, 3}) == S({N, 10, 8, 3}));
  CHECK(outShape("UpSampling2D", {{"size", makeInts({2, 3})}}, {N, 5, 4, 3}) ==
        S({N, 10, 12, 3}));
  CHECK(outShape("Reshape", {{"target_shape", makeInts({-1, 4})}}, {N, 12}) == S({N, 3, 4}));
  CHECK(outShape("Reshape", {{"target_shape", makeInts({2, -1, 3})}}, {N, 4, 6}) ==
        S({N, 2, 4, 3}));
  CHECK(outShape("Reshape", {{"target_shape", makeInts({6, 2})}}, {N, 3, 4}) == S({N, 6, 2}));
  CHECK(outShape("Flatten", {}, {N, 3, 3, 64}) == S({N, 576}));
  CHECK(outShape("Dense", {{"units", makeInt(3)}}, {N, 10, 5}) == S({N, 10, 3}));
}

TEST_CASE("LSTM outputs and parameters", "[shapes]") {
  const Shape in = {N, 10, 5};
  auto lstm = [](bool sequences, bool state) {
    return AttrMap{{"units", makeInt(8)},
                   {"return_sequences", makeBool(sequences)},
                   {"return_state", makeBool(state)}};
  };
  auto g = single("LSTM", lstm(false, false), in);
  CHECK(SS(outputShapes(*g, "layer")) == SS({{N, 8}}));
  // 4 gates, each with a kernel (in, u), a recurrent kernel (u, u) and a bias (u): 4u(in + u + 1).
  CHECK(g->countParams() == 4 * 8 * (5 + 8 + 1));
  CHECK(paramShapes(*g, "layer") == std::vector<Shape>{{5, 32}, {8, 32}, {32}});
  auto shapesOf = [&](bool sequences, bool state) {
    return SS(outputShapes(*single("LSTM", lstm(sequences, state), in), "layer"));
  };
  CHECK(shapesOf(true, false) == SS({{N, 10, 8}}));
  CHECK(shapesOf(false, true) == SS({{N, 8}, {N, 8}, {N, 8}}));
  CHECK(shapesOf(true, true) == SS({{N, 10, 8}, {N, 8}, {N, 8}}));
}

TEST_CASE("Embedding", "[shapes]") {
  auto g = single("Embedding", {{"input_dim", makeInt(1000)}, {"output_dim", makeInt(64)}},
                  {N, 10}, "int32");
  CHECK(S(outputShape(*g, "layer")) == S({N, 10, 64}));
  CHECK(g->findLayer("layer")->calls[0]->outputs[0]->type.dtype == schema::FLOAT32);
  CHECK(g->countParams() == 1000 * 64);
}

TEST_CASE("Concatenate and Add", "[shapes]") {
  auto merge = [](const std::string &cls, const AttrMap &config, const Shape &a, const Shape &b) {
    ModelSketch m("merge");
    m.input("a", a);
    m.input("b", b);
    m.layer(cls, "merge", config, {"a", "b"});
    m.output("merge");
    return S(outputShape(*m.build(), "merge"));
  };
  CHECK(merge("Concatenate", {}, {N, 4, 3}, {N, 4, 5}) == S({N, 4, 8}));
  CHECK(merge("Concatenate", {{"axis", makeInt(1)}}, {N, 2, 3}, {N, 5, 3}) == S({N, 7, 3}));
  // Keras takes the non-axis dimensions from the first input.
  CHECK(merge("Concatenate", {}, {N, N, 3}, {N, 6, 5}) == S({N, N, 8}));
  CHECK(merge("Add", {}, {N, 4}, {N, 4}) == S({N, 4}));
  CHECK(merge("Average", {}, {N, 2, 3}, {N, 2, 3}) == S({N, 2, 3}));
}

TEST_CASE("BatchNormalization parameters: half of them are not trainable", "[shapes]") {
  auto g = single("BatchNormalization", {}, {N, 10});
  CHECK(S(outputShape(*g, "layer")) == S({N, 10}));
  // gamma and beta are trained; moving_mean and moving_variance are not.
  CHECK(g->countParams() == 4 * 10);
  CHECK(g->countTrainableParams() == 2 * 10);
  const auto &params = g->findLayer("layer")->params;
  REQUIRE(params.size() == 4);
  CHECK(params[0].name == "gamma");
  CHECK(params[1].name == "beta");
  CHECK(params[2].name == "moving_mean");
  CHECK_FALSE(params[2].trainable);
  CHECK(params[3].name == "moving_variance");
  CHECK_FALSE(params[3].trainable);

  auto frozen = single("BatchNormalization", {{"trainable", makeBool(false)}}, {N, 6, 6, 32});
  CHECK(frozen->countParams() == 128);
  CHECK(frozen->countTrainableParams() == 0);
}

TEST_CASE("Keras's MNIST convnet example has Keras's summary numbers", "[shapes]") {
  // keras.io/examples/vision/mnist_convnet: 34,826 parameters.
  ModelSketch m("mnist");
  m.input("image", {N, 28, 28, 1});
  m.layer("Conv2D", "conv2d", conv(32, 3, 1, "valid"), {"image"});
  m.layer("MaxPooling2D", "max_pooling2d", {}, {"conv2d"});
  m.layer("Conv2D", "conv2d_1", conv(64, 3, 1, "valid"), {"max_pooling2d"});
  m.layer("MaxPooling2D", "max_pooling2d_1", {}, {"conv2d_1"});
  m.layer("Flatten", "flatten", {}, {"max_pooling2d_1"});
  m.layer("Dropout", "dropout", {{"rate", makeFloat(0.5)}}, {"flatten"});
  m.layer("Dense", "dense", {{"units", makeInt(10)}, {"activation", makeString("softmax")}},
          {"dropout"});
  m.output("dense");
  auto g = m.build();
  CHECK(S(outputShape(*g, "conv2d")) == S({N, 26, 26, 32}));
  CHECK(S(outputShape(*g, "max_pooling2d")) == S({N, 13, 13, 32}));
  CHECK(S(outputShape(*g, "conv2d_1")) == S({N, 11, 11, 64}));
  CHECK(S(outputShape(*g, "max_pooling2d_1")) == S({N, 5, 5, 64}));
  CHECK(S(outputShape(*g, "flatten")) == S({N, 1600}));
  CHECK(S(outputShape(*g, "dense")) == S({N, 10}));
  CHECK(g->findLayer("conv2d_1")->countParams() == 18496);
  CHECK(g->findLayer("dense")->countParams() == 16010);
  CHECK(g->countParams() == 34826);
  CHECK(g->countTrainableParams() == 34826);
}

TEST_CASE("a shared layer is built once and counted once", "[shapes]") {
  ModelSketch m("shared");
  m.input("a", {N, 4});
  m.input("b", {N, 4});
  auto &dense = m.layer("Dense", "shared", {{"units", makeInt(3)}}, {"a"});
  ModelSketch::call(dense, {"b"});
  m.layer("Add", "sum", {}, {"shared:0", "shared:1"});
  m.output("sum");
  auto g = m.build();
  CHECK(S(outputShape(*g, "shared", 1)) == S({N, 3}));
  CHECK(g->countParams() == 4 * 3 + 3);
}
