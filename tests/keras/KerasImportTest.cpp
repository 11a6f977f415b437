// Keras import: the real-file corpus, bad and truncated files, Keras's inconsistencies.
//
// Files come from tests/data/keras (redistributable copies) or FGC_KERAS_MODELS (the corpus
// folder; tests needing it are skipped with a message when it is absent). Parameter counts are
// checked against tests/fixtures/keras/weight_params.json, the number of weight elements each
// file stores as counted with h5py by tests/reference/keras_import.py.
#include "compiler/ir/OpRegistry.h"
#include "compiler/report/Summary.h"
#include "frontend/GraphBuilder.h"
#include "frontend/ModelFile.h"
#include "frontend/importers/Hdf5File.h"
#include "frontend/importers/KerasImport.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <tuple>

#include <unistd.h>

namespace fs = std::filesystem;

namespace {

const std::string kData = std::string(FGC_SOURCE_DIR) + "/tests/data/keras/";

// The file's path, or empty when neither the copy nor the corpus has it.
std::string locate(const std::string &rel) {
  std::string base = fs::path(rel).filename().string();
  if (fs::exists(kData + base))
    return kData + base;
  std::string corpus = std::string(FGC_KERAS_MODELS) + "/" + rel;
  return fs::exists(corpus) ? corpus : std::string();
}

nlohmann::json weightParams() {
  std::ifstream in(std::string(FGC_SOURCE_DIR) + "/tests/fixtures/keras/weight_params.json");
  REQUIRE(in);
  return nlohmann::json::parse(in);
}

std::string readBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void writeBytes(const std::string &path, const std::string &bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

fs::path tempDir(const std::string &name) {
  fs::path d = fs::temp_directory_path() / ("fgc_keras_" + name + "_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

struct CorpusEntry {
  std::string file;
  std::string weights;                 // separate weights file, or empty
  std::vector<std::string> needs;      // layer classes a pending op registration provides
  std::string error;                   // expected message fragment; empty: imports
};

// Every file of the corpus and what it must give.
const std::vector<CorpusEntry> &corpus() {
  static const std::vector<CorpusEntry> entries = {
      {"keras2/dl4j_reshape_embedding_concat.json", "", {}, ""},
      {"keras2/dl4j_simple_add.json", "", {}, ""},
      {"keras2/dl4j_agz_dual_res.json", "", {}, ""},
      {"keras2/dl4j_tfkeras_cnn2d_113_conv2dtranspose.h5", "",
       {"SpatialDropout2D", "ZeroPadding2D", "Cropping2D"}, ""},
      {"keras2/dl4j_embedding_lstm_tensorflow_2.h5", "", {}, ""},
      // Keras applies this file's Attention to rank-2 (batch, 32) tensors, which attends across
      // the batch (scores of shape (batch, batch)); fgc refuses rather than mixing samples.
      {"keras2/dl4j_keras_attention.h5", "", {"Attention"},
       "layer 'attention' (Attention): expects a rank-3 input (batch, steps, dim), got (None, 32)"},
      {"keras2/kotlindl_toyresnet_modelConfig.json", "keras2/kotlindl_toyresnet_weights.h5", {},
       ""},
      {"keras2/kotlindl_toyresnet_weights.h5", "", {},
       "holds only weights (model.save_weights); import the model's architecture"},
      {"keras2/hls4ml_KERAS_3layer_batch_norm.json",
       "keras2/hls4ml_KERAS_3layer_batch_norm_weights.h5", {}, ""},
      {"keras2/hls4ml_KERAS_3layer_batch_norm_weights.h5", "", {}, "holds only weights"},
      {"keras2/hls4ml_jetTagger_Conv2D_Small.json",
       "keras2/hls4ml_jetTagger_Conv2D_Small_weights.h5", {}, ""},
      {"keras2/hls4ml_jetTagger_Conv2D_Small_weights.h5", "", {}, "holds only weights"},
      {"keras2/fdeep_lstm_multi_io.h5", "", {"Bidirectional"}, ""},
      {"keras2/knime_3in_3out.h5", "", {}, ""},
      {"keras2/gan-hm_wgangp_critic.h5", "", {},
       "layer 'random_weighted_average_1': unknown layer class 'RandomWeightedAverage', a custom "
       "layer (not part of Keras): register it with fgc's custom-layer API "
       "(register_custom_layer<T>(\"RandomWeightedAverage\") in C++"},
      {"keras2/seizure_ensemble_model.h5", "", {"Conv1D", "MaxPooling1D"}, ""},
      {"keras2/synthgen_gan_nested_sequential.h5", "", {}, ""},
      {"keras2/tiramisu_fc_dense67_func.json", "", {"Permute"}, ""},
      {"keras2/hls4ml_hostpipe_parallel_h5_named.keras", "", {"Conv1D", "GRU"}, ""},
      {"keras3/nanotag_ae_model.keras", "", {}, ""},
      {"keras3/nanotag_siamese_model.keras", "", {},
       "layer 'lambda_3' (Lambda) holds a Python function (marshalled bytecode); fgc cannot "
       "compile Python code"},
      {"keras3/doorlock_siamese_model.json", "", {},
       "layer 'l1': unknown layer class 'L1', a custom layer (not part of Keras): register it "
       "with fgc's custom-layer API (register_custom_layer<T>(\"L1\")"},
      {"keras3/doorlock_siamese_model_0.7.keras", "", {},
       "layer 'lambda' (Lambda) holds a Python function"},
      {"keras3/saheart_functional_model.keras", "", {}, ""},
      {"keras3/keras_pre_pr22362_nested_container.keras", "", {},
       "is a subclassed Keras model (class 'legacy_nested_container>NestedDenseModel'): its "
       "config holds no layer graph"},
      {"keras3/airquality_bilstm_keras3_legacy.h5", "", {"Bidirectional"}, ""},
      // Written in tf.keras 2.10's layout by tests/reference/keras_files.py.
      {"seed_autoencoder_nested.h5", "", {}, ""},
      {"siamese_concat.json", "siamese_concat_weights.h5", {}, ""},
  };
  return entries;
}

} // namespace

TEST_CASE("every file of the Keras corpus imports, or fails with its specific message",
          "[keras]") {
  nlohmann::json params = weightParams();
  int imported = 0, failed = 0;
  for (const auto &e : corpus()) {
    SECTION(e.file) {
      std::string path = locate(e.file);
      if (path.empty()) {
        WARN("skipped: " << e.file << " is not in tests/data/keras nor in " << FGC_KERAS_MODELS);
        return;
      }
      fgc::KerasImportOptions options;
      if (!e.weights.empty()) {
        options.weightsPath = locate(e.weights);
        if (options.weightsPath.empty()) {
          WARN("skipped: " << e.weights << " is not available");
          return;
        }
      }
      auto r = fgc::importKerasFile(path, options);
      for (const auto &cls : e.needs)
        if (!fgc::OpRegistry::global().find(cls)) {
          // Until the op is registered the import must say exactly that.
          REQUIRE_FALSE(r);
          CHECK(r.error().message().find("unknown layer class '") != std::string::npos);
          CHECK(r.error().message().rfind(path + ": ", 0) == 0);
          WARN("pending: " << e.file << " needs layer class " << cls
                           << ", not registered yet: " << r.error().message().substr(0, 160));
          return;
        }
      if (!e.error.empty()) {
        REQUIRE_FALSE(r);
        INFO(r.error().message());
        CHECK(r.error().message().rfind(path + ": ", 0) == 0);
        CHECK(r.error().message().find(e.error) != std::string::npos);
        ++failed;
        return;
      }
      INFO((r ? std::string() : r.error().message()));
      REQUIRE(r);
      fgc::BuildOptions bo;
      bo.fileName = path;
      auto g = fgc::buildGraph(r->model, bo);
      REQUIRE(g);
      std::string base = fs::path(e.file).filename().string();
      if (params.contains(base)) {
        REQUIRE(r->hasWeights);
        CHECK((*g)->countParams() == params[base].get<int64_t>());
      }
      std::string summary = fgc::modelSummary(**g);
      CHECK(summary.find("Model: \"" + (*g)->name + "\"") == 0);
      CHECK(summary.find("Total params: ") != std::string::npos);
      // The written fgc model reads back to the same graph.
      auto again = fgc::parseModel(fgc::serializeModel(r->model, fgc::ModelFormat::Binary), "x");
      REQUIRE(again);
      auto g2 = fgc::buildGraph(*again, bo);
      REQUIRE(g2);
      CHECK(fgc::modelSummary(**g2) == summary);
      ++imported;
    }
  }
  (void)imported;
  (void)failed;
}

TEST_CASE("Keras node numbering: nested models' calls from 1 in Keras 2, from 0 in Keras 3 args",
          "[keras]") {
  SECTION("Keras 2: outputs ['model_2', 2|1|3, 0] of a shared nested model") {
    std::string path = locate("keras2/gan-hm_wgangp_critic.h5");
    if (path.empty())
      return;
    // The file fails on its custom layer before anything else; numbering is checked on the
    // nested Sequential files below and in the synthetic model of the next case.
    auto r = fgc::importKerasFile(path);
    CHECK_FALSE(r);
  }
  SECTION("Keras 3: decoder(encoder(x)) with output_layers ['decoder', 1, 0]") {
    std::string path = locate("keras3/nanotag_ae_model.keras");
    if (path.empty()) {
      WARN("skipped: nanotag_ae_model.keras not available");
      return;
    }
    auto r = fgc::importKerasFile(path);
    REQUIRE(r);
    const auto &m = r->model;
    REQUIRE(m.outputs_size() == 1);
    CHECK(m.outputs(0).layer() == "decoder");
    CHECK(m.outputs(0).node_index() == 0);
    for (const auto &l : m.layers())
      if (l.name() == "decoder") {
        REQUIRE(l.nodes_size() == 1);
        CHECK(l.nodes(0).inputs(0).layer() == "encoder");
        CHECK(l.nodes(0).inputs(0).node_index() == 0);
      }
  }
}

// A Keras 3 to_json() of a shared nested Sequential whose consumer names call 0 twice, as
// Keras 3.2 writes it (the doorlock files of the corpus).
static const char *kKeras32Shared = R"({"module": "keras.src.models.functional",
 "class_name": "Functional", "registered_name": null, "config": {"name": "twin",
 "layers": [
  {"module": "keras.layers", "class_name": "InputLayer", "registered_name": null,
   "config": {"batch_shape": [null, 4], "dtype": "float32", "sparse": false, "name": "a"},
   "name": "a", "inbound_nodes": []},
  {"module": "keras.layers", "class_name": "InputLayer", "registered_name": null,
   "config": {"batch_shape": [null, 4], "dtype": "float32", "sparse": false, "name": "b"},
   "name": "b", "inbound_nodes": []},
  {"module": "keras", "class_name": "Sequential", "registered_name": null,
   "config": {"name": "sequential", "trainable": true, "dtype": "float32", "layers": [
     {"module": "keras.layers", "class_name": "InputLayer", "registered_name": null,
      "config": {"batch_shape": [null, 4], "dtype": "float32", "sparse": false,
                 "name": "input_layer_2"}},
     {"module": "keras.layers", "class_name": "Dense", "registered_name": null,
      "config": {"name": "dense", "trainable": true,
                 "dtype": {"module": "keras", "class_name": "DTypePolicy",
                           "config": {"name": "float32"}, "registered_name": null},
                 "units": 3, "activation": "relu", "use_bias": true,
                 "kernel_initializer": {"module": "keras.initializers",
                   "class_name": "GlorotUniform", "config": {"seed": null},
                   "registered_name": null},
                 "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros",
                   "config": {}, "registered_name": null},
                 "kernel_regularizer": null, "bias_regularizer": null,
                 "activity_regularizer": null, "kernel_constraint": null,
                 "bias_constraint": null}}]},
   "name": "sequential", "inbound_nodes": [
    {"args": [{"class_name": "__keras_tensor__", "config": {"shape": [null, 4],
      "dtype": "float32", "keras_history": ["a", 0, 0]}}], "kwargs": {"mask": null}},
    {"args": [{"class_name": "__keras_tensor__", "config": {"shape": [null, 4],
      "dtype": "float32", "keras_history": ["b", 0, 0]}}], "kwargs": {"mask": null}}]},
  {"module": "keras.layers", "class_name": "Concatenate", "registered_name": null,
   "config": {"name": "concatenate", "trainable": true, "dtype": "float32", "axis": -1},
   "name": "concatenate", "inbound_nodes": [{"args": [[
     {"class_name": "__keras_tensor__", "config": {"shape": [null, 3], "dtype": "float32",
      "keras_history": ["sequential", 0, 0]}},
     {"class_name": "__keras_tensor__", "config": {"shape": [null, 3], "dtype": "float32",
      "keras_history": ["sequential", 0, 0]}}]], "kwargs": {}}]}],
 "input_layers": [["a", 0, 0], ["b", 0, 0]],
 "output_layers": [["concatenate", 0, 0]]}})";

