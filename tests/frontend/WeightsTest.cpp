// Weights files (.fgcw) and model conversion: save/load round trips keep every byte, the file
// layout is the documented one, and binary -> text -> binary conversion is byte-identical, in
// the library and through `fgc convert`.
#include "ModelSketch.h"

#include "frontend/GraphWriter.h"
#include "frontend/ModelFile.h"
#include "frontend/WeightsFile.h"

#include <cstring>

using namespace fgc;
using namespace fgc::test;

namespace {

schema::Model withoutWeights(schema::Model m) {
  for (auto &l : *m.mutable_layers()) {
    l.clear_weights();
    if (l.has_model())
      *l.mutable_model() = withoutWeights(l.model());
  }
  return m;
}

// Every parameter's bytes, keyed "layer/weight", nested models included.
std::map<std::string, std::vector<uint8_t>> allParams(const Graph &g,
                                                      const std::string &prefix = "") {
  std::map<std::string, std::vector<uint8_t>> out;
  for (const auto &l : g.layers) {
    std::string path = prefix + l->name;
    if (l->subgraph)
      out.merge(allParams(*l->subgraph, path + "/"));
    for (const auto &p : l->params)
      out[path + "/" + p.name] = p.data;
  }
  return out;
}

uint64_t readU64(const std::string &b, size_t at) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | static_cast<unsigned char>(b[at + static_cast<size_t>(i)]);
  return v;
}

int runFgc(const std::string &args) {
  std::string cmd = std::string(FGC_BINARY_DIR "/tools/fgc/fgc ") + args + " >/dev/null";
  return std::system(cmd.c_str());
}

} // namespace

TEST_CASE("a weights file round-trips every parameter byte for byte", "[weights]") {
  TempDir dir;
  schema::Model rich = richModelWithWeights();
  auto original = buildGraph(rich);
  REQUIRE(original);
  auto expected = allParams(**original);
  REQUIRE(expected.size() == 14);
  for (const auto &[name, bytes] : expected)
    REQUIRE_FALSE(bytes.empty());

  const std::string path = dir.path("rich.fgcw");
  REQUIRE(saveWeightsFile(**original, path));
  auto reloaded = buildGraph(withoutWeights(rich));
  REQUIRE(reloaded);
  CHECK(allParams(**reloaded).at("conv/kernel").empty());
  REQUIRE(loadWeightsFile(**reloaded, path));
  CHECK(allParams(**reloaded) == expected);

  // The layout: magic, index length, index, then 64-byte aligned tensors.
  std::string file = readBytes(path);
  REQUIRE(file.size() > 16);
  CHECK(file.compare(0, 8, "FGCWGT01") == 0);
  uint64_t indexLen = readU64(file, 8);
  schema::WeightsIndex index;
  REQUIRE(index.ParseFromArray(file.data() + 16, static_cast<int>(indexLen)));
  CHECK(index.model_name() == "rich");
  CHECK(index.entries_size() == 14);
  size_t dataStart = (16 + indexLen + 63) / 64 * 64;
  for (const auto &e : index.entries()) {
    INFO(e.layer() << "/" << e.name());
    CHECK(e.offset() % 64 == 0);
    int64_t elements = 1;
    for (auto d : e.shape())
      elements *= d;
    CHECK(e.nbytes() == static_cast<uint64_t>(elements) * 4);
    const auto &want = expected.at(e.layer() + "/" + e.name());
    REQUIRE(dataStart + e.offset() + e.nbytes() <= file.size());
    CHECK(std::memcmp(file.data() + dataStart + e.offset(), want.data(), want.size()) == 0);
  }
  bool nested = false;
  for (const auto &e : index.entries())
    nested |= e.layer() == "head/head_dense" && e.name() == "kernel";
  CHECK(nested);
}

TEST_CASE("a weights file that lacks a parameter or disagrees on a shape is rejected",
          "[weights]") {
  TempDir dir;
  const std::string path = dir.path("small.fgcw");
  ModelSketch small("small");
  small.input("x", {-1, 4});
  small.layer("Dense", "dense", {{"units", makeInt(2)}}, {"x"});
  small.output("dense");
  auto g = small.build();
  for (auto &p : g->findLayer("dense")->params)
    p.data.assign(static_cast<size_t>(p.numElements()) * 4, 0);
  REQUIRE(saveWeightsFile(*g, path));

  ModelSketch wider("small");
  wider.input("x", {-1, 5});
  wider.layer("Dense", "dense", {{"units", makeInt(2)}}, {"x"});
  wider.output("dense");
  auto w = wider.build();
  Status s = loadWeightsFile(*w, path);
  REQUIRE_FALSE(s);
  INFO(s.error().message());
  CHECK(s.error().message().find(path) != std::string::npos);
  CHECK(s.error().message().find("layer 'dense' (Dense)") != std::string::npos);
  CHECK(s.error().message().find("(4, 2)") != std::string::npos);
  CHECK(s.error().message().find("(5, 2)") != std::string::npos);

  ModelSketch more("small");
  more.input("x", {-1, 4});
  more.layer("Dense", "dense", {{"units", makeInt(2)}}, {"x"});
  more.layer("Dense", "extra", {{"units", makeInt(1)}}, {"dense"});
  more.output("extra");
  auto m = more.build();
  s = loadWeightsFile(*m, path);
  REQUIRE_FALSE(s);
  CHECK(s.error().message().find("missing weight 'kernel' of layer 'extra' (Dense)") !=
        std::string::npos);
}

