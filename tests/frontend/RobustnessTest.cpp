// Corrupted inputs: every truncation and a few hundred seeded byte flips of a valid model (binary
// and text) and of a valid weights file. Each must load or fail with an error naming the file;
// it must never crash, hang or trip ASan/UBSan (this executable runs in the sanitizer build).
#include "ModelSketch.h"

#include "frontend/ModelFile.h"
#include "frontend/WeightsFile.h"

#include <algorithm>
#include <random>

using namespace fgc;
using namespace fgc::test;

namespace {

const std::string kName = "corrupt.pb";

// Parses and builds `bytes`; returns whether it built. A failure must name the file.
bool parseAndBuild(const std::string &bytes) {
  auto model = parseModel(bytes, kName);
  if (!model) {
    CHECK(model.error().message().rfind(kName + ": ", 0) == 0);
    return false;
  }
  BuildOptions options;
  options.fileName = kName;
  auto graph = buildGraph(*model, options);
  if (!graph) {
    CHECK(graph.error().message().rfind(kName + ": ", 0) == 0);
    return false;
  }
  CHECK_FALSE((*graph)->outputs.empty());
  return true;
}

// Flips 1 to 4 random bytes (random values, not only single bits) of `bytes`.
std::string mutate(std::string bytes, std::mt19937_64 &rng) {
  std::uniform_int_distribution<size_t> pos(0, bytes.size() - 1);
  std::uniform_int_distribution<int> count(1, 4), value(0, 255);
  for (int i = count(rng); i > 0; --i)
    bytes[pos(rng)] = static_cast<char>(value(rng));
  return bytes;
}

// The step between tested prefix lengths: every length for small inputs, about `budget` of them
// for large ones, so the suite stays fast under the sanitizers.
size_t strideFor(size_t size, size_t budget) { return std::max<size_t>(1, size / budget); }

} // namespace

TEST_CASE("every truncation of a binary model fails cleanly", "[robustness]") {
  std::string bytes = serializeModel(richModelWithWeights(), ModelFormat::Binary);
  REQUIRE(parseAndBuild(bytes));
  int built = 0;
  for (size_t n = 0; n < bytes.size(); n += strideFor(bytes.size(), 8192))
    built += parseAndBuild(bytes.substr(0, n));
  // A prefix of a model can be a smaller valid model only if it ends between top-level fields
  // after the outputs; richModelWithWeights writes its outputs last, then the seed.
  CHECK(built <= 1);
}

TEST_CASE("every truncation of a text model fails cleanly", "[robustness]") {
  std::string text = serializeModel(richModelWithWeights(), ModelFormat::Text);
  REQUIRE(parseAndBuild(text));
  // Text is several times larger than binary (escaped weight bytes); about 1500 cuts of it, at
  // an odd stride so they land on every kind of token.
  for (size_t n = 0; n < text.size(); n += strideFor(text.size(), 1500) | 1)
    parseAndBuild(text.substr(0, n));
}

TEST_CASE("random byte flips of a binary model never crash", "[robustness]") {
  std::string bytes = serializeModel(richModelWithWeights(), ModelFormat::Binary);
  std::mt19937_64 rng(1234);
  int built = 0;
  for (int i = 0; i < 500; ++i)
    built += parseAndBuild(mutate(bytes, rng));
  // Most flips land in weight data, which leaves the model valid; some must break it.
  CHECK(built > 0);
  CHECK(built < 500);
}

TEST_CASE("random byte flips of a text model never crash", "[robustness]") {
  std::string text = serializeModel(richModelWithWeights(), ModelFormat::Text);
  std::mt19937_64 rng(99);
  for (int i = 0; i < 300; ++i)
    parseAndBuild(mutate(text, rng));
}

TEST_CASE("truncated and corrupted weights files fail cleanly", "[robustness]") {
  TempDir dir;
  schema::Model withWeights = richModelWithWeights();
  auto graph = buildGraph(withWeights);
  REQUIRE(graph);
  const std::string good = dir.path("good.fgcw"), bad = dir.path("bad.fgcw");
  REQUIRE(saveWeightsFile(**graph, good));
  const std::string bytes = readBytes(good);

  // The same architecture without weights, to load each file into.
  schema::Model bare = withWeights;
  std::function<void(schema::Model &)> strip = [&](schema::Model &m) {
    for (auto &l : *m.mutable_layers()) {
      l.clear_weights();
      if (l.has_model())
        strip(*l.mutable_model());
    }
  };
  strip(bare);
  auto target = buildGraph(bare);
  REQUIRE(target);
  auto tryLoad = [&](const std::string &fileBytes) {
    writeBytes(bad, fileBytes);
    Status s = loadWeightsFile(**target, bad);
    if (!s)
      CHECK(s.error().message().rfind(bad + ": ", 0) == 0);
    return static_cast<bool>(s);
  };
  REQUIRE(tryLoad(bytes));
  // Every cut through the header and index; the data section (plain floats) at a stride.
  const size_t indexEnd = 16 + static_cast<size_t>(static_cast<unsigned char>(bytes[8])) +
                          256 * static_cast<unsigned char>(bytes[9]);
  REQUIRE(indexEnd < bytes.size());
  int loaded = 0;
  for (size_t n = 0; n < bytes.size(); n += n < indexEnd + 64 ? 1 : 13)
    loaded += tryLoad(bytes.substr(0, n));
  // The last tensor ends the file, so no proper prefix holds every weight.
  CHECK(loaded == 0);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 300; ++i)
    tryLoad(mutate(bytes, rng));
}