// Keras 2 (tf.keras 2.2) to_json(): a nested Model called twice (its calls numbered from 1),
// an LSTM with return_state (tensor indices 1 and 2) and one fed [x, h, c] as initial state.
static const char *kKeras2Graph = R"({"class_name": "Model", "keras_version": "2.2.4",
 "config": {"name": "outer", "layers": [
  {"class_name": "InputLayer", "name": "x", "config": {"batch_input_shape": [null, 5, 3],
   "dtype": "float32", "sparse": false, "name": "x"}, "inbound_nodes": []},
  {"class_name": "InputLayer", "name": "y", "config": {"batch_input_shape": [null, 5, 3],
   "dtype": "float32", "sparse": false, "name": "y"}, "inbound_nodes": []},
  {"class_name": "Model", "name": "inner", "config": {"name": "inner", "layers": [
    {"class_name": "InputLayer", "name": "i", "config": {"batch_input_shape": [null, 5, 3],
     "dtype": "float32", "sparse": false, "name": "i"}, "inbound_nodes": []},
    {"class_name": "LSTM", "name": "lstm_1", "config": {"name": "lstm_1", "units": 4,
     "return_state": true, "recurrent_activation": "hard_sigmoid"},
     "inbound_nodes": [[["i", 0, 0, {}]]]}],
    "input_layers": [["i", 0, 0]],
    "output_layers": [["lstm_1", 0, 0], ["lstm_1", 0, 1], ["lstm_1", 0, 2]]},
   "inbound_nodes": [[["x", 0, 0, {}]], [["y", 0, 0, {}]]]},
  {"class_name": "LSTM", "name": "lstm_2", "config": {"name": "lstm_2", "units": 4},
   "inbound_nodes": [[["y", 0, 0, {}], ["inner", 1, 1, {}], ["inner", 1, 2, {}]]]},
  {"class_name": "Add", "name": "add_1", "config": {"name": "add_1"},
   "inbound_nodes": [[["inner", 2, 0, {}], ["lstm_2", 0, 0, {}]]]}],
 "input_layers": [["x", 0, 0], ["y", 0, 0]],
 "output_layers": [["add_1", 0, 0], ["inner", 1, 0]]}})";