TEST_CASE("binary -> text -> binary conversion is byte-identical", "[convert]") {
  auto graph = buildGraph(richModelWithWeights());
  REQUIRE(graph);
  auto written = graphToModel(**graph, WeightsMode::Inline);
  REQUIRE(written);
  const std::string binary = serializeModel(*written, ModelFormat::Binary);
  const std::string text = serializeModel(*written, ModelFormat::Text);

  auto fromText = parseModel(text, "rich.pbtxt");
  REQUIRE(fromText);
  CHECK(serializeModel(*fromText, ModelFormat::Binary) == binary);
  // Through the IR again: the writer's output is a fixed point.
  auto rebuilt = buildGraph(*fromText);
  REQUIRE(rebuilt);
  auto rewritten = graphToModel(**rebuilt, WeightsMode::Inline);
  REQUIRE(rewritten);
  CHECK(serializeModel(*rewritten, ModelFormat::Binary) == binary);
  CHECK(serializeModel(*rewritten, ModelFormat::Text) == text);
}

TEST_CASE("fgc convert: binary -> text -> binary is byte-identical", "[convert][cli]") {
  TempDir dir;
  auto graph = buildGraph(richModelWithWeights());
  REQUIRE(graph);
  auto written = graphToModel(**graph, WeightsMode::Inline);
  REQUIRE(written);
  const std::string a = dir.path("a.pb"), t = dir.path("a.pbtxt"), b = dir.path("b.pb"),
                    w = dir.path("c.pbtxt"), c = dir.path("c.pb");
  REQUIRE(writeModelFile(a, *written));
  REQUIRE(runFgc("convert " + a + " -o " + t) == 0);
  REQUIRE(runFgc("convert " + t + " -o " + b) == 0);
  CHECK(readBytes(a) == readBytes(b));
  // Weights moved to a .fgcw file and back inline.
  REQUIRE(runFgc("convert " + a + " -o " + w + " --weights-file " + dir.path("c.fgcw")) == 0);
  CHECK(readBytes(w).find("weights_file: \"c.fgcw\"") != std::string::npos);
  REQUIRE(runFgc("convert " + w + " -o " + c) == 0);
  CHECK(readBytes(a) == readBytes(c));
}

namespace {

// A model file as generated code's save() writes it: the weights container with the model
// (architecture, no weights) in its index. Built here from a weights file.
std::string modelFileBytes(const std::string &weightsFile, const schema::Model &model) {
  std::string b = readBytes(weightsFile);
  uint64_t indexLen = readU64(b, 8);
  size_t dataStart = (16 + indexLen + kWeightsAlignment - 1) / kWeightsAlignment * kWeightsAlignment;
  schema::WeightsIndex index;
  REQUIRE(index.ParseFromArray(b.data() + 16, int(indexLen)));
  index.set_model(serializeModel(model, ModelFormat::Binary));
  std::string idx = index.SerializeAsString();
  std::string out(kWeightsMagic, 8);
  for (int i = 0; i < 8; ++i)
    out.push_back(char((uint64_t(idx.size()) >> (8 * i)) & 0xff));
  out += idx;
  out.resize((out.size() + kWeightsAlignment - 1) / kWeightsAlignment * kWeightsAlignment, '\0');
  return out + b.substr(dataStart);
}

} // namespace

TEST_CASE("a model file reads as its model, with the weights it holds", "[weights][modelfile]") {
  TempDir dir;
  schema::Model rich = richModelWithWeights();
  auto original = buildGraph(rich);
  REQUIRE(original);
  REQUIRE(saveWeightsFile(**original, dir.path("w.fgcw")));
  // Any name: the magic bytes decide.
  writeBytes(dir.path("trained.bin"), modelFileBytes(dir.path("w.fgcw"), withoutWeights(rich)));

  auto model = readModelFile(dir.path("trained.bin"));
  REQUIRE(model);
  CHECK(model->weights_file() == "trained.bin"); // the weights are in the file itself
  CHECK(model->name() == rich.name());
  auto loaded = loadGraph(dir.path("trained.bin"));
  REQUIRE(loaded);
  CHECK(allParams(**loaded) == allParams(**original));
  CHECK(runFgc("check " + dir.path("trained.bin")) == 0);

  // A weights file alone is not a model.
  auto weightsOnly = readModelFile(dir.path("w.fgcw"));
  REQUIRE_FALSE(weightsOnly);
  CHECK_THAT(weightsOnly.error().message(),
             Catch::Contains(dir.path("w.fgcw") + ": an fgc weights file, not a model"));

  // Truncations and flipped bytes give one error, never a crash (this runs under ASan/UBSan).
  std::string bytes = readBytes(dir.path("trained.bin"));
  for (size_t n : {size_t(8), size_t(15), size_t(16), size_t(40), bytes.size() / 2,
                   bytes.size() - 1}) {
    writeBytes(dir.path("cut.bin"), bytes.substr(0, n));
    auto cut = loadGraph(dir.path("cut.bin"));
    INFO("truncated to " << n << " bytes");
    REQUIRE_FALSE(cut);
    CHECK_THAT(cut.error().message(), Catch::Contains(dir.path("cut.bin")));
  }
  for (size_t at = 8; at < std::min<size_t>(bytes.size(), 600); at += 7) {
    std::string flipped = bytes;
    flipped[at] = char(flipped[at] ^ 0x5a);
    writeBytes(dir.path("flip.bin"), flipped);
    auto g = loadGraph(dir.path("flip.bin"));
    if (!g)
      CHECK_THAT(g.error().message(), Catch::Contains(dir.path("flip.bin")));
  }
}
