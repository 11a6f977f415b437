// The samples against the seed tutorial: `fgc summary` of each committed model file must print
// what Keras printed in the seed (tests/samples/expected/*.summary.txt are copied verbatim from
// the seed's outputs), parameter counts must be the seed's, the committed files must be what
// the sample programs write today, and every sample must plot.
#include "compiler/report/Plot.h"
#include "compiler/report/Summary.h"
#include "frontend/GraphBuilder.h"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path &p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const fs::path kSamples = fs::path(FGC_SOURCE_DIR) / "samples";
const fs::path kExpected = fs::path(FGC_SOURCE_DIR) / "tests/samples/expected";

std::unique_ptr<fgc::Graph> load(const fs::path &p) {
  auto g = fgc::loadGraph(p.string());
  INFO(p.string() << ": " << (g ? std::string() : g.error().message()));
  REQUIRE(g);
  return g.take();
}

fs::path tempDir(const std::string &name) {
  fs::path d = fs::temp_directory_path() / ("fgc_samples_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

const std::vector<std::string> kSampleNames = {"mnist_mlp",         "conv_autoencoder",
                                               "ensemble",          "ticket_classifier",
                                               "toy_resnet",        "shared_embedding",
                                               "vgg19_features"};

} // namespace

TEST_CASE("summaries match the seed's Keras output line for line", "[samples][summary]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"mnist_mlp/model.pbtxt", "mnist_model"},
      {"conv_autoencoder/shared_encoder.pbtxt", "encoder_shared"},
      {"conv_autoencoder/shared_autoencoder.pbtxt", "autoencoder_shared"},
      {"conv_autoencoder/model.pbtxt", "autoencoder_nested"},
      {"toy_resnet/model.pbtxt", "toy_resnet"},
  };
  for (const auto &[file, expected] : cases) {
    SECTION(file) {
      auto g = load(kSamples / file);
      CHECK(fgc::modelSummary(*g) == slurp(kExpected / (expected + ".summary.txt")));
    }
  }
}

TEST_CASE("parameter counts are the seed's", "[samples][params]") {
  const std::vector<std::pair<std::string, int64_t>> cases = {
      {"mnist_mlp/model.pbtxt", 55050},
      {"conv_autoencoder/encoder.pbtxt", 18672},
      {"conv_autoencoder/decoder.pbtxt", 9569},
      {"conv_autoencoder/model.pbtxt", 28241},
      {"conv_autoencoder/shared_autoencoder.pbtxt", 28241},
      {"toy_resnet/model.pbtxt", 223242},
      {"vgg19_features/model.pbtxt", 143667240},
      {"vgg19_features/features.pbtxt", 143667240},
      // 3 x Dense(1) on 128 inputs
      {"ensemble/model.pbtxt", 3 * (128 + 1)},
      // 2 x Embedding(1000 words... 10000 x 64), LSTM(128) on 64, LSTM(32) on 64, two heads on 172
      {"ticket_classifier/model.pbtxt",
       2 * 10000 * 64 + 4 * 128 * (64 + 128 + 1) + 4 * 32 * (64 + 32 + 1) + 173 + 4 * 173},
      {"shared_embedding/model.pbtxt", 1000 * 128},
  };
  for (const auto &[file, params] : cases) {
    auto g = load(kSamples / file);
    INFO(file);
    CHECK(g->countParams() == params);
    CHECK(g->countTrainableParams() == params);
  }
}

TEST_CASE("feature extraction model outputs every VGG19 layer", "[samples][vgg19]") {
  auto model = load(kSamples / "vgg19_features/model.pbtxt");
  auto features = load(kSamples / "vgg19_features/features.pbtxt");
  REQUIRE(model->layers.size() == 26); // input + 16 conv + 5 pool + flatten + fc1 + fc2 + predictions
  REQUIRE(features->outputs.size() == 26);
  CHECK(features->outputs[0]->type.shape == std::vector<fgc::Dim>{-1, 224, 224, 3});
  CHECK(features->outputs[5]->producer->layer->name == "block2_conv2");
  CHECK(features->outputs[5]->type.shape == std::vector<fgc::Dim>{-1, 112, 112, 128});
  CHECK(features->outputs[21]->type.shape == std::vector<fgc::Dim>{-1, 7, 7, 512});
  CHECK(features->outputs[25]->type.shape == std::vector<fgc::Dim>{-1, 1000});
}

TEST_CASE("ticket model keeps Keras's input and output names and order", "[samples][ticket]") {
  auto g = load(kSamples / "ticket_classifier/model.pbtxt");
  REQUIRE(g->inputs.size() == 3);
  CHECK(g->inputLayer(0).name == "title");
  CHECK(g->inputLayer(1).name == "body");
  CHECK(g->inputLayer(2).name == "tags");
  REQUIRE(g->outputs.size() == 2);
  CHECK(g->outputLayer(0).name == "priority");
  CHECK(g->outputLayer(1).name == "department");
  // Each None is its own symbol: the batch (-1), the title length (-2), the body length (-3).
  CHECK(g->inputs[0]->type.shape == std::vector<fgc::Dim>{-1, -2});
  CHECK(g->inputs[1]->type.shape == std::vector<fgc::Dim>{-1, -3});
  const fgc::Layer *embedding = g->findLayer("embedding");
  REQUIRE(embedding != nullptr);
  CHECK(embedding->calls[0]->outputs[0]->type.shape == std::vector<fgc::Dim>{-1, -2, 64});
  CHECK(g->training.losses_size() == 2);
  CHECK(g->training.optimizer().class_name() == "RMSprop");
}

TEST_CASE("committed model files are what the sample programs write", "[samples][sync]") {
  for (const auto &name : kSampleNames) {
    SECTION(name) {
      fs::path out = tempDir(name);
      std::string cmd = std::string(FGC_BINARY_DIR) + "/samples/sample_" + name + " " +
                        out.string() + " > /dev/null";
      REQUIRE(std::system(cmd.c_str()) == 0);
      int compared = 0;
      for (const auto &e : fs::directory_iterator(kSamples / name)) {
        if (e.path().extension() != ".pbtxt")
          continue;
        INFO(e.path().string() << " is out of date: run build/samples/sample_" << name);
        REQUIRE(fs::exists(out / e.path().filename()));
        CHECK(slurp(e.path()) == slurp(out / e.path().filename()));
        ++compared;
      }
      for (const auto &e : fs::directory_iterator(out))
        if (e.path().extension() == ".pbtxt") {
          INFO(e.path().filename().string() << " is written by the sample but not committed");
          CHECK(fs::exists(kSamples / name / e.path().filename()));
        }
      CHECK(compared > 0);
      fs::remove_all(out);
    }
  }
}

TEST_CASE("every sample plots to a PNG with every layer", "[samples][plot]") {
  fs::path out = tempDir("plots");
  for (const auto &name : kSampleNames) {
    auto g = load(kSamples / name / "model.pbtxt");
    fgc::PlotOptions o;
    o.showShapes = true;
    std::string dot = fgc::modelToDot(*g, o);
    for (const auto &l : g->layers)
      CHECK(dot.find(l->name + ": " + l->className) != std::string::npos);
    fs::path png = out / (name + ".png");
    auto s = fgc::plotModel(*g, png.string(), o);
    INFO(name << ": " << (s ? "" : s.error().message()));
    REQUIRE(s);
    std::string bytes = slurp(png);
    REQUIRE(bytes.size() > 1000);
    CHECK(bytes.substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
  }
  fs::remove_all(out);
}