TEST_CASE("Keras 2 graphs: shared nested models, multi-output layers, initial states",
          "[keras]") {
  fs::path dir = tempDir("k2");
  std::string path = (dir / "k2.json").string();
  writeBytes(path, kKeras2Graph);
  auto r = fgc::importKerasFile(path);
  INFO((r ? std::string() : r.error().message()));
  REQUIRE(r);
  CHECK(r->warnings.empty());
  const auto &m = r->model;
  REQUIRE(m.layers_size() == 5);
  const auto &inner = m.layers(2);
  CHECK(inner.class_name() == "Functional");
  CHECK(inner.nodes_size() == 2);
  const auto &lstm2 = m.layers(3);
  REQUIRE(lstm2.nodes(0).inputs_size() == 3);
  CHECK(lstm2.nodes(0).inputs(1).layer() == "inner");
  CHECK(lstm2.nodes(0).inputs(1).node_index() == 0); // Keras's call 1
  CHECK(lstm2.nodes(0).inputs(1).tensor_index() == 1);
  CHECK(lstm2.nodes(0).inputs(2).tensor_index() == 2);
  const auto &add = m.layers(4);
  CHECK(add.nodes(0).inputs(0).node_index() == 1); // Keras's call 2
  CHECK(m.outputs(1).node_index() == 0);
  fgc::BuildOptions bo;
  bo.fileName = path;
  auto g = fgc::buildGraph(m, bo);
  REQUIRE(g);
  // Parameters: the nested LSTM once (shared), 4 * (3 + 4 + 1) * 4 each LSTM.
  CHECK((*g)->countParams() == 2 * 4 * 4 * (3 + 4 + 1));
  // fgc summary prints Keras's numbering again.
  std::string summary = fgc::modelSummary(**g);
  CHECK(summary.find("inner[2][0]") != std::string::npos);
  CHECK(summary.find("inner[1][1]") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("Keras's inconsistencies are repaired with a warning that explains them", "[keras]") {
  fs::path dir = tempDir("quirk");
  std::string path = (dir / "twin.json").string();
  writeBytes(path, kKeras32Shared);
  auto r = fgc::importKerasFile(path);
  REQUIRE(r);
  REQUIRE(r->warnings.size() == 1);
  CHECK(r->warnings[0].find("the shared nested model 'sequential' has 2 calls, but "
                            "'concatenate' refer(s) to its call 0 every time") !=
        std::string::npos);
  const auto &concat = r->model.layers(3);
  REQUIRE(concat.name() == "concatenate");
  REQUIRE(concat.nodes(0).inputs_size() == 2);
  CHECK(concat.nodes(0).inputs(0).node_index() == 0);
  CHECK(concat.nodes(0).inputs(1).node_index() == 1);
  fs::remove_all(dir);
}

TEST_CASE("bad Keras input: one clear message naming the file and the layer", "[keras]") {
  fs::path dir = tempDir("bad");
  auto importText = [&](const std::string &name, const std::string &text,
                        const std::string &weights = "") {
    std::string path = (dir / name).string();
    writeBytes(path, text);
    fgc::KerasImportOptions o;
    o.weightsPath = weights;
    return fgc::importKerasFile(path, o);
  };
  std::string base = kKeras32Shared;
  SECTION("unknown built-in class") {
    std::string text = base;
    text.replace(text.find("\"Concatenate\""), 13, "\"Maximum\"");
    auto r = importText("unknown.json", text);
    REQUIRE_FALSE(r);
    CHECK(r.error().message().find("layer 'concatenate': unknown layer class 'Maximum': fgc has "
                                   "no layer of this class yet") != std::string::npos);
  }
  SECTION("Lambda of Keras 2 with its bytecode") {
    auto r = importText("lambda.json",
                        R"({"class_name": "Model", "config": {"name": "m", "layers": [
      {"class_name": "InputLayer", "name": "x", "config": {"batch_input_shape": [null, 2],
       "name": "x"}, "inbound_nodes": []},
      {"class_name": "Lambda", "name": "lambda_1", "config": {"name": "lambda_1",
       "function": ["4wEAAAAAAAAAAQAAAAIAAABTAAAAcwgAAAB8AGQBFABTACkCTukCAAAAqQApAdoBeHIA", null,
       null], "function_type": "lambda"}, "inbound_nodes": [[["x", 0, 0, {}]]]}],
      "input_layers": [["x", 0, 0]], "output_layers": [["lambda_1", 0, 0]]}})");
    REQUIRE_FALSE(r);
    CHECK(r.error().message().find("lambda.json: layer 'lambda_1' (Lambda) holds a Python "
                                   "function") != std::string::npos);
  }
  SECTION("custom class of Keras 3 (no module, a registered name)") {
    std::string text = base;
    std::string builtin = R"("module": "keras.layers", "class_name": "Concatenate")";
    text.replace(text.find(builtin), builtin.size(),
                 R"("module": null, "class_name": "PairDistance")");
    auto r = importText("custom3.json", text);
    REQUIRE_FALSE(r);
    CHECK(r.error().message() ==
          (dir / "custom3.json").string() +
              ": layer 'concatenate': unknown layer class 'PairDistance', a custom layer (not part "
              "of Keras): register it with fgc's custom-layer API "
              "(register_custom_layer<T>(\"PairDistance\") in C++, fgc --plugin LIB.so; README, "
              "\"Custom layers\") or replace it with built-in layers");
  }
  SECTION("custom class of Keras 2 (a class Keras does not have)") {
    auto r = importText("custom2.json", R"({"class_name": "Model", "config": {"name": "m",
      "layers": [
      {"class_name": "InputLayer", "name": "x", "config": {"batch_input_shape": [null, 2],
       "name": "x"}, "inbound_nodes": []},
      {"class_name": "RandomWeightedAverage", "name": "rwa", "config": {"name": "rwa"},
       "inbound_nodes": [[["x", 0, 0, {}]]]}],
      "input_layers": [["x", 0, 0]], "output_layers": [["rwa", 0, 0]]}})");
    REQUIRE_FALSE(r);
    CHECK(r.error().message() ==
          (dir / "custom2.json").string() +
              ": layer 'rwa': unknown layer class 'RandomWeightedAverage', a custom layer (not "
              "part of Keras): register it with fgc's custom-layer API "
              "(register_custom_layer<T>(\"RandomWeightedAverage\") in C++, fgc --plugin "
              "LIB.so; README, \"Custom layers\") or replace it with built-in layers");
  }
  SECTION("Lambda of Keras 3 with its bytecode") {
    std::string text = base;
    std::string lambda = R"("module": "keras.layers", "class_name": "Lambda", "registered_name": null,
   "config": {"name": "concatenate", "trainable": true, "dtype": "float32",
     "function": {"class_name": "__lambda__", "config": {"code": "4wEAAAAAAAAAAAAAAAEAAAAF",
       "defaults": null, "closure": null}}, "arguments": {}},)";
    auto at = text.find(R"("module": "keras.layers", "class_name": "Concatenate")");
    auto end = text.find(R"("name": "concatenate", "inbound_nodes")", at);
    text.replace(at, end - at, lambda + " ");
    auto r = importText("lambda3.json", text);
    REQUIRE_FALSE(r);
    CHECK(r.error().message() ==
          (dir / "lambda3.json").string() +
              ": layer 'concatenate' (Lambda) holds a Python function (marshalled bytecode); fgc "
              "cannot compile Python code: replace the Lambda with built-in layers, or with a "
              "custom layer registered with fgc's custom-layer API (register_custom_layer in "
              "C++, fgc --plugin LIB.so; README, \"Custom layers\")");
  }
  SECTION("unsupported config value") {
    std::string text = base;
    text.replace(text.find("\"axis\": -1"), 10, "\"axis\": -1, \"sharding\": \"x\"");
    auto r = importText("key.json", text);
    REQUIRE_FALSE(r);
    CHECK(r.error().message().find("layer 'concatenate' (Concatenate): config key 'sharding' = "
                                   "\"x\" is not supported by fgc's Concatenate") !=
          std::string::npos);
  }
  SECTION("weights of another model") {
    std::string json = locate("keras2/kotlindl_toyresnet_modelConfig.json");
    std::string h5 = locate("keras2/dl4j_embedding_lstm_tensorflow_2.h5");
    REQUIRE(!json.empty());
    fgc::KerasImportOptions o;
    o.weightsPath = h5;
    auto r = fgc::importKerasFile(json, o);
    REQUIRE_FALSE(r);
    CHECK(r.error().message().rfind(h5 + ": ", 0) == 0);
    CHECK(r.error().message().find("the file has weights for layer 'embedding_1', which the "
                                   "model does not have") != std::string::npos);
  }
  SECTION("weights of the wrong shape") {
    // The toy ResNet's weights with the first convolution made wider.
    std::string json = readBytes(locate("keras2/kotlindl_toyresnet_modelConfig.json"));
    auto at = json.find("\"filters\": 32");
    REQUIRE(at != std::string::npos);
    json.replace(at, 13, "\"filters\": 33");
    std::string path = (dir / "wide.json").string();
    writeBytes(path, json);
    fgc::KerasImportOptions o;
    o.weightsPath = locate("keras2/kotlindl_toyresnet_weights.h5");
    auto r = fgc::importKerasFile(path, o);
    REQUIRE_FALSE(r);
    INFO(r.error().message());
    CHECK(r.error().message().find("layer 'conv2d_34' (Conv2D): weight 'kernel' has shape "
                                   "(3, 3, 1, 32) in the file, but the layer needs (3, 3, 1, 33)") !=
          std::string::npos);
  }
  SECTION("weights missing for a layer") {
    // A Dense layer added after the toy ResNet's last one: the file has nothing for it.
    std::string text = readBytes(locate("keras2/kotlindl_toyresnet_modelConfig.json"));
    auto json = nlohmann::json::parse(text);
    auto &layers = json["config"]["layers"];
    nlohmann::json extra = layers.back();
    extra["name"] = "dense_extra";
    extra["config"]["name"] = "dense_extra";
    extra["inbound_nodes"] = nlohmann::json::parse(R"([[["dense_7", 0, 0, {}]]])");
    layers.push_back(extra);
    json["config"]["output_layers"] = nlohmann::json::parse(R"([["dense_extra", 0, 0]])");
    std::string path = (dir / "extra.json").string();
    writeBytes(path, json.dump());
    fgc::KerasImportOptions o;
    o.weightsPath = locate("keras2/kotlindl_toyresnet_weights.h5");
    auto r = fgc::importKerasFile(path, o);
    REQUIRE_FALSE(r);
    CHECK(r.error().message() ==
          o.weightsPath + ": layer 'dense_extra' (Dense): the file has no weights for it (it "
                          "needs kernel (10, 10), bias (10,))");
  }
  SECTION("weights that do not fit the layer's config") {
    // The toy ResNet's last Dense without a bias: the file still has kernel and bias.
    std::string text = readBytes(locate("keras2/kotlindl_toyresnet_modelConfig.json"));
    auto json = nlohmann::json::parse(text);
    json["config"]["layers"].back()["config"]["use_bias"] = false;
    std::string path = (dir / "nobias.json").string();
    writeBytes(path, json.dump());
    fgc::KerasImportOptions o;
    o.weightsPath = locate("keras2/kotlindl_toyresnet_weights.h5");
    auto r = fgc::importKerasFile(path, o);
    REQUIRE_FALSE(r);
    INFO(r.error().message());
    CHECK(r.error().message().rfind(o.weightsPath + ": layer 'dense_7' (Dense): the file has 2 "
                                    "weight(s) for it (", 0) == 0);
    CHECK(r.error().message().find("but fgc's Dense needs 1 (kernel (256, 10))") !=
          std::string::npos);
  }
  SECTION("weights for a layer the model does not have") {
    // The architecture's last Dense renamed: the save_weights file's 'dense_7' finds no layer.
    std::string json = locate("keras2/kotlindl_toyresnet_modelConfig.json");
    std::string text = readBytes(json);
    text.replace(text.find("\"name\": \"dense_7\""), 17, "\"name\": \"dense_X\"");
    auto pos = text.find("\"dense_7\"");
    while (pos != std::string::npos) {
      text.replace(pos, 9, "\"dense_X\"");
      pos = text.find("\"dense_7\"");
    }
    std::string path = (dir / "renamed.json").string();
    writeBytes(path, text);
    fgc::KerasImportOptions o;
    o.weightsPath = locate("keras2/kotlindl_toyresnet_weights.h5");
    auto r = fgc::importKerasFile(path, o);
    REQUIRE_FALSE(r);
    CHECK(r.error().message().find("weights for layer 'dense_7', which the model does not "
                                   "have") != std::string::npos);
  }
  SECTION("not a Keras file") {
    auto r = importText("model.bin", std::string("\x01\x02\x03", 3));
    REQUIRE_FALSE(r);
    CHECK(r.error().message().find("not a Keras file") != std::string::npos);
  }
  fs::remove_all(dir);
}

