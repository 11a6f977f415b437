// The C++ functional API behaves like Keras's: automatic names, shared layers, nested models,
// errors at call time naming the layer and shapes, and lossless config / file round trips.
#include "compiler/report/Summary.h"
#include "fgc/keras.h"
#include "frontend/ModelFile.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <unistd.h>

using namespace fgc::keras;
namespace fs = std::filesystem;

namespace {
std::string messageOf(const std::function<void()> &f) {
  try {
    f();
  } catch (const fgc::Exception &e) {
    return e.what();
  }
  return "";
}
} // namespace

TEST_CASE("layers and models get Keras's automatic names", "[api][names]") {
  clear_session();
  auto in = Input({784});
  CHECK(in.layerName() == "input_1");
  auto d0 = layers::Dense(64);
  auto d1 = layers::Dense(64);
  auto c = layers::Conv2DTranspose(1, 3);
  auto g = layers::GlobalMaxPooling2D();
  CHECK(d0.name() == "dense");
  CHECK(d1.name() == "dense_1");
  CHECK(c.name() == "conv2d_transpose");
  CHECK(g.name() == "global_max_pooling2d");
  CHECK(layers::UpSampling2D().name() == "up_sampling2d");
  CHECK(layers::BatchNormalization().name() == "batch_normalization");
  CHECK(layers::LSTM(4).name() == "lstm");
  Model m(in, d1(d0(in)));
  CHECK(m.name() == "model");
  CHECK(Input({3}).layerName() == "input_2");
  clear_session();
  CHECK(layers::Dense(1).name() == "dense");
}

TEST_CASE("symbolic shapes follow Keras", "[api][shapes]") {
  clear_session();
  auto in = Input({28, 28, 1});
  CHECK(in.shapeString() == "(None, 28, 28, 1)");
  CHECK(in.dtype() == "float32");
  auto x = layers::Conv2D(16, 3, {.strides = 2, .padding = "same"})(in);
  CHECK(x.shapeString() == "(None, 14, 14, 16)");
  x = layers::MaxPooling2D(3)(x);
  CHECK(x.shapeString() == "(None, 4, 4, 16)");
  auto seq = Input({None}, {.dtype = "int32"});
  auto emb = layers::Embedding(100, 8)(seq);
  CHECK(emb.shapeString() == "(None, None, 8)");
  auto lstm = layers::LSTM(5, {.return_sequences = true, .return_state = true});
  auto outs = lstm.callMulti({emb});
  REQUIRE(outs.size() == 3);
  CHECK(outs[0].shapeString() == "(None, None, 5)");
  CHECK(outs[1].shapeString() == "(None, 5)");
  CHECK(lstm.count_params() == 4 * 5 * (8 + 5 + 1));
  CHECK_THROWS_WITH(lstm(emb), Catch::Contains("returns 3 tensors"));
}

TEST_CASE("calling a layer again shares it", "[api][shared]") {
  clear_session();
  auto shared = layers::Dense(4);
  auto a = Input({3}, {.name = "a"});
  auto b = Input({3}, {.name = "b"});
  Model m({a, b}, {shared(a), shared(b)}, "siamese");
  CHECK(m.graph().countParams() == 3 * 4 + 4);
  auto summary = m.summary_string();
  CHECK(summary.find("a[0][0]") != std::string::npos);
  CHECK(summary.find("b[0][0]") != std::string::npos);
  CHECK(m.graph().findLayer("dense")->calls.size() == 2);
  CHECK_THROWS_WITH(shared.output(), Catch::Contains("has 2 calls"));
}

TEST_CASE("errors surface at call time with the layer and the shapes", "[api][errors]") {
  clear_session();
  auto in = Input({32});
  auto x = layers::Dense(64)(in);
  auto y = layers::Dense(32)(in);
  std::string msg = messageOf([&] { layers::add({x, y}); });
  CHECK_THAT(msg, Catch::StartsWith("shape mismatch when calling layer 'add' (Add) on "
                                    "(None, 64) from 'dense', (None, 32) from 'dense_1'"));
  auto shared = layers::Dense(8, {.name = "proj"});
  shared(x);
  msg = messageOf([&] { shared(y); });
  CHECK_THAT(msg, Catch::Contains("layer 'proj' (Dense)"));
  CHECK_THAT(msg, Catch::Contains("(None, 64)"));
  CHECK_THAT(msg, Catch::Contains("(None, 32)"));
  msg = messageOf([&] { layers::Conv2D(4, 3)(in); });
  CHECK_THAT(msg, Catch::Contains("rank-4"));
  msg = messageOf([&] { layers::Dense(4, {.activation = "relux"}); });
  CHECK_THAT(msg, Catch::Contains("activation"));
  CHECK_THAT(msg, Catch::Contains("'relux'"));
  auto other = Input({5});
  msg = messageOf([&] { Model(in, layers::add({x, layers::Dense(64)(other)})); });
  CHECK_THAT(msg, Catch::Contains("graph disconnected"));
}

