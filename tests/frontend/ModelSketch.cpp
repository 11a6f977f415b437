// The shared fixtures of the frontend tests (see ModelSketch.h).
#include "ModelSketch.h"

#include "compiler/support/AtomicFile.h"
#include "frontend/GraphWriter.h"
#include "frontend/Initializers.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace fgc::test {

schema::Model richModelWithWeights() {
  ModelSketch m("rich", 42);
  m.input("image", {-1, 8, 8, 2});
  m.input("tokens", {-1, 5}, "int32");
  m.layer("Conv2D", "conv",
          {{"filters", makeInt(4)}, {"kernel_size", makeInt(3)}, {"padding", makeString("same")},
           {"activation", makeString("relu")}},
          {"image"});
  m.layer("BatchNormalization", "bn", {}, {"conv"});
  m.layer("MaxPooling2D", "pool", {{"pool_size", makeInt(2)}}, {"bn"});
  m.layer("Flatten", "flat", {}, {"pool"});
  m.layer("Dense", "dense_a", {{"units", makeInt(6)}}, {"flat"});
  m.layer("Embedding", "embed", {{"input_dim", makeInt(20)}, {"output_dim", makeInt(3)}},
          {"tokens"});
  m.layer("LSTM", "lstm", {{"units", makeInt(6)}}, {"embed"});
  m.layer("Add", "add", {}, {"dense_a", "lstm"});
  m.layer("Concatenate", "concat", {}, {"add", "lstm"});
  auto &head = m.layer("Functional", "head", {}, {"concat"});
  ModelSketch inner("head");
  inner.input("head_in", {-1, 12});
  inner.layer("Dense", "head_dense", {{"units", makeInt(3)}, {"activation", makeString("softmax")}},
              {"head_in"});
  inner.output("head_dense");
  *head.mutable_model() = inner.model;
  m.output("head");

  auto g = m.build();
  REQUIRE(initializeWeights(*g));
  auto written = graphToModel(*g, WeightsMode::Inline);
  REQUIRE(written);
  return written.take();
}

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "fgc-test-XXXXXX").string();
  REQUIRE(mkdtemp(tmpl.data()) != nullptr);
  dir_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string readBytes(const std::string &path) {
  auto bytes = readFile(path);
  REQUIRE(bytes);
  return *bytes;
}

void writeBytes(const std::string &path, const std::string &bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

} // namespace fgc::test