// Every truncation of a file and a run of byte flips must give an Error (or, for bytes Keras
// never reads, the same model): never a crash, a hang or a leak (this runs under ASan + UBSan).
// Byte flips inside HDF5 metadata are left out: Debian's libhdf5 1.10.8 itself reads freed
// memory on some corrupted attribute messages (ASan reports it inside H5Aexists_by_name), which
// no caller can prevent; truncated HDF5 files are checked.
static void truncateAndCorrupt(const std::string &src, const std::string &tag,
                               bool flips = true) {
  std::string bytes = readBytes(src);
  REQUIRE(bytes.size() > 16);
  auto full = fgc::importKerasFile(src);
  std::string fullModel = full ? fgc::serializeModel(full->model, fgc::ModelFormat::Binary) : "";
  fs::path dir = tempDir("trunc_" + tag);
  std::string path = (dir / fs::path(src).filename()).string();
  std::vector<size_t> cuts = {0, 1, 4, 8, 9, 16, 64, 512};
  size_t step = std::max<size_t>(bytes.size() / 60, 1);
  for (size_t n = 600; n < bytes.size(); n += step)
    cuts.push_back(n);
  cuts.push_back(bytes.size() - 1);
  int errors = 0;
  for (size_t n : cuts) {
    if (n >= bytes.size())
      continue;
    writeBytes(path, bytes.substr(0, n));
    auto r = fgc::importKerasFile(path);
    if (!r) {
      ++errors;
      INFO("cut at " << n << ": " << r.error().message());
      CHECK(r.error().message().rfind(path + ": ", 0) == 0);
      CHECK(r.error().message().find('\n') == std::string::npos);
    } else {
      CHECK(fgc::serializeModel(r->model, fgc::ModelFormat::Binary) == fullModel);
    }
  }
  CHECK(errors > 0);
  std::mt19937 rng(1234);
  for (int trial = 0; flips && trial < 40; ++trial) {
    std::string bad = bytes;
    for (int k = 0; k < 4; ++k)
      bad[rng() % bad.size()] = static_cast<char>(rng());
    writeBytes(path, bad);
    auto r = fgc::importKerasFile(path);
    if (!r)
      CHECK(r.error().message().rfind(path + ": ", 0) == 0);
  }
  fs::remove_all(dir);
}