TEST_CASE("models nest and are called like layers", "[api][nested]") {
  clear_session();
  auto encIn = Input({8}, {.name = "enc_in"});
  Model encoder(encIn, layers::Dense(2)(encIn), "encoder");
  auto decIn = Input({2});
  Model decoder(decIn, layers::Dense(8)(decIn), "decoder");
  auto in = Input({8}, {.name = "img"});
  Model ae(in, decoder(encoder(in)), "autoencoder");
  CHECK(ae.graph().countParams() == (8 * 2 + 2) + (2 * 8 + 8));
  CHECK(ae.summary_string().find("encoder (Functional)         (None, 2)") != std::string::npos);
  auto expanded = ae.summary_string({.expand_nested = true});
  CHECK(expanded.find("|enc_in (InputLayer)") != std::string::npos);
  auto bad = Input({7});
  CHECK_THROWS_WITH(encoder(bad), Catch::Contains("expects shape (None, 8), got (None, 7)"));
}

TEST_CASE("get_config / from_config and save / load_model are lossless", "[api][config]") {
  clear_session();
  auto in = Input({16}, {.name = "x"});
  auto h = layers::Dense(8, {.activation = "tanh", .kernel_initializer = "he_normal"})(in);
  h = layers::Dropout(0.25)(h);
  auto out = layers::Dense(2, {.use_bias = false})(h);
  Model m(in, out, "cfg");
  m.set_seed(42);
  m.compile({.optimizer = optimizers::Adam(0.01),
             .loss = {{"", losses::MeanSquaredError()}},
             .metrics = {"mae"}});

  auto config = m.get_config();
  Model rebuilt = Model::from_config(config);
  CHECK(fgc::serializeModel(rebuilt.get_config(), fgc::ModelFormat::Text) ==
        fgc::serializeModel(config, fgc::ModelFormat::Text));
  CHECK(rebuilt.seed() == 42);

  fs::path file = fs::temp_directory_path() / ("fgc_api_cfg_" + std::to_string(::getpid()) + ".pb");
  m.save(file.string());
  Model loaded = load_model(file.string());
  CHECK(loaded.summary_string() == m.summary_string());
  CHECK(fgc::serializeModel(loaded.get_config(), fgc::ModelFormat::Binary) ==
        fgc::serializeModel(config, fgc::ModelFormat::Binary));
  fs::remove(file);

  auto layerConfig = m.get_layer("dense").get_config();
  CHECK(layerConfig.at("activation").s() == "tanh");
  CHECK(layerConfig.at("kernel_initializer").obj().class_name() == "HeNormal");
  CHECK(layerConfig.at("bias_initializer").obj().class_name() == "Zeros");
  auto copy = Layer::from_config("Dense", layerConfig);
  CHECK(copy.name() == "dense");
  CHECK(copy.get_config().at("units").i() == 8);
}

TEST_CASE("model.layers and layer.output support feature extraction", "[api][features]") {
  clear_session();
  auto in = Input({4});
  auto a = layers::Dense(3)(in);
  auto b = layers::Dense(2)(a);
  Model m(in, b);
  std::vector<Tensor> features;
  for (const Layer &l : m.layers())
    features.push_back(l.output());
  Model f(m.inputs(), features, "features");
  REQUIRE(f.outputs().size() == 3);
  CHECK(f.outputs()[1].shapeString() == "(None, 3)");
  CHECK(f.graph().outputs.size() == 3);
}

TEST_CASE("optimizers take a learning-rate schedule, serialized as Keras does", "[api][config]") {
  clear_session();
  auto in = Input({4});
  auto out = layers::Dense(2)(in);
  Model m(in, out, "scheduled");
  m.compile({.optimizer = optimizers::SGD(optimizers::schedules::ExponentialDecay(0.1, 100, 0.96),
                                          {.momentum = 0.9}),
             .loss = {{"", losses::MeanSquaredError()}}});
  // {"class_name": "ExponentialDecay", "config": {...}} as a nested object.
  const fgc::schema::Model config = m.get_config();
  const auto &opt = config.training().optimizer();
  CHECK(opt.class_name() == "SGD");
  const auto &lr = opt.attrs().at("learning_rate");
  REQUIRE(lr.value_case() == fgc::schema::AttrValue::kObj);
  CHECK(lr.obj().class_name() == "ExponentialDecay");
  CHECK(lr.obj().attrs().at("initial_learning_rate").f() == 0.1);
  CHECK(lr.obj().attrs().at("decay_steps").i() == 100);
  CHECK(lr.obj().attrs().at("decay_rate").f() == 0.96);
  CHECK(lr.obj().attrs().at("staircase").b() == false);
  CHECK(opt.attrs().at("momentum").f() == 0.9);

  fs::path file = fs::temp_directory_path() / ("fgc_api_lr_" + std::to_string(::getpid()) + ".pbtxt");
  m.save(file.string());
  Model loaded = load_model(file.string());
  CHECK(fgc::serializeModel(loaded.get_config(), fgc::ModelFormat::Text) ==
        fgc::serializeModel(m.get_config(), fgc::ModelFormat::Text));
  fs::remove(file);

  // A constant still works the usual way, and CosineDecay is the other schedule.
  CHECK(optimizers::Adam(0.01).config.at("learning_rate").f() == 0.01);
  auto cosine = optimizers::RMSprop(optimizers::schedules::CosineDecay(1e-3, 50, 0.1));
  CHECK(cosine.config.at("learning_rate").obj().class_name() == "CosineDecay");
  CHECK(cosine.config.at("learning_rate").obj().attrs().at("alpha").f() == 0.1);
}