TEST_CASE("truncated and corrupted Keras files fail cleanly", "[keras][robustness]") {
  SECTION("JSON") { truncateAndCorrupt(kData + "dl4j_simple_add.json", "json"); }
  SECTION("legacy HDF5 full model") {
    truncateAndCorrupt(kData + "dl4j_embedding_lstm_tensorflow_2.h5", "h5", false);
  }
  SECTION("Keras 3 zip archive") {
    truncateAndCorrupt(kData + "keras_pre_pr22362_nested_container.keras", "zip");
  }
  SECTION("Keras 3 zip archive with weights") {
    std::string path = locate("keras3/saheart_functional_model.keras");
    if (path.empty()) {
      WARN("skipped: saheart_functional_model.keras not available");
      return;
    }
    truncateAndCorrupt(path, "zip_weights");
  }
}

TEST_CASE("fgc import: exit code 1, one line, nothing written", "[keras][cli]") {
  fs::path dir = tempDir("cli");
  std::string fgc = std::string(FGC_BINARY_DIR) + "/tools/fgc/fgc";
  std::string src = readBytes(kData + "dl4j_embedding_lstm_tensorflow_2.h5");
  std::string bad = (dir / "cut.h5").string();
  writeBytes(bad, src.substr(0, src.size() / 2));
  std::string out = (dir / "out.pb").string();
  std::string err = (dir / "err.txt").string();
  int rc = std::system((fgc + " import " + bad + " -o " + out + " 2> " + err).c_str());
  CHECK(WEXITSTATUS(rc) == 1);
  CHECK_FALSE(fs::exists(out));
  std::string message = readBytes(err);
  INFO(message);
  CHECK(message.rfind("fgc: error: " + bad + ": ", 0) == 0);
  CHECK(std::count(message.begin(), message.end(), '\n') == 1);
  // And the good file: imported, then summarized straight from the Keras file.
  rc = std::system((fgc + " import " + kData + "dl4j_embedding_lstm_tensorflow_2.h5 -o " + out +
                    " > /dev/null 2> " + err)
                       .c_str());
  CHECK(WEXITSTATUS(rc) == 0);
  CHECK(fs::exists(out));
  rc = std::system((fgc + " check " + out + " > " + err).c_str());
  CHECK(WEXITSTATUS(rc) == 0);
  CHECK(readBytes(err).find("308 parameters (weights present)") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("import with compile() arguments given in JSON: the training config", "[keras]") {
  SECTION("a file, for a model saved without one") {
    fgc::KerasImportOptions o;
    o.weightsPath = kData + "kotlindl_toyresnet_weights.h5";
    o.compileConfig = std::string(FGC_SOURCE_DIR) + "/tests/keras/toy_resnet_compile.json";
    auto r = fgc::importKerasFile(kData + "kotlindl_toyresnet_modelConfig.json", o);
    INFO((r ? std::string() : r.error().message()));
    REQUIRE(r);
    const auto &t = r->model.training();
    CHECK(t.optimizer().class_name() == "Adam");
    REQUIRE(t.losses_size() == 1);
    CHECK(t.losses(0).class_name() == "SparseCategoricalCrossentropy");
    CHECK(t.losses(0).config().attrs().at("from_logits").b());
    REQUIRE(t.metrics_size() == 1);
    CHECK(t.metrics(0).name() == "accuracy");
  }
  SECTION("JSON text replacing the file's own training config") {
    std::string path = kData + "dl4j_embedding_lstm_tensorflow_2.h5";
    auto own = fgc::importKerasFile(path);
    REQUIRE(own);
    CHECK(own->model.training().optimizer().class_name() == "Adam");
    fgc::KerasImportOptions o;
    o.compileConfig = R"({"optimizer": "rmsprop", "loss": "mae"})";
    auto r = fgc::importKerasFile(path, o);
    REQUIRE(r);
    CHECK(r->model.training().optimizer().class_name() == "RMSprop");
    CHECK(r->model.training().optimizer().attrs().empty()); // Keras's defaults
    REQUIRE(r->model.training().losses_size() == 1);
    CHECK(r->model.training().losses(0).class_name() == "mae");
  }
  SECTION("bad arguments: one message") {
    std::string path = kData + "dl4j_simple_add.json";
    fgc::KerasImportOptions o;
    o.compileConfig = R"({"loss": "mse")";
    auto r = fgc::importKerasFile(path, o);
    REQUIRE_FALSE(r);
    CHECK(r.error().message().rfind("--compile: invalid JSON (truncated or corrupted?)", 0) == 0);
    o.compileConfig = "[1, 2]";
    r = fgc::importKerasFile(path, o);
    REQUIRE_FALSE(r);
    CHECK(r.error().message() ==
          "--compile: expected Keras's compile() arguments as a JSON object, e.g. "
          "{\"optimizer\": \"rmsprop\", \"loss\": \"sparse_categorical_crossentropy\"}");
    o.compileConfig = "/nonexistent/compile.json";
    r = fgc::importKerasFile(path, o);
    REQUIRE_FALSE(r);
    CHECK(r.error().message().rfind("--compile: /nonexistent/compile.json: ", 0) == 0);
  }
}

namespace {

const fgc::KerasOptimizerState::Slot *findSlot(const fgc::KerasOptimizerState &state,
                                               const std::string &layer,
                                               const std::string &weight,
                                               const std::string &slot) {
  for (const auto &s : state.slots)
    if (s.layer == layer && s.weight == weight && s.slot == slot)
      return &s;
  return nullptr;
}

} // namespace

TEST_CASE("Keras optimizer state: slots matched to the weights, in fgc's layouts", "[keras]") {
  SECTION("legacy HDF5, tf.keras 2.x names (Adam/conv2d/kernel/m:0), nested models") {
    auto r = fgc::importKerasFile(kData + "seed_autoencoder_nested.h5");
    REQUIRE(r);
    REQUIRE(r->optimizerState);
    const auto &st = *r->optimizerState;
    CHECK(st.optimizer == "Adam");
    CHECK(st.iterations == 3);
    CHECK(st.slots.size() == 32); // 16 weights, m and v
    // The values are the file's: optimizer_weights/Adam/conv2d_transpose_1/bias/v:0 is read
    // independently here through the weights' own HDF5 reader.
    auto file = fgc::importers::Hdf5File::open(kData + "seed_autoencoder_nested.h5");
    REQUIRE(file);
    for (const auto &[layer, var, slot] :
         std::vector<std::tuple<std::string, std::string, std::string>>{
             {"encoder/conv2d", "conv2d/kernel", "m"},
             {"decoder/conv2d_transpose_1", "conv2d_transpose_1/bias", "v"},
             {"decoder/conv2d_transpose_3", "conv2d_transpose_3/kernel", "v"}}) {
      INFO(layer << " " << slot);
      auto want = file->readFloats("optimizer_weights/Adam/" + var + "/" + slot + ":0");
      REQUIRE(want);
      const auto *s = findSlot(st, layer, var.substr(var.find('/') + 1), slot);
      REQUIRE(s != nullptr);
      CHECK(s->shape == want->shape);
      CHECK(s->data == want->data);
    }
    // A .pb keeps no optimizer state; --compile with another optimizer drops it, saying so.
    fgc::KerasImportOptions o;
    o.compileConfig = R"({"optimizer": "sgd", "loss": "mse"})";
    auto sgd = fgc::importKerasFile(kData + "seed_autoencoder_nested.h5", o);
    REQUIRE(sgd);
    CHECK_FALSE(sgd->optimizerState);
    REQUIRE(sgd->warnings.size() == 1);
    CHECK(sgd->warnings[0].find("the file's Adam state is not imported: --compile trains with "
                                "SGD") != std::string::npos);
  }
  SECTION("a file without optimizer weights has no state") {
    auto r = fgc::importKerasFile(kData + "dl4j_embedding_lstm_tensorflow_2.h5");
    REQUIRE(r);
    CHECK_FALSE(r->optimizerState);
  }
  // Real files of the corpus: tf.keras 2.10 and 2.12 names (Adam/lstm/lstm_cell/kernel/m:0),
  // Keras 3's legacy HDF5 (adam/<variable path with '_'>_momentum), Keras 3 archives (by
  // position); step counts as h5py reads them.
  struct Case {
    std::string file;
    int64_t iterations;
    size_t slots;
  };
  for (const Case &c : std::vector<Case>{{"keras2/synthgen_gan_nested_sequential.h5", 1000, 8},
                                         {"keras2/seizure_ensemble_model.h5", 55200, 40},
                                         {"keras3/airquality_bilstm_keras3_legacy.h5", 23010, 44},
                                         {"keras3/nanotag_ae_model.keras", 252, 28},
                                         {"keras3/saheart_functional_model.keras", 209, 16}}) {
    SECTION(c.file) {
      std::string path = locate(c.file);
      if (path.empty()) {
        WARN("skipped: " << c.file << " is not in " << FGC_KERAS_MODELS);
        return;
      }
      auto r = fgc::importKerasFile(path);
      REQUIRE(r);
      REQUIRE(r->optimizerState);
      CHECK(r->optimizerState->optimizer == "Adam");
      CHECK(r->optimizerState->iterations == c.iterations);
      CHECK(r->optimizerState->slots.size() == c.slots);
    }
  }
}
